package io.predcode.cli;

import io.predcode.core.io.Checkpoint;
import io.predcode.core.json.Json;
import io.predcode.core.json.JsonFields;
import io.predcode.core.nn.ModelSpec;
import io.predcode.core.nn.OpSpec;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;

/**
 * What a checkpoint holds, read without a backend: its model block by block, the inputs it takes and the classes it
 * names, how it was trained and how far, and whether every parameter is finite. For deciding what to deploy or
 * resume without running it.
 */
@Command(name = "inspect", mixinStandardHelpOptions = true, description = {"Describe a checkpoint without running it.",
        "Its model block by block, the inputs it takes, its classes, how it was trained and how far, and whether every parameter is finite."})
final class InspectCommand implements Callable<Integer> {
    @Spec picocli.CommandLine.Model.CommandSpec spec;

    @Mixin Setup.CheckpointChoice checkpoint;

    @Option(names = "--json", description = "Print it as JSON (the training state as the checkpoint stores it).")
    boolean json;

    /** The settings printed, in this order, where the checkpoint records them. */
    private static final List<String> SETTINGS = List.of("algorithm", "loss", "eta", "n", "belief_optimizer", "energy", "nudging", "optimizer", "lr",
            "weight_decay", "lr_schedule", "batch_size", "epochs", "seed", "data", "model", "backend", "threads", "spark", "spark_partitions", "spark_threads",
            "spark_average_every");

    @Override public Integer call() throws Exception {
        Path sweep = Setup.sweepSummary(checkpoint.path);
        if (sweep != null) return sweep(sweep);
        List<Path> runs = Setup.unfinishedSweep(checkpoint.path);
        if (!runs.isEmpty() && !json) return unfinished(checkpoint.path, runs);
        Checkpoint.Loaded c = checkpoint.load();
        ModelSpec model = c.spec();
        int[][] shapes = model.activationShapes(c.inputShape());
        List<Map<String, Object>> blocks = new ArrayList<>();
        long total = 0;
        for (int b = 0; b < model.depth(); b++) {
            long params = 0;
            for (OpSpec op : model.blocks().get(b))
                for (int[] s : op.parameterShapes().values()) params += java.util.Arrays.stream(s).asLongStream().reduce(1, (x, y) -> x * y);
            total += params;
            Map<String, Object> block = new LinkedHashMap<>();
            block.put("ops", model.blocks().get(b).stream().map(InspectCommand::describe).collect(Collectors.joining(", ")));
            block.put("output", shape(shapes[b + 1]));
            block.put("parameters", params);
            blocks.add(block);
        }
        List<String> notFinite = new ArrayList<>();
        double largest = 0;
        for (Map.Entry<String, float[]> p : c.parameters().entrySet()) {
            boolean finite = true;
            for (float v : p.getValue()) {
                if (!Float.isFinite(v)) finite = false;
                else largest = Math.max(largest, Math.abs(v));
            }
            if (!finite) notFinite.add(p.getKey());
        }
        PrintWriter out = spec.commandLine().getOut();
        if (json) {
            Map<String, Object> o = new LinkedHashMap<>();
            o.put("file", c.source().toString());
            o.put("resumable", c.training() != null);
            o.put("model", model.toJsonValue());
            o.put("input", shape(c.inputShape()));
            o.put("blocks", blocks);
            o.put("parameters", total);
            o.put("forward_macs_per_sample", model.forwardMacs(c.inputShape()));
            o.put("preprocessing", Map.of("scale", (double) c.preprocessing().scale(), "shift", (double) c.preprocessing().shift()));
            o.put("classes", new ArrayList<Object>(c.classNames()));
            o.put("features", new ArrayList<Object>(c.featureNames()));
            o.put("not_finite", new ArrayList<Object>(notFinite));
            o.put("largest_abs_parameter", largest);
            if (c.training() != null) o.put("training", c.training().map());
            else if (c.settings() != null) o.put("training", Map.of("settings", c.settings().map()));
            out.println(Json.write(o, 0));
            return 0;
        }
        out.printf("%s: %s%n", c.source(), c.training() != null ? "a checkpoint to resume from (parameters, optimizer state, training state)" : "a model (parameters only)");
        out.printf("model: %d blocks, %,d parameters, %,d multiply-adds a sample forward; input %s%n", model.depth(), total, model.forwardMacs(c.inputShape()),
                java.util.Arrays.toString(c.inputShape()));
        for (int b = 0; b < blocks.size(); b++)
            out.printf("  block %d: %s -> %s (%,d parameters)%n", b, blocks.get(b).get("ops"), java.util.Arrays.toString(shapes[b + 1]), (long) blocks.get(b).get("parameters"));
        out.printf("inputs: %s%n", c.preprocessing().isIdentity() ? "used as given" : String.format(Locale.ROOT, "raw values x %s + %s", c.preprocessing().scale(), c.preprocessing().shift()));
        if (!c.featureNames().isEmpty()) // a table's columns, by which predict matches a table's
            out.printf("features: %d (%s)%n", c.featureNames().size(), c.featureNames().size() <= 12 ? String.join(", ", c.featureNames())
                    : String.join(", ", c.featureNames().subList(0, 4)) + ", ..., " + c.featureNames().getLast());
        out.printf("classes: %s%n", c.classNames().isEmpty() ? "not recorded (indices)" : c.classNames().size() + " (" + String.join(", ", c.classNames()) + ")");
        if (c.training() != null) training(out, c.training());
        else if (c.settings() != null) trained(out, c.settings());
        out.printf("parameters: %s%n", notFinite.isEmpty() ? String.format(Locale.ROOT, "all finite, largest |value| %.4g", largest)
                : "NOT FINITE in " + String.join(", ", notFinite) + " (eval, predict, generate and compare refuse this model)");
        return notFinite.isEmpty() ? 0 : Main.DIVERGED;
    }

    private static void training(PrintWriter out, JsonFields t) {
        if (t.has("settings")) trained(out, t.object("settings"));
        List<String> progress = new ArrayList<>();
        if (t.has("epochs_done"))
            progress.add("epoch " + (long) t.number("epochs_done") + (t.has("settings") && t.object("settings").has("epochs") ? " of " + (long) t.object("settings").number("epochs") : ""));
        if (t.has("steps")) progress.add("step " + (long) t.number("steps"));
        if (t.has("epoch_progress") && t.object("epoch_progress").has("batches") && t.has("epochs_done")) // saved inside an epoch: --resume goes on with its next batch
            progress.add((long) t.object("epoch_progress").number("batches") + " batches into epoch " + ((long) t.number("epochs_done") + 1));
        if (t.has("watch") && t.object("watch").has("best_epoch") && t.object("watch").number("best_epoch") > 0)
            progress.add(String.format(Locale.ROOT, "best validation accuracy %.2f%% at epoch %d", 100 * t.object("watch").number("best_accuracy"),
                    (long) t.object("watch").number("best_epoch")));
        if (t.has("history") && !t.list("history").isEmpty() && t.list("history").getLast() instanceof Map<?, ?> last && last.get("test_accuracy") instanceof Number a)
            progress.add(String.format(Locale.ROOT, "last test accuracy %.2f%%", 100 * a.doubleValue()));
        if (t.has("rollbacks") && t.number("rollbacks") > 0) progress.add((long) t.number("rollbacks") + " rollbacks");
        if (t.has("eta_now") && t.has("settings") && t.object("settings").has("eta") && t.number("eta_now") != t.object("settings").number("eta"))
            progress.add("eta now " + t.number("eta_now"));
        if (!progress.isEmpty()) out.printf("progress: %s%n", String.join(", ", progress));
    }

    /** The settings the model was trained with, those that mean anything for its algorithm. */
    private static void trained(PrintWriter out, JsonFields s) {
        String algorithm = s.has("algorithm") ? s.string("algorithm") : "";
        List<String> parts = new ArrayList<>();
        for (String key : SETTINGS)
            if (s.has(key) && relevant(key, algorithm) && !(key.equals("spark") && "none".equals(s.get(key))) && !(key.equals("spark_average_every") && s.number(key) == 1))
                parts.add(key + " " + Json.write(s.get(key), 0).replace("\"", ""));
        if (TrainingRun.threadInvariant(s)) parts.add("thread-invariant");
        out.printf("trained: %s%n", String.join(", ", parts));
    }

    /** Whether a recorded setting means anything for the algorithm: the run records them all. */
    private static boolean relevant(String key, String algorithm) {
        return switch (key) {
            case "belief_optimizer", "energy", "nudging" -> algorithm.equals("pc") || algorithm.equals("ipc");
            case "eta", "n" -> !algorithm.equals("backprop");
            default -> true;
        };
    }

    /**
     * An op as {@code linear(in=784, out=512)}: its JSON's fields but the op's name; a list longer than 8 (a table's
     * standardization, a mean per feature) as its first values and its length.
     */
    static String describe(OpSpec op) {
        return op.op() + op.toJson().entrySet().stream().filter(e -> !e.getKey().equals("op"))
                .map(e -> e.getKey() + "=" + (e.getValue() instanceof List<?> l && l.size() > 8
                        ? Json.write(l.subList(0, 4), 0).replace("]", ", ... (" + l.size() + " values)]") : Json.write(e.getValue(), 0)))
                .collect(Collectors.joining(", ", "(", ")")).replace("()", "");
    }

    private static List<Object> shape(int[] s) {
        List<Object> l = new ArrayList<>();
        for (int d : s) l.add(d);
        return l;
    }

    /** A sweep's table again, as train printed it at its end (--json: the summary as it is). */
    @SuppressWarnings("unchecked")
    private int sweep(Path file) throws java.io.IOException {
        String text = java.nio.file.Files.readString(file);
        Object summary = Json.parse(text, file.toString()); // malformed JSON: one line naming the file
        PrintWriter out = spec.commandLine().getOut();
        try {
            if (json) out.print(Json.write(summary, 2) + "\n");
            else if (file.getFileName().toString().equals("grid.json")) GridSweep.table((Map<String, Object>) summary, file, out);
            else SeedSweep.table((Map<String, Object>) summary, file, out);
        } catch (ClassCastException | NullPointerException e) { // a file edited by hand or by another tool
            throw new IllegalArgumentException(file + ": not a sweep's summary as train writes it", e);
        }
        out.println("(a sweep's folder: inspect one of its runs, e.g. --checkpoint " + file.getParent() + "/<run>, for its model)");
        return 0;
    }

    /** A sweep stopped before its summary: each run so far, how far it came and how it stopped (its metrics.json). */
    private int unfinished(Path dir, List<Path> runs) throws java.io.IOException {
        PrintWriter out = spec.commandLine().getOut();
        out.printf("%s %s; %s. Its runs so far:%n", dir, Setup.UNFINISHED, ResumeDefaults.howToFinish(dir));
        int width = runs.stream().mapToInt(r -> dir.relativize(r).toString().length()).max().orElse(3);
        for (Path run : runs) {
            io.predcode.core.json.JsonFields m = Sweep.metrics(run);
            int epochs = m == null ? 0 : m.list("epochs").size();
            out.printf("%-" + width + "s  %3d epoch%s  %s%n", dir.relativize(run), epochs, epochs == 1 ? " " : "s", m != null && m.has("stop_reason") ? m.string("stop_reason") : "");
        }
        return 0;
    }
}
