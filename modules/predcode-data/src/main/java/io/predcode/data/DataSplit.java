package io.predcode.data;

import java.util.ArrayList;
import java.util.List;

/**
 * A training set and a test set of the same kind of sample, with what a service needs to feed a
 * model trained on them: {@code pixelScale} and {@code pixelShift}, which took the raw values (bytes
 * 0..255, digits' 0..16) to the floats in the sets (raw * scale + shift), the class names, and for flat samples
 * read from a table with a header the features' names (else empty).
 */
public record DataSplit(Dataset train, Dataset test, float pixelScale, List<String> classNames, float pixelShift, List<String> featureNames) {
    /** Copies the names and checks that there is one per class, and one per feature where features are named. */
    public DataSplit {
        classNames = List.copyOf(classNames);
        featureNames = List.copyOf(featureNames);
        if (!featureNames.isEmpty() && (train.sampleShape().length != 1 || train.sampleShape()[0] != featureNames.size()))
            throw new IllegalArgumentException(train.name() + ": " + featureNames.size() + " feature names for samples of shape " + java.util.Arrays.toString(train.sampleShape()));
        // Checked here, when the files are read, not after the first epoch's training.
        if (!java.util.Arrays.equals(train.sampleShape(), test.sampleShape()))
            throw new IllegalArgumentException(test.name() + ": samples of shape " + java.util.Arrays.toString(test.sampleShape()) + ", but the training set's ("
                    + train.name() + ") are " + java.util.Arrays.toString(train.sampleShape()));
        if (test.classes() != train.classes())
            throw new IllegalArgumentException(test.name() + ": " + test.classes() + " classes, but the training set (" + train.name() + ") has " + train.classes());
        if (classNames.size() != train.classes())
            throw new IllegalArgumentException(train.name() + ": " + classNames.size() + " class names for " + train.classes() + " classes");
    }

    /** A split of unnamed features. */
    public DataSplit(Dataset train, Dataset test, float pixelScale, List<String> classNames, float pixelShift) {
        this(train, test, pixelScale, classNames, pixelShift, List.of());
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
        return new DataSplit(train.affine(scale, shift), test.affine(scale, shift), pixelScale * scale, classNames, pixelShift * scale + shift, featureNames);
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
        return new DataSplit(relabel(train, to, names.size()), relabel(test, to, names.size()), pixelScale, names, pixelShift, featureNames);
    }

    /**
     * This split with its samples' features as {@code names} lists them (a trained model's): a table whose columns come
     * in another order, or with more columns, gives the model the values it was trained on, by name. Unnamed features
     * (no header) or a model that names none stay as they are.
     *
     * @param names the features to keep, in their order
     * @return the split with those columns (this one where nothing changes)
     * @throws IllegalArgumentException naming a feature this split lacks
     */
    public DataSplit withFeatures(List<String> names) {
        if (names.isEmpty() || featureNames.isEmpty() || names.equals(featureNames)) return this;
        int[] from = columns(train.name(), featureNames, names);
        return new DataSplit(select(train, from), select(test, from), pixelScale, classNames, pixelShift, names);
    }

    /**
     * Where each of {@code wanted} stands among {@code have}; refuses, naming {@code source}, a name it lacks. A category
     * of a text column ({@code Sex=male}, {@link Csv#category}) that {@code have} lacks, where it has others of that
     * column, is no row's value there: -1, a feature of zeros ({@link #select}).
     *
     * @param source what holds the columns, for the message
     * @param have   the columns there, in their order
     * @param wanted the columns needed, in theirs
     * @return the column of each wanted name, or -1 for a category no row has
     */
    public static int[] columns(String source, List<String> have, List<String> wanted) {
        int[] from = new int[wanted.size()];
        for (int j = 0; j < from.length; j++) {
            from[j] = have.indexOf(wanted.get(j));
            if (from[j] < 0 && otherCategories(wanted.get(j), have)) from[j] = -1;
            else if (from[j] < 0)
                throw new IllegalArgumentException(source + ": no column '" + wanted.get(j) + "', a feature of the model (it takes " + listed(wanted) + ")");
        }
        return from;
    }

    /**
     * The categories among {@code have} that {@code wanted} lacks though it has others of their column: a table's values
     * a model never saw in a column it took as categories, which {@link #columns} leaves out (0 in each of the model's).
     *
     * @param have   a table's features
     * @param wanted a model's features
     * @return those of {@code have}, in its order
     */
    public static List<String> unseenCategories(List<String> have, List<String> wanted) {
        return have.stream().filter(h -> !wanted.contains(h) && otherCategories(h, wanted)).toList();
    }

    /** Whether {@code have} holds categories of the text column that {@code feature}, a category's name, is one of. */
    private static boolean otherCategories(String feature, List<String> have) {
        for (int p = feature.indexOf('='); p >= 0; p = feature.indexOf('=', p + 1)) {
            String prefix = feature.substring(0, p + 1);
            if (have.stream().anyMatch(h -> h.startsWith(prefix))) return true;
        }
        return false;
    }

    /** Names for a message: all of them, or where they run long (784 pixels' names) the first 200 characters' worth. */
    private static String listed(List<String> names) {
        String all = String.join(", ", names);
        return all.length() <= 200 ? all : all.substring(0, 200) + "... (" + names.size() + " in all)";
    }

    /** Rows of {@code width} values with only the columns {@code from}, in that order; a column -1 is zeros. */
    public static float[] select(float[] rows, int width, int[] from) {
        int n = rows.length / width;
        float[] out = new float[n * from.length];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < from.length; j++) out[i * from.length + j] = from[j] < 0 ? 0f : rows[i * width + from[j]];
        return out;
    }

    private static Dataset select(Dataset d, int[] from) {
        return new Dataset(d.name(), new int[]{from.length}, d.classes(), select(d.images(), d.sampleSize(), from), d.labels());
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
