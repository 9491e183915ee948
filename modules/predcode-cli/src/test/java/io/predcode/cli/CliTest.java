package io.predcode.cli;

import io.predcode.core.json.Json;
import io.predcode.core.json.JsonFields;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** The command line end to end, on the bundled digits and the CPU backend. */
class CliTest {
    record Result(int code, String out, String err) {}

    static Result run(String... args) {
        StringWriter out = new StringWriter(), err = new StringWriter();
        int code = Main.run(args, new PrintWriter(out, true), new PrintWriter(err, true));
        return new Result(code, out.toString(), err.toString());
    }

    static JsonFields json(Path f) throws Exception { return JsonFields.of(Json.parse(Files.readString(f), f.toString()), f.toString(), ""); }

    /** Every command's help renders as written: picocli warns on stderr (not through the command's writers) when a description does not format, e.g. a bare "%". */
    @Test void everyHelpRendersWithoutWarnings() {
        java.io.PrintStream saved = System.err;
        java.io.ByteArrayOutputStream captured = new java.io.ByteArrayOutputStream();
        System.setErr(new java.io.PrintStream(captured, true, java.nio.charset.StandardCharsets.UTF_8));
        try {
            String[] commands = {"train", "eval", "predict", "generate", "inspect", "compare", "bench", "backends"};
            for (String command : commands) {
                Result r = run(command, "--help");
                assertEquals(0, r.code(), command);
                assertTrue(r.out().contains("Usage: predcode " + command), command + ": " + r.out());
            }
            // The list of commands shows each one's first line: a whole sentence, not one cut off at a comma.
            List<String> top = run("--help").out().lines().toList();
            for (String command : commands) {
                int at = 0;
                while (at < top.size() && !top.get(at).startsWith("  " + command + " ")) at++;
                assertTrue(at < top.size(), command + " not listed: " + top);
                StringBuilder summary = new StringBuilder(top.get(at).strip());
                while (++at < top.size() && top.get(at).startsWith("      ")) summary.append(' ').append(top.get(at).strip());
                assertTrue(summary.toString().endsWith("."), command + "'s summary: " + summary);
            }
        } finally {
            System.setErr(saved);
        }
        assertEquals("", captured.toString(java.nio.charset.StandardCharsets.UTF_8));
    }

    /** train's some sixty options and bench's thirty are listed under headings, each option once: a new option not given a heading fails this. */
    @Test void longHelpsListEveryOptionUnderAHeading() {
        Map<String, Map<String, List<String>>> commands = Map.of("train", TrainCommand.HELP_SECTIONS, "bench", BenchCommand.HELP_SECTIONS,
                "compare", CompareCommand.HELP_SECTIONS);
        commands.forEach((command, sections) -> {
            picocli.CommandLine cl = new picocli.CommandLine(new Main()).getSubcommands().get(command);
            assertEquals(List.of(), HelpSections.unplaced(cl.getCommandSpec(), sections).stream().map(o -> o.longestName()).toList(), command);
            List<String> named = sections.values().stream().flatMap(List::stream).toList();
            assertEquals(named.size(), new java.util.HashSet<>(named).size(), command + ": an option under two headings: " + named);
            String help = run(command, "--help").out();
            assertTrue(help.startsWith("Usage: predcode " + command + " [OPTIONS]\n"), help);
            int last = -1;
            for (String heading : sections.keySet()) {
                int at = help.indexOf("\n" + heading + ":\n");
                assertTrue(at > last, command + ": " + heading + " missing or out of order: " + help);
                last = at;
            }
            assertFalse(help.contains("\nOther:"), help);
            for (String option : named) assertTrue(help.contains(option), command + ": " + option + " not in the help");
        });
    }

    @Test void trainWritesMetricsChartAndCheckpointAndLearns(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("run");
        Result r = run("train", "--epochs", "3", "--out", out.toString(), "--quiet");
        assertEquals(0, r.code(), r.err());
        for (String f : new String[]{"metrics.csv", "metrics.json", "checkpoint.safetensors", "model.safetensors", "model.json"})
            assertTrue(Files.exists(out.resolve(f)), f);
        JsonFields m = json(out.resolve("metrics.json"));
        assertTrue(m.number("final_test_accuracy") > 0.85, "3 STRICT epochs on digits: " + m.number("final_test_accuracy"));
        assertEquals(3, m.list("epochs").size());
        assertEquals("strict", m.object("settings").string("algorithm"));
        long rows = Files.readAllLines(out.resolve("metrics.csv")).size() - 1;
        assertEquals(3 * 43, rows, "one metrics row per step (1497 samples less 150 held out for validation, / 32 = 43 steps per epoch)");

        // Reported, not timed here: a unit test's timing depends on the machine (bench/fashion-mnist.sh measures it).
        double wait = m.number("data_wait_fraction");
        assertTrue(wait >= 0 && wait <= 1, "data_wait_fraction is a fraction of the training time: " + wait);

        Result e = run("eval", "--checkpoint", out.toString(), "--json");
        assertEquals(0, e.code(), e.err());
        double acc = JsonFields.of(Json.parse(e.out().trim(), "eval"), "eval", "").number("accuracy");
        assertEquals(m.number("final_test_accuracy"), acc, 1e-9);

        // Per class: the confusion matrix's rows are each class's test samples, its diagonal the accuracy's count.
        Result pc = run("eval", "--checkpoint", out.toString(), "--json", "--per-class");
        assertEquals(0, pc.code(), pc.err());
        List<?> confusion = (List<?>) ((Map<?, ?>) Json.parse(pc.out().trim(), "eval")).get("confusion");
        io.predcode.data.Dataset test = io.predcode.data.Digits.split().test();
        double diagonal = 0;
        for (int k = 0; k < 10; k++) {
            List<?> row = (List<?>) confusion.get(k);
            int kk = k;
            assertEquals(java.util.stream.IntStream.range(0, test.size()).filter(i -> test.labels()[i] == kk).count(), row.stream().mapToDouble(v -> ((Number) v).doubleValue()).sum(), 0, "class " + k);
            diagonal += ((Number) row.get(k)).doubleValue();
        }
        assertEquals(acc, diagonal / test.size(), 1e-9);
        Result table = run("eval", "--checkpoint", out.toString(), "--per-class");
        assertEquals(12, table.out().lines().count(), table.out());
    }

    /** A model whose input is flat and whose first op is linear (a Torch2PC MLP, exported) takes the images as rows of their values. */
    @Test void aFlatModelTakesImagesAsRows(@TempDir Path tmp) throws Exception {
        Path spec = tmp.resolve("flat.json"), out = tmp.resolve("flat");
        Files.writeString(spec, "{\"input\": [64], \"blocks\": [[{\"op\": \"linear\", \"in\": 64, \"out\": 32}, {\"op\": \"relu\"}], [{\"op\": \"linear\", \"in\": 32, \"out\": 10}]]}");
        Result r = run("train", "--model", spec.toString(), "--algorithm", "backprop", "--epochs", "3", "--out", out.toString(), "--quiet");
        assertEquals(0, r.code(), r.err());
        double trained = json(out.resolve("metrics.json")).number("final_test_accuracy");
        assertTrue(trained > 0.7, "a flat MLP on digits (3 epochs of backprop): " + trained);
        Result e = run("eval", "--checkpoint", out.toString(), "--json");
        assertEquals(0, e.code(), e.err());
        assertEquals(trained, JsonFields.of(Json.parse(e.out().trim(), "eval"), "eval", "").number("accuracy"), 1e-9);
        // The same model with a flatten op first, from the same seed: the same bytes in, so the same training and test accuracy.
        Path withFlatten = tmp.resolve("flatten.json"), out2 = tmp.resolve("flatten");
        Files.writeString(withFlatten, Files.readString(spec).replace("[[{\"op\": \"linear\", \"in\": 64", "[[{\"op\": \"flatten\"}, {\"op\": \"linear\", \"in\": 64")
                .replace("\"input\": [64]", "\"input\": [1, 8, 8]"));
        assertEquals(0, run("train", "--model", withFlatten.toString(), "--algorithm", "backprop", "--epochs", "3", "--out", out2.toString(), "--quiet").code());
        assertEquals(trained, json(out2.resolve("metrics.json")).number("final_test_accuracy"), 1e-9);
        // Sizes that do not match are still refused, naming both shapes.
        Files.writeString(spec, Files.readString(spec).replace("[64]", "[63]").replace("\"in\": 64", "\"in\": 63"));
        Result bad = run("train", "--model", spec.toString(), "--epochs", "1", "--out", tmp.resolve("bad").toString(), "--quiet");
        assertEquals(2, bad.code());
        assertTrue(bad.err().contains("expects inputs of shape [63] but the data set's samples are [1, 8, 8]"), bad.err());
    }

    /** A data set saved from NumPy (--data npy:DIR) trains as the same samples do from their own format, bit for bit. */
    @Test void digitsSavedAsNpyTrainAsDigits(@TempDir Path tmp) throws Exception {
        io.predcode.data.DataSplit digits = io.predcode.data.Digits.split();
        Path dir = Files.createDirectories(tmp.resolve("digits-npy"));
        for (var part : List.of(Map.entry("train", digits.train()), Map.entry("test", digits.test()))) {
            io.predcode.data.Dataset d = part.getValue();
            java.nio.ByteBuffer y = java.nio.ByteBuffer.allocate(8 * d.size()).order(java.nio.ByteOrder.LITTLE_ENDIAN);
            for (float v : d.labels()) y.putLong((long) v);
            Files.write(dir.resolve("x_" + part.getKey() + ".npy"), io.predcode.data.Npy.encode(new int[]{d.size(), 8, 8}, d.images()));
            Files.write(dir.resolve("y_" + part.getKey() + ".npy"), io.predcode.data.Npy.encode("<i8", new int[]{d.size()}, y.array()));
        }
        // The same four arrays as one archive, as np.savez_compressed writes it.
        Path npz = tmp.resolve("digits.npz");
        try (var zip = new java.util.zip.ZipOutputStream(Files.newOutputStream(npz))) {
            for (String name : List.of("x_train", "y_train", "x_test", "y_test")) {
                zip.putNextEntry(new java.util.zip.ZipEntry(name + ".npy"));
                zip.write(Files.readAllBytes(dir.resolve(name + ".npy")));
            }
        }
        Path fromDigits = tmp.resolve("digits"), fromNpy = tmp.resolve("npy"), fromNpz = tmp.resolve("npz");
        for (String[] run : new String[][]{{"digits", fromDigits.toString()}, {"npy:" + dir, fromNpy.toString()}, {"npy:" + npz, fromNpz.toString()}}) {
            Result r = run("train", "--data", run[0], "--epochs", "2", "--out", run[1], "--quiet");
            assertEquals(0, r.code(), r.err());
        }
        for (Path other : List.of(fromNpy, fromNpz)) assertSameParameters(fromDigits, other);
        double accuracy = json(fromDigits.resolve("metrics.json")).number("final_test_accuracy");
        assertEquals(accuracy, json(fromNpy.resolve("metrics.json")).number("final_test_accuracy"), 1e-9);
        // Its float values are the raw values the run records (scale 1, where digits' are its 0..16 times 1/16): eval feeds them as such.
        Result e = run("eval", "--checkpoint", fromNpy.toString(), "--data", "npy:" + dir, "--json");
        assertEquals(0, e.code(), e.err());
        assertEquals(accuracy, JsonFields.of(Json.parse(e.out().trim(), "eval"), "eval", "").number("accuracy"), 1e-9);
        // A resume whose recorded archive has moved says the path is the run's, and how to go on.
        Path moved = tmp.resolve("moved.npz");
        Files.move(npz, moved);
        Result lost = run("train", "--resume", "--out", fromNpz.toString(), "--epochs", "3", "--quiet");
        assertEquals(2, lost.code(), lost.out());
        assertEquals("predcode: " + npz + ": npz archive not found (expected a folder of x_train.npy, y_train.npy, x_test.npy and y_test.npy, or an .npz archive"
                + " of them) (the run's --data npy:" + npz + ", as " + fromNpz.resolve("checkpoint.safetensors") + " records; give --data where it is now)", lost.err().strip());
        assertEquals(0, run("train", "--resume", "--out", fromNpz.toString(), "--epochs", "3", "--quiet", "--data", "npy:" + moved).code());
        // A folder that is not one says which file and what it expected, in one line.
        Files.delete(dir.resolve("y_test.npy"));
        Result bad = run("train", "--data", "npy:" + dir, "--epochs", "1", "--out", tmp.resolve("bad").toString(), "--quiet");
        assertEquals(2, bad.code());
        assertTrue(bad.err().strip().lines().count() == 1 && bad.err().contains(dir.resolve("y_test.npy").toString()), bad.err());
    }

    /**
     * Images stored channels last, as Keras stores them (N, H, W, C), train the model their channels-first twin trains,
     * byte for byte; train says it read them so; predict reads an input array by the same rule.
     */
    @Test void channelsLastImagesTrainAsTheirChannelsFirstTwin(@TempDir Path tmp) throws Exception {
        int c = 3, h = 7, w = 5, classes = 3;
        java.util.Random r = new java.util.Random(11);
        Path first = Files.createDirectories(tmp.resolve("first")), last = Files.createDirectories(tmp.resolve("last"));
        float[] testLast = null, testFirst = null;
        for (String part : List.of("train", "test")) {
            int n = part.equals("train") ? 60 : 30;
            byte[] chw = new byte[n * c * h * w], hwc = new byte[chw.length];
            long[] y = new long[n];
            for (int i = 0; i < n; i++) {
                y[i] = i % classes;
                for (int k = 0; k < c; k++)
                    for (int p = 0; p < h * w; p++) {
                        // Each class bright in its own channel: learnable, and scrambled if the channels were mixed up.
                        byte v = (byte) (r.nextInt(60) + (k == y[i] ? 150 : 0));
                        chw[(i * c + k) * h * w + p] = v;
                        hwc[(i * h * w + p) * c + k] = v;
                    }
            }
            java.nio.ByteBuffer yb = java.nio.ByteBuffer.allocate(8 * n).order(java.nio.ByteOrder.LITTLE_ENDIAN);
            for (long v : y) yb.putLong(v);
            Files.write(first.resolve("x_" + part + ".npy"), io.predcode.data.Npy.encode("|u1", new int[]{n, c, h, w}, chw));
            Files.write(last.resolve("x_" + part + ".npy"), io.predcode.data.Npy.encode("|u1", new int[]{n, h, w, c}, hwc));
            for (Path dir : List.of(first, last)) Files.write(dir.resolve("y_" + part + ".npy"), io.predcode.data.Npy.encode("<i8", new int[]{n}, yb.array()));
        }
        Path spec = tmp.resolve("cnn.json");
        Files.writeString(spec, """
                {"input": [3, 7, 5], "blocks": [
                  [{"op": "conv2d", "in": 3, "out": 4, "kernel": [3, 3], "stride": [1, 1], "padding": [1, 1], "bias": true}, {"op": "relu"}],
                  [{"op": "flatten"}, {"op": "linear", "in": 140, "out": 3, "bias": true}]]}
                """);
        Path fromFirst = tmp.resolve("run-first"), fromLast = tmp.resolve("run-last");
        for (Path[] run : new Path[][]{{first, fromFirst}, {last, fromLast}}) {
            Result t = run("train", "--model", spec.toString(), "--data", "npy:" + run[0], "--algorithm", "fixedpred", "--epochs", "10", "--lr", "0.01", "--out", run[1].toString());
            assertEquals(0, t.code(), t.err());
            assertEquals(run[0] == last, t.out().contains("last train (channels last, read as (N, C, H, W))"), t.out());
        }
        assertSameParameters(fromFirst, fromLast); // (their files differ in the data set they record)
        assertTrue(json(fromLast.resolve("metrics.json")).number("final_test_accuracy") > 0.9, "each class is bright in its own channel: " + json(fromLast.resolve("metrics.json")).number("final_test_accuracy"));
        Result p1 = run("predict", "--checkpoint", fromLast.toString(), "--input", first.resolve("x_test.npy").toString());
        Result p2 = run("predict", "--checkpoint", fromLast.toString(), "--input", last.resolve("x_test.npy").toString());
        assertEquals(0, p2.code(), p2.err());
        assertEquals(p1.out(), p2.out());
    }

    /**
     * A built-in model takes its last layer's width from the data set's classes (12 here, where digits-mlp has 10); a
     * model written to a file is used as written, and one whose outputs are not one per class is refused in one line.
     */
    @Test void builtInModelsFitTheDataSetsClasses(@TempDir Path tmp) throws Exception {
        Path dir = Files.createDirectories(tmp.resolve("twelve"));
        java.util.Random r = new java.util.Random(5);
        for (String part : List.of("train", "test")) {
            int n = part.equals("train") ? 96 : 48;
            float[] x = new float[n * 64];
            long[] y = new long[n];
            for (int i = 0; i < n; i++) {
                y[i] = i % 12;
                for (int j = 0; j < 64; j++) x[i * 64 + j] = (j % 12 == y[i] ? 1f : 0f) + 0.1f * (float) r.nextGaussian();
            }
            java.nio.ByteBuffer yb = java.nio.ByteBuffer.allocate(8 * n).order(java.nio.ByteOrder.LITTLE_ENDIAN);
            for (long v : y) yb.putLong(v);
            Files.write(dir.resolve("x_" + part + ".npy"), io.predcode.data.Npy.encode(new int[]{n, 8, 8}, x));
            Files.write(dir.resolve("y_" + part + ".npy"), io.predcode.data.Npy.encode("<i8", new int[]{n}, yb.array()));
        }
        Path out = tmp.resolve("run");
        Result r1 = run("train", "--model", "digits-mlp", "--data", "npy:" + dir, "--epochs", "30", "--algorithm", "backprop", "--lr", "0.01", "--out", out.toString(), "--quiet");
        assertEquals(0, r1.code(), r1.err());
        assertArrayEquals(new int[]{12, 32}, io.predcode.core.io.Safetensors.read(out.resolve("model.safetensors")).tensors().get("2.0.weight").shape());
        Result e = run("eval", "--checkpoint", out.toString(), "--data", "npy:" + dir, "--per-class", "--json");
        assertEquals(0, e.code(), e.err());
        JsonFields scores = JsonFields.of(Json.parse(e.out().trim(), "eval"), "eval", "");
        assertTrue(scores.number("accuracy") > 0.9, e.out());
        assertTrue(e.out().contains("\"confusion\": [[4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], "), e.out());
        // The same model as a file is taken as written: 10 outputs for 12 classes is refused, naming both.
        Path spec = tmp.resolve("ten.json");
        Files.writeString(spec, io.predcode.core.nn.BuiltinModels.get("digits-mlp").toJson());
        Result bad = run("train", "--model", spec.toString(), "--data", "npy:" + dir, "--epochs", "1", "--out", tmp.resolve("bad").toString(), "--quiet");
        assertEquals(2, bad.code());
        assertEquals("predcode: --model " + spec + " outputs 10 values per sample, but the data set (twelve train) has 12 classes; its last layer must have 12 outputs",
                bad.err().strip());
    }

    /** inspect says what a checkpoint holds without running it, and exits 3 where a parameter is not finite. */
    @Test void inspectDescribesACheckpoint(@TempDir Path tmp) throws Exception {
        Path run = tmp.resolve("run");
        assertEquals(0, run("train", "--epochs", "2", "--algorithm", "fixedpred", "--seed", "4", "--out", run.toString(), "--quiet").code());
        Result r = run("inspect", "--checkpoint", run.toString());
        assertEquals(0, r.code(), r.err());
        List<String> lines = r.out().lines().toList();
        assertEquals(run.resolve("checkpoint.safetensors") + ": a checkpoint to resume from (parameters, optimizer state, training state)", lines.get(0));
        assertEquals("model: 3 blocks, 6,570 parameters, 6,464 multiply-adds a sample forward; input [1, 8, 8]", lines.get(1));
        assertEquals("  block 0: flatten, linear(in=64, out=64, bias=true), relu -> [64] (4,160 parameters)", lines.get(2));
        assertEquals("inputs: raw values x 0.0625 + 0.0", lines.get(5));
        assertEquals("classes: 10 (0, 1, 2, 3, 4, 5, 6, 7, 8, 9)", lines.get(6));
        assertTrue(lines.get(7).startsWith("trained: algorithm fixedpred, loss cross_entropy, eta 0.1, n 3, optimizer adam, lr 0.002,"), lines.get(7));
        assertFalse(lines.get(7).contains("belief_optimizer"), "settings fixedpred does not use are left out: " + lines.get(7));
        double accuracy = json(run.resolve("metrics.json")).number("final_test_accuracy");
        assertTrue(lines.get(8).startsWith("progress: epoch 2 of 2, step 86, best validation accuracy ")
                && lines.get(8).endsWith(String.format(java.util.Locale.ROOT, "last test accuracy %.2f%%", 100 * accuracy)), lines.get(8));
        assertTrue(lines.get(9).startsWith("parameters: all finite, largest |value| "), lines.get(9));
        Result j = run("inspect", "--checkpoint", run.resolve("model.safetensors").toString(), "--json");
        assertEquals(0, j.code(), j.err());
        JsonFields o = JsonFields.of(Json.parse(j.out().trim(), "inspect"), "inspect", "");
        assertEquals(6570, (long) o.number("parameters"));
        assertFalse(o.bool("resumable"));
        assertEquals(List.of(), o.list("not_finite"));
        // A NaN in a weight: named, and exit code 3, as eval's.
        Path bad = tmp.resolve("bad.safetensors");
        var contents = io.predcode.core.io.Safetensors.read(run.resolve("model.safetensors"));
        var tensors = new java.util.LinkedHashMap<>(contents.tensors());
        float[] w = tensors.get("1.0.weight").data().clone();
        w[5] = Float.NaN;
        tensors.put("1.0.weight", new io.predcode.core.io.Safetensors.Entry(tensors.get("1.0.weight").shape(), w));
        io.predcode.core.io.Safetensors.write(bad, tensors, contents.metadata());
        Result nan = run("inspect", "--checkpoint", bad.toString());
        assertEquals(3, nan.code(), nan.out());
        assertTrue(nan.out().contains("parameters: NOT FINITE in 1.0.weight"), nan.out());
        // Every command that computes with it refuses it in one line, exit 3, naming the parameter.
        Path input = tmp.resolve("x.npy");
        Files.write(input, io.predcode.data.Npy.encode(new int[]{2, 8, 8}, new float[128]));
        for (String[] args : List.of(new String[]{"eval"}, new String[]{"predict", "--input", input.toString()}, new String[]{"generate", "--out", tmp.resolve("g.png").toString()},
                new String[]{"compare"}, new String[]{"train", "--init", bad.toString(), "--out", tmp.resolve("init").toString()})) {
            List<String> line = new java.util.ArrayList<>(List.of(args));
            if (!args[0].equals("train")) line.addAll(List.of("--checkpoint", bad.toString()));
            Result refused = run(line.toArray(String[]::new));
            assertEquals(args[0].equals("train") ? 2 : 3, refused.code(), args[0] + ": " + refused.err());
            assertTrue(refused.err().strip().lines().count() == 1 && refused.err().contains(bad + ": parameter '1.0.weight' is not finite"), args[0] + ": " + refused.err());
        }
    }

    /** predict answers as eval scores: the classes of raw inputs in a .npy file, the checkpoint's preprocessing applied. */
    @Test void predictClassifiesANpyFileAsEvalScoresIt(@TempDir Path tmp) throws Exception {
        Path run = tmp.resolve("run");
        assertEquals(0, run("train", "--epochs", "2", "--out", run.toString(), "--quiet").code());
        io.predcode.data.Dataset test = io.predcode.data.Digits.split().test();
        float[] raw = test.images().clone();
        for (int i = 0; i < raw.length; i++) raw[i] *= 16; // digits' stored values, 0..16: the run records their scale, 1/16
        Path input = tmp.resolve("digits.npy"), csv = tmp.resolve("p.csv");
        Files.write(input, io.predcode.data.Npy.encode(new int[]{test.size(), 8, 8}, raw));
        Result r = run("predict", "--checkpoint", run.toString(), "--input", input.toString(), "--out", csv.toString(), "--batch-size", "64");
        assertEquals(0, r.code(), r.err());
        assertFalse(r.err().contains("note:"), r.err());
        // Inputs scaled already (digits' floats in [0, 1]) are answered, with a note that the model scales raw values itself.
        Path scaled = tmp.resolve("scaled.npy");
        Files.write(scaled, io.predcode.data.Npy.encode(new int[]{test.size(), 8, 8}, test.images()));
        Result note = run("predict", "--checkpoint", run.toString(), "--input", scaled.toString());
        assertEquals(0, note.code(), note.err());
        assertEquals("note: " + scaled + " holds values within [-1, 1], but the model scales raw inputs itself (x / 16): pass them as its data set stores them"
                + " (bytes 0..255, say), not scaled", note.err().strip());
        List<String> rows = Files.readAllLines(csv);
        assertEquals("sample,class,label,p0,p1,p2,p3,p4,p5,p6,p7,p8,p9", rows.getFirst());
        assertEquals(test.size() + 1, rows.size());
        int right = 0;
        for (int i = 0; i < test.size(); i++) {
            String[] f = rows.get(i + 1).split(",");
            assertEquals(Integer.toString(i), f[0]);
            assertEquals(f[1], f[2], "digits' class names are their indices");
            double sum = 0;
            for (int k = 3; k < f.length; k++) sum += Double.parseDouble(f[k]);
            assertEquals(1, sum, 1e-4, "probabilities of sample " + i);
            if (Integer.parseInt(f[1]) == (int) test.labels()[i]) right++;
        }
        assertEquals(json(run.resolve("metrics.json")).number("final_test_accuracy"), right / (double) test.size(), 1e-9);
        // --out FILE.npy: the same probabilities as an (N, classes) array, for NumPy.
        Path npyOut = tmp.resolve("p.npy");
        assertEquals(0, run("predict", "--checkpoint", run.toString(), "--input", input.toString(), "--out", npyOut.toString()).code());
        io.predcode.data.Npy.Array probabilities = io.predcode.data.Npy.read(npyOut);
        assertArrayEquals(new int[]{test.size(), 10}, probabilities.shape());
        for (int i = 0; i < test.size(); i++) {
            String[] f = rows.get(i + 1).split(",");
            for (int k = 0; k < 10; k++) assertEquals(Double.parseDouble(f[3 + k]), probabilities.values()[i * 10 + k], 1e-5 * Math.abs(Double.parseDouble(f[3 + k])) + 1e-12);
        }
        // Rows of the images' values are the same bytes; another size is refused in one line naming the file.
        Files.write(input, io.predcode.data.Npy.encode(new int[]{test.size(), 64}, raw));
        Result rows64 = run("predict", "--checkpoint", run.toString(), "--input", input.toString(), "--batch-size", "64");
        assertEquals(0, rows64.code(), rows64.err());
        assertEquals(String.join("\n", rows) + "\n", rows64.out());
        // An archive's array, named with --array where it holds more than one.
        Path npz = tmp.resolve("digits.npz");
        try (var zip = new java.util.zip.ZipOutputStream(Files.newOutputStream(npz))) {
            zip.putNextEntry(new java.util.zip.ZipEntry("x_test.npy"));
            zip.write(Files.readAllBytes(input));
            zip.putNextEntry(new java.util.zip.ZipEntry("y_test.npy"));
            zip.write(io.predcode.data.Npy.encode(new int[]{test.size()}, test.labels()));
        }
        Result fromNpz = run("predict", "--checkpoint", run.toString(), "--input", npz.toString(), "--array", "x_test", "--batch-size", "64");
        assertEquals(0, fromNpz.code(), fromNpz.err());
        assertEquals(rows64.out(), fromNpz.out());
        Result which = run("predict", "--checkpoint", run.toString(), "--input", npz.toString());
        assertEquals(2, which.code());
        assertTrue(which.err().strip().lines().count() == 1 && which.err().contains(npz + ": holds the arrays [x_test, y_test]; name the one to classify with --array"), which.err());
        Files.write(input, io.predcode.data.Npy.encode("<f4", new int[]{2, 63}, new byte[2 * 63 * 4]));
        Result bad = run("predict", "--checkpoint", run.toString(), "--input", input.toString());
        assertEquals(2, bad.code());
        assertTrue(bad.err().strip().lines().count() == 1 && bad.err().contains(input.toString()) && bad.err().contains("[63]"), bad.err());
        // A model trained on squared error: its outputs, which need not sum to 1.
        Path mse = tmp.resolve("mse");
        assertEquals(0, run("train", "--epochs", "1", "--loss", "mse", "--algorithm", "backprop", "--out", mse.toString(), "--quiet").code());
        Files.write(input, io.predcode.data.Npy.encode(new int[]{test.size(), 8, 8}, raw));
        Result outputs = run("predict", "--checkpoint", mse.toString(), "--input", input.toString());
        assertEquals(0, outputs.code(), outputs.err());
        assertTrue(outputs.out().startsWith("sample,class,label,out0,out1,"), outputs.out().lines().findFirst().orElse(""));
        assertEquals("\"a, b\"", PredictCommand.quoted("a, b"));
        assertEquals("\"say \"\"hi\"\"\"", PredictCommand.quoted("say \"hi\""));
        assertEquals("T-shirt/top", PredictCommand.quoted("T-shirt/top"));
    }

    /** predict's note on inputs scaled otherwise than the model's training data, for each way a run records its preprocessing. */
    /**
     * A CSV table (features at scales of their own, named classes) trains an MLP sized to it, which standardizes each
     * feature with the training set's statistics; predict classifies the same file's rows (its label column left out)
     * by name, as eval scores them.
     */
    @Test void aCsvTableTrainsAnMlpSizedToItAndPredictReadsTables(@TempDir Path tmp) throws Exception {
        io.predcode.data.Dataset digits = io.predcode.data.Digits.split().train();
        StringBuilder csv = new StringBuilder();
        for (int j = 0; j < 64; j++) csv.append("f").append(j).append(',');
        csv.append("label\n");
        for (int i = 0; i < digits.size(); i++) {
            // Feature j in units of its own: 1000 j + 300 x, so that unstandardized a few features would swamp the rest.
            for (int j = 0; j < 64; j++) csv.append(1000 * j + 300 * digits.images()[i * 64 + j]).append(',');
            csv.append("digit ").append((int) digits.labels()[i]).append('\n');
        }
        Path table = tmp.resolve("digits.csv"), run = tmp.resolve("run");
        Files.writeString(table, csv);
        Result r = run("train", "--data", "csv:" + table, "--model", "mlp:32", "--epochs", "6", "--out", run.toString(), "--quiet");
        assertEquals(0, r.code(), r.err());
        double accuracy = json(run.resolve("metrics.json")).number("final_test_accuracy");
        assertTrue(accuracy > 0.85, "a sized MLP learns the table: " + accuracy);
        var c = io.predcode.core.io.Checkpoint.load(run);
        assertEquals(List.of("digit 0", "digit 1", "digit 2", "digit 3", "digit 4", "digit 5", "digit 6", "digit 7", "digit 8", "digit 9"), c.classNames());
        var standardize = (io.predcode.core.nn.OpSpec.Normalize) c.spec().blocks().getFirst().getFirst();
        float[][] expected = io.predcode.data.DataSources.load("csv:" + table).train().standardization();
        assertArrayEquals(expected[0], standardize.mean());
        assertArrayEquals(expected[1], standardize.std());
        assertEquals(1000 * 5 + 300 * digits.images()[5], io.predcode.data.Csv.read(table, true).features()[5], 1e-3f, "raw values in the table, as written");
        // inspect shows the standardization by its first numbers and its length, not 128 numbers on a line.
        Result inspect = run("inspect", "--checkpoint", run.toString());
        String block0 = inspect.out().lines().filter(l -> l.contains("block 0:")).findFirst().orElseThrow();
        assertTrue(block0.contains("normalize(mean=[") && block0.contains(", ... (64 values)], std=[") && block0.length() < 300, block0);
        // predict on the table itself: the label column is left out, each row answered with its class's name.
        Result p = run("predict", "--checkpoint", run.toString(), "--input", table.toString());
        assertEquals(0, p.code(), p.err());
        List<String> rows = p.out().lines().toList();
        assertEquals("sample,class,label,p0,p1,p2,p3,p4,p5,p6,p7,p8,p9", rows.getFirst());
        int right = 0;
        for (int i = 0; i < digits.size(); i++) if (rows.get(i + 1).split(",")[2].equals("digit " + (int) digits.labels()[i])) right++;
        assertTrue(right > 0.85 * digits.size(), right + " of " + digits.size());
        // A table with its columns in another order and an id column is matched by name: the same answers, with a note.
        List<String> original = Files.readAllLines(table);
        Path shuffled = tmp.resolve("shuffled.csv");
        List<String> out = new java.util.ArrayList<>();
        for (String line : original) {
            String[] f = line.split(",");
            StringBuilder b = new StringBuilder(out.isEmpty() ? "id" : Integer.toString(out.size()));
            for (int j = f.length - 1; j >= 0; j--) b.append(',').append(f[j]); // label first, then the features backwards
            out.add(b.toString());
        }
        Files.write(shuffled, out);
        Result byColumn = run("predict", "--checkpoint", run.toString(), "--input", shuffled.toString());
        assertEquals(0, byColumn.code(), byColumn.err());
        assertEquals(p.out(), byColumn.out());
        assertEquals("note: " + shuffled + ": column 'id' is not among the model's features; left out", byColumn.err().strip());
        assertTrue(run("inspect", "--checkpoint", run.toString()).out().contains("features: 64 (f0, f1, f2, f3, ..., f63)"));
        Result evalShuffled = run("eval", "--checkpoint", run.toString(), "--data", "csv:" + shuffled, "--json"); // the same rows held out: the same score
        assertEquals(0, evalShuffled.code(), evalShuffled.err());
        assertEquals(accuracy, JsonFields.of(Json.parse(evalShuffled.out().trim(), "eval"), "eval", "").number("accuracy"), 1e-9);
        // A run that starts from the model (--init) on a table of other columns is refused: its first layer would meet other features.
        Result init = run("train", "--data", "csv:" + shuffled, "--model", "mlp:32", "--init", run.resolve("model.safetensors").toString(), "--out", tmp.resolve("init").toString());
        assertEquals(2, init.code());
        assertTrue(init.err().contains("was trained on the columns [f0, f1,") && init.err().contains("write the table with the model's columns in its order"), init.err());
        // The held-out fifth is what eval scores: the same accuracy the run recorded.
        Result e = run("eval", "--checkpoint", run.toString(), "--json");
        assertEquals(0, e.code(), e.err());
        assertEquals(accuracy, JsonFields.of(Json.parse(e.out().trim(), "eval"), "eval", "").number("accuracy"), 1e-9);
        // A table of two of its classes is scored by their names, not by their positions among the two.
        List<String> lines = Files.readAllLines(table);
        List<String> some = new java.util.ArrayList<>(List.of(lines.getFirst()));
        lines.stream().skip(1).filter(l -> l.endsWith("digit 7") || l.endsWith("digit 1")).forEach(some::add);
        Path two = tmp.resolve("two.csv");
        Files.write(two, some);
        Result byName = run("eval", "--checkpoint", run.toString(), "--data", "csv:" + two, "--json");
        assertEquals(0, byName.code(), byName.err());
        assertTrue(JsonFields.of(Json.parse(byName.out().trim(), "eval"), "eval", "").number("accuracy") > 0.85, byName.out());
        Files.write(two, some.stream().map(l -> l.replace("digit 7", "seven")).toList());
        Result unknown = run("eval", "--checkpoint", run.toString(), "--data", "csv:" + two);
        assertEquals(2, unknown.code());
        assertTrue(unknown.err().contains("class 'seven' is not one the model was trained on (digit 0, digit 1,"), unknown.err());
        // A model that does not fit the table's rows says how to size one.
        Result wrong = run("train", "--data", "csv:" + table, "--out", tmp.resolve("wrong").toString());
        assertEquals(2, wrong.code());
        assertTrue(wrong.err().contains("--model mlp:64-64"), wrong.err());
    }

    /**
     * A table as exports have them, text and gaps: text columns train as categories, missing values are filled with the
     * training mean by the sized MLP's standardization; predict takes such rows; a model that would not fill them is refused.
     */
    @Test void aTableWithTextAndMissingValuesTrainsAndPredicts(@TempDir Path tmp) throws Exception {
        StringBuilder b = new StringBuilder("age,sex,port,fare,survived\n");
        for (int i = 0; i < 300; i++) {
            boolean female = i % 3 == 0, survived = female ? i % 10 != 0 : i % 7 == 0; // mostly told by sex
            String age = i % 6 == 1 ? "" : Integer.toString(20 + i % 47), port = i % 11 == 0 ? "NA" : "SCQ".substring(i % 3, i % 3 + 1);
            b.append(age).append(female ? ",female," : ",male,").append(port).append(',').append(5 + (i * 37) % 90).append(',').append(survived ? 1 : 0).append('\n');
        }
        Path table = tmp.resolve("passengers.csv"), run = tmp.resolve("run");
        Files.writeString(table, b);
        Result r = run("train", "--data", "csv:" + table, "--model", "mlp:16", "--epochs", "15", "--out", run.toString(), "--quiet");
        assertEquals(0, r.code(), r.err());
        double accuracy = json(run.resolve("metrics.json")).number("final_test_accuracy");
        assertTrue(accuracy > 0.8, "learns who survived from the sex column: " + accuracy);
        var c = io.predcode.core.io.Checkpoint.load(run);
        assertEquals(List.of("age", "sex=female", "sex=male", "port=C", "port=Q", "port=S", "fare"), c.featureNames());
        var standardize = (io.predcode.core.nn.OpSpec.Normalize) c.spec().blocks().getFirst().getFirst();
        assertTrue(Float.isFinite(standardize.mean()[0]) && standardize.mean()[0] > 20, "the age's mean over the values given: " + standardize.mean()[0]);
        // predict: rows with text and gaps, columns in another order; a port the training set never had is all zeros.
        Path rows = tmp.resolve("rows.csv");
        Files.writeString(rows, "sex,fare,port,age\nfemale,30,S,\nmale,12,X,40\nmale,?,null,NA\n");
        Result p = run("predict", "--checkpoint", run.toString(), "--input", rows.toString());
        assertEquals(0, p.code(), p.err());
        assertEquals("note: " + rows + ": values the model was not trained on, answered as missing (0 in each of their column's categories): port=X (1 row)",
                p.err().strip(), "no column left out; the unseen port said");
        List<String> lines = p.out().lines().toList();
        assertEquals(4, lines.size(), p.out());
        assertTrue(lines.get(1).startsWith("0,1,1,") && lines.get(2).startsWith("1,0,0,"), p.out());
        // eval on a table of only some ports: the model's port=C is a feature of zeros there.
        Path some = tmp.resolve("some-ports.csv");
        Files.writeString(some, "age,sex,port,fare,survived\n30,female,S,20,1\n40,male,Q,10,0\n,male,S,15,0\n25,female,S,30,1\n35,male,S,12,0\n");
        Result e = run("eval", "--checkpoint", run.toString(), "--data", "csv:" + some, "--json");
        assertEquals(0, e.code(), e.err());
        assertEquals("", e.err().strip(), "every port in it is one the model knows");
        // ... and of a port it never saw: said, with its rows in the test set.
        StringBuilder x = new StringBuilder("age,sex,port,fare,survived\n");
        for (int i = 0; i < 10; i++) x.append(20 + i).append(i % 2 == 0 ? ",female,X," : ",male,X,").append(10 + i).append(',').append(i % 2 == 0 ? 1 : 0).append('\n');
        Path other = tmp.resolve("other-ports.csv");
        Files.writeString(other, x);
        Result o = run("eval", "--checkpoint", run.toString(), "--data", "csv:" + other);
        assertEquals(0, o.code(), o.err());
        assertTrue(o.err().contains("test (2 rows held out, a fifth of each class): values the model was not trained on, answered as missing"
                + " (0 in each of their column's categories): port=X (2 rows)"), o.err());
        // A model that does not standardize its inputs would carry the gaps into every output: refused, naming them.
        Result plain = run("train", "--data", "csv:" + table, "--model", "mlp", "--out", tmp.resolve("plain").toString());
        assertEquals(2, plain.code());
        assertTrue(plain.err().contains("missing values (empty fields, NA, NaN, null or ?); --model mlp does not fill them"), plain.err());
    }

    /** A training set of one class is refused; about as many classes as samples (the wrong label column) is said. */
    @Test void aTableOfOneClassIsRefusedAndOneOfAClassARowIsNoted(@TempDir Path tmp) throws Exception {
        Path one = tmp.resolve("one.csv"), ids = tmp.resolve("ids.csv");
        Files.writeString(one, "a,b,label\n1,2,x\n3,4,x\n5,6,x\n");
        Result r = run("train", "--data", "csv:" + one, "--model", "mlp:4", "--out", tmp.resolve("one").toString());
        assertEquals(2, r.code());
        assertEquals("predcode: --data csv:" + one + ": every training sample is of one class ('x'); nothing to tell apart", r.err().strip());
        StringBuilder b = new StringBuilder("x,id\n");
        for (int i = 0; i < 40; i++) b.append(i % 7).append(',').append(1000 + i).append('\n');
        Files.writeString(ids, b);
        r = run("train", "--data", "csv:" + ids, "--model", "mlp:4", "--epochs", "1", "--validation", "0", "--out", tmp.resolve("ids").toString(), "--quiet");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("note: 39 classes among 39 training samples, about one sample a class: is the label the right column?"), r.out());
    }

    @Test void predictNotesInputsScaledOtherwise() {
        Path in = Path.of("x.npy");
        var bytes = new io.predcode.core.serve.Preprocessing(1f / 255, 0f);
        var symmetric = new io.predcode.core.serve.Preprocessing(2f / 255, -1f); // --input-range -1:1
        float[] unit = {0f, 0.5f, 1f}, raw = {0f, 17f, 255f};
        assertNull(PredictCommand.scaleNote(in, "|u1", raw, bytes), "bytes for a model trained on bytes");
        assertNull(PredictCommand.scaleNote(in, "<f4", raw, bytes), "raw values as floats");
        assertNull(PredictCommand.scaleNote(in, "<f4", unit, io.predcode.core.serve.Preprocessing.NONE), "floats for a model trained on floats");
        assertTrue(PredictCommand.scaleNote(in, "<f4", unit, bytes).contains("scales raw inputs itself (x / 255)"));
        assertTrue(PredictCommand.scaleNote(in, "<f8", new float[]{-1f, 1f}, symmetric).contains("(x / 255 * 2 - 1)"));
        assertTrue(PredictCommand.scaleNote(in, "|u1", raw, io.predcode.core.serve.Preprocessing.NONE).startsWith("x.npy holds bytes (up to 255), which this model takes as they are"));
    }

    /** --seeds: a run per seed, each the run --seed gives, and their summary. */
    @Test void seedsTrainOncePerSeedAndSummarise(@TempDir Path tmp) throws Exception {
        Path sweep = tmp.resolve("sweep"), single = tmp.resolve("single");
        Result r = run("train", "--seeds", "0,2", "--epochs", "1", "--out", sweep.toString(), "--quiet");
        assertEquals(0, r.code(), r.err());
        assertEquals(0, run("train", "--seed", "2", "--epochs", "1", "--out", single.toString(), "--quiet").code());
        var a = io.predcode.core.io.Safetensors.read(sweep.resolve("seed-2").resolve("model.safetensors")).tensors();
        var b = io.predcode.core.io.Safetensors.read(single.resolve("model.safetensors")).tensors();
        a.forEach((k, t) -> assertArrayEquals(t.data(), b.get(k).data(), k));
        JsonFields summary = json(sweep.resolve("seeds.json"));
        assertEquals(2, summary.list("seeds").size());
        double last0 = json(sweep.resolve("seed-0").resolve("metrics.json")).number("final_test_accuracy"), last2 = json(single.resolve("metrics.json")).number("final_test_accuracy");
        assertEquals((last0 + last2) / 2, summary.object("final_test_accuracy").number("mean"), 1e-12);
        assertEquals(Math.abs(last0 - last2) / Math.sqrt(2), summary.object("final_test_accuracy").number("sd"), 1e-12);
        assertTrue(r.out().contains("mean ± sd over 2 seeds"), r.out());
        assertTrue(r.out().contains("in " + sweep.resolve("seeds.json") + " and seeds.png") && Files.size(sweep.resolve("seeds.png")) > 1000, r.out());
        Result inspected = run("inspect", "--checkpoint", sweep.toString()); // the sweep's table again
        assertTrue(inspected.code() == 0 && inspected.out().startsWith(r.out().substring(r.out().indexOf("seeds: 2 runs"))), inspected.out() + inspected.err());
        assertArrayEquals(new long[]{0, 1, 2, 5, 7, 8}, SeedSweep.parse("0-2, 5,7-8"));
        // A sweep resumed with more seeds and epochs: each seed run so far goes on from its checkpoint, a new one starts afresh.
        Result more = run("train", "--seeds", "0,2,3", "--epochs", "2", "--out", sweep.toString(), "--quiet", "--resume");
        assertEquals(0, more.code(), more.err());
        assertTrue(more.out().contains("resuming " + sweep.resolve("seed-2")) && !more.out().contains("resuming " + sweep.resolve("seed-3")), more.out());
        assertEquals(3, json(sweep.resolve("seeds.json")).list("seeds").size());
        assertEquals(2, json(sweep.resolve("seed-3").resolve("metrics.json")).list("epochs").size());
        for (String bad : new String[]{"", "a", "3-1", "1,1", "0-2,2", "-1", "0-1000"}) {
            Result b2 = run("train", "--seeds", bad, "--epochs", "1", "--out", tmp.resolve("bad").toString(), "--quiet");
            assertEquals(2, b2.code(), bad + ": " + b2.err());
            assertTrue(b2.err().startsWith("predcode: --seeds"), bad + ": " + b2.err());
        }
        Result both = run("train", "--seeds", "0-1", "--seed", "3", "--epochs", "1", "--out", tmp.resolve("both").toString(), "--quiet");
        assertEquals(2, both.code());
        assertTrue(both.err().contains("give it or --seed, not both"), both.err());
    }

    @Test void mseOnOneHotTargetsTrainsAndReportsAccuracy(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("mse");
        Result r = run("train", "--loss", "mse", "--algorithm", "fixedpred", "--epochs", "2", "--out", out.toString(), "--quiet", "--lr", "0.005");
        assertEquals(0, r.code(), r.err());
        JsonFields m = json(out.resolve("metrics.json"));
        assertEquals("mse", m.object("settings").string("loss"));
        assertTrue(m.number("final_test_accuracy") > 0.6, "fixedpred with mse on digits: " + m.number("final_test_accuracy"));
        // Training accuracy on one-hot targets: the output's argmax against the class, as for cross-entropy (it used to read 0%).
        assertTrue(m.list("epochs").size() == 2 && JsonFields.of(m.list("epochs").getLast(), "metrics", "epochs").number("train_accuracy") > 0.5, r.out());
        // eval scores the checkpoint with the loss it was trained with (it used to report cross-entropy for every model)
        for (Path checkpoint : new Path[]{out, out.resolve("best")}) {
            Result e = run("eval", "--checkpoint", checkpoint.toString(), "--json");
            assertEquals(0, e.code(), e.err());
            JsonFields ev = JsonFields.of(Json.parse(e.out().trim(), "eval"), "eval", "");
            assertEquals("mse", ev.string("loss_function"));
            if (checkpoint == out) assertEquals(m.number("final_test_loss"), ev.number("loss"), 1e-6);
        }
        // --loss scores it with another loss (a model folder that names none, an export, is scored with cross-entropy);
        // the accuracy does not depend on it.
        Result ce = run("eval", "--checkpoint", out.toString(), "--json", "--loss", "cross-entropy");
        assertEquals(0, ce.code(), ce.err());
        JsonFields ceJson = JsonFields.of(Json.parse(ce.out().trim(), "eval"), "eval", "");
        assertEquals("cross_entropy", ceJson.string("loss_function"));
        assertEquals(m.number("final_test_accuracy"), ceJson.number("accuracy"), 1e-9);
        Result bad = run("eval", "--checkpoint", out.toString(), "--loss", "hinge");
        assertEquals(2, bad.code());
        assertTrue(bad.err().contains("--loss: unknown loss 'hinge'"), bad.err());
    }

    /** iPC, Z-IL and nudged PC from the command line, with the energy per layer in metrics.csv where there is one. */
    @Test void theNewerAlgorithmsTrain(@TempDir Path tmp) throws Exception {
        Path ipc = tmp.resolve("ipc"), zil = tmp.resolve("zil"), bp = tmp.resolve("bp"), centred = tmp.resolve("centred");
        Result r = run("train", "--algorithm", "ipc", "--belief-optimizer", "sgd:0.25", "--eta", "0.1", "--n", "8", "--epochs", "2", "--out", ipc.toString(), "--quiet");
        assertEquals(0, r.code(), r.err());
        assertTrue(json(ipc.resolve("metrics.json")).number("final_test_accuracy") > 0.85, r.out());
        List<String> csv = Files.readAllLines(ipc.resolve("metrics.csv"));
        assertTrue(csv.getFirst().contains("energy_layer1,energy_layer2,energy_layer3,validation_loss"), csv.getFirst());
        String[] row = csv.get(1).split(",", -1);
        for (int c = 5; c < 8; c++) assertTrue(Double.parseDouble(row[c]) >= 0, "energy in column " + c + ": " + csv.get(1));

        // Z-IL's updates are backprop's: the same run to float32 rounding.
        String[] common = {"--epochs", "2", "--quiet", "--optimizer", "sgd", "--lr", "0.05"};
        assertEquals(0, run(concat(new String[]{"train", "--algorithm", "zil", "--out", zil.toString()}, common)).code());
        assertEquals(0, run(concat(new String[]{"train", "--algorithm", "backprop", "--out", bp.toString()}, common)).code());
        assertEquals(json(bp.resolve("metrics.json")).number("final_test_loss"), json(zil.resolve("metrics.json")).number("final_test_loss"), 1e-4);
        assertTrue(Files.readAllLines(zil.resolve("metrics.csv")).getFirst().contains("energy_layer1"), "Z-IL forms errors: it reports their energy");
        assertFalse(Files.readAllLines(bp.resolve("metrics.csv")).getFirst().contains("energy"), "backprop forms no errors: no energy");

        r = run("train", "--algorithm", "pc", "--nudging", "centred:0.5", "--belief-optimizer", "sgd:0.5", "--eta", "0.1", "--n", "10", "--epochs", "2",
                "--optimizer", "adamw", "--weight-decay", "0.01", "--lr-schedule", "cosine", "--out", centred.toString(), "--quiet");
        assertEquals(0, r.code(), r.err());
        JsonFields settings = json(centred.resolve("metrics.json")).object("settings");
        assertEquals("centred:0.5", settings.string("nudging"));
        assertEquals("adamw", settings.string("optimizer"));
        assertTrue(json(centred.resolve("metrics.json")).number("final_test_accuracy") > 0.6, r.out());
    }

    /** PCX's option names (--inference-optimizer, --inference-momentum, --inference-lr, --T) train the same model as ours; --condense is recorded. */
    @Test void pcxOptionNamesAreAliases(@TempDir Path tmp) throws Exception {
        Path ours = tmp.resolve("ours"), pcx = tmp.resolve("pcx");
        String[] common = {"train", "--algorithm", "pc", "--epochs", "1", "--max-steps", "6", "--quiet"};
        Result r = run(concat(common, new String[]{"--belief-optimizer", "sgd:0.1", "--eta", "0.05", "--n", "5", "--out", ours.toString()}));
        assertEquals(0, r.code(), r.err());
        r = run(concat(common, new String[]{"--inference-optimizer", "sgd", "--inference-momentum", "0.1", "--inference-lr", "0.05", "--T", "5", "--out", pcx.toString()}));
        assertEquals(0, r.code(), r.err());
        assertEquals("sgd:0.1", json(pcx.resolve("metrics.json")).object("settings").string("belief_optimizer"));
        assertArrayEquals(Files.readAllBytes(ours.resolve("model.safetensors")), Files.readAllBytes(pcx.resolve("model.safetensors")));
        for (String[] bad : new String[][]{{"--inference-optimizer", "adam", "--inference-momentum", "0.1"}, {"--belief-optimizer", "sgd:0.5", "--inference-momentum", "0.1"},
                {"--inference-momentum", "1"}, {"--T", "0"}, {"--eta", "0.1", "--inference-lr", "0.2"}, {"--inference-lr", "x"}}) {
            r = run(concat(new String[]{"train", "--algorithm", "pc", "--quiet", "--out", tmp.resolve("bad").toString()}, bad));
            assertEquals(2, r.code(), String.join(" ", bad) + " -> " + r.err());
            assertEquals(1, r.err().strip().lines().count(), r.err());
            assertTrue(r.err().contains(bad[bad.length - 2]), r.err());
        }
        assertFalse(Files.exists(tmp.resolve("bad")), "a refused run writes nothing");

        Path never = tmp.resolve("never"); // STRICT's layer 1 relaxed plainly: the run records it
        r = run("train", "--condense", "never", "--epochs", "1", "--max-steps", "3", "--quiet", "--out", never.toString());
        assertEquals(0, r.code(), r.err());
        assertEquals("never", json(never.resolve("metrics.json")).object("settings").string("condense"));
    }

    @Test void generateDrawsInferredInputsPerClass(@TempDir Path tmp) throws Exception {
        Path run = tmp.resolve("run"), png = tmp.resolve("grid.png");
        assertEquals(0, run("train", "--epochs", "3", "--out", run.toString(), "--quiet").code());
        Path npy = tmp.resolve("generated.npy");
        Result r = run("generate", "--checkpoint", run.toString(), "--out", png.toString(), "--per-class", "4", "--steps", "100", "--npy", npy.toString());
        assertEquals(0, r.code(), r.err());
        // The inputs as an array too, in the data's raw units: predict takes them back as the classes generate reports.
        io.predcode.data.Npy.Array inferred = io.predcode.data.Npy.read(npy);
        assertArrayEquals(new int[]{40, 1, 8, 8}, inferred.shape());
        Result p = run("predict", "--checkpoint", run.toString(), "--input", npy.toString(), "--batch-size", "40");
        assertEquals(0, p.code(), p.err());
        List<String> rows = p.out().lines().skip(1).toList();
        for (int cls = 0; cls < 10; cls++) {
            int c = cls;
            long hits = java.util.stream.IntStream.range(0, 4).filter(k -> rows.get(c * 4 + k).split(",")[1].equals(Integer.toString(c))).count();
            assertTrue(r.out().contains("class " + cls + ": the model classifies " + hits + " of 4"), cls + ": " + hits + "\n" + r.out());
        }
        java.awt.image.BufferedImage im = javax.imageio.ImageIO.read(png.toFile());
        int tiles = 2 + 4 * (64 + 2); // 4 tiles of 8x8 pixels zoomed 8 times, with 2-pixel gaps
        assertTrue(im.getWidth() > tiles && im.getWidth() < tiles + 40, "the tiles and a margin with each row's class: " + im.getWidth());
        assertEquals(2 + 10 * (64 + 2), im.getHeight(), "a row per class");
        int labelled = 0; // the margin holds each row's name, light on black, beside the tiles
        for (int row = 0; row < 10; row++)
            for (int x = 0, y0 = 2 + row * 66; x < im.getWidth() - tiles; x++) for (int y = y0; y < y0 + 64; y++) if ((im.getRGB(x, y) & 0xff) > 128) { labelled++; y = y0 + 64; x = im.getWidth(); }
        assertEquals(10, labelled, "every row is named");
        long classes = r.out().lines().filter(l -> l.strip().startsWith("class ")).count();
        assertEquals(10, classes, r.out());
        assertFalse(r.out().contains("note: only"), r.out());
        // One step leaves the inputs where they started, which the model takes as one class or a few: a note says to relax longer.
        Result early = run("generate", "--checkpoint", run.toString(), "--out", png.toString(), "--per-class", "4", "--steps", "1", "--eta", "0.001");
        assertEquals(0, early.code(), early.err());
        assertTrue(early.out().contains("inferred inputs reach their class; the relaxation has not gone far enough: try --steps 10"), early.out());
        // A step size the relaxation runs off at is halved until it does not, and a line says so.
        Result halved = run("generate", "--checkpoint", run.toString(), "--out", png.toString(), "--per-class", "2", "--steps", "50", "--eta", "1000");
        assertEquals(0, halved.code(), halved.err());
        assertTrue(halved.out().startsWith("the relaxation diverged at eta 1000.0 (energy "), halved.out());
        java.util.regex.Matcher at = java.util.regex.Pattern.compile("relaxed for 50 steps \\(eta ([0-9.]+)\\); energy per sample [0-9.]+ -> ([0-9.]+);").matcher(halved.out());
        assertTrue(at.find() && Float.parseFloat(at.group(1)) < 1 && Double.isFinite(Double.parseDouble(at.group(2))), halved.out());
        // One that ends finite but above where it started ran off too (20 steps at eta 2 raised digits-mlp's energy to 1e22).
        Result raised = run("generate", "--checkpoint", run.toString(), "--out", png.toString(), "--per-class", "2", "--steps", "20", "--eta", "2");
        assertEquals(0, raised.code(), raised.err());
        java.util.regex.Matcher ranOff = java.util.regex.Pattern.compile("^the relaxation diverged at eta 2.0 \\(energy ([0-9.e+]+) -> ([0-9.e+]+)\\);").matcher(raised.out());
        assertTrue(ranOff.find() && Double.parseDouble(ranOff.group(2)) > Double.parseDouble(ranOff.group(1)), raised.out());
        java.util.regex.Matcher kept = java.util.regex.Pattern.compile("relaxed for 20 steps \\(eta ([0-9.]+)\\); energy per sample ([0-9.]+) -> ([0-9.]+);").matcher(raised.out());
        assertTrue(kept.find() && Float.parseFloat(kept.group(1)) < 2 && Double.parseDouble(kept.group(3)) < Double.parseDouble(kept.group(2)), raised.out());
        // With --tolerance it stops where the energy settled (read back every 50 steps; two reads with no new lowest at momentum 0.9), and says after how many steps.
        Result settled = run("generate", "--checkpoint", run.toString(), "--out", png.toString(), "--per-class", "4", "--steps", "20000", "--tolerance", "0.05");
        assertEquals(0, settled.code(), settled.err());
        java.util.regex.Matcher taken = java.util.regex.Pattern.compile("relaxed for (\\d+) steps \\(settled: under 0.05 of its energy in 100 steps\\)").matcher(settled.out());
        assertTrue(taken.find(), settled.out());
        assertTrue(Integer.parseInt(taken.group(1)) < 20000 && Integer.parseInt(taken.group(1)) % 50 == 1, settled.out());
        for (String[] bad : new String[][]{{"--per-class", "0"}, {"--out", tmp.resolve("grid.txt").toString()}, {"--npy", tmp.resolve("x.csv").toString()}, {"--steps", "0"}, {"--eta", "nan"},
                {"--tolerance", "-0.1"}, {"--tolerance", "1"}, {"--tolerance", "nan"}, {"--momentum", "1"}, {"--momentum", "-0.5"}}) {
            Result b = run(concat(new String[]{"generate", "--checkpoint", run.toString()}, bad));
            assertEquals(2, b.code(), String.join(" ", bad) + ": " + b.err());
        }
    }

    /**
     * On a Java runtime without java.desktop (the GPU kit's jlinked one), train runs to the end with a
     * note instead of training.png (it used to die after the first epoch on AWT's missing classes),
     * and generate, which has only a PNG to write, says so in one line. A child JVM limited to the kit's
     * modules stands in for that runtime.
     */
    @Test void withoutJavaDesktopTrainSkipsTheChartAndGenerateSaysWhy(@TempDir Path tmp) throws Exception {
        Path run = tmp.resolve("run");
        Result train = child("train", "--epochs", "2", "--out", run.toString(), "--quiet");
        assertEquals(0, train.code(), train.out() + train.err());
        assertEquals(1, train.out().lines().filter(l -> l.contains("training.png not written") && l.contains("java.desktop")).count(), train.out());
        assertTrue(Files.exists(run.resolve("metrics.json")) && Files.exists(run.resolve("checkpoint.safetensors")) && !Files.exists(run.resolve("training.png")), train.out());
        Result gen = child("generate", "--checkpoint", run.toString(), "--out", tmp.resolve("grid.png").toString());
        assertEquals(2, gen.code(), gen.out() + gen.err());
        assertTrue(gen.err().contains("java.desktop") && gen.err().strip().lines().count() == 1, gen.err());
    }

    /**
     * A file that fails inside a stream (a folder's listing, as eval's look for a stopped sweep's runs once met in /tmp
     * when a file there went away) is bad input in one line, not a stack trace; a bug is still thrown.
     */
    /** An npy folder "images" in {@code tmp}: 4 training and 4 test images of 28x28, classes 0-3. */
    private static Path imagesOf28x28(Path tmp) throws java.io.IOException {
        Path dir = Files.createDirectories(tmp.resolve("images"));
        for (String part : new String[]{"train", "test"}) {
            Files.write(dir.resolve("x_" + part + ".npy"), io.predcode.data.Npy.encode("|u1", new int[]{4, 28, 28}, new byte[4 * 784]));
            Files.write(dir.resolve("y_" + part + ".npy"), io.predcode.data.Npy.encode("|u1", new int[]{4}, new byte[]{0, 1, 2, 3}));
        }
        return dir;
    }

    /** Images of 28x28 with the default model (digits-mlp, for 8x8): the refusal names the built-in models that take them. */
    @Test void aModelThatDoesNotFitTheDataNamesTheOnesThatDo(@TempDir Path tmp) throws Exception {
        Path dir = imagesOf28x28(tmp);
        for (String[] command : new String[][]{{"train", "--out", tmp.resolve("run").toString()}, {"compare"}}) {
            Result r = run(concat(command, new String[]{"--data", "npy:" + dir}));
            assertEquals(2, r.code(), r.err());
            assertEquals("predcode: --model digits-mlp expects inputs of shape [1, 8, 8] but the data set's samples are [1, 28, 28];"
                    + " built-in models for these inputs: example-cnn, mlp, pcx-mlp, or one sized to them: --model mlp:64-64", r.err().strip(), command[0]);
        }
    }

    /** eval and compare --checkpoint without --data score the run on the data set it was trained on, not the digits. */
    @Test void aCheckpointIsScoredOnItsOwnDataByDefault(@TempDir Path tmp) throws Exception {
        Path dir = imagesOf28x28(tmp);
        Path run = tmp.resolve("run");
        assertEquals(0, run("train", "--data", "npy:" + dir, "--model", "mlp", "--loss", "mse", "--epochs", "1", "--validation", "0", "--quiet", "--out", run.toString()).code());
        Result e = run("eval", "--checkpoint", run.toString());
        assertEquals(0, e.code(), e.err());
        assertTrue(e.out().contains(" on images test: ") && e.out().contains("(4 samples)"), e.out());
        Result c = run("compare", "--checkpoint", run.toString(), "--algorithm", "fixedpred");
        assertEquals(0, c.code(), c.err());
        assertTrue(c.out().contains("4 samples of images test"), c.out());
        // Its export (the model alone, without training state) carries the settings too: scored on the same data, with its loss.
        Result checkpointJson = run("eval", "--checkpoint", run.toString(), "--json"), exportJson = run("eval", "--checkpoint", run.resolve("model.safetensors").toString(), "--json");
        assertEquals(0, exportJson.code(), exportJson.err());
        assertTrue(checkpointJson.out().contains("\"loss_function\": \"mse\"") && checkpointJson.out().contains("\"samples\": 4"), checkpointJson.out());
        assertEquals(checkpointJson.out(), exportJson.out(), "the export scores as its checkpoint");
        // A tampered copy of the settings names the file and the field.
        var export = io.predcode.core.io.Safetensors.read(run.resolve("model.safetensors"));
        Map<String, String> metadata = new java.util.LinkedHashMap<>(export.metadata());
        metadata.put("predcode_training_settings", metadata.get("predcode_training_settings").replace("\"mse\"", "\"hinge\""));
        Path tampered = tmp.resolve("tampered.safetensors");
        io.predcode.core.io.Safetensors.write(tampered, export.tensors(), metadata);
        Result hinge = run("eval", "--checkpoint", tampered.toString());
        assertEquals("predcode: " + tampered + ": field 'predcode_training_settings.loss': unknown loss 'hinge'; expected mse or cross-entropy", hinge.err().strip());
        Result digits = run("eval", "--checkpoint", run.toString(), "--data", "digits");
        assertEquals(2, digits.code(), "--data given is what is scored: " + digits.out());
        Files.delete(dir.resolve("x_test.npy"));
        Result moved = run("eval", "--checkpoint", run.toString());
        assertEquals(2, moved.code(), moved.out());
        assertTrue(moved.err().strip().endsWith("was trained on --data npy:" + dir + "; give --data to score it on another)"), moved.err());
    }

    /**
     * train --resume --out DIR alone goes on with the run as it was started: the options not given are the run's own,
     * and the model is the one a run never stopped trains. An option given is still checked against the run.
     */
    @Test void aResumeTakesTheRunsOwnSettings(@TempDir Path tmp) throws Exception {
        String[] options = {"--algorithm", "pc", "--T", "7", "--eta", "0.05", "--lr", "0.01", "--shuffle", "off", "--drop-last", "--epochs", "2", "--seed", "3",
                "--checkpoint-every", "7", "--quiet"};
        Path stopped = tmp.resolve("stopped"), never = tmp.resolve("never");
        assertEquals(0, run(concat(new String[]{"train", "--max-steps", "30", "--out", stopped.toString()}, options)).code());
        assertEquals(0, run(concat(new String[]{"train", "--out", never.toString()}, options)).code());
        Result r = run("train", "--resume", "--out", stopped.toString(), "--quiet");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().startsWith("resuming with the run's own settings for the options not given: --algorithm pc --epochs 2"
                + " --lr 0.01 --eta 0.05 --n 7 --seed 3 --checkpoint-every 7 --shuffle off --drop-last\n"), r.out());
        assertArrayEquals(Files.readAllBytes(never.resolve("model.safetensors")), Files.readAllBytes(stopped.resolve("model.safetensors")),
                "resumed with the run's own settings: the model of the run never stopped");
        for (String[] other : new String[][]{{"--eta", "0.1"}, {"--shuffle", "on"}, {"--algorithm", "strict"}}) {
            Result refused = run(concat(new String[]{"train", "--resume", "--out", stopped.toString(), "--epochs", "3"}, other));
            assertEquals(2, refused.code(), String.join(" ", other) + ": " + refused.out());
            assertTrue(refused.err().contains("--resume continues the same run"), refused.err());
        }
    }

    /**
     * A resume takes the run's backend too: a GPU run goes on on the GPU, and where there is none, the line says the
     * run was trained on it and how to go on on the CPU. (The run here is a CPU run whose checkpoint says cuda.)
     */
    @Test void aResumeTakesTheRunsBackend(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("run");
        assertEquals(0, run("train", "--epochs", "2", "--max-steps", "5", "--quiet", "--out", out.toString()).code());
        Path file = out.resolve("checkpoint.safetensors");
        var c = io.predcode.core.io.Safetensors.read(file);
        Map<String, String> metadata = new java.util.LinkedHashMap<>(c.metadata());
        metadata.put("training", metadata.get("training").replace("\"backend\":\"cpu\"", "\"backend\":\"cuda\""));
        assertTrue(metadata.get("training").contains("\"backend\":\"cuda\""), metadata.get("training"));
        io.predcode.core.io.Safetensors.write(file, c.tensors(), metadata);
        Result r = run("train", "--resume", "--out", out.toString(), "--quiet");
        assertTrue(r.out().startsWith("resuming with the run's own settings for the options not given: --epochs 2 --backend cuda\n"), r.out());
        if (cudaAvailable()) assertEquals(0, r.code(), r.err());
        else {
            assertEquals(2, r.code(), r.out());
            assertTrue(r.err().startsWith("predcode: backend 'cuda' is unavailable: ") && r.err().strip().endsWith("(the run was trained on it, as " + file
                    + " records; give --backend cpu to go on on the CPU)"), r.err());
            assertEquals(0, run("train", "--resume", "--out", out.toString(), "--quiet", "--backend", "cpu").code());
        }
        // A backend no one has heard of (a tampered file) names the file and the field.
        metadata.put("training", metadata.get("training").replace("\"backend\":\"cuda\"", "\"backend\":\"tpu\""));
        io.predcode.core.io.Safetensors.write(file, c.tensors(), metadata);
        Result tpu = run("train", "--resume", "--out", out.toString(), "--quiet");
        assertEquals("predcode: " + file + ": field 'training.settings': unknown backend 'tpu'; known backends: cpu, cuda", tpu.err().strip());
    }

    /**
     * A CPU run goes on on the threads it trained on, which split its sums: resumed with no options it ends as the run
     * never stopped, with a line that they are more than the cores; resumed on other threads it says it will not be the
     * run never stopped. (One more thread than the cores: never this machine's default.)
     */
    @Test void aResumeGoesOnOnItsThreads(@TempDir Path tmp) throws Exception {
        String threads = Integer.toString(Runtime.getRuntime().availableProcessors() + 1);
        Path stopped = tmp.resolve("stopped"), never = tmp.resolve("never");
        String[] options = {"--algorithm", "pc", "--n", "5", "--epochs", "2", "--threads", threads, "--quiet"};
        assertEquals(0, run(concat(new String[]{"train", "--max-steps", "30", "--out", stopped.toString()}, options)).code());
        assertEquals(0, run(concat(new String[]{"train", "--out", never.toString()}, options)).code());
        Result r = run("train", "--resume", "--out", stopped.toString(), "--quiet");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().startsWith("resuming with the run's own settings for the options not given: --algorithm pc --epochs 2 --n 5 --threads " + threads + "\n"), r.out());
        int cores = Runtime.getRuntime().availableProcessors();
        assertTrue(r.out().contains("note: the run goes on on the " + threads + " threads it trained on, more than this machine's " + cores + " cores: slower than"
                + " it could be (--threads " + cores + " is faster, but from there not bit for bit the run never stopped)\n"), r.out());
        assertArrayEquals(Files.readAllBytes(never.resolve("model.safetensors")), Files.readAllBytes(stopped.resolve("model.safetensors")));
        Result other = run("train", "--resume", "--out", stopped.toString(), "--epochs", "3", "--threads", "1", "--quiet");
        assertEquals(0, other.code(), other.err());
        assertTrue(other.out().contains("note: the run trained on " + threads + " threads and goes on on 1 thread, whose sums may round otherwise: from here it may"
                + " not be bit for bit the run never stopped (--threads " + threads + " is; a run started with --thread-invariant is on any threads)\n"), other.out());
        assertTrue(run("inspect", "--checkpoint", stopped.toString()).out().contains(", backend cpu, threads 1\n"), "inspect lists the threads");
        // The export is the model's, whatever threads trained it: no thread count in its settings.
        assertFalse(io.predcode.core.io.Safetensors.metadata(stopped.resolve("model.safetensors")).get("predcode_training_settings").contains("threads"));
    }

    /** A --seeds sweep resumed with only --seeds: each seed's run goes on with the sweep's settings, and ends as never stopped. */
    @Test void aSeedSweepResumesWithItsOwnSettings(@TempDir Path tmp) throws Exception {
        String[] options = {"--seeds", "0-1", "--algorithm", "backprop", "--lr", "0.01", "--epochs", "2", "--quiet"};
        Path stopped = tmp.resolve("stopped"), never = tmp.resolve("never");
        assertEquals(0, run(concat(new String[]{"train", "--max-steps", "10", "--out", stopped.toString()}, options)).code());
        assertEquals(0, run(concat(new String[]{"train", "--out", never.toString()}, options)).code());
        Result r = run("train", "--seeds", "0-1", "--resume", "--out", stopped.toString(), "--quiet");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().startsWith("resuming with the run's own settings for the options not given: --algorithm backprop --epochs 2 --lr 0.01\n"),
                r.out());
        for (String seed : new String[]{"seed-0", "seed-1"})
            assertArrayEquals(Files.readAllBytes(never.resolve(seed).resolve("model.safetensors")), Files.readAllBytes(stopped.resolve(seed).resolve("model.safetensors")), seed);
    }

    /**
     * A sweep records the options it was given (OUT/command.json, but --out, --max-steps and --quiet), so train --resume
     * --out DIR alone resumes a grid, or a --seeds sweep, and each run ends as never stopped; a tampered file is one line.
     */
    @Test void aSweepResumesWithOnlyItsFolder(@TempDir Path tmp) throws Exception {
        for (String[] sweep : new String[][]{{"--grid", "lr=0.01,0.001"}, {"--seeds", "0-1", "--lr", "0.01"}}) {
            String[] options = concat(sweep, new String[]{"--algorithm", "backprop", "--epochs", "2", "--quiet"});
            Path stopped = tmp.resolve(sweep[0].substring(2) + "-stopped"), never = tmp.resolve(sweep[0].substring(2) + "-never");
            assertEquals(0, run(concat(new String[]{"train", "--max-steps", "10", "--out", stopped.toString()}, options)).code());
            assertEquals(0, run(concat(new String[]{"train", "--out", never.toString()}, options)).code());
            Result r = run("train", "--resume", "--out", stopped.toString());
            assertEquals(0, r.code(), r.err());
            assertTrue(r.out().startsWith("resuming with the run's own settings for the options not given: " + String.join(" ", sweep) + " --algorithm backprop --epochs 2\n"),
                    r.out());
            List<String> runs = sweep[0].equals("--grid") ? List.of("lr-0.01", "lr-0.001") : List.of("seed-0", "seed-1");
            for (String run : runs) assertSameParameters(never.resolve(run), stopped.resolve(run));
        }
        Path file = tmp.resolve("grid-stopped").resolve("command.json");
        Files.writeString(file, "{\"train\": [\"--grid=lr=0.01\", 3]}");
        Result r = run("train", "--resume", "--out", file.getParent().toString());
        assertEquals(2, r.code(), r.out());
        assertEquals("predcode: " + file + ": field 'train': expected a list of train's options, as a sweep records them", r.err().strip());
    }

    /** A mistyped --checkpoint says that nothing is there, not that a safetensors file inside it is missing. */
    @Test void aCheckpointThatIsNotThereSaysSo(@TempDir Path dir) {
        Path none = dir.resolve("runs/latset");
        for (String command : new String[]{"eval", "predict", "inspect", "generate"}) {
            Result r = run(command, "--checkpoint", none.toString(), "--input", dir.resolve("x.npy").toString());
            if (!command.equals("predict")) r = run(command, "--checkpoint", none.toString());
            assertEquals(2, r.code(), command + ": " + r.err());
            assertEquals("predcode: " + none + ": no such run folder or .safetensors file", r.err().strip(), command);
        }
    }

    @Test void aFileThatFailsInsideAStreamIsOneLine(@TempDir Path dir) throws Exception {
        StringWriter err = new StringWriter();
        var gone = new java.io.UncheckedIOException(new java.nio.file.NoSuchFileException("/tmp/gone.so"));
        assertEquals(Main.BAD_INPUT, Main.report(gone, new PrintWriter(err, true)));
        assertEquals("predcode: /tmp/gone.so: not found", err.toString().strip());
        IllegalStateException bug = new IllegalStateException("a bug");
        assertSame(bug, assertThrows(IllegalStateException.class, () -> Main.report(bug, new PrintWriter(new StringWriter(), true))));

        // The look, now a walk that passes over what it cannot read, still finds a stopped sweep's run, and not its best epoch.
        Path run = Files.createDirectories(dir.resolve("point-1"));
        Files.writeString(run.resolve(io.predcode.core.io.Checkpoint.RESUME_FILE), "");
        Files.writeString(Files.createDirectories(run.resolve(TrainingRun.BEST_DIR)).resolve(io.predcode.core.io.Checkpoint.RESUME_FILE), "");
        assertEquals(List.of(run), Setup.unfinishedSweep(dir));
    }

    /** A finished run resumed says how it trains on; one past --max-steps (which counts all its steps) stops before training or scoring anything. */
    @Test void aResumeWithNothingToTrainSaysWhy(@TempDir Path tmp) throws Exception {
        Path run = tmp.resolve("run");
        assertEquals(0, run("train", "--epochs", "1", "--out", run.toString(), "--quiet").code());
        List<String> rows = Files.readAllLines(run.resolve("metrics.csv"));
        Result r = run("train", "--out", run.toString(), "--quiet", "--resume");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("stopped: all 1 epochs done before this resume; give --epochs more than 1 to train on\n"), r.out());
        r = run("train", "--epochs", "2", "--max-steps", "5", "--out", run.toString(), "--quiet", "--resume");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("stopped: reached --max-steps 5 before this resume (--max-steps counts all of a run's steps; it has taken 43)\n"), r.out());
        assertEquals(rows, Files.readAllLines(run.resolve("metrics.csv")), "nothing trained or scored");
        r = run("train", "--epochs", "2", "--out", run.toString(), "--quiet", "--resume");
        assertTrue(r.out().contains("stopped: all 2 epochs done\n"), r.out());
    }

    /** A run resumed on another kind of machine (here: the Java kernels for the native ones) says that its kernels may round otherwise; on its own, nothing. */
    @Test void aResumeOnAnotherKindOfMachineSaysSo(@TempDir Path tmp) throws Exception {
        Path run = tmp.resolve("run");
        assertEquals(0, run("train", "--epochs", "1", "--threads", "1", "--out", run.toString(), "--quiet").code());
        Result r = childWith(List.of("-Dpredcode.cpu.kernels=java"), "train", "--epochs", "2", "--out", run.toString(), "--quiet", "--resume");
        assertEquals(0, r.code(), r.out() + r.err());
        String recorded = json(run.resolve("metrics.json")).object("settings").string("backend_description");
        assertTrue(recorded.contains("Java kernels"), "the resumed run records where it went on: " + recorded);
        assertTrue(r.out().contains("note: the run trained on OpenBLAS ") && r.out().contains("; native kernels (")
                && r.out().contains(" and goes on on OpenBLAS ") && r.out().contains("; Java kernels (native: turned off")
                && r.out().contains(", whose kernels may round otherwise: from here it may not be bit for bit the run never stopped\n"), r.out());
        String note = r.out().lines().filter(l -> l.startsWith("note: ")).findFirst().orElseThrow();
        assertFalse(note.contains(" thread;") || note.contains(" threads;"), "the threads are the threads note's: " + note);
        r = run("train", "--epochs", "3", "--out", run.toString(), "--quiet", "--resume");
        assertTrue(r.out().contains("note: the run trained on OpenBLAS ") && r.out().contains("; Java kernels ("), "and back: " + r.out());
        assertEquals("OpenBLAS x (lib.so); native kernels (AVX2)", RunState.machine("OpenBLAS x (lib.so), 16 threads, thread-invariant; native kernels (AVX2)"));
        assertEquals("NVIDIA H200, driver 13.0, libcublas.so.13, CUDA graphs", RunState.machine("NVIDIA H200 (device 1), driver 13.0, libcublas.so.13, CUDA graphs"));
    }

    /**
     * Data files that no longer hold what a run trained on (regenerated, another download): its resume is refused in a
     * line naming both digests and the way to train on from its parameters; another test set is said by the resume and
     * by eval; the same data elsewhere (a copy) resumes without a word.
     */
    @Test void aRunKnowsWhetherItsDataFilesChanged(@TempDir Path tmp) throws Exception {
        Path dir = Files.createDirectories(tmp.resolve("data")), run = tmp.resolve("run");
        int n = 200, features = 64;
        byte[] x = new byte[n * features], y = new byte[n];
        for (int i = 0; i < x.length; i++) x[i] = (byte) (i * 7 % 17);
        for (int i = 0; i < n; i++) y[i] = (byte) (i % 3);
        Files.write(dir.resolve("x_train.npy"), io.predcode.data.Npy.encode("|u1", new int[]{n, 1, 8, 8}, x));
        Files.write(dir.resolve("y_train.npy"), io.predcode.data.Npy.encode("|u1", new int[]{n}, y));
        Files.write(dir.resolve("x_test.npy"), io.predcode.data.Npy.encode("|u1", new int[]{n, 1, 8, 8}, x));
        Files.write(dir.resolve("y_test.npy"), io.predcode.data.Npy.encode("|u1", new int[]{n}, y));
        Path copy = Files.createDirectories(tmp.resolve("copy"));
        try (var files = Files.list(dir)) { for (Path f : files.toList()) Files.copy(f, copy.resolve(f.getFileName())); }
        assertEquals(0, run("train", "--data", "npy:" + dir, "--epochs", "1", "--out", run.toString(), "--quiet").code());
        Result r = run("train", "--data", "npy:" + copy, "--epochs", "2", "--out", run.toString(), "--quiet", "--resume");
        assertEquals(0, r.code(), r.err());
        assertFalse(r.out().contains("note:"), r.out());

        y[5] = 0; // one label of the training set (it was 2)
        Files.write(dir.resolve("y_train.npy"), io.predcode.data.Npy.encode("|u1", new int[]{n}, y));
        r = run("train", "--data", "npy:" + dir, "--epochs", "3", "--out", run.toString(), "--quiet", "--resume");
        assertEquals(2, r.code(), r.out() + r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        assertTrue(r.err().startsWith("predcode: " + run.resolve("checkpoint.safetensors") + ": checkpoint was trained on other data than --data npy:" + dir
                + " holds now (the training set's digest crc32c:"), r.err());
        assertTrue(r.err().contains("; --resume continues the same run: to train on from its parameters on this data, start a run with --init "
                + run.resolve("model.safetensors") + "\n"), r.err());
        assertEquals(0, run("train", "--data", "npy:" + dir, "--init", run.resolve("model.safetensors").toString(), "--epochs", "1",
                "--out", tmp.resolve("onward").toString(), "--quiet").code(), "the way the line names");

        x[0] = 9; // one value of the test set the run has recorded since its resume: the copy's
        Files.write(copy.resolve("x_test.npy"), io.predcode.data.Npy.encode("|u1", new int[]{n, 1, 8, 8}, x));
        r = run("eval", "--checkpoint", run.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.err().startsWith("note: --data npy:" + copy + " holds another test set than " + run.resolve("checkpoint.safetensors") + "'s run scored"), r.err());
        assertTrue(run("eval", "--checkpoint", run.toString(), "--data", "npy:" + dir).err().isEmpty(), "another data set, given: scored as asked");
        assertTrue(run("eval", "--checkpoint", run.toString(), "--data", "npy:" + copy.resolve(".")).err().startsWith("note: "), "the run's files, written otherwise");
        r = run("eval", "--checkpoint", run.resolve("model.safetensors").toString());
        assertTrue(r.err().contains(" holds another test set than " + run.resolve("model.safetensors") + "'s run scored (digest crc32c:")
                && r.err().contains("): these scores are not comparable with its metrics.json"), "the export records it too: " + r.err());
        r = run("train", "--epochs", "3", "--out", run.toString(), "--quiet", "--resume");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("note: --data npy:" + copy + " holds another test set than the run scored its epochs on (digest crc32c:"), r.out());
        assertTrue(run("eval", "--checkpoint", run.toString()).err().isEmpty(), "the resumed run records the test set it scored since");
    }

    /**
     * A data set that fits the heap once but not with its validation split's copy: one line saying how to give Java
     * more, exit 4, where the JVM printed a stack trace. The serial collector makes where memory runs out certain.
     */
    @Test void runningOutOfHeapIsOneLine(@TempDir Path tmp) throws Exception {
        Path dir = Files.createDirectories(tmp.resolve("big"));
        int n = 8900, features = 784; // 7 M floats, 28 MB: under half of a 64 MB heap, as the .npy reader requires, but not twice
        byte[] y = new byte[n];
        for (int i = 0; i < n; i++) y[i] = (byte) (i % 2);
        Files.write(dir.resolve("x_train.npy"), io.predcode.data.Npy.encode("|u1", new int[]{n, features}, new byte[n * features]));
        Files.write(dir.resolve("y_train.npy"), io.predcode.data.Npy.encode("|u1", new int[]{n}, y));
        Files.write(dir.resolve("x_test.npy"), io.predcode.data.Npy.encode("|u1", new int[]{2, features}, new byte[2 * features]));
        Files.write(dir.resolve("y_test.npy"), io.predcode.data.Npy.encode("|u1", new int[]{2}, new byte[]{0, 1}));
        Result r = childWith(List.of("-Xmx64m", "-XX:+UseSerialGC"), "train", "--data", "npy:" + dir, "--model", "mlp", "--epochs", "1", "--out", tmp.resolve("run").toString());
        assertEquals(Main.OUT_OF_MEMORY, r.code(), r.out() + r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        assertTrue(r.err().startsWith("predcode: out of Java heap memory (") && r.err().contains("PREDCODE_JAVA_OPTS=-Xmx"), r.err());
        assertFalse(r.err().contains("--parallel-runs"), "one run: fewer at once would not help");

        // Runs at once each hold their own training part: with 6 of a 12.5 MB set's (11.3 MB each, beside the set) and
        // their runs' own, 6 seeds need about 170-190 MB (measured), and the line says that fewer at once would help.
        Path small = Files.createDirectories(tmp.resolve("small"));
        int m = 4000;
        Files.write(small.resolve("x_train.npy"), io.predcode.data.Npy.encode("|u1", new int[]{m, features}, new byte[m * features]));
        Files.write(small.resolve("y_train.npy"), io.predcode.data.Npy.encode("|u1", new int[]{m}, java.util.Arrays.copyOf(y, m)));
        Files.copy(dir.resolve("x_test.npy"), small.resolve("x_test.npy"));
        Files.copy(dir.resolve("y_test.npy"), small.resolve("y_test.npy"));
        r = childWith(List.of("-Xmx144m", "-XX:+UseSerialGC"), "train", "--data", "npy:" + small, "--model", "mlp", "--epochs", "1", "--max-steps", "1", "--quiet",
                "--seeds", "0-5", "--parallel-runs", "6", "--out", tmp.resolve("runs").toString());
        assertEquals(Main.OUT_OF_MEMORY, r.code(), r.out() + r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        assertTrue(r.err().contains("train fewer runs at once (--parallel-runs 6: each holds its own training part)"), r.err());
        // A grid's points on one seed share one split: six at once fit where six seeds did not (about 120 MB, measured).
        r = childWith(List.of("-Xmx144m", "-XX:+UseSerialGC"), "train", "--data", "npy:" + small, "--model", "mlp", "--epochs", "1", "--max-steps", "1", "--quiet",
                "--grid", "lr=0.001,0.002,0.003,0.004,0.005,0.006", "--parallel-runs", "6", "--out", tmp.resolve("grid").toString());
        assertEquals(0, r.code(), r.out() + r.err());
    }

    /** A second run into a folder that holds one is refused, not a silent replacement of its model: --resume or --overwrite says which. */
    @Test void aRunIsNotReplacedByMistake(@TempDir Path tmp) throws Exception {
        Path run = tmp.resolve("run");
        assertEquals(0, run("train", "--epochs", "1", "--out", run.toString(), "--quiet").code());
        byte[] model = Files.readAllBytes(run.resolve("model.safetensors"));
        Result again = run("train", "--epochs", "1", "--seed", "5", "--out", run.toString(), "--quiet");
        assertEquals(Main.BAD_INPUT, again.code());
        assertEquals("predcode: --out " + run + " holds a run (" + run.resolve("checkpoint.safetensors") + "); --resume continues it, --overwrite replaces it, or give another --out",
                again.err().strip());
        assertArrayEquals(model, Files.readAllBytes(run.resolve("model.safetensors")));
        Result both = run("train", "--resume", "--overwrite", "--out", run.toString(), "--quiet");
        assertEquals(Main.BAD_INPUT, both.code());
        assertTrue(both.err().contains("give one"), both.err());
        assertEquals(0, run("train", "--epochs", "1", "--seed", "5", "--out", run.toString(), "--quiet", "--overwrite").code());
        assertFalse(java.util.Arrays.equals(model, Files.readAllBytes(run.resolve("model.safetensors"))), "--overwrite replaced the run");
        // An exported model alone (no training state) is a run too; with --seeds, each seed's folder is looked at.
        Path sweep = tmp.resolve("sweep");
        Files.createDirectories(sweep.resolve("seed-1"));
        Files.write(sweep.resolve("seed-1").resolve("model.safetensors"), model);
        Result seeds = run("train", "--seeds", "0-1", "--epochs", "1", "--out", sweep.toString(), "--quiet");
        assertEquals(Main.BAD_INPUT, seeds.code());
        assertTrue(seeds.err().contains(sweep.resolve("seed-1").resolve("model.safetensors").toString()), seeds.err());
        assertFalse(Files.exists(sweep.resolve("seed-0")), "refused before any seed ran");
    }

    /**
     * A save that fails (a full disk; here a file-size limit, which fails the write as a full disk does, without root)
     * stops the run in one line naming the file and saying that the run's checkpoint is whole; it is, byte for byte, and
     * --resume goes on from it.
     */
    @Test void aSaveThatFailsStopsTheRunAndLeavesItResumable(@TempDir Path tmp) throws Exception {
        Path run = tmp.resolve("run");
        assertEquals(0, run("train", "--epochs", "2", "--out", run.toString(), "--quiet").code());
        byte[] checkpoint = Files.readAllBytes(run.resolve("checkpoint.safetensors"));
        // Files of at most 60 KiB: metrics.csv fits, a checkpoint (83 KB) does not. The JVM ignores SIGXFSZ, so the write fails (EFBIG).
        Result r = childWith(List.of("bash", "-c", "ulimit -f 60 && exec \"$0\" \"$@\""), List.of(), "train", "--epochs", "4", "--resume", "--out", run.toString(), "--quiet");
        assertEquals(Main.BAD_INPUT, r.code(), r.out() + r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        assertTrue(r.err().contains("checkpoint.safetensors: not written (") && r.err().contains("saving epoch 3 stopped the run")
                && r.err().contains(run.resolve("checkpoint.safetensors") + " is a whole checkpoint: --resume continues from it"), r.err());
        assertArrayEquals(checkpoint, Files.readAllBytes(run.resolve("checkpoint.safetensors")));
        try (var files = Files.list(run)) {
            assertEquals(List.of(), files.filter(f -> f.getFileName().toString().endsWith(".tmp")).toList(), "no temporary file left behind");
        }
        assertEquals(0, run("train", "--epochs", "4", "--resume", "--out", run.toString(), "--quiet").code());
        List<String> epochs = Files.readAllLines(run.resolve("metrics.csv")).stream().skip(1).map(l -> l.split(",")[1]).distinct().toList();
        assertEquals(List.of("1", "2", "3", "4"), epochs);
        assertEquals(4 * 43, Files.readAllLines(run.resolve("metrics.csv")).size() - 1, "each epoch's steps once");
    }

    /** Runs the CLI in a new JVM with only the GPU kit runtime's modules (bench/gpu/prepare.sh's jlink). */
    private static Result child(String... args) throws Exception {
        return childWith(List.of("--limit-modules", "java.base,jdk.unsupported,java.management,java.logging,java.xml"), args);
    }

    /** Runs the CLI in a new JVM with these options. */
    private static Result childWith(List<String> jvmOptions, String... args) throws Exception {
        return childWith(List.of(), jvmOptions, args);
    }

    /** Runs the CLI in a new JVM with these options, started by {@code launcher} (e.g. a shell that sets a limit first). */
    private static Result childWith(List<String> launcher, List<String> jvmOptions, String... args) throws Exception {
        List<String> cmd = new java.util.ArrayList<>(launcher);
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(jvmOptions);
        cmd.addAll(List.of("--enable-native-access=ALL-UNNAMED", "-cp", classPath(), "io.predcode.cli.Main"));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(false).start();
        var out = java.util.concurrent.CompletableFuture.supplyAsync(() -> read(p.getInputStream()));
        String err = read(p.getErrorStream());
        assertTrue(p.waitFor(120, java.util.concurrent.TimeUnit.SECONDS), "the child JVM did not finish in 120 s");
        return new Result(p.exitValue(), out.get(), err);
    }

    /** This JVM's class path and module path (surefire may put the classes on either), as one class path. */
    static String classPath() {
        return java.util.stream.Stream.of(System.getProperty("jdk.module.path"), System.getProperty("java.class.path"))
                .filter(p -> p != null && !p.isEmpty()).collect(java.util.stream.Collectors.joining(java.io.File.pathSeparator));
    }

    private static String read(java.io.InputStream in) {
        try (in) { return new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8); }
        catch (IOException e) { throw new java.io.UncheckedIOException(e); }
    }

    /** --spark local[2]: the same outputs as a run in one process (the energies too), and a checkpoint from either resumes in the other. */
    @Test void sparkTrainsAndResumesAcrossModes(@TempDir Path tmp) throws Exception {
        Path run = tmp.resolve("run"), straight = tmp.resolve("straight");
        Result r = run("train", "--spark", "local[2]", "--epochs", "1", "--batch-size", "64", "--out", run.toString(), "--quiet");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("spark: local[2], 2 partitions of 32 samples a step, 21 steps an epoch"), r.out());
        for (String f : new String[]{"metrics.csv", "metrics.json", "checkpoint.safetensors", "best/model.safetensors"}) assertTrue(Files.exists(run.resolve(f)), f);
        assertEquals(21, Files.readAllLines(run.resolve("metrics.csv")).size() - 1, "a row per step");
        List<String> rows = Files.readAllLines(run.resolve("metrics.csv"));
        assertTrue(rows.getFirst().contains(",energy_layer1,energy_layer2,energy_layer3,"), "the global batch's energies, as one process reports them: " + rows.getFirst());
        for (String row : rows.subList(1, rows.size())) assertTrue(Double.parseDouble(row.split(",", -1)[7]) > 0, "the output's energy: " + row);
        // A bare resume goes on where the run trained, on its partitions: the run never stopped, to the bit.
        r = run("train", "--epochs", "2", "--out", run.toString(), "--quiet", "--resume");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("resuming with the run's own settings for the options not given: --batch-size 64 --spark local[2] --spark-partitions 2\n"), r.out());
        assertFalse(r.out().contains("note:"), r.out());
        assertEquals(0, run("train", "--spark", "local[2]", "--epochs", "2", "--batch-size", "64", "--out", straight.toString(), "--quiet").code());
        assertArrayEquals(tensorBytes(straight.resolve("checkpoint.safetensors")), tensorBytes(run.resolve("checkpoint.safetensors")), "resumed on Spark as it trained");
        // --spark none goes on in one process, whose batches are not the shard plan's: said, not passed off as the same run.
        r = run("train", "--spark", "none", "--epochs", "3", "--out", run.toString(), "--quiet", "--resume");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("note: the run trained on Spark (local[2], 2 partitions) and goes on in one process, which draws each epoch's batches otherwise: from here it"
                + " is a run with the same settings, not the one never stopped (--resume with no --spark options goes on where it trained)\n"), r.out());
        assertFalse(r.out().contains("spark: local"), "in one process: " + r.out());
        r = run("train", "--spark", "local[2]", "--epochs", "4", "--out", run.toString(), "--quiet", "--resume"); // and back on Spark
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("note: the run trained in one process and goes on on Spark (local[2], 2 partitions), which draws each epoch's batches otherwise"), r.out());
        r = run("train", "--epochs", "5", "--out", run.toString(), "--quiet", "--resume"); // where it was
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("spark: local[2], 2 partitions") && !r.out().contains("note:"), r.out());
        assertTrue(run("inspect", "--checkpoint", run.toString()).out().contains(", spark local[2], spark_partitions 2, spark_threads 1\n"), "inspect says where it trained");
        // Each executor splits its sums over --threads (one where it is 0): other threads round otherwise, and a bare resume takes the run's.
        r = run("train", "--threads", "2", "--epochs", "6", "--out", run.toString(), "--quiet", "--resume");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("note: the run trained on Spark (local[2], 2 partitions of 1 thread) and goes on on Spark (local[2], 2 partitions of 2 threads), whose sums"
                + " may round otherwise: from here it may not be bit for bit the run never stopped (--threads 1 is;"), r.out());
        r = run("train", "--epochs", "7", "--max-steps", "140", "--out", run.toString(), "--quiet", "--resume");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("--spark local[2] --spark-partitions 2 --threads 2\n") && !r.out().contains("note:"), r.out());
        // Inside an epoch: the epoch in progress goes on in the other order from where it stopped (127 steps: 6 epochs, the one in one process 22; 140: 13 into the 7th).
        r = run("train", "--spark-partitions", "1", "--epochs", "7", "--out", run.toString(), "--quiet", "--resume");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("goes on on Spark (local[2], 1 partition), which draws each epoch's batches otherwise (the epoch in progress from its batch 14 on)"), r.out());
        assertFalse(run("train", "--spark", "none", "--spark-partitions", "2", "--epochs", "8", "--out", run.toString(), "--quiet", "--resume").err().isEmpty());
        String header = new String(Files.readAllBytes(run.resolve("model.safetensors")), java.nio.charset.StandardCharsets.ISO_8859_1);
        assertFalse(header.contains("spark_") || header.contains("local[2]"), "the export leaves out where it trained, as it does the threads");
    }

    /** A Spark run whose cluster is gone: its resume says so in a line, and how to go on; --spark none goes on in one process. */
    @Test void aSparkRunWhoseClusterIsGoneSaysHowToGoOn(@TempDir Path tmp) throws Exception {
        Path run = tmp.resolve("run");
        assertEquals(0, run("train", "--spark", "local[2]", "--max-steps", "3", "--batch-size", "64", "--out", run.toString(), "--quiet").code());
        Path file = run.resolve("checkpoint.safetensors");
        var c = io.predcode.core.io.Safetensors.read(file);
        var meta = new java.util.LinkedHashMap<>(c.metadata());
        assertTrue(meta.get("training").contains("\"spark\":\"local[2]\""), meta.get("training"));
        meta.put("training", meta.get("training").replace("\"spark\":\"local[2]\"", "\"spark\":\"spark://127.0.0.1:1\"")); // a port nothing listens on
        io.predcode.core.io.Safetensors.write(file, c.tensors(), meta);
        Result r = run("train", "--out", run.toString(), "--quiet", "--resume");
        assertEquals(2, r.code(), r.out() + r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        assertTrue(r.err().contains(file + ": field 'training.settings': --spark spark://127.0.0.1:1: the master does not answer")
                && r.err().contains("(the run trained there; give --spark MASTER where its cluster is now, or --spark none to go on in one process)"), r.err());
        r = run("train", "--spark", "none", "--max-steps", "6", "--out", run.toString(), "--quiet", "--resume");
        assertEquals(0, r.code(), r.out() + r.err());
        assertTrue(r.out().contains("note: the run trained on Spark (spark://127.0.0.1:1, 2 partitions) and goes on in one process"), r.out());
    }

    /** Barrier jobs (the default) and a job per step give the same run: losses step by step, and the checkpoint's tensors (parameters and Adam's state) to the bit, with a schedule and a step limit that cuts a job short. */
    @Test void sparkBarrierJobsEqualAJobPerStep(@TempDir Path tmp) throws Exception {
        Path barrier = tmp.resolve("barrier"), perStep = tmp.resolve("step"), strings = tmp.resolve("allgather");
        String[] common = {"train", "--spark", "local[2]", "--epochs", "2", "--max-steps", "25", "--lr-schedule", "cosine", "--batch-size", "64", "--quiet"};
        Result a = run(concat(common, new String[]{"--out", barrier.toString()})), b = run(concat(common, new String[]{"--out", perStep.toString(), "--spark-steps-per-job", "1"})),
                c = run(concat(common, new String[]{"--out", strings.toString(), "--spark-conf", "spark.predcode.exchange=allgather"}));
        assertEquals(0, a.code(), a.err());
        assertEquals(0, b.code(), b.err());
        assertEquals(0, c.code(), c.err());
        assertEquals(lossColumn(barrier.resolve("metrics.csv")), lossColumn(strings.resolve("metrics.csv")), "the updates exchanged through allGather's strings");
        assertArrayEquals(tensorBytes(barrier.resolve("checkpoint.safetensors")), tensorBytes(strings.resolve("checkpoint.safetensors")));
        assertTrue(a.out().contains("up to 20 steps per barrier job"), a.out());
        assertTrue(b.out().contains("a job per step"), b.out());
        List<String> la = lossColumn(barrier.resolve("metrics.csv")), lb = lossColumn(perStep.resolve("metrics.csv"));
        assertEquals(25, la.size(), "21 steps, then 4 of the second epoch's (--max-steps 25)");
        assertEquals(lb, la);
        assertArrayEquals(tensorBytes(perStep.resolve("checkpoint.safetensors")), tensorBytes(barrier.resolve("checkpoint.safetensors")));
    }

    /** --stable-relaxation (on by default) guards STRICT on Spark as in one process: eta halved where the relaxation raised the energy, and resumed lowered. */
    @Test void sparkGuardsTheRelaxationAsOneProcessDoes(@TempDir Path tmp) throws Exception {
        String event = "step 1: STRICT's relaxation raised the energy at eta 8.0; relaxing with eta 0.5 from here on";
        Path run = tmp.resolve("spark");
        String[] common = {"train", "--eta", "8", "--batch-size", "64", "--epochs", "2", "--quiet"};
        Result spark = run(concat(common, new String[]{"--spark", "local[2]", "--max-steps", "3", "--out", run.toString()})),
                one = run(concat(common, new String[]{"--max-steps", "3", "--out", tmp.resolve("one").toString()}));
        assertEquals(0, spark.code(), spark.err());
        assertTrue(spark.out().contains(event) && one.out().contains(event), spark.out() + one.out());
        Result resumed = run(concat(common, new String[]{"--spark", "local[2]", "--max-steps", "25", "--out", run.toString(), "--resume"}));
        assertEquals(0, resumed.code(), resumed.err());
        assertFalse(resumed.out().contains("at eta 8.0"), "the resumed run relaxes with the lowered eta: " + resumed.out());
        Result unguarded = run(concat(common, new String[]{"--spark", "local[2]", "--max-steps", "3", "--stable-relaxation", "off", "--out", tmp.resolve("off").toString()}));
        assertFalse(unguarded.out().contains("relaxing with eta"), unguarded.out());
        // Averaged local steps: each shard guards its own batch's relaxation; the run takes the smallest eta a shard took.
        Result local = run(concat(common, new String[]{"--spark", "local[2]", "--spark-average-every", "3", "--max-steps", "3", "--out", tmp.resolve("local").toString()}));
        assertEquals(0, local.code(), local.err());
        assertTrue(local.out().contains("step 1: STRICT's relaxation raised the energy at eta 8.0; relaxing with eta"), local.out());
        // Its resume goes on averaging (the run's own setting), and says what it cannot carry over: the shards' optimizers.
        local = run("train", "--max-steps", "6", "--out", tmp.resolve("local").toString(), "--quiet", "--resume");
        assertEquals(0, local.code(), local.err());
        assertTrue(local.out().contains("--spark local[2] --spark-partitions 2 --spark-average-every 3\n"), local.out());
        assertTrue(local.out().contains("note: the run takes local steps averaged every 3, whose shards' optimizer states live on their executors, not in the"
                + " checkpoint: they start afresh here, so from here it is not the run never stopped\n"), local.out());
    }

    /** --monitor-every on Spark: every K-th step, a job of its own, records each block's angle to the gradient; the steps between still run in barrier jobs. */
    @Test void sparkMonitorsTheUpdatesAlignment(@TempDir Path tmp) throws Exception {
        Path run = tmp.resolve("run");
        Result r = run("train", "--spark", "local[2]", "--monitor-every", "4", "--max-steps", "9", "--batch-size", "64", "--out", run.toString(), "--quiet");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("up to 20 steps per barrier job"), r.out());
        List<String> rows = Files.readAllLines(run.resolve("metrics.csv"));
        assertTrue(rows.getFirst().contains(",angle_block0,relative_error_block0,"), rows.getFirst());
        for (String row : rows.subList(1, rows.size())) {
            String[] f = row.split(",", -1);
            boolean due = Integer.parseInt(f[0]) % 4 == 0;
            assertEquals(due, !f[5].isEmpty(), "step " + f[0] + ": " + row);
            if (due) assertTrue(Double.parseDouble(f[5]) >= 0 && Double.parseDouble(f[5]) < 90, row);
        }
    }

    static List<String> lossColumn(Path csv) throws IOException {
        return Files.readAllLines(csv).stream().skip(1).map(l -> l.split(",")[2]).toList();
    }

    /** A safetensors file's tensor data, after its JSON header (whose metadata holds timings). */
    static byte[] tensorBytes(Path f) throws IOException {
        byte[] all = Files.readAllBytes(f);
        long header = java.nio.ByteBuffer.wrap(all, 0, 8).order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong();
        return java.util.Arrays.copyOfRange(all, (int) (8 + header), all.length);
    }

    @Test void sparkLocalStepsWithAveraging(@TempDir Path tmp) throws Exception {
        Path run = tmp.resolve("run");
        Result r = run("train", "--spark", "local[2]", "--spark-average-every", "4", "--epochs", "2", "--batch-size", "64", "--out", run.toString(), "--quiet");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("local steps averaged every 4 (not exact"), r.out());
        assertEquals(42, Files.readAllLines(run.resolve("metrics.csv")).size() - 1, "a row per step, 21 an epoch");
        assertTrue(json(run.resolve("metrics.json")).number("final_test_accuracy") > 0.5, r.out());
    }

    @Test void sparkMisuseIsOneLine(@TempDir Path tmp) {
        long t0 = System.nanoTime();
        for (String[] bad : new String[][]{{"--spark", "spark://127.0.0.1:1"}, {"--spark", "yarn"}, {"--spark", "local[0]"}, {"--spark", "local[2]", "--algorithm", "ipc"},
                {"--spark", "local[2]", "--batch-size", "63"}, {"--spark", "local[2]", "--spark-partitions", "0"}, {"--spark", "local[2]", "--spark-average-every", "2", "--monitor-every", "3"},
                {"--spark", "local[2]", "--spark-average-every", "0"}, {"--spark", "local[2]", "--spark-steps-per-job", "0"},
                {"--spark", "local[2]", "--spark-conf", "spark.predcode.exchange=bogus"}}) {
            Result r = run(concat(new String[]{"train", "--epochs", "1", "--quiet", "--out", tmp.resolve("x").toString()}, bad));
            assertEquals(2, r.code(), String.join(" ", bad) + ": " + r.out() + r.err());
            assertEquals(1, r.err().strip().lines().count(), "one line: " + r.err());
        }
        // Each: the options, then what its line must name. The last two start Spark, which refuses the setting.
        for (String[] bad : new String[][]{{"--spark", "local[99999999999]", "at most local[10000]"}, {"--spark-partitions", "2", "--spark-partitions works on a Spark run"},
                {"--spark-conf", "a=b", "--spark-conf works on a Spark run"}, {"--spark", "local[1]", "--spark-conf", "=x", "expected KEY=VALUE with a key"},
                {"--spark", "local[1]", "--spark-conf", "spark.master=local[4]", "the master is --spark's"},
                {"--spark", "local[1]", "--spark-conf", "spark.task.cpus=0", "Spark did not start with --spark-conf spark.task.cpus"},
                {"--spark", "local[1]", "--spark-conf", "spark.serializer=nope.Nope", "with --spark-conf spark.serializer: class not found: nope.Nope"}}) {
            String[] options = java.util.Arrays.copyOf(bad, bad.length - 1);
            Result r = run(concat(new String[]{"train", "--epochs", "1", "--quiet", "--out", tmp.resolve("x").toString()}, options));
            assertEquals(2, r.code(), String.join(" ", options) + ": " + r.out() + r.err());
            assertEquals(1, r.err().strip().lines().count(), "one line: " + r.err());
            assertTrue(r.err().contains(bad[bad.length - 1]), String.join(" ", options) + ": " + r.err());
        }
        assertTrue(System.nanoTime() - t0 < 60e9, "bad Spark settings are refused in bounded time");
    }

    /** Inputs mapped to [-1, 1] are recorded in the checkpoint: eval maps the test set the same way and finds the run's own accuracy. */
    @Test void inputRangeTravelsWithTheCheckpoint(@TempDir Path tmp) throws Exception {
        Path run = tmp.resolve("run");
        Result r = run("train", "--input-range", "-1:1", "--epochs", "2", "--out", run.toString(), "--quiet");
        assertEquals(0, r.code(), r.err());
        JsonFields m = json(run.resolve("metrics.json"));
        assertEquals("-1:1", m.object("settings").string("input_range"));
        Result e = run("eval", "--checkpoint", run.toString(), "--json");
        assertEquals(0, e.code(), e.err());
        assertEquals(m.number("final_test_accuracy"), JsonFields.of(Json.parse(e.out().trim(), "eval"), "eval", "").number("accuracy"), 1e-9);
        Result changed = run("train", "--epochs", "3", "--out", run.toString(), "--quiet", "--resume", "--input-range", "0:1");
        assertEquals(2, changed.code(), "a resume must keep the input range: " + changed.err());
        Result kept = run("train", "--epochs", "3", "--out", run.toString(), "--quiet", "--resume");
        assertEquals(0, kept.code(), kept.err());
        assertEquals("-1:1", json(run.resolve("metrics.json")).object("settings").string("input_range"), "a resume without the option keeps the run's");
    }

    @Test void nudgingAndEnergyOptionsAreChecked(@TempDir Path tmp) {
        for (String[] bad : new String[][]{{"--nudging", "positive:0.1"}, {"--algorithm", "pc", "--energy", "torch2pc", "--nudging", "positive:0.1"},
                {"--algorithm", "pc", "--nudging", "sideways:1"}, {"--algorithm", "ipc", "--nudging", "centred:0.1"}, {"--algorithm", "pc", "--energy", "joules"},
                {"--algorithm", "ipc", "--monitor-every", "5"}, {"--lr-schedule", "linear"}, {"--optimizer", "adagrad"}}) {
            Result r = run(concat(new String[]{"train", "--epochs", "1", "--quiet", "--out", tmp.resolve("x").toString()}, bad));
            assertEquals(2, r.code(), String.join(" ", bad) + ": " + r.out() + r.err());
            assertEquals(1, r.err().strip().lines().count(), "one line: " + r.err());
        }
    }

    @Test void resumeContinuesBitForBit(@TempDir Path tmp) throws Exception {
        Path a = tmp.resolve("a"), b = tmp.resolve("b");
        String[] common = {"--algorithm", "fixedpred", "--optimizer", "sgd", "--lr", "0.05", "--quiet", "--batch-size", "64"};
        assertEquals(0, run(concat(new String[]{"train", "--epochs", "3", "--out", a.toString()}, common)).code());
        assertEquals(0, run(concat(new String[]{"train", "--epochs", "1", "--out", b.toString()}, common)).code());
        Result r = run(concat(new String[]{"train", "--epochs", "3", "--out", b.toString(), "--resume"}, common));
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("resuming"), r.out());
        assertArrayEquals(Files.readAllBytes(a.resolve("model.safetensors")), Files.readAllBytes(b.resolve("model.safetensors")));
        assertEquals(Files.readString(a.resolve("metrics.csv")).lines().map(CliTest::withoutTime).toList(),
                Files.readString(b.resolve("metrics.csv")).lines().map(CliTest::withoutTime).toList(), "same losses (and validation numbers) at every step");
    }

    /** A cosine schedule spans --epochs: a run stopped after its first epoch (--max-steps) and resumed ends as the run that never stopped. */
    @Test void resumeFollowsTheSameSchedule(@TempDir Path tmp) throws Exception {
        Path a = tmp.resolve("a"), b = tmp.resolve("b");
        String[] common = {"train", "--epochs", "3", "--optimizer", "adamw", "--weight-decay", "0.01", "--lr-schedule", "cosine", "--quiet", "--batch-size", "64"};
        assertEquals(0, run(concat(common, new String[]{"--out", a.toString()})).code());
        assertEquals(0, run(concat(common, new String[]{"--out", b.toString(), "--max-steps", "22"})).code()); // 1347 training samples / 64: 22 steps, one epoch
        assertEquals(0, run(concat(common, new String[]{"--out", b.toString(), "--resume"})).code());
        assertArrayEquals(Files.readAllBytes(a.resolve("model.safetensors")), Files.readAllBytes(b.resolve("model.safetensors")));
        Result changed = run("train", "--epochs", "4", "--lr-schedule", "cosine", "--optimizer", "adamw", "--weight-decay", "0.01", "--batch-size", "64", "--quiet",
                "--out", b.toString(), "--resume");
        assertEquals(2, changed.code());
        assertTrue(changed.err().contains("--epochs 3"), changed.err());
    }

    /** Rows written after the last checkpoint (a kill between the two, a diverged run) are not kept twice by a resume. */
    @Test void resumeNeverDuplicatesMetricRows(@TempDir Path tmp) throws Exception {
        Path a = tmp.resolve("a");
        assertEquals(0, run("train", "--epochs", "1", "--out", a.toString(), "--quiet").code());
        List<String> once = Files.readAllLines(a.resolve("metrics.csv"));
        // As if the next epoch had written 5 rows and the process was killed before its checkpoint.
        StringBuilder extra = new StringBuilder();
        for (int s = 1; s <= 5; s++) extra.append(once.size() - 1 + s).append(",2,2.0,0.1,1.0,,\n");
        Files.writeString(a.resolve("metrics.csv"), extra.toString(), java.nio.file.StandardOpenOption.APPEND);
        assertEquals(0, run("train", "--epochs", "2", "--out", a.toString(), "--quiet", "--resume").code());
        List<String> steps = Files.readAllLines(a.resolve("metrics.csv")).stream().skip(1).map(l -> l.split(",")[0]).toList();
        assertEquals(steps.size(), new java.util.HashSet<>(steps).size(), "duplicate step rows: " + steps);
        assertEquals(2 * (once.size() - 1), steps.size());
    }

    /** A metrics.csv row without its "ms" column (the step's wall time, the one column a rerun changes). */
    static String withoutTime(String row) {
        List<String> f = new java.util.ArrayList<>(List.of(row.split(",", -1)));
        f.remove(4);
        return String.join(",", f);
    }

    @Test void resumeRefusesADifferentRun(@TempDir Path tmp) {
        Path a = tmp.resolve("a");
        assertEquals(0, run("train", "--epochs", "1", "--out", a.toString(), "--quiet").code());
        Result r = run("train", "--epochs", "2", "--out", a.toString(), "--resume", "--quiet", "--algorithm", "exact");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("strict") && r.err().contains("exact"), r.err());
        Result m = run("train", "--epochs", "2", "--out", a.toString(), "--resume", "--quiet", "--model", "mlp");
        assertEquals(2, m.code(), m.err());
    }

    @Test void badInputIsOneLineAndExitCodeTwo(@TempDir Path tmp) throws Exception {
        String[][] cases = {
                {"train", "--algorithm", "foo"},
                {"train", "--model", tmp.resolve("missing.json").toString()},
                {"train", "--data", "mnist:" + tmp.resolve("nowhere")},
                {"train", "--backend", "tpu"},
                {"train", "--epochs", "0"},
                {"train", "--eta", "-1", "--out", tmp.resolve("o").toString()},
                {"eval", "--checkpoint", tmp.resolve("none").toString()},
                {"train", "--no-such-option"},
                {"bench", "--condense", "sometimes", "--steps", "1"},
                {"train", "--condense", "sometimes", "--out", tmp.resolve("o3").toString()},
                {"train", "--condense", "never", "--spark", "local[1]", "--out", tmp.resolve("o4").toString()},
                {"bench", "--loss", "hinge", "--steps", "1"},
                {"bench", "--belief-optimizer", "rmsprop", "--steps", "1"},
                {"bench", "--energy-check", "maybe", "--steps", "1"},
                {"bench", "--batch-size", "7,0", "--steps", "1"},
                {"bench", "--backend", "tpu", "--steps", "1"},
                {"bench", "--warmup-seconds", "2147483648", "--steps", "1"}, // 68 years of warm-up; Infinity overflowed the deadline and took none
                {"bench", "--warmup-seconds", "Infinity", "--steps", "1"},
                {"bench", "--algorithm", ",", "--steps", "1"}, // a list of none: an IndexOutOfBoundsException once
                {"bench", "--batch-size", ",", "--steps", "1"},
                {"compare", "--algorithm", ","},
                {"bench", "--json", tmp.toString(), "--steps", "1"}, // a folder: a rename over it failed naming a temporary file
                {"bench", "--json", "", "--steps", "1"}, // '' is the current folder: no path option takes it
                {"eval", "--checkpoint", ""},
                {"train", "--out", ""},
        };
        for (String[] c : cases) {
            Result r = run(c);
            assertEquals(2, r.code(), String.join(" ", c) + " -> " + r.err());
            assertFalse(r.err().isBlank(), String.join(" ", c));
            if (c[0].equals("bench")) assertEquals("", r.out(), String.join(" ", c) + ": nothing but the refusal");
            if (c[1].equals("--warmup-seconds")) assertTrue(r.err().contains("--warmup-seconds must be from 0 to 3600 seconds, got "), r.err());
        }
        Path bad = tmp.resolve("bad.json");
        Files.writeString(bad, "[[{\"op\": \"linear\", \"in\": 36, \"out\": 10}]]");
        Result r = run("train", "--model", bad.toString(), "--out", tmp.resolve("o2").toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("block 0, op 0") && r.err().contains("in=36") && r.err().contains("64"), r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
    }

    /** A value an option does not take is refused in one line that starts with the option's name, on every command that has it. */
    @Test void badValuesNameTheirOption(@TempDir Path tmp) throws Exception {
        String[][] cases = {
                {"--algorithm", "train", "--algorithm", "foo"},
                {"--algorithm", "bench", "--algorithm", "foo", "--steps", "1"},
                {"--algorithm", "compare", "--algorithm", "strict,foo"},
                {"--loss", "train", "--loss", "hinge"},
                {"--loss", "bench", "--loss", "hinge", "--steps", "1"},
                {"--loss", "compare", "--loss", "hinge"},
                {"--belief-optimizer", "train", "--algorithm", "pc", "--belief-optimizer", "rmsprop"},
                {"--inference-optimizer", "bench", "--algorithm", "pc", "--inference-optimizer", "rmsprop", "--steps", "1"},
                {"--energy", "train", "--algorithm", "pc", "--energy", "joules"},
                {"--nudging", "train", "--algorithm", "pc", "--nudging", "sideways"},
                {"--nudging", "compare", "--algorithm", "pc", "--nudging", "sideways"},
                {"--nudging", "compare", "--algorithm", "strict,fixedpred", "--nudging", "positive:0.1"},
                {"--nudging", "compare", "--algorithm", "pc,ipc", "--nudging", "centred:0.1"},
                {"--energy", "compare", "--algorithm", "pc", "--energy", "joules"},
                {"--belief-optimizer", "compare", "--algorithm", "pc", "--belief-optimizer", "rmsprop"},
                {"--augment", "train", "--augment", "twirl"},
                {"--condense", "train", "--condense", "sometimes"},
        };
        for (String[] c : cases) {
            String[] args = java.util.Arrays.copyOfRange(c, 1, c.length);
            Result r = run(args);
            assertEquals(2, r.code(), String.join(" ", args) + " -> " + r.err());
            assertTrue(r.err().strip().startsWith("predcode: " + c[0] + ": "), String.join(" ", args) + " -> " + r.err());
            assertEquals(1, r.err().strip().lines().count(), r.err());
        }
    }

    @Test void corruptCheckpointsAreRejected(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("run");
        assertEquals(0, run("train", "--epochs", "1", "--out", out.toString(), "--quiet").code());
        byte[] ckpt = Files.readAllBytes(out.resolve("checkpoint.safetensors"));
        Files.write(out.resolve("checkpoint.safetensors"), java.util.Arrays.copyOf(ckpt, ckpt.length - 100));
        Result r = run("eval", "--checkpoint", out.toString());
        assertEquals(2, r.code(), r.err());
        assertTrue(r.err().contains("checkpoint.safetensors") && r.err().contains("truncated"), r.err());
        Files.write(out.resolve("checkpoint.safetensors"), new byte[]{1, 2, 3});
        Result s = run("train", "--epochs", "2", "--out", out.toString(), "--resume", "--quiet");
        assertEquals(2, s.code(), s.err());
        assertTrue(s.err().contains("too short"), s.err());
        Path other = tmp.resolve("other");
        assertEquals(0, run("train", "--epochs", "1", "--out", other.toString(), "--quiet", "--model", "digits-mlp").code());
        Path spec = tmp.resolve("wide.json");
        Files.writeString(spec, "{\"input\": [1, 8, 8], \"blocks\": [[{\"op\": \"flatten\"}, {\"op\": \"linear\", \"in\": 64, \"out\": 10}]]}");
        Result t = run("train", "--epochs", "2", "--out", other.toString(), "--resume", "--quiet", "--model", spec.toString());
        assertEquals(2, t.code(), t.err());
        assertTrue(t.err().contains("different model"), t.err());
    }

    /** With a GPU or the host simulator, cuda trains and evaluates like cpu; without, one line says why. */
    @Test void cudaTrainsOrSaysWhyInOneLine(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("run");
        Result r = run("train", "--backend", "cuda", "--epochs", "1", "--max-steps", "5", "--out", out.toString(), "--quiet");
        if (!cudaAvailable()) {
            assertEquals(2, r.code());
            assertTrue(r.err().contains("cuda") && r.err().contains("unavailable"), r.err());
            assertEquals(1, r.err().strip().lines().count(), r.err());
            return;
        }
        assertEquals(0, r.code(), r.err());
        Result e = run("eval", "--checkpoint", out.toString(), "--backend", "cuda", "--json");
        assertEquals(0, e.code(), e.err());
        assertTrue(JsonFields.of(Json.parse(e.out(), "eval"), "eval", "").number("accuracy") > 0.1, e.out());
    }

    static boolean cudaAvailable() { return io.predcode.spi.Backends.provider("cuda").availability().available(); }

    @Test void compareReportsExactAsBackprop() throws Exception {
        Result r = run("compare", "--json", "--n", "5");
        assertEquals(0, r.code(), r.err());
        JsonFields j = JsonFields.of(Json.parse(r.out(), "compare"), "compare", "");
        int exact = 0;
        for (Object o : j.list("rows")) {
            JsonFields row = JsonFields.of(o, "compare", "rows");
            if (row.string("algorithm").equals("exact")) { exact++; assertTrue(row.number("relative_error") < 1e-5, o.toString()); }
        }
        assertEquals(3, exact);
    }

    /**
     * compare relaxes pc as train does, on each sample's own energy by default (not the library's default, Torch2PC's,
     * on which pc with plain sgd is strict); --energy, --belief-optimizer and --nudging choose as in train.
     */
    @Test void compareRelaxesPcAsTrainDoes() throws Exception {
        Map<String, double[]> plain = angles("--algorithm", "strict,pc"), torch2pc = angles("--algorithm", "strict,pc", "--energy", "torch2pc"),
                centred = angles("--algorithm", "pc", "--nudging", "centred:0.01");
        assertArrayEquals(torch2pc.get("strict"), torch2pc.get("pc"), 1e-3, "pc with plain sgd on Torch2PC's energy is strict");
        assertFalse(java.util.Arrays.equals(plain.get("strict"), plain.get("pc")), "on each sample's energy, pc is not strict");
        for (int b = 0; b < 3; b++)
            assertTrue(centred.get("pc")[b] < plain.get("pc")[b], "centred nudging with a small beta brings block " + b + "'s update closer to the gradient");
    }

    /** compare --checkpoint relaxes with the loss, eta, n and PC's settings the checkpoint was trained with, unless given. */
    @Test void compareOnACheckpointTakesItsTrainingSettings(@TempDir Path tmp) throws Exception {
        Path run = tmp.resolve("run");
        Result t = run("train", "--algorithm", "pc", "--energy", "torch2pc", "--loss", "mse", "--belief-optimizer", "sgd:0.2", "--eta", "0.05", "--n", "7",
                "--max-steps", "2", "--quiet", "--out", run.toString());
        assertEquals(0, t.code(), t.err());
        JsonFields trained = compareJson("--checkpoint", run.toString(), "--algorithm", "pc"),
                given = compareJson("--checkpoint", run.toString(), "--algorithm", "pc", "--energy", "sample", "--T", "3", "--loss", "cross-entropy");
        assertEquals(List.of("mse", "torch2pc", "sgd:0.2", "none"), List.of(trained.string("loss"), trained.string("energy"), trained.string("belief_optimizer"), trained.string("nudging")));
        assertEquals(0.05, trained.number("eta"), 1e-7);
        assertEquals(7, trained.number("n"));
        assertEquals(List.of("cross_entropy", "sample", "sgd:0.2"), List.of(given.string("loss"), given.string("energy"), given.string("belief_optimizer")));
        assertEquals(3, given.number("n"));
        // A recorded value out of --eta's or --n's bounds is refused, naming the file and field.
        Path file = run.resolve("checkpoint.safetensors");
        String bytes = new String(java.nio.file.Files.readAllBytes(file), java.nio.charset.StandardCharsets.ISO_8859_1);
        for (String[] bad : new String[][]{{"\\\"eta\\\":0.05", "\\\"eta\\\":-0.5", "field 'training.settings.eta': eta must be a finite number > 0, got -0.5"},
                {"\\\"n\\\":7,", "\\\"n\\\":0,", "field 'training.settings.n': n must be in 1..100000, got 0"}}) {
            assertTrue(bytes.contains(bad[0]), bad[0]);
            java.nio.file.Files.write(file, bytes.replace(bad[0], bad[1]).getBytes(java.nio.charset.StandardCharsets.ISO_8859_1));
            Result r = run("compare", "--checkpoint", run.toString());
            assertEquals(2, r.code(), r.out());
            assertTrue(r.err().contains(file + ": " + bad[2]), r.err());
        }
    }

    private static JsonFields compareJson(String... options) {
        Result r = run(concat(new String[]{"compare", "--json"}, options));
        assertEquals(0, r.code(), r.err());
        return JsonFields.of(Json.parse(r.out(), "compare"), "compare", "");
    }

    /** compare --json's angles, per algorithm, block by block; the settings it reports for pc. */
    private static Map<String, double[]> angles(String... options) throws Exception {
        Result r = run(concat(new String[]{"compare", "--json", "--n", "10"}, options));
        assertEquals(0, r.code(), r.err());
        JsonFields j = JsonFields.of(Json.parse(r.out(), "compare"), "compare", "");
        assertEquals(List.of(options).contains("torch2pc") ? "torch2pc" : "sample", j.string("energy"));
        Map<String, double[]> angles = new java.util.LinkedHashMap<>();
        for (Object o : j.list("rows")) {
            JsonFields row = JsonFields.of(o, "compare", "rows");
            angles.computeIfAbsent(row.string("algorithm"), a -> new double[3])[(int) row.number("block")] = row.number("angle_degrees");
        }
        return angles;
    }

    @Test void benchAndBackendsRun(@TempDir Path tmp) throws Exception {
        Path f = tmp.resolve("bench.json");
        Result r = run("bench", "--model", "digits-mlp", "--batch-size", "16", "--steps", "2", "--warmup", "1", "--warmup-seconds", "0", "--n", "3", "--backend", "cpu,cuda", "--json", f.toString());
        assertEquals(0, r.code(), r.err());
        boolean cuda = cudaAvailable();
        assertTrue(r.out().contains("cuda") && r.out().contains("unavailable") != cuda, r.out());
        JsonFields j = json(f);
        int timed = 0;
        for (Object o : j.list("records")) {
            JsonFields rec = JsonFields.of(o, "bench", "records");
            if (rec.has("median_ms_per_step")) { timed++; assertTrue(rec.number("median_ms_per_step") > 0); assertEquals(0, rec.number("allocations_per_step")); }
        }
        assertEquals(cuda ? 8 : 4, timed, "four algorithms on each available backend");
        // PC as train runs PCX's configuration: squared error on one-hot targets, beliefs by SGD with momentum, each sample's energy.
        Path pcx = tmp.resolve("pcx.json");
        // With the energy checked (train's and the library's default) and not, side by side; backprop has no energy to check.
        Result p = run("bench", "--model", "digits-mlp", "--algorithm", "pc,backprop", "--batch-size", "16", "--steps", "2", "--warmup", "1", "--warmup-seconds", "0",
                "--n", "3", "--loss", "mse", "--belief-optimizer", "sgd:0.1", "--energy", "sample", "--energy-check", "on,off", "--json", pcx.toString());
        assertEquals(0, p.code(), p.err());
        assertTrue(p.out().contains(" pc/unchecked "), p.out());
        JsonFields pj = json(pcx);
        assertEquals("mse", JsonFields.of(pj.get("settings"), "bench", "settings").string("loss"));
        assertEquals("sgd:0.1", JsonFields.of(pj.get("settings"), "bench", "settings").string("belief_optimizer"));
        List<String> algorithms = new java.util.ArrayList<>();
        for (Object o : pj.list("records")) {
            JsonFields rec = JsonFields.of(o, "bench", "records");
            algorithms.add(rec.string("algorithm") + (rec.has("energy_check") ? " " + rec.get("energy_check") : ""));
        }
        assertEquals(List.of("pc true", "pc false", "backprop"), algorithms);
        Result b = run("backends");
        assertEquals(0, b.code());
        assertTrue(b.out().contains("cpu") && b.out().contains("available"), b.out());
    }

    /**
     * Every command is set up (picocli inspects each command class) on a runtime without java.desktop,
     * such as the GPU kit's jlinked one: only drawing a chart or a PNG may load AWT. The CLI runs here in
     * a class loader that refuses java.awt and javax.imageio; it failed so when GenerateCommand held the
     * PNG code, whose verification loads AWT's image classes.
     */
    @Test void everyCommandStartsWithoutJavaDesktop() throws Exception {
        // Tests may run on the module path, where the platform loader hands predcode's packages to the application
        // loader: predcode's and picocli's classes are loaded child-first, from the class and module path's entries.
        java.net.URL[] path = java.util.stream.Stream.of(System.getProperty("java.class.path", ""), System.getProperty("jdk.module.path", ""))
                .flatMap(p -> java.util.Arrays.stream(p.split(java.io.File.pathSeparator))).filter(p -> !p.isBlank())
                .map(p -> { try { return Path.of(p).toUri().toURL(); } catch (java.net.MalformedURLException e) { throw new IllegalStateException(e); } })
                .toArray(java.net.URL[]::new);
        try (java.net.URLClassLoader isolated = new java.net.URLClassLoader(path, ClassLoader.getPlatformClassLoader()) {
            @Override protected Class<?> loadClass(String name, boolean resolve) throws ClassNotFoundException {
                if (name.startsWith("java.awt.") || name.startsWith("javax.imageio.")) throw new ClassNotFoundException(name + " (java.desktop left out)");
                if (!name.startsWith("io.predcode.") && !name.startsWith("picocli.")) return super.loadClass(name, resolve);
                synchronized (getClassLoadingLock(name)) {
                    Class<?> c = findLoadedClass(name);
                    return c != null ? c : findClass(name);
                }
            }
        }) {
            Class<?> main = isolated.loadClass(Main.class.getName());
            assertNotSame(Main.class, main, "the CLI's classes come from the isolated loader");
            java.io.StringWriter out = new java.io.StringWriter(), err = new java.io.StringWriter();
            for (String command : new String[]{"train", "eval", "predict", "generate", "compare", "bench", "backends"}) {
                Object code = main.getMethod("run", String[].class, java.io.PrintWriter.class, java.io.PrintWriter.class)
                        .invoke(null, new String[]{command, "--help"}, new java.io.PrintWriter(out), new java.io.PrintWriter(err));
                assertEquals(0, code, command + " --help: " + err);
            }
        }
    }

    static String[] concat(String[] a, String[] b) {
        String[] c = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }

    /** The models two runs saved have the same parameters, bit for bit (their files may record different data sets). */
    static void assertSameParameters(Path run, Path other) throws java.io.IOException {
        var a = io.predcode.core.io.Safetensors.read(run.resolve("model.safetensors")).tensors();
        var b = io.predcode.core.io.Safetensors.read(other.resolve("model.safetensors")).tensors();
        assertEquals(a.keySet(), b.keySet());
        a.forEach((k, t) -> assertArrayEquals(t.data(), b.get(k).data(), other + " " + k));
    }
}
