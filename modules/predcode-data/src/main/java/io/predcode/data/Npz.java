package io.predcode.data;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.CRC32;
import java.util.zip.CheckedInputStream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;

/**
 * NumPy's {@code .npz} archive, as {@code np.savez} and {@code np.savez_compressed} write it: a zip of one {@code .npy}
 * file per array, named by its key ({@code x_train.npy}). Keras's {@code mnist.npz} is one. Each array is read as
 * {@link Npy#read(Path)} reads a file, its messages naming the archive and the key as NumPy indexes it
 * ({@code mnist.npz['x_train']}), and its bytes checked against the archive's CRC-32: a corrupted archive is refused,
 * never read as other numbers.
 */
public final class Npz implements AutoCloseable {
    /** The most an entry whose array was refused is read on, to tell a corrupt byte from a wrong header. */
    private static final long MAX_DRAIN = 1L << 32;

    private final Path file;
    private final ZipFile zip;

    private Npz(Path file, ZipFile zip) {
        this.file = file;
        this.zip = zip;
    }

    /** The archive in {@code file}; refused in one line naming it where it is missing or not a zip. */
    public static Npz open(Path file) throws IOException {
        Files2.requireFile(file, "an .npz archive");
        try {
            return new Npz(file, new ZipFile(file.toFile()));
        } catch (java.util.zip.ZipException | java.io.EOFException e) {
            // ZipFile says ZipException for most damage, EOFException for some; either way the file is not an archive.
            // (A file it cannot open says so in its own words, naming the file.)
            throw new DataFormatException(file + ": not an .npz archive (" + what(e) + "); np.savez and np.savez_compressed write one");
        }
    }

    /** Whether the archive may be an .npz: it starts as every zip does. */
    public static boolean looksLikeOne(Path file) {
        try (InputStream in = Files.newInputStream(file)) {
            return in.read() == 'P' && in.read() == 'K';
        } catch (IOException e) {
            return false;
        }
    }

    /** The keys of its arrays, in the archive's order. */
    public List<String> keys() {
        List<String> keys = new ArrayList<>();
        zip.stream().map(ZipEntry::getName).filter(n -> n.endsWith(".npy")).forEach(n -> keys.add(n.substring(0, n.length() - 4)));
        return keys;
    }

    /** Whether it holds an array under {@code key}. */
    public boolean has(String key) { return zip.getEntry(key + ".npy") != null; }

    /** The array under {@code key}. */
    public Npy.Array array(String key) throws IOException {
        return read(key, Npy::read);
    }

    /** The strings of the text array under {@code key} (at most {@code most}). */
    public List<String> strings(String key, int most) throws IOException {
        return read(key, (in, source) -> Npy.strings(in, source, most));
    }

    /** Where messages about the array under {@code key} say it is. */
    public String source(String key) { return file + "['" + key + "']"; }

    private interface Reader<T> {
        T read(InputStream in, String source) throws IOException;
    }

    private <T> T read(String key, Reader<T> reader) throws IOException {
        String source = source(key);
        ZipEntry entry = zip.getEntry(key + ".npy");
        if (entry == null) throw new DataFormatException(source + ": no such array; the archive holds " + keys());
        try (CheckedInputStream in = new CheckedInputStream(zip.getInputStream(entry), new CRC32())) {
            T value;
            try {
                value = reader.read(in, source);
            } catch (DataFormatException e) {
                // A changed byte is best named as what it is: read on to the entry's end and compare checksums.
                drain(in);
                DataFormatException bad = corrupt(entry, in, source);
                throw bad != null ? bad : e;
            }
            // Npy's readers read to the entry's end; bytes changed inside it would otherwise be numbers like any others.
            DataFormatException bad = corrupt(entry, in, source);
            if (bad != null) throw bad;
            return value;
        } catch (DataFormatException e) {
            throw e;
        } catch (IOException e) {
            throw new DataFormatException(source + ": corrupt archive entry (" + what(e) + ")");
        }
    }

    private static String what(IOException e) { return e.getMessage() != null ? e.getMessage() : e.getClass().getSimpleName(); }

    /** Reads {@code in} to its end, or to {@link #MAX_DRAIN} bytes (a bomb), or to the error that stops it. */
    private static void drain(InputStream in) {
        byte[] buffer = new byte[1 << 16];
        try {
            for (long read = 0; read < MAX_DRAIN; ) {
                int n = in.read(buffer);
                if (n < 0) return;
                read += n;
            }
        } catch (IOException e) {
            // The checksum compared next is then of part of the entry: it says the entry is corrupt, which it is.
        }
    }

    /** The refusal for an entry whose bytes read so far do not match the CRC-32 the archive records; null where they do. */
    private static DataFormatException corrupt(ZipEntry entry, CheckedInputStream in, String source) {
        long crc = in.getChecksum().getValue();
        if (entry.getCrc() == -1 || crc == entry.getCrc()) return null;
        return new DataFormatException(source + ": its bytes' CRC-32 is " + Long.toHexString(crc) + ", but the archive records " + Long.toHexString(entry.getCrc())
                + "; the file is corrupt");
    }

    @Override public void close() throws IOException { zip.close(); }
}
