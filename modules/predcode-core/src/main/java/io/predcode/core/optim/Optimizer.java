package io.predcode.core.optim;

import java.util.Map;

/**
 * Applies the parameter updates in each parameter's grad tensor, on the model's backend, with
 * PyTorch's semantics. State (momentum, Adam moments, step count) is kept on the device and can be
 * saved and restored for exact resumption.
 */
public interface Optimizer extends AutoCloseable {
    /** Applies the parameter updates in the model's grad tensors (one optimizer step). */
    void step();

    /**
     * The learning rate now.
     *
     * @return the learning rate
     */
    float learningRate();

    /**
     * Changes the learning rate from the next step on (e.g. lowered after a rollback).
     *
     * @param lr a finite rate &gt; 0
     */
    void learningRate(float lr);

    /**
     * The model whose parameters it updates, where it says: a {@link io.predcode.core.pc.Trainer} refuses an optimizer
     * of another model than its engine's, whose steps would leave the engine's model as it was.
     *
     * @return the model, or null for an optimizer that does not say (the default)
     */
    default io.predcode.core.nn.Model model() { return null; }

    /** "sgd", "adam" or "adamw". */
    String name();

    /**
     * Every hyperparameter, the learning rate now included, as {@link #fromSettings} reads them: how
     * another process (a Spark executor) builds the same optimizer for its copy of the model.
     *
     * @return e.g. "adam 0.002 0.9 0.999 1.0E-8 0.0"
     */
    String settings();

    /**
     * An optimizer with these {@link #settings} (and fresh state) for {@code model}.
     *
     * @param settings what {@link #settings} returned
     * @param model    the model it updates
     * @return the optimizer
     */
    static Optimizer fromSettings(String settings, io.predcode.core.nn.Model model) {
        String[] f = settings.trim().split(" ");
        float[] v = new float[f.length - 1];
        try {
            for (int i = 1; i < f.length; i++) v[i - 1] = Float.parseFloat(f[i]);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("optimizer settings '" + settings + "': expected a name and numbers");
        }
        if (v.length == 5 && f[0].equals("sgd")) return new Sgd(model, v[0], v[1], v[2], v[3], v[4] != 0);
        if (v.length == 5 && (f[0].equals("adam") || f[0].equals("adamw"))) return Adam.of(model, v[0], v[1], v[2], v[3], v[4], f[0].equals("adamw"));
        throw new IllegalArgumentException("optimizer settings '" + settings + "': expected sgd LR MOMENTUM DAMPENING DECAY NESTEROV or adam|adamw LR BETA1 BETA2 EPS DECAY");
    }

    /** The name and the values, as {@link #fromSettings} reads them (Float.toString gives back the same float). */
    static String settings(String name, float... values) {
        StringBuilder b = new StringBuilder(name);
        for (float x : values) b.append(' ').append(x);
        return b.toString();
    }

    /** Steps taken so far. */
    long steps();

    /** Host copies of the state tensors by name ("0.0.weight.exp_avg", ...), plus "step". */
    Map<String, float[]> state();

    /** Restores what {@link #state()} returned; names and sizes must match. */
    void loadState(Map<String, float[]> state, String source);

    @Override void close();

    /**
     * An optimizer whose steps a recorded sequence of device ops can hold ({@link io.predcode.spi.Backend#replayable}:
     * a CUDA graph): what a step takes from the host (the learning rate, the step count's bias corrections) it reads
     * from a tensor the host fills before each replay. A training step, with its optimizer step at the end (guarded on
     * the device by the step's loss), is then one recording; so is iPC's, an optimizer step after each inference step.
     * Each recorded step computes the bits of {@link #step()}.
     */
    interface Recordable extends Optimizer {
        /**
         * Floats one step reads from the scalars tensor.
         *
         * @return the count
         */
        int scalarsPerStep();

        /**
         * Writes what the next {@code steps} steps read, from the step count and learning rate now, each
         * step's {@link #scalarsPerStep} floats after the last's.
         *
         * @param steps how many steps
         * @param into  where they go, from index 0
         */
        void nextScalars(int steps, float[] into);

        /**
         * Issues one step's ops, reading its scalars from {@code scalars} at {@code at}; the host's count
         * does not move (see {@link #stepsTaken}). With a {@code guard}, the ops change nothing unless
         * guard[guardIndex .. guardIndex + guardCount) are all finite when they run (a training step's loss, and where the
         * step checks them its energy's terms).
         *
         * @param scalars    the device tensor {@link #nextScalars} was copied to
         * @param at         the index of this step's first scalar
         * @param guard      a tensor whose values from guardIndex must be finite for the step to apply, or null
         * @param guardIndex the first value's index
         * @param guardCount how many values, at least 1 with a guard
         */
        void step(io.predcode.spi.Tensor scalars, long at, io.predcode.spi.Tensor guard, long guardIndex, int guardCount);

        /**
         * Counts steps the recorded ops took.
         *
         * @param steps how many
         */
        void stepsTaken(int steps);

        /**
         * A device copy of the parameters and this optimizer's state, which a step that moves them as it goes (iPC)
         * takes first and puts back if it diverges. The default has none: such a step that diverges keeps the updates
         * it took.
         *
         * @return the snapshot, or null
         */
        default Snapshot snapshot() { return null; }
    }
}
