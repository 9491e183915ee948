package io.predcode.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.zip.GZIPOutputStream;

import static org.junit.jupiter.api.Assertions.*;

/** Hostile data files are refused with one clear message, before memory is committed to them. */
class HostileDataTest {
    private static byte[] header(int... dims) {
        ByteBuffer b = ByteBuffer.allocate(4 + 4 * dims.length);
        b.putInt(0x0800 | dims.length);
        for (int d : dims) b.putInt(d);
        return b.array();
    }

    @Test void dimensionsWhoseProductOverflowsAreRefused(@TempDir Path tmp) throws IOException {
        // 2^31-1 cubed wraps a long; the old length check could be fooled by the wrapped product.
        Path f = tmp.resolve("overflow-idx3-ubyte");
        Files.write(f, header(Integer.MAX_VALUE, Integer.MAX_VALUE, Integer.MAX_VALUE));
        DataFormatException e = assertThrows(DataFormatException.class, () -> Idx.readImages(f));
        assertTrue(e.getMessage().contains(f.toString()) && e.getMessage().contains("multiply past 2^63"), e.getMessage());
    }

    @Test void aHeaderDeclaringMoreThanMemoryIsRefusedBeforeReading(@TempDir Path tmp) throws IOException {
        Path f = tmp.resolve("huge-idx3-ubyte");
        Files.write(f, header(1_000_000, 1000, 1000));
        DataFormatException e = assertThrows(DataFormatException.class, () -> Idx.readImages(f));
        assertTrue(e.getMessage().contains("more than this JVM can hold"), e.getMessage());
    }

    /** A gzip bomb: a small file whose stream expands far past what its header declares. Only the declared bytes are read. */
    @Test void aGzipBombIsReadOnlyUpToWhatTheHeaderDeclares(@TempDir Path tmp) throws IOException {
        ByteArrayOutputStream raw = new ByteArrayOutputStream();
        try (GZIPOutputStream gz = new GZIPOutputStream(raw)) {
            gz.write(header(2, 2, 2));
            byte[] zeros = new byte[1 << 20];
            for (int i = 0; i < 512; i++) gz.write(zeros); // 512 MiB of zeros after an 8-pixel image set
        }
        Path f = tmp.resolve("bomb-idx3-ubyte.gz");
        Files.write(f, raw.toByteArray());
        assertTrue(Files.size(f) < 2 << 20, "the bomb is small on disk: " + Files.size(f));
        DataFormatException e = assertThrows(DataFormatException.class, () -> Idx.readImages(f));
        assertTrue(e.getMessage().contains("bytes after the 8 the header's [2, 2, 2] declares"), e.getMessage());
    }

    @Test void trailingBytesAfterTheDeclaredDataAreRefused(@TempDir Path tmp) throws IOException {
        Path f = tmp.resolve("trailing-idx1-ubyte");
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        b.write(header(3));
        b.write(new byte[]{1, 2, 3, 4});
        Files.write(f, b.toByteArray());
        DataFormatException e = assertThrows(DataFormatException.class, () -> Idx.readLabels(f));
        assertTrue(e.getMessage().contains(f.toString()) && e.getMessage().contains("bytes after the 3"), e.getMessage());
    }

    @Test void aCifarFileLargerThanAnyRealBatchIsRefused(@TempDir Path tmp) throws IOException {
        ByteArrayOutputStream raw = new ByteArrayOutputStream();
        try (GZIPOutputStream gz = new GZIPOutputStream(raw)) {
            byte[] zeros = new byte[1 << 20];
            for (int i = 0; i < 320; i++) gz.write(zeros); // 320 MiB: more than 100,000 records
        }
        Path f = tmp.resolve("data_batch_1.bin");
        Files.write(f, raw.toByteArray());
        DataFormatException e = assertThrows(DataFormatException.class, () -> Cifar10.read("cifar", f));
        assertTrue(e.getMessage().contains(f.toString()) && e.getMessage().contains("once decompressed; refused"), e.getMessage());
    }
}
