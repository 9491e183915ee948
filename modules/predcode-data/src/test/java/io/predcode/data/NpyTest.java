package io.predcode.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.zip.GZIPOutputStream;

import static org.junit.jupiter.api.Assertions.*;

/** NumPy's .npy files and npy:DIR folders: every element type read exactly, and every malformed file refused naming it and its field. */
class NpyTest {
    @TempDir Path tmp;

    /** The bytes of {@code values} as {@code type} ('f4', 'i8', ...), little-endian. */
    static byte[] data(String type, double... values) {
        int size = Integer.parseInt(type.substring(1));
        ByteBuffer b = ByteBuffer.allocate(values.length * size).order(ByteOrder.LITTLE_ENDIAN);
        for (double v : values)
            switch (type) {
                case "f4" -> b.putFloat((float) v);
                case "f8" -> b.putDouble(v);
                case "u1", "i1" -> b.put((byte) (long) v);
                case "u2", "i2" -> b.putShort((short) (long) v);
                case "u4", "i4" -> b.putInt((int) (long) v);
                default -> b.putLong((long) v);
            }
        return b.array();
    }

    Path write(String name, byte[] bytes) throws IOException {
        Path f = tmp.resolve(name);
        Files.write(f, bytes);
        return f;
    }

    @Test void everyElementTypeIsReadExactly() throws IOException {
        double[] values = {0, 1, 7, 100, 127};
        for (String type : new String[]{"f4", "f8", "u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8"}) {
            String descr = (type.endsWith("1") ? "|" : "<") + type;
            Npy.Array a = Npy.read(write(type + ".npy", Npy.encode(descr, new int[]{5}, data(type, values))));
            assertArrayEquals(new int[]{5}, a.shape(), type);
            assertArrayEquals(new float[]{0, 1, 7, 100, 127}, a.values(), type);
            assertEquals(descr, a.dtype(), type);
        }
        // Signs, fractions and the extremes of each type.
        assertArrayEquals(new float[]{-128, 127}, Npy.read(write("i1s.npy", Npy.encode("|i1", new int[]{2}, data("i1", -128, 127)))).values());
        assertArrayEquals(new float[]{255}, Npy.read(write("u1s.npy", Npy.encode("|u1", new int[]{1}, new byte[]{(byte) 255}))).values());
        assertArrayEquals(new float[]{65535}, Npy.read(write("u2s.npy", Npy.encode("<u2", new int[]{1}, data("u2", 65535)))).values());
        assertArrayEquals(new float[]{4294967295f}, Npy.read(write("u4s.npy", Npy.encode("<u4", new int[]{1}, data("u4", 4294967295L)))).values());
        assertArrayEquals(new float[]{-0.25f, 1e-3f, (float) Math.PI}, Npy.read(write("f8s.npy", Npy.encode("<f8", new int[]{3}, data("f8", -0.25, 1e-3, Math.PI)))).values());
        assertArrayEquals(new float[]{1.5f, -2, Float.MIN_VALUE}, Npy.read(write("floats.npy", Npy.encode(new int[]{3}, new float[]{1.5f, -2, Float.MIN_VALUE}))).values());
        byte[] u8 = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(-1L).array(); // 2^64 - 1
        assertEquals(1.8446744e19f, Npy.read(write("u8s.npy", Npy.encode("<u8", new int[]{1}, u8))).values()[0]);
    }

    @Test void shapesVersionsAndGzipAreRead() throws IOException {
        Npy.Array a = Npy.read(write("m.npy", Npy.encode("<f4", new int[]{2, 3}, data("f4", 1, 2, 3, 4, 5, 6))));
        assertArrayEquals(new int[]{2, 3}, a.shape());
        assertArrayEquals(new float[]{1, 2, 3, 4, 5, 6}, a.values());
        // Version 2.0: a 4-byte header length (np.save writes it when the header needs more than 65535 bytes).
        byte[] v1 = Npy.encode("<f4", new int[]{2}, data("f4", 1, 2));
        int headerLength = ByteBuffer.wrap(v1, 8, 2).order(ByteOrder.LITTLE_ENDIAN).getShort();
        ByteBuffer v2 = ByteBuffer.allocate(v1.length + 2).order(ByteOrder.LITTLE_ENDIAN);
        v2.put(v1, 0, 6).put((byte) 2).put((byte) 0).putInt(headerLength).put(v1, 10, v1.length - 10);
        assertArrayEquals(new float[]{1, 2}, Npy.read(write("v2.npy", v2.array())).values());
        // Gzipped, as x_train.npy.gz.
        ByteArrayOutputStream z = new ByteArrayOutputStream();
        try (GZIPOutputStream gz = new GZIPOutputStream(z)) { gz.write(Npy.encode("|u1", new int[]{3}, new byte[]{4, 5, 6})); }
        assertArrayEquals(new float[]{4, 5, 6}, Npy.read(write("z.npy.gz", z.toByteArray())).values());
        // A header as np.save writes it by hand: double quotes, no trailing comma, another key order.
        String header = "{\"shape\": (2,), \"fortran_order\": False, \"descr\": \"<i4\"}";
        assertArrayEquals(new float[]{-3, 9}, Npy.read(write("hand.npy", withHeader(header, data("i4", -3, 9)))).values());
    }

    static byte[] withHeader(String header, byte[] data) {
        byte[] h = (header + "\n").getBytes(StandardCharsets.ISO_8859_1);
        ByteBuffer b = ByteBuffer.allocate(10 + h.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.put((byte) 0x93).put("NUMPY".getBytes(StandardCharsets.ISO_8859_1)).put((byte) 1).put((byte) 0).putShort((short) h.length).put(h).put(data);
        return b.array();
    }

    void refused(String name, byte[] bytes, String... expected) throws IOException {
        Path f = write(name, bytes);
        DataFormatException e = assertThrows(DataFormatException.class, () -> Npy.read(f), name);
        assertTrue(e.getMessage().startsWith(f.toString()), e.getMessage());
        for (String s : expected) assertTrue(e.getMessage().contains(s), name + ": " + e.getMessage());
    }

    @Test void malformedFilesAreRefusedNamingTheFieldAndTheFix() throws IOException {
        byte[] four = data("f4", 1, 2);
        refused("magic.npy", "not numpy at all".getBytes(StandardCharsets.ISO_8859_1), "not a .npy file");
        refused("short.npy", new byte[]{(byte) 0x93, 'N', 'U'}, "not a .npy file");
        byte[] v9 = Npy.encode("<f4", new int[]{2}, four);
        v9[6] = 9;
        refused("version.npy", v9, "field 'version' is 9.0");
        refused("fortran.npy", withHeader("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", four), "'fortran_order' is True", "np.ascontiguousarray");
        refused("big.npy", withHeader("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", four), "field 'descr' is '>f4'", "newbyteorder");
        refused("complex.npy", withHeader("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", new byte[8]), "field 'descr' is '<c8'");
        refused("nokey.npy", withHeader("{'descr': '<f4', 'shape': (2,), }", four), "no 'fortran_order'");
        refused("twice.npy", withHeader("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", four), "'descr' is given twice");
        refused("unknown.npy", withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}", four), "'extra' is not one of");
        refused("open.npy", withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (2,", four), "tuple without ')'");
        refused("after.npy", withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x", four), "after the dict");
        refused("scalar.npy", withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", four), "field 'shape' is (), a scalar");
        refused("zero.npy", withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }", new byte[0]), "field 'shape' has 0 at dimension 0");
        refused("word.npy", withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", four), "'x' at dimension 1");
        refused("huge.npy", withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (2147483647, 2147483647, 2147483647), }", four), "multiplies past 2^63");
        refused("memory.npy", withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000), }", four), "more than this JVM can hold");
        refused("truncated.npy", Npy.encode("<f4", new int[]{3}, four), "truncated", "needs 12 bytes of data, found 8");
        byte[] trailing = Npy.encode("<f4", new int[]{1}, four);
        refused("trailing.npy", trailing, "bytes after the 4 that field 'shape' [1] declares");
        byte[] longHeader = Npy.encode("<f4", new int[]{2}, four);
        ByteBuffer.wrap(longHeader).order(ByteOrder.LITTLE_ENDIAN).put(6, (byte) 2).putInt(8, Npy.MAX_HEADER + 1);
        refused("header.npy", longHeader, "field 'header length' is 65537");
    }

    /** Writes a folder of the four arrays (x as float32 of the given shape, y as int64). */
    Path folder(String name, int[] xShape, float[] x, long[] y, int[] testShape, float[] xt, long[] yt) throws IOException {
        Path dir = Files.createDirectories(tmp.resolve(name));
        Files.write(dir.resolve("x_train.npy"), Npy.encode(xShape, x));
        Files.write(dir.resolve("y_train.npy"), Npy.encode("<i8", new int[]{y.length}, longs(y)));
        Files.write(dir.resolve("x_test.npy"), Npy.encode(testShape, xt));
        Files.write(dir.resolve("y_test.npy"), Npy.encode("<i8", new int[]{yt.length}, longs(yt)));
        return dir;
    }

    static byte[] longs(long[] v) {
        ByteBuffer b = ByteBuffer.allocate(8 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        for (long l : v) b.putLong(l);
        return b.array();
    }

    @Test void aFolderIsASplitWithItsShapesScaleAndClassNames() throws IOException {
        // (N, H, W): one-channel images; classes from the largest label.
        Path dir = folder("images", new int[]{2, 2, 3}, new float[12], new long[]{0, 4}, new int[]{1, 2, 3}, new float[6], new long[]{2});
        DataSplit s = DataSources.load("npy:" + dir);
        assertArrayEquals(new int[]{1, 2, 3}, s.sampleShape());
        assertEquals(5, s.classes());
        assertEquals(List.of("0", "1", "2", "3", "4"), s.classNames());
        assertEquals(1f, s.pixelScale());
        assertArrayEquals(new float[]{0, 4}, s.train().labels());
        assertEquals(1, s.test().size());
        // (N, F) flat and (N, C, H, W) images keep their sample shape.
        assertArrayEquals(new int[]{3}, NpyFolder.load(folder("flat", new int[]{2, 3}, new float[6], new long[]{0, 1}, new int[]{1, 3}, new float[3], new long[]{1})).sampleShape());
        assertArrayEquals(new int[]{2, 2, 2}, NpyFolder.load(folder("chw", new int[]{1, 2, 2, 2}, new float[8], new long[]{1}, new int[]{1, 2, 2, 2}, new float[8], new long[]{0})).sampleShape());
        // Bytes are pixels: divided by 255 as MNIST's are, the scale recorded for serving; classes.txt names the classes.
        Path bytes = Files.createDirectories(tmp.resolve("bytes"));
        Files.write(bytes.resolve("x_train.npy"), Npy.encode("|u1", new int[]{2, 2}, new byte[]{0, (byte) 255, 51, 102}));
        Files.write(bytes.resolve("y_train.npy"), Npy.encode("|u1", new int[]{2, 1}, new byte[]{1, 0}));
        Files.write(bytes.resolve("x_test.npy"), Npy.encode("|u1", new int[]{1, 2}, new byte[]{17, 34}));
        Files.write(bytes.resolve("y_test.npy"), Npy.encode(new int[]{1}, new float[]{2}));
        Files.writeString(bytes.resolve("classes.txt"), "cat\ndog\nbird\nfish\n\n");
        DataSplit b = DataSources.load("npy:" + bytes);
        assertArrayEquals(new float[]{0, 1, 51 / 255f, 102 / 255f}, b.train().images());
        assertEquals(1f / 255, b.pixelScale());
        assertEquals(List.of("cat", "dog", "bird", "fish"), b.classNames());
        assertEquals(4, b.classes());
    }

    /** Keras's to_categorical labels, (N, K) one-hot rows, are taken as the indices of their 1s; anything else in that shape is refused. */
    @Test void oneHotLabelsAreTheirIndices() throws IOException {
        Path dir = folder("onehot", new int[]{3, 2}, new float[6], new long[]{0, 0, 0}, new int[]{2, 2}, new float[4], new long[]{0, 0});
        Files.write(dir.resolve("y_train.npy"), Npy.encode(new int[]{3, 4}, new float[]{0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0}));
        Files.write(dir.resolve("y_test.npy"), Npy.encode("|u1", new int[]{2, 4}, new byte[]{1, 0, 0, 0, 0, 0, 1, 0}));
        DataSplit s = DataSources.load("npy:" + dir);
        assertArrayEquals(new float[]{2, 0, 1}, s.train().labels());
        assertArrayEquals(new float[]{0, 2}, s.test().labels());
        assertEquals(4, s.classes(), "the rows' width, though no label is 3");
        Files.write(dir.resolve("y_test.npy"), Npy.encode(new int[]{2, 4}, new float[]{1, 0, 0, 0, 0, 1, 1, 0}));
        folderRefused(dir, "y_test.npy", "row 1 is not one-hot");
        Files.write(dir.resolve("y_test.npy"), Npy.encode(new int[]{2, 4}, new float[]{1, 0, 0, 0, 0, 0.5f, 0, 0}));
        folderRefused(dir, "y_test.npy", "row 1 is not one-hot");
        Files.write(dir.resolve("y_test.npy"), Npy.encode(new int[]{2, 4}, new float[]{1, 0, 0, 0, 0, 0, 0, 0}));
        folderRefused(dir, "y_test.npy", "row 1 is not one-hot");
        Files.write(dir.resolve("y_test.npy"), Npy.encode(new int[]{2, 3}, new float[]{1, 0, 0, 0, 1, 0}));
        folderRefused(dir, "y_test.npy", "one-hot rows of 3 classes, but", "have 4");
    }

    void folderRefused(Path dir, String file, String... expected) {
        IOException e = assertThrows(IOException.class, () -> DataSources.load("npy:" + dir), dir.toString());
        assertTrue(e.getMessage().contains(dir.resolve(file).toString()), e.getMessage());
        for (String s : expected) assertTrue(e.getMessage().contains(s), e.getMessage());
    }

    @Test void channelsLastImagesAreReadChannelsFirst() throws IOException {
        java.util.Random r = new java.util.Random(7);
        // Awkward sizes: one sample, one channel, primes, a width off any vector length; the first dimension past 4.
        int[][] shapes = {{1, 5, 5, 1}, {3, 7, 11, 3}, {2, 13, 2, 4}, {4, 32, 32, 3}, {1, 5, 1, 2}};
        for (int[] s : shapes) {
            int n = s[0], h = s[1], w = s[2], c = s[3];
            float[] x = new float[n * h * w * c];
            for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
            long[] labels = new long[n];
            labels[0] = 1; // two classes
            Path dir = folder("last" + Arrays.toString(s).replaceAll("\\D+", "-"), s, x, labels, s, x, labels);
            DataSplit split = NpyFolder.load(dir);
            assertArrayEquals(new int[]{c, h, w}, split.sampleShape(), Arrays.toString(s));
            assertTrue(split.train().name().contains("channels last"), split.train().name());
            // The reference: element (i, y, x, k) of the stored array is element (i, k, y, x) of the samples.
            float[] got = split.train().images(), test = split.test().images();
            for (int i = 0; i < n; i++)
                for (int y = 0; y < h; y++)
                    for (int xx = 0; xx < w; xx++)
                        for (int k = 0; k < c; k++) {
                            float want = x[((i * h + y) * w + xx) * c + k];
                            int at = ((i * c + k) * h + y) * w + xx;
                            assertEquals(want, got[at], Arrays.toString(s) + " sample " + i + " (" + y + ", " + xx + ", " + k + ")");
                            assertEquals(want, test[at]);
                        }
        }
        // Bytes (Keras's CIFAR-10 is uint8 (N, 32, 32, 3)) are transposed and divided by 255 alike.
        Path bytes = Files.createDirectories(tmp.resolve("last-bytes"));
        byte[] px = new byte[5 * 6 * 3];
        for (int i = 0; i < px.length; i++) px[i] = (byte) (i * 3);
        for (String set : new String[]{"train", "test"}) {
            Files.write(bytes.resolve("x_" + set + ".npy"), Npy.encode("|u1", new int[]{1, 5, 6, 3}, px));
            Files.write(bytes.resolve("y_" + set + ".npy"), Npy.encode("|u1", new int[]{1}, new byte[]{1}));
        }
        DataSplit b = NpyFolder.load(bytes);
        assertArrayEquals(new int[]{3, 5, 6}, b.sampleShape());
        assertEquals(1f / 255, b.pixelScale());
        for (int k = 0; k < 3; k++)
            for (int p = 0; p < 30; p++) assertEquals((px[p * 3 + k] & 0xff) / 255f, b.train().images()[k * 30 + p]);
        // Channels first stays as it is, 4 channels or fewer included; so does a channels-last look-alike whose second dimension is at most 4.
        assertArrayEquals(new int[]{3, 8, 8}, NpyFolder.load(folder("first", new int[]{1, 3, 8, 8}, new float[192], new long[]{1}, new int[]{1, 3, 8, 8}, new float[192], new long[]{0})).sampleShape());
        DataSplit small = NpyFolder.load(folder("small", new int[]{1, 4, 8, 2}, new float[64], new long[]{1}, new int[]{1, 4, 8, 2}, new float[64], new long[]{0}));
        assertArrayEquals(new int[]{4, 8, 2}, small.sampleShape());
        assertFalse(small.train().name().contains("channels last"));
    }

    @Test void aFolderWhoseArraysDisagreeIsRefusedNamingTheFile() throws IOException {
        float[] six = new float[6];
        folderRefused(folder("count", new int[]{2, 3}, six, new long[]{0}, new int[]{1, 3}, new float[3], new long[]{0}), "y_train.npy", "1 labels, but the inputs beside it hold 2");
        folderRefused(folder("shape", new int[]{2, 3}, six, new long[]{0, 1}, new int[]{1, 2}, new float[2], new long[]{0}), "x_test.npy", "samples of shape [2]", "[3]");
        folderRefused(folder("negative", new int[]{2, 3}, six, new long[]{0, -1}, new int[]{1, 3}, new float[3], new long[]{0}), "y_train.npy", "label -1.0 of sample 1");
        folderRefused(folder("nan", new int[]{2, 3}, new float[]{0, 0, 0, 0, Float.NaN, 0}, new long[]{0, 1}, new int[]{1, 3}, new float[3], new long[]{0}), "x_train.npy", "sample 1 holds NaN");
        folderRefused(folder("rank", new int[]{6}, six, new long[]{0, 1, 0, 1, 0, 1}, new int[]{1}, new float[1], new long[]{0}), "x_train.npy", "expected (N, F), (N, H, W), (N, C, H, W) or (N, H, W, C)");
        // Labels all 0: one class, nothing to classify (most often labels saved wrong).
        folderRefused(folder("one", new int[]{2, 3}, six, new long[]{0, 0}, new int[]{1, 3}, new float[3], new long[]{0}), "y_train.npy", "every label is 0, a single class");
        // Train and test both channels last, but of different images: compared after the transpose, in the model's layout.
        folderRefused(folder("last", new int[]{1, 8, 8, 3}, new float[192], new long[]{0}, new int[]{1, 8, 7, 3}, new float[168], new long[]{0}), "x_test.npy", "[3, 8, 7]", "[3, 8, 8]");
        Path names = folder("names", new int[]{2, 3}, six, new long[]{0, 2}, new int[]{1, 3}, new float[3], new long[]{0});
        Files.writeString(names.resolve("classes.txt"), "a\nb\n");
        folderRefused(names, "classes.txt", "2 class names, but the labels go up to 2");
        Path fraction = folder("fraction", new int[]{2, 3}, six, new long[]{0, 1}, new int[]{1, 3}, new float[3], new long[]{0});
        Files.write(fraction.resolve("y_test.npy"), Npy.encode(new int[]{1}, new float[]{0.5f}));
        folderRefused(fraction, "y_test.npy", "label 0.5 of sample 0 is not a class index");
        Path missing = folder("missing", new int[]{2, 3}, six, new long[]{0, 1}, new int[]{1, 3}, new float[3], new long[]{0});
        Files.delete(missing.resolve("x_test.npy"));
        folderRefused(missing, "x_test.npy", "file not found");
        IOException e = assertThrows(IOException.class, () -> DataSources.load("npy:" + tmp.resolve("nowhere")));
        assertTrue(e.getMessage().contains("nowhere") && e.getMessage().contains("npy folder not found"), e.getMessage());
        IOException archive = assertThrows(IOException.class, () -> DataSources.load("npy:" + tmp.resolve("moved.npz")));
        assertTrue(archive.getMessage().contains("moved.npz") && archive.getMessage().contains("npz archive not found"), archive.getMessage());
        assertThrows(IllegalArgumentException.class, () -> DataSources.load("npy"));
        IOException folderAsFile = assertThrows(IOException.class, () -> Npy.read(tmp));
        assertTrue(folderAsFile.getMessage().contains(tmp.toString()) && folderAsFile.getMessage().contains("is a folder"), folderAsFile.getMessage());
        // A folder given without its kind: the message says which it is.
        Path plain = folder("plain", new int[]{2, 3}, six, new long[]{0, 1}, new int[]{1, 3}, new float[3], new long[]{0});
        IllegalArgumentException kind = assertThrows(IllegalArgumentException.class, () -> DataSources.load(plain.toString()));
        assertTrue(kind.getMessage().endsWith("that folder holds .npy arrays: --data npy:" + plain), kind.getMessage());
    }

    Path resource(String name) throws Exception {
        Path f = tmp.resolve(name);
        try (var in = getClass().getResourceAsStream("/npz/" + name)) {
            Files.copy(in, f);
        }
        return f;
    }

    /**
     * Archives NumPy 1.24 wrote (src/test/resources/npz), with x = np.arange(24, dtype=np.uint8).reshape(3, 2, 4) * 10:
     * np.savez('savez.npz', x_train=x, y_train=np.array([0, 2, 1], dtype=np.uint8), x_test=x[:2], y_test=np.array([2, 0], dtype=np.uint8),
     * classes=np.array(['cat', 'dog', 'bird'])); np.savez_compressed('savez_compressed.npz', x_train=x.astype(np.float32) / 7,
     * y_train=np.array([0, 2, 1]), x_test=x[:2].astype(np.float32) / 7, y_test=np.array([2, 0])); np.savez('one.npz', x.reshape(3, 8)).
     */
    @Test void npzArchivesAreReadAsNumPyWritesThem() throws Exception {
        DataSplit s = DataSources.load("npy:" + resource("savez.npz"));
        assertArrayEquals(new int[]{1, 2, 4}, s.sampleShape());
        assertEquals(List.of("cat", "dog", "bird"), s.classNames());
        assertEquals(3, s.classes());
        assertEquals(1f / 255, s.pixelScale());
        float[] x = new float[24];
        for (int i = 0; i < 24; i++) x[i] = (i * 10) / 255f;
        assertArrayEquals(x, s.train().images());
        assertArrayEquals(new float[]{0, 2, 1}, s.train().labels());
        assertArrayEquals(java.util.Arrays.copyOf(x, 16), s.test().images());
        assertArrayEquals(new float[]{2, 0}, s.test().labels());
        // Deflated, float32 inputs used as stored, int64 labels, no names; npz: is the same kind.
        DataSplit z = DataSources.load("npz:" + resource("savez_compressed.npz"));
        for (int i = 0; i < 24; i++) x[i] = (float) (i * 10) / 7f;
        assertArrayEquals(x, z.train().images());
        assertEquals(1f, z.pixelScale());
        assertEquals(List.of("0", "1", "2"), z.classNames());
        // A positional array (arr_0), as predict reads an archive's only array.
        try (Npz one = Npz.open(resource("one.npz"))) {
            assertEquals(List.of("arr_0"), one.keys());
            Npy.Array a = one.array("arr_0");
            assertArrayEquals(new int[]{3, 8}, a.shape());
            assertEquals(230f, a.values()[23]);
            assertTrue(a.source().endsWith("one.npz['arr_0']"), a.source());
        }
    }

    /** An archive as np.savez builds one (stored entries) or np.savez_compressed (deflated), of {@code arrays} by key. */
    static byte[] npz(boolean deflate, java.util.Map<String, byte[]> arrays) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (java.util.zip.ZipOutputStream z = new java.util.zip.ZipOutputStream(out)) {
            for (var a : arrays.entrySet()) {
                java.util.zip.ZipEntry e = new java.util.zip.ZipEntry(a.getKey() + ".npy");
                if (!deflate) {
                    java.util.zip.CRC32 crc = new java.util.zip.CRC32();
                    crc.update(a.getValue());
                    e.setMethod(java.util.zip.ZipEntry.STORED);
                    e.setSize(a.getValue().length);
                    e.setCrc(crc.getValue());
                }
                z.putNextEntry(e);
                z.write(a.getValue());
                z.closeEntry();
            }
        }
        return out.toByteArray();
    }

    static byte[] text(int chars, String... names) {
        ByteBuffer b = ByteBuffer.allocate(4 * chars * names.length).order(ByteOrder.LITTLE_ENDIAN);
        for (String n : names) {
            int[] cps = n.codePoints().toArray();
            for (int c = 0; c < chars; c++) b.putInt(c < cps.length ? cps[c] : 0);
        }
        return Npy.encode("<U" + chars, new int[]{names.length}, b.array());
    }

    @Test void npzArchivesThatAreWrongAreRefusedNamingTheArray() throws Exception {
        java.util.Map<String, byte[]> arrays = new java.util.LinkedHashMap<>();
        arrays.put("x_train", Npy.encode(new int[]{2, 3}, new float[]{1, 2, 3, 4, 5, 6}));
        arrays.put("y_train", Npy.encode("<i8", new int[]{2}, longs(new long[]{0, 1})));
        arrays.put("x_test", Npy.encode(new int[]{1, 3}, new float[]{7, 8, 9}));
        arrays.put("y_test", Npy.encode("<i8", new int[]{1}, longs(new long[]{1})));
        arrays.put("classes", text(6, "Ärmel", "\uD83D\uDC1F fish")); // a name past the Basic Multilingual Plane too
        Path good = write("good.npz", npz(false, arrays));
        assertEquals(List.of("Ärmel", "\uD83D\uDC1F fish"), DataSources.load("npy:" + good).classNames());
        assertEquals(List.of("x_train", "y_train", "x_test", "y_test", "classes"), Npz.open(good).keys());
        // A byte changed inside a stored array's values: the CRC-32 sees it, where the .npy reader would take other
        // numbers; one changed in its header is named as corrupt too, not as a header np.save would not write.
        byte[] stored = npz(false, arrays), xTest = Npy.encode(new int[]{1, 3}, new float[]{7, 8, 9});
        for (int offset : new int[]{xTest.length - 2, 40}) {
            byte[] flipped = stored.clone();
            flipped[indexOf(stored, xTest) + offset] ^= 1;
            npzRefused(write("flipped" + offset + ".npz", flipped), "flipped" + offset + ".npz['x_test']: its bytes' CRC-32 is");
        }
        java.util.Map<String, byte[]> missing = new java.util.LinkedHashMap<>(arrays);
        missing.remove("y_test");
        npzRefused(write("missing.npz", npz(true, missing)), "missing.npz['y_test']: no such array; the archive holds [x_train, y_train, x_test, classes]");
        java.util.Map<String, byte[]> floatNames = new java.util.LinkedHashMap<>(arrays);
        floatNames.put("classes", Npy.encode(new int[]{2}, new float[]{0, 1}));
        npzRefused(write("names.npz", npz(true, floatNames)), "names.npz['classes']: field 'descr' is '<f4', expected text such as '<U12'");
        java.util.Map<String, byte[]> fewNames = new java.util.LinkedHashMap<>(arrays);
        fewNames.put("classes", text(3, "one"));
        npzRefused(write("few.npz", npz(false, fewNames)), "few.npz['classes']: 1 class names, but the labels go up to 1");
        java.util.Map<String, byte[]> nan = new java.util.LinkedHashMap<>(arrays);
        nan.put("x_test", Npy.encode(new int[]{1, 3}, new float[]{7, Float.POSITIVE_INFINITY, 9}));
        npzRefused(write("nan.npz", npz(true, nan)), "nan.npz['x_test']: sample 0 holds Infinity");
        npzRefused(write("garbage.npz", "PK but not a zip at all".getBytes(StandardCharsets.ISO_8859_1)), "garbage.npz: not an .npz archive");
        byte[] cut = npz(true, arrays);
        npzRefused(write("cut.npz", java.util.Arrays.copyOf(cut, cut.length / 2)), "cut.npz: not an .npz archive");
        // An archive given without its kind: the message says what it is.
        IllegalArgumentException kind = assertThrows(IllegalArgumentException.class, () -> DataSources.load(good.toString()));
        assertTrue(kind.getMessage().endsWith("that file is a zip, as np.savez writes: --data npy:" + good), kind.getMessage());
    }

    static int indexOf(byte[] hay, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= hay.length; i++) {
            for (int j = 0; j < needle.length; j++) if (hay[i + j] != needle[j]) continue outer;
            return i;
        }
        throw new AssertionError("not found");
    }

    void npzRefused(Path f, String expected) {
        IOException e = assertThrows(IOException.class, () -> DataSources.load("npy:" + f), f.toString());
        assertTrue(e.getMessage().startsWith(tmp.toString()) && e.getMessage().contains(expected), e.getMessage());
    }
}
