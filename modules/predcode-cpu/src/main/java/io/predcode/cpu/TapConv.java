package io.predcode.cpu;

import io.predcode.spi.Conv2dGeometry;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static io.predcode.cpu.CpuBackend.F;

/**
 * Stride-1 convolutions as one GEMM per kernel tap, with no im2col matrix.
 *
 * <p>Lay a group of G images out channel-major, each channel's G zero-padded planes (Hp x Wp = P
 * floats, the padding shared between neighbours: see {@link Layout#of}) end to end in one row of
 * about G P floats. Output pixel (oy, ox) of image g sits at
 * j = g P + oy Wp + ox, and tap (ki, kj) reads input position j + ki Wp + kj of every channel row. So
 * for each tap, y[o][j] += sum_c w[o][c][ki][kj] x[c][j + ki Wp + kj] over all j at once: a GEMM
 * [out x C] x [C x span] whose B operand is the input rows shifted by the tap's offset (leading
 * dimension: the row length). Positions j that are not output pixels (the columns and rows of each
 * plane past OW and OH) are computed and dropped: (P - OH OW) / P of the work, 14-28% for Torch2PC's
 * example network. The input gradient is the same picture transposed (dy spread to full width with zeros
 * where no output pixel is, accumulated into shifted rows of dx), and the weight gradient is one
 * GEMM per tap contracting over j.
 *
 * <p>With few channels a tap's GEMM is too thin (K = channels), so the forward copies the taps into a
 * full-width im2col instead and runs one GEMM, or, from 12 channels x kernel columns, copies only the
 * kernel's columns and runs one GEMM per kernel row (see {@link #FOLD_MIN_K}).
 *
 * <p>Against per-image im2col this drops the kh kw-fold copy of the input and replaces thousands of
 * tiny GEMMs by a few long ones. Example-cnn's second conv (10 to 5 channels, 13x13, batch 300):
 * forward 3.0 to 0.7-1.0 ms, input gradient 4.2 to 0.8-1.1 ms, weight gradient 3.0 to 0.9-1.4 ms
 * (2 threads; see bench --ops).
 */
final class TapConv {
    private TapConv() {}

    static boolean suits(Conv2dGeometry g) { return g.sh() == 1 && g.sw() == 1; }

    /**
     * Floats of input and output rows a group aims for: 64K floats = 256 KB, well inside L2. Larger
     * groups measured slower (4x larger: the im2col forward 7x slower): the tile leaves L2, and the
     * GEMMs grow big enough for OpenBLAS to start its own threads inside ours.
     */
    private static final int GROUP_FLOATS = 1 << 16;

    /**
     * Below this many input channels a tap's GEMM (K = channels) is too thin: its cost is passes over
     * the output. Forward and weight gradient then copy the taps into a full-width im2col (one long
     * copy per row) and run one GEMM with K = channels kh kw. Example-cnn's first conv (1 channel):
     * 1.3 ms instead of 2.1 ms per batch of 300.
     */
    private static final int COL_CHANNELS = 16;

    /**
     * From this many channels x kernel columns, the forward folds only the kernel's columns into the
     * copy (rows (c, kj), kw times the input instead of kh kw times) and runs one GEMM per kernel row,
     * whose B operand is those rows shifted by ki Wp. Below it the GEMMs' K = c kw is too thin. Measured
     * at batch 300: the 5-channel 5x5 conv of a condensed STRICT sweep 979 -> 768 us, example-cnn's
     * second conv 773 -> 503 us; 1-3 channels at 3x3 were 4-25% slower folded.
     */
    private static final int FOLD_MIN_K = 12;

    /** The full-width layout of one geometry. */
    private record Layout(Conv2dGeometry g, int out, int wp, int plane, boolean col, boolean fold, int inputRows) {
        /**
         * Neighbouring rows and images share their zero padding: a row is W pixels then pw zeros (the
         * next row's left padding is this row's right padding), an image is ph zero rows then H rows.
         * Against padding every plane on all sides this drops (2p)/(H + 2p) of the work per direction,
         * 25% for a 5x5 kernel with padding 2 on 11x11 planes.
         */
        static Layout of(Conv2dGeometry g, int out) {
            // Padding of a whole kernel or more would make the output rows (planes) longer than the
            // input's: those take the output's length, the extra positions zeros.
            int wp = Math.max(g.width() + g.pw(), g.outWidth()), plane = wp * Math.max(g.height() + g.ph(), g.outHeight()), patch = g.patchSize();
            boolean col = g.channels() < COL_CHANNELS, fold = col && g.kh() > 1 && g.channels() * g.kw() >= FOLD_MIN_K;
            int inputRows = col ? patch : g.channels();
            return new Layout(g, out, wp, plane, col, fold, inputRows);
        }

        /** Images per group when a group's tile holds {@code rows} input rows and the output rows. */
        int group(int rows) { return Math.max(1, GROUP_FLOATS / ((rows + out) * plane)); }

        int taps() { return g.kh() * g.kw(); }

        int offset(int tap) { return tap / g.kw() * wp + tap % g.kw(); }

        /** Positions per output row: up to the last output pixel (image images - 1, pixel (OH - 1, OW - 1)). */
        int span(int images) { return (images - 1) * plane + (g.outHeight() - 1) * wp + g.outWidth(); }

        /** Floats per channel row in the input layout: the images, then the last image's bottom and right padding. */
        int inputRow(int images) { return images * plane + g.ph() * wp + g.pw(); }

        boolean padded() { return g.ph() > 0 || g.pw() > 0; }

        /** Floats per input row of a group's tile: a whole channel row, a tap's span, or a kernel column's span plus the kernel rows' shifts. */
        int rowLength(int images, boolean folded) {
            return folded ? span(images) + (g.kh() - 1) * wp : col ? span(images) : inputRow(images);
        }
    }

    /** Per-thread working memory, grown on demand and reused across calls. */
    private static final class Work {
        private MemorySegment nativeTile = MemorySegment.NULL, weights = MemorySegment.NULL;
        private float[] a = new float[0], b = new float[0];

        MemorySegment tile(long floats) {
            if (nativeTile.byteSize() < floats * Float.BYTES) nativeTile = Arena.ofAuto().allocate(floats * Float.BYTES, 64);
            return nativeTile;
        }

        MemorySegment weights(long floats) {
            if (weights.byteSize() < floats * Float.BYTES) weights = Arena.ofAuto().allocate(floats * Float.BYTES, 64);
            return weights;
        }

        float[] a(int floats) { return a.length >= floats ? a : (a = new float[floats]); }

        float[] b(int floats) { return b.length >= floats ? b : (b = new float[floats]); }
    }

    private static final ThreadLocal<Work> WORK = ThreadLocal.withInitial(Work::new);

    private static MemorySegment floats(MemorySegment s, long offset) { return s.asSlice(offset * Float.BYTES); }

    // ------------------------------------------------------------------ the three ops

    /** y = conv(x, w) (+ bias per output channel when {@code bias} is not null: the GEMMs start from it). */
    static void forward(Parallel par, OpenBlas blas, MemorySegment x, MemorySegment w, MemorySegment bias, Conv2dGeometry g, MemorySegment y, int images, int out) {
        Layout l = Layout.of(g, out);
        int c = g.channels(), rows = l.fold ? c * g.kw() : l.inputRows;
        MemorySegment wt = l.fold ? foldWeights(w, l) : l.col ? w : tapWeights(w, l);
        float[] b = bias == null ? null : bias.asSlice(0, (long) out * Float.BYTES).toArray(F);
        float beta0 = b == null ? 0f : 1f;
        par.forParts(images, ConvKernels.MIN_IMAGES, ConvKernels.MAX_PARTS, (part, from, to) -> { // groups from each part's start: Parallel.parts
            Work work = WORK.get();
            int group = l.group(rows);
            for (int n0 = from; n0 < to; n0 += group) {
                int count = Math.min(group, to - n0), r = count * l.plane, span = l.span(count), len = l.rowLength(count, l.fold);
                MemorySegment tile = work.tile((long) rows * len + (long) out * r), xs = tile, ys = floats(tile, (long) rows * len);
                packImages(work, x, l, c, n0, count, xs, l.fold);
                if (b != null) fillRows(work, b, ys, r, span);
                if (l.fold) for (int ki = 0; ki < g.kh(); ki++)
                    blas.sgemm(false, false, out, span, rows, 1f, floats(wt, (long) ki * out * rows), rows, floats(xs, (long) ki * l.wp), len, ki == 0 ? beta0 : 1f, ys, r);
                else if (l.col) blas.sgemm(false, false, out, span, rows, 1f, wt, rows, xs, span, beta0, ys, r);
                else for (int t = 0; t < l.taps(); t++)
                    blas.sgemm(false, false, out, span, c, 1f, floats(wt, (long) t * out * c), c, floats(xs, l.offset(t)), len, t == 0 ? beta0 : 1f, ys, r);
                unpackOutput(work, ys, l, n0, count, y);
            }
        });
    }

    static void backwardInput(Parallel par, OpenBlas blas, MemorySegment dy, MemorySegment w, Conv2dGeometry g, MemorySegment dx, int images, int out) {
        Layout l = Layout.of(g, out);
        int c = g.channels();
        MemorySegment wt = tapWeights(w, l);
        par.forParts(images, ConvKernels.MIN_IMAGES, ConvKernels.MAX_PARTS, (part, from, to) -> {
            Work work = WORK.get();
            int group = l.group(c); // the input gradient has c rows in tap form
            for (int n0 = from; n0 < to; n0 += group) {
                int count = Math.min(group, to - n0), r = count * l.plane, span = l.span(count), rx = l.inputRow(count);
                MemorySegment tile = work.tile((long) c * rx + (long) out * r), dxs = tile, dys = floats(tile, (long) c * rx);
                packOutputGradient(work, dy, l, n0, count, dys);
                dxs.asSlice(0, (long) c * rx * Float.BYTES).fill((byte) 0);
                for (int t = 0; t < l.taps(); t++)
                    blas.sgemm(true, false, c, span, out, 1f, floats(wt, (long) t * out * c), c, dys, r, 1f, floats(dxs, l.offset(t)), rx);
                unpackImages(work, dxs, l, c, n0, count, dx);
            }
        });
    }

    /**
     * dW[o][c][ki][kj] = sum over images and pixels of dy x. Each thread sums its images into its own
     * partial [tap][out][c]; partials are added in part order (see PartialSums).
     */
    static void backwardWeight(Parallel par, OpenBlas blas, MemorySegment x, MemorySegment dy, Conv2dGeometry g, MemorySegment dw, int images, int out) {
        Layout l = Layout.of(g, out);
        int c = g.channels(), size = l.taps() * out * c;
        PartialSums partials = PartialSums.over(par, images, ConvKernels.MIN_IMAGES, size);
        par.forParts(images, ConvKernels.MIN_IMAGES, partials.parts(), (part, from, to) -> {
            Work work = WORK.get();
            MemorySegment sums = partials.part(part);
            int group = l.group(l.inputRows);
            for (int n0 = from; n0 < to; n0 += group) {
                int count = Math.min(group, to - n0), r = count * l.plane, span = l.span(count), len = l.rowLength(count, false);
                MemorySegment tile = work.tile((long) l.inputRows * len + (long) out * r), xs = tile, dys = floats(tile, (long) l.inputRows * len);
                packImages(work, x, l, c, n0, count, xs, false);
                packOutputGradient(work, dy, l, n0, count, dys);
                float beta = n0 == from ? 0f : 1f;
                if (l.col) blas.sgemm(false, true, out, l.inputRows, span, 1f, dys, r, xs, span, beta, sums, l.inputRows);
                else for (int t = 0; t < l.taps(); t++)
                    blas.sgemm(false, true, out, c, span, 1f, dys, r, floats(xs, l.offset(t)), len, beta, floats(sums, (long) t * out * c), c);
            }
        });
        float[] total = partials.sum();
        if (l.col) { // already PyTorch's [out][c][kh][kw]
            MemorySegment.copy(total, 0, dw, F, 0, size);
            return;
        }
        // [tap][out][c] -> PyTorch's [out][c][kh][kw]
        float[] result = Scratch.floats(1, size); // free again once sum() has returned
        for (int t = 0; t < l.taps(); t++)
            for (int o = 0; o < out; o++)
                for (int ch = 0; ch < c; ch++) result[(o * c + ch) * l.taps() + t] = total[(t * out + o) * c + ch];
        MemorySegment.copy(result, 0, dw, F, 0, size);
    }

    /** Row o of the output tile (its first span floats) set to bias[o]. */
    private static void fillRows(Work work, float[] bias, MemorySegment rows, int r, int span) {
        float[] row = work.a(span);
        for (int o = 0; o < bias.length; o++) {
            java.util.Arrays.fill(row, 0, span, bias[o]);
            MemorySegment.copy(row, 0, rows, F, (long) o * r * Float.BYTES, span);
        }
    }

    /**
     * The first {@code size} weights in this thread's {@link Scratch} array 0, for regrouping into its array 1: every conv
     * call regroups, and fresh arrays were two copies of the weights' size each call (VGG-5's 512-channel layers: 9 MB
     * each, 60 MB of heap a backprop step at batch 16).
     */
    private static float[] weightsOnHeap(MemorySegment w, int size) {
        float[] src = Scratch.floats(0, size);
        MemorySegment.copy(w, F, 0, src, 0, size);
        return src;
    }

    /** PyTorch's [out][c][kh][kw] weights regrouped per kernel row as [ki][out][c][kj], on the calling thread. */
    private static MemorySegment foldWeights(MemorySegment w, Layout l) {
        int out = l.out, c = l.g.channels(), kh = l.g.kh(), kw = l.g.kw(), size = out * c * kh * kw;
        float[] src = weightsOnHeap(w, size), dst = Scratch.floats(1, size);
        for (int o = 0; o < out; o++)
            for (int ch = 0; ch < c; ch++)
                for (int ki = 0; ki < kh; ki++)
                    for (int kj = 0; kj < kw; kj++) dst[((ki * out + o) * c + ch) * kw + kj] = src[((o * c + ch) * kh + ki) * kw + kj];
        MemorySegment wt = WORK.get().weights(size);
        MemorySegment.copy(dst, 0, wt, F, 0, size);
        return wt;
    }

    /** PyTorch's [out][c][kh][kw] weights regrouped per tap as [tap][out][c], on the calling thread. */
    private static MemorySegment tapWeights(MemorySegment w, Layout l) {
        int out = l.out, c = l.g.channels(), taps = l.taps(), size = out * c * taps;
        float[] src = weightsOnHeap(w, size), dst = Scratch.floats(1, size);
        for (int o = 0; o < out; o++)
            for (int ch = 0; ch < c; ch++)
                for (int t = 0; t < taps; t++) dst[(t * out + o) * c + ch] = src[(o * c + ch) * taps + t];
        MemorySegment wt = WORK.get().weights(size);
        MemorySegment.copy(dst, 0, wt, F, 0, size);
        return wt;
    }

    // ------------------------------------------------------------------ between NCHW and the full-width rows
    // Each goes through heap arrays: one bulk copy per group each way, short row copies on the heap.

    /**
     * Images [count][c][h][w] from NCHW memory into the tile's input rows: the channel rows of zero-padded
     * planes (tap mode), or rows (c, tap) / (c, kj) of them shifted by the tap's offset / by kj (im2col / folded).
     */
    private static void packImages(Work work, MemorySegment src, Layout l, int c, int n0, int count, MemorySegment rows, boolean folded) {
        int r = l.inputRow(count);
        float[] full = packPlanes(work, src, l, c, n0, count);
        if (!l.col) {
            MemorySegment.copy(full, 0, rows, F, 0, c * r);
            return;
        }
        // One long copy per row: row (c, s) is channel row c shifted by s's offset.
        int len = l.rowLength(count, folded), shifts = folded ? l.g.kw() : l.taps();
        for (int ch = 0; ch < c; ch++)
            for (int s = 0; s < shifts; s++)
                MemorySegment.copy(full, ch * r + (folded ? s : l.offset(s)), rows, F, (long) (ch * shifts + s) * len * Float.BYTES, len);
    }

    /** Images [count][c][h][w] from NCHW memory into heap channel rows of zero-padded planes. */
    private static float[] packPlanes(Work work, MemorySegment src, Layout l, int c, int n0, int count) {
        Conv2dGeometry g = l.g;
        int h = g.height(), w = g.width(), r = l.inputRow(count), in = c * h * w;
        float[] images = work.a(count * in), full = work.b(c * r);
        MemorySegment.copy(src, F, (long) n0 * in * Float.BYTES, images, 0, count * in);
        if (l.padded()) java.util.Arrays.fill(full, 0, c * r, 0f);
        for (int i = 0; i < count; i++)
            for (int ch = 0; ch < c; ch++) {
                int from = (i * c + ch) * h * w, to = ch * r + i * l.plane;
                if (!l.padded()) System.arraycopy(images, from, full, to, h * w);
                else for (int iy = 0; iy < h; iy++) System.arraycopy(images, from + iy * w, full, to + (iy + g.ph()) * l.wp + g.pw(), w);
            }
        return full;
    }

    /** The adjoint of packImages: the planes' interiors back to NCHW (the padding is dropped). */
    private static void unpackImages(Work work, MemorySegment rows, Layout l, int c, int n0, int count, MemorySegment dst) {
        Conv2dGeometry g = l.g;
        int h = g.height(), w = g.width(), r = l.inputRow(count), in = c * h * w;
        float[] full = work.b(c * r), images = work.a(count * in);
        MemorySegment.copy(rows, F, 0, full, 0, c * r);
        for (int i = 0; i < count; i++)
            for (int ch = 0; ch < c; ch++) {
                int to = (i * c + ch) * h * w, from = ch * r + i * l.plane;
                if (!l.padded()) System.arraycopy(full, from, images, to, h * w);
                else for (int iy = 0; iy < h; iy++) System.arraycopy(full, from + (iy + g.ph()) * l.wp + g.pw(), images, to + iy * w, w);
            }
        MemorySegment.copy(images, 0, dst, F, (long) n0 * in * Float.BYTES, count * in);
    }

    /** Output rows -> NCHW: keep the first OW of every Wp positions in the first OH rows of each image. */
    private static void unpackOutput(Work work, MemorySegment rows, Layout l, int n0, int count, MemorySegment y) {
        int oh = l.g.outHeight(), ow = l.g.outWidth(), out = l.out, r = count * l.plane, span = l.span(count), per = out * oh * ow;
        float[] full = work.b(out * r), images = work.a(count * per);
        for (int o = 0; o < out; o++) MemorySegment.copy(rows, F, (long) o * r * Float.BYTES, full, o * r, span);
        for (int i = 0; i < count; i++)
            for (int o = 0; o < out; o++)
                for (int oy = 0; oy < oh; oy++) System.arraycopy(full, o * r + i * l.plane + oy * l.wp, images, ((i * out + o) * oh + oy) * ow, ow);
        MemorySegment.copy(images, 0, y, F, (long) n0 * per * Float.BYTES, count * per);
    }

    /** NCHW output gradients -> full-width rows, zero wherever no output pixel is (so they add nothing). */
    private static void packOutputGradient(Work work, MemorySegment dy, Layout l, int n0, int count, MemorySegment rows) {
        int oh = l.g.outHeight(), ow = l.g.outWidth(), out = l.out, r = count * l.plane, per = out * oh * ow;
        float[] images = work.a(count * per), full = work.b(out * r);
        MemorySegment.copy(dy, F, (long) n0 * per * Float.BYTES, images, 0, count * per);
        java.util.Arrays.fill(full, 0, out * r, 0f);
        for (int i = 0; i < count; i++)
            for (int o = 0; o < out; o++)
                for (int oy = 0; oy < oh; oy++) System.arraycopy(images, ((i * out + o) * oh + oy) * ow, full, o * r + i * l.plane + oy * l.wp, ow);
        MemorySegment.copy(full, 0, rows, F, 0, out * r);
    }
}
