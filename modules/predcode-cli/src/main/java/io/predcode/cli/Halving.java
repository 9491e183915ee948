package io.predcode.cli;

import io.predcode.core.io.AtomicFiles;
import io.predcode.core.json.Json;
import io.predcode.core.json.JsonFields;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * {@code train --grid ... --halving ETA}: successive halving (Jamieson and Talwalkar 2016; the inner loop of Hyperband)
 * over a grid's points. Every point trains a few epochs (a rung); the best 1/ETA of them, by validation accuracy at
 * their best epoch so far (mean over seeds), go on ETA times as long; and so on up to --epochs. A point's runs pause
 * after each rung and resume from their checkpoints with the learning-rate schedule spanning --epochs throughout, so a
 * point that reaches the last rung has trained exactly as it would have alone; the others have spent a fraction of it.
 *
 * <p>OUT/halving.json records the rungs and each run's end in each (its exit code), so that --resume after a stop goes
 * on from where the grid was: a run that ended in a rung is not trained in it again, and the points that go on are
 * chosen again from the runs' metrics.json, which give the same choice.
 */
final class Halving {
    static final String FILE = "halving.json";

    /** A rung: how many epochs its runs have trained by its end, and how many points train in it. */
    record Rung(int epochs, int points) {
        Map<String, Object> json() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("epochs", (double) epochs);
            m.put("points", (double) points);
            return m;
        }
    }

    /**
     * The rungs for {@code points} points over {@code epochs} epochs: as many as the points and the epochs can each be
     * divided by ETA (k times), rung i training points / ETA^i of them to epochs / ETA^(k - i), the last to --epochs.
     * 27 points over 27 epochs with ETA 3: 27 points to epoch 1, 9 to 3, 3 to 9, 1 to 27 (57 epochs against 729).
     */
    static List<Rung> rungs(int points, int epochs, int eta) {
        int k = 0;
        for (long p = eta, e = eta; p <= points && e <= epochs; p *= eta, e *= eta) k++;
        List<Rung> rungs = new ArrayList<>();
        for (int i = 0; i <= k; i++)
            rungs.add(new Rung((int) (epochs / Math.pow(eta, k - i)), (int) Math.max(1, points / (long) Math.pow(eta, i))));
        return rungs;
    }

    /** What the rungs did: each run's exit code as it last ended (null: not started, the grid stopped first) and the last rung each trained in. */
    record Result(Integer[] codes, int[] rungOf, boolean stopped) {}

    private final int eta;
    private final List<Rung> rungs;
    private final Path file;
    /** Each run that ended in a rung: "rung K: RUN" -> its exit code; and as halving.json lists them. */
    private final Map<String, Integer> ended = new LinkedHashMap<>();
    private final List<Object> endedJson = new ArrayList<>();

    /** The halving of {@code points} points over {@code epochs}; on --resume, what OUT/halving.json recorded, where it is the same plan. */
    Halving(int eta, int points, int epochs, Path out, boolean resume) throws IOException {
        this.eta = eta;
        this.rungs = rungs(points, epochs, eta);
        this.file = out.resolve(FILE);
        if (resume && Files.exists(file)) {
            JsonFields f = JsonFields.of(Json.parse(Files.readString(file), file.toString()), file.toString(), "");
            if (f.integer("eta", 2) != eta || !f.list("rungs").equals(json().get("rungs")))
                throw new IllegalArgumentException(file + " was written by another halving (--halving " + f.integer("eta", 2) + ", rungs " + describe(f.list("rungs"))
                        + "); give the grid's options as it was started, or --overwrite to start it again");
            for (Object o : f.list("ended")) {
                JsonFields r = JsonFields.of(o, file.toString(), "ended");
                ended.put(key(r.integer("rung", 0), r.string("run")), r.integer("exit_code", 0));
                endedJson.add(o);
            }
        }
    }

    List<Rung> rungs() { return rungs; }

    /** The halving's plan, for halving.json and grid.json. */
    Map<String, Object> json() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("eta", (double) eta);
        m.put("rungs", rungs.stream().map(r -> (Object) r.json()).toList());
        return m;
    }

    /** "27 points to epoch 1, 9 to 3, 3 to 9, 1 to 27". */
    static String describe(List<?> rungs) {
        StringBuilder b = new StringBuilder();
        for (Object o : rungs) {
            Map<?, ?> r = o instanceof Rung rung ? rung.json() : (Map<?, ?>) o;
            int points = ((Number) r.get("points")).intValue(), epochs = ((Number) r.get("epochs")).intValue();
            b.append(b.isEmpty() ? points + (points == 1 ? " point" : " points") + " to epoch " : ", " + points + " to ").append(epochs);
        }
        return b.toString();
    }

    /** Trains the grid's runs rung by rung, {@code atOnce} at a time. */
    Result run(GridSweep.Plan plan, int atOnce, PrintWriter print, Interruption stop) throws IOException {
        List<Sweep.Job> jobs = plan.jobs();
        Integer[] codes = new Integer[jobs.size()];
        int[] rungOf = new int[jobs.size()];
        List<GridSweep.Point> going = plan.pointOf().stream().distinct().toList();
        print.printf("halving: %s (the best 1/%d of the points go on at each rung, by %s)%n", describe(rungs), eta, GridSweep.selectedBy(jobs.getFirst().settings().validation() > 0));
        // A run's arithmetic depends on its thread count (how its GEMMs split), unless --thread-invariant: each keeps the first
        // rung's share of the cores in every rung, fewer runs at once or not, so that a point trains as it would alone on those
        // threads. Thread-invariant runs take the cores the rung's own runs leave them (the last rung's one run, all of them).
        Sweep.LastData read = new Sweep.LastData(); // every rung's runs take the data set the first rung read
        Setup.BackendChoice given = jobs.getFirst().settings().backend();
        int share = Math.min(atOnce, jobs.size());
        Setup.BackendChoice backend = share > 1 && !given.threadInvariant ? Sweep.shareOfCores(given, share) : given;
        for (int k = 0; k < rungs.size(); k++) {
            Rung rung = rungs.get(k);
            List<Integer> mine = new ArrayList<>(), toTrain = new ArrayList<>();
            for (int i = 0; i < jobs.size(); i++) {
                if (!going.contains(plan.pointOf().get(i))) continue;
                mine.add(i);
                rungOf[i] = k;
                Integer recorded = ended.get(key(k, jobs.get(i).name()));
                if (recorded != null) codes[i] = recorded; // --resume: it ended in this rung before the stop
                else toTrain.add(i);
            }
            print.printf("halving: rung %d of %d, %d point%s to epoch %d%s%n", k + 1, rungs.size(), going.size(), going.size() == 1 ? "" : "s", rung.epochs(),
                    toTrain.size() < mine.size() ? " (" + (mine.size() - toTrain.size()) + " of its runs ended there before the stop)" : "");
            int rungIndex = k;
            List<Sweep.Job> rungJobs = toTrain.stream().map(i -> rungJob(jobs.get(i), rungIndex, backend)).toList();
            Integer[] rungCodes = rungJobs.isEmpty() ? new Integer[0]
                    : new Sweep("grid", rungJobs, atOnce, print, stop, rung.epochs(), (j, code) -> {
                        if (code != stop.exitCode()) record(rungIndex, rungJobs.get(j).name(), code);
                    }, read).run();
            boolean stopped = false;
            for (int j = 0; j < rungCodes.length; j++) {
                codes[toTrain.get(j)] = rungCodes[j];
                stopped |= rungCodes[j] == null || rungCodes[j] == stop.exitCode();
            }
            if (stopped) return new Result(codes, rungOf, true);
            if (k + 1 < rungs.size()) going = goingOn(going, mine, plan, codes, rung, rungs.get(k + 1), print);
        }
        return new Result(codes, rungOf, false);
    }

    /** A run's job in rung {@code k} on {@code backend}: after the first rung it resumes the checkpoint it paused at. */
    private static Sweep.Job rungJob(Sweep.Job j, int k, Setup.BackendChoice backend) {
        TrainingRun.Settings s = j.settings();
        return new Sweep.Job(j.name(), s.forRun(s.seed(), s.out(), k > 0 || s.resume(), backend, s.quiet()));
    }

    /**
     * The points that go on to the next rung: the best {@code next.points()} of those whose runs all reached this rung's
     * end (a diverged or collapsed run ends its point), by the mean of their runs' best selection accuracy up to this
     * rung's epoch; ties in the grid's order.
     */
    private static List<GridSweep.Point> goingOn(List<GridSweep.Point> points, List<Integer> mine, GridSweep.Plan plan, Integer[] codes, Rung rung, Rung next,
                                                 PrintWriter print) throws IOException {
        Map<GridSweep.Point, double[]> scores = new LinkedHashMap<>(); // sum, runs; NaN sum: the point cannot go on
        for (GridSweep.Point p : points) scores.put(p, new double[2]);
        for (int i : mine) {
            double[] s = scores.get(plan.pointOf().get(i));
            TrainingRun.Settings run = plan.jobs().get(i).settings();
            double best = codes[i] == 0 ? bestUpTo(run.out(), run.validation() > 0, rung.epochs()) : Double.NaN;
            s[0] += best;
            s[1]++;
        }
        List<GridSweep.Point> ranked = new ArrayList<>(points.stream().filter(p -> !Double.isNaN(scores.get(p)[0])).toList());
        ranked.sort(Comparator.comparingDouble(p -> -scores.get(p)[0] / scores.get(p)[1]));
        List<GridSweep.Point> going = ranked.subList(0, Math.min(next.points(), ranked.size()));
        int out = points.size() - going.size();
        print.printf(Locale.ROOT, "halving: after epoch %d, %d point%s go%s on to epoch %d%s; %d stop%s there%n", rung.epochs(), going.size(), going.size() == 1 ? "" : "s",
                going.size() == 1 ? "es" : "", next.epochs(), going.isEmpty() ? "" : String.format(Locale.ROOT, ", best %s (%.2f%%)", going.getFirst().name(),
                        100 * scores.get(going.getFirst())[0] / scores.get(going.getFirst())[1]), out, out == 1 ? "s" : "");
        // The grid's order, as every other list of points.
        return points.stream().filter(going::contains).toList();
    }

    /** The best selection accuracy (validation, or training without a validation set) of the run in {@code out} over its epochs up to {@code epochs}; NaN where it has none. */
    static double bestUpTo(Path out, boolean validated, int epochs) throws IOException {
        return Sweep.curve(List.of(out), GridSweep.selectionKey(validated)).stream().filter(e -> e[0] <= epochs).mapToDouble(e -> e[1]).max().orElse(Double.NaN);
    }

    private static String key(int rung, String run) { return "rung " + rung + ": " + run; }

    /** Records that a run ended in rung {@code k}; runs at once end on their own threads. */
    private synchronized void record(int k, String run, int code) throws IOException {
        ended.put(key(k, run), code);
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("rung", (double) k);
        r.put("run", run);
        r.put("exit_code", (double) code);
        endedJson.add(r);
        Map<String, Object> m = json();
        m.put("ended", endedJson);
        AtomicFiles.writeString(file, Json.write(m, 2) + "\n");
    }
}
