package io.predcode.spark;

import io.predcode.core.nn.Loss;
import io.predcode.core.nn.Model;
import io.predcode.core.nn.ModelSpec;
import io.predcode.core.nn.Parameter;
import io.predcode.core.optim.Optimizer;
import io.predcode.core.pc.Algorithm;
import io.predcode.core.pc.BeliefOptimizer;
import io.predcode.core.pc.Energy;
import io.predcode.core.pc.InferenceResult;
import io.predcode.core.pc.Nudging;
import io.predcode.core.pc.PcEngine;
import io.predcode.core.pc.Trainer;
import io.predcode.data.Augmentation;
import io.predcode.data.DataSources;
import io.predcode.data.DataSplit;
import io.predcode.data.Dataset;
import io.predcode.spi.Backend;
import io.predcode.spi.BackendOptions;
import io.predcode.spi.Backends;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The executor side: one worker per (run, partition) per executor JVM, built at its first task and
 * kept for the run. It holds its shard of the training set (read once from the data path, never
 * shipped by Spark), a backend, the model and an engine scaled to the global batch. A step loads the
 * parameters the driver broadcast, relaxes the shard's local batch and returns its updates. A task
 * that runs again (a retry, or on another executor after one was lost) computes the same numbers:
 * the step depends only on the parameters and the plan.
 */
final class ShardWorker implements AutoCloseable {
    private static final ConcurrentHashMap<String, ShardWorker> WORKERS = new ConcurrentHashMap<>();
    /** Data sets read in this JVM, by name: several shards on one executor read the files once. */
    private static final ConcurrentHashMap<String, DataSplit> DATA = new ConcurrentHashMap<>();
    /**
     * Per run, the state a barrier job that finished in this JVM ended at, under its token: every
     * shard ends a job with the same state, so a shard that moved to this executor for the next job
     * (its own executor was lost, or busy past spark.locality.wait) starts from it without the broadcast.
     */
    private static final ConcurrentHashMap<String, SparkTraining.Held> ENDED = new ConcurrentHashMap<>();

    private final RunSpec spec;
    private final int partition;
    private final Dataset train;
    private final Augmentation augmentation;
    private final ShardPlan plan;
    private final Backend backend;
    private final Model model;
    private final PcEngine engine;
    private final Algorithm algorithm;
    /**
     * The driver's optimizer's twin, built at the first job that needs one: local steps keep its
     * state here between jobs; synchronous jobs start from the driver's state (or the same state, held here).
     */
    private Optimizer optimizer;
    /**
     * The token of the barrier job whose end state the model and optimizer hold, or null: set as a
     * barrier job finishes all its steps, cleared by anything else that changes them.
     */
    private String heldToken;

    private ShardWorker(RunSpec spec, int partition) {
        this.spec = spec;
        this.partition = partition;
        DataSplit data = DATA.computeIfAbsent(spec.data(), name -> {
            try {
                return DataSources.load(name);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
        Dataset read = data.train().affine(spec.inputScale(), spec.inputShift());
        // Each executor reads --data itself: a Worker with another copy of the files (stale, regenerated) would train on it.
        String digest = spec.trainDigest() == null ? null : read.digest();
        if (digest != null && !digest.equals(spec.trainDigest()))
            throw new IllegalArgumentException("--data " + spec.data() + " on " + executor() + " holds another training set than the driver read (digest "
                    + digest + ", the driver's " + spec.trainDigest() + "): every executor must read the same files");
        this.train = read.holdOut(spec.validation(), spec.seed())[0];
        this.augmentation = Augmentation.parse(spec.augment(), spec.inputShift());
        augmentation.check(train);
        this.plan = ShardPlan.of(spec, train.size());
        this.algorithm = Algorithm.parse(spec.algorithm());
        Loss loss = Loss.parse(spec.loss());
        this.backend = Backends.open(spec.backend(), new BackendOptions(spec.threads(), 0, spec.threadInvariant()));
        try {
            this.model = Model.create(ModelSpec.parse(spec.specJson(), "the driver's model"), spec.inputShape(), backend, 0);
            this.engine = new PcEngine(model, loss).globalBatch(spec.globalBatch()).energy(Energy.parse(spec.energy()))
                    .beliefOptimizer(BeliefOptimizer.parse(spec.beliefOptimizer())).nudging(Nudging.parse(spec.nudging()));
        } catch (RuntimeException e) {
            backend.close();
            throw e;
        }
    }

    /** This executor, as Spark names it ("executor 1 at HOST"), for a line about it; asks no name server. */
    private static String executor() {
        try {
            org.apache.spark.SparkEnv env = org.apache.spark.SparkEnv.get();
            return "executor " + env.executorId() + " at " + env.blockManager().blockManagerId().host();
        } catch (RuntimeException e) { // outside a Spark task (a test's own worker)
            return "executor outside Spark";
        }
    }

    /** This run's workers in this JVM: one per executor while Spark keeps each partition where it ran ({@link SparkTraining} asks it to). */
    static int workersOf(String runId) {
        return (int) WORKERS.keySet().stream().filter(k -> k.startsWith(runId + "/")).count();
    }

    /** This executor's worker for the run's partition, built on first use. */
    static ShardWorker of(RunSpec spec, int partition) {
        return WORKERS.computeIfAbsent(spec.runId() + "/" + partition, k -> new ShardWorker(spec, partition));
    }

    /** Drops this executor's workers of a run (best effort: an executor that was lost has none). */
    static int release(String runId) {
        ENDED.remove(runId);
        int n = 0;
        for (String k : WORKERS.keySet())
            if (k.startsWith(runId + "/")) {
                ShardWorker w = WORKERS.remove(k);
                if (w != null) { w.close(); n++; }
            }
        return n;
    }

    /**
     * The shard's updates for the global step {@code epoch, step}, at these parameters, relaxed with step size {@code eta};
     * where {@code monitor}, backprop's gradient on the same batch too (its share of the global batch's).
     */
    synchronized Contribution step(float[] parameters, int epoch, int step, float eta, boolean monitor) {
        heldToken = null;
        model.loadParameters(unflatten(model, parameters), "the driver's broadcast");
        return contribution(epoch, step, eta, monitor);
    }

    /** The shard's updates, loss, correct count, samples and energies for the global step {@code epoch, step}, at the model's parameters now. */
    private Contribution contribution(int epoch, int step, float eta) { return contribution(epoch, step, eta, false); }

    /** As {@link #contribution(int, int, float)}; where {@code monitor}, first backprop's gradient on the batch, as the monitor in one process takes it. */
    private Contribution contribution(int epoch, int step, float eta, boolean monitor) {
        Dataset batch = batch(epoch, step);
        float[] gradient = new float[0];
        if (monitor) {
            updates(batch, Algorithm.BACKPROP, eta);
            gradient = flatten(model.gradientValues());
        }
        InferenceResult r = updates(batch, algorithm, eta);
        double[] energies = new double[energyLayers()];
        addEnergies(r, batch.size(), energies, 0);
        return new Contribution(flatten(model.gradientValues()), new double[]{(double) r.loss() * batch.size()}, new long[]{correct(r)}, new long[]{batch.size()},
                energies, gradient, new float[0]);
    }

    /** Layers a step reports energies for: every layer, for an algorithm that forms prediction errors (all but backprop). */
    private int energyLayers() { return algorithm.hasErrors() ? model.depth() : 0; }

    /**
     * Puts layers 1..L's mean energy per sample times the samples into {@code sums} from {@code at}: summed over shards
     * and divided by the global batch's samples on the driver, the global batch's mean, as one process reports it.
     */
    private void addEnergies(InferenceResult r, int samples, double[] sums, int at) {
        if (energyLayers() == 0) return;
        double[] e = r.layerEnergies();
        for (int l = 1; l < e.length; l++) sums[at + l - 1] = e[l] * samples;
    }

    /**
     * Local steps: from the driver's parameters, {@code k} steps at learning rate {@code lr} of this shard's own
     * optimizer on its own batches; returns the parameters after them. Each sample relaxes exactly as
     * in the global batch (the engine stays scaled to it), and the shard's share of the update is
     * taken P times, its own batch's mean. The optimizer's state stays with this worker between jobs.
     * Where the run's relaxation is guarded ({@link RunSpec#guarded}), a step whose relaxation raised this shard's
     * energy halves the shard's eta, from that step on, and relaxes its batch again, as one process does with its
     * batch; one that raised it at every halving ends the shard's steps, its eta returned negative.
     */
    synchronized Contribution localSteps(float[] parameters, String optimizerSettings, int epoch, int firstStep, int k, float lr, float eta) {
        heldToken = null;
        model.loadParameters(unflatten(model, parameters), "the driver's broadcast");
        Optimizer local = optimizer(optimizerSettings);
        local.learningRate(lr);
        double[] loss = new double[k], energies = new double[k * energyLayers()];
        long[] correct = new long[k], samples = new long[k];
        float[] etas = new float[k];
        for (int s = 0; s < k; s++) {
            Dataset batch = batch(epoch, firstStep + s);
            InferenceResult r = updates(batch, algorithm, eta);
            for (int halvings = 0; eta > 0 && StableRelaxation.raisedEnergy(spec, r, batch.size()); halvings++)
                if (halvings == Trainer.MAX_HALVINGS) eta = -eta; // raised at every eta: the driver reports the divergence
                else r = updates(batch, algorithm, eta /= 2);
            etas[s] = eta;
            if (eta < 0) break; // unapplied, and the steps after it not taken
            addEnergies(r, batch.size(), energies, s * energyLayers());
            for (io.predcode.core.nn.Parameter p : model.parameters().values()) backend.axpby(0f, p.grad(), spec.partitions(), p.grad());
            local.step();
            loss[s] = (double) r.loss() * batch.size();
            correct[s] = correct(r);
            samples[s] = batch.size();
        }
        return new Contribution(flatten(model.parameterValues()), loss, correct, samples, energies, new float[0], etas);
    }

    /** The step's correct count, as the Trainer's (counted on the device); 0 where the output is not a classifier's. */
    private static long correct(InferenceResult r) { return Math.max(0, r.correct()); }

    /** The shard's order for {@link #orderEpoch} (its shuffle is the same for every step of an epoch). */
    private int[] order;
    private int orderEpoch = -1;

    /** The shard's local batch at this step of this epoch, augmented as one process augments these samples. */
    private Dataset batch(int epoch, int step) {
        if (epoch != orderEpoch) {
            order = plan.epochOrder(partition, epoch);
            orderEpoch = epoch;
        }
        return augmentation.subset(train, plan.localBatch(order, step), spec.seed(), epoch);
    }

    /** A batch through the engine by {@code algorithm}, relaxed with step size {@code eta}: the updates land in the parameters' grads. */
    private InferenceResult updates(Dataset batch, Algorithm algorithm, float eta) {
        float[] y = engine.loss() == Loss.CROSS_ENTROPY ? batch.labels() : batch.oneHot(0, batch.size());
        return engine.updates(batch.images(), y, batch.size(), algorithm, eta, spec.n());
    }

    /**
     * Synchronous steps in one barrier job: from the driver's parameters and optimizer state, each
     * step relaxes this shard's batch, exchanges its updates with every other shard
     * ({@code exchange}, all of them, in partition order), and applies the driver's optimizer to
     * their sum, as the driver would. Every shard sums the same contributions in the same order and
     * runs the same optimizer, so all hold the same parameters after every step, and they are the
     * driver's per-step result. A step whose summed loss or updates are not finite is returned unapplied, its loss NaN, and
     * the job ends there (every shard sees the same sum, so all stop together). Where the run's relaxation is guarded
     * ({@link RunSpec#guarded}), a step whose global relaxation raised its energy halves eta, from that step on, and every
     * shard relaxes its batch again, as one process does: all see the same sum, so all decide alike. A worker starts
     * from {@code current}'s state without fetching {@code start} where it holds that state (it ran
     * the job that ended there) or another shard in this JVM left it; one that finishes every step
     * holds {@code next}'s.
     *
     * @param eta the step size the first step relaxes with
     * @return per step the summed loss, correct count, samples and energies and the eta it relaxed with, and from partition 0 the parameters and optimizer
     *         state after the applied steps
     */
    synchronized SyncResult synchronousSteps(java.util.function.Supplier<SparkTraining.Start> start, String current, String next, Exchange exchange,
                                             int epoch, int firstStep, float[] lrs, float eta, long failAt) {
        boolean own = current != null && current.equals(heldToken) && optimizer != null;
        SparkTraining.Held ended = ENDED.get(spec.runId());
        SparkTraining.Start local = current != null && ended != null && current.equals(ended.token()) ? ended.state() : null;
        heldToken = null; // until every step is done: a job that stops part-way leaves a state no token names
        if (!own) {
            SparkTraining.Start s = local != null ? local : start.get();
            model.loadParameters(unflatten(model, s.parameters()), local != null ? "the last barrier job's end" : "the driver's broadcast");
            optimizer(s.optimizerSettings()).loadState(s.optimizerState(), local != null ? "the last barrier job's end" : "the driver's optimizer");
        }
        boolean held = own || local != null;
        Optimizer opt = optimizer;
        int k = lrs.length;
        double[] loss = new double[k], energies = new double[k * energyLayers()];
        long[] correct = new long[k], samples = new long[k];
        float[] etas = new float[k];
        double computeMillis = 0;
        int done = 0;
        for (; done < k; done++) {
            if (firstStep + done == failAt) throw new IllegalStateException("injected failure (RunSpec.failOnceAtStep) at step " + failAt);
            long t0 = System.nanoTime();
            Contribution mine = contribution(epoch, firstStep + done, eta);
            computeMillis += (System.nanoTime() - t0) / 1e6;
            Contribution sum = exchange.sum(mine);
            String divergence = null;
            for (int halvings = 0; divergence == null && StableRelaxation.raisedEnergy(spec, sum); halvings++) {
                if (halvings == Trainer.MAX_HALVINGS) divergence = StableRelaxation.diverges(spec, eta, sum);
                else {
                    eta /= 2;
                    t0 = System.nanoTime();
                    mine = contribution(epoch, firstStep + done, eta);
                    computeMillis += (System.nanoTime() - t0) / 1e6;
                    sum = exchange.sum(mine);
                }
            }
            loss[done] = sum.lossSums()[0];
            correct[done] = sum.correct()[0];
            samples[done] = sum.samples()[0];
            etas[done] = eta;
            System.arraycopy(sum.energySums(), 0, energies, done * energyLayers(), energyLayers());
            if (divergence == null && (!Double.isFinite(loss[done]) || !finite(sum.values()))) // a relaxation that ran off: a finite loss, updates not
                divergence = Double.isFinite(loss[done]) ? RUNAWAY : "loss is " + loss[done] / samples[done];
            if (divergence != null) {
                loss[done] = Double.NaN;
                return result(done, loss, correct, samples, energies, etas, divergence, computeMillis, opt, held, null);
            }
            t0 = System.nanoTime();
            loadGradients(model, sum.values());
            opt.learningRate(lrs[done]);
            opt.step();
            computeMillis += (System.nanoTime() - t0) / 1e6;
        }
        heldToken = next;
        return result(done, loss, correct, samples, energies, etas, null, computeMillis, opt, held, next);
    }

    /** Why a step whose summed loss is finite and summed updates are not is a divergence. */
    static final String RUNAWAY = "the summed updates are not finite at a finite loss: a relaxation ran off";

    /** The job's result; {@code next}, where every step was done, names the end state, which the first shard in this JVM to get here leaves for the others. */
    private SyncResult result(int applied, double[] loss, long[] correct, long[] samples, double[] energies, float[] etas, String divergence, double computeMillis,
                              Optimizer opt, boolean held, String next) {
        int n = applied + (divergence != null ? 1 : 0);
        SparkTraining.Held ended = ENDED.get(spec.runId());
        boolean first = partition == 0, leave = next != null && (ended == null || !next.equals(ended.token()));
        float[] parameters = first || leave ? flatten(model.parameterValues()) : null;
        Map<String, float[]> state = first || leave ? opt.state() : null;
        if (leave) ENDED.put(spec.runId(), new SparkTraining.Held(next, new SparkTraining.Start(parameters, opt.settings(), state)));
        return new SyncResult(partition, applied, Arrays.copyOf(loss, n), Arrays.copyOf(correct, n), Arrays.copyOf(samples, n), Arrays.copyOf(energies, n * energyLayers()), Arrays.copyOf(etas, n), divergence, computeMillis,
                first ? parameters : null, first ? state : null, held, SparkTraining.here(), workersOf(spec.runId()));
    }

    /**
     * What a shard returns from a synchronous job.
     *
     * @param partition      the shard
     * @param applied        steps applied (one fewer than the sums when the last one's loss or updates are not finite: its loss is NaN)
     * @param lossSums       per step, the summed loss times samples
     * @param correct        per step, the summed correct count
     * @param samples        per step, the samples
     * @param energySums     per step, the summed energies ({@link Contribution#energySums})
     * @param etas           per step, the eta it relaxed with (lowered where the relaxation is guarded)
     * @param divergence     why the last step is a divergence (its loss is then NaN), or null
     * @param computeMillis  this shard's own time (relaxation and optimizer), without the exchanges
     * @param parameters     partition 0: the parameters after the applied steps (else null)
     * @param optimizerState partition 0: the optimizer's state after them (else null)
     * @param held           whether the worker started from a state this JVM held (its own or another shard's), not the broadcast
     * @param place          the executor it ran on, as a preferred location ({@link SparkTraining#here})
     * @param workersHere    this run's workers in that executor's JVM
     */
    record SyncResult(int partition, int applied, double[] lossSums, long[] correct, long[] samples, double[] energySums, float[] etas, String divergence,
                      double computeMillis, float[] parameters,
                      Map<String, float[]> optimizerState, boolean held, String place, int workersHere) implements java.io.Serializable {
        /** The steps' sums as a contribution without values. */
        Contribution sums() { return new Contribution(new float[0], lossSums, correct, samples, energySums); }
    }

    /** Every shard's contribution to a step, summed in partition order: the same sum on every shard. */
    interface Exchange {
        Contribution sum(Contribution mine);

        /** After the last step, on a task that did not fail: what the exchange still owes its peers (nothing, unless it says so). */
        default void finish() {}
    }

    /** The model's parameters now, end to end (for tests). */
    synchronized float[] parameters() { return flatten(model.parameterValues()); }

    /** The driver's optimizer's twin on this worker's model (a run's settings do not change; each job sets the learning rate). */
    private Optimizer optimizer(String settings) {
        if (optimizer == null) optimizer = Optimizer.fromSettings(settings, model);
        return optimizer;
    }

    /** Whether every value is finite. */
    static boolean finite(float[] values) {
        for (float v : values) if (!Float.isFinite(v)) return false;
        return true;
    }

    /** The model's parameters (or updates) end to end, in the model's parameter order. */
    static float[] flatten(Map<String, float[]> values) {
        int size = values.values().stream().mapToInt(v -> v.length).sum(), at = 0;
        float[] flat = new float[size];
        for (float[] v : values.values()) {
            System.arraycopy(v, 0, flat, at, v.length);
            at += v.length;
        }
        return flat;
    }

    /** Puts {@code flat} (in {@link #flatten}'s order) into the model's grads, where its optimizer reads the updates. */
    static void loadGradients(Model model, float[] flat) {
        int total = model.parameters().values().stream().mapToInt(p -> (int) p.size()).sum();
        if (total != flat.length) throw new IllegalStateException("the updates hold " + flat.length + " values, the model " + total);
        // In the backend's turn: the driver's model may share its backend with a Predictor serving on other threads.
        model.backend().inTurn(() -> {
            int at = 0;
            for (Parameter p : model.parameters().values()) {
                model.backend().upload(flat, at, p.grad(), 0, (int) p.size());
                at += (int) p.size();
            }
        });
    }

    /** {@link #flatten}'s inverse for this model. */
    static Map<String, float[]> unflatten(Model model, float[] flat) {
        Map<String, float[]> m = new LinkedHashMap<>();
        int at = 0;
        for (Parameter p : model.parameters().values()) {
            m.put(p.name(), Arrays.copyOfRange(flat, at, at + (int) p.size()));
            at += (int) p.size();
        }
        if (at != flat.length) throw new IllegalStateException("the broadcast holds " + flat.length + " parameters, the model " + at);
        return m;
    }

    @Override public void close() {
        if (optimizer != null) optimizer.close();
        engine.close();
        model.close();
        backend.close();
    }
}
