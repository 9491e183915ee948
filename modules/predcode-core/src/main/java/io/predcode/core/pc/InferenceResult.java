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

    /** STRICT's energy at the start of the last sweep when the run brought it back; NaN otherwise. */
    private final double relaxedEnergy;

    InferenceResult(Workspace ws, Backend backend, Algorithm algorithm, int depth, float loss, int correct, boolean full, double relaxedEnergy) {
        this.relaxedEnergy = relaxedEnergy;
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
        if (algorithm.relaxesBeliefs() && l == 0) return ws.x;
        return ws.belief[l];
    }

    /** Prediction error epsilon_l, or null where the algorithm has none. */
    public Tensor error(int l) {
        check(l);
        if (algorithm == Algorithm.BACKPROP) return null;
        if (l == 0 && (algorithm != Algorithm.FIXED_PRED || !full)) return null;
        return l == depth && !algorithm.relaxesBeliefs() ? ws.dLdy : ws.error[l];
    }

    /**
     * STRICT and PC only: the PC energy at the start of the last sweep,
     * L(f_L(v_{L-1}), y) + sum over hidden layers of ||eps_l||^2 / 2.
     */
    public double energy() {
        if (!algorithm.relaxesBeliefs()) throw new IllegalStateException("energy() is defined for STRICT and PC only, not " + algorithm);
        if (!Double.isNaN(relaxedEnergy)) return relaxedEnergy;
        ws.writeEnergyTerms(backend, depth);
        float[] terms = new float[depth];
        backend.download(ws.scalars, Workspace.ENERGY_AT, terms, 0, depth);
        return sum(terms, 0);
    }

    /** The sum, in double, of {@code a[from..]}. */
    static double sum(float[] a, int from) {
        double s = 0;
        for (int i = from; i < a.length; i++) s += a[i];
        return s;
    }

    /** The energy {@link #energy()} gives, when the run computed it with the loss (a guarded training step); NaN otherwise. */
    double relaxedEnergy() { return relaxedEnergy; }

    /** Copies a tensor of this result to the host; null for null. */
    public float[] download(Tensor t) { return t == null ? null : backend.download(t); }

    private void check(int l) {
        if (l < 0 || l > depth) throw new IndexOutOfBoundsException("layer " + l + " outside 0.." + depth);
    }
}
