package io.predcode.data;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A labelled data set saved from NumPy ({@code --data npy:DIR} or {@code npy:FILE.npz}): {@code x_train.npy},
 * {@code y_train.npy}, {@code x_test.npy} and {@code y_test.npy} (each may be gzipped, as {@code .npy.gz}), the names
 * Keras gives them, and optionally {@code classes.txt}, one class name per line; or one {@code .npz} archive of those
 * four arrays ({@code np.savez(f, x_train=..., ...)}, as Keras's {@code mnist.npz}), with the class names optionally
 * as a text array under {@code classes}.
 * <ul>
 * <li>x: shape (N, F) for flat samples, (N, H, W) for one-channel images, (N, C, H, W) for images as PyTorch lays them
 * out, or (N, H, W, C) as Keras lays them out (at most 4 channels, under larger images; {@link #samples}), which is
 * transposed as it is read; float32, float64 or integers. Bytes (uint8) are pixels: scaled by 1/255, as MNIST's and CIFAR-10's are, and
 * the scale travels in the checkpoint; any other type is used as stored.</li>
 * <li>y: shape (N) or (N, 1), class indices 0..K-1 (integers, or floats that are whole numbers), or (N, K) one-hot rows
 * as Keras's {@code to_categorical} writes them. K is the largest label plus one (the rows' width for one-hot labels),
 * or the number of names in classes.txt.</li>
 * </ul>
 */
public final class NpyFolder {
    private NpyFolder() {}

    /** More classes than this is not a classification data set predcode can train on (its one-hot targets alone). */
    static final int MAX_CLASSES = 100_000;

    /** The four arrays in {@code path} (a folder of .npy files, or an .npz archive), and its class names. */
    public static DataSplit load(Path path) throws IOException {
        if (Files.isRegularFile(path)) {
            try (Npz npz = Npz.open(path)) {
                List<String> names = npz.has("classes") ? npz.strings("classes", MAX_CLASSES) : null;
                return split(path, npz.array("x_train"), npz.array("y_train"), npz.array("x_test"), npz.array("y_test"), names, npz.source("classes"));
            }
        }
        if (!Files.isDirectory(path))
            throw new NoSuchFileException(path.toString(), null, (path.toString().endsWith(".npz") ? "npz archive" : "npy folder")
                    + " not found (expected a folder of x_train.npy, y_train.npy, x_test.npy and y_test.npy, or an .npz archive of them)");
        Path namesFile = path.resolve("classes.txt");
        List<String> names = Files.exists(namesFile) ? classNames(namesFile) : null;
        return split(path, read(path, "x_train"), read(path, "y_train"), read(path, "x_test"), read(path, "y_test"), names, namesFile.toString());
    }

    /** The split the four arrays make, with the class names (null: the labels' indices) read from {@code namesSource}. */
    private static DataSplit split(Path path, Npy.Array xTrain, Npy.Array yTrain, Npy.Array xTest, Npy.Array yTest, List<String> names, String namesSource)
            throws DataFormatException {
        Samples trainSamples = samples(xTrain), testSamples = samples(xTest);
        int[] shape = trainSamples.shape(), testShape = testSamples.shape();
        if (!Arrays.equals(shape, testShape))
            throw new DataFormatException(xTest.source() + ": samples of shape " + Arrays.toString(testShape) + ", but " + xTrain.source() + "'s are " + Arrays.toString(shape));
        if (!xTrain.dtype().equals(xTest.dtype()))
            throw new DataFormatException(xTest.source() + ": element type '" + xTest.dtype() + "', but " + xTrain.source() + "'s is '" + xTrain.dtype() + "' (they would be scaled differently)");
        Labels train = labels(yTrain, xTrain.shape()[0]), test = labels(yTest, xTest.shape()[0]);
        if (train.oneHotWidth() > 0 && test.oneHotWidth() > 0 && train.oneHotWidth() != test.oneHotWidth())
            throw new DataFormatException(yTest.source() + ": one-hot rows of " + test.oneHotWidth() + " classes, but " + yTrain.source() + "'s have " + train.oneHotWidth());
        int classes = Math.max(Math.max(train.oneHotWidth(), test.oneHotWidth()), (int) Math.max(max(train.indices()), max(test.indices())) + 1);
        if (names == null) names = DataSplit.indexNames(classes);
        else {
            checkNames(namesSource, names);
            if (names.size() < classes)
                throw new DataFormatException(namesSource + ": " + names.size() + " class names, but the labels go up to " + (classes - 1));
            classes = names.size();
        }
        // One class is nothing to classify, and most often labels saved wrong (all zeros, say): said before training on them.
        if (classes < 2) throw new DataFormatException(yTrain.source() + ": every label is 0, a single class; a classifier needs at least two");
        boolean pixels = xTrain.dtype().equals("|u1");
        String name = path.getFileName() == null ? path.toString() : path.getFileName().toString();
        // Said in the data set's name, which train prints, so that a wrong guess of the layout is seen before training on it.
        String layout = trainSamples.fromChannelsLast() ? " (channels last, read as (N, C, H, W))" : "";
        return new DataSplit(new Dataset(name + " train" + layout, shape, classes, pixels ? unit(trainSamples.values()) : trainSamples.values(), train.indices()),
                new Dataset(name + " test" + layout, shape, classes, pixels ? unit(testSamples.values()) : testSamples.values(), test.indices()), pixels ? 1f / 255 : 1f, names);
    }

    /** Bytes as MNIST's IDX reader gives them: each divided by 255 in float, in place. */
    private static float[] unit(float[] bytes) {
        for (int i = 0; i < bytes.length; i++) bytes[i] = bytes[i] / 255f;
        return bytes;
    }

    private static Npy.Array read(Path dir, String base) throws IOException {
        for (String name : new String[]{base + ".npy", base + ".npy.gz"})
            if (Files.exists(dir.resolve(name))) return Npy.read(dir.resolve(name));
        throw new NoSuchFileException(dir.resolve(base + ".npy").toString(), null, "file not found (also looked for " + base + ".npy.gz)");
    }

    /**
     * The samples of an array as a model takes them.
     *
     * @param shape a sample's shape: [F], [1, H, W] or [C, H, W]
     * @param values every sample's values, channels first
     * @param fromChannelsLast whether the array was (N, H, W, C) and its values were transposed
     */
    public record Samples(int[] shape, float[] values, boolean fromChannelsLast) {}

    /**
     * The samples of {@code x}: (N, F) gives [F], (N, H, W) [1, H, W], (N, C, H, W) [C, H, W]. An array that looks like
     * channels last, (N, H, W, C) as Keras and TensorFlow store images (C at most 4 under images larger than that), is
     * transposed to channels first, in place. Refused where it is none of these or holds a value that is not finite.
     *
     * @param x an array of samples, the first dimension counting them
     * @return their shape and values, channels first
     * @throws DataFormatException naming {@code x}'s source and what was expected
     */
    public static Samples samples(Npy.Array x) throws DataFormatException { return samples(x, false); }

    /**
     * As {@link #samples(Npy.Array)}, taking NaN as a missing value where {@code missing} (inputs of a model that fills
     * them, {@code ModelSpec.fillsMissingValues}); infinities are refused either way.
     */
    public static Samples samples(Npy.Array x, boolean missing) throws DataFormatException {
        String file = x.source();
        int[] s = x.shape();
        if (s.length < 2 || s.length > 4)
            throw new DataFormatException(file + ": field 'shape' " + Arrays.toString(s) + " has " + s.length + " dimensions, expected (N, F), (N, H, W), (N, C, H, W) or (N, H, W, C)");
        // The same rule wherever an array is read (train, eval, predict), so that serving lays out inputs as training did.
        boolean channelsLast = s.length == 4 && s[3] <= 4 && s[1] > 4;
        int[] shape = s.length == 3 ? new int[]{1, s[1], s[2]} : channelsLast ? new int[]{s[3], s[1], s[2]} : Arrays.copyOfRange(s, 1, s.length);
        finite(x, shape, missing);
        if (channelsLast) toChannelsFirst(x.values(), s[0], s[1] * s[2], s[3]);
        return new Samples(shape, x.values(), channelsLast);
    }

    /** Each of {@code n} samples of {@code pixels} positions times {@code channels} rewritten channel by channel, through one sample's copy. */
    private static void toChannelsFirst(float[] v, int n, int pixels, int channels) {
        float[] sample = new float[pixels * channels];
        for (int i = 0, at = 0; i < n; i++, at += sample.length) {
            System.arraycopy(v, at, sample, 0, sample.length);
            for (int c = 0; c < channels; c++)
                for (int p = 0; p < pixels; p++) v[at + c * pixels + p] = sample[p * channels + c];
        }
    }

    /** Class indices, and the width of the one-hot rows they were read from (0 where they were indices already). */
    private record Labels(float[] indices, int oneHotWidth) {}

    /** Labels as class indices: (N) or (N, 1) indices as they are, (N, K) one-hot rows (Keras's to_categorical) as the index of their 1. */
    private static Labels labels(Npy.Array y, int samples) throws DataFormatException {
        String file = y.source();
        int[] s = y.shape();
        if (!(s.length == 1 || s.length == 2))
            throw new DataFormatException(file + ": field 'shape' " + Arrays.toString(s) + ", expected (N) or (N, 1) class indices, or (N, K) one-hot rows");
        if (s[0] != samples) throw new DataFormatException(file + ": " + s[0] + " labels, but the inputs beside it hold " + samples + " samples");
        float[] v = y.values();
        if (s.length == 2 && s[1] > 1) return new Labels(oneHot(file, v, samples, s[1]), s[1]);
        for (int i = 0; i < v.length; i++)
            if (!(v[i] >= 0 && v[i] < MAX_CLASSES && v[i] == Math.rint(v[i])))
                throw new DataFormatException(file + ": label " + v[i] + " of sample " + i + " is not a class index in 0.." + (MAX_CLASSES - 1));
        return new Labels(v, 0);
    }

    private static float[] oneHot(String file, float[] v, int samples, int width) throws DataFormatException {
        if (width > MAX_CLASSES) throw new DataFormatException(file + ": one-hot rows of " + width + " classes, more than " + MAX_CLASSES);
        float[] indices = new float[samples];
        for (int i = 0; i < samples; i++) {
            int hot = -1;
            for (int k = 0; k < width; k++) {
                float f = v[i * width + k];
                if (f == 1 && hot < 0) hot = k;
                else if (f != 0) { // a second 1, or another value
                    hot = -2;
                    break;
                }
            }
            if (hot < 0) throw new DataFormatException(file + ": row " + i + " is not one-hot (one 1, the rest 0); expected (N) class indices or (N, " + width + ") one-hot rows");
            indices[i] = hot;
        }
        return indices;
    }

    /** NaN or infinite inputs would poison the first step they are in; say which sample holds one. */
    private static void finite(Npy.Array x, int[] shape, boolean missing) throws DataFormatException {
        int per = Arrays.stream(shape).reduce(1, Math::multiplyExact);
        float[] v = x.values();
        for (int i = 0; i < v.length; i++)
            if (!Float.isFinite(v[i]) && !(missing && Float.isNaN(v[i]))) throw new DataFormatException(x.source() + ": sample " + i / per + " holds " + v[i] + " (as float32), expected finite values");
    }

    private static float max(float[] v) {
        float m = 0;
        for (float f : v) m = Math.max(m, f);
        return m;
    }

    private static List<String> classNames(Path file) throws IOException {
        if (Files.size(file) > 1 << 20) throw new DataFormatException(file + ": more than 1 MiB of class names; refused");
        List<String> names = new ArrayList<>(Files.readAllLines(file, StandardCharsets.UTF_8));
        while (!names.isEmpty() && names.getLast().isBlank()) names.removeLast();
        return names;
    }

    private static void checkNames(String source, List<String> names) throws DataFormatException {
        for (int i = 0; i < names.size(); i++)
            if (names.get(i).isBlank()) throw new DataFormatException(source + ": name " + i + " (line " + (i + 1) + ") is blank, expected a class name");
        if (names.size() > MAX_CLASSES) throw new DataFormatException(source + ": " + names.size() + " class names, more than " + MAX_CLASSES);
    }
}
