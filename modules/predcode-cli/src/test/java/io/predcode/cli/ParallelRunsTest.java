package io.predcode.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static io.predcode.cli.CliTest.json;
import static io.predcode.cli.CliTest.run;
import static org.junit.jupiter.api.Assertions.*;

/**
 * {@code train --seeds --parallel-runs K}: seeds trained at once are the runs trained one after another, byte for byte
 * (on the same thread count: a run's sums depend on it alone), each line of their output names its seed, and a stop
 * stops every seed training, each resumable.
 */
class ParallelRunsTest {
    private static final String[] SWEEP = {"train", "--seeds", "0-2", "--epochs", "2", "--threads", "1", "--quiet"};

    /** Trains {@code sweep} in turn into tmp/in-turn and two at once into tmp/at-once; each run's model the same bytes. The at-once result. */
    private static CliTest.Result inTurnAndAtOnce(String[] sweep, Path tmp, String... runs) throws Exception {
        assertEquals(0, run(CliTest.concat(sweep, new String[]{"--out", tmp.resolve("in-turn").toString()})).code());
        CliTest.Result r = run(CliTest.concat(sweep, new String[]{"--parallel-runs", "2", "--out", tmp.resolve("at-once").toString()}));
        assertEquals(0, r.code(), r.out() + r.err());
        assertSameModels(tmp.resolve("in-turn"), tmp.resolve("at-once"), runs);
        return r;
    }

    /** Each run's model.safetensors under {@code expected} and {@code actual}, byte for byte. */
    static void assertSameModels(Path expected, Path actual, String... runs) throws java.io.IOException {
        for (String run : runs)
            assertArrayEquals(Files.readAllBytes(expected.resolve(run).resolve("model.safetensors")), Files.readAllBytes(actual.resolve(run).resolve("model.safetensors")), run);
    }

    @Test void seedsTrainedAtOnceAreTheSeedsTrainedInTurn(@TempDir Path tmp) throws Exception {
        Path inTurn = tmp.resolve("in-turn"), atOnce = tmp.resolve("at-once");
        CliTest.Result r = inTurnAndAtOnce(SWEEP, tmp, "seed-0", "seed-1", "seed-2");
        assertEquals(json(inTurn.resolve("seeds.json")).object("final_test_accuracy").number("mean"), json(atOnce.resolve("seeds.json")).object("final_test_accuracy").number("mean"));
        List<String> lines = r.out().lines().toList();
        assertEquals("seeds: 2 at once, 1 thread each", lines.getFirst());
        int summary = lines.indexOf("seeds: 3 runs");
        assertTrue(summary > 0, r.out());
        // Every line of a seed's run is whole and names its seed: two seeds' lines never mix.
        for (String line : lines.subList(1, summary)) assertTrue(line.matches("seed [0-2] \\| (== seed|training|epoch|stopped|best|last).*"), line);
        for (String seed : new String[]{"0", "1", "2"})
            assertEquals(2, lines.stream().filter(l -> l.matches("seed " + seed + " \\| epoch [12]/2 .*")).count(), "two epoch lines a seed: " + r.out());
    }

    @Test void aStopStopsEverySeedTrainingAndTheSweepResumes(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("sweep"), inTurn = tmp.resolve("in-turn");
        CliTest.Result r = InterruptedRunTest.stoppedAfter(10, CliTest.concat(SWEEP, new String[]{"--parallel-runs", "2", "--out", out.toString()}));
        assertEquals(130, r.code(), r.out() + r.err());
        assertTrue(r.out().contains("seeds: stopped in seeds 0, 1; --resume continues the sweep from their checkpoints"), r.out());
        assertFalse(Files.exists(out.resolve("seed-2")), "no seed starts once one was stopped");
        r = run(CliTest.concat(SWEEP, new String[]{"--parallel-runs", "2", "--out", out.toString(), "--resume"}));
        assertEquals(0, r.code(), r.out() + r.err());
        assertTrue(r.out().contains("seed 1 | resuming " + out.resolve("seed-1") + " at step 10 (epoch 1, batch 10 of 43)"), r.out());
        assertEquals(0, run(CliTest.concat(SWEEP, new String[]{"--out", inTurn.toString()})).code());
        assertSameModels(inTurn, out, "seed-0", "seed-1", "seed-2");
    }

    /** On CUDA (a GPU, or the host simulator in CI, where it must run) the seeds share the device (its primary context), each backend on streams of its own. */
    @Test void seedsTrainedAtOnceShareACudaDevice(@TempDir Path tmp) throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(CliTest.cudaAvailable(), () -> "cuda unavailable: " + io.predcode.spi.Backends.provider("cuda").availability().reason());
        String[] sweep = {"train", "--backend", "cuda", "--algorithm", "pc", "--seeds", "0-1", "--epochs", "1", "--max-steps", "20", "--quiet"};
        inTurnAndAtOnce(sweep, tmp, "seed-0", "seed-1");
    }

    @Test void badParallelSeedsAreRefusedInOneLine(@TempDir Path tmp) {
        for (String[] bad : new String[][]{{"--seeds", "0-1", "--parallel-runs", "0", "--parallel-runs must be in 1..1000, got 0"},
                {"--parallel-runs", "2", "--parallel-runs trains the runs of --seeds or --grid at once; give one of them too"},
                {"--seeds", "0-1", "--parallel-runs", "2", "--spark", "local[2]", "--parallel-runs with --spark"}}) {
            String[] args = CliTest.concat(new String[]{"train", "--epochs", "1", "--quiet", "--out", tmp.resolve("x").toString()}, java.util.Arrays.copyOf(bad, bad.length - 1));
            CliTest.Result r = run(args);
            assertEquals(2, r.code(), String.join(" ", bad) + ": " + r.out() + r.err());
            assertTrue(r.err().startsWith("predcode: " + bad[bad.length - 1]), r.err());
            assertEquals(1, r.err().strip().lines().count(), r.err());
        }
        assertFalse(Files.exists(tmp.resolve("x")), "a refused run writes nothing");
        // An error in the seeds training (here each, reading the data) is one line, and no further seed starts.
        Path sweep = tmp.resolve("sweep");
        CliTest.Result r = run("train", "--seeds", "0-4", "--parallel-runs", "2", "--data", "npy:" + tmp.resolve("missing"), "--quiet", "--out", sweep.toString());
        assertEquals(2, r.code(), r.out() + r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        // Two start at once: either may fail first, and the other's end is not waited for.
        assertTrue(r.err().contains("npy folder not found") && (r.out().contains("seed 0 | failed: ") || r.out().contains("seed 1 | failed: ")), r.out() + r.err());
        assertFalse(Files.exists(sweep.resolve("seed-2")) || r.out().contains("seed 2 |"), r.out());
    }

    /** Runs one after another read their data set once: the next run on the same one takes the same copy; another mapping, another. */
    @Test void runsOneAfterAnotherReadTheirDataSetOnce() throws Exception {
        Sweep.LastData last = new Sweep.LastData();
        io.predcode.data.DataSplit first = last.load(settings("--seed", "0"));
        assertSame(first, last.load(settings("--seed", "1")), "another seed of the same data set: not read again");
        io.predcode.data.DataSplit mapped = last.load(settings("--input-range", "-1:1"));
        assertNotSame(first, mapped, "mapped to [-1, 1]: another data set");
        assertSame(mapped, last.load(settings("--input-range", "-1:1", "--lr", "0.01")));
        float least = Float.MAX_VALUE;
        for (float v : mapped.train().images()) least = Math.min(least, v);
        assertEquals(-1f, least, "digits' blank pixels, mapped");
    }

    private static TrainingRun.Settings settings(String... args) {
        TrainCommand train = new TrainCommand();
        new picocli.CommandLine(train).parseArgs(args);
        return train.settings();
    }
}
