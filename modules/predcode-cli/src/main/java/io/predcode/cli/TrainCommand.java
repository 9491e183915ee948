package io.predcode.cli;

import io.predcode.core.io.Checkpoint;
import io.predcode.core.nn.Loss;
import io.predcode.core.pc.Algorithm;
import io.predcode.core.pc.BeliefOptimizer;
import io.predcode.core.pc.Energy;
import io.predcode.core.pc.Nudging;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code predcode train}: the main job. Defaults train a small model on the bundled digits in seconds. */
@Command(name = "train", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Train a model with a predictive-coding algorithm (or backprop) and write metrics, a chart and a checkpoint.",
                "With no options: STRICT predictive coding on the bundled 8x8 digits, on the CPU."})
final class TrainCommand implements Callable<Integer> {
    /** train --help's headings, and the options under each ({@link HelpSections}). */
    static final java.util.Map<String, List<String>> HELP_SECTIONS = helpSections();

    private static java.util.Map<String, List<String>> helpSections() {
        java.util.Map<String, List<String>> s = new java.util.LinkedHashMap<>();
        s.put("Model and data", List.of("--model", "--data", "--input-range", "--augment", "--validation", "--shuffle", "--drop-last", "--score-whole-batches", "--init"));
        s.put("Algorithm: how the beliefs relax", List.of("--algorithm", "--eta", "--inference-lr", "--n", "--T", "--loss", "--energy", "--belief-optimizer",
                "--inference-optimizer", "--inference-momentum", "--nudging", "--condense", "--stable-relaxation", "--monitor-every"));
        s.put("Learning: the weights", List.of("--epochs", "--batch-size", "--optimizer", "--lr", "--lr-schedule", "--momentum", "--weight-decay", "--seed"));
        s.put("Output, stops and resumes", List.of("--out", "--resume", "--overwrite", "--checkpoint-every", "--max-steps", "--quiet"));
        s.put("When training goes wrong", List.of("--patience", "--collapse-margin", "--on-collapse", "--max-rollbacks"));
        s.put("Seeds and searches", List.of("--seeds", "--grid", "--grid-sample", "--halving", "--parallel-runs"));
        s.put("Machine", List.of("--backend", "--threads", "--thread-invariant"));
        s.put("Spark: more than one machine", List.of("--spark", "--spark-partitions", "--spark-conf", "--spark-steps-per-job", "--spark-job-seconds",
                "--spark-average-every", "--spark-timeout"));
        s.put("Help", List.of("--help", "--version"));
        return java.util.Collections.unmodifiableMap(s);
    }

    /** Where a run's stop requests come from: SIGINT, SIGTERM and SIGHUP; tests put a stop at a step of their choosing. */
    static java.util.function.Supplier<Interruption> interruptions = Interruption::onSignals;

    @Spec picocli.CommandLine.Model.CommandSpec spec;

    @Mixin Setup.BackendChoice backendChoice;

    @Option(names = "--algorithm", defaultValue = "strict", description = "strict, pc, ipc (incremental pc), zil (zero-divergence: equals backprop),"
            + " fixedpred, exact or backprop (default: ${DEFAULT-VALUE}).")
    String algorithm;

    @Mixin Setup.Beliefs beliefs;

    @Mixin Setup.Nudged nudged;

    @Option(names = "--model", defaultValue = "digits-mlp", description = "example-cnn, mlp, digits-mlp, pcx-mlp, an MLP sized to the data (mlp:H1-H2-...[:ACTIVATION], e.g. mlp:128-64 or mlp:256:tanh;"
            + " on a CSV table its first op standardizes each feature), or a spec FILE.json (default: ${DEFAULT-VALUE}).")
    String model;

    @Mixin Setup.DataChoice dataChoice;

    @Mixin Setup.SparkChoice sparkChoice;

    @Option(names = "--epochs", defaultValue = "10", description = "Passes over the training set (default: ${DEFAULT-VALUE}).")
    int epochs;

    @Option(names = "--batch-size", defaultValue = "32", description = "Samples per step (default: ${DEFAULT-VALUE}); the last batch of an epoch may be smaller"
            + " (see --drop-last).")
    int batchSize;

    @Option(names = "--optimizer", defaultValue = "adam", description = "adam, adamw (decoupled --weight-decay) or sgd (default: ${DEFAULT-VALUE}).")
    String optimizer;

    @Option(names = "--lr", defaultValue = "0.002", description = "Learning rate (default: ${DEFAULT-VALUE}).")
    float lr;

    @Option(names = "--lr-schedule", defaultValue = "constant", description = "constant, or cosine: up to 1.1 x --lr over the first 10%% of the steps,"
            + " then down to 0.1 x --lr by the last (default: ${DEFAULT-VALUE}).")
    String lrSchedule;

    @Option(names = "--momentum", defaultValue = "0.9", description = "SGD momentum (default: ${DEFAULT-VALUE}).")
    float momentum;

    @Option(names = "--weight-decay", defaultValue = "0", description = "L2 weight decay (default: ${DEFAULT-VALUE}).")
    float weightDecay;

    @Mixin Setup.Relaxation relaxation;

    @Option(names = "--loss", defaultValue = "cross-entropy", description = "cross-entropy or mse (mse on one-hot targets) (default: ${DEFAULT-VALUE}).")
    String loss;

    @Option(names = "--input-range", defaultValue = "0:1", description = "The inputs' range: 0:1 as the data is read (pixels / 255), or -1:1"
            + " (2x - 1, as PCX normalises); checkpoints record it, so eval and serving map raw inputs the same way (default: ${DEFAULT-VALUE}).")
    String inputRange;

    @Option(names = "--augment", defaultValue = "none", description = "Training images, augmented each epoch as PCX trains VGG-5 on CIFAR-10: none, flip"
            + " (mirrored with probability 1/2), crop:P (a random window of the image padded by P black pixels), or both: flip,crop:4."
            + " Each image's draw depends on --seed, the epoch and the image alone (default: ${DEFAULT-VALUE}).")
    String augment;

    @Option(names = "--drop-last", description = "Drop each epoch's last partial batch (PyTorch's drop_last=True, as PCX's loaders do): every step"
            + " takes --batch-size samples. On Spark every step already takes whole global batches.")
    boolean dropLast;

    @Option(names = "--score-whole-batches", description = "Score the validation and test sets as PCX's test loader does: in whole batches of"
            + " --batch-size in stored order, leaving out the last partial batch (Fashion-MNIST's test set at batch 128: 9,984 of its 10,000 images)."
            + " Without it every sample is scored.")
    boolean scoreWholeBatches;

    @Option(names = "--seed", defaultValue = "0", description = "Seeds initialisation and shuffling (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--seeds", description = "Train once per seed (0-6, or 0,3,5), each into OUT/seed-S, one after another (or --parallel-runs at once), and summarise:"
            + " each seed's last-epoch and best test accuracy, their mean and standard deviation, and PCX's avg5 (the best five seeds' best test epochs);"
            + " OUT/seeds.json holds them. Instead of --seed.")
    String seeds;

    @Option(names = "--grid", paramLabel = "KEY=V1,V2", description = "Train once per combination of these settings (repeat for more keys: --grid lr=1e-3,3e-4"
            + " --grid eta=0.1,0.05), each into OUT/KEY-V_KEY-V (with --seeds, once per seed inside it), and rank them by validation accuracy"
            + " (training accuracy with --validation 0; the test set never chooses); OUT/grid.json holds them. KEY is any option of train"
            + " but those of the run's place (--out, --seed(s), --backend, --threads, --spark...); values with a comma are separated by |;"
            + " log:FROM:TO:N or lin:FROM:TO:N spaces N values (lr=log:1e-4:1e-2:5).")
    List<String> grid;

    @Option(names = "--grid-sample", paramLabel = "N[:SEED]", description = "With --grid: train N of its points drawn at random (without replacement;"
            + " SEED, default 0, chooses the draw), a random search: a grid of many fine axes (lr=log:1e-5:1e-1:100) searched in N runs.")
    String gridSample;

    @Option(names = "--halving", paramLabel = "ETA", defaultValue = "0", description = "With --grid: successive halving. Every point trains a few epochs, the best 1/ETA"
            + " (by validation accuracy) go on ETA times as long, and so on up to --epochs: 27 points over 27 epochs with ETA 3 train to epochs 1, 3, 9 and 27"
            + " (57 epochs in all against 729). A point that goes all the way trains exactly as it would alone; 0: off (default: ${DEFAULT-VALUE}).")
    int halving;

    @Option(names = "--parallel-runs", defaultValue = "1", description = "With --seeds or --grid: train this many runs at once, each with its share of the cores"
            + " (or --threads each) and its lines prefixed with its name; a small model uses few cores well, so a sweep finishes sooner (default: ${DEFAULT-VALUE}).")
    int parallelRuns;

    @Option(names = "--out", defaultValue = "runs/latest", description = "Output folder: metrics.csv, metrics.json, training.png, checkpoint (default: ${DEFAULT-VALUE},"
            + " a scratch folder each run replaces; a folder named here that holds a run is refused unless --resume or --overwrite).")
    Path out;

    @Option(names = "--resume", description = "Continue the run in --out from its last checkpoint: the options not given again are the run's own, as the checkpoint records them (a sweep's, as OUT/command.json does).")
    boolean resume;

    @Option(names = "--overwrite", description = "Replace the run the --out folder holds with a new one.")
    boolean overwrite;

    @Option(names = "--quiet", description = "No progress bar; one line per epoch.")
    boolean quiet;

    @Option(names = "--validation", defaultValue = "0.1", description = "Fraction of the training set held out to choose the best epoch and detect a collapse;"
            + " 0: none, the training numbers are used (default: ${DEFAULT-VALUE}). The test set never chooses anything.")
    double validation;

    @Option(names = "--patience", defaultValue = "3", description = "Bad epochs in a row that make a collapse (default: ${DEFAULT-VALUE}).")
    int patience;

    @Option(names = "--collapse-margin", defaultValue = "0.05", description = "An epoch is bad when validation accuracy is this far below its best"
            + " (or the training loss more than twice its best) (default: ${DEFAULT-VALUE}).")
    double collapseMargin;

    @Option(names = "--on-collapse", defaultValue = "stop", description = "stop: end with exit code 3, the best state kept in OUT/best;"
            + " rollback: restore the best state, halve the learning rate and go on (at most --max-rollbacks times) (default: ${DEFAULT-VALUE}).")
    String onCollapse;

    @Option(names = "--max-rollbacks", defaultValue = "3", description = "Rollbacks before a collapse stops the run (default: ${DEFAULT-VALUE}).")
    int maxRollbacks;

    @Option(names = "--stable-relaxation", defaultValue = "on", description = "on: when STRICT's relaxation (or pc's with sgd beliefs on --energy torch2pc) raises the energy instead of lowering it"
            + " (its step eta has outgrown the weights), halve eta from that step on and relax the batch again; a run that never diverges is unchanged."
            + " off: Torch2PC's fixed eta (default: ${DEFAULT-VALUE}).")
    String stableRelaxation;

    @Option(names = "--init", description = "Start from these parameters instead of a seeded initialisation: a safetensors file under PyTorch"
            + " state_dict names (a run's model.safetensors, or a torch.nn.Sequential's state_dict), every parameter with its exact shape.")
    Path init;

    @Option(names = "--shuffle", defaultValue = "on", description = "on: each epoch in a seeded random order; off: the training set in its stored order"
            + " (to replay another library's run batch for batch) (default: ${DEFAULT-VALUE}).")
    String shuffle;

    @Option(names = "--max-steps", defaultValue = "0", description = "Stop after this many training steps in all (0: no limit) (default: ${DEFAULT-VALUE}).")
    long maxSteps;

    @Option(names = "--checkpoint-every", defaultValue = "10m", paramLabel = "DURATION|N", description = "Also save a checkpoint inside an epoch, every DURATION (30s, 10m, 2h)"
            + " or every N steps; --resume continues from the step it holds, and Ctrl-C or SIGTERM saves one and stops; 0: only at epoch ends"
            + " (default: ${DEFAULT-VALUE}).")
    String checkpointEvery;

    @Option(names = "--monitor-every", defaultValue = "0", description = "Every K steps, compare each block's PC update with the backprop gradient on that batch"
            + " (angle and relative error, in metrics.csv and training.png); 0: off (default: ${DEFAULT-VALUE}).")
    int monitorEvery;

    @Option(names = "--condense", defaultValue = "auto", description = "Where strict relaxes layer 1: auto (in layer 2's space where that saves multiply-adds),"
            + " never (in its own space, as Torch2PC: more multiply-adds, and on CUDA a few kernels fewer one after another) or always (default: ${DEFAULT-VALUE}).")
    String condense;

    /** Refuses an --out that holds a run (or, with --seeds, whose seed folders hold one), naming its checkpoint and the ways on. */
    private void refuseAnEarlierRun(long[] seedList) {
        List<Path> dirs = new java.util.ArrayList<>(List.of(out));
        if (seedList != null) for (long seed : seedList) dirs.add(out.resolve("seed-" + seed));
        for (Path dir : dirs) {
            if (java.nio.file.Files.exists(dir.resolve(Checkpoint.RESUME_FILE)))
                throw new IllegalArgumentException("--out " + out + " holds a run (" + dir.resolve(Checkpoint.RESUME_FILE) + "); --resume continues it, --overwrite replaces it, or give another --out");
            if (java.nio.file.Files.exists(dir.resolve(Checkpoint.MODEL_FILE))) // an export, or a run stopped in its first save
                throw new IllegalArgumentException("--out " + out + " holds a model (" + dir.resolve(Checkpoint.MODEL_FILE) + ") and no checkpoint to resume; --overwrite replaces it,"
                        + " or give another --out");
        }
    }

    @Override public Integer call() throws java.io.IOException {
        if (resume && overwrite) throw new IllegalArgumentException("--resume continues the run in --out and --overwrite replaces it: give one");
        if (seeds != null && spec.commandLine().getParseResult().hasMatchedOption("--seed"))
            throw new IllegalArgumentException("--seeds runs its own seeds: give it or --seed, not both");
        if (parallelRuns < 1 || parallelRuns > GridSweep.MAX_RUNS) throw new IllegalArgumentException("--parallel-runs must be in 1.." + GridSweep.MAX_RUNS + ", got " + parallelRuns);
        if (parallelRuns > 1 && seeds == null && grid == null) throw new IllegalArgumentException("--parallel-runs trains the runs of --seeds or --grid at once; give one of them too");
        if (parallelRuns > 1 && sparkChoice.on()) throw new IllegalArgumentException("--parallel-runs with --spark: a Spark run takes the cluster; its runs go one after another");
        if (grid == null && (gridSample != null || halving != 0))
            throw new IllegalArgumentException((gridSample != null ? "--grid-sample" : "--halving") + " works on the points of a --grid; give --grid too");
        if (grid != null) {
            if (halving != 0 && (halving < 2 || halving > 100)) throw new IllegalArgumentException("--halving must be in 2..100 (1/ETA of the points go on at each rung; 3 is usual) or 0 (off), got " + halving);
            if (halving != 0 && maxSteps > 0) throw new IllegalArgumentException("--halving decides how long each point trains; --max-steps would stop its runs inside a rung");
            GridSweep.Plan plan = GridSweep.plan(spec.commandLine().getParseResult(), grid, GridSweep.Sample.parse(gridSample), seeds == null ? null : SeedSweep.parse(seeds), out, resume, overwrite);
            Halving rungs = null;
            if (halving != 0) {
                if (plan.jobs().stream().map(j -> j.settings().epochs()).distinct().count() > 1)
                    throw new IllegalArgumentException("--halving spends --epochs over its rungs; give --epochs once, not on the grid");
                rungs = new Halving(halving, plan.points(), plan.jobs().getFirst().settings().epochs(), out, resume);
            }
            ResumeDefaults.recordSweep(spec.commandLine().getParseResult(), out); // so that --resume --out alone resumes it
            try (Interruption stop = interruptions.get()) {
                return new GridSweep(plan, parallelRuns, out, spec.commandLine().getOut(), stop, rungs).run();
            }
        }
        TrainingRun.Settings s = settings();
        if (seedList != null) ResumeDefaults.recordSweep(spec.commandLine().getParseResult(), out);
        try (Interruption stop = interruptions.get()) {
            return seedList != null ? new SeedSweep(s, seedList, parallelRuns, spec.commandLine().getOut(), stop).run()
                    : new TrainingRun(s, spec.commandLine().getOut(), stop).run();
        }
    }

    /** --seeds, parsed by {@link #settings}; null without it. */
    private long[] seedList;

    /** The run's settings, every option checked (a bad one is an IllegalArgumentException naming it); a run or a grid point's. */
    TrainingRun.Settings settings() {
        // A trained model is not replaced by a second run into the same folder by mistake (a forgotten --resume, a reused
        // name); runs/latest, the default, is the scratch folder each run replaces.
        seedList = seeds == null ? null : SeedSweep.parse(seeds);
        if (!resume && !overwrite && spec.commandLine().getParseResult().hasMatchedOption("--out")) refuseAnEarlierRun(seedList);
        Algorithm a = Setup.option("--algorithm", algorithm, Algorithm::parse);
        Loss l = Setup.loss(loss);
        if (epochs < 1) throw new IllegalArgumentException("--epochs must be >= 1, got " + epochs);
        if (batchSize < 1) throw new IllegalArgumentException("--batch-size must be >= 1, got " + batchSize);
        if (!List.of("adam", "adamw", "sgd").contains(optimizer)) throw new IllegalArgumentException("--optimizer must be adam, adamw or sgd, got '" + optimizer + "'");
        if (!inputRange.equals("0:1") && !inputRange.equals("-1:1")) throw new IllegalArgumentException("--input-range must be 0:1 or -1:1, got '" + inputRange + "'");
        boolean symmetricInputs = inputRange.equals("-1:1");
        io.predcode.data.Augmentation augmentation = io.predcode.data.Augmentation.parse(augment, symmetricInputs ? -1f : 0f); // black: raw 0, mapped as the data is
        if (!lrSchedule.equals("constant") && !lrSchedule.equals("cosine")) throw new IllegalArgumentException("--lr-schedule must be constant or cosine, got '" + lrSchedule + "'");
        Energy e = beliefs.energy();
        Nudging nudge = nudged.nudging(List.of(a), e);
        if (a == Algorithm.IPC && monitorEvery > 0) throw new IllegalArgumentException("--monitor-every compares one update per step with the gradient; ipc takes --n of them");
        if (!sparkChoice.on()) {
            // Spark's own options do nothing without --spark: a run that seemed to spread over a cluster would not.
            // In the order they are declared (--spark-timeout last): the line names the first of them given.
            for (picocli.CommandLine.Model.OptionSpec o : spec.options())
                if (Setup.SparkChoice.names(o.longestName()) && !o.longestName().equals("--spark") && spec.commandLine().getParseResult().hasMatchedOption(o))
                    throw new IllegalArgumentException(o.longestName() + " works on a Spark run" + (sparkChoice.master == null ? "; give --spark too" : ", not with --spark " + sparkChoice.master));
        } else {
            sparkChoice.checkConf();
            if (a == Algorithm.IPC) throw new IllegalArgumentException("--spark with --algorithm ipc: ipc updates the weights at every inference step, so shards would need a sum per inference step; use pc");
            if (monitorEvery > 0 && sparkChoice.averageEvery > 1)
                throw new IllegalArgumentException("--monitor-every compares a synchronous step's update with the gradient; --spark-average-every takes local steps");
            if (Setup.condense(condense) != io.predcode.core.pc.PcEngine.Condense.AUTO) throw new IllegalArgumentException("--condense runs on one process only, not with --spark");
            if (sparkChoice.timeoutSeconds < 1 || sparkChoice.timeoutSeconds > 3600) throw new IllegalArgumentException("--spark-timeout must be in 1..3600 seconds, got " + sparkChoice.timeoutSeconds);
            sparkChoice.partitions();
            if (sparkChoice.stepsPerJob < 1 || sparkChoice.stepsPerJob > 100_000) throw new IllegalArgumentException("--spark-steps-per-job must be in 1..100000, got " + sparkChoice.stepsPerJob);
            if (sparkChoice.jobSeconds < 1 || sparkChoice.jobSeconds > 86_400) throw new IllegalArgumentException("--spark-job-seconds must be in 1..86400, got " + sparkChoice.jobSeconds);
            if (sparkChoice.averageEvery < 1 || sparkChoice.averageEvery > 100_000) throw new IllegalArgumentException("--spark-average-every must be in 1..100000, got " + sparkChoice.averageEvery);
            if (maxSteps % sparkChoice.averageEvery != 0) // a job takes K steps at once: it cannot stop inside one
                throw new IllegalArgumentException("--max-steps " + maxSteps + " must be a multiple of --spark-average-every " + sparkChoice.averageEvery);
        }
        if (!(validation >= 0 && validation < 1)) throw new IllegalArgumentException("--validation must be in [0, 1), got " + validation);
        if (patience < 1) throw new IllegalArgumentException("--patience must be >= 1, got " + patience);
        if (!(collapseMargin > 0 && collapseMargin <= 1)) throw new IllegalArgumentException("--collapse-margin must be in (0, 1], got " + collapseMargin);
        if (!onCollapse.equals("stop") && !onCollapse.equals("rollback")) throw new IllegalArgumentException("--on-collapse must be stop or rollback, got '" + onCollapse + "'");
        if (maxRollbacks < 0) throw new IllegalArgumentException("--max-rollbacks must be >= 0, got " + maxRollbacks);
        boolean stable = Setup.onOff("--stable-relaxation", stableRelaxation), shuffled = Setup.onOff("--shuffle", shuffle);
        if (maxSteps < 0) throw new IllegalArgumentException("--max-steps must be >= 0 (0: no limit), got " + maxSteps);
        if (monitorEvery < 0) throw new IllegalArgumentException("--monitor-every must be >= 0 (0: off), got " + monitorEvery);
        relaxation.validate();
        if (!(lr > 0) || !Float.isFinite(lr)) throw new IllegalArgumentException("--lr must be a finite number > 0, got " + lr);
        if (!(momentum >= 0 && momentum < 1)) throw new IllegalArgumentException("--momentum must be in [0, 1), got " + momentum);
        if (!(weightDecay >= 0) || !Float.isFinite(weightDecay)) throw new IllegalArgumentException("--weight-decay must be a finite number >= 0, got " + weightDecay);
        int sweeps = relaxation.sweeps(a == Algorithm.FIXED_PRED ? -1 : 20);
        TrainingRun.Settings s = new TrainingRun.Settings(backendChoice, a, model, dataChoice.name(), epochs, batchSize, optimizer, lr, momentum, weightDecay,
                relaxation.eta, sweeps, l, seed, out, resume, quiet || System.console() == null, validation, collapseMargin, patience, onCollapse, maxRollbacks, monitorEvery, stable, init, shuffled, maxSteps,
                beliefs.optimizer(), e, nudge, lrSchedule.equals("cosine"), sparkChoice.on() ? sparkChoice : null,
                symmetricInputs, augmentation, dropLast, scoreWholeBatches, Setup.condense(condense), TrainingRun.SaveEvery.parse(checkpointEvery));
        return s;
    }
}
