package io.predcode.spark;

import java.util.SplittableRandom;

/**
 * Which samples each shard takes at each step. The training set is dealt round-robin into
 * {@code partitions} shards (sample i to shard i mod P); every epoch each shard is shuffled on its own
 * (seeded by the run's seed, the epoch and the shard) and cut into local batches of
 * {@code globalBatch / P}. The global batch of a step is the shards' local batches in shard order, so
 * single-process training on {@link #globalBatch} is the same run, which the exactness tests use. An
 * epoch has as many steps as the smallest shard fills; the few samples left over are not used that
 * epoch (they are in the next one's shuffle).
 *
 * @param trainSize  samples in the training set
 * @param partitions shards
 * @param localBatch samples per shard per step
 * @param seed       the run's seed
 * @param shuffle    whether shards are shuffled each epoch
 */
public record ShardPlan(int trainSize, int partitions, int localBatch, long seed, boolean shuffle) implements java.io.Serializable {
    /** Checks that every shard fills at least one step. */
    public ShardPlan {
        if (trainSize / partitions < localBatch)
            throw new IllegalArgumentException("the training set's " + trainSize + " samples give each of " + partitions + " shards " + trainSize / partitions
                    + ", fewer than a shard's " + localBatch + " samples per step: lower --batch-size");
    }

    /** The plan for a run. */
    public static ShardPlan of(RunSpec spec, int trainSize) {
        return new ShardPlan(trainSize, spec.partitions(), spec.localBatch(), spec.seed(), spec.shuffle());
    }

    /** Steps per epoch: what the smallest shard fills. */
    public int stepsPerEpoch() { return trainSize / partitions / localBatch; }

    /** Shard p's samples, in stored order. */
    public int[] shard(int p) {
        int[] s = new int[(trainSize - p + partitions - 1) / partitions];
        for (int i = 0; i < s.length; i++) s[i] = p + i * partitions;
        return s;
    }

    /**
     * Shard p's samples in this epoch's order, indices into the training set: step s's local batch is
     * entries [s localBatch, (s + 1) localBatch). A worker computes it once an epoch.
     */
    public int[] epochOrder(int p, int epoch) {
        int[] shard = shard(p);
        if (!shuffle) return shard;
        // The shard shuffled: the same swaps on its indices as on 0..n-1, so the shuffle is Batches.permutation's.
        int[] order = io.predcode.data.Batches.permutation(shard.length, new SplittableRandom(seed * 0x9E3779B97F4A7C15L + epoch * 0x632BE59BD9B4E019L + p));
        int[] out = new int[shard.length];
        for (int i = 0; i < out.length; i++) out[i] = shard[order[i]];
        return out;
    }

    /** Shard p's local batch at this step of this epoch: indices into the training set. */
    public int[] localBatch(int p, int epoch, int step) { return localBatch(epochOrder(p, epoch), step); }

    /** The local batch at this step from a shard's {@link #epochOrder}. */
    public int[] localBatch(int[] epochOrder, int step) { return java.util.Arrays.copyOfRange(epochOrder, step * localBatch, (step + 1) * localBatch); }

    /** The global batch at this step: the shards' local batches in shard order. */
    public int[] globalBatch(int epoch, int step) {
        int[] g = new int[partitions * localBatch];
        for (int p = 0; p < partitions; p++) System.arraycopy(localBatch(p, epoch, step), 0, g, p * localBatch, localBatch);
        return g;
    }
}
