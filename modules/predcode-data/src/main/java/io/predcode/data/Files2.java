package io.predcode.data;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.zip.GZIPInputStream;

/**
 * Reads data files, gunzipping those that start with the gzip magic, never more than a bound: a
 * gzip bomb or a header that declares more than memory holds is refused before it is read.
 */
final class Files2 {
    private Files2() {}

    /** The file's contents (decompressed), refusing more than {@code maxBytes}. */
    static byte[] readMaybeGzip(Path file, long maxBytes) throws IOException {
        try (InputStream in = open(file)) {
            byte[] b = in.readNBytes((int) Math.min(Integer.MAX_VALUE - 8, maxBytes + 1));
            if (b.length > maxBytes) throw new DataFormatException(file + ": more than " + maxBytes + " bytes" + (isGzip(file) ? " once decompressed" : "") + "; refused");
            return b;
        }
    }

    /**
     * Refuses, naming it, a path that is a folder or does not exist: a folder opens on Linux and fails at the first read
     * with a message that names nothing. {@code kind} says what was expected ("a data file").
     */
    static void requireFile(Path file, String kind) throws IOException {
        if (Files.isDirectory(file)) throw new java.nio.file.FileSystemException(file.toString(), null, "is a folder, expected " + kind);
        if (!Files.exists(file)) throw new NoSuchFileException(file.toString(), null, "file not found");
    }

    /** A stream of the file's contents, decompressed when it is gzip. */
    static InputStream open(Path file) throws IOException {
        requireFile(file, "a data file");
        InputStream in;
        try {
            in = new BufferedInputStream(Files.newInputStream(file));
        } catch (NoSuchFileException e) {
            throw new NoSuchFileException(file.toString(), null, "file not found");
        } catch (IOException e) {
            throw new java.nio.file.FileSystemException(file.toString(), null, e.getMessage() != null ? e.getMessage() : e.toString());
        }
        in.mark(2);
        int a = in.read(), b = in.read();
        in.reset();
        if (a != 0x1f || b != 0x8b) return in;
        try {
            return new Corrupt(new GZIPInputStream(in), file);
        } catch (IOException e) {
            in.close();
            throw new DataFormatException(file + ": corrupt gzip stream (" + e.getMessage() + ")");
        }
    }

    private static boolean isGzip(Path file) {
        try (InputStream in = Files.newInputStream(file)) {
            return in.read() == 0x1f && in.read() == 0x8b;
        } catch (IOException e) {
            return false;
        }
    }

    /** Names the file in a gzip stream's read errors. */
    private static final class Corrupt extends java.io.FilterInputStream {
        private final Path file;

        Corrupt(InputStream in, Path file) {
            super(in);
            this.file = file;
        }

        @Override public int read() throws IOException {
            try { return super.read(); } catch (IOException e) { throw wrap(e); }
        }

        @Override public int read(byte[] b, int off, int len) throws IOException {
            try { return super.read(b, off, len); } catch (IOException e) { throw wrap(e); }
        }

        private DataFormatException wrap(IOException e) { return new DataFormatException(file + ": corrupt gzip stream (" + e.getMessage() + ")"); }
    }
}
