package io.predcode.data;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * CIFAR-10's binary version: each record is 1 label byte and 3072 pixel bytes (3 x 32 x 32, CHW).
 * Training files data_batch_1..5.bin, test file test_batch.bin.
 */
public final class Cifar10 {
    private Cifar10() {}

    static final int RECORD = 1 + 3 * 32 * 32;
    /** A CIFAR-10 batch file is 10,000 records (30.7 MB); a file, or a gzip stream, past this is refused. */
    static final long MAX_FILE_BYTES = 100_000L * RECORD;

    /** CIFAR-10 binary records from these files, pixels scaled to [0, 1]. */
    public static Dataset read(String name, Path... files) throws IOException {
        long total = 0;
        byte[][] contents = new byte[files.length][];
        for (int f = 0; f < files.length; f++) {
            contents[f] = Files2.readMaybeGzip(files[f], MAX_FILE_BYTES);
            if (contents[f].length == 0 || contents[f].length % RECORD != 0)
                throw new DataFormatException(files[f] + ": CIFAR-10 binary file is " + contents[f].length + " bytes, not a whole number of " + RECORD + "-byte records (truncated?)");
            total += contents[f].length / RECORD;
        }
        if (total * (RECORD - 1) > Integer.MAX_VALUE - 16)
            throw new DataFormatException(files[0].getParent() + ": " + total + " CIFAR-10 records are more than one float array holds");
        float[] x = new float[(int) total * (RECORD - 1)], y = new float[(int) total];
        int s = 0;
        for (int f = 0; f < files.length; f++) {
            byte[] b = contents[f];
            for (int r = 0; r < b.length / RECORD; r++, s++) {
                int label = b[r * RECORD] & 0xff;
                if (label > 9) throw new DataFormatException(files[f] + ": record " + r + " has label " + label + ", expected 0..9");
                y[s] = label;
                for (int i = 0; i < RECORD - 1; i++) x[s * (RECORD - 1) + i] = (b[r * RECORD + 1 + i] & 0xff) / 255f;
            }
        }
        return new Dataset(name, new int[]{3, 32, 32}, 10, x, y);
    }

    /**
     * The CIFAR-10 binary batches in {@code dir}, or in its cifar-10-batches-bin (where the binary tarball unpacks):
     * data_batch_1..5 for training, test_batch for testing.
     */
    public static DataSplit load(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) throw new java.nio.file.NoSuchFileException(dir.toString(), null, "CIFAR-10 folder not found (expected data_batch_1.bin .. data_batch_5.bin and test_batch.bin)");
        if (!Files.exists(dir.resolve("data_batch_1.bin")) && Files.isDirectory(dir.resolve("cifar-10-batches-bin"))) dir = dir.resolve("cifar-10-batches-bin");
        if (!Files.exists(dir.resolve("data_batch_1.bin"))) {
            // torchvision downloads the Python version (pickles, no .bin): say so rather than only what is missing.
            boolean python = Files.exists(dir.resolve("data_batch_1")) || Files.isDirectory(dir.resolve("cifar-10-batches-py"));
            throw new java.nio.file.NoSuchFileException(dir.toString(), null, "no data_batch_1.bin; expected CIFAR-10's binary version (data_batch_1.bin .. data_batch_5.bin"
                    + " and test_batch.bin, from cifar-10-binary.tar.gz)" + (python ? "; this folder holds its Python version (torchvision's): convert it with"
                    + " python3 python/predcode_torch.py cifar10-binary " + dir + " OUT, then use cifar10:OUT" : ""));
        }
        Path[] train = new Path[5];
        for (int i = 0; i < 5; i++) train[i] = dir.resolve("data_batch_" + (i + 1) + ".bin");
        return new DataSplit(read("cifar10 train", train), read("cifar10 test", dir.resolve("test_batch.bin")), 1f / 255,
                java.util.List.of("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"));
    }
}
