package io.predcode.data;

import java.util.ArrayList;
import java.util.List;

/**
 * A training set and a test set of the same kind of sample, with what a service needs to feed a
 * model trained on them: {@code pixelScale} and {@code pixelShift}, which took the raw values (bytes
 * 0..255, digits' 0..16) to the floats in the sets (raw * scale + shift), and the class names.
 */
public record DataSplit(Dataset train, Dataset test, float pixelScale, List<String> classNames, float pixelShift) {
    /** Copies the class names and checks that there is one per class. */
    public DataSplit {
        classNames = List.copyOf(classNames);
        // Checked here, when the files are read, not after the first epoch's training.
        if (!java.util.Arrays.equals(train.sampleShape(), test.sampleShape()))
            throw new IllegalArgumentException(test.name() + ": samples of shape " + java.util.Arrays.toString(test.sampleShape()) + ", but the training set's ("
                    + train.name() + ") are " + java.util.Arrays.toString(train.sampleShape()));
        if (test.classes() != train.classes())
            throw new IllegalArgumentException(test.name() + ": " + test.classes() + " classes, but the training set (" + train.name() + ") has " + train.classes());
        if (classNames.size() != train.classes())
            throw new IllegalArgumentException(train.name() + ": " + classNames.size() + " class names for " + train.classes() + " classes");
    }

    /** A split whose floats are the raw values times {@code pixelScale}. */
    public DataSplit(Dataset train, Dataset test, float pixelScale, List<String> classNames) { this(train, test, pixelScale, classNames, 0f); }

    /**
     * Both sets' values mapped by x * scale + shift (e.g. 2, -1 takes [0, 1] to [-1, 1]), and the
     * raw-value mapping with them.
     *
     * @param scale multiplies each value
     * @param shift is added after
     * @return the mapped split
     */
    public DataSplit affine(float scale, float shift) {
        return new DataSplit(train.affine(scale, shift), test.affine(scale, shift), pixelScale * scale, classNames, pixelShift * scale + shift);
    }

    /**
     * This split with its labels as indices into {@code names} (a trained model's classes), where its own classes are
     * named otherwise: a table of two of a model's three classes, or of the same names, indexed in another order, is
     * scored by name, not by position. Classes named by their index stay as they are.
     *
     * @param names the classes to index into
     * @return the split relabelled (this one where nothing changes)
     * @throws IllegalArgumentException naming a class of this split that {@code names} lacks
     */
    public DataSplit relabelled(List<String> names) {
        if (names.isEmpty() || names.equals(classNames) || classNames.equals(indexNames(classes()))) return this;
        float[] to = new float[classNames.size()];
        for (int k = 0; k < to.length; k++) {
            to[k] = names.indexOf(classNames.get(k));
            if (to[k] < 0)
                throw new IllegalArgumentException(train.name() + ": class '" + classNames.get(k) + "' is not one the model was trained on (" + String.join(", ", names) + ")");
        }
        return new DataSplit(relabel(train, to, names.size()), relabel(test, to, names.size()), pixelScale, names, pixelShift);
    }

    private static Dataset relabel(Dataset d, float[] to, int classes) {
        float[] labels = d.labels().clone();
        for (int i = 0; i < labels.length; i++) labels[i] = to[(int) labels[i]];
        return new Dataset(d.name(), d.sampleShape(), classes, d.images(), labels);
    }

    /** A split of values used as stored, with classes named by their index. */
    public DataSplit(Dataset train, Dataset test) { this(train, test, 1f, indexNames(train.classes())); }

    /** Per-sample shape. */
    public int[] sampleShape() { return train.sampleShape(); }

    /** The number of classes. */
    public int classes() { return train.classes(); }

    /** "0", "1", ...: the names of classes that are their own index (digits). */
    public static List<String> indexNames(int classes) {
        List<String> names = new ArrayList<>();
        for (int i = 0; i < classes; i++) names.add(Integer.toString(i));
        return names;
    }
}
