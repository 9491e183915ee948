package io.predcode.core.pc;

import io.predcode.core.internal.Guard;
import io.predcode.core.optim.Optimizer;

import java.lang.foreign.MemorySegment;

/**
 * One training step = one PCInfer call (parameter updates into .grad) followed by one optimizer step,
 * exactly as Torch2PC's training loop. A non-finite loss stops before the optimizer touches the
 * parameters and throws {@link DivergenceException} naming the step.
 */
public final class Trainer {
    private final PcEngine engine;
    private final Optimizer optimizer;
    private final Algorithm algorithm;
    private final float eta;
    private final int n;
    private long steps;
    private final Guard guard = new Guard("Trainer@" + Integer.toHexString(System.identityHashCode(this)), () -> {});

    /** A trainer running {@code algorithm} (eta and n as PCInfer's) and then {@code optimizer} at each step. */
    public Trainer(PcEngine engine, Optimizer optimizer, Algorithm algorithm, float eta, int n) {
        if (algorithm.relaxes()) {
            if (!(eta > 0) || !Float.isFinite(eta)) throw new IllegalArgumentException("eta must be a finite number > 0, got " + eta);
            if (n < 1) throw new IllegalArgumentException("n (sweeps) must be >= 1, got " + n);
        }
        this.engine = engine;
        this.optimizer = optimizer;
        this.algorithm = algorithm;
        this.eta = eta;
        this.n = n;
    }

    /** The engine. */
    public PcEngine engine() { return engine; }

    /** The optimizer. */
    public Optimizer optimizer() { return optimizer; }

    /** The algorithm. */
    public Algorithm algorithm() { return algorithm; }

    /** Steps taken by this trainer. */
    public long steps() { return steps; }

    /** The feedforward loss before the update, and how many samples it classified right (-1 for mse). */
    public record Step(float loss, int correct) {}

    /** Trains on one batch of host arrays. */
    public Step step(float[] x, float[] y, int batch) {
        enter();
        try {
            return finish(engine.run(engine.load(x, y, batch), algorithm, eta, n, false));
        } finally {
            exit();
        }
    }

    /** Trains on one batch in float32 memory segments (e.g. a prefetched off-heap batch). */
    public Step step(MemorySegment x, MemorySegment y, int batch) {
        enter();
        try {
            return finish(engine.run(engine.load(x, y, batch), algorithm, eta, n, false));
        } finally {
            exit();
        }
    }

    /** A trainer, like its engine and model, serves one thread at a time: a second one gets an IllegalStateException. */
    private void enter() {
        guard.enter();
        try {
            engine.enter();
        } catch (RuntimeException e) {
            guard.exit();
            throw e;
        }
    }

    private void exit() {
        try {
            engine.exit();
        } finally {
            guard.exit();
        }
    }

    private Step finish(InferenceResult r) {
        float loss = r.loss();
        steps++;
        if (!Float.isFinite(loss))
            throw new DivergenceException(steps, "training diverged at step " + steps + ": loss is " + loss + " (" + algorithm.id()
                    + (algorithm.relaxes() ? ", eta " + eta + ", n " + n : "") + "); parameters are as after step " + (steps - 1));
        optimizer.step();
        return new Step(loss, r.correct());
    }
}
