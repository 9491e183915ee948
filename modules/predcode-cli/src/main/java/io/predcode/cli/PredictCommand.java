package io.predcode.cli;

import io.predcode.core.io.AtomicFiles;
import io.predcode.core.io.Checkpoint;
import io.predcode.core.nn.Model;
import io.predcode.core.serve.Predictor;
import io.predcode.data.Npy;
import io.predcode.data.NpyFolder;
import io.predcode.data.Npz;
import io.predcode.spi.Backend;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/** A checkpoint's classes and probabilities for inputs saved with NumPy, as CSV: what a service's Predictor answers, for a file. */
@Command(name = "predict", mixinStandardHelpOptions = true, description = {"Classify the inputs in a .npy or .npz file with a checkpoint: a CSV row per sample.",
        "Each row holds the sample's class, the class's name, and each class's probability (p0, p1, ...; a model trained on squared error:"
        + " its outputs, out0, out1, ...)."})
final class PredictCommand implements Callable<Integer> {
    @Spec picocli.CommandLine.Model.CommandSpec spec;

    @Mixin Setup.CheckpointChoice checkpoint;

    @Option(names = "--input", required = true, description = "A .npy file (or .npy.gz, or an array of an .npz archive: --array) of raw inputs, as the data set stores them: (N, F), (N, H, W), (N, C, H, W) or (N, H, W, C);"
            + " or a .csv table of features, a row a sample (a column a header names label, class or target is left out; a header's columns are matched"
            + " to the names of a model trained on a table by name);"
            + " the checkpoint's preprocessing is applied (bytes of a model trained on MNIST-style data are divided by 255).")
    Path input;

    @Option(names = "--array", paramLabel = "KEY", description = "With an .npz archive for --input: the key of the array to classify (default: its only array).")
    String array;

    @Option(names = "--out", description = "Write the CSV here (atomically) instead of to standard output; a name ending in .npy gets the probabilities"
            + " (or outputs) alone, as an (N, classes) float32 array for NumPy.")
    Path out;

    @Option(names = "--batch-size", defaultValue = "1000", description = "Samples per call (default: ${DEFAULT-VALUE}).")
    int batchSize;

    @Mixin Setup.BackendChoice backendChoice;

    /**
     * The array in --input: an .npy file, the array --array names in an .npz archive, or a CSV table's features; a table
     * with a header gives a model that names its features (one trained on a table with one) its columns by name.
     */
    private Npy.Array inputs(Checkpoint.Loaded c, java.io.PrintWriter err) throws java.io.IOException {
        String name = input.getFileName() == null ? "" : input.getFileName().toString();
        if (name.endsWith(".csv") || name.endsWith(".csv.gz")) {
            if (array != null) throw new IllegalArgumentException("--array " + array + " names an array of an .npz archive, but " + input + " is a CSV table");
            List<String> wanted = c.featureNames();
            io.predcode.data.Csv.Table t = wanted.isEmpty() ? io.predcode.data.Csv.read(input, false) : io.predcode.data.Csv.read(input, wanted);
            Setup.requireFilled(c.spec(), t.missing(), input.toString(), c.source() + "'s model");
            List<String> have = t.featureNames();
            if (have.isEmpty() || wanted.isEmpty()) return new Npy.Array(t.source(), new int[]{t.rows(), t.width()}, "<f4", t.features());
            String label = t.labelColumn() < 0 ? null : t.header().get(t.labelColumn()); // a label column is expected beside the features: not said
            List<String> unused = t.header().stream().filter(f -> !wanted.contains(f) && !f.equals(label)
                    && wanted.stream().noneMatch(w -> f.equals(io.predcode.data.Csv.categoryColumn(w, t.header())))).toList(); // a text column's categories
            if (!unused.isEmpty()) err.println("note: " + input + ": " + (unused.size() == 1 ? "column '" + unused.getFirst() + "' is" : "columns " + unused + " are")
                    + " not among the model's features; left out");
            String note = Setup.unseenNote(have, wanted, t.features());
            if (note != null) err.println("note: " + input + ": " + note);
            if (have.equals(wanted)) return new Npy.Array(t.source(), new int[]{t.rows(), t.width()}, "<f4", t.features());
            float[] x = io.predcode.data.DataSplit.select(t.features(), t.width(), io.predcode.data.DataSplit.columns(input.toString(), have, wanted));
            return new Npy.Array(t.source(), new int[]{t.rows(), wanted.size()}, "<f4", x);
        }
        if (!Npz.looksLikeOne(input)) {
            if (array != null) throw new IllegalArgumentException("--array " + array + " names an array of an .npz archive, but " + input + " is not one");
            return Npy.read(input);
        }
        try (Npz npz = Npz.open(input)) {
            if (array != null) return npz.array(array);
            if (npz.keys().size() != 1)
                throw new IllegalArgumentException(input + ": holds the arrays " + npz.keys() + "; name the one to classify with --array");
            return npz.array(npz.keys().getFirst());
        }
    }

    /**
     * Inputs that look scaled otherwise than the model's training data were: floats within [-1, 1] for a model that
     * divides raw values (bytes, digits' 0..16) itself, or bytes for a model that takes values as they are. Either way
     * the answers are those of other inputs, so it is said, though the values may be right (a dark image, say).
     */
    static String scaleNote(Path input, String dtype, float[] values, io.predcode.core.serve.Preprocessing p) {
        float max = 0;
        for (float v : values) max = Math.max(max, Math.abs(v));
        if (p.scale() < 0.5f && !dtype.endsWith("u1") && max <= 1f)
            return input + " holds values within [-1, 1], but the model scales raw inputs itself (" + affine(p) + "): pass them as its data set stores them"
                    + " (bytes 0..255, say), not scaled";
        if (p.isIdentity() && dtype.endsWith("u1") && max > 1f)
            return input + " holds bytes (up to " + (int) max + "), which this model takes as they are: it was trained on values as stored, not divided by 255;"
                    + " scale them as its training data were";
        return null;
    }

    /** x * scale + shift as a person writes it: "x / 255", "x / 255 * 2 - 1". */
    private static String affine(io.predcode.core.serve.Preprocessing p) {
        double divisor = 1 / (double) p.scale(), whole = Math.rint(divisor);
        String scaled = Math.abs(divisor - whole) < 1e-3 * whole ? "x / " + (long) whole : "x * " + p.scale();
        if (p.shift() == 0) return scaled;
        // A shift after a scale 2/K reads as x / K * 2 - 1 (--input-range -1:1).
        double half = Math.rint(divisor * 2);
        return (Math.abs(divisor * 2 - half) < 1e-3 * half ? "x / " + (long) half + " * 2" : "x * " + p.scale()) + (p.shift() < 0 ? " - " : " + ")
                + (p.shift() == Math.rint(p.shift()) ? Long.toString((long) Math.abs(p.shift())) : Float.toString(Math.abs(p.shift())));
    }

    /**
     * Whether the model's answer is each class's probability (the softmax of a cross-entropy model's outputs) rather than
     * its outputs as they are: a model trained on squared error against one-hot targets outputs its guess of them, not logits.
     */
    static boolean answersProbabilities(Checkpoint.Loaded c) { return c.loss() == io.predcode.core.nn.Loss.CROSS_ENTROPY; }

    @Override public Integer call() throws Exception {
        if (batchSize < 1) throw new IllegalArgumentException("--batch-size must be at least 1, got " + batchSize);
        Setup.outputFile("--out", out);
        Checkpoint.Loaded c = checkpoint.loadFinite();
        Npy.Array x = inputs(c, spec.commandLine().getErr());
        NpyFolder.Samples samples = NpyFolder.samples(x, c.spec().fillsMissingValues());
        int[] sample = samples.shape();
        int[] shape;
        try {
            shape = Setup.inputShape(c.spec(), sample, "the model in " + checkpoint);
        } catch (IllegalArgumentException e) {
            // Rows of an image model's values in C order (x.reshape(N, -1)) are the same bytes: taken as its images.
            if (c.inputShape() == null || Arrays.stream(c.inputShape()).reduce(1, Math::multiplyExact) != Arrays.stream(sample).reduce(1, Math::multiplyExact))
                throw new IllegalArgumentException(input + ": " + e.getMessage(), e);
            shape = c.inputShape();
        }
        String note = scaleNote(input, x.dtype(), samples.values(), c.preprocessing());
        if (note != null) spec.commandLine().getErr().println("note: " + note);
        int n = x.shape()[0], per = samples.values().length / n;
        int[] cls = new int[n];
        float[] prob;
        boolean probabilities;
        List<String> names;
        try (Backend be = backendChoice.openFor(c); Model m = Model.create(c.spec(), shape, be, 0)) {
            m.loadParameters(c.parameters(), c.source().toString());
            try (Predictor p = Predictor.of(m, c.preprocessing(), c.classNames())) {
                probabilities = answersProbabilities(c);
                names = p.classNames();
                int classes = p.outputSize();
                prob = new float[n * classes];
                int[] batchClasses = new int[Math.min(batchSize, n)];
                float[] batchOutputs = new float[batchClasses.length * classes];
                for (int from = 0; from < n; from += batchSize) {
                    int count = Math.min(batchSize, n - from);
                    float[] batch = Arrays.copyOfRange(samples.values(), from * per, (from + count) * per);
                    // One pass: the classes, and the outputs they were read from (which the softmax turns into probabilities).
                    p.classes(batch, count, batchClasses, batchOutputs);
                    if (probabilities) Predictor.softmaxRows(batchOutputs, count, classes);
                    System.arraycopy(batchClasses, 0, cls, from, count);
                    System.arraycopy(batchOutputs, 0, prob, from * classes, count * classes);
                }
            }
        }
        int classes = prob.length / n;
        if (out != null && out.getFileName().toString().endsWith(".npy")) {
            AtomicFiles.write(out, Npy.encode(new int[]{n, classes}, prob));
            spec.commandLine().getOut().printf("%d x %d %s of %s for %s written to %s%n", n, classes, probabilities ? "probabilities" : "outputs", c.source(), input, out);
            return 0;
        }
        StringBuilder csv = new StringBuilder("sample,class").append(names.isEmpty() ? "" : ",label");
        for (int k = 0; k < classes; k++) csv.append(probabilities ? ",p" : ",out").append(k);
        csv.append('\n');
        for (int i = 0; i < n; i++) {
            csv.append(i).append(',').append(cls[i]);
            if (!names.isEmpty()) csv.append(',').append(quoted(names.get(cls[i])));
            for (int k = 0; k < classes; k++) csv.append(',').append(String.format(Locale.ROOT, "%.6g", prob[i * classes + k]));
            csv.append('\n');
        }
        if (out == null) {
            spec.commandLine().getOut().print(csv);
            spec.commandLine().getOut().flush();
        } else {
            AtomicFiles.writeString(out, csv.toString());
            spec.commandLine().getOut().printf("%d predictions of %s for %s written to %s%n", n, c.source(), input, out);
        }
        return 0;
    }

    /** A class name as a CSV field: quoted where it holds a comma, a quote or a line break. */
    static String quoted(String name) {
        return name.matches("[^,\"\\r\\n]*") ? name : "\"" + name.replace("\"", "\"\"") + "\"";
    }
}
