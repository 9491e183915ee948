package io.predcode.cpu;

import io.predcode.cpu.ElementwiseCall.Kernel;
import io.predcode.spi.Activation;
import io.predcode.spi.Backend;
import io.predcode.spi.BackendOptions;
import io.predcode.spi.BeliefStep;
import io.predcode.spi.Conv2dGeometry;
import io.predcode.spi.PoolGeometry;
import io.predcode.spi.Random;
import io.predcode.spi.Shape;
import io.predcode.spi.Tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The CPU backend, which dispatches: GEMM goes to OpenBLAS's cblas_sgemm through FFM on the tensors'
 * own off-heap segments (no copies); thin convolutions, 2x2 max pooling, softmax cross-entropy, Adam
 * and the sweep's elementwise ops to predcode's native kernels ({@link NativeKernels}) when they are
 * built; the same elementwise ops otherwise to {@link JavaKernels}, which has their signatures;
 * convolutions to {@link TapConv} and {@link ConvKernels}, pooling to {@link Pooling}. Reductions
 * accumulate in double.
 *
 * <p>Threads are the backend's own: OpenBLAS runs single-threaded, and GEMMs, like the other kernels,
 * split across this backend's pool, so backends opened with different thread counts do not change
 * each other's.
 */
public final class CpuBackend extends Backend {
    /** Unaligned access: tensors are 64-byte aligned anyway, and the aligned layout re-checks alignment on every access. */
    static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;

    private final OpenBlas blas;

    /**
     * Elements per thread below which an elementwise kernel stays on the calling thread. Small: a
     * part of 4096 elements is about a microsecond of work, and the hand-off to a spinning worker
     * costs less; more to the point, an op that follows a split GEMM then reads each half on the core
     * that wrote it. At 2^16, a batch of 128 x 128 activations stayed on one core, which fetched half
     * of them from the other's cache (2 threads, side by side: PCX's MLP 0.93 -> 0.83 ms a backprop
     * step and 1.51 -> 1.43 ms a PC step, example-cnn's PC at batch 128 11.7 -> 10.0 ms; 2^10 measured
     * the same as 2^12; bench/results/cpu-min-elements-2026-12-01.md).
     */
    static final int MIN_ELEMENTS = 1 << 12;

    /** The same thread count as OpenBLAS, for the Java kernels that split by image. */
    private final Parallel parallel;

    /** predcode's native kernels for the ops they cover, or null: the Java kernels then run everything. */
    private final NativeKernels kernels;

    CpuBackend(OpenBlas blas, BackendOptions options, NativeKernels kernels) {
        this.blas = blas;
        this.kernels = kernels;
        int threads = options.threads() == 0 ? Runtime.getRuntime().availableProcessors() : options.threads();
        this.parallel = new Parallel(threads, options.threadInvariant());
    }

    @Override protected void doClose() { parallel.close(); }

    /**
     * Branches run at once on the backend's threads, each op of a branch alone on its branch's thread
     * (in order, still alone, while profiling), where they are small and balance: the largest at most
     * {@link #BRANCH_WORK} and 5/4 of an even share. Then no thread waits long for the one with the
     * largest branch, and each op runs at a single thread's full speed, where splitting a small GEMM in
     * two makes each half about 70% as efficient (bench --ops: 128^3 62 us whole, 45 us split). Larger
     * or unbalanced branches run in order, each op split as usual (bench/branches/BranchesAB.java).
     * {@code -Dpredcode.cpu.branches=serial} runs them in order and {@code =reverse} in reverse order,
     * always, with ops split as usual: the two agree bit for bit exactly when no branch reads what
     * another writes, a check for engine code; serial also times a step without branches.
     */
    @Override protected void doBranches(double[] work, Runnable[] branches) {
        switch (branchOrder) {
            case TOGETHER -> {
                if (smallAndBalanced(work)) parallel.branches(branches, !profiling());
                else for (Runnable b : branches) b.run();
            }
            case SERIAL -> { for (Runnable b : branches) b.run(); }
            case REVERSE -> { for (int i = branches.length - 1; i >= 0; i--) branches[i].run(); }
        }
    }

    /**
     * The most work in one branch for branches to run at once: 2^24 multiply-adds (a 256^3 GEMM), so that
     * PC's learning step on PCX's MLP at batch 128 (layer 1's weight gradient, 12.8M, beside the other
     * blocks' 8.7M) runs at once: PC's step 1.15-1.25x and iPC's 1.25-1.30x faster than with every op split
     * on 2 threads, where a cap of 2^23 gave 1.06-1.08x and 1.01x (bench/results/branches-2026-12-01.md).
     * At batch 300 the example CNN's and the 784-512-256-10 MLP's GEMMs are larger than this, and split.
     */
    static final double BRANCH_WORK = 1 << 24;

    /**
     * Branches balance when the largest is at most 5/4 of an even share of the threads. At 4/3, the
     * 784-512-256-10 MLP's belief updates at batch 300 (153K and 77K elements, 2/3 of the work in one)
     * ran at once, and PC's step at 0.93-0.94x the speed of splitting each: elementwise ops of that size
     * split well.
     */
    private static final double BALANCE = 1.25;

    private boolean smallAndBalanced(double[] work) {
        double total = 0, max = 0;
        for (double w : work) {
            total += w;
            max = Math.max(max, w);
        }
        return smallAndBalanced(max, total, work.length);
    }

    private boolean smallAndBalanced(double max, double total, int branches) {
        return max <= BRANCH_WORK && max <= BALANCE * total / Math.min(parallel.threads(), branches);
    }

    /** With two threads or more; always under the serial and reverse orders, which check the branches an engine makes. */
    @Override public boolean runsBranchesAtOnce() { return parallel.threads() > 1 || branchOrder != BranchOrder.TOGETHER; }

    private enum BranchOrder { TOGETHER, SERIAL, REVERSE }

    private final BranchOrder branchOrder = switch (System.getProperty("predcode.cpu.branches", "together")) {
        case "serial" -> BranchOrder.SERIAL;
        case "reverse" -> BranchOrder.REVERSE;
        case "together" -> BranchOrder.TOGETHER;
        default -> throw new IllegalArgumentException("predcode.cpu.branches: expected together, serial or reverse, got '"
                + System.getProperty("predcode.cpu.branches") + "'");
    };

    /**
     * {@code -Dpredcode.cpu.shortChains=true}: take the forms of work a GPU prefers ({@link #prefersShortChains}), to
     * check them on the CPU or to compute what a GPU computes, at some cost in speed. Read when the backend opens.
     */
    private final boolean shortChains = switch (System.getProperty("predcode.cpu.shortChains", "false")) {
        case "true" -> true;
        case "false" -> false;
        default -> throw new IllegalArgumentException("predcode.cpu.shortChains: expected true or false, got '"
                + System.getProperty("predcode.cpu.shortChains") + "'");
    };

    @Override public boolean prefersShortChains() { return shortChains; }

    @Override public String name() { return "cpu"; }

    /** MemAvailable from /proc/meminfo (off-heap tensors live outside the Java heap); unknown elsewhere. */
    @Override public long memoryAvailable() {
        try {
            for (String line : java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/meminfo")))
                if (line.startsWith("MemAvailable:")) return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
        } catch (java.io.IOException | RuntimeException e) {
            // not Linux, or an unreadable /proc: say unknown
        }
        return Long.MAX_VALUE;
    }

    /** Ops keep their scratch per thread (tiles, partial sums, the native kernels' buffers) and split work on this backend's own pool. */
    @Override public boolean isThreadSafe() { return true; }

    @Override public String description() {
        return blas.config().trim() + " (" + blas.library.getFileName() + "), " + parallel.threads() + (parallel.threads() == 1 ? " thread" : " threads") + (parallel.threadInvariant() ? ", thread-invariant; " : "; ")
                + (kernels != null ? "native kernels (" + kernels.isa() + ")" : "Java kernels (native: " + NativeKernels.unavailable() + ")")
                + OpenBlas.coreTypeWarning(System.getenv("OPENBLAS_CORETYPE"), blas.coreName(), kernels != null && kernels.width == 16);
    }

    /**
     * Threads this backend's ops (GEMMs included) run on.
     *
     * @return the thread count the backend was opened with (all cores for 0)
     */
    public int threads() { return parallel.threads(); }

    static MemorySegment seg(Tensor t) { return ((CpuTensor) t).segment; }

    /** Element count as an int: loops with int counters are the ones C2 unrolls and vectorises. */
    static int elements(Tensor t) {
        long n = t.size();
        if (n > Integer.MAX_VALUE) throw new IllegalArgumentException("cpu backend: tensor " + t.shape() + " has more than 2^31 - 1 elements");
        return (int) n;
    }

    private static int elements(long n) {
        if (n > Integer.MAX_VALUE) throw new IllegalArgumentException("cpu backend: " + n + " elements is more than 2^31 - 1");
        return (int) n;
    }

    @Override protected Tensor doAllocate(Shape shape) { return new CpuTensor(this, shape); }

    @Override protected Tensor doView(Tensor base, long offset, Shape shape) { return new CpuTensor((CpuTensor) base, offset, shape); }

    @Override protected void doUpload(MemorySegment src, Tensor dst, long dstOffset) {
        MemorySegment.copy(src, 0, seg(dst), dstOffset * Float.BYTES, src.byteSize());
    }

    @Override protected void doUpload(float[] src, int srcOffset, Tensor dst, long dstOffset, int length) {
        MemorySegment.copy(src, srcOffset, seg(dst), F, dstOffset * Float.BYTES, length);
    }

    @Override protected void doDownload(Tensor src, long srcOffset, float[] dst, int dstOffset, int length) {
        MemorySegment.copy(seg(src), F, srcOffset * Float.BYTES, dst, dstOffset, length);
    }

    @Override protected void doDownload(Tensor src, long srcOffset, MemorySegment dst) {
        MemorySegment.copy(seg(src), srcOffset * Float.BYTES, dst, 0, dst.byteSize());
    }

    @Override protected void doGemm(boolean transA, boolean transB, int m, int n, int k, float alpha, Tensor a, long aOffset, int lda, long strideA,
                                    Tensor b, long bOffset, int ldb, long strideB, float beta, Tensor c, long cOffset, int ldc, long strideC, int batch) {
        MemorySegment sa = seg(a), sb = seg(b), sc = seg(c);
        for (int i = 0; i < batch; i++) {
            blas.sgemm(parallel, transA, transB, m, n, k, alpha, sa, aOffset + i * strideA, lda, sb, bOffset + i * strideB, ldb, beta,
                    sc, cOffset + i * strideC, ldc);
        }
    }

    /** Rows of y start as the bias (or y as the offset), and the GEMM adds x W^T to them (beta 1): no separate pass over y. */
    @Override protected void doLinear(Tensor x, Tensor weight, Tensor bias, Tensor y, int batch, int in, int out) {
        MemorySegment sy = seg(y);
        if (isOffset(bias, out)) MemorySegment.copy(seg(bias), 0, sy, 0, (long) batch * out * Float.BYTES);
        else if (bias != null) {
            MemorySegment sb = seg(bias);
            for (long r = 0; r < batch; r++) MemorySegment.copy(sb, 0, sy, r * out * Float.BYTES, (long) out * Float.BYTES);
        }
        blas.sgemm(parallel, false, true, batch, out, in, 1f, seg(x), 0, in, seg(weight), 0, in, bias == null ? 0f : 1f, sy, 0, out);
    }

    @Override protected void doFill(Tensor t, long offset, long length, float value) {
        MemorySegment s = seg(t);
        if (value == 0f && Float.floatToRawIntBits(value) == 0) { // a whole tensor (the common case) with no slice object
            (offset == 0 && length * Float.BYTES == s.byteSize() ? s : s.asSlice(offset * Float.BYTES, length * Float.BYTES)).fill((byte) 0);
            return;
        }
        for (long i = offset, e = offset + length; i < e; i++) s.setAtIndex(F, i, value);
    }

    @Override protected void doCopy(Tensor src, long srcOffset, Tensor dst, long dstOffset, long length) {
        MemorySegment.copy(seg(src), srcOffset * Float.BYTES, seg(dst), dstOffset * Float.BYTES, length * Float.BYTES);
    }

    // Elementwise ops: each fills this thread's ElementwiseCall and names its kernel, a constant beside it that reads
    // the arguments back by position (native, or the Java kernels where this CPU has no native ones).

    private static final Kernel AXPBY = (c, from, to) -> c.kernels.axpby(c.x0, c.s0, c.x1, c.s1, from, to),
            AXPBY_JAVA = (c, from, to) -> JavaKernels.axpby(c.x0, c.s0, c.x1, c.s1, from, to);

    @Override protected void doAxpby(float alpha, Tensor x, float beta, Tensor y) {
        ElementwiseCall c = call(AXPBY, AXPBY_JAVA);
        c.x0 = alpha; c.s0 = seg(x); c.x1 = beta; c.s1 = seg(y);
        run(c, x.size());
    }

    private static final Kernel ADD = (c, from, to) -> c.kernels.add(c.x0, c.s0, c.x1, c.s1, c.s2, from, to),
            ADD_JAVA = (c, from, to) -> JavaKernels.add(c.x0, c.s0, c.x1, c.s1, c.s2, from, to);

    @Override protected void doAdd(float alpha, Tensor a, float beta, Tensor b, Tensor out) {
        ElementwiseCall c = call(ADD, ADD_JAVA);
        c.x0 = alpha; c.s0 = seg(a); c.x1 = beta; c.s1 = seg(b); c.s2 = seg(out);
        run(c, a.size());
    }

    private static final Kernel RELU = (c, from, to) -> c.kernels.relu(c.s0, c.s1, from, to),
            LEAKY_RELU = (c, from, to) -> c.kernels.leakyRelu(c.s0, c.s1, c.x0, from, to),
            GELU = (c, from, to) -> c.kernels.gelu(c.s0, c.s1, from, to),
            GELU_TANH = (c, from, to) -> c.kernels.geluTanh(c.s0, c.s1, from, to),
            TANH = (c, from, to) -> c.kernels.tanh(c.s0, c.s1, from, to),
            SIGMOID = (c, from, to) -> c.kernels.sigmoid(c.s0, c.s1, from, to),
            ACTIVATION_JAVA = (c, from, to) -> JavaKernels.activation(c.activation, c.x0, c.s0, c.s1, from, to);

    @Override protected void doActivation(Activation f, float slope, Tensor x, Tensor y) {
        ElementwiseCall c = call(switch (f) {
            case RELU -> RELU;
            case LEAKY_RELU -> LEAKY_RELU;
            case GELU -> GELU;
            case GELU_TANH -> GELU_TANH;
            case TANH -> TANH;
            case SIGMOID -> SIGMOID;
            default -> null;
        }, ACTIVATION_JAVA);
        c.activation = f; c.x0 = slope; c.s0 = seg(x); c.s1 = seg(y);
        run(c, x.size());
    }

    private static final Kernel RELU_INCREMENT = (c, from, to) -> c.kernels.reluIncrement(c.s0, c.s1, c.s2, c.s3, c.s4, c.s5, c.s6, c.s7, c.x0, c.flag0, from, to),
            SMOOTH_INCREMENT = (c, from, to) -> c.kernels.smoothIncrement(c.activation.code(), c.s0, c.s1, c.s2, c.s3, c.s4, c.s5, c.s6, c.s7, from, to),
            INCREMENT_JAVA = (c, from, to) -> JavaKernels.activationIncrement(c.activation, c.x0, c.s0, c.s1, c.s2, c.s3, c.s4, c.s5, c.s6, c.s7, from, to);

    @Override protected void doActivationIncrement(Activation f, float slope, Tensor x0, Tensor dx, Tensor x, Tensor y, Tensor derivative, Tensor minus,
                                                   Tensor change, Tensor delta) {
        boolean relu = f == Activation.RELU || f == Activation.LEAKY_RELU;
        ElementwiseCall c = call(relu ? RELU_INCREMENT : SMOOTH_INCREMENT, INCREMENT_JAVA);
        c.activation = f;
        c.x0 = f == Activation.RELU ? 0f : slope; // the native relu kernel takes slope 0 for relu; the Java kernels ignore it there
        c.flag0 = f == Activation.LEAKY_RELU;
        c.s0 = seg(x0); c.s1 = seg(dx); c.s2 = maybeSeg(x); c.s3 = maybeSeg(y); c.s4 = maybeSeg(derivative); c.s5 = maybeSeg(minus);
        c.s6 = seg(change); c.s7 = maybeSeg(delta);
        run(c, x0.size());
    }

    /** The tensor's segment, or null for none (as most kernels that take optional tensors expect; see {@link #segOrNull}). */
    private static MemorySegment maybeSeg(Tensor t) { return t == null ? null : seg(t); }

    private static final Kernel STRICT_STEP = (c, from, to) -> c.kernels.strictStep(c.s0, c.s1, c.s2, c.s3, c.s4, c.x0, from, to),
            STRICT_STEP_JAVA = (c, from, to) -> JavaKernels.strictStep(c.s0, c.s1, c.s2, c.s3, c.s4, c.x0, from, to);

    @Override protected void doPcStrictStep(Tensor error, Tensor vhat, Tensor feedback, Tensor displacement, Tensor belief, float eta) {
        ElementwiseCall c = call(STRICT_STEP, STRICT_STEP_JAVA);
        c.s0 = seg(error); c.s1 = seg(vhat); c.s2 = seg(feedback); c.s3 = seg(displacement); c.s4 = seg(belief); c.x0 = eta;
        run(c, error.size());
    }

    private static final Kernel RELU_BACKWARD = (c, from, to) -> c.kernels.reluBackward(c.s0, c.s2, c.s3, from, to),
            LEAKY_RELU_BACKWARD = (c, from, to) -> c.kernels.leakyReluBackward(c.s0, c.s2, c.s3, c.x0, from, to),
            GELU_BACKWARD = (c, from, to) -> c.kernels.geluBackward(c.s0, c.s2, c.s3, from, to),
            GELU_TANH_BACKWARD = (c, from, to) -> c.kernels.geluTanhBackward(c.s0, c.s2, c.s3, from, to),
            BACKWARD_JAVA = (c, from, to) -> JavaKernels.activationBackward(c.activation, c.x0, c.s0, c.s1, c.s2, c.s3, from, to);

    @Override protected void doActivationBackward(Activation f, float slope, Tensor x, Tensor y, Tensor dy, Tensor dx) {
        ElementwiseCall c = call(switch (f) {
            case RELU -> RELU_BACKWARD;
            case LEAKY_RELU -> LEAKY_RELU_BACKWARD;
            case GELU -> GELU_BACKWARD;
            case GELU_TANH -> GELU_TANH_BACKWARD;
            default -> null;
        }, BACKWARD_JAVA);
        c.activation = f; c.x0 = slope; c.s0 = seg(x); c.s1 = seg(y); c.s2 = seg(dy); c.s3 = seg(dx);
        run(c, x.size());
    }

    private static final Kernel GELU_WITH_DERIVATIVE = (c, from, to) -> c.kernels.geluWithDerivative(c.s0, c.s1, c.s2, from, to),
            GELU_TANH_WITH_DERIVATIVE = (c, from, to) -> c.kernels.geluTanhWithDerivative(c.s0, c.s1, c.s2, from, to),
            WITH_DERIVATIVE_JAVA = (c, from, to) -> JavaKernels.activationWithDerivative(c.activation, c.x0, c.s0, c.s1, c.s2, from, to);

    @Override protected void doActivationWithDerivative(Activation f, float slope, Tensor x, Tensor y, Tensor derivative) {
        ElementwiseCall c = call(f == Activation.GELU ? GELU_WITH_DERIVATIVE : f == Activation.GELU_TANH ? GELU_TANH_WITH_DERIVATIVE : null, WITH_DERIVATIVE_JAVA);
        c.activation = f; c.x0 = slope; c.s0 = seg(x); c.s1 = seg(y); c.s2 = seg(derivative);
        run(c, x.size());
    }

    private static final Kernel MULTIPLY = (c, from, to) -> c.kernels.multiply(c.s0, c.s1, c.s2, from, to),
            MULTIPLY_JAVA = (c, from, to) -> JavaKernels.multiply(c.s0, c.s1, c.s2, from, to);

    @Override protected void doMultiply(Tensor a, Tensor b, Tensor out) {
        ElementwiseCall c = call(MULTIPLY, MULTIPLY_JAVA);
        c.s0 = seg(a); c.s1 = seg(b); c.s2 = seg(out);
        run(c, a.size());
    }

    /** This thread's call of the native kernel {@code nativeKernel} (null: none for this case), or of {@code javaKernel} where it or this CPU has none. */
    private ElementwiseCall call(Kernel nativeKernel, Kernel javaKernel) {
        return ElementwiseCall.of(kernels != null && nativeKernel != null ? nativeKernel : javaKernel, kernels);
    }

    /** Runs a filled call on [0, n), split across the backend's threads. */
    private void run(ElementwiseCall c, long n) { c.run(parallel, elements(n), MIN_ELEMENTS); }

    @Override protected void doAddBias(Tensor y, Tensor bias, int channels, int inner) {
        MemorySegment sy = seg(y);
        float[] b = Scratch.floats(0, channels); // read by the parts on every thread, written before them
        MemorySegment.copy(seg(bias), F, 0, b, 0, channels);
        if (inner == 1) { // linear: rows of `channels` floats, each gets the whole bias vector
            int rows = (int) (y.size() / channels);
            parallel.forRange(rows, Math.max(1, MIN_ELEMENTS / channels), (r0, r1) -> {
                float[] t = Scratch.floats(1, channels);
                for (long r = r0; r < r1; r++) {
                    MemorySegment.copy(sy, F, r * channels * Float.BYTES, t, 0, channels);
                    for (int c = 0; c < channels; c++) t[c] += b[c];
                    MemorySegment.copy(t, 0, sy, F, r * channels * Float.BYTES, channels);
                }
            });
            return;
        }
        int rows = (int) (y.size() / inner); // conv: rows of `inner` pixels; row r belongs to channel r % channels
        int perBlock = Math.max(1, 8192 / inner); // rows staged per bulk copy: one copy per ~32 KB, not per row
        parallel.forRange(rows, Math.max(1, MIN_ELEMENTS / inner), (r0, r1) -> {
            float[] t = Scratch.floats(1, perBlock * inner);
            for (int r = r0; r < r1; r += perBlock) {
                int count = Math.min(perBlock, r1 - r);
                MemorySegment.copy(sy, F, (long) r * inner * Float.BYTES, t, 0, count * inner);
                for (int k = 0; k < count; k++) {
                    float v = b[(r + k) % channels];
                    for (int i = k * inner, e = i + inner; i < e; i++) t[i] += v;
                }
                MemorySegment.copy(t, 0, sy, F, (long) r * inner * Float.BYTES, count * inner);
            }
        });
    }

    @Override protected void doScaleChannels(Tensor x, Tensor scale, Tensor shift, int channels, int inner, Tensor y) {
        MemorySegment sx = seg(x), sy = seg(y);
        boolean shifted = shift != null;
        float[] st = Scratch.floats(0, 2 * channels); // the scales, then the shifts: read by the parts on every thread, written before them
        MemorySegment.copy(seg(scale), F, 0, st, 0, channels);
        if (shifted) MemorySegment.copy(seg(shift), F, 0, st, channels, channels);
        int rows = (int) (x.size() / inner); // rows of `inner` values; row r belongs to channel r % channels
        int perBlock = Math.max(1, 8192 / inner); // rows staged per bulk copy: one copy per ~32 KB, not per row
        parallel.forRange(rows, Math.max(1, MIN_ELEMENTS / inner), (r0, r1) -> {
            float[] t = Scratch.floats(1, perBlock * inner);
            for (int r = r0; r < r1; r += perBlock) {
                int count = Math.min(perBlock, r1 - r);
                MemorySegment.copy(sx, F, (long) r * inner * Float.BYTES, t, 0, count * inner);
                for (int k = 0; k < count; k++) {
                    int c = (r + k) % channels;
                    float a = st[c], b = st[channels + c];
                    // Java rounds the product before the sum (never an FMA), as the CUDA kernel's __fmul_rn, __fadd_rn.
                    // A NaN is a missing value, filled with the mean: 0 once standardized (Backend#scaleChannels).
                    if (shifted) for (int i = k * inner, e = i + inner; i < e; i++) t[i] = t[i] != t[i] ? 0f : t[i] * a + b;
                    else for (int i = k * inner, e = i + inner; i < e; i++) t[i] *= a;
                }
                MemorySegment.copy(t, 0, sy, F, (long) r * inner * Float.BYTES, count * inner);
            }
        });
    }

    @Override protected void doBiasGrad(Tensor dy, Tensor db, int channels, int inner, float alpha, float beta) {
        MemorySegment sy = seg(dy), sb = seg(db);
        long rows = dy.size() / inner;
        double[] sums;
        if (inner == 1) { // linear: column sums over rows of `channels` floats
            sums = Scratch.zeroDoubles(channels);
            float[] t = Scratch.floats(0, channels);
            for (long r = 0; r < dy.size() / channels; r++) {
                MemorySegment.copy(sy, F, r * channels * Float.BYTES, t, 0, channels);
                for (int c = 0; c < channels; c++) sums[c] += t[c];
            }
        } else { // conv: each row of `inner` pixels belongs to channel r % channels
            // Per-pixel double sums over the images (acc[i] += t[i] vectorises; a running scalar sum does
            // not), one set per part, combined in part order: the same bits for the same parts (Parallel.parts).
            int perPart = channels * inner, minImages = Math.max(1, MIN_ELEMENTS / perPart);
            int images = (int) (rows / channels), parts = parallel.parts(images, minImages, PartialSums.MAX_PARTS);
            double[] acc = Scratch.zeroDoubles(channels + parts * perPart); // the sums, then each part's per-pixel sums
            parallel.forParts(images, minImages, parts, (part, n0, n1) -> {
                float[] t = Scratch.floats(1, inner);
                for (long r = (long) n0 * channels; r < (long) n1 * channels; r++) {
                    MemorySegment.copy(sy, F, r * inner * Float.BYTES, t, 0, inner);
                    int a = channels + part * perPart + (int) (r % channels) * inner;
                    for (int i = 0; i < inner; i++) acc[a + i] += t[i];
                }
            });
            for (int p = 0; p < parts; p++)
                for (int c = 0; c < channels; c++)
                    for (int i = 0, a = channels + p * perPart + c * inner; i < inner; i++) acc[c] += acc[a + i];
            sums = acc;
        }
        for (int c = 0; c < channels; c++) sb.setAtIndex(F, c, (float) (beta == 0f ? alpha * sums[c] : beta * sb.getAtIndex(F, c) + alpha * sums[c]));
    }

    /**
     * The native direct convolution where the GEMM is thin: up to DIRECT_CHANNELS channels out of the
     * conv (output channels forward and for the weight gradient, input channels for the input
     * gradient). Example-cnn's convs and the condensed STRICT sweep's Gram conv run 2-3x faster
     * direct; wide convs stay GEMMs.
     */
    private static final int DIRECT_CHANNELS = 16;

    /**
     * The three ways this backend runs a conv, chosen in this one place: DIRECT (native, thin GEMMs),
     * TAP (stride 1: one GEMM per kernel tap over shifted planes, {@link TapConv}), GATHER (any
     * stride: image by image through an im2col, {@link ConvKernels}).
     */
    private enum ConvPath { DIRECT, TAP, GATHER }

    /** The path for a conv of geometry g that produces {@code producedChannels} channels per pixel. */
    private ConvPath path(Conv2dGeometry g, int producedChannels) {
        if (kernels != null && producedChannels <= DIRECT_CHANNELS && NativeKernels.suits(g)) return ConvPath.DIRECT;
        return TapConv.suits(g) ? ConvPath.TAP : ConvPath.GATHER;
    }

    private void directConv(Tensor x, Tensor weight, Tensor bias, Conv2dGeometry g, Tensor y, int images, int outChannels, boolean transposed) {
        MemorySegment sx = seg(x), sw = seg(weight), sb = bias == null ? null : seg(bias), sy = seg(y);
        parallel.forRange(images, ConvKernels.MIN_IMAGES, (from, to) -> kernels.conv2d(sx, sw, sb, sy, from, to, g, outChannels, transposed));
    }

    @Override protected void doConv2d(Tensor x, Tensor weight, Conv2dGeometry g, Tensor y, int images, int outChannels) {
        switch (path(g, outChannels)) {
            case DIRECT -> directConv(x, weight, null, g, y, images, outChannels, false);
            case TAP -> TapConv.forward(parallel, blas, seg(x), seg(weight), null, g, seg(y), images, outChannels);
            case GATHER -> ConvKernels.conv2d(parallel, blas, seg(x), seg(weight), g, seg(y), images, outChannels);
        }
    }

    /** The bias rides along where the path can add it (DIRECT, TAP); otherwise a second pass (the default). */
    @Override protected void doConv2dBias(Tensor x, Tensor weight, Tensor bias, Conv2dGeometry g, Tensor y, int images, int outChannels) {
        switch (path(g, outChannels)) {
            case DIRECT -> directConv(x, weight, bias, g, y, images, outChannels, false);
            case TAP -> TapConv.forward(parallel, blas, seg(x), seg(weight), seg(bias), g, seg(y), images, outChannels);
            case GATHER -> super.doConv2dBias(x, weight, bias, g, y, images, outChannels);
        }
    }

    @Override protected void doConv2dBackwardInput(Tensor dy, Tensor weight, Conv2dGeometry g, Tensor dx, int images, int outChannels) {
        switch (path(g, g.channels())) {
            case DIRECT -> directConv(dy, weight, null, g, dx, images, outChannels, true);
            case TAP -> TapConv.backwardInput(parallel, blas, seg(dy), seg(weight), g, seg(dx), images, outChannels);
            case GATHER -> ConvKernels.conv2dBackwardInput(parallel, blas, seg(dy), seg(weight), g, seg(dx), images, outChannels);
        }
    }

    @Override protected void doConv2dBackwardWeight(Tensor x, Tensor dy, Conv2dGeometry g, Tensor dweight, int images, int outChannels) {
        switch (path(g, outChannels)) {
            case DIRECT -> {
                MemorySegment sx = seg(x), sd = seg(dy);
                int size = outChannels * g.patchSize();
                PartialSums partials = PartialSums.over(parallel, images, ConvKernels.MIN_IMAGES, size);
                parallel.forParts(images, ConvKernels.MIN_IMAGES, partials.parts(), (part, from, to) -> kernels.conv2dWeightGrad(sx, sd, partials.part(part), from, to, g, outChannels));
                MemorySegment.copy(partials.sum(), 0, seg(dweight), F, 0, size);
            }
            case TAP -> TapConv.backwardWeight(parallel, blas, seg(x), seg(dy), g, seg(dweight), images, outChannels);
            case GATHER -> ConvKernels.conv2dBackwardWeight(parallel, blas, seg(x), seg(dy), g, seg(dweight), images, outChannels);
        }
    }

    private boolean nativePool(PoolGeometry g) { return kernels != null && g.kh() == 2 && g.kw() == 2 && g.sh() == 2 && g.sw() == 2; }

    @Override protected void doMaxPoolIncrement(Tensor x, Tensor dx, PoolGeometry g, Tensor out, int images) {
        Pooling.maxPoolIncrement(parallel, seg(x), seg(dx), g, seg(out), images);
    }

    @Override protected void doMaxPool(Tensor x, PoolGeometry g, Tensor y, int images) {
        MemorySegment sx = seg(x), sy = seg(y);
        if (nativePool(g)) parallel.forRange(images * g.channels(), ConvKernels.MIN_IMAGES * g.channels(),
                (from, to) -> kernels.maxPool2(sx, sy, from, to, g.height(), g.width()));
        else Pooling.maxPool(parallel, sx, g, sy, images);
    }

    @Override protected void doMaxPoolBackward(Tensor x, PoolGeometry g, Tensor dy, Tensor dx, int images) {
        MemorySegment sx = seg(x), sd = seg(dy), so = seg(dx);
        if (nativePool(g)) parallel.forRange(images * g.channels(), ConvKernels.MIN_IMAGES * g.channels(),
                (from, to) -> kernels.maxPool2Backward(sx, sd, so, from, to, g.height(), g.width()));
        else Pooling.maxPoolBackward(parallel, sx, g, sd, so, images);
    }

    @Override protected void doAvgPool(Tensor x, PoolGeometry g, Tensor y, int images) { Pooling.avgPool(seg(x), g, seg(y), images); }

    @Override protected void doAvgPoolBackward(PoolGeometry g, Tensor dy, Tensor dx, int images) { Pooling.avgPoolBackward(g, seg(dy), seg(dx), images); }

    /** A few thousand exps: on one thread (handing off would cost more). */
    @Override protected void doSoftmaxCrossEntropy(Tensor logits, Tensor labels, Tensor loss, Tensor dlogits, int rows, int classes) {
        softmaxCrossEntropy(logits, labels, loss, dlogits, rows, classes, rows);
    }

    @Override protected void doSoftmaxCrossEntropyPerSample(Tensor logits, Tensor labels, Tensor loss, Tensor dlogits, int rows, int classes) {
        softmaxCrossEntropy(logits, labels, loss, dlogits, rows, classes, 1);
    }

    /** The loss, the batch's mean, and dlogits = (softmax - onehot) / divisor. */
    private void softmaxCrossEntropy(Tensor logits, Tensor labels, Tensor loss, Tensor dlogits, int rows, int classes, double divisor) {
        MemorySegment sl = seg(logits), sy = seg(labels), sg = dlogits == null ? null : seg(dlogits);
        double total = kernels != null ? kernels.softmaxCrossEntropy(sl, sy, sg, 0, rows, divisor, classes) : JavaKernels.softmaxCrossEntropy(sl, sy, sg, 0, rows, divisor, classes);
        seg(loss).setAtIndex(F, 0, (float) (total / rows));
    }

    @Override protected void doMse(Tensor y, Tensor target, Tensor loss, Tensor dy) {
        MemorySegment sy = seg(y), st = seg(target), sd = dy == null ? null : seg(dy);
        int n = elements(y);
        double sum = 0, scale = 2.0 / n;
        for (int i = 0; i < n; i++) {
            float d = sy.getAtIndex(F, i) - st.getAtIndex(F, i);
            sum += (double) d * d;
            if (sd != null) sd.setAtIndex(F, i, (float) (scale * d));
        }
        seg(loss).setAtIndex(F, 0, (float) (sum / n));
    }

    @Override protected void doCountCorrect(Tensor logits, Tensor labels, Tensor out, long outIndex, int rows, int classes, boolean labelRows) {
        MemorySegment sl = seg(logits), sy = seg(labels);
        int correct = 0;
        for (int r = 0; r < rows; r++) {
            long base = (long) r * classes;
            if (argmax(sl, base, classes) == (labelRows ? argmax(sy, base, classes) : sy.getAtIndex(F, r))) correct++;
        }
        seg(out).setAtIndex(F, outIndex, correct);
    }

    /** The index of the largest of {@code classes} values from {@code base}, the first of equal ones. */
    private static int argmax(MemorySegment s, long base, int classes) {
        int best = 0;
        float bestValue = s.getAtIndex(F, base);
        for (int c = 1; c < classes; c++) {
            float v = s.getAtIndex(F, base + c);
            if (v > bestValue) { bestValue = v; best = c; }
        }
        return best;
    }

    private static final Kernel PREDICTION_ERROR = (c, from, to) -> c.kernels.predictionError(c.s0, c.s1, c.s2, c.s3, c.s4, c.s5, c.s6, c.x0, c.x1, c.s7, from, to),
            PREDICTION_ERROR_JAVA = (c, from, to) -> JavaKernels.predictionError(c.s0, c.s1, c.s2, c.s3, c.s4, c.s5, c.s6, c.x0, c.x1, c.s7, from, to);

    @Override protected void doPcPredictionError(Tensor prediction, Tensor vhat, Tensor displacement, Tensor error, Tensor derivative, Tensor delta,
                                                 BeliefStep step) {
        ElementwiseCall c = call(PREDICTION_ERROR, PREDICTION_ERROR_JAVA);
        c.s0 = seg(prediction); c.s1 = seg(vhat); c.s2 = seg(displacement); c.s3 = seg(error);
        c.s4 = segOrNull(derivative); c.s5 = segOrNull(delta); // both or neither (Backend checks)
        c.s6 = step == null ? MemorySegment.NULL : seg(step.next());
        c.s7 = step == null ? MemorySegment.NULL : segOrNull(step.previous());
        c.x0 = step == null ? 0f : step.eta();
        c.x1 = step == null ? 0f : step.momentum();
        run(c, prediction.size());
        if (step != null && step.copy() != null) doCopy(step.next(), 0, step.copy(), 0, prediction.size());
    }

    /** The tensor's segment, or MemorySegment.NULL for none (the prediction-error kernels' convention; the others take null: {@link #maybeSeg}). */
    private MemorySegment segOrNull(Tensor t) { return t == null ? MemorySegment.NULL : seg(t); }

    private static final Kernel STRICT_UPDATE = (c, from, to) -> c.kernels.strictUpdate(c.s0, c.s1, c.s2, c.s3, c.s4, c.s5, c.x0, from, to),
            STRICT_UPDATE_JAVA = (c, from, to) -> JavaKernels.strictUpdate(c.s0, c.s1, c.s2, c.s3, c.s4, c.s5, c.x0, from, to);

    @Override protected void doPcStrictUpdate(Tensor prediction, Tensor vhat, Tensor feedback, Tensor displacement, Tensor belief, Tensor error, float eta) {
        ElementwiseCall c = call(STRICT_UPDATE, STRICT_UPDATE_JAVA);
        c.s0 = seg(prediction); c.s1 = seg(vhat); c.s2 = seg(feedback); c.s3 = seg(displacement); c.s4 = seg(belief); c.s5 = maybeSeg(error); c.x0 = eta;
        run(c, prediction.size());
    }

    private static final Kernel MOMENTUM_UPDATE = (c, from, to) -> c.kernels.momentumUpdate(c.s0, c.s1, c.s2, c.s3, c.s4, c.s5, c.s6, c.x0, c.x1, c.flag0, from, to),
            MOMENTUM_UPDATE_JAVA = (c, from, to) -> JavaKernels.momentumUpdate(c.s0, c.s1, c.s2, c.s3, c.s4, c.s5, c.s6, c.x0, c.x1, c.flag0, from, to);

    @Override protected void doPcMomentumUpdate(Tensor prediction, Tensor vhat, Tensor feedback, Tensor displacement, Tensor velocity, Tensor belief,
                                                Tensor error, float eta, float momentum, boolean firstStep) {
        ElementwiseCall c = call(MOMENTUM_UPDATE, MOMENTUM_UPDATE_JAVA);
        c.s0 = seg(prediction); c.s1 = seg(vhat); c.s2 = seg(feedback); c.s3 = seg(displacement); c.s4 = seg(velocity); c.s5 = seg(belief);
        c.s6 = maybeSeg(error); c.x0 = eta; c.x1 = momentum; c.flag0 = firstStep;
        run(c, prediction.size());
    }

    private static final Kernel ADAM_UPDATE = (c, from, to) -> c.kernels.adamUpdate(c.s0, c.s1, c.s2, c.s3, c.s4, c.s5, c.s6, c.s7, c.x0, c.x1, c.x2, c.x3, c.x4, from, to),
            ADAM_UPDATE_JAVA = (c, from, to) -> JavaKernels.adamUpdate(c.s0, c.s1, c.s2, c.s3, c.s4, c.s5, c.s6, c.s7, c.x0, c.x1, c.x2, c.x3, c.x4, from, to);

    @Override protected void doPcAdamUpdate(Tensor prediction, Tensor vhat, Tensor feedback, Tensor displacement, Tensor moment, Tensor secondMoment,
                                            Tensor belief, Tensor error, float stepSize, float bc2Sqrt, float beta1, float beta2, float eps) {
        ElementwiseCall c = call(ADAM_UPDATE, ADAM_UPDATE_JAVA);
        c.s0 = seg(prediction); c.s1 = seg(vhat); c.s2 = seg(feedback); c.s3 = seg(displacement); c.s4 = seg(moment); c.s5 = seg(secondMoment);
        c.s6 = seg(belief); c.s7 = maybeSeg(error); c.x0 = stepSize; c.x1 = bc2Sqrt; c.x2 = beta1; c.x3 = beta2; c.x4 = eps;
        run(c, prediction.size());
    }

    /** In double, the native and Java kernels in the same order (the same bits). */
    @Override protected void doSumSquares(Tensor x, float scale, Tensor out, long outIndex) {
        double sum = kernels != null ? kernels.sumSquares(seg(x), x.size()) : JavaKernels.sumSquares(seg(x), x.size());
        seg(out).setAtIndex(F, outIndex, (float) (scale * sum));
    }

    private static final Kernel SGD_STEP_JAVA = (c, from, to) -> JavaKernels.sgdStep(c.s0, c.s1, c.s2, c.x0, c.x1, c.x2, c.x3, c.flag0, c.flag1, from, to);

    @Override protected void doSgdStep(Tensor param, Tensor grad, Tensor momentumBuffer, float lrGiven, float momentum, float dampening,
                                       float weightDecay, boolean nesterov, boolean firstGiven, Tensor scalars, long at, Tensor guard, long guardIndex, int guardCount) {
        if (guardStops(guard, guardIndex, guardCount)) return;
        ElementwiseCall c = call(null, SGD_STEP_JAVA);
        c.s0 = seg(param); c.s1 = seg(grad); c.s2 = maybeSeg(momentumBuffer);
        c.x0 = scalars == null ? lrGiven : seg(scalars).getAtIndex(F, at);
        c.x1 = momentum; c.x2 = dampening; c.x3 = weightDecay; c.flag0 = nesterov;
        c.flag1 = scalars == null ? firstGiven : seg(scalars).getAtIndex(F, at + 1) != 0f;
        run(c, param.size());
    }

    /** An optimizer step's guard where it is given: the step stops unless its values are all finite. */
    private static boolean guardStops(Tensor guard, long index, int count) {
        for (int i = 0; guard != null && i < count; i++) if (!Float.isFinite(seg(guard).getAtIndex(F, index + i))) return true;
        return false;
    }

    private static final Kernel ADAM_STEP = (c, from, to) -> c.kernels.adamStep(c.s0, c.s1, c.s2, c.s3, c.x0, c.x1, c.x2, c.x3, c.x4, c.x5, c.x6, from, to),
            ADAM_STEP_JAVA = (c, from, to) -> JavaKernels.adamStep(c.s0, c.s1, c.s2, c.s3, c.x0, c.x1, c.x2, c.x3, c.x4, c.x5, c.x6, from, to);

    @Override protected void doAdamStep(Tensor param, Tensor grad, Tensor m, Tensor v, float stepSizeGiven, float bc2SqrtGiven, float beta1, float beta2,
                                        float eps, float weightDecay, float decayGiven, Tensor scalars, long at, Tensor guard, long guardIndex, int guardCount) {
        if (guardStops(guard, guardIndex, guardCount)) return;
        MemorySegment ss = scalars == null ? null : seg(scalars);
        ElementwiseCall c = call(ADAM_STEP, ADAM_STEP_JAVA);
        c.s0 = seg(param); c.s1 = seg(grad); c.s2 = seg(m); c.s3 = seg(v);
        c.x0 = ss == null ? stepSizeGiven : ss.getAtIndex(F, at); // the step size
        c.x1 = ss == null ? bc2SqrtGiven : ss.getAtIndex(F, at + 1);
        c.x2 = beta1; c.x3 = beta2; c.x4 = eps; c.x5 = weightDecay;
        c.x6 = ss == null ? decayGiven : ss.getAtIndex(F, at + 2);
        run(c, param.size());
    }

    /**
     * Where the parameters' steps would not run at once ({@link #doBranches}: one parameter holds most of the work, as
     * an MLP's first weight does), each in turn, with no branch objects to build: iPC takes n of these a step.
     */
    @Override protected void doAdamSteps(Tensor[] params, Tensor[] grads, Tensor[] m, Tensor[] v, Tensor scalars, long at, Tensor guard, long guardIndex, int guardCount,
                                         float beta1, float beta2, float eps, float weightDecay) {
        if (stepsTogether(params)) super.doAdamSteps(params, grads, m, v, scalars, at, guard, guardIndex, guardCount, beta1, beta2, eps, weightDecay);
        else for (int i = 0; i < params.length; i++) doAdamStep(params[i], grads[i], m[i], v[i], 0f, 0f, beta1, beta2, eps, weightDecay, 0f, scalars, at, guard, guardIndex, guardCount);
    }

    /** As {@link #doAdamSteps}. */
    @Override protected void doSgdSteps(Tensor[] params, Tensor[] grads, Tensor[] buffers, Tensor scalars, long at, Tensor guard, long guardIndex, int guardCount,
                                        float momentum, float dampening, float weightDecay, boolean nesterov) {
        if (stepsTogether(params)) super.doSgdSteps(params, grads, buffers, scalars, at, guard, guardIndex, guardCount, momentum, dampening, weightDecay, nesterov);
        else for (int i = 0; i < params.length; i++) doSgdStep(params[i], grads[i], buffers[i], 0f, momentum, dampening, weightDecay, nesterov, false, scalars, at, guard, guardIndex, guardCount);
    }

    /** Whether {@link #doBranches} might run the parameters' steps otherwise than one after another (the test orders included; never on one thread). */
    private boolean stepsTogether(Tensor[] params) {
        if (branchOrder != BranchOrder.TOGETHER) return true;
        if (!runsBranchesAtOnce()) return false;
        double total = 0, max = 0;
        for (Tensor p : params) {
            total += p.size();
            max = Math.max(max, p.size());
        }
        return smallAndBalanced(max, total, params.length);
    }

    @Override protected void doRandomUniform(Tensor t, float lo, float hi, long seed) {
        MemorySegment s = seg(t);
        int n = elements(t);
        for (int i = 0; i < n; i++) s.setAtIndex(F, i, Random.uniform(seed, i, lo, hi));
    }
}
