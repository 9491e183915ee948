package io.predcode.cli;

import io.predcode.core.io.Checkpoint;
import io.predcode.core.nn.Loss;
import io.predcode.core.nn.Model;
import io.predcode.core.pc.PcEngine;
import io.predcode.data.DataSplit;
import io.predcode.spi.Backend;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.Callable;

/** Loss and accuracy of a checkpoint on a data set's test split. */
@Command(name = "eval", mixinStandardHelpOptions = true, description = "Evaluate a checkpoint: test loss and accuracy.")
final class EvalCommand implements Callable<Integer> {
    @Spec picocli.CommandLine.Model.CommandSpec spec;

    @Mixin Setup.CheckpointChoice checkpoint;

    @Mixin Setup.DataChoice dataChoice;

    @Option(names = "--batch-size", defaultValue = "1000", description = "Evaluation batch size (default: ${DEFAULT-VALUE}).")
    int batchSize;

    @Option(names = "--score-whole-batches", description = "Score as PCX's test loader does: whole batches of --batch-size in stored order,"
            + " leaving out the last partial batch (train's option of that name; give the run's --batch-size to score what it scored)."
            + " Without it every sample is scored.")
    boolean scoreWholeBatches;

    @Option(names = "--per-class", description = "Also each class's accuracy and the confusion matrix (rows: the true class, columns: the predicted one).")
    boolean perClass;

    @Option(names = "--json", description = "Print the result as JSON.")
    boolean json;

    @Option(names = "--loss", description = "cross-entropy or mse (default: the loss the checkpoint was trained with; cross-entropy for a model folder that names none, such as an export).")
    String loss;

    @Mixin Setup.BackendChoice backendChoice;

    @Override public Integer call() throws Exception {
        Checkpoint.Loaded c = checkpoint.loadFinite();
        if (batchSize < 1) throw new IllegalArgumentException("--batch-size must be at least 1, got " + batchSize);
        DataSplit split = dataChoice.loadFor(c);
        String note = Setup.DataChoice.changedSince(c, dataChoice.data, split);
        if (note != null) spec.commandLine().getErr().println("note: " + note);
        if (dataChoice.unseenNote != null) spec.commandLine().getErr().println("note: " + dataChoice.unseenNote);
        io.predcode.data.Dataset test = scoreWholeBatches ? Scoring.wholeBatches(split.test(), batchSize, "test") : split.test();
        int[] input = Setup.inputShape(c.spec(), split, "the model in " + checkpoint);
        Loss l = loss == null ? c.loss() : Setup.loss(loss);
        try (Backend be = backendChoice.openFor(c); Model m = Model.create(c.spec(), input, be, 0); PcEngine e = new PcEngine(m, l)) {
            m.loadParameters(c.parameters(), c.source().toString());
            long[][] confusion = perClass ? new long[test.classes()][test.classes()] : null;
            Scoring.Score s = Scoring.evaluate(e, test, batchSize, confusion);
            if (!Double.isFinite(s.loss()))
                throw new io.predcode.core.pc.DivergenceException(0, c.source() + ": the model's test loss is " + s.loss() + " (its parameters are not finite, or overflow); nothing to evaluate");
            var out = spec.commandLine().getOut();
            if (json) out.printf("{\"loss\": %s, \"loss_function\": \"%s\", \"accuracy\": %s, \"samples\": %d%s}%n", s.loss(), e.loss().id(), s.accuracy(), test.size(),
                    confusion == null ? "" : ", \"confusion\": " + Arrays.deepToString(confusion) + ", \"class_names\": " + io.predcode.core.json.Json.write(split.classNames(), 0));
            else {
                out.printf("%s on %s: %s loss %s, accuracy %.2f%% (%d samples)%n", c.source(), test.name(), e.loss().id(), Setup.fmt(s.loss()), 100 * s.accuracy(), test.size());
                if (confusion != null) printPerClass(out, confusion, split.classNames());
            }
        }
        return 0;
    }

    private static void printPerClass(java.io.PrintWriter out, long[][] confusion, java.util.List<String> names) {
        int width = Math.max(5, names.stream().mapToInt(String::length).max().orElse(5));
        out.printf("%-" + width + "s  %8s  %7s   predicted as (columns in class order)%n", "class", "accuracy", "samples");
        for (int k = 0; k < confusion.length; k++) {
            long n = Arrays.stream(confusion[k]).sum();
            // A class the test set has no sample of (a table of some of the model's classes) has no accuracy, not 0%.
            out.printf("%-" + width + "s  %8s  %7d   %s%n", names.get(k), n == 0 ? "-" : String.format(java.util.Locale.ROOT, "%.2f%%", 100.0 * confusion[k][k] / n), n,
                    Arrays.stream(confusion[k]).mapToObj(Long::toString).collect(java.util.stream.Collectors.joining(" ")));
        }
    }
}
