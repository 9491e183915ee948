package io.predcode.cli;

import io.predcode.core.json.JsonFields;
import io.predcode.data.Dataset;
import io.predcode.data.Digits;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static io.predcode.cli.CliTest.json;
import static io.predcode.cli.CliTest.run;
import static org.junit.jupiter.api.Assertions.*;

/**
 * A long run never silently loses its model: a validation split chooses the best epoch, a collapse
 * without NaN is detected and stops the run (exit 3) or rolls back, and the best checkpoint survives.
 * STRICT on digits at Adam lr 0.01 with Torch2PC's fixed eta reaches 95% validation accuracy at epoch
 * 2, then falls to chance within two epochs with a finite, growing loss: the collapse this guards
 * against, made fast. With the stable relaxation (the default) the same run trains on.
 */
class TrainingGuardrailsTest {
    /** Standard PC that collapsed after relaxing far (Torch2PC's eta 0.1, n 20; here with Adam at lr 0.01) is told what is steadier. */
    @Test void aCollapseOfPcRelaxedFarSaysWhatIsSteadier(@TempDir Path tmp) throws Exception {
        CliTest.Result r = run("train", "--algorithm", "pc", "--epochs", "12", "--lr", "0.01", "--stable-relaxation", "off", "--out", tmp.resolve("run").toString(), "--quiet");
        assertEquals(3, r.code(), r.out() + r.err());
        assertTrue(r.out().contains("stopped: collapse from epoch"), r.out());
        assertTrue(r.out().contains("hint: PC relaxed far (eta 0.1, n 20): its updates can drift from the gradient") && r.out().contains("--loss mse --n 5 --eta 0.026"), r.out());
    }

    @Test void aCollapseStopsTheRunWithExitCode3AndTheBestCheckpointSurvives(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("run");
        CliTest.Result r = run("train", "--epochs", "12", "--lr", "0.01", "--stable-relaxation", "off", "--out", out.toString(), "--quiet");
        assertEquals(3, r.code(), r.out() + r.err());
        assertTrue(r.out().contains("stopped: collapse from epoch 3") && r.out().contains("against its best"), r.out());
        assertTrue(r.out().contains("best: epoch 2") && r.out().contains(out.resolve("best").toString()), r.out());
        assertFalse(r.out().contains("hint:"), "STRICT's collapse gets no hint about PC's relaxation");
        JsonFields m = json(out.resolve("metrics.json"));
        assertEquals(2, m.integer("best_epoch", 0));
        assertEquals(5, m.list("epochs").size(), "stopped after the third bad epoch");
        assertTrue(m.string("stop_reason").startsWith("collapse"), m.string("stop_reason"));
        double bestTest = m.number("best_test_accuracy");
        assertTrue(bestTest > 0.9 && m.number("final_test_accuracy") < 0.3, "best " + bestTest + ", last " + m.number("final_test_accuracy"));
        // The best checkpoint is the epoch-2 model: eval reproduces its recorded test accuracy; the last one is the collapsed model.
        CliTest.Result best = run("eval", "--checkpoint", out.resolve("best").toString(), "--json");
        assertEquals(0, best.code(), best.err());
        assertEquals(bestTest, JsonFields.of(io.predcode.core.json.Json.parse(best.out().trim(), "eval"), "eval", "").number("accuracy"), 1e-9);
    }

    /** The remedy on the same case: the relaxation's step is halved where it diverged, and the run trains on. */
    @Test void theStableRelaxationKeepsTheCollapsingCaseTraining(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("run");
        CliTest.Result r = run("train", "--epochs", "6", "--lr", "0.01", "--out", out.toString(), "--quiet");
        assertEquals(0, r.code(), r.out() + r.err());
        assertTrue(r.out().contains("STRICT's relaxation raised the energy at eta 0.1; relaxing with eta 0.05 from here on"), r.out());
        JsonFields m = json(out.resolve("metrics.json"));
        assertTrue(m.number("final_test_accuracy") > 0.93, "final test accuracy " + m.number("final_test_accuracy"));
        assertEquals("all 6 epochs done", m.string("stop_reason"));
        // Resuming carries the lowered eta: the resumed half equals an uninterrupted run.
        Path half = tmp.resolve("half");
        assertEquals(0, run("train", "--epochs", "4", "--lr", "0.01", "--out", half.toString(), "--quiet").code());
        assertEquals(0, run("train", "--epochs", "6", "--lr", "0.01", "--out", half.toString(), "--quiet", "--resume").code());
        assertArrayEquals(Files.readAllBytes(out.resolve("model.safetensors")), Files.readAllBytes(half.resolve("model.safetensors")));
    }

    @Test void rollbackRestoresTheBestStateAndLowersTheLearningRate(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("run");
        CliTest.Result r = run("train", "--epochs", "6", "--lr", "0.01", "--stable-relaxation", "off", "--on-collapse", "rollback", "--patience", "2",
                "--out", out.toString(), "--quiet");
        assertTrue(r.out().contains("rolled back to epoch 2 and lowered the learning rate to 0.005"), r.out());
        JsonFields m = json(out.resolve("metrics.json"));
        List<Object> epochs = m.list("epochs");
        JsonFields afterRollback = JsonFields.of(epochs.get(4), "metrics.json", "epochs[4]");
        assertTrue(afterRollback.number("validation_accuracy") > 0.85, "the epoch after the rollback starts from the best state: " + afterRollback.number("validation_accuracy"));
        assertFalse(m.list("events").isEmpty());
    }

    /** The validation set is cut from the training set only: disjoint from what is trained on, the test set untouched, the same for a seed. */
    @Test void theValidationSplitNeverTouchesTheTestSet() throws Exception {
        var split = Digits.split();
        Dataset train = split.train(), test = split.test();
        float[] testBefore = test.images().clone();
        Dataset[] parts = train.holdOut(0.1, 7);
        assertEquals(150, parts[1].size());
        assertEquals(train.size(), parts[0].size() + parts[1].size());
        Set<String> trained = rows(parts[0]), validation = rows(parts[1]), all = rows(train), tested = rows(test);
        assertTrue(all.containsAll(trained) && all.containsAll(validation));
        Set<String> overlap = new HashSet<>(trained);
        overlap.retainAll(validation);
        // Digits has a few duplicate images; rows shared by both parts must be such duplicates.
        assertTrue(overlap.size() <= 5, "training and validation parts overlap in " + overlap.size() + " rows");
        Set<String> fromTest = new HashSet<>(validation);
        fromTest.retainAll(tested);
        fromTest.removeAll(all);
        assertTrue(fromTest.isEmpty(), "validation rows that are only in the test set");
        assertArrayEquals(testBefore, test.images());
        assertArrayEquals(parts[1].labels(), train.holdOut(0.1, 7)[1].labels(), "the split depends on the seed alone");
        assertNull(train.holdOut(0, 7)[1]);
    }

    private static Set<String> rows(Dataset d) {
        Set<String> s = new HashSet<>();
        int per = d.sampleSize();
        for (int i = 0; i < d.size(); i++) s.add(java.util.Arrays.toString(java.util.Arrays.copyOfRange(d.images(), i * per, (i + 1) * per)) + d.labels()[i]);
        return s;
    }

    /**
     * Replaying another run: --init gives the parameters and --shuffle off the batch order, so the seed
     * no longer matters; --max-steps stops after that many steps.
     */
    @Test void initShuffleOffAndMaxStepsReplayARunExactly(@TempDir Path tmp) throws Exception {
        Path a = tmp.resolve("a");
        assertEquals(0, run("train", "--epochs", "1", "--out", a.toString(), "--quiet").code());
        Path init = a.resolve("model.safetensors");
        List<List<String>> losses = new java.util.ArrayList<>();
        for (String seed : new String[]{"1", "2"}) {
            Path b = tmp.resolve("b" + seed);
            CliTest.Result r = run("train", "--epochs", "3", "--max-steps", "5", "--init", init.toString(), "--shuffle", "off", "--validation", "0",
                    "--seed", seed, "--out", b.toString(), "--quiet");
            assertEquals(0, r.code(), r.err());
            assertTrue(r.out().contains("stopped: reached --max-steps 5"), r.out());
            List<String> rows = Files.readAllLines(b.resolve("metrics.csv"));
            assertEquals(6, rows.size(), "a header and 5 steps");
            losses.add(rows.stream().skip(1).map(l -> l.split(",")[2]).toList());
        }
        assertEquals(losses.get(0), losses.get(1), "with --init and --shuffle off, the seed changes nothing");
        // A tensor of the wrong shape is refused, naming the file and the tensor.
        Path bad = tmp.resolve("bad.safetensors");
        var params = new java.util.LinkedHashMap<String, io.predcode.core.io.Safetensors.Entry>();
        io.predcode.core.io.Safetensors.read(init).tensors().forEach((k, v) -> params.put(k, k.equals("0.1.weight") ? new io.predcode.core.io.Safetensors.Entry(new int[]{32, 128}, v.data()) : v));
        io.predcode.core.io.Safetensors.write(bad, params, java.util.Map.of());
        CliTest.Result r = run("train", "--epochs", "1", "--init", bad.toString(), "--out", tmp.resolve("c").toString(), "--quiet");
        assertEquals(2, r.code(), r.out());
        assertTrue(r.err().contains(bad.toString()) && r.err().contains("0.1.weight") && r.err().contains("[32, 128]"), r.err());
    }

    @Test void badOptionsGetOneLineAndExitCode2() {
        CliTest.Result parse = run("train", "--epochs", "x");
        assertEquals(2, parse.code());
        assertEquals(1, parse.err().strip().lines().count(), parse.err());
        assertTrue(parse.err().contains("'--epochs'") && parse.err().contains("predcode train --help"), parse.err());
        for (String n : new String[]{"0", "-7", "100001"}) {
            CliTest.Result r = run("train", "--n", n, "--epochs", "1", "--quiet");
            assertEquals(2, r.code(), n);
            assertTrue(r.err().contains("--n must be in 1..100000, got " + n), r.err());
        }
    }

    /**
     * Parameters that became infinite are never written, at an epoch's end (one batch of the whole training set) or
     * inside one (--max-steps): the run stops with exit code 3.
     */
    @Test void nonFiniteParametersAreNeverSaved(@TempDir Path tmp) {
        String[] blowUp = {"train", "--optimizer", "sgd", "--momentum", "0", "--lr", "1e38", "--weight-decay", "1e38", "--epochs", "1", "--quiet"};
        for (String[] at : new String[][]{{"--batch-size", "2000", "after epoch 1 (step 1)"}, {"--max-steps", "1", "after step 1 (epoch 1, batch 1 of 43)"}}) {
            Path out = tmp.resolve(at[0].substring(2));
            CliTest.Result r = run(CliTest.concat(blowUp, new String[]{at[0], at[1], "--out", out.toString()}));
            assertEquals(3, r.code(), r.out() + r.err());
            assertTrue(r.err().contains("is not finite " + at[2] + "; no checkpoint written"), r.err());
            assertFalse(Files.exists(out.resolve("checkpoint.safetensors")) || Files.exists(out.resolve("best")), "a checkpoint was written");
        }
    }

    /**
     * A relaxation that runs off at a finite loss stops the run at that step, named with the reason, not a step later at
     * the loss; the metrics are written and no chart from no steps is attempted (it printed XChart's complaint).
     */
    @Test void aRelaxationThatRunsOffStopsAtItsStepWithItsReason(@TempDir Path tmp) {
        Path out = tmp.resolve("run");
        CliTest.Result r = run("train", "--algorithm", "pc", "--inference-lr", "1e30", "--epochs", "1", "--out", out.toString(), "--quiet");
        assertEquals(3, r.code(), r.out() + r.err());
        assertTrue(r.err().contains("training diverged at step 1 (epoch 1, batch 1): the relaxation's energy is not finite at a finite loss"), r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        assertFalse(r.out().contains("not written"), r.out());
        assertTrue(Files.exists(out.resolve("metrics.csv")));
        assertFalse(Files.exists(out.resolve("checkpoint.safetensors")) || Files.exists(out.resolve("training.png")));
    }

    @Test void resumeRefusesChangedSettingsAndABatchLargerThanTheDataIsCapped(@TempDir Path tmp) {
        Path a = tmp.resolve("a");
        CliTest.Result first = run("train", "--epochs", "1", "--batch-size", "2147483647", "--out", a.toString(), "--quiet");
        assertEquals(0, first.code(), first.err());
        assertTrue(first.out().contains("is more than the 1347 training samples; using 1347"), first.out());
        String[][] changes = {{"--lr", "0.01"}, {"--seed", "5"}, {"--eta", "0.2"}, {"--loss", "mse"}, {"--validation", "0.2"}, {"--augment", "flip"}};
        for (String[] change : changes) {
            CliTest.Result r = run("train", "--epochs", "2", "--batch-size", "2147483647", "--out", a.toString(), "--quiet", "--resume", change[0], change[1]);
            assertEquals(2, r.code(), String.join(" ", change) + ": " + r.out());
            assertTrue(r.err().contains("--resume continues the same run") && r.err().contains(change[1].equals("mse") ? "mse" : change[1]), r.err());
        }
        CliTest.Result dropped = run("train", "--epochs", "2", "--batch-size", "2147483647", "--out", a.toString(), "--quiet", "--resume", "--drop-last");
        assertEquals(2, dropped.code(), dropped.out());
        assertTrue(dropped.err().contains("checkpoint was trained with --drop-last off, not on; --resume continues the same run"), dropped.err());
        assertEquals(0, run("train", "--epochs", "2", "--batch-size", "2147483647", "--out", a.toString(), "--quiet", "--resume").code());
    }

    /** --drop-last: every step takes --batch-size samples, the schedule counts whole batches, and the run records it. */
    @Test void droppingTheLastBatchTakesWholeBatches(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("run");
        CliTest.Result r = run("train", "--epochs", "2", "--batch-size", "100", "--drop-last", "--lr-schedule", "cosine", "--out", out.toString(), "--quiet");
        assertEquals(0, r.code(), r.err());
        // 1347 training samples (digits less validation): 13 whole batches of 100 an epoch, not 14.
        java.util.List<String> rows = Files.readAllLines(out.resolve("metrics.csv"));
        assertEquals("26", rows.getLast().substring(0, rows.getLast().indexOf(',')), "steps after two epochs");
        assertTrue(Files.readString(out.resolve("metrics.json")).contains("\"drop_last\": \"on\""));
    }

    /** --augment trains on flipped and shifted digits, is recorded with the run, and a bad value is one line. */
    @Test void augmentedTrainingIsRecordedAndBadValuesRefused(@TempDir Path tmp) throws Exception {
        Path plain = tmp.resolve("plain"), augmented = tmp.resolve("augmented");
        String[] common = {"train", "--epochs", "1", "--batch-size", "64", "--quiet"};
        assertEquals(0, run(concat(common, "--out", plain.toString())).code());
        CliTest.Result r = run(concat(common, "--out", augmented.toString(), "--augment", "flip,crop:2"));
        assertEquals(0, r.code(), r.err());
        String metrics = Files.readString(augmented.resolve("metrics.json"));
        assertTrue(metrics.contains("\"augment\": \"flip,crop:2\""), metrics);
        assertNotEquals(Files.readString(plain.resolve("metrics.csv")).lines().skip(1).findFirst(), Files.readString(augmented.resolve("metrics.csv")).lines().skip(1).findFirst(),
                "augmented images train differently from the first step");
        for (String bad : new String[]{"crop:0", "rotate", "flip,flip"}) {
            CliTest.Result b = run(concat(common, "--out", tmp.resolve("bad").toString(), "--augment", bad));
            assertEquals(2, b.code(), bad);
            assertTrue(b.err().startsWith("predcode: --augment") && b.err().strip().lines().count() == 1, b.err());
        }
    }

    /** Each image's draw is fixed by (seed, epoch, sample): an augmented run stopped and resumed is the uninterrupted run, bit for bit. */
    @Test void anAugmentedRunResumedIsTheUninterruptedRun(@TempDir Path tmp) throws Exception {
        Path whole = tmp.resolve("whole"), half = tmp.resolve("half");
        String[] common = {"train", "--algorithm", "pc", "--belief-optimizer", "sgd:0.5", "--n", "3", "--batch-size", "50", "--augment", "flip,crop:1", "--drop-last",
                "--lr-schedule", "cosine", "--quiet"};
        assertEquals(0, run(concat(common, "--epochs", "3", "--out", whole.toString())).code());
        assertEquals(0, run(concat(common, "--epochs", "3", "--max-steps", "26", "--out", half.toString())).code()); // one epoch of 26 whole batches
        CliTest.Result resumed = run(concat(common, "--epochs", "3", "--out", half.toString(), "--resume"));
        assertEquals(0, resumed.code(), resumed.err());
        assertTrue(resumed.out().contains("after epoch 1 (step 26)"), resumed.out());
        assertArrayEquals(Files.readAllBytes(whole.resolve("model.safetensors")), Files.readAllBytes(half.resolve("model.safetensors")));
    }

    private static String[] concat(String[] a, String... b) {
        String[] r = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }

    /** A run that cannot fit is refused before anything is allocated, with the numbers. */
    @Test void aModelTooLargeForMemoryIsRefusedUpFront(@TempDir Path tmp) throws Exception {
        Path spec = tmp.resolve("huge.json");
        Files.writeString(spec, "{\"input\": [1, 8, 8], \"blocks\": [[{\"op\": \"flatten\"}, {\"op\": \"linear\", \"in\": 64, \"out\": 1000000000, \"bias\": true}],"
                + " [{\"op\": \"linear\", \"in\": 1000000000, \"out\": 10, \"bias\": true}]]}");
        CliTest.Result r = run("train", "--model", spec.toString(), "--epochs", "1", "--out", tmp.resolve("run").toString(), "--quiet");
        assertEquals(2, r.code(), r.out() + r.err());
        assertTrue(r.err().contains("75,000,000,010 parameters") && r.err().contains("GB available on backend 'cpu'"), r.err());
    }

    /** Files that are not what they should be are named in the one line: binary "JSON", a folder where a file belongs. */
    @Test void unreadableFilesAreNamed(@TempDir Path tmp) throws Exception {
        Path binary = tmp.resolve("bad.json");
        Files.write(binary, new byte[]{(byte) 0xff, (byte) 0xfe, 0x00});
        CliTest.Result r = run("train", "--model", binary.toString(), "--epochs", "1", "--quiet", "--out", tmp.resolve("a").toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains(binary.toString()) && r.err().contains("not UTF-8"), r.err());
        Path folder = tmp.resolve("folder.json");
        Files.createDirectories(folder);
        CliTest.Result d = run("train", "--model", folder.toString(), "--epochs", "1", "--quiet", "--out", tmp.resolve("b").toString());
        assertEquals(2, d.code());
        assertTrue(d.err().contains(folder.toString()) && d.err().contains("directory"), d.err());
        Path st = tmp.resolve("x.safetensors");
        Files.createDirectories(st);
        CliTest.Result e = run("train", "--init", st.toString(), "--epochs", "1", "--quiet", "--out", tmp.resolve("c").toString());
        assertEquals(2, e.code());
        assertTrue(e.err().contains(st.toString()) && e.err().contains("directory"), e.err());
    }

    /** A checkpoint whose training state was tampered with gets one line, not a NoSuchElementException. */
    @Test void aTamperedTrainingStateIsOneClearLine(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("run");
        assertEquals(0, run("train", "--epochs", "1", "--out", out.toString(), "--quiet").code());
        Path file = out.resolve("checkpoint.safetensors");
        var c = io.predcode.core.io.Safetensors.read(file);
        var meta = new java.util.LinkedHashMap<>(c.metadata());
        meta.put("training", meta.get("training").replace("\"epochs_done\":1,", "\"epochs_done\":3,"));
        io.predcode.core.io.Safetensors.write(file, c.tensors(), meta);
        CliTest.Result r = run("train", "--epochs", "4", "--out", out.toString(), "--quiet", "--resume");
        assertEquals(2, r.code(), r.out() + r.err());
        assertTrue(r.err().contains(file.toString()) && r.err().contains("'epochs_done' is 3") && r.err().contains("'history' has 1 epochs"), r.err());
    }

    /** A model whose weights are not finite is not "evaluated" with exit code 0. */
    @Test void evalOfNonFiniteWeightsExits3(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("run");
        assertEquals(0, run("train", "--epochs", "1", "--out", out.toString(), "--quiet").code());
        var c = io.predcode.core.io.Safetensors.read(out.resolve("model.safetensors"));
        var tensors = new java.util.LinkedHashMap<>(c.tensors());
        float[] w = tensors.get("2.0.weight").data().clone();
        w[3] = Float.NaN;
        tensors.put("2.0.weight", new io.predcode.core.io.Safetensors.Entry(tensors.get("2.0.weight").shape(), w));
        Path bad = tmp.resolve("nan.safetensors");
        io.predcode.core.io.Safetensors.write(bad, tensors, c.metadata());
        CliTest.Result r = run("eval", "--checkpoint", bad.toString());
        assertEquals(3, r.code(), r.out() + r.err());
        assertTrue(r.err().contains(bad.toString()) && r.err().contains("not finite"), r.err());
    }

    /**
     * --score-whole-batches scores as PCX's test loader does: the whole batches in stored order (digits' 300 test
     * samples at batch 64: the first 256), and the run records it; a resume keeps it, one that adds it is refused, and a set
     * with no whole batch is refused up front.
     */
    @Test void scoringInWholeBatchesLeavesOutTheLastPartialBatch(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("run");
        CliTest.Result r = run("train", "--epochs", "1", "--batch-size", "64", "--score-whole-batches", "--out", out.toString(), "--quiet");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("scoring in whole batches of 64: validation 128 of 150, test 256 of 300"), r.out());
        JsonFields m = json(out.resolve("metrics.json"));
        assertEquals(256, m.number("test_samples_scored"));
        assertEquals("on", m.object("settings").string("score_whole_batches"));
        Dataset test = io.predcode.data.DataSources.load("digits").test();
        try (io.predcode.spi.Backend be = io.predcode.spi.Backends.open("cpu");
             io.predcode.core.nn.Model model = io.predcode.core.io.Checkpoint.load(out).model(be);
             io.predcode.core.pc.PcEngine e = new io.predcode.core.pc.PcEngine(model, io.predcode.core.nn.Loss.CROSS_ENTROPY)) {
            double first256 = Scoring.evaluate(e, test.subset("first 256", java.util.stream.IntStream.range(0, 256).toArray()), 1000).accuracy();
            assertEquals(first256, m.number("final_test_accuracy"), 1e-12, "the test accuracy is the first 256 samples'");
        }
        CliTest.Result e = run("eval", "--checkpoint", out.toString(), "--batch-size", "64", "--score-whole-batches", "--json");
        assertEquals(0, e.code(), e.err());
        JsonFields ev = JsonFields.of(io.predcode.core.json.Json.parse(e.out().trim(), "eval"), "eval", "");
        assertEquals(256, ev.number("samples"));
        assertEquals(m.number("final_test_accuracy"), ev.number("accuracy"), 1e-12, "eval scores what the run scored");
        e = run("eval", "--checkpoint", out.toString(), "--batch-size", "400", "--score-whole-batches");
        assertEquals(2, e.code());
        assertTrue(e.err().contains("--score-whole-batches: the test set's 300 samples make no whole batch of 400"), e.err());
        e = run("eval", "--checkpoint", out.toString(), "--batch-size", "0");
        assertEquals(2, e.code());
        assertTrue(e.err().contains("--batch-size must be at least 1, got 0"), e.err());
        r = run("train", "--epochs", "2", "--batch-size", "64", "--out", out.toString(), "--quiet", "--resume");
        assertEquals(0, r.code(), "a resume without the option keeps the run's: " + r.err());
        assertEquals(256, json(out.resolve("metrics.json")).number("test_samples_scored"));
        r = run("train", "--epochs", "1", "--batch-size", "64", "--out", tmp.resolve("all").toString(), "--quiet");
        assertEquals(0, r.code(), r.err());
        r = run("train", "--epochs", "2", "--score-whole-batches", "--out", tmp.resolve("all").toString(), "--quiet", "--resume");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--score-whole-batches off, not on"), r.err());
        r = run("train", "--epochs", "1", "--batch-size", "200", "--score-whole-batches", "--out", tmp.resolve("none").toString(), "--quiet");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--score-whole-batches: the validation set's 150 samples make no whole batch of 200"), r.err());
    }

    /**
     * A run resumed with other columns (here the monitor turned on, as a Spark run written before Spark had energy columns
     * gains them) keeps its earlier rows under its own header, each value in its own column, blank where that run had none.
     */
    @Test void aResumedRunKeepsItsEarlierRowsInItsOwnColumns(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("run");
        assertEquals(0, run("train", "--epochs", "1", "--batch-size", "256", "--out", out.toString(), "--quiet").code());
        List<String> before = Files.readAllLines(out.resolve("metrics.csv"));
        CliTest.Result r = run("train", "--epochs", "2", "--batch-size", "256", "--monitor-every", "2", "--out", out.toString(), "--quiet", "--resume");
        assertEquals(0, r.code(), r.err());
        List<String> after = Files.readAllLines(out.resolve("metrics.csv"));
        List<String> header = List.of(after.getFirst().split(",", -1)), earlierHeader = List.of(before.getFirst().split(",", -1));
        assertTrue(header.contains("angle_block0") && !earlierHeader.contains("angle_block0"), after.getFirst());
        for (String row : after) assertEquals(header.size(), row.split(",", -1).length, "every row has the header's fields: " + row);
        for (int i = 1; i < before.size(); i++) {
            String[] was = before.get(i).split(",", -1), is = after.get(i).split(",", -1);
            for (int c = 0; c < header.size(); c++) {
                int e = earlierHeader.indexOf(header.get(c));
                assertEquals(e < 0 ? "" : was[e], is[c], "row " + i + ", column " + header.get(c));
            }
        }
        assertTrue(after.size() > before.size(), "the second epoch's rows follow");
    }

    @Test void theMonitorRecordsEachBlocksAngleToTheGradient(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("run");
        CliTest.Result r = run("train", "--epochs", "1", "--monitor-every", "4", "--out", out.toString(), "--quiet");
        assertEquals(0, r.code(), r.err());
        List<String> lines = Files.readAllLines(out.resolve("metrics.csv"));
        assertEquals("step,epoch,loss,batch_accuracy,ms,angle_block0,relative_error_block0,angle_block1,relative_error_block1,angle_block2,relative_error_block2,energy_layer1,energy_layer2,energy_layer3,validation_loss,validation_accuracy",
                lines.getFirst());
        int measured = 0;
        for (String line : lines.subList(1, lines.size())) {
            String[] f = line.split(",", -1);
            boolean due = Integer.parseInt(f[0]) % 4 == 0;
            assertEquals(due, !f[5].isEmpty(), "step " + f[0]);
            if (!due) continue;
            measured++;
            for (int b = 0; b < 3; b++) {
                double angle = Double.parseDouble(f[5 + 2 * b]);
                assertTrue(angle >= 0 && angle < 90, "step " + f[0] + " block " + b + " angle " + angle);
            }
        }
        assertEquals(43 / 4, measured);
        assertTrue(Files.size(out.resolve("training.png")) > 1000 || r.out().contains("training.png not written"));
    }
}
