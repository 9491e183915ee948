package io.predcode.data;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.SplittableRandom;

/**
 * The optical handwritten digits (Alpaydin and Kaynak, UCI, CC BY 4.0; the 1,797-image copy scikit-learn
 * ships), bundled in the jar: 8x8 images with values 0..16, scaled to [0, 1]. Split deterministically
 * (a fixed permutation) into 1,497 training and 300 test images.
 */
public final class Digits {
    private Digits() {}

    /** Samples held out for testing. */
    public static final int TEST_SIZE = 300;
    private static final long SPLIT_SEED = 20220101L;

    /** All 1,797 digits, pixels scaled to [0, 1]. */
    public static Dataset all() throws IOException {
        String resource = "/io/predcode/data/digits.csv.gz";
        byte[] raw;
        try (InputStream in = Digits.class.getResourceAsStream(resource)) {
            if (in == null) throw new IOException("bundled resource " + resource + " is missing from the jar");
            raw = new java.util.zip.GZIPInputStream(in).readAllBytes(); // our own bundled file
        }
        String[] lines = new String(raw, StandardCharsets.US_ASCII).split("\n");
        int n = 0;
        for (String l : lines) if (!l.isBlank()) n++;
        float[] x = new float[n * 64], y = new float[n];
        int s = 0;
        for (int li = 0; li < lines.length; li++) {
            if (lines[li].isBlank()) continue;
            String[] f = lines[li].trim().split(",");
            if (f.length != 65) throw new DataFormatException(resource + ": line " + (li + 1) + " has " + f.length + " fields, expected 65 (64 pixels and a label)");
            for (int i = 0; i < 64; i++) x[s * 64 + i] = Integer.parseInt(f[i].trim()) / 16f;
            y[s++] = Integer.parseInt(f[64].trim());
        }
        return new Dataset("digits", new int[]{1, 8, 8}, 10, x, y);
    }

    /** The fixed split: 1,497 training and 300 test digits. */
    public static DataSplit split() throws IOException {
        Dataset d = all();
        int[] perm = Batches.permutation(d.size(), new SplittableRandom(SPLIT_SEED));
        int trainSize = d.size() - TEST_SIZE;
        int[] train = java.util.Arrays.copyOfRange(perm, 0, trainSize), test = java.util.Arrays.copyOfRange(perm, trainSize, d.size());
        return new DataSplit(d.subset("digits train", train), d.subset("digits test", test), 1f / 16, DataSplit.indexNames(10));
    }
}
