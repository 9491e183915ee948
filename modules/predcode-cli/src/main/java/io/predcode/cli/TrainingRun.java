package io.predcode.cli;

import io.predcode.core.io.AtomicFiles;
import io.predcode.core.io.Checkpoint;
import io.predcode.cli.RunState.EpochProgress;
import io.predcode.cli.RunState.EpochRecord;
import io.predcode.core.json.JsonFields;
import io.predcode.core.nn.Loss;
import io.predcode.core.nn.Model;
import io.predcode.core.nn.ModelSpec;
import io.predcode.core.optim.Adam;
import io.predcode.core.optim.Optimizer;
import io.predcode.core.optim.Sgd;
import io.predcode.core.pc.Algorithm;
import io.predcode.core.pc.BeliefOptimizer;
import io.predcode.core.pc.Energy;
import io.predcode.core.pc.Nudging;
import io.predcode.core.pc.Alignment;
import io.predcode.core.pc.DivergenceException;
import io.predcode.core.pc.PcEngine;
import io.predcode.core.pc.Trainer;
import io.predcode.spark.DataParallelRun;
import io.predcode.spark.RunSpec;
import io.predcode.spark.SparkTraining;
import io.predcode.data.Batches;
import io.predcode.data.DataSources;
import io.predcode.data.DataSplit;
import io.predcode.core.serve.Preprocessing;
import io.predcode.data.Dataset;
import io.predcode.spi.Backend;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One training run: its data, model and backend, the epoch loop, and its checkpoints. What the run has done (and a
 * resumed run reads back) is {@link RunState}; metrics.csv, metrics.json and training.png are {@link RunMetrics}'.
 */
final class TrainingRun {
    /**
     * validation: the fraction of the training set held out to choose the best epoch and to detect a
     * collapse (0: none, the training set's own numbers are used); onCollapse: "stop" or "rollback";
     * monitorEvery: steps between alignment measurements (0: off); energy and nudging: pc's and ipc's;
     * cosineSchedule: the learning rate follows {@link #scheduled} instead of staying at lr; spark: null
     * for training in this process; symmetricInputs: the data's [0, 1] values are mapped to [-1, 1]; augmentation: --augment,
     * parsed with black where the mapped data has it; dropLast: --drop-last as given (Spark always takes whole batches);
     * scoreWholeBatches: validation and test scored in whole batches of batchSize ({@link #scored}).
     */
    record Settings(Setup.BackendChoice backend, Algorithm algorithm, String model, String data, int epochs, int batchSize, String optimizer,
                    float lr, float momentum, float weightDecay, float eta, int n, Loss loss, long seed, Path out, boolean resume, boolean quiet,
                    double validation, double collapseMargin, int patience, String onCollapse, int maxRollbacks, int monitorEvery, boolean stableRelaxation,
                    Path init, boolean shuffle, long maxSteps, BeliefOptimizer beliefOptimizer, Energy energy, Nudging nudging, boolean cosineSchedule,
                    Setup.SparkChoice spark, boolean symmetricInputs, io.predcode.data.Augmentation augmentation, boolean dropLast, boolean scoreWholeBatches,
                    PcEngine.Condense condense, SaveEvery saveEvery) {
        /**
         * These settings with another seed, into another folder, resumed or not, on a backend choice and quiet or not: one
         * run of a sweep ({@link SeedSweep}, {@link Sweep}: runs trained at once take fewer threads each and no progress bar).
         */
        Settings forRun(long seed, Path out, boolean resume, Setup.BackendChoice backend, boolean quiet) {
            return new Settings(backend, algorithm, model, data, epochs, batchSize, optimizer, lr, momentum, weightDecay, eta, n, loss, seed, out, resume, quiet,
                    validation, collapseMargin, patience, onCollapse, maxRollbacks, monitorEvery, stableRelaxation, init, shuffle, maxSteps, beliefOptimizer, energy,
                    nudging, cosineSchedule, spark, symmetricInputs, augmentation, dropLast, scoreWholeBatches, condense, saveEvery);
        }
    }

    /** --checkpoint-every: a checkpoint inside an epoch every {@code steps} steps, or every {@code nanos}; neither (0): at epoch ends only. */
    record SaveEvery(long steps, long nanos) {
        static SaveEvery parse(String text) {
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("(\\d{1,9})([smh]?)").matcher(text.strip());
            if (!m.matches()) throw new IllegalArgumentException("--checkpoint-every must be a number of steps (500), a duration (30s, 10m, 2h) or 0, got '" + text + "'");
            long v = Long.parseLong(m.group(1));
            if (m.group(2).isEmpty()) return new SaveEvery(v, 0);
            long seconds = v * switch (m.group(2)) { case "s" -> 1; case "m" -> 60; default -> 3600; }; // at most 3.6e12
            return new SaveEvery(0, seconds > Long.MAX_VALUE / 1_000_000_000L ? Long.MAX_VALUE : seconds * 1_000_000_000L); // past 292 years: never
        }

        /** As --checkpoint-every takes it: "500" steps, "10m", "90s", or "0". */
        String text() {
            long s = nanos / 1_000_000_000L;
            return steps > 0 ? Long.toString(steps) : nanos <= 0 ? "0" : s % 3600 == 0 ? s / 3600 + "h" : s % 60 == 0 ? s / 60 + "m" : s + "s";
        }

        /** Whether a checkpoint is due {@code stepsSince} steps and {@code nanosSince} nanoseconds after the last (once a step: no allocation). */
        boolean due(long stepsSince, long nanosSince) {
            return steps > 0 ? stepsSince >= steps : nanos > 0 && nanosSince >= nanos;
        }
    }

    /** Where the best state is kept, beside the last one in --out. */
    static final String BEST_DIR = "best";
    /** How much a rollback lowers the learning rate. */
    static final float ROLLBACK_LR_FACTOR = 0.5f;
    /** Validation and test sets are scored in batches of up to this many samples. */
    private static final int SCORE_BATCH = 1000;

    /**
     * Where --max-steps stopped a run inside an epoch (0-based {@code epoch}, {@code batch} batches of it done): the
     * epoch's training scores so far (NaN where this process took none of its steps) and the model's there.
     */
    record StoppedInside(long step, int epoch, int batch, double trainLoss, double trainAccuracy, Scoring.Score validation, Scoring.Score test) {
        Map<String, Object> json() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("step", (double) step);
            m.put("epoch", (double) epoch + 1);
            m.put("batch", (double) batch);
            m.put("train_loss", trainLoss);
            m.put("train_accuracy", trainAccuracy);
            if (validation != null) {
                m.put("validation_loss", validation.loss());
                m.put("validation_accuracy", validation.accuracy());
            }
            m.put("test_loss", test.loss());
            m.put("test_accuracy", test.accuracy());
            return m;
        }
    }

    private final Settings s;
    private final PrintWriter out;

    /** Asks the run to stop at a step boundary, saving where it stopped. */
    private final Interruption stop;

    /** Where a run's data come from: {@link #data} itself, or a sweep's one copy of it (and of its split) for the runs it trains at once. */
    interface DataLoader {
        DataSplit load() throws IOException;

        /** The run's training part and validation part (null: none) of {@code data}'s training set, as {@link Dataset#holdOut} splits it. */
        default Dataset[] holdOut(DataSplit data, double fraction, long seed) throws IOException { return data.train().holdOut(fraction, seed); }

        /** {@code data}'s training and test sets' digests ({@link Dataset#digest}), which its checkpoints record. */
        default String[] digests(DataSplit data) throws IOException { return new String[]{data.train().digest(), data.test().digest()}; }
    }

    private final DataLoader loader;

    /** --data as the run trains on it: read, and mapped to [-1, 1] with --input-range -1:1. */
    static DataSplit data(Settings s) throws IOException {
        DataSplit data = DataSources.load(s.data());
        return s.symmetricInputs() ? data.affine(2f, -1f) : data; // and the checkpoint's preprocessing with it, so serving and eval do the same
    }

    TrainingRun(Settings s, PrintWriter out, Interruption stop) { this(s, out, stop, () -> data(s)); }

    TrainingRun(Settings s, PrintWriter out, Interruption stop, DataLoader loader) {
        this.s = s;
        this.out = out;
        this.stop = stop;
        this.loader = loader;
    }

    /**
     * What the run trains with, fixed once it starts: the data (the training set's part), the validation set (null:
     * none) and the sets as each epoch scores them, the batch size, the sweeps, the steps an epoch and in all (the
     * learning-rate schedule's span), and the open backend, model, engine, optimizer and trainer; spark is null in one
     * process.
     */
    private record Live(DataSplit data, Dataset train, Dataset validation, Dataset scoredValidation, Dataset scoredTest, int batchSize, int sweeps,
                        int stepsPerEpoch, long totalSteps, Backend be, Model model, PcEngine engine, Optimizer opt, Trainer trainer, SparkTraining spark,
                        CollapseWatch watch) {}

    /** How many validation and test samples each epoch scores (fewer than the sets' with --score-whole-batches). */
    private int validationScored, testScored;
    /** The samples held out for validation. */
    private int validationSamples;
    /** Where the run's checkpoint in --out holds it (null: none yet), after how many steps, and when it was saved (--checkpoint-every counts from it). */
    private String savedAt;
    private long savedAtStep, savedAtNanos;
    /** --out, held for this run while it trains. */
    private RunLock lock;
    /** Where --max-steps stopped the run inside an epoch; null where it did not. */
    private StoppedInside stoppedInside;
    /** The epoch after which the run pauses, resumable, its schedule still spanning --epochs (a grid's successive halving); 0: none. */
    private int pauseAfter;
    /** What the run has done, as its checkpoints record it; its metrics files; why it stopped, as metrics.json and the last lines say. */
    private RunState state;
    private RunMetrics metrics;
    private String stopReason;
    /** The digests of the training and test sets as the run reads them ({@link Dataset#digest}): a resume checks that the files still hold them. */
    private String trainDigest, testDigest;
    /** The last barrier-job failure reported (Spark). */
    private String barrierNote;

    /** Pauses the run after epoch {@code epochs} (0: none), saved as at any epoch's end, exit 0: --resume goes on as if it had not paused. */
    TrainingRun pauseAfter(int epochs) {
        this.pauseAfter = epochs;
        return this;
    }

    /** Trains; the exit code: 0, 3 (a collapse), or 128 + a signal's number where one stopped the run. */
    int run() throws IOException {
        try {
            return train();
        } finally {
            if (lock != null) lock.close();
        }
    }

    private int train() throws IOException {
        DataSplit data = loader.load();
        if (s.init() != null && !s.resume()) initColumns(data);
        String[] digests = loader.digests(data);
        trainDigest = digests[0];
        testDigest = digests[1];
        checkClasses(data);
        ModelSpec spec = Setup.model(s.model(), data, s.data());
        int[] input = Setup.inputShapeOfModelOption(spec, data, s.model());
        prepareOut();
        Dataset[] split = loader.holdOut(data, s.validation(), s.seed());
        Dataset train = split[0], validation = split[1];
        validationSamples = validation == null ? 0 : validation.size();
        // The whole training set is not needed once split: only its parts stay in memory for the run (a data set near the
        // heap's size was held twice).
        data = new DataSplit(train, data.test(), data.pixelScale(), data.classNames(), data.pixelShift(), data.featureNames());
        s.augmentation().check(train);
        // Buffers are sized by the batch: a batch larger than the training set would only allocate air.
        int batchSize = Math.min(s.batchSize(), train.size());
        Dataset scoredValidation = validation == null ? null : scored(validation, batchSize, "validation"), scoredTest = scored(data.test(), batchSize, "test");
        validationScored = scoredValidation == null ? 0 : scoredValidation.size();
        testScored = scoredTest.size();
        if (s.scoreWholeBatches())
            out.printf("scoring in whole batches of %d: %stest %d of %d%n", batchSize,
                    validation == null ? "" : "validation " + validationScored + " of " + validation.size() + ", ", testScored, data.test().size());
        if (batchSize < s.batchSize()) out.printf("note: --batch-size %d is more than the %d training samples; using %d%n", s.batchSize(), train.size(), batchSize);
        int sweeps = s.n() > 0 ? s.n() : spec.depth();
        try (Backend be = checkedBackend(spec, input, batchSize);
             Model model = Model.create(spec, input, be, s.seed());
             PcEngine engine = new PcEngine(model, s.loss()).beliefOptimizer(s.beliefOptimizer()).energy(s.energy()).nudging(s.nudging()).condense(s.condense());
             Optimizer opt = switch (s.optimizer()) {
                 case "sgd" -> new Sgd(model, s.lr(), s.momentum(), s.weightDecay());
                 case "adamw" -> Adam.adamW(model, s.lr(), s.weightDecay());
                 default -> new Adam(model, s.lr(), 0.9f, 0.999f, 1e-8f, s.weightDecay());
             };
             DataParallelRun parallel = s.spark() == null ? null : startSpark(spec, input, train.size(), batchSize, sweeps, be, model, opt)) {
            if (s.loss() == Loss.MSE && data.classes() != model.activationShape(model.depth())[0])
                throw new IllegalArgumentException("--loss mse uses one-hot targets: the model outputs " + Arrays.toString(model.activationShape(model.depth())) + " but the data has " + data.classes() + " classes");
            if (s.init() != null && !s.resume()) loadInit(model, s.init());
            CollapseWatch watch = new CollapseWatch(s.collapseMargin(), s.patience());
            int energyLayers = s.algorithm().hasErrors() ? model.depth() : 0; // energy_layer1..L columns (on Spark, the global batch's)
            metrics = new RunMetrics(s.out(), out, monitoredBlocks(model), energyLayers);
            SparkTraining spark = parallel == null ? null : parallel.training();
            int stepsPerEpoch = spark != null ? spark.plan().stepsPerEpoch() : Batches.stepsPerEpoch(train.size(), batchSize, dropLast());
            state = s.resume() ? RunState.resume(s, settingsJson(be, sweeps), spec, model, opt, watch, sweeps, stepsPerEpoch) : RunState.start(s.lr());
            if (s.resume()) metrics.keepRowsUpTo(state.step);
            boolean standard = s.algorithm() == Algorithm.PC || s.algorithm() == Algorithm.IPC; // relaxed by a belief optimizer on an energy
            // Backprop relaxes nothing: its line names no step size or sweeps.
            String relaxation = s.algorithm() == Algorithm.BACKPROP ? "" : ", eta " + s.eta() + ", n " + sweeps
                    + (standard ? ", beliefs " + s.beliefOptimizer() + ", " + s.energy().id() + " energy" + (s.nudging().kind() == Nudging.Kind.NONE ? "" : ", nudging " + s.nudging())
                    : s.algorithm() == Algorithm.STRICT && s.condense() != PcEngine.Condense.AUTO ? ", condense " + s.condense().name().toLowerCase(java.util.Locale.ROOT) : "");
            out.printf("training %s on %s%s (validation: %s) with %s (%s%s), %s lr %s, batch %d, %d epochs, backend %s%n", s.model(), train, s.augmentation().active() ? ", augmented " + s.augmentation().id() : "",
                    validation == null ? "none" : validation.size() + " held out", s.algorithm().id(), s.loss().id(), relaxation, s.optimizer(), opt.learningRate(),
                    batchSize, s.epochs(), be.description());
            Trainer trainer = new Trainer(engine, opt, s.algorithm(), s.eta(), sweeps).monitorEvery(s.monitorEvery()).stableRelaxation(s.stableRelaxation())
                    .recordEnergies(energyLayers > 0);
            String resumedAt = s.resume() ? checkpointAt(state.step, state.epochsDone(), state.progress, stepsPerEpoch) : null;
            if (resumedAt != null) out.println("resuming " + s.out() + " " + resumedAt);
            state.notes.forEach(out::println);
            trainer.resumeSteps(state.step);
            if (state.eta > 0) trainer.resumeEta(state.eta);
            if (state.eta > 0 && spark != null) spark.resumeEta(state.eta);
            state.eta = trainer.eta();
            if (!state.history.isEmpty() || state.progress != null) saved(resumedAt, state.step);
            else savedAtNanos = System.nanoTime();
            // The schedule spans --epochs (--max-steps only stops early): a run stopped and resumed follows the same curve.
            Live run = new Live(data, train, validation, scoredValidation, scoredTest, batchSize, sweeps, stepsPerEpoch, (long) s.epochs() * stepsPerEpoch,
                    be, model, engine, opt, trainer, spark, watch);
            int exit = epochs(run);
            finish(run, exit);
            return exit;
        }
    }

    /** Trains the epochs left; the exit code. */
    private int epochs(Live run) throws IOException {
        int lastEpoch = pauseAfter > 0 ? Math.min(pauseAfter, s.epochs()) : s.epochs();
        stopReason = lastEpoch < s.epochs() ? "paused after epoch " + lastEpoch + " of " + s.epochs() + "; --resume goes on" : "all " + s.epochs() + " epochs done";
        int firstEpoch = state.epochsDone();
        if (s.resume() && firstEpoch >= s.epochs()) // a finished run resumed: say how it trains on, if it can
            stopReason += " before this resume; " + (s.cosineSchedule() ? "its cosine schedule spans them, so it trains on no further" : "give --epochs more than " + s.epochs() + " to train on");
        else if (s.maxSteps() > 0 && state.step >= s.maxSteps()) { // a resume past its limit: nothing to train, nor to score again
            stopReason = "reached --max-steps " + s.maxSteps() + " before this resume (--max-steps counts all of a run's steps; it has taken " + state.step + ")";
            return 0;
        }
        for (int epoch = firstEpoch; epoch < lastEpoch; epoch++) {
            // A run resumed inside this epoch goes on from its next batch, with the sums of the batches before.
            Epoch e = trainEpoch(run, new Epoch(epoch, epoch == firstEpoch ? state.progress : null));
            if (e.limitedAt >= 0) // scored once the progress bar is gone
                stoppedInside = stoppedInside(e, run);
            if (e.interrupted != null || stoppedInside != null) {
                stopReason = e.interrupted != null ? interruptedReason(e.interrupted) : "reached --max-steps " + s.maxSteps() + resumeNote();
                return e.interrupted != null ? stop.exitCode() : 0;
            }
            if (closeEpoch(run, e)) return 3;
            if (s.maxSteps() > 0 && state.step >= s.maxSteps()) {
                stopReason = "reached --max-steps " + s.maxSteps();
                return 0;
            }
            String interrupted = stop.requested(state.step);
            if (interrupted != null) { // it came during the epoch's last step, its scoring or its save
                stopReason = interruptedReason(interrupted);
                return stop.exitCode();
            }
        }
        return 0;
    }

    /** One epoch's sums as its steps go: from zero, or from where a checkpoint inside it left them ({@code before}). */
    private static final class Epoch {
        final int index;
        final EpochProgress before;
        /** When it started (set back by the seconds a resumed epoch had already taken), and when this process began training it. */
        final long t0, trainStart = System.nanoTime();
        double lossSum, correct, seen;
        final List<Double> stepMs = new ArrayList<>();
        long waitNanos;
        /** Why a stop was asked for inside it (null: none), and the batches done where --max-steps stopped the run in it (-1: it did not). */
        String interrupted;
        int limitedAt = -1;

        Epoch(int index, EpochProgress before) {
            this.index = index;
            this.before = before;
            t0 = System.nanoTime() - (before == null ? 0 : (long) (before.seconds() * 1e9));
            if (before != null) {
                lossSum = before.lossSum();
                correct = before.correct();
                seen = before.seen();
            }
        }

        int firstBatch() { return before == null ? 0 : before.batches(); }

        void add(Trainer.Step r, int size, double ms) {
            stepMs.add(ms);
            lossSum += r.loss() * size;
            seen += size;
            correct += Math.max(0, r.correct());
        }

        double seconds() { return (System.nanoTime() - t0) / 1e9; }

        /**
         * Its median step time: over its steps in this process or, in an epoch resumed after more of its steps than it
         * then took, the median those had (a few steps after a resume include the start's warm-up: Spark's first job
         * made one step of 19 ms look like 2.4 s).
         */
        double msPerStep() {
            return before != null && stepMs.size() < before.batches() && !Double.isNaN(before.msPerStep()) ? before.msPerStep() : median(stepMs);
        }

        EpochProgress progress(int batches) { return new EpochProgress(batches, lossSum, correct, seen, seconds(), msPerStep()); }
    }

    /** Takes the epoch's steps until it ends, a stop is asked for, or --max-steps; with checkpoints inside it as they fall due. */
    private Epoch trainEpoch(Live run, Epoch e) throws IOException {
        float lrBase = state.baseLr;
        // The learning rate of the run's step g: what this process sets before each step, and what Spark's barrier jobs take for theirs.
        java.util.function.LongFunction<Float> lrAt = g -> s.cosineSchedule() ? scheduled(lrBase, g, run.totalSteps()) : run.opt().learningRate();
        try (Steps steps = run.spark() != null
                ? Steps.spark(run.spark(), e.index, e.firstBatch(), s.spark().averageEvery, s.spark().stepsPerJob, s.spark().jobSeconds, s.monitorEvery(), state.step - e.firstBatch(), s.maxSteps(), lrAt)
                : Steps.local(run.train(), run.batchSize(), s.seed(), e.index, e.firstBatch(), s.shuffle(), s.loss(), s.augmentation(), dropLast(), run.trainer());
             ProgressBar bar = s.quiet() ? null : new ProgressBarBuilder().setTaskName("epoch " + (e.index + 1) + "/" + s.epochs())
                     .setInitialMax(dropLast() ? (long) run.stepsPerEpoch() * run.batchSize() : run.train().size()).startsFrom((long) e.seen, java.time.Duration.ZERO)
                     .setStyle(ProgressBarStyle.ASCII).setUnit(" samples", 1).showSpeed().setUpdateIntervalMillis(250).continuousUpdate().build()) {
            while (true) {
                // --max-steps on an epoch's last batch: the epoch closes as any other, in closeEpoch.
                boolean limit = s.maxSteps() > 0 && state.step >= s.maxSteps();
                if (limit && steps.index() + 1 >= run.stepsPerEpoch()) break;
                // Between steps only (on Spark, between jobs), where the model and the optimizer are one step's: a checkpoint
                // every --checkpoint-every, and one where the run was asked to stop or reached --max-steps inside the epoch,
                // so that --resume goes on with its next batch. One due at the epoch's last batch is the epoch's own save.
                if (limit || steps.atBoundary()) {
                    e.interrupted = limit ? null : stop.requested(state.step);
                    boolean due = steps.index() + 1 < run.stepsPerEpoch() && s.saveEvery().due(state.step - savedAtStep, System.nanoTime() - savedAtNanos);
                    if (state.step > savedAtStep && (e.interrupted != null || limit || due))
                        // Without a progress bar (--quiet, a batch job's log) a long epoch would say nothing until it ends.
                        checkpointInside(run, e, steps.index() + 1, bar == null && e.interrupted == null && !limit);
                    if (limit) e.limitedAt = steps.index() + 1;
                    if (e.interrupted != null || limit) break;
                }
                if (s.cosineSchedule()) run.opt().learningRate(lrAt.apply(state.step));
                Trainer.Step r;
                try {
                    r = steps.next();
                } catch (DivergenceException d) {
                    metrics.writeCsv();
                    metrics.chart(state.history);
                    throw new DivergenceException(state.step + 1, "training diverged at step " + (state.step + 1) + " (epoch " + (e.index + 1) + ", batch " + (steps.index() + 1)
                            + "): " + d.reason() + "; the last good checkpoint is " + lastGood() + bestNote(run.watch()) + ". Try a smaller --lr or --eta.");
                }
                if (r == null) break;
                tookStep(e, r, steps.size(), steps.millis(), bar);
            }
            e.waitNanos = steps.waitNanos();
        }
        return e;
    }

    /** Records a step the epoch took: its sums, its row in metrics.csv, a lowered eta, the progress bar. */
    private void tookStep(Epoch e, Trainer.Step r, int size, double ms, ProgressBar bar) {
        state.step++;
        if (r.eta() != state.eta) {
            String event = String.format(java.util.Locale.ROOT, "step %d: %s's relaxation raised the energy at eta %s; relaxing with eta %s from here on",
                    state.step, s.algorithm() == Algorithm.STRICT ? "STRICT" : "PC", state.eta, r.eta());
            state.events.add(event);
            if (bar == null) out.println(event);
            state.eta = r.eta();
        }
        e.add(r, size, ms);
        metrics.step(state.step, e.index + 1, r, size, ms);
        if (bar != null) {
            bar.stepBy(size);
            bar.setExtraMessage(String.format(java.util.Locale.ROOT, " loss %.4f acc %.1f%%", e.lossSum / e.seen, 100 * e.correct / e.seen));
        }
    }

    /** A checkpoint inside epoch {@code e}, {@code batches} of its batches done; {@code say}: a line says so. */
    private void checkpointInside(Live run, Epoch e, int batches, boolean say) throws IOException {
        Map<String, Object> training = state.json(e.index, settingsJson(run.be(), run.sweeps()), run.watch(), run.opt());
        training.put("epoch_progress", e.progress(batches).json());
        String at = inside(state.step, e.index, batches, run.stepsPerEpoch());
        metrics.writeCsv(); // first: rows past a checkpoint are dropped on --resume, rows missing before it would be lost
        save(s.out(), run, training, at);
        saved("at " + at, state.step);
        if (say) out.printf("%s: train loss %s acc %.2f%% so far; checkpoint saved%n", at, Setup.fmt(e.lossSum / e.seen), 100 * e.correct / e.seen);
    }

    /**
     * An epoch's end: scored, recorded and said; the best state kept; a collapse rolled back or stopped; saved. Whether
     * the run stops here on a collapse.
     */
    private boolean closeEpoch(Live run, Epoch e) throws IOException {
        int epoch = e.index;
        if (run.spark() != null && run.spark().barrierFailure() != null && !run.spark().barrierFailure().equals(barrierNote)) {
            barrierNote = run.spark().barrierFailure();
            String event = "epoch " + (epoch + 1) + ": a barrier job failed (" + barrierNote + "); its steps ran again, a job each, with the same result";
            state.events.add(event);
            out.println(event);
        }
        double dataWait = (double) e.waitNanos / (System.nanoTime() - e.trainStart);
        Scoring.Score val = run.validation() == null ? null : Scoring.evaluate(run.engine(), run.scoredValidation(), SCORE_BATCH);
        Scoring.Score test = Scoring.evaluate(run.engine(), run.scoredTest(), SCORE_BATCH);
        double seconds = e.seconds();
        EpochRecord rec = new EpochRecord(epoch + 1, e.lossSum / e.seen, e.correct / e.seen, val == null ? Double.NaN : val.loss(), val == null ? Double.NaN : val.accuracy(),
                test.loss(), test.accuracy(), seconds, e.msPerStep(), dataWait);
        state.history.add(rec);
        metrics.epochEnd(val);
        // The test set is reported, never used to choose: the best epoch and a collapse are judged on the validation set.
        CollapseWatch watch = run.watch();
        CollapseWatch.Verdict verdict = watch.observe(epoch + 1, val != null ? val.accuracy() : rec.trainAccuracy(), val != null ? val.loss() : rec.trainLoss(), rec.trainLoss());
        out.printf("epoch %d/%d  train loss %s acc %.2f%%  %stest loss %s acc %.2f%%  %.1f s, %.2f ms/step, data wait %.1f%%%s%n", epoch + 1, s.epochs(),
                Setup.fmt(rec.trainLoss()), 100 * rec.trainAccuracy(),
                val == null ? "" : String.format(java.util.Locale.ROOT, "val loss %s acc %.2f%%  ", Setup.fmt(val.loss()), 100 * val.accuracy()),
                Setup.fmt(rec.testLoss()), 100 * rec.testAccuracy(), seconds, rec.msPerStep(), 100 * dataWait,
                verdict == CollapseWatch.Verdict.BEST ? "  (best)" : verdict == CollapseWatch.Verdict.OK ? "" : "  (collapsing: " + watch.badEpochs() + "/" + s.patience() + ")");
        out.flush();
        metrics.writeCsv();
        if (verdict == CollapseWatch.Verdict.BEST)
            save(s.out().resolve(BEST_DIR), run, state.json(epoch + 1, settingsJson(run.be(), run.sweeps()), watch, run.opt()), "epoch " + (epoch + 1));
        boolean collapsed = verdict == CollapseWatch.Verdict.COLLAPSED;
        String collapse = collapsed ? String.format(java.util.Locale.ROOT, "collapse from epoch %d: %s %.2f%% at epoch %d against its best %.2f%% (epoch %d) for %d epochs",
                watch.firstBadEpoch(), val != null ? "validation accuracy" : "training accuracy", 100 * (val != null ? val.accuracy() : rec.trainAccuracy()), epoch + 1,
                100 * watch.bestAccuracy(), watch.bestEpoch(), watch.badEpochs()) : null;
        if (collapsed && s.onCollapse().equals("rollback") && state.rollbacks < s.maxRollbacks()) {
            rollBack(run, epoch, collapse);
            collapsed = false;
        }
        save(s.out(), run, state.json(epoch + 1, settingsJson(run.be(), run.sweeps()), watch, run.opt()), "epoch " + (epoch + 1));
        saved(checkpointAt(state.step, epoch + 1, null, run.stepsPerEpoch()), state.step);
        if (collapsed) {
            stopReason = collapse + (s.onCollapse().equals("rollback") ? " (after " + state.rollbacks + " rollbacks)" : "");
            state.events.add("epoch " + (epoch + 1) + ": stopped, " + stopReason);
        }
        metrics.writeJson(metricsJson(run));
        metrics.chartIfDue(state.history);
        return collapsed;
    }

    /** --on-collapse rollback: the best state back, at half the learning rate. */
    private void rollBack(Live run, int epoch, String collapse) throws IOException {
        Checkpoint.Loaded best = Checkpoint.load(s.out().resolve(BEST_DIR));
        run.model().loadParameters(best.parameters(), best.source().toString());
        run.opt().loadState(best.optimizerState(), best.source().toString());
        run.opt().learningRate(run.opt().learningRate() * ROLLBACK_LR_FACTOR);
        state.baseLr *= ROLLBACK_LR_FACTOR;
        state.rollbacks++;
        run.watch().rolledBack();
        String event = collapse + "; rolled back to epoch " + run.watch().bestEpoch() + " and lowered the learning rate to " + run.opt().learningRate();
        state.events.add("epoch " + (epoch + 1) + ": " + event);
        out.println(event);
    }

    /**
     * What to try where standard PC collapsed after relaxing far (eta times n at least 1, Torch2PC's defaults give 2):
     * where labels contradict each other its errors never shrink and its updates drift from the gradient (on R's
     * Titanic data its output block's at 74 degrees, bench/results/tabular-text-2026-12-04.md), where PCX's settings
     * kept it with backprop. Null for any other stop.
     */
    private String collapseHint(int exit, int sweeps) {
        if (exit != 3 || !stopReason.startsWith("collapse") || s.algorithm() != Algorithm.PC || s.eta() * sweeps < 1) return null;
        return String.format(java.util.Locale.ROOT, "PC relaxed far (eta %s, n %d): its updates can drift from the gradient, most where labels contradict each"
                + " other (predcode compare --algorithm pc measures it); PCX's settings, --loss mse --n 5 --eta 0.026 --belief-optimizer sgd:0.1 --lr 0.0003, are steadier", s.eta(), sweeps);
    }

    /** The run's last files and lines, however it stopped ({@code exit}). */
    private void finish(Live run, int exit) throws IOException {
        List<EpochRecord> history = state.history;
        if (metrics.chartBehind(history.size()) || exit != 0) metrics.chart(history); // the steps since the last epoch too
        if (exit == 0 && run.watch().badEpochs() > 0)
            stopReason += String.format(java.util.Locale.ROOT, "; the last %d epoch(s) fell away from the best (a collapse is likely): use the best checkpoint", run.watch().badEpochs());
        metrics.writeJson(metricsJson(run));
        out.printf("stopped: %s%n", stopReason);
        String hint = collapseHint(exit, run.sweeps());
        if (hint != null) out.println("hint: " + hint);
        if (run.watch().bestEpoch() > 0) {
            EpochRecord best = history.get(run.watch().bestEpoch() - 1);
            out.printf("best: epoch %d, %s accuracy %.2f%% (test %.2f%%), kept in %s%n", best.epoch(), run.validation() != null ? "validation" : "training",
                    100 * run.watch().bestAccuracy(), 100 * best.testAccuracy(), s.out().resolve(BEST_DIR));
        }
        if (!history.isEmpty())
            out.printf("last: epoch %d, test accuracy %.2f%%, in %s (metrics.csv, metrics.json, %s%s)%n", history.getLast().epoch(), 100 * history.getLast().testAccuracy(),
                    s.out(), Awt.available() ? "training.png, " : "", Checkpoint.RESUME_FILE);
    }

    /**
     * Spark for --spark: the executors build the same model from its spec and read --data themselves,
     * each its shard; this process keeps the parameters and the optimizer, and evaluates.
     */
    private DataParallelRun startSpark(ModelSpec spec, int[] input, int trainSize, int batchSize, int sweeps, Backend be, Model model, Optimizer opt) {
        Setup.SparkChoice sp = s.spark();
        RunSpec run = new RunSpec(java.util.UUID.randomUUID().toString(), spec.toJson(), input, s.data(), s.validation(), s.seed(), s.shuffle(), s.algorithm().id(),
                s.eta(), sweeps, s.loss().id(), s.energy().id(), s.beliefOptimizer().toString(), s.nudging().toString(), batchSize, sp.partitions(), be.name(),
                executorThreads(), -1, s.symmetricInputs() ? 2f : 1f, s.symmetricInputs() ? -1f : 0f, s.augmentation().id(),
                s.stableRelaxation(), s.backend().threadInvariant, trainDigest);
        DataParallelRun r = DataParallelRun.start(sp.master, sp.conf, java.time.Duration.ofSeconds(sp.timeoutSeconds), run, trainSize, model, opt);
        out.printf("spark: %s, %d partition%s of %d samples a step, %d steps an epoch%s%n", sp.master, run.partitions(), run.partitions() == 1 ? "" : "s", run.localBatch(), r.training().plan().stepsPerEpoch(),
                sp.averageEvery > 1 ? ", local steps averaged every " + sp.averageEvery + " (not exact; each shard's optimizer state stays on its executor)"
                        : sp.stepsPerJob > 1 ? ", up to " + sp.stepsPerJob + " steps per barrier job, each " + sp.jobSeconds + " s at most" : ", a job per step");
        return r;
    }

    /**
     * The backend, once the whole run is known to fit in it: parameters, their updates, the optimizer's
     * state and the workspace, all counted before anything is allocated (the parts check themselves
     * again as they allocate).
     */
    private Backend checkedBackend(ModelSpec spec, int[] input, int batchSize) {
        Backend be = s.backend().open();
        try {
            int copies = 2 + (s.optimizer().equals("sgd") ? (s.momentum() > 0 ? 1 : 0) : 2);
            long params = spec.parameterCount();
            long bytes = params > Long.MAX_VALUE / 4 / copies ? Long.MAX_VALUE : 4L * copies * params;
            long work = PcEngine.workspaceBytes(spec, input, Math.max(batchSize, SCORE_BATCH)); // training batches, and scoring's
            io.predcode.core.internal.Memory.require(be, bytes > Long.MAX_VALUE - work ? Long.MAX_VALUE : bytes + work,
                    String.format(java.util.Locale.ROOT, "this run (%,d parameters x %d copies and a workspace for a batch of %d)", params, copies, Math.max(batchSize, SCORE_BATCH)));
            return be;
        } catch (RuntimeException e) {
            be.close();
            throw e;
        }
    }

    /** --init: every parameter from a safetensors file under PyTorch names, each with exactly the model's shape. */
    /**
     * Refuses a training set of one class (nothing to tell apart: its loss is 0 from the first step), and says where there
     * are about as many classes as samples (a table's label taken from a column of measurements or ids, say).
     */
    private void checkClasses(DataSplit data) {
        int[] counts = new int[data.classes()];
        for (float label : data.train().labels()) counts[(int) label]++;
        int present = 0, seen = 0, samples = data.train().size();
        for (int k = 0; k < counts.length; k++) if (counts[k] > 0) { present++; seen = k; }
        if (present < 2)
            throw new IllegalArgumentException("--data " + s.data() + ": every training sample is of one class ('" + data.classNames().get(seen) + "'); nothing to tell apart");
        if (present > 2 && present > samples / 2)
            out.printf("note: %d classes among %d training samples, about one sample a class: is the label the right column?%n", present, samples);
    }

    /**
     * Refuses a table whose columns are not those of the --init model's table, in its order: its first layer's weights
     * would meet other features than they were trained on (the same width, another order: no error but wrong answers).
     */
    private void initColumns(DataSplit data) throws IOException {
        List<String> trained = Checkpoint.featureNames(s.init());
        if (!trained.isEmpty() && !data.featureNames().isEmpty() && !trained.equals(data.featureNames()))
            throw new IllegalArgumentException("--init " + s.init() + " was trained on the columns " + trained + ", but --data " + s.data() + " has " + data.featureNames()
                    + "; write the table with the model's columns in its order");
    }

    private static void loadInit(Model model, Path file) throws IOException {
        io.predcode.core.io.Safetensors.Contents c = io.predcode.core.io.Safetensors.read(file);
        Checkpoint.checkShapes(c.tensors(), "", model.spec().parameterShapes(), file);
        Map<String, float[]> values = io.predcode.core.io.Safetensors.values(c.tensors(), "");
        String bad = Checkpoint.firstNotFinite(values);
        if (bad != null) throw new IllegalArgumentException(file + ": parameter '" + bad + "' is not finite; a run cannot start from it (--init)");
        model.loadParameters(values, file.toString());
    }

    /**
     * Saves a checkpoint of {@code what} (e.g. "epoch 3") into {@code dir}, with the data's preprocessing and class
     * names. Parameters that became NaN or infinite on the last step are refused by {@link Checkpoint#save} before any
     * file is written; the run then stops, naming the last good checkpoint.
     */
    private void save(Path dir, Live run, Map<String, Object> training, String what) throws IOException {
        long step = state.step;
        try {
            // Raw values (bytes, digits' 0..16) become the model's inputs by the data's scale: a service passes them as they come.
            Checkpoint.save(dir, run.model(), run.opt(), training, new Preprocessing(run.data().pixelScale(), run.data().pixelShift()), run.data().classNames(),
                    run.data().featureNames());
        } catch (Checkpoint.NotFiniteException e) {
            throw new DivergenceException(step, "parameter '" + e.parameter() + "' is not finite after " + what + (what.startsWith("step ") ? "" : " (step " + step + ")")
                    + "; no checkpoint written, the last good one is "
                    + lastGood() + bestNote(run.watch()) + ". Try a smaller --lr or --eta.");
        } catch (java.nio.file.FileSystemException e) {
            // A full disk, most often: say what the run still has, so that it can go on where it stopped once there is room.
            Path resume = s.out().resolve(Checkpoint.RESUME_FILE);
            throw new java.nio.file.FileSystemException(e.getFile(), e.getOtherFile(), (e.getReason() == null ? "not written" : e.getReason()) + "; saving "
                    + what + " stopped the run" + (java.nio.file.Files.exists(resume) ? "; " + resume + " is a whole checkpoint: --resume continues from it" : ""));
        }
    }

    /** The run's checkpoint now holds it {@code at} (as {@link #checkpointAt} says), after {@code step} steps. */
    private void saved(String at, long step) {
        savedAt = at;
        savedAtStep = step;
        savedAtNanos = System.nanoTime();
    }

    /** Where a checkpoint is in the run: "after epoch E (step S)", or inside epoch E + 1 "at " {@link #inside}. */
    private static String checkpointAt(long step, int epochsDone, EpochProgress progress, int batchesPerEpoch) {
        return progress == null ? "after epoch " + epochsDone + " (step " + step + ")" : "at " + inside(step, epochsDone, progress.batches(), batchesPerEpoch);
    }

    /** A step inside an epoch (0-based {@code epoch}): "step S (epoch E, batch B of N)". */
    private static String inside(long step, int epoch, int batch, int batchesPerEpoch) {
        return "step " + step + " (epoch " + (epoch + 1) + ", batch " + batch + " of " + batchesPerEpoch + ")";
    }

    private String lastGood() { return savedAt == null ? "none (nothing saved yet)" : s.out().resolve(Checkpoint.RESUME_FILE) + " " + savedAt; }

    /** The run stopped by --max-steps inside an epoch: scored there, and said in a line as an epoch's end would be. */
    private StoppedInside stoppedInside(Epoch e, Live run) {
        Scoring.Score val = run.validation() == null ? null : Scoring.evaluate(run.engine(), run.scoredValidation(), SCORE_BATCH);
        Scoring.Score t = Scoring.evaluate(run.engine(), run.scoredTest(), SCORE_BATCH);
        double seen = e.seen;
        StoppedInside at = new StoppedInside(state.step, e.index, e.limitedAt, seen > 0 ? e.lossSum / seen : Double.NaN, seen > 0 ? e.correct / seen : Double.NaN, val, t);
        out.printf("%s  %s%stest loss %s acc %.2f%%%n", inside(state.step, e.index, e.limitedAt, run.stepsPerEpoch()),
                seen > 0 ? String.format(java.util.Locale.ROOT, "train loss %s acc %.2f%% so far  ", Setup.fmt(at.trainLoss()), 100 * at.trainAccuracy()) : "",
                val == null ? "" : String.format(java.util.Locale.ROOT, "val loss %s acc %.2f%%  ", Setup.fmt(val.loss()), 100 * val.accuracy()),
                Setup.fmt(t.loss()), 100 * t.accuracy());
        return at;
    }

    /** Why a run asked to stop stopped, and where it goes on. */
    private String interruptedReason(String why) {
        return "interrupted by " + why + (savedAt == null ? " before its first checkpoint; nothing to resume" : resumeNote());
    }

    /** Where the run's checkpoint holds it, for a run that stops there. */
    private String resumeNote() {
        return "; " + s.out().resolve(Checkpoint.RESUME_FILE) + " holds the run " + savedAt + ": --resume continues from there";
    }

    private static String bestNote(CollapseWatch watch) {
        return watch.bestEpoch() > 0 ? "; the best state (epoch " + watch.bestEpoch() + ") is in " + BEST_DIR + "/" : "";
    }

    /** The blocks the monitor reports (those with parameters), when it is on; empty otherwise. */
    private int[] monitoredBlocks(Model model) { return s.monitorEvery() == 0 ? new int[0] : Alignment.blocksOf(model); }

    private void prepareOut() throws IOException {
        Path dir = s.out();
        if (Files.exists(dir) && !Files.isDirectory(dir)) throw new IllegalArgumentException("--out " + dir + " is a file, not a folder");
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new java.nio.file.AccessDeniedException(dir.toString(), null, "--out folder cannot be created (" + Main.message(e) + ")");
        }
        if (!Files.isWritable(dir)) throw new java.nio.file.AccessDeniedException(dir.toString(), null, "--out folder is not writable");
        lock = RunLock.take(dir); // before the stale files go: they may be another run's, in flight
        // Then, as it may be what filled the disk.
        int stale = AtomicFiles.removeStale(dir) + AtomicFiles.removeStale(dir.resolve(BEST_DIR));
        if (stale > 0) out.printf("removed %d temporary file(s) an interrupted run left in %s%n", stale, dir);
        // Before any training: a folder that cannot take a file (read-only mounts, /proc, a full disk) is found now, not after an epoch.
        Path probe = dir.resolve(".predcode-probe");
        try {
            Files.writeString(probe, "probe\n");
        } catch (IOException e) {
            String why = e instanceof java.nio.file.FileSystemException f && f.getReason() != null ? f.getReason() : e.getMessage() != null ? e.getMessage() : e.getClass().getSimpleName();
            throw new java.nio.file.AccessDeniedException(dir.toString(), null, "--out folder cannot take a file (" + why + ")");
        } finally {
            Files.deleteIfExists(probe);
        }
        if (s.resume() && !Files.exists(dir.resolve(Checkpoint.RESUME_FILE))) {
            Path summary = Setup.sweepSummary(dir);
            throw new java.nio.file.NoSuchFileException(dir.resolve(Checkpoint.RESUME_FILE).toString(), null, "--resume needs a checkpoint in --out, none found"
                    + (summary != null ? "; " + dir + " holds a sweep (" + summary.getFileName() + "): resume it with its --grid or --seeds"
                    : Setup.unfinishedSweep(dir).isEmpty() ? "" : "; " + dir + " " + Setup.UNFINISHED + ": resume it with its --grid or --seeds"));
        }
    }

    /** The CPU threads each Spark executor's shard splits its sums over: --threads, or one where it is 0 (all cores: an executor shares them). */
    private int executorThreads() { return s.backend().threads > 0 ? s.backend().threads : 1; }

    /** Whether an epoch drops its last partial batch: --drop-last, and always on Spark (whole global batches). */
    private boolean dropLast() { return s.dropLast() || s.spark() != null; }

    /** Whether a run's recorded settings say --thread-invariant: a run from before the option did not record it, and had it off. */
    static boolean threadInvariant(JsonFields settings) { return settings.has("thread_invariant") && "on".equals(settings.get("thread_invariant")); }

    private Map<String, Object> settingsJson(Backend be, int sweeps) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("backend", be.name());
        m.put("backend_description", be.description());
        m.put("thread_invariant", s.backend().threadInvariant ? "on" : "off");
        // The CPU's threads split its sums, so they set its bits (unless thread-invariant): a resume goes on with them.
        if (s.spark() == null && be.name().equals("cpu")) m.put("threads", (double) s.backend().resolvedThreads());
        // Likewise Spark's partitions, whose sums it adds in their order: a resume says where it goes on otherwise.
        m.put("spark", s.spark() == null ? "none" : s.spark().master);
        if (s.spark() != null) {
            m.put("spark_partitions", (double) s.spark().partitions());
            m.put("spark_threads", (double) executorThreads());
            m.put("spark_average_every", (double) s.spark().averageEvery);
        }
        m.put("algorithm", s.algorithm().id());
        m.put("model", s.model());
        m.put("data", s.data());
        m.put("train_digest", trainDigest);
        m.put("test_digest", testDigest);
        m.put("epochs", (double) s.epochs());
        m.put("batch_size", (double) s.batchSize());
        m.put("optimizer", s.optimizer());
        m.put("belief_optimizer", s.beliefOptimizer().toString());
        m.put("condense", s.condense().name().toLowerCase(java.util.Locale.ROOT));
        m.put("energy", s.energy().id());
        m.put("nudging", s.nudging().toString());
        m.put("lr_schedule", s.cosineSchedule() ? "cosine" : "constant");
        m.put("lr", num(s.lr()));
        m.put("momentum", num(s.momentum()));
        m.put("weight_decay", num(s.weightDecay()));
        m.put("eta", num(s.eta()));
        m.put("n", (double) sweeps);
        m.put("loss", s.loss().id());
        m.put("seed", (double) s.seed());
        m.put("validation", s.validation());
        m.put("collapse_margin", s.collapseMargin());
        m.put("patience", (double) s.patience());
        m.put("on_collapse", s.onCollapse());
        m.put("max_rollbacks", (double) s.maxRollbacks());
        m.put("checkpoint_every", s.saveEvery().text()); // how the run saves, not what it computes: a resume may change it
        m.put("monitor_every", (double) s.monitorEvery());
        m.put("stable_relaxation", s.stableRelaxation() ? "on" : "off");
        m.put("input_range", s.symmetricInputs() ? "-1:1" : "0:1");
        m.put("augment", s.augmentation().id());
        m.put("drop_last", s.dropLast() ? "on" : "off"); // the option: a run resumes across Spark and one process as before
        m.put("score_whole_batches", s.scoreWholeBatches() ? "on" : "off");
        m.put("shuffle", s.shuffle() ? "on" : "off");
        return m;
    }

    /** metrics.json: the settings, the data's sizes, each epoch, the best, why the run stopped. */
    private Map<String, Object> metricsJson(Live run) {
        List<EpochRecord> history = state.history;
        DataSplit data = run.data();
        CollapseWatch watch = run.watch();
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("settings", settingsJson(run.be(), run.sweeps()));
        m.put("train_samples", (double) data.train().size()); // the training part: data holds it once split
        m.put("validation_samples", (double) validationSamples);
        m.put("test_samples", (double) data.test().size());
        if (s.scoreWholeBatches()) { // the samples each epoch's scores are over
            m.put("validation_samples_scored", (double) validationScored);
            m.put("test_samples_scored", (double) testScored);
        }
        m.put("best_epoch", (double) watch.bestEpoch());
        m.put("best_checkpoint", s.out().resolve(BEST_DIR).toString());
        m.put("stop_reason", stopReason);
        m.put("events", new ArrayList<Object>(state.events));
        m.put("epochs", history.stream().map(r -> (Object) r.json()).toList());
        if (!history.isEmpty()) m.put("final_test_accuracy", history.getLast().testAccuracy()); // none where a stop came inside the first epoch
        if (watch.bestEpoch() > 0) {
            m.put("best_selection_accuracy", watch.bestAccuracy()); // validation accuracy, or training accuracy without a validation set
            m.put("best_test_accuracy", history.get(watch.bestEpoch() - 1).testAccuracy());
        }
        if (!history.isEmpty()) m.put("final_test_loss", history.getLast().testLoss());
        if (stoppedInside != null) m.put("stopped_inside_epoch", stoppedInside.json()); // --max-steps inside an epoch: the model's scores there
        m.put("ms_per_step", median(history.stream().map(EpochRecord::msPerStep).toList()));
        m.put("data_wait_fraction", history.stream().mapToDouble(EpochRecord::dataWait).max().orElse(Double.NaN));
        return m;
    }

    /**
     * The cosine schedule's learning rate before step {@code step} (0-based) of {@code total}: from
     * base up to 1.1 x base over the first 10% of the steps, then a half cosine down to 0.1 x base
     * (PCX's optax warmup_cosine_decay_schedule with its benchmark's settings).
     */
    static float scheduled(float base, long step, long total) {
        double warm = 0.1 * total, peak = 1.1, end = 0.1, f;
        if (step < warm) f = 1 + (peak - 1) * step / warm;
        else f = end + (peak - end) * 0.5 * (1 + Math.cos(Math.PI * Math.min(1, (step - warm) / Math.max(1, total - warm))));
        return (float) (base * f);
    }

    /** A float setting as the decimal the user typed (0.002, not 0.0020000000949949026). */
    static double num(float f) { return Double.parseDouble(Float.toString(f)); }

    static double median(List<Double> v) {
        if (v.isEmpty()) return Double.NaN;
        double[] a = v.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        return a.length % 2 == 1 ? a[a.length / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
    }

    /** The samples of {@code set} an epoch scores: all of them, or with --score-whole-batches {@link Scoring#wholeBatches}. */
    private Dataset scored(Dataset set, int batchSize, String which) {
        return s.scoreWholeBatches() ? Scoring.wholeBatches(set, batchSize, which) : set;
    }
}
