package io.predcode.data;

import java.io.IOException;
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
        byte[] b = Files2.readMaybeGzip(file);
        int[] dims = header(b, file, 3);
        long expected = 16L + (long) dims[0] * dims[1] * dims[2];
        if (b.length != expected)
            throw new DataFormatException(file + ": IDX image file is " + b.length + " bytes; the header's " + dims[0] + "x" + dims[1] + "x" + dims[2] + " needs " + expected + (b.length < expected ? " (truncated)" : ""));
        float[] px = new float[dims[0] * dims[1] * dims[2]];
        for (int i = 0; i < px.length; i++) px[i] = (b[16 + i] & 0xff) / 255f;
        return new Images(dims[0], dims[1], dims[2], px);
    }

    /** The labels of an IDX1 file (.gz or not). */
    public static float[] readLabels(Path file) throws IOException {
        byte[] b = Files2.readMaybeGzip(file);
        int[] dims = header(b, file, 1);
        if (b.length != 8L + dims[0])
            throw new DataFormatException(file + ": IDX label file is " + b.length + " bytes; the header's " + dims[0] + " labels need " + (8L + dims[0]) + (b.length < 8L + dims[0] ? " (truncated)" : ""));
        float[] y = new float[dims[0]];
        for (int i = 0; i < y.length; i++) y[i] = b[8 + i] & 0xff;
        return y;
    }

    private static int[] header(byte[] b, Path file, int rank) throws DataFormatException {
        int headerBytes = 4 + 4 * rank;
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
