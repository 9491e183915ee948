package io.predcode.cli;

import io.predcode.core.io.Safetensors;
import io.predcode.core.json.Json;
import io.predcode.core.json.JsonFields;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static io.predcode.cli.CliTest.json;
import static io.predcode.cli.CliTest.run;
import static org.junit.jupiter.api.Assertions.*;

/**
 * A run stopped inside an epoch (Ctrl-C, SIGTERM, or a stop a test asks for at a step) saves a checkpoint at that
 * step, and {@code --resume} goes on with the next batch: the run stopped and resumed is the run never stopped, bit for
 * bit, its metrics too but for the times. The bundled digits' training part has 1,347 samples: 43 batches of 32.
 */
class InterruptedRunTest {
    /** PC with an augmented, cosine-scheduled run and the monitor on: every piece of state a step depends on. */
    private static final String[] COMMON = {"train", "--algorithm", "pc", "--belief-optimizer", "sgd:0.5", "--n", "3", "--augment", "flip,crop:1",
            "--lr-schedule", "cosine", "--monitor-every", "7", "--epochs", "3", "--quiet"};

    /** Runs the command with a stop requested once the run (each run of a sweep) has taken {@code steps} steps. */
    static CliTest.Result stoppedAfter(long steps, String... args) {
        java.util.function.Supplier<Interruption> before = TrainCommand.interruptions;
        TrainCommand.interruptions = () -> Interruption.afterSteps(steps);
        try {
            return run(args);
        } finally {
            TrainCommand.interruptions = before;
        }
    }

    @Test void aRunStoppedInsideAnEpochAndResumedIsTheRunNeverStopped(@TempDir Path tmp) throws Exception {
        Path whole = tmp.resolve("whole"), stopped = tmp.resolve("stopped");
        assertEquals(0, run(concat(COMMON, "--out", whole.toString())).code());

        CliTest.Result r = stoppedAfter(30, concat(COMMON, "--out", stopped.toString()));
        assertEquals(130, r.code(), r.out() + r.err());
        String where = stopped.resolve("checkpoint.safetensors") + " holds the run at step 30 (epoch 1, batch 30 of 43): --resume continues from there";
        assertTrue(r.out().contains("stopped: interrupted by a stop requested after step 30; " + where), r.out());
        assertFalse(r.out().contains("last: epoch"), "no epoch finished: " + r.out());
        JsonFields m = json(stopped.resolve("metrics.json"));
        assertTrue(m.string("stop_reason").endsWith(where), m.string("stop_reason"));
        assertFalse(m.has("final_test_accuracy"), "no epoch was scored");
        assertEquals(31, Files.readAllLines(stopped.resolve("metrics.csv")).size(), "the header and the 30 steps taken");
        JsonFields progress = training(stopped).object("epoch_progress");
        assertEquals(30, progress.integer("batches", 1));
        assertEquals(30 * 32, progress.number("seen"));
        CliTest.Result inspected = run("inspect", "--checkpoint", stopped.toString());
        assertTrue(inspected.out().contains("progress: epoch 0 of 3, step 30, 30 batches into epoch 1"), inspected.out());

        // Stopped again, on the epoch's last step and then inside the next epoch: each resume goes on where it stopped.
        r = stoppedAfter(43, concat(COMMON, "--out", stopped.toString(), "--resume"));
        assertEquals(130, r.code(), r.out() + r.err());
        assertTrue(r.out().contains("resuming " + stopped + " at step 30 (epoch 1, batch 30 of 43)"), r.out());
        assertTrue(r.out().contains("at step 43 (epoch 1, batch 43 of 43)"), r.out());
        r = stoppedAfter(60, concat(COMMON, "--out", stopped.toString(), "--resume"));
        assertEquals(130, r.code(), r.out() + r.err());
        assertTrue(r.out().contains("epoch 1/3") && r.out().contains("at step 60 (epoch 2, batch 17 of 43)"), "the first epoch scored, then stopped: " + r.out());
        r = run(concat(COMMON, "--out", stopped.toString(), "--resume"));
        assertEquals(0, r.code(), r.out() + r.err());
        assertTrue(r.out().contains("resuming " + stopped + " at step 60 (epoch 2, batch 17 of 43)"), r.out());

        assertArrayEquals(Files.readAllBytes(whole.resolve("model.safetensors")), Files.readAllBytes(stopped.resolve("model.safetensors")));
        assertArrayEquals(Files.readAllBytes(whole.resolve("best/model.safetensors")), Files.readAllBytes(stopped.resolve("best/model.safetensors")));
        assertSameRows(whole.resolve("metrics.csv"), stopped.resolve("metrics.csv")); // every step's loss, accuracy, monitor and energies
        List<Object> a = json(whole.resolve("metrics.json")).list("epochs"), b = json(stopped.resolve("metrics.json")).list("epochs");
        assertEquals(3, b.size());
        for (int e = 0; e < 3; e++)
            for (String key : new String[]{"train_loss", "train_accuracy", "validation_loss", "validation_accuracy", "test_loss", "test_accuracy"})
                assertEquals(((java.util.Map<?, ?>) a.get(e)).get(key), ((java.util.Map<?, ?>) b.get(e)).get(key), "epoch " + (e + 1) + " " + key);
        assertFalse(training(stopped).has("epoch_progress"), "a checkpoint at an epoch's end holds no progress inside one");
    }

    /**
     * --max-steps inside an epoch stops there as a signal does, exit 0, with the model scored where it stopped; --resume
     * goes on with the next batch, so runs cut into pieces by --max-steps end as the run never cut.
     */
    @Test void maxStepsInsideAnEpochStopsThereAndResumesWithTheNextBatch(@TempDir Path tmp) throws Exception {
        String[] common = {"train", "--epochs", "2", "--quiet"};
        Path whole = trained(tmp.resolve("whole"), "--epochs", "2"), cut = tmp.resolve("cut");
        CliTest.Result r = run(concat(common, "--out", cut.toString(), "--max-steps", "30"));
        assertEquals(0, r.code(), r.out() + r.err());
        assertTrue(r.out().contains("step 30 (epoch 1, batch 30 of 43)  train loss "), r.out());
        assertTrue(r.out().contains("stopped: reached --max-steps 30; " + cut.resolve("checkpoint.safetensors")
                + " holds the run at step 30 (epoch 1, batch 30 of 43): --resume continues from there"), r.out());
        JsonFields m = json(cut.resolve("metrics.json"));
        assertFalse(m.has("final_test_accuracy"), "no epoch ended");
        JsonFields at = m.object("stopped_inside_epoch");
        assertEquals(List.of(30.0, 1.0, 30.0), List.of(at.number("step"), at.number("epoch"), at.number("batch")));
        assertTrue(at.number("test_accuracy") > 0.1 && at.number("validation_accuracy") > 0.1 && at.number("train_loss") > 0, r.out());
        assertEquals(30, training(cut).object("epoch_progress").integer("batches", 1));

        // On the epoch's last batch the epoch ends as any other; then the rest of the run.
        r = run(concat(common, "--out", cut.toString(), "--max-steps", "43", "--resume"));
        assertEquals(0, r.code(), r.out() + r.err());
        assertTrue(r.out().contains("resuming " + cut + " at step 30 (epoch 1, batch 30 of 43)") && r.out().contains("epoch 1/2"), r.out());
        assertTrue(r.out().contains("stopped: reached --max-steps 43\n"), r.out());
        assertFalse(json(cut.resolve("metrics.json")).has("stopped_inside_epoch"));
        assertEquals(0, run(concat(common, "--out", cut.toString(), "--resume")).code());
        assertArrayEquals(Files.readAllBytes(whole.resolve("model.safetensors")), Files.readAllBytes(cut.resolve("model.safetensors")));
        assertSameRows(whole.resolve("metrics.csv"), cut.resolve("metrics.csv"));
    }

    /**
     * On Spark a barrier job takes several steps at once: the run stops after the job, and resumes as it was never
     * stopped. Its first job takes one step, as no step has been timed yet to say how many fit in --spark-job-seconds;
     * the next ones, of a few milliseconds a step here, take --spark-steps-per-job.
     */
    @Test void aSparkRunStopsBetweenJobsAndResumes(@TempDir Path tmp) throws Exception {
        String[] spark = {"train", "--spark", "local[2]", "--spark-steps-per-job", "4", "--epochs", "1", "--batch-size", "64", "--quiet"};
        Path whole = tmp.resolve("whole"), stopped = tmp.resolve("stopped");
        assertEquals(0, run(concat(spark, "--out", whole.toString())).code());
        CliTest.Result r = stoppedAfter(1, concat(spark, "--out", tmp.resolve("first").toString()));
        assertTrue(r.out().contains("holds the run at step 1 (epoch 1, batch 1 of 21)"), "the first job is one step: " + r.out());
        r = stoppedAfter(6, concat(spark, "--out", stopped.toString()));
        assertEquals(130, r.code(), r.out() + r.err());
        assertTrue(r.out().contains("holds the run at step 9 (epoch 1, batch 9 of 21)"), "steps 6 to 9 are one job: " + r.out());
        r = run(concat(spark, "--out", stopped.toString(), "--resume"));
        assertEquals(0, r.code(), r.out() + r.err());
        assertArrayEquals(Files.readAllBytes(whole.resolve("model.safetensors")), Files.readAllBytes(stopped.resolve("model.safetensors")));
        assertSameRows(whole.resolve("metrics.csv"), stopped.resolve("metrics.csv"));
    }

    @Test void aStoppedSeedStopsTheSweep(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("sweep");
        CliTest.Result r = stoppedAfter(10, "train", "--seeds", "0-2", "--epochs", "1", "--out", out.toString(), "--quiet");
        assertEquals(130, r.code(), r.out() + r.err());
        assertTrue(r.out().contains("seeds: stopped in seed 0; --resume continues the sweep from its checkpoint"), r.out());
        assertTrue(Files.exists(out.resolve("seed-0/checkpoint.safetensors")));
        assertFalse(Files.exists(out.resolve("seed-1")), "the next seed did not start");
        r = run("train", "--seeds", "0-2", "--epochs", "1", "--out", out.toString(), "--quiet", "--resume");
        assertEquals(0, r.code(), r.out() + r.err());
        assertTrue(r.out().contains("resuming " + out.resolve("seed-0") + " at step 10 (epoch 1, batch 10 of 43)"), r.out());
        assertArrayEquals(Files.readAllBytes(out.resolve("seed-0/model.safetensors")),
                Files.readAllBytes(trained(tmp.resolve("seed0"), "--epochs", "1", "--seed", "0").resolve("model.safetensors")));
    }

    /**
     * The signals themselves, in a JVM of their own: --checkpoint-every 5 saves inside the epoch, SIGTERM (what
     * Process.destroy sends) stops the run at the next step with a checkpoint and exit code 143, and --resume finishes it.
     */
    @Test void sigtermStopsTheRunSavedAndCheckpointsComeEveryKSteps(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("run");
        // 1,347 steps an epoch, each followed by a save every 5: about 4 s an epoch here, and two of them, far more than the
        // test waits for. Where the stop lands (most often inside the first epoch) is read back from the checkpoint.
        String[] args = {"train", "--batch-size", "1", "--epochs", "2", "--out", out.toString(), "--quiet"};
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "--enable-native-access=ALL-UNNAMED",
                "-cp", CliTest.classPath(), "io.predcode.cli.Main"));
        cmd.addAll(List.of(concat(args, "--checkpoint-every", "5")));
        Path log = tmp.resolve("log"); // a file, not a pipe: destroy() closes the pipes
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        Path checkpoint = out.resolve("checkpoint.safetensors");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!Files.exists(checkpoint) && p.isAlive() && System.nanoTime() < deadline) Thread.sleep(20);
        assertTrue(Files.exists(checkpoint), "no checkpoint within 60 s: " + (p.isAlive() ? "" : Files.readString(log)));
        JsonFields first = training(out).object("epoch_progress");
        assertEquals(0, first.integer("batches", 1) % 5, "saved every 5 steps: " + first.map());
        // A second run into the folder while this one trains would interleave their checkpoints: refused, naming the process.
        CliTest.Result second = run(concat(args, "--resume"));
        assertEquals(2, second.code(), second.out() + second.err());
        assertEquals("predcode: --out " + out + " is being trained into by another run (process " + p.pid() + "); wait for it to end, stop it, or give another --out",
                second.err().strip());
        p.destroy(); // SIGTERM
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "the run did not stop within 60 s of SIGTERM");
        String text = Files.readString(log);
        assertEquals(143, p.exitValue(), text);
        JsonFields last = training(out);
        long step = (long) last.number("steps");
        String at = last.has("epoch_progress")
                ? "at step " + step + " (epoch " + (last.integer("epochs_done", 0) + 1) + ", batch " + last.object("epoch_progress").integer("batches", 1) + " of 1347)"
                : "after epoch " + last.integer("epochs_done", 0) + " (step " + step + ")";
        assertTrue(text.contains("stopped: interrupted by SIGTERM; " + checkpoint + " holds the run " + at + ": --resume continues from there"), text);
        assertTrue(step >= first.integer("batches", 1) && step < 2 * 1347, "stopped before the run's end: " + text);
        assertTrue(text.contains("\nstep 5 (epoch 1, batch 5 of 1347): train loss "), "without a progress bar each save says how the epoch goes: " + text);

        CliTest.Result r = run(concat(args, "--resume"));
        assertEquals(0, r.code(), r.out() + r.err());
        assertTrue(r.out().contains("resuming " + out + " " + at), r.out());
        assertEquals(1 + 2 * 1347, Files.readAllLines(out.resolve("metrics.csv")).size(), "each step once");
    }

    /** The same in one process (a run on another thread); the folder is free again once the holder is done with it. */
    @Test void aFolderATrainingRunHoldsIsRefused(@TempDir Path tmp) throws Exception {
        Path out = Files.createDirectories(tmp.resolve("run"));
        try (RunLock held = RunLock.take(out)) {
            CliTest.Result r = run("train", "--epochs", "1", "--out", out.toString(), "--quiet");
            assertEquals(2, r.code(), r.out() + r.err());
            assertTrue(r.err().startsWith("predcode: --out " + out + " is being trained into by another run (process " + ProcessHandle.current().pid() + ")"), r.err());
            assertFalse(Files.exists(out.resolve("checkpoint.safetensors")), "nothing written");
        }
        assertEquals(0, run("train", "--epochs", "1", "--out", out.toString(), "--quiet", "--overwrite").code());
    }

    @Test void badCheckpointIntervalsAreRefusedInOneLine(@TempDir Path tmp) {
        for (String bad : new String[]{"5x", "-1", "", "1.5m", "10000000000"}) {
            CliTest.Result r = run("train", "--checkpoint-every", bad, "--epochs", "1", "--out", tmp.resolve("x").toString(), "--quiet");
            assertEquals(2, r.code(), bad + ": " + r.out() + r.err());
            assertEquals("predcode: --checkpoint-every must be a number of steps (500), a duration (30s, 10m, 2h) or 0, got '" + bad + "'", r.err().strip());
        }
        assertEquals(new TrainingRun.SaveEvery(0, java.time.Duration.ofMinutes(10).toNanos()), TrainingRun.SaveEvery.parse("10m"));
        assertEquals(new TrainingRun.SaveEvery(0, Long.MAX_VALUE), TrainingRun.SaveEvery.parse("999999999h"));
        assertTrue(TrainingRun.SaveEvery.parse("2h").due(1, java.time.Duration.ofHours(2).toNanos()));
        assertFalse(TrainingRun.SaveEvery.parse("2h").due(1_000_000, java.time.Duration.ofMinutes(119).toNanos()));
        assertTrue(TrainingRun.SaveEvery.parse("500").due(500, 0));
        assertFalse(TrainingRun.SaveEvery.parse("0").due(Long.MAX_VALUE, Long.MAX_VALUE), "0: at epoch ends only");
    }

    /**
     * --checkpoint-every saves inside an epoch, and not again at its last batch, whose save is the epoch's own: digits'
     * 43 batches an epoch with a save every 20 steps save at steps 20, 40, 60 and 80 and at the epochs' ends, once each.
     */
    @Test void aSaveDueAtAnEpochsLastBatchIsTheEpochsOwn(@TempDir Path tmp) {
        for (String every : new String[]{"20", "43"}) {
            CliTest.Result r = run("train", "--checkpoint-every", every, "--epochs", "2", "--out", tmp.resolve("every-" + every).toString(), "--quiet");
            assertEquals(0, r.code(), r.err());
            List<String> saves = r.out().lines().filter(l -> l.endsWith("checkpoint saved")).map(l -> l.substring(0, l.indexOf(' ', 5))).toList();
            assertEquals(every.equals("20") ? List.of("step 20", "step 40", "step 63", "step 83") : List.of(), saves, r.out());
        }
    }

    /** A checkpoint whose progress inside an epoch does not fit the run is refused, naming the field. */
    @Test void aTamperedProgressIsRefused(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("run");
        assertEquals(130, stoppedAfter(10, "train", "--epochs", "1", "--out", out.toString(), "--quiet").code());
        Path checkpoint = out.resolve("checkpoint.safetensors");
        byte[] bytes = Files.readAllBytes(checkpoint);
        String text = new String(bytes, java.nio.charset.StandardCharsets.ISO_8859_1);
        // The header is JSON with the training state as an escaped string: the same length, so the offsets still hold.
        String edited = text.replace("\\\"batches\\\":10,", "\\\"batches\\\":99,");
        assertNotEquals(text, edited, "the progress is in the header as written");
        Files.write(checkpoint, edited.getBytes(java.nio.charset.StandardCharsets.ISO_8859_1));
        CliTest.Result r = run("train", "--epochs", "1", "--out", out.toString(), "--quiet", "--resume");
        assertEquals(2, r.code(), r.out() + r.err());
        assertTrue(r.err().startsWith("predcode: " + checkpoint + ": field 'training.epoch_progress' holds 99 batches") && r.err().contains("expected 1..43 batches"), r.err());
    }

    private static Path trained(Path out, String... args) {
        String[] cmd = concat(new String[]{"train", "--out", out.toString(), "--quiet"}, args);
        assertEquals(0, run(cmd).code());
        return out;
    }

    private static JsonFields training(Path run) throws Exception {
        Path f = run.resolve("checkpoint.safetensors");
        String state = Safetensors.read(f).metadata().get("training");
        return JsonFields.of(Json.parse(state, f.toString()), f.toString(), "training");
    }

    /** The same rows in two metrics.csv files, but for the ms column (the fifth): each step's own time. */
    private static void assertSameRows(Path expected, Path actual) throws Exception {
        List<String> a = Files.readAllLines(expected), b = Files.readAllLines(actual);
        for (int i = 0; i < Math.min(a.size(), b.size()); i++) {
            String[] x = a.get(i).split(",", -1), y = b.get(i).split(",", -1);
            x[4] = y[4] = "";
            assertEquals(String.join(",", x), String.join(",", y), actual + ", row " + i);
        }
        assertEquals(a.size(), b.size(), actual + ": rows");
    }

    private static String[] concat(String[] a, String... b) {
        String[] r = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }
}
