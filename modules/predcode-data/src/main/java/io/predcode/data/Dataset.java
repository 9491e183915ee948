package io.predcode.data;

import java.util.Arrays;

/**
 * Labelled samples in memory: {@code images} holds {@code size()} samples of {@code sampleShape}
 * floats in row-major order (pixels scaled to [0, 1]); {@code labels} the class indices as floats.
 */
public record Dataset(String name, int[] sampleShape, int classes, float[] images, float[] labels) {
    /** Checks that the images and labels agree in count and that every label is a class index. */
    public Dataset {
        int per = Arrays.stream(sampleShape).reduce(1, (a, b) -> a * b);
        if ((long) labels.length * per != images.length)
            throw new IllegalArgumentException(name + ": " + labels.length + " labels but " + images.length + " floats of images (" + per + " per sample)");
        for (int i = 0; i < labels.length; i++)
            if (labels[i] < 0 || labels[i] >= classes || labels[i] != Math.rint(labels[i]))
                throw new IllegalArgumentException(name + ": label " + labels[i] + " of sample " + i + " is not a class index in [0, " + classes + ")");
    }

    /** The number of samples. */
    public int size() { return labels.length; }

    /** Floats per sample. */
    public int sampleSize() { return images.length / Math.max(1, labels.length); }

    /** One-hot rows of {@code classes} floats for samples [from, from + count): targets for an mse loss. */
    public float[] oneHot(int from, int count) {
        float[] y = new float[count * classes];
        for (int i = 0; i < count; i++) y[i * classes + (int) labels[from + i]] = 1f;
        return y;
    }

    /** The samples at the given indices, in that order. */
    public Dataset subset(String subsetName, int[] indices) {
        int per = Arrays.stream(sampleShape).reduce(1, (a, b) -> a * b);
        float[] x = new float[indices.length * per], y = new float[indices.length];
        for (int i = 0; i < indices.length; i++) {
            System.arraycopy(images, indices[i] * per, x, i * per, per);
            y[i] = labels[indices[i]];
        }
        return new Dataset(subsetName, sampleShape, classes, x, y);
    }

    /**
     * Splits off the last {@code fraction} of a fixed, seeded permutation as a validation set:
     * {0: the rest, 1: the validation set (null when fraction rounds to no sample)}. The same
     * fraction and seed give the same split everywhere (a data-parallel executor rebuilds it).
     *
     * @param fraction the share held out, in [0, 1)
     * @param seed     seeds the permutation
     * @return the two parts
     */
    public Dataset[] holdOut(double fraction, long seed) {
        int held = (int) Math.round(fraction * size());
        if (held == 0) return new Dataset[]{this, null};
        if (held >= size()) throw new IllegalArgumentException("--validation " + fraction + " leaves no training samples out of " + size());
        int[] order = Batches.permutation(size(), new java.util.SplittableRandom(seed ^ 0x76A11DA7E5L));
        int keep = order.length - held;
        return new Dataset[]{subset(name + " (training part)", Arrays.copyOf(order, keep)), subset(name + " (validation part)", Arrays.copyOfRange(order, keep, order.length))};
    }

    /**
     * Each value's mean and standard deviation over the set (population, summed in double), as a model's first op
     * standardizes a table's features with them ({@code --model mlp:...} on CSV data; {@code BuiltinModels.mlp}); a
     * constant value's std is 1, so that it passes as its offset from the mean (0) rather than dividing by nothing.
     * Missing values (NaN) are left out of both; a value missing in every sample has mean 0 and std 1.
     *
     * @return {means, stds}, one of each per value of a sample
     */
    public float[][] standardization() {
        int per = sampleSize(), n = size();
        double[] sum = new double[per], sq = new double[per];
        int[] count = new int[per];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < per; j++) {
                float v = images[i * per + j];
                if (v == v) { sum[j] += v; count[j]++; }
            }
        float[] mean = new float[per], std = new float[per];
        for (int j = 0; j < per; j++) mean[j] = count[j] == 0 ? 0f : (float) (sum[j] / count[j]);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < per; j++) {
                float v = images[i * per + j];
                if (v == v) { double d = v - sum[j] / count[j]; sq[j] += d * d; }
            }
        for (int j = 0; j < per; j++) {
            float s = count[j] == 0 ? 1f : (float) Math.sqrt(sq[j] / count[j]);
            std[j] = s > 1e-6f * Math.max(1f, Math.abs(mean[j])) && Float.isFinite(s) ? s : 1f;
        }
        return new float[][]{mean, std};
    }

    /** The number of missing values (NaN: a table's empty fields) in the set. */
    public long missing() { return missing(images); }

    /** The number of missing values (NaN) among {@code values}. */
    static long missing(float[] values) {
        long m = 0;
        for (float v : values) if (v != v) m++;
        return m;
    }

    /**
     * This set with every value mapped by x * scale + shift.
     *
     * @param scale multiplies each value
     * @param shift is added after
     * @return the mapped set (this one when the map is the identity)
     */
    public Dataset affine(float scale, float shift) {
        if (scale == 1f && shift == 0f) return this;
        float[] x = images.clone();
        for (int i = 0; i < x.length; i++) x[i] = x[i] * scale + shift;
        return new Dataset(name, sampleShape, classes, x, labels);
    }

    /**
     * A CRC-32C of the samples' shape, the classes, the values and the labels, as "crc32c:" and 8 hex digits: the same
     * for the same data wherever its files are, and another for any change but one in 2^32. A checkpoint records its
     * run's, so that a resume or an evaluation knows whether the files still hold what the run trained on. Part of the
     * checkpoint format: a change of how it is formed would make every earlier run's data look changed.
     */
    public String digest() {
        java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(1 << 16).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        b.putInt(sampleShape.length);
        for (int d : sampleShape) b.putInt(d);
        b.putInt(classes).flip();
        crc.update(b);
        update(crc, b, images);
        update(crc, b, labels);
        return String.format("crc32c:%08x", crc.getValue());
    }

    /** Adds {@code v}'s floats, little-endian, a buffer's worth at a time. */
    private static void update(java.util.zip.CRC32C crc, java.nio.ByteBuffer b, float[] v) {
        int per = b.capacity() / Float.BYTES;
        for (int from = 0; from < v.length; from += per) {
            int n = Math.min(per, v.length - from);
            b.clear();
            b.asFloatBuffer().put(v, from, n);
            crc.update(b.array(), 0, n * Float.BYTES);
        }
    }

    @Override public String toString() { return name + " (" + size() + " samples of " + Arrays.toString(sampleShape) + ", " + classes + " classes)"; }
}
