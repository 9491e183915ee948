package io.predcode.cpu;

import io.predcode.spi.Conv2dGeometry;

import java.lang.foreign.MemorySegment;

import static io.predcode.cpu.CpuBackend.F;

/** The fused conv ops on NCHW images, PyTorch semantics (pooling: {@link Pooling}). */
final class ConvKernels {
    private ConvKernels() {}

    /*
     * im2col and col2im move whole images in bulk between the off-heap tensors and an on-heap tile
     * (one input image and its col matrix): per-element access to native segments costs ~3 ns here,
     * and many small bulk copies cost as much; array access in a tight loop is a fraction of that.
     * Tensors stay off-heap; the tile is a staging buffer the size of one image's col matrix.
     */

    /** Images per part at the least: below that a kernel stays on the calling thread. */
    static final int MIN_IMAGES = 16;

    /** The most parts a conv op splits its images into (Parallel.parts: on a thread-invariant pool from the batch size alone). */
    static final int MAX_PARTS = 32;

    /** Image n of the batch x as its im2col matrix in cols ({@code image} is scratch of one image, or more). */
    private static void gatherImage(MemorySegment x, long n, Conv2dGeometry g, int[] index, float[] image, float[] cols) {
        int in = (int) g.inputSize();
        MemorySegment.copy(x, F, n * in * Float.BYTES, image, 0, in);
        gather(image, g, index, cols);
    }

    /** The adjoint of gatherImage: cols scattered into image n of the batch dx ({@code image} is scratch). */
    private static void scatterImage(float[] cols, Conv2dGeometry g, int[] index, float[] image, MemorySegment dx, long n) {
        int in = (int) g.inputSize();
        scatter(cols, g, index, image);
        MemorySegment.copy(image, 0, dx, F, n * in * Float.BYTES, in);
    }

    /** One image's im2col matrix [c*kh*kw, oh*ow] from the image [c, h, w], both on-heap (arrays of at least those sizes). */
    private static void gather(float[] image, Conv2dGeometry g, int[] index, float[] cols) {
        int p = g.outPixels(), kk = g.kh() * g.kw(), plane = g.height() * g.width();
        if (g.sw() == 1) {
            // Stride 1: each col row is a run of the input row; arraycopy is an intrinsic even for short runs.
            if (g.ph() > 0 || g.pw() > 0) java.util.Arrays.fill(cols, 0, g.patchSize() * p, 0f);
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
        java.util.Arrays.fill(image, 0, (int) g.inputSize(), 0f);
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
            float[] image = Scratch.floats(0, in), cols = Scratch.floats(1, patch * p); // this thread's, stale: overwritten
            MemorySegment t = tile((long) patch * p);
            for (int n = from; n < to; n++) {
                gatherImage(x, n, g, index, image, cols);
                MemorySegment.copy(cols, 0, t, F, 0, patch * p);
                blas.sgemm(false, false, out, p, patch, 1f, w, 0, patch, t, 0, p, 0f, y, (long) n * out * p, p); // at an offset: no slice object per image
            }
        });
    }

    static void conv2dBackwardInput(Parallel par, OpenBlas blas, MemorySegment dy, MemorySegment w, Conv2dGeometry g, MemorySegment dx, int images, int out) {
        int[] index = gatherIndex(g);
        int in = (int) g.inputSize(), p = g.outPixels(), patch = g.patchSize();
        par.forRange(images, MIN_IMAGES, (from, to) -> {
            float[] image = Scratch.floats(0, in), cols = Scratch.floats(1, patch * p); // this thread's, stale: overwritten
            MemorySegment t = tile((long) patch * p);
            for (int n = from; n < to; n++) {
                blas.sgemm(true, false, patch, p, out, 1f, w, 0, patch, dy, (long) n * out * p, p, 0f, t, 0, p);
                MemorySegment.copy(t, F, 0, cols, 0, patch * p);
                scatterImage(cols, g, index, image, dx, n);
            }
        });
    }

    /** dW = sum over images of dy_n [out, P] x col_n^T [P, patch], each thread into its own partial sum. */
    static void conv2dBackwardWeight(Parallel par, OpenBlas blas, MemorySegment x, MemorySegment dy, Conv2dGeometry g, MemorySegment dw, int images, int out) {
        int[] index = gatherIndex(g);
        int in = (int) g.inputSize(), p = g.outPixels(), patch = g.patchSize(), size = out * patch;
        PartialSums partial = PartialSums.over(par, images, MIN_IMAGES, size);
        par.forParts(images, MIN_IMAGES, partial.parts(), (part, from, to) -> {
            float[] image = Scratch.floats(0, in), cols = Scratch.floats(1, patch * p); // this thread's, stale: overwritten
            MemorySegment t = tile((long) patch * p);
            for (int n = from; n < to; n++) {
                gatherImage(x, n, g, index, image, cols);
                MemorySegment.copy(cols, 0, t, F, 0, patch * p);
                blas.sgemm(false, true, out, patch, p, 1f, dy, (long) n * out * p, p, t, 0, p, n == from ? 0f : 1f, partial.all(), partial.offset(part), patch);
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
}
