package io.predcode.spark;

import java.io.Serializable;

/**
 * Everything an executor needs to build its shard worker, shipped with every task (a few hundred
 * bytes): the model, where to read the data, the algorithm and how the global batch is split.
 *
 * @param runId           keys the executors' cached workers; one per training run
 * @param specJson        the model spec as JSON
 * @param inputShape      the model's per-sample input shape
 * @param data            the data set, as {@code --data} names it; every executor must be able to read it
 * @param validation      the fraction held out from the training set (the same split as single-process training)
 * @param seed            seeds the split and the shards' shuffles
 * @param shuffle         whether each shard is shuffled every epoch
 * @param algorithm       the algorithm's id
 * @param eta             its step size
 * @param n               its sweeps
 * @param loss            the loss's id
 * @param energy          PC's energy id
 * @param beliefOptimizer PC's belief optimizer, as {@code BeliefOptimizer.parse} reads it
 * @param nudging         PC's nudging, as {@code Nudging.parse} reads it
 * @param globalBatch     samples per step over all partitions
 * @param partitions      the shards, one task each per step
 * @param backend         the executors' backend name
 * @param threads         the executors' backend threads per task (0: the backend's default)
 * @param failOnceAtStep  for testing recovery: the first attempt of partition 0's task at this global step throws (-1: never)
 * @param inputScale      the data's values are mapped by x * inputScale + inputShift (1 and 0: as read)
 * @param inputShift      see inputScale
 * @param augment         the training images' augmentation, as {@code Augmentation.parse} reads it (black is inputShift)
 * @param stableRelaxation whether a relaxation {@code Trainer.guards} is guarded as {@code Trainer.stableRelaxation} guards it:
 *                        eta halved, from that step on, while the global batch's relaxation raises its energy
 * @param threadInvariant  whether each executor's backend splits its work by the sizes alone
 *                        ({@code BackendOptions.threadInvariant}), so that its shard's results do not depend on its threads
 * @param trainDigest     the training set's {@code Dataset.digest} as the driver read it (mapped by inputScale and
 *                        inputShift): an executor whose files hold another refuses to train; null: not checked
 */
public record RunSpec(String runId, String specJson, int[] inputShape, String data, double validation, long seed, boolean shuffle,
                      String algorithm, float eta, int n, String loss, String energy, String beliefOptimizer, String nudging,
                      int globalBatch, int partitions, String backend, int threads, long failOnceAtStep, float inputScale, float inputShift, String augment,
                      boolean stableRelaxation, boolean threadInvariant, String trainDigest) implements Serializable {
    /** Checks what the driver can check before any executor works. */
    public RunSpec {
        if (partitions < 1) throw new IllegalArgumentException("--spark-partitions must be >= 1, got " + partitions);
        if (globalBatch < partitions || globalBatch % partitions != 0)
            throw new IllegalArgumentException("--batch-size " + globalBatch + " must be a multiple of --spark-partitions " + partitions + " (each shard takes an equal part)");
    }

    /** A run whose executors do not check the driver's training set ({@code trainDigest} null). */
    public RunSpec(String runId, String specJson, int[] inputShape, String data, double validation, long seed, boolean shuffle,
                   String algorithm, float eta, int n, String loss, String energy, String beliefOptimizer, String nudging,
                   int globalBatch, int partitions, String backend, int threads, long failOnceAtStep, float inputScale, float inputShift, String augment,
                   boolean stableRelaxation, boolean threadInvariant) {
        this(runId, specJson, inputShape, data, validation, seed, shuffle, algorithm, eta, n, loss, energy, beliefOptimizer, nudging, globalBatch, partitions,
                backend, threads, failOnceAtStep, inputScale, inputShift, augment, stableRelaxation, threadInvariant, null);
    }

    /** A run whose executors split their work by the thread count (not {@code threadInvariant}). */
    public RunSpec(String runId, String specJson, int[] inputShape, String data, double validation, long seed, boolean shuffle,
                   String algorithm, float eta, int n, String loss, String energy, String beliefOptimizer, String nudging,
                   int globalBatch, int partitions, String backend, int threads, long failOnceAtStep, float inputScale, float inputShift, String augment,
                   boolean stableRelaxation) {
        this(runId, specJson, inputShape, data, validation, seed, shuffle, algorithm, eta, n, loss, energy, beliefOptimizer, nudging, globalBatch, partitions,
                backend, threads, failOnceAtStep, inputScale, inputShift, augment, stableRelaxation, false);
    }

    /** A run without {@code stableRelaxation}: the relaxation takes the fixed eta, as Torch2PC's does. */
    public RunSpec(String runId, String specJson, int[] inputShape, String data, double validation, long seed, boolean shuffle,
                   String algorithm, float eta, int n, String loss, String energy, String beliefOptimizer, String nudging,
                   int globalBatch, int partitions, String backend, int threads, long failOnceAtStep, float inputScale, float inputShift, String augment) {
        this(runId, specJson, inputShape, data, validation, seed, shuffle, algorithm, eta, n, loss, energy, beliefOptimizer, nudging, globalBatch, partitions,
                backend, threads, failOnceAtStep, inputScale, inputShift, augment, false, false);
    }

    /** Whether the relaxation is guarded: {@code stableRelaxation}, for an algorithm and settings {@code Trainer.guards}. */
    public boolean guarded() {
        return stableRelaxation && io.predcode.core.pc.Trainer.guards(io.predcode.core.pc.Algorithm.parse(algorithm), io.predcode.core.pc.Energy.parse(energy),
                io.predcode.core.pc.BeliefOptimizer.parse(beliefOptimizer), io.predcode.core.pc.Nudging.parse(nudging));
    }

    /** Samples each partition takes per step. */
    public int localBatch() { return globalBatch / partitions; }
}
