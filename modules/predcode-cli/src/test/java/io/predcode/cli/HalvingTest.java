package io.predcode.cli;

import io.predcode.core.json.JsonFields;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;

import static io.predcode.cli.CliTest.json;
import static io.predcode.cli.CliTest.run;
import static org.junit.jupiter.api.Assertions.*;

/**
 * {@code train --grid ... --halving ETA} and {@code --grid-sample N}: the rungs are successive halving's; the points that
 * go on are the best by validation accuracy; a point that goes all the way is its run alone, byte for byte; a stop
 * resumes as never stopped; a sample is a seeded draw of the grid's points.
 */
class HalvingTest {
    private static final String[] HALVING = {"train", "--grid", "lr=0.01,0.003,0.001", "--halving", "2", "--epochs", "2", "--threads", "1", "--quiet"};

    @Test void rungsDivideThePointsAndTheEpochsByEta() {
        assertEquals(List.of(new Halving.Rung(1, 27), new Halving.Rung(3, 9), new Halving.Rung(9, 3), new Halving.Rung(27, 1)), Halving.rungs(27, 27, 3));
        assertEquals(List.of(new Halving.Rung(2, 6), new Halving.Rung(5, 3), new Halving.Rung(10, 1)), Halving.rungs(6, 10, 2));
        assertEquals(List.of(new Halving.Rung(1, 27), new Halving.Rung(3, 9)), Halving.rungs(27, 3, 3), "as many rungs as the epochs allow: 9 points train all 3");
        assertEquals(List.of(new Halving.Rung(100, 2)), Halving.rungs(2, 100, 3), "fewer points than ETA: every point trains every epoch");
        assertEquals(List.of(new Halving.Rung(1, 5)), Halving.rungs(5, 1, 2));
        assertEquals("27 points to epoch 1, 9 to 3, 3 to 9, 1 to 27", Halving.describe(Halving.rungs(27, 27, 3)));
    }

    @Test void theBestPointsGoOnAndTrainAsInTheWholeGrid(@TempDir Path tmp) throws Exception {
        Path grid = tmp.resolve("grid"), whole = tmp.resolve("whole");
        // Without --threads: each run takes its share of the cores in every rung, the last (one run, where two trained at
        // once before) too.
        String[] shared = java.util.Arrays.stream(HALVING).filter(a -> !a.equals("--threads") && !a.equals("1")).toArray(String[]::new);
        assertEquals(HALVING.length - 2, shared.length);
        CliTest.Result r = run(CliTest.concat(shared, new String[]{"--parallel-runs", "2", "--out", grid.toString()}));
        assertEquals(0, r.code(), r.out() + r.err());
        assertTrue(r.out().startsWith("halving: 3 points to epoch 1, 1 to 2 (the best 1/2 of the points go on at each rung, by validation accuracy)"), r.out());
        // The one that went on is the best at epoch 1 by validation accuracy, as each run's metrics.json has it.
        List<String> folders = List.of("lr-0.01", "lr-0.003", "lr-0.001");
        List<String> byEpoch1 = new ArrayList<>(folders);
        byEpoch1.sort(Comparator.comparingDouble(f -> -epoch1(grid.resolve(f))));
        JsonFields summary = json(grid.resolve("grid.json"));
        List<Object> points = summary.list("points");
        for (int i = 0; i < 3; i++) {
            Map<?, ?> p = (Map<?, ?>) points.get(i);
            assertEquals(grid.resolve(byEpoch1.get(i)).toString(), p.get("out"), "ranked: the one that went on first, then by validation accuracy");
            int epochs = i < 1 ? 2 : 1;
            assertEquals(epochs, ((Number) p.get("trained_to_epoch")).intValue());
            assertEquals(epochs, json(grid.resolve(byEpoch1.get(i)).resolve("metrics.json")).list("epochs").size());
        }
        assertEquals("paused after epoch 1 of 2; --resume goes on", json(grid.resolve(byEpoch1.get(2)).resolve("metrics.json")).string("stop_reason"));
        assertEquals(2.0, summary.object("halving").number("eta"));
        // The point that went all the way is the whole grid's (each the run alone: GridSweepTest), byte for byte.
        List<String> noHalving = new ArrayList<>(List.of(shared));
        noHalving.subList(noHalving.indexOf("--halving"), noHalving.indexOf("--halving") + 2).clear();
        assertEquals(0, run(CliTest.concat(noHalving.toArray(String[]::new), new String[]{"--parallel-runs", "2", "--out", whole.toString()})).code());
        ParallelRunsTest.assertSameModels(whole, grid, byEpoch1.getFirst());
        assertTrue(r.out().contains("grid: 3 points by successive halving (3 points to epoch 1, 1 to 2)"), r.out());
        CliTest.Result inspected = run("inspect", "--checkpoint", grid.toString());
        assertTrue(inspected.out().startsWith(r.out().substring(r.out().indexOf("grid: 3 points by"))), inspected.out());
    }

    private static double epoch1(Path run) {
        try {
            return Halving.bestUpTo(run, true, 1);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    @Test void aStoppedHalvingResumesAsNeverStopped(@TempDir Path tmp) throws Exception {
        Path whole = tmp.resolve("whole"), stopped = tmp.resolve("stopped");
        String[] grid = CliTest.concat(HALVING, new String[]{"--lr-schedule", "cosine", "--seeds", "0-1", "--parallel-runs", "2"});
        assertEquals(0, run(CliTest.concat(grid, new String[]{"--out", whole.toString()})).code());
        // Digits has 43 steps an epoch: step 60 is inside the second rung, where the best point's two seeds train at once.
        CliTest.Result r = InterruptedRunTest.stoppedAfter(60, CliTest.concat(grid, new String[]{"--out", stopped.toString()}));
        assertEquals(130, r.code(), r.out() + r.err());
        assertTrue(r.out().contains("halving: rung 2 of 2, 1 point to epoch 2"), r.out());
        assertTrue(r.out().contains("grid: stopped with 2 runs training"), r.out());
        assertFalse(Files.exists(stopped.resolve("grid.json")));
        // Stopped before its table: inspect lists its runs so far, and a command that needs a run names one.
        CliTest.Result inspected = run("inspect", "--checkpoint", stopped.toString());
        assertEquals(0, inspected.code(), inspected.err());
        assertTrue(inspected.out().startsWith(stopped + " holds no run of its own but runs in its folders, as a sweep (train --grid or --seeds) stopped before its end does;"
                + " train --resume --out " + stopped + " finishes it (its options are in command.json)"), inspected.out());
        assertTrue(inspected.out().lines().anyMatch(l -> l.matches("lr-0\\.00[13]/seed-0 +1 epoch +paused after epoch 1 of 2; --resume goes on")), inspected.out());
        assertEquals(6, inspected.out().lines().count() - 1, "a line per run (not per run's best/): " + inspected.out());
        CliTest.Result refused = run("eval", "--checkpoint", stopped.toString());
        assertEquals(2, refused.code());
        assertTrue(refused.err().contains("stopped before its end does: give one of its runs, e.g. " + stopped.resolve("lr-0.001").resolve("seed-0")), refused.err());
        String[] otherHalving = grid.clone();
        otherHalving[java.util.Arrays.asList(grid).indexOf("--halving") + 1] = "3";
        CliTest.Result other = run(CliTest.concat(otherHalving, new String[]{"--out", stopped.toString(), "--resume"}));
        assertEquals(2, other.code());
        assertTrue(other.err().startsWith("predcode: " + stopped.resolve("halving.json") + " was written by another halving (--halving 2, rungs 3 points to epoch 1, 1 to 2)"), other.err());
        // --resume alone: the halving's options (its grid, seeds, schedule and parallel runs) from its command.json.
        r = run("train", "--out", stopped.toString(), "--resume");
        assertEquals(0, r.code(), r.out() + r.err());
        for (String point : new String[]{"lr-0.01", "lr-0.003", "lr-0.001"})
            ParallelRunsTest.assertSameModels(whole.resolve(point), stopped.resolve(point), "seed-0", "seed-1");
        assertEquals(json(whole.resolve("grid.json")).list("points").stream().map(p -> ((Map<?, ?>) p).get("point")).toList(),
                json(stopped.resolve("grid.json")).list("points").stream().map(p -> ((Map<?, ?>) p).get("point")).toList());
        // A finished halving resumed trains nothing and prints its table again.
        r = run(CliTest.concat(grid, new String[]{"--out", stopped.toString(), "--resume"}));
        assertEquals(0, r.code(), r.out() + r.err());
        assertFalse(r.out().contains("| epoch") || r.out().contains("resuming"), r.out());
        assertTrue(r.out().contains("(6 of its runs ended there before the stop)") && r.out().contains("(2 of its runs ended there before the stop)"), r.out());
    }

    @Test void aSampleIsASeededDrawOfTheGridsPoints(@TempDir Path tmp) throws Exception {
        String[] big = {"train", "--grid", "lr=log:1e-4:1e-1:100", "--grid", "eta=log:0.01:0.2:100", "--epochs", "1", "--max-steps", "1", "--threads", "1", "--quiet"};
        CliTest.Result refused = run(CliTest.concat(big, new String[]{"--out", tmp.resolve("all").toString()}));
        assertEquals(2, refused.code());
        assertEquals("predcode: --grid: 10000 points, more than 1000; --grid-sample N trains N of them drawn at random", refused.err().strip());
        List<List<?>> draws = new ArrayList<>();
        for (String sample : new String[]{"3:7", "3:7", "3:8"}) {
            Path out = tmp.resolve("s" + draws.size());
            CliTest.Result r = run(CliTest.concat(big, new String[]{"--grid-sample", sample, "--out", out.toString()}));
            assertEquals(0, r.code(), r.out() + r.err());
            assertTrue(r.out().startsWith("grid: 3 of its 10000 points, drawn at random (--grid-sample " + sample + ")"), r.out());
            JsonFields summary = json(out.resolve("grid.json"));
            assertEquals(10000.0, summary.number("grid_points"));
            List<?> settings = summary.list("points").stream().map(p -> ((Map<?, ?>) p).get("settings")).sorted(Comparator.comparing(Object::toString)).toList();
            assertEquals(3, settings.size());
            for (Object s : settings) {
                Map<?, ?> point = (Map<?, ?>) s;
                assertTrue(GridSweep.spaced("lr", "log:1e-4:1e-1:100", false).contains(point.get("lr")), point.toString());
                assertTrue(GridSweep.spaced("eta", "log:0.01:0.2:100", false).contains(point.get("eta")), point.toString());
            }
            draws.add(settings);
        }
        assertEquals(draws.get(0), draws.get(1), "the same seed draws the same points");
        assertNotEquals(draws.get(0), draws.get(2), "another seed, another draw");
    }

    @Test void misusesAreOneLine(@TempDir Path tmp) {
        Path out = tmp.resolve("grid");
        for (String[] bad : new String[][]{
                {"--halving", "2", "--halving works on the points of a --grid; give --grid too"},
                {"--grid-sample", "2", "--grid-sample works on the points of a --grid; give --grid too"},
                {"--grid", "lr=0.1,0.2", "--halving", "1", "--halving must be in 2..100"},
                {"--grid", "lr=0.1,0.2", "--halving", "2", "--max-steps", "5", "--halving decides how long each point trains"},
                {"--grid", "epochs=1,2", "--halving", "2", "--halving spends --epochs over its rungs; give --epochs once, not on the grid"},
                {"--grid", "lr=0.1,0.2", "--grid-sample", "0", "--grid-sample: expected N or N:SEED"},
                {"--grid", "lr=0.1,0.2", "--grid-sample", "3", "--grid-sample 3: the grid has 2 points"},
                {"--grid", "lr=0.1,0.2", "--grid-sample", "1:x", "--grid-sample: expected N or N:SEED"}}) {
            String[] args = CliTest.concat(new String[]{"train", "--quiet", "--out", out.toString()}, java.util.Arrays.copyOf(bad, bad.length - 1));
            CliTest.Result r = run(args);
            assertEquals(2, r.code(), String.join(" ", bad) + ": " + r.out() + r.err());
            assertTrue(r.err().startsWith("predcode: " + bad[bad.length - 1]), r.err());
            assertEquals(1, r.err().strip().lines().count(), r.err());
            assertFalse(Files.exists(out), "nothing trained: " + String.join(" ", bad));
        }
    }
}
