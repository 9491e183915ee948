package io.predcode.cli;

import io.predcode.core.io.Checkpoint;
import io.predcode.core.json.JsonFields;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code train --resume} with options left out takes the run's own settings for them, as its checkpoint records them:
 * {@code predcode train --resume --out DIR} goes on with the run as it was started, where it had to be given every
 * option again (and was refused, naming the first that differed). An option given is checked against the run as before.
 * A sweep (--grid or --seeds) records the options it was given in OUT/command.json, and a resume of its folder takes
 * those it is not given from there; a --seeds sweep from before that file takes them from the first of its runs that
 * has a checkpoint (but the seed). A CPU run that is not thread-invariant goes on on the threads it trained on, which
 * set its bits, and a Spark run on Spark, on its partitions, whose shard plan sets its batches.
 */
final class ResumeDefaults {
    private ResumeDefaults() {}

    /** A setting the checkpoint records under {@code key}, set by {@code option} (or, for a flag, present where "on"), and by the other names too. */
    private record Setting(String key, String option, boolean flag, String... alsoSetBy) {}

    private static final List<Setting> SETTINGS = List.of(
            new Setting("algorithm", "--algorithm", false), new Setting("model", "--model", false), new Setting("data", "--data", false),
            new Setting("epochs", "--epochs", false), new Setting("batch_size", "--batch-size", false), new Setting("optimizer", "--optimizer", false),
            new Setting("belief_optimizer", "--belief-optimizer", false, "--inference-optimizer", "--inference-momentum"),
            new Setting("condense", "--condense", false), new Setting("energy", "--energy", false), new Setting("nudging", "--nudging", false),
            new Setting("lr_schedule", "--lr-schedule", false), new Setting("lr", "--lr", false), new Setting("momentum", "--momentum", false),
            new Setting("weight_decay", "--weight-decay", false), new Setting("eta", "--eta", false, "--inference-lr"), new Setting("n", "--n", false, "--T"),
            new Setting("loss", "--loss", false), new Setting("seed", "--seed", false), new Setting("validation", "--validation", false),
            new Setting("collapse_margin", "--collapse-margin", false), new Setting("patience", "--patience", false),
            new Setting("on_collapse", "--on-collapse", false), new Setting("max_rollbacks", "--max-rollbacks", false),
            new Setting("checkpoint_every", "--checkpoint-every", false), new Setting("monitor_every", "--monitor-every", false),
            new Setting("stable_relaxation", "--stable-relaxation", false), new Setting("input_range", "--input-range", false),
            new Setting("augment", "--augment", false), new Setting("shuffle", "--shuffle", false), new Setting("drop_last", "--drop-last", true),
            new Setting("score_whole_batches", "--score-whole-batches", true), new Setting("thread_invariant", "--thread-invariant", true),
            new Setting("backend", "--backend", false)); // a GPU run goes on on the GPU; on a machine without one, --backend cpu says where

    /**
     * The checkpoint whose settings a resumed train takes: the one in its --out or, for a --seeds sweep, the first of
     * its seeds' (OUT/seed-S) that has one; null where there is none.
     */
    static Path file(CommandLine.ParseResult train) {
        Path out = out(train);
        if (!train.hasMatchedOption("--seeds")) return Files.isRegularFile(out.resolve(Checkpoint.RESUME_FILE)) ? out.resolve(Checkpoint.RESUME_FILE) : null;
        try (var seeds = Files.list(out)) {
            return seeds.filter(d -> d.getFileName().toString().matches("seed-\\d+")).map(d -> d.resolve(Checkpoint.RESUME_FILE)).filter(Files::isRegularFile)
                    .sorted().findFirst().orElse(null);
        } catch (java.io.IOException | RuntimeException e) {
            return null;
        }
    }

    /** train's --out, as given or its default. */
    private static Path out(CommandLine.ParseResult train) { return train.matchedOptionValue("--out", Path.of("runs/latest")); }

    /** The file in a sweep's folder that holds the options its train was given. */
    static final String COMMAND_FILE = "command.json";

    /**
     * The options of a sweep's command that a resume of it does not take: its folder, whether it is resumed or replaced,
     * and what was for that process alone (a run's resume does not take them either): where it stopped, and its output.
     */
    private static final java.util.Set<String> NOT_RECORDED = java.util.Set.of("--out", "--resume", "--overwrite", "--max-steps", "--quiet");

    /**
     * Records the options {@code train} was given, each "--option=value" or a flag, in OUT/command.json for a sweep
     * starting there (kept where a resume finds one); see {@link #missing}.
     */
    static void recordSweep(CommandLine.ParseResult train, Path out) throws java.io.IOException {
        Path file = out.resolve(COMMAND_FILE);
        if (train.hasMatchedOption("--resume") && Files.exists(file)) return;
        List<Object> args = new ArrayList<>();
        for (CommandLine.Model.OptionSpec o : train.matchedOptions()) {
            if (NOT_RECORDED.contains(o.longestName())) continue;
            if (o.arity().max() == 0) args.add(o.longestName());
            else for (String v : o.originalStringValues()) args.add(o.longestName() + "=" + v); // one argument: its value cannot be read as an option
        }
        Files.createDirectories(out);
        io.predcode.core.io.AtomicFiles.writeString(file, io.predcode.core.json.Json.write(java.util.Map.of("train", args), 2) + "\n");
    }

    /** How a sweep stopped in {@code dir} is finished: with --resume alone where it recorded its options, else with them given again. */
    static String howToFinish(Path dir) {
        return Files.isRegularFile(dir.resolve(COMMAND_FILE)) ? "train --resume --out " + GridSweep.shellWord(dir.toString()) + " finishes it (its options are in " + COMMAND_FILE + ")"
                : "train --resume with the sweep's --grid or --seeds finishes it";
    }

    /**
     * A resumed sweep's recorded options that {@code train} was not given ({@link #recordSweep}); none where its --out
     * holds a run's checkpoint, or no command.json. A file that does not hold a list of strings names itself.
     */
    private static List<String> sweepOptions(CommandLine.ParseResult train) {
        Path out = out(train), file = out.resolve(COMMAND_FILE);
        List<String> added = new ArrayList<>();
        if (Files.exists(out.resolve(Checkpoint.RESUME_FILE)) || !Files.isRegularFile(file)) return added;
        Object recorded;
        try {
            recorded = io.predcode.core.json.Json.parse(Files.readString(file), file.toString());
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        if (!(recorded instanceof java.util.Map<?, ?> m) || !(m.get("train") instanceof List<?> args) || !args.stream().allMatch(a -> a instanceof String))
            throw new IllegalArgumentException(file + ": field 'train': expected a list of train's options, as a sweep records them");
        for (Object a : args) {
            String arg = (String) a, name = arg.contains("=") ? arg.substring(0, arg.indexOf('=')) : arg;
            CommandLine.Model.OptionSpec o = train.commandSpec().findOption(name);
            if (o != null && NOT_RECORDED.contains(o.longestName())) // a tampered file: it would train elsewhere, or replace the sweep
                throw new IllegalArgumentException(file + ": field 'train': " + o.longestName() + " is not one a sweep records");
            if (o == null || !train.hasMatchedOption(o)) added.add(arg); // an unknown one is refused by the parse, naming the file
        }
        return added;
    }

    /** The arguments a resume adds for the options it was not given, and the file and field they come from (null where none). */
    record Added(List<String> args, Path file, String field) {
        static final Added NONE = new Added(List.of(), null, null);

        /** "FILE: field 'F': ", the start of a line that refuses one of them. */
        String where() { return file + ": field '" + field + "': "; }
    }

    /**
     * The arguments to add to {@code train} for the options it was not given, each "--option=value" or a flag: a
     * sweep's from its command.json, a run's from the checkpoint {@link #file} finds; none where it does not resume,
     * resumes a grid given again, or finds nothing to read (the run then says what is wrong).
     */
    static Added missing(CommandLine.ParseResult train) {
        if (!train.hasMatchedOption("--resume") || train.hasMatchedOption("--grid")) return Added.NONE; // a grid's points differ in their settings
        if (!train.hasMatchedOption("--seeds")) {
            List<String> sweep = sweepOptions(train);
            if (!sweep.isEmpty()) return new Added(sweep, out(train).resolve(COMMAND_FILE), "train");
        }
        Path file = file(train);
        JsonFields settings;
        try {
            if (file == null || (settings = Checkpoint.settings(file)) == null) return Added.NONE; // its header alone: the run reads the whole file
        } catch (Exception e) { // a damaged checkpoint: the run's own reading of it says so, in one line
            return Added.NONE;
        }
        List<String> added = new ArrayList<>();
        for (Setting s : SETTINGS) {
            if (!settings.has(s.key()) || train.hasMatchedOption(s.option()) || List.of(s.alsoSetBy()).stream().anyMatch(train::hasMatchedOption)
                    || s.key().equals("seed") && train.hasMatchedOption("--seeds")) continue; // each seed's run has its own
            String value = text(settings.get(s.key()));
            if (s.flag()) {
                if (value.equals("on")) added.add(s.option());
            } else {
                added.add(s.option() + "=" + value); // one argument: a value, whatever it holds, cannot be read as another option
            }
        }
        boolean invariant = TrainingRun.threadInvariant(settings) || train.hasMatchedOption("--thread-invariant");
        // The CPU threads it trained on, where they set its bits (not thread-invariant) and differ from what --threads 0 gives here.
        if (settings.has("threads") && !train.hasMatchedOption("--threads") && !invariant
                && !text(settings.get("threads")).equals(Integer.toString(Runtime.getRuntime().availableProcessors())))
            added.add("--threads=" + text(settings.get("threads")));
        sparkPlace(train, settings, invariant, added);
        return new Added(added, file, "training.settings");
    }

    /**
     * A Spark run goes on where it trained: its master, unless --spark is given (none: in one process), and on Spark
     * its partitions, averaging and executor threads, unless given. Spark's shard plan draws each epoch's batches per
     * partition, so elsewhere the run would take other batches from the resume on; the master itself changes no bit, so
     * a run moved to another cluster with --spark alone goes on as it was. A cluster that is gone is said in a line.
     */
    private static void sparkPlace(CommandLine.ParseResult train, JsonFields settings, boolean invariant, List<String> added) {
        if (!settings.has("spark")) return; // a checkpoint from before the record
        String given = train.matchedOptionValue("--spark", null), master = given != null ? given : text(settings.get("spark"));
        if (master.equals(Setup.SparkChoice.NONE)) return;
        boolean wasSpark = !text(settings.get("spark")).equals(Setup.SparkChoice.NONE);
        if (given == null) added.add("--spark=" + master);
        if (!wasSpark) return; // one process's run moved onto Spark: Spark's options are the user's
        if (settings.has("spark_partitions") && !train.hasMatchedOption("--spark-partitions")) added.add("--spark-partitions=" + text(settings.get("spark_partitions")));
        if (settings.has("spark_average_every") && !train.hasMatchedOption("--spark-average-every") && settings.number("spark_average_every") != 1)
            added.add("--spark-average-every=" + text(settings.get("spark_average_every")));
        // Each executor splits its sums over --threads, 1 where it is 0: taken where that is not what it trained on.
        if (settings.has("spark_threads") && !train.hasMatchedOption("--threads") && !invariant && settings.number("spark_threads") != 1)
            added.add("--threads=" + text(settings.get("spark_threads")));
    }

    /** A recorded value as an option takes it: a whole number without its ".0". */
    private static String text(Object v) { return v instanceof Double d ? RunState.fmtSetting(d) : String.valueOf(v); }

    /**
     * Runs the parsed command line ({@link CommandLine.RunLast}); a {@code train --resume} with options left out is
     * parsed again first with the run's own settings after what was given, so the same checks apply to them. A
     * recorded value train refuses (a tampered checkpoint) is refused naming the checkpoint and its field.
     */
    static int execute(CommandLine cl, CommandLine.ParseResult parsed, PrintWriter out) {
        CommandLine.ParseResult train = parsed.subcommand();
        Added fromRun;
        try {
            fromRun = train != null && train.commandSpec().name().equals("train") ? missing(train) : Added.NONE;
        } catch (RuntimeException e) { // a sweep's command.json that cannot be read: one line, as any bad file
            throw new CommandLine.ExecutionException(train.commandSpec().commandLine(), String.valueOf(e.getMessage()), e);
        }
        List<String> added = fromRun.args();
        if (added.isEmpty()) return new CommandLine.RunLast().execute(parsed);
        String recorded = fromRun.where();
        List<String> all = new ArrayList<>(parsed.originalArgs());
        all.addAll(added);
        try {
            parsed = cl.parseArgs(all.toArray(String[]::new));
        } catch (CommandLine.ParameterException e) {
            throw new CommandLine.ParameterException(e.getCommandLine(), recorded + e.getMessage());
        }
        out.println("resuming with the run's own settings for the options not given: " + shown(added, parsed.subcommand()));
        try {
            return new CommandLine.RunLast().execute(parsed);
        } catch (CommandLine.ExecutionException e) {
            // The run's Spark master, gone (a cluster shut down) or not here (submit, outside spark-submit): say the way on.
            String spark = added.stream().filter(a -> a.startsWith("--spark=")).map(a -> a.substring("--spark=".length())).findFirst().orElse(null);
            if (spark != null && e.getCause() instanceof IllegalArgumentException bad && bad.getMessage() != null && bad.getMessage().startsWith("--spark " + spark + ":"))
                throw new CommandLine.ExecutionException(e.getCommandLine(), e.getMessage(), new IllegalArgumentException(recorded + bad.getMessage()
                        + " (the run trained there; give --spark MASTER where its cluster is now, or --spark none to go on in one process)", bad));
            // train's own checks on a recorded value ("--input-range must be 0:1 or -1:1, got '0:0'"): the value came from the file.
            // ("unknown backend 'tpu'" names the value alone.)
            if (e.getCause() instanceof IllegalArgumentException bad && bad.getMessage() != null && !bad.getMessage().startsWith(fromRun.file() + ":")
                    && added.stream().anyMatch(a -> bad.getMessage().contains(a.contains("=") ? a.substring(0, a.indexOf('=')) : a)
                            || a.contains("=") && bad.getMessage().contains("'" + a.substring(a.indexOf('=') + 1) + "'")))
                throw new CommandLine.ExecutionException(e.getCommandLine(), e.getMessage(), new IllegalArgumentException(recorded + bad.getMessage(), bad));
            // The run's data files, no longer where it read them (moved, another machine): say the path came from the run.
            String data = added.stream().filter(a -> a.startsWith("--data=") && a.indexOf(':') > 0).map(a -> a.substring("--data=".length())).findFirst().orElse(null);
            if (data != null && e.getCause() instanceof java.nio.file.NoSuchFileException gone && gone.getFile() != null
                    && gone.getFile().startsWith(data.substring(data.indexOf(':') + 1)))
                throw new CommandLine.ExecutionException(e.getCommandLine(), e.getMessage(), new IllegalArgumentException(Main.message(gone)
                        + " (the run's --data " + data + ", as " + fromRun.file() + " records; give --data where it is now)", gone));
            // The run's backend, not there on this machine (a GPU run resumed on a CPU): say where it came from, and the way on.
            if (e.getCause() instanceof io.predcode.spi.BackendUnavailableException gone && added.stream().anyMatch(a -> a.startsWith("--backend=")))
                throw new CommandLine.ExecutionException(e.getCommandLine(), e.getMessage(), new io.predcode.spi.BackendUnavailableException(gone.getMessage()
                        + " (the run was trained on it, as " + fromRun.file() + " records; give --backend cpu to go on on the CPU)", gone));
            throw e;
        }
    }

    /**
     * The defaults of the options whose default picocli does not hold (train works them out), as a run records them:
     * --n's is 20 (fixedpred's, its model's depth, is recorded as that number and shown).
     */
    private static final java.util.Map<String, String> WORKED_OUT = java.util.Map.of("--data", "digits", "--eta", "0.1", "--n", "20", "--belief-optimizer", "sgd");

    /** The options {@code added} that differ from their defaults, as "--algorithm pc --eta 0.05": what a reader needs to see of them. */
    private static String shown(List<String> added, CommandLine.ParseResult train) {
        StringBuilder b = new StringBuilder();
        for (String a : added) {
            int eq = a.indexOf('=');
            CommandLine.Model.OptionSpec o = train.commandSpec().findOption(eq < 0 ? a : a.substring(0, eq));
            boolean flag = eq < 0;
            String value = flag ? null : a.substring(eq + 1);
            String defaultValue = o.defaultValue() != null ? o.defaultValue() : WORKED_OUT.get(o.longestName());
            if (flag || !value.replace('_', '-').equals(defaultValue)) // (a loss is recorded as cross_entropy)
                b.append(b.isEmpty() ? "" : " ").append(o.longestName()).append(flag ? "" : " " + value);
        }
        return b.isEmpty() ? "all as the defaults" : b.toString();
    }
}
