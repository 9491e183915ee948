package io.predcode.core.pc;

import java.util.Locale;

/**
 * Which energy PC and iPC relax and learn from. The two differ in how the output term is weighed
 * against the hidden errors, so they relax differently at the same step size.
 */
public enum Energy {
    /**
     * Torch2PC's (and STRICT's): the loss as PyTorch reduces it, a mean over the batch, plus every
     * sample's ||eps_l||^2 / 2. The output error is 1/batch of a sample's loss gradient. PC with plain
     * SGD on this energy is STRICT. The library's default.
     */
    TORCH2PC("torch2pc"),
    /**
     * PCX's and JPC's: each sample's own energy, its output term ||u - y||^2 / 2 (mse on one-hot or
     * given targets) or its cross-entropy, plus its ||eps_l||^2 / 2; the parameter updates are the
     * batch mean of each sample's energy gradient at the relaxed beliefs (errors and Jacobians both at
     * the final state, as PCX's learning step). Step sizes from PCX's configs mean the same here.
     */
    PER_SAMPLE("sample");

    private final String id;

    Energy(String id) { this.id = id; }

    /** The name on the command line and in checkpoints. */
    public String id() { return id; }

    /**
     * Reads "torch2pc" or "sample" (also "per-sample").
     *
     * @param s the text
     * @return the energy
     */
    public static Energy parse(String s) {
        return switch (s.toLowerCase(Locale.ROOT).strip().replace('_', '-')) {
            case "torch2pc" -> TORCH2PC;
            case "sample", "per-sample" -> PER_SAMPLE;
            default -> throw new IllegalArgumentException("unknown energy '" + s + "'; expected torch2pc or sample");
        };
    }
}
