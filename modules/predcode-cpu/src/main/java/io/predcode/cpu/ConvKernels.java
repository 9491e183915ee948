package io.predcode.cpu;

import io.predcode.spi.Conv2dGeometry;
import io.predcode.spi.PoolGeometry;

import java.lang.foreign.MemorySegment;

import static io.predcode.cpu.CpuBackend.F;

/** The fused conv ops and pooling on NCHW images, PyTorch semantics. */
final class ConvKernels {
    private ConvKernels() {}

    /*
     * im2col and col2im move whole images in bulk between the off-heap tensors and an on-heap tile
     * (one input image and its col matrix): per-element access to native segments costs ~3 ns here,
     * and many small bulk copies cost as much; array access in a tight loop is a fraction of that.
     * Tensors stay off-heap; the tile is a staging buffer the size of one image's col matrix.
     */

    /** Images per thread below which a kernel stays on the calling thread. */
    static final int MIN_IMAGES = 16;

    /** Image n of the batch x as its im2col matrix in cols ({@code image} is scratch of one image). */
    private static void gatherImage(MemorySegment x, long n, Conv2dGeometry g, int[] index, float[] image, float[] cols) {
        MemorySegment.copy(x, F, n * image.length * Float.BYTES, image, 0, image.length);
        gather(image, g, index, cols);
    }

    /** The adjoint of gatherImage: cols scattered into image n of the batch dx ({@code image} is scratch). */
    private static void scatterImage(float[] cols, Conv2dGeometry g, int[] index, float[] image, MemorySegment dx, long n) {
        scatter(cols, g, index, image);
        MemorySegment.copy(image, 0, dx, F, n * image.length * Float.BYTES, image.length);
    }

    /** One image's im2col matrix [c*kh*kw, oh*ow] from the image [c, h, w], both on-heap. */
    private static void gather(float[] image, Conv2dGeometry g, int[] index, float[] cols) {
        int p = g.outPixels(), kk = g.kh() * g.kw(), plane = g.height() * g.width();
        if (g.sw() == 1) {
            // Stride 1: each col row is a run of the input row; arraycopy is an intrinsic even for short runs.
            if (g.ph() > 0 || g.pw() > 0) java.util.Arrays.fill(cols, 0f);
            for (int c = 0; c < g.channels(); c++)
                for (int ki = 0; ki < g.kh(); ki++)
                    for (int kj = 0; kj < g.kw(); kj++) {
                        int dst = (c * kk + ki * g.kw() + kj) * p, ox0 = Math.max(0, g.pw() - kj), ox1 = Math.min(g.outWidth(), g.width() + g.pw() - kj);
                        if (ox1 <= ox0) continue;
                        for (int oy = 0; oy < g.outHeight(); oy++) {
                            int iy = oy * g.sh() - g.ph() + ki;
                            if (iy < 0 || iy >= g.height()) continue;
                            System.arraycopy(image, c * plane + iy * g.width() + ox0 - g.pw() + kj, cols, dst + oy * g.outWidth() + ox0, ox1 - ox0);
                        }
                    }
            return;
        }
        for (int c = 0; c < g.channels(); c++) {
            int src = c * plane, dst = c * kk * p;
            for (int i = 0; i < kk * p; i++) {
                int at = index[i];
                cols[dst + i] = at < 0 ? 0f : image[src + at];
            }
        }
    }

    /** The adjoint of gather: image = sum of the col entries that read each pixel (image overwritten). */
    private static void scatter(float[] cols, Conv2dGeometry g, int[] index, float[] image) {
        int p = g.outPixels(), kk = g.kh() * g.kw(), plane = g.height() * g.width();
        java.util.Arrays.fill(image, 0f);
        if (g.sw() == 1) {
            for (int c = 0; c < g.channels(); c++)
                for (int ki = 0; ki < g.kh(); ki++)
                    for (int kj = 0; kj < g.kw(); kj++) {
                        int src = (c * kk + ki * g.kw() + kj) * p, ox0 = Math.max(0, g.pw() - kj), ox1 = Math.min(g.outWidth(), g.width() + g.pw() - kj);
                        for (int oy = 0; oy < g.outHeight(); oy++) {
                            int iy = oy * g.sh() - g.ph() + ki;
                            if (iy < 0 || iy >= g.height()) continue;
                            int d = c * plane + iy * g.width() + ox0 - g.pw() + kj, s0 = src + oy * g.outWidth() + ox0;
                            for (int i = 0; i < ox1 - ox0; i++) image[d + i] += cols[s0 + i];
                        }
                    }
            return;
        }
        for (int c = 0; c < g.channels(); c++) {
            int dst = c * plane, src = c * kk * p;
            for (int i = 0; i < kk * p; i++) {
                int at = index[i];
                if (at >= 0) image[dst + at] += cols[src + i];
            }
        }
    }

    /*
     * The fused conv ops work image by image: the im2col matrix of one image goes through an
     * off-heap tile the size of one image's col matrix, which stays in cache between the gather and
     * the GEMM. The whole batch's col matrix (13 MB for example-cnn at batch 300) never reaches DRAM.
     */

    /** A per-thread off-heap tile of at least {@code floats} floats (OpenBLAS needs native memory). */
    private static MemorySegment tile(long floats) {
        MemorySegment[] holder = TILE.get();
        if (holder[0] == null || holder[0].byteSize() < floats * Float.BYTES) holder[0] = java.lang.foreign.Arena.ofAuto().allocate(floats * Float.BYTES, 64);
        return holder[0];
    }

    private static final ThreadLocal<MemorySegment[]> TILE = ThreadLocal.withInitial(() -> new MemorySegment[1]);

    static void conv2d(Parallel par, OpenBlas blas, MemorySegment x, MemorySegment w, Conv2dGeometry g, MemorySegment y, int images, int out) {
        int[] index = gatherIndex(g);
        int in = (int) g.inputSize(), p = g.outPixels(), patch = g.patchSize();
        par.forRange(images, MIN_IMAGES, (from, to) -> {
            float[] image = new float[in], cols = new float[patch * p];
            MemorySegment t = tile((long) patch * p);
            for (int n = from; n < to; n++) {
                gatherImage(x, n, g, index, image, cols);
                MemorySegment.copy(cols, 0, t, F, 0, cols.length);
                blas.sgemm(false, false, out, p, patch, 1f, w, patch, t, p, 0f, y.asSlice((long) n * out * p * Float.BYTES), p);
            }
        });
    }

    static void conv2dBackwardInput(Parallel par, OpenBlas blas, MemorySegment dy, MemorySegment w, Conv2dGeometry g, MemorySegment dx, int images, int out) {
        int[] index = gatherIndex(g);
        int in = (int) g.inputSize(), p = g.outPixels(), patch = g.patchSize();
        par.forRange(images, MIN_IMAGES, (from, to) -> {
            float[] image = new float[in], cols = new float[patch * p];
            MemorySegment t = tile((long) patch * p);
            for (int n = from; n < to; n++) {
                blas.sgemm(true, false, patch, p, out, 1f, w, patch, dy.asSlice((long) n * out * p * Float.BYTES), p, 0f, t, p);
                MemorySegment.copy(t, F, 0, cols, 0, cols.length);
                scatterImage(cols, g, index, image, dx, n);
            }
        });
    }

    /** dW = sum over images of dy_n [out, P] x col_n^T [P, patch], each thread into its own partial sum. */
    static void conv2dBackwardWeight(Parallel par, OpenBlas blas, MemorySegment x, MemorySegment dy, Conv2dGeometry g, MemorySegment dw, int images, int out) {
        int[] index = gatherIndex(g);
        int in = (int) g.inputSize(), p = g.outPixels(), patch = g.patchSize(), size = out * patch;
        PartialSums partial = new PartialSums(par.parts(images, MIN_IMAGES), size);
        par.forParts(images, MIN_IMAGES, (part, from, to) -> {
            float[] image = new float[in], cols = new float[patch * p];
            MemorySegment t = tile((long) patch * p);
            for (int n = from; n < to; n++) {
                gatherImage(x, n, g, index, image, cols);
                MemorySegment.copy(cols, 0, t, F, 0, cols.length);
                blas.sgemm(false, true, out, patch, p, 1f, dy.asSlice((long) n * out * p * Float.BYTES), p, t, p, n == from ? 0f : 1f, partial.part(part), patch);
            }
        });
        MemorySegment.copy(partial.sum(), 0, dw, F, 0, size);
    }

    /**
     * For kernel offset k = ki*kw + kj and output pixel i: the input pixel (within one channel plane)
     * that col row k reads at i, or -1 where it falls in the zero padding. The same for every channel and image.
     */
    private static int[] gatherIndex(Conv2dGeometry g) { return GATHER_INDEX.computeIfAbsent(g, ConvKernels::buildGatherIndex); }

    /** The tables depend only on the geometry, and a model has a handful: built once, not once per sweep. */
    private static final java.util.Map<Conv2dGeometry, int[]> GATHER_INDEX = new java.util.concurrent.ConcurrentHashMap<>();

    private static int[] buildGatherIndex(Conv2dGeometry g) {
        int oh = g.outHeight(), ow = g.outWidth(), p = oh * ow;
        int[] index = new int[g.kh() * g.kw() * p];
        for (int ki = 0; ki < g.kh(); ki++)
            for (int kj = 0; kj < g.kw(); kj++)
                for (int oy = 0; oy < oh; oy++)
                    for (int ox = 0; ox < ow; ox++) {
                        int iy = oy * g.sh() - g.ph() + ki, ix = ox * g.sw() - g.pw() + kj;
                        index[(ki * g.kw() + kj) * p + oy * ow + ox] = iy < 0 || iy >= g.height() || ix < 0 || ix >= g.width() ? -1 : iy * g.width() + ix;
                    }
        return index;
    }

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
