package io.predcode.data;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;

/**
 * Resolves a {@code --data} name: {@code digits} (bundled), {@code fashion-mnist} (Debian's
 * dataset-fashion-mnist package), {@code fashion-mnist:DIR}, {@code mnist:DIR}, {@code cifar10:DIR}, {@code npy:DIR} or
 * {@code npy:FILE.npz} (arrays saved by NumPy, {@link NpyFolder}; {@code npz:FILE} too), {@code csv:FILE.csv} or {@code csv:DIR}
 * (a table of features and labels, {@link Csv}).
 */
public final class DataSources {
    private DataSources() {}

    /** Where Debian's dataset-fashion-mnist package puts the IDX files. */
    public static final Path DEBIAN_FASHION_MNIST = Path.of("/usr/share/datasets/fashion-mnist");

    /** The data set a --data value names. */
    public static DataSplit load(String spec) throws IOException {
        String name = spec, dir = null;
        int colon = spec.indexOf(':');
        if (colon >= 0) { name = spec.substring(0, colon); dir = spec.substring(colon + 1); }
        if (dir != null && dir.isBlank()) dir = null; // "npy:" names no folder: said as such, not looked for in the working folder
        switch (name) {
            case "digits":
                if (dir != null) throw new IllegalArgumentException("--data digits takes no folder (it is bundled)");
                return Digits.split();
            case "fashion-mnist":
                if (dir == null) {
                    if (!Files.isDirectory(DEBIAN_FASHION_MNIST))
                        throw new NoSuchFileException(DEBIAN_FASHION_MNIST.toString(), null,
                                "Fashion-MNIST not found; install it with 'apt-get install dataset-fashion-mnist' or point to the IDX files with --data fashion-mnist:DIR");
                    return mnistLike("fashion-mnist", DEBIAN_FASHION_MNIST);
                }
                return mnistLike("fashion-mnist", Path.of(dir));
            case "mnist":
                if (dir == null) throw new IllegalArgumentException("--data mnist needs a folder: mnist:DIR with the four IDX files");
                return mnistLike("mnist", Path.of(dir));
            case "cifar10":
                if (dir == null) throw new IllegalArgumentException("--data cifar10 needs a folder: cifar10:DIR with the binary batches");
                return Cifar10.load(Path.of(dir));
            case "npy", "npz":
                if (dir == null)
                    throw new IllegalArgumentException("--data " + name + " needs a folder or an archive: npy:DIR with x_train.npy, y_train.npy, x_test.npy and y_test.npy, or npy:FILE.npz");
                return NpyFolder.load(Path.of(dir));
            case "csv":
                if (dir == null) throw new IllegalArgumentException("--data csv needs a file or a folder: csv:FILE.csv (a fifth of each class held out as the test set), or csv:DIR with train.csv and test.csv"
                        + " (csv:FILE.csv:COLUMN names the label's column)");
                // csv:PATH:LABEL names the label's column, where PATH alone is there and the whole is not.
                int at = dir.lastIndexOf(':');
                if (at > 0 && at < dir.length() - 1 && !Files.exists(Path.of(dir)) && Files.exists(Path.of(dir.substring(0, at))))
                    return Csv.load(Path.of(dir.substring(0, at)), dir.substring(at + 1));
                return Csv.load(Path.of(dir));
            default:
                throw new IllegalArgumentException("unknown data set --data '" + spec + "'; expected digits, fashion-mnist, fashion-mnist:DIR, mnist:DIR, cifar10:DIR, npy:DIR, npy:FILE.npz, csv:FILE.csv or csv:DIR"
                        + guess(spec));
        }
    }

    /** For a folder or an archive given without its kind: the kind its files say it is. */
    private static String guess(String spec) {
        Path dir;
        try {
            dir = Path.of(spec);
        } catch (java.nio.file.InvalidPathException e) {
            return "";
        }
        if (Files.isRegularFile(dir) && Npz.looksLikeOne(dir)) return "; that file is a zip, as np.savez writes: --data npy:" + spec;
        String file = dir.getFileName() == null ? "" : dir.getFileName().toString();
        if (Files.isRegularFile(dir) && (file.endsWith(".csv") || file.endsWith(".csv.gz"))) return "; that file is a table: --data csv:" + spec;
        if (!Files.isDirectory(dir)) return "";
        if (Files.exists(dir.resolve("train.csv")) || Files.exists(dir.resolve("train.csv.gz"))) return "; that folder holds CSV files: --data csv:" + spec;
        if (Files.exists(dir.resolve("x_train.npy")) || Files.exists(dir.resolve("x_train.npy.gz"))) return "; that folder holds .npy arrays: --data npy:" + spec;
        if (Files.exists(dir.resolve("data_batch_1.bin")) || Files.isDirectory(dir.resolve("cifar-10-batches-bin"))) return "; that folder holds CIFAR-10: --data cifar10:" + spec;
        if (Files.exists(dir.resolve("train-images-idx3-ubyte.gz")) || Files.exists(dir.resolve("train-images-idx3-ubyte")))
            return "; that folder holds IDX files: --data mnist:" + spec + " or fashion-mnist:" + spec;
        return "";
    }

    /** The four IDX files of MNIST or Fashion-MNIST, .gz or not. */
    public static DataSplit mnistLike(String name, Path dir) throws IOException {
        if (!Files.isDirectory(dir)) throw new NoSuchFileException(dir.toString(), null, name + " folder not found");
        Dataset train = idxPair(name + " train", find(dir, "train-images-idx3-ubyte"), find(dir, "train-labels-idx1-ubyte"));
        Dataset test = idxPair(name + " test", find(dir, "t10k-images-idx3-ubyte"), find(dir, "t10k-labels-idx1-ubyte"));
        List<String> names = name.equals("fashion-mnist")
                ? List.of("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
                : DataSplit.indexNames(10);
        return new DataSplit(train, test, 1f / 255, names);
    }

    private static Path find(Path dir, String base) throws NoSuchFileException {
        for (String name : new String[]{base + ".gz", base, base.replace("-idx", ".idx")})
            if (Files.exists(dir.resolve(name))) return dir.resolve(name);
        throw new NoSuchFileException(dir.resolve(base + ".gz").toString(), null, "IDX file not found (also looked for " + base + ")");
    }

    private static Dataset idxPair(String name, Path images, Path labels) throws IOException {
        Idx.Images im = Idx.readImages(images);
        float[] y = Idx.readLabels(labels);
        if (y.length != im.count())
            throw new DataFormatException(labels + ": " + y.length + " labels, but " + images + " holds " + im.count() + " images");
        for (int i = 0; i < y.length; i++)
            if (y[i] > 9) throw new DataFormatException(labels + ": label " + (int) y[i] + " of sample " + i + " is out of range 0..9");
        return new Dataset(name, new int[]{1, im.rows(), im.cols()}, 10, im.pixels(), y);
    }
}
