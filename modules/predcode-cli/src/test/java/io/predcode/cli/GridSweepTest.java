package io.predcode.cli;

import io.predcode.core.json.JsonFields;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static io.predcode.cli.CliTest.json;
import static io.predcode.cli.CliTest.run;
import static org.junit.jupiter.api.Assertions.*;

/**
 * {@code train --grid}: each point is the run its settings give alone, byte for byte; the points are ranked by
 * validation accuracy; every point is checked before any trains; a stop saves the runs training and --resume finishes
 * the grid as if never stopped.
 */
class GridSweepTest {
    private static final String[] GRID = {"train", "--grid", "lr=0.002,0.0005", "--epochs", "1", "--threads", "1", "--quiet"};

    @Test void eachPointIsItsOwnRunAndThePointsAreRanked(@TempDir Path tmp) throws Exception {
        Path grid = tmp.resolve("grid"), alone = tmp.resolve("alone");
        CliTest.Result r = run(CliTest.concat(GRID, new String[]{"--seeds", "0-1", "--parallel-runs", "2", "--out", grid.toString()}));
        assertEquals(0, r.code(), r.out() + r.err());
        assertEquals(0, run("train", "--lr", "0.0005", "--seed", "1", "--epochs", "1", "--threads", "1", "--quiet", "--out", alone.toString()).code());
        assertArrayEquals(Files.readAllBytes(alone.resolve("model.safetensors")), Files.readAllBytes(grid.resolve("lr-0.0005/seed-1/model.safetensors")));
        JsonFields summary = json(grid.resolve("grid.json"));
        assertEquals("validation accuracy", summary.string("selected_by"));
        List<Object> points = summary.list("points");
        assertEquals(2, points.size());
        double[] means = points.stream().mapToDouble(p -> ((Number) ((Map<?, ?>) ((Map<?, ?>) p).get("selection_accuracy")).get("mean")).doubleValue()).toArray();
        assertTrue(means[0] >= means[1], "best first: " + java.util.Arrays.toString(means));
        Map<?, ?> first = (Map<?, ?>) points.getFirst();
        assertEquals(2, ((List<?>) first.get("runs")).size(), "a run per seed");
        double v0 = json(grid.resolve(first.get("out") + "/seed-0/metrics.json")).number("best_selection_accuracy"),
                v1 = json(grid.resolve(first.get("out") + "/seed-1/metrics.json")).number("best_selection_accuracy");
        assertEquals((v0 + v1) / 2, means[0], 1e-12);
        assertTrue(r.out().contains("grid: 2 points, best first by validation accuracy"), r.out());
        assertTrue(r.out().contains("best: " + first.get("point") + " (val acc "), r.out());
        assertTrue(r.out().contains("all in " + grid.resolve("grid.json") + " and grid.png"), r.out());
        // The best point's own command trains it again (seed 0 without --seeds), byte for byte.
        String command = r.out().lines().filter(l -> l.startsWith("train it again: predcode ")).findFirst().orElseThrow().substring("train it again: predcode ".length());
        assertEquals("train --epochs 1 --threads 1 --quiet --lr " + ((Map<?, ?>) ((Map<?, ?>) summary.list("points").getFirst()).get("settings")).get("lr") + " --out DIR", command);
        Path again = tmp.resolve("again");
        assertEquals(0, run(command.replace("DIR", again.toString()).split(" ")).code());
        assertArrayEquals(Files.readAllBytes(grid.resolve(((Map<?, ?>) summary.list("points").getFirst()).get("out") + "/seed-0/model.safetensors")),
                Files.readAllBytes(again.resolve("model.safetensors")));
        assertEquals("'a b'", GridSweep.shellWord("a b"));
        assertEquals("'it'\\''s'", GridSweep.shellWord("it's"));
        assertEquals("augment=flip,crop:4", GridSweep.shellWord("augment=flip,crop:4"));
        java.awt.image.BufferedImage chart = javax.imageio.ImageIO.read(grid.resolve("grid.png").toFile());
        assertEquals(640, chart.getWidth(), "the points' validation accuracy per epoch");
        assertTrue(r.out().lines().anyMatch(l -> l.startsWith("lr=0.0005 seed 1 | epoch 1/1 ")), r.out());
        // A command that needs a run, given the grid's folder, names one of its runs; --resume without the grid says how.
        for (String[] cmd : new String[][]{{"eval", "--checkpoint", grid.toString()}, {"compare", "--checkpoint", grid.toString()},
                {"predict", "--checkpoint", grid.toString(), "--input", "x.npy"}}) {
            CliTest.Result refused = run(cmd);
            assertEquals(2, refused.code(), String.join(" ", cmd) + ": " + refused.err());
            assertEquals("predcode: " + grid + " is a sweep's folder (grid.json), not a run's: give one of its runs, e.g. " + first.get("out") + " (its best)",
                    refused.err().strip());
        }
        // inspect on the grid's folder prints its table again, as train ended with it; a tampered summary is one line.
        CliTest.Result inspected = run("inspect", "--checkpoint", grid.toString());
        assertEquals(0, inspected.code(), inspected.err());
        String table = r.out().substring(r.out().indexOf("grid: 2 points"));
        assertTrue(inspected.out().startsWith(table), inspected.out() + " / " + table);
        Files.writeString(grid.resolve("grid.json"), "{\"points\": 3}");
        inspected = run("inspect", "--checkpoint", grid.toString());
        assertEquals(2, inspected.code());
        assertEquals("predcode: " + grid.resolve("grid.json") + ": not a sweep's summary as train writes it", inspected.err().strip());
        // --resume alone takes the grid's options from its command.json (every run done: the table again); a grid from
        // before that file says how to resume it.
        CliTest.Result resumed = run("train", "--resume", "--out", grid.toString(), "--quiet");
        assertEquals(0, resumed.code(), resumed.err());
        assertTrue(resumed.out().contains("grid: 2 points"), resumed.out());
        Files.delete(grid.resolve("command.json"));
        resumed = run("train", "--resume", "--out", grid.toString(), "--quiet");
        assertTrue(resumed.code() == 2 && resumed.err().contains(grid + " holds a sweep (grid.json): resume it with its --grid or --seeds"), resumed.err());
        // Without --seeds, --seed is every point's.
        Path seeded = tmp.resolve("seeded");
        assertEquals(0, run(CliTest.concat(GRID, new String[]{"--seed", "1", "--out", seeded.toString()})).code());
        assertArrayEquals(Files.readAllBytes(alone.resolve("model.safetensors")), Files.readAllBytes(seeded.resolve("lr-0.0005/model.safetensors")));
    }

    @Test void aBadPointIsRefusedBeforeAnyTrains(@TempDir Path tmp) {
        Path out = tmp.resolve("grid");
        for (String[] bad : new String[][]{
                {"--grid", "lr", "--grid: expected KEY=V1,V2"},
                {"--grid", "colour=red", "--grid colour=red: --colour is not an option of train that takes a value"},
                {"--grid", "quiet=on", "--grid quiet=on: --quiet is not an option of train that takes a value"},
                {"--grid", "threads=1,2", "--grid threads=1,2: --threads is the run's place or machine"},
                {"--grid", "seed=1,2", "--grid seed=1,2: give the seeds with --seeds"},
                {"--grid", "lr=0.1", "--seeds", "0-1", "--seed", "2", "--seeds runs its own seeds: give it or --seed, not both"},
                {"--grid", "lr=0.1", "--resume", "--overwrite", "--resume continues the run in --out and --overwrite replaces it: give one"},
                {"--grid", "lr=0.1,0.1", "--grid lr=0.1,0.1: 0.1 is given twice"},
                {"--grid", "lr=0.1", "--lr", "0.2", "--grid lr=0.1: --lr is given too"},
                {"--grid", "lr=0.1", "--grid", "lr=0.2", "--grid: --lr is given twice"},
                {"--grid", "lr=0.1,abc", "--grid lr=abc: Invalid value for option '--lr'"},
                {"--grid", "lr=log:0:0.1:3", "--grid lr=log:0:0.1:3: expected log:FROM:TO:N (N values from FROM to TO, 2 <= N <= 100), FROM and TO > 0"},
                {"--grid", "eta=lin:0.1:0.2:1", "--grid eta=lin:0.1:0.2:1: expected lin:FROM:TO:N"},
                {"--grid", "n=lin:1:3:10", "--grid n=lin:1:3:10: 1 is given twice"},
                {"--grid", "lr=0.1", "--grid", "eta=0.1,-1", "--grid lr=0.1 eta=-1: "}}) {
            String[] args = CliTest.concat(new String[]{"train", "--epochs", "1", "--quiet", "--out", out.toString()}, java.util.Arrays.copyOf(bad, bad.length - 1));
            CliTest.Result r = run(args);
            assertEquals(2, r.code(), String.join(" ", bad) + ": " + r.out() + r.err());
            assertTrue(r.err().startsWith("predcode: " + bad[bad.length - 1]), r.err());
            assertEquals(1, r.err().strip().lines().count(), r.err());
            assertFalse(Files.exists(out), "nothing trained: " + String.join(" ", bad));
        }
        // A folder that holds a run is refused, naming its point, unless --resume or --overwrite.
        assertEquals(0, run(CliTest.concat(GRID, new String[]{"--max-steps", "2", "--out", out.toString()})).code());
        CliTest.Result again = run(CliTest.concat(GRID, new String[]{"--max-steps", "2", "--out", out.toString()}));
        assertEquals(2, again.code());
        assertTrue(again.err().startsWith("predcode: --grid lr=0.002: --out " + out.resolve("lr-0.002") + " holds a run"), again.err());
        assertEquals(0, run(CliTest.concat(GRID, new String[]{"--max-steps", "2", "--out", out.toString(), "--overwrite"})).code());
    }

    /** Spaced axes: both ends included, four significant digits, integers for an integer option. */
    @Test void spacedValuesAreThoseAPersonWouldType() {
        assertEquals(List.of("0.0001", "0.0003162", "0.001", "0.003162", "0.01"), GridSweep.spaced("lr=log:1e-4:1e-2:5", "log:1e-4:1e-2:5", false));
        assertEquals(List.of("32", "64", "128", "256"), GridSweep.spaced("batch-size=log:32:256:4", "log:32:256:4", true));
        assertEquals(List.of("0.1", "0.2", "0.3"), GridSweep.spaced("eta=lin:0.1:0.3:3", "lin:0.1:0.3:3", false));
        assertEquals(List.of("5", "8", "11", "14"), GridSweep.spaced("n=lin:5:14:4", "lin:5:14:4", true));
        assertEquals(List.of("1", "0.1", "0.01"), GridSweep.spaced("eta=log:1:0.01:3", "log:1:0.01:3", false), "descending too");
    }

    @Test void aStoppedGridResumesAsNeverStopped(@TempDir Path tmp) throws Exception {
        Path whole = tmp.resolve("whole"), stopped = tmp.resolve("stopped");
        String[] grid = {"train", "--grid", "eta=0.1,0.05", "--grid", "augment=none|flip,crop:1", "--epochs", "2", "--threads", "1", "--quiet"};
        assertEquals(0, run(CliTest.concat(grid, new String[]{"--out", whole.toString()})).code());
        CliTest.Result r = InterruptedRunTest.stoppedAfter(50, CliTest.concat(grid, new String[]{"--parallel-runs", "2", "--out", stopped.toString()}));
        assertEquals(130, r.code(), r.out() + r.err());
        assertTrue(r.out().contains("grid: stopped with 2 runs training; --resume continues the grid from their checkpoints"), r.out());
        r = run(CliTest.concat(grid, new String[]{"--parallel-runs", "2", "--out", stopped.toString(), "--resume"}));
        assertEquals(0, r.code(), r.out() + r.err());
        assertTrue(r.out().contains("eta=0.1 augment=none | resuming " + stopped.resolve("eta-0.1_augment-none") + " at step 50 (epoch 2, batch 7 of 43)"), r.out());
        ParallelRunsTest.assertSameModels(whole, stopped, "eta-0.1_augment-none", "eta-0.1_augment-flip-crop-1", "eta-0.05_augment-none", "eta-0.05_augment-flip-crop-1");
        assertEquals(json(whole.resolve("grid.json")).list("points").size(), json(stopped.resolve("grid.json")).list("points").size());
    }
}
