package io.predcode.cuda;

import io.predcode.spi.Activation;
import io.predcode.spi.Backend;
import io.predcode.spi.BackendOptions;
import io.predcode.spi.BeliefStep;
import io.predcode.spi.Conv2dGeometry;
import io.predcode.spi.PoolGeometry;
import io.predcode.spi.Shape;
import io.predcode.spi.Tensor;

import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;

/**
 * The CUDA backend: device memory from a caching pool, one stream per backend (and more for branches
 * that run at once), cuBLAS for GEMM and predcode's kernels for everything else. Host copies go through
 * a page-locked staging buffer; a download, or an upload that finds the buffer full, is the only point
 * where the host waits for the device.
 */
final class CudaBackend extends Backend {
    /**
     * The most streams a step's branches run on, nested ones included; further branches share them, in turn, or run
     * in order. 16: PC's learning step on PCX's MLP takes 13 (its 4 blocks and the feedforward loss side by side, each
     * block's energy term beside its backward pass, and its weight gradient beside its bias gradient; with 12 one block's
     * ran in order, a kernel more in a row), and deeper models more. A lane costs a stream, a cuBLAS handle and its 32 MiB
     * workspace, made when a step first has that many branches.
     */
    static final int MAX_LANES = 16;
    private final CudaDriver driver;
    private final int device;
    private final long context;
    private final java.nio.file.Path cublasPath;
    /** The backend's own stream and the branches' ones (lanes.get(0) is main); the lane ops go to now. */
    private final java.util.List<Lane> lanes = new java.util.ArrayList<>();
    private final Lane main;
    private Lane lane;
    /** Whether branches run at once on streams of their own (events, and not -Dpredcode.cuda.branches=serial); the event that forks them. */
    private final boolean branchesOnStreams;
    private long fork;
    /** How deep in branches ops are issued now (0: outside any); tensors closed meanwhile, pooled only once the branches are joined back (another branch may still use them). */
    private int branchDepth;
    /** Within the outermost branches: the first lane a fork may take, and one past the last lane any fork has taken. */
    private int nextLane, lanesTaken;
    /** Set when a branch stream could not be made (out of device memory, say): branches then share the streams there are. */
    private boolean noMoreLanes;
    private final java.util.List<CudaTensor> closedInBranches = new java.util.ArrayList<>();
    /** Whether a graph is being captured now (no streams, handles or buffers may be created). */
    private boolean capturing;
    /** The stream whose copies may still read or fill the staging buffer, and where in it the next copy may go (the bytes before may still be in use). */
    private long stagingUser, stagingFree;
    private final Kernels k;
    private final String description;
    /** Freed device buffers by size, reused before asking the driver again; and every buffer this backend owns. */
    private final Map<Long, ArrayDeque<Long>> pool = new HashMap<>();
    private final java.util.Set<Long> owned = new java.util.HashSet<>();
    private MemorySegment staging;
    /** CUDA graphs of replayable regions (a step's relaxation); null when off or the driver lacks them. */
    private final GraphCache graphs;

    /**
     * Takes a context, a stream, cuBLAS, the kernels and the buffers, in that order; when one step fails
     * (out of memory, a module the driver refuses), gives back what the earlier ones took and rethrows.
     */
    CudaBackend(CudaDriver driver, java.nio.file.Path cublasPath, byte[] kernelImage, BackendOptions options) {
        this.driver = driver;
        Undo undo = new Undo();
        try {
            driver.init();
            this.device = driver.device(options.device());
            this.context = driver.retainPrimaryContext(device);
            undo.push(() -> driver.releasePrimaryContext(device));
            this.cublasPath = cublasPath;
            this.branchesOnStreams = driver.hasEvents() && !"serial".equals(System.getProperty("predcode.cuda.branches"));
            Lane first = Lane.open(driver, cublasPath, false);
            undo.push(() -> first.close(driver));
            lanes.add(this.main = this.lane = first);
            stagingUser = first.stream;
            if (branchesOnStreams) {
                long f = fork = driver.createEvent();
                undo.push(() -> driver.destroyEvent(f));
            }
            this.k = new Kernels(driver, kernelImage, first.stream, first.partials);
            undo.push(k::close);
            this.staging = driver.mallocHost(1 << 20);
        } catch (RuntimeException e) {
            throw undo.all(e);
        }
        boolean useGraphs = driver.hasGraphs() && !"false".equals(System.getProperty("predcode.cuda.graphs"));
        this.graphs = useGraphs ? new GraphCache(new GraphCache.Recorder() {
            @Override public void begin() {
                driver.beginCapture(main.stream);
                capturing = true;
            }
            @Override public long end() {
                capturing = false;
                return driver.endCapture(main.stream);
            }
            @Override public void abort() {
                capturing = false;
                driver.abortCapture(main.stream);
            }
            @Override public void launch(long exec) { driver.launchGraph(exec, main.stream); }
            @Override public void destroy(long exec) { driver.destroyGraph(exec); }
        }, 16) : null;
        String simulator = driver.simulator();
        this.description = (simulator != null ? "simulated on the host (" + simulator + ", no GPU)" : driver.deviceName(device) + " (device " + options.device() + ")")
                + ", driver " + driver.driverVersion() + ", " + main.cublas.path.getFileName()
                + (useGraphs ? ", CUDA graphs" : ", no CUDA graphs") + (branchesOnStreams ? ", branches on streams" : "");
    }

    /** A step's relaxation is recorded once per (workspace, algorithm, eta, n) and replayed as one graph launch. */
    @Override protected void doReplayable(Object key, Runnable body) {
        if (graphs == null) body.run();
        else graphs.run(key, body);
    }

    /**
     * Runs each branch on a stream of its own (up to {@link #MAX_LANES} in all; the first on the stream ops
     * go to now), forked from that stream by an event and joined back into it by each stream's event, so
     * the device may run them at once; in a CUDA graph they become parallel paths. A step of small layers
     * is bound by how many kernels run one after another, which this shortens. Branches inside a branch
     * fork from their branch's stream onto lanes no other branch of the enclosing branches has used (an op
     * on a lane a sibling used would wait for the sibling's ops there); branches left without a lane, and
     * all of them while profiling or while a graph is captured before their streams exist, run in order
     * on the current stream.
     */
    @Override protected void doBranches(double[] work, Runnable[] branches) {
        boolean onStreams = branchesOnStreams && !profiling() && branches.length > 1;
        int base = branchDepth == 0 ? 1 : nextLane; // the first lane this fork may take beside the current one
        if (onStreams && !capturing) addLanes(Math.min(base + branches.length - 1, MAX_LANES));
        int extra = onStreams ? Math.max(0, Math.min(branches.length - 1, lanes.size() - base)) : 0;
        if (extra == 0) {
            super.doBranches(work, branches);
            return;
        }
        Lane home = lane;
        driver.record(fork, home.stream);
        for (int g = 0; g < extra; g++) driver.waitFor(lanes.get(base + g).stream, fork);
        if (branchDepth++ == 0) lanesTaken = 0;
        lanesTaken = Math.max(lanesTaken, base + extra);
        RuntimeException failed = null;
        try {
            for (int i = 0; i < branches.length; i++) {
                int g = i % (extra + 1);
                // A branch's own branches take lanes past every lane taken so far: never one a sibling's ops are on.
                nextLane = i == 0 ? base + extra : lanesTaken;
                use(g == 0 ? home : lanes.get(base + g - 1));
                branches[i].run();
            }
        } catch (RuntimeException e) {
            failed = e;
        } finally {
            use(home);
            nextLane = base; // joined back below: later branches of the enclosing branch may take these lanes again
            try { // joined back even after a failure, so that a capture can end
                for (int g = 0; g < extra; g++) {
                    Lane l = lanes.get(base + g);
                    driver.record(l.event, l.stream);
                    driver.waitFor(home.stream, l.event);
                }
            } catch (RuntimeException e) {
                if (failed == null) failed = e;
                else failed.addSuppressed(e);
            }
            if (--branchDepth == 0) {
                for (CudaTensor t : closedInBranches) recycle(t);
                closedInBranches.clear();
            }
        }
        if (failed != null) throw failed;
    }

    /** Makes streams for branches up to {@code n} lanes, outside any capture; where the device refuses one, makes no more (a speed-up, not worth failing a step for). */
    private void addLanes(int n) {
        while (!noMoreLanes && lanes.size() < n) {
            try {
                lanes.add(Lane.open(driver, cublasPath, true));
            } catch (RuntimeException e) {
                noMoreLanes = true;
            }
        }
    }

    @Override public boolean runsBranchesAtOnce() { return branchesOnStreams; }

    /** A step of small layers waits on its kernels one after another, each paying its launch. */
    @Override public boolean prefersShortChains() { return true; }

    /** How many lanes (streams for ops, the backend's own among them) this backend has made (for tests). */
    int lanes() { return lanes.size(); }

    /** Sends later ops to the lane's stream, with its cuBLAS handle, partial sums and scratch. */
    private void use(Lane l) {
        lane = l;
        k.on(l.stream, l.partials);
    }

    /**
     * The context each thread last made current, whichever backend instance made it so. A CUDA
     * context is current per thread: every entry from a thread whose current context is another (or
     * none) makes this backend's current there, so any thread may call, one at a time.
     */
    private static final ThreadLocal<long[]> CURRENT = ThreadLocal.withInitial(() -> new long[1]);

    @Override protected void enter() {
        long[] current = CURRENT.get();
        if (current[0] != context) {
            driver.setCurrent(context);
            current[0] = context;
        }
    }

    @Override public String name() { return "cuda"; }

    /** The graph cache (null when graphs are off), for tests. */
    GraphCache graphs() { return graphs; }

    /** The driver, for tests of its stream and event rules. */
    CudaDriver driver() { return driver; }

    /** The kernels, for tests that launch one directly. */
    Kernels kernels() { return k; }

    @Override public long memoryAvailable() {
        enter();
        return driver.freeMemory();
    }

    @Override public String description() { return description; }

    private static long ptr(Tensor t) { return ((CudaTensor) t).ptr; }

    private static long at(Tensor t, long index) { return ((CudaTensor) t).at(index); }

    /** {@link #at}, or 0 (a null pointer) for no tensor: an optimizer step's optional scalars and guard. */
    private static long atOrNull(Tensor t, long index) { return t == null ? 0 : at(t, index); }

    private static long ptrOrNull(Tensor t) { return t == null ? 0L : ptr(t); }

    // ---------------------------------------------------------------- memory

    @Override protected Tensor doAllocate(Shape shape) {
        long bytes = shape.size() * Float.BYTES;
        ArrayDeque<Long> free = pool.get(bytes);
        long p;
        if (free != null && !free.isEmpty()) p = free.pop();
        else owned.add(p = driver.malloc(bytes));
        driver.memsetD32(p, 0, shape.size(), lane.stream);
        return new CudaTensor(this, shape, p, bytes);
    }

    @Override protected Tensor doView(Tensor base, long offset, Shape shape) { return new CudaTensor((CudaTensor) base, offset, shape); }

    void recycle(CudaTensor t) {
        if (isClosed()) return;
        if (branchDepth > 0) {
            closedInBranches.add(t);
            return;
        }
        pool.computeIfAbsent(t.bytes, b -> new ArrayDeque<>()).push(t.ptr);
    }

    /**
     * The place in the staging buffer for a copy of {@code bytes}: after the places of the copies before it, so that
     * the uploads of a step (its batch, its targets, the optimizer's scalars) do not wait for one another; the host
     * waits for the device only where the buffer is full or the copies were issued on another stream. A step's
     * download, which waits for its stream anyway, empties it. Where a step's copies do not fit, the buffer grows
     * (to 64 MiB; beyond, copies wait for the ones before them instead).
     */
    private long stagingSlot(long bytes) {
        if (capturing) throw new IllegalStateException("a host copy inside a recorded step: the graph would read the staging buffer when replayed");
        long need = (bytes + 255) & ~255L;
        if (stagingUser != lane.stream || stagingFree + need > staging.byteSize()) {
            driver.synchronize(stagingUser); // every copy that used the buffer is done
            long size = staging.byteSize(), wanted = stagingFree + need;
            if (need > size) growStaging(Math.max(need, 2 * size), false);
            else if (wanted > size && wanted <= STAGING_GROWS_TO) growStaging(Math.max(wanted, 2 * size), true);
            stagingFree = 0;
        }
        long at = stagingFree;
        stagingFree += need;
        stagingUser = lane.stream;
        return at;
    }

    /**
     * A larger staging buffer, allocated before the old one is freed: where the device has no page-locked memory to
     * give, the old one stays, and where it still fits the copy ({@code optional}), the copy goes on without.
     */
    private void growStaging(long bytes, boolean optional) {
        MemorySegment larger;
        try {
            larger = driver.mallocHost(bytes);
        } catch (RuntimeException e) {
            if (optional) return;
            throw e;
        }
        driver.freeHost(staging);
        staging = larger;
    }

    /** The most a staging buffer grows to to hold a step's copies side by side (larger single copies get a buffer of their size). */
    private static final long STAGING_GROWS_TO = 64L << 20;

    @Override protected void doUpload(MemorySegment src, Tensor dst, long dstOffset) {
        long bytes = src.byteSize(), at = stagingSlot(bytes);
        MemorySegment s = staging.asSlice(at, bytes);
        MemorySegment.copy(src, 0, s, 0, bytes);
        driver.copyHtoD(at(dst, dstOffset), s, bytes, lane.stream);
    }

    @Override protected void doDownload(Tensor src, long srcOffset, MemorySegment dst) {
        long bytes = dst.byteSize(), at = stagingSlot(bytes);
        MemorySegment s = staging.asSlice(at, bytes);
        driver.copyDtoH(s, at(src, srcOffset), bytes, lane.stream);
        driver.synchronize(lane.stream);
        stagingFree = 0; // every copy on this stream is done
        MemorySegment.copy(s, 0, dst, 0, bytes);
    }

    @Override public void synchronize() {
        enter();
        synchronizeLanes();
    }

    private void synchronizeLanes() { for (Lane l : lanes) driver.synchronize(l.stream); }

    // ---------------------------------------------------------------- ops

    @Override protected void doGemm(boolean transA, boolean transB, int m, int n, int kk, float alpha, Tensor a, long aOffset, int lda, long strideA,
                                    Tensor b, long bOffset, int ldb, long strideB, float beta, Tensor c, long cOffset, int ldc, long strideC, int batch) {
        lane.cublas.sgemm(transA, transB, m, n, kk, alpha, at(a, aOffset), lda, strideA, at(b, bOffset), ldb, strideB, beta, at(c, cOffset), ldc, strideC, batch);
    }

    @Override protected void doFill(Tensor t, long offset, long length, float value) {
        driver.memsetD32(at(t, offset), Float.floatToRawIntBits(value), length, lane.stream);
    }

    @Override protected void doCopy(Tensor src, long srcOffset, Tensor dst, long dstOffset, long length) {
        driver.copyDtoD(at(dst, dstOffset), at(src, srcOffset), length * Float.BYTES, lane.stream);
    }

    @Override protected void doAxpby(float alpha, Tensor x, float beta, Tensor y) { k.axpby(x.size(), alpha, ptr(x), beta, ptr(y)); }

    @Override protected void doAdd(float alpha, Tensor a, float beta, Tensor b, Tensor out) { k.add(a.size(), alpha, ptr(a), beta, ptr(b), ptr(out)); }

    @Override protected void doActivation(Activation f, float slope, Tensor x, Tensor y) { k.activation(f.code(), slope, x.size(), ptr(x), ptr(y)); }

    @Override protected void doActivationIncrement(Activation f, float slope, Tensor x0, Tensor dx, Tensor x, Tensor y, Tensor derivative, Tensor minus,
                                                   Tensor change, Tensor delta) {
        k.activationIncrement(f.code(), slope, x0.size(), ptr(x0), ptr(dx), x == null ? 0 : ptr(x), y == null ? 0 : ptr(y), derivative == null ? 0 : ptr(derivative),
                minus == null ? 0 : ptr(minus), ptr(change), delta == null ? 0 : ptr(delta));
    }

    @Override protected void doPcStrictStep(Tensor error, Tensor vhat, Tensor feedback, Tensor displacement, Tensor belief, float eta) {
        k.strictStep(error.size(), ptr(error), ptr(vhat), ptr(feedback), ptr(displacement), ptr(belief), eta);
    }

    @Override protected void doActivationBackward(Activation f, float slope, Tensor x, Tensor y, Tensor dy, Tensor dx) {
        k.activationBackward(f.code(), slope, x.size(), ptr(x), ptr(y), ptr(dy), ptr(dx));
    }

    @Override protected void doActivationWithDerivative(Activation f, float slope, Tensor x, Tensor y, Tensor derivative) {
        k.activationWithDerivative(f.code(), slope, x.size(), ptr(x), ptr(y), ptr(derivative));
    }

    /** The kernels' bias indexing: a bias per output feature (channel i % out), or 0 for an offset per element. */
    private static int biasChannels(Tensor bias, int out) { return isOffset(bias, out) ? 0 : out; }

    /** z = x W^T: a linear op's GEMM, its bias left to the kernel after it. */
    private void linearGemm(Tensor x, Tensor weight, Tensor z, int batch, int in, int out) {
        doGemm(false, true, batch, out, in, 1f, x, 0, in, 0, weight, 0, in, 0, 0f, z, 0, out, 0, 1);
    }

    /** The GEMM, then the bias and the activation in one kernel: one node fewer on a graph's chain than linear and activation apart. */
    @Override protected void doLinearActivation(Tensor x, Tensor weight, Tensor bias, Activation f, float slope, Tensor z, Tensor y, Tensor derivative,
                                                int batch, int in, int out) {
        linearGemm(x, weight, z, batch, in, out);
        k.biasActivation(f.code(), slope, z.size(), ptr(z), ptrOrNull(bias), biasChannels(bias, out), ptr(y), ptrOrNull(derivative));
    }

    /** The GEMM, then everything else in one kernel: one kernel fewer one after another than linearActivation and pcPredictionError. */
    @Override protected void doPcLinearPredictionError(Tensor x, Tensor weight, Tensor bias, Activation f, float slope, Tensor z, Tensor prediction,
                                                       Tensor derivative, Tensor vhat, Tensor displacement, Tensor error, Tensor delta, BeliefStep step,
                                                       int batch, int in, int out) {
        linearGemm(x, weight, z, batch, in, out);
        doPcPredictionErrorFromProducts(z, null, bias, f, slope, prediction, derivative, vhat, displacement, error, delta, step, out);
    }

    /** Everything after the GEMM in one kernel, the GEMM's product given. */
    @Override protected void doPcPredictionErrorFromProducts(Tensor z, Tensor addend, Tensor bias, Activation f, float slope, Tensor prediction, Tensor derivative,
                                                             Tensor vhat, Tensor displacement, Tensor error, Tensor delta, BeliefStep step, int out) {
        k.biasActivationError(f.code(), slope, z.size(), ptr(z), ptrOrNull(addend), ptrOrNull(bias), biasChannels(bias, out), ptr(prediction), ptr(derivative),
                ptr(vhat), ptr(displacement), ptr(error), ptr(delta), kernelStep(step));
    }

    /** The GEMM, then the bias and the error in one kernel. */
    @Override protected void doPcLinearOutputError(Tensor x, Tensor weight, Tensor bias, Tensor output, Tensor target, Tensor error,
                                                   Tensor energy, long energyIndex, float energyScale, int batch, int in, int out) {
        linearGemm(x, weight, output, batch, in, out);
        doPcOutputErrorFromProducts(output, null, bias, target, error, energy, energyIndex, energyScale, out);
    }

    /** The bias and the error in one kernel, the GEMM's product given. */
    @Override protected void doPcOutputErrorFromProducts(Tensor output, Tensor addend, Tensor bias, Tensor target, Tensor error, Tensor energy, long energyIndex,
                                                         float energyScale, int out) {
        k.biasError(output.size(), ptr(output), ptrOrNull(addend), ptrOrNull(bias), biasChannels(bias, out), ptr(target), ptr(error), ptrOrNull(energy),
                energyIndex, energyScale);
    }

    @Override protected void doMultiply(Tensor a, Tensor b, Tensor out) { k.multiply(a.size(), ptr(a), ptr(b), ptr(out)); }

    @Override protected void doScaleChannels(Tensor x, Tensor scale, Tensor shift, int channels, int inner, Tensor y) {
        k.scaleChannels(ptr(x), ptr(scale), ptrOrNull(shift), ptr(y), x.size(), channels, inner);
    }
    @Override protected void doAddBias(Tensor y, Tensor bias, int channels, int inner) { k.addBias(ptr(y), ptr(bias), y.size(), channels, inner); }

    @Override protected void doBiasGrad(Tensor dy, Tensor db, int channels, int inner, float alpha, float beta) {
        k.biasGrad(ptr(dy), ptr(db), dy.size() / ((long) channels * inner), channels, inner, alpha, beta);
    }

    /**
     * The current lane's device scratch for the conv ops: grown on demand, kept, freed at close. Growing
     * it waits for the queued work that may still use the old buffer, and forgets the graphs that point at it.
     */
    private long scratch(long floats) {
        long bytes = floats * Float.BYTES;
        Lane l = lane;
        if (bytes > l.scratchBytes) {
            synchronizeLanes();
            if (l.scratch != 0) {
                driver.free(l.scratch);
                l.scratch = 0;
                l.scratchBytes = 0;
            }
            l.scratch = driver.malloc(bytes);
            l.scratchBytes = bytes;
            if (graphs != null) graphs.invalidate();
        }
        return l.scratch;
    }

    @Override protected void doConv2d(Tensor x, Tensor weight, Conv2dGeometry g, Tensor y, int images, int out) {
        int p = g.outPixels(), patch = g.patchSize();
        long col = scratch((long) images * patch * p);
        k.im2col(ptr(x), col, images, g);
        lane.cublas.sgemm(false, false, out, p, patch, 1f, ptr(weight), patch, 0, col, p, (long) patch * p, 0f, ptr(y), p, (long) out * p, images);
    }

    @Override protected void doConv2dBackwardInput(Tensor dy, Tensor weight, Conv2dGeometry g, Tensor dx, int images, int out) {
        int p = g.outPixels(), patch = g.patchSize();
        long col = scratch((long) images * patch * p);
        lane.cublas.sgemm(true, false, patch, p, out, 1f, ptr(weight), patch, 0, ptr(dy), p, (long) out * p, 0f, col, p, (long) patch * p, images);
        k.col2im(col, ptr(dx), images, g);
    }

    /**
     * dW = sum over images of dy_n [out, P] x col_n^T [P, patch]: one batched GEMM writes each image's
     * product, one kernel sums them in image order (deterministic; no GEMM per image).
     */
    @Override protected void doConv2dBackwardWeight(Tensor x, Tensor dy, Conv2dGeometry g, Tensor dweight, int images, int out) {
        int p = g.outPixels(), patch = g.patchSize();
        long colFloats = (long) images * patch * p, partFloats = (long) images * out * patch;
        long col = scratch(colFloats + partFloats), parts = col + colFloats * Float.BYTES;
        k.im2col(ptr(x), col, images, g);
        lane.cublas.sgemm(false, true, out, patch, p, 1f, ptr(dy), p, (long) out * p, col, p, (long) patch * p, 0f, parts, patch, (long) out * patch, images);
        k.sumBatches(parts, ptr(dweight), images, (long) out * patch, 0f);
    }

    @Override protected void doMaxPoolIncrement(Tensor x, Tensor dx, PoolGeometry g, Tensor out, int images) {
        k.maxPoolIncrement(ptr(x), ptr(dx), ptr(out), images, g);
    }

    @Override protected void doMaxPool(Tensor x, PoolGeometry g, Tensor y, int images) { k.maxPool(ptr(x), ptr(y), images, g); }

    @Override protected void doMaxPoolBackward(Tensor x, PoolGeometry g, Tensor dy, Tensor dx, int images) { k.maxPoolBackward(ptr(x), ptr(dy), ptr(dx), images, g); }

    @Override protected void doAvgPool(Tensor x, PoolGeometry g, Tensor y, int images) { k.avgPool(ptr(x), ptr(y), images, g); }

    @Override protected void doAvgPoolBackward(PoolGeometry g, Tensor dy, Tensor dx, int images) { k.avgPoolBackward(ptr(dy), ptr(dx), images, g); }

    @Override protected void doSoftmaxCrossEntropy(Tensor logits, Tensor labels, Tensor loss, Tensor dlogits, int rows, int classes) {
        doSoftmaxCrossEntropyFromProducts(logits, null, null, labels, loss, dlogits, false, rows, classes);
    }

    @Override protected void doSoftmaxCrossEntropyPerSample(Tensor logits, Tensor labels, Tensor loss, Tensor dlogits, int rows, int classes) {
        doSoftmaxCrossEntropyFromProducts(logits, null, null, labels, loss, dlogits, true, rows, classes);
    }

    /** The products and the bias added in the loss's own kernel. */
    @Override protected void doSoftmaxCrossEntropyFromProducts(Tensor logits, Tensor addend, Tensor bias, Tensor labels, Tensor loss, Tensor dlogits, boolean perSample,
                                                               int rows, int classes) {
        k.softmaxCrossEntropy(ptr(logits), ptrOrNull(addend), ptrOrNull(bias), biasChannels(bias, classes), ptr(labels), ptr(loss), ptrOrNull(dlogits), rows, classes,
                perSample ? 1 : rows);
    }

    @Override protected void doMse(Tensor y, Tensor target, Tensor loss, Tensor dy) { doMseFromProducts(y, null, null, target, loss, dy, (int) y.shape().rowSize()); }

    /** The products and the bias added in the loss's own kernel. */
    @Override protected void doMseFromProducts(Tensor y, Tensor addend, Tensor bias, Tensor target, Tensor loss, Tensor dy, int out) {
        k.mse(ptr(y), ptrOrNull(addend), ptrOrNull(bias), biasChannels(bias, out), ptr(target), ptr(loss), ptrOrNull(dy), y.size());
    }

    @Override protected void doCountCorrect(Tensor logits, Tensor labels, Tensor out, long outIndex, int rows, int classes, boolean labelRows) {
        k.countCorrect(ptr(logits), ptr(labels), ptr(out), outIndex, rows, classes, labelRows);
    }

    @Override protected void doPcPredictionError(Tensor prediction, Tensor vhat, Tensor displacement, Tensor error, Tensor derivative, Tensor delta,
                                                 BeliefStep step) {
        k.predictionError(prediction.size(), ptr(prediction), ptr(vhat), ptr(displacement), ptr(error), ptrOrNull(derivative), ptrOrNull(delta), kernelStep(step));
    }

    /** A belief step as the kernels take it; none where null. */
    private static Kernels.Step kernelStep(BeliefStep s) {
        return s == null ? Kernels.Step.NONE : new Kernels.Step(ptr(s.next()), s.eta(), s.momentum(), ptrOrNull(s.previous()), ptrOrNull(s.copy()));
    }

    @Override protected void doPcStrictUpdate(Tensor prediction, Tensor vhat, Tensor feedback, Tensor displacement, Tensor belief, Tensor error, float eta) {
        k.strictUpdate(prediction.size(), ptr(prediction), ptr(vhat), ptr(feedback), ptr(displacement), ptr(belief), ptrOrNull(error), eta);
    }

    @Override protected void doPcMomentumUpdate(Tensor prediction, Tensor vhat, Tensor feedback, Tensor displacement, Tensor velocity, Tensor belief,
                                                Tensor error, float eta, float momentum, boolean firstStep) {
        k.momentumUpdate(prediction.size(), ptr(prediction), ptr(vhat), ptr(feedback), ptr(displacement), ptr(velocity), ptr(belief), ptrOrNull(error),
                eta, momentum, firstStep);
    }

    @Override protected void doPcAdamUpdate(Tensor prediction, Tensor vhat, Tensor feedback, Tensor displacement, Tensor moment, Tensor secondMoment,
                                            Tensor belief, Tensor error, float stepSize, float bc2Sqrt, float beta1, float beta2, float eps) {
        k.adamUpdate(prediction.size(), ptr(prediction), ptr(vhat), ptr(feedback), ptr(displacement), ptr(moment), ptr(secondMoment), ptr(belief),
                ptrOrNull(error), stepSize, bc2Sqrt, beta1, beta2, eps);
    }

    @Override protected void doSumSquares(Tensor x, float scale, Tensor out, long outIndex) { k.sumSquares(ptr(x), x.size(), scale, ptr(out), outIndex); }

    @Override protected void doSgdStep(Tensor param, Tensor grad, Tensor momentumBuffer, float lr, float momentum, float dampening,
                                       float weightDecay, boolean nesterov, boolean firstStep, Tensor scalars, long at, Tensor guard, long guardIndex, int guardCount) {
        k.sgdStep(param.size(), ptr(param), ptr(grad), ptrOrNull(momentumBuffer), lr, momentum, dampening, weightDecay, nesterov, firstStep,
                atOrNull(scalars, at), atOrNull(guard, guardIndex), guardCount);
    }

    @Override protected void doAdamStep(Tensor param, Tensor grad, Tensor m, Tensor v, float stepSize, float bc2Sqrt, float beta1, float beta2,
                                        float eps, float weightDecay, float decay, Tensor scalars, long at, Tensor guard, long guardIndex, int guardCount) {
        k.adamStep(param.size(), ptr(param), ptr(grad), ptr(m), ptr(v), stepSize, bc2Sqrt, beta1, beta2, eps, weightDecay, decay,
                atOrNull(scalars, at), atOrNull(guard, guardIndex), guardCount);
    }

    /** One kernel for up to {@link Kernels#STEP_TENSORS} parameters (PCX's MLP has 8): one node of a step's graph, not one a parameter. */
    @Override protected void doAdamSteps(Tensor[] params, Tensor[] grads, Tensor[] m, Tensor[] v, Tensor scalars, long at, Tensor guard, long guardIndex, int guardCount,
                                         float beta1, float beta2, float eps, float weightDecay) {
        long[] sizes = sizes(params), p = pointers(params), g = pointers(grads), mp = pointers(m), vp = pointers(v);
        long s = at(scalars, at), gd = atOrNull(guard, guardIndex);
        for (int from = 0; from < params.length; from += Kernels.STEP_TENSORS)
            k.adamSteps(from, Math.min(Kernels.STEP_TENSORS, params.length - from), sizes, p, g, mp, vp, beta1, beta2, eps, weightDecay, s, gd, guardCount);
    }

    /** As {@link #doAdamSteps}. */
    @Override protected void doSgdSteps(Tensor[] params, Tensor[] grads, Tensor[] buffers, Tensor scalars, long at, Tensor guard, long guardIndex, int guardCount,
                                        float momentum, float dampening, float weightDecay, boolean nesterov) {
        long[] sizes = sizes(params), p = pointers(params), g = pointers(grads), b = pointers(buffers);
        long s = at(scalars, at), gd = atOrNull(guard, guardIndex);
        for (int from = 0; from < params.length; from += Kernels.STEP_TENSORS)
            k.sgdSteps(from, Math.min(Kernels.STEP_TENSORS, params.length - from), sizes, p, g, b, momentum, dampening, weightDecay, nesterov, s, gd, guardCount);
    }

    private static long[] sizes(Tensor[] ts) {
        long[] out = new long[ts.length];
        for (int i = 0; i < ts.length; i++) out[i] = ts[i].size();
        return out;
    }

    /** Each tensor's device address; 0 for a null one. */
    private static long[] pointers(Tensor[] ts) {
        long[] out = new long[ts.length];
        for (int i = 0; i < ts.length; i++) out[i] = ptrOrNull(ts[i]);
        return out;
    }

    @Override protected void doRandomUniform(Tensor t, float lo, float hi, long seed) { k.randomUniform(ptr(t), t.size(), lo, hi, seed); }

    @Override protected void doClose() {
        driver.setCurrent(context);
        try {
            synchronizeLanes();
            if (graphs != null) graphs.close();
            for (long p : owned) driver.free(p); // pooled and still-open tensors alike
            owned.clear();
            pool.clear();
            k.close();
            driver.freeHost(staging);
            for (Lane l : lanes.reversed()) l.close(driver);
            if (fork != 0) driver.destroyEvent(fork);
        } finally {
            driver.releasePrimaryContext(device);
        }
    }
}
