package io.predcode.core.pc;

import io.predcode.core.internal.Guard;
import io.predcode.core.optim.Optimizer;
import io.predcode.core.optim.Snapshot;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Map;

/**
 * One training step = one PCInfer call (parameter updates into .grad) followed by one optimizer step,
 * exactly as Torch2PC's training loop (iPC: an optimizer step after each of its n inference steps). A non-finite loss stops before the optimizer touches the
 * parameters and throws {@link DivergenceException} naming the step; so does a non-finite energy at a finite loss
 * ({@link #guardEnergy}, on by default), the sign of a relaxation that ran off (iPC, whose updates move the parameters during it, puts back the copy
 * it took at the start: {@link Optimizer.Recordable#snapshot}). A {@link Optimizer.Recordable} optimizer (Adam)
 * steps inside the step's device work, where the device skips it on a non-finite loss (energy); any other, after the loss is read.
 */
public final class Trainer {
    private final PcEngine engine;
    private final Optimizer optimizer;
    private final Algorithm algorithm;
    private final float eta;
    private final int n;
    private long steps;
    private final Guard guard = new Guard("Trainer@" + Integer.toHexString(System.identityHashCode(this)), () -> {});
    /** The engine's enter and exit, built once: a step takes them twice (no garbage per call). */
    private final Runnable enterEngine, exitEngine;

    /** A trainer running {@code algorithm} (eta and n as PCInfer's) and then {@code optimizer} at each step. */
    public Trainer(PcEngine engine, Optimizer optimizer, Algorithm algorithm, float eta, int n) {
        if (algorithm.relaxes()) {
            if (!(eta > 0) || !Float.isFinite(eta)) throw new IllegalArgumentException("eta must be a finite number > 0, got " + eta);
            if (n < 1) throw new IllegalArgumentException("n (sweeps) must be >= 1, got " + n);
        }
        if (optimizer.model() != null && optimizer.model() != engine.model())
            throw new IllegalArgumentException("the optimizer was made for another model than the engine's: its steps would leave the engine's model as it was");
        this.engine = engine;
        this.enterEngine = engine::enter;
        this.exitEngine = engine::exit;
        this.optimizer = optimizer;
        this.algorithm = algorithm;
        this.eta = eta;
        this.etaNow = eta;
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

    /**
     * The feedforward loss before the update, how many samples it classified right (-1 for mse), and
     * on the steps the monitor measures ({@link #monitorEvery}), how the update compares with the
     * backprop gradient on the same batch (null otherwise).
     *
     * @param loss      the loss of the feedforward pass on the batch
     * @param correct   correctly classified samples (for mse on a flat output of two values or more: rows whose output's argmax is the target's), or -1
     * @param alignment the PC update against the gradient, or null when not measured
     * @param eta       the inference step size this step relaxed with (see {@link #stableRelaxation})
     * @param energies  with {@link #recordEnergies}, a sample's mean energy per layer at the start of the
     *                  last sweep ({@link InferenceResult#layerEnergies()}); null otherwise
     */
    public record Step(float loss, int correct, Alignment alignment, float eta, double[] energies) {}

    private boolean energies;

    /**
     * Whether each step also brings back a sample's mean energy per layer ({@link Step#energies()}): the terms
     * {@link #guardEnergy} computes anyway, a few more floats in the step's one copy to the host. Every algorithm
     * but BACKPROP, which forms no prediction errors.
     *
     * @param on whether to record them
     * @return this trainer
     */
    public Trainer recordEnergies(boolean on) {
        this.energies = on;
        return this;
    }

    private boolean guardEnergy = true;

    /**
     * Whether each step checks, before the optimizer applies the step's updates, that the relaxation's energy is finite
     * as well as the loss (on by default). A step size far too large sends the beliefs to infinity within one step while
     * the feedforward loss, computed before the relaxation, stays finite: its updates are then NaN. With the check the
     * step throws {@link DivergenceException} with the parameters and the optimizer as before it (iPC too: its step
     * copies them beside its feedforward pass and puts the copy back, {@link Optimizer.Recordable#snapshot}; with an
     * optimizer that has none, as after the updates its relaxation took); without it they reach the parameters, and the next step's loss names the step after.
     * The check is the energy's terms ({@link #recordEnergies}' sums of squares), which the optimizer's own kernel reads
     * on the device, and a few floats more in the step's one copy: about 1% of a CPU step; on a GPU the terms run beside
     * the step's last ops, so its chain of kernels is as long as without the check (but for centred nudging, which checks
     * its first relaxation on the way; bench --energy-check on,off). It
     * checks the algorithms that relax beliefs with a step size (STRICT, FIXED_PRED, PC, iPC); the others are guarded on
     * their loss alone.
     *
     * @param on whether to check the energy
     * @return this trainer
     */
    public Trainer guardEnergy(boolean on) {
        this.guardEnergy = on;
        return this;
    }

    private int monitorEvery;
    private boolean stableRelaxation;
    /** The step size the relaxation takes now: eta, halved each time it diverged (see {@link #stableRelaxation}). */
    private float etaNow;

    /**
     * STRICT's relaxation is gradient descent on the PC energy with step eta, so it converges only
     * while eta is below 2 over the energy's curvature, which grows with the weights' spectral norms
     * (docs/stability.md): a long run's weights can outgrow eta, and the beliefs then diverge within
     * the sweeps and the update is garbage. With this on, a step checks that the relaxation lowered
     * the energy below its starting value (the feedforward loss; one more scalar in the step's one
     * copy) and otherwise halves eta, from this step on, and relaxes the batch again. A run whose
     * relaxation never diverges is bit for bit the same as without it. It guards STRICT, and PC where
     * its relaxation is the same descent from the same start: SGD on the beliefs (plain, which is
     * STRICT, or with momentum) on {@link Energy#TORCH2PC}. No effect on other algorithms and settings.
     *
     * @param on whether to guard the relaxation
     * @return this trainer
     */
    public Trainer stableRelaxation(boolean on) {
        this.stableRelaxation = on;
        return this;
    }

    /**
     * The step size the relaxation takes now: the eta given, unless {@link #stableRelaxation} lowered it.
     *
     * @return the current inference step size
     */
    public float eta() { return etaNow; }

    /**
     * Continues with a step size an earlier run of this training lowered (a resumed run).
     *
     * @param lowered the eta to relax with, at most the eta given at construction
     * @return this trainer
     */
    public Trainer resumeEta(float lowered) {
        if (!(lowered > 0 && lowered <= eta)) throw new IllegalArgumentException("resumed eta must be in (0, " + eta + "], got " + lowered);
        this.etaNow = lowered;
        return this;
    }

    /**
     * Counts the steps a resumed run took before it stopped, so that the monitor measures the same steps
     * ({@link #monitorEvery}) and a divergence is numbered as in the run that was not stopped.
     *
     * @param taken the run's steps so far, &gt;= 0
     * @return this trainer
     */
    public Trainer resumeSteps(long taken) {
        if (taken < 0) throw new IllegalArgumentException("steps taken must be >= 0, got " + taken);
        this.steps = taken;
        return this;
    }

    /**
     * Every {@code k} steps (0: never), also computes the backprop gradient on that step's batch, at
     * the same parameters, and reports each block's angle and relative error to the PC update in
     * {@link Step#alignment()}: an early warning that PC drifts away from the gradient. It costs one
     * backprop pass and two host copies of the updates on those steps; the update applied is unchanged.
     *
     * @param k the interval in steps, 0 to turn it off
     * @return this trainer
     */
    public Trainer monitorEvery(int k) {
        if (k < 0) throw new IllegalArgumentException("monitor interval must be >= 0 (0: off), got " + k);
        if (k > 0 && algorithm == Algorithm.IPC)
            throw new IllegalArgumentException("the monitor compares a step's one update with the gradient; iPC takes n updates per step, so it has none to compare");
        this.monitorEvery = k;
        return this;
    }

    /** Trains on one batch of host arrays. */
    public Step step(float[] x, float[] y, int batch) {
        enter();
        try {
            return run(engine.load(x, y, batch));
        } finally {
            exit();
        }
    }

    /** Trains on one batch in float32 memory segments (e.g. a prefetched off-heap batch). */
    public Step step(MemorySegment x, MemorySegment y, int batch) {
        enter();
        try {
            return run(engine.load(x, y, batch));
        } finally {
            exit();
        }
    }

    /** The gradient first (when monitoring), then the algorithm, so the algorithm's update is what stays in .grad for the optimizer. */
    private Step run(Workspace ws) {
        boolean monitor = monitorEvery > 0 && (steps + 1) % monitorEvery == 0;
        Map<String, float[]> gradient = null;
        if (monitor) {
            engine.run(ws, Algorithm.BACKPROP, eta, n, false);
            gradient = engine.model().gradientValues();
        }
        InferenceResult r = relax(ws);
        Alignment alignment = monitor ? Alignment.between(engine.model(), gradient, engine.model().gradientValues(), steps + 1) : null;
        return finish(r, alignment);
    }

    /** A trainer, like its engine and model, serves one thread at a time: a second one gets an IllegalStateException. */
    private void enter() { guard.enter(enterEngine); }

    private void exit() { guard.exit(exitEngine); }

    /** The algorithm on the loaded batch; for a guarded relaxation ({@link #guarded}), with eta halved until the relaxation lowers the energy. */
    private InferenceResult relax(Workspace ws) {
        boolean guard = guarded();
        Optimizer weights = stepsInRun() ? optimizer : null;
        boolean checked = guard || energies || guardEnergy && algorithm.relaxes();
        InferenceResult r = engine.run(ws, algorithm, etaNow, n, false, checked, weights, checked ? snapshot() : null);
        for (int halvings = 0; guard && Float.isFinite(r.loss()) && diverged(r); halvings++) { // a non-finite loss is finish()'s to report
            if (halvings == MAX_HALVINGS)
                throw DivergenceException.at(steps + 1, relaxationDiverges(algorithm, etaNow, r.energy(), r.loss()), "parameters are as after step " + steps);
            etaNow /= 2;
            r = engine.run(ws, algorithm, etaNow, n, false, true, weights, null);
        }
        return r;
    }

    /**
     * What iPC's checked step copies first and puts back if its energy is not finite: the optimizer's snapshot (null
     * for another algorithm, or an optimizer with none, whose diverged iPC step keeps its updates).
     */
    private Snapshot snapshot() {
        return algorithm == Algorithm.IPC && optimizer instanceof Optimizer.Recordable r ? r.snapshot() : null;
    }

    /**
     * Whether the engine takes the optimizer's step within the step's device work: iPC's always; the others' where
     * the optimizer is {@link Optimizer.Recordable} (the device skips it on a non-finite loss) and no guarded
     * relaxation may yet be run again with a smaller eta. Otherwise {@link #finish} steps it after reading the loss.
     */
    private boolean stepsInRun() {
        return algorithm == Algorithm.IPC || optimizer instanceof Optimizer.Recordable && !guarded();
    }

    /** Whether {@link #stableRelaxation} guards this step (the engine's settings, as they are now; see {@link #guards}). */
    private boolean guarded() { return stableRelaxation && guards(algorithm, engine.energy, engine.beliefOptimizer, engine.nudging); }

    /**
     * Whether {@link #stableRelaxation} guards a relaxation with these settings: STRICT's, and PC's with SGD on the
     * beliefs (plain or with momentum) on Torch2PC's energy, gradient descent that starts at the feedforward loss. Not
     * each sample's own energy (or nudged), whose energy is not on the loss's scale, nor Adam's steps on the beliefs.
     *
     * @param algorithm the algorithm
     * @param energy    the energy PC relaxes
     * @param beliefs   how PC moves the beliefs
     * @param nudging   how PC holds the output
     * @return whether the guard applies
     */
    public static boolean guards(Algorithm algorithm, Energy energy, BeliefOptimizer beliefs, Nudging nudging) {
        return algorithm == Algorithm.STRICT || algorithm == Algorithm.PC && energy == Energy.TORCH2PC && !beliefs.isAdam() && !nudging.active();
    }

    /** Gradient descent on the energy starts at the feedforward loss and only goes down while it converges. */
    private static boolean diverged(InferenceResult r) { return raisedEnergy(r.energy(), r.loss()); }

    /**
     * {@link #stableRelaxation}'s test: whether a guarded relaxation ended with its energy ({@link InferenceResult#energy()})
     * above where it started, the feedforward loss (beyond rounding), or not finite. A data-parallel run applies it to
     * the global batch's sums, as one process applies it to the batch's.
     *
     * @param energy the relaxed energy
     * @param loss   the feedforward loss
     * @return whether eta must be halved and the batch relaxed again
     */
    public static boolean raisedEnergy(double energy, double loss) { return !(energy <= loss * (1 + 1e-3) + 1e-6); }

    /** Halvings of eta a guarded relaxation tries on one batch before the step is a divergence. */
    public static final int MAX_HALVINGS = 20;

    /**
     * Why a guarded relaxation that still raised the energy after {@link #MAX_HALVINGS} halvings is a divergence.
     *
     * @param algorithm the algorithm (STRICT, or PC)
     * @param eta       the last eta tried
     * @param energy    the relaxed energy at that eta
     * @param loss      the feedforward loss
     * @return the reason, for {@link DivergenceException#at}
     */
    public static String relaxationDiverges(Algorithm algorithm, float eta, double energy, double loss) {
        return (algorithm == Algorithm.STRICT ? "STRICT's" : "PC's") + " relaxation diverges even at eta " + eta + " (energy " + energy + " against the feedforward loss " + loss + ")";
    }

    /**
     * The step just counted diverged: {@code what}, the settings it ran with, and what became of the parameters (with
     * iPC's updates during the relaxation where they were taken). Built only when thrown, not every step.
     */
    private DivergenceException divergence(String what, boolean ipcUpdatesTaken) {
        return DivergenceException.at(steps, what + " (" + algorithm.id() + (algorithm.relaxes() ? ", eta " + etaNow + ", n " + n : "") + ")",
                "parameters are as after step " + (steps - 1) + (ipcUpdatesTaken ? " and its " + n + " iPC updates" : ""));
    }

    private Step finish(InferenceResult r, Alignment alignment) {
        float loss = r.loss();
        steps++;
        if (!Float.isFinite(loss))
            throw divergence("loss is " + loss, algorithm == Algorithm.IPC && !(optimizer instanceof Optimizer.Recordable));
        // A relaxation that ran off (beliefs NaN or infinite) leaves the loss finite, and the energy and the updates not.
        if (!r.finite())
            throw divergence("the relaxation's energy is not finite at a finite loss (" + loss + "; a sample's energy in layers 1.." + r.depth() + " "
                    + Arrays.toString(Arrays.copyOfRange(r.layerEnergies(), 1, r.depth() + 1)) + ")", snapshot() == null && algorithm == Algorithm.IPC);
        if (!stepsInRun()) optimizer.step();
        return new Step(loss, r.correct(), alignment, etaNow, energies && r.hasEnergy() ? r.layerEnergies() : null);
    }
}
