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
 * loopback standalone cluster of 2 workers x 1 core (both with 2 partitions). Prints a Markdown
 * table. Usage: {@code SparkBenchmark OUT.md [models] [algorithms] [batches] [steps]}, with the
 * class path of a build (bench/spark.sh).
 */
public final class SparkBenchmark {
    private SparkBenchmark() {}

    record Row(String model, String algorithm, int batch, double singleMs, double localMs, double localCompute, double clusterMs, double clusterCompute) {}

    /**
     * Runs the benchmark.
     *
     * @param args output file, then optional comma lists of models, algorithms, batches, and a step count
     * @throws Exception on any failure
     */
    public static void main(String[] args) throws Exception {
        Path out = Path.of(args[0]);
        List<String> models = List.of((args.length > 1 ? args[1] : "mlp,example-cnn").split(","));
        List<String> algorithms = List.of((args.length > 2 ? args[2] : "strict,fixedpred,backprop").split(","));
        List<Integer> batches = Arrays.stream((args.length > 3 ? args[3] : "600,4096").split(",")).map(Integer::parseInt).toList();
        int steps = args.length > 4 ? Integer.parseInt(args[4]) : 8, warmup = 5;
        averageEvery = args.length > 5 ? Integer.parseInt(args[5]) : 1;
        Dataset train = DataSources.load("fashion-mnist").train().holdOut(0, 0)[0];
        List<Row> rows = new ArrayList<>();
        for (String m : models) for (String a : algorithms) for (int b : batches) rows.add(new Row(m, a, b, single(train, m, a, b, steps, warmup), 0, 0, 0, 0));
        try (JavaSparkContext sc = SparkSetup.start("local[2]", Map.of(), Duration.ofSeconds(60))) {
            for (int i = 0; i < rows.size(); i++) {
                double[] t = onSpark(sc, train, rows.get(i), steps, warmup);
                Row r = rows.get(i);
                rows.set(i, new Row(r.model(), r.algorithm(), r.batch(), r.singleMs(), t[0], t[1], 0, 0));
            }
        }
        List<Path> jars = Arrays.stream(System.getProperty("java.class.path").split(File.pathSeparator)).map(Path::of).toList();
        Path dir = Files.createTempDirectory("predcode-spark-bench");
        try (LoopbackCluster cluster = new LoopbackCluster(jars, dir, 2, 1, "3g");
             JavaSparkContext sc = SparkSetup.start(cluster.url(), Map.of("spark.cores.max", "2", "spark.executor.memory", "2g"), Duration.ofSeconds(120))) {
            while (sc.statusTracker().getExecutorInfos().length < 3) Thread.sleep(100);
            for (int i = 0; i < rows.size(); i++) {
                double[] t = onSpark(sc, train, rows.get(i), steps, warmup);
                Row r = rows.get(i);
                rows.set(i, new Row(r.model(), r.algorithm(), r.batch(), r.singleMs(), r.localMs(), r.localCompute(), t[0], t[1]));
            }
        }
        StringBuilder md = new StringBuilder("| model | algorithm | global batch | one process, 2 threads: ms/step | local[2]: ms/step (compute + Spark) | local[2] vs one process |"
                + " cluster 2x1 core: ms/step (compute + Spark) | cluster vs one process |\n|---|---|---:|---:|---:|---:|---:|---:|\n");
        for (Row r : rows)
            md.append(String.format(Locale.ROOT, "| %s | %s | %d | %.1f | %.1f (%.1f + %.1f) | %.2fx | %.1f (%.1f + %.1f) | %.2fx |%n", r.model(), r.algorithm(), r.batch(), r.singleMs(),
                    r.localMs(), r.localCompute(), r.localMs() - r.localCompute(), r.singleMs() / r.localMs(), r.clusterMs(), r.clusterCompute(), r.clusterMs() - r.clusterCompute(),
                    r.singleMs() / r.clusterMs()));
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
                Dataset b = train.subset("global batch", plan.globalBatch(0, s));
                long t0 = System.nanoTime();
                t.step(b.images(), b.labels(), b.size());
                if (s >= warmup) ms[s - warmup] = (System.nanoTime() - t0) / 1e6;
            }
            return median(ms);
        }
    }

    /** {median ms per step, median of the slowest task's compute} on this context. */
    static double[] onSpark(JavaSparkContext sc, Dataset train, Row r, int steps, int warmup) throws Exception {
        ModelSpec spec = spec(r.model());
        RunSpec run = new RunSpec(UUID.randomUUID().toString(), spec.toJson(), input(spec), "fashion-mnist", 0, 0, true, r.algorithm(), 0.1f, 20, "cross_entropy",
                "torch2pc", "sgd", "none", r.batch(), 2, "cpu", 1, -1, 1f, 0f, averageEvery > 1 ? "adam,1e-4,0" : null);
        try (Backend be = Backends.open("cpu", new BackendOptions(1, 0)); Model m = Model.create(spec, input(spec), be, 0); Adam opt = new Adam(m, 1e-4f);
             SparkTraining t = new SparkTraining(sc, run, train.size(), m, opt)) {
            double[] ms = new double[steps], compute = new double[steps];
            // Fresh executor JVMs compile as they go: warm up for at least 3 s, then measure.
            long warm = System.nanoTime() + 3_000_000_000L;
            int s = 0;
            int every = averageEvery, spe = t.plan().stepsPerEpoch() / every * every;
            for (; s < warmup || System.nanoTime() < warm; s += every) timed(t, s % spe, every);
            for (int k = 0; k < steps; k++, s += every) {
                SparkTraining.StepResult res = timed(t, s % spe, every);
                ms[k] = res.jobMillis();
                compute[k] = res.computeMillis();
            }
            return new double[]{median(ms), median(compute)};
        }
    }

    /** A synchronous step, or {@code every} averaged local steps (their per-step share of the job). */
    static SparkTraining.StepResult timed(SparkTraining t, int step, int every) {
        return every == 1 ? t.step(0, step) : t.averaged(0, step, every).getFirst();
    }

    static double median(double[] v) {
        double[] a = v.clone();
        Arrays.sort(a);
        return a.length % 2 == 1 ? a[a.length / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
    }
}
