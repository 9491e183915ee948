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
        Broadcast<float[]> parameters = sc.broadcast(ShardWorker.flatten(model.parameterValues()));
        RunSpec s = spec;
        long global = steps;
        List<Timed> results;
        try {
            results = sc.parallelize(partitions, partitions.size()).map(p -> {
                if (global == s.failOnceAtStep() && p == 0 && TaskContext.get() != null && TaskContext.get().attemptNumber() == 0)
                    throw new IllegalStateException("injected failure (RunSpec.failOnceAtStep) at step " + global);
                float[] values = parameters.value(); // fetching the broadcast is Spark's part of the step, not the worker's
                long start = System.nanoTime();
                Contribution c = ShardWorker.of(s, p).step(values, epoch, step);
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
        double loss = sum.lossSum() / sum.samples();
        if (!Double.isFinite(loss))
            throw new io.predcode.core.pc.DivergenceException(steps + 1, "training diverged at step " + (steps + 1) + ": loss is " + loss + "; parameters are as after step " + steps);
        int at = 0;
        for (Parameter p : model.parameters().values()) {
            model.backend().upload(sum.updates(), at, p.grad(), 0, (int) p.size());
            at += (int) p.size();
        }
        optimizer.step();
        steps++;
        return new StepResult((float) loss, sum.correct(), sum.samples(), (System.nanoTime() - t0) / 1e6, compute);
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
