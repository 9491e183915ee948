package io.predcode.cuda;

import io.predcode.spi.Activation;
import io.predcode.spi.Backend;
import io.predcode.spi.BackendOptions;
import io.predcode.spi.Conv2dGeometry;
import io.predcode.spi.PoolGeometry;
import io.predcode.spi.Shape;
import io.predcode.spi.Tensor;

import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;

/**
 * The CUDA backend: device memory from a caching pool, one stream per backend, cuBLAS for GEMM and
 * predcode's kernels for everything else. Host copies go through a page-locked staging buffer and
 * are the only points where the host waits for the device.
 */
final class CudaBackend extends Backend {
    private final CudaDriver driver;
    private final int device;
    private final long context, stream;
    private final Cublas cublas;
    private final Kernels k;
    private final String description;
    /** Freed device buffers by size, reused before asking the driver again; and every buffer this backend owns. */
    private final Map<Long, ArrayDeque<Long>> pool = new HashMap<>();
    private final java.util.Set<Long> owned = new java.util.HashSet<>();
    private MemorySegment staging;
    /** Device scratch for the conv ops' im2col matrices: grown on demand, kept, freed at close. */
    private long scratch, scratchBytes;
    /** CUDA graphs of replayable regions (a step's relaxation); null when off or the driver lacks them. */
    private final GraphCache graphs;

    CudaBackend(CudaDriver driver, java.nio.file.Path cublasPath, byte[] kernelImage, BackendOptions options) {
        this.driver = driver;
        driver.init();
        this.device = driver.device(options.device());
        this.context = driver.retainPrimaryContext(device);
        this.stream = driver.createStream();
        this.cublas = new Cublas(cublasPath, stream);
        this.k = new Kernels(driver, kernelImage, stream);
        this.staging = driver.mallocHost(1 << 20);
        boolean useGraphs = driver.hasGraphs() && !"false".equals(System.getProperty("predcode.cuda.graphs"));
        this.graphs = useGraphs ? new GraphCache(new GraphCache.Recorder() {
            @Override public void begin() { driver.beginCapture(stream); }
            @Override public long end() { return driver.endCapture(stream); }
            @Override public void abort() { driver.abortCapture(stream); }
            @Override public void launch(long exec) { driver.launchGraph(exec, stream); }
            @Override public void destroy(long exec) { driver.destroyGraph(exec); }
        }, 16) : null;
        this.description = driver.deviceName(device) + " (device " + options.device() + "), driver " + driver.driverVersion() + ", " + cublas.path.getFileName()
                + (useGraphs ? ", CUDA graphs" : ", no CUDA graphs");
    }

    /** A step's relaxation is recorded once per (workspace, algorithm, eta, n) and replayed as one graph launch. */
    @Override protected void doReplayable(Object key, Runnable body) {
        if (graphs == null) body.run();
        else graphs.run(key, body);
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

    @Override public String description() { return description; }

    private static long ptr(Tensor t) { return ((CudaTensor) t).ptr; }

    private static long at(Tensor t, long index) { return ((CudaTensor) t).at(index); }

    private static long ptrOrNull(Tensor t) { return t == null ? 0L : ptr(t); }

    // ---------------------------------------------------------------- memory

    @Override protected Tensor doAllocate(Shape shape) {
        long bytes = shape.size() * Float.BYTES;
        ArrayDeque<Long> free = pool.get(bytes);
        long p;
        if (free != null && !free.isEmpty()) p = free.pop();
        else owned.add(p = driver.malloc(bytes));
        driver.memsetD32(p, 0, shape.size(), stream);
        return new CudaTensor(this, shape, p, bytes);
    }

    @Override protected Tensor doView(Tensor base, long offset, Shape shape) { return new CudaTensor((CudaTensor) base, offset, shape); }

    void recycle(CudaTensor t) {
        if (isClosed()) return;
        pool.computeIfAbsent(t.bytes, b -> new ArrayDeque<>()).push(t.ptr);
    }

    private MemorySegment staging(long bytes) {
        if (staging.byteSize() < bytes) {
            driver.synchronize(stream);
            driver.freeHost(staging);
            staging = driver.mallocHost(Math.max(bytes, 2 * staging.byteSize()));
        }
        return staging;
    }

    @Override protected void doUpload(MemorySegment src, Tensor dst, long dstOffset) {
        long bytes = src.byteSize();
        MemorySegment s = staging(bytes);
        driver.synchronize(stream); // the staging buffer may still feed an earlier copy
        MemorySegment.copy(src, 0, s, 0, bytes);
        driver.copyHtoD(at(dst, dstOffset), s, bytes, stream);
    }

    @Override protected void doDownload(Tensor src, long srcOffset, MemorySegment dst) {
        long bytes = dst.byteSize();
        MemorySegment s = staging(bytes);
        driver.copyDtoH(s, at(src, srcOffset), bytes, stream);
        driver.synchronize(stream);
        MemorySegment.copy(s, 0, dst, 0, bytes);
    }

    @Override public void synchronize() {
        enter();
        driver.synchronize(stream);
    }

    // ---------------------------------------------------------------- ops

    @Override protected void doGemm(boolean transA, boolean transB, int m, int n, int kk, float alpha, Tensor a, long aOffset, int lda, long strideA,
                                    Tensor b, long bOffset, int ldb, long strideB, float beta, Tensor c, long cOffset, int ldc, long strideC, int batch) {
        cublas.sgemm(transA, transB, m, n, kk, alpha, at(a, aOffset), lda, strideA, at(b, bOffset), ldb, strideB, beta, at(c, cOffset), ldc, strideC, batch);
    }

    @Override protected void doFill(Tensor t, long offset, long length, float value) {
        driver.memsetD32(at(t, offset), Float.floatToRawIntBits(value), length, stream);
    }

    @Override protected void doCopy(Tensor src, long srcOffset, Tensor dst, long dstOffset, long length) {
        driver.copyDtoD(at(dst, dstOffset), at(src, srcOffset), length * Float.BYTES, stream);
    }

    @Override protected void doAxpby(float alpha, Tensor x, float beta, Tensor y) {
        k.start().l(x.size()).f(alpha).p(ptr(x)).f(beta).p(ptr(y)).launch("pc_axpby", x.size());
    }

    @Override protected void doAdd(float alpha, Tensor a, float beta, Tensor b, Tensor out) {
        k.start().l(a.size()).f(alpha).p(ptr(a)).f(beta).p(ptr(b)).p(ptr(out)).launch("pc_add", a.size());
    }

    @Override protected void doActivation(Activation f, float slope, Tensor x, Tensor y) {
        k.start().i(f.ordinal()).f(slope).l(x.size()).p(ptr(x)).p(ptr(y)).launch("pc_activation", x.size());
    }

    @Override protected void doActivationBackward(Activation f, float slope, Tensor x, Tensor y, Tensor dy, Tensor dx) {
        k.start().i(f.ordinal()).f(slope).l(x.size()).p(ptr(x)).p(ptr(y)).p(ptr(dy)).p(ptr(dx)).launch("pc_activation_backward", x.size());
    }

    @Override protected void doAddBias(Tensor y, Tensor bias, int channels, int inner) {
        k.start().p(ptr(y)).p(ptr(bias)).l(y.size()).i(channels).i(inner).launch("pc_add_bias", y.size());
    }

    @Override protected void doBiasGrad(Tensor dy, Tensor db, int channels, int inner, float beta) {
        k.start().p(ptr(dy)).p(ptr(db)).l(dy.size() / ((long) channels * inner)).i(channels).i(inner).f(beta).launchBlocks("pc_bias_grad", channels);
    }

    @Override protected void doIm2col(Tensor x, Conv2dGeometry g, Tensor col, int images) {
        k.start().p(ptr(x)).p(ptr(col));
        k.i(images).i(g.channels()).i(g.height()).i(g.width()).i(g.kh()).i(g.kw()).i(g.sh()).i(g.sw()).i(g.ph()).i(g.pw()).i(g.outHeight()).i(g.outWidth());
        k.launch("pc_im2col", col.size());
    }

    @Override protected void doCol2im(Tensor col, Conv2dGeometry g, Tensor dx, int images) {
        k.start().p(ptr(col)).p(ptr(dx));
        k.i(images).i(g.channels()).i(g.height()).i(g.width()).i(g.kh()).i(g.kw()).i(g.sh()).i(g.sw()).i(g.ph()).i(g.pw()).i(g.outHeight()).i(g.outWidth());
        k.launch("pc_col2im", (long) images * g.inputSize());
    }

    private Kernels pool(PoolGeometry g, int images) {
        return k.l((long) images * g.channels()).i(g.height()).i(g.width()).i(g.kh()).i(g.kw()).i(g.sh()).i(g.sw()).i(g.outHeight()).i(g.outWidth());
    }

    private long scratch(long floats) {
        long bytes = floats * Float.BYTES;
        if (bytes > scratchBytes) {
            driver.synchronize(stream); // the old buffer may still be in use by queued work
            if (scratch != 0) { driver.free(scratch); owned.remove(scratch); }
            owned.add(scratch = driver.malloc(bytes));
            scratchBytes = bytes;
            if (graphs != null) graphs.invalidate(); // recorded graphs point at the old buffer
        }
        return scratch;
    }

    private void im2colInto(Tensor x, Conv2dGeometry g, long col, int images) {
        k.start().p(ptr(x)).p(col);
        k.i(images).i(g.channels()).i(g.height()).i(g.width()).i(g.kh()).i(g.kw()).i(g.sh()).i(g.sw()).i(g.ph()).i(g.pw()).i(g.outHeight()).i(g.outWidth());
        k.launch("pc_im2col", (long) images * g.patchSize() * g.outPixels());
    }

    @Override protected void doConv2d(Tensor x, Tensor weight, Conv2dGeometry g, Tensor y, int images, int out) {
        int p = g.outPixels(), patch = g.patchSize();
        long col = scratch((long) images * patch * p);
        im2colInto(x, g, col, images);
        cublas.sgemm(false, false, out, p, patch, 1f, ptr(weight), patch, 0, col, p, (long) patch * p, 0f, ptr(y), p, (long) out * p, images);
    }

    @Override protected void doConv2dBackwardInput(Tensor dy, Tensor weight, Conv2dGeometry g, Tensor dx, int images, int out) {
        int p = g.outPixels(), patch = g.patchSize();
        long col = scratch((long) images * patch * p);
        cublas.sgemm(true, false, patch, p, out, 1f, ptr(weight), patch, 0, ptr(dy), p, (long) out * p, 0f, col, p, (long) patch * p, images);
        k.start().p(col).p(ptr(dx));
        k.i(images).i(g.channels()).i(g.height()).i(g.width()).i(g.kh()).i(g.kw()).i(g.sh()).i(g.sw()).i(g.ph()).i(g.pw()).i(g.outHeight()).i(g.outWidth());
        k.launch("pc_col2im", (long) images * g.inputSize());
    }

    @Override protected void doConv2dBackwardWeight(Tensor x, Tensor dy, Conv2dGeometry g, Tensor dweight, int images, int out) {
        int p = g.outPixels(), patch = g.patchSize();
        long col = scratch((long) images * patch * p);
        im2colInto(x, g, col, images);
        // Images accumulate in order on the stream: dW = sum of dy_n [out, P] x col_n^T [P, patch].
        for (int n = 0; n < images; n++)
            cublas.sgemm(false, true, out, patch, p, 1f, ptr(dy) + (long) n * out * p * Float.BYTES, p, 0, col + (long) n * patch * p * Float.BYTES, p, 0,
                    n == 0 ? 0f : 1f, ptr(dweight), patch, 0, 1);
    }

    @Override protected void doMaxPool(Tensor x, PoolGeometry g, Tensor y, int images) {
        k.start().p(ptr(x)).p(ptr(y));
        pool(g, images).launch("pc_maxpool", y.size());
    }

    @Override protected void doMaxPoolBackward(Tensor x, PoolGeometry g, Tensor dy, Tensor dx, int images) {
        k.start().p(ptr(x)).p(ptr(dy)).p(ptr(dx));
        pool(g, images).launch("pc_maxpool_backward", dx.size());
    }

    @Override protected void doAvgPool(Tensor x, PoolGeometry g, Tensor y, int images) {
        k.start().p(ptr(x)).p(ptr(y));
        pool(g, images).launch("pc_avgpool", y.size());
    }

    @Override protected void doAvgPoolBackward(PoolGeometry g, Tensor dy, Tensor dx, int images) {
        k.start().p(ptr(dy)).p(ptr(dx));
        pool(g, images).launch("pc_avgpool_backward", dx.size());
    }

    @Override protected void doSoftmaxCrossEntropy(Tensor logits, Tensor labels, Tensor loss, Tensor dlogits, int rows, int classes) {
        k.start().p(ptr(logits)).p(ptr(labels)).p(ptr(loss)).p(ptrOrNull(dlogits)).i(rows).i(classes).launchBlocks("pc_softmax_xent", 1);
    }

    @Override protected void doMse(Tensor y, Tensor target, Tensor loss, Tensor dy) {
        k.start().p(ptr(y)).p(ptr(target)).p(ptr(loss)).p(ptrOrNull(dy)).l(y.size()).launchBlocks("pc_mse", 1);
    }

    @Override protected void doCountCorrect(Tensor logits, Tensor labels, Tensor out, long outIndex, int rows, int classes) {
        k.start().p(ptr(logits)).p(ptr(labels)).p(ptr(out)).l(outIndex).i(rows).i(classes).launchBlocks("pc_count_correct", 1);
    }

    @Override protected void doPcStrictUpdate(Tensor prediction, Tensor anchor, Tensor feedback, Tensor displacement, Tensor belief, Tensor error, float eta) {
        k.start().l(prediction.size()).p(ptr(prediction)).p(ptr(anchor)).p(ptr(feedback)).p(ptr(displacement)).p(ptr(belief)).p(error == null ? 0L : ptr(error)).f(eta)
                .launch("pc_strict_update", prediction.size());
    }

    @Override protected void doPcStrictEntryUpdate(Activation f, float slope, Tensor z, Tensor anchor, Tensor feedback, Tensor displacement, Tensor belief,
                                                   Tensor error, Tensor entryDisplacement, float eta) {
        k.start().i(f.ordinal()).f(slope).l(z.size()).p(ptr(z)).p(ptr(anchor)).p(ptr(feedback)).p(ptr(displacement)).p(ptr(belief))
                .p(error == null ? 0L : ptr(error)).p(ptr(entryDisplacement)).f(eta).launch("pc_strict_entry_update", z.size());
    }

    @Override protected void doSumSquares(Tensor x, float scale, Tensor out, long outIndex) {
        k.start().p(ptr(x)).l(x.size()).f(scale).p(ptr(out)).l(outIndex).launchBlocks("pc_sum_squares", 1);
    }

    @Override protected void doSgdStep(Tensor param, Tensor grad, Tensor momentumBuffer, float lr, float momentum, float dampening,
                                       float weightDecay, boolean nesterov, boolean firstStep) {
        k.start().l(param.size()).p(ptr(param)).p(ptr(grad)).p(ptrOrNull(momentumBuffer)).f(lr).f(momentum).f(dampening).f(weightDecay)
                .i(nesterov ? 1 : 0).i(firstStep ? 1 : 0).launch("pc_sgd_step", param.size());
    }

    @Override protected void doAdamStep(Tensor param, Tensor grad, Tensor m, Tensor v, float stepSize, float bc2Sqrt, float beta1, float beta2,
                                        float eps, float weightDecay) {
        k.start().l(param.size()).p(ptr(param)).p(ptr(grad)).p(ptr(m)).p(ptr(v)).f(stepSize).f(bc2Sqrt).f(beta1).f(beta2).f(eps).f(weightDecay)
                .launch("pc_adam_step", param.size());
    }

    @Override protected void doRandomUniform(Tensor t, float lo, float hi, long seed) {
        k.start().p(ptr(t)).l(t.size()).f(lo).f(hi).l(seed).launch("pc_random_uniform", t.size());
    }

    @Override protected void doClose() {
        driver.setCurrent(context);
        try {
            driver.synchronize(stream);
            if (graphs != null) graphs.close();
            for (long p : owned) driver.free(p); // pooled and still-open tensors alike
            owned.clear();
            pool.clear();
            cublas.close();
            k.close();
            driver.freeHost(staging);
            driver.destroyStream(stream);
        } finally {
            driver.releasePrimaryContext(device);
        }
    }
}
