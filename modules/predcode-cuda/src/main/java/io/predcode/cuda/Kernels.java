package io.predcode.cuda;

import io.predcode.spi.Conv2dGeometry;
import io.predcode.spi.PoolGeometry;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.HashMap;
import java.util.Map;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * predcode's kernels (native/cuda/predcode.cu), compiled by the build into a fatbin resource and
 * loaded with cuModuleLoadData, each launched through one method whose parameters are the kernel's,
 * in its order ({@code long} for {@code long long} and for device pointers, 0 for a null one).
 * Launches reuse one argument block: a backend issues them from one thread at a time, and
 * cuLaunchKernel copies the arguments before it returns. The argument list ends with NULL: the
 * driver reads only as many as the kernel has, and the host simulator checks the count with it.
 */
final class Kernels {
    static final String RESOURCE = "/io/predcode/cuda/predcode.fatbin";
    static final int BLOCK = 256, MAX_GRID = 65535;
    /**
     * The most blocks of a reduction: the partials buffer's doubles, after which it holds the count of blocks done
     * (predcode.cu's PARTIALS and reduce_out). A lane's buffer is {@link #PARTIALS_BYTES}, zeroed once.
     */
    static final int PARTIALS = 1024;
    /** A lane's partials buffer: PARTIALS doubles and the count (a double's room). */
    static final long PARTIALS_BYTES = 8L * (PARTIALS + 1);
    private static final int SLOTS = 24;

    private final CudaDriver driver;
    private final long module;
    /** The stream launches go to, and its device buffer of PARTIALS doubles for the reductions' partial sums and the count of blocks done (the backend owns it): see {@link #on}. */
    private long stream, partials;
    private final Map<String, Long> functions = new HashMap<>();
    /** Shared, not confined: a service calls the backend from any of its threads (one at a time). */
    private final Arena arena = Arena.ofShared();
    private final MemorySegment values = arena.allocate(8L * SLOTS, 8), pointers = arena.allocate(ADDRESS, SLOTS + 1);
    /** The optimizer kernels' StepTensors: ends, then the parameters', gradients' and two states' pointers. */
    private final MemorySegment stepTensors = arena.allocate(5L * 8 * STEP_TENSORS, 8);
    private int count;

    /** The fatbin bytes from the jar, or null when the build had no nvcc. */
    static byte[] image() {
        try (InputStream in = Kernels.class.getResourceAsStream(RESOURCE)) {
            return in == null ? null : in.readAllBytes();
        } catch (IOException e) {
            return null;
        }
    }

    Kernels(CudaDriver driver, byte[] image, long stream, long partials) {
        this.driver = driver;
        this.stream = stream;
        this.partials = partials;
        MemorySegment img = arena.allocate(image.length + 1L, 16);
        MemorySegment.copy(image, 0, img, java.lang.foreign.ValueLayout.JAVA_BYTE, 0, image.length);
        this.module = driver.loadModule(img);
    }

    /**
     * Sends later launches to {@code stream}, with its own {@code partials} buffer: streams that run at
     * once must not share one, or their reductions would mix their partial sums.
     */
    void on(long stream, long partials) {
        this.stream = stream;
        this.partials = partials;
    }

    // ---------------------------------------------------------------- one method per kernel

    void axpby(long n, float alpha, long x, float beta, long y) { start().l(n).f(alpha).p(x).f(beta).p(y).over("pc_axpby", n); }

    void add(long n, float alpha, long a, float beta, long b, long out) { start().l(n).f(alpha).p(a).f(beta).p(b).p(out).over("pc_add", n); }

    void activationIncrement(int kind, float slope, long n, long x0, long dx, long x, long y, long d, long minus, long change, long delta) {
        start().i(kind).f(slope).l(n).p(x0).p(dx).p(x).p(y).p(d).p(minus).p(change).p(delta).over("pc_activation_increment", n);
    }

    void strictStep(long n, long error, long vhat, long feedback, long displacement, long belief, float eta) {
        start().l(n).p(error).p(vhat).p(feedback).p(displacement).p(belief).f(eta).over("pc_strict_step", n);
    }

    void activation(int kind, float slope, long n, long x, long y) { start().i(kind).f(slope).l(n).p(x).p(y).over("pc_activation", n); }

    void activationBackward(int kind, float slope, long n, long x, long y, long dy, long dx) {
        start().i(kind).f(slope).l(n).p(x).p(y).p(dy).p(dx).over("pc_activation_backward", n);
    }

    void activationWithDerivative(int kind, float slope, long n, long x, long y, long d) {
        start().i(kind).f(slope).l(n).p(x).p(y).p(d).over("pc_activation_with_derivative", n);
    }

    void biasActivation(int kind, float slope, long n, long z, long bias, int channels, long y, long d) {
        start().i(kind).f(slope).l(n).p(z).p(bias).i(channels).p(y).p(d).over("pc_bias_activation", n);
    }

    /** A belief step's arguments as the kernels take them (BeliefStep): next, previous and copy as device pointers, 0 for none. */
    record Step(long next, float eta, float momentum, long previous, long copy) {
        static final Step NONE = new Step(0L, 0f, 0f, 0L, 0L);
    }

    private Kernels step(Step s) { return p(s.next).f(s.eta).f(s.momentum).p(s.previous).p(s.copy); }

    /** The product is z, or z + addend where addend is not 0. */
    void biasActivationError(int kind, float slope, long n, long z, long addend, long bias, int channels, long y, long d, long vhat, long displacement, long error,
                             long delta, Step step) {
        start().i(kind).f(slope).l(n).p(z).p(addend).p(bias).i(channels).p(y).p(d).p(vhat).p(displacement).p(error).p(delta).step(step)
                .over("pc_bias_activation_error", n);
    }

    /**
     * The product is out, or out + addend where addend is not 0. Where {@code sq} is not 0, also sq[index] = scale * sum
     * of error^2, as {@link #sumSquares} (its blocks, its bits).
     */
    void biasError(long n, long out, long addend, long bias, int channels, long target, long error, long sq, long index, float scale) {
        start().l(n).p(out).p(addend).p(bias).i(channels).p(target).p(error).p(partials);
        if (sq == 0) d(scale).p(sq).l(index).over("pc_bias_error", n);
        else reduction("pc_bias_error", partialBlocks(n), scale, sq, index);
    }

    void multiply(long n, long a, long b, long out) { start().l(n).p(a).p(b).p(out).over("pc_multiply", n); }

    void addBias(long y, long bias, long n, int channels, int inner) { start().p(y).p(bias).l(n).i(channels).i(inner).over("pc_add_bias", n); }

    void scaleChannels(long x, long scale, long shift, long y, long n, int channels, int inner) {
        start().p(x).p(scale).p(shift).p(y).l(n).i(channels).i(inner).over("pc_scale_channels", n);
    }

    /**
     * Blocks of (channel, chunk): chunks enough that each thread sums about 64 elements, as many as
     * the partials buffer holds; one chunk (a block per channel, no second pass) when a channel is small.
     */
    void biasGrad(long dy, long db, long outer, int channels, int inner, float alpha, float beta) {
        long perChannel = outer * inner;
        int chunks = (int) Math.max(1, Math.min(PARTIALS / channels, perChannel / (64L * BLOCK)));
        start().p(dy).p(db).p(partials).l(outer).i(channels).i(inner).i(chunks).f(alpha).f(beta).blocks("pc_bias_grad", channels * chunks);
        if (chunks > 1) start().p(partials).p(db).i(chunks).f(alpha).f(beta).blocks("pc_bias_grad_finish", channels);
    }

    void im2col(long x, long col, int images, Conv2dGeometry g) {
        geometry(start().p(x).p(col).i(images), g).over("pc_im2col", (long) images * g.patchSize() * g.outPixels());
    }

    void col2im(long col, long dx, int images, Conv2dGeometry g) {
        geometry(start().p(col).p(dx).i(images), g).over("pc_col2im", (long) images * g.inputSize());
    }

    void maxPool(long x, long y, int images, PoolGeometry g) { pool(start().p(x).p(y), images, g).over("pc_max_pool", outputs(images, g)); }

    void maxPoolIncrement(long x, long dx, long out, int images, PoolGeometry g) {
        pool(start().p(x).p(dx).p(out), images, g).over("pc_max_pool_increment", outputs(images, g));
    }

    void maxPoolBackward(long x, long dy, long dx, int images, PoolGeometry g) {
        pool(start().p(x).p(dy).p(dx), images, g).over("pc_max_pool_backward", inputs(images, g));
    }

    void avgPool(long x, long y, int images, PoolGeometry g) { pool(start().p(x).p(y), images, g).over("pc_avg_pool", outputs(images, g)); }

    void avgPoolBackward(long dy, long dx, int images, PoolGeometry g) {
        pool(start().p(dy).p(dx), images, g).over("pc_avg_pool_backward", inputs(images, g));
    }

    // Reductions: partialBlocks(items) blocks each write one double to the partials buffer, and the last block to
    // finish adds them in index order; one block writes the result itself (reduce_out; see reduction). The blocks
    // are fixed by the size, so the order of additions (and so the result) is the same on every call.

    /**
     * Items up to which a reduction is one block, each thread adding up to 64 of them. Kept now that more blocks cost no
     * second kernel: the blocks fix the order of additions, and so every reduction's bits.
     */
    static final long ONE_BLOCK = 64L * BLOCK;

    /** Blocks of a reduction over {@code items}: one up to ONE_BLOCK, else enough to fill the device, at most one per BLOCK items. */
    static int partialBlocks(long items) { return partialBlocks(items, items); }

    /** As {@link #partialBlocks(long)} for items of more than one element's work (rows of {@code work / items} classes). */
    static int partialBlocks(long items, long work) {
        return work <= ONE_BLOCK ? 1 : (int) Math.max(1, Math.min(PARTIALS, (items + BLOCK - 1) / BLOCK));
    }

    /**
     * A reduction, its arguments so far given: adds the result's scale and place (out[index]) to them and launches
     * {@code g} blocks; with more than one, the last to finish adds their partial sums (predcode.cu's reduce_out).
     */
    private void reduction(String name, int g, double scale, long out, long index) {
        d(scale).p(out).l(index).blocks(name, g);
    }

    /** The loss (the rows' mean) and, unless grad is 0, grad = (softmax - onehot) / divisor. */
    /** The logits are a linear op's products where addend or bias is not 0 ({@code channels} as {@link #biasError}'s). */
    void softmaxCrossEntropy(long logits, long addend, long bias, int channels, long labels, long loss, long grad, int rows, int classes, double divisor) {
        start().p(logits).p(addend).p(bias).i(channels).p(labels).p(partials).p(grad).i(rows).i(classes).d(divisor);
        reduction("pc_softmax_cross_entropy", partialBlocks(rows, (long) rows * classes), 1.0 / rows, loss, 0);
    }

    /** y is a linear op's products where addend or bias is not 0 ({@code channels} as {@link #biasError}'s). */
    void mse(long y, long addend, long bias, int channels, long t, long loss, long dy, long n) {
        start().p(y).p(addend).p(bias).i(channels).p(t).p(partials).p(dy).l(n);
        reduction("pc_mse", partialBlocks(n), 1.0 / n, loss, 0);
    }

    void countCorrect(long logits, long labels, long out, long index, int rows, int classes, boolean labelRows) {
        start().p(logits).p(labels).p(partials).i(rows).i(classes).i(labelRows ? 1 : 0);
        reduction("pc_count_correct", partialBlocks(rows, (long) rows * classes), 1.0, out, index);
    }

    void sumSquares(long x, long n, float scale, long out, long index) {
        start().p(x).l(n).p(partials);
        reduction("pc_sum_squares", partialBlocks(n), scale, out, index);
    }

    void predictionError(long n, long prediction, long vhat, long displacement, long error, long derivative, long delta, Step step) {
        start().l(n).p(prediction).p(vhat).p(displacement).p(error).p(derivative).p(delta).step(step).over("pc_prediction_error", n);
    }

    void strictUpdate(long n, long prediction, long vhat, long feedback, long displacement, long belief, long error, float eta) {
        start().l(n).p(prediction).p(vhat).p(feedback).p(displacement).p(belief).p(error).f(eta).over("pc_strict_update", n);
    }

    void momentumUpdate(long n, long prediction, long vhat, long feedback, long displacement, long velocity, long belief, long error, float eta,
                        float momentum, boolean first) {
        start().l(n).p(prediction).p(vhat).p(feedback).p(displacement).p(velocity).p(belief).p(error).f(eta).f(momentum).i(first ? 1 : 0)
                .over("pc_momentum_update", n);
    }

    void adamUpdate(long n, long prediction, long vhat, long feedback, long displacement, long moment, long second, long belief, long error,
                    float stepSize, float bc2Sqrt, float b1, float b2, float eps) {
        start().l(n).p(prediction).p(vhat).p(feedback).p(displacement).p(moment).p(second).p(belief).p(error).f(stepSize).f(bc2Sqrt).f(b1).f(b2).f(eps)
                .over("pc_adam_update", n);
    }

    /** out[j] = sum over b of parts[b * size + j] (+ beta out[j]), summed in batch order. */
    void sumBatches(long parts, long out, long batches, long size, float beta) { start().p(parts).p(out).l(batches).l(size).f(beta).over("pc_sum_batches", size); }

    void sgdStep(long n, long p, long g, long buf, float lr, float momentum, float dampening, float wd, boolean nesterov, boolean first, long scalars, long guard, int guardCount) {
        start().l(n).p(p).p(g).p(buf).f(lr).f(momentum).f(dampening).f(wd).i(nesterov ? 1 : 0).i(first ? 1 : 0).p(scalars).p(guard).i(guardCount).over("pc_sgd_step", n);
    }

    void adamStep(long n, long p, long g, long m, long v, float stepSize, float bc2Sqrt, float b1, float b2, float eps, float wd, float decay, long scalars, long guard, int guardCount) {
        start().l(n).p(p).p(g).p(m).p(v).f(stepSize).f(bc2Sqrt).f(b1).f(b2).f(eps).f(wd).f(decay).p(scalars).p(guard).i(guardCount).over("pc_adam_step", n);
    }

    /** The most parameters one pc_adam_steps or pc_sgd_steps launch takes (the kernels' STEP_TENSORS). */
    static final int STEP_TENSORS = 16;

    /**
     * Adam steps of {@code count} (at most {@link #STEP_TENSORS}) parameters from index {@code from} of the arrays (the
     * parameters, gradients, first and second moments), in one launch.
     */
    void adamSteps(int from, int count, long[] sizes, long[] p, long[] g, long[] m, long[] v, float b1, float b2, float eps, float wd, long scalars, long guard, int guardCount) {
        long end = stepTensors(from, count, sizes, p, g, m, v);
        start().struct(stepTensors).i(count).f(b1).f(b2).f(eps).f(wd).p(scalars).p(guard).i(guardCount).over("pc_adam_steps", end);
    }

    /** SGD steps as {@link #adamSteps}, with each parameter's momentum buffer (0 without momentum). */
    void sgdSteps(int from, int count, long[] sizes, long[] p, long[] g, long[] buf, float momentum, float dampening, float wd, boolean nesterov, long scalars, long guard, int guardCount) {
        long end = stepTensors(from, count, sizes, p, g, buf, null);
        start().struct(stepTensors).i(count).f(momentum).f(dampening).f(wd).i(nesterov ? 1 : 0).p(scalars).p(guard).i(guardCount).over("pc_sgd_steps", end);
    }

    /** Fills the kernels' StepTensors: each parameter's end in the concatenation, then its four pointers; returns the total. */
    private long stepTensors(int from, int count, long[] sizes, long[] p, long[] g, long[] s1, long[] s2) {
        long end = 0;
        for (int k = 0; k < STEP_TENSORS; k++) {
            boolean used = k < count;
            if (used) end += sizes[from + k];
            stepTensors.setAtIndex(JAVA_LONG, k, end);
            stepTensors.setAtIndex(JAVA_LONG, STEP_TENSORS + k, used ? p[from + k] : 0);
            stepTensors.setAtIndex(JAVA_LONG, 2 * STEP_TENSORS + k, used ? g[from + k] : 0);
            stepTensors.setAtIndex(JAVA_LONG, 3 * STEP_TENSORS + k, used ? s1[from + k] : 0);
            stepTensors.setAtIndex(JAVA_LONG, 4 * STEP_TENSORS + k, used && s2 != null ? s2[from + k] : 0);
        }
        return end;
    }

    void randomUniform(long p, long n, float lo, float hi, long seed) { start().p(p).l(n).f(lo).f(hi).l(seed).over("pc_random_uniform", n); }

    // ---------------------------------------------------------------- the argument block

    private static long outputs(int images, PoolGeometry g) { return (long) images * g.channels() * g.outHeight() * g.outWidth(); }

    private static long inputs(int images, PoolGeometry g) { return (long) images * g.channels() * g.height() * g.width(); }

    private Kernels geometry(Kernels k, Conv2dGeometry g) {
        return k.i(g.channels()).i(g.height()).i(g.width()).i(g.kh()).i(g.kw()).i(g.sh()).i(g.sw()).i(g.ph()).i(g.pw()).i(g.outHeight()).i(g.outWidth());
    }

    private Kernels pool(Kernels k, int images, PoolGeometry g) {
        return k.l((long) images * g.channels()).i(g.height()).i(g.width()).i(g.kh()).i(g.kw()).i(g.sh()).i(g.sw()).i(g.outHeight()).i(g.outWidth());
    }

    private Kernels start() { count = 0; return this; }

    private Kernels slot() {
        pointers.setAtIndex(ADDRESS, count, values.asSlice(8L * count, 8));
        return this;
    }

    private Kernels i(int v) { values.set(JAVA_INT, 8L * count, v); slot().count++; return this; }

    private Kernels l(long v) { values.set(JAVA_LONG, 8L * count, v); slot().count++; return this; }

    private Kernels f(float v) { values.set(JAVA_FLOAT, 8L * count, v); slot().count++; return this; }

    private Kernels d(double v) { values.set(JAVA_DOUBLE, 8L * count, v); slot().count++; return this; }

    private Kernels p(long devicePointer) { return l(devicePointer); }

    /** A parameter passed by value from its own memory (a struct), whose bytes the driver copies at the launch. */
    private Kernels struct(MemorySegment bytes) { pointers.setAtIndex(ADDRESS, count++, bytes); return this; }

    /** Launches over {@code work} items with grid-stride loops. */
    private void over(String name, long work) { blocks(name, (int) Math.max(1, Math.min(MAX_GRID, (work + BLOCK - 1) / BLOCK))); }

    private void blocks(String name, int grid) {
        pointers.setAtIndex(ADDRESS, count, MemorySegment.NULL);
        driver.launch(function(name), grid, BLOCK, stream, pointers, name);
    }

    private long function(String name) { return functions.computeIfAbsent(name, n -> driver.function(module, n)); }

    void close() { arena.close(); }
}
