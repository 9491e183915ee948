package io.predcode.spark;

import io.predcode.core.nn.Model;
import io.predcode.core.nn.Parameter;
import io.predcode.core.optim.Optimizer;
import io.predcode.core.pc.Algorithm;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;

import java.util.List;
import java.util.stream.IntStream;

/**
 * Synchronous data-parallel training on Spark, exactly single-process training on the same global
 * batches (see {@link ShardPlan}). Each step is one Spark job: the driver broadcasts the parameters,
 * each partition's task relaxes its shard's local batch on its executor's cached worker and returns
 * its updates, the driver sums them in partition order and applies the optimizer once. Summing in
 * partition order on the driver, rather than in whatever order tasks finish, keeps a step
 * deterministic, so a retried or moved task changes nothing.
 */
public final class SparkTraining implements AutoCloseable {
    private final JavaSparkContext sc;
    private final RunSpec spec;
    private final Model model;
    private final Optimizer optimizer;
    private final ShardPlan plan;
    private final List<Integer> partitions;
    private long steps;

    /**
     * What one step measured on the driver.
     *
     * @param loss         the global batch's mean feedforward loss
     * @param correct      correctly classified samples (0 for mse)
     * @param samples      samples in the global batch
     * @param jobMillis    the Spark job, from broadcast to the last task's result
     * @param computeMillis the slowest task's own time in its worker (the rest of the job is Spark's overhead)
     */
    public record StepResult(float loss, long correct, long samples, double jobMillis, double computeMillis) {}

    /**
     * A run on {@code sc}: {@code model} and {@code optimizer} live on the driver (any backend) and
     * hold the parameters; the executors build their own from {@code spec}.
     *
     * @param sc        the Spark context
     * @param spec      the run
     * @param trainSize the training set's size after the validation split (the driver loaded it too)
     * @param model     the driver's model
     * @param optimizer its optimizer
     */
    public SparkTraining(JavaSparkContext sc, RunSpec spec, int trainSize, Model model, Optimizer optimizer) {
        if (Algorithm.parse(spec.algorithm()) == Algorithm.IPC)
            throw new IllegalArgumentException("--algorithm ipc updates the weights at every inference step: data-parallel training would need a sum per inference step; use pc");
        this.sc = sc;
        this.spec = spec;
        this.model = model;
        this.optimizer = optimizer;
        this.plan = ShardPlan.of(spec, trainSize);
        this.partitions = IntStream.range(0, spec.partitions()).boxed().toList();
    }

    /** The plan: which samples each step takes. */
    public ShardPlan plan() { return plan; }

    /** Steps taken. */
    public long steps() { return steps; }

    /**
     * One synchronous step on the global batch {@code step} of {@code epoch}.
     *
     * @param epoch the epoch (0-based)
     * @param step  the step within it (0-based)
     * @return the loss and timings
     */
    public StepResult step(int epoch, int step) {
        long t0 = System.nanoTime();
        Job job = run((w, values) -> w.step(values, epoch, step), steps);
        Contribution sum = job.sum();
        double loss = sum.lossSums()[0] / sum.samples()[0];
        if (!Double.isFinite(loss))
            throw new io.predcode.core.pc.DivergenceException(steps + 1, "training diverged at step " + (steps + 1) + ": loss is " + loss + "; parameters are as after step " + steps);
        int at = 0;
        for (Parameter p : model.parameters().values()) {
            model.backend().upload(sum.values(), at, p.grad(), 0, (int) p.size());
            at += (int) p.size();
        }
        optimizer.step();
        steps++;
        return new StepResult((float) loss, sum.correct()[0], sum.samples()[0], (System.nanoTime() - t0) / 1e6, job.computeMillis());
    }

    /**
     * {@code k} local steps with averaging, for slow networks: from the current parameters each shard
     * takes k steps of its own optimizer (RunSpec.localOptimizer, at the driver optimizer's current
     * learning rate) on its own batches, and the driver sets the parameters to the shards' average.
     * One job for k steps instead of k jobs. Each sample relaxes as it would in the global batch.
     * <b>Not exact</b>: it is not single-process training on the global batches (for k = 1 with plain
     * SGD it is, to rounding; with momentum or Adam, each shard's
     * optimizer state is its own and lives on its executor, is not checkpointed, and starts afresh on
     * an executor that replaced a lost one).
     *
     * @param epoch     the epoch (0-based)
     * @param firstStep the first of the k steps within it
     * @param k         local steps
     * @return per step, the loss over the shards and timings (the job's time split evenly)
     */
    public List<StepResult> averaged(int epoch, int firstStep, int k) {
        if (spec.localOptimizer() == null) throw new IllegalStateException("averaging needs RunSpec.localOptimizer");
        long t0 = System.nanoTime();
        float lr = optimizer.learningRate();
        Job job = run((w, values) -> w.localSteps(values, epoch, firstStep, k, lr), steps);
        Contribution sum = job.sum();
        float[] mean = sum.values();
        for (int i = 0; i < mean.length; i++) mean[i] /= spec.partitions();
        List<StepResult> out = new java.util.ArrayList<>();
        double ms = (System.nanoTime() - t0) / 1e6 / k;
        for (int s = 0; s < k; s++) {
            double loss = sum.lossSums()[s] / sum.samples()[s];
            if (!Double.isFinite(loss))
                throw new io.predcode.core.pc.DivergenceException(steps + s + 1, "training diverged at step " + (steps + s + 1) + ": loss is " + loss + "; parameters are as after step " + steps);
            out.add(new StepResult((float) loss, sum.correct()[s], sum.samples()[s], ms, job.computeMillis() / k));
        }
        model.loadParameters(ShardWorker.unflatten(model, mean), "the shards' average");
        steps += k;
        return out;
    }

    /** What a task does with its worker and the broadcast parameters. */
    interface Work extends java.io.Serializable {
        Contribution apply(ShardWorker worker, float[] parameters);
    }

    /** A job's contributions summed in partition order, and its slowest task's own time. */
    record Job(Contribution sum, double computeMillis) {}

    /** One Spark job: the parameters broadcast, {@code work} on every partition, the results summed in partition order. */
    private Job run(Work work, long global) {
        Broadcast<float[]> parameters = sc.broadcast(ShardWorker.flatten(model.parameterValues()));
        RunSpec s = spec;
        List<Timed> results;
        try {
            results = sc.parallelize(partitions, partitions.size()).map(p -> {
                if (global == s.failOnceAtStep() && p == 0 && TaskContext.get() != null && TaskContext.get().attemptNumber() == 0)
                    throw new IllegalStateException("injected failure (RunSpec.failOnceAtStep) at step " + global);
                float[] values = parameters.value(); // fetching the broadcast is Spark's part of the step, not the worker's
                long start = System.nanoTime();
                Contribution c = work.apply(ShardWorker.of(s, p), values);
                return new Timed(p, c, (System.nanoTime() - start) / 1e6);
            }).collect();
        } finally {
            parameters.destroy();
        }
        Contribution sum = null;
        double compute = 0;
        for (Timed t : results.stream().sorted(java.util.Comparator.comparingInt(Timed::partition)).toList()) {
            sum = sum == null ? t.contribution() : sum.plus(t.contribution());
            compute = Math.max(compute, t.millis());
        }
        return new Job(sum, compute);
    }

    /** A partition's contribution and how long its worker took. */
    record Timed(int partition, Contribution contribution, double millis) implements java.io.Serializable {}

    /** Asks every executor to drop this run's workers (best effort). */
    @Override public void close() {
        String run = spec.runId();
        try {
            sc.parallelize(partitions, partitions.size()).map(p -> ShardWorker.release(run)).collect();
        } catch (RuntimeException e) {
            // The context may be stopping; executors drop their workers with their JVM.
        }
    }
}
