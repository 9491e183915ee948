package io.predcode.spark;

import java.io.Serializable;

/**
 * What shards send back for a job, summed over shards in partition order by the driver: a vector
 * in the model's parameter order (the updates of a synchronous step, or the parameters after local
 * steps), and per step the loss times samples, the correct count, the samples and each layer's
 * energy times samples.
 *
 * @param values     the summed vector
 * @param lossSums   per step, the sum over shards of loss times samples
 * @param correct    per step, correctly classified samples (0 where the output is not a classifier's)
 * @param samples    per step, samples
 * @param energySums per step, layers 1..L's mean energy per sample times samples ({@code InferenceResult.layerEnergies}),
 *                   L values a step one after another; empty for an algorithm without prediction errors (backprop)
 * @param gradient   for a monitored step, backprop's gradient on the same batch in {@code values}' order, summed as the
 *                   updates are; else empty
 * @param etas       for local steps, per step the eta the shard relaxed with (lowered where its relaxation is guarded), or
 *                   minus the last eta tried where its relaxation raised the energy at every halving; the smallest over the
 *                   shards, so such a step's is negative. Empty for a synchronous step, whose eta the driver sets
 */
public record Contribution(float[] values, double[] lossSums, long[] correct, long[] samples, double[] energySums, float[] gradient, float[] etas)
        implements Serializable {
    /** A contribution without a gradient or etas: a synchronous step that is not monitored. */
    public Contribution(float[] values, double[] lossSums, long[] correct, long[] samples, double[] energySums) {
        this(values, lossSums, correct, samples, energySums, new float[0], new float[0]);
    }

    /** The sum of two contributions, into this one's arrays (each came from its own task). */
    public Contribution plus(Contribution o) {
        if (o.values.length != values.length) throw new IllegalStateException("shards disagree on the model: " + values.length + " against " + o.values.length + " parameters");
        if (o.energySums.length != energySums.length) throw new IllegalStateException("shards disagree on the energies: " + energySums.length + " against " + o.energySums.length + " values");
        for (int i = 0; i < values.length; i++) values[i] += o.values[i];
        for (int k = 0; k < lossSums.length; k++) {
            lossSums[k] += o.lossSums[k];
            correct[k] += o.correct[k];
            samples[k] += o.samples[k];
        }
        for (int i = 0; i < energySums.length; i++) energySums[i] += o.energySums[i];
        if (o.gradient.length != gradient.length) throw new IllegalStateException("shards disagree on monitoring: " + gradient.length + " against " + o.gradient.length + " gradient values");
        for (int i = 0; i < gradient.length; i++) gradient[i] += o.gradient[i];
        if (o.etas.length != etas.length) throw new IllegalStateException("shards disagree on the steps: " + etas.length + " against " + o.etas.length + " etas");
        for (int k = 0; k < etas.length; k++) etas[k] = Math.min(etas[k], o.etas[k]);
        return this;
    }

    /** Layers per step in {@link #energySums} (0 without energies). */
    public int energyLayers() { return energySums.length / lossSums.length; }

    /**
     * Step {@code step}'s relaxed energy over the global batch on Torch2PC's energy, which a guarded relaxation is judged
     * on ({@code Trainer.raisedEnergy}, as {@code InferenceResult.energy()} gives it in one process): the output's term,
     * the global batch's mean loss at the relaxed output, plus each hidden layer's ||eps||^2 / 2 summed over the samples.
     * NaN without energies.
     */
    public double relaxedEnergy(int step) {
        int layers = energyLayers();
        if (layers == 0) return Double.NaN;
        double e = energySums[step * layers + layers - 1] / samples[step];
        for (int l = 0; l < layers - 1; l++) e += energySums[step * layers + l];
        return e;
    }

    /**
     * Step {@code step}'s mean energy per sample, layer by layer, as {@code InferenceResult.layerEnergies} gives it for the
     * global batch (index 0, the clamped input, is 0); null without energies.
     */
    public double[] energies(int step) {
        int layers = energyLayers();
        if (layers == 0) return null;
        double[] e = new double[layers + 1];
        for (int l = 1; l <= layers; l++) e[l] = energySums[step * layers + l - 1] / samples[step];
        return e;
    }
}
