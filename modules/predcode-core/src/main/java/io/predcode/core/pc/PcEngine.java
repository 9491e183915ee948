package io.predcode.core.pc;

import io.predcode.core.internal.Guard;
import io.predcode.core.nn.Block;
import io.predcode.core.nn.Loss;
import io.predcode.core.nn.Model;
import io.predcode.core.optim.Optimizer;
import io.predcode.spi.Backend;
import io.predcode.spi.BeliefStep;
import io.predcode.spi.Tensor;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Runs Torch2PC's algorithms on a model: one {@link #infer} call = one PCInfer call. Everything stays
 * on the model's backend; per step the host sends the batch and reads back the loss.
 *
 * <p>Semantics, exactly as Torch2PC's PCInfer (golden files pin them down):
 * <ul>
 * <li>Within a sweep every update reads the values from the start of the sweep (Torch2PC's layer
 *     loop runs top-down and each error is formed before the layer below changes).</li>
 * <li>FIXED_PRED keeps the prediction errors themselves as state (eps_l = vhat_l - v_l): Torch2PC
 *     stores v and subtracts, which cancels catastrophically in float32. Returned epsilon is the value
 *     at the start of the last sweep, v = vhat - eps after it; updates use vhat.</li>
 * <li>STRICT keeps v_0 = x, starts at vhat, recomputes every prediction from the current beliefs,
 *     and forms eps_l = f_l(v_{l-1}) - v_l (Torch2PC's corrected sign); each block's forward is computed once per sweep and reused
 *     for its VJP; block 0's forward is the feedforward one (its input never changes).</li>
 * </ul>
 *
 * <p>Memory: one workspace, sized to the largest batch seen (or to {@link #maxBatch}); a smaller batch
 * runs in views of it, so mixing batch sizes allocates nothing once the largest has been seen.
 *
 * <p>Not thread-safe: an engine used by a second thread while a call is running throws
 * {@link IllegalStateException}. To serve predictions from many threads, use a {@link io.predcode.core.serve.Predictor}.
 */
public final class PcEngine implements AutoCloseable {
    /** View workspaces kept for smaller batch sizes (a few Java objects each; no device memory). */
    private static final int KEPT_VIEWS = 256;

    private final Model model;
    private final Loss loss;
    private final Backend be;
    private final Guard guard;
    /** The workspace that owns the memory, sized to the largest batch so far; null before the first call. */
    private Workspace full;
    private final Map<Integer, Workspace> views = new LinkedHashMap<>(16, 0.75f, true) {
        @Override protected boolean removeEldestEntry(Map.Entry<Integer, Workspace> e) { return size() > KEPT_VIEWS; }
    };
    private int maxBatch;
    private Condense condense = Condense.AUTO;
    private BeliefOptimizer beliefOptimizer = BeliefOptimizer.sgd(0f);
    private Energy energy = Energy.TORCH2PC;
    private Nudging nudging = Nudging.none();
    /** The batch the loss is a mean over when this engine computes one shard of a larger one (0: its own batch). */
    private int globalBatch;
    /** Centred nudging's updates from its positive relaxation, one tensor per parameter; allocated on first use. */
    private io.predcode.spi.Scope heldScope;
    private Tensor[] held;
    /** Each block's forward multiply-adds per sample, and each layer's size (layer l: block l's input), for the work {@link #eachBlock} balances. */
    private final double[] blockMacs, layerSizes;
    /** No branches beside a round's blocks. */
    private static final Runnable[] NONE = {};
    /** Layer l's size, a round's work per sample where each branch updates one layer. */
    private final java.util.function.IntToDoubleFunction layerSize = this::sizeOfLayer;
    private double sizeOfLayer(int l) { return layerSizes[l]; }

    /** The kept arrays and branch objects of {@link #each}. */
    private final BranchSets branchSets = new BranchSets();
    /**
     * Whether the device counts a batch's correct classifications: cross-entropy's against its labels, squared
     * error's where the output is flat with two values or more, against its (one-hot) targets' argmax.
     */
    private final boolean countsCorrect;

    /** An engine for {@code model} with this loss; cross-entropy needs a flat output of class scores. */
    public PcEngine(Model model, Loss loss) {
        this.model = model;
        this.loss = loss;
        this.be = model.backend();
        this.guard = new Guard("PcEngine@" + Integer.toHexString(System.identityHashCode(this)) + " (model of " + model.depth() + " blocks)", this::release);
        blockMacs = blockMacs();
        layerSizes = new double[model.depth()];
        for (int l = 0; l < model.depth(); l++) layerSizes[l] = size(model.activationShape(l));
        int[] out = model.activationShape(model.depth());
        if (loss == Loss.CROSS_ENTROPY && out.length != 1)
            throw new IllegalArgumentException("cross_entropy needs a flat model output [classes]; block " + (model.depth() - 1) + " outputs " + Arrays.toString(out));
        countsCorrect = loss == Loss.CROSS_ENTROPY || out.length == 1 && out[0] > 1;
    }

    /**
     * Sizes the workspace for batches up to {@code batch} now, and refuses larger ones from then on (0:
     * no limit, the workspace grows to the largest batch seen). Returns this engine.
     */
    public PcEngine maxBatch(int batch) {
        if (batch < 0) throw new IllegalArgumentException("maxBatch must be >= 0 (0: no limit), got " + batch);
        enter();
        try {
            this.maxBatch = batch;
            if (batch > 0 && (full == null || full.batch != batch)) grow(batch, Math.max(beliefMoments(), full == null ? 0 : full.moments));
        } finally {
            exit();
        }
        return this;
    }

    /** The batch size the workspace is sized for (0 before the first call). */
    public int capacity() { return full == null ? 0 : full.batch; }

    /** Takes this engine and its model for the calling thread (see {@link Guard}); pair with {@link #exit}. */
    void enter() { guard.enter(model.guard()::enter); }

    void exit() { guard.exit(model.guard()::exit); }

    /** The model. */
    public Model model() { return model; }

    /**
     * Where STRICT relaxes layer 1. Its prediction f_1(x) never changes, so its belief only moves along
     * A^T, where A is block 1's first op (linear, or conv2d at stride 1 without padding): it can relax in
     * A's output space instead, applying G = A A^T once per sweep rather than A and A^T, and without
     * touching layer 1 until the last sweep. Both give the same numbers up to float32 rounding.
     */
    public enum Condense {
        /** Condense where G costs no more multiply-adds than A and A^T (the default). */
        AUTO,
        /** Relax layer 1 in its own space, as Torch2PC does. */
        NEVER,
        /** Condense wherever block 1 allows it. */
        ALWAYS
    }

    /** Sets where STRICT relaxes layer 1 (see {@link Condense}); returns this engine. */
    public PcEngine condense(Condense mode) {
        this.condense = java.util.Objects.requireNonNull(mode, "mode");
        return this;
    }

    /**
     * How {@link Algorithm#PC} moves the beliefs (default: SGD without momentum, which is STRICT).
     *
     * @param optimizer the belief optimizer
     * @return this engine
     */
    public PcEngine beliefOptimizer(BeliefOptimizer optimizer) {
        this.beliefOptimizer = java.util.Objects.requireNonNull(optimizer, "optimizer");
        return this;
    }

    /**
     * Which energy {@link Algorithm#PC} and {@link Algorithm#IPC} relax and learn from (default
     * {@link Energy#TORCH2PC}, on which PC with plain SGD is STRICT).
     *
     * @param energy the energy
     * @return this engine
     */
    public PcEngine energy(Energy energy) {
        this.energy = java.util.Objects.requireNonNull(energy, "energy");
        return this;
    }

    /**
     * How {@link Algorithm#PC} and {@link Algorithm#IPC} hold the output (default: not nudged, the
     * output term is the loss). Nudging needs {@link Energy#PER_SAMPLE}; centred nudging relaxes each
     * batch twice and does not combine with iPC.
     *
     * @param nudging the nudging
     * @return this engine
     */
    public PcEngine nudging(Nudging nudging) {
        this.nudging = java.util.Objects.requireNonNull(nudging, "nudging");
        return this;
    }

    /**
     * Makes every step compute its batch's share of a step on {@code batch} samples, for
     * data-parallel training (0, the default: the batch is the whole). The loss is a mean over the
     * global batch, so the loss gradient of each sample, and with it every relaxation and update, is
     * what one process would compute on the whole batch; the shards' parameter updates then sum to
     * its updates exactly (up to float32 summation order). The loss and correct count reported are
     * still this batch's own. Generative inference is not affected.
     *
     * @param batch the global batch, or 0
     * @return this engine
     */
    public PcEngine globalBatch(int batch) {
        if (batch < 0) throw new IllegalArgumentException("global batch must be >= 0 (0: the batch itself), got " + batch);
        this.globalBatch = batch;
        return this;
    }

    /**
     * One training step's parameter updates on a batch, into the parameters' grad tensors, with
     * nothing else computed or applied: what a data-parallel shard contributes. Returns the loss and
     * correct count; iPC, whose updates are applied during its relaxation, is refused.
     *
     * @param x         inputs, {@code batch} samples
     * @param y         targets
     * @param batch     samples
     * @param algorithm the algorithm
     * @param eta       its step size
     * @param n         its sweeps
     * @return the result (no beliefs)
     */
    public InferenceResult updates(float[] x, float[] y, int batch, Algorithm algorithm, float eta, int n) {
        if (algorithm == Algorithm.IPC) throw new IllegalArgumentException("iPC applies its updates during the relaxation, n times a step: it has no one update to return");
        enter();
        try {
            return run(load(x, y, batch), algorithm, eta, n, false);
        } finally {
            exit();
        }
    }

    /** Block 1's entry op when STRICT, as set, relaxes layer 1 in its output space; null when it relaxes layer 1 in its own. */
    public Block.Entry condensedEntry() {
        Block.Entry entry = model.depth() > 1 ? model.blocks().get(1).entry() : null;
        return entry == null || condense == Condense.NEVER || condense == Condense.AUTO && !entry.pays() ? null : entry;
    }

    /** The loss. */
    public Loss loss() { return loss; }

    /** Floats per sample of the input, and of the target (1 for class labels). */
    public int inputSize() { return size(model.inputShape()); }

    /** Floats per sample of the targets (1 for class labels). */
    public int targetSize() { return Math.max(1, size(loss.targetShape(model.activationShape(model.depth())))); }

    // ------------------------------------------------------------------ public entry points

    /**
     * One PCInfer call on host arrays: {@code x} holds {@code batch} samples in row-major order,
     * {@code y} the targets (class indices as floats for cross-entropy). Returns every tensor PCInfer
     * returns, including beliefs and the input error.
     */
    public InferenceResult infer(float[] x, float[] y, int batch, Algorithm algorithm, float eta, int n) {
        enter();
        try {
            return run(load(x, y, batch), algorithm, eta, n, true);
        } finally {
            exit();
        }
    }

    /** As {@link #infer(float[], float[], int, Algorithm, float, int)} from float32 memory segments (e.g. off-heap batches). */
    public InferenceResult infer(MemorySegment x, MemorySegment y, int batch, Algorithm algorithm, float eta, int n) {
        enter();
        try {
            return run(load(x, y, batch), algorithm, eta, n, true);
        } finally {
            exit();
        }
    }

    /**
     * Feedforward loss and number of correct argmax predictions: against the labels (cross-entropy) or the
     * targets' argmax (mse on a flat output of two values or more); -1 for other outputs.
     */
    public record Evaluation(float loss, int correct) {}

    /** Feedforward loss and correct count for a batch of host arrays. */
    public Evaluation evaluate(float[] x, float[] y, int batch) {
        enter();
        try {
            return evaluate(load(x, y, batch));
        } finally {
            exit();
        }
    }

    /** Feedforward loss and correct count for a batch in float32 segments. */
    public Evaluation evaluate(MemorySegment x, MemorySegment y, int batch) {
        enter();
        try {
            return evaluate(load(x, y, batch));
        } finally {
            exit();
        }
    }

    private Evaluation evaluate(Workspace ws) {
        forward(ws);
        loss.compute(be, ws.vhat(model.depth()), ws.y, ws.scalars, null);
        countCorrect(ws);
        float[] out = new float[2];
        be.download(ws.scalars, 0, out, 0, countsCorrect ? 2 : 1);
        return new Evaluation(out[0], countsCorrect ? (int) out[1] : -1);
    }

    /** Model outputs (logits for classification) for a batch, copied to the host. */
    public float[] predict(float[] x, int batch) {
        enter();
        try {
            checkInput(x.length, batch);
            Workspace ws = workspace(batch);
            be.upload(x, 0, ws.x, 0, batch * inputSize());
            forward(ws);
            return be.download(ws.vhat(model.depth()));
        } finally {
            exit();
        }
    }

    /**
     * What {@link #generate} inferred.
     *
     * @param input        the inputs at the end of the relaxation, {@code batch} samples (the starting ones where layer 0 was clamped)
     * @param output       the model's feedforward outputs for those inputs (logits for classification)
     * @param startEnergy  a sample's mean energy at the start: the output term at the starting inputs' feedforward values
     * @param finalEnergy  a sample's mean energy at the end: the output term plus each hidden layer's ||eps_l||^2 / 2
     */
    public record Generation(float[] input, float[] output, double startEnergy, double finalEnergy) {}

    /**
     * Generative inference: the output is held at {@code y} (class labels for cross-entropy, targets
     * for mse) and the beliefs of every other layer, the input included, relax by gradient descent on
     * each sample's energy (its own loss at the predicted output plus ||eps_l||^2 / 2 for l = 1..L-1;
     * the input has no error of its own), from the feedforward values of {@code x0}. Layers listed in
     * {@code clamped} (0 = the input, up to L-1) keep their starting values. For a model trained as a
     * classifier, the inputs become what the model takes as each class, starting from {@code x0}.
     * Everything runs on the device; the host reads the result once.
     *
     * @param x0      starting inputs, {@code batch} samples
     * @param y       the held outputs
     * @param batch   samples
     * @param eta     the step size (per sample: independent of the batch)
     * @param n       steps
     * @param clamped layers held at their starting values
     * @return the inferred inputs and energies
     */
    public Generation generate(float[] x0, float[] y, int batch, float eta, int n, int... clamped) {
        if (!(eta > 0) || !Float.isFinite(eta)) throw new IllegalArgumentException("eta must be a finite number > 0, got " + eta);
        if (n < 1) throw new IllegalArgumentException("n (steps) must be >= 1, got " + n);
        int depth = model.depth();
        boolean[] held = new boolean[depth];
        for (int l : clamped) {
            if (l < 0 || l >= depth) throw new IllegalArgumentException("clamped layer " + l + " is not in 0.." + (depth - 1) + " (the output is always held)");
            held[l] = true;
        }
        enter();
        int shard = globalBatch;
        globalBatch = 0; // generation is per sample, never a shard
        try {
            Workspace ws = load(x0, y, batch);
            List<Block> blocks = model.blocks();
            float scale = perSampleScale(batch);
            forward(ws);
            loss.compute(be, ws.vhat(depth), ws.y, ws.scalars, null);
            for (int l = 1; l < depth; l++) be.copy(ws.vhat(l), ws.belief[l]);
            for (int s = 0; s <= n; s++) {
                // The predictions and errors from the current beliefs; after the n steps, once more for the final energy.
                blocks.get(0).forward(be, ws.x, ws.sweep[0]);
                for (int b = 1; b < depth; b++) blocks.get(b).forward(be, ws.belief[b], ws.sweep[b]);
                outputError(ws, ws.sweep[depth - 1].output(), null, true, s == n);
                for (int l = depth - 1; l >= 0; l--) {
                    boolean moves = s < n && !held[l];
                    // J_{l+1}^T eps_{l+1}: layer l's own gradient, and below layer 1 the only one (the input has no error).
                    if (moves) blocks.get(l).backward(be, ws.sweep[l], ws.error[l + 1], ws.feedback[l], 0f);
                    if (l >= 1) be.add(1f, ws.sweep[l - 1].output(), -1f, ws.belief[l], ws.error[l]); // eps_l = f_l(v_{l-1}) - v_l
                    if (!moves) continue;
                    if (l >= 1) be.axpby(-1f, ws.error[l], 1f, ws.feedback[l]);
                    be.axpby(-eta, ws.feedback[l], 1f, l == 0 ? ws.x : ws.belief[l]);
                }
            }
            ws.writeEnergyTerms(be, depth, Algorithm.PC);
            float[] terms = new float[Workspace.ENERGY_AT + depth];
            be.download(ws.scalars, 0, terms, 0, terms.length);
            double perSampleOutput = scale / batch, end = perSampleOutput * terms[Workspace.ENERGY_AT];
            for (int l = 1; l < depth; l++) end += (double) terms[Workspace.ENERGY_AT + l] / batch;
            float[] input = be.download(ws.x);
            forward(ws);
            return new Generation(input, be.download(ws.vhat(depth)), perSampleOutput * terms[0], end);
        } finally {
            globalBatch = shard;
            exit();
        }
    }

    // ------------------------------------------------------------------ package-private: used by training

    Workspace load(float[] x, float[] y, int batch) {
        checkInput(x.length, batch);
        Workspace ws = workspace(batch);
        if (y.length != batch * targetSize())
            throw new IllegalArgumentException("targets: got " + y.length + " floats for a batch of " + batch + "; expected " + batch * targetSize()
                    + " (" + (loss == Loss.CROSS_ENTROPY ? "one class index per sample" : "the output shape " + Arrays.toString(model.activationShape(model.depth())) + " per sample") + ")");
        loss.checkTargets(y, 0, batch, model.activationShape(model.depth()), "targets");
        be.upload(x, 0, ws.x, 0, x.length);
        be.upload(y, 0, ws.y, 0, y.length);
        return ws;
    }

    Workspace load(MemorySegment x, MemorySegment y, int batch) {
        checkInput(x.byteSize() / Float.BYTES, batch);
        Workspace ws = workspace(batch);
        if (y.byteSize() / Float.BYTES != (long) batch * targetSize())
            throw new IllegalArgumentException("targets: got " + y.byteSize() / Float.BYTES + " floats for a batch of " + batch + "; expected " + (long) batch * targetSize());
        if (loss == Loss.CROSS_ENTROPY) // a few hundred labels: cheap to check on the host before they reach the device
            loss.checkTargets(y.toArray(java.lang.foreign.ValueLayout.JAVA_FLOAT), 0, batch, model.activationShape(model.depth()), "targets");
        be.upload(x, ws.x, 0);
        be.upload(y, ws.y, 0);
        return ws;
    }

    private void checkInput(long floats, int batch) {
        if (batch < 1) throw new IllegalArgumentException("batch size must be >= 1, got " + batch);
        if (floats != (long) batch * inputSize())
            throw new IllegalArgumentException("input batch: got " + floats + " floats for a batch of " + batch + " samples of shape "
                    + Arrays.toString(model.inputShape()) + "; expected " + (long) batch * inputSize());
    }

    /**
     * The workspace for this batch size: the full one, or views of it for a smaller batch. It is
     * reallocated for a larger batch, or when the belief optimizer needs state it lacks (a switch from
     * plain SGD to momentum or Adam; it keeps the state after a switch back).
     */
    Workspace workspace(int batch) {
        int moments = beliefMoments();
        if (full == null || batch > full.batch) {
            if (maxBatch > 0 && batch > maxBatch)
                throw new IllegalArgumentException("batch of " + batch + " is larger than this engine's maxBatch of " + maxBatch);
            // After the first size, grow at least 2x, so a stream of rising batch sizes reallocates a few times, not at each.
            grow(full == null ? batch : Math.max(batch, (int) Math.min(maxBatch > 0 ? maxBatch : Integer.MAX_VALUE, 2L * full.batch)),
                    full == null ? moments : Math.max(moments, full.moments));
        } else if (moments > full.moments) grow(full.batch, moments);
        if (batch == full.batch) return full;
        Workspace ws = views.get(batch);
        if (ws == null) views.put(batch, ws = Workspace.viewsOf(full, model, loss, batch));
        return ws;
    }

    /**
     * Multiply-adds per sample of one training step with {@code algorithm} and {@code n} sweeps, counting
     * the GEMM-shaped work (linear and conv): BACKPROP and EXACT 3M - M0, FIXED_PRED 2M + n(M - M0),
     * STRICT 2M + (2n+1)(M - M0), PC at most that and less in its first L-1 steps (the error wave),
     * iPC M + n(3M - M0), Z-IL 2M + 2L(M - M0), where M is the model's forward work and M0 its first block's (whose
     * input gradient a step never needs). Where STRICT condenses layer 1, each sweep applies G = A A^T
     * instead of A and A^T, and the step adds A^T once and the forming of G, shared by the batch.
     * FIXED_PRED skips exact zeros in early sweeps, so its count is an upper bound.
     *
     * @param algorithm the algorithm
     * @param n         sweeps (ignored by BACKPROP and EXACT)
     * @param batch     samples per step, over which forming G is shared
     * @return multiply-adds per sample
     */
    public double stepMacs(Algorithm algorithm, int n, int batch) {
        double[] block = blockMacs();
        double total = Arrays.stream(block).sum(), rest = total - block[0];
        double macs = switch (algorithm) {
            case BACKPROP, EXACT -> 3 * total - block[0];
            case FIXED_PRED -> 2 * total + n * rest;
            case STRICT -> 2 * total + (2.0 * n + 1) * rest;
            case PC -> (nudging.kind() == Nudging.Kind.CENTRED ? 2 : 1) * pcMacs(block, n);
            // Each step: every block's forward, the input gradients above block 0 and every parameter gradient.
            case IPC -> total + n * (3 * total - block[0]);
            // L sweeps of forward and input gradient above block 0, each parameter gradient once.
            case ZIL -> 2 * total + 2.0 * model.depth() * rest;
        };
        Block.Entry entry = algorithm == Algorithm.STRICT ? condensedEntry() : null;
        if (entry != null) macs += n * (entry.gramMacs() - 2.0 * entry.forwardMacs()) + 2.0 * entry.forwardMacs() + (double) entry.formationMacs() / batch;
        return macs;
    }

    /** Each block's forward multiply-adds per sample. */
    private double[] blockMacs() {
        double[] block = new double[model.depth()];
        for (io.predcode.core.nn.ModelSpec.OpAt at : model.spec().ops(model.inputShape())) block[at.block()] += at.op().macs(at.input());
        return block;
    }

    /**
     * PC's multiply-adds per sample with the error wave (see {@link #relax}): the feedforward pass; at
     * step s the forward of the blocks whose input moved (b &gt;= L-s+1) and the input gradient of
     * those whose output error is nonzero (b &gt;= L-s, b &gt;= 1); then the forward above block 0 and
     * every parameter gradient, at the final beliefs.
     */
    private static double pcMacs(double[] block, int n) {
        int depth = block.length;
        double total = Arrays.stream(block).sum(), macs = 2 * total + (total - block[0]);
        for (int s = 1; s <= n; s++)
            for (int b = 1; b < depth; b++) macs += (b >= depth - s + 1 ? block[b] : 0) + (b >= depth - s ? block[b] : 0);
        return macs;
    }

    /**
     * Tensors of a layer's size a workspace holds at the most: feedforward and sweep tapes (an
     * activation and a gradient per op, a few ops a block, and kept derivatives: GELU's, on a GPU every
     * activation's), the error, belief, feedback and displacement. An upper bound, to refuse a batch that
     * cannot fit before allocating it.
     */
    private static final int TENSORS_PER_LAYER = 16;

    /**
     * An upper bound on the bytes of a workspace for {@code batch} samples of {@code spec} (see
     * {@link #TENSORS_PER_LAYER}), computed without allocating: for refusing a run that cannot fit.
     *
     * @param spec       the model
     * @param inputShape its per-sample input shape
     * @param batch      the batch size
     * @return the estimate in bytes, Long.MAX_VALUE when it overflows
     */
    public static long workspaceBytes(io.predcode.core.nn.ModelSpec spec, int[] inputShape, int batch) {
        long perSample = 0;
        for (int[] shape : spec.activationShapes(inputShape)) {
            long n = 1;
            for (int d : shape) n *= d;
            perSample += n;
        }
        return perSample > Long.MAX_VALUE / 4 / TENSORS_PER_LAYER / batch ? Long.MAX_VALUE : 4L * TENSORS_PER_LAYER * perSample * batch;
    }

    /** State tensors per hidden layer the belief optimizer keeps: Adam's two moments, SGD's momentum, or none. */
    private int beliefMoments() { return beliefOptimizer.isAdam() ? 2 : beliefOptimizer.momentum() != 0f ? 1 : 0; }

    private void grow(int batch, int moments) {
        io.predcode.core.internal.Memory.require(be, workspaceBytes(model.spec(), model.inputShape(), batch),
                "the workspace for a batch of " + batch + " (about " + TENSORS_PER_LAYER + " tensors per layer)");
        Workspace bigger = new Workspace(model, loss, batch, moments); // before freeing the old one: if it fails, the engine still works
        release();
        full = bigger;
    }

    /** Frees the workspace and its views. */
    private void release() {
        views.clear(); // views own no memory
        if (full != null) full.close();
        full = null;
        if (heldScope != null) heldScope.close();
        heldScope = null;
        held = null;
        if (stepScalars != null) stepScalars.close();
        stepScalars = null;
    }

    /** What the optimizer's recorded steps read (see {@link Optimizer.Recordable}): the host's copy and the device's. */
    private float[] stepScalarsHost;
    private Tensor stepScalars;

    /**
     * The scalars of the optimizer's next n steps, on the device: one copy, into a tensor grown (rarely) to fit. A
     * grown tensor is another key for {@link Replay}, so no recording reads the one it replaced.
     */
    private Tensor uploadStepScalars(Optimizer.Recordable optimizer, int n) {
        int size = n * optimizer.scalarsPerStep();
        if (stepScalars == null || stepScalars.size() < size) {
            if (stepScalars != null) stepScalars.close();
            stepScalars = null; // not left pointing at a closed tensor if the allocation fails
            stepScalars = be.allocate(size);
            stepScalarsHost = new float[size];
        }
        optimizer.nextScalars(n, stepScalarsHost);
        be.upload(stepScalarsHost, 0, stepScalars, 0, size);
        return stepScalars;
    }

    /**
     * Runs one algorithm on the loaded batch and writes the parameter updates into the grad tensors.
     * {@code full} also computes what only a caller inspecting results needs (beliefs, FIXED_PRED's
     * input error); training passes false.
     */
    InferenceResult run(Workspace ws, Algorithm algorithm, float eta, int n, boolean full) { return run(ws, algorithm, eta, n, full, false); }

    /**
     * As {@link #run(Workspace, Algorithm, float, int, boolean)}; for every algorithm but BACKPROP,
     * {@code energy} also brings back the energy's terms (the output's loss, each hidden layer's
     * ||eps||^2 / 2) in the same one copy as the loss: {@link InferenceResult#energy()} and
     * {@link InferenceResult#layerEnergies()} then need no further copy.
     */
    InferenceResult run(Workspace ws, Algorithm algorithm, float eta, int n, boolean full, boolean energy) { return run(ws, algorithm, eta, n, full, energy, null); }

    /**
     * As {@link #run(Workspace, Algorithm, float, int, boolean, boolean)}, with the optimizer's steps: iPC steps
     * {@code weights} after each inference step's parameter updates, or holds the weights when it is null (a
     * learning rate of 0); the other algorithms, where {@code weights} is {@link Optimizer.Recordable}, take its
     * one step at the end of the step's device work. The device skips a recorded step when the step's loss (the
     * feedforward loss, which iPC computes before its first step) is not finite. The caller steps any other
     * optimizer itself, after reading the loss.
     */
    InferenceResult run(Workspace ws, Algorithm algorithm, float eta, int n, boolean full, boolean energy, Optimizer weights) {
        if (algorithm.relaxes()) {
            if (!(eta > 0) || !Float.isFinite(eta)) throw new IllegalArgumentException("eta must be a finite number > 0, got " + eta);
            if (n < 1) throw new IllegalArgumentException("n (sweeps) must be >= 1, got " + n);
        }
        if (algorithm.standard()) {
            if (nudging.active() && this.energy != Energy.PER_SAMPLE)
                throw new IllegalArgumentException("nudging " + nudging + " needs the per-sample energy (Energy.PER_SAMPLE, --energy sample), not " + this.energy.id());
            if (nudging.kind() == Nudging.Kind.CENTRED && algorithm == Algorithm.IPC)
                throw new IllegalArgumentException("centred nudging relaxes each batch twice and averages the updates; iPC applies its updates during the relaxation: use positive or negative nudging");
            if (nudging.kind() == Nudging.Kind.CENTRED) holdUpdates();
        }
        int depth = model.depth();
        boolean withEnergy = energy && algorithm.hasErrors();
        // The optimizer's steps (iPC's, one after each inference step; the others' one at the end) are recorded with the
        // rest where the optimizer reads what it takes from the host from a tensor filled before the step (Adam's step
        // sizes); iPC issues any other optimizer's steps from the host.
        boolean incremental = algorithm == Algorithm.IPC;
        Optimizer.Recordable recorded = weights instanceof Optimizer.Recordable r ? r : null;
        Tensor scalars = recorded != null ? uploadStepScalars(recorded, incremental ? n : 1) : null;
        java.util.function.IntConsumer weightStep = !incremental || weights == null ? null
                : recorded != null ? s -> recorded.step(scalars, (long) (s - 1) * recorded.scalarsPerStep(), ws.scalars, 0) : s -> weights.step();
        Runnable step = () -> {
            boolean backprop = algorithm == Algorithm.BACKPROP || algorithm == Algorithm.EXACT;
            boolean errorAtVhat = !backprop && forward(ws, errorFromFeedforward(algorithm), gramForm(ws, algorithm));
            if (backprop) forwardAndLossGradient(ws);
            else if (!lossInLastRound(algorithm)) feedforwardLoss(ws);
            switch (algorithm) {
                // The correct count, which the backward pass does not read, beside it: on a GPU, off the kernels that run one after another.
                case BACKPROP, EXACT -> be.branches(new double[]{1, 0}, () -> backprop(ws, full && algorithm == Algorithm.EXACT), () -> countCorrect(ws));
                case FIXED_PRED -> fixedPrediction(ws, eta, n, full);
                case STRICT -> strict(ws, eta, n, full);
                case PC, IPC -> standard(ws, algorithm, eta, n, full, weightStep, errorAtVhat);
                case ZIL -> zil(ws, full);
            }
            if (withEnergy) ws.writeEnergyTerms(be, depth, algorithm);
            // After the loss it is guarded on: a non-finite loss leaves the parameters as they were, as when the host stepped after reading it.
            if (recorded != null && !incremental) recorded.step(scalars, 0, ws.scalars, 0);
        };
        // Everything between the batch upload and the loss download is a fixed sequence of device ops for
        // this workspace and these settings: a backend may record it once and replay it (a CUDA graph).
        // Not iPC's where its optimizer's steps, in the middle, read the host.
        if (incremental && weights != null && recorded == null) step.run();
        else be.replayable(new Replay(ws, algorithm, eta, n, full, condense, beliefOptimizer, this.energy, nudging, globalBatch, withEnergy, recorded, scalars), step);
        // The host reads one copy per step: the loss, for classification the number of correct argmaxes, and when asked the energy terms.
        float[] out = new float[withEnergy ? Workspace.ENERGY_AT + depth : 2];
        be.download(ws.scalars, 0, out, 0, withEnergy ? out.length : countsCorrect ? 2 : 1);
        float[] terms = withEnergy ? Arrays.copyOfRange(out, Workspace.ENERGY_AT, out.length) : null;
        if (recorded != null && Float.isFinite(out[0])) recorded.stepsTaken(incremental ? n : 1);
        return new InferenceResult(ws, be, algorithm, depth, out[0], countsCorrect ? (int) out[1] : -1, full, terms, outputWeights(algorithm, ws.batch));
    }

    /**
     * The feedforward output's loss and its gradient dL/dy (the loss a step reports), and for
     * classification the correct argmaxes.
     */
    private void feedforwardLoss(Workspace ws) {
        lossGradient(ws, ws.vhat(model.depth()), ws.scalars, ws.dLdy);
        countCorrect(ws);
    }

    /** The feedforward output's correct classifications into scalars[1], where {@link #countsCorrect}. */
    private void countCorrect(Workspace ws) {
        if (loss == Loss.CROSS_ENTROPY) be.countCorrect(ws.vhat(model.depth()), ws.y, ws.scalars, 1);
        else if (countsCorrect) be.countArgmaxMatches(ws.vhat(model.depth()), ws.y, ws.scalars, 1);
    }

    /**
     * Whether the step's feedforward loss waits for its learning step, beside its blocks: PC's and STRICT's
     * relaxations never read dL/dy (nudging's target does, and iPC's steps report as they go), so at the head of
     * the step it would only lengthen the chain of ops a GPU runs one after another.
     */
    private boolean lossInLastRound(Algorithm algorithm) {
        return algorithm == Algorithm.STRICT || algorithm == Algorithm.PC && !nudging.active();
    }

    /**
     * What fixes a step's device work: the workspace (by identity: its tensors) and the settings; where the step
     * holds the optimizer's steps, the optimizer (its tensors and hyperparameters) and the tensor they read their
     * scalars from.
     */
    private record Replay(Workspace ws, Algorithm algorithm, float eta, int n, boolean full, Condense condense, BeliefOptimizer beliefs, Energy energy,
                          Nudging nudging, int globalBatch, boolean withEnergy, Optimizer weights, Tensor weightScalars) {}

    /**
     * A sample's loss gradient over dL/dy, where L is the loss as PyTorch reduces it: the batch for
     * cross-entropy; for mse, whose per-sample term is ||u - y||^2 / 2 against L's mean of squares,
     * the batch times the output's size over 2.
     */
    private float perSampleScale(int batch) {
        return loss == Loss.CROSS_ENTROPY ? batch : batch * (float) targetSize() / 2f;
    }

    /** Whether this algorithm, as set, relaxes each sample's own energy. */
    private boolean perSample(Algorithm algorithm) { return algorithm.standard() && energy == Energy.PER_SAMPLE; }

    /**
     * The weights of the workspace's output energy term (the loss at the predicted output, or for
     * nudging the summed ||u - h||^2 / 2) in {0: the energy relaxed, 1: a sample's mean energy}.
     */
    double[] outputWeights(Algorithm algorithm, int batch) {
        if (!perSample(algorithm)) return new double[]{1, 1};
        if (nudging.active()) return new double[]{1, 1.0 / batch};
        double scale = perSampleScale(batch); // the sweep's loss is this batch's own mean, also in a shard
        return new double[]{scale, scale / batch};
    }

    // ------------------------------------------------------------------ the algorithms

    private void forward(Workspace ws) { forward(ws, false, false); }

    /**
     * The feedforward pass; with {@code outputError}, also eps_L = u - y into error[L] in the last block's op, where
     * that block is one linear op ({@link Block#forwardWithOutputError}): PC's first output error, a kernel fewer one
     * after another on a GPU. With {@code gram}, the Gram form's W W^T of each block above 0 beside it ({@link #relaxFolded}).
     * Returns whether it wrote eps_L.
     */
    private boolean forward(Workspace ws, boolean outputError, boolean gram) {
        if (!gram) return forward(ws, outputError);
        boolean[] wrote = new boolean[1];
        int depth = model.depth();
        double macs = 0;
        for (int b = 0; b < depth; b++) macs += blockMacs[b] * ws.batch;
        double gramMacs = 0; // W W^T: out * out * in
        for (int b = 1; b < depth; b++) gramMacs += blockMacs[b] * ws.gram[b].shape().dim(0);
        be.branches(new double[]{macs, gramMacs}, () -> wrote[0] = forward(ws, outputError), () -> {
            for (int b = 1; b < depth; b++) model.blocks().get(b).gram(be, ws.gram[b]);
        });
        return wrote[0];
    }

    /**
     * Backprop's feedforward pass, then the loss and dL/dy. Where the backend prefers short chains and the output block
     * is one linear op, the loss's op adds that block's bias after its GEMM ({@link Loss#computeFromProducts}): on a GPU
     * the output block is a GEMM and the loss's kernel, not a GEMM, a bias kernel and the loss's.
     */
    private void forwardAndLossGradient(Workspace ws) {
        List<Block> blocks = model.blocks();
        int last = blocks.size() - 1;
        if (!be.prefersShortChains() || !blocks.get(last).isOneLinearOp()) {
            forward(ws);
            lossGradient(ws, ws.vhat(last + 1), ws.scalars, ws.dLdy);
            return;
        }
        Tensor bias = forwardWithoutOutputBias(ws);
        loss.computeFromProducts(be, ws.vhat(last + 1), bias, ws.y, ws.scalars, ws.dLdy);
        scaleToGlobalBatch(ws, ws.dLdy);
    }

    /**
     * The feedforward pass with the output block (one linear op) left at its GEMM; returns that block's bias (null for
     * none), which the loss's op after it adds in its own pass.
     */
    private Tensor forwardWithoutOutputBias(Workspace ws) {
        List<Block> blocks = model.blocks();
        int last = blocks.size() - 1;
        for (int b = 0; b < last; b++) blocks.get(b).forward(be, ws.vhat(b), ws.ff[b]);
        return blocks.get(last).forwardWithoutBias(be, ws.vhat(last), ws.ff[last]);
    }

    private boolean forward(Workspace ws, boolean outputError) {
        List<Block> blocks = model.blocks();
        int last = blocks.size() - 1;
        if (outputError && loss == Loss.CROSS_ENTROPY && blocks.get(last).isOneLinearOp()) { // the bias in the loss's op (see errorFromFeedforward)
            Tensor bias = forwardWithoutOutputBias(ws);
            be.softmaxCrossEntropyFromProducts(ws.vhat(last + 1), null, bias, ws.y, ws.sweepLoss, ws.error[last + 1], true);
            return true;
        }
        for (int b = 0; b < last; b++) blocks.get(b).forward(be, ws.vhat(b), ws.ff[b]);
        if (outputError && loss == Loss.MSE && blocks.get(last).forwardWithOutputError(be, ws.vhat(last), ws.ff[last], ws.y, ws.error[last + 1])) return true;
        blocks.get(last).forward(be, ws.vhat(last), ws.ff[last]);
        return false;
    }

    /**
     * Whether the feedforward pass may form PC's first output error (not nudged, on each sample's own energy): u - y by a
     * subtraction for the squared error; for cross-entropy, where the backend prefers short chains, softmax - onehot in
     * the loss's op, which adds the output block's bias after its GEMM (on the CPU the GEMM starts from the bias, other bits).
     */
    private boolean errorFromFeedforward(Algorithm algorithm) {
        return algorithm == Algorithm.PC && !nudging.active() && perSample(algorithm) && (loss == Loss.MSE || be.prefersShortChains());
    }

    /** BACKPROP and EXACT: eps_l = dL/dvhat_l by reverse mode; EXACT also forms v_l = vhat_l - eps_l. */
    private void backprop(Workspace ws, boolean beliefs) {
        int depth = model.depth();
        for (int b = depth - 1; b >= 0; b--)
            model.blocks().get(b).backward(be, ws.ff[b], b == depth - 1 ? ws.dLdy : ws.error[b + 1], b > 0 ? ws.error[b] : null, 1f);
        if (beliefs) {
            for (int l = 1; l < depth; l++) be.add(1f, ws.vhat(l), -1f, ws.error[l], ws.belief[l]);
            be.add(1f, ws.vhat(depth), -1f, ws.dLdy, ws.belief[depth]);
        }
    }

    /**
     * FIXED_PRED with the errors as state. Sweep s updates every layer from the start-of-sweep errors:
     * eps_l <- (1 - eta) eps_l + eta J_{l+1}(vhat_l)^T eps_{l+1}, with eps_L = dL/dy: every feedback
     * first, from the start-of-sweep errors, then every update. The last sweep
     * also writes the parameter updates J_theta^T eps (at vhat, with the returned errors).
     */
    private void fixedPrediction(Workspace ws, float eta, int n, boolean full) {
        int depth = model.depth();
        for (int l = 0; l < depth; l++) be.fill(ws.error[l], 0f);
        for (int s = 1; s <= n; s++) {
            boolean last = s == n;
            // Before sweep s only the top s-1 hidden errors can be nonzero: skip exact zeros (not on the last sweep, which writes updates).
            int lowest = last ? 0 : Math.max(0, depth - s);
            // Two rounds of a branch per block: every feedback from the start-of-sweep errors, then every error's update.
            eachBlock(ws, lowest, depth, l -> blockMacs[l], l -> model.blocks().get(l).backward(be, ws.ff[l], l + 1 == depth ? ws.dLdy : ws.error[l + 1],
                    l > 0 || full ? ws.feedback[l] : null, last ? 1f : 0f));
            eachBlock(ws, Math.max(lowest, full ? 0 : 1), depth, layerSize, l -> {
                if (!last) be.axpby(eta, ws.feedback[l], 1f - eta, ws.error[l]);
                else if (full) {
                    // v_l = vhat_l - eps_l after this sweep's update; eps_l itself stays at the start-of-sweep value.
                    be.add(1f - eta, ws.error[l], eta, ws.feedback[l], ws.belief[l]);
                    be.add(1f, ws.vhat(l), -1f, ws.belief[l], ws.belief[l]);
                }
            });
        }
        if (full) be.copy(ws.vhat(depth), ws.belief[depth]);
    }

    /**
     * STRICT: beliefs start at vhat with v_0 = x fixed. Each sweep: predictions f_{l}(v_{l-1}) from the
     * start-of-sweep beliefs; eps_L = dL/dy at the predicted output; top-down, eps_l = f_l(v_{l-1}) - v_l
     * and v_l += eta (eps_l - J_{l+1}(v_l)^T eps_{l+1}): gradient descent on the energy
     * L(f_L(v_{L-1})) + sum ||eps_l||^2 / 2. Parameter updates J_theta(f_l at v_{l-1})^T eps_l at the final beliefs.
     * The state is the displacement d_l = v_l - vhat_l, and each hidden error is formed from changes alone:
     * eps_1 = -d_1, and eps_l = (f_l(v_{l-1}) - vhat_l) - d_l with the prediction's change taken op by op
     * from d_{l-1} ({@link Block#forwardIncrement}). Deep in a network these errors are a millionth of the
     * activations and less; formed from float32 predictions and beliefs they would be mostly rounding.
     */
    private void strict(Workspace ws, float eta, int n, boolean full) {
        int depth = model.depth();
        Condensed layerOne = condensedEntry() == null ? null : ws.condensed;
        int first = layerOne == null ? 1 : 2; // the lowest layer relaxed plainly
        startAtVhat(ws, first);
        if (layerOne != null) layerOne.start(be);
        // Where the output block is evaluated onto its feedforward output (outputOnto), each sweep's updates copy that
        // output, zff, into place for the next sweep beside them, off the chain; the first copy goes before the sweeps.
        boolean onto = outputOnto(first);
        Block output = model.blocks().get(depth - 1);
        Runnable zff = () -> output.startDisplaced(be, ws.ff[depth - 1], ws.sweep[depth - 1]);
        if (onto) zff.run();
        // A sweep's rounds, built once for all the sweeps of the step.
        // On a GPU the condensed layer 1's update is taken off the chain of kernels the next sweep waits for: eps_2's
        // pull-back through block 1 in block 1's own prediction branch, right after it forms eps_2, and D's update beside
        // the other layers' updates (it writes only layer 1's state). A CPU keeps it after them, its ops split across the threads.
        boolean layerOneBeside = layerOne != null && be.prefersShortChains() && be.runsBranchesAtOnce();
        FeedBackRound feedBack = new FeedBackRound(ws, first, layerOne, b -> false, onto, layerOneBeside);
        java.util.function.IntConsumer update = l -> strictUpdate(ws, l, eta, false), lastUpdate = l -> strictUpdate(ws, l, eta, true);
        Runnable[] besideSweep = onto ? new Runnable[]{zff} : NONE, besideLast = NONE;
        if (layerOneBeside) {
            Runnable one = () -> layerOne.update(be, ws, eta, false);
            besideSweep = onto ? new Runnable[]{zff, one} : new Runnable[]{one};
            besideLast = new Runnable[]{() -> layerOne.update(be, ws, eta, true)};
        }
        for (int s = 1; s <= n; s++) {
            boolean last = s == n;
            Runnable[] beside = last ? besideLast : besideSweep;
            if (be.runsBranchesAtOnce()) {
                feedBack.run();
                // Then each layer's update, a branch each, from its start-of-sweep error and its feedback.
                eachBlock(ws, first, depth, layerSize, last ? lastUpdate : update, beside);
            } else {
                predict(ws, first, layerOne, onto);
                for (int l = depth - 1; l >= first; l--) {
                    feedBack(ws, l, 0f);
                    strictUpdate(ws, l, eta, last);
                }
                for (Runnable r : beside) r.run();
            }
            if (layerOne != null && !layerOneBeside) layerOne.updateLayerOne(be, ws, eta, last); // reads eps_2
        }
        updatesAtFinalBeliefs(ws, full, true, 1f);
    }

    /**
     * Whether STRICT's sweeps evaluate the output block at v_{L-1} = vhat_{L-1} + d as zff + d W^T, one GEMM onto its
     * feedforward output zff ({@link Block#forwardDisplacedOnto}), where evaluating it at v_{L-1} takes a GEMM and a bias
     * pass one after the other: where the backend prefers short chains (a GPU, whose sweep is as long as its output
     * block's branch) and the output block, relaxed plainly, is one linear op. The CPU keeps the plain evaluation.
     */
    private boolean outputOnto(int first) {
        int depth = model.depth();
        return be.prefersShortChains() && depth - 1 >= first && model.blocks().get(depth - 1).isOneLinearOp();
    }

    /**
     * Layer l's STRICT update from its error this sweep (eps_1 = -d_1; above, {@link #predictHidden}'s) and its feedback:
     * d_l += eta (eps_l - feedback), v_l = vhat_l + d_l.
     */
    private void strictUpdate(Workspace ws, int l, float eta, boolean last) {
        // Layer 1's prediction is vhat_1 itself, its error -d_1; that is only read after the sweeps (block 0's update, the returned errors).
        if (l == 1) be.pcStrictUpdate(ws.vhat(1), ws.vhat(1), ws.feedback[1], ws.displacement[1], ws.belief[1], last ? ws.error[1] : null, eta);
        else be.pcStrictStep(ws.error[l], ws.vhat(l), ws.feedback[l], ws.displacement[l], ws.belief[l], eta);
    }

    /**
     * A sweep's predictions f_b(v_{b-1}) from the start-of-sweep beliefs (block 1's through the condensed layer one, where
     * there is one), with the hidden layers' errors ({@link #predictHidden}), and eps_L, the loss gradient at the predicted output.
     */
    private void predict(Workspace ws, int first, Condensed layerOne, boolean outputOnto) {
        int depth = model.depth();
        if (layerOne != null) condensedPrediction(ws, layerOne);
        for (int b = first; b < depth; b++) {
            if (b < depth - 1) predictHidden(ws, b);
            else predictOutput(ws, b, outputOnto);
        }
        lossGradient(ws, depth == 1 ? ws.vhat(1) : ws.sweep[depth - 1].output(), ws.sweepLoss, ws.error[depth]);
    }

    /**
     * Block b evaluated at v_b into sweep[b], and the error of the hidden layer b + 1 it predicts, eps = (f_b(v_b) -
     * vhat_{b+1}) - d_{b+1}, the prediction's change from d_b less d_{b+1} ({@link Block#forwardIncrement}), with eps f'
     * for {@link #feedBack} where the block forms it.
     */
    private void predictHidden(Workspace ws, int b) {
        model.blocks().get(b).forwardIncrement(be, ws.ff[b], ws.belief[b], ws.displacement[b], ws.sweep[b], ws.displacement[b + 1], ws.error[b + 1], true);
    }

    /** Block 1 through the condensed layer one, and where layer 2 is hidden its error, as {@link #predictHidden}. */
    private void condensedPrediction(Workspace ws, Condensed layerOne) {
        layerOne.forward(be, ws, model.depth() > 2 ? ws.displacement[2] : null, ws.error[2]);
    }

    /** Beliefs v_l = vhat_l (displacement 0) for the layers from {@code first} up, before STRICT's or PC's first sweep. */
    private void startAtVhat(Workspace ws, int first) {
        eachBlock(ws, first, model.depth(), l -> 2 * layerSizes[l], l -> {
            be.copy(ws.vhat(l), ws.belief[l]);
            be.fill(ws.displacement[l], 0f);
        });
    }

    /**
     * The first round of a STRICT or Z-IL sweep, a branch per block b from the start-of-sweep beliefs: its
     * prediction f_b(v_{b-1}) (block 1's through the condensed layer one, where there is one), and for
     * b >= {@code first} the error of layer b + 1 ({@link #predictHidden}; the loss gradient at the predicted output)
     * and the feedback J_b^T eps_{b+1} to layer b, with b's parameter gradients where {@code parameters} says. The output
     * block is evaluated onto its zff where {@code outputOnto} ({@link #outputOnto}). One object is the round's bodies and
     * their work, built once and run at every sweep.
     */
    private final class FeedBackRound implements java.util.function.IntConsumer, java.util.function.IntToDoubleFunction {
        private final Workspace ws;
        private final int first;
        private final Condensed layerOne;
        private final java.util.function.IntPredicate parameters;
        private final boolean outputOnto;
        /** Whether block 1's branch also pulls eps_2 back for the condensed layer 1 ({@link Condensed#pullBack}). */
        private final boolean layerOnePullBack;

        FeedBackRound(Workspace ws, int first, Condensed layerOne, java.util.function.IntPredicate parameters, boolean outputOnto, boolean layerOnePullBack) {
            this.ws = ws;
            this.first = first;
            this.layerOne = layerOne;
            this.parameters = parameters;
            this.outputOnto = outputOnto;
            this.layerOnePullBack = layerOnePullBack;
        }

        void run() {
            if (model.depth() == 1) lossGradient(ws, ws.vhat(1), ws.sweepLoss, ws.error[1]);
            else eachBlock(ws, layerOne != null ? 1 : first, model.depth(), this, this);
        }

        /** Block b's work: its GEMM rounds (prediction, feedback and, where asked, parameter gradients) times its multiply-adds. */
        @Override public double applyAsDouble(int b) { return (b < first ? 1 : parameters.test(b) ? 3 : 2) * blockMacs[b]; }

        @Override public void accept(int b) {
            int depth = model.depth();
            if (b < first) {
                condensedPrediction(ws, layerOne);
                if (b == depth - 1) lossGradient(ws, ws.sweep[b].output(), ws.sweepLoss, ws.error[depth]);
                if (layerOnePullBack) layerOne.pullBack(be, ws);
                return;
            }
            if (b < depth - 1) {
                predictHidden(ws, b);
            } else {
                predictOutput(ws, b, outputOnto);
                lossGradient(ws, ws.sweep[b].output(), ws.sweepLoss, ws.error[depth]);
            }
            feedBack(ws, b, parameters.test(b) ? 1f : 0f);
        }
    }

    /** The output block b at v_b into sweep[b]: onto the zff already there ({@link #outputOnto}), or plainly. */
    private void predictOutput(Workspace ws, int b, boolean onto) {
        Block block = model.blocks().get(b);
        if (onto) block.forwardDisplacedOnto(be, ws.displacement[b], ws.belief[b], ws.sweep[b]);
        else block.forward(be, ws.belief[b], ws.sweep[b]);
    }

    /**
     * A sweep's feedback to layer b, J_b^T eps_{b+1}, at the start-of-sweep beliefs (and b's parameter gradients with
     * {@code parameterScale}): from eps_{b+1} f' where {@link #predictHidden} formed it beside the error.
     */
    private void feedBack(Workspace ws, int b, float parameterScale) {
        Block block = model.blocks().get(b);
        if (b < model.depth() - 1 && block.incrementFormsDelta()) block.backwardBelowOutput(be, ws.sweep[b], ws.feedback[b], parameterScale);
        else block.backward(be, ws.sweep[b], ws.error[b + 1], ws.feedback[b], parameterScale);
    }

    /**
     * PC's output error at the predicted {@code output}: with a nudging {@code target} h,
     * eps_L = output - h and the term ||eps_L||^2 / 2; otherwise the loss's gradient, for the
     * per-sample energy a sample's own: for squared error exactly output - y, the one subtraction
     * PCX's autodiff does, for cross-entropy softmax - onehot in the loss's own pass. The output's energy
     * term (into sweepLoss) comes with the gradient where one op forms both; where the error is a
     * subtraction ({@link #outputLossApart}), only {@code withLoss}: at the state whose energy a step reports.
     */
    private void outputError(Workspace ws, Tensor output, Tensor target, boolean perSample, boolean withLoss) {
        if (outputLossApart(target, perSample)) {
            be.add(1f, output, -1f, target != null ? target : ws.y, ws.error[model.depth()]);
            if (withLoss) outputLoss(ws, target);
            return;
        }
        Tensor eps = ws.error[model.depth()];
        if (perSample && loss == Loss.CROSS_ENTROPY) { // each sample's own gradient, softmax - onehot, in the loss's pass
            be.softmaxCrossEntropy(output, ws.y, ws.sweepLoss, eps, true);
            return;
        }
        lossGradient(ws, output, ws.sweepLoss, eps);
        float outputScale = perSample ? perSampleScale(lossBatch(ws)) : 1f;
        if (outputScale != 1f) be.axpby(0f, eps, outputScale, eps);
    }

    /** Whether {@link #outputError} forms the error by a subtraction and leaves the energy term to {@link #outputLoss}: nudged, or the per-sample squared error. */
    private boolean outputLossApart(Tensor target, boolean perSample) { return target != null || perSample && loss == Loss.MSE; }

    /** The output's energy term from the error {@link #outputError} formed by a subtraction: ||u - h||^2 / 2 nudged, else the squared error's mean. */
    private void outputLoss(Workspace ws, Tensor target) { be.sumSquares(ws.error[model.depth()], outputLossScale(ws, target), ws.sweepLoss, 0); }

    /** What {@link #outputLoss} scales the error's sum of squares by. */
    private float outputLossScale(Workspace ws, Tensor target) { return target != null ? 0.5f : 1f / ws.error[model.depth()].size(); }

    /** The batch the loss is a mean over: the global batch of a data-parallel step, or the workspace's own. */
    private int lossBatch(Workspace ws) { return globalBatch > 0 ? globalBatch : ws.batch; }

    /** The loss (this batch's mean) and its gradient, which for a shard of a global batch is scaled to be a mean over the global batch. */
    private void lossGradient(Workspace ws, Tensor output, Tensor lossOut, Tensor grad) {
        loss.compute(be, output, ws.y, lossOut, grad);
        scaleToGlobalBatch(ws, grad);
    }

    /** A gradient of this workspace's batch mean, made one of the global batch's mean (a data-parallel step's shard). */
    private void scaleToGlobalBatch(Workspace ws, Tensor grad) {
        if (lossBatch(ws) != ws.batch) be.axpby(0f, grad, (float) ws.batch / lossBatch(ws), grad);
    }

    /**
     * STRICT's and PC's parameter updates at the final beliefs: block 0 sees x (its feedforward tape); the others are
     * re-evaluated at v. With {@code withLoss}, the step's feedforward loss beside them.
     */
    private void updatesAtFinalBeliefs(Workspace ws, boolean full, boolean withLoss, float parameterScale) {
        int depth = model.depth();
        List<Block> blocks = model.blocks();
        eachBlock(ws, 0, depth, b -> (b == 0 ? 1 : 2) * blockMacs[b], b -> {
            if (b > 0) blocks.get(b).forward(be, ws.belief[b], ws.sweep[b]);
            blocks.get(b).backward(be, b == 0 ? ws.ff[0] : ws.sweep[b], ws.error[b + 1], null, parameterScale);
        }, withLoss ? new Runnable[]{() -> feedforwardLoss(ws)} : NONE);
        if (full) be.copy(ws.vhat(depth), ws.belief[depth]);
    }

    /**
     * Runs {@code body} for each block in [from, to): in block order, or where the backend runs branches
     * at once as independent branches ({@link Backend#branches}), those with the most {@code work} first
     * (per sample, times the batch: multiply-adds for a round of GEMMs, a layer's size for one of belief
     * updates), so that the longest start first. Each body may read any block's inputs but write only
     * its own block's tensors.
     */
    private void eachBlock(Workspace ws, int from, int to, java.util.function.IntToDoubleFunction work, java.util.function.IntConsumer body, Runnable[] beside) {
        each(from, to, work, ws.batch, body, beside);
    }

    /** {@link #eachBlock} with nothing beside the bodies (not varargs: an empty array per call is garbage, many a step). */
    private void eachBlock(Workspace ws, int from, int to, java.util.function.IntToDoubleFunction work, java.util.function.IntConsumer body) {
        each(from, to, work, ws.batch, body, NONE);
    }

    /**
     * As {@link #eachBlock}, for any independent bodies i in [from, to) whose whole work is {@code scale} times {@code work};
     * the {@code beside} branches (small work of no weight, independent of the bodies and of each other) run after them in
     * order, or as branches of their own.
     */
    private void each(int from, int to, java.util.function.IntToDoubleFunction work, double scale, java.util.function.IntConsumer body, Runnable[] beside) {
        if (to - from + beside.length <= 1 || !be.runsBranchesAtOnce()) { // nothing to run side by side: in order, with no branches to build
            for (int b = from; b < to; b++) body.accept(b);
            for (Runnable r : beside) r.run();
            return;
        }
        branchSets.run(be, from, to, work, scale, body, beside);
    }

    /**
     * Layer l + 1's error from block l's prediction of it on tape {@code t} (the output error above the last block,
     * a hidden error below), then block l's backward pass from it: J_l^T eps_{l+1} into {@code dx} where not null,
     * the parameter gradients where asked.
     */
    private void errorAndBackward(Workspace ws, int l, Block.Tape t, Tensor target, boolean perSample, boolean withLoss, Tensor dx, float parameterScale) {
        if (l + 1 < model.depth()) {
            hiddenErrorAndBackward(ws, l, t, dx, parameterScale);
            return;
        }
        outputError(ws, t.output(), target, perSample, withLoss);
        model.blocks().get(l).backward(be, t, ws.error[l + 1], dx, parameterScale);
    }

    /**
     * Block l evaluated at its belief into sweep[l], then {@link #errorAndBackward}: the evaluation and the error
     * in one op where the block allows (a hidden error: {@link #forwardHiddenErrorAndBackward}; an output error
     * by a subtraction: {@link Block#forwardWithOutputError}).
     */
    private void forwardErrorAndBackward(Workspace ws, int l, Tensor target, boolean perSample, boolean withLoss, Tensor dx, float parameterScale) {
        if (l + 1 < model.depth()) {
            forwardHiddenErrorAndBackward(ws, l, dx, parameterScale);
            return;
        }
        Block block = model.blocks().get(l);
        // With the loss, in the same op: on a GPU in the kernel that forms the error.
        if (outputLossApart(target, perSample) && block.forwardWithOutputError(be, ws.belief[l], ws.sweep[l], target != null ? target : ws.y, ws.error[l + 1],
                withLoss ? ws.sweepLoss : null, 0, outputLossScale(ws, target))) {
            block.backward(be, ws.sweep[l], ws.error[l + 1], dx, parameterScale);
            return;
        }
        block.forward(be, ws.belief[l], ws.sweep[l]);
        errorAndBackward(ws, l, ws.sweep[l], target, perSample, withLoss, dx, parameterScale);
    }

    /**
     * Block l (below the last) evaluated at its belief into sweep[l], then {@link #hiddenErrorAndBackward}: the
     * evaluation and the error in one op where the block allows ({@link Block#forwardWithError}).
     */
    private void forwardHiddenErrorAndBackward(Workspace ws, int l, Tensor dx, float parameterScale) {
        Block block = model.blocks().get(l);
        if (block.forwardWithError(be, ws.belief[l], ws.sweep[l], ws.vhat(l + 1), ws.displacement[l + 1], ws.error[l + 1])) {
            block.backwardBelowOutput(be, ws.sweep[l], dx, parameterScale);
            return;
        }
        block.forward(be, ws.belief[l], ws.sweep[l]);
        hiddenErrorAndBackward(ws, l, ws.sweep[l], dx, parameterScale);
    }

    /**
     * {@link #errorAndBackward} below the last block. Where block l ends in an activation whose f' its forward kept,
     * the error and the backward's first step, eps * f', are one op (a kernel fewer one after another on a GPU).
     */
    private void hiddenErrorAndBackward(Workspace ws, int l, Block.Tape t, Tensor dx, float parameterScale) {
        Block block = model.blocks().get(l);
        Tensor derivative = block.outputDerivative(t);
        if (derivative == null) {
            hiddenError(ws, l + 1, t.output());
            block.backward(be, t, ws.error[l + 1], dx, parameterScale);
            return;
        }
        be.pcPredictionError(t.output(), ws.vhat(l + 1), ws.displacement[l + 1], ws.error[l + 1], derivative, block.outputDerivativeGradient(t));
        block.backwardBelowOutput(be, t, dx, parameterScale);
    }

    /**
     * PC and iPC: STRICT's sweep, every layer relaxed in its own space, the step on each belief taken
     * by the belief optimizer on the energy's gradient J_{l+1}(v_l)^T eps_{l+1} - eps_l. With plain
     * SGD the step is STRICT's displacement += eta (eps_l - feedback), through STRICT's own fused op; on
     * a GPU, SGD's step (with or without momentum) is folded into the feedback GEMMs where the blocks
     * allow ({@link #relaxFolded}). Centred nudging relaxes twice, with +beta and -beta,
     * and averages the two updates.
     */
    private void standard(Workspace ws, Algorithm algorithm, float eta, int n, boolean full, java.util.function.IntConsumer weightStep, boolean errorAtVhat) {
        float beta = nudging.kind() == Nudging.Kind.NEGATIVE ? -nudging.beta() : nudging.beta();
        if (nudging.kind() != Nudging.Kind.CENTRED) {
            relax(ws, algorithm == Algorithm.IPC, eta, n, full, beta, weightStep, lossInLastRound(algorithm), errorAtVhat);
            return;
        }
        List<io.predcode.core.nn.Parameter> ps = List.copyOf(model.parameters().values());
        relax(ws, false, eta, n, full, beta, null, false, false);
        for (int i = 0; i < ps.size(); i++) be.copy(ps.get(i).grad(), held[i]);
        relax(ws, false, eta, n, full, -beta, null, false, false);
        for (int i = 0; i < ps.size(); i++) be.add(0.5f, held[i], 0.5f, ps.get(i).grad(), ps.get(i).grad());
    }

    /**
     * One relaxation of PC ({@code incremental} false: the parameter updates at the end) or iPC (true:
     * at every step, from the state the step's belief update reads, each followed by
     * {@code weightStep}). {@code beta} != 0 nudges the output towards h = u - beta dl/du at the
     * feedforward output u, kept in belief[L] during the relaxation. {@code withFeedforwardLoss} computes the
     * step's feedforward loss beside the learning step's blocks. {@code errorAtVhat}: the feedforward pass already formed
     * the first step's output error.
     */
    private void relax(Workspace ws, boolean incremental, float eta, int n, boolean full, float beta, java.util.function.IntConsumer weightStep, boolean withFeedforwardLoss,
                       boolean errorAtVhat) {
        boolean perSample = energy == Energy.PER_SAMPLE;
        if (!beliefOptimizer.isAdam() && (perSample || !incremental) && folds(ws)) {
            if (incremental) ipcFolded(ws, eta, n, full, beta, weightStep);
            else relaxFolded(ws, eta, n, full, beta, withFeedforwardLoss, errorAtVhat, beliefOptimizer.momentum(), perSample);
            return;
        }
        int depth = model.depth();
        List<Block> blocks = model.blocks();
        Tensor target = nudgedTarget(ws, beta); // nudging relaxes each sample's own energy (run checks it)
        float updateScale = updateScale(ws, perSample, beta);
        float parameterScale = incremental ? updateScale : 0f; // the parameter gradients a step forms: iPC's, at every step
        // PC's start runs beside its first step's first round, which reads none of it: on a GPU, not one after another.
        Runnable[] start = relaxationStart(ws, incremental ? depth : depth - n, !incremental && !perSample);
        boolean startBeside = !incremental && be.runsBranchesAtOnce() && depth > 1;
        // Otherwise the start comes first, a branch per layer: iPC's first round reads the beliefs it copies.
        if (!startBeside) eachBlock(ws, 1, depth, layerSize, l -> start[l - 1].run());
        for (int s = 1; s <= n; s++) {
            // The error wave: before step s only layers L-s+1 and up can have moved (the first step moves v_{L-1} alone,
            // each step one layer more), so the blocks below still give their feedforward values and the layers
            // below L-s get a zero gradient: both are skipped as exact zeros. Not for iPC, whose weights move everywhere.
            int step = s, moved = incremental ? 1 : Math.max(1, depth - s + 1), active = incremental ? 1 : Math.max(1, depth - s);
            // The output's loss is reported from the final state: PC's learning step computes it; iPC has none, so its last step does.
            boolean withLoss = incremental && s == n;
            if (be.runsBranchesAtOnce() && depth > 1) {
                // Two rounds of independent branches, one per block, which the backend runs at once. First, block l
                // (l >= active) at the beliefs: its prediction of layer l + 1 (re-evaluated where its input moved), that
                // layer's error and the feedback J_l^T eps_{l+1} to layer l. iPC's weights change every step, so layer
                // 1's prediction too is recomputed, into sweep[0].
                eachBlock(ws, incremental ? 0 : active, depth, l -> (l == 0 ? 1 : (l >= moved ? 2 : 1) + (incremental ? 1 : 0)) * blockMacs[l], l -> {
                    if (l == 0) { blocks.get(0).forward(be, ws.x, ws.sweep[0]); return; }
                    if (l >= moved) forwardErrorAndBackward(ws, l, target, perSample, withLoss, ws.feedback[l], parameterScale);
                    else if (step == 1 && errorAtVhat && l == depth - 1) feedBack(ws, l, moved, parameterScale);
                    else errorAndBackward(ws, l, ws.ff[l], target, perSample, withLoss, ws.feedback[l], parameterScale);
                }, s == 1 && startBeside ? start : NONE);
                // Then each layer's belief update, from its start-of-step error (which the update writes again, the same) and its feedback.
                eachBlock(ws, active, depth, layerSize, l -> beliefUpdate(ws, l, moved, incremental, eta, step));
            } else {
                // One pass, fewer ops: the predictions, then top-down each layer's feedback and update, the update writing the
                // start-of-step error the block below reads next.
                if (incremental) blocks.get(0).forward(be, ws.x, ws.sweep[0]);
                for (int b = moved; b < depth; b++) blocks.get(b).forward(be, ws.belief[b], ws.sweep[b]);
                if (s > 1 || !errorAtVhat)
                    outputError(ws, depth - 1 >= moved ? ws.sweep[depth - 1].output() : depth == 1 && incremental ? ws.sweep[0].output() : ws.vhat(depth), target, perSample, withLoss);
                for (int l = depth - 1; l >= active; l--) {
                    feedBack(ws, l, moved, parameterScale);
                    beliefUpdate(ws, l, moved, incremental, eta, step);
                }
            }
            if (incremental) {
                blocks.get(0).backward(be, ws.sweep[0], ws.error[1], null, updateScale);
                if (weightStep != null) weightStep.accept(s);
            }
        }
        if (incremental) {
            if (full) be.copy(ws.vhat(depth), ws.belief[depth]);
        } else if (perSample) {
            // PCX's learning step: the energy's parameter gradient at the relaxed state, errors and Jacobians both at the final beliefs.
            // The output block's branch forms the output's energy term too (the step's loss).
            eachBlock(ws, 0, depth, b -> (b == 0 ? 1 : 2) * blockMacs[b], b -> {
                if (b > 0) forwardErrorAndBackward(ws, b, target, perSample, b == depth - 1, null, updateScale);
                else errorAndBackward(ws, b, ws.ff[0], target, perSample, depth == 1, null, updateScale);
            }, withFeedforwardLoss ? new Runnable[]{() -> feedforwardLoss(ws)} : NONE);
            if (full) be.copy(ws.vhat(depth), ws.belief[depth]);
        } else {
            updatesAtFinalBeliefs(ws, full, withFeedforwardLoss, updateScale); // Torch2PC's: the errors from the start of the last sweep, as STRICT
        }
    }

    /**
     * Whether a relaxation by SGD steps on the beliefs folds each step into the feedback GEMMs ({@link #relaxFolded},
     * {@link #ipcFolded}): on a backend that prefers short chains of ops to few rounds of branches (a GPU), with above
     * block 0 blocks whose feedback is one linear op's GEMM ({@link Block#folds}), the output block one linear op (whose
     * error the output error is, with no activation's f' to pull it back through). PC and iPC fold with SGD (with or
     * without momentum) on the beliefs, iPC on each sample's own energy only; STRICT does not fold (it forms its errors
     * from changes: {@link #strict}). On 2 CPU threads the folded step, with a round of GEMM branches more a step, was
     * 3-23% slower (bench/results/folded-belief-updates-2026-12-01.md).
     */
    private boolean folds(Workspace ws) {
        if (!be.prefersShortChains() || model.depth() < 2 || !model.blocks().get(model.depth() - 1).isOneLinearOp()) return false;
        for (int b = 1; b < model.depth(); b++)
            if (!model.blocks().get(b).folds(ws.sweep[b]) || !model.blocks().get(b).folds(ws.ff[b])) return false;
        return true;
    }

    /**
     * PC's relaxation with SGD on the beliefs, each step v_l += eta (eps_l - J_{l+1}^T eps_{l+1}) (with momentum, plus
     * momentum times the last step) folded into the ops that are there anyway: the op that forms eps_l also writes the
     * step's own terms ({@link BeliefStep}), and the feedback GEMM of block l adds -eta J^T eps_{l+1} onto them (beta 1).
     * A step is then two rounds, a branch per block each: the predictions with their errors, then the feedback GEMMs; on
     * a GPU a GEMM, a kernel and a GEMM one after another, where a pass for the update made it four.
     * <p>
     * The state is the displacement d_l = v_l - vhat_l, as STRICT's (the errors do not cancel in float32), and a block
     * predicts from it without forming v: its pre-activation is zff + d W^T, zff its feedforward one (the offset form of
     * {@link Backend#linear}). The displacements live in buffers that the steps write in turn: displacement[l],
     * feedback[l] (which this relaxation does not otherwise use) and with momentum beliefMoment[l] (the displacement two
     * steps back), ordered so that the last step writes displacement[l]. The error wave skips what {@link #relax} skips.
     * On each sample's own energy ({@code perSample}) the learning step is relax's per-sample one, each block's branch
     * also forming v = vhat + d for its parameter gradients, beside its prediction. On Torch2PC's energy (PC on it) the
     * output error is the batch loss's gradient, and the learning step is Torch2PC's: the errors as the last step found
     * them (0 where the wave never came), each block's Jacobian at the final beliefs. Where it can, on each sample's own
     * energy, the relaxation takes the Gram form ({@link #gramFeedback}): a step is then a round of GEMMs and a round of
     * error ops.
     */
    private void relaxFolded(Workspace ws, float eta, int n, boolean full, float beta, boolean withFeedforwardLoss, boolean errorAtVhat, float momentum,
                             boolean perSample) {
        int depth = model.depth();
        List<Block> blocks = model.blocks();
        Tensor target = nudgedTarget(ws, beta);
        float updateScale = updateScale(ws, perSample, beta);
        Tensor[][] buffers = displacementBuffers(ws, momentum);
        int k = buffers.length;
        // Layer l's first step is step L - l, when the wave reaches it: its error and last step are then 0 (it and its
        // prediction are both at their feedforward values), so the feedback GEMM writes the step alone (beta 0). Every
        // other buffer starts at 0 (d before any step; all of them where the wave never comes), in a start that writes
        // nothing the first feedback round reads or writes and so runs beside it, a fill per branch.
        List<Runnable> fills = new java.util.ArrayList<>();
        for (int l = 1; l < depth; l++)
            for (int i = 0; i < k; i++)
                if (depth - l > n || i != (n - (depth - l)) % k) {
                    Tensor t = buffers[i][l];
                    fills.add(() -> be.fill(t, 0f));
                }
        if (!perSample) // Torch2PC's updates read every error; the last step writes those from layer L - n + 1 up
            for (int l = 1; l <= depth - n; l++) {
                Tensor t = ws.error[l];
                fills.add(() -> be.fill(t, 0f));
            }
        Runnable[] start = fills.toArray(Runnable[]::new);
        boolean startBeside = be.runsBranchesAtOnce();
        if (!startBeside) for (Runnable r : start) r.run();
        // Where the output's error is not formed in the op that evaluates the output (cross-entropy; Torch2PC's energy), each
        // feedback round also copies zff into the output block's output, beside the GEMMs, and the evaluation after it is a
        // GEMM onto it (displacedOutputError): a GEMM one after another where the offset took a GEMM and a pass.
        Block outputBlock = blocks.get(depth - 1);
        boolean gram = gramForm(ws, Algorithm.PC);
        Runnable outputStart = outputLossApart(target, perSample) || gram ? null : () -> outputBlock.startDisplaced(be, ws.ff[depth - 1], ws.sweep[depth - 1]);
        Tensor[] d = new Tensor[depth];
        BeliefStep[] steps = new BeliefStep[depth];
        for (int s = 1; s <= n; s++) {
            // In the Gram form each moving block's next pre-activation is formed beside the step's feedback GEMMs (read by the
            // next step, or after the last by the learning step: the form is per-sample), from a copy of the step's terms.
            stepBuffers(buffers, n, s, eta, momentum, d, steps, gram ? ws.stepCopy : null);
            // The wave (see relax): blocks from `moved` up read moved beliefs; layers from `active` up move.
            int moved = Math.max(1, depth - s + 1), active = Math.max(1, depth - s);
            boolean outputErrorKnown = s == 1 && errorAtVhat;
            int step = s;
            // First, for each layer l from `moved` up, its error and its step's own terms, a branch per predicting block b = l - 1.
            eachBlock(ws, moved - 1, depth, b -> b >= moved && !gram ? blockMacs[b] : b + 1 < depth ? layerSizes[b + 1] : 1, b -> {
                Block block = blocks.get(b);
                if (b == depth - 1) {
                    if (b >= moved && gram) outputErrorFromProducts(ws, gramAddend(ws, step, b), target, false);
                    else if (b >= moved) displacedOutputError(ws, b, d[b], target, perSample, false);
                    else if (!outputErrorKnown) outputError(ws, ws.ff[b].output(), target, perSample, false);
                } else if (b >= moved && gram) {
                    block.errorFromProducts(be, ws.belief[b], ws.ff[b], ws.sweep[b], gramAddend(ws, step, b), ws.vhat(b + 1), d[b + 1], ws.error[b + 1], steps[b + 1]);
                } else if (b >= moved) {
                    block.forwardDisplacedWithError(be, d[b], ws.belief[b], ws.ff[b], ws.sweep[b], ws.vhat(b + 1), d[b + 1], ws.error[b + 1], steps[b + 1]);
                } else { // block b's input has not moved: its prediction is vhat_{b+1}, with f' from the feedforward pass (none needed below block 1)
                    Tensor derivative = b == 0 ? null : block.outputDerivative(ws.ff[b]);
                    be.pcPredictionError(ws.vhat(b + 1), ws.vhat(b + 1), d[b + 1], ws.error[b + 1], derivative,
                            derivative == null ? null : block.outputDerivativeGradient(ws.ff[b]), steps[b + 1]);
                }
            });
            // Then each moving layer's feedback GEMM, onto its step's own terms (the step itself where the layer moves first).
            Runnable[] beside = s == 1 && startBeside ? start : NONE;
            if (outputStart != null) {
                beside = java.util.Arrays.copyOf(beside, beside.length + 1);
                beside[beside.length - 1] = outputStart;
            }
            if (gram) gramFeedback(ws, step, moved, active, eta, steps, beside);
            else eachBlock(ws, active, depth, b -> blockMacs[b], b -> blocks.get(b).feedbackOnto(be, b >= moved ? ws.sweep[b] : ws.ff[b], ws.error[b + 1],
                    steps[b].next(), -eta, step > depth - b), beside);
        }
        if (!perSample) {
            torch2pcUpdates(ws, full, withFeedforwardLoss, updateScale);
            return;
        }
        // The learning step at the final displacements (in displacement[l]), as relax's per-sample one: a branch per block
        // b, which forms v_b = vhat_b + d_b for b's parameter gradients beside b's prediction of layer b + 1 and its error.
        eachBlock(ws, 0, depth, b -> (b == 0 ? 1 : 2) * blockMacs[b], b -> {
            if (b == 0) { // eps_1 = -d_1 (block 0's input never moves) and block 0's gradients, as relax's learning step
                hiddenErrorAndBackward(ws, 0, ws.ff[0], null, updateScale);
                return;
            }
            Block block = blocks.get(b);
            Block.Tape t = ws.sweep[b];
            boolean fromProducts = gram && b >= Math.max(1, depth - n); // the blocks the last step moved, whose products it formed
            Runnable error = () -> {
                if (b == depth - 1 && fromProducts) outputErrorFromProducts(ws, gramAddend(ws, n + 1, b), target, true);
                else if (b == depth - 1) displacedOutputError(ws, b, ws.displacement[b], target, true, true);
                else if (fromProducts)
                    block.errorFromProducts(be, ws.belief[b], ws.ff[b], t, gramAddend(ws, n + 1, b), ws.vhat(b + 1), ws.displacement[b + 1], ws.error[b + 1], null);
                else block.forwardDisplacedWithError(be, ws.displacement[b], ws.belief[b], ws.ff[b], t, ws.vhat(b + 1), ws.displacement[b + 1], ws.error[b + 1], null);
            };
            be.branches(new double[]{blockMacs[b] * ws.batch, layerSizes[b] * ws.batch}, error, () -> be.add(1f, ws.vhat(b), 1f, ws.displacement[b], ws.belief[b]));
            if (b < depth - 1 && block.outputDerivative(t) != null) block.backwardBelowOutput(be, t, null, updateScale);
            else block.backward(be, t, ws.error[b + 1], null, updateScale);
        }, withFeedforwardLoss ? new Runnable[]{() -> feedforwardLoss(ws)} : NONE);
        if (full) be.copy(ws.vhat(depth), ws.belief[depth]);
    }

    /**
     * Whether PC's folded relaxation takes the Gram form ({@link #gramFeedback}): where the workspace has its tensors (the
     * backend prefers short chains and every block above 0 takes it), the relaxation folds, and it relaxes each sample's
     * own energy, whose output error (a subtraction, or cross-entropy's per-sample gradient) one op forms from products.
     * The step forms W W^T beside its feedforward pass where this holds.
     */
    private boolean gramForm(Workspace ws, Algorithm algorithm) {
        return ws.gram != null && algorithm == Algorithm.PC && !beliefOptimizer.isAdam() && folds(ws) && perSample(algorithm);
    }

    /**
     * The feedback round of a folded step in the Gram form. Block b's next pre-activation is zff + d W^T with
     * d = terms - eta dy' W the displacement its feedback GEMM completes (dy' the error pulled back through its
     * activation), that is zff + terms W^T - eta dy' G with G = W W^T, fixed for the relaxation. Both products read only
     * what the error round wrote (the terms as their copy, since the feedback GEMM adds onto the terms themselves), so
     * they run beside the feedback GEMM, and the next error round is the error op alone: on a GPU a step is a GEMM and
     * a kernel one after another, not a GEMM, a GEMM and a kernel. Branches per moving block b: its feedback GEMM, the
     * Gram product into gramProduct[b], the first product into the pre-activation; where b moves for the first time its
     * terms are 0, and the Gram product is the pre-activation's only one.
     */
    private void gramFeedback(Workspace ws, int step, int moved, int active, float eta, BeliefStep[] steps, Runnable[] beside) {
        int depth = model.depth();
        List<Block> blocks = model.blocks();
        int first = step > depth - active ? 3 : 2; // the lowest block's branches
        java.util.function.IntUnaryOperator blockOf = i -> i < first ? active : active + 1 + (i - first) / 3, partOf = i -> i < first ? i : (i - first) % 3;
        each(0, first + 3 * (depth - active - 1), i -> {
            int b = blockOf.applyAsInt(i);
            return partOf.applyAsInt(i) == 1 ? blockMacs[b] * ws.gram[b].shape().dim(0) / layerSizes[b] : blockMacs[b];
        }, ws.batch, i -> {
            int b = blockOf.applyAsInt(i);
            Block block = blocks.get(b);
            Block.Tape t = b >= moved ? ws.sweep[b] : ws.ff[b];
            boolean onto = step > depth - b;
            switch (partOf.applyAsInt(i)) {
                case 0 -> block.feedbackOnto(be, t, ws.error[b + 1], steps[b].next(), -eta, onto);
                case 1 -> block.gramProduct(be, t, ws.error[b + 1], ws.gram[b], -eta, onto ? ws.gramProduct[b] : block.preActivation(ws.sweep[b]));
                default -> block.inputProduct(be, ws.stepCopy[b], ws.sweep[b]);
            }
        }, beside);
    }

    /**
     * The output block in the Gram form: its output from its products (and {@code addend}, where not null) and eps_L, with
     * the output's energy term where {@code withLoss} (the learning step's), in one op: a subtraction, or cross-entropy's
     * per-sample gradient.
     */
    private void outputErrorFromProducts(Workspace ws, Tensor addend, Tensor target, boolean withLoss) {
        int b = model.depth() - 1;
        Block block = model.blocks().get(b);
        if (outputLossApart(target, true))
            block.outputErrorFromProducts(be, ws.belief[b], ws.ff[b], ws.sweep[b], addend, target != null ? target : ws.y, ws.error[b + 1],
                    withLoss ? ws.sweepLoss : null, 0, withLoss ? outputLossScale(ws, target) : 0f);
        else block.crossEntropyFromProducts(be, ws.belief[b], ws.ff[b], ws.sweep[b], addend, ws.y, ws.sweepLoss, ws.error[b + 1], true);
    }

    /** The Gram form's second product of block b's pre-activation at step s, where step s - 1 formed two (block b's input had moved before). */
    private static Tensor gramAddend(Workspace ws, int s, int b) { return s - 1 > ws.sweep.length - b ? ws.gramProduct[b] : null; }

    /**
     * Torch2PC's parameter updates after a folded relaxation, as {@link #updatesAtFinalBeliefs}: the errors as the last step
     * found them, each block's Jacobian at the final beliefs. A branch per block b above 0 evaluates b from its final
     * displacement (zff + d W^T; the output block onto the zff the last feedback round copied) beside forming
     * v_b = vhat_b + d_b, which its weight gradient reads.
     */
    private void torch2pcUpdates(Workspace ws, boolean full, boolean withLoss, float parameterScale) {
        int depth = model.depth();
        List<Block> blocks = model.blocks();
        eachBlock(ws, 0, depth, b -> (b == 0 ? 1 : 2) * blockMacs[b], b -> {
            Block block = blocks.get(b);
            if (b > 0) {
                Tensor d = ws.displacement[b], v = ws.belief[b];
                Runnable evaluate = b == depth - 1 ? () -> block.forwardDisplacedOnto(be, d, v, ws.sweep[b]) : () -> block.forwardDisplaced(be, d, v, ws.ff[b], ws.sweep[b]);
                be.branches(new double[]{blockMacs[b] * ws.batch, layerSizes[b] * ws.batch}, evaluate, () -> be.add(1f, ws.vhat(b), 1f, d, v));
            }
            block.backward(be, b == 0 ? ws.ff[0] : ws.sweep[b], ws.error[b + 1], null, parameterScale);
        }, withLoss ? new Runnable[]{() -> feedforwardLoss(ws)} : NONE);
        if (full) be.copy(ws.vhat(depth), ws.belief[depth]);
    }

    /** The parameter updates' scale: they are J^T eps summed over the batch; per sample, their mean; nudged, over beta. */
    private float updateScale(Workspace ws, boolean perSample, float beta) { return (perSample ? 1f / lossBatch(ws) : 1f) / (beta != 0 ? beta : 1f); }

    /**
     * A relaxation on each sample's own energy nudged by {@code beta}: the output's target h = u - beta dl/du at the
     * feedforward output u, written into belief[L] and returned; null where beta is 0 (the target is y).
     */
    private Tensor nudgedTarget(Workspace ws, float beta) {
        if (beta == 0) return null;
        int depth = model.depth();
        be.add(1f, ws.vhat(depth), -beta * perSampleScale(lossBatch(ws)), ws.dLdy, ws.belief[depth]);
        return ws.belief[depth];
    }

    /**
     * The displacement buffers of a folded relaxation, which its steps write in turn: displacement[l] and feedback[l]
     * (which the folded relaxations do not otherwise use), and with momentum beliefMoment[l] (the displacement two steps back).
     */
    private Tensor[][] displacementBuffers(Workspace ws, float momentum) {
        return momentum == 0f ? new Tensor[][]{ws.displacement, ws.feedback} : new Tensor[][]{ws.displacement, ws.feedback, ws.beliefMoment};
    }

    /**
     * Step s of n's buffers, into d (what it reads) and steps (what it writes, and momentum's previous displacement): step s
     * writes buffer (n - s) mod k, so that the last writes buffer 0 (displacement); it reads the one step s - 1 wrote, and
     * momentum's previous displacement is the one step s - 2 wrote.
     */
    private void stepBuffers(Tensor[][] buffers, int n, int s, float eta, float momentum, Tensor[] d, BeliefStep[] steps, Tensor[] copies) {
        int k = buffers.length;
        for (int l = 1; l < d.length; l++) {
            d[l] = buffers[(n - s + 1) % k][l];
            steps[l] = new BeliefStep(buffers[(n - s) % k][l], eta, momentum, momentum == 0f ? null : buffers[(n - s + 2) % k][l], copies == null ? null : copies[l]);
        }
    }

    /**
     * iPC's relaxation with SGD on the beliefs, each step folded as {@link #relaxFolded} folds PC's. The weights move
     * every step, so blocks predict from the beliefs themselves (block 0 from x), not from displacements. A step is two
     * rounds, a branch per block each, then the optimizer's step ({@code weightStep}): each block's prediction of layer
     * b + 1 at the step's state with that layer's error and its step's own terms; then each block's parameter gradients
     * (from those errors, at that state) beside its feedback GEMM onto the terms, after which v_b = vhat_b + d_b for the
     * next step. On a GPU a step is a GEMM, a kernel, a GEMM, a kernel and the optimizer one after another.
     */
    private void ipcFolded(Workspace ws, float eta, int n, boolean full, float beta, java.util.function.IntConsumer weightStep) {
        int depth = model.depth();
        List<Block> blocks = model.blocks();
        Tensor target = nudgedTarget(ws, beta);
        float updateScale = updateScale(ws, true, beta);
        Tensor[][] buffers = displacementBuffers(ws, beliefOptimizer.momentum());
        int k = buffers.length;
        // The start, an op per branch: v at vhat, and d at 0 in the buffers the first step reads (as d, and as momentum's
        // previous); the one it writes, it writes whole.
        List<Runnable> start = new java.util.ArrayList<>();
        for (int l = 1; l < depth; l++) {
            Tensor vhat = ws.vhat(l), v = ws.belief[l];
            start.add(() -> be.copy(vhat, v));
            for (int i = 0; i < k; i++)
                if (i != (n - 1) % k) {
                    Tensor t = buffers[i][l];
                    start.add(() -> be.fill(t, 0f));
                }
        }
        each(0, start.size(), i -> 1, 1, i -> start.get(i).run(), NONE);
        Tensor[] d = new Tensor[depth];
        BeliefStep[] steps = new BeliefStep[depth];
        for (int s = 1; s <= n; s++) {
            stepBuffers(buffers, n, s, eta, beliefOptimizer.momentum(), d, steps, null);
            boolean withLoss = s == n; // iPC reports its last step's output energy
            eachBlock(ws, 0, depth, b -> blockMacs[b], b -> {
                Block block = blocks.get(b);
                Tensor input = b == 0 ? ws.x : ws.belief[b];
                if (b == depth - 1) {
                    if (outputLossApart(target, true) && block.forwardWithOutputError(be, input, ws.sweep[b], target != null ? target : ws.y, ws.error[b + 1],
                            withLoss ? ws.sweepLoss : null, 0, outputLossScale(ws, target))) return;
                    block.forward(be, input, ws.sweep[b]);
                    outputError(ws, ws.sweep[b].output(), target, true, withLoss);
                } else if (!block.forwardWithError(be, input, ws.sweep[b], ws.vhat(b + 1), d[b + 1], ws.error[b + 1], steps[b + 1])) {
                    block.forward(be, input, ws.sweep[b]); // block 0 of another form
                    Tensor derivative = block.outputDerivative(ws.sweep[b]);
                    be.pcPredictionError(ws.sweep[b].output(), ws.vhat(b + 1), d[b + 1], ws.error[b + 1], derivative,
                            derivative == null ? null : block.outputDerivativeGradient(ws.sweep[b]), steps[b + 1]);
                }
            });
            eachBlock(ws, 0, depth, b -> 2 * blockMacs[b], b -> {
                Block block = blocks.get(b);
                Block.Tape t = ws.sweep[b];
                Runnable gradients = () -> {
                    if (b < depth - 1 && block.outputDerivative(t) != null) block.backwardBelowOutput(be, t, null, updateScale);
                    else block.backward(be, t, ws.error[b + 1], null, updateScale);
                };
                if (b == 0) {
                    gradients.run();
                    return;
                }
                double macs = blockMacs[b] * ws.batch;
                be.branches(new double[]{macs, macs}, () -> block.feedbackOnto(be, t, ws.error[b + 1], steps[b].next(), -eta, true), gradients);
                be.add(1f, ws.vhat(b), 1f, steps[b].next(), ws.belief[b]);
            });
            if (weightStep != null) weightStep.accept(s);
        }
        if (full) be.copy(ws.vhat(depth), ws.belief[depth]);
    }

    /**
     * The output block at v_{L-1} = vhat_{L-1} + d into sweep[L-1] from the displacement d ({@link Block#forwardDisplacedWithOutputError}),
     * and eps_L, in one op where the loss allows; otherwise a GEMM onto the zff that relaxFolded's feedback round before
     * copied there, then eps_L. With {@code withLoss}, the output's energy term (the learning step's).
     */
    private void displacedOutputError(Workspace ws, int b, Tensor d, Tensor target, boolean perSample, boolean withLoss) {
        Block block = model.blocks().get(b);
        if (outputLossApart(target, perSample)) {
            block.forwardDisplacedWithOutputError(be, d, ws.belief[b], ws.ff[b], ws.sweep[b], target != null ? target : ws.y, ws.error[b + 1],
                    withLoss ? ws.sweepLoss : null, 0, outputLossScale(ws, target));
            return;
        }
        block.forwardDisplacedOnto(be, d, ws.belief[b], ws.sweep[b]); // onto the zff the feedback round before copied (relaxFolded)
        outputError(ws, ws.sweep[b].output(), target, perSample, withLoss);
    }

    /**
     * The ops that start a PC or iPC relaxation, a runnable per hidden layer, independent of each other: every hidden layer's displacement at 0
     * and its belief at vhat below layer {@code copiesBelow} (above it, the relaxation writes each belief before it
     * reads it: PC's error wave reaches layer l at step L - l and reads v_l only from then on). Adam's moments start
     * at 0 and take the zero steps of a layer the wave reaches late (its bias correction counts them); momentum's
     * velocity needs no start: zero steps leave it 0, so a layer's first real step is its first (see
     * {@link #beliefUpdate}); plain SGD keeps no state. {@code zeroErrors}: Torch2PC's energy takes its updates from
     * the errors as the last step left them, 0 where the wave never came (the per-sample energy recomputes every error
     * at the final beliefs).
     */
    private Runnable[] relaxationStart(Workspace ws, int copiesBelow, boolean zeroErrors) {
        Runnable[] start = new Runnable[model.depth() - 1]; // start[l - 1]: hidden layer l's ops
        for (int l = 1; l < model.depth(); l++) {
            int layer = l;
            start[l - 1] = () -> {
                be.fill(ws.displacement[layer], 0f);
                if (layer < copiesBelow) be.copy(ws.vhat(layer), ws.belief[layer]);
                if (beliefOptimizer.isAdam()) {
                    be.fill(ws.beliefMoment[layer], 0f);
                    be.fill(ws.beliefSecondMoment[layer], 0f);
                }
                if (zeroErrors) be.fill(ws.error[layer], 0f);
            };
        }
        return start;
    }

    /** PC's feedback J_l^T eps_{l+1} to layer l, at block l's point this step (its feedforward one below the wave); iPC's parameter gradients too. */
    private void feedBack(Workspace ws, int l, int moved, float parameterScale) {
        model.blocks().get(l).backward(be, l >= moved ? ws.sweep[l] : ws.ff[l], ws.error[l + 1], ws.feedback[l], parameterScale);
    }

    /**
     * Layer l's belief step by the belief optimizer, from its prediction this step and its feedback; writes its
     * start-of-step error. SGD's step is one fused pass (eps_l, the gradient feedback - eps_l, the velocity, d_l,
     * v_l); Adam's is four.
     */
    private void beliefUpdate(Workspace ws, int l, int moved, boolean incremental, float eta, int step) {
        BeliefOptimizer o = beliefOptimizer;
        Tensor prediction = l == 1 && incremental ? ws.sweep[0].output() : l - 1 >= moved ? ws.sweep[l - 1].output() : ws.vhat(l);
        if (o.isAdam()) {
            hiddenError(ws, l, prediction);
            be.axpby(-1f, ws.error[l], 1f, ws.feedback[l]);
            be.adamStep(ws.displacement[l], ws.feedback[l], ws.beliefMoment[l], ws.beliefSecondMoment[l], eta, o.beta1(), o.beta2(), o.eps(), 0f, step);
            be.add(1f, ws.vhat(l), 1f, ws.displacement[l], ws.belief[l]);
        } else if (o.momentum() == 0f) be.pcStrictUpdate(prediction, ws.vhat(l), ws.feedback[l], ws.displacement[l], ws.belief[l], ws.error[l], eta);
        else be.pcMomentumUpdate(prediction, ws.vhat(l), ws.feedback[l], ws.displacement[l], ws.beliefMoment[l], ws.belief[l], ws.error[l], eta, o.momentum(),
                step == (incremental ? 1 : Math.max(1, model.depth() - l))); // the step the wave reaches layer l
    }

    /** eps_l = (f_l(v_{l-1}) - vhat_l) - d_l from the displacement state, into error[l]. */
    private void hiddenError(Workspace ws, int l, Tensor prediction) { be.pcPredictionError(prediction, ws.vhat(l), ws.displacement[l], ws.error[l]); }

    /** Allocates centred nudging's held updates, outside any recorded step. */
    private void holdUpdates() {
        if (held != null) return;
        heldScope = new io.predcode.spi.Scope(be);
        held = model.parameters().values().stream().map(p -> heldScope.allocate(p.grad().shape())).toArray(Tensor[]::new);
    }

    /**
     * Z-IL: STRICT's sweeps with eta = 1 from v = vhat, L of them. Sweep s moves the layers the error
     * has reached: before sweep s only v_{L-1} .. v_{L-s+1} have moved, so at its start eps_{L-s+1}
     * is backprop's dL/dvhat_{L-s+1} and the layers below block L-s still sit at vhat. Block b
     * therefore takes J_theta(vhat_b)^T eps_{b+1} at sweep L - b: backprop's gradient, from local
     * quantities only.
     */
    private void zil(Workspace ws, boolean full) {
        int depth = model.depth();
        startAtVhat(ws, 1);
        for (int s = 1; s <= depth; s++) {
            int sweep = s;
            if (be.runsBranchesAtOnce()) {
                new FeedBackRound(ws, 1, null, b -> sweep == depth - b, false, false).run();
                eachBlock(ws, 1, depth, layerSize, l -> strictUpdate(ws, l, 1f, true));
            } else {
                predict(ws, 1, null, false);
                for (int l = depth - 1; l >= 1; l--) {
                    feedBack(ws, l, sweep == depth - l ? 1f : 0f);
                    strictUpdate(ws, l, 1f, true);
                }
            }
        }
        model.blocks().get(0).backward(be, ws.ff[0], ws.error[1], null, 1f); // eps_1 at the start of sweep L
        if (full) be.copy(ws.vhat(depth), ws.belief[depth]);
    }

    private static int size(int[] shape) {
        int n = 1;
        for (int d : shape) n *= d;
        return n;
    }

    /** Frees the workspace (and centred nudging's held updates). Idempotent; when another thread is inside a call, the memory is freed as that call returns. */
    @Override public void close() { guard.close(); }
}
