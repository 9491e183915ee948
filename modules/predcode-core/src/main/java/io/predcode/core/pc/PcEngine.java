package io.predcode.core.pc;

import io.predcode.core.internal.Guard;
import io.predcode.core.nn.Block;
import io.predcode.core.nn.Loss;
import io.predcode.core.nn.Model;
import io.predcode.core.optim.Optimizer;
import io.predcode.core.optim.Snapshot;
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
public final class PcEngine extends FoldedRelaxations implements AutoCloseable {
    /** View workspaces kept for smaller batch sizes (a few Java objects each; no device memory). */
    private static final int KEPT_VIEWS = 256;

    private final Guard guard;
    /** The model's guard's enter and exit, built once: a step takes them twice (no garbage per call). */
    private final Runnable enterModel, exitModel;
    /** The workspace that owns the memory, sized to the largest batch so far; null before the first call. */
    private Workspace full;
    private final Map<Integer, Workspace> views = new LinkedHashMap<>(16, 0.75f, true) {
        @Override protected boolean removeEldestEntry(Map.Entry<Integer, Workspace> e) { return size() > KEPT_VIEWS; }
    };
    private int maxBatch;

    /** An engine for {@code model} with this loss; cross-entropy needs a flat output of class scores. */
    public PcEngine(Model model, Loss loss) {
        super(model, loss);
        this.guard = new Guard("PcEngine@" + Integer.toHexString(System.identityHashCode(this)) + " (model of " + model.depth() + " blocks)", this::release);
        this.enterModel = model.guard()::enter;
        this.exitModel = model.guard()::exit;
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
    void enter() { guard.enter(enterModel); }

    void exit() { guard.exit(exitModel); }

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
    @Override public Block.Entry condensedEntry() {
        Block.Entry entry = model.depth() > 1 ? model.blocks().get(1).entry() : null;
        return entry == null || condense == Condense.NEVER || condense == Condense.AUTO && !entry.pays() ? null : entry;
    }

    /** The loss. */
    public Loss loss() { return loss; }

    /** Floats per sample of the input, and of the target (1 for class labels). */
    public int inputSize() { return size(model.inputShape()); }

    /** Floats per sample of the targets (1 for class labels). */
    public int targetSize() { return targetFloats(); }

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

    /**
     * Feedforward loss and correct count for a batch of host arrays, and the outputs they came from (logits for
     * classification) copied into {@code outputs}: for per-class scores without a second forward pass.
     */
    public Evaluation evaluate(float[] x, float[] y, int batch, float[] outputs) {
        enter();
        try {
            int floats = batch * size(model.activationShape(model.depth()));
            if (outputs.length < floats) throw new IllegalArgumentException("outputs holds " + outputs.length + " floats; the batch's outputs are " + floats);
            Workspace ws = load(x, y, batch);
            Evaluation e = evaluate(ws);
            be.download(ws.vhat(model.depth()), 0, outputs, 0, floats);
            return e;
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
     * @param steps        the steps taken: all of them, or fewer where the relaxation settled first (see {@link #generate(float[], float[], int, float, int, double, int[])})
     */
    public record Generation(float[] input, float[] output, double startEnergy, double finalEnergy, int steps) {}

    /** How many steps apart a generation that may stop early reads its energy back. */
    public static final int GENERATION_CHECK_EVERY = 50;

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
    public Generation generate(float[] x0, float[] y, int batch, float eta, int n, int... clamped) { return generate(x0, y, batch, eta, n, 0, clamped); }

    /**
     * As {@link #generate(float[], float[], int, float, int, int...)}, stopping where the relaxation has settled: every
     * {@link #GENERATION_CHECK_EVERY} steps the host reads the mean energy back (one copy), and the relaxation stops after
     * the step where it fell by less than {@code tolerance} times its value over those steps (a relaxation that raises it,
     * or runs off, stops too). With a tolerance of 0 it takes all {@code maxSteps}, reading nothing back on the way.
     *
     * @param x0        starting inputs, {@code batch} samples
     * @param y         the held outputs
     * @param batch     samples
     * @param eta       the step size (per sample: independent of the batch)
     * @param maxSteps  the most steps
     * @param tolerance the relative fall in energy over {@link #GENERATION_CHECK_EVERY} steps below which the relaxation stops; 0 never stops early
     * @param clamped   layers held at their starting values
     * @return the inferred inputs, energies and the steps taken
     */
    public Generation generate(float[] x0, float[] y, int batch, float eta, int maxSteps, double tolerance, int[] clamped) {
        return generate(x0, y, batch, eta, 0f, maxSteps, tolerance, clamped);
    }

    /**
     * As {@link #generate(float[], float[], int, float, int, double, int[])}, by gradient descent with heavy-ball momentum:
     * each layer's velocity u = momentum * u + g, its belief v -= eta * u, from u = 0. In the flat directions of the
     * energy, where an input drifts towards its class, a step then goes 1 / (1 - momentum) times as far (10 times at 0.9),
     * and it stays stable up to step sizes (1 + momentum) times as large as plain descent's. With 0, plain gradient descent.
     * The energy need not fall at every check (the velocity carries the beliefs up a slope for a while), so with a
     * tolerance the relaxation stops where it has not gone below its lowest energy by the tolerance for as many checks in
     * a row as the velocity remembers, momentum / (1 - momentum) steps, plus one: 2 at 0.9; 1, as above, at 0.
     *
     * @param x0        starting inputs, {@code batch} samples
     * @param y         the held outputs
     * @param batch     samples
     * @param eta       the step size (per sample: independent of the batch)
     * @param momentum  the velocity kept from step to step, in [0, 1)
     * @param maxSteps  the most steps
     * @param tolerance the relative fall below the lowest energy, over {@link #GENERATION_CHECK_EVERY} steps, below which the relaxation stops; 0 never stops early
     * @param clamped   layers held at their starting values
     * @return the inferred inputs, energies and the steps taken
     */
    public Generation generate(float[] x0, float[] y, int batch, float eta, float momentum, int maxSteps, double tolerance, int[] clamped) {
        int n = maxSteps;
        if (!(eta > 0) || !Float.isFinite(eta)) throw new IllegalArgumentException("eta must be a finite number > 0, got " + eta);
        if (!(momentum >= 0 && momentum < 1)) throw new IllegalArgumentException("momentum must be in [0, 1), got " + momentum);
        if (n < 1) throw new IllegalArgumentException("n (steps) must be >= 1, got " + n);
        if (!(tolerance >= 0) || !(tolerance < 1)) throw new IllegalArgumentException("tolerance must be in [0, 1), got " + tolerance);
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
            // The velocities, in buffers a generation has no other use for: the input's in belief[0] (the input relaxes in x),
            // a hidden layer's in its displacement (a generation keeps its beliefs, not their distance from vhat).
            Tensor[] velocity = new Tensor[depth];
            for (int l = 0; momentum > 0 && l < depth; l++) be.fill(velocity[l] = l == 0 ? ws.belief[0] : ws.displacement[l], 0f);
            // Heavy-ball descent need not lower the energy at every check (its velocity carries it up a slope for a while):
            // the relaxation stops after settlingChecks checks in a row that found no new lowest energy (by the tolerance).
            int patience = settlingChecks(momentum), stalled = 0;
            double lowest = Double.NaN; // the lowest energy read at a check
            float[] scalars = new float[Workspace.ENERGY_AT + depth]; // the starting loss, then the energy by term
            for (int s = 0; s <= n; s++) {
                // The predictions and errors from the current beliefs; after the n steps, once more for the final energy.
                // Where it may stop early, every GENERATION_CHECK_EVERY steps the energy at the start of the step too.
                boolean check = tolerance > 0 && s < n && s % GENERATION_CHECK_EVERY == 0;
                blocks.get(0).forward(be, ws.x, ws.sweep[0]);
                for (int b = 1; b < depth; b++) blocks.get(b).forward(be, ws.belief[b], ws.sweep[b]);
                outputError(ws, ws.sweep[depth - 1].output(), null, true, s == n || check);
                for (int l = depth - 1; l >= 0; l--) {
                    boolean moves = s < n && !held[l];
                    // J_{l+1}^T eps_{l+1}: layer l's own gradient, and below layer 1 the only one (the input has no error).
                    if (moves) blocks.get(l).backward(be, ws.sweep[l], ws.error[l + 1], ws.feedback[l], 0f);
                    if (l >= 1) be.add(1f, ws.sweep[l - 1].output(), -1f, ws.belief[l], ws.error[l]); // eps_l = f_l(v_{l-1}) - v_l
                    if (!moves) continue;
                    if (l >= 1) be.axpby(-1f, ws.error[l], 1f, ws.feedback[l]);
                    Tensor step = ws.feedback[l];
                    if (momentum > 0) be.axpby(1f, step, momentum, step = velocity[l]);
                    be.axpby(-eta, step, 1f, l == 0 ? ws.x : ws.belief[l]);
                }
                if (check) { // the errors are still the step's start's: its updates read them, and wrote only the beliefs
                    double energy = generationEnergy(ws, batch, scale, scalars);
                    if (s == 0 || lowest - energy > tolerance * Math.abs(lowest)) { lowest = energy; stalled = 0; }
                    // Settled (or diverged): this step's update is the last; the pass after it forms the final energy.
                    else if (++stalled == patience || !Double.isFinite(energy)) n = s + 1;
                }
            }
            double end = generationEnergy(ws, batch, scale, scalars);
            float[] input = be.download(ws.x);
            forward(ws);
            return new Generation(input, be.download(ws.vhat(depth)), scale / batch * scalars[0], end, n);
        } finally {
            globalBatch = shard;
            exit();
        }
    }

    /**
     * Checks in a row without a new lowest energy after which a generation with {@code momentum} has settled: 1 for plain
     * descent, 2 at 0.9, 3 at 0.99 (a velocity remembers about momentum / (1 - momentum) steps).
     *
     * @param momentum the generation's momentum, in [0, 1)
     * @return checks, each {@link #GENERATION_CHECK_EVERY} steps apart
     */
    public static int settlingChecks(float momentum) {
        return 1 + (int) Math.ceil(momentum / (1.0 - momentum) / GENERATION_CHECK_EVERY);
    }

    /**
     * A generation's mean energy per sample from the errors and output loss in the workspace, with the step's scalars
     * (the starting loss first) in one copy to the host, into {@code scalars}.
     */
    private double generationEnergy(Workspace ws, int batch, float scale, float[] scalars) {
        int depth = model.depth();
        ws.writeEnergyTerms(be, depth, Algorithm.PC);
        be.download(ws.scalars, 0, scalars, 0, scalars.length);
        double energy = scale / batch * scalars[Workspace.ENERGY_AT];
        for (int l = 1; l < depth; l++) energy += (double) scalars[Workspace.ENERGY_AT + l] / batch;
        return energy;
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
     * iPC M + n(3M - M0) (M + (n-1)(3M - M0) + 2 M_L, M_L the output block's, where its first step takes the error wave:
     * n > 1), Z-IL 2M + 2L(M - M0), where M is the model's forward work and M0 its first block's (whose
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
            // Each step: every block's forward, the input gradients above block 0 and every parameter gradient; the first, where
            // it takes the error wave (Relaxations.relax, FoldedRelaxations.ipcFolded), the output block's input and parameter gradients alone.
            case IPC -> ipcWave(true, n) ? total + (n - 1) * (3 * total - block[0]) + 2 * block[block.length - 1] : total + n * (3 * total - block[0]);
            // L sweeps of forward and input gradient above block 0, each parameter gradient once.
            case ZIL -> 2 * total + 2.0 * model.depth() * rest;
        };
        Block.Entry entry = algorithm == Algorithm.STRICT ? condensedEntry() : null;
        if (entry != null) macs += n * (entry.gramMacs() - 2.0 * entry.forwardMacs()) + 2.0 * entry.forwardMacs() + (double) entry.formationMacs() / batch;
        return macs;
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
    InferenceResult run(Workspace ws, Algorithm algorithm, float eta, int n, boolean full, boolean energy) { return run(ws, algorithm, eta, n, full, energy, null, null); }

    /**
     * As {@link #run(Workspace, Algorithm, float, int, boolean, boolean)}, with the optimizer's steps: iPC steps
     * {@code weights} after each inference step's parameter updates, or holds the weights when it is null (a
     * learning rate of 0); the other algorithms, where {@code weights} is {@link Optimizer.Recordable}, take its
     * one step at the end of the step's device work. The device skips a recorded step when the step's loss (the
     * feedforward loss, which iPC computes before its first step) is not finite. The caller steps any other
     * optimizer itself, after reading the loss. iPC with a {@code snapshot} (its optimizer's) and the energy takes it
     * beside the feedforward pass and puts it back where the energy is not finite: its diverged step then leaves the
     * parameters, the optimizer's state and its step count as they were, as the other algorithms' does.
     */
    InferenceResult run(Workspace ws, Algorithm algorithm, float eta, int n, boolean full, boolean energy, Optimizer weights, Snapshot snapshot) {
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
        // What the step's end is guarded on: the loss, or with the energy the leading scalars through its terms (and centred
        // nudging's first relaxation's guard), which the optimizer's own kernel checks (Workspace#guarded).
        int guarded = withEnergy ? Workspace.guarded(depth, centred(algorithm)) : 1;
        // The optimizer's steps (iPC's, one after each inference step; the others' one at the end) are recorded with the
        // rest where the optimizer reads what it takes from the host from a tensor filled before the step (Adam's step
        // sizes); iPC issues any other optimizer's steps from the host.
        boolean incremental = algorithm == Algorithm.IPC;
        Optimizer.Recordable recorded = weights instanceof Optimizer.Recordable r ? r : null;
        Snapshot kept = incremental && withEnergy && recorded != null ? snapshot : null;
        Tensor scalars = recorded != null ? uploadStepScalars(recorded, incremental ? n : 1) : null;
        java.util.function.IntConsumer weightStep = !incremental || weights == null ? null
                : recorded != null ? s -> recorded.step(scalars, (long) (s - 1) * recorded.scalarsPerStep(), ws.scalars, 0, 1) : s -> weights.step();
        Runnable step = () -> {
            boolean termsWritten = false; // the energy terms, by the relaxation beside its learning step (see Relaxations.relax)
            boolean backprop = algorithm == Algorithm.BACKPROP || algorithm == Algorithm.EXACT;
            boolean errorAtVhat = !backprop && forward(ws, errorFromFeedforward(algorithm, n), gramForm(ws, algorithm), kept);
            if (backprop) forwardAndLossGradient(ws);
            else if (!lossBeside(algorithm, n)) feedforwardLoss(ws);
            switch (algorithm) {
                // The correct count, which the backward pass does not read, beside it: on a GPU, off the kernels that run one after another.
                case BACKPROP, EXACT -> be.branches(new double[]{1, 0}, () -> backprop(ws, full && algorithm == Algorithm.EXACT), () -> countCorrect(ws));
                case FIXED_PRED -> termsWritten = fixedPrediction(ws, eta, n, full, withEnergy);
                case STRICT -> termsWritten = strict(ws, eta, n, full, withEnergy);
                case PC, IPC -> termsWritten = standard(ws, algorithm, eta, n, full, weightStep, errorAtVhat, withEnergy);
                case ZIL -> zil(ws, full);
            }
            if (withEnergy && !termsWritten) writeEnergyTerms(ws, algorithm);
            // After what it is guarded on: a non-finite loss (or energy, where brought back) leaves the parameters as they were, as when the host stepped after reading it.
            if (recorded != null && !incremental) recorded.step(scalars, 0, ws.scalars, 0, guarded);
        };
        // Everything between the batch upload and the loss download is a fixed sequence of device ops for
        // this workspace and these settings: a backend may record it once and replay it (a CUDA graph).
        // Not iPC's where its optimizer's steps, in the middle, read the host.
        if (incremental && weights != null && recorded == null) step.run();
        else be.replayable(new Replay(ws, algorithm, eta, n, full, condense, beliefOptimizer, this.energy, nudging, globalBatch, withEnergy, recorded, scalars, kept), step);
        // The host reads one copy per step: the loss, for classification the number of correct argmaxes, and when asked the energy terms.
        float[] out = new float[withEnergy ? guarded : 2];
        be.download(ws.scalars, 0, out, 0, withEnergy ? out.length : countsCorrect ? 2 : 1);
        float[] terms = withEnergy ? Arrays.copyOfRange(out, Workspace.ENERGY_AT, Workspace.ENERGY_AT + depth) : null;
        boolean finite = true; // what the optimizer's kernel found
        for (int i = 0; i < guarded; i++) finite &= Float.isFinite(out[i]);
        // iPC's steps, inside the relaxation, are guarded on the loss alone: where the energy then is not, they are undone.
        if (kept != null && !finite) kept.restore();
        if (recorded != null && (incremental && kept == null ? Float.isFinite(out[0]) : finite)) recorded.stepsTaken(incremental ? n : 1);
        return new InferenceResult(ws, be, algorithm, depth, out[0], countsCorrect ? (int) out[1] : -1, full, terms, outputWeights(algorithm, ws.batch), finite);
    }


    /**
     * What fixes a step's device work: the workspace (by identity: its tensors) and the settings; where the step
     * holds the optimizer's steps, the optimizer (its tensors and hyperparameters) and the tensor they read their
     * scalars from, and iPC's snapshot where it takes one.
     */
    private record Replay(Workspace ws, Algorithm algorithm, float eta, int n, boolean full, Condense condense, BeliefOptimizer beliefs, Energy energy,
                          Nudging nudging, int globalBatch, boolean withEnergy, Optimizer weights, Tensor weightScalars, Snapshot snapshot) {}

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

    /**
     * Whether the feedforward pass may form the first step's output error, PC's or iPC's where its first step takes the
     * error wave (not nudged, on each sample's own energy): u - y by a subtraction for the squared error; for
     * cross-entropy, where the backend prefers short chains, softmax - onehot in the loss's op, which adds the output
     * block's bias after its GEMM (on the CPU the GEMM starts from the bias, other bits).
     */
    private boolean errorFromFeedforward(Algorithm algorithm, int n) {
        return (algorithm == Algorithm.PC || algorithm == Algorithm.IPC && ipcWave(true, n)) && !nudging.active() && perSample(algorithm)
                && (loss == Loss.MSE || be.prefersShortChains());
    }

    /** Frees the workspace (and centred nudging's held updates). Idempotent; when another thread is inside a call, the memory is freed as that call returns. */
    @Override public void close() { guard.close(); }
}
