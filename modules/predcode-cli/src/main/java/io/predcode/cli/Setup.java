package io.predcode.cli;

import io.predcode.core.nn.BuiltinModels;
import io.predcode.core.nn.ModelSpec;
import io.predcode.core.pc.Algorithm;
import io.predcode.core.pc.Energy;
import io.predcode.core.pc.Nudging;
import io.predcode.spi.Backend;
import io.predcode.spi.BackendOptions;
import io.predcode.spi.Backends;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.util.Arrays;
import java.util.List;

/** Options and helpers shared by the commands. */
final class Setup {
    private Setup() {}

    /** --checkpoint, for the commands that read one. */
    static final class CheckpointChoice {
        @Option(names = "--checkpoint", required = true, paramLabel = "<checkpoint>",
                description = "A training output folder (or its best/ folder), or a model.safetensors / checkpoint.safetensors file.")
        java.nio.file.Path path;

        /** The checkpoint as it is, for describing it. */
        io.predcode.core.io.Checkpoint.Loaded load() throws IOException { return checkpoint(path); }

        /** The checkpoint, refused with exit code 3 where a parameter is not finite: for the commands that compute with it. */
        io.predcode.core.io.Checkpoint.Loaded loadFinite() throws IOException {
            io.predcode.core.io.Checkpoint.Loaded c = load();
            requireFinite(c);
            return c;
        }

        @Override public String toString() { return path.toString(); }
    }

    /** The checkpoint at {@code path} (a run's folder, or a file); a sweep's folder is refused naming one of its runs. */
    static io.predcode.core.io.Checkpoint.Loaded checkpoint(java.nio.file.Path path) throws IOException {
        java.nio.file.Path summary = sweepSummary(path);
        if (summary != null)
            throw new IllegalArgumentException(path + " is a sweep's folder (" + summary.getFileName() + "), not a run's: give one of its runs" + bestRun(summary));
        List<java.nio.file.Path> runs = unfinishedSweep(path);
        if (!runs.isEmpty())
            throw new IllegalArgumentException(path + " " + UNFINISHED + ": give one of its runs, e.g. " + runs.getFirst() + "; " + ResumeDefaults.howToFinish(path));
        return io.predcode.core.io.Checkpoint.load(path);
    }

    /** What a folder is that {@link #unfinishedSweep} finds runs in. */
    static final String UNFINISHED = "holds no run of its own but runs in its folders, as a sweep (train --grid or --seeds) stopped before its end does";

    /**
     * The runs in the folders of {@code dir} (a point's, or a point's seed's), where {@code dir} holds no run, model or sweep
     * summary of its own: a sweep stopped before it wrote its summary. Empty for any other folder.
     */
    static List<java.nio.file.Path> unfinishedSweep(java.nio.file.Path dir) throws IOException {
        if (!java.nio.file.Files.isDirectory(dir) || java.nio.file.Files.exists(dir.resolve(io.predcode.core.io.Checkpoint.RESUME_FILE))
                || java.nio.file.Files.exists(dir.resolve(io.predcode.core.io.Checkpoint.MODEL_FILE)) || sweepSummary(dir) != null) return List.of();
        List<java.nio.file.Path> runs = new java.util.ArrayList<>();
        // A folder or file that cannot be read, or that goes away while this looks (any folder may be given: /tmp), is not a run.
        java.nio.file.Files.walkFileTree(dir, java.util.Set.of(), 3, new java.nio.file.SimpleFileVisitor<>() {
            @Override public java.nio.file.FileVisitResult visitFile(java.nio.file.Path file, java.nio.file.attribute.BasicFileAttributes attributes) {
                java.nio.file.Path run = file.getParent();
                if (file.getFileName().toString().equals(io.predcode.core.io.Checkpoint.RESUME_FILE) && !run.getFileName().toString().equals(TrainingRun.BEST_DIR))
                    runs.add(run); // not a run's best epoch
                return java.nio.file.FileVisitResult.CONTINUE;
            }

            @Override public java.nio.file.FileVisitResult visitFileFailed(java.nio.file.Path file, IOException e) { return java.nio.file.FileVisitResult.CONTINUE; }
        });
        return runs.stream().sorted().toList();
    }

    /** A sweep's folder (train --grid or --seeds) holds its summary and its runs' folders, not a checkpoint: the summary, or null. */
    static java.nio.file.Path sweepSummary(java.nio.file.Path dir) {
        if (!java.nio.file.Files.isDirectory(dir) || java.nio.file.Files.exists(dir.resolve(io.predcode.core.io.Checkpoint.RESUME_FILE))
                || java.nio.file.Files.exists(dir.resolve(io.predcode.core.io.Checkpoint.MODEL_FILE))) return null;
        for (String name : new String[]{"grid.json", "seeds.json"})
            if (java.nio.file.Files.isRegularFile(dir.resolve(name))) return dir.resolve(name);
        return null;
    }

    /** ", e.g. DIR (its best)": the first run a sweep's summary lists (a grid's best point; a sweep's first seed), or "" where it cannot be read. */
    static String bestRun(java.nio.file.Path summary) {
        try {
            Object json = io.predcode.core.json.Json.parse(java.nio.file.Files.readString(summary), summary.toString());
            boolean grid = summary.getFileName().toString().equals("grid.json");
            Object first = ((java.util.List<?>) ((java.util.Map<?, ?>) json).get(grid ? "points" : "seeds")).getFirst();
            return ", e.g. " + ((java.util.Map<?, ?>) first).get("out") + (grid ? " (its best)" : "");
        } catch (IOException | RuntimeException e) {
            return ""; // a summary edited or cut short: the refusal stands without an example
        }
    }

    /** --backend and --threads. */
    static final class BackendChoice {
        @Option(names = "--backend", defaultValue = "cpu", description = "Compute backend: cpu or cuda (default: ${DEFAULT-VALUE}).")
        String backend;

        @Option(names = "--threads", defaultValue = "0", description = "CPU threads (0 = all cores; default: ${DEFAULT-VALUE}).")
        int threads;

        @Option(names = "--thread-invariant", description = "CPU: split the work by its sizes alone, not the thread count, so that a run gives the same"
                + " bits on any --threads (a sweep's runs at once, a run resumed with other threads). Slower where the parts outnumber the threads:"
                + " 7%% for PCX's MLP on one thread. A model trained with it is evaluated with it.")
        boolean threadInvariant;

        /** More threads than this is a typo, not a machine: each is a real thread the backend starts. */
        static final int MAX_THREADS = 4096;

        Backend open() { return Backends.open(backend, backendOptions(threads, threadInvariant)); }

        /** The CPU threads --threads stands for: all cores for 0, as the CPU backend takes it. */
        int resolvedThreads() { return threads > 0 ? threads : Runtime.getRuntime().availableProcessors(); }

        /**
         * The backend for a trained model ({@code trained} may be null): thread-invariant where the run that trained it
         * was, so that eval, predict, generate and compare give its numbers on any --threads as its training did.
         */
        Backend openFor(io.predcode.core.io.Checkpoint.Loaded trained) {
            boolean invariant = threadInvariant || trained != null && trained.settings() != null && TrainingRun.threadInvariant(trained.settings());
            return Backends.open(backend, backendOptions(threads, invariant));
        }

        /** This choice with {@code threads} threads. */
        BackendChoice withThreads(int threads) {
            BackendChoice c = new BackendChoice();
            c.backend = backend;
            c.threads = threads;
            c.threadInvariant = threadInvariant;
            return c;
        }
    }

    /** Options for a backend with --threads {@code threads}, checked: every command that opens backends goes through here. */
    static BackendOptions backendOptions(int threads, boolean threadInvariant) {
        if (threads < 0 || threads > BackendChoice.MAX_THREADS)
            throw new IllegalArgumentException("--threads must be between 0 (all cores) and " + BackendChoice.MAX_THREADS + ", got " + threads);
        return new BackendOptions(threads, 0, threadInvariant);
    }

    /** --spark and its settings: data-parallel training on Apache Spark. */
    static final class SparkChoice {
        @Option(names = "--spark", description = "Train data-parallel on Apache Spark: local[N] (embedded in this process), spark://HOST:PORT (a standalone"
                + " cluster whose workers see this machine's files), submit (under spark-submit: bin/predcode-spark-submit), or none (in one process, as without it; for a resume of"
                + " a Spark run, which goes on where it trained). Every step is exactly a step on the whole --batch-size.")
        String master;

        /** --spark's value for one process: what a resume of a Spark run is given to go on without Spark. */
        static final String NONE = "none";

        /** Whether the run trains on Spark: --spark given, and not {@link #NONE}. */
        boolean on() { return master != null && !master.equals(NONE); }

        @Option(names = "--spark-partitions", description = "Shards, one task each per step (default: N for local[N], else 2); --batch-size must be a multiple.")
        Integer partitions;

        @Option(names = "--spark-conf", description = "A Spark setting KEY=VALUE (repeatable), e.g. spark.driver.host=HOST for a remote cluster"
                + " (by default everything binds to 127.0.0.1).")
        java.util.Map<String, String> conf = new java.util.LinkedHashMap<>();

        @Option(names = "--spark-average-every", defaultValue = "1", description = "For slow networks: each shard takes K local steps with its own optimizer"
                + " between averages of the parameters, one job per K steps. Not exact (1, the default: every step is exactly a step on the whole batch).")
        int averageEvery;

        @Option(names = "--spark-steps-per-job", defaultValue = "20", description = "Synchronous steps run in one Spark barrier job: the shards exchange"
                + " each step's updates executor to executor (Spark's block manager) and each applies the optimizer, so parameters travel once per job, not every step."
                + " The same result as a job per step (1), which is also what runs wherever a barrier job cannot (default: ${DEFAULT-VALUE}).")
        int stepsPerJob;

        @Option(names = "--spark-job-seconds", defaultValue = "10", description = "A barrier job takes no more steps than the last job's time a step says"
                + " end within this many seconds: Ctrl-C or SIGTERM stops the run when the job in progress ends, before a scheduler's grace period does"
                + " (30 s on Kubernetes and Slurm). Where jobs end changes no result. A job of --spark-average-every's local steps takes all K of them (default: ${DEFAULT-VALUE}).")
        int jobSeconds;

        @Option(names = "--spark-timeout", defaultValue = "60", description = "Seconds to wait for the master and the first executor (default: ${DEFAULT-VALUE}).")
        int timeoutSeconds;

        /** Whether an option is one of these, all named --spark or --spark-*: a check that names them all reads this, not a list. */
        static boolean names(String option) { return option.equals("--spark") || option.startsWith("--spark-"); }

        /** The partitions to use: given, or the local thread count, or 2. */
        int partitions() {
            if (partitions != null) {
                if (partitions < 1 || partitions > 10_000) throw new IllegalArgumentException("--spark-partitions must be in 1..10000, got " + partitions);
                return partitions;
            }
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("local\\[(\\d+)").matcher(master);
            if (!m.lookingAt()) return master.equals("local") ? 1 : 2; // under spark-submit too: give --spark-partitions for more
            if (m.group(1).length() > 5 || Integer.parseInt(m.group(1)) > 10_000)
                throw new IllegalArgumentException("--spark " + master + ": at most local[10000], one partition a core; give --spark-partitions for more shards");
            return Math.max(1, Integer.parseInt(m.group(1)));
        }

        /**
         * Refuses a --spark-conf Spark would misread: no key, or the master, which is --spark's (a second one would be
         * silently the one Spark takes).
         */
        void checkConf() {
            for (String key : conf.keySet()) {
                if (key.isBlank()) throw new IllegalArgumentException("--spark-conf '" + key + "=" + conf.get(key) + "': expected KEY=VALUE with a key, e.g. spark.driver.host=HOST");
                if (key.strip().equals("spark.master"))
                    throw new IllegalArgumentException("--spark-conf spark.master: the master is --spark's (local[N], spark://HOST:PORT, or submit)");
            }
        }
    }

    /** --data, for every command that reads a data set. */
    static final class DataChoice {
        @Option(names = "--data", description = "digits, fashion-mnist, fashion-mnist:DIR, mnist:DIR, cifar10:DIR, npy:DIR (x_train.npy, y_train.npy, x_test.npy, y_test.npy from np.save), npy:FILE.npz (those four arrays from np.savez, as Keras's mnist.npz),"
                + " csv:FILE.csv (a table of features and a label column; a fifth of each class's rows held out as the test set), csv:DIR (train.csv and test.csv)"
                + " or either with :COLUMN, the label's column by name or number"
                + " (default: digits; with --checkpoint, the data set the run was trained on).")
        String data;

        /** --data, or digits where it was not given. */
        String name() { return data != null ? data : "digits"; }

        /** After {@link #loadFor}: what to say of the test set's values of text columns its model never saw; null if none. */
        String unseenNote;

        /** The named data set's training and test splits. */
        io.predcode.data.DataSplit load() throws IOException { return io.predcode.data.DataSources.load(name()); }

        /**
         * The data for a checkpoint's model, in the model's units ({@link #inModelUnits}): --data where it was given, else
         * the data set the run's settings record (a run trained on Fashion-MNIST is scored on it; its export too), else digits.
         */
        io.predcode.data.DataSplit loadFor(io.predcode.core.io.Checkpoint.Loaded c) throws IOException {
            String trained = recorded(c, "data") == null ? null : c.settings().string("data"); // a string, or the file is named
            io.predcode.data.DataSplit split;
            if (data != null || trained == null) split = load();
            else try {
                split = io.predcode.data.DataSources.load(trained);
            } catch (IOException | IllegalArgumentException e) { // a folder the run read from elsewhere, or moved since
                throw new IllegalArgumentException(Main.message(e) + " (" + c.source() + " was trained on --data " + trained + "; give --data to score it on another)", e);
            }
            // Values of a text column the model never saw are left out by withFeatures (0 in each of its categories): said.
            String note = unseenNote(split.featureNames(), c.featureNames(), split.test().images());
            unseenNote = note == null ? null : split.test().name() + ": " + note;
            // Labels by the model's class names, features by its feature names: a table of some of its classes, or naming
            // them or its columns in another order, scores by name.
            io.predcode.data.DataSplit scored = split.relabelled(c.classNames()).withFeatures(c.featureNames());
            requireFilled(c.spec(), scored, c.source() + "'s model");
            return inModelUnits(scored, c.preprocessing());
        }

        /**
         * Where the data a checkpoint is scored on is its run's (--data not given, or the same) but its test set is not
         * the one the run scored (the files regenerated, another download), what to say; null otherwise, or for a
         * checkpoint older than the record.
         */
        static String changedSince(io.predcode.core.io.Checkpoint.Loaded c, String given, io.predcode.data.DataSplit split) {
            Object trained = recorded(c, "data"), digest = recorded(c, "test_digest");
            if (trained == null || digest == null || given != null && !sameFiles(given, (String) trained)) return null;
            String now = split.test().digest();
            return digest.equals(now) ? null : "--data " + trained + " holds another test set than " + c.source() + "'s run scored (digest " + digest + ", now " + now
                    + "): these scores are not comparable with its metrics.json";
        }

        /** Whether two --data values name the same files: the same kind (npy:, mnist:, ...) and the same folder or file, however written. */
        static boolean sameFiles(String a, String b) {
            if (a.equals(b)) return true;
            int i = a.indexOf(':'), j = b.indexOf(':');
            if (i < 0 || j < 0 || !a.substring(0, i).equals(b.substring(0, j))) return false;
            try {
                return java.nio.file.Path.of(a.substring(i + 1)).toRealPath().equals(java.nio.file.Path.of(b.substring(j + 1)).toRealPath());
            } catch (IOException | java.nio.file.InvalidPathException e) { // not there: not the same files as far as can be told
                return false;
            }
        }

        /**
         * The data as the checkpoint's model takes it: a model trained on mapped inputs (--input-range -1:1) records
         * raw * scale + shift; the data set gives raw * pixelScale. A checkpoint older than recorded preprocessing took the
         * data as read.
         */
        private static io.predcode.data.DataSplit inModelUnits(io.predcode.data.DataSplit split, io.predcode.core.serve.Preprocessing p) {
            if (p.isIdentity()) return split;
            return split.affine(p.scale() / split.pixelScale(), p.shift());
        }
    }

    /** The value a checkpoint's (or an export's) training settings record under {@code key}; null where it records none (an older file). */
    static Object recorded(io.predcode.core.io.Checkpoint.Loaded c, String key) {
        io.predcode.core.json.JsonFields s = c == null ? null : c.settings();
        return s != null && s.has(key) ? s.get(key) : null;
    }

    /**
     * How pc and ipc relax: --belief-optimizer and --energy, the same for train and bench. PCX's names are options of
     * their own (so that an error names the option given), each refused beside ours: --inference-optimizer, and
     * --inference-momentum for sgd's momentum (--momentum is the weights').
     */
    static final class Beliefs {
        @Option(names = "--belief-optimizer", description = "How pc and ipc move the beliefs (step size --eta, --n steps): sgd, sgd:MOMENTUM or adam (default: sgd).")
        String optimizer;

        @Option(names = "--inference-optimizer", description = "PCX's name for --belief-optimizer.")
        String inferenceOptimizer;

        @Option(names = "--inference-momentum", description = "Momentum of sgd on the beliefs, in [0, 1): --belief-optimizer sgd --inference-momentum 0.1"
                + " is sgd:0.1.")
        Float momentum;

        @Option(names = "--energy", defaultValue = "sample", description = "What pc and ipc relax: sample, each sample's own energy as PCX and JPC define it"
                + " (their step sizes carry over); torch2pc, Torch2PC's batch-mean loss, on which pc with plain sgd is exactly strict (default: ${DEFAULT-VALUE}).")
        String energy;

        io.predcode.core.pc.BeliefOptimizer optimizer() {
            String name = either("--belief-optimizer", optimizer, "--inference-optimizer", inferenceOptimizer, "sgd");
            io.predcode.core.pc.BeliefOptimizer o = option(inferenceOptimizer != null ? "--inference-optimizer" : "--belief-optimizer", name, io.predcode.core.pc.BeliefOptimizer::parse);
            if (momentum == null) return o;
            if (o.isAdam() || o.momentum() != 0f)
                throw new IllegalArgumentException("--inference-momentum " + momentum + " is sgd's momentum, but the belief optimizer is " + name
                        + ": give sgd, or sgd:MOMENTUM alone");
            if (!(momentum >= 0 && momentum < 1)) throw new IllegalArgumentException("--inference-momentum must be in [0, 1), got " + momentum);
            return io.predcode.core.pc.BeliefOptimizer.sgd(momentum);
        }

        io.predcode.core.pc.Energy energy() { return option("--energy", energy, io.predcode.core.pc.Energy::parse); }
    }

    /** --nudging, for the commands that relax pc and ipc: train and compare. */
    static final class Nudged {
        @Option(names = "--nudging", defaultValue = "none", description = "pc and ipc with --energy sample: none (the output term is the loss), positive:BETA,"
                + " negative:BETA or centred:BETA (pc only; two relaxations per step) (default: ${DEFAULT-VALUE}).")
        String nudging;

        /** The nudging for these algorithms on this energy: refused where it is active and none of them can take it. */
        Nudging nudging(List<Algorithm> algorithms, Energy energy) {
            Nudging nudge = option("--nudging", nudging, Nudging::parse);
            String refused = refusal(nudge, algorithms, energy);
            if (refused != null) throw new IllegalArgumentException("--nudging: " + refused);
            return nudge;
        }

        /** Why these algorithms on this energy cannot take {@code nudge}, or null where they can. */
        static String refusal(Nudging nudge, List<Algorithm> algorithms, Energy energy) {
            if (nudge.active() && (algorithms.stream().noneMatch(Algorithm::standard) || energy != Energy.PER_SAMPLE))
                return nudge + " needs --algorithm pc or ipc with --energy sample";
            if (nudge.kind() == Nudging.Kind.CENTRED && algorithms.contains(Algorithm.IPC))
                return "centred relaxes each batch twice and averages the updates; ipc updates during the relaxation: use positive or negative";
            return null;
        }
    }

    /** The value of whichever of two options for one setting was given (refusing both), else {@code fallback}. */
    static <T> T either(String ours, T oursValue, String pcxs, T pcxsValue, T fallback) {
        if (oursValue != null && pcxsValue != null) throw new IllegalArgumentException(ours + " and " + pcxs + " are one setting: give one of them");
        return oursValue != null ? oursValue : pcxsValue != null ? pcxsValue : fallback;
    }

    /** --eta and --n (PCX's --inference-lr and --T), for every command that relaxes beliefs, validated in one place. */
    static final class Relaxation {
        /** An upper bound on --n: more sweeps than this is a typo, and would run for days. */
        static final int MAX_SWEEPS = 100_000;

        @Option(names = "--eta", description = "Inference step size for strict, pc, ipc and fixedpred (default: 0.1).")
        Float etaOption;

        @Option(names = "--inference-lr", description = "PCX's name for --eta.")
        Float inferenceLr;

        @Option(names = "--n", description = "Inference sweeps (pc, ipc: steps) for strict, pc, ipc and fixedpred (default: 20; for train's fixedpred, one per block).")
        Integer nOption;

        @Option(names = "--T", description = "PCX's name for --n.")
        Integer steps;

        /** The step size and the sweeps given (null: the command's default), set by {@link #validate}. */
        float eta = 0.1f;
        Integer n;

        /** Takes --eta or --inference-lr and --n or --T, and throws naming the option given where one is out of range; call before any work. */
        Relaxation validate() {
            eta = either("--eta", etaOption, "--inference-lr", inferenceLr, 0.1f);
            n = either("--n", nOption, "--T", steps, null);
            check(steps != null ? "--T" : "--n", n != null ? n : 1, inferenceLr != null ? "--inference-lr" : "--eta", eta);
            return this;
        }

        /** The bounds on a relaxation's step count and step size (named {@code stepsOption} and {@code etaOption}), for every command that relaxes. */
        static void check(String stepsOption, int steps, String etaOption, float eta) {
            checkSteps(stepsOption, steps);
            checkEta(etaOption, eta);
        }

        /** {@link #check}'s bound on the step count (here a count read as a number: a whole one). */
        static int checkSteps(String name, double steps) {
            if (steps != Math.rint(steps)) throw new IllegalArgumentException(name + " must be a whole number, got " + steps);
            if (!(steps >= 1 && steps <= MAX_SWEEPS)) throw new IllegalArgumentException(name + " must be in 1.." + MAX_SWEEPS + ", got " + (steps == (long) steps ? Long.toString((long) steps) : Double.toString(steps)));
            return (int) steps;
        }

        /** {@link #check}'s bound on the step size. */
        static float checkEta(String name, float eta) {
            if (!(eta > 0) || !Float.isFinite(eta)) throw new IllegalArgumentException(name + " must be a finite number > 0, got " + eta);
            return eta;
        }

        /** --n, or {@code fallback} when it was not given. */
        int sweeps(int fallback) { return n != null ? n : fallback; }
    }

    /** A --condense value: auto, never or always, in any case. */
    static io.predcode.core.pc.PcEngine.Condense condense(String mode) {
        try {
            return io.predcode.core.pc.PcEngine.Condense.valueOf(mode.trim().toUpperCase(java.util.Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("--condense: unknown mode '" + mode + "'; expected auto, never or always");
        }
    }

    /** Option {@code name}'s value read by {@code parse}, whose refusal is given with the option's name in front. */
    static <T> T option(String name, String value, java.util.function.Function<String, T> parse) {
        try {
            return parse.apply(value);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(name + ": " + e.getMessage(), e);
        }
    }

    /** An on|off option's value, refused naming the option otherwise. */
    static boolean onOff(String name, String value) {
        if (!value.equals("on") && !value.equals("off")) throw new IllegalArgumentException(name + " must be on or off, got '" + value + "'");
        return value.equals("on");
    }

    /** A --loss value. */
    static io.predcode.core.nn.Loss loss(String value) { return option("--loss", value, io.predcode.core.nn.Loss::parse); }

    /** --algorithm's values. */
    static List<io.predcode.core.pc.Algorithm> algorithms(List<String> values) {
        return values.stream().map(v -> option("--algorithm", v, io.predcode.core.pc.Algorithm::parse)).toList();
    }

    /**
     * A file an option names for a command to write, refused before any work where it is a folder: checked at the start,
     * so that a long command does not end by failing to write its result.
     */
    static void outputFile(String option, java.nio.file.Path file) {
        if (file != null && java.nio.file.Files.isDirectory(file)) throw new IllegalArgumentException(option + " must name a file to write, got " + file + ", a folder");
    }

    /**
     * The model's input shape: the data's sample shape, checked against the spec's own where it has
     * one, and every block's shape checked for that input, so a spec that does not fit is refused
     * naming its file before anything is allocated. {@code modelName} starts each message: "--model FILE" where the
     * command line named it, "the model in DIR" for a checkpoint's.
     */
    static int[] inputShape(ModelSpec spec, int[] dataShape, String modelName) {
        int[] shape = dataShapeFor(spec, dataShape, modelName);
        shapes(spec, shape, modelName);
        return shape;
    }

    /** The model's activation shapes on inputs of {@code shape}; where they do not fit, the refusal names the model. */
    private static int[][] shapes(ModelSpec spec, int[] shape, String modelName) {
        try {
            return spec.activationShapes(shape);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(modelName + ": " + e.getMessage(), e);
        }
    }

    /**
     * The input shape for a model on a data set, as {@link #inputShape(ModelSpec, int[], String)} gives it, refused where
     * the model's outputs per sample are not one per class: its scores, one-hot targets and confusion matrix would be
     * read with the wrong stride.
     */
    static int[] inputShape(ModelSpec spec, io.predcode.data.DataSplit data, String modelName) {
        int[] shape = dataShapeFor(spec, data.sampleShape(), modelName);
        int[][] shapes = shapes(spec, shape, modelName);
        int outputs = Arrays.stream(shapes[shapes.length - 1]).reduce(1, Math::multiplyExact);
        if (outputs != data.classes())
            throw new IllegalArgumentException(modelName + " outputs " + outputs + " values per sample, but the data set ("
                    + data.train().name() + ") has " + data.classes() + " classes; its last layer must have " + data.classes() + " outputs");
        return shape;
    }

    /**
     * {@link #inputShape(ModelSpec, io.predcode.data.DataSplit, String)} for the model --model {@code name} gave; where it
     * does not fit the data (digits-mlp, the default, on 28x28 images), the refusal lists the built-in models that do.
     */
    static int[] inputShapeOfModelOption(ModelSpec spec, io.predcode.data.DataSplit data, String name) {
        try {
            inputShape(spec, data.sampleShape(), "--model " + name); // the inputs; then the classes, below, which no other built-in fits better
        } catch (IllegalArgumentException e) {
            List<String> fit = io.predcode.core.nn.BuiltinModels.NAMES.stream().filter(n -> {
                try {
                    inputShape(model(n, data.classes()), data, n);
                    return true;
                } catch (IOException | IllegalArgumentException no) {
                    return false;
                }
            }).toList();
            throw new IllegalArgumentException(e.getMessage() + (fit.isEmpty() ? "; an MLP sized to them: --model mlp:64-64 (" + BuiltinModels.SIZED + ")"
                    : "; built-in models for these inputs: " + String.join(", ", fit) + ", or one sized to them: --model mlp:64-64"), e);
        }
        return inputShape(spec, data, "--model " + name);
    }

    private static int[] dataShapeFor(ModelSpec spec, int[] dataShape, String modelName) {
        if (spec.input() == null) return dataShape;
        long a = Arrays.stream(spec.input()).asLongStream().reduce(1, (x, y) -> x * y), b = Arrays.stream(dataShape).asLongStream().reduce(1, (x, y) -> x * y);
        if (Arrays.equals(spec.input(), dataShape)) return dataShape;
        // A flat model (input [784]) takes images [1, 28, 28]: through its own flatten op where it starts with one, else as
        // rows of their values, which is what PyTorch's x.view(-1, 784) hands a Torch2PC MLP (the same bytes in the same order).
        if (a == b && spec.input().length == 1)
            return spec.blocks().getFirst().getFirst() instanceof io.predcode.core.nn.OpSpec.Flatten ? dataShape : spec.input();
        throw new IllegalArgumentException(modelName + " expects inputs of shape " + Arrays.toString(spec.input())
                + " but the data set's samples are " + Arrays.toString(dataShape));
    }

    /**
     * Refuses a checkpoint whose parameters are not all finite, with exit code 3 as a divergence: nothing computed from it
     * would mean anything (a file damaged or edited, since train never saves one).
     */
    static void requireFinite(io.predcode.core.io.Checkpoint.Loaded c) {
        String bad = io.predcode.core.io.Checkpoint.firstNotFinite(c.parameters());
        if (bad != null)
            throw new io.predcode.core.pc.DivergenceException(0, c.source() + ": parameter '" + bad + "' is not finite; nothing to compute with it (inspect --checkpoint names every such parameter)");
    }

    static ModelSpec model(String name) throws IOException {
        return name.endsWith(".json") ? BuiltinModels.resolve(name) : option("--model", name, BuiltinModels::get); // a spec file's errors name the file
    }

    /**
     * The model --model {@code name} gives for a data set (--data {@code dataName}): an MLP sized to it (mlp:H1-H2...),
     * whose first op standardizes each feature of a CSV table (their scales are a table's own: a price beside a ratio);
     * else {@link #model(String, int)}.
     */
    static ModelSpec model(String name, io.predcode.data.DataSplit data, String dataName) throws IOException {
        ModelSpec spec;
        if (!BuiltinModels.isSized(name)) spec = model(name, data.classes());
        else {
            float[][] standard = dataName.startsWith("csv:") ? data.train().standardization() : new float[2][];
            spec = option("--model", name, n -> BuiltinModels.mlp(n, data.sampleShape(), data.classes(), standard[0], standard[1]));
        }
        requireFilled(spec, data, "--model " + name);
        return spec;
    }

    /**
     * Values of a text column that a model never saw, each with its rows, where they are 0 in each of the column's
     * categories: the model answers them as it would a missing value, which its user may want to know ({@code predict},
     * {@code eval}).
     *
     * @param have   a table's features, in its order
     * @param wanted the model's
     * @param rows   the table's values, row after row
     * @return the note, or null where no row holds one (a split's other part may)
     */
    static String unseenNote(List<String> have, List<String> wanted, float[] rows) {
        List<String> counted = new java.util.ArrayList<>();
        int width = have.size();
        for (String u : io.predcode.data.DataSplit.unseenCategories(have, wanted)) {
            int n = 0;
            for (int i = have.indexOf(u); i < rows.length; i += width) if (rows[i] != 0) n++;
            if (n > 0) counted.add(u + " (" + n + (n == 1 ? " row)" : " rows)"));
        }
        return counted.isEmpty() ? null : "values the model was not trained on, answered as missing (0 in each of their column's categories): " + String.join(", ", counted);
    }

    /**
     * Refuses data with missing values (NaN: a table's empty fields, NA, ...) for a model that would not fill them: one
     * whose first op does not standardize its inputs ({@link ModelSpec#fillsMissingValues}) would carry them into every
     * output, where one that does gives each the training set's mean.
     *
     * @param spec  the model
     * @param data  the data it is given
     * @param model how the message names the model
     */
    static void requireFilled(ModelSpec spec, io.predcode.data.DataSplit data, String model) {
        for (io.predcode.data.Dataset set : new io.predcode.data.Dataset[]{data.train(), data.test()})
            requireFilled(spec, set.missing(), set.name(), model);
    }

    static void requireFilled(ModelSpec spec, long missing, String source, String model) {
        if (missing > 0 && !spec.fillsMissingValues())
            throw new IllegalArgumentException(source + ": " + missing + " missing value" + (missing == 1 ? "" : "s") + " (empty fields, NA, NaN, null or ?); " + model
                    + " does not fill them: only a model whose first op standardizes its inputs gives each the training mean, as --model mlp:H1-H2 on a table does");
    }

    /** The model for a data set of {@code classes} classes: a built-in one with its last layer sized to them; a spec file's as written. */
    static ModelSpec model(String name, int classes) throws IOException {
        ModelSpec spec = model(name);
        return BuiltinModels.NAMES.contains(name) ? spec.withOutputs(classes) : spec;
    }

    static String fmt(double v) { return String.format(java.util.Locale.ROOT, "%.4f", v); }
}
