package io.predcode.core.pc;

import io.predcode.spi.Backend;
import io.predcode.spi.Tensor;

/**
 * What one inference call returns, as Torch2PC's PCInfer does: feedforward activations vhat, the loss,
 * dL/dy, beliefs v and prediction errors epsilon (index 0 = input, L = output; {@code null} where the
 * algorithm has none, as PCInfer returns None). Parameter updates are in each parameter's grad tensor.
 *
 * <p>The tensors live in the engine's workspace for this batch size: they stay valid until the next
 * call at the same batch size. Copy them to the host with {@link #download}.
 */
public final class InferenceResult {
    private final Workspace ws;
    private final Backend backend;
    private final Algorithm algorithm;
    private final int depth;
    private final float loss;
    private final int correct;
    /** Whether beliefs and FIXED_PRED's input error were computed (infer does; a training step does not). */
    private final boolean full;

    /** The energy terms at the start of the last sweep (the output term, then each hidden layer's ||eps||^2 / 2) when the run brought them back; null otherwise. */
    private float[] terms;
    /** How the output term enters the energy relaxed, and a sample's mean energy (see {@link PcEngine#outputWeights}). */
    private final double outputWeight, outputWeightPerSample;

    /** Whether the step's guard was finite: the loss, and the energy terms where the run brought them back (see {@link Workspace#guarded}). */
    private final boolean finite;

    InferenceResult(Workspace ws, Backend backend, Algorithm algorithm, int depth, float loss, int correct, boolean full, float[] terms, double[] outputWeights, boolean finite) {
        this.finite = finite;
        this.terms = terms;
        this.outputWeight = outputWeights[0];
        this.outputWeightPerSample = outputWeights[1];
        this.correct = correct;
        this.ws = ws;
        this.backend = backend;
        this.algorithm = algorithm;
        this.depth = depth;
        this.loss = loss;
        this.full = full;
    }

    /** The algorithm that produced this result. */
    public Algorithm algorithm() { return algorithm; }

    /** Number of blocks L. */
    public int depth() { return depth; }

    /** Loss of the feedforward pass. */
    public float loss() { return loss; }

    /** Samples whose feedforward argmax equals the label (cross-entropy); -1 for mse. */
    public int correct() { return correct; }

    /** Feedforward activation vhat_l (l = 0 is the input batch). */
    public Tensor vhat(int l) { check(l); return ws.vhat(l); }

    /** dL/dy at the feedforward output. */
    public Tensor dLdy() { return ws.dLdy; }

    /** Belief v_l, or null where the algorithm has none. */
    public Tensor belief(int l) {
        check(l);
        if (algorithm == Algorithm.BACKPROP || !full) return null;
        if (algorithm == Algorithm.EXACT && l == 0) return null;
        if (algorithm.recomputesPredictions() && l == 0) return ws.x;
        return ws.belief[l];
    }

    /** Prediction error epsilon_l, or null where the algorithm has none. */
    public Tensor error(int l) {
        check(l);
        if (algorithm == Algorithm.BACKPROP) return null;
        if (l == 0 && (algorithm != Algorithm.FIXED_PRED || !full)) return null;
        return l == depth && !algorithm.recomputesPredictions() ? ws.dLdy : ws.error[l];
    }

    /**
     * Every algorithm but BACKPROP: the energy, at the start of the last sweep (PC on the per-sample
     * energy: at the final beliefs, where it learns; FIXED_PRED and EXACT: the feedforward loss and
     * their errors, their predictions never moving). For
     * STRICT (and {@link Energy#TORCH2PC}) L(f_L(v_{L-1}), y) + the sum over hidden layers and samples of
     * ||eps_l||^2 / 2; for {@link Energy#PER_SAMPLE} the sum over samples of each one's energy.
     *
     * @return the energy
     */
    public double energy() {
        float[] t = terms();
        double e = outputWeight * t[0];
        for (int l = 1; l < t.length; l++) e += t[l];
        return e;
    }

    /**
     * Every algorithm but BACKPROP: a sample's mean energy layer by layer, where {@link #energy()} takes it:
     * index l (1..L-1) holds ||eps_l||^2 / 2, index L the output term (the loss at the predicted output,
     * or the nudged term), index 0 is 0 (the input is clamped). Comparable across batch sizes and energies.
     *
     * @return the energies, {@code depth() + 1} of them
     */
    public double[] layerEnergies() {
        float[] t = terms();
        double[] e = new double[depth + 1];
        for (int l = 1; l < depth; l++) e[l] = (double) t[l] / ws.batch;
        e[depth] = outputWeightPerSample * t[0];
        return e;
    }

    private float[] terms() {
        if (!algorithm.hasErrors()) throw new IllegalStateException("BACKPROP forms no prediction errors: it has no energy");
        if (terms == null) {
            float[] t = new float[depth];
            backend.inTurn(() -> {
                ws.writeEnergyTerms(backend, depth, algorithm);
                backend.download(ws.scalars, Workspace.ENERGY_AT, t, 0, depth);
            });
            terms = t;
        }
        return terms;
    }

    /** Whether the loss, and the energy terms brought back with it, are finite: what the optimizer's recorded step was guarded on. */
    boolean finite() { return finite; }

    /** Whether the run brought the energy terms back with the loss (a training step that asked for them). */
    boolean hasEnergy() { return terms != null; }

    /** Copies a tensor of this result to the host; null for null. */
    public float[] download(Tensor t) { return t == null ? null : backend.inTurn(() -> backend.download(t)); }

    private void check(int l) {
        if (l < 0 || l > depth) throw new IndexOutOfBoundsException("layer " + l + " outside 0.." + depth);
    }
}
