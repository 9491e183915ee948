package io.predcode.core.pc;

import java.util.Locale;

/**
 * How {@link Algorithm#PC} moves the beliefs down the energy's gradient, as PCX and JPC relax them:
 * SGD with momentum (none: STRICT's plain steps) or Adam, with the step size eta. Its state lives in
 * the engine's workspace and starts afresh for every batch.
 *
 * @param isAdam   Adam if true, else SGD
 * @param momentum SGD's momentum in [0, 1)
 * @param beta1    Adam's first-moment decay
 * @param beta2    Adam's second-moment decay
 * @param eps      Adam's epsilon
 */
public record BeliefOptimizer(boolean isAdam, float momentum, float beta1, float beta2, float eps) {
    /** Checks the ranges. */
    public BeliefOptimizer {
        if (!(momentum >= 0 && momentum < 1)) throw new IllegalArgumentException("belief optimizer: momentum must be in [0, 1), got " + momentum);
        if (isAdam && !(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1 && eps > 0))
            throw new IllegalArgumentException("belief optimizer: Adam needs betas in [0, 1) and eps > 0, got " + beta1 + ", " + beta2 + ", " + eps);
    }

    /** SGD with this momentum (0: plain gradient steps, which make PC exactly STRICT). */
    public static BeliefOptimizer sgd(float momentum) { return new BeliefOptimizer(false, momentum, 0f, 0f, 0f); }

    /** Adam with PyTorch's defaults (0.9, 0.999, 1e-8). */
    public static BeliefOptimizer adam() { return new BeliefOptimizer(true, 0f, 0.9f, 0.999f, 1e-8f); }

    /**
     * Reads "sgd", "sgd:MOMENTUM" or "adam".
     *
     * @param s the text, e.g. "sgd:0.9"
     * @return the optimizer
     */
    public static BeliefOptimizer parse(String s) {
        String t = s.toLowerCase(Locale.ROOT).strip();
        if (t.equals("adam")) return adam();
        if (t.equals("sgd")) return sgd(0f);
        if (t.startsWith("sgd:")) {
            try {
                return sgd(Float.parseFloat(t.substring(4)));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("belief optimizer '" + s + "': the momentum after 'sgd:' is not a number");
            }
        }
        throw new IllegalArgumentException("unknown belief optimizer '" + s + "'; expected sgd, sgd:MOMENTUM or adam");
    }

    @Override public String toString() { return isAdam ? "adam" : momentum == 0f ? "sgd" : "sgd:" + momentum; }
}
