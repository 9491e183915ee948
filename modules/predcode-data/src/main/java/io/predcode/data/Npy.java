package io.predcode.data;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * NumPy's {@code .npy} format (what {@code np.save} writes; gzip or raw): the magic {@code \x93NUMPY}, a version
 * (1, 2 or 3), the header's length (2 bytes in version 1, 4 after), the header (a Python dict literal with
 * {@code descr}, {@code fortran_order} and {@code shape}), then the array in C order. Read as floats: float32,
 * float64 and integers of 1 to 8 bytes, little-endian. Everything is validated against the length, as IDX is.
 */
public final class Npy {
    private Npy() {}

    /**
     * An array read as floats.
     *
     * @param source where it was read: the file, or an archive and the array's key in it ({@code data.npz['x_train']});
     *               every message about the array starts with it
     * @param shape  its shape, as the header gives it
     * @param dtype  its element type as the file names it ({@code <f4}, {@code |u1}, ...)
     * @param values its elements in C order, as floats
     */
    public record Array(String source, int[] shape, String dtype, float[] values) {}

    /** The element types read, by the type code after the byte order, with their sizes. */
    private static final Map<String, Integer> TYPES = Map.of("f4", 4, "f8", 8, "u1", 1, "i1", 1, "u2", 2, "i2", 2, "u4", 4, "i4", 4, "u8", 8, "i8", 8);
    /** NumPy pads headers to 64 bytes; a header past this is not one np.save wrote. */
    static final int MAX_HEADER = 1 << 16;
    /** The longest string of a text array read (class names): NumPy's {@code <U} counts characters, 4 bytes each. */
    static final int MAX_TEXT = 1 << 10;

    /** The array in {@code file} (.gz or not). */
    public static Array read(Path file) throws IOException {
        try (InputStream in = Files2.open(file)) {
            return read(in, file.toString());
        }
    }

    /** The array {@code in} holds, to its end; messages start with {@code source}. */
    static Array read(InputStream in, String source) throws IOException {
        Header h = header(in, source);
        Integer size = TYPES.get(h.type);
        if (size == null || !(h.order == '<' || h.order == '|' && size == 1))
            throw new DataFormatException(source + ": field 'descr' is '" + h.descr + "', expected little-endian float32, float64 or an integer type ('<f4', '<f8', '|u1', '<i8', ...)"
                    + (h.order == '>' ? "; convert it with a.astype(a.dtype.newbyteorder('<'))" : ""));
        long n = h.count(source, 4);
        float[] values = new float[(int) n];
        ByteBuffer chunk = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
        int at = 0;
        while (at < n) {
            int want = (int) Math.min(chunk.capacity() / size, n - at) * size;
            fill(in, chunk, want, source, h, (long) at * size, n * size);
            for (int i = 0; i < want / size; i++) values[at++] = element(chunk, h.type);
        }
        end(in, source, h, n * size);
        return new Array(source, h.shape, h.descr, values);
    }

    /**
     * The strings of a one-dimensional text array ({@code np.array(['cat', 'dog'])}, NumPy's {@code <Un}: n UTF-32
     * characters each, padded with zeros) that {@code in} holds, to its end: at most {@code most} of them.
     */
    static List<String> strings(InputStream in, String source, int most) throws IOException {
        Header h = header(in, source);
        int chars = h.type.startsWith("U") && h.order == '<' ? parseOr(h.type.substring(1), -1) : -1;
        if (chars < 1 || chars > MAX_TEXT)
            throw new DataFormatException(source + ": field 'descr' is '" + h.descr + "', expected text such as '<U12' (np.array of str, at most " + MAX_TEXT + " characters)");
        if (h.shape.length != 1) throw new DataFormatException(source + ": field 'shape' " + Arrays.toString(h.shape) + ", expected one dimension of names");
        long n = h.count(source, 4L * chars);
        if (n > most) throw new DataFormatException(source + ": field 'shape' " + Arrays.toString(h.shape) + " declares " + n + " strings, expected at most " + most);
        List<String> out = new ArrayList<>();
        ByteBuffer one = ByteBuffer.allocate(4 * chars).order(ByteOrder.LITTLE_ENDIAN);
        for (long i = 0; i < n; i++) {
            fill(in, one, one.capacity(), source, h, i * one.capacity(), n * one.capacity());
            StringBuilder b = new StringBuilder();
            for (int c = 0; c < chars; c++) {
                int cp = one.getInt();
                if (cp == 0) break;
                if (!Character.isValidCodePoint(cp)) throw new DataFormatException(source + ": string " + i + " holds " + cp + ", not a Unicode character");
                b.appendCodePoint(cp);
            }
            out.add(b.toString());
        }
        end(in, source, h, n * one.capacity());
        return out;
    }

    private static int parseOr(String s, int otherwise) {
        try {
            return Integer.parseInt(s);
        } catch (NumberFormatException e) {
            return otherwise;
        }
    }

    /** Reads {@code want} bytes into {@code b}, ready to get, or says how far short of {@code total} the data stopped. */
    private static void fill(InputStream in, ByteBuffer b, int want, String source, Header h, long done, long total) throws IOException {
        int got = in.readNBytes(b.array(), 0, want);
        if (got < want) throw new DataFormatException(source + ": truncated: field 'shape' " + Arrays.toString(h.shape) + " needs " + total + " bytes of data, found " + (done + got));
        b.clear().limit(want);
    }

    private static void end(InputStream in, String source, Header h, long total) throws IOException {
        if (in.read() != -1) throw new DataFormatException(source + ": bytes after the " + total + " that field 'shape' " + Arrays.toString(h.shape) + " declares");
    }

    /** The parts of a header read so far: the element type split into its byte order and code, and the shape. */
    private record Header(String descr, char order, String type, int[] shape) {
        /** The number of elements, refused where they would not fit this JVM at {@code held} bytes each once read. */
        long count(String source, long held) throws DataFormatException {
            long n = 1;
            try {
                for (int d : shape) n = Math.multiplyExact(n, d);
            } catch (ArithmeticException e) {
                throw new DataFormatException(source + ": field 'shape' " + Arrays.toString(shape) + " multiplies past 2^63");
            }
            long room = Runtime.getRuntime().maxMemory() / 2;
            if (n > Integer.MAX_VALUE - 16 || n > room / held)
                throw new DataFormatException(source + ": field 'shape' " + Arrays.toString(shape) + " declares " + n + " values, more than this JVM can hold (" + room / held + " at most)");
            return n;
        }
    }

    private static Header header(InputStream in, String source) throws IOException {
        byte[] start = in.readNBytes(8);
        if (start.length < 8 || (start[0] & 0xff) != 0x93 || !new String(start, 1, 5, StandardCharsets.ISO_8859_1).equals("NUMPY"))
            throw new DataFormatException(source + ": not a .npy file (it does not start with \\x93NUMPY)");
        int major = start[6];
        if (major < 1 || major > 3) throw new DataFormatException(source + ": field 'version' is " + major + "." + start[7] + ", expected 1.0, 2.0 or 3.0");
        byte[] len = in.readNBytes(major == 1 ? 2 : 4);
        if (len.length < (major == 1 ? 2 : 4)) throw new DataFormatException(source + ": truncated in the header's length");
        long headerLength = major == 1 ? ByteBuffer.wrap(len).order(ByteOrder.LITTLE_ENDIAN).getShort() & 0xffff
                : ByteBuffer.wrap(len).order(ByteOrder.LITTLE_ENDIAN).getInt() & 0xffff_ffffL;
        if (headerLength > MAX_HEADER) throw new DataFormatException(source + ": field 'header length' is " + headerLength + ", expected at most " + MAX_HEADER);
        byte[] header = in.readNBytes((int) headerLength);
        if (header.length < headerLength) throw new DataFormatException(source + ": truncated in the header (" + header.length + " of " + headerLength + " bytes)");
        Map<String, String> fields = new HeaderParser(source, new String(header, major == 3 ? StandardCharsets.UTF_8 : StandardCharsets.ISO_8859_1)).dict();
        for (String key : new String[]{"descr", "fortran_order", "shape"})
            if (!fields.containsKey(key)) throw new DataFormatException(source + ": the header has no '" + key + "'");
        String descr = fields.get("descr");
        if (!descr.startsWith("'") || descr.length() < 4) throw new DataFormatException(source + ": field 'descr' is " + descr + ", expected a type such as '<f4'");
        descr = descr.substring(1, descr.length() - 1);
        switch (fields.get("fortran_order")) {
            case "False" -> { }
            case "True" -> throw new DataFormatException(source + ": field 'fortran_order' is True; save np.ascontiguousarray(a) instead");
            default -> throw new DataFormatException(source + ": field 'fortran_order' is " + fields.get("fortran_order") + ", expected False");
        }
        return new Header(descr, descr.charAt(0), descr.substring(1), shape(source, fields.get("shape")));
    }

    private static float element(ByteBuffer b, String type) {
        return switch (type) {
            case "f4" -> b.getFloat();
            case "f8" -> (float) b.getDouble();
            case "u1" -> b.get() & 0xff;
            case "i1" -> b.get();
            case "u2" -> b.getShort() & 0xffff;
            case "i2" -> b.getShort();
            case "u4" -> b.getInt() & 0xffff_ffffL;
            case "i4" -> b.getInt();
            case "u8" -> { long v = b.getLong(); yield v >= 0 ? v : (float) (v >>> 1) * 2f; }
            default -> b.getLong(); // i8
        };
    }

    private static int[] shape(String file, String tuple) throws DataFormatException {
        if (!tuple.startsWith("(") || !tuple.endsWith(")"))
            throw new DataFormatException(file + ": field 'shape' is " + tuple + ", expected a tuple of sizes such as (60000, 28, 28)");
        String inner = tuple.substring(1, tuple.length() - 1).strip();
        if (inner.endsWith(",")) inner = inner.substring(0, inner.length() - 1);
        if (inner.isBlank()) throw new DataFormatException(file + ": field 'shape' is (), a scalar; expected an array of samples");
        String[] parts = inner.split(",", -1);
        int[] shape = new int[parts.length];
        for (int i = 0; i < parts.length; i++) {
            String p = parts[i].strip();
            try {
                shape[i] = Integer.parseInt(p);
            } catch (NumberFormatException e) {
                throw new DataFormatException(file + ": field 'shape' has '" + p + "' at dimension " + i + ", expected a size below 2^31");
            }
            if (shape[i] < 1) throw new DataFormatException(file + ": field 'shape' has " + shape[i] + " at dimension " + i + ", expected >= 1");
        }
        return shape;
    }

    /**
     * The header's dict literal, as np.save writes it: {@code {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }},
     * then spaces and a newline. Values are kept as their text: a quoted string, True or False, or a tuple.
     */
    private static final class HeaderParser {
        private final String file;
        private final String s;
        private int i;

        HeaderParser(String file, String s) { this.file = file; this.s = s; }

        Map<String, String> dict() throws DataFormatException {
            Map<String, String> fields = new HashMap<>();
            skipSpace();
            expect('{');
            while (true) {
                skipSpace();
                if (peek() == '}') { i++; break; }
                String quotedKey = quoted(), key = quotedKey.substring(1, quotedKey.length() - 1);
                if (fields.containsKey(key)) throw bad("the key " + quotedKey + " is given twice");
                if (!(key.equals("descr") || key.equals("fortran_order") || key.equals("shape")))
                    throw bad("the key '" + key + "' is not one of descr, fortran_order, shape");
                skipSpace();
                expect(':');
                skipSpace();
                fields.put(key, value());
                skipSpace();
                if (peek() == ',') i++;
                else if (peek() != '}') throw bad("expected ',' or '}' at character " + i);
            }
            if (!s.substring(i).isBlank()) throw bad("characters after the dict's '}'");
            return fields;
        }

        private String value() throws DataFormatException {
            char c = peek();
            if (c == '\'' || c == '"') return quoted();
            if (c == '(') {
                int end = s.indexOf(')', i);
                if (end < 0) throw bad("a tuple without ')'");
                String t = s.substring(i, end + 1);
                i = end + 1;
                return t;
            }
            int start = i;
            while (i < s.length() && Character.isLetter(s.charAt(i))) i++;
            if (start == i) throw bad("expected a value at character " + start);
            return s.substring(start, i);
        }

        private String quoted() throws DataFormatException {
            char q = peek();
            if (q != '\'' && q != '"') throw bad("expected a quoted key at character " + i);
            int end = s.indexOf(q, i + 1);
            if (end < 0) throw bad("a string without its closing quote");
            String t = "'" + s.substring(i + 1, end) + "'";
            i = end + 1;
            return t;
        }

        private char peek() throws DataFormatException {
            if (i >= s.length()) throw bad("it ends inside the dict");
            return s.charAt(i);
        }

        private void expect(char c) throws DataFormatException {
            if (peek() != c) throw bad("expected '" + c + "' at character " + i);
            i++;
        }

        private void skipSpace() { while (i < s.length() && Character.isWhitespace(s.charAt(i))) i++; }

        private DataFormatException bad(String what) { return new DataFormatException(file + ": the header is not a dict np.save writes: " + what); }
    }

    /** A float32 .npy file of {@code values} in {@code shape}, as np.save writes one. */
    public static byte[] encode(int[] shape, float[] values) {
        ByteBuffer b = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : values) b.putFloat(v);
        return encode("<f4", shape, b.array());
    }

    /**
     * A .npy file of version 1.0 holding {@code data} (already in {@code descr}'s layout): for tests, and for writing
     * small data sets from Java.
     */
    public static byte[] encode(String descr, int[] shape, byte[] data) {
        StringBuilder dims = new StringBuilder();
        for (int d : shape) dims.append(d).append(", ");
        String dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + (shape.length == 1 ? dims.toString().strip() : dims.substring(0, Math.max(0, dims.length() - 2))) + "), }";
        int total = 10 + dict.length() + 1;
        int pad = (64 - total % 64) % 64;
        String header = dict + " ".repeat(pad) + "\n";
        ByteBuffer b = ByteBuffer.allocate(10 + header.length() + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.put((byte) 0x93).put("NUMPY".getBytes(StandardCharsets.ISO_8859_1)).put((byte) 1).put((byte) 0).putShort((short) header.length());
        b.put(header.getBytes(StandardCharsets.ISO_8859_1)).put(data);
        return b.array();
    }
}
