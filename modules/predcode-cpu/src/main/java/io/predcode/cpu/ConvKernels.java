package io.predcode.cpu;

import io.predcode.spi.Conv2dGeometry;
import io.predcode.spi.PoolGeometry;

import java.lang.foreign.MemorySegment;

import static io.predcode.cpu.CpuBackend.F;

/** im2col/col2im and pooling on NCHW images, PyTorch semantics. */
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

    static void im2col(Parallel par, MemorySegment x, Conv2dGeometry g, MemorySegment col, int images) {
        int[] index = gatherIndex(g);
        par.forRange(images, MIN_IMAGES, (from, to) -> im2col(x, g, col, index, from, to));
    }

    private static void im2col(MemorySegment x, Conv2dGeometry g, MemorySegment col, int[] index, int from, int to) {
        int p = g.outPixels(), kk = g.kh() * g.kw(), plane = g.height() * g.width(), in = (int) g.inputSize(), out = g.patchSize() * p;
        float[] image = new float[in], cols = new float[out];
        for (int n = from; n < to; n++) {
            MemorySegment.copy(x, F, (long) n * in * Float.BYTES, image, 0, in);
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
            } else {
                for (int c = 0; c < g.channels(); c++) {
                    int src = c * plane, dst = c * kk * p;
                    for (int i = 0; i < kk * p; i++) {
                        int at = index[i];
                        cols[dst + i] = at < 0 ? 0f : image[src + at];
                    }
                }
            }
            MemorySegment.copy(cols, 0, col, F, (long) n * out * Float.BYTES, out);
        }
    }

    static void col2im(Parallel par, MemorySegment col, Conv2dGeometry g, MemorySegment dx, int images) {
        int[] index = gatherIndex(g);
        par.forRange(images, MIN_IMAGES, (from, to) -> col2im(col, g, dx, index, from, to));
    }

    private static void col2im(MemorySegment col, Conv2dGeometry g, MemorySegment dx, int[] index, int from, int to) {
        int p = g.outPixels(), kk = g.kh() * g.kw(), plane = g.height() * g.width(), in = (int) g.inputSize(), out = g.patchSize() * p;
        float[] image = new float[in], cols = new float[out];
        for (int n = from; n < to; n++) {
            MemorySegment.copy(col, F, (long) n * out * Float.BYTES, cols, 0, out);
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
            } else {
                for (int c = 0; c < g.channels(); c++) {
                    int dst = c * plane, src = c * kk * p;
                    for (int i = 0; i < kk * p; i++) {
                        int at = index[i];
                        if (at >= 0) image[dst + at] += cols[src + i];
                    }
                }
            }
            MemorySegment.copy(image, 0, dx, F, (long) n * in * Float.BYTES, in);
        }
    }

    /**
     * For kernel offset k = ki*kw + kj and output pixel i: the input pixel (within one channel plane)
     * that col row k reads at i, or -1 where it falls in the zero padding. The same for every channel and image.
     */
    private static int[] gatherIndex(Conv2dGeometry g) {
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

    /**
     * Index in the plane of the window's maximum, chosen as PyTorch's CPU kernel does: scanning in
     * order, move to any value greater than the best so far or to any NaN (so ties keep the first
     * maximum, and with NaNs the last NaN wins).
     */
    private static int argmax(float[] plane, PoolGeometry g, int oy, int ox) {
        if (g.kh() == 2 && g.kw() == 2) return argmax2x2(plane, (oy * g.sh()) * g.width() + ox * g.sw(), g.width());
        int best = (oy * g.sh()) * g.width() + ox * g.sw();
        float bestValue = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < g.kh(); i++)
            for (int j = 0; j < g.kw(); j++) {
                int idx = (oy * g.sh() + i) * g.width() + ox * g.sw() + j;
                float v = plane[idx];
                if (v > bestValue || v != v) { best = idx; bestValue = v; }
            }
        return best;
    }

    /** The same rule unrolled for the common 2x2 window starting at {@code at} (scan order a, b, c, d). */
    private static int argmax2x2(float[] plane, int at, int width) {
        int best = at;
        float v = plane[at], w = plane[at + 1];
        if (w > v || w != w) { best = at + 1; v = w; }
        w = plane[at + width];
        if (w > v || w != w) { best = at + width; v = w; }
        w = plane[at + width + 1];
        if (w > v || w != w) best = at + width + 1;
        return best;
    }

    /* Pooling works a plane at a time on on-heap tiles, like im2col. */

    static void maxPool(Parallel par, MemorySegment x, PoolGeometry g, MemorySegment y, int images) {
        par.forRange(images * g.channels(), MIN_IMAGES * g.channels(), (from, to) -> maxPool(x, g, y, from, to));
    }

    private static void maxPool(MemorySegment x, PoolGeometry g, MemorySegment y, int from, int to) {
        int oh = g.outHeight(), ow = g.outWidth(), planeIn = g.height() * g.width(), planeOut = oh * ow;
        float[] plane = new float[planeIn], out = new float[planeOut];
        for (long pl = from; pl < to; pl++) {
            MemorySegment.copy(x, F, pl * planeIn * Float.BYTES, plane, 0, planeIn);
            for (int oy = 0, o = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) out[o++] = plane[argmax(plane, g, oy, ox)];
            MemorySegment.copy(out, 0, y, F, pl * planeOut * Float.BYTES, planeOut);
        }
    }

    static void maxPoolBackward(Parallel par, MemorySegment x, PoolGeometry g, MemorySegment dy, MemorySegment dx, int images) {
        par.forRange(images * g.channels(), MIN_IMAGES * g.channels(), (from, to) -> maxPoolBackward(x, g, dy, dx, from, to));
    }

    private static void maxPoolBackward(MemorySegment x, PoolGeometry g, MemorySegment dy, MemorySegment dx, int from, int to) {
        int oh = g.outHeight(), ow = g.outWidth(), planeIn = g.height() * g.width(), planeOut = oh * ow;
        float[] plane = new float[planeIn], grad = new float[planeOut], result = new float[planeIn];
        for (long pl = from; pl < to; pl++) {
            MemorySegment.copy(x, F, pl * planeIn * Float.BYTES, plane, 0, planeIn);
            MemorySegment.copy(dy, F, pl * planeOut * Float.BYTES, grad, 0, planeOut);
            java.util.Arrays.fill(result, 0f);
            for (int oy = 0, o = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) result[argmax(plane, g, oy, ox)] += grad[o++];
            MemorySegment.copy(result, 0, dx, F, pl * planeIn * Float.BYTES, planeIn);
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
