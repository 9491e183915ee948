package io.predcode.core.pc;

/** A training step produced a NaN or infinite loss; the parameters were not updated by that step. */
public class DivergenceException extends RuntimeException {
    /** The step whose loss was not finite. */
    private final long step;

    /** A divergence at {@code step} (counted from 1), with the message for the user. */
    public DivergenceException(long step, String message) {
        super(message);
        this.step = step;
    }

    /** The 1-based step that diverged. */
    public long step() { return step; }
}
