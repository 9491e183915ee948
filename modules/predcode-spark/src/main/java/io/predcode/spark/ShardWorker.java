package io.predcode.spark;

import io.predcode.core.nn.Loss;
import io.predcode.core.nn.Model;
import io.predcode.core.nn.ModelSpec;
import io.predcode.core.nn.Parameter;
import io.predcode.core.pc.Algorithm;
import io.predcode.core.pc.BeliefOptimizer;
import io.predcode.core.pc.Energy;
import io.predcode.core.pc.InferenceResult;
import io.predcode.core.pc.Nudging;
import io.predcode.core.pc.PcEngine;
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

    private final RunSpec spec;
    private final int partition;
    private final Dataset train;
    private final ShardPlan plan;
    private final Backend backend;
    private final Model model;
    private final PcEngine engine;
    private final Algorithm algorithm;
    /** This shard's own optimizer for local steps, built at the first; its state lives as long as this worker. */
    private io.predcode.core.optim.Optimizer local;

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
        this.train = data.train().affine(spec.inputScale(), spec.inputShift()).holdOut(spec.validation(), spec.seed())[0];
        this.plan = ShardPlan.of(spec, train.size());
        this.algorithm = Algorithm.parse(spec.algorithm());
        Loss loss = Loss.parse(spec.loss());
        this.backend = Backends.open(spec.backend(), new BackendOptions(spec.threads(), 0));
        try {
            this.model = Model.create(ModelSpec.parse(spec.specJson(), "the driver's model"), spec.inputShape(), backend, 0);
            this.engine = new PcEngine(model, loss).globalBatch(spec.globalBatch()).energy(Energy.parse(spec.energy()))
                    .beliefOptimizer(BeliefOptimizer.parse(spec.beliefOptimizer())).nudging(Nudging.parse(spec.nudging()));
        } catch (RuntimeException e) {
            backend.close();
            throw e;
        }
    }

    /** This executor's worker for the run's partition, built on first use. */
    static ShardWorker of(RunSpec spec, int partition) {
        return WORKERS.computeIfAbsent(spec.runId() + "/" + partition, k -> new ShardWorker(spec, partition));
    }

    /** Drops this executor's workers of a run (best effort: an executor that was lost has none). */
    static int release(String runId) {
        int n = 0;
        for (String k : WORKERS.keySet())
            if (k.startsWith(runId + "/")) {
                ShardWorker w = WORKERS.remove(k);
                if (w != null) { w.close(); n++; }
            }
        return n;
    }

    /** The shard's updates for the global step {@code epoch, step}, at these parameters. */
    synchronized Contribution step(float[] parameters, int epoch, int step) {
        model.loadParameters(unflatten(model, parameters), "the driver's broadcast");
        Dataset batch = batch(epoch, step);
        InferenceResult r = updates(batch);
        return new Contribution(flatten(model.gradientValues()), new double[]{(double) r.loss() * batch.size()}, new long[]{correct(r, batch)}, new long[]{batch.size()});
    }

    /**
     * Local steps: from the driver's parameters, {@code k} steps at learning rate {@code lr} of this shard's own
     * optimizer on its own batches; returns the parameters after them. Each sample relaxes exactly as
     * in the global batch (the engine stays scaled to it), and the shard's share of the update is
     * taken P times, its own batch's mean. The optimizer's state stays with this worker between jobs.
     */
    synchronized Contribution localSteps(float[] parameters, int epoch, int firstStep, int k, float lr) {
        model.loadParameters(unflatten(model, parameters), "the driver's broadcast");
        if (local == null) local = localOptimizer(spec.localOptimizer(), model);
        local.learningRate(lr);
        double[] loss = new double[k];
        long[] correct = new long[k], samples = new long[k];
        for (int s = 0; s < k; s++) {
            Dataset batch = batch(epoch, firstStep + s);
            InferenceResult r = updates(batch);
            for (io.predcode.core.nn.Parameter p : model.parameters().values()) backend.axpby(0f, p.grad(), spec.partitions(), p.grad());
            local.step();
            loss[s] = (double) r.loss() * batch.size();
            correct[s] = correct(r, batch);
            samples[s] = batch.size();
        }
        return new Contribution(flatten(model.parameterValues()), loss, correct, samples);
    }

    /** Cross-entropy's correct count; for mse, the rows whose output's argmax is the one-hot target's (the class), as the Trainer counts them. */
    private long correct(InferenceResult r, Dataset batch) {
        if (r.correct() >= 0) return r.correct();
        int depth = model.depth(), classes = model.activationShape(depth)[0];
        float[] out = r.download(r.vhat(depth));
        long hits = 0;
        for (int i = 0; i < batch.size(); i++) if (Loss.argmax(out, i, classes) == batch.labels()[i]) hits++;
        return hits;
    }

    /** The shard's local batch at this step of this epoch. */
    private Dataset batch(int epoch, int step) { return train.subset(train.name(), plan.localBatch(partition, epoch, step)); }

    /** A batch through the engine: the updates land in the parameters' grads. */
    private InferenceResult updates(Dataset batch) {
        float[] y = engine.loss() == Loss.CROSS_ENTROPY ? batch.labels() : batch.oneHot(0, batch.size());
        return engine.updates(batch.images(), y, batch.size(), algorithm, spec.eta(), spec.n());
    }

    /** "sgd,LR,MOMENTUM,WEIGHT_DECAY", "adam,LR,WEIGHT_DECAY" or "adamw,LR,WEIGHT_DECAY". */
    static io.predcode.core.optim.Optimizer localOptimizer(String s, Model model) {
        if (s == null) throw new IllegalStateException("local steps need RunSpec.localOptimizer");
        String[] f = s.split(",");
        return switch (f[0]) {
            case "sgd" -> new io.predcode.core.optim.Sgd(model, Float.parseFloat(f[1]), Float.parseFloat(f[2]), Float.parseFloat(f[3]));
            case "adamw" -> io.predcode.core.optim.Adam.adamW(model, Float.parseFloat(f[1]), Float.parseFloat(f[2]));
            case "adam" -> new io.predcode.core.optim.Adam(model, Float.parseFloat(f[1]), 0.9f, 0.999f, 1e-8f, Float.parseFloat(f[2]));
            default -> throw new IllegalArgumentException("local optimizer '" + s + "'");
        };
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
        if (local != null) local.close();
        engine.close();
        model.close();
        backend.close();
    }
}
