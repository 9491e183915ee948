package io.predcode.cpu;

import io.predcode.spi.Conv2dGeometry;
import io.predcode.spi.PoolGeometry;

import java.lang.foreign.MemorySegment;

import static io.predcode.cpu.CpuBackend.F;

/** im2col/col2im and pooling on NCHW images, PyTorch semantics. */
final class ConvKernels {
    private ConvKernels() {}

    static void im2col(MemorySegment x, Conv2dGeometry g, MemorySegment col, int images) {
        int oh = g.outHeight(), ow = g.outWidth(), h = g.height(), w = g.width();
        long p = (long) oh * ow, colImage = (long) g.patchSize() * p;
        for (int n = 0; n < images; n++) {
            long xBase = n * g.inputSize(), colBase = n * colImage;
            for (int c = 0; c < g.channels(); c++)
                for (int ki = 0; ki < g.kh(); ki++)
                    for (int kj = 0; kj < g.kw(); kj++) {
                        long row = colBase + ((long) (c * g.kh() + ki) * g.kw() + kj) * p;
                        for (int oy = 0; oy < oh; oy++) {
                            int iy = oy * g.sh() - g.ph() + ki;
                            long out = row + (long) oy * ow;
                            if (iy < 0 || iy >= h) { for (int ox = 0; ox < ow; ox++) col.setAtIndex(F, out + ox, 0f); continue; }
                            long in = xBase + ((long) c * h + iy) * w;
                            for (int ox = 0; ox < ow; ox++) {
                                int ix = ox * g.sw() - g.pw() + kj;
                                col.setAtIndex(F, out + ox, ix < 0 || ix >= w ? 0f : x.getAtIndex(F, in + ix));
                            }
                        }
                    }
        }
    }

    static void col2im(MemorySegment col, Conv2dGeometry g, MemorySegment dx, int images) {
        int oh = g.outHeight(), ow = g.outWidth(), h = g.height(), w = g.width();
        long p = (long) oh * ow, colImage = (long) g.patchSize() * p;
        dx.asSlice(0, images * g.inputSize() * Float.BYTES).fill((byte) 0);
        for (int n = 0; n < images; n++) {
            long xBase = n * g.inputSize(), colBase = n * colImage;
            for (int c = 0; c < g.channels(); c++)
                for (int ki = 0; ki < g.kh(); ki++)
                    for (int kj = 0; kj < g.kw(); kj++) {
                        long row = colBase + ((long) (c * g.kh() + ki) * g.kw() + kj) * p;
                        for (int oy = 0; oy < oh; oy++) {
                            int iy = oy * g.sh() - g.ph() + ki;
                            if (iy < 0 || iy >= h) continue;
                            long in = xBase + ((long) c * h + iy) * w, out = row + (long) oy * ow;
                            for (int ox = 0; ox < ow; ox++) {
                                int ix = ox * g.sw() - g.pw() + kj;
                                if (ix >= 0 && ix < w) dx.setAtIndex(F, in + ix, dx.getAtIndex(F, in + ix) + col.getAtIndex(F, out + ox));
                            }
                        }
                    }
        }
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
