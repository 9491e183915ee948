package io.predcode.cuda;

import java.util.ArrayDeque;

/** What a constructor took from the driver so far, given back newest first when a later step fails. */
final class Undo {
    private final ArrayDeque<Runnable> steps = new ArrayDeque<>();

    /** Records how to give back what the step just taken took. */
    void push(Runnable giveBack) { steps.push(giveBack); }

    /** Gives everything back, newest first, adding any failure to do so to {@code failure}; returns it, to be thrown. */
    RuntimeException all(RuntimeException failure) {
        while (!steps.isEmpty()) {
            try {
                steps.pop().run();
            } catch (RuntimeException suppressed) {
                failure.addSuppressed(suppressed);
            }
        }
        return failure;
    }
}
