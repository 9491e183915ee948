package io.predcode.core.pc;

/**
 * A training step produced a NaN or infinite loss, or, where the step brought its energy back, a non-finite energy
 * (a relaxation that ran off); the parameters and the optimizer's state are as before that step. iPC's updates during
 * the relaxation are undone where its optimizer has a {@link io.predcode.core.optim.Optimizer.Recordable#snapshot}, as
 * predcode's have; with any other they stay, and the message says so.
 */
public class DivergenceException extends RuntimeException {
    /** The step whose loss was not finite. */
    private final long step;
    /** What was not finite, without the step: what a caller that names the step its own way reports. */
    private final String reason;

    /** A divergence at {@code step} (counted from 1), with the message for the user. */
    public DivergenceException(long step, String message) { this(step, message, message); }

    /**
     * A divergence at {@code step} (counted from 1).
     *
     * @param step    the step, counted from 1
     * @param reason  what was not finite ("loss is NaN", ...), without the step
     * @param message the whole message for the user
     */
    public DivergenceException(long step, String reason, String message) {
        super(message);
        this.step = step;
        this.reason = reason;
    }

    /**
     * The divergence at {@code step} as training reports it: "training diverged at step STEP: REASON; PARAMETERS".
     *
     * @param step       the step, counted from 1
     * @param reason     what was not finite, without the step
     * @param parameters what became of the parameters ("parameters are as after step 41")
     * @return the exception
     */
    public static DivergenceException at(long step, String reason, String parameters) {
        return new DivergenceException(step, reason, "training diverged at step " + step + ": " + reason + "; " + parameters);
    }

    /** The 1-based step that diverged. */
    public long step() { return step; }

    /**
     * What was not finite, without the step or what became of the parameters ("loss is NaN", "the relaxation's
     * energy is not finite ...").
     *
     * @return the reason
     */
    public String reason() { return reason; }
}
