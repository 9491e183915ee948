package io.predcode.cli;

import io.predcode.core.pc.DivergenceException;
import io.predcode.spi.BackendUnavailableException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;

/**
 * The {@code predcode} command. Bad input: one line on stderr, exit 2. Divergence: exit 3. Out of heap memory: one line,
 * exit 4. A training run stopped by SIGINT, SIGTERM or SIGHUP, saved: 128 + the signal's number (130, 143, 129).
 */
@Command(name = "predcode", mixinStandardHelpOptions = true, version = "predcode 0.1.0",
        description = "Predictive-coding training on the JVM, on CPUs and GPUs: Torch2PC's algorithms (STRICT, FIXED_PRED, EXACT), PC, iPC and Z-IL, and backprop.",
        subcommands = {TrainCommand.class, EvalCommand.class, PredictCommand.class, ServeCommand.class, GenerateCommand.class, InspectCommand.class, CompareCommand.class, BenchCommand.class, BackendsCommand.class, CommandLine.HelpCommand.class})
public final class Main implements Runnable {
    public static final int BAD_INPUT = 2, DIVERGED = 3, OUT_OF_MEMORY = 4;

    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Override public void run() { spec.commandLine().usage(System.out); }

    public static void main(String[] args) {
        System.setProperty("java.awt.headless", "true");
        System.exit(run(args, new PrintWriter(System.out, true), new PrintWriter(System.err, true)));
    }

    /** Runs a command line; returns the exit code. Tests call this directly. */
    public static int run(String[] args, PrintWriter out, PrintWriter err) {
        CommandLine cl = new CommandLine(new Main());
        cl.setOut(out).setErr(err);
        HelpSections.install(cl.getSubcommands().get("train"), TrainCommand.HELP_SECTIONS);
        HelpSections.install(cl.getSubcommands().get("bench"), BenchCommand.HELP_SECTIONS);
        HelpSections.install(cl.getSubcommands().get("compare"), CompareCommand.HELP_SECTIONS);
        // An empty path is the current folder: read as a checkpoint or data file it failed naming only "model.safetensors"
        // or nothing at all, and written over it failed naming a temporary file. No option means it.
        cl.registerConverter(java.nio.file.Path.class, value -> {
            if (value.isEmpty()) throw new CommandLine.TypeConversionException("'' is not a path (an empty one would mean the current folder)");
            return java.nio.file.Path.of(value);
        });
        // A comma-separated option given only commas ("--algorithm ,") splits into no values: refused here for every such
        // option, where a command would do nothing with it or fail on its first value.
        cl.setExecutionStrategy(parsed -> {
            for (CommandLine.ParseResult p = parsed; p != null; p = p.subcommand())
                for (CommandLine.Model.OptionSpec o : p.matchedOptions())
                    if (!o.splitRegex().isEmpty() && o.getValue() instanceof java.util.Collection<?> values && values.isEmpty())
                        throw new CommandLine.ParameterException(p.commandSpec().commandLine(), o.longestName() + " needs at least one value, got none");
            return ResumeDefaults.execute(cl, parsed, out);
        });
        // A mistyped option gets one line, not the whole usage.
        cl.setParameterExceptionHandler((e, badArgs) -> {
            err.println("predcode: " + e.getMessage() + " (see '" + e.getCommandLine().getCommandSpec().qualifiedName() + " --help')");
            return BAD_INPUT;
        });
        cl.setExecutionExceptionHandler((e, line, parsed) -> report(e, err));
        try {
            return cl.execute(args);
        } catch (OutOfMemoryError e) {
            // Data sets are held in memory (with a copy for the validation split): a heap too small for them ends here,
            // in one line that says how to give Java more, not in a stack trace. Files written so far are whole (atomic).
            err.println("predcode: out of Java heap memory (" + (Runtime.getRuntime().maxMemory() >> 20) + " MiB at most): the data set and its validation"
                    + " split are held in memory; give Java more with PREDCODE_JAVA_OPTS=-Xmx<size> (e.g. -Xmx8g)"
                    + (e.getMessage() != null && e.getMessage().startsWith(Sweep.FEWER_AT_ONCE) ? ", " + e.getMessage() : "") + " or use a smaller data set");
            return OUT_OF_MEMORY;
        }
    }

    /** A command's failure: one line and its exit code where it is bad input or a divergence; anything else is a bug, rethrown. */
    static int report(Exception thrown, PrintWriter err) throws Exception {
        // A file streamed through a lambda (a folder's listing, a file's lines) fails with its IOException wrapped.
        Exception e = thrown instanceof java.io.UncheckedIOException u ? u.getCause() : thrown;
        if (e instanceof DivergenceException d) {
            err.println("predcode: " + d.getMessage());
            return DIVERGED;
        }
        if (isBadInput(e)) {
            err.println("predcode: " + message(e));
            return BAD_INPUT;
        }
        throw thrown;
    }

    /** Bad input: IllegalArgumentException (JsonException is one), IOException (DataFormatException is one), an unavailable backend. */
    static boolean isBadInput(Throwable e) {
        return e instanceof IllegalArgumentException || e instanceof BackendUnavailableException || e instanceof IOException;
    }

    static String message(Throwable e) {
        if (e instanceof NoSuchFileException f) return f.getFile() + ": " + (f.getReason() != null ? f.getReason() : "not found");
        if (e instanceof AccessDeniedException a) return a.getFile() + ": " + (a.getReason() != null ? a.getReason() : "permission denied");
        if (e instanceof FileSystemException f) return f.getFile() + ": " + (f.getReason() != null ? f.getReason() : f.getClass().getSimpleName());
        return e.getMessage() != null ? e.getMessage() : e.toString();
    }
}
