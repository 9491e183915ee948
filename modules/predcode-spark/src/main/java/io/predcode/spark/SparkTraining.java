package io.predcode.spark;

import io.predcode.core.nn.Model;
import io.predcode.core.optim.Optimizer;
import io.predcode.core.pc.Algorithm;
import org.apache.spark.BarrierTaskContext;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;

import java.util.List;
import java.util.stream.IntStream;

/**
 * Synchronous data-parallel training on Spark, exactly single-process training on the same global
 * batches (see {@link ShardPlan}). {@link #step} is one Spark job: the driver broadcasts the
 * parameters, each partition's task relaxes its shard's local batch on its executor's cached worker
 * and returns its updates, the driver sums them in partition order and applies the optimizer once.
 * {@link #synchronous} runs many such steps in one barrier job, the shards exchanging updates among
 * themselves, with the same result. Summing in partition order, rather than in whatever order tasks
 * finish, keeps a step deterministic, so a retried or moved task changes nothing.
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
     * The ids of the executors removed since this run started: no job prefers them (see {@link #shards}), and Spark
     * waits for slots that never come when one goes during a barrier job, so the job is cancelled (their count moved).
     */
    private final java.util.Set<String> executorsGone = java.util.concurrent.ConcurrentHashMap.newKeySet();
    private final org.apache.spark.scheduler.SparkListener listener = new org.apache.spark.scheduler.SparkListener() {
        @Override public void onExecutorRemoved(org.apache.spark.scheduler.SparkListenerExecutorRemoved removed) { executorsGone.add(removed.executorId()); }
    };

    /**
     * What one step measured on the driver.
     *
     * @param loss         the global batch's mean feedforward loss
     * @param correct      correctly classified samples (0 where the output is not a classifier's)
     * @param samples      samples in the global batch
     * @param jobMillis    the Spark job, from broadcast to the last task's result
     * @param computeMillis the slowest task's own time in its worker (the rest of the job is Spark's overhead)
     * @param energies     a sample's mean energy per layer over the global batch, as {@code InferenceResult.layerEnergies} gives it
     *                     in one process (index 0 is 0); null for backprop, which forms no prediction errors. For averaged local
     *                     steps, the shards' energies at their own parameters
     * @param eta          the inference step size the step relaxed with ({@link #eta()} after it)
     * @param divergence   why the step is a divergence (then it was not applied and its loss is NaN), or null
     * @param alignment    for a monitored step ({@link #step(int, int, boolean)}), its update against backprop's gradient; else null
     */
    public record StepResult(float loss, long correct, long samples, double jobMillis, double computeMillis, double[] energies, float eta, String divergence,
                             io.predcode.core.pc.Alignment alignment) {
        /** A step that diverged: not applied. */
        static StepResult diverged(String why, float eta) { return new StepResult(Float.NaN, 0, 0, 0, 0, null, eta, why, null); }
    }

    private double stepMillis = Double.NaN;

    /**
     * Milliseconds a synchronous step took in the last job that took any, Spark's share of the job included; NaN before
     * one. It says how many steps the next barrier job can take and still end within a bound (a stop waits for a job to end).
     */
    public double stepMillis() { return stepMillis; }

    /** The step size the relaxation takes now: the run's eta, halved each time a guarded relaxation raised the energy ({@link RunSpec#guarded}). */
    private float eta;

    /** The inference step size the next step relaxes with. */
    public float eta() { return eta; }

    /**
     * Continues with a step size an earlier run of this training lowered (a resumed run), as {@code Trainer.resumeEta}.
     *
     * @param lowered the eta to relax with, in (0, the run's eta]
     */
    public void resumeEta(float lowered) {
        if (!(lowered > 0 && lowered <= spec.eta())) throw new IllegalArgumentException("resumed eta must be in (0, " + spec.eta() + "], got " + lowered);
        eta = lowered;
    }

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
        this.eta = spec.eta();
        this.partitions = IntStream.range(0, spec.partitions()).boxed().toList();
        String exchange = sc.getConf().get(EXCHANGE, "blocks");
        if (!exchange.equals("blocks") && !exchange.equals("allgather"))
            throw new IllegalArgumentException("the Spark setting " + EXCHANGE + " must be blocks or allgather, got '" + exchange + "'");
        this.viaBlocks = exchange.equals("blocks");
        sc.sc().addSparkListener(listener);
    }

    /**
     * The Spark setting that chooses how a barrier job's shards exchange their updates: {@code blocks}
     * (the default; {@link BlockExchange}, executor to executor through Spark's block manager) or
     * {@code allgather} ({@link BarrierExchange}, through the driver, with Spark's public APIs only).
     */
    public static final String EXCHANGE = "spark.predcode.exchange";
    private boolean viaBlocks;

    /** Overrides {@link #EXCHANGE} for this run (tests compare the two). */
    SparkTraining exchangeViaBlocks(boolean blocks) {
        viaBlocks = blocks;
        return this;
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
    public StepResult step(int epoch, int step) { return step(epoch, step, false); }

    /**
     * One synchronous step on the global batch {@code step} of {@code epoch}; where {@code monitor}, its update compared
     * with backprop's gradient on the same global batch, block by block, as {@code Trainer.monitorEvery} compares them in
     * one process (each shard computes its share of both; the step costs a backprop pass and twice the bytes).
     *
     * @param epoch   the epoch (0-based)
     * @param step    the step within it (0-based)
     * @param monitor whether to measure the update's alignment with the gradient ({@link StepResult#alignment})
     * @return the loss and timings
     */
    public StepResult step(int epoch, int step, boolean monitor) {
        long t0 = System.nanoTime();
        Job job = stepJob(epoch, step, monitor);
        // A guarded relaxation that raised the global batch's energy: eta halved, from this step on, and the batch relaxed again, as one process does.
        for (int halvings = 0; StableRelaxation.raisedEnergy(spec, job.sum()); halvings++) {
            if (halvings == io.predcode.core.pc.Trainer.MAX_HALVINGS)
                throw io.predcode.core.pc.DivergenceException.at(steps + 1, StableRelaxation.diverges(spec, eta, job.sum()), "parameters are as after step " + steps);
            eta /= 2;
            job = stepJob(epoch, step, monitor);
        }
        Contribution sum = job.sum();
        double loss = sum.lossSums()[0] / sum.samples()[0];
        String reason = !Double.isFinite(loss) ? "loss is " + loss : !ShardWorker.finite(sum.values()) ? ShardWorker.RUNAWAY + " (loss " + loss + ")" : null;
        if (reason != null)
            throw io.predcode.core.pc.DivergenceException.at(steps + 1, reason, "parameters are as after step " + steps);
        io.predcode.core.pc.Alignment alignment = monitor ? io.predcode.core.pc.Alignment.between(model, ShardWorker.unflatten(model, sum.gradient()),
                ShardWorker.unflatten(model, sum.values()), steps + 1) : null;
        ShardWorker.loadGradients(model, sum.values());
        optimizer.step();
        steps++;
        stepMillis = (System.nanoTime() - t0) / 1e6;
        return new StepResult((float) loss, sum.correct()[0], sum.samples()[0], stepMillis, job.computeMillis(), sum.energies(0), eta, null, alignment);
    }

    /** One job that relaxes the global step {@code epoch, step} at the driver's parameters with the current eta (and where {@code monitor}, takes the gradient). */
    private Job stepJob(int epoch, int step, boolean monitor) {
        float now = eta;
        return run((w, values) -> w.step(values, epoch, step, now, monitor), steps);
    }

    /**
     * {@code k} local steps with averaging, for slow networks: from the current parameters each shard
     * takes k steps of its own optimizer (the driver optimizer's settings and current learning
     * rate) on its own batches, and the driver sets the parameters to the shards' average.
     * One job for k steps instead of k jobs. Each sample relaxes as it would in the global batch. Where the run's
     * relaxation is guarded ({@link RunSpec#guarded}), each shard guards its own, as one process guards its batch's, and
     * the next job starts from the smallest eta a shard ended with.
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
        long t0 = System.nanoTime();
        float lr = optimizer.learningRate();
        String settings = optimizer.settings();
        float now = eta;
        Job job = run((w, values) -> w.localSteps(values, settings, epoch, firstStep, k, lr, now), steps);
        Contribution sum = job.sum();
        float[] mean = sum.values();
        for (int i = 0; i < mean.length; i++) mean[i] /= spec.partitions();
        List<StepResult> out = new java.util.ArrayList<>();
        double ms = (System.nanoTime() - t0) / 1e6 / k;
        for (int s = 0; s < k; s++) {
            float etaThen = sum.etas()[s]; // the smallest a shard relaxed with
            if (etaThen < 0)
                throw io.predcode.core.pc.DivergenceException.at(steps + s + 1, StableRelaxation.shardDiverges(spec, -etaThen), "parameters are as after step " + steps);
            double loss = sum.lossSums()[s] / sum.samples()[s];
            if (!Double.isFinite(loss))
                throw io.predcode.core.pc.DivergenceException.at(steps + s + 1, "loss is " + loss, "parameters are as after step " + steps);
            out.add(new StepResult((float) loss, sum.correct()[s], sum.samples()[s], ms, job.computeMillis() / k, sum.energies(s), etaThen, null, null));
        }
        if (!ShardWorker.finite(mean)) {
            String reason = "the shards' averaged parameters are not finite after steps " + (steps + 1) + ".." + (steps + k) + " at finite losses: a relaxation ran off";
            throw new io.predcode.core.pc.DivergenceException(steps + k, reason, "training diverged: " + reason + "; parameters are as after step " + steps);
        }
        model.loadParameters(ShardWorker.unflatten(model, mean), "the shards' average");
        eta = sum.etas()[k - 1];
        steps += k;
        return out;
    }

    /**
     * {@code lrs.length} synchronous steps in one barrier job: exactly {@link #step} that many times
     * (at these learning rates), with one Spark job instead of one per step (a single step runs as
     * {@link #step}). The driver broadcasts
     * the parameters and its optimizer's state once; the shards exchange each step's updates through
     * Spark's block manager and barrier allGather ({@link BlockExchange}, or {@link BarrierExchange}: see
     * {@link #EXCHANGE}) and each applies the driver's optimizer to
     * their sum, so no parameters travel per step; partition 0 returns the parameters and optimizer
     * state at the end. Where a barrier job cannot run or does not finish (fewer task slots than
     * partitions, a failed task, an executor lost: Spark does not retry a barrier result stage), the
     * same steps run again as one job each, from the same start, with the same result; after
     * {@value #BARRIER_TRIES} such failures the run keeps to one job per step.
     *
     * @param epoch     the epoch (0-based)
     * @param firstStep the first step within it
     * @param lrs       the learning rate of each step
     * @return per step taken, the loss and timings (the job's time split evenly). A step that diverged (its loss or summed
     *         updates not finite, or a guarded relaxation still raising the energy after every halving) ends the list, unapplied,
     *         with a NaN loss and its {@link StepResult#divergence}: the parameters are as after the step before it
     */
    public List<StepResult> synchronous(int epoch, int firstStep, float[] lrs) {
        if (lrs.length > 1 && barrierFailures < BARRIER_TRIES) { // one step is cheaper as a plain job than a barrier job with the optimizer's state
            try {
                return barrierJob(epoch, firstStep, lrs);
            } catch (RuntimeException e) {
                barrierFailures++;
                barrierFailure = DataParallelRun.rootMessage(e);
            }
        }
        List<StepResult> out = new java.util.ArrayList<>();
        for (int i = 0; i < lrs.length; i++) {
            optimizer.learningRate(lrs[i]);
            try {
                out.add(step(epoch, firstStep + i));
            } catch (io.predcode.core.pc.DivergenceException d) {
                out.add(StepResult.diverged(d.reason(), eta));
                break;
            }
        }
        return out;
    }

    /** Barrier jobs that may fail before a run keeps to one job per step. */
    static final int BARRIER_TRIES = 3;
    private int barrierFailures;
    private String barrierFailure;

    /** Why the last barrier job failed (its steps ran one job each), or null if none has. */
    public String barrierFailure() { return barrierFailure; }

    /** What a synchronous job starts from: the driver's parameters and its optimizer's settings and state. */
    record Start(float[] parameters, String optimizerSettings, java.util.Map<String, float[]> optimizerState) implements java.io.Serializable {}

    /** A barrier job's end state, the same on every shard, under the job's token. */
    record Held(String token, Start state) {}

    /** What partition 0 returned from the last barrier job that finished every step, which every shard held too; null before one has. */
    private Held held;
    private long heldStarts;

    /** Barrier tasks so far that started from a state their executor held, without fetching the broadcast. */
    long heldStarts() { return heldStarts; }

    private List<StepResult> barrierJob(int epoch, int firstStep, float[] lrs) {
        long t0 = System.nanoTime();
        Start now = new Start(ShardWorker.flatten(model.parameterValues()), optimizer.settings(), optimizer.state());
        // Workers that ended the last barrier job hold its end state; where the driver still holds exactly that state
        // (compared bit for bit, whatever changed it since), they skip fetching the broadcast, which Spark fetches lazily.
        String current = held != null && sameState(now, held.state()) ? held.token() : null, next = java.util.UUID.randomUUID().toString();
        held = null;
        Broadcast<Start> start = sc.broadcast(now);
        int tasks = partitions.size();
        SyncTask job = new SyncTask(start, current, next, spec, epoch, firstStep, lrs, eta, spec.failOnceAtStep() - steps + firstStep, tasks, viaBlocks);
        int lostBefore = executorsGone.size();
        List<ShardWorker.SyncResult> results;
        try {
            // A failed task aborts the job (Spark does not retry a barrier result stage); a lost executor makes it wait for slots, so await cancels it.
            scala.reflect.ClassTag<ShardWorker.SyncResult> tag = scala.reflect.ClassTag$.MODULE$.apply(ShardWorker.SyncResult.class);
            results = await(JavaRDD.fromRDD(shards().rdd().barrier().mapPartitions(job, false, tag), tag).collectAsync(), lostBefore);
        } finally {
            start.destroy();
        }
        ShardWorker.SyncResult first = results.stream().filter(r -> r.partition() == 0).findFirst().orElseThrow();
        model.loadParameters(ShardWorker.unflatten(model, first.parameters()), "partition 0 after a synchronous job");
        optimizer.loadState(first.optimizerState(), "partition 0 after a synchronous job");
        heldStarts += results.stream().filter(ShardWorker.SyncResult::held).count();
        results.forEach(r -> placement.put(r.partition(), r.place()));
        mostWorkers = results.stream().mapToInt(ShardWorker.SyncResult::workersHere).max().orElse(0);
        int n = first.lossSums().length;
        if (first.applied() == n) held = new Held(next, new Start(first.parameters(), now.optimizerSettings(), first.optimizerState()));
        optimizer.learningRate(lrs[n - 1]); // as after the same steps one job each
        steps += first.applied();
        double compute = results.stream().mapToDouble(ShardWorker.SyncResult::computeMillis).max().orElse(0);
        double ms = (System.nanoTime() - t0) / 1e6 / n;
        stepMillis = ms;
        List<StepResult> out = new java.util.ArrayList<>();
        Contribution sums = first.sums();
        eta = first.etas()[n - 1]; // as lowered by the job's guarded relaxations
        for (int i = 0; i < first.applied(); i++)
            out.add(new StepResult((float) (sums.lossSums()[i] / sums.samples()[i]), sums.correct()[i], sums.samples()[i], ms, compute / n, sums.energies(i), first.etas()[i], null, null));
        if (first.divergence() != null) out.add(StepResult.diverged(first.divergence(), eta));
        return out;
    }

    /** Whether two starts hold the same parameters and optimizer state, bit for bit. */
    static boolean sameState(Start a, Start b) {
        if (!java.util.Arrays.equals(a.parameters(), b.parameters()) || !a.optimizerState().keySet().equals(b.optimizerState().keySet())) return false;
        return a.optimizerState().entrySet().stream().allMatch(e -> java.util.Arrays.equals(e.getValue(), b.optimizerState().get(e.getKey())));
    }

    /**
     * A barrier task: its shard's synchronous steps, from the broadcast start unless its worker holds
     * {@code current}'s state already, leaving it holding {@code next}'s. {@code failAt} is the plan's
     * step at which RunSpec.failOnceAtStep's injected failure falls (its first attempt, partition 0).
     */
    record SyncTask(Broadcast<Start> start, String current, String next, RunSpec spec, int epoch, int firstStep, float[] lrs, float eta, long failAt, int tasks,
                    boolean viaBlocks)
            implements scala.Function1<scala.collection.Iterator<Integer>, scala.collection.Iterator<ShardWorker.SyncResult>>, java.io.Serializable {
        @Override public scala.collection.Iterator<ShardWorker.SyncResult> apply(scala.collection.Iterator<Integer> partition) {
            int p = partition.next();
            BarrierTaskContext ctx = BarrierTaskContext.get();
            boolean inject = spec.failOnceAtStep() >= 0 && p == 0 && ctx.stageAttemptNumber() == 0 && ctx.attemptNumber() == 0;
            ShardWorker.Exchange exchange = viaBlocks ? new BlockExchange(ctx, tasks) : new BarrierExchange(ctx, tasks);
            ShardWorker.SyncResult r = ShardWorker.of(spec, p).synchronousSteps(start::value, current, next, exchange, epoch, firstStep, lrs, eta, inject ? failAt : -1);
            exchange.finish();
            return scala.jdk.javaapi.CollectionConverters.asScala(List.of(r).iterator());
        }
    }

    /** The job's results; cancels the job if an executor is lost meanwhile. */
    private <T> T await(org.apache.spark.api.java.JavaFutureAction<T> job, int lostBefore) {
        try {
            while (true) {
                try {
                    return job.get(50, java.util.concurrent.TimeUnit.MILLISECONDS);
                } catch (java.util.concurrent.TimeoutException e) {
                    if (executorsGone.size() != lostBefore) {
                        job.cancel(true);
                        throw new IllegalStateException("an executor was lost during a barrier job");
                    }
                }
            }
        } catch (InterruptedException e) {
            job.cancel(true);
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted during a barrier job", e);
        } catch (java.util.concurrent.ExecutionException e) {
            throw new IllegalStateException(DataParallelRun.rootMessage(e), e);
        }
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
            results = shards().map(p -> {
                if (global == s.failOnceAtStep() && p == 0 && TaskContext.get() != null && TaskContext.get().attemptNumber() == 0)
                    throw new IllegalStateException("injected failure (RunSpec.failOnceAtStep) at step " + global);
                float[] values = parameters.value(); // fetching the broadcast is Spark's part of the step, not the worker's
                long start = System.nanoTime();
                Contribution c = work.apply(ShardWorker.of(s, p), values);
                return new Timed(p, c, (System.nanoTime() - start) / 1e6, here(), ShardWorker.workersOf(s.runId()));
            }).collect();
        } finally {
            parameters.destroy();
        }
        results.forEach(r -> placement.put(r.partition(), r.place()));
        mostWorkers = results.stream().mapToInt(Timed::workersHere).max().orElse(0);
        Contribution sum = null;
        double compute = 0;
        for (Timed t : results.stream().sorted(java.util.Comparator.comparingInt(Timed::partition)).toList()) {
            sum = sum == null ? t.contribution() : sum.plus(t.contribution());
            compute = Math.max(compute, t.millis());
        }
        return new Job(sum, compute);
    }

    /** A partition's contribution, how long its worker took, where it ran and how many of the run's workers that executor holds. */
    record Timed(int partition, Contribution contribution, double millis, String place, int workersHere) implements java.io.Serializable {}

    /**
     * Where each partition's task last ran (an executor, as {@link #here} names it). Spark places a
     * task on any free executor; each partition's worker holds its shard of the data set, its model
     * and workspaces, so a partition that moves builds another worker on its new executor, and
     * in time every executor would hold every shard. Jobs therefore ask for each partition's last
     * executor as its preferred location, which Spark's scheduler honours while that executor lives.
     * A partition whose executor is gone prefers none: Spark would otherwise hold its task for
     * spark.locality.wait (3 s by default) before placing it elsewhere, at every job.
     */
    private final java.util.Map<Integer, String> placement = new java.util.HashMap<>();
    private int mostWorkers;

    /** The most of this run's workers one executor held at the last job's end (1 while every partition stays where it ran). */
    int mostWorkersInAnExecutor() { return mostWorkers; }

    /** One element per partition, each preferring the executor it last ran on (none before the first job). */
    private JavaRDD<Integer> shards() {
        if (placement.size() < partitions.size()) return sc.parallelize(partitions, partitions.size());
        List<scala.Tuple2<Integer, scala.collection.immutable.Seq<String>>> prefs = partitions.stream()
                .map(p -> new scala.Tuple2<Integer, scala.collection.immutable.Seq<String>>(p,
                        scala.jdk.javaapi.CollectionConverters.asScala(preferred(placement.get(p), executorsGone)).toList())).toList();
        scala.reflect.ClassTag<Integer> tag = scala.reflect.ClassTag$.MODULE$.apply(Integer.class);
        return JavaRDD.fromRDD(sc.sc().makeRDD(scala.jdk.javaapi.CollectionConverters.asScala(prefs).toList(), tag), tag);
    }

    /**
     * Where a partition last ran ({@link #here}'s name) as its preferred location: none where that executor is gone.
     * The executor's id is what follows the host, read as Spark's scheduler reads it (after the first '_' past "executor_").
     */
    static List<String> preferred(String place, java.util.Set<String> executorsGone) {
        String hostAndId = place.startsWith("executor_") ? place.substring("executor_".length()) : place;
        return executorsGone.contains(hostAndId.substring(hostAndId.indexOf('_') + 1)) ? List.of() : List.of(place);
    }

    /** This task's executor as Spark's scheduler names a preferred location: executor_HOST_ID ("unknown" outside Spark). */
    static String here() {
        org.apache.spark.SparkEnv env = org.apache.spark.SparkEnv.get();
        return env == null ? "unknown" : "executor_" + env.blockManager().blockManagerId().host() + "_" + env.executorId();
    }

    /** Asks every executor to drop this run's workers (best effort). */
    @Override public void close() {
        sc.sc().removeSparkListener(listener);
        String run = spec.runId();
        try {
            shards().map(p -> ShardWorker.release(run)).collect();
        } catch (RuntimeException e) {
            // The context may be stopping; executors drop their workers with their JVM.
        }
    }
}
