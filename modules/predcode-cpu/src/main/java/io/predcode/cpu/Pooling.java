package io.predcode.cpu;

import io.predcode.spi.PoolGeometry;

import java.lang.foreign.MemorySegment;

import static io.predcode.cpu.CpuBackend.F;
import static io.predcode.cpu.ConvKernels.MIN_IMAGES;

/** Max and average pooling on NCHW images, PyTorch semantics, a plane at a time on on-heap tiles. */
final class Pooling {
    private Pooling() {}

    /*
     * Max pooling picks the window's maximum as PyTorch's CPU kernel does: scanning in order, move to
     * any value greater than the best so far or to any NaN (ties keep the first maximum; with NaNs the
     * last NaN wins). Scanning with branches mispredicts on every other window of real activations
     * (18 ns a window here), so NaN-free windows take a branch-free path on int keys that order as
     * the floats do: for 2x2 windows pairwise maxima (7 ns), otherwise a long key with (255 - position)
     * in the low bits, whose maximum is the first maximum. Windows with a NaN (never, in a healthy
     * run) take the scan.
     */

    /** Float order as signed-int order, for NaN-free values; -0 becomes +0 first so that equal floats get equal keys. */
    private static int sortable(float v) {
        int b = Float.floatToRawIntBits(v + 0f);
        return b ^ ((b >> 31) & 0x7fffffff);
    }

    private static long key(float v, int position) { return ((long) sortable(v) << 8) | (255 - position); }

    /** Index in the plane of the maximum of the window at (oy, ox). */
    private static int argmax(float[] plane, PoolGeometry g, int oy, int ox) {
        int at = oy * g.sh() * g.width() + ox * g.sw(), w = g.width(), kw = g.kw();
        if (g.kh() * kw > 256) return scan(plane, g, at);
        long best = Long.MIN_VALUE;
        boolean nan = false;
        for (int i = 0, k = 0; i < g.kh(); i++)
            for (int j = 0; j < kw; j++, k++) {
                float v = plane[at + i * w + j];
                nan |= v != v;
                best = Math.max(best, key(v, k));
            }
        if (nan) return scan(plane, g, at);
        int k = 255 - (int) (best & 255);
        return at + k / kw * w + k % kw;
    }

    /** The same for a 2x2 window at {@code at}, small enough to inline into the plane loop. */
    private static int argmax2x2(float[] plane, PoolGeometry g, int at) {
        int w = g.width();
        float a = plane[at], b = plane[at + 1], c = plane[at + w], d = plane[at + w + 1];
        if ((a != a) | (b != b) | (c != c) | (d != d)) return scan(plane, g, at);
        // Pairwise on the int keys (conditional moves, not branches); every tie keeps the earlier pixel.
        int sa = sortable(a), sb = sortable(b), sc = sortable(c), sd = sortable(d);
        int top = sb > sa ? at + 1 : at, bottom = sd > sc ? at + w + 1 : at + w;
        return Math.max(sc, sd) > Math.max(sa, sb) ? bottom : top;
    }

    /** The rule itself, in scan order from the window's first pixel {@code at}. */
    private static int scan(float[] plane, PoolGeometry g, int at) {
        int best = at;
        float bestValue = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < g.kh(); i++)
            for (int j = 0; j < g.kw(); j++) {
                int idx = at + i * g.width() + j;
                float v = plane[idx];
                if (v > bestValue || v != v) { best = idx; bestValue = v; }
            }
        return best;
    }

    /** The window's maximum value: NaN if it holds one (as the last-NaN rule gives), else the largest. */
    private static float max(float[] plane, PoolGeometry g, int oy, int ox) {
        int at = oy * g.sh() * g.width() + ox * g.sw(), w = g.width();
        float m = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < g.kh(); i++)
            for (int j = 0; j < g.kw(); j++) m = Math.max(m, plane[at + i * w + j]);
        return m;
    }

    /* Pooling works a plane at a time on on-heap tiles, like im2col. */

    static void maxPool(Parallel par, MemorySegment x, PoolGeometry g, MemorySegment y, int images) {
        par.forRange(images * g.channels(), MIN_IMAGES * g.channels(), (from, to) -> maxPool(x, g, y, from, to));
    }

    private static void maxPool(MemorySegment x, PoolGeometry g, MemorySegment y, int from, int to) {
        int oh = g.outHeight(), ow = g.outWidth(), planeIn = g.height() * g.width(), planeOut = oh * ow;
        float[] plane = new float[planeIn], out = new float[planeOut];
        boolean pairs = g.kh() == 2 && g.kw() == 2 && g.sh() == 2 && g.sw() == 2;
        // 2x2 windows, stride 2: the maximum of each column pair of a row pair first, in one loop the JIT
        // vectorises (into a double[]: a separate array type, so it can prove the loop free of aliasing).
        double[] columns = new double[g.width()];
        for (long pl = from; pl < to; pl++) {
            MemorySegment.copy(x, F, pl * planeIn * Float.BYTES, plane, 0, planeIn);
            if (pairs)
                for (int oy = 0, o = 0; oy < oh; oy++) {
                    int r0 = 2 * oy * g.width(), r1 = r0 + g.width();
                    for (int i = 0; i < 2 * ow; i++) columns[i] = Math.max(plane[r0 + i], plane[r1 + i]);
                    for (int ox = 0; ox < ow; ox++) out[o++] = (float) Math.max(columns[2 * ox], columns[2 * ox + 1]);
                }
            else
                for (int oy = 0, o = 0; oy < oh; oy++)
                    for (int ox = 0; ox < ow; ox++) out[o++] = max(plane, g, oy, ox);
            MemorySegment.copy(out, 0, y, F, pl * planeOut * Float.BYTES, planeOut);
        }
    }

    /** out = maxPool(x + dx) - maxPool(x) per window, the sum in double: (x_k + dx_k) - x_m (Backend#maxPoolIncrement). */
    static void maxPoolIncrement(Parallel par, MemorySegment x, MemorySegment dx, PoolGeometry g, MemorySegment out, int images) {
        par.forRange(images * g.channels(), MIN_IMAGES * g.channels(), (from, to) -> {
            int oh = g.outHeight(), ow = g.outWidth(), w = g.width(), planeIn = g.height() * w, planeOut = oh * ow;
            float[] base = new float[planeIn], change = new float[planeIn], result = new float[planeOut];
            for (long pl = from; pl < to; pl++) {
                MemorySegment.copy(x, F, pl * planeIn * Float.BYTES, base, 0, planeIn);
                MemorySegment.copy(dx, F, pl * planeIn * Float.BYTES, change, 0, planeIn);
                for (int oy = 0, o = 0; oy < oh; oy++)
                    for (int ox = 0; ox < ow; ox++) {
                        int at = oy * g.sh() * w + ox * g.sw(), m = at, k = at;
                        double bestMoved = Double.NEGATIVE_INFINITY;
                        float best = Float.NEGATIVE_INFINITY;
                        for (int i = 0; i < g.kh(); i++)
                            for (int j = 0; j < g.kw(); j++) {
                                int p = at + i * w + j;
                                double moved = (double) base[p] + change[p];
                                if (base[p] > best || base[p] != base[p]) { best = base[p]; m = p; } // PyTorch's pick, as maxPool's
                                if (moved > bestMoved || moved != moved) { bestMoved = moved; k = p; }
                            }
                        result[o++] = (float) ((double) base[k] + change[k] - base[m]);
                    }
                MemorySegment.copy(result, 0, out, F, pl * planeOut * Float.BYTES, planeOut);
            }
        });
    }

    static void maxPoolBackward(Parallel par, MemorySegment x, PoolGeometry g, MemorySegment dy, MemorySegment dx, int images) {
        par.forRange(images * g.channels(), MIN_IMAGES * g.channels(), (from, to) -> maxPoolBackward(x, g, dy, dx, from, to));
    }

    private static void maxPoolBackward(MemorySegment x, PoolGeometry g, MemorySegment dy, MemorySegment dx, int from, int to) {
        int oh = g.outHeight(), ow = g.outWidth(), planeIn = g.height() * g.width(), planeOut = oh * ow;
        float[] plane = new float[planeIn], grad = new float[planeOut], result = new float[planeIn];
        Pairs pairs = g.kh() == 2 && g.kw() == 2 && g.sh() == 2 && g.sw() == 2 ? new Pairs(planeOut) : null;
        for (long pl = from; pl < to; pl++) {
            MemorySegment.copy(x, F, pl * planeIn * Float.BYTES, plane, 0, planeIn);
            MemorySegment.copy(dy, F, pl * planeOut * Float.BYTES, grad, 0, planeOut);
            java.util.Arrays.fill(result, 0f);
            if (pairs != null && pairs.backward(plane, grad, g, result)) { /* done without branches */ }
            else if (g.kh() == 2 && g.kw() == 2)
                for (int oy = 0, o = 0; oy < oh; oy++)
                    for (int ox = 0, at = oy * g.sh() * g.width(); ox < ow; ox++, at += g.sw()) result[argmax2x2(plane, g, at)] += grad[o++];
            else
                for (int oy = 0, o = 0; oy < oh; oy++)
                    for (int ox = 0; ox < ow; ox++) result[argmax(plane, g, oy, ox)] += grad[o++];
            MemorySegment.copy(result, 0, dx, F, pl * planeIn * Float.BYTES, planeIn);
        }
    }

    /**
     * Max-pool backward for 2x2 windows at stride 2, a plane at a time, in loops the JIT vectorises:
     * the four pixels of every window go to separate double[] columns (a, b, c, d in scan order), the
     * window maximum m and then, in arithmetic, which pixel is the first equal to m: is(u) = 1 when
     * m - u is 0, else 0 (any nonzero difference of floats times 2^1000 is >= 1 in double). The
     * weights a, b (1 - a), c (1 - a)(1 - b), and the rest for d route dy to exactly that pixel.
     */
    private static final class Pairs {
        final double[] a, b, c, d, m, dy;

        Pairs(int windows) { a = new double[windows]; b = new double[windows]; c = new double[windows]; d = new double[windows]; m = new double[windows]; dy = new double[windows]; }

        private static double isZero(double v) { return 1.0 - Math.min(v * 0x1p1000, 1.0); }

        /** Writes the plane's gradient into result (zero elsewhere); false, touching nothing, if a value is not finite. */
        boolean backward(float[] plane, float[] grad, PoolGeometry g, float[] result) {
            int oh = g.outHeight(), ow = g.outWidth(), w = g.width(), n = oh * ow;
            for (int oy = 0, o = 0; oy < oh; oy++)
                for (int ox = 0, at = 2 * oy * w; ox < ow; ox++, o++, at += 2) {
                    a[o] = plane[at]; b[o] = plane[at + 1]; c[o] = plane[at + w]; d[o] = plane[at + w + 1];
                }
            for (int o = 0; o < n; o++) { m[o] = Math.max(Math.max(a[o], b[o]), Math.max(c[o], d[o])); dy[o] = grad[o]; }
            // A NaN or infinite maximum, or gradient (0 x inf is NaN): the scan decides, exactly as PyTorch.
            for (int o = 0; o < n; o++) if (!(Math.abs(m[o]) < Double.POSITIVE_INFINITY) || !(Math.abs(dy[o]) < Double.POSITIVE_INFINITY)) return false;
            for (int o = 0; o < n; o++) {
                double wa = isZero(m[o] - a[o]), wb = isZero(m[o] - b[o]) * (1 - wa), wc = isZero(m[o] - c[o]) * (1 - wa) * (1 - wb);
                double g0 = dy[o];
                a[o] = g0 * wa; b[o] = g0 * wb; c[o] = g0 * wc; d[o] = g0 * (1 - wa - wb - wc);
            }
            for (int oy = 0, o = 0; oy < oh; oy++)
                for (int ox = 0, at = 2 * oy * w; ox < ow; ox++, o++, at += 2) {
                    result[at] = (float) a[o]; result[at + 1] = (float) b[o]; result[at + w] = (float) c[o]; result[at + w + 1] = (float) d[o];
                }
            return true;
        }
    }

    static void avgPool(MemorySegment x, PoolGeometry g, MemorySegment y, int images) {
        int oh = g.outHeight(), ow = g.outWidth();
        long planeIn = (long) g.height() * g.width(), planes = (long) images * g.channels(), o = 0;
        float inv = 1f / (g.kh() * g.kw());
        for (long pl = 0; pl < planes; pl++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    float sum = 0;
                    for (int i = 0; i < g.kh(); i++)
                        for (int j = 0; j < g.kw(); j++)
                            sum += x.getAtIndex(F, pl * planeIn + (long) (oy * g.sh() + i) * g.width() + ox * g.sw() + j);
                    y.setAtIndex(F, o++, sum * inv);
                }
    }

    static void avgPoolBackward(PoolGeometry g, MemorySegment dy, MemorySegment dx, int images) {
        int oh = g.outHeight(), ow = g.outWidth();
        long planeIn = (long) g.height() * g.width(), planes = (long) images * g.channels(), o = 0;
        float inv = 1f / (g.kh() * g.kw());
        dx.asSlice(0, planes * planeIn * Float.BYTES).fill((byte) 0);
        for (long pl = 0; pl < planes; pl++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    float d = dy.getAtIndex(F, o++) * inv;
                    for (int i = 0; i < g.kh(); i++)
                        for (int j = 0; j < g.kw(); j++) {
                            long at = pl * planeIn + (long) (oy * g.sh() + i) * g.width() + ox * g.sw() + j;
                            dx.setAtIndex(F, at, dx.getAtIndex(F, at) + d);
                        }
                }
    }
}
