package io.predcode.core.io;

import io.predcode.core.json.Json;
import io.predcode.core.json.JsonFields;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The safetensors format (Hugging Face): an 8-byte little-endian header length, a JSON header naming
 * each tensor's dtype, shape and byte range, then the raw little-endian data. Only F32 is written
 * and read. PyTorch loads it with {@code safetensors.torch.load_file}.
 */
public final class Safetensors {
    private Safetensors() {}

    /** One float32 tensor. */
    public record Entry(int[] shape, float[] data) {}

    /** A file's tensors by name, and its string metadata. */
    public record Contents(Map<String, Entry> tensors, Map<String, String> metadata) {}

    /** Encodes float32 tensors and metadata as safetensors bytes. */
    public static byte[] encode(Map<String, Entry> tensors, Map<String, String> metadata) {
        Map<String, Object> header = new LinkedHashMap<>();
        if (!metadata.isEmpty()) header.put("__metadata__", new LinkedHashMap<String, Object>(metadata));
        long offset = 0;
        for (Map.Entry<String, Entry> e : tensors.entrySet()) {
            Map<String, Object> t = new LinkedHashMap<>();
            t.put("dtype", "F32");
            t.put("shape", e.getValue().shape());
            long end = offset + (long) e.getValue().data().length * Float.BYTES;
            t.put("data_offsets", List.of((double) offset, (double) end));
            header.put(e.getKey(), t);
            offset = end;
        }
        byte[] json = Json.write(header, 0).getBytes(StandardCharsets.UTF_8);
        int pad = (8 - json.length % 8) % 8; // keep the data 8-byte aligned, as the reference writer does
        ByteBuffer bb = ByteBuffer.allocate(8 + json.length + pad + (int) offset).order(ByteOrder.LITTLE_ENDIAN);
        bb.putLong(json.length + pad).put(json);
        for (int i = 0; i < pad; i++) bb.put((byte) ' ');
        for (Entry e : tensors.values()) for (float f : e.data()) bb.putFloat(f);
        return bb.array();
    }

    /** Writes a safetensors file atomically. */
    public static void write(Path file, Map<String, Entry> tensors, Map<String, String> metadata) throws IOException {
        AtomicFiles.write(file, encode(tensors, metadata));
    }

    /** Reads a safetensors file. */
    public static Contents read(Path file) throws IOException {
        byte[] b;
        try {
            b = Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new NoSuchFileException(file.toString(), null, "safetensors file not found");
        } catch (IOException e) {
            // "Is a directory" and the like come without the file's name
            throw new java.nio.file.FileSystemException(file.toString(), null, e.getMessage() != null ? e.getMessage() : e.toString());
        }
        return decode(b, file.toString());
    }

    /**
     * A safetensors file's metadata alone, from its header: what a caller needs of a large checkpoint before its tensors
     * (a resume's recorded settings) without reading them. The header is checked as {@link #read} checks it.
     */
    public static Map<String, String> metadata(Path file) throws IOException {
        try (var channel = java.nio.channels.FileChannel.open(file)) {
            long size = channel.size();
            ByteBuffer length = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            while (length.hasRemaining() && channel.read(length) >= 0) { }
            if (length.hasRemaining()) throw new IllegalArgumentException(file + ": " + size + " bytes is too short for a safetensors file (8-byte header length)");
            long headerLength = length.flip().getLong();
            checkHeaderLength(headerLength, size, file.toString());
            ByteBuffer header = ByteBuffer.allocate((int) headerLength);
            while (header.hasRemaining() && channel.read(header) >= 0) { }
            return header(header.array(), 0, (int) headerLength, file.toString()).metadata;
        } catch (NoSuchFileException e) {
            throw new NoSuchFileException(file.toString(), null, "safetensors file not found");
        } catch (IOException e) { // "Is a directory" and the like come without the file's name
            throw new java.nio.file.FileSystemException(file.toString(), null, e.getMessage() != null ? e.getMessage() : e.toString());
        }
    }

    /** The most header bytes a file may declare, as the reference implementation allows: a hostile length is refused before it is read. */
    static final long MAX_HEADER_BYTES = 100_000_000;

    /** The header length a file of {@code size} bytes declares: inside the file, and at most {@link #MAX_HEADER_BYTES}. */
    private static void checkHeaderLength(long headerLength, long size, String source) {
        if (headerLength < 2 || headerLength > size - 8)
            throw new IllegalArgumentException(source + ": field 'header length' is " + headerLength + ", but the file has " + (size - 8) + " bytes after it (truncated or not safetensors)");
        if (headerLength > MAX_HEADER_BYTES)
            throw new IllegalArgumentException(source + ": field 'header length' is " + headerLength + ", more than the " + MAX_HEADER_BYTES + " bytes safetensors allows");
    }

    /** A parsed header: its JSON, and the metadata from it. */
    private record Header(JsonFields json, Map<String, String> metadata) {}

    /** The header's {@code length} bytes from {@code offset} in {@code b}, as UTF-8 JSON; {@code source} names it in errors. */
    private static Header header(byte[] b, int offset, int length, String source) {
        String json;
        try {
            json = StandardCharsets.UTF_8.newDecoder().onMalformedInput(java.nio.charset.CodingErrorAction.REPORT)
                    .onUnmappableCharacter(java.nio.charset.CodingErrorAction.REPORT).decode(ByteBuffer.wrap(b, offset, length)).toString();
        } catch (java.nio.charset.CharacterCodingException e) {
            throw new IllegalArgumentException(source + ": the header is not valid UTF-8");
        }
        JsonFields header = JsonFields.of(Json.parse(json, source + " (header)"), source, "");
        Map<String, String> metadata = new LinkedHashMap<>();
        if (header.has("__metadata__")) header.object("__metadata__").map().forEach((k, v) -> metadata.put(k, String.valueOf(v)));
        return new Header(header, metadata);
    }

    /** Decodes a safetensors file's bytes; {@code source} names it in errors. */
    public static Contents decode(byte[] b, String source) {
        if (b.length < 8) throw new IllegalArgumentException(source + ": " + b.length + " bytes is too short for a safetensors file (8-byte header length)");
        ByteBuffer bb = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        long headerLength = bb.getLong();
        checkHeaderLength(headerLength, b.length, source);
        Header parsed = header(b, 8, (int) headerLength, source);
        JsonFields header = parsed.json();
        long dataStart = 8 + headerLength, dataLength = b.length - dataStart;
        Map<String, Entry> tensors = new LinkedHashMap<>();
        java.util.TreeMap<Long, String> starts = new java.util.TreeMap<>(); // data ranges, to check they tile the data exactly
        for (String name : header.map().keySet()) {
            if (name.equals("__metadata__")) continue;
            JsonFields t = header.object(name);
            if (!t.string("dtype").equals("F32"))
                throw new IllegalArgumentException(source + ": field '" + name + ".dtype' is " + t.string("dtype") + "; predcode reads F32 only");
            List<Object> shapeList = t.list("shape");
            int[] shape = shapeList.isEmpty() ? new int[0] : t.ints("shape", shapeList.size(), 0);
            long count = 1;
            try {
                for (int d : shape) count = Math.multiplyExact(count, d);
                Math.multiplyExact(count, Float.BYTES);
            } catch (ArithmeticException e) {
                throw new IllegalArgumentException(source + ": field '" + name + ".shape' " + java.util.Arrays.toString(shape) + " has more elements than a long counts");
            }
            if (count > Integer.MAX_VALUE - 8) throw new IllegalArgumentException(source + ": field '" + name + ".shape' " + java.util.Arrays.toString(shape) + " has more elements than one array holds");
            int[] offsets = t.ints("data_offsets", 2, 0);
            if (offsets[1] < offsets[0] || offsets[1] > dataLength || offsets[1] - offsets[0] != count * Float.BYTES)
                throw new IllegalArgumentException(source + ": field '" + name + ".data_offsets' [" + offsets[0] + ", " + offsets[1] + "] does not hold "
                        + count + " floats inside the " + dataLength + " data bytes (truncated?)");
            float[] data = new float[(int) count];
            ByteBuffer d = ByteBuffer.wrap(b, (int) (dataStart + offsets[0]), offsets[1] - offsets[0]).order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < data.length; i++) data[i] = d.getFloat();
            tensors.put(name, new Entry(shape, data));
            if (offsets[1] > offsets[0]) {
                String before = starts.put((long) offsets[0], name);
                if (before != null)
                    throw new IllegalArgumentException(source + ": fields '" + before + ".data_offsets' and '" + name + ".data_offsets' both start at " + offsets[0] + " (they overlap)");
            }
        }
        // The tensors' bytes tile the data: no overlap, no gap, nothing after the last.
        long at = 0;
        for (var e : starts.entrySet()) {
            JsonFields t = header.object(e.getValue());
            int[] offsets = t.ints("data_offsets", 2, 0);
            if (e.getKey() != at)
                throw new IllegalArgumentException(source + ": field '" + e.getValue() + ".data_offsets' starts at " + e.getKey() + ", expected " + at
                        + (e.getKey() < at ? " (it overlaps the tensor before)" : " (a gap before it)"));
            at = offsets[1];
        }
        if (at != dataLength) throw new IllegalArgumentException(source + ": " + (dataLength - at) + " bytes after the last tensor's data (the tensors cover " + at + " of " + dataLength + ")");
        return new Contents(tensors, parsed.metadata());
    }

    /** Names to float arrays, for Model.loadParameters. */
    public static Map<String, float[]> values(Map<String, Entry> tensors, String prefix) {
        Map<String, float[]> out = new LinkedHashMap<>();
        tensors.forEach((k, v) -> { if (k.startsWith(prefix)) out.put(k.substring(prefix.length()), v.data()); });
        return out;
    }
}
