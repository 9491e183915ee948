package io.predcode.core;

import io.predcode.core.io.AtomicFiles;
import io.predcode.core.io.Safetensors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** safetensors files are read strictly: the tensors' bytes tile the data, the header is UTF-8, shapes are counted without overflow. */
class SafetensorsStrictTest {
    private static byte[] file(String header, int dataBytes) {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h);
        return b.array();
    }

    private static String error(String header, int dataBytes) {
        return assertThrows(IllegalArgumentException.class, () -> Safetensors.decode(file(header, dataBytes), "t.safetensors")).getMessage();
    }

    @Test void overlapsGapsAndTrailingBytesAreRefused() {
        String two = "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [%d, %d]}}";
        assertNotNull(Safetensors.decode(file(String.format(two, 8, 16), 16), "ok"));
        String overlap = error(String.format(two, 4, 12), 16);
        assertTrue(overlap.contains("t.safetensors") && overlap.contains("'b.data_offsets' starts at 4, expected 8 (it overlaps"), overlap);
        String gap = error(String.format(two, 12, 20), 20);
        assertTrue(gap.contains("a gap before it"), gap);
        String trailing = error(String.format(two, 8, 16), 20);
        assertTrue(trailing.contains("4 bytes after the last tensor's data"), trailing);
        // Found by the fuzz campaign: two tensors starting at the same byte were taken for one.
        String same = error("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, \"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 8);
        assertTrue(same.contains("both start at 0 (they overlap)"), same);
    }

    /** The header alone (a resume's recorded settings, read before the tensors): the same metadata, checked as a whole read checks it. */
    @Test void theMetadataAloneIsReadFromTheHeader(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("m.safetensors");
        Map<String, Safetensors.Entry> tensors = Map.of("w", new Safetensors.Entry(new int[]{2, 3}, new float[6]));
        Safetensors.write(f, tensors, Map.of("training", "{\"settings\": {}}", "format", "pt"));
        assertEquals(Safetensors.read(f).metadata(), Safetensors.metadata(f));
        Files.write(f, file("{\"__metadata__\": {\"k\": \"v\"}, \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4));
        assertEquals(Map.of("k", "v"), Safetensors.metadata(f));
        // A header length past the file's end, a file too short for one, a header that is not UTF-8 JSON: one line naming the file.
        byte[] lying = file("{}", 0);
        lying[0] = 100;
        Files.write(f, lying);
        String m = assertThrows(IllegalArgumentException.class, () -> Safetensors.metadata(f)).getMessage();
        assertTrue(m.startsWith(f + ": field 'header length' is 100, but the file has 2 bytes after it"), m);
        Files.write(f, new byte[]{1, 2, 3});
        m = assertThrows(IllegalArgumentException.class, () -> Safetensors.metadata(f)).getMessage();
        assertTrue(m.contains("3 bytes is too short"), m);
        Files.write(f, file("{not json", 0));
        m = assertThrows(IllegalArgumentException.class, () -> Safetensors.metadata(f)).getMessage();
        assertTrue(m.startsWith(f + " (header)"), m);
        assertThrows(java.nio.file.NoSuchFileException.class, () -> Safetensors.metadata(dir.resolve("none.safetensors")));
        // A header longer than safetensors allows (100 MB) is refused by its declared length, before any of it is read.
        try (var big = java.nio.channels.FileChannel.open(f, java.nio.file.StandardOpenOption.WRITE, java.nio.file.StandardOpenOption.TRUNCATE_EXISTING)) {
            big.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, 200_000_000L), 0);
            big.write(ByteBuffer.wrap(new byte[]{'{'}), 200_000_007L); // a sparse file of 200 MB
        }
        m = assertThrows(IllegalArgumentException.class, () -> Safetensors.metadata(f)).getMessage();
        assertEquals(f + ": field 'header length' is 200000000, more than the 100000000 bytes safetensors allows", m);
    }

    @Test void anInvalidUtf8HeaderIsRefused() {
        byte[] f = file("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4);
        f[10] = (byte) 0xC3; // a lead byte followed by ASCII: malformed
        String m = assertThrows(IllegalArgumentException.class, () -> Safetensors.decode(f, "t.safetensors")).getMessage();
        assertTrue(m.contains("not valid UTF-8"), m);
    }

    @Test void aShapeWhoseElementCountOverflowsIsRefused() {
        String m = error("{\"a\": {\"dtype\": \"F32\", \"shape\": [2147483647, 2147483647, 2147483647], \"data_offsets\": [0, 4]}}", 4);
        assertTrue(m.contains("'a.shape'") && m.contains("more elements than a long counts"), m);
    }

    /** Nothing bad is ever saved: a checkpoint of non-finite parameters is refused before any file is written. */
    @Test void aCheckpointOfNonFiniteParametersIsRefused(@TempDir Path dir) throws Exception {
        try (io.predcode.spi.Backend be = io.predcode.spi.Backends.open("cpu"); io.predcode.core.nn.Model m = io.predcode.core.nn.Model.create(ServingTest.MLP, be, 1)) {
            Map<String, float[]> values = new LinkedHashMap<>(m.parameterValues());
            float[] w = values.get("1.0.bias").clone();
            w[0] = Float.POSITIVE_INFINITY;
            values.put("1.0.bias", w);
            m.loadParameters(values, "test");
            io.predcode.core.io.Checkpoint.NotFiniteException e = assertThrows(io.predcode.core.io.Checkpoint.NotFiniteException.class,
                    () -> io.predcode.core.io.Checkpoint.save(dir.resolve("run"), m, null, Map.of()));
            assertEquals("1.0.bias", e.parameter());
            assertFalse(Files.exists(dir.resolve("run").resolve(io.predcode.core.io.Checkpoint.RESUME_FILE)));
        }
    }

    /** A folder that takes no new files (Linux's /proc, even for root): the error names the file asked for, not the temporary one. */
    @Test void aFolderThatTakesNoFilesIsNamedWithTheTarget() {
        org.junit.jupiter.api.Assumptions.assumeTrue(Files.isDirectory(Path.of("/proc/self")), "no /proc: not Linux");
        Path target = Path.of("/proc/predcode-test.csv");
        java.io.IOException e = assertThrows(java.io.IOException.class, () -> AtomicFiles.writeString(target, "x"));
        assertTrue(e.getMessage().startsWith(target + ": cannot be written in /proc") || e.getMessage().startsWith(target + ": folder is not writable")
                || e.getMessage().startsWith("/proc: folder is not writable"), e.getMessage());
        assertFalse(Files.exists(target));
    }

    /** A folder is never replaced by a file: an empty one the rename would have replaced, a full one it failed on naming the temporary file. */
    @Test void aFolderIsNotAFileToWrite(@TempDir Path dir) throws Exception {
        Path empty = Files.createDirectories(dir.resolve("empty")), full = Files.createDirectories(dir.resolve("full"));
        Files.writeString(full.resolve("kept.txt"), "kept");
        for (Path folder : new Path[]{empty, full}) {
            java.io.IOException e = assertThrows(java.io.IOException.class, () -> AtomicFiles.writeString(folder, "x"));
            assertEquals(folder.toAbsolutePath() + ": is a folder, not a file to write", e.getMessage());
            assertTrue(Files.isDirectory(folder));
        }
        assertEquals("kept", Files.readString(full.resolve("kept.txt")));
        try (var left = Files.list(dir)) {
            assertEquals(2, left.count(), "no temporary file left beside them");
        }
    }

    @Test void staleTemporaryFilesAreRemoved(@TempDir Path dir) throws Exception {
        AtomicFiles.writeString(dir.resolve("metrics.json"), "{}");
        Files.writeString(dir.resolve(".metrics.json.123.tmp"), "partial");
        Files.writeString(dir.resolve("keep.tmp"), "not ours");
        assertEquals(1, AtomicFiles.removeStale(dir));
        assertTrue(Files.exists(dir.resolve("metrics.json")) && Files.exists(dir.resolve("keep.tmp")));
        Map<String, Safetensors.Entry> t = new LinkedHashMap<>();
        t.put("w", new Safetensors.Entry(new int[]{2, 3}, new float[6]));
        Safetensors.write(dir.resolve("m.safetensors"), t, Map.of());
        assertArrayEquals(new int[]{2, 3}, Safetensors.read(dir.resolve("m.safetensors")).tensors().get("w").shape(), "our own files still read");
    }
}
