package io.predcode.data;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.file.Path;

/**
 * The IDX format of MNIST and Fashion-MNIST (gzip or raw): magic 0x0000 08 NN (unsigned bytes, NN
 * dimensions), NN big-endian int32 sizes, then the data. Everything is validated against the length.
 */
public final class Idx {
    private Idx() {}

    /** Images [n, rows, cols] scaled to [0, 1]. */
    public record Images(int count, int rows, int cols, float[] pixels) {}

    /** The images of an IDX3 file (.gz or not), pixels scaled to [0, 1]. */
    public static Images readImages(Path file) throws IOException {
        try (InputStream in = Files2.open(file)) {
            int[] dims = header(in, file, 3);
            byte[] b = body(in, file, dims, "image");
            float[] px = new float[b.length];
            for (int i = 0; i < px.length; i++) px[i] = (b[i] & 0xff) / 255f;
            return new Images(dims[0], dims[1], dims[2], px);
        }
    }

    /** The labels of an IDX1 file (.gz or not). */
    public static float[] readLabels(Path file) throws IOException {
        try (InputStream in = Files2.open(file)) {
            int[] dims = header(in, file, 1);
            byte[] b = body(in, file, dims, "label");
            float[] y = new float[b.length];
            for (int i = 0; i < y.length; i++) y[i] = b[i] & 0xff;
            return y;
        }
    }

    /**
     * Exactly the bytes the header declares, checked before they are read: the product of the
     * dimensions in checked arithmetic, against what memory holds (a byte and a float each), then
     * no byte short and none after.
     */
    private static byte[] body(InputStream in, Path file, int[] dims, String kind) throws IOException {
        long n = 1;
        try {
            for (int d : dims) n = Math.multiplyExact(n, d);
        } catch (ArithmeticException e) {
            throw new DataFormatException(file + ": the header's dimensions " + java.util.Arrays.toString(dims) + " multiply past 2^63");
        }
        long room = Runtime.getRuntime().maxMemory() / 2;
        if (n > Integer.MAX_VALUE - 16 || 5 * n > room)
            throw new DataFormatException(file + ": the header declares " + n + " " + kind + " bytes (" + java.util.Arrays.toString(dims) + "), more than this JVM can hold (" + room / 5
                    + " at most)");
        byte[] b = in.readNBytes((int) n);
        if (b.length < n) throw new DataFormatException(file + ": IDX " + kind + " file is truncated: the header's " + java.util.Arrays.toString(dims) + " needs " + n
                + " bytes after the header, found " + b.length);
        if (in.read() != -1) throw new DataFormatException(file + ": bytes after the " + n + " the header's " + java.util.Arrays.toString(dims) + " declares");
        return b;
    }

    private static int[] header(InputStream in, Path file, int rank) throws IOException {
        int headerBytes = 4 + 4 * rank;
        byte[] b = in.readNBytes(headerBytes);
        if (b.length < headerBytes) throw new DataFormatException(file + ": " + b.length + " bytes is too short for an IDX header of rank " + rank);
        ByteBuffer bb = ByteBuffer.wrap(b);
        int magic = bb.getInt();
        int expected = 0x0800 | rank;
        if (magic != expected)
            throw new DataFormatException(file + ": field 'magic' is 0x" + String.format("%08x", magic) + ", expected 0x" + String.format("%08x", expected)
                    + " (unsigned bytes, " + rank + " dimension" + (rank > 1 ? "s" : "") + ")");
        int[] dims = new int[rank];
        for (int i = 0; i < rank; i++) {
            dims[i] = bb.getInt();
            if (dims[i] < 1) throw new DataFormatException(file + ": field 'dimension " + i + "' is " + dims[i] + ", expected >= 1");
        }
        return dims;
    }

    /** Writes an IDX file (used by tests to make small data sets). */
    public static byte[] encode(int[] dims, byte[] data) {
        ByteBuffer bb = ByteBuffer.allocate(4 + 4 * dims.length + data.length);
        bb.putInt(0x0800 | dims.length);
        for (int d : dims) bb.putInt(d);
        bb.put(data);
        return bb.array();
    }
}
