package io.predcode.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Set;
import java.util.zip.GZIPOutputStream;

import static org.junit.jupiter.api.Assertions.*;

class DataTest {
    static byte[] gzip(byte[] b) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (GZIPOutputStream gz = new GZIPOutputStream(out)) { gz.write(b); }
        return out.toByteArray();
    }

    /** A tiny MNIST-like folder: n images of 3x2, pixel i of image s = s*6+i, label s % 10. */
    static Path writeMnist(Path dir, int n, boolean gz) throws IOException {
        Files.createDirectories(dir);
        byte[] px = new byte[n * 6], lb = new byte[n];
        for (int s = 0; s < n; s++) { for (int i = 0; i < 6; i++) px[s * 6 + i] = (byte) (s * 6 + i); lb[s] = (byte) (s % 10); }
        for (String split : new String[]{"train", "t10k"}) {
            byte[] images = Idx.encode(new int[]{n, 3, 2}, px), labels = Idx.encode(new int[]{n}, lb);
            Files.write(dir.resolve(split + "-images-idx3-ubyte" + (gz ? ".gz" : "")), gz ? gzip(images) : images);
            Files.write(dir.resolve(split + "-labels-idx1-ubyte" + (gz ? ".gz" : "")), gz ? gzip(labels) : labels);
        }
        return dir;
    }

    /** A digest names the data, not its files: equal for equal data, another for any value, label, shape or class count changed, past the first buffer too. */
    @Test void aDigestNamesTheDataNotWhereItIs() throws IOException {
        int n = 1000, per = 30; // 30,000 floats: the last is past the digest's first 16,384
        float[] x = new float[n * per], y = new float[n];
        java.util.Random r = new java.util.Random(5);
        for (int i = 0; i < x.length; i++) x[i] = r.nextFloat();
        for (int i = 0; i < n; i++) y[i] = i % 10;
        Dataset a = new Dataset("a", new int[]{1, 5, 6}, 10, x, y);
        String d = a.digest();
        assertTrue(d.matches("crc32c:[0-9a-f]{8}"), d);
        assertEquals(d, new Dataset("elsewhere", new int[]{1, 5, 6}, 10, x.clone(), y.clone()).digest());
        float[] x2 = x.clone(), y2 = y.clone();
        x2[x2.length - 1] = Math.nextUp(x2[x2.length - 1]);
        y2[3] = 4;
        Set<String> all = new HashSet<>(java.util.List.of(d, new Dataset("a", new int[]{1, 5, 6}, 10, x2, y).digest(), new Dataset("a", new int[]{1, 5, 6}, 10, x, y2).digest(),
                new Dataset("a", new int[]{1, 6, 5}, 10, x, y).digest(), new Dataset("a", new int[]{30}, 10, x, y).digest(), new Dataset("a", new int[]{1, 5, 6}, 11, x, y).digest()));
        assertEquals(6, all.size(), "each change gives another digest: " + all);
        // Checkpoints record it: the bundled digits' must not change from one version to the next.
        DataSplit digits = DataSources.load("digits");
        assertEquals("crc32c:10b923ad", digits.train().digest());
        assertEquals("crc32c:d813ca1a", digits.test().digest());
    }

    @Test void trainAndTestSetsOfDifferentShapesAreRefusedWhenRead() {
        Dataset train = new Dataset("train", new int[]{1, 2, 2}, 3, new float[8], new float[2]);
        Dataset test = new Dataset("t10k", new int[]{1, 3, 3}, 3, new float[9], new float[1]);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new DataSplit(train, test));
        assertTrue(e.getMessage().contains("t10k") && e.getMessage().contains("[1, 3, 3]") && e.getMessage().contains("[1, 2, 2]"), e.getMessage());
    }

    @Test void idxGzipAndRawReadTheSame(@TempDir Path tmp) throws IOException {
        DataSplit a = DataSources.load("mnist:" + writeMnist(tmp.resolve("gz"), 7, true));
        DataSplit b = DataSources.load("fashion-mnist:" + writeMnist(tmp.resolve("raw"), 7, false));
        assertArrayEquals(a.train().images(), b.train().images());
        assertArrayEquals(new int[]{1, 3, 2}, a.sampleShape());
        assertEquals(7, a.test().size());
        assertEquals(13 / 255f, a.train().images()[13]);
        assertEquals(6f, a.train().labels()[6]);
    }

    @Test void truncatedIdxIsRejectedNamingTheFile(@TempDir Path tmp) throws IOException {
        Path dir = writeMnist(tmp.resolve("m"), 5, false);
        Path f = dir.resolve("train-images-idx3-ubyte");
        byte[] b = Files.readAllBytes(f);
        Files.write(f, java.util.Arrays.copyOf(b, b.length - 3));
        DataFormatException e = assertThrows(DataFormatException.class, () -> DataSources.load("mnist:" + dir));
        assertTrue(e.getMessage().contains(f.toString()) && e.getMessage().contains("truncated"), e.getMessage());
    }

    @Test void wrongMagicIsRejected(@TempDir Path tmp) throws IOException {
        Path dir = writeMnist(tmp.resolve("m"), 5, false);
        Path f = dir.resolve("train-labels-idx1-ubyte");
        byte[] b = Files.readAllBytes(f);
        b[3] = 3;
        Files.write(f, b);
        DataFormatException e = assertThrows(DataFormatException.class, () -> DataSources.load("mnist:" + dir));
        assertTrue(e.getMessage().contains("magic") && e.getMessage().contains("0x00000801"), e.getMessage());
    }

    @Test void corruptGzipIsRejected(@TempDir Path tmp) throws IOException {
        Path dir = writeMnist(tmp.resolve("m"), 5, true);
        Path f = dir.resolve("t10k-images-idx3-ubyte.gz");
        byte[] b = Files.readAllBytes(f);
        Files.write(f, java.util.Arrays.copyOf(b, b.length / 2));
        DataFormatException e = assertThrows(DataFormatException.class, () -> DataSources.load("mnist:" + dir));
        assertTrue(e.getMessage().contains("gzip"), e.getMessage());
    }

    @Test void labelOutOfRangeIsRejected(@TempDir Path tmp) throws IOException {
        Path dir = writeMnist(tmp.resolve("m"), 5, false);
        Files.write(dir.resolve("train-labels-idx1-ubyte"), Idx.encode(new int[]{5}, new byte[]{0, 1, 2, 12, 4}));
        DataFormatException e = assertThrows(DataFormatException.class, () -> DataSources.load("mnist:" + dir));
        assertTrue(e.getMessage().contains("label 12"), e.getMessage());
    }

    @Test void missingFolderSaysHowToGetFashionMnist() {
        Exception e = assertThrows(NoSuchFileException.class, () -> DataSources.load("fashion-mnist:/nonexistent/fm"));
        assertTrue(e.getMessage().contains("/nonexistent/fm"), e.getMessage());
        if (!Files.isDirectory(DataSources.DEBIAN_FASHION_MNIST)) {
            Exception d = assertThrows(NoSuchFileException.class, () -> DataSources.load("fashion-mnist"));
            assertTrue(d.getMessage().contains("apt-get install dataset-fashion-mnist"), d.getMessage());
        }
        assertThrows(IllegalArgumentException.class, () -> DataSources.load("imagenet"));
    }

    @Test void cifarRecordsAndTruncation(@TempDir Path tmp) throws IOException {
        byte[] rec = new byte[Cifar10.RECORD * 2];
        rec[0] = 3;
        rec[1] = (byte) 255;
        rec[Cifar10.RECORD] = 9;
        for (int i = 1; i <= 5; i++) Files.write(tmp.resolve("data_batch_" + i + ".bin"), rec);
        Files.write(tmp.resolve("test_batch.bin"), rec);
        DataSplit s = Cifar10.load(tmp);
        assertEquals(10, s.train().size());
        assertArrayEquals(new int[]{3, 32, 32}, s.sampleShape());
        assertEquals(3f, s.train().labels()[0]);
        assertEquals(1f, s.train().images()[0]);
        Files.write(tmp.resolve("test_batch.bin"), java.util.Arrays.copyOf(rec, rec.length - 1));
        DataFormatException e = assertThrows(DataFormatException.class, () -> Cifar10.load(tmp));
        assertTrue(e.getMessage().contains("test_batch.bin") && e.getMessage().contains("3073"), e.getMessage());
    }

    /** The folder the binary tarball unpacks into is found from its parent; torchvision's Python version is named as such. */
    @Test void cifarFoldersAsTheyAreDownloaded(@TempDir Path tmp) throws IOException {
        Path bin = Files.createDirectories(tmp.resolve("cifar-10-batches-bin"));
        byte[] rec = new byte[Cifar10.RECORD];
        rec[0] = 7;
        for (int i = 1; i <= 5; i++) Files.write(bin.resolve("data_batch_" + i + ".bin"), rec);
        Files.write(bin.resolve("test_batch.bin"), rec);
        assertEquals(7f, Cifar10.load(tmp).test().labels()[0]);
        Path py = Files.createDirectories(tmp.resolve("torchvision").resolve("cifar-10-batches-py"));
        for (Path dir : new Path[]{py.getParent(), py}) {
            Files.write(py.resolve("data_batch_1"), new byte[]{(byte) 0x80, 2});
            Exception e = assertThrows(NoSuchFileException.class, () -> Cifar10.load(dir));
            assertTrue(e.getMessage().contains("no data_batch_1.bin") && e.getMessage().contains("Python version") && e.getMessage().contains("python3 python/predcode_torch.py cifar10-binary " + dir + " OUT"), e.getMessage());
        }
        Exception plain = assertThrows(NoSuchFileException.class, () -> Cifar10.load(Files.createDirectories(tmp.resolve("empty"))));
        assertTrue(plain.getMessage().contains("binary version") && !plain.getMessage().contains("Python"), plain.getMessage());
    }

    @Test void bundledDigitsSplitDeterministically() throws IOException {
        DataSplit a = Digits.split(), b = Digits.split();
        assertEquals(1497, a.train().size());
        assertEquals(300, a.test().size());
        assertArrayEquals(a.test().labels(), b.test().labels());
        assertArrayEquals(new int[]{1, 8, 8}, a.sampleShape());
        float max = 0;
        for (float v : a.train().images()) max = Math.max(max, v);
        assertEquals(1f, max);
    }

    @Test void batchesCoverEverySampleOnceWithAPartialLastBatch() throws IOException {
        Dataset d = Digits.split().test();
        Set<Float> firstPixelSum = new HashSet<>();
        int seen = 0, batches = 0;
        double labelSum = 0;
        try (Batches it = new Batches(d, 64, 7, 0, true)) {
            assertEquals(5, it.count());
            while (it.hasNext()) {
                Batches.Batch b = it.next();
                batches++;
                assertEquals(batches == 5 ? 300 - 4 * 64 : 64, b.size());
                for (int i = 0; i < b.size(); i++) labelSum += b.y().getAtIndex(ValueLayout.JAVA_FLOAT, i);
                seen += b.size();
                firstPixelSum.add(b.x().getAtIndex(ValueLayout.JAVA_FLOAT, 10));
            }
        }
        double expected = 0;
        for (float l : d.labels()) expected += l;
        assertEquals(300, seen);
        assertEquals(expected, labelSum);
        assertArrayEquals(Batches.order(300, 7, 3, true), Batches.order(300, 7, 3, true));
        assertFalse(java.util.Arrays.equals(Batches.order(300, 7, 3, true), Batches.order(300, 7, 4, true)));
    }

    /** drop_last: whole batches only, the epoch's order cut where the last whole batch ends. */
    @Test void droppingTheLastBatchKeepsWholeBatchesInTheSameOrder() throws IOException {
        Dataset d = Digits.split().test();
        int[] order = Batches.order(d.size(), 7, 0, true);
        for (int batch : new int[]{64, 100, 300, 1}) {
            int at = 0;
            try (Batches it = new Batches(d, batch, 7, 0, true, false, Augmentation.NONE, true)) {
                assertEquals(300 / batch, it.count());
                assertEquals(300 / batch, Batches.stepsPerEpoch(300, batch, true));
                assertEquals((300 + batch - 1) / batch, Batches.stepsPerEpoch(300, batch, false));
                while (it.hasNext()) {
                    Batches.Batch b = it.next();
                    assertEquals(batch, b.size());
                    for (int i = 0; i < b.size(); i++, at++) assertEquals(d.labels()[order[at]], b.y().getAtIndex(ValueLayout.JAVA_FLOAT, i));
                }
            }
            assertEquals(300 / batch * batch, at);
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new Batches(d, 301, 7, 0, true, false, Augmentation.NONE, true));
        assertTrue(e.getMessage().contains("dropping the partial batch leaves none"), e.getMessage());
    }
}
