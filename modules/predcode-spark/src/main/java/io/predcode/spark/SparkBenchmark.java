package io.predcode.spark;

import io.predcode.core.nn.BuiltinModels;
import io.predcode.core.nn.Loss;
import io.predcode.core.nn.Model;
import io.predcode.core.nn.ModelSpec;
import io.predcode.core.optim.Adam;
import io.predcode.core.pc.Algorithm;
import io.predcode.core.pc.PcEngine;
import io.predcode.core.pc.Trainer;
import io.predcode.data.DataSources;
import io.predcode.data.Dataset;
import io.predcode.spi.Backend;
import io.predcode.spi.BackendOptions;
import io.predcode.spi.Backends;
import org.apache.spark.api.java.JavaSparkContext;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.UUID;

/**
 * Spark's cost per step against the step's own compute, side by side in one run: each model,
 * algorithm and global batch trained in this process with 2 threads, on local[2], and on a
 * loopback standalone cluster of 2 workers x 1 core (both with 2 partitions), each with a job per
 * step and with several steps per barrier job. Prints a Markdown table. Usage:
 * {@code SparkBenchmark OUT.md [models] [algorithms] [batches] [steps] [averageEvery] [stepsPerJob]},
 * with the class path of a build (bench/spark.sh).
 */
public final class SparkBenchmark {
    private SparkBenchmark() {}

    /** One row: ms/step in one process, then {total, compute} ms/step per Spark column. */
    record Row(String model, String algorithm, int batch, double singleMs, double[][] spark) {}

    /**
     * Runs the benchmark.
     *
     * @param args output file, then optional comma lists of models, algorithms, batches, a step
     *             count, local steps between averages (1: synchronous) and steps per barrier job
     * @throws Exception on any failure
     */
    public static void main(String[] args) throws Exception {
        Path out = Path.of(args[0]);
        List<String> models = List.of((args.length > 1 ? args[1] : "mlp,example-cnn").split(","));
        List<String> algorithms = List.of((args.length > 2 ? args[2] : "strict,fixedpred,backprop").split(","));
        List<Integer> batches = Arrays.stream((args.length > 3 ? args[3] : "600,4096").split(",")).map(Integer::parseInt).toList();
        int steps = args.length > 4 ? Integer.parseInt(args[4]) : 8, warmup = 5;
        averageEvery = args.length > 5 ? Integer.parseInt(args[5]) : 1;
        int perJob = args.length > 6 ? Integer.parseInt(args[6]) : 8;
        Dataset train = DataSources.load("fashion-mnist").train().holdOut(0, 0)[0];
        List<Row> rows = new ArrayList<>();
        for (String m : models) for (String a : algorithms) for (int b : batches) rows.add(new Row(m, a, b, single(train, m, a, b, steps, warmup), new double[4][]));
        try (JavaSparkContext sc = SparkSetup.start("local[2]", Map.of(), Duration.ofSeconds(60))) {
            for (Row r : rows) {
                r.spark()[0] = onSpark(sc, train, r, steps, warmup, 1);
                r.spark()[1] = onSpark(sc, train, r, steps, warmup, perJob);
            }
        }
        List<Path> jars = Arrays.stream(System.getProperty("java.class.path").split(File.pathSeparator)).map(Path::of).toList();
        try (LoopbackCluster cluster = LoopbackCluster.temporary("predcode-spark-bench", jars, 2, 1, "3g");
             JavaSparkContext sc = SparkSetup.start(cluster.url(), Map.of("spark.cores.max", "2", "spark.executor.memory", "2g"), Duration.ofSeconds(120))) {
            while (sc.statusTracker().getExecutorInfos().length < 3) Thread.sleep(100);
            for (Row r : rows) {
                r.spark()[2] = onSpark(sc, train, r, steps, warmup, 1);
                r.spark()[3] = onSpark(sc, train, r, steps, warmup, perJob);
            }
        }
        String perStep = averageEvery > 1 ? "local steps averaged every " + averageEvery : "a job per step";
        StringBuilder md = new StringBuilder(String.format(Locale.ROOT, "ms per step, median of %d; in brackets the slowest shard's compute + Spark's share. Spark columns: 2 partitions.%n%n", steps)
                + "| model | algorithm | global batch | one process, 2 threads | local[2], " + perStep + " | local[2], " + perJob + " steps per barrier job | ratio |"
                + " cluster 2x1 core, " + perStep + " | cluster, " + perJob + " steps per barrier job | ratio |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (Row r : rows) {
            md.append(String.format(Locale.ROOT, "| %s | %s | %d | %.1f ", r.model(), r.algorithm(), r.batch(), r.singleMs()));
            for (int c = 0; c < 4; c++) {
                double[] t = r.spark()[c];
                md.append(String.format(Locale.ROOT, "| %.1f (%.1f + %.1f) ", t[0], t[1], t[0] - t[1]));
                if (c % 2 == 1) md.append(String.format(Locale.ROOT, "| %.2fx ", r.singleMs() / t[0]));
            }
            md.append("|\n");
        }
        md.append("\nratio: one process's ms/step over the barrier column's (samples/s of Spark over one process's).\n");
        Files.writeString(out, md.toString());
        System.out.print(md);
    }

    /** Local steps between averages on Spark (1: synchronous steps). */
    static int averageEvery = 1;

    static ModelSpec spec(String model) throws java.io.IOException { return BuiltinModels.resolve(model); }

    static int[] input(ModelSpec spec) { return spec.input() != null ? spec.input() : new int[]{1, 28, 28}; }

    /** Median ms per step in this process, on the plan's global batches. */
    static double single(Dataset train, String model, String algorithm, int batch, int steps, int warmup) throws Exception {
        ModelSpec spec = spec(model);
        ShardPlan plan = new ShardPlan(train.size(), 2, batch / 2, 0, true);
        Algorithm a = Algorithm.parse(algorithm);
        try (Backend be = Backends.open("cpu", new BackendOptions(2, 0)); Model m = Model.create(spec, input(spec), be, 0);
             PcEngine e = new PcEngine(m, Loss.CROSS_ENTROPY); Adam opt = new Adam(m, 1e-4f)) {
            Trainer t = new Trainer(e, opt, a, 0.1f, 20);
            double[] ms = new double[steps];
            for (int s = 0; s < warmup + steps; s++) {
                Dataset b = train.subset("global batch", plan.globalBatch(0, s % plan.stepsPerEpoch()));
                long t0 = System.nanoTime();
                t.step(b.images(), b.labels(), b.size());
                if (s >= warmup) ms[s - warmup] = (System.nanoTime() - t0) / 1e6;
            }
            return median(ms);
        }
    }

    /** {median ms per step, median of the slowest task's compute} on this context. */
    static double[] onSpark(JavaSparkContext sc, Dataset train, Row r, int steps, int warmup, int perJob) throws Exception {
        ModelSpec spec = spec(r.model());
        RunSpec run = new RunSpec(UUID.randomUUID().toString(), spec.toJson(), input(spec), "fashion-mnist", 0, 0, true, r.algorithm(), 0.1f, 20, "cross_entropy",
                "torch2pc", "sgd", "none", r.batch(), 2, "cpu", 1, -1, 1f, 0f, "none");
        try (Backend be = Backends.open("cpu", new BackendOptions(1, 0)); Model m = Model.create(spec, input(spec), be, 0); Adam opt = new Adam(m, 1e-4f);
             SparkTraining t = new SparkTraining(sc, run, train.size(), m, opt)) {
            double[] ms = new double[steps], compute = new double[steps];
            // Fresh executor JVMs compile as they go: warm up for at least 3 s, then measure.
            long warm = System.nanoTime() + 3_000_000_000L;
            int s = 0;
            int every = perJob > 1 ? perJob : averageEvery, spe = t.plan().stepsPerEpoch() / every * every;
            for (; s < warmup || System.nanoTime() < warm; s += every) timed(t, s % spe, every, perJob > 1);
            for (int k = 0; k < steps; k++, s += every) {
                SparkTraining.StepResult res = timed(t, s % spe, every, perJob > 1);
                ms[k] = res.jobMillis();
                compute[k] = res.computeMillis();
            }
            if (t.barrierFailure() != null) throw new IllegalStateException("a barrier job failed: " + t.barrierFailure());
            if (perJob > 1) System.out.printf("%s %s %d, %s: %d barrier tasks started from a state their executor held%n", r.model(), r.algorithm(), r.batch(), sc.master(), t.heldStarts());
            return new double[]{median(ms), median(compute)};
        }
    }

    /** A synchronous step, or {@code every} steps in one barrier job or averaged local steps (their per-step share of the job). */
    static SparkTraining.StepResult timed(SparkTraining t, int step, int every, boolean barrier) {
        if (barrier) {
            float[] lrs = new float[every];
            Arrays.fill(lrs, 1e-4f);
            return t.synchronous(0, step, lrs).getFirst();
        }
        return every == 1 ? t.step(0, step) : t.averaged(0, step, every).getFirst();
    }

    static double median(double[] v) {
        double[] a = v.clone();
        Arrays.sort(a);
        return a.length % 2 == 1 ? a[a.length / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
    }
}
