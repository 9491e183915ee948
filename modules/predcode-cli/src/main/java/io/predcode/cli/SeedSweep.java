package io.predcode.cli;

import io.predcode.core.io.AtomicFiles;
import io.predcode.core.json.Json;
import io.predcode.core.json.JsonFields;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeSet;

/**
 * {@code train --seeds}: the same settings once per seed, each run into OUT/seed-S, then the figures papers report over
 * seeds: each seed's test accuracy at its last epoch and at its best test epoch, their mean and standard deviation, and
 * PCX's "avg5" (the mean of the five best seeds' best test epochs). A seed whose run diverges or collapses is reported
 * with its exit code and the sweep goes on; the sweep's exit code is the worst of them. Ctrl-C or SIGTERM stops the seed
 * training then (or, with --parallel-runs, the seeds), and the sweep with it ({@link Sweep} runs them). With --resume
 * each seed resumes its own folder, and a seed the sweep had not reached starts afresh.
 */
final class SeedSweep {
    static final int MAX_SEEDS = 100;
    private final TrainingRun.Settings settings;
    private final long[] seeds;
    /** Seeds trained at once (--parallel-runs): 1, one after another. */
    private final int atOnce;
    private final PrintWriter out;
    private final Interruption stop;

    SeedSweep(TrainingRun.Settings settings, long[] seeds, int atOnce, PrintWriter out, Interruption stop) {
        this.settings = settings;
        this.seeds = seeds;
        this.atOnce = atOnce;
        this.out = out;
        this.stop = stop;
    }

    /** "0-6" or "0,3,5" (ranges and single seeds, comma-separated): each >= 0, none twice, at most {@link #MAX_SEEDS}. */
    static long[] parse(String text) {
        TreeSet<Long> seen = new TreeSet<>();
        List<Long> order = new ArrayList<>();
        try {
            for (String part : text.split(",", -1)) {
                String[] ends = part.strip().split("-", -1);
                if (ends.length > 2) throw new NumberFormatException(part);
                long from = Long.parseLong(ends[0].strip()), to = ends.length == 2 ? Long.parseLong(ends[1].strip()) : from;
                if (from < 0 || to < from) throw new IllegalArgumentException("--seeds: '" + part.strip() + "' is not a seed >= 0 or a range FROM-TO with FROM <= TO");
                for (long k = from; k <= to; k++) {
                    if (!seen.add(k)) throw new IllegalArgumentException("--seeds: seed " + k + " is given twice");
                    if (seen.size() > MAX_SEEDS) throw new IllegalArgumentException("--seeds: more than " + MAX_SEEDS + " seeds");
                    order.add(k);
                }
            }
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--seeds: expected seeds and ranges such as 0-6 or 0,3,5, got '" + text + "'");
        }
        return order.stream().mapToLong(Long::longValue).toArray();
    }

    int run() throws IOException {
        List<Sweep.Job> jobs = new ArrayList<>();
        for (long seed : seeds) {
            Path dir = dir(seed);
            // Resuming a sweep: the seeds it had not reached yet start afresh.
            boolean resume = settings.resume() && Files.exists(dir.resolve(io.predcode.core.io.Checkpoint.RESUME_FILE));
            jobs.add(new Sweep.Job("seed " + seed, settings.forRun(seed, dir, resume, settings.backend(), settings.quiet())));
        }
        Sweep sweep = new Sweep("seeds", jobs, atOnce, out, stop);
        Integer[] codes = sweep.run();
        int worst = 0;
        List<Long> stopped = new ArrayList<>();
        List<Map<String, Object>> done = new ArrayList<>();
        java.util.SequencedMap<String, List<double[]>> curves = new LinkedHashMap<>(); // each seed's test accuracy per epoch, for its line and seeds.png
        for (int i = 0; i < seeds.length; i++) {
            if (codes[i] == null) continue; // a seed not started: the sweep was stopped first
            List<double[]> curve = Sweep.curve(List.of(dir(seeds[i])), "test_accuracy");
            curves.put("seed " + seeds[i], curve);
            done.add(result(seeds[i], codes[i], curve));
            worst = Math.max(worst, codes[i]);
            if (sweep.stopped(codes[i])) stopped.add(seeds[i]);
        }
        if (!stopped.isEmpty()) {
            out.printf("seeds: stopped in seed%s %s; --resume continues the sweep from %s%n", stopped.size() > 1 ? "s" : "",
                    stopped.stream().map(String::valueOf).collect(java.util.stream.Collectors.joining(", ")), stopped.size() > 1 ? "their checkpoints" : "its checkpoint");
            return stop.exitCode();
        }
        Map<String, Object> summary = new LinkedHashMap<>();
        summary.put("seeds", done);
        double[] last = column(done, "final_test_accuracy"), peak = column(done, "best_test_epoch_accuracy");
        summary.put("final_test_accuracy", stats(last));
        summary.put("best_test_epoch_accuracy", stats(peak));
        double avg5 = peak.length >= 5 ? Arrays.stream(peak).sorted().skip(peak.length - 5).average().orElse(Double.NaN) : Double.NaN;
        if (!Double.isNaN(avg5)) summary.put("avg5", avg5);
        AtomicFiles.writeString(settings.out().resolve("seeds.json"), Json.write(summary, 2) + "\n");
        Sweep.chart(settings.out().resolve("seeds.png"), "Each seed", "test accuracy (%)", curves, out);

        table(summary, settings.out().resolve("seeds.json"), out);
        return worst;
    }

    /** The sweep's table, from its summary (as run() builds it, or as seeds.json holds it): for train, and for inspect. */
    static void table(Map<String, Object> summary, Path file, PrintWriter out) {
        List<?> done = (List<?>) summary.get("seeds");
        out.printf("seeds: %d runs%n%-6s %5s  %15s  %15s%n", done.size(), "seed", "exit", "last epoch test", "best test epoch");
        for (Object o : done) {
            Map<?, ?> r = (Map<?, ?>) o;
            out.printf("%-6d %5d  %15s  %15s%n", ((Number) r.get("seed")).longValue(), ((Number) r.get("exit_code")).intValue(), percent(r.get("final_test_accuracy")),
                    percent(r.get("best_test_epoch_accuracy")));
        }
        Map<?, ?> last = (Map<?, ?>) summary.get("final_test_accuracy"), peak = (Map<?, ?>) summary.get("best_test_epoch_accuracy");
        out.printf("mean ± sd over %d seeds: last epoch %s, best test epoch %s%s; in %s%n", ((Number) last.get("runs")).intValue(), meanSd(last), meanSd(peak),
                summary.get("avg5") instanceof Number a ? "; PCX's avg5 " + percent(a) : "", file + (Files.exists(file.resolveSibling("seeds.png")) ? " and seeds.png" : ""));
    }

    private Path dir(long seed) { return settings.out().resolve("seed-" + seed); }

    /** A seed's line in the summary: its exit code, and its last and best epochs' test accuracy (of {@code curve}) where it has them. */
    private Map<String, Object> result(long seed, int code, List<double[]> curve) throws IOException {
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("seed", seed);
        r.put("exit_code", code);
        r.put("out", dir(seed).toString());
        JsonFields m = Sweep.metrics(dir(seed));
        if (m != null) {
            if (m.has("final_test_accuracy")) r.put("final_test_accuracy", m.number("final_test_accuracy"));
            curve.stream().mapToDouble(e -> e[1]).max().ifPresent(peak -> r.put("best_test_epoch_accuracy", peak));
        }
        return r;
    }

    /** The runs' numbers under {@code key}, where they have one. */
    static double[] column(List<Map<String, Object>> runs, String key) {
        return runs.stream().filter(r -> r.get(key) instanceof Number).mapToDouble(r -> ((Number) r.get(key)).doubleValue()).toArray();
    }

    /** Mean and sample standard deviation (n - 1), as numpy's std(ddof=1) and Python's statistics.stdev give it. */
    static Map<String, Object> stats(double[] v) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("runs", v.length);
        if (v.length == 0) return m;
        double mean = Arrays.stream(v).average().orElseThrow(), ss = 0;
        for (double x : v) ss += (x - mean) * (x - mean);
        m.put("mean", mean);
        if (v.length > 1) m.put("sd", Math.sqrt(ss / (v.length - 1)));
        return m;
    }

    /** A summary's statistics ({@link #stats}) as "mean% ± sd", "-" where there is no mean. */
    static String meanSd(Map<?, ?> stats) {
        if (!(stats.get("mean") instanceof Number mean)) return "-";
        return percent(mean) + (stats.get("sd") instanceof Number sd ? String.format(Locale.ROOT, " ± %.2f", 100 * sd.doubleValue()) : "");
    }

    private static String percent(Object v) { return v instanceof Number n ? String.format(Locale.ROOT, "%.2f%%", 100 * n.doubleValue()) : "-"; }
}
