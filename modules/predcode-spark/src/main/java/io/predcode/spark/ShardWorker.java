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
        int[] rows = plan.localBatch(partition, epoch, step);
        int in = train.sampleSize(), b = rows.length;
        float[] x = new float[b * in], y = new float[b * engine.targetSize()];
        for (int i = 0; i < b; i++) System.arraycopy(train.images(), rows[i] * in, x, i * in, in);
        if (engine.loss() == Loss.CROSS_ENTROPY) for (int i = 0; i < b; i++) y[i] = train.labels()[rows[i]];
        else for (int i = 0; i < b; i++) System.arraycopy(train.oneHot(rows[i], 1), 0, y, i * train.classes(), train.classes());
        InferenceResult r = engine.updates(x, y, b, algorithm, spec.eta(), spec.n());
        return new Contribution(flatten(model.gradientValues()), (double) r.loss() * b, Math.max(0, r.correct()), b);
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
        engine.close();
        model.close();
        backend.close();
    }
}
