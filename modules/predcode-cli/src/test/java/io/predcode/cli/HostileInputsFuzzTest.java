package io.predcode.cli;

import io.predcode.core.io.Safetensors;
import io.predcode.core.nn.ModelSpec;
import io.predcode.data.Cifar10;
import io.predcode.data.Idx;
import io.predcode.data.Npy;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.Callable;
import java.util.zip.GZIPOutputStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * A seeded fuzz campaign against everything predcode reads: IDX, CIFAR-10, .npy, .npz and CSV data files, safetensors
 * checkpoints, model specs and command-line options. Each input is either accepted or refused with
 * one line that names the file (or option); anything else (a stack trace, an exception of another
 * kind, an out-of-memory error, a deep recursion) fails the test, with the seed and case to replay.
 * The generators start from valid inputs and mutate them toward the readers' limits, so removing a
 * reader's check turns some case into a crash. -Dpredcode.fuzz.cases=N scales the campaign (default
 * 150 inputs per reader, a quarter of that through the whole CLI).
 */
class HostileInputsFuzzTest {
    static final long SEED = Long.getLong("predcode.fuzz.seed", 20261130L);
    static final int CASES = Integer.getInteger("predcode.fuzz.cases", 150);

    /** Values that break naive arithmetic, for sizes, counts and options. */
    static final long[] EDGES = {0, 1, 2, 3, 7, 255, 256, 65_535, 1 << 20, Integer.MAX_VALUE, 1L + Integer.MAX_VALUE, 0xFFFF_FFFFL, -1, -7, Integer.MIN_VALUE};

    @TempDir static Path tmp;
    static io.predcode.spi.Backend cpu;
    static final List<String> outcomes = new ArrayList<>();

    @AfterAll static void report() {
        if (cpu != null) cpu.close();
        long accepted = outcomes.stream().filter(o -> o.startsWith("accepted")).count();
        System.out.println("fuzz: " + outcomes.size() + " inputs (seed " + SEED + "), " + accepted + " accepted, " + (outcomes.size() - accepted) + " refused with one line");
    }

    /** Runs a reader on a hostile input: it returns, or throws IOException / IllegalArgumentException with one line naming {@code name}. */
    static void expectCleanOutcome(String what, String name, Callable<?> reader) {
        try {
            reader.call();
            outcomes.add("accepted " + what);
        } catch (IOException | IllegalArgumentException e) {
            String m = Main.message(e);
            if (m.contains("\n") || !m.contains(name)) fail(what + ": refused, but the message is not one line naming " + name + ": " + m, e);
            outcomes.add("refused " + what);
        } catch (Throwable t) {
            fail(what + ": crashed with " + t, t);
        }
    }

    static long edge(Random r) { return EDGES[r.nextInt(EDGES.length)]; }

    /** An oracle on an accepted input: silently accepting bad data is a failure too. */
    static void check(boolean ok, String what) { if (!ok) throw new AssertionError(what); }

    static byte[] gzip(byte[] b) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (GZIPOutputStream gz = new GZIPOutputStream(out)) { gz.write(b); }
        return out.toByteArray();
    }

    /** Common byte-level mutations: flip bytes, truncate, append, overwrite a 4-byte field with an edge value, gzip. */
    static byte[] mutate(Random r, byte[] valid, int headerBytes) throws IOException {
        byte[] b = valid.clone();
        switch (r.nextInt(6)) {
            case 0 -> { for (int i = 0; i < 1 + r.nextInt(4); i++) b[r.nextInt(b.length)] ^= (byte) (1 << r.nextInt(8)); }
            case 1 -> b = java.util.Arrays.copyOf(b, r.nextInt(b.length));
            case 2 -> b = java.util.Arrays.copyOf(b, b.length + 1 + r.nextInt(64));
            case 3, 4 -> {
                int at = 4 * r.nextInt(Math.max(1, headerBytes / 4));
                if (at + 4 <= b.length) ByteBuffer.wrap(b).putInt(at, (int) edge(r));
            }
            default -> { }
        }
        return r.nextInt(4) == 0 ? gzip(b) : b;
    }

    // ---------------------------------------------------------------- IDX and CIFAR-10

    @Test void idxFiles() throws Exception {
        Random r = new Random(SEED);
        for (int c = 0; c < CASES; c++) {
            int n = 1 + r.nextInt(4), h = 1 + r.nextInt(5), w = 1 + r.nextInt(5);
            boolean images = r.nextBoolean();
            int[] dims = images ? new int[]{n, h, w} : new int[]{n};
            byte[] valid = Idx.encode(dims, new byte[images ? n * h * w : n]);
            byte[] bytes = mutate(r, valid, 4 + 4 * dims.length);
            if (r.nextInt(10) == 0) bytes = bomb(dims, r.nextInt(8) + 1); // declares little, expands to megabytes
            String name = "case" + c + (images ? "-idx3-ubyte" : "-idx1-ubyte") + (bytes.length > 1 && bytes[0] == 0x1f && bytes[1] == (byte) 0x8b ? ".gz" : "");
            Path f = tmp.resolve(name);
            Files.write(f, bytes);
            boolean gz = name.endsWith(".gz");
            long length = bytes.length;
            // What is accepted must be exactly what the file holds: every value the header declares, no fewer, nothing after.
            expectCleanOutcome("IDX case " + c, name, images ? () -> {
                Idx.Images im = Idx.readImages(f);
                long declared = (long) im.count() * im.rows() * im.cols();
                check(im.pixels().length == declared && (gz || length == 16 + declared),
                        "accepted " + im.count() + "x" + im.rows() + "x" + im.cols() + " images, " + im.pixels().length + " pixels, from " + length + " bytes");
                return im;
            } : () -> {
                float[] y = Idx.readLabels(f);
                check(gz || length == 8 + y.length, "accepted " + y.length + " labels from " + length + " bytes");
                return y;
            });
        }
    }

    static byte[] bomb(int[] dims, int megabytes) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (GZIPOutputStream gz = new GZIPOutputStream(out)) {
            gz.write(Idx.encode(dims, new byte[0]));
            byte[] zeros = new byte[1 << 20];
            for (int i = 0; i < megabytes; i++) gz.write(zeros);
        }
        return out.toByteArray();
    }

    @Test void cifarFiles() throws Exception {
        Random r = new Random(SEED + 1);
        int record = 1 + 3 * 32 * 32;
        for (int c = 0; c < CASES / 3; c++) {
            byte[] valid = new byte[record * (1 + r.nextInt(3))];
            r.nextBytes(valid);
            for (int i = 0; i < valid.length; i += record) valid[i] = (byte) r.nextInt(10);
            byte[] bytes = mutate(r, valid, 0);
            if (r.nextInt(5) == 0) bytes[0] = (byte) (10 + r.nextInt(246)); // a label that is not a class
            String name = "data_batch_" + c + ".bin";
            Path f = tmp.resolve(name);
            Files.write(f, bytes);
            byte[] written = bytes;
            boolean zipped = bytes.length > 1 && bytes[0] == 0x1f && bytes[1] == (byte) 0x8b;
            expectCleanOutcome("CIFAR case " + c, name, () -> {
                io.predcode.data.Dataset d = Cifar10.read("cifar", f);
                check(zipped || (long) d.size() * record == written.length, "accepted " + d.size() + " records from " + written.length + " bytes");
                return d;
            });
        }
    }

    @Test void npyFiles() throws Exception {
        Random r = new Random(SEED + 5);
        String[] types = {"<f4", "<f8", "|u1", "<i8", "<i4", "<u2"};
        for (int c = 0; c < CASES; c++) {
            String descr = types[r.nextInt(types.length)];
            int size = Integer.parseInt(descr.substring(2));
            int[] shape = r.nextBoolean() ? new int[]{1 + r.nextInt(4)} : new int[]{1 + r.nextInt(4), 1 + r.nextInt(3), 1 + r.nextInt(3)};
            byte[] data = new byte[java.util.Arrays.stream(shape).reduce(1, (a, b) -> a * b) * size];
            byte[] valid = Npy.encode(descr, shape, data);
            byte[] bytes = r.nextBoolean() ? mutate(r, valid, 12) : mutateNpyHeader(r, valid);
            String name = "case" + c + ".npy" + (bytes.length > 1 && bytes[0] == 0x1f && bytes[1] == (byte) 0x8b ? ".gz" : "");
            Path f = tmp.resolve(name);
            Files.write(f, bytes);
            boolean gz = name.endsWith(".gz");
            long length = bytes.length;
            // What is accepted must be exactly what the file holds: every value its shape declares, none after.
            expectCleanOutcome("npy case " + c, name, () -> {
                Npy.Array a = Npy.read(f);
                long declared = java.util.Arrays.stream(a.shape()).asLongStream().reduce(1, (x, y) -> x * y);
                int headerEnd = bytes[6] == 1 ? 10 + (ByteBuffer.wrap(bytes, 8, 2).order(ByteOrder.LITTLE_ENDIAN).getShort() & 0xffff)
                        : 12 + ByteBuffer.wrap(bytes, 8, 4).order(ByteOrder.LITTLE_ENDIAN).getInt();
                check(a.values().length == declared && (gz || length == headerEnd + declared * Integer.parseInt(a.dtype().substring(2))),
                        "accepted " + java.util.Arrays.toString(a.shape()) + " " + a.dtype() + " from " + length + " bytes");
                return a;
            });
        }
    }

    /**
     * CSV tables: valid ones (a header or not, quoted fields, named or indexed classes) mutated at the byte level and in
     * their text (a field dropped, doubled, emptied, replaced by a word, a quote or an edge number). An accepted table
     * must be rectangular and finite but for missing values (NaN, which a model's standardization fills): rows x
     * features values, as many labels as rows, every label a class.
     */
    @Test void csvTables() throws Exception {
        Random r = new Random(SEED + 9);
        String[] odd = {"", "\"", "\"\"", "NaN", "Infinity", "1e39", "-1e-50", "0x1F", "1f", ",", "a,b", " ", "\u00e9", "-", "+", ".", "1..2", "99999999999", "-3",
                "NA", "?", "null", "red", "a=b", "2;5"};
        String[] colours = {"red", "green", "blue", "NA", ""}; // a text column's values, gaps among them
        for (int c = 0; c < CASES; c++) {
            int rows = 1 + r.nextInt(6), features = 1 + r.nextInt(4);
            boolean header = r.nextBoolean(), names = r.nextBoolean();
            int textColumn = header && r.nextBoolean() ? r.nextInt(features) : -1; // tables as exports have them: a column of categories
            StringBuilder b = new StringBuilder();
            if (header) {
                for (int j = 0; j < features; j++) b.append("\"f").append(j).append("\",");
                b.append(r.nextBoolean() ? "label" : "y").append('\n');
            }
            for (int i = 0; i < rows; i++) {
                for (int j = 0; j < features; j++)
                    b.append(j == textColumn ? colours[r.nextInt(colours.length)] : String.format(java.util.Locale.ROOT, "%.3g", r.nextGaussian() * Math.pow(10, r.nextInt(6)))).append(',');
                b.append(names ? "\"class " + r.nextInt(3) + "\"" : Integer.toString(r.nextInt(3))).append(r.nextBoolean() ? "\n" : "\r\n");
            }
            String text = b.toString();
            if (r.nextBoolean()) { // a text mutation: one field of one line
                String[] lines = text.split("\n", -1);
                int line = r.nextInt(Math.max(1, lines.length - 1));
                List<String> fields = new ArrayList<>(List.of(lines[line].split(",", -1)));
                int at = r.nextInt(fields.size());
                switch (r.nextInt(4)) {
                    case 0 -> fields.remove(at);
                    case 1 -> fields.add(at, fields.get(at));
                    default -> fields.set(at, odd[r.nextInt(odd.length)]);
                }
                lines[line] = String.join(",", fields);
                text = String.join("\n", lines);
            }
            byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
            if (r.nextInt(3) == 0) bytes = mutate(r, bytes, 0);
            String name = "case" + c + ".csv" + (bytes.length > 1 && bytes[0] == 0x1f && bytes[1] == (byte) 0x8b ? ".gz" : "");
            Path f = tmp.resolve(name);
            Files.write(f, bytes);
            expectCleanOutcome("csv case " + c, name, () -> {
                io.predcode.data.DataSplit d = io.predcode.data.Csv.load(f);
                for (io.predcode.data.Dataset set : new io.predcode.data.Dataset[]{d.train(), d.test()}) {
                    check(set.images().length == set.size() * d.sampleShape()[0], "accepted a ragged table: " + set.images().length + " values, " + set.size() + " rows");
                    for (float v : set.images()) check(!Float.isInfinite(v), "accepted an infinite value: " + v);
                    for (float l : set.labels()) check(l >= 0 && l < d.classes() && l == Math.rint(l), "accepted label " + l + " of " + d.classes() + " classes");
                }
                return d;
            });
        }
    }

    /** .npz archives (a zip of .npy files): mutated inside the zip's records and inside the .npy it stores. */
    @Test void npzArchives() throws Exception {
        Random r = new Random(SEED + 6);
        for (int c = 0; c < CASES; c++) {
            int[] shape = {1 + r.nextInt(4), 1 + r.nextInt(5)};
            byte[] data = new byte[shape[0] * shape[1] * 4];
            r.nextBytes(data);
            for (int i = 3; i < data.length; i += 4) data[i] &= 0x3f; // finite floats
            byte[] npy = Npy.encode("<f4", shape, data);
            if (r.nextInt(4) == 0) npy = mutateNpyHeader(r, npy);
            ByteArrayOutputStream zip = new ByteArrayOutputStream();
            try (java.util.zip.ZipOutputStream z = new java.util.zip.ZipOutputStream(zip)) {
                java.util.zip.ZipEntry e = new java.util.zip.ZipEntry("x.npy");
                if (r.nextBoolean()) {
                    e.setMethod(java.util.zip.ZipEntry.STORED);
                    e.setSize(npy.length);
                    java.util.zip.CRC32 crc = new java.util.zip.CRC32();
                    crc.update(npy);
                    e.setCrc(crc.getValue());
                }
                z.putNextEntry(e);
                z.write(npy);
                z.closeEntry();
            }
            byte[] bytes = mutate(r, zip.toByteArray(), 48);
            String name = "case" + c + ".npz";
            Path f = tmp.resolve(name), stored = tmp.resolve("stored" + c + ".npy");
            Files.write(f, bytes);
            Files.write(stored, npy);
            // What is accepted must be exactly the .npy the archive was built around: the CRC-32 sees every changed byte.
            expectCleanOutcome("npz case " + c, name, () -> {
                try (io.predcode.data.Npz z = io.predcode.data.Npz.open(f)) {
                    Npy.Array a = z.array("x");
                    Npy.Array expected = Npy.read(stored);
                    check(java.util.Arrays.equals(a.shape(), expected.shape()) && java.util.Arrays.equals(a.values(), expected.values()),
                            "accepted " + java.util.Arrays.toString(a.shape()) + " that differ from the stored array " + java.util.Arrays.toString(expected.shape()));
                    return a;
                }
            });
        }
    }

    /** Rewrites the dict np.save writes: sizes toward their limits, other types and orders, keys dropped or given twice, cut short. */
    static byte[] mutateNpyHeader(Random r, byte[] valid) {
        int headerLength = ByteBuffer.wrap(valid, 8, 2).order(ByteOrder.LITTLE_ENDIAN).getShort();
        String header = new String(valid, 10, headerLength, StandardCharsets.ISO_8859_1);
        byte[] data = java.util.Arrays.copyOfRange(valid, 10 + headerLength, valid.length);
        String h = switch (r.nextInt(8)) {
            case 0 -> header.replaceFirst("\\(\\d+", "(" + edge(r));
            case 1 -> header.replaceFirst("\\d+\\)", edge(r) + ")");
            case 2 -> header.replaceFirst("'[<|][a-z]\\d'", "'" + ">|<=".charAt(r.nextInt(4)) + "fiuc?".charAt(r.nextInt(5)) + r.nextInt(17) + "'");
            case 3 -> header.replace("False", r.nextBoolean() ? "True" : "Nope");
            case 4 -> header.replace("'shape'", "'descr': '<f4', 'shape'");
            case 5 -> header.replaceFirst("'fortran_order': False, ", "");
            case 6 -> header.replace("{", "{'extra': (1, 2), ");
            default -> header.substring(0, r.nextInt(header.length()));
        };
        byte[] hb = h.getBytes(StandardCharsets.ISO_8859_1);
        ByteBuffer out = ByteBuffer.allocate(10 + hb.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        out.put(valid, 0, 8).putShort((short) (r.nextInt(10) == 0 ? edge(r) : hb.length)).put(hb).put(data);
        return out.array();
    }

    // ---------------------------------------------------------------- safetensors and model specs

    @Test void safetensorsFiles() throws Exception {
        Random r = new Random(SEED + 2);
        for (int c = 0; c < CASES; c++) {
            Map<String, Safetensors.Entry> tensors = new java.util.LinkedHashMap<>();
            tensors.put("0.0.weight", new Safetensors.Entry(new int[]{3, 2}, new float[6]));
            tensors.put("0.0.bias", new Safetensors.Entry(new int[]{3}, new float[3]));
            byte[] valid = Safetensors.encode(tensors, Map.of("k", "v"));
            byte[] bytes = r.nextBoolean() ? mutate(r, valid, 8) : mutateHeader(r, valid);
            String name = "case" + c + ".safetensors";
            Path f = tmp.resolve(name);
            Files.write(f, bytes);
            long length = bytes.length, headerLength = bytes.length >= 8 ? ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong(0) : -1;
            expectCleanOutcome("safetensors case " + c, name, () -> {
                Safetensors.Contents contents = Safetensors.read(f);
                long floats = 0;
                for (Map.Entry<String, Safetensors.Entry> t : contents.tensors().entrySet()) {
                    check(t.getValue().data().length == java.util.Arrays.stream(t.getValue().shape()).asLongStream().reduce(1, (a, b) -> a * b),
                            "tensor " + t.getKey() + " of shape " + java.util.Arrays.toString(t.getValue().shape()) + " holds " + t.getValue().data().length + " values");
                    floats += t.getValue().data().length;
                }
                // The tensors tile the data: no byte shared, none left over.
                check(8 + headerLength + 4 * floats == length, "accepted " + floats + " floats from " + (length - 8 - headerLength) + " data bytes");
                return contents;
            });
        }
    }

    /** Rewrites the JSON header: shapes, offsets and dtypes toward their limits, invalid UTF-8, nesting, duplicate keys. */
    static byte[] mutateHeader(Random r, byte[] valid) {
        ByteBuffer bb = ByteBuffer.wrap(valid).order(ByteOrder.LITTLE_ENDIAN);
        int headerLength = (int) bb.getLong(0);
        String header = new String(valid, 8, headerLength, StandardCharsets.UTF_8);
        byte[] data = java.util.Arrays.copyOfRange(valid, 8 + headerLength, valid.length);
        String h = switch (r.nextInt(8)) {
            case 0 -> header.replaceFirst("\\[3,2\\]|\\[3, 2\\]", "[" + edge(r) + "," + edge(r) + "]");
            case 1 -> header.replaceFirst("\"data_offsets\":\\s*\\[\\d+,\\s*\\d+\\]", "\"data_offsets\":[" + edge(r) + "," + edge(r) + "]");
            case 2 -> header.replace("F32", r.nextBoolean() ? "F16" : "X9");
            case 3 -> header.replace("\"k\"", "\"k\":\"a\",\"k\"");
            case 4 -> "[".repeat(100 + r.nextInt(300_000)) + header;
            case 5 -> header.replace("bias", "bi\u00e9s");
            case 6 -> header.replaceFirst("\\{", "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},");
            default -> header.substring(0, r.nextInt(header.length()));
        };
        byte[] hb = h.getBytes(StandardCharsets.UTF_8);
        if (r.nextInt(6) == 0 && hb.length > 0) hb[r.nextInt(hb.length)] = (byte) 0xC3; // a UTF-8 sequence cut short
        ByteBuffer out = ByteBuffer.allocate(8 + hb.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        out.putLong(r.nextInt(10) == 0 ? edge(r) : hb.length).put(hb).put(data);
        return out.array();
    }

    @Test void modelSpecs() throws Exception {
        Random r = new Random(SEED + 3);
        String valid = """
                {"input": [1, 8, 8], "blocks": [
                  [{"op": "conv2d", "in": 1, "out": 4, "kernel": [3, 3], "stride": [1, 1], "padding": [1, 1]}, {"op": "relu"}, {"op": "maxpool2d", "kernel": [2, 2]}],
                  [{"op": "flatten"}, {"op": "linear", "in": 64, "out": 10}]]}
                """;
        ModelSpec.parse(valid, "valid").activationShapes(new int[]{1, 8, 8}); // the starting point is valid
        for (int c = 0; c < CASES; c++) {
            String spec = mutateSpec(r, valid);
            String name = "spec" + c + ".json";
            expectCleanOutcome("spec case " + c, name, () -> {
                ModelSpec s = ModelSpec.parse(spec, name);
                if (s.input() == null) return s;
                try {
                    s.activationShapes(s.input());
                } catch (IllegalArgumentException e) {
                    throw new IllegalArgumentException(name + ": " + e.getMessage(), e); // as the CLI names --model
                }
                if (s.parameterCount() > 1_000_000) return s;
                try (io.predcode.core.nn.Model m = io.predcode.core.nn.Model.create(s, s.input(), cpu, 0)) { // what the spec checks passed must build
                    return m.depth();
                }
            });
        }
    }

    /** Replaces numbers with edge values, drops or retypes fields, nests deeply, duplicates keys, renames ops. */
    static String mutateSpec(Random r, String valid) {
        String s = valid;
        for (int k = 0; k < 1 + r.nextInt(3); k++) {
            s = switch (r.nextInt(8)) {
                case 0 -> replaceNth(s, "\\b\\d+\\b", r, String.valueOf(edge(r)));
                case 1 -> replaceNth(s, "\\b\\d+\\b", r, r.nextBoolean() ? "1e300" : "\"3\"");
                case 2 -> s.replaceFirst("\"stride\":\\s*\\[1, 1\\],", "");
                case 3 -> s.replaceFirst("\\{\\s*\"op\": \"relu\"\\s*\\}", "{\"op\": \"relu\", \"op\": \"softmax\"}");
                case 4 -> s.replaceFirst("\"blocks\":\\s*\\[", "\"blocks\": " + "[".repeat(60 + r.nextInt(300_000)));
                case 6 -> s.replaceFirst("\"stride\":\\s*\\[1, 1\\]", "\"stride\": [" + (1 << (20 + r.nextInt(11))) + ", 1], \"padding\": [" + (1 << 30) + ", 0]");
                case 5 -> s.replaceFirst("\"padding\":\\s*\\[\\d+, \\d+\\]", "\"padding\": [" + (1 << (20 + r.nextInt(11))) + ", 1]");
                default -> s.isEmpty() ? s : s.substring(0, r.nextInt(s.length()));
            };
        }
        return s;
    }

    static String replaceNth(String s, String regex, Random r, String with) {
        java.util.regex.Matcher m = java.util.regex.Pattern.compile(regex).matcher(s);
        List<int[]> spans = new ArrayList<>();
        while (m.find()) spans.add(new int[]{m.start(), m.end()});
        if (spans.isEmpty()) return s;
        int[] at = spans.get(r.nextInt(spans.size()));
        return s.substring(0, at[0]) + with + s.substring(at[1]);
    }

    // ---------------------------------------------------------------- the whole CLI

    /** A run's checkpoint after its (short) epoch, and one saved inside an epoch by a stop at step 7. */
    static Path checkpoint, stoppedInside;

    @BeforeAll static void trainOnce() {
        cpu = io.predcode.spi.Backends.open("cpu");
        checkpoint = tmp.resolve("trained");
        CliTest.Result r = CliTest.run("train", "--epochs", "1", "--max-steps", "3", "--validation", "0", "--quiet", "--out", checkpoint.toString());
        assertEquals(0, r.code(), r.err());
        stoppedInside = tmp.resolve("stopped");
        java.util.function.Supplier<Interruption> before = TrainCommand.interruptions;
        TrainCommand.interruptions = () -> Interruption.afterSteps(7);
        try {
            r = CliTest.run("train", "--epochs", "1", "--validation", "0", "--quiet", "--out", stoppedInside.toString());
        } finally {
            TrainCommand.interruptions = before;
        }
        assertEquals(130, r.code(), r.err());
    }

    /** The CLI's contract: exit 0, 2 with one line naming the file or option, or 3 (divergence); never a stack trace. */
    static void expectCleanExit(String what, String name, String... args) { expectCleanExit(what, List.of(name), args); }

    /** As {@link #expectCleanExit(String, String, String...)}, where the line may name any of {@code names} (the option, or the file it was given). */
    static void expectCleanExit(String what, List<String> names, String... args) {
        CliTest.Result r;
        try {
            r = CliTest.run(args);
        } catch (Throwable t) {
            fail(what + ": the CLI threw " + t, t);
            return;
        }
        String err = r.err().strip();
        switch (r.code()) {
            case 0, 3 -> outcomes.add("accepted " + what);
            case 2 -> {
                assertEquals(1, err.lines().count(), what + ": more than one line: " + err);
                assertTrue(err.startsWith("predcode: ") && names.stream().anyMatch(err::contains), what + ": the line names none of " + names + ": " + err);
                outcomes.add("refused " + what);
            }
            default -> fail(what + ": exit " + r.code() + ": " + err);
        }
    }

    @Test void tamperedCheckpointsThroughEval() throws Exception {
        Random r = new Random(SEED + 4);
        byte[] model = Files.readAllBytes(checkpoint.resolve("model.safetensors"));
        String spec = Files.readString(checkpoint.resolve("model.json"));
        for (int c = 0; c < Math.max(4, CASES / 4); c++) {
            Path dir = Files.createDirectories(tmp.resolve("tampered" + c));
            boolean bytes = r.nextBoolean();
            Files.write(dir.resolve("model.safetensors"), bytes ? (r.nextBoolean() ? mutate(r, model, 8) : mutateHeader(r, model)) : model);
            Files.writeString(dir.resolve("model.json"), bytes ? spec : mutateSpec(r, spec));
            expectCleanExit("checkpoint case " + c, dir.getFileName().toString(), "eval", "--checkpoint", dir.toString(), "--json");
            expectCleanExit("inspect checkpoint case " + c, dir.getFileName().toString(), "inspect", "--checkpoint", dir.toString());
        }
    }

    /**
     * A resumable checkpoint (at an epoch's end, or inside one) whose training state (steps, epoch, progress, settings: JSON
     * inside the metadata) was edited: inspected, then resumed with train.
     */
    @Test void tamperedTrainingStateThroughResume() throws Exception {
        Random r = new Random(SEED + 6);
        for (int c = 0; c < Math.max(4, CASES / 6); c++) {
            Path base = c % 2 == 0 ? checkpoint : stoppedInside;
            Safetensors.Contents valid = Safetensors.read(base.resolve("checkpoint.safetensors"));
            Path dir = Files.createDirectories(tmp.resolve("resume" + c));
            for (String f : new String[]{"model.json", "model.safetensors", "metrics.csv", "metrics.json"})
                Files.copy(base.resolve(f), dir.resolve(f));
            Map<String, String> metadata = new java.util.LinkedHashMap<>(valid.metadata());
            metadata.put("training", mutateSpec(r, metadata.get("training")));
            if (r.nextInt(4) == 0) metadata.put("optimizer", mutateSpec(r, metadata.get("optimizer")));
            Safetensors.write(dir.resolve("checkpoint.safetensors"), valid.tensors(), metadata);
            expectCleanExit("inspect case " + c, "checkpoint.safetensors", "inspect", "--checkpoint", dir.toString());
            expectCleanExit("resume case " + c, "checkpoint.safetensors", "train", "--resume", "--epochs", "2", "--max-steps", "5", "--validation", "0", "--quiet",
                    "--out", dir.toString());
        }
    }

    /**
     * A sweep's command.json (the options a resume of its folder takes) edited: numbers at the edges, values cut short,
     * elements that are no option or one a sweep does not record (--out would train elsewhere). Resumed with train.
     */
    @Test void tamperedSweepCommandThroughResume() throws Exception {
        Random r = new Random(SEED + 7);
        String valid = "{\"train\": [\"--grid=lr=0.01,0.02\", \"--algorithm=backprop\", \"--epochs=2\", \"--batch-size=16\"]}";
        String[] inserted = {"\"--out=" + tmp.resolve("elsewhere") + "\"", "\"--overwrite\"", "\"--bogus=1\"", "3", "null", "\"--grid=lr=\"", "\"--seeds=0-1\"",
                "\"--parallel-runs=0\"", "\"--halving=3\"", "\"--grid=--out=x\""};
        for (int c = 0; c < Math.max(4, CASES / 10); c++) {
            Path dir = Files.createDirectories(tmp.resolve("sweep" + c));
            String json = r.nextBoolean() ? mutateSpec(r, valid) : valid.replace("[", "[" + inserted[r.nextInt(inserted.length)] + ", ");
            Files.writeString(dir.resolve("command.json"), json);
            expectCleanExit("sweep command case " + c + " (" + json + ")", List.of("command.json", "--grid"), "train", "--resume", "--max-steps", "2", "--quiet",
                    "--out", dir.toString());
        }
        org.junit.jupiter.api.Assertions.assertFalse(Files.exists(tmp.resolve("elsewhere")), "a recorded --out is refused");
    }

    @Test void hostileOptionValues() {
        Random r = new Random(SEED + 5);
        String[] options = {"--n", "--eta", "--lr", "--batch-size", "--epochs", "--momentum", "--weight-decay", "--validation", "--seed", "--threads",
                "--patience", "--collapse-margin", "--max-rollbacks", "--monitor-every", "--max-steps", "--checkpoint-every", "--parallel-runs", "--grid", "--grid-sample", "--halving"};
        String[] values = {"-1", "0", "1", "1e400", "NaN", "Infinity", "-Infinity", "abc", "", "2147483648", "-2147483649", "1e-45", "0.5", "100001", "1e9"};
        // The options that take words and files, with words and files (and the numbers above).
        String[] wordOptions = {"--model", "--data", "--init", "--algorithm", "--belief-optimizer", "--nudging", "--loss", "--optimizer", "--energy",
                "--augment", "--lr-schedule", "--input-range", "--on-collapse", "--stable-relaxation", "--shuffle", "--condense", "--seeds"};
        String run = checkpoint.toString();
        String[] words = {",", "sgd:2", "positive:-1", "centred:NaN", "crop:0", "flip,flip", "-1:1", "7-3", "0-99999", "adam", "ipc", run,
                run + "/model.json", run + "/model.safetensors", run + "/metrics.csv", tmp.toString(), tmp.resolve("missing").toString(),
                "npy:" + run + "/model.json", "npy:" + tmp, "mnist:" + tmp.resolve("missing"), "cifar10:" + run, "csv:" + run + "/metrics.csv", "csv:" + run + "/metrics.csv:1", "csv:" + run + "/metrics.csv:x", "csv:" + run,
                "mlp:8", "mlp:0", "mlp:8-8:tanh", "mlp:8:x"};
        for (int c = 0; c < Math.max(4, CASES / 4); c++) {
            boolean word = r.nextBoolean();
            String option = word ? wordOptions[r.nextInt(wordOptions.length)] : options[r.nextInt(options.length)];
            String value = word && r.nextBoolean() ? words[r.nextInt(words.length)] : values[r.nextInt(values.length)];
            // A grid of the others' values: KEY=V, or KEY=V1,V2 (a run per value; --epochs and --max-steps stay off the grid, which refuses them beside it).
            if (option.equals("--grid"))
                value = options[r.nextInt(options.length - 4)].substring(2) + "=" + value + (r.nextBoolean() ? "" : "," + values[r.nextInt(values.length)]);
            List<String> args = new ArrayList<>(List.of("train", "--epochs", "1", "--max-steps", "2", "--quiet", "--out", tmp.resolve("opt" + c).toString()));
            // A sample or a halving of a small grid (a halving refuses --max-steps: one line, as any other refusal).
            if (option.equals("--grid-sample") || option.equals("--halving")) args.addAll(List.of("--grid", "lr=0.01,0.02"));
            int at = args.indexOf(option);
            if (at >= 0) args.set(at + 1, value);
            else { args.add(option); args.add(value); }
            // --epochs 1 and --max-steps 2 keep every accepted run short, whichever of them is fuzzed. The line names the
            // option, or the file it was given (a data set's after its kind: npy:FILE).
            List<String> names = value.isEmpty() ? List.of(option) : List.of(option, value, value.substring(value.indexOf(':') + 1));
            expectCleanExit("option case " + c + " (" + option + " '" + value + "')", names, args.toArray(String[]::new));
        }
    }

    /**
     * Spark's options, each given a hostile value, on a run of two steps on a local Spark of one core (or without
     * --spark, which they need): one line, or a run that ends cleanly. Fewer cases than the others: each accepted one
     * starts Spark (5-8 s here). A master is only ever on this machine (127.0.0.1, a port nothing listens on).
     */
    @Test void hostileSparkOptionValues() {
        Random r = new Random(SEED + 8);
        String[] options = {"--spark", "--spark-partitions", "--spark-conf", "--spark-timeout", "--spark-steps-per-job", "--spark-job-seconds", "--spark-average-every"};
        String[] values = {"-1", "0", "1", "2", "1e400", "NaN", "abc", "", "2147483648", "0.5", "100001", "86401", "local", "local[0]", "local[-1]", "local[abc]",
                "local[*]", "spark://", "spark://127.0.0.1:1", "spark://127.0.0.1:notaport", "yarn", "submit", "none", "NONE", "=x", "spark.driver.host", "spark.ui.enabled=maybe",
                "spark.executor.memory=1", "spark.master=local[1]", "spark.driver.bindAddress=127.0.0.1"};
        for (int c = 0; c < Math.max(4, CASES / 25); c++) {
            String option = options[r.nextInt(options.length)], value = values[r.nextInt(values.length)];
            List<String> args = new ArrayList<>(List.of("train", "--epochs", "1", "--max-steps", "2", "--quiet", "--spark-timeout", "30", "--out", tmp.resolve("spark" + c).toString()));
            if (r.nextInt(4) > 0) args.addAll(List.of("--spark", "local[1]"));
            int at = args.indexOf(option);
            if (at >= 0) args.set(at + 1, value);
            else { args.add(option); args.add(value); }
            List<String> names = value.isEmpty() ? List.of(option) : List.of(option, value, value.substring(value.indexOf('=') + 1));
            expectCleanExit("spark option case " + c + " (" + option + " '" + value + "')", names, args.toArray(String[]::new));
        }
    }

    /**
     * Every other command's options, each given a hostile value: numbers at the edges, junk, and paths to what is there
     * (a run, its files, a folder of many runs, a file of junk) and what is not. Found by such a fuzz from outside: eval
     * on a folder whose files went away as it looked (a stack trace) and bench's warm-up that overflowed (68 years).
     */
    @Test void hostileOptionValuesOnEveryCommand() throws Exception {
        Random r = new Random(SEED + 6);
        Path input = tmp.resolve("inputs.npy"), junk = tmp.resolve("junk.bin");
        float[] pixels = new float[5 * 64];
        for (int i = 0; i < pixels.length; i++) pixels[i] = r.nextInt(17); // digits' own scale: no note about it
        Files.write(input, Npy.encode(new int[]{5, 64}, pixels));
        Files.write(junk, new byte[]{'j', 0, 1, (byte) 0xff, '{'});
        Path junkTable = tmp.resolve("junk.csv"); // predict --input reads a .csv as a table
        Files.write(junkTable, new byte[]{'a', ',', '"', '\n', 0, (byte) 0xc3, ';', '\t', '1'});
        String run = checkpoint.toString();
        Map<String, String[]> options = Map.of(
                "eval", new String[]{"--checkpoint", "--data", "--loss", "--batch-size", "--threads"},
                "predict", new String[]{"--checkpoint", "--input", "--out", "--array", "--batch-size", "--threads"},
                "generate", new String[]{"--checkpoint", "--out", "--npy", "--per-class", "--steps", "--tolerance", "--eta", "--momentum", "--noise", "--seed", "--threads"},
                "inspect", new String[]{"--checkpoint"},
                "compare", new String[]{"--algorithm", "--model", "--checkpoint", "--data", "--n", "--eta", "--batch-size", "--loss", "--belief-optimizer",
                        "--energy", "--nudging", "--seed", "--threads"},
                "bench", new String[]{"--algorithm", "--model", "--batch-size", "--steps", "--warmup", "--warmup-seconds", "--n", "--eta", "--loss",
                        "--belief-optimizer", "--energy", "--condense", "--energy-check", "--monitor-every", "--threads", "--json"});
        Map<String, List<String>> base = Map.of(
                "eval", List.of("--checkpoint", run),
                "predict", List.of("--checkpoint", run, "--input", input.toString(), "--out", tmp.resolve("predictions.csv").toString()),
                "generate", List.of("--checkpoint", run, "--out", tmp.resolve("generated.png").toString(), "--steps", "5", "--per-class", "2"),
                "inspect", List.of("--checkpoint", run),
                "compare", List.of("--batch-size", "8", "--n", "3"),
                "bench", List.of("--model", "digits-mlp", "--algorithm", "backprop", "--batch-size", "8", "--steps", "1", "--warmup", "0", "--warmup-seconds", "0"));
        String[] values = {"-1", "0", "1", "3", "1e400", "NaN", "Infinity", "abc", "", "2147483648", "1e-45", "0.5", "100001", "sgd:2", "positive:-1",
                "adam", "mse", "strict,zil", ",", run, run + "/model.json", run + "/model.safetensors", run + "/metrics.csv", stoppedInside.toString(),
                tmp.toString(), tmp.resolve("missing").toString(), junk.toString(), "npy:" + junk, "npy:" + tmp, "mnist:" + tmp.resolve("missing"), "csv:" + junk, "csv:" + tmp, "mlp:3-3", junkTable.toString()};
        List<String> commands = List.copyOf(new java.util.TreeSet<>(options.keySet()));
        for (int c = 0; c < Math.max(6, CASES / 4); c++) {
            String command = commands.get(r.nextInt(commands.size()));
            String option = options.get(command)[r.nextInt(options.get(command).length)], value = values[r.nextInt(values.length)];
            // What a command writes goes to files of the test's own, or where it cannot write: never over the run the others read.
            if (List.of("--out", "--npy", "--json").contains(option))
                value = List.of(tmp.resolve("out" + c + ".txt").toString(), tmp.toString(), tmp.resolve("missing/out").toString(), "").get(r.nextInt(4));
            List<String> args = new ArrayList<>(List.of(command));
            args.addAll(base.get(command));
            int at = args.indexOf(option);
            if (at >= 0) args.set(at + 1, value);
            else { args.add(option); args.add(value); }
            // The line names the option, or the file it was given (a data set's after its kind: npy:FILE).
            List<String> names = value.isEmpty() ? List.of(option) : List.of(option, value, value.substring(value.indexOf(':') + 1));
            expectCleanExit(command + " case " + c + " (" + option + " '" + value + "')", names, args.toArray(String[]::new));
        }
    }
}
