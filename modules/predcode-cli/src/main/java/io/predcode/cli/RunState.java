package io.predcode.cli;

import io.predcode.core.io.Checkpoint;
import io.predcode.core.json.JsonFields;
import io.predcode.core.nn.Model;
import io.predcode.core.nn.ModelSpec;
import io.predcode.core.optim.Optimizer;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What a training run has done, as each checkpoint records it (its field 'training') and --resume reads it back: the
 * steps taken, each epoch's record, the learning rate's base, the rollbacks, eta as the stable relaxation left it, the
 * events, and where a checkpoint was saved inside an epoch, how far that epoch had come.
 */
final class RunState {
    /**
     * How far a run had come inside an epoch when it saved: the batches taken, their summed loss, correct count and
     * samples, the epoch's seconds so far and its median step time; the resumed epoch reports the loss and accuracy the
     * whole one would have (its step time as {@link TrainingRun} takes it).
     */
    record EpochProgress(int batches, double lossSum, double correct, double seen, double seconds, double msPerStep) {
        Map<String, Object> json() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("batches", (double) batches);
            m.put("loss_sum", lossSum);
            m.put("correct", correct);
            m.put("seen", seen);
            m.put("seconds", seconds);
            m.put("ms_per_step", msPerStep);
            return m;
        }

        /** The progress a checkpoint records, checked against the epoch's {@code batchesPerEpoch}. */
        static EpochProgress of(JsonFields f, int batchesPerEpoch) {
            int batches = f.integer("batches", 1);
            double seen = f.number("seen"), correct = f.number("correct");
            if (batches > batchesPerEpoch || !(seen >= batches) || !(correct >= 0 && correct <= seen))
                throw new IllegalArgumentException(f.source() + ": field '" + f.path() + "' holds " + batches + " batches, " + seen + " samples and " + correct
                        + " correct; expected 1.." + batchesPerEpoch + " batches of this run's epoch, at least a sample each, and at most all of them correct");
            return new EpochProgress(batches, f.number("loss_sum"), correct, seen, f.number("seconds"), f.has("ms_per_step") ? f.number("ms_per_step") : Double.NaN);
        }
    }

    /** dataWait: the fraction of the epoch's training time spent waiting for the next batch. */
    record EpochRecord(int epoch, double trainLoss, double trainAccuracy, double validationLoss, double validationAccuracy, double testLoss, double testAccuracy,
                       double seconds, double msPerStep, double dataWait) {
        Map<String, Object> json() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("epoch", (double) epoch);
            m.put("train_loss", trainLoss);
            m.put("train_accuracy", trainAccuracy);
            m.put("validation_loss", validationLoss);
            m.put("validation_accuracy", validationAccuracy);
            m.put("test_loss", testLoss);
            m.put("test_accuracy", testAccuracy);
            m.put("seconds", seconds);
            m.put("ms_per_step", msPerStep);
            m.put("data_wait_fraction", dataWait);
            return m;
        }

        static EpochRecord of(JsonFields f) {
            return new EpochRecord(f.integer("epoch", 1), f.number("train_loss"), f.number("train_accuracy"),
                    f.has("validation_loss") ? f.number("validation_loss") : Double.NaN, f.has("validation_accuracy") ? f.number("validation_accuracy") : Double.NaN,
                    f.number("test_loss"),
                    f.number("test_accuracy"), f.number("seconds"), f.number("ms_per_step"), f.has("data_wait_fraction") ? f.number("data_wait_fraction") : Double.NaN);
        }
    }

    /** Each finished epoch's record, in order. */
    final List<EpochRecord> history = new ArrayList<>();
    /** What happened on the way (eta lowered, rollbacks, failed barrier jobs, the stop), each a line. */
    final List<String> events = new ArrayList<>();
    /** The steps taken. */
    long step;
    /** The learning-rate schedule's base: --lr, halved by each rollback. */
    float baseLr;
    int rollbacks;
    /** The eta the stable relaxation lowered the run's to; 0: not lowered. */
    float eta;
    /** Where the checkpoint a run resumes from was saved inside an epoch, how far that had come; null: at an epoch's end. */
    EpochProgress progress;
    /** What a resume says before it goes on: where it no longer gives the bits of the run never stopped, or runs slower than it could. */
    final List<String> notes = new ArrayList<>();

    private RunState(float lr) { baseLr = lr; }

    /** A run from its start at learning rate {@code lr}. */
    static RunState start(float lr) { return new RunState(lr); }

    /** The epochs finished. */
    int epochsDone() { return history.size(); }

    /**
     * The checkpoint's field 'training' after {@code epochsDone} epochs (inside the next where {@code progress} is then
     * put beside), with the run's {@code settings}.
     */
    Map<String, Object> json(int epochsDone, Map<String, Object> settings, CollapseWatch watch, Optimizer opt) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("epochs_done", (double) epochsDone);
        m.put("steps", (double) step);
        m.put("settings", settings);
        m.put("history", history.stream().map(r -> (Object) r.json()).toList());
        m.put("watch", watch.json());
        m.put("lr_now", TrainingRun.num(opt.learningRate()));
        m.put("lr_base", TrainingRun.num(baseLr));
        m.put("eta_now", TrainingRun.num(eta));
        m.put("rollbacks", (double) rollbacks);
        m.put("events", new ArrayList<Object>(events));
        return m;
    }

    /** Where a run trains: one process (master null), or a Spark master's partitions, averaging and executor threads (null: not recorded, or thread-invariant). */
    private record Place(Object master, double partitions, double averageEvery, Double threads) {
        static Place of(Object spark, Object partitions, Object averageEvery, Object threads) {
            if (spark == null || Setup.SparkChoice.NONE.equals(spark)) return new Place(null, 0, 0, null);
            return new Place(spark, partitions instanceof Double p ? p : 0, averageEvery instanceof Double k ? k : 1, threads instanceof Double t ? t : null);
        }

        /** Whether a run here takes the batches a run at {@code o} takes: Spark's shard plan draws them per partition, and averaging takes its own steps. */
        boolean sameBatches(Place o) { return (master == null) == (o.master == null) && partitions == o.partitions && averageEvery == o.averageEvery; }

        @Override public String toString() {
            return master == null ? "in one process" : "on Spark (" + master + ", " + fmtSetting(partitions) + (partitions == 1 ? " partition" : " partitions")
                    + (threads == null ? "" : " of " + RunState.threads(threads)) + (averageEvery == 1 ? "" : ", local steps averaged every " + fmtSetting(averageEvery)) + ")";
        }
    }

    /**
     * Where a resume goes on elsewhere than the run trained (given --spark none, or other Spark options; a bare resume
     * goes on where it trained): Spark's shard plan gives each partition its own share and order of an epoch's samples,
     * so one process, other partitions or other averaging take other batches from the resume on, another run with the
     * same settings; on the same partitions, other executor threads (not thread-invariant) round the sums otherwise, and
     * averaged local steps start their shards' optimizers afresh.
     * Null where it goes on where it trained, or the checkpoint is older than the record. {@code batchesDone}: the
     * epoch in progress's batches, 0 at an epoch's end.
     */
    private static String sparkNote(JsonFields saved, Map<String, Object> recorded, boolean threadInvariant, int batchesDone) {
        if (!saved.has("spark")) return null; // a checkpoint from before the record
        Place was = Place.of(saved.get("spark"), saved.has("spark_partitions") ? saved.number("spark_partitions") : null,
                saved.has("spark_average_every") ? saved.number("spark_average_every") : null,
                saved.has("spark_threads") && !threadInvariant ? saved.number("spark_threads") : null);
        Place now = Place.of(recorded.get("spark"), recorded.get("spark_partitions"), recorded.get("spark_average_every"),
                was.threads() == null ? null : recorded.get("spark_threads"));
        if (was.master() == null && now.master() == null) return null;
        if (!was.sameBatches(now))
            return "note: the run trained " + new Place(was.master(), was.partitions(), was.averageEvery(), null) + " and goes on "
                    + new Place(now.master(), now.partitions(), now.averageEvery(), null) + ", which draws each epoch's batches otherwise"
                    + (batchesDone > 0 ? " (the epoch in progress from its batch " + (batchesDone + 1) + " on)" : "")
                    + ": from here it is a run with the same settings, not the one never stopped (--resume with no --spark options goes on where it trained)";
        if (was.averageEvery() > 1) // each shard's optimizer lives on its executor, not in the checkpoint
            return "note: the run takes local steps averaged every " + fmtSetting(was.averageEvery()) + ", whose shards' optimizer states live on their executors,"
                    + " not in the checkpoint: they start afresh here, so from here it is not the run never stopped";
        if (was.threads() == null || was.threads().equals(now.threads())) return null;
        return otherThreads(was.toString(), now.toString(), was.threads());
    }

    /** The note for a run that trained {@code was} ("on 2 threads") and goes on {@code now}, whose {@code what} may round otherwise; {@code keepsBits}: how not to. */
    private static String roundsOtherwise(String was, String now, String what, String keepsBits) {
        return "note: the run trained " + was + " and goes on " + now + ", whose " + what + " may round otherwise: from here it may not be bit for bit the run never stopped"
                + keepsBits;
    }

    /** {@link #roundsOtherwise} for sums split over other threads than the run's {@code threads}, in one process or on each executor. */
    private static String otherThreads(String was, String now, double threads) {
        return roundsOtherwise(was, now, "sums", " (--threads " + fmtSetting(threads) + " is; a run started with --thread-invariant is on any threads)");
    }

    /**
     * --resume: the checkpoint in --out, checked to be this run's (the same model and {@code recorded} settings, as
     * this run would record them) and loaded into the model, the optimizer and the watch. A progress inside an epoch
     * is checked against the run's {@code batchesPerEpoch}.
     */
    static RunState resume(TrainingRun.Settings s, Map<String, Object> recorded, ModelSpec spec, Model model, Optimizer opt, CollapseWatch watch, int sweeps,
                           int batchesPerEpoch) throws IOException {
        Checkpoint.Loaded c = Checkpoint.load(s.out());
        if (!c.spec().blocks().equals(spec.blocks()))
            throw new IllegalArgumentException(c.source() + ": checkpoint is for a different model than --model " + s.model());
        JsonFields t = c.training();
        checkSame(t, "algorithm", s.algorithm().id(), c.source());
        checkSame(t, "optimizer", s.optimizer(), c.source());
        checkSame(t, "loss", s.loss().id(), c.source());
        // Settings newer than some checkpoints: compared where the checkpoint has them, against what this run records.
        for (String key : List.of("belief_optimizer", "energy", "nudging", "lr_schedule", "input_range"))
            if (t.object("settings").has(key)) checkSame(t, key, (String) recorded.get(key), c.source());
        // Settings older checkpoints do not record had one value then.
        checkSame(t, "--augment", "augment", "none", s.augmentation().id(), c.source());
        checkSame(t, "--drop-last", "drop_last", "off", s.dropLast() ? "on" : "off", c.source());
        checkSame(t, "--score-whole-batches", "score_whole_batches", "off", s.scoreWholeBatches() ? "on" : "off", c.source());
        checkSame(t, "--shuffle", "shuffle", "on", s.shuffle() ? "on" : "off", c.source());
        checkSame(t, "--thread-invariant", "thread_invariant", "off", s.backend().threadInvariant ? "on" : "off", c.source());
        // A resumed run is the same run: a changed setting would silently make it another one.
        JsonFields saved = t.object("settings");
        if (s.cosineSchedule() && saved.has("epochs") && saved.number("epochs") != s.epochs())
            throw new IllegalArgumentException(c.source() + ": checkpoint was trained with --lr-schedule cosine over --epochs " + fmtSetting(saved.number("epochs"))
                    + ", not " + s.epochs() + "; the schedule spans the whole run, so --resume keeps its --epochs");
        double[] now = {TrainingRun.num(s.lr()), s.seed(), s.batchSize(), TrainingRun.num(s.eta()), sweeps, s.validation(), TrainingRun.num(s.momentum()),
                TrainingRun.num(s.weightDecay())};
        String[] keys = {"lr", "seed", "batch_size", "eta", "n", "validation", "momentum", "weight_decay"};
        String[] options = {"--lr", "--seed", "--batch-size", "--eta", "--n", "--validation", "--momentum", "--weight-decay"};
        for (int i = 0; i < keys.length; i++)
            if (saved.has(keys[i]) && saved.number(keys[i]) != now[i])
                throw new IllegalArgumentException(c.source() + ": checkpoint was trained with " + options[i] + " " + fmtSetting(saved.number(keys[i])) + ", not "
                        + fmtSetting(now[i]) + "; --resume continues the same run");
        // The data's files may have changed since the run read them (regenerated, another download): the same run trains on the same samples.
        if (saved.has("train_digest") && !saved.get("train_digest").equals(recorded.get("train_digest")))
            throw new IllegalArgumentException(c.source() + ": checkpoint was trained on other data than --data " + s.data() + " holds now (the training set's digest "
                    + saved.get("train_digest") + ", now " + recorded.get("train_digest") + "); --resume continues the same run: to train on from its parameters on this"
                    + " data, start a run with --init " + s.out().resolve(Checkpoint.MODEL_FILE));
        List<String> notes = new ArrayList<>();
        if (saved.has("test_digest") && !saved.get("test_digest").equals(recorded.get("test_digest")))
            notes.add("note: --data " + s.data() + " holds another test set than the run scored its epochs on (digest " + saved.get("test_digest") + ", now "
                    + recorded.get("test_digest") + "): its test accuracies before and after this resume are not comparable");
        // Threads split the CPU's sums, so other threads round them otherwise: the run goes on, not as one never stopped would.
        int cores = Runtime.getRuntime().availableProcessors();
        if (saved.has("threads") && recorded.get("threads") instanceof Double threads && !s.backend().threadInvariant) {
            if (saved.number("threads") != threads)
                notes.add(otherThreads("on " + threads(saved.number("threads")), "on " + threads(threads), saved.number("threads")));
            else if (threads > cores) // its own threads, on a smaller machine: exact, but each core takes turns
                notes.add("note: the run goes on on the " + threads(threads) + " it trained on, more than this machine's " + cores
                        + " cores: slower than it could be (--threads " + cores + " is faster, but from there not bit for bit the run never stopped)");
        }
        // Another kind of machine (another CPU's kernels or OpenBLAS core, another GPU) rounds otherwise, on any threads.
        if (saved.has("backend_description") && recorded.get("backend_description") instanceof String here && saved.get("backend").equals(recorded.get("backend"))
                && !machine(saved.string("backend_description")).equals(machine(here)))
            notes.add(roundsOtherwise("on " + machine(saved.string("backend_description")), "on " + machine(here), "kernels", ""));
        String sparkNote = sparkNote(saved, recorded, s.backend().threadInvariant, t.has("epoch_progress") ? (int) t.object("epoch_progress").number("batches") : 0);
        if (sparkNote != null) notes.add(sparkNote);
        try {
            model.loadParameters(c.parameters(), c.source().toString());
            opt.loadState(c.optimizerState(), c.source().toString());
            RunState r = new RunState(0);
            int epochsDone = t.integer("epochs_done", 0);
            r.step = (long) t.number("steps");
            for (Object e : t.list("history")) r.history.add(EpochRecord.of(JsonFields.of(e, c.source().toString(), "history")));
            if (r.history.size() != epochsDone || r.step < 0)
                throw new IllegalArgumentException(c.source() + ": field 'training' is inconsistent: 'epochs_done' is " + epochsDone + " and 'steps' " + r.step
                        + ", but 'history' has " + r.history.size() + " epochs (a tampered or damaged checkpoint)");
            if (t.has("watch")) watch.restore(t.object("watch"));
            if (t.has("lr_now")) opt.learningRate((float) t.number("lr_now"));
            r.baseLr = t.has("lr_base") ? (float) t.number("lr_base") : opt.learningRate();
            if (t.has("rollbacks")) r.rollbacks = t.integer("rollbacks", 0);
            if (t.has("eta_now")) {
                r.eta = (float) t.number("eta_now");
                if (!(r.eta > 0 && r.eta <= s.eta()))
                    throw new IllegalArgumentException(c.source() + ": field 'training.eta_now' is " + r.eta + "; expected a lowered eta in (0, " + s.eta() + "]");
            }
            if (t.has("events")) for (Object e : t.list("events")) r.events.add(String.valueOf(e));
            if (t.has("epoch_progress")) r.progress = EpochProgress.of(t.object("epoch_progress"), batchesPerEpoch);
            r.notes.addAll(notes);
            return r;
        } catch (IllegalArgumentException e) {
            // A value the checks above let through but the optimizer, watch or trainer refuse: name the file it came from.
            String m = e.getMessage() != null ? e.getMessage() : e.toString();
            throw m.contains(c.source().toString()) ? e : new IllegalArgumentException(c.source() + ": field 'training' holds a value this run cannot use: " + m, e);
        }
    }

    /**
     * A backend's description without its threads (the threads note speaks of them) and a GPU's index (another of the
     * same kind computes alike): the kind of machine whose kernels set a run's bits.
     */
    static String machine(String description) { return description.replaceFirst(", \\d+ threads?(, thread-invariant)?;", ";").replaceFirst(" \\(device \\d+\\)", ""); }

    private static String threads(double n) { return fmtSetting(n) + (n == 1 ? " thread" : " threads"); }

    /** A recorded number as an option takes it: a whole number without its ".0". */
    static String fmtSetting(double v) { return v == Math.rint(v) && Math.abs(v) < 1e15 ? Long.toString((long) v) : Double.toString(v); }

    private static void checkSame(JsonFields t, String key, String value, Path source) {
        String saved = t.object("settings").string(key);
        if (!saved.equals(value)) throw new IllegalArgumentException(source + ": checkpoint was trained with " + key + " " + saved + ", not " + value + "; --resume continues the same run");
    }

    /** As above for a setting checkpoints before it lack: those were trained with {@code before}. */
    private static void checkSame(JsonFields t, String option, String key, String before, String value, Path source) {
        String saved = t.object("settings").has(key) ? t.object("settings").string(key) : before;
        if (!saved.equals(value)) throw new IllegalArgumentException(source + ": checkpoint was trained with " + option + " " + saved + ", not " + value + "; --resume continues the same run");
    }
}
