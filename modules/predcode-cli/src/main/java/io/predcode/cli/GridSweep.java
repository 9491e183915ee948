package io.predcode.cli;

import io.predcode.core.io.AtomicFiles;
import io.predcode.core.io.Checkpoint;
import io.predcode.core.json.Json;
import io.predcode.core.json.JsonFields;
import picocli.CommandLine;
import picocli.CommandLine.Model.OptionSpec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * {@code train --grid KEY=V1,V2 ...}: the run once per combination of the given settings (a grid point), each into
 * OUT/KEY-V_KEY-V (with --seeds, once per seed in OUT/KEY-V_KEY-V/seed-S), then the points ranked by validation
 * accuracy at their best epoch (mean over seeds; training accuracy where --validation 0 holds none out), beside their
 * test accuracy, which is reported and never chooses. Every point is parsed and checked as its own {@code train} command
 * line before any trains, so a bad value fails at once, naming its point. An axis lists its values, or spaces them:
 * {@code log:FROM:TO:N}, {@code lin:FROM:TO:N}. Runs one after another or K at once
 * ({@link Sweep}); a stop saves every run training, and --resume continues each where it stopped.
 */
final class GridSweep {
    /** Runs in one grid (points x seeds): more is a typo, not a search. */
    static final int MAX_RUNS = 1000;
    /** The sweep's own options: each point's command line gives its own instead (--seed too, with --seeds). */
    private static final Set<String> OWN = Set.of("--out", "--seeds", "--grid", "--grid-sample", "--halving", "--parallel-runs", "--resume", "--overwrite");
    /** Options a grid cannot vary: the sweep's own, and the run's seed, machine and reporting (and Spark's, {@link Setup.SparkChoice#names}). */
    private static final Set<String> FIXED = java.util.stream.Stream.concat(OWN.stream(), java.util.stream.Stream.of("--seed", "--backend", "--threads", "--thread-invariant", "--quiet",
            "--checkpoint-every")).collect(java.util.stream.Collectors.toSet());

    /** A grid point: its settings in the order given, its name ("lr=0.001 eta=0.1") and its folder's. */
    record Point(Map<String, String> values, String name, String folder) {}

    /** The grid's runs, the point each is of, and how many points the whole grid has (more where --grid-sample drew some). */
    record Plan(List<Sweep.Job> jobs, List<Point> pointOf, long gridPoints, Sample sample, Map<Point, String> commands) {
        int points() { return (int) pointOf.stream().distinct().count(); }
    }

    /** --grid-sample N[:SEED]: N points drawn at random from the grid, without replacement, seeded. */
    record Sample(int points, long seed) {
        static Sample parse(String text) {
            if (text == null) return null;
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("(\\d{1,4})(?::(\\d{1,18}))?").matcher(text.strip());
            if (!m.matches() || Integer.parseInt(m.group(1)) < 1)
                throw new IllegalArgumentException("--grid-sample: expected N or N:SEED (N points drawn at random from the grid, N >= 1, SEED >= 0), got '" + text + "'");
            return new Sample(Integer.parseInt(m.group(1)), m.group(2) == null ? 0 : Long.parseLong(m.group(2)));
        }
    }

    private final Plan plan;
    private final int atOnce;
    private final Path out;
    private final PrintWriter print;
    private final Interruption stop;
    /** --halving: the points trained rung by rung; null: each trains every epoch. */
    private final Halving halving;

    GridSweep(Plan plan, int atOnce, Path out, PrintWriter print, Interruption stop, Halving halving) {
        this.plan = plan;
        this.atOnce = atOnce;
        this.out = out;
        this.print = print;
        this.stop = stop;
        this.halving = halving;
    }

    /** The grid's axes as given: KEY=V1,V2 (or V1|V2 where a value holds a comma), each an option of train the grid may vary, each once. */
    static Map<OptionSpec, List<String>> axes(CommandLine.ParseResult given, List<String> grid) {
        Map<OptionSpec, List<String>> axes = new LinkedHashMap<>();
        for (String axis : grid) {
            int eq = axis.indexOf('=');
            if (eq <= 0 || eq == axis.length() - 1) throw new IllegalArgumentException("--grid: expected KEY=V1,V2 (e.g. lr=0.001,0.0003), got '" + axis + "'");
            String key = "--" + axis.substring(0, eq).strip().replaceFirst("^-+", "");
            OptionSpec option = given.commandSpec().findOption(key);
            if (option == null || option.arity().max() == 0)
                throw new IllegalArgumentException("--grid " + axis + ": " + key + " is not an option of train that takes a value");
            if (java.util.Arrays.stream(option.names()).anyMatch(n -> FIXED.contains(n) || Setup.SparkChoice.names(n)))
                throw new IllegalArgumentException("--grid " + axis + ": " + (option.longestName().equals("--seed") ? "give the seeds with --seeds, which trains each at every point"
                        : key + " is the run's place or machine, not a setting to search; give it once"));
            if (given.hasMatchedOption(option)) throw new IllegalArgumentException("--grid " + axis + ": " + key + " is given too; give it once, on the grid or not");
            String text = axis.substring(eq + 1);
            List<String> values = new ArrayList<>();
            List<String> listed = text.startsWith("log:") || text.startsWith("lin:") ? spaced(axis, text, isInteger(option))
                    : List.of(text.split(text.contains("|") ? "\\|" : ",", -1));
            for (String v : listed) {
                if (v.isBlank()) throw new IllegalArgumentException("--grid " + axis + ": an empty value");
                if (values.contains(v.strip())) throw new IllegalArgumentException("--grid " + axis + ": " + v.strip() + " is given twice");
                values.add(v.strip());
            }
            if (axes.put(option, values) != null) throw new IllegalArgumentException("--grid: " + key + " is given twice; give its values once (" + key.substring(2) + "=V1,V2)");
        }
        return axes;
    }

    /** Most values a spaced axis (log: or lin:) makes. */
    static final int MAX_SPACED = 100;

    /**
     * {@code log:FROM:TO:N} (N values evenly spaced in log scale, as numpy's geomspace) or {@code lin:FROM:TO:N} (as
     * linspace), both ends included; an integer option's values rounded to integers. Four significant digits, as a
     * person would type them ({@code log:1e-4:1e-2:5} is 0.0001, 0.0003162, 0.001, 0.003162, 0.01).
     */
    static List<String> spaced(String axis, String text, boolean integer) {
        String[] f = text.split(":", -1);
        String usage = "--grid " + axis + ": expected " + f[0] + ":FROM:TO:N (N values from FROM to TO, 2 <= N <= " + MAX_SPACED + ")";
        if (f.length != 4) throw new IllegalArgumentException(usage);
        double from, to;
        int n;
        try {
            from = Double.parseDouble(f[1]);
            to = Double.parseDouble(f[2]);
            n = Integer.parseInt(f[3]);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(usage);
        }
        boolean log = f[0].equals("log");
        if (!Double.isFinite(from) || !Double.isFinite(to) || n < 2 || n > MAX_SPACED || log && !(from > 0 && to > 0))
            throw new IllegalArgumentException(usage + (log ? ", FROM and TO > 0" : ""));
        List<String> values = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            double t = (double) i / (n - 1), v = log ? Math.exp(Math.log(from) + t * (Math.log(to) - Math.log(from))) : from + t * (to - from);
            if (i == n - 1) v = to; // the end as given, not as the arithmetic rounds it
            values.add(integer ? Long.toString(Math.round(v)) : new java.math.BigDecimal(v).round(new java.math.MathContext(4)).stripTrailingZeros().toPlainString());
        }
        return values;
    }

    private static boolean isInteger(OptionSpec option) {
        Class<?> t = option.type();
        return t == int.class || t == Integer.class || t == long.class || t == Long.class;
    }

    /**
     * The grid's points, the first axis varying slowest: all of them, or with {@code sample} that many drawn at random
     * (Floyd's sampling, seeded), in the grid's order.
     */
    static List<Point> points(Map<OptionSpec, List<String>> axes, Sample sample) {
        List<Map.Entry<OptionSpec, List<String>>> list = new ArrayList<>(axes.entrySet());
        long total = total(axes);
        java.util.SortedSet<Long> chosen = new java.util.TreeSet<>();
        if (sample == null) {
            if (total > MAX_RUNS) throw new IllegalArgumentException("--grid: " + total + " points, more than " + MAX_RUNS + "; --grid-sample N trains N of them drawn at random");
            for (long i = 0; i < total; i++) chosen.add(i);
        } else {
            if (sample.points() > total) throw new IllegalArgumentException("--grid-sample " + sample.points() + ": the grid has " + total + " point" + (total == 1 ? "" : "s"));
            java.util.SplittableRandom random = new java.util.SplittableRandom(sample.seed());
            for (long j = total - sample.points(); j < total; j++) {
                long t = random.nextLong(j + 1);
                chosen.add(chosen.contains(t) ? j : t);
            }
        }
        List<Point> named = new ArrayList<>();
        Set<String> folders = new LinkedHashSet<>();
        for (long index : chosen) {
            LinkedHashMap<String, String> p = new LinkedHashMap<>();
            long rest = index;
            for (int a = list.size() - 1; a >= 0; a--) { // the last axis varies fastest
                List<String> values = list.get(a).getValue();
                p.putFirst(list.get(a).getKey().longestName().substring(2), values.get((int) (rest % values.size())));
                rest /= values.size();
            }
            StringBuilder name = new StringBuilder(), folder = new StringBuilder();
            p.forEach((k, v) -> {
                name.append(name.isEmpty() ? "" : " ").append(k).append('=').append(v);
                folder.append(folder.isEmpty() ? "" : "_").append(k).append('-').append(v.replaceAll("[^A-Za-z0-9.+-]", "-"));
            });
            if (!folders.add(folder.toString())) throw new IllegalArgumentException("--grid: two points would share the folder " + folder + "; give values that differ in letters and digits");
            named.add(new Point(p, name.toString(), folder.toString()));
        }
        return named;
    }

    /** How many points the grid has (the product of its axes' sizes); one beyond {@link Long#MAX_VALUE} is refused. */
    private static long total(Map<OptionSpec, List<String>> axes) {
        long total = 1;
        for (List<String> values : axes.values()) {
            try {
                total = Math.multiplyExact(total, values.size());
            } catch (ArithmeticException e) {
                throw new IllegalArgumentException("--grid: more than " + Long.MAX_VALUE + " points");
            }
        }
        return total;
    }

    /**
     * The grid's runs: each point (and seed) as a {@code train} command line of its own, the given options but the grid's
     * and --out, --seeds, --resume and --overwrite, plus the point's values, its seed and its folder; parsed and checked
     * here, so that a bad value or a folder that holds a run is refused before anything trains.
     */
    static Plan plan(CommandLine.ParseResult given, List<String> grid, Sample sample, long[] seeds, Path out, boolean resume, boolean overwrite) {
        Map<OptionSpec, List<String>> axes = axes(given, grid);
        List<Point> points = points(axes, sample);
        long runs = (long) points.size() * (seeds == null ? 1 : seeds.length);
        if (runs > MAX_RUNS) throw new IllegalArgumentException("--grid: " + runs + " runs (" + points.size() + " points" + (seeds == null ? "" : " x " + seeds.length + " seeds")
                + "), more than " + MAX_RUNS);
        List<String> common = new ArrayList<>();
        for (OptionSpec o : given.matchedOptions()) {
            if (java.util.Arrays.stream(o.names()).anyMatch(OWN::contains)) continue;
            if (o.arity().max() == 0) common.add(o.longestName());
            else for (String v : o.originalStringValues()) {
                common.add(o.longestName());
                common.add(v);
            }
        }
        List<Sweep.Job> jobs = new ArrayList<>();
        List<Point> pointOf = new ArrayList<>();
        Map<Point, String> commands = new LinkedHashMap<>();
        for (Point p : points) {
            List<String> command = new ArrayList<>(List.of("predcode", "train"));
            command.addAll(common);
            p.values().forEach((k, v) -> command.addAll(List.of("--" + k, v)));
            commands.put(p, String.join(" ", command.stream().map(GridSweep::shellWord).toList()));
            for (Long seed : seeds == null ? java.util.Collections.<Long>singletonList(null) : java.util.Arrays.stream(seeds).boxed().toList()) {
                Path dir = seed == null ? out.resolve(p.folder()) : out.resolve(p.folder()).resolve("seed-" + seed);
                List<String> args = new ArrayList<>(common);
                p.values().forEach((k, v) -> {
                    args.add("--" + k);
                    args.add(v);
                });
                if (seed != null) args.addAll(List.of("--seed", seed.toString()));
                args.addAll(List.of("--out", dir.toString()));
                if (resume && Files.exists(dir.resolve(Checkpoint.RESUME_FILE))) args.add("--resume"); // a run the grid had not reached starts afresh
                if (overwrite) args.add("--overwrite");
                String name = p.name() + (seed == null ? "" : " seed " + seed);
                TrainCommand point = new TrainCommand();
                try {
                    new CommandLine(point).parseArgs(args.toArray(String[]::new));
                    jobs.add(new Sweep.Job(name, point.settings()));
                    pointOf.add(p);
                } catch (CommandLine.ParameterException | IllegalArgumentException e) {
                    throw new IllegalArgumentException("--grid " + name + ": " + e.getMessage(), e);
                }
            }
        }
        return new Plan(jobs, pointOf, total(axes), sample, commands);
    }

    /** A word of a command line as a POSIX shell reads it back: as it is where it has no character the shell treats specially, else quoted. */
    static String shellWord(String word) {
        return word.matches("[A-Za-z0-9_./:=,+@%-]+") ? word : "'" + word.replace("'", "'\\''") + "'";
    }

    /** The metrics.json epoch field runs are chosen by: validation accuracy, or training accuracy where no validation set is held out. */
    static String selectionKey(boolean validated) { return validated ? "validation_accuracy" : "train_accuracy"; }

    /** What runs are chosen by, in words (grid.json's selected_by). */
    static String selectedBy(boolean validated) { return validated ? "validation accuracy" : "training accuracy"; }

    int run() throws IOException {
        List<Sweep.Job> jobs = plan.jobs();
        if (plan.sample() != null)
            print.printf("grid: %d of its %d points, drawn at random (--grid-sample %d:%d)%n", plan.points(), plan.gridPoints(), plan.sample().points(), plan.sample().seed());
        Integer[] codes;
        int[] rungOf = new int[jobs.size()];
        if (halving == null) codes = new Sweep("grid", jobs, atOnce, print, stop).run();
        else {
            Halving.Result r = halving.run(plan, atOnce, print, stop);
            codes = r.codes();
            rungOf = r.rungOf();
        }
        int worst = 0, stopped = 0;
        Map<Point, Integer> rungOfPoint = new LinkedHashMap<>();
        Map<Point, List<Map<String, Object>>> byPoint = new LinkedHashMap<>(); // in the grid's order
        Map<String, List<Path>> folders = new LinkedHashMap<>(); // each point's runs' folders, by its name
        for (int i = 0; i < jobs.size(); i++) {
            List<Map<String, Object>> runs = byPoint.computeIfAbsent(plan.pointOf().get(i), p -> new ArrayList<>());
            folders.computeIfAbsent(plan.pointOf().get(i).name(), p -> new ArrayList<>()).add(jobs.get(i).settings().out());
            rungOfPoint.put(plan.pointOf().get(i), rungOf[i]);
            if (codes[i] == null) continue; // not started: the grid was stopped first
            Sweep.Job j = jobs.get(i);
            worst = Math.max(worst, codes[i]);
            if (codes[i] == stop.exitCode()) stopped++;
            runs.add(result(j, codes[i]));
        }
        if (stopped > 0) {
            print.printf("grid: stopped with %d run%s training; --resume continues the grid from %s checkpoints%n", stopped, stopped == 1 ? "" : "s", stopped == 1 ? "its" : "their");
            return stop.exitCode();
        }
        boolean validated = jobs.getFirst().settings().validation() > 0;
        List<Map<String, Object>> ranked = new ArrayList<>();
        byPoint.forEach((point, runs) -> {
            Map<String, Object> p = new LinkedHashMap<>();
            p.put("point", point.name());
            p.put("settings", new LinkedHashMap<String, Object>(point.values()));
            p.put("out", out.resolve(point.folder()).toString());
            p.put("runs", runs);
            p.put("command", plan.commands().get(point)); // the point's own train command, to train it again (with --seeds, longer)
            if (halving != null) p.put("trained_to_epoch", (double) halving.rungs().get(rungOfPoint.get(point)).epochs());
            for (String key : new String[]{"selection_accuracy", "test_accuracy_at_best_epoch", "final_test_accuracy"})
                p.put(key, SeedSweep.stats(SeedSweep.column(runs, key)));
            ranked.add(p);
        });
        // Best first: the points trained furthest (--halving), then by the mean selection accuracy (validation, or training
        // without a validation set); points with none last.
        ranked.sort(Comparator.comparingDouble((Map<String, Object> p) -> -(p.get("trained_to_epoch") instanceof Double e ? e : 0))
                .thenComparingDouble(p -> -mean(p, "selection_accuracy")));
        Map<String, Object> summary = new LinkedHashMap<>();
        summary.put("selected_by", selectedBy(validated));
        if (plan.sample() != null) {
            summary.put("grid_points", (double) plan.gridPoints());
            summary.put("sample_seed", (double) plan.sample().seed());
        }
        if (halving != null) summary.put("halving", halving.json());
        summary.put("points", ranked);
        AtomicFiles.writeString(out.resolve("grid.json"), Json.write(summary, 2) + "\n");
        java.util.SequencedMap<String, List<double[]>> curves = new LinkedHashMap<>();
        for (Map<String, Object> p : ranked) curves.put((String) p.get("point"), Sweep.curve(folders.get((String) p.get("point")), selectionKey(validated)));
        Sweep.chart(out.resolve("grid.png"), "The grid's points, best first" + (jobs.size() > ranked.size() ? " (mean over seeds)" : ""), (validated ? "validation" : "training") + " accuracy (%)", curves, print);

        table(summary, out.resolve("grid.json"), print);
        return worst;
    }

    /** The grid's table, from its summary (as run() builds it, or as grid.json holds it): for train, and for inspect. */
    static void table(Map<String, Object> summary, Path file, PrintWriter print) {
        boolean validated = selectedBy(true).equals(summary.get("selected_by"));
        @SuppressWarnings("unchecked") List<Map<String, Object>> ranked = (List<Map<String, Object>>) summary.get("points");
        String by = validated ? "val acc" : "train acc";
        int width = Math.max(5, ranked.stream().mapToInt(p -> ((String) p.get("point")).length()).max().orElse(5));
        boolean halved = summary.get("halving") instanceof Map<?, ?>;
        if (halved) print.printf("grid: %d points by successive halving (%s), best first: the points trained furthest, then by %s at each run's best epoch"
                + " (mean ± sd over its runs)%n", ranked.size(), Halving.describe((List<?>) ((Map<?, ?>) summary.get("halving")).get("rungs")), summary.get("selected_by"));
        else print.printf("grid: %d points, best first by %s at each run's best epoch (mean ± sd over its runs)%n", ranked.size(), summary.get("selected_by"));
        print.printf("%-" + width + "s  %4s  %5s%s  %17s  %17s  %17s%n", "point", "runs", "exit", halved ? "  epochs" : "", by, "test acc there", "test acc, last");
        for (Map<String, Object> p : ranked) {
            List<?> runs = (List<?>) p.get("runs");
            int exit = runs.stream().mapToInt(r -> ((Number) ((Map<?, ?>) r).get("exit_code")).intValue()).max().orElse(0);
            print.printf("%-" + width + "s  %4d  %5d%s  %17s  %17s  %17s%n", p.get("point"), runs.size(), exit,
                    halved ? String.format("  %6d", ((Number) p.get("trained_to_epoch")).intValue()) : "", meanSd(p, "selection_accuracy"),
                    meanSd(p, "test_accuracy_at_best_epoch"), meanSd(p, "final_test_accuracy"));
        }
        Map<String, Object> best = ranked.isEmpty() ? null : ranked.getFirst();
        if (best != null && !Double.isNaN(mean(best, "selection_accuracy"))) {
            print.printf("best: %s (%s %s), in %s; all in %s%n", best.get("point"), by, meanSd(best, "selection_accuracy"), best.get("out"),
                    file + (Files.exists(file.resolveSibling("grid.png")) ? " and grid.png" : ""));
            if (best.get("command") instanceof String command) print.printf("train it again: %s --out DIR%n", command);
        }
    }

    /** A run's line in its point: its exit code, and its best epoch's selection and test accuracy and its last epoch's, where it has them. */
    private static Map<String, Object> result(Sweep.Job j, int code) throws IOException {
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("seed", j.settings().seed());
        r.put("exit_code", code);
        JsonFields m = Sweep.metrics(j.settings().out());
        if (m != null) {
            if (m.has("best_selection_accuracy")) r.put("selection_accuracy", m.number("best_selection_accuracy"));
            if (m.has("best_test_accuracy")) r.put("test_accuracy_at_best_epoch", m.number("best_test_accuracy"));
            if (m.has("final_test_accuracy")) r.put("final_test_accuracy", m.number("final_test_accuracy"));
        }
        return r;
    }

    private static double mean(Map<String, Object> point, String key) {
        Object m = ((Map<?, ?>) point.get(key)).get("mean");
        return m instanceof Number n ? n.doubleValue() : Double.NaN;
    }

    private static String meanSd(Map<String, Object> point, String key) { return SeedSweep.meanSd((Map<?, ?>) point.get(key)); }
}
