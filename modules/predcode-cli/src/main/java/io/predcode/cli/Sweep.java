package io.predcode.cli;

import io.predcode.core.pc.DivergenceException;
import io.predcode.data.DataSplit;

import java.io.IOException;
import java.io.PrintWriter;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Runs the training runs of a sweep ({@code --seeds}, {@code --grid}): one after another, or K at once
 * ({@code --parallel-runs}), each on its own backend with its share of the cores ({@code --threads 0}) or
 * {@code --threads} each, from one copy of each data set (and of each validation split runs share), each line of its
 * output prefixed with its name. Small models
 * use few cores well, so K runs side by side finish sooner than K runs one after another on all of them.
 *
 * <p>A run that diverges is reported with its exit code (3) and the others go on. A stop (Ctrl-C, SIGTERM) stops every
 * run training then, each saved, and starts no more. Any other error starts no more runs and is thrown once the runs
 * training have ended.
 */
final class Sweep {
    /** How an out-of-heap error of runs at once says what else helps (Main adds it to its line). */
    static final String FEWER_AT_ONCE = "train fewer runs at once";

    /** One run: what its lines are called, and its settings (its own --out). */
    record Job(String name, TrainingRun.Settings settings) {}

    /** Told of each run as it ends (from the thread that trained it), with its exit code. */
    interface Ended {
        void ended(int job, int code) throws IOException;
    }

    /** What the sweep is called in its lines ("seeds", "grid"). */
    private final String kind;
    private final List<Job> jobs;
    private final int atOnce;
    private final PrintWriter out;
    private final Interruption stop;
    /** The epoch after which every run pauses ({@link TrainingRun#pauseAfter}); 0: none. */
    private final int pauseAfter;
    private final Ended ended;
    /** Where the runs read their data set: the last one read, kept for the next run on it (a halving's, across its rungs). */
    private final LastData read;

    Sweep(String kind, List<Job> jobs, int atOnce, PrintWriter out, Interruption stop) { this(kind, jobs, atOnce, out, stop, 0, (job, code) -> { }, new LastData()); }

    Sweep(String kind, List<Job> jobs, int atOnce, PrintWriter out, Interruption stop, int pauseAfter, Ended ended, LastData read) {
        this.kind = kind;
        this.jobs = jobs;
        this.atOnce = Math.max(1, Math.min(atOnce, jobs.size()));
        this.out = out;
        this.stop = stop;
        this.pauseAfter = pauseAfter;
        this.ended = ended;
        this.read = read;
    }

    /** Each job's exit code, in the jobs' order; null for a job not started (the sweep was stopped first). */
    Integer[] run() throws IOException {
        return atOnce > 1 ? together() : oneAfterAnother();
    }

    /** Whether a run's exit code says it was asked to stop (no other way ends a run so). */
    boolean stopped(Integer code) { return code != null && code == stop.exitCode(); }

    /** A run's metrics.json, read; null where the run wrote none. */
    static io.predcode.core.json.JsonFields metrics(java.nio.file.Path run) throws IOException {
        java.nio.file.Path file = run.resolve("metrics.json");
        if (!java.nio.file.Files.exists(file)) return null;
        return io.predcode.core.json.JsonFields.of(io.predcode.core.json.Json.parse(java.nio.file.Files.readString(file), file.toString()), file.toString(), "");
    }

    /**
     * A value per epoch of the runs in {@code runs} (a metrics.json epochs field, such as "validation_accuracy"), the
     * mean over the runs at each epoch all of them reached: (epoch, mean) pairs for a sweep's chart.
     */
    static List<double[]> curve(List<java.nio.file.Path> runs, String key) throws IOException {
        java.util.TreeMap<Integer, double[]> sums = new java.util.TreeMap<>(); // epoch -> sum, runs
        for (java.nio.file.Path run : runs) {
            io.predcode.core.json.JsonFields m = metrics(run);
            if (m == null) continue;
            for (Object o : m.list("epochs"))
                if (o instanceof Map<?, ?> e && e.get("epoch") instanceof Number epoch && e.get(key) instanceof Number v) {
                    double[] s = sums.computeIfAbsent(epoch.intValue(), k -> new double[2]);
                    s[0] += v.doubleValue();
                    s[1]++;
                }
        }
        List<double[]> curve = new java.util.ArrayList<>();
        sums.forEach((epoch, s) -> {
            if (s[1] == runs.size()) curve.add(new double[]{epoch, s[0] / s[1]});
        });
        return curve;
    }

    /** A sweep's chart ({@link Charts#curves}), where this runtime can draw one. */
    static void chart(java.nio.file.Path file, String title, String yTitle, java.util.SequencedMap<String, List<double[]>> curves, PrintWriter out) {
        if (Awt.available()) Charts.curves(file, title, yTitle, curves, out);
        else out.println("note: " + file.getFileName() + " not written: " + Awt.missing());
    }

    /** The line that starts job {@code i}'s output. */
    private void started(PrintWriter lines, int i) {
        Job j = jobs.get(i);
        lines.printf("== %s (%d of %d), into %s%n", j.name(), i + 1, jobs.size(), j.settings().out());
    }

    private Integer[] oneAfterAnother() throws IOException {
        Integer[] codes = new Integer[jobs.size()];
        for (int i = 0; i < jobs.size(); i++) {
            Job j = jobs.get(i);
            started(out, i);
            TrainingRun.Settings s = j.settings();
            codes[i] = trained(i, s, out, () -> read.load(s));
            if (stopped(codes[i])) break;
        }
        return codes;
    }

    /**
     * The data set the last run read, kept for the next run that trains on the same one, so that runs one after another
     * read it once (Fashion-MNIST: about 0.6 s a run saved) and hold no more than one run does; runs at once read theirs
     * here too ({@link SharedData}). Runs do not change it.
     */
    static final class LastData {
        private SharedData.Data key;
        private DataSplit split;

        synchronized DataSplit load(TrainingRun.Settings s) throws IOException {
            SharedData.Data wanted = SharedData.data(s);
            if (!wanted.equals(key)) {
                split = null; // let the last one go before reading the next
                key = null;
                split = TrainingRun.data(s);
                key = wanted;
            }
            return split;
        }
    }

    /** {@code backend} for one of {@code runsAtOnce} runs: --threads where given, else its share of the cores. */
    static Setup.BackendChoice shareOfCores(Setup.BackendChoice backend, int runsAtOnce) {
        return backend.withThreads(backend.threads > 0 ? backend.threads : Math.max(1, Runtime.getRuntime().availableProcessors() / runsAtOnce));
    }

    private Integer[] together() throws IOException {
        Setup.BackendChoice backend = shareOfCores(jobs.getFirst().settings().backend(), atOnce);
        int threads = backend.threads;
        out.printf("%s: %d at once, %s%n", kind, atOnce, backend.backend.equals("cpu") ? threads + (threads == 1 ? " thread" : " threads") + " each" : "sharing the " + backend.backend + " device");
        SharedData data = new SharedData(jobs, read);
        Integer[] codes = new Integer[jobs.size()];
        AtomicBoolean stopping = new AtomicBoolean();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        try (ExecutorService pool = Executors.newFixedThreadPool(atOnce)) {
            for (int i = 0; i < jobs.size(); i++) {
                int at = i;
                Job j = jobs.get(i);
                pool.execute(() -> {
                    if (stopping.get() || stop.requested(0) != null) return; // stopped before this run began: it is not started
                    PrintWriter lines = new PrintWriter(new PrefixedLines(out, j.name() + " | "), true);
                    started(lines, at);
                    TrainingRun.Settings s = j.settings();
                    try {
                        codes[at] = trained(at, s.forRun(s.seed(), s.out(), s.resume(), backend, true), lines, data.loader(s));
                        if (stopped(codes[at])) stopping.set(true);
                    } catch (Throwable e) { // out of heap too: thrown as one run alone would throw it
                        lines.println("failed: " + (e.getMessage() == null ? e.toString() : e.getMessage()));
                        failure.compareAndSet(null, e);
                        stopping.set(true); // as one after another: no run starts after a failure
                    } finally {
                        lines.flush();
                    }
                });
            }
        } // close() waits for every run
        switch (failure.get()) {
            case null -> { }
            case IOException io -> throw io;
            case RuntimeException re -> throw re;
            case OutOfMemoryError oom -> { // each run at once holds its own training and validation parts
                OutOfMemoryError e = new OutOfMemoryError(FEWER_AT_ONCE + " (--parallel-runs " + atOnce + ": each holds its own training part)");
                e.initCause(oom);
                throw e;
            }
            case Error er -> throw er;
            case Throwable t -> throw new IllegalStateException(t); // a checked exception trained() does not declare: none can reach here
        }
        return codes;
    }

    /** Trains job {@code i}: its exit code, a diverged run's (reported, the sweep going on) included. */
    private int trained(int i, TrainingRun.Settings s, PrintWriter lines, TrainingRun.DataLoader data) throws IOException {
        int code;
        try {
            code = new TrainingRun(s, lines, stop, data).pauseAfter(pauseAfter).run();
        } catch (DivergenceException d) {
            lines.println((lines == out ? jobs.get(i).name() + ": " : "") + d.getMessage()); // runs at once: every line names its run already
            code = Main.DIVERGED;
        }
        ended.ended(i, code);
        return code;
    }

    /**
     * Each data set the runs train on, read (and mapped) once, and each training and validation split of it, made once
     * for the runs that share it (a grid's points on one seed): each let go once the last run that needs it has it. A
     * seed's split is its own (the validation part depends on the seed), so K seeds at once hold K training parts.
     */
    private static final class SharedData {
        private record Data(String data, boolean symmetricInputs) {}
        private record Split(Data data, double validation, long seed) {}
        private record Digests(Data data) {}

        private interface Make<T> { T make() throws IOException; }

        /** How many runs are still to take each data set and split; what is held for them. */
        private final Map<Object, Integer> left = new HashMap<>();
        private final Map<Object, Object> held = new HashMap<>();

        /** Where the data sets are read. */
        private final LastData read;

        SharedData(List<Job> jobs, LastData read) {
            this.read = read;
            for (Job j : jobs) {
                left.merge(data(j.settings()), 1, Integer::sum);
                left.merge(split(j.settings()), 1, Integer::sum);
                left.merge(new Digests(data(j.settings())), 1, Integer::sum);
            }
        }

        private static Data data(TrainingRun.Settings s) { return new Data(s.data(), s.symmetricInputs()); }

        private static Split split(TrainingRun.Settings s) { return new Split(data(s), s.validation(), s.seed()); }

        /** The loader of a run with settings {@code s}. */
        TrainingRun.DataLoader loader(TrainingRun.Settings s) {
            return new TrainingRun.DataLoader() {
                @Override public DataSplit load() throws IOException { return take(data(s), () -> read.load(s)); }

                @Override public io.predcode.data.Dataset[] holdOut(DataSplit d, double fraction, long seed) throws IOException {
                    return take(split(s), () -> d.train().holdOut(fraction, seed));
                }

                @Override public String[] digests(DataSplit d) throws IOException { // each run's checkpoints record them: computed once a data set
                    return take(new Digests(data(s)), () -> TrainingRun.DataLoader.super.digests(d));
                }
            };
        }

        @SuppressWarnings("unchecked")
        private synchronized <T> T take(Object key, Make<T> make) throws IOException {
            T value = (T) held.get(key);
            if (value == null) value = make.make();
            if (left.merge(key, -1, Integer::sum) > 0) held.put(key, value);
            else held.remove(key);
            return value;
        }
    }

    /** A run's output, a whole line at a time into the sweep's, each line prefixed, so that runs at once do not mix within a line. */
    static final class PrefixedLines extends java.io.Writer {
        private final PrintWriter to;
        private final String prefix;
        private final StringBuilder line = new StringBuilder();

        PrefixedLines(PrintWriter to, String prefix) {
            this.to = to;
            this.prefix = prefix;
        }

        @Override public synchronized void write(char[] c, int off, int len) {
            for (int i = off; i < off + len; i++) {
                if (c[i] == '\n') {
                    synchronized (to) {
                        to.print(prefix + line + "\n");
                        to.flush();
                    }
                    line.setLength(0);
                } else if (c[i] != '\r') line.append(c[i]);
            }
        }

        @Override public synchronized void flush() {}

        @Override public synchronized void close() {
            if (!line.isEmpty()) write(new char[]{'\n'}, 0, 1);
        }
    }
}
