package io.predcode.spark;

import java.io.Serializable;

/**
 * What shards send back for a step, summed pairwise by Spark: the parameter updates (flattened in
 * the model's parameter order), and the loss and correct count weighted by samples.
 *
 * @param updates the summed updates
 * @param lossSum the sum over shards of loss times samples
 * @param correct correctly classified samples (0 for mse)
 * @param samples samples
 */
public record Contribution(float[] updates, double lossSum, long correct, long samples) implements Serializable {
    /** The sum of two contributions, into this one's array (Spark hands each reduce its own copies). */
    public Contribution plus(Contribution o) {
        if (o.updates.length != updates.length) throw new IllegalStateException("shards disagree on the model: " + updates.length + " against " + o.updates.length + " parameters");
        for (int i = 0; i < updates.length; i++) updates[i] += o.updates[i];
        return new Contribution(updates, lossSum + o.lossSum, correct + o.correct, samples + o.samples);
    }
}
