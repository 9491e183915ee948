package io.predcode.core.pc;

/**
 * How beliefs, prediction errors and parameter updates are computed (Rosenbaum 2022; Torch2PC's ErrType).
 * <ul>
 * <li>{@link #BACKPROP}: plain reverse-mode gradients, no beliefs.</li>
 * <li>{@link #EXACT}: eps_l = dL/dvhat_l, v_l = vhat_l - eps_l; updates equal backprop's.</li>
 * <li>{@link #FIXED_PRED}: predictions fixed at the feedforward values; n sweeps of
 *     eps_l &lt;- (1 - eta) eps_l + eta J_{l+1}^T eps_{l+1}; with eta = 1 and n = L the updates equal backprop's.</li>
 * <li>{@link #STRICT}: beliefs relax by gradient descent on the PC energy with v_0 = x fixed; every
 *     prediction is recomputed from the current beliefs.</li>
 * <li>{@link #PC}: standard inference-learning PC (PCX, JPC): the same energy, the beliefs moved by an
 *     optimizer ({@link BeliefOptimizer}: SGD with momentum, or Adam) for n steps of size eta. With
 *     plain SGD it is STRICT.</li>
 * <li>{@link #IPC}: incremental PC (Salvatori et al., ICLR 2024): PC's relaxation with a parameter
 *     update at every one of its n steps, from the same state as that step's belief update.</li>
 * <li>{@link #ZIL}: zero-divergence inference learning (Song et al., NeurIPS 2020): STRICT's sweeps
 *     with eta = 1 from the feedforward values, each block updated at the sweep its error reaches it
 *     (block b at sweep L - b); the updates equal backprop's. eta and n are fixed by the schedule.</li>
 * </ul>
 */
public enum Algorithm {
    /** Plain backpropagation: the updates are the loss gradients. */
    BACKPROP("backprop"),
    /** Torch2PC's Exact: errors from reverse mode, updates equal to backprop's. */
    EXACT("exact"),
    /** Torch2PC's FixedPred: predictions fixed at the feedforward pass, errors relaxed for n sweeps. */
    FIXED_PRED("fixedpred"),
    /** Torch2PC's Strict: beliefs relaxed on the PC energy with every prediction recomputed. */
    STRICT("strict"),
    /** Standard PC: STRICT's energy, the beliefs moved by the engine's {@link BeliefOptimizer}. */
    PC("pc"),
    /** Incremental PC: the parameters take an optimizer step at every inference step (needs a {@link Trainer}). */
    IPC("ipc"),
    /** Z-IL: STRICT with eta 1 for L sweeps, block b learning at sweep L - b; equal to backprop. */
    ZIL("zil");

    private final String id;

    Algorithm(String id) { this.id = id; }

    /** The name used on the command line and in golden files. */
    public String id() { return id; }

    /** Accepts strict, pc, ipc, zil (or z-il), fixedpred (fixed_pred, fixed-pred), exact, backprop (bp), in any case. */
    public static Algorithm parse(String s) {
        return switch (s.toLowerCase().replace("-", "").replace("_", "")) {
            case "backprop", "bp" -> BACKPROP;
            case "exact" -> EXACT;
            case "fixedpred" -> FIXED_PRED;
            case "strict" -> STRICT;
            case "pc" -> PC;
            case "ipc" -> IPC;
            case "zil" -> ZIL;
            default -> throw new IllegalArgumentException("unknown algorithm '" + s + "'; expected strict, pc, ipc, zil, fixedpred, exact or backprop");
        };
    }

    /** Whether eta and n mean anything for it. */
    public boolean relaxes() { return this == FIXED_PRED || this == STRICT || this == PC || this == IPC; }

    /**
     * Whether it relaxes beliefs on the PC energy (STRICT, PC, iPC) and so has an energy to report:
     * v_0 = x, the output's error is the loss gradient at the predicted output.
     */
    public boolean relaxesBeliefs() { return this == STRICT || this == PC || this == IPC; }

    /**
     * Whether it recomputes predictions from moving beliefs (STRICT, PC, iPC, Z-IL): v_0 = x is its
     * belief at layer 0, and its output error is the loss gradient at the last sweep's prediction.
     */
    public boolean recomputesPredictions() { return relaxesBeliefs() || this == ZIL; }

    /** Whether it forms prediction errors, and so has per-layer energies to report: all but BACKPROP. */
    public boolean hasErrors() { return this != BACKPROP; }

    /** Whether it moves the beliefs with the engine's {@link BeliefOptimizer}, energy choice and nudging (PC, iPC). */
    public boolean standard() { return this == PC || this == IPC; }
}
