package io.predcode.cli;

import io.predcode.core.io.AtomicFiles;
import io.predcode.core.io.Checkpoint;
import io.predcode.core.json.Json;
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

/** One training run: data, model, the epoch loop, metrics, chart and checkpoints. */
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

        /** Whether a checkpoint is due {@code stepsSince} steps and {@code nanosSince} nanoseconds after the last (once a step: no allocation). */
        boolean due(long stepsSince, long nanosSince) {
            return steps > 0 ? stepsSince >= steps : nanos > 0 && nanosSince >= nanos;
        }
    }

    /**
     * How far a run had come inside an epoch when it saved: the batches taken, their summed loss, correct count and
     * samples, the epoch's seconds so far and its median step time; the resumed epoch reports the loss and accuracy the
     * whole one would have (its step time as {@link #msPerStep} takes it).
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

    /** Where the best state is kept, beside the last one in --out. */
    static final String BEST_DIR = "best";
    /** How much a rollback lowers the learning rate. */
    static final float ROLLBACK_LR_FACTOR = 0.5f;
    /**
     * training.png is redrawn after an epoch at most this often, and whenever the run stops: drawing it
     * takes about a quarter of a second (AWT code that runs too seldom to be compiled), which redrawn
     * every epoch cost a 12-epoch run of PCX's MLP 15 s against 10.5 s without the chart.
     */
    static final long CHART_EVERY_NANOS = 10_000_000_000L;

    record Score(double loss, double accuracy) {}

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

    /**
     * Where --max-steps stopped a run inside an epoch (0-based {@code epoch}, {@code batch} batches of it done): the
     * epoch's training scores so far (NaN where this process took none of its steps) and the model's there.
     */
    record StoppedInside(long step, int epoch, int batch, double trainLoss, double trainAccuracy, Score validation, Score test) {
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
    /** When training.png was last drawn (System.nanoTime), of how many epochs; whether the note that it cannot be was given. */
    private long chartDrawnAt;
    private int chartEpochs = -1;
    private boolean chartNoted;

    /** Asks the run to stop at a step boundary, saving where it stopped. */
    private final Interruption stop;

    /** Where a run's data come from: {@link #data} itself, or a sweep's one copy of it (and of its split) for the runs it trains at once. */
    interface DataLoader {
        DataSplit load() throws IOException;

        /** The run's training part and validation part (null: none) of {@code data}'s training set, as {@link Dataset#holdOut} splits it. */
        default Dataset[] holdOut(DataSplit data, double fraction, long seed) throws IOException { return data.train().holdOut(fraction, seed); }
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
        ModelSpec spec = Setup.model(s.model(), data.classes());
        int[] input = Setup.inputShape(spec, data, "--model " + s.model());
        prepareOut();
        Dataset[] split = loader.holdOut(data, s.validation(), s.seed());
        Dataset train = split[0], validation = split[1];
        validationSamples = validation == null ? 0 : validation.size();
        // The whole training set is not needed once split: only its parts stay in memory for the run (a data set near the
        // heap's size was held twice).
        data = new DataSplit(train, data.test(), data.pixelScale(), data.classNames(), data.pixelShift());
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
            int[] monitored = monitoredBlocks(model);
            int energyLayers = s.algorithm().hasErrors() ? model.depth() : 0; // energy_layer1..L columns (on Spark, the global batch's)
            StringBuilder csv = new StringBuilder(csvHeader(monitored, energyLayers));
            SparkTraining spark = parallel == null ? null : parallel.training();
            int stepsPerEpoch = spark != null ? spark.plan().stepsPerEpoch() : Batches.stepsPerEpoch(train.size(), batchSize, dropLast());
            Resumed from = s.resume() ? resume(spec, model, opt, watch, be, sweeps, stepsPerEpoch, csv)
                    : new Resumed(0, 0, new ArrayList<>(), s.lr(), 0, 0, new ArrayList<>(), null);
            List<EpochRecord> history = from.history();
            List<String> events = from.events();
            int firstEpoch = from.epochsDone(), rollbacks = from.rollbacks();
            float baseLr = from.baseLr(); // the schedule's base: --lr, halved by each rollback
            float resumedEta = from.eta();
            long step = from.steps();
            EpochProgress progress = from.progress(); // a checkpoint saved inside an epoch: how far it had come
            boolean standard = s.algorithm() == Algorithm.PC || s.algorithm() == Algorithm.IPC; // relaxed by a belief optimizer on an energy
            out.printf("training %s on %s%s (validation: %s) with %s (%s, eta %s, n %d%s), %s lr %s, batch %d, %d epochs, backend %s%n", s.model(), train, s.augmentation().active() ? ", augmented " + s.augmentation().id() : "",
                    validation == null ? "none" : validation.size() + " held out", s.algorithm().id(), s.loss().id(), s.eta(), sweeps,
                    standard ? ", beliefs " + s.beliefOptimizer() + ", " + s.energy().id() + " energy"
                            + (s.nudging().kind() == Nudging.Kind.NONE ? "" : ", nudging " + s.nudging())
                            : s.algorithm() == Algorithm.STRICT && s.condense() != PcEngine.Condense.AUTO ? ", condense " + s.condense().name().toLowerCase(java.util.Locale.ROOT) : "", s.optimizer(), opt.learningRate(),
                    batchSize, s.epochs(), be.description());
            Trainer trainer = new Trainer(engine, opt, s.algorithm(), s.eta(), sweeps).monitorEvery(s.monitorEvery()).stableRelaxation(s.stableRelaxation())
                    .recordEnergies(energyLayers > 0);
            // The schedule spans --epochs (--max-steps only stops early): a run stopped and resumed follows the same curve.
            long totalSteps = (long) s.epochs() * stepsPerEpoch;
            String resumedAt = s.resume() ? checkpointAt(step, firstEpoch, progress, stepsPerEpoch) : null;
            if (resumedAt != null) out.println("resuming " + s.out() + " " + resumedAt);
            trainer.resumeSteps(step);
            if (resumedEta > 0) trainer.resumeEta(resumedEta);
            if (resumedEta > 0 && parallel != null) parallel.training().resumeEta(resumedEta);
            int lastEpoch = pauseAfter > 0 ? Math.min(pauseAfter, s.epochs()) : s.epochs();
            String stopReason = lastEpoch < s.epochs() ? "paused after epoch " + lastEpoch + " of " + s.epochs() + "; --resume goes on" : "all " + s.epochs() + " epochs done";
            String barrierNote = null; // the last barrier-job failure reported
            float etaNow = trainer.eta();
            int exit = 0;
            if (!history.isEmpty() || progress != null) saved(resumedAt, step);
            else savedAtNanos = System.nanoTime();
            for (int epoch = firstEpoch; epoch < lastEpoch; epoch++) {
                // A run resumed inside this epoch goes on from its next batch, with the sums of the batches before.
                EpochProgress before = epoch == firstEpoch ? progress : null;
                int firstBatch = before == null ? 0 : before.batches();
                long t0 = System.nanoTime() - (before == null ? 0 : (long) (before.seconds() * 1e9));
                double lossSum = before == null ? 0 : before.lossSum(), correct = before == null ? 0 : before.correct(), seen = before == null ? 0 : before.seen();
                long waitNanos = 0, trainStart = System.nanoTime();
                List<Double> stepMs = new ArrayList<>();
                String interrupted = null;
                int limitedAt = -1; // the batches done where --max-steps stopped the run inside this epoch
                float lrBase = baseLr;
                // The learning rate of the run's step g: what this process sets before each step, and what Spark's barrier jobs take for theirs.
                java.util.function.LongFunction<Float> lrAt = g -> s.cosineSchedule() ? scheduled(lrBase, g, totalSteps) : opt.learningRate();
                try (Steps steps = spark != null ? Steps.spark(spark, epoch, firstBatch, s.spark().averageEvery, s.spark().stepsPerJob, s.monitorEvery(), step - firstBatch, s.maxSteps(), lrAt)
                        : Steps.local(train, batchSize, s.seed(), epoch, firstBatch, s.shuffle(), s.loss(), s.augmentation(), dropLast(), trainer);
                     ProgressBar bar = s.quiet() ? null : new ProgressBarBuilder().setTaskName("epoch " + (epoch + 1) + "/" + s.epochs())
                             .setInitialMax(dropLast() ? (long) stepsPerEpoch * batchSize : train.size()).startsFrom((long) seen, java.time.Duration.ZERO).setStyle(ProgressBarStyle.ASCII)
                             .setUnit(" samples", 1).showSpeed().setUpdateIntervalMillis(250).continuousUpdate().build()) {
                    while (true) {
                        // --max-steps on an epoch's last batch: the epoch closes as any other, below.
                        boolean limit = s.maxSteps() > 0 && step >= s.maxSteps();
                        if (limit && steps.index() + 1 >= stepsPerEpoch) break;
                        // Between steps only (on Spark, between jobs), where the model and the optimizer are one step's: a checkpoint
                        // every --checkpoint-every, and one where the run was asked to stop or reached --max-steps inside the epoch,
                        // so that --resume goes on with its next batch.
                        if (limit || steps.atBoundary()) {
                            interrupted = limit ? null : stop.requested(step);
                            if (step > savedAtStep && (interrupted != null || limit || s.saveEvery().due(step - savedAtStep, System.nanoTime() - savedAtNanos))) {
                                Map<String, Object> state = trainingState(epoch, step, history, be, sweeps, watch, opt, baseLr, rollbacks, events, etaNow);
                                state.put("epoch_progress", new EpochProgress(steps.index() + 1, lossSum, correct, seen, (System.nanoTime() - t0) / 1e9,
                                        msPerStep(stepMs, before)).json());
                                String at = inside(step, epoch, steps.index() + 1, stepsPerEpoch);
                                writeCsv(csv); // first: rows past a checkpoint are dropped on --resume, rows missing before it would be lost
                                save(s.out(), model, opt, state, data, at, step, watch);
                                saved("at " + at, step);
                                // Without a progress bar (--quiet, a batch job's log) a long epoch would say nothing until it ends.
                                if (bar == null && interrupted == null && !limit)
                                    out.printf("%s: train loss %s acc %.2f%% so far; checkpoint saved%n", at, Setup.fmt(lossSum / seen), 100 * correct / seen);
                            }
                            if (limit) limitedAt = steps.index() + 1;
                            if (interrupted != null || limit) break;
                        }
                        if (s.cosineSchedule()) opt.learningRate(lrAt.apply(step));
                        Trainer.Step r;
                        try {
                            r = steps.next();
                        } catch (DivergenceException d) {
                            writeCsv(csv);
                            chart(csv, history, monitored);
                            throw new DivergenceException(step + 1, "training diverged at step " + (step + 1) + " (epoch " + (epoch + 1) + ", batch " + (steps.index() + 1)
                                    + "): " + d.reason() + "; the last good checkpoint is " + lastGood() + bestNote(watch) + ". Try a smaller --lr or --eta.");
                        }
                        if (r == null) break;
                        double ms = steps.millis();
                        int size = steps.size();
                        step++;
                        if (r.eta() != etaNow) {
                            String event = String.format(java.util.Locale.ROOT, "step %d: %s's relaxation raised the energy at eta %s; relaxing with eta %s from here on",
                                    step, s.algorithm() == io.predcode.core.pc.Algorithm.STRICT ? "STRICT" : "PC", etaNow, r.eta());
                            events.add(event);
                            if (bar == null) out.println(event);
                            etaNow = r.eta();
                        }
                        stepMs.add(ms);
                        lossSum += r.loss() * size;
                        seen += size;
                        double batchAcc = r.correct() >= 0 ? (double) r.correct() / size : Double.NaN;
                        correct += Math.max(0, r.correct());
                        csv.append(step).append(',').append(epoch + 1).append(',').append(r.loss()).append(',').append(r.correct() >= 0 ? Setup.fmt(batchAcc) : "").append(',')
                                .append(String.format(java.util.Locale.ROOT, "%.3f", ms));
                        appendAlignment(csv, monitored, r.alignment());
                        for (int l = 1; l <= energyLayers; l++) csv.append(',').append(r.energies() == null ? "" : String.format(java.util.Locale.ROOT, "%.6g", r.energies()[l]));
                        csv.append(",,\n"); // the validation columns, filled on the epoch's last row
                        if (bar != null) {
                            bar.stepBy(size);
                            bar.setExtraMessage(String.format(java.util.Locale.ROOT, " loss %.4f acc %.1f%%", lossSum / seen, 100 * correct / seen));
                        }
                    }
                    waitNanos = steps.waitNanos();
                }
                if (limitedAt >= 0) // scored once the progress bar is gone
                    stoppedInside = stoppedInside(epoch, limitedAt, stepsPerEpoch, step, lossSum, correct, seen, engine, scoredValidation, scoredTest);
                if (interrupted != null || stoppedInside != null) {
                    stopReason = interrupted != null ? interruptedReason(interrupted) : "reached --max-steps " + s.maxSteps() + resumeNote();
                    exit = interrupted != null ? stop.exitCode() : 0;
                    break;
                }
                if (spark != null && spark.barrierFailure() != null && !spark.barrierFailure().equals(barrierNote)) {
                    barrierNote = spark.barrierFailure();
                    String event = "epoch " + (epoch + 1) + ": a barrier job failed (" + barrierNote + "); its steps ran again, a job each, with the same result";
                    events.add(event);
                    out.println(event);
                }
                double dataWait = (double) waitNanos / (System.nanoTime() - trainStart);
                Score val = validation == null ? null : evaluate(engine, scoredValidation, 1000);
                Score test = evaluate(engine, scoredTest, 1000);
                double seconds = (System.nanoTime() - t0) / 1e9;
                EpochRecord rec = new EpochRecord(epoch + 1, lossSum / seen, correct / seen, val == null ? Double.NaN : val.loss(), val == null ? Double.NaN : val.accuracy(),
                        test.loss(), test.accuracy(), seconds, msPerStep(stepMs, before), dataWait);
                history.add(rec);
                csv.setLength(csv.length() - 3);
                csv.append(',').append(val == null ? "" : Setup.fmt(val.loss())).append(',').append(val == null ? "" : Setup.fmt(val.accuracy())).append('\n');
                // The test set is reported, never used to choose: the best epoch and a collapse are judged on the validation set.
                CollapseWatch.Verdict verdict = watch.observe(epoch + 1, val != null ? val.accuracy() : rec.trainAccuracy(), val != null ? val.loss() : rec.trainLoss(), rec.trainLoss());
                out.printf("epoch %d/%d  train loss %s acc %.2f%%  %stest loss %s acc %.2f%%  %.1f s, %.2f ms/step, data wait %.1f%%%s%n", epoch + 1, s.epochs(),
                        Setup.fmt(rec.trainLoss()), 100 * rec.trainAccuracy(),
                        val == null ? "" : String.format(java.util.Locale.ROOT, "val loss %s acc %.2f%%  ", Setup.fmt(val.loss()), 100 * val.accuracy()),
                        Setup.fmt(rec.testLoss()), 100 * rec.testAccuracy(), seconds, rec.msPerStep(), 100 * dataWait,
                        verdict == CollapseWatch.Verdict.BEST ? "  (best)" : verdict == CollapseWatch.Verdict.OK ? "" : "  (collapsing: " + watch.badEpochs() + "/" + s.patience() + ")");
                out.flush();
                writeCsv(csv);
                if (verdict == CollapseWatch.Verdict.BEST)
                    save(s.out().resolve(BEST_DIR), model, opt, trainingState(epoch + 1, step, history, be, sweeps, watch, opt, baseLr, rollbacks, events, etaNow), data,
                            "epoch " + (epoch + 1), step, watch);
                boolean collapsed = verdict == CollapseWatch.Verdict.COLLAPSED;
                String collapse = collapsed ? String.format(java.util.Locale.ROOT, "collapse from epoch %d: %s %.2f%% at epoch %d against its best %.2f%% (epoch %d) for %d epochs",
                        watch.firstBadEpoch(), val != null ? "validation accuracy" : "training accuracy", 100 * (val != null ? val.accuracy() : rec.trainAccuracy()), epoch + 1,
                        100 * watch.bestAccuracy(), watch.bestEpoch(), watch.badEpochs()) : null;
                if (collapsed && s.onCollapse().equals("rollback") && rollbacks < s.maxRollbacks()) {
                    Checkpoint.Loaded best = Checkpoint.load(s.out().resolve(BEST_DIR));
                    model.loadParameters(best.parameters(), best.source().toString());
                    opt.loadState(best.optimizerState(), best.source().toString());
                    opt.learningRate(opt.learningRate() * ROLLBACK_LR_FACTOR);
                    baseLr *= ROLLBACK_LR_FACTOR;
                    rollbacks++;
                    watch.rolledBack();
                    String event = collapse + "; rolled back to epoch " + watch.bestEpoch() + " and lowered the learning rate to " + opt.learningRate();
                    events.add("epoch " + (epoch + 1) + ": " + event);
                    out.println(event);
                    collapsed = false;
                }
                save(s.out(), model, opt, trainingState(epoch + 1, step, history, be, sweeps, watch, opt, baseLr, rollbacks, events, etaNow), data, "epoch " + (epoch + 1), step, watch);
                saved(checkpointAt(step, epoch + 1, null, stepsPerEpoch), step);
                if (collapsed) {
                    stopReason = collapse + (s.onCollapse().equals("rollback") ? " (after " + rollbacks + " rollbacks)" : "");
                    events.add("epoch " + (epoch + 1) + ": stopped, " + stopReason);
                    exit = 3;
                }
                AtomicFiles.writeString(s.out().resolve("metrics.json"), Json.write(metricsJson(history, be, sweeps, data, watch, stopReason, events), 2) + "\n");
                if (chartEpochs < 0 || System.nanoTime() - chartDrawnAt >= CHART_EVERY_NANOS) chart(csv, history, monitored);
                if (collapsed) break;
                if (s.maxSteps() > 0 && step >= s.maxSteps()) {
                    stopReason = "reached --max-steps " + s.maxSteps();
                    break;
                }
                if ((interrupted = stop.requested(step)) != null) { // it came during the epoch's last step, its scoring or its save
                    stopReason = interruptedReason(interrupted);
                    exit = stop.exitCode();
                    break;
                }
            }
            if (chartEpochs != history.size() || exit != 0) chart(csv, history, monitored); // the steps since the last epoch too
            if (exit == 0 && watch.badEpochs() > 0)
                stopReason += String.format(java.util.Locale.ROOT, "; the last %d epoch(s) fell away from the best (a collapse is likely): use the best checkpoint", watch.badEpochs());
            AtomicFiles.writeString(s.out().resolve("metrics.json"), Json.write(metricsJson(history, be, sweeps, data, watch, stopReason, events), 2) + "\n");
            out.printf("stopped: %s%n", stopReason);
            if (watch.bestEpoch() > 0) {
                EpochRecord best = history.get(watch.bestEpoch() - 1);
                out.printf("best: epoch %d, %s accuracy %.2f%% (test %.2f%%), kept in %s%n", best.epoch(), validation != null ? "validation" : "training",
                        100 * watch.bestAccuracy(), 100 * best.testAccuracy(), s.out().resolve(BEST_DIR));
            }
            if (!history.isEmpty())
                out.printf("last: epoch %d, test accuracy %.2f%%, in %s (metrics.csv, metrics.json, %s%s)%n", history.getLast().epoch(), 100 * history.getLast().testAccuracy(),
                        s.out(), Awt.available() ? "training.png, " : "", Checkpoint.RESUME_FILE);
            return exit;
        }
    }

    /**
     * Where a run goes on from: its epochs and steps done, their records, the learning rate's base, the rollbacks, a
     * lowered eta (0: none), the events, and where the checkpoint was saved inside an epoch, how far it had come (null:
     * at an epoch's end).
     */
    private record Resumed(int epochsDone, long steps, List<EpochRecord> history, float baseLr, int rollbacks, float eta, List<String> events, EpochProgress progress) {}

    /**
     * --resume: the checkpoint in --out, checked to be this run's (the same model and settings) and loaded into the
     * model, the optimizer and the watch; the rows of metrics.csv up to its step are appended to {@code csv}, which
     * holds the header. A progress inside an epoch is checked against the run's {@code batchesPerEpoch}.
     */
    private Resumed resume(ModelSpec spec, Model model, Optimizer opt, CollapseWatch watch, Backend be, int sweeps, int batchesPerEpoch, StringBuilder csv)
            throws IOException {
        List<EpochRecord> history = new ArrayList<>();
        List<String> events = new ArrayList<>();
        int firstEpoch, rollbacks = 0;
        float baseLr, resumedEta = 0;
        long step;
        EpochProgress progress = null;
        Checkpoint.Loaded c = Checkpoint.load(s.out());
        if (!c.spec().blocks().equals(spec.blocks()))
            throw new IllegalArgumentException(c.source() + ": checkpoint is for a different model than --model " + s.model());
        JsonFields t = c.training();
        checkSame(t, "algorithm", s.algorithm().id(), c.source());
        checkSame(t, "optimizer", s.optimizer(), c.source());
        checkSame(t, "loss", s.loss().id(), c.source());
        // Settings newer than some checkpoints: compared where the checkpoint has them, against what this run records.
        Map<String, Object> recorded = settingsJson(be, sweeps);
        for (String key : List.of("belief_optimizer", "energy", "nudging", "lr_schedule", "input_range"))
            if (t.object("settings").has(key)) checkSame(t, key, (String) recorded.get(key), c.source());
        // Settings older checkpoints do not record had one value then.
        checkSame(t, "--augment", "augment", "none", s.augmentation().id(), c.source());
        checkSame(t, "--drop-last", "drop_last", "off", s.dropLast() ? "on" : "off", c.source());
        checkSame(t, "--score-whole-batches", "score_whole_batches", "off", s.scoreWholeBatches() ? "on" : "off", c.source());
        checkSame(t, "--thread-invariant", "thread_invariant", "off", s.backend().threadInvariant ? "on" : "off", c.source());
        // A resumed run is the same run: a changed setting would silently make it another one.
        JsonFields saved = t.object("settings");
        if (s.cosineSchedule() && saved.has("epochs") && saved.number("epochs") != s.epochs())
            throw new IllegalArgumentException(c.source() + ": checkpoint was trained with --lr-schedule cosine over --epochs " + fmtSetting(saved.number("epochs"))
                    + ", not " + s.epochs() + "; the schedule spans the whole run, so --resume keeps its --epochs");
        double[] now = {num(s.lr()), s.seed(), s.batchSize(), num(s.eta()), sweeps, s.validation(), num(s.momentum()), num(s.weightDecay())};
        String[] keys = {"lr", "seed", "batch_size", "eta", "n", "validation", "momentum", "weight_decay"};
        String[] options = {"--lr", "--seed", "--batch-size", "--eta", "--n", "--validation", "--momentum", "--weight-decay"};
        for (int i = 0; i < keys.length; i++)
            if (saved.has(keys[i]) && saved.number(keys[i]) != now[i])
                throw new IllegalArgumentException(c.source() + ": checkpoint was trained with " + options[i] + " " + fmtSetting(saved.number(keys[i])) + ", not "
                        + fmtSetting(now[i]) + "; --resume continues the same run");
        try {
            model.loadParameters(c.parameters(), c.source().toString());
            opt.loadState(c.optimizerState(), c.source().toString());
            firstEpoch = t.integer("epochs_done", 0);
            step = (long) t.number("steps");
            for (Object e : t.list("history")) history.add(EpochRecord.of(JsonFields.of(e, c.source().toString(), "history")));
            if (history.size() != firstEpoch || step < 0)
                throw new IllegalArgumentException(c.source() + ": field 'training' is inconsistent: 'epochs_done' is " + firstEpoch + " and 'steps' " + step
                        + ", but 'history' has " + history.size() + " epochs (a tampered or damaged checkpoint)");
            if (t.has("watch")) watch.restore(t.object("watch"));
            if (t.has("lr_now")) opt.learningRate((float) t.number("lr_now"));
            baseLr = t.has("lr_base") ? (float) t.number("lr_base") : opt.learningRate();
            if (t.has("rollbacks")) rollbacks = t.integer("rollbacks", 0);
            if (t.has("eta_now")) {
                resumedEta = (float) t.number("eta_now");
                if (!(resumedEta > 0 && resumedEta <= s.eta()))
                    throw new IllegalArgumentException(c.source() + ": field 'training.eta_now' is " + resumedEta + "; expected a lowered eta in (0, " + s.eta() + "]");
            }
            if (t.has("events")) for (Object e : t.list("events")) events.add(String.valueOf(e));
            if (t.has("epoch_progress")) progress = EpochProgress.of(t.object("epoch_progress"), batchesPerEpoch);
        } catch (IllegalArgumentException e) {
            // A value the checks above let through but the optimizer, watch or trainer refuse: name the file it came from.
            String m = e.getMessage() != null ? e.getMessage() : e.toString();
            throw m.contains(c.source().toString()) ? e : new IllegalArgumentException(c.source() + ": field 'training' holds a value this run cannot use: " + m, e);
        }
        Path metricsCsv = s.out().resolve("metrics.csv");
        if (Files.exists(metricsCsv)) {
            // Rows past the checkpoint (written before a kill, or by a run that then diverged) would be trained again: drop them.
            List<String> rows = Files.readAllLines(metricsCsv);
            String header = csv.toString();
            // The earlier rows in this run's columns, which may differ (the monitor turned on or off, a build without energies on Spark).
            MetricsColumns columns = new MetricsColumns(rows.isEmpty() ? header.strip() : rows.getFirst(), header.strip());
            for (String row : rows.subList(Math.min(1, rows.size()), rows.size())) {
                int comma = row.indexOf(',');
                long rowStep;
                try {
                    rowStep = comma > 0 ? Long.parseLong(row.substring(0, comma)) : Long.MAX_VALUE;
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException(metricsCsv + ": a row starts with '" + row.substring(0, comma) + "', not a step number");
                }
                if (rowStep <= step) csv.append(columns.relay(row)).append('\n');
            }
        }
        return new Resumed(firstEpoch, step, history, baseLr, rollbacks, resumedEta, events, progress);
    }

    /**
     * Spark for --spark: the executors build the same model from its spec and read --data themselves,
     * each its shard; this process keeps the parameters and the optimizer, and evaluates.
     */
    private DataParallelRun startSpark(ModelSpec spec, int[] input, int trainSize, int batchSize, int sweeps, Backend be, Model model, Optimizer opt) {
        Setup.SparkChoice sp = s.spark();
        RunSpec run = new RunSpec(java.util.UUID.randomUUID().toString(), spec.toJson(), input, s.data(), s.validation(), s.seed(), s.shuffle(), s.algorithm().id(),
                s.eta(), sweeps, s.loss().id(), s.energy().id(), s.beliefOptimizer().toString(), s.nudging().toString(), batchSize, sp.partitions(), be.name(),
                s.backend().threads > 0 ? s.backend().threads : 1, -1, s.symmetricInputs() ? 2f : 1f, s.symmetricInputs() ? -1f : 0f, s.augmentation().id(),
                s.stableRelaxation(), s.backend().threadInvariant);
        DataParallelRun r = DataParallelRun.start(sp.master, sp.conf, java.time.Duration.ofSeconds(sp.timeoutSeconds), run, trainSize, model, opt);
        out.printf("spark: %s, %d partitions of %d samples a step, %d steps an epoch%s%n", sp.master, run.partitions(), run.localBatch(), r.training().plan().stepsPerEpoch(),
                sp.averageEvery > 1 ? ", local steps averaged every " + sp.averageEvery + " (not exact; each shard's optimizer state stays on its executor)"
                        : sp.stepsPerJob > 1 ? ", up to " + sp.stepsPerJob + " steps per barrier job" : ", a job per step");
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
            long work = PcEngine.workspaceBytes(spec, input, Math.max(batchSize, 1000)); // training batches, and evaluation in batches of up to 1000
            io.predcode.core.internal.Memory.require(be, bytes > Long.MAX_VALUE - work ? Long.MAX_VALUE : bytes + work,
                    String.format(java.util.Locale.ROOT, "this run (%,d parameters x %d copies and a workspace for a batch of %d)", params, copies, Math.max(batchSize, 1000)));
            return be;
        } catch (RuntimeException e) {
            be.close();
            throw e;
        }
    }

    /** --init: every parameter from a safetensors file under PyTorch names, each with exactly the model's shape. */
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
    private void save(Path dir, Model model, Optimizer opt, Map<String, Object> state, DataSplit data, String what, long step, CollapseWatch watch) throws IOException {
        try {
            // Raw values (bytes, digits' 0..16) become the model's inputs by the data's scale: a service passes them as they come.
            Checkpoint.save(dir, model, opt, state, new Preprocessing(data.pixelScale(), data.pixelShift()), data.classNames());
        } catch (Checkpoint.NotFiniteException e) {
            throw new DivergenceException(step, "parameter '" + e.parameter() + "' is not finite after " + what + (what.startsWith("step ") ? "" : " (step " + step + ")")
                    + "; no checkpoint written, the last good one is "
                    + lastGood() + bestNote(watch) + ". Try a smaller --lr or --eta.");
        } catch (java.nio.file.FileSystemException e) {
            // A full disk, most often: say what the run still has, so that it can go on where it stopped once there is room.
            Path resume = s.out().resolve(Checkpoint.RESUME_FILE);
            throw new java.nio.file.FileSystemException(e.getFile(), e.getOtherFile(), (e.getReason() == null ? "not written" : e.getReason()) + "; saving "
                    + what + " stopped the run" + (java.nio.file.Files.exists(resume) ? "; " + resume + " is a whole checkpoint: --resume continues from it" : ""));
        }
    }

    /**
     * An epoch's median step time: over its steps in this process or, in an epoch resumed after more of its steps than
     * it then took, the median those had (a few steps after a resume include the start's warm-up: Spark's first job
     * made one step of 19 ms look like 2.4 s).
     */
    private static double msPerStep(List<Double> stepMs, EpochProgress before) {
        return before != null && stepMs.size() < before.batches() && !Double.isNaN(before.msPerStep()) ? before.msPerStep() : median(stepMs);
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
    private StoppedInside stoppedInside(int epoch, int batch, int batchesPerEpoch, long step, double lossSum, double correct, double seen,
                                        PcEngine engine, Dataset validation, Dataset test) {
        Score val = validation == null ? null : evaluate(engine, validation, 1000), t = evaluate(engine, test, 1000);
        StoppedInside at = new StoppedInside(step, epoch, batch, seen > 0 ? lossSum / seen : Double.NaN, seen > 0 ? correct / seen : Double.NaN, val, t);
        out.printf("%s  %s%stest loss %s acc %.2f%%%n", inside(step, epoch, batch, batchesPerEpoch),
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

    private static String csvHeader(int[] monitored, int energyLayers) {
        StringBuilder h = new StringBuilder("step,epoch,loss,batch_accuracy,ms");
        for (int b : monitored) h.append(",angle_block").append(b).append(",relative_error_block").append(b);
        for (int l = 1; l <= energyLayers; l++) h.append(",energy_layer").append(l);
        return h.append(",validation_loss,validation_accuracy\n").toString();
    }

    private static void appendAlignment(StringBuilder csv, int[] monitored, Alignment a) {
        for (int i = 0; i < monitored.length; i++) {
            if (a == null) csv.append(",,");
            else csv.append(',').append(Setup.fmt(a.angleDegrees()[i])).append(',').append(Setup.fmt(a.relativeError()[i]));
        }
    }

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

    private static String fmtSetting(double v) { return v == Math.rint(v) && Math.abs(v) < 1e15 ? Long.toString((long) v) : Double.toString(v); }

    private static void checkSame(JsonFields t, String key, String value, Path source) {
        String saved = t.object("settings").string(key);
        if (!saved.equals(value)) throw new IllegalArgumentException(source + ": checkpoint was trained with " + key + " " + saved + ", not " + value + "; --resume continues the same run");
    }

    /** As above for a setting checkpoints before it lack: those were trained with {@code before}. */
    private static void checkSame(JsonFields t, String option, String key, String before, String value, Path source) {
        String saved = t.object("settings").has(key) ? t.object("settings").string(key) : before;
        if (!saved.equals(value)) throw new IllegalArgumentException(source + ": checkpoint was trained with " + option + " " + saved + ", not " + value + "; --resume continues the same run");
    }

    /** Whether an epoch drops its last partial batch: --drop-last, and always on Spark (whole global batches). */
    private boolean dropLast() { return s.dropLast() || s.spark() != null; }

    /** Draws training.png from the run so far; where this runtime has no AWT, says so once instead. */
    private void chart(StringBuilder csv, List<EpochRecord> history, int[] monitored) {
        if (Awt.available()) Charts.write(s.out().resolve("training.png"), csv.toString(), history, monitored, out);
        else if (!chartNoted) out.println("note: training.png not written: " + Awt.missing());
        chartNoted = true;
        chartDrawnAt = System.nanoTime();
        chartEpochs = history.size();
    }

    private void writeCsv(StringBuilder csv) throws IOException { AtomicFiles.writeString(s.out().resolve("metrics.csv"), csv.toString()); }

    /** Whether a run's recorded settings say --thread-invariant: a run from before the option did not record it, and had it off. */
    static boolean threadInvariant(JsonFields settings) { return settings.has("thread_invariant") && "on".equals(settings.get("thread_invariant")); }

    private Map<String, Object> settingsJson(Backend be, int sweeps) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("backend", be.name());
        m.put("backend_description", be.description());
        m.put("thread_invariant", s.backend().threadInvariant ? "on" : "off");
        m.put("algorithm", s.algorithm().id());
        m.put("model", s.model());
        m.put("data", s.data());
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
        m.put("monitor_every", (double) s.monitorEvery());
        m.put("stable_relaxation", s.stableRelaxation() ? "on" : "off");
        m.put("input_range", s.symmetricInputs() ? "-1:1" : "0:1");
        m.put("augment", s.augmentation().id());
        m.put("drop_last", s.dropLast() ? "on" : "off"); // the option: a run resumes across Spark and one process as before
        m.put("score_whole_batches", s.scoreWholeBatches() ? "on" : "off");
        return m;
    }

    private Map<String, Object> trainingState(int epochsDone, long steps, List<EpochRecord> history, Backend be, int sweeps, CollapseWatch watch, Optimizer opt,
                                              float baseLr, int rollbacks, List<String> events, float etaNow) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("epochs_done", (double) epochsDone);
        m.put("steps", (double) steps);
        m.put("settings", settingsJson(be, sweeps));
        m.put("history", history.stream().map(r -> (Object) r.json()).toList());
        m.put("watch", watch.json());
        m.put("lr_now", num(opt.learningRate()));
        m.put("lr_base", num(baseLr));
        m.put("eta_now", num(etaNow));
        m.put("rollbacks", (double) rollbacks);
        m.put("events", new ArrayList<Object>(events));
        return m;
    }

    private Map<String, Object> metricsJson(List<EpochRecord> history, Backend be, int sweeps, DataSplit data, CollapseWatch watch, String stopReason, List<String> events) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("settings", settingsJson(be, sweeps));
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
        m.put("events", new ArrayList<Object>(events));
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

    /** The samples of {@code set} an epoch scores: all of them, or with --score-whole-batches {@link #wholeBatches}. */
    private Dataset scored(Dataset set, int batchSize, String which) {
        return s.scoreWholeBatches() ? wholeBatches(set, batchSize, which) : set;
    }

    /**
     * The whole batches of {@code batchSize} in {@code set}, in stored order, as PCX's test loader (drop_last=True, no
     * shuffle) leaves them; train's and eval's --score-whole-batches.
     *
     * @throws IllegalArgumentException where the set holds no whole batch
     */
    static Dataset wholeBatches(Dataset set, int batchSize, String which) {
        if (set.size() % batchSize == 0) return set;
        int whole = set.size() / batchSize * batchSize;
        if (whole == 0)
            throw new IllegalArgumentException("--score-whole-batches: the " + which + " set's " + set.size() + " samples make no whole batch of " + batchSize);
        return set.subset(set.name() + ", " + whole + " in whole batches", java.util.stream.IntStream.range(0, whole).toArray());
    }

    /**
     * Test loss (the model's own loss: cross-entropy on labels, or mse on one-hot rows) and accuracy
     * (argmax against the label; for mse the one-hot row's argmax, the same), in batches, each one
     * forward pass and one copy of two scalars.
     */
    static Score evaluate(PcEngine engine, Dataset test, int batchSize) {
        return evaluate(engine, test, batchSize, null);
    }

    /**
     * The score, and where {@code confusion} is given, counts[true class][predicted class] added to it from the same
     * forward passes: the model's argmax, the first of equal outputs, as its accuracy takes it.
     */
    static Score evaluate(PcEngine engine, Dataset test, int batchSize, long[][] confusion) {
        double loss = 0, correct = 0;
        int per = test.sampleSize(), classes = test.classes();
        float[] outputs = confusion == null ? null : new float[Math.min(batchSize, test.size()) * classes];
        for (int start = 0; start < test.size(); start += batchSize) {
            int size = Math.min(batchSize, test.size() - start);
            float[] x = Arrays.copyOfRange(test.images(), start * per, (start + size) * per);
            float[] y = engine.loss() == Loss.CROSS_ENTROPY ? Arrays.copyOfRange(test.labels(), start, start + size) : test.oneHot(start, size);
            PcEngine.Evaluation e = confusion == null ? engine.evaluate(x, y, size) : engine.evaluate(x, y, size, outputs);
            for (int i = 0; confusion != null && i < size; i++) confusion[(int) test.labels()[start + i]][Loss.argmax(outputs, i, classes)]++;
            loss += (double) e.loss() * size;
            correct += Math.max(0, e.correct());
        }
        return new Score(loss / test.size(), correct / test.size());
    }
}
