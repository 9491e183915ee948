package io.predcode.spark;

import java.io.Serializable;

/**
 * What shards send back for a job, summed over shards in partition order by the driver: a vector
 * in the model's parameter order (the updates of a synchronous step, or the parameters after local
 * steps), and per step the loss times samples, the correct count and the samples.
 *
 * @param values   the summed vector
 * @param lossSums per step, the sum over shards of loss times samples
 * @param correct  per step, correctly classified samples (0 where the output is not a classifier's)
 * @param samples  per step, samples
 */
public record Contribution(float[] values, double[] lossSums, long[] correct, long[] samples) implements Serializable {
    /** The sum of two contributions, into this one's arrays (each came from its own task). */
    public Contribution plus(Contribution o) {
        if (o.values.length != values.length) throw new IllegalStateException("shards disagree on the model: " + values.length + " against " + o.values.length + " parameters");
        for (int i = 0; i < values.length; i++) values[i] += o.values[i];
        for (int k = 0; k < lossSums.length; k++) {
            lossSums[k] += o.lossSums[k];
            correct[k] += o.correct[k];
            samples[k] += o.samples[k];
        }
        return this;
    }
}
