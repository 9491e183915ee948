package io.predcode.cli;

import io.predcode.core.io.AtomicFiles;
import io.predcode.core.json.Json;
import io.predcode.core.nn.Loss;
import io.predcode.core.nn.Model;
import io.predcode.core.nn.BuiltinModels;
import io.predcode.core.nn.ModelSpec;
import io.predcode.core.nn.OpSpec;
import io.predcode.core.optim.Adam;
import io.predcode.core.pc.Algorithm;
import io.predcode.core.pc.BeliefOptimizer;
import io.predcode.core.pc.Energy;
import io.predcode.core.pc.PcEngine;
import io.predcode.core.pc.Trainer;
import io.predcode.spi.Availability;
import io.predcode.spi.Activation;
import io.predcode.spi.Backend;
import io.predcode.spi.BackendProvider;
import io.predcode.spi.Backends;
import io.predcode.spi.Counters;
import io.predcode.spi.OpProfile;
import io.predcode.spi.Conv2dGeometry;
import io.predcode.spi.PoolGeometry;
import io.predcode.spi.Tensor;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

/**
 * Training-step benchmarks, every (backend, model, batch size, algorithm) in one run, side by side with
 * each backend's GEMM peak measured in the same run. FLOPs per step count 2 per multiply-add of the
 * GEMM-shaped work (linear and conv); see PcEngine.stepMacs.
 */
@Command(name = "bench", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Time training steps: backends, algorithms, models and batch sizes side by side, in one run.",
                "",
                "GFLOP/s counts 2 FLOPs per multiply-add of the linear and conv work. With M a model's forward work and M0 its first"
                        + " block's (whose input gradient a step never needs), a step's multiply-adds are: BACKPROP and EXACT 3M - M0;"
                        + " FIXED_PRED at most 2M + n(M - M0) (it skips exact zeros in early sweeps); STRICT 2M + (2n+1)(M - M0);"
                        + " PC at most STRICT's, less in its first L-1 steps (the error wave); iPC at most M + n(3M - M0); Z-IL 2M + 2L(M - M0).",
                "Where STRICT condenses layer 1 (--condense), each sweep applies G = A A^T (G multiply-adds) instead of A and A^T"
                        + " (2E), and the step adds 2E for A^T and the forming of G, once per batch."})
final class BenchCommand implements Callable<Integer> {
    /** bench --help's headings, and the options under each ({@link HelpSections}). */
    static final java.util.Map<String, List<String>> HELP_SECTIONS = helpSections();

    private static java.util.Map<String, List<String>> helpSections() {
        java.util.Map<String, List<String>> s = new java.util.LinkedHashMap<>();
        s.put("What to time, side by side", List.of("--backend", "--model", "--algorithm", "--batch-size", "--condense", "--energy-check", "--monitor-every", "--ops"));
        s.put("The relaxation", List.of("--eta", "--inference-lr", "--n", "--T", "--loss", "--energy", "--belief-optimizer", "--inference-optimizer",
                "--inference-momentum"));
        s.put("How it is timed and reported", List.of("--steps", "--warmup", "--warmup-seconds", "--threads", "--thread-invariant", "--profile", "--json"));
        s.put("Help", List.of("--help", "--version"));
        return java.util.Collections.unmodifiableMap(s);
    }

    @Spec picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = "--backend", split = ",", defaultValue = "cpu", description = "Backends to compare (default: ${DEFAULT-VALUE}).")
    List<String> backends;

    @Option(names = "--algorithm", split = ",", defaultValue = "strict,fixedpred,exact,backprop", description = "Algorithms (default: ${DEFAULT-VALUE}).")
    List<String> algorithms;

    @Option(names = "--model", split = ",", defaultValue = "example-cnn,mlp", description = "Models: built-in names or spec files (default: ${DEFAULT-VALUE}).")
    List<String> models;

    @Option(names = "--batch-size", split = ",", defaultValue = "300", description = "Batch sizes (default: ${DEFAULT-VALUE}).")
    List<Integer> batchSizes;

    @Option(names = "--threads", defaultValue = "0", description = "CPU threads (0 = all cores; default: ${DEFAULT-VALUE}).")
    int threads;

    @Option(names = "--thread-invariant", description = "CPU: split the work by its sizes alone, as train --thread-invariant does (to time what it costs).")
    boolean threadInvariant;

    @Option(names = "--steps", defaultValue = "20", description = "Timed steps per configuration (default: ${DEFAULT-VALUE}).")
    int steps;

    @Option(names = "--warmup", defaultValue = "5", description = "Untimed steps first (default: ${DEFAULT-VALUE}); they go on "
            + "for at least --warmup-seconds.")
    int warmup;

    @Option(names = "--warmup-seconds", defaultValue = "2", description = "Shortest warm-up per configuration, in seconds (default: ${DEFAULT-VALUE}): "
            + "the JIT compiles a step's kernels over its first second or two, and on 2 cores its compiler threads slow the steps they share the cores with.")
    double warmupSeconds;

    @Mixin Setup.Relaxation relaxation;

    static final int MAX_WARMUP_SECONDS = 3600;

    @Option(names = "--ops", description = "Benchmark GEMM and the fused ops instead of training steps.")
    boolean ops;

    @Option(names = "--json", description = "Write one record per configuration to this file.")
    Path json;

    @Option(names = "--condense", split = ",", defaultValue = "auto", description = "Where STRICT relaxes layer 1: auto, never, always; "
            + "several to compare, their steps interleaved (default: ${DEFAULT-VALUE}). Other algorithms ignore it.")
    List<String> condense;

    @Option(names = "--monitor-every", split = ",", defaultValue = "0", description = "Alignment monitor intervals to time, interleaved like --condense:"
            + " e.g. 0,20 gives the monitor's cost at K = 20 as the ratio of mean step times (0: off; default: ${DEFAULT-VALUE}).")
    List<Integer> monitorEvery;

    @Option(names = "--energy-check", split = ",", defaultValue = "on", description = "on: each step checks the relaxation's energy before its"
            + " updates apply (Trainer.guardEnergy, as train and the library run); off: it does not; on,off to compare, interleaved like --condense"
            + " (default: ${DEFAULT-VALUE}). BACKPROP, EXACT and Z-IL have none.")
    List<String> energyCheck;

    @Mixin Setup.Beliefs beliefs;

    @Option(names = "--loss", defaultValue = "cross-entropy", description = "cross-entropy or mse (on one-hot targets) (default: ${DEFAULT-VALUE}).")
    String loss;

    @Option(names = "--profile", description = "After timing, run the steps again with each op's host time recorded: "
            + "prints where a step goes and the GEMM share (gemm, matmul and linear ops; convolutions are counted as conv ops).")
    boolean profile;

    /** The ops that are one GEMM call (linear's bias start is a copy per row, a few microseconds). */
    static final java.util.Set<String> GEMM_OPS = java.util.Set.of("gemm", "matmul", "linear");

    @Override public Integer call() throws Exception {
        if (steps < 1) throw new IllegalArgumentException("--steps must be >= 1, got " + steps);
        if (warmup < 0) throw new IllegalArgumentException("--warmup must be >= 0, got " + warmup);
        // Bounded: an hour of warm-up is already absurd, and a huge value would overflow the deadline (and end it at once).
        if (!(warmupSeconds >= 0 && warmupSeconds <= MAX_WARMUP_SECONDS))
            throw new IllegalArgumentException("--warmup-seconds must be from 0 to " + MAX_WARMUP_SECONDS + " seconds, got " + warmupSeconds);
        relaxation.validate();
        Setup.outputFile("--json", json);
        List<Algorithm> algs = Setup.algorithms(algorithms);
        BeliefOptimizer beliefOptimizer = beliefs.optimizer();
        Energy relaxed = beliefs.energy();
        Loss lossFn = Setup.loss(loss);
        List<PcEngine.Condense> condenseModes = condense.stream().map(Setup::condense).toList();
        List<ModelSpec> specs = new ArrayList<>();
        for (String m : models) {
            ModelSpec s = Setup.model(m);
            if (s.input() == null) throw new IllegalArgumentException("--model " + m + ": the spec needs an \"input\" shape to be benchmarked");
            specs.add(s);
        }
        // Checked before the table's first line, so that a mistyped value is the only line printed.
        for (int batch : batchSizes) if (batch < 1) throw new IllegalArgumentException("--batch-size must be >= 1, got " + batch);
        for (String name : backends) Backends.provider(name);
        for (String v : energyCheck) Setup.onOff("--energy-check", v);
        var out = spec.commandLine().getOut();
        List<Map<String, Object>> records = new ArrayList<>();
        out.printf("%-6s %-12s %6s %-14s %10s %8s %12s %9s %8s %7s %7s %7s%n", "backend", "model", "batch", "algorithm", "ms/step", "spread", "samples/s",
                "GFLOP/s", "of peak", "allocs", "h2d KB", "heap KB");
        for (String name : backends) {
            BackendProvider p = Backends.provider(name);
            Availability a = p.availability();
            if (!a.available()) {
                out.printf("%-6s unavailable: %s%n", p.name(), a.reason());
                records.add(Map.of("backend", p.name(), "available", false, "reason", a.reason()));
                continue;
            }
            try (Backend be = p.open(Setup.backendOptions(threads, threadInvariant))) {
                double peak = gemmPeak(be);
                out.printf("# %s: %s; sgemm peak %.1f GFLOP/s (1024^3)%n", be.name(), be.description(), peak);
                if (ops) { records.addAll(opsBench(be, out)); continue; }
                for (int mi = 0; mi < specs.size(); mi++)
                    for (int batch : batchSizes)
                        records.addAll(stepBench(be, models.get(mi), specs.get(mi), batch, algs, condenseModes, lossFn, beliefOptimizer, relaxed, peak, out));
            }
        }
        if (json != null) {
            Map<String, Object> doc = new LinkedHashMap<>();
            doc.put("machine", Map.of("cores", (double) Runtime.getRuntime().availableProcessors(), "os", System.getProperty("os.name") + " " + System.getProperty("os.arch"),
                    "java", System.getProperty("java.version")));
            doc.put("settings", Map.of("steps", (double) steps, "warmup", (double) warmup, "warmup_seconds", warmupSeconds, "eta", (double) relaxation.eta, "n", (double) relaxation.sweeps(20),
                    "threads", (double) threads, "thread_invariant", threadInvariant, "loss", loss, "belief_optimizer", beliefOptimizer.toString(), "energy", beliefs.energy));
            doc.put("records", records);
            AtomicFiles.writeString(json, Json.write(doc, 2) + "\n");
            out.println("wrote " + json);
        }
        return 0;
    }

    /** One configuration's model, engine and trainer, and what its timed steps measured. */
    private record Run(Algorithm alg, int sweeps, PcEngine.Condense mode, int monitor, boolean checked, Model model, PcEngine engine, Adam opt, Trainer trainer, double[] ms,
                       long[] counts) implements AutoCloseable { // counts: backend allocations, bytes host->device, device->host, JVM heap bytes
        @Override public void close() {
            opt.close();
            engine.close();
            model.close();
        }
    }

    /**
     * Times one (model, batch) with each algorithm, STRICT in each of {@code modes} (its condense
     * settings), each monitor interval, and the relaxing algorithms with each energy check. All configurations are warmed up together and their timed
     * steps interleaved, one step of each in turn, so that this machine's slow phases fall on all of
     * them alike: the ratios between algorithms are measured side by side.
     */
    private List<Map<String, Object>> stepBench(Backend be, String modelName, ModelSpec s, int batch, List<Algorithm> algs, List<PcEngine.Condense> modes,
                                                Loss lossFn, BeliefOptimizer beliefs, Energy relaxed, double peak, java.io.PrintWriter out) {
        SplittableRandom r = new SplittableRandom(1);
        List<Run> runs = new ArrayList<>();
        List<Boolean> checks = energyCheck.stream().map(v -> Setup.onOff("--energy-check", v)).distinct().toList();
        try {
            for (Algorithm alg : algs) {
                int sweeps = alg.relaxes() ? relaxation.sweeps(20) : 1;
                for (PcEngine.Condense mode : alg == Algorithm.STRICT ? modes : List.of(PcEngine.Condense.AUTO))
                    for (int k : monitorEvery)
                        for (boolean checked : alg.relaxes() ? checks : List.of(true)) {
                            if (k < 0) throw new IllegalArgumentException("--monitor-every must be >= 0, got " + k);
                            Model m = Model.create(s, be, 0);
                            PcEngine e = new PcEngine(m, lossFn).condense(mode);
                            if (alg.standard()) e.beliefOptimizer(beliefs).energy(relaxed);
                            Adam opt = new Adam(m, 1e-4f);
                            Trainer t = new Trainer(e, opt, alg, relaxation.eta, sweeps).monitorEvery(k).guardEnergy(checked);
                            runs.add(new Run(alg, sweeps, mode, k, checked, m, e, opt, t, new double[steps], new long[4]));
                        }
            }
            int classes = runs.get(0).model().activationShape(s.depth())[0], targets = runs.get(0).engine().targetSize();
            float[] x = new float[batch * runs.get(0).engine().inputSize()], y = new float[batch * targets];
            for (int i = 0; i < x.length; i++) x[i] = (float) r.nextDouble();
            for (int i = 0; i < batch; i++) { // class indices, or one-hot rows where the loss takes a target per output (mse)
                int c = r.nextInt(classes);
                if (targets == 1) y[i] = c; else y[i * targets + c] = 1f;
            }
            long warmUntil = System.nanoTime() + (long) (warmupSeconds * 1e9);
            for (int i = 0; i < warmup || System.nanoTime() < warmUntil; i++)
                for (Run run : runs) run.trainer().step(x, y, batch);
            be.synchronize();
            HeapBytes heap = new HeapBytes(); // after the warm-up: the backend's threads are running by now
            for (int i = 0; i < steps; i++)
                for (Run run : runs) {
                    Counters.Snapshot before = be.counters().snapshot();
                    long heapBefore = heap.allocated();
                    long t0 = System.nanoTime();
                    run.trainer().step(x, y, batch);
                    be.synchronize();
                    run.ms()[i] = (System.nanoTime() - t0) / 1e6;
                    run.counts()[3] += heap.allocated() - heapBefore;
                    Counters.Snapshot d = be.counters().snapshot().minus(before);
                    run.counts()[0] += d.allocations();
                    run.counts()[1] += d.hostToDeviceBytes();
                    run.counts()[2] += d.deviceToHostBytes();
                }
            List<Map<String, Object>> records = new ArrayList<>();
            for (Run run : runs) records.add(record(be, modelName, s, batch, run, x, y, peak, out));
            // The monitor runs on one step in K: its cost shows in the mean step time, not the median.
            for (Run run : runs)
                if (run.monitor() > 0)
                    for (Run base : runs)
                        if (base.monitor() == 0 && base.mode() == run.mode() && base.alg() == run.alg() && base.checked() == run.checked())
                            out.printf("# monitor every %d steps: mean step %.2f ms against %.2f ms without, %+.1f%%%n", run.monitor(), mean(run.ms()), mean(base.ms()),
                                    100 * (mean(run.ms()) / mean(base.ms()) - 1));
            return records;
        } finally {
            runs.forEach(Run::close);
        }
    }

    private static double mean(double[] v) { return Arrays.stream(v).average().orElse(Double.NaN); }

    private Map<String, Object> record(Backend be, String modelName, ModelSpec s, int batch, Run run, float[] x, float[] y,
                                       double peak, java.io.PrintWriter out) {
        Algorithm alg = run.alg();
        int sweeps = run.sweeps();
        double[] ms = run.ms().clone();
        Arrays.sort(ms);
        double median = ms[ms.length / 2], p10 = ms[(int) (0.1 * (ms.length - 1))], p90 = ms[(int) Math.ceil(0.9 * (ms.length - 1))];
        double macs = run.engine().stepMacs(alg, sweeps, batch);
        double flops = 2.0 * macs * batch, gflops = flops / (median * 1e6);
        double allocs = (double) run.counts()[0] / steps, h2d = (double) run.counts()[1] / steps, d2h = (double) run.counts()[2] / steps,
                heap = (double) run.counts()[3] / steps;
        String label = (run.mode() == PcEngine.Condense.AUTO ? alg.id() : alg.id() + "/" + run.mode().name().toLowerCase(java.util.Locale.ROOT))
                + (run.monitor() > 0 ? "/mon" + run.monitor() : "") + (run.checked() ? "" : "/unchecked");
        out.printf("%-6s %-12s %6d %-14s %10.2f %7.1f%% %12.0f %9.1f %7.1f%% %7.1f %7.1f %7.1f%n", be.name(), shortName(modelName), batch, label, median,
                100 * (p90 - p10) / median, batch / (median / 1e3), gflops, 100 * gflops / peak, allocs, h2d / 1024.0, heap / 1024.0);
        out.flush();
        Map<String, Object> rec = new LinkedHashMap<>();
        rec.put("backend", be.name());
        rec.put("model", modelName);
        rec.put("batch_size", (double) batch);
        rec.put("algorithm", alg.id());
        if (alg == Algorithm.STRICT) rec.put("condense", run.mode().name().toLowerCase(java.util.Locale.ROOT));
        rec.put("eta", (double) relaxation.eta);
        rec.put("n", (double) sweeps);
        rec.put("median_ms_per_step", median);
        rec.put("mean_ms_per_step", mean(run.ms()));
        if (run.monitor() > 0) rec.put("monitor_every", (double) run.monitor());
        if (alg.relaxes()) rec.put("energy_check", run.checked());
        rec.put("p10_ms", p10);
        rec.put("p90_ms", p90);
        rec.put("samples_per_s", batch / (median / 1e3));
        if (profile) rec.put("op_profile", profileSteps(be, run.trainer(), x, y, batch, out));
        rec.put("gflop_per_step", flops / 1e9);
        rec.put("gflop_per_s", gflops);
        rec.put("gemm_peak_gflop_per_s", peak);
        rec.put("fraction_of_peak", gflops / peak);
        rec.put("allocations_per_step", allocs);
        rec.put("h2d_bytes_per_step", h2d);
        rec.put("d2h_bytes_per_step", d2h);
        rec.put("heap_bytes_per_step", heap);
        return rec;
    }

    /** Runs {@code steps} more steps with an {@link OpProfile}; prints the top ops and the GEMM share. */
    private Map<String, Object> profileSteps(Backend be, Trainer t, float[] x, float[] y, int batch, java.io.PrintWriter out) {
        OpProfile p = new OpProfile();
        be.profile(p);
        try {
            for (int i = 0; i < steps; i++) {
                t.step(x, y, batch);
                be.synchronize();
                p.stop();
            }
        } finally {
            be.profile(null);
        }
        double total = p.totalNanos(), gemm = 0;
        Map<String, Object> msPerStep = new LinkedHashMap<>();
        List<Map.Entry<String, OpProfile.Entry>> byTime = new ArrayList<>(p.entries().entrySet());
        byTime.sort((a, b) -> Long.compare(b.getValue().nanos(), a.getValue().nanos()));
        StringBuilder line = new StringBuilder("       where a step goes:");
        for (var e : byTime) {
            msPerStep.put(e.getKey(), e.getValue().nanos() / 1e6 / steps);
            if (GEMM_OPS.contains(e.getKey())) gemm += e.getValue().nanos();
            if (e.getValue().nanos() >= 0.02 * total) line.append(String.format(" %s %.0f%%,", e.getKey(), 100 * e.getValue().nanos() / total));
        }
        out.println(line.append(String.format(" GEMM ops %.0f%% of the step", 100 * gemm / total)));
        Map<String, Object> rec = new LinkedHashMap<>();
        rec.put("ms_per_step", msPerStep);
        rec.put("gemm_share", gemm / total);
        return rec;
    }

    private static String shortName(String m) { return m.length() <= 12 ? m : "..." + m.substring(m.length() - 9); }

    /** sgemm GFLOP/s at 1024^3 on this backend: the best of a few repetitions after a warm-up. */
    static double gemmPeak(Backend be) {
        int d = 1024;
        try (Tensor a = be.allocate(d, d); Tensor b = be.allocate(d, d); Tensor c = be.allocate(d, d)) {
            be.randomUniform(a, -1, 1, 1);
            be.randomUniform(b, -1, 1, 2);
            double best = Double.MAX_VALUE;
            for (int i = 0; i < 6; i++) {
                long t0 = System.nanoTime();
                be.matmul(false, false, 1f, a, b, 0f, c);
                be.synchronize();
                if (i > 0) best = Math.min(best, (System.nanoTime() - t0) / 1e9);
            }
            return 2.0 * d * d * d / best / 1e9;
        }
    }

    private List<Map<String, Object>> opsBench(Backend be, java.io.PrintWriter out) throws java.io.IOException {
        List<Map<String, Object>> recs = new ArrayList<>();
        out.printf("%-6s %-32s %12s %12s%n", "backend", "op", "median us", "rate");
        for (int d : new int[]{64, 128, 256, 512, 1024, 2048}) {
            try (Tensor a = be.allocate(d, d); Tensor b = be.allocate(d, d); Tensor c = be.allocate(d, d)) {
                double us = time(be, () -> be.matmul(false, false, 1f, a, b, 0f, c), d >= 1024 ? 5 : 30);
                recs.add(opRecord(be, "sgemm " + d + "^3", us, 2.0 * d * d * d / us / 1e3, "GFLOP/s", out));
            }
        }
        int size = 1 << 22;
        try (Tensor p = be.allocate(size); Tensor an = be.allocate(size); Tensor f = be.allocate(size); Tensor dd = be.allocate(size);
             Tensor v = be.allocate(size); Tensor e = be.allocate(size)) {
            double us = time(be, () -> be.pcStrictUpdate(p, an, f, dd, v, e, 0.1f), 20);
            recs.add(opRecord(be, "pcStrictUpdate 4M (7 streams)", us, 7.0 * size * 4 / us / 1e3, "GB/s", out));
            us = time(be, () -> be.axpby(0.1f, f, 0.9f, e), 20);
            recs.add(opRecord(be, "axpby 4M (3 streams)", us, 3.0 * size * 4 / us / 1e3, "GB/s", out));
            us = time(be, () -> be.copy(f, e), 20);
            recs.add(opRecord(be, "copy 4M (2 streams)", us, 2.0 * size * 4 / us / 1e3, "GB/s", out));
        }
        // An energy term: a PCX hidden layer's errors at batch 128 (Trainer.guardEnergy sums one per hidden layer every step).
        try (Tensor errors = be.allocate(128, 128); Tensor scalars = be.allocate(1)) {
            double us = time(be, () -> be.sumSquares(errors, 0.5f, scalars, 0), 200);
            recs.add(opRecord(be, "sumSquares 128x128 (an energy term)", us, 128.0 * 128 * 4 / us / 1e3, "GB/s", out));
        }
        // A STRICT sweep's activation at example-cnn's layer-2 size (300 x 605): at the moved point with its change less the
        // displacement and the feedback's change f', in one pass (double where the change needs it), against the forward
        // alone (calls alternated).
        int layer = 300 * 605;
        for (Activation act : new Activation[]{Activation.RELU, Activation.TANH})
            try (Tensor z0 = be.allocate(layer); Tensor dz = be.allocate(layer); Tensor z = be.allocate(layer); Tensor y = be.allocate(layer);
                 Tensor d = be.allocate(layer); Tensor change = be.allocate(layer); Tensor delta = be.allocate(layer)) {
                be.randomUniform(z0, -1f, 1f, 1);
                be.randomUniform(dz, -1e-3f, 1e-3f, 2);
                be.randomUniform(d, -1e-3f, 1e-3f, 3);
                double[] us = timePair(be, () -> be.activationIncrement(act, 0f, z0, dz, z, y, null, d, change, delta), () -> be.activation(act, 0f, z0, y), 50);
                recs.add(opRecord(be, "STRICT " + act.id() + " at the moved point with its change and delta 300x605", us[0], 7.0 * layer * 4 / us[0] / 1e3, "GB/s", out));
                recs.add(opRecord(be, act.id() + " forward alone 300x605", us[1], 2.0 * layer * 4 / us[1] / 1e3, "GB/s", out));
            }
        // GELU at a PCX MLP layer (128 x 128): a forward and two backward passes at its point (as PC's steps make them), with f'
        // kept by the forward (what training tapes do) and recomputed by each backward (calls alternated).
        int units = 128 * 128;
        for (Activation f : new Activation[]{Activation.GELU_TANH, Activation.GELU})
            try (Tensor x = be.allocate(units); Tensor y = be.allocate(units); Tensor d = be.allocate(units); Tensor g = be.allocate(units); Tensor dx = be.allocate(units)) {
                be.randomUniform(x, -3f, 3f, 1);
                be.randomUniform(g, -1f, 1f, 2);
                double[] us = timePair(be, () -> {
                    be.activationWithDerivative(f, 0f, x, y, d);
                    be.multiply(g, d, dx);
                    be.multiply(g, d, dx);
                }, () -> {
                    be.activation(f, 0f, x, y);
                    be.activationBackward(f, 0f, x, y, g, dx);
                    be.activationBackward(f, 0f, x, y, g, dx);
                }, 200);
                recs.add(opRecord(be, f.id() + " kept f', fwd+2 bwd", us[0], us[1] / us[0], "x faster", out));
                recs.add(opRecord(be, f.id() + " f' recomputed", us[1], 1.0, "x", out));
            }
        // example-cnn's convolutions and pooling at batch 300, at the model's own shapes: the ops a CNN sweep spends its time in.
        ModelSpec cnn = BuiltinModels.resolve("example-cnn");
        PoolGeometry firstPool = null;
        for (ModelSpec.OpAt at : cnn.ops(cnn.input())) {
            int[] in = at.input();
            if (at.op() instanceof OpSpec.Conv2d c)
                convOps(be, "conv " + c.in() + ">" + c.out() + " " + in[1] + "x" + in[2], new Conv2dGeometry(c.in(), in[1], in[2], c.kh(), c.kw(), c.sh(), c.sw(), c.ph(), c.pw()),
                        c.out(), recs, out);
            if (at.op() instanceof OpSpec.Pool2d p && p.max() && firstPool == null) firstPool = new PoolGeometry(in[0], in[1], in[2], p.kh(), p.kw(), p.sh(), p.sw());
        }
        PoolGeometry pg = firstPool;
        // A padded 5x5 conv, which takes another kernel path than example-cnn's.
        convOps(be, "conv 5>5 5x5 p2 11x11", new Conv2dGeometry(5, 11, 11, 5, 5, 1, 1, 2, 2), 5, recs, out);
        try (Tensor x = be.allocate(300, pg.channels(), pg.height(), pg.width()); Tensor y = be.allocate(300, pg.channels(), pg.outHeight(), pg.outWidth());
             Tensor dx = be.allocate(300, pg.channels(), pg.height(), pg.width())) {
            be.randomUniform(x, -1f, 1f, 1);
            be.randomUniform(y, -1f, 1f, 2);
            double bytes = 4.0 * (x.size() + y.size());
            double us = time(be, () -> be.maxPool(x, pg, y), 20);
            recs.add(opRecord(be, "maxPool " + pg.kh() + "x" + pg.kw() + " " + pg.channels() + "x" + pg.height() + "x" + pg.width() + " x300", us, bytes / us / 1e3, "GB/s", out));
            us = time(be, () -> be.maxPoolBackward(x, pg, y, dx), 20);
            recs.add(opRecord(be, "maxPoolBackward 2x2 x300", us, (bytes + 4.0 * dx.size()) / us / 1e3, "GB/s", out));
        }
        return recs;
    }

    /** Forward, input gradient and weight gradient of one conv at batch 300, in GFLOP/s of useful work. */
    private static void convOps(Backend be, String name, Conv2dGeometry g, int outChannels, List<Map<String, Object>> recs, java.io.PrintWriter out) {
        int batch = 300;
        try (Tensor x = be.allocate(batch, g.channels(), g.height(), g.width()); Tensor w = be.allocate(outChannels, g.channels(), g.kh(), g.kw());
             Tensor y = be.allocate(batch, outChannels, g.outHeight(), g.outWidth()); Tensor dw = be.allocate(outChannels, g.channels(), g.kh(), g.kw())) {
            be.randomUniform(x, -1f, 1f, 1);
            be.randomUniform(w, -1f, 1f, 2);
            be.randomUniform(y, -1f, 1f, 3);
            double flops = 2.0 * batch * outChannels * g.outPixels() * g.patchSize();
            double us = time(be, () -> be.conv2d(x, w, g, y), 20);
            recs.add(opRecord(be, name + " forward x300", us, flops / us / 1e3, "GFLOP/s", out));
            us = time(be, () -> be.conv2dBackwardInput(y, w, g, x), 20);
            recs.add(opRecord(be, name + " input grad", us, flops / us / 1e3, "GFLOP/s", out));
            us = time(be, () -> be.conv2dBackwardWeight(x, y, g, dw), 20);
            recs.add(opRecord(be, name + " weight grad", us, flops / us / 1e3, "GFLOP/s", out));
        }
    }

    private static double time(Backend be, Runnable op, int reps) {
        // Warm up for half a second (at least 3 calls): the JIT compiles a Java kernel only after it has run a while.
        long warm = System.nanoTime();
        for (int i = 0; i < 3 || System.nanoTime() - warm < 500_000_000L; i++) op.run();
        be.synchronize();
        double[] us = new double[reps];
        for (int i = 0; i < reps; i++) {
            long t0 = System.nanoTime();
            op.run();
            be.synchronize();
            us[i] = (System.nanoTime() - t0) / 1e3;
        }
        Arrays.sort(us);
        return us[reps / 2];
    }

    /** Medians of two ways to do the same work, their calls alternated so that a slow phase of the machine falls on both. */
    private static double[] timePair(Backend be, Runnable first, Runnable second, int reps) {
        time(be, first, 1);
        time(be, second, 1);
        double[][] us = new double[2][reps];
        for (int i = 0; i < reps; i++)
            for (int k = 0; k < 2; k++) {
                long t0 = System.nanoTime();
                (k == 0 ? first : second).run();
                be.synchronize();
                us[k][i] = (System.nanoTime() - t0) / 1e3;
            }
        Arrays.sort(us[0]);
        Arrays.sort(us[1]);
        return new double[]{us[0][reps / 2], us[1][reps / 2]};
    }

    private static Map<String, Object> opRecord(Backend be, String op, double us, double rate, String unit, java.io.PrintWriter out) {
        out.printf("%-6s %-32s %12.1f %9.1f %s%n", be.name(), op, us, rate, unit);
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("backend", be.name());
        m.put("op", op);
        m.put("median_us", us);
        m.put("rate", rate);
        m.put("unit", unit);
        return m;
    }
}
