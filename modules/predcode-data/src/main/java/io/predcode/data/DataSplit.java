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
