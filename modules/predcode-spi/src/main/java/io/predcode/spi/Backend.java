package io.predcode.spi;

import java.lang.foreign.MemorySegment;

/**
 * A compute backend: owns tensor memory and runs the op set on it.
 *
 * <p>Every public op here validates its arguments (closed tensors, sizes, offsets, geometry) and
 * throws an exception naming the op, the shapes and what was expected, then calls the backend's
 * {@code do*} implementation. So every backend rejects bad input the same way, and an implementation
 * can assume its arguments are consistent. All data is float32; class labels are stored as floats.
 *
 * <p>Whether several threads may call one backend instance at once, on disjoint tensors, is
 * {@link #isThreadSafe()}: true for the CPU backend, false for the CUDA one (its stream, staging and
 * scratch buffers are shared), whose callers take turns with {@link #beginTurn()}. Two backend
 * instances never share state.
 */
public abstract class Backend implements AutoCloseable {
    private final Counters counters = new Counters();
    private volatile boolean closed;

    /** For backend implementations, which a {@link BackendProvider} creates. */
    protected Backend() {}

    /** The provider's name: {@code cpu}, {@code cuda}. */
    public abstract String name();

    /** One line for humans: library versions, threads, device. */
    public abstract String description();

    /**
     * True when several threads may call this backend at once, each on its own tensors (reading shared
     * ones, such as parameters, is fine). False (the default): one call at a time, from any thread.
     */
    public boolean isThreadSafe() { return false; }

    private final java.util.concurrent.locks.ReentrantLock turn = new java.util.concurrent.locks.ReentrantLock();

    /**
     * On a backend that is not {@link #isThreadSafe() thread-safe}, makes the calling thread the only
     * one issuing ops until {@link #endTurn()}, waiting while another thread has its turn; does
     * nothing on a thread-safe one. Re-entrant. predcode's engine, trainer, model and predictor take a
     * turn around each call, so they may share one backend across threads (a service that trains on
     * one thread and predicts on others); code that issues ops itself beside them takes turns too.
     */
    public final void beginTurn() { if (!isThreadSafe()) turn.lock(); }

    /** Ends the calling thread's turn (see {@link #beginTurn()}). */
    public final void endTurn() { if (!isThreadSafe()) turn.unlock(); }

    /**
     * Runs {@code body} in the calling thread's turn ({@link #beginTurn()}): ops that library code issues outside the
     * objects that take turns themselves (an optimizer's step, a download of a result).
     *
     * @param body the ops
     */
    public final void inTurn(Runnable body) {
        inTurn(() -> {
            body.run();
            return null;
        });
    }

    /**
     * As {@link #inTurn(Runnable)}, returning what {@code body} returns.
     *
     * @param body the ops
     * @param <T>  what they give
     * @return what {@code body} returned
     */
    public final <T> T inTurn(java.util.function.Supplier<T> body) {
        beginTurn();
        try {
            return body.get();
        } finally {
            endTurn();
        }
    }

    /**
     * Bytes this backend could still allocate, as far as it can tell (the machine's available memory
     * on the CPU, the device's free memory on a GPU), so that a model too large is refused with the
     * numbers instead of failing part way; {@link Long#MAX_VALUE} when it cannot tell.
     *
     * @return the bytes available, or Long.MAX_VALUE when unknown
     */
    public long memoryAvailable() { return Long.MAX_VALUE; }

    /** Allocations and host transfers so far. */
    public final Counters counters() { return counters; }

    /**
     * Runs {@code body}, a fixed sequence of ops on this backend whose every argument (tensors,
     * scalars, shapes) is determined by {@code key}: a backend may record the ops on an early call and
     * replay the recording on later calls with an equal key instead of issuing them one by one (the
     * CUDA backend captures a CUDA graph). The body must not touch the host (no upload, download or
     * readScalar), and Java-side effects of the body may happen only on the calls that record. The
     * default runs the body every time.
     */
    public final void replayable(Object key, Runnable body) {
        checkBackendOpen("replayable");
        doReplayable(java.util.Objects.requireNonNull(key, "replayable: key"), body);
    }

    /** Runs or replays a replayable body (see {@link #replayable}); the default runs it every time. */
    protected void doReplayable(Object key, Runnable body) { body.run(); }

    /**
     * Runs {@code branches}, sequences of ops that are independent of one another: no branch writes a
     * tensor that another branch reads or writes. {@code work[i]} is branch i's amount of work: its
     * multiply-adds where GEMMs dominate it, else the floats it updates. A backend may run the branches
     * at once (the CPU backend does where they are small and balance across its threads, each branch
     * on one; the CUDA backend issues each on a stream of its own); the default runs them in order.
     * Either way the results do not depend on the order. The backend gets them the most work first (branches
     * of equal work in the caller's order), so that the longest starts first. Inside {@link #replayable} too.
     */
    public final void branches(double[] work, Runnable... branches) {
        checkBackendOpen("branches");
        if (work.length != branches.length) throw new IllegalArgumentException("branches: " + work.length + " amounts of work for " + branches.length + " branches");
        boolean mostFirst = true;
        for (int i = 0; i < branches.length; i++) {
            java.util.Objects.requireNonNull(branches[i], "branches: a branch is null");
            if (!(work[i] >= 0) || Double.isInfinite(work[i])) throw new IllegalArgumentException("branches: work must be finite and >= 0, got " + work[i]);
            mostFirst &= i == 0 || work[i] <= work[i - 1];
        }
        if (mostFirst) {
            doBranches(work, branches);
            return;
        }
        Integer[] order = new Integer[branches.length];
        for (int i = 0; i < order.length; i++) order[i] = i;
        java.util.Arrays.sort(order, (a, b) -> Double.compare(work[b], work[a])); // stable: equal work keeps the caller's order
        double[] sortedWork = new double[order.length];
        Runnable[] sorted = new Runnable[order.length];
        for (int k = 0; k < order.length; k++) {
            sortedWork[k] = work[order[k]];
            sorted[k] = branches[order[k]];
        }
        doBranches(sortedWork, sorted);
    }

    /** Runs independent branches of ops (see {@link #branches}); the default runs them in order. */
    protected void doBranches(double[] work, Runnable[] branches) { for (Runnable b : branches) b.run(); }

    /**
     * Whether {@link #branches} may run branches at once. Where it does, an engine may prefer a form of
     * its work with more independent branches at the price of a few more ops (on a GPU, a few more
     * kernels but fewer one after another); where not (the default), the form with the fewest ops.
     *
     * @return true where branches may run at once
     */
    public boolean runsBranchesAtOnce() { return false; }

    /**
     * Whether a step's time on this backend follows how many of its ops run one after another more than their work:
     * a GPU's, where each kernel of a chain waits for the one before and small kernels cost their launch. Where it
     * does, an engine may prefer a form of its work with fewer ops in a row at the price of more rounds of branches
     * (PC's relaxation then folds each belief step into the feedback GEMM). The default, false, suits a CPU, which pays
     * for each round of branches it runs at once.
     *
     * @return true where ops in a row, not their work, set the pace
     */
    public boolean prefersShortChains() { return false; }

    private OpProfile profile;

    /** Charges every following op's time to {@code p}; null stops profiling. */
    public final void profile(OpProfile p) { this.profile = p; }

    /** True while a profile is attached: it charges ops one at a time, so branches must then run one at a time too. */
    protected final boolean profiling() { return profile != null; }

    // ---------------------------------------------------------------- memory

    /**
     * A zero-filled tensor. On a backend that is not thread-safe it takes the calling thread's turn: a model or an
     * optimizer made on one thread must not touch the memory pool while another thread's turn runs ops (as a service's
     * predictions do while its trainer makes a model). Freeing a tensor takes the turn too ({@link Tensor#close()}).
     */
    public final Tensor allocate(Shape shape) {
        beginTurn();
        try {
            checkBackendOpen("allocate");
            Tensor t = doAllocate(shape);
            counters.allocated(shape.size() * Float.BYTES);
            return t;
        } finally {
            endTurn();
        }
    }

    /** A zero-filled tensor of these dimensions. */
    public final Tensor allocate(int... dims) { return allocate(Shape.of(dims)); }

    /**
     * A view of {@code shape.size()} floats of {@code base} from element {@code offset}: the same
     * memory under another shape, with no copy and no allocation. Closing the view frees nothing; it
     * is unusable once {@code base} is closed.
     */
    public final Tensor view(Tensor base, long offset, Shape shape) {
        // Bookkeeping on the host, no op on the device: it needs no turn (a model made beside another thread's turn carves its views).
        requireOpen("view");
        check("view", base);
        range("view", "view", base, offset, shape.size());
        return doView(base, offset, shape);
    }

    /** Copies {@code length} floats from {@code src[srcOffset..]} into {@code dst[dstOffset..]}. */
    public final void upload(float[] src, int srcOffset, Tensor dst, long dstOffset, int length) {
        mine("upload", dst);
        if (srcOffset < 0 || length < 0 || srcOffset + length > src.length)
            throw new IllegalArgumentException("upload: host range [" + srcOffset + ", " + ((long) srcOffset + length) + ") outside float[" + src.length + "]");
        range("upload", "dst", dst, dstOffset, length);
        doUpload(src, srcOffset, dst, dstOffset, length);
        counters.hostToDevice((long) length * Float.BYTES);
    }

    /** Uploads from a host array. The default wraps it in a segment; a backend that can copy from the array directly avoids that allocation. */
    protected void doUpload(float[] src, int srcOffset, Tensor dst, long dstOffset, int length) {
        doUpload(MemorySegment.ofArray(src).asSlice((long) srcOffset * Float.BYTES, (long) length * Float.BYTES), dst, dstOffset);
    }

    /** Copies the whole array into the whole tensor; the lengths must match. */
    public final void upload(float[] src, Tensor dst) {
        if (src.length != dst.size())
            throw new IllegalArgumentException("upload: host array has " + src.length + " floats, tensor " + dst.shape() + " needs " + dst.size());
        upload(src, 0, dst, 0, src.length);
    }

    /** Copies a float32 memory segment (heap or native) into {@code dst[dstOffset..]}. */
    public final void upload(MemorySegment src, Tensor dst, long dstOffset) {
        mine("upload", dst);
        if (src.byteSize() % Float.BYTES != 0) throw new IllegalArgumentException("upload: segment of " + src.byteSize() + " bytes is not a whole number of floats");
        range("upload", "dst", dst, dstOffset, src.byteSize() / Float.BYTES);
        doUpload(src, dst, dstOffset);
        counters.hostToDevice(src.byteSize());
    }

    /** Copies {@code length} floats from {@code src[srcOffset..]} to the host. */
    public final void download(Tensor src, long srcOffset, float[] dst, int dstOffset, int length) {
        mine("download", src);
        if (dstOffset < 0 || length < 0 || dstOffset + length > dst.length)
            throw new IllegalArgumentException("download: host range [" + dstOffset + ", " + ((long) dstOffset + length) + ") outside float[" + dst.length + "]");
        range("download", "src", src, srcOffset, length);
        doDownload(src, srcOffset, dst, dstOffset, length);
        counters.deviceToHost((long) length * Float.BYTES);
    }

    /** Downloads into a host array. The default wraps it in a segment; a backend that can copy into the array directly avoids that allocation. */
    protected void doDownload(Tensor src, long srcOffset, float[] dst, int dstOffset, int length) {
        doDownload(src, srcOffset, MemorySegment.ofArray(dst).asSlice((long) dstOffset * Float.BYTES, (long) length * Float.BYTES));
    }

    /** Copies the whole tensor to a new host array. */
    public final float[] download(Tensor src) {
        if (src.size() > Integer.MAX_VALUE) throw new IllegalArgumentException("download: tensor " + src.shape() + " too large for a float[]");
        float[] out = new float[(int) src.size()];
        download(src, 0, out, 0, out.length);
        return out;
    }

    /** One float to the host (4 bytes counted). */
    public final float readScalar(Tensor t, long index) {
        float[] one = new float[1];
        download(t, index, one, 0, 1);
        return one[0];
    }

    /** Waits until all queued work is done (a no-op for synchronous backends). */
    public void synchronize() {}

    // ---------------------------------------------------------------- linear algebra

    /**
     * Row-major batched GEMM: for i in [0, batch): C_i = alpha * op(A_i) * op(B_i) + beta * C_i, where
     * X_i starts at {@code xOffset + i * strideX}. op(A) is m x k, op(B) is k x n, C is m x n.
     * A stride of 0 shares one matrix across the batch; C_i must not overlap each other.
     */
    public final void gemm(boolean transA, boolean transB, int m, int n, int k, float alpha,
                           Tensor a, long aOffset, int lda, long strideA,
                           Tensor b, long bOffset, int ldb, long strideB, float beta,
                           Tensor c, long cOffset, int ldc, long strideC, int batch) {
        mine("gemm", a, b, c);
        if (m < 1 || n < 1 || k < 1 || batch < 1)
            throw new IllegalArgumentException("gemm: m, n, k, batch must be >= 1, got m=" + m + " n=" + n + " k=" + k + " batch=" + batch);
        int aRows = transA ? k : m, aCols = transA ? m : k, bRows = transB ? n : k, bCols = transB ? k : n;
        if (lda < aCols || ldb < bCols || ldc < n)
            throw new IllegalArgumentException("gemm: leading dimensions lda=" + lda + " ldb=" + ldb + " ldc=" + ldc + " must be >= " + aCols + ", " + bCols + ", " + n);
        if (strideA < 0 || strideB < 0 || strideC < 0) throw new IllegalArgumentException("gemm: negative batch stride");
        if (batch > 1 && strideC < (long) (m - 1) * ldc + n)
            throw new IllegalArgumentException("gemm: strideC=" + strideC + " makes the " + batch + " output matrices (" + m + "x" + n + ", ldc=" + ldc + ") overlap");
        range("gemm", "A", a, aOffset, (long) (batch - 1) * strideA + (long) (aRows - 1) * lda + aCols);
        range("gemm", "B", b, bOffset, (long) (batch - 1) * strideB + (long) (bRows - 1) * ldb + bCols);
        range("gemm", "C", c, cOffset, (long) (batch - 1) * strideC + (long) (m - 1) * ldc + n);
        doGemm(transA, transB, m, n, k, alpha, a, aOffset, lda, strideA, b, bOffset, ldb, strideB, beta, c, cOffset, ldc, strideC, batch);
    }

    /**
     * C = alpha * op(A) * op(B) + beta * C for tensors viewed as matrices [dim0, size/dim0]
     * (a batch of rows: [N, ...] is N rows).
     */
    public final void matmul(boolean transA, boolean transB, float alpha, Tensor a, Tensor b, float beta, Tensor c) {
        mine("matmul", a, b, c);
        int ar = a.shape().dim(0), ac = (int) a.shape().rowSize(), br = b.shape().dim(0), bc = (int) b.shape().rowSize();
        int cr = c.shape().dim(0), cc = (int) c.shape().rowSize();
        int m = transA ? ac : ar, k = transA ? ar : ac, kb = transB ? bc : br, n = transB ? br : bc;
        if (k != kb || cr != m || cc != n)
            throw new IllegalArgumentException("matmul: " + (transA ? "A^T" : "A") + " " + a.shape() + " x " + (transB ? "B^T" : "B") + " " + b.shape()
                    + " -> C " + c.shape() + " does not fit (need op(A) " + m + "x" + k + ", op(B) " + kb + "x" + n + ", C " + m + "x" + n + ")");
        gemm(transA, transB, m, n, k, alpha, a, 0, ac, 0, b, 0, bc, 0, beta, c, 0, cc, 0, 1);
    }

    /**
     * nn.Linear's forward: y = x W^T + b with x [batch, in...] (trailing dims flattened), W [out, in],
     * y [batch, out] and bias [out] or null. The bias may also be an offset of y's own size, added element by
     * element: PC's predictions from a displacement, z = zff + d W^T with zff the feedforward pre-activation.
     * The default is matmul then addBias (add for an offset); a backend may start the GEMM from the broadcast
     * bias instead (as PyTorch's addmm does) and save a pass over y. Every op that takes a linear op's bias
     * ({@link #linearActivation}, {@link #pcLinearPredictionError}, {@link #pcLinearOutputError}) takes an offset too.
     */
    public final void linear(Tensor x, Tensor weight, Tensor bias, Tensor y) {
        if (bias == null) mine("linear", x, weight, y);
        else mine("linear", x, weight, bias, y);
        linearFits("linear", x, weight, bias, y, "y");
        doLinear(x, weight, bias, y, x.shape().dim(0), (int) x.shape().rowSize(), weight.shape().dim(0));
    }

    /**
     * That y = x W^T + b fits: x [batch, in...], weight [out, in], {@code y} (named {@code name}) [batch, out], bias [out],
     * an offset of y's size, or null.
     */
    private static void linearFits(String op, Tensor x, Tensor weight, Tensor bias, Tensor y, String name) {
        int batch = x.shape().dim(0), in = (int) x.shape().rowSize(), out = weight.shape().dim(0);
        if (weight.shape().rowSize() != in || y.shape().dim(0) != batch || y.shape().rowSize() != out || (bias != null && bias.size() != out && bias.size() != y.size()))
            throw new IllegalArgumentException(op + ": x " + x.shape() + ", weight " + weight.shape() + (bias == null ? "" : ", bias " + bias.shape())
                    + " -> " + name + " " + y.shape() + " does not fit (need weight [out, " + in + "], " + name + " [" + batch + ", out], bias [out] or "
                    + name + "'s size)");
        if (bias == y) throw new IllegalArgumentException(op + ": the bias must not be " + name);
    }

    /** Whether a linear op's bias is an offset per element of y (see {@link #linear}) rather than one per output feature. */
    protected static boolean isOffset(Tensor bias, int out) { return bias != null && bias.size() != out; }

    /**
     * A linear layer and the activation after it: z = x W^T + b as {@link #linear}, then y = f(z), and
     * where {@code derivative} is not null f'(z) into it as {@link #activationWithDerivative}; the same
     * bits as those two ops. A backend may apply the bias and f in one pass after the GEMM (a GPU then
     * runs a kernel fewer one after another). z, y and derivative must be tensors of their own.
     */
    public final void linearActivation(Tensor x, Tensor weight, Tensor bias, Activation f, float slope, Tensor z, Tensor y, Tensor derivative) {
        checkLinearActivation("linearActivation", x, weight, bias, z, y, derivative);
        doLinearActivation(x, weight, bias, f, slope, z, y, derivative, x.shape().dim(0), (int) x.shape().rowSize(), weight.shape().dim(0));
    }

    /** {@link #linearActivation}'s checks, for {@code op}. */
    private void checkLinearActivation(String op, Tensor x, Tensor weight, Tensor bias, Tensor z, Tensor y, Tensor derivative) {
        mine(op, x, weight, z, y);
        if (bias != null) check(op, bias);
        if (derivative != null) {
            check(op, derivative);
            sameSizeAs(op, z, derivative);
        }
        sameSizeAs(op, z, y);
        if (x == z || x == y || x == derivative || z == y || z == derivative || y == derivative)
            throw new IllegalArgumentException(op + ": x, z, y and derivative must be tensors of their own");
        linearFits(op, x, weight, bias, z, "z");
    }

    /** y = x W^T + b for {@code batch} rows. The default is a GEMM and a bias pass; a backend may fuse them. */
    protected void doLinear(Tensor x, Tensor weight, Tensor bias, Tensor y, int batch, int in, int out) {
        doGemm(false, true, batch, out, in, 1f, x, 0, in, 0, weight, 0, in, 0, 0f, y, 0, out, 0, 1);
        if (isOffset(bias, out)) doAdd(1f, y, 1f, bias, y);
        else if (bias != null) doAddBias(y, bias, out, 1);
    }

    // ---------------------------------------------------------------- elementwise

    /** Sets every element of t to {@code value}. */
    public final void fill(Tensor t, float value) { mine("fill", t); doFill(t, 0, t.size(), value); }

    /** Sets {@code length} elements of t from {@code offset} to {@code value}. */
    public final void fill(Tensor t, long offset, long length, float value) {
        mine("fill", t);
        range("fill", "t", t, offset, length);
        doFill(t, offset, length, value);
    }

    /** dst = src, same size. */
    public final void copy(Tensor src, Tensor dst) {
        sameSize("copy", src, dst);
        doCopy(src, 0, dst, 0, src.size());
    }

    /** Copies {@code length} floats from {@code src[srcOffset..]} to {@code dst[dstOffset..]} (the ranges must not overlap). */
    public final void copy(Tensor src, long srcOffset, Tensor dst, long dstOffset, long length) {
        mine("copy", src, dst);
        range("copy", "src", src, srcOffset, length);
        range("copy", "dst", dst, dstOffset, length);
        doCopy(src, srcOffset, dst, dstOffset, length);
    }

    /** y = alpha * x + beta * y. */
    public final void axpby(float alpha, Tensor x, float beta, Tensor y) {
        sameSize("axpby", x, y);
        doAxpby(alpha, x, beta, y);
    }

    /** out = alpha * a + beta * b (out may alias a or b). */
    public final void add(float alpha, Tensor a, float beta, Tensor b, Tensor out) {
        sameSize("add", a, b, out);
        doAdd(alpha, a, beta, b, out);
    }

    /** y = f(x), elementwise (y may alias x). */
    public final void activation(Activation f, float slope, Tensor x, Tensor y) {
        sameSize("activation", x, y); // a constant name: concatenating f would allocate a String per call
        doActivation(f, slope, x, y);
    }

    /**
     * dx = dy * f'(x), where y = f(x) is passed too (tanh and sigmoid derive from it).
     * dx may alias dy.
     */
    public final void activationBackward(Activation f, float slope, Tensor x, Tensor y, Tensor dy, Tensor dx) {
        sameSize("activationBackward", x, y, dy, dx);
        doActivationBackward(f, slope, x, y, dy, dx);
    }

    /**
     * y = f(x) and derivative = f'(x), elementwise, in one pass: a forward whose f' is kept for the
     * backward passes at the same point, each then {@link #multiply}(dy, derivative, dx). y is what
     * {@link #activation} writes, and dy times derivative what {@link #activationBackward} writes, to
     * rounding. Worth it where f' costs as much as f: {@link Activation#derivativeWorthKeeping}.
     */
    public final void activationWithDerivative(Activation f, float slope, Tensor x, Tensor y, Tensor derivative) {
        sameSize("activationWithDerivative", x, y, derivative);
        doActivationWithDerivative(f, slope, x, y, derivative);
    }

    /**
     * An activation at a moved point x = x0 + dx, elementwise in one pass: where not null, x = x0 + dx (in float32),
     * y = f(x) and derivative = f'(x) (as {@link #activationWithDerivative} at that x, to rounding), and always
     * {@code change} = f(x0 + dx) - f(x0), minus {@code minus} where not null, formed without rounding x0 + dx: the
     * change keeps a few float32 ulps of its own size however small dx is against x0. As f(x) - f(x0) in float32 it would
     * carry an error of f's ulp at x0, which swamps it once dx is below about 1e-4 of x0: STRICT's prediction errors
     * ({@code PcEngine}) are such changes, less the layer's own displacement ({@code minus}). Where {@code delta} is not
     * null, also delta = change f'(x), bit for bit what a backward pass at x makes of the change: {@link #multiply} by
     * {@code derivative} where that is asked for (a tape that keeps f'), else {@link #activationBackward}. It is the VJP a
     * STRICT sweep's feedback starts from, in the same pass. change and delta may alias dx
     * (each element is read before it is written), change also minus; the other outputs are tensors of their own.
     */
    public final void activationIncrement(Activation f, float slope, Tensor x0, Tensor dx, Tensor x, Tensor y, Tensor derivative, Tensor minus, Tensor change,
                                          Tensor delta) {
        String op = "activationIncrement"; // no arrays of tensors to check: STRICT calls this per layer per sweep
        sameSize(op, x0, dx, change);
        if (x != null) sameSize(op, x0, x);
        if (y != null) sameSize(op, x0, y);
        if (derivative != null) sameSize(op, x0, derivative);
        if (minus != null) sameSize(op, x0, minus);
        if (delta != null) sameSize(op, x0, delta);
        if (change == x0 || shared(x, x0, dx, minus, change, y, derivative) || shared(y, x0, dx, minus, change, derivative, null)
                || shared(derivative, x0, dx, minus, change, null, null) || shared(delta, x0, x, y, derivative, minus, change))
            throw new IllegalArgumentException(op + ": change must not be x0, delta may be dx alone, and x, y and derivative must be tensors of their own");
        doActivationIncrement(f, slope, x0, dx, x, y, derivative, minus, change, delta);
    }

    /** {@link #activationIncrement} without the delta. */
    public final void activationIncrement(Activation f, float slope, Tensor x0, Tensor dx, Tensor x, Tensor y, Tensor derivative, Tensor minus, Tensor change) {
        activationIncrement(f, slope, x0, dx, x, y, derivative, minus, change, null);
    }

    /** Whether t (where not null) is one of the others. */
    private static boolean shared(Tensor t, Tensor a, Tensor b, Tensor c, Tensor d, Tensor e, Tensor f) {
        return t != null && (t == a || t == b || t == c || t == d || t == e || t == f);
    }

    /**
     * STRICT's step of a layer whose prediction error this sweep is already formed (layer 2 and up, from changes:
     * {@link #activationIncrement}): {@code displacement += eta * (error - feedback)}, {@code belief = vhat + displacement},
     * in one pass. Layer 1's, whose error is -displacement, is {@link #pcStrictUpdate} with vhat as the prediction.
     */
    public final void pcStrictStep(Tensor error, Tensor vhat, Tensor feedback, Tensor displacement, Tensor belief, float eta) {
        sameSize("pcStrictStep", error, vhat, feedback, displacement, belief);
        doPcStrictStep(error, vhat, feedback, displacement, belief, eta);
    }

    /** out = a * b, elementwise (out may alias a or b). */
    public final void multiply(Tensor a, Tensor b, Tensor out) {
        sameSize("multiply", a, b, out);
        doMultiply(a, b, out);
    }

    /** y[o, c, i] += bias[c] for y viewed as [outer, channels, inner]. */
    public final void addBias(Tensor y, Tensor bias, int channels, int inner) {
        mine("addBias", y, bias);
        biasView("addBias", y, bias, channels, inner);
        doAddBias(y, bias, channels, inner);
    }

    /**
     * y[o, c, i] = x[o, c, i] * scale[c], plus shift[c] where {@code shift} is not null (the sum rounded after the
     * product, never fused), for x viewed as [outer, channels, inner]; y may be x. A per-channel affine map (the
     * normalize op's) in one pass, where a product with diag(scale) costs channels times as much. With a shift, a NaN
     * in x is a missing value (a table's empty field) and gives 0: a standardization's image of the mean, so that the
     * normalize op fills a missing value with the training set's mean. Without one (a change or a gradient) NaN stays.
     */
    public final void scaleChannels(Tensor x, Tensor scale, Tensor shift, int channels, int inner, Tensor y) {
        sameSize("scaleChannels", x, y);
        mine("scaleChannels", scale);
        biasView("scaleChannels", x, scale, channels, inner);
        if (shift != null) {
            mine("scaleChannels", shift);
            expectSize("scaleChannels", "shift", shift, channels);
        }
        doScaleChannels(x, scale, shift, channels, inner, y);
    }

    /** db[c] = beta * db[c] + alpha * (sum over o, i of dy[o, c, i]), the sum formed before it is scaled. */
    public final void biasGrad(Tensor dy, Tensor db, int channels, int inner, float alpha, float beta) {
        mine("biasGrad", dy, db);
        biasView("biasGrad", dy, db, channels, inner);
        doBiasGrad(dy, db, channels, inner, alpha, beta);
    }

    // ---------------------------------------------------------------- convolution and pooling

    /**
     * PyTorch Conv2d without bias: y [N, out, oh, ow] = conv(x [N, c, h, w], weight [out, c, kh, kw]).
     * A fused op so a backend can keep each image's im2col matrix in cache instead of materialising
     * the whole batch's.
     */
    public final void conv2d(Tensor x, Tensor weight, Conv2dGeometry g, Tensor y) { conv2d(x, weight, null, g, y); }

    /**
     * {@link #conv2d} plus a per-channel bias ([out], or null for none), as nn.Conv2d computes it. The
     * default adds the bias in a second pass; a backend may start its accumulation from the bias instead.
     */
    public final void conv2d(Tensor x, Tensor weight, Tensor bias, Conv2dGeometry g, Tensor y) {
        if (bias == null) mine("conv2d", x, weight, y);
        else mine("conv2d", x, weight, bias, y);
        ConvBatch b = convBatch("conv2d", x, weight, y, "y", g);
        if (bias == null) { doConv2d(x, weight, g, y, b.images(), b.out()); return; }
        expectSize("conv2d", "bias", bias, b.out());
        doConv2dBias(x, weight, bias, g, y, b.images(), b.out());
    }

    /** y = conv(x, weight) + bias. The default adds the bias in a second pass. */
    protected void doConv2dBias(Tensor x, Tensor weight, Tensor bias, Conv2dGeometry g, Tensor y, int images, int outChannels) {
        doConv2d(x, weight, g, y, images, outChannels);
        doAddBias(y, bias, outChannels, g.outPixels());
    }

    /** dx = J_x^T dy of {@link #conv2d} (dx overwritten). */
    public final void conv2dBackwardInput(Tensor dy, Tensor weight, Conv2dGeometry g, Tensor dx) {
        mine("conv2dBackwardInput", dy, weight, dx);
        ConvBatch b = convBatch("conv2dBackwardInput", dx, weight, dy, "dy", g);
        doConv2dBackwardInput(dy, weight, g, dx, b.images(), b.out());
    }

    /** dweight = J_w^T dy of {@link #conv2d} at x, summed over the batch (dweight overwritten). */
    public final void conv2dBackwardWeight(Tensor x, Tensor dy, Conv2dGeometry g, Tensor dweight) {
        mine("conv2dBackwardWeight", x, dy, dweight);
        ConvBatch b = convBatch("conv2dBackwardWeight", x, dweight, dy, "dy", g);
        doConv2dBackwardWeight(x, dy, g, dweight, b.images(), b.out());
    }

    /** A conv op's batch: images of g's input, and output channels from the weight's size. */
    private record ConvBatch(int images, int out) {}

    /**
     * Checks a conv op's tensors against g and each other: {@code input} holds whole images of g's
     * input, {@code weight} (or its gradient) is [out, c, kh, kw], and {@code output} (y or dy) holds
     * out channels of g's output for each image.
     */
    private static ConvBatch convBatch(String op, Tensor input, Tensor weight, Tensor output, String outputName, Conv2dGeometry g) {
        long n = images(op, input, g.inputSize(), g);
        int out = outChannels(op, weight, g);
        expectSize(op, outputName, output, n * out * g.outPixels());
        return new ConvBatch((int) n, out);
    }

    private static int outChannels(String op, Tensor weight, Conv2dGeometry g) {
        if (weight.size() % g.patchSize() != 0)
            throw new IllegalArgumentException(op + ": weight " + weight.shape() + " is not [out, " + g.channels() + ", " + g.kh() + ", " + g.kw() + "] for " + g);
        return (int) (weight.size() / g.patchSize());
    }

    /** Max pooling of each [channels, height, width] image of x into y (no padding). */
    public final void maxPool(Tensor x, PoolGeometry g, Tensor y) {
        mine("maxPool", x, y);
        long n = images("maxPool", x, g.inputSize(), g);
        expectSize("maxPool", "y", y, n * g.outputSize());
        doMaxPool(x, g, y, (int) n);
    }

    /**
     * out = maxPool(x + dx) - maxPool(x), without rounding x + dx to float: per window, (x_k + dx_k) - x_m with k the
     * maximum of x + dx (formed in double) and m that of x, so that a change far below the pixels' magnitude keeps its
     * own precision, as {@link #activationIncrement} keeps an activation's.
     */
    public final void maxPoolIncrement(Tensor x, Tensor dx, PoolGeometry g, Tensor out) {
        mine("maxPoolIncrement", x, dx, out);
        long n = images("maxPoolIncrement", x, g.inputSize(), g);
        expectSize("maxPoolIncrement", "dx", dx, n * g.inputSize());
        expectSize("maxPoolIncrement", "out", out, n * g.outputSize());
        doMaxPoolIncrement(x, dx, g, out, (int) n);
    }

    /**
     * dx = gradient of maxPool: dy routed to each window's maximum as PyTorch's CPU kernel picks it
     * (the first of tied maxima; with NaNs, the last NaN); dx overwritten.
     */
    public final void maxPoolBackward(Tensor x, PoolGeometry g, Tensor dy, Tensor dx) {
        mine("maxPoolBackward", x, dy, dx);
        long n = images("maxPoolBackward", x, g.inputSize(), g);
        expectSize("maxPoolBackward", "dy", dy, n * g.outputSize());
        expectSize("maxPoolBackward", "dx", dx, x.size());
        doMaxPoolBackward(x, g, dy, dx, (int) n);
    }

    /** Average pooling of each [channels, height, width] image of x into y (no padding). */
    public final void avgPool(Tensor x, PoolGeometry g, Tensor y) {
        mine("avgPool", x, y);
        long n = images("avgPool", x, g.inputSize(), g);
        expectSize("avgPool", "y", y, n * g.outputSize());
        doAvgPool(x, g, y, (int) n);
    }

    /** The VJP of {@link #avgPool}: dx = the pooling's transpose applied to dy. */
    public final void avgPoolBackward(PoolGeometry g, Tensor dy, Tensor dx) {
        mine("avgPoolBackward", dy, dx);
        long n = images("avgPoolBackward", dx, g.inputSize(), g);
        expectSize("avgPoolBackward", "dy", dy, n * g.outputSize());
        doAvgPoolBackward(g, dy, dx, (int) n);
    }

    // ---------------------------------------------------------------- losses

    /**
     * Cross-entropy of logits [N, C] against integer labels [N] (stored as floats), mean over the batch.
     * Writes the loss to {@code loss[0]} and, when {@code dlogits} is not null, its gradient.
     * A label outside [0, C) makes the loss NaN (the engine checks labels at the boundary).
     */
    public final void softmaxCrossEntropy(Tensor logits, Tensor labels, Tensor loss, Tensor dlogits) {
        softmaxCrossEntropy(logits, labels, loss, dlogits, false);
    }

    /**
     * As {@link #softmaxCrossEntropy(Tensor, Tensor, Tensor, Tensor)}; with {@code perSample} the gradient is each row's
     * own, softmax - onehot, not divided by the batch (PC's output error on each sample's own energy), in the same pass.
     */
    public final void softmaxCrossEntropy(Tensor logits, Tensor labels, Tensor loss, Tensor dlogits, boolean perSample) {
        mine("softmaxCrossEntropy", logits, labels, loss);
        int n = logits.shape().dim(0);
        expectSize("softmaxCrossEntropy", "labels", labels, n);
        if (loss.size() < 1) throw new IllegalArgumentException("softmaxCrossEntropy: loss tensor is empty");
        if (dlogits != null) sameSize("softmaxCrossEntropy", logits, dlogits);
        int classes = (int) logits.shape().rowSize();
        if (perSample && dlogits != null) doSoftmaxCrossEntropyPerSample(logits, labels, loss, dlogits, n, classes);
        else doSoftmaxCrossEntropy(logits, labels, loss, dlogits, n, classes);
    }

    /**
     * {@link #softmaxCrossEntropy(Tensor, Tensor, Tensor, Tensor, boolean)} of logits given as a linear op's products, as
     * {@link #pcOutputErrorFromProducts} takes them: logits = (logits + addend) + bias first, written back (addend and
     * bias each may be null), then the loss; the same bits as {@link #add}, the bias as {@link #linear} adds it, and
     * softmaxCrossEntropy. A GPU does it in the loss's pass: backprop's output block is then its GEMM and this kernel,
     * and PC's output error in the Gram form this kernel alone.
     */
    public final void softmaxCrossEntropyFromProducts(Tensor logits, Tensor addend, Tensor bias, Tensor labels, Tensor loss, Tensor dlogits, boolean perSample) {
        String op = "softmaxCrossEntropyFromProducts";
        mine(op, logits, labels, loss);
        checkProducts(op, logits, addend, bias);
        int n = logits.shape().dim(0);
        expectSize(op, "labels", labels, n);
        if (loss.size() < 1) throw new IllegalArgumentException(op + ": loss tensor is empty");
        if (dlogits != null) sameSize(op, logits, dlogits);
        if (dlogits != null && (dlogits == logits || dlogits == labels || dlogits == addend || dlogits == bias) || loss == logits || loss == addend || labels == logits
                || labels == addend)
            throw new IllegalArgumentException(op + ": logits, loss and dlogits must be tensors of their own, none the labels, the addend or the bias");
        doSoftmaxCrossEntropyFromProducts(logits, addend, bias, labels, loss, dlogits, perSample && dlogits != null, n, (int) logits.shape().rowSize());
    }

    /**
     * {@link #mse} of y given as a linear op's products, as {@link #softmaxCrossEntropyFromProducts} takes them: y = (y +
     * addend) + bias first, written back; the same bits as add, the bias as {@link #linear} adds it, and mse.
     */
    public final void mseFromProducts(Tensor y, Tensor addend, Tensor bias, Tensor target, Tensor loss, Tensor dy) {
        String op = "mseFromProducts";
        sameSize(op, y, target);
        mine(op, loss);
        checkProducts(op, y, addend, bias);
        if (dy != null) sameSize(op, y, dy);
        if (dy != null && (dy == y || dy == target || dy == addend || dy == bias) || loss == y || loss == addend || target == y || target == addend)
            throw new IllegalArgumentException(op + ": y, loss and dy must be tensors of their own, none the target, the addend or the bias");
        doMseFromProducts(y, addend, bias, target, loss, dy, (int) y.shape().rowSize());
    }

    /** Mean squared error over all elements into {@code loss[0]}; dy = 2 (y - target) / size when not null. */
    public final void mse(Tensor y, Tensor target, Tensor loss, Tensor dy) {
        sameSize("mse", y, target);
        mine("mse", loss);
        if (dy != null) sameSize("mse", y, dy);
        doMse(y, target, loss, dy);
    }

    /** out[outIndex] = number of rows whose argmax over [N, C] logits equals the label. */
    public final void countCorrect(Tensor logits, Tensor labels, Tensor out, long outIndex) {
        mine("countCorrect", logits, labels, out);
        expectSize("countCorrect", "labels", labels, logits.shape().dim(0));
        range("countCorrect", "out", out, outIndex, 1);
        doCountCorrect(logits, labels, out, outIndex, logits.shape().dim(0), (int) logits.shape().rowSize(), false);
    }

    /**
     * out[outIndex] = number of rows whose argmax over [N, C] outputs equals the argmax of the same row of
     * [N, C] targets (the first of equal values, as torch.argmax): with one-hot targets, the rows classified
     * right. A classifier trained with squared error counts its hits with this on the device, so the count
     * comes back in the step's one copy of scalars rather than as two copies of outputs and targets.
     */
    public final void countArgmaxMatches(Tensor outputs, Tensor targets, Tensor out, long outIndex) {
        sameSize("countArgmaxMatches", outputs, targets);
        mine("countArgmaxMatches", out);
        range("countArgmaxMatches", "out", out, outIndex, 1);
        doCountCorrect(outputs, targets, out, outIndex, outputs.shape().dim(0), (int) outputs.shape().rowSize(), true);
    }

    // ---------------------------------------------------------------- predictive coding

    /**
     * A layer's prediction error from the displacement state d = v - vhat (see {@link #pcStrictUpdate}),
     * in one pass: {@code error = (prediction - vhat) - displacement}, the error pcStrictUpdate forms,
     * without the update. {@code error} may be {@code prediction}, not vhat or displacement.
     */
    public final void pcPredictionError(Tensor prediction, Tensor vhat, Tensor displacement, Tensor error) {
        pcPredictionError(prediction, vhat, displacement, error, null, null, null);
    }

    /**
     * {@link #pcPredictionError(Tensor, Tensor, Tensor, Tensor)}, and in the same pass
     * {@code delta = error * derivative}: the error pulled back through the activation whose f' is
     * {@code derivative} (the first step of the backward pass of the block that predicted it, as
     * {@link #multiply} would take it, bit for bit). {@code delta} and {@code derivative} must be
     * tensors of their own.
     */
    public final void pcPredictionError(Tensor prediction, Tensor vhat, Tensor displacement, Tensor error, Tensor derivative, Tensor delta) {
        pcPredictionError(prediction, vhat, displacement, error, derivative, delta, null);
    }

    /**
     * {@link #pcPredictionError(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)}, and where {@code step} is not null, in
     * the same pass, the displacement's step on the layer's own error term into {@code step.next()} ({@link BeliefStep}):
     * PC's relaxation with the belief update folded into the feedback GEMM. {@code derivative} and {@code delta} may both
     * be null; the step's tensors must be tensors of their own.
     */
    public final void pcPredictionError(Tensor prediction, Tensor vhat, Tensor displacement, Tensor error, Tensor derivative, Tensor delta, BeliefStep step) {
        String op = "pcPredictionError";
        if ((derivative == null) != (delta == null)) throw new IllegalArgumentException(op + ": derivative and delta are both given or both null");
        checkPredictionError(op, prediction, vhat, displacement, error, derivative, delta);
        checkStep(op, step, prediction, vhat, displacement, error, derivative, delta, null, null, null);
        doPcPredictionError(prediction, vhat, displacement, error, derivative, delta, step);
    }

    /**
     * The checks of a belief step (where not null) against the op's tensors (null where the op has fewer), the first of
     * which has the displacement's size. Not varargs: PC's sweeps call it many times a step.
     */
    private void checkStep(String op, BeliefStep step, Tensor first, Tensor b, Tensor c, Tensor d, Tensor e, Tensor f, Tensor g, Tensor h, Tensor i) {
        if (step == null) return;
        check(op, step.next());
        sameSizeAs(op, first, step.next());
        if (step.previous() != null) {
            check(op, step.previous());
            sameSizeAs(op, first, step.previous());
        }
        Tensor next = step.next();
        if (next == first || next == b || next == c || next == d || next == e || next == f || next == g || next == h || next == i)
            throw new IllegalArgumentException(op + ": the step's next displacement must be a tensor of its own");
        if (step.previous() == step.next()) throw new IllegalArgumentException(op + ": the step's next and previous displacements must be tensors of their own");
        Tensor copy = step.copy();
        if (copy == null) return;
        check(op, copy);
        sameSizeAs(op, first, copy);
        if (copy == first || copy == b || copy == c || copy == d || copy == e || copy == f || copy == g || copy == h || copy == i)
            throw new IllegalArgumentException(op + ": the step's copy must be a tensor of its own");
    }

    /**
     * An output block of one linear op, evaluated, and its error against a target: {@code output} = x W^T + b as
     * {@link #linear}, then {@code error = output - target} as {@link #add}(1, output, -1, target, error); the same
     * bits as those two ops. A backend may do the bias and the subtraction in one pass after the GEMM. output and
     * error must be tensors of their own, neither an input.
     */
    public final void pcLinearOutputError(Tensor x, Tensor weight, Tensor bias, Tensor output, Tensor target, Tensor error) {
        pcLinearOutputError(x, weight, bias, output, target, error, null, 0, 0f);
    }

    /**
     * {@link #pcLinearOutputError(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)}, and where {@code energy} is not
     * null the error's energy term too: {@code energy[energyIndex] = energyScale * sum of error^2}, as
     * {@link #sumSquares}(error, energyScale, energy, energyIndex) after it, with its bits. A GPU forms it in the
     * same pass (the output's energy, 1/n for a mean squared error or 1/2, in the kernel that forms the error).
     */
    public final void pcLinearOutputError(Tensor x, Tensor weight, Tensor bias, Tensor output, Tensor target, Tensor error,
                                          Tensor energy, long energyIndex, float energyScale) {
        String op = "pcLinearOutputError";
        checkLinearActivation(op, x, weight, bias, output, error, null);
        check(op, target);
        sameSizeAs(op, output, target);
        if (target == output || target == error) throw new IllegalArgumentException(op + ": output and error must be tensors of their own, neither the target");
        if (energy != null) {
            mine(op, energy);
            range(op, "energy", energy, energyIndex, 1);
            if (energy == output || energy == error || energy == target) throw new IllegalArgumentException(op + ": energy must be a tensor of its own");
        }
        doPcLinearOutputError(x, weight, bias, output, target, error, energy, energyIndex, energyScale, x.shape().dim(0), (int) x.shape().rowSize(), weight.shape().dim(0));
    }

    /** The checks of {@link #pcPredictionError(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)}, for {@code op}; derivative and delta both null: the error's alone. */
    private void checkPredictionError(String op, Tensor prediction, Tensor vhat, Tensor displacement, Tensor error, Tensor derivative, Tensor delta) {
        sameSize(op, prediction, vhat, displacement, error);
        if (error == vhat || error == displacement) throw new IllegalArgumentException(op + ": error must not be vhat or displacement (both are read after it is written)");
        if (derivative == null && delta == null) return; // the error alone
        check(op, derivative);
        check(op, delta);
        sameSizeAs(op, prediction, derivative);
        sameSizeAs(op, prediction, delta);
        if (derivative == prediction || derivative == vhat || derivative == displacement || derivative == error || derivative == delta
                || delta == prediction || delta == vhat || delta == displacement || delta == error)
            throw new IllegalArgumentException(op + ": derivative and delta must be tensors of their own");
    }

    /**
     * A block of a linear op and an activation whose f' is kept, evaluated, and the prediction error of the
     * layer it predicts with its pull-back through f': {@link #linearActivation} into z, prediction and
     * derivative, then {@link #pcPredictionError(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)} from
     * that prediction; the same bits as those two ops. A backend may do everything after the GEMM in one
     * pass (on a GPU, a kernel instead of two one after another on each step of PC's relaxation). The
     * outputs (z, prediction, derivative, error, delta) must be tensors of their own, none an input.
     */
    public final void pcLinearPredictionError(Tensor x, Tensor weight, Tensor bias, Activation f, float slope, Tensor z, Tensor prediction, Tensor derivative,
                                              Tensor vhat, Tensor displacement, Tensor error, Tensor delta) {
        pcLinearPredictionError(x, weight, bias, f, slope, z, prediction, derivative, vhat, displacement, error, delta, null);
    }

    /**
     * {@link #pcLinearPredictionError}, and where {@code step} is not null the displacement's step on the layer's own
     * error term ({@link #pcPredictionError(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, BeliefStep)}), in the same
     * pass after the GEMM.
     */
    public final void pcLinearPredictionError(Tensor x, Tensor weight, Tensor bias, Activation f, float slope, Tensor z, Tensor prediction, Tensor derivative,
                                              Tensor vhat, Tensor displacement, Tensor error, Tensor delta, BeliefStep step) {
        String op = "pcLinearPredictionError";
        if (derivative == null) throw new NullPointerException(op + ": derivative is null");
        checkLinearActivation(op, x, weight, bias, z, prediction, derivative);
        checkPredictionError(op, prediction, vhat, displacement, error, derivative, delta);
        if (error == prediction || error == z || delta == z || vhat == z || displacement == z || error == x || delta == x)
            throw new IllegalArgumentException(op + ": z, prediction, derivative, error and delta must be tensors of their own, none an input");
        checkStep(op, step, prediction, vhat, displacement, error, derivative, delta, z, x, bias);
        doPcLinearPredictionError(x, weight, bias, f, slope, z, prediction, derivative, vhat, displacement, error, delta, step,
                x.shape().dim(0), (int) x.shape().rowSize(), weight.shape().dim(0));
    }

    /**
     * {@link #pcLinearPredictionError} after its GEMM, the GEMM's product x W^T given: in z, or where {@code addend} is not
     * null as z + addend. Then z = (z + addend) + bias (a bias per output feature, an offset of z's size, or null), and the
     * prediction, derivative, error, delta and step as pcLinearPredictionError forms them after its GEMM; the same bits as
     * {@link #add}(1, z, 1, addend, z), the bias as {@link #linear} adds it, {@link #activationWithDerivative} and
     * {@link #pcPredictionError(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, BeliefStep)}. PC's folded relaxation on a
     * GPU forms a block's pre-activation at its moved input as two products that run beside the feedback GEMM (its Gram
     * form), so that a step's error op waits for no GEMM of its own. z is [batch, out]; the outputs must be tensors of
     * their own, none an input.
     */
    public final void pcPredictionErrorFromProducts(Tensor z, Tensor addend, Tensor bias, Activation f, float slope, Tensor prediction, Tensor derivative,
                                                    Tensor vhat, Tensor displacement, Tensor error, Tensor delta, BeliefStep step) {
        String op = "pcPredictionErrorFromProducts";
        if (derivative == null) throw new NullPointerException(op + ": derivative is null");
        mine(op, z, prediction);
        checkProducts(op, z, addend, bias);
        check(op, derivative);
        sameSizeAs(op, z, prediction);
        checkPredictionError(op, prediction, vhat, displacement, error, derivative, delta);
        if (z == prediction || z == derivative || z == error || z == delta || z == vhat || z == displacement
                || addend == prediction || addend == derivative || addend == error || addend == delta)
            throw new IllegalArgumentException(op + ": z, prediction, derivative, error and delta must be tensors of their own, and the addend none of them");
        checkStep(op, step, prediction, vhat, displacement, error, derivative, delta, z, addend, bias);
        doPcPredictionErrorFromProducts(z, addend, bias, f, slope, prediction, derivative, vhat, displacement, error, delta, step, (int) z.shape().rowSize());
    }

    /**
     * {@link #pcLinearOutputError} after its GEMM, the product given as {@link #pcPredictionErrorFromProducts} takes it:
     * output = (output + addend) + bias, then error = output - target (and where {@code energy} is not null its energy
     * term); the same bits as add, the bias as {@link #linear} adds it, add(1, output, -1, target, error) and
     * {@link #sumSquares}.
     */
    public final void pcOutputErrorFromProducts(Tensor output, Tensor addend, Tensor bias, Tensor target, Tensor error, Tensor energy, long energyIndex,
                                                float energyScale) {
        String op = "pcOutputErrorFromProducts";
        mine(op, output, target, error);
        checkProducts(op, output, addend, bias);
        sameSize(op, output, target, error);
        if (target == output || target == error || error == output || addend == error || addend == target)
            throw new IllegalArgumentException(op + ": output and error must be tensors of their own, neither the target nor the addend");
        if (energy != null) {
            mine(op, energy);
            range(op, "energy", energy, energyIndex, 1);
            if (energy == output || energy == error || energy == target || energy == addend) throw new IllegalArgumentException(op + ": energy must be a tensor of its own");
        }
        doPcOutputErrorFromProducts(output, addend, bias, target, error, energy, energyIndex, energyScale, (int) output.shape().rowSize());
    }

    /** The checks of a pre-activation given as products: z [batch, out], the addend z's size or null, the bias [out], z's size or null, neither z. */
    private void checkProducts(String op, Tensor z, Tensor addend, Tensor bias) {
        long out = z.shape().rowSize();
        if (addend != null) {
            check(op, addend);
            sameSizeAs(op, z, addend);
        }
        if (bias != null) {
            check(op, bias);
            if (bias.size() != out && bias.size() != z.size())
                throw new IllegalArgumentException(op + ": bias " + bias.shape() + " does not fit " + z.shape() + " (need [" + out + "] or its size)");
        }
        if (addend == z || bias == z || (bias != null && bias == addend)) throw new IllegalArgumentException(op + ": z, the addend and the bias must be tensors of their own");
    }

    /**
     * One STRICT belief update, fused, with the displacement d = v - vhat kept as state so that the
     * prediction error does not cancel in float32:
     * <pre>
     *   error        = (prediction - vhat) - displacement      // = f_l(v_{l-1}) - v_l
     *   displacement += eta * (error - feedback)               // gradient descent on the energy
     *   belief       = vhat + displacement
     * </pre>
     * vhat is layer l's feedforward value, feedback the VJP of the block above at v_l against its
     * error. When prediction and vhat are the same tensor (layer 1: f_1(x) = vhat_1) the error is
     * exactly -displacement.
     * {@code error} may be null when no one reads it (layer 1's error before the last sweep).
     */
    public final void pcStrictUpdate(Tensor prediction, Tensor vhat, Tensor feedback, Tensor displacement, Tensor belief, Tensor error, float eta) {
        sameSize("pcStrictUpdate", prediction, vhat, feedback, displacement, belief);
        if (error != null) {
            check("pcStrictUpdate", error);
            sameSizeAs("pcStrictUpdate", prediction, error);
        }
        doPcStrictUpdate(prediction, vhat, feedback, displacement, belief, error, eta);
    }

    /**
     * PC's belief step by SGD with momentum (PyTorch's and optax's, without dampening: the velocity
     * starts at the first gradient), fused as {@link #pcStrictUpdate} is:
     * <pre>
     *   error        = (prediction - vhat) - displacement
     *   velocity     = firstStep ? feedback - error : momentum * velocity + (feedback - error)
     *   displacement -= eta * velocity
     *   belief       = vhat + displacement
     * </pre>
     * feedback - error is the energy's gradient at v_l. With momentum 0 this is pcStrictUpdate, which
     * needs no velocity. {@code error} may be null when no one reads it.
     */
    public final void pcMomentumUpdate(Tensor prediction, Tensor vhat, Tensor feedback, Tensor displacement, Tensor velocity, Tensor belief,
                                       Tensor error, float eta, float momentum, boolean firstStep) {
        if (error == null) sameSize("pcMomentumUpdate", prediction, vhat, feedback, displacement, velocity, belief);
        else sameSize("pcMomentumUpdate", prediction, vhat, feedback, displacement, velocity, belief, error);
        doPcMomentumUpdate(prediction, vhat, feedback, displacement, velocity, belief, error, eta, momentum, firstStep);
    }

    /**
     * PC's belief step by Adam (PyTorch's, without weight decay) on the displacement, fused as {@link #pcMomentumUpdate} is:
     * <pre>
     *   error        = (prediction - vhat) - displacement
     *   g            = feedback - error
     *   moment       = beta1 * moment + (1 - beta1) * g
     *   secondMoment = beta2 * secondMoment + (1 - beta2) * g^2
     *   displacement -= eta / (1 - beta1^step) * moment / (sqrt(secondMoment) / sqrt(1 - beta2^step) + eps)
     *   belief       = vhat + displacement
     * </pre>
     * in one pass where {@link #pcPredictionError}, g, {@link #adamStep} on the displacement and the belief would be four;
     * g is the energy's gradient at v_l. {@code feedback} is only read; {@code error} may be null when no one reads it.
     * {@code step} counts from 1, as Adam's bias corrections do.
     */
    public final void pcAdamUpdate(Tensor prediction, Tensor vhat, Tensor feedback, Tensor displacement, Tensor moment, Tensor secondMoment,
                                   Tensor belief, Tensor error, float eta, float beta1, float beta2, float eps, long step) {
        if (error == null) sameSize("pcAdamUpdate", prediction, vhat, feedback, displacement, moment, secondMoment, belief);
        else sameSize("pcAdamUpdate", prediction, vhat, feedback, displacement, moment, secondMoment, belief, error);
        checkAdamStep(step);
        doPcAdamUpdate(prediction, vhat, feedback, displacement, moment, secondMoment, belief, error, adamStepSize(eta, beta1, step), adamBc2Sqrt(beta2, step),
                beta1, beta2, eps);
    }

    /** out[outIndex] = scale * sum(x^2), accumulated in double: the energy of a prediction error. */
    public final void sumSquares(Tensor x, float scale, Tensor out, long outIndex) {
        mine("sumSquares", x, out);
        range("sumSquares", "out", out, outIndex, 1);
        doSumSquares(x, scale, out, outIndex);
    }

    // ---------------------------------------------------------------- optimizers (PyTorch semantics)

    /** torch.optim.SGD step; {@code firstStep} initialises the momentum buffer to the gradient. */
    public final void sgdStep(Tensor param, Tensor grad, Tensor momentumBuffer, float lr, float momentum, float dampening,
                              float weightDecay, boolean nesterov, boolean firstStep) {
        sgdFits("sgdStep", param, grad, momentumBuffer, momentum);
        doSgdStep(param, grad, momentumBuffer, lr, momentum, dampening, weightDecay, nesterov, firstStep, null, 0, null, 0, 0);
    }

    /** That an SGD step's tensors fit, for {@code op}: param, grad and the momentum buffer (needed with momentum) of one size. */
    private void sgdFits(String op, Tensor param, Tensor grad, Tensor momentumBuffer, float momentum) {
        if (momentumBuffer != null) sameSize(op, param, grad, momentumBuffer); else sameSize(op, param, grad);
        if (momentum != 0 && momentumBuffer == null) throw new IllegalArgumentException(op + ": momentum " + momentum + " needs a momentum buffer");
    }

    /** The scalars of an SGD step that {@link #sgdScalars} writes: the learning rate and whether it is the first step (1) or not (0). */
    public static final int SGD_SCALARS = 2;

    /**
     * What an SGD step takes from the host, into {@code into[at .. at + SGD_SCALARS)}: the learning rate, and 1
     * for the first step (whose momentum buffer starts as the gradient), else 0. For a step a recorded sequence of
     * ops holds: {@link #sgdStep(Tensor, Tensor, Tensor, Tensor, long, Tensor, long, float, float, float, boolean)}.
     *
     * @param lr        the learning rate
     * @param firstStep whether it is the optimizer's first step
     * @param into      where the scalars go
     * @param at        the index of the first
     */
    public static void sgdScalars(float lr, boolean firstStep, float[] into, int at) {
        into[at] = lr;
        into[at + 1] = firstStep ? 1f : 0f;
    }

    /**
     * As {@link #sgdStep(Tensor, Tensor, Tensor, float, float, float, float, boolean, boolean)}, with the learning
     * rate and the first-step flag read from {@code scalars[at .. at + SGD_SCALARS)} when the op runs, as
     * {@link #sgdScalars} wrote them, and where {@code guard} is not null, doing nothing unless
     * {@code guard[guardIndex]} is finite: as the Adam step of
     * {@link #adamStep(Tensor, Tensor, Tensor, Tensor, Tensor, long, Tensor, long, float, float, float, float)}.
     */
    public final void sgdStep(Tensor param, Tensor grad, Tensor momentumBuffer, Tensor scalars, long at, Tensor guard, long guardIndex,
                              float momentum, float dampening, float weightDecay, boolean nesterov) {
        sgdFits("sgdStep", param, grad, momentumBuffer, momentum);
        checkRecordedStep("sgdStep", scalars, at, SGD_SCALARS, guard, guardIndex, 1);
        doSgdStep(param, grad, momentumBuffer, 0f, momentum, dampening, weightDecay, nesterov, false, scalars, at, guard, guardIndex, 1);
    }

    /** torch.optim.Adam step number {@code step} (1-based), with bias correction and L2 weight decay. */
    public final void adamStep(Tensor param, Tensor grad, Tensor m, Tensor v, float lr, float beta1, float beta2, float eps,
                               float weightDecay, long step) {
        adamStep(param, grad, m, v, lr, beta1, beta2, eps, weightDecay, 1f, step);
    }

    /**
     * As {@link #adamStep(Tensor, Tensor, Tensor, Tensor, float, float, float, float, float, long)}, with the
     * parameters first multiplied by {@code decay} in the same pass: AdamW's decoupled decay 1 - lr * weightDecay
     * (for finite parameters the bits of {@code axpby(0, param, decay, param)} before the step; 1 leaves them as
     * they are).
     */
    public final void adamStep(Tensor param, Tensor grad, Tensor m, Tensor v, float lr, float beta1, float beta2, float eps,
                               float weightDecay, float decay, long step) {
        sameSize("adamStep", param, grad, m, v);
        checkAdamStep(step);
        // adamScalars' values without its array: a step leaves no garbage however often it is called
        doAdamStep(param, grad, m, v, adamStepSize(lr, beta1, step), adamBc2Sqrt(beta2, step), beta1, beta2, eps, weightDecay, decay, null, 0, null, 0, 0);
    }

    private static void checkAdamStep(long step) {
        if (step < 1) throw new IllegalArgumentException("adamStep: step must be >= 1, got " + step);
    }

    /** lr / (1 - beta1^step): Adam's step size with its first bias correction. */
    private static float adamStepSize(float lr, float beta1, long step) { return (float) (lr / (1 - Math.pow(beta1, step))); }

    /** sqrt(1 - beta2^step): Adam's second bias correction, as its step divides by it. */
    private static float adamBc2Sqrt(float beta2, long step) { return (float) Math.sqrt(1 - Math.pow(beta2, step)); }

    /** The scalars of an Adam step that {@link #adamScalars} writes: the step size, sqrt(1 - beta2^step) and the decay. */
    public static final int ADAM_SCALARS = 3;

    /**
     * What Adam's step number {@code step} (1-based) takes from the host's count and learning rate, as
     * {@link #adamStep(Tensor, Tensor, Tensor, Tensor, float, float, float, float, float, float, long)} computes it,
     * into {@code into[at .. at + ADAM_SCALARS)}: lr / (1 - beta1^step), sqrt(1 - beta2^step) and the decay. A
     * recorded sequence of ops ({@link #replayable}) that takes Adam steps (a training step's, or iPC's one per
     * inference step) reads them from a tensor the host fills before each replay:
     * {@link #adamStep(Tensor, Tensor, Tensor, Tensor, Tensor, long, Tensor, long, float, float, float, float)}.
     *
     * @param lr    the learning rate
     * @param beta1 the first moment's decay
     * @param beta2 the second moment's decay
     * @param decay the parameters' factor before the step (AdamW's 1 - lr * weightDecay; 1 for none)
     * @param step  the step number, from 1
     * @param into  where the scalars go
     * @param at    the index of the first
     */
    public static void adamScalars(float lr, float beta1, float beta2, float decay, long step, float[] into, int at) {
        checkAdamStep(step);
        into[at] = adamStepSize(lr, beta1, step);
        into[at + 1] = adamBc2Sqrt(beta2, step);
        into[at + 2] = decay;
    }

    /**
     * As {@link #adamStep(Tensor, Tensor, Tensor, Tensor, float, float, float, float, float, float, long)}, with
     * the scalars that change from step to step read from {@code scalars[at .. at + ADAM_SCALARS)} when the op
     * runs, as {@link #adamScalars} wrote them: the same bits, and a step a recorded sequence of ops can hold.
     * Where {@code guard} is not null, the step does nothing (param, m and v stay as they are) unless
     * {@code guard[guardIndex]} is finite: a step recorded after the loss it guards on (a training step's), so
     * that a non-finite loss leaves the parameters as they were, as a host that reads the loss first would.
     */
    public final void adamStep(Tensor param, Tensor grad, Tensor m, Tensor v, Tensor scalars, long at, Tensor guard, long guardIndex,
                               float beta1, float beta2, float eps, float weightDecay) {
        sameSize("adamStep", param, grad, m, v);
        checkRecordedStep("adamStep", scalars, at, ADAM_SCALARS, guard, guardIndex, 1);
        doAdamStep(param, grad, m, v, 0f, 0f, beta1, beta2, eps, weightDecay, 0f, scalars, at, guard, guardIndex, 1);
    }

    /**
     * The Adam steps of several parameters that read one tensor of scalars and one guard: each as
     * {@link #adamStep(Tensor, Tensor, Tensor, Tensor, Tensor, long, Tensor, long, float, float, float, float)} takes it,
     * the same bits. A backend may take them all in one pass: on a GPU one kernel, where a kernel a parameter would
     * each cost a launch. Parameter i is {@code params[i]}, with its gradient, first and second moments at index i.
     */
    public final void adamSteps(Tensor[] params, Tensor[] grads, Tensor[] m, Tensor[] v, Tensor scalars, long at, Tensor guard, long guardIndex,
                                float beta1, float beta2, float eps, float weightDecay) {
        adamSteps(params, grads, m, v, scalars, at, guard, guardIndex, 1, beta1, beta2, eps, weightDecay);
    }

    /**
     * As {@link #adamSteps(Tensor[], Tensor[], Tensor[], Tensor[], Tensor, long, Tensor, long, float, float, float, float)},
     * guarded on {@code guardCount} values from {@code guardIndex}: the steps do nothing unless all of them are finite (a
     * training step's loss and its energy's terms, checked in the step's own kernel rather than summed by one before it).
     */
    public final void adamSteps(Tensor[] params, Tensor[] grads, Tensor[] m, Tensor[] v, Tensor scalars, long at, Tensor guard, long guardIndex, int guardCount,
                                float beta1, float beta2, float eps, float weightDecay) {
        if (grads.length != params.length || m.length != params.length || v.length != params.length)
            throw new IllegalArgumentException("adamSteps: " + params.length + " parameters but " + grads.length + " gradients, " + m.length + " first and " + v.length + " second moments");
        for (int i = 0; i < params.length; i++) sameSize("adamSteps", params[i], grads[i], m[i], v[i]);
        checkRecordedStep("adamSteps", scalars, at, ADAM_SCALARS, guard, guardIndex, guardCount);
        if (params.length > 0) doAdamSteps(params, grads, m, v, scalars, at, guard, guardIndex, guardCount, beta1, beta2, eps, weightDecay);
    }

    /**
     * The SGD steps of several parameters that read one tensor of scalars and one guard: each as
     * {@link #sgdStep(Tensor, Tensor, Tensor, Tensor, long, Tensor, long, float, float, float, boolean)} takes it, the
     * same bits, in one pass where the backend can (see {@link #adamSteps}). {@code buffers[i]} is parameter i's momentum
     * buffer (null entries without momentum).
     */
    public final void sgdSteps(Tensor[] params, Tensor[] grads, Tensor[] buffers, Tensor scalars, long at, Tensor guard, long guardIndex,
                               float momentum, float dampening, float weightDecay, boolean nesterov) {
        sgdSteps(params, grads, buffers, scalars, at, guard, guardIndex, 1, momentum, dampening, weightDecay, nesterov);
    }

    /**
     * As {@link #sgdSteps(Tensor[], Tensor[], Tensor[], Tensor, long, Tensor, long, float, float, float, boolean)}, guarded
     * on {@code guardCount} values from {@code guardIndex}, as {@link #adamSteps(Tensor[], Tensor[], Tensor[], Tensor[], Tensor, long, Tensor, long, int, float, float, float, float)}.
     */
    public final void sgdSteps(Tensor[] params, Tensor[] grads, Tensor[] buffers, Tensor scalars, long at, Tensor guard, long guardIndex, int guardCount,
                               float momentum, float dampening, float weightDecay, boolean nesterov) {
        if (grads.length != params.length || buffers.length != params.length)
            throw new IllegalArgumentException("sgdSteps: " + params.length + " parameters but " + grads.length + " gradients and " + buffers.length + " momentum buffers");
        for (int i = 0; i < params.length; i++) sgdFits("sgdSteps", params[i], grads[i], buffers[i], momentum);
        checkRecordedStep("sgdSteps", scalars, at, SGD_SCALARS, guard, guardIndex, guardCount);
        if (params.length > 0) doSgdSteps(params, grads, buffers, scalars, at, guard, guardIndex, guardCount, momentum, dampening, weightDecay, nesterov);
    }

    /** An optimizer step's scalars (count of them at {@code at}) and its guard, where given, are this backend's and in range. */
    private void checkRecordedStep(String op, Tensor scalars, long at, int count, Tensor guard, long guardIndex, int guardCount) {
        mine(op, scalars);
        range(op, "scalars", scalars, at, count);
        if (guard != null) {
            if (guardCount < 1) throw new IllegalArgumentException(op + ": a guard of " + guardCount + " values; at least 1");
            mine(op, guard);
            range(op, "guard", guard, guardIndex, guardCount);
        }
    }

    // ---------------------------------------------------------------- random

    /**
     * Fills with uniform values in [lo, hi) from a counter-based generator: element i depends only on
     * (seed, i), so every backend produces the same numbers (see {@link Random}).
     */
    public final void randomUniform(Tensor t, float lo, float hi, long seed) {
        mine("randomUniform", t);
        if (!(hi > lo)) throw new IllegalArgumentException("randomUniform: need lo < hi, got [" + lo + ", " + hi + ")");
        doRandomUniform(t, lo, hi, seed);
    }

    // ---------------------------------------------------------------- lifecycle

    @Override public final void close() {
        if (closed) return;
        closed = true;
        doClose();
    }

    /** True once {@link #close} has been called. */
    public final boolean isClosed() { return closed; }

    /** Frees the backend's own resources; called once, by {@link #close}. */
    protected void doClose() {}

    // ---------------------------------------------------------------- implementation hooks

    /** A zero-filled tensor that owns its memory. */
    protected abstract Tensor doAllocate(Shape shape);
    /** A view of base's elements [offset, offset + shape.size()): a tensor made with {@link Tensor#Tensor(Shape, Tensor)}. */
    protected abstract Tensor doView(Tensor base, long offset, Shape shape);
    /** Copies host memory into {@code dst[dstOffset..]}. */
    protected abstract void doUpload(MemorySegment src, Tensor dst, long dstOffset);
    /** Copies {@code dst.byteSize()} bytes from {@code src[srcOffset..]} to host memory. */
    protected abstract void doDownload(Tensor src, long srcOffset, MemorySegment dst);
    /** Batched row-major GEMM with validated arguments (see {@link #gemm}). */
    protected abstract void doGemm(boolean transA, boolean transB, int m, int n, int k, float alpha, Tensor a, long aOffset, int lda, long strideA,
                                   Tensor b, long bOffset, int ldb, long strideB, float beta, Tensor c, long cOffset, int ldc, long strideC, int batch);
    /** Sets {@code length} floats from {@code offset} to {@code value}. Default: {@link Compositions#fill} (from the host). */
    protected void doFill(Tensor t, long offset, long length, float value) { Compositions.fill(this, t, offset, length, value); }
    /** Copies a range of floats between tensors of this backend. Default: {@link Compositions#copy} (through the host). */
    protected void doCopy(Tensor src, long srcOffset, Tensor dst, long dstOffset, long length) { Compositions.copy(this, src, srcOffset, dst, dstOffset, length); }
    /** y = alpha x + beta y, elementwise. */
    protected abstract void doAxpby(float alpha, Tensor x, float beta, Tensor y);
    /** out = alpha a + beta b, elementwise. */
    protected abstract void doAdd(float alpha, Tensor a, float beta, Tensor b, Tensor out);
    /** y = f(x), elementwise. */
    protected abstract void doActivation(Activation f, float slope, Tensor x, Tensor y);
    /** out = maxPool(x + dx) - maxPool(x) without rounding x + dx: see {@link #maxPoolIncrement}. */
    protected abstract void doMaxPoolIncrement(Tensor x, Tensor dx, PoolGeometry g, Tensor out, int images);
    /** An activation at a moved point and its change: see {@link #activationIncrement}. */
    protected abstract void doActivationIncrement(Activation f, float slope, Tensor x0, Tensor dx, Tensor x, Tensor y, Tensor derivative, Tensor minus, Tensor change,
                                                  Tensor delta);
    /** STRICT's step from a formed error: see {@link #pcStrictStep}. */
    protected abstract void doPcStrictStep(Tensor error, Tensor vhat, Tensor feedback, Tensor displacement, Tensor belief, float eta);
    /** dx = f'(x) dy, given x and y = f(x). */
    protected abstract void doActivationBackward(Activation f, float slope, Tensor x, Tensor y, Tensor dy, Tensor dx);
    /**
     * A block's evaluation and the prediction error of the layer above it: see {@link #pcLinearPredictionError}.
     * Default: {@link Compositions#pcLinearPredictionError}.
     */
    protected void doPcLinearPredictionError(Tensor x, Tensor weight, Tensor bias, Activation f, float slope, Tensor z, Tensor prediction, Tensor derivative,
                                             Tensor vhat, Tensor displacement, Tensor error, Tensor delta, BeliefStep step, int batch, int in, int out) {
        Compositions.pcLinearPredictionError(this, x, weight, bias, f, slope, z, prediction, derivative, vhat, displacement, error, delta, step);
    }
    /** A block's prediction error from its pre-activation's products: see {@link #pcPredictionErrorFromProducts}. Default: {@link Compositions#pcPredictionErrorFromProducts}. */
    protected void doPcPredictionErrorFromProducts(Tensor z, Tensor addend, Tensor bias, Activation f, float slope, Tensor prediction, Tensor derivative,
                                                   Tensor vhat, Tensor displacement, Tensor error, Tensor delta, BeliefStep step, int out) {
        Compositions.pcPredictionErrorFromProducts(this, z, addend, bias, f, slope, prediction, derivative, vhat, displacement, error, delta, step);
    }
    /** An output block's error from its output's products: see {@link #pcOutputErrorFromProducts}. Default: {@link Compositions#pcOutputErrorFromProducts}. */
    protected void doPcOutputErrorFromProducts(Tensor output, Tensor addend, Tensor bias, Tensor target, Tensor error, Tensor energy, long energyIndex,
                                               float energyScale, int out) {
        Compositions.pcOutputErrorFromProducts(this, output, addend, bias, target, error, energy, energyIndex, energyScale);
    }
    /** An output block's evaluation and its error: see {@link #pcLinearOutputError}. Default: {@link Compositions#pcLinearOutputError}. */
    protected void doPcLinearOutputError(Tensor x, Tensor weight, Tensor bias, Tensor output, Tensor target, Tensor error,
                                         Tensor energy, long energyIndex, float energyScale, int batch, int in, int out) {
        Compositions.pcLinearOutputError(this, x, weight, bias, output, target, error, energy, energyIndex, energyScale);
    }
    /** A linear layer and its activation: see {@link #linearActivation}. Default: {@link Compositions#linearActivation}. */
    protected void doLinearActivation(Tensor x, Tensor weight, Tensor bias, Activation f, float slope, Tensor z, Tensor y, Tensor derivative, int batch, int in, int out) {
        Compositions.linearActivation(this, x, weight, bias, f, slope, z, y, derivative);
    }
    /** y = f(x) and derivative = f'(x): see {@link #activationWithDerivative}. Default: {@link Compositions#activationWithDerivative}. */
    protected void doActivationWithDerivative(Activation f, float slope, Tensor x, Tensor y, Tensor derivative) {
        Compositions.activationWithDerivative(this, f, slope, x, y, derivative);
    }
    /** out = a b, elementwise. */
    protected abstract void doMultiply(Tensor a, Tensor b, Tensor out);
    /** Adds bias[c] to every element of channel c of y ([..., channels, inner] blocks). */
    protected abstract void doAddBias(Tensor y, Tensor bias, int channels, int inner);
    /** y = x scale[c] (+ shift[c]) per channel: see {@link #scaleChannels}. */
    protected abstract void doScaleChannels(Tensor x, Tensor scale, Tensor shift, int channels, int inner, Tensor y);
    /** db = alpha times the sum of dy over everything but the channel, plus beta db. */
    protected abstract void doBiasGrad(Tensor dy, Tensor db, int channels, int inner, float alpha, float beta);
    /** y = conv(x, weight), no bias, over {@code images} images. */
    protected abstract void doConv2d(Tensor x, Tensor weight, Conv2dGeometry g, Tensor y, int images, int outChannels);
    /** dx = the convolution's VJP with respect to its input. */
    protected abstract void doConv2dBackwardInput(Tensor dy, Tensor weight, Conv2dGeometry g, Tensor dx, int images, int outChannels);
    /** dweight = the convolution's VJP with respect to its weight (overwritten). */
    protected abstract void doConv2dBackwardWeight(Tensor x, Tensor dy, Conv2dGeometry g, Tensor dweight, int images, int outChannels);
    /** Max pooling over {@code images} images. */
    protected abstract void doMaxPool(Tensor x, PoolGeometry g, Tensor y, int images);
    /** The VJP of max pooling: dy goes to each window's winner in x (PyTorch's tie rule). */
    protected abstract void doMaxPoolBackward(Tensor x, PoolGeometry g, Tensor dy, Tensor dx, int images);
    /** Average pooling over {@code images} images. */
    protected abstract void doAvgPool(Tensor x, PoolGeometry g, Tensor y, int images);
    /** The VJP of average pooling over {@code images} images. */
    protected abstract void doAvgPoolBackward(PoolGeometry g, Tensor dy, Tensor dx, int images);
    /** Mean softmax cross-entropy of the logits against the labels into loss[0], and its gradient into dlogits when not null. */
    protected abstract void doSoftmaxCrossEntropy(Tensor logits, Tensor labels, Tensor loss, Tensor dlogits, int rows, int classes);

    /** {@link #doSoftmaxCrossEntropy} with each row's own gradient, softmax - onehot ({@code dlogits} not null), in the same pass. */
    protected abstract void doSoftmaxCrossEntropyPerSample(Tensor logits, Tensor labels, Tensor loss, Tensor dlogits, int rows, int classes);
    /** Softmax cross-entropy of logits given as products: see {@link #softmaxCrossEntropyFromProducts}. Default: the products added, then the loss's own hook. */
    protected void doSoftmaxCrossEntropyFromProducts(Tensor logits, Tensor addend, Tensor bias, Tensor labels, Tensor loss, Tensor dlogits, boolean perSample,
                                                     int rows, int classes) {
        Compositions.addProducts(this, logits, addend, bias);
        if (perSample) doSoftmaxCrossEntropyPerSample(logits, labels, loss, dlogits, rows, classes);
        else doSoftmaxCrossEntropy(logits, labels, loss, dlogits, rows, classes);
    }
    /** Mean squared error of y given as products: see {@link #mseFromProducts}. Default: the products added, then {@link #doMse}. */
    protected void doMseFromProducts(Tensor y, Tensor addend, Tensor bias, Tensor target, Tensor loss, Tensor dy, int out) {
        Compositions.addProducts(this, y, addend, bias);
        doMse(y, target, loss, dy);
    }
    /** Mean squared error of y against target into loss[0], and its gradient into dy when dy is not null. Default: {@link Compositions#mse}. */
    protected void doMse(Tensor y, Tensor target, Tensor loss, Tensor dy) { Compositions.mse(this, y, target, loss, dy); }
    /**
     * Writes the number of rows whose argmax equals the label to out[outIndex]: labels are [rows] class
     * indices, or with {@code labelRows} [rows, classes] rows whose own argmax is the class.
     */
    protected abstract void doCountCorrect(Tensor logits, Tensor labels, Tensor out, long outIndex, int rows, int classes, boolean labelRows);
    /**
     * A layer's prediction error {@code (prediction - vhat) - displacement}, and where {@code derivative} is not null its
     * product with it into {@code delta}: see {@link #pcPredictionError(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)}.
     * Where {@code step} is not null, also the displacement's step: see {@link BeliefStep}. Default: {@link Compositions#pcPredictionError}.
     */
    protected void doPcPredictionError(Tensor prediction, Tensor vhat, Tensor displacement, Tensor error, Tensor derivative, Tensor delta, BeliefStep step) {
        Compositions.pcPredictionError(this, prediction, vhat, displacement, error, derivative, delta, step);
    }
    /** One STRICT update of a layer's displacement, belief and error: see {@link #pcStrictUpdate}. Default: {@link Compositions#pcStrictUpdate}. */
    protected void doPcStrictUpdate(Tensor prediction, Tensor vhat, Tensor feedback, Tensor displacement, Tensor belief, Tensor error, float eta) {
        Compositions.pcStrictUpdate(this, prediction, vhat, feedback, displacement, belief, error, eta);
    }
    /** PC's belief step with momentum: see {@link #pcMomentumUpdate}. Default: {@link Compositions#pcMomentumUpdate}. */
    protected void doPcMomentumUpdate(Tensor prediction, Tensor vhat, Tensor feedback, Tensor displacement, Tensor velocity, Tensor belief,
                                      Tensor error, float eta, float momentum, boolean firstStep) {
        Compositions.pcMomentumUpdate(this, prediction, vhat, feedback, displacement, velocity, belief, error, eta, momentum, firstStep);
    }

    /**
     * PC's belief step by Adam: see {@link #pcAdamUpdate}, with its bias corrections folded into {@code stepSize} and
     * {@code bc2Sqrt} as {@link #doAdamStep} takes them. Default: {@link Compositions#pcAdamUpdate}.
     */
    protected void doPcAdamUpdate(Tensor prediction, Tensor vhat, Tensor feedback, Tensor displacement, Tensor moment, Tensor secondMoment, Tensor belief,
                                  Tensor error, float stepSize, float bc2Sqrt, float beta1, float beta2, float eps) {
        Compositions.pcAdamUpdate(this, prediction, vhat, feedback, displacement, moment, secondMoment, belief, error, stepSize, bc2Sqrt, beta1, beta2, eps);
    }

    /** out[outIndex] = scale times the sum of squares of x. */
    protected abstract void doSumSquares(Tensor x, float scale, Tensor out, long outIndex);
    /**
     * One SGD step on a parameter (PyTorch's torch.optim.SGD). Where {@code scalars} is not null, lr and the first-step
     * flag come from scalars[at .. at + 2) when the op runs (as {@link #sgdScalars} writes them); where {@code guard} is
     * not null, nothing changes unless guard[guardIndex .. guardIndex + guardCount) are all finite. Default: {@link Compositions#sgdStep}, which reads
     * the scalars and the guard on the host (a backend that records ops overrides this).
     */
    protected void doSgdStep(Tensor param, Tensor grad, Tensor momentumBuffer, float lr, float momentum, float dampening,
                             float weightDecay, boolean nesterov, boolean firstStep, Tensor scalars, long at, Tensor guard, long guardIndex, int guardCount) {
        for (int i = 0; guard != null && i < guardCount; i++) if (!Float.isFinite(readScalar(guard, guardIndex + i))) return;
        if (scalars != null) {
            lr = readScalar(scalars, at);
            firstStep = readScalar(scalars, at + 1) != 0f;
        }
        Compositions.sgdStep(this, param, grad, momentumBuffer, lr, momentum, dampening, weightDecay, nesterov, firstStep);
    }
    /**
     * stepSize = lr / (1 - beta1^t); bc2Sqrt = sqrt(1 - beta2^t), both computed once on the host; the parameters times
     * decay first. Where {@code scalars} is not null, the three come instead from scalars[at .. at + 3) when the op
     * runs (stepSize, bc2Sqrt, decay, as {@link #adamScalars} writes them), and the float arguments are 0. Where
     * {@code guard} is not null, nothing changes unless guard[guardIndex .. guardIndex + guardCount) are all finite.
     */
    protected abstract void doAdamStep(Tensor param, Tensor grad, Tensor m, Tensor v, float stepSize, float bc2Sqrt, float beta1, float beta2,
                                       float eps, float weightDecay, float decay, Tensor scalars, long at, Tensor guard, long guardIndex, int guardCount);
    /** {@link #adamSteps}: at least one parameter, checked. Default: each parameter's {@link #doAdamStep}, a branch of its own, the largest first. */
    protected void doAdamSteps(Tensor[] params, Tensor[] grads, Tensor[] m, Tensor[] v, Tensor scalars, long at, Tensor guard, long guardIndex, int guardCount,
                               float beta1, float beta2, float eps, float weightDecay) {
        eachStep(params, i -> doAdamStep(params[i], grads[i], m[i], v[i], 0f, 0f, beta1, beta2, eps, weightDecay, 0f, scalars, at, guard, guardIndex, guardCount));
    }
    /** {@link #sgdSteps}: at least one parameter, checked. Default: each parameter's {@link #doSgdStep}, a branch of its own, the largest first. */
    protected void doSgdSteps(Tensor[] params, Tensor[] grads, Tensor[] buffers, Tensor scalars, long at, Tensor guard, long guardIndex, int guardCount,
                              float momentum, float dampening, float weightDecay, boolean nesterov) {
        eachStep(params, i -> doSgdStep(params[i], grads[i], buffers[i], 0f, momentum, dampening, weightDecay, nesterov, false, scalars, at, guard, guardIndex, guardCount));
    }

    /**
     * Runs {@code step} for each parameter's index, each a branch of its own ({@link #branches}: the largest first). The
     * branches are kept and refilled, not built each call: iPC takes an optimizer step at every inference step. A call
     * on another thread at the same time builds its own.
     */
    private void eachStep(Tensor[] params, java.util.function.IntConsumer step) {
        ParameterSteps steps = keptSteps.getAndSet(null);
        if (steps == null || steps.runs.length != params.length) steps = new ParameterSteps(params.length);
        steps.fill(params, step);
        try {
            branches(steps.work, steps.runs);
        } finally {
            steps.step = null;
            keptSteps.set(steps);
        }
    }

    private final java.util.concurrent.atomic.AtomicReference<ParameterSteps> keptSteps = new java.util.concurrent.atomic.AtomicReference<>();

    /** {@link #eachStep}'s branches for a number of parameters: branch k steps parameter order[k], whose size is work[k]. */
    private static final class ParameterSteps {
        final Runnable[] runs;
        final double[] work;
        final int[] order;
        java.util.function.IntConsumer step;

        ParameterSteps(int n) {
            runs = new Runnable[n];
            work = new double[n];
            order = new int[n];
            for (int k = 0; k < n; k++) {
                int branch = k;
                runs[k] = () -> step.accept(order[branch]);
            }
        }

        /** The largest parameter first, equal sizes in the parameters' order, as {@link #branches} would sort them (so it need not). */
        void fill(Tensor[] params, java.util.function.IntConsumer step) {
            this.step = step;
            for (int i = 0; i < params.length; i++) {
                double size = params[i].size();
                int k = i;
                for (; k > 0 && work[k - 1] < size; k--) {
                    work[k] = work[k - 1];
                    order[k] = order[k - 1];
                }
                work[k] = size;
                order[k] = i;
            }
        }
    }
    /** Fills t with uniform values from the counter-based {@link Random}. Default: {@link Compositions#randomUniform} (from the host). */
    protected void doRandomUniform(Tensor t, float lo, float hi, long seed) { Compositions.randomUniform(this, t, lo, hi, seed); }

    // ---------------------------------------------------------------- validation

    private void requireOpen(String op) {
        if (closed) throw new IllegalStateException(op + ": backend '" + name() + "' is closed");
    }

    private void checkBackendOpen(String op) {
        requireOpen(op);
        // An op beside another thread's turn would share this backend's stream, staging buffer and scratch with that
        // thread's ops: answers gone wrong without an error. Refused where it is seen (it cannot see a turn taken after it).
        if (!isThreadSafe() && turn.isLocked() && !turn.isHeldByCurrentThread())
            throw new IllegalStateException(op + " on backend '" + name() + "' from thread '" + Thread.currentThread().getName()
                    + "' while another thread has its turn: code that shares a backend across threads takes turns (beginTurn/endTurn, inTurn)");
        enter();
    }

    /**
     * Called before every op and allocation, on the calling thread: a device backend makes its
     * context current there (a service may call from any worker thread, one at a time).
     */
    protected void enter() {}

    /** Each tensor is open and belongs to this backend. */
    protected final void mine(String op, Tensor... ts) {
        begin(op);
        for (Tensor t : ts) check(op, t);
    }

    // Fixed-arity forms of mine and sameSize: the hot ops take them, so validating a call allocates no varargs array.

    /** Checks that the tensor is open and belongs to this backend, naming {@code op} if not. */
    protected final void mine(String op, Tensor a) { begin(op); check(op, a); }

    /** Checks that the tensors are open and belong to this backend, naming {@code op} if not. */
    protected final void mine(String op, Tensor a, Tensor b) { begin(op); check(op, a); check(op, b); }

    /** Checks that the tensors are open and belong to this backend, naming {@code op} if not. */
    protected final void mine(String op, Tensor a, Tensor b, Tensor c) { begin(op); check(op, a); check(op, b); check(op, c); }

    /** Checks that the tensors are open and belong to this backend, naming {@code op} if not. */
    protected final void mine(String op, Tensor a, Tensor b, Tensor c, Tensor d) { begin(op); check(op, a); check(op, b); check(op, c); check(op, d); }

    private void begin(String op) {
        OpProfile p = profile;
        if (p != null) p.enter(op);
        checkBackendOpen(op);
    }

    private void check(String op, Tensor t) {
        if (t == null) throw new NullPointerException(op + ": tensor argument is null");
        t.checkOpen(op);
        if (t.backend() != this) throw new IllegalArgumentException(op + ": tensor " + t.shape() + " belongs to backend '" + t.backend().name() + "', not this '" + name() + "' instance");
    }

    private void sameSize(String op, Tensor a, Tensor b) {
        mine(op, a, b);
        sameSizeAs(op, a, b);
    }

    private void sameSize(String op, Tensor a, Tensor b, Tensor c) {
        mine(op, a, b, c);
        sameSizeAs(op, a, b);
        sameSizeAs(op, a, c);
    }

    private void sameSize(String op, Tensor a, Tensor b, Tensor c, Tensor d) {
        mine(op, a, b, c, d);
        sameSizeAs(op, a, b);
        sameSizeAs(op, a, c);
        sameSizeAs(op, a, d);
    }

    private void sameSize(String op, Tensor a, Tensor b, Tensor c, Tensor d, Tensor e) {
        sameSize(op, a, b, c, d);
        check(op, e);
        sameSizeAs(op, a, e);
    }

    private void sameSize(String op, Tensor a, Tensor b, Tensor c, Tensor d, Tensor e, Tensor f) {
        sameSize(op, a, b, c, d, e);
        check(op, f);
        sameSizeAs(op, a, f);
    }

    private void sameSize(String op, Tensor a, Tensor b, Tensor c, Tensor d, Tensor e, Tensor f, Tensor g) {
        sameSize(op, a, b, c, d, e, f);
        check(op, g);
        sameSizeAs(op, a, g);
    }

    private void sameSize(String op, Tensor a, Tensor b, Tensor c, Tensor d, Tensor e, Tensor f, Tensor g, Tensor h) {
        sameSize(op, a, b, c, d, e, f, g);
        check(op, h);
        sameSizeAs(op, a, h);
    }

    private static void sameSizeAs(String op, Tensor first, Tensor t) {
        if (t.size() != first.size())
            throw new IllegalArgumentException(op + ": tensors " + first.shape() + " and " + t.shape() + " must have the same number of elements");
    }

    private static void range(String op, String what, Tensor t, long offset, long length) {
        if (offset < 0 || length < 0 || offset + length > t.size())
            throw new IndexOutOfBoundsException(op + ": " + what + " range [" + offset + ", " + (offset + length) + ") outside tensor " + t.shape() + " of " + t.size() + " elements");
    }

    private static void expectSize(String op, String what, Tensor t, long expected) {
        if (t.size() != expected) throw new IllegalArgumentException(op + ": " + what + " " + t.shape() + " has " + t.size() + " elements, expected " + expected);
    }

    /** The number of images in x; {@code geometry} is named only in the error (its text, built eagerly, was garbage per call). */
    private static long images(String op, Tensor x, long perImage, Object geometry) {
        if (x.size() % perImage != 0)
            throw new IllegalArgumentException(op + ": tensor " + x.shape() + " is not a whole number of " + geometry + " images (" + perImage + " elements each)");
        return x.size() / perImage;
    }

    private static void biasView(String op, Tensor y, Tensor bias, int channels, int inner) {
        if (channels < 1 || inner < 1) throw new IllegalArgumentException(op + ": channels and inner must be >= 1, got " + channels + ", " + inner);
        expectSize(op, "bias", bias, channels);
        if (y.size() % ((long) channels * inner) != 0)
            throw new IllegalArgumentException(op + ": tensor " + y.shape() + " is not a whole number of [" + channels + " channels x " + inner + "] blocks");
    }
}
