package io.predcode.cpu;

import io.predcode.spi.Conv2dGeometry;
import io.predcode.spi.PoolGeometry;

import java.lang.foreign.MemorySegment;

import static io.predcode.cpu.CpuBackend.F;

/** im2col/col2im and pooling on NCHW images, PyTorch semantics. */
final class ConvKernels {
    private ConvKernels() {}

    /** First output column whose input column ox*stride - pad + k is >= 0, and the end of those < width. */
    private static int firstValid(int k, int stride, int pad) { return Math.max(0, (pad - k + stride - 1) / stride); }

    private static int endValid(int k, int stride, int pad, int width, int outWidth) {
        // largest ox with ox*stride - pad + k <= width - 1, plus one
        int last = Math.floorDiv(width - 1 + pad - k, stride);
        return Math.max(0, Math.min(outWidth, last + 1));
    }

    static void im2col(MemorySegment x, Conv2dGeometry g, MemorySegment col, int images) {
        int oh = g.outHeight(), ow = g.outWidth(), h = g.height(), w = g.width(), sw = g.sw();
        long p = (long) oh * ow, colImage = (long) g.patchSize() * p;
        for (int n = 0; n < images; n++) {
            long xBase = n * g.inputSize(), colBase = n * colImage;
            for (int c = 0; c < g.channels(); c++)
                for (int ki = 0; ki < g.kh(); ki++)
                    for (int kj = 0; kj < g.kw(); kj++) {
                        long row = colBase + ((long) (c * g.kh() + ki) * g.kw() + kj) * p;
                        int ox0 = Math.min(ow, firstValid(kj, sw, g.pw())), ox1 = Math.max(ox0, endValid(kj, sw, g.pw(), w, ow));
                        for (int oy = 0; oy < oh; oy++) {
                            int iy = oy * g.sh() - g.ph() + ki;
                            long out = row + (long) oy * ow;
                            if (iy < 0 || iy >= h) { zero(col, out, ow); continue; }
                            long in = xBase + ((long) c * h + iy) * w + (long) ox0 * sw - g.pw() + kj;
                            zero(col, out, ox0);
                            // Rows are short (a few to a few dozen floats): a plain loop beats a bulk copy call.
                            for (int ox = ox0; ox < ox1; ox++) col.setAtIndex(F, out + ox, x.getAtIndex(F, in + (long) (ox - ox0) * sw));
                            zero(col, out + ox1, ow - ox1);
                        }
                    }
        }
    }

    private static void zero(MemorySegment s, long index, int count) {
        for (int i = 0; i < count; i++) s.setAtIndex(F, index + i, 0f);
    }

    static void col2im(MemorySegment col, Conv2dGeometry g, MemorySegment dx, int images) {
        int oh = g.outHeight(), ow = g.outWidth(), h = g.height(), w = g.width(), sw = g.sw();
        long p = (long) oh * ow, colImage = (long) g.patchSize() * p;
        dx.asSlice(0, images * g.inputSize() * Float.BYTES).fill((byte) 0);
        for (int n = 0; n < images; n++) {
            long xBase = n * g.inputSize(), colBase = n * colImage;
            for (int c = 0; c < g.channels(); c++)
                for (int ki = 0; ki < g.kh(); ki++)
                    for (int kj = 0; kj < g.kw(); kj++) {
                        long row = colBase + ((long) (c * g.kh() + ki) * g.kw() + kj) * p;
                        int ox0 = Math.min(ow, firstValid(kj, sw, g.pw())), ox1 = Math.max(ox0, endValid(kj, sw, g.pw(), w, ow));
                        for (int oy = 0; oy < oh; oy++) {
                            int iy = oy * g.sh() - g.ph() + ki;
                            if (iy < 0 || iy >= h) continue;
                            long in = xBase + ((long) c * h + iy) * w + (long) ox0 * sw - g.pw() + kj, out = row + (long) oy * ow + ox0;
                            int len = ox1 - ox0;
                            if (sw == 1) addTo(dx, in, col, out, len);
                            else for (int i = 0; i < len; i++) dx.setAtIndex(F, in + (long) i * sw, dx.getAtIndex(F, in + (long) i * sw) + col.getAtIndex(F, out + i));
                        }
                    }
        }
    }

    /** dst[d + i] += src[s + i] for i < len: a contiguous run the JIT can vectorise. */
    private static void addTo(MemorySegment dst, long d, MemorySegment src, long s, int len) {
        for (int i = 0; i < len; i++) dst.setAtIndex(F, d + i, dst.getAtIndex(F, d + i) + src.getAtIndex(F, s + i));
    }

    /** Index (within the image plane) of the window's maximum: the first one, or the first NaN, as PyTorch picks. */
    private static int argmax(MemorySegment x, long plane, PoolGeometry g, int oy, int ox) {
        int best = -1;
        float bestValue = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < g.kh(); i++)
            for (int j = 0; j < g.kw(); j++) {
                int idx = (oy * g.sh() + i) * g.width() + ox * g.sw() + j;
                float v = x.getAtIndex(F, plane + idx);
                if (best < 0 || v > bestValue || Float.isNaN(v)) {
                    best = idx;
                    bestValue = v;
                    if (Float.isNaN(v)) return best;
                }
            }
        return best;
    }

    static void maxPool(MemorySegment x, PoolGeometry g, MemorySegment y, int images) {
        int oh = g.outHeight(), ow = g.outWidth();
        long planeIn = (long) g.height() * g.width(), planes = (long) images * g.channels(), o = 0;
        for (long pl = 0; pl < planes; pl++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) y.setAtIndex(F, o++, x.getAtIndex(F, pl * planeIn + argmax(x, pl * planeIn, g, oy, ox)));
    }

    static void maxPoolBackward(MemorySegment x, PoolGeometry g, MemorySegment dy, MemorySegment dx, int images) {
        int oh = g.outHeight(), ow = g.outWidth();
        long planeIn = (long) g.height() * g.width(), planes = (long) images * g.channels(), o = 0;
        dx.asSlice(0, planes * planeIn * Float.BYTES).fill((byte) 0);
        for (long pl = 0; pl < planes; pl++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    long at = pl * planeIn + argmax(x, pl * planeIn, g, oy, ox);
                    dx.setAtIndex(F, at, dx.getAtIndex(F, at) + dy.getAtIndex(F, o++));
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
