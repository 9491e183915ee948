package io.predcode.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static io.predcode.cli.CliTest.json;
import static io.predcode.cli.CliTest.run;
import static org.junit.jupiter.api.Assertions.*;

/**
 * {@code --thread-invariant}: a run gives the same model on any {@code --threads}, resumed or not, its model predicts the
 * same on any, and a halving's last rung takes every core and still trains its point as the whole grid does. The model is wide enough at batch
 * 128 that its GEMMs split (the core's SameBitsOnAnyThreadsTest holds the ops to it on models like it).
 */
class ThreadInvariantTest {
    /** Digits through 256 and 160 units: 128 x 256 x 64 and 128 x 160 x 256 GEMMs, each split in two. */
    private static final String WIDE = """
            {"input": [1, 8, 8], "blocks": [
              [{"op": "flatten"}, {"op": "linear", "in": 64, "out": 256, "bias": true}, {"op": "gelu_tanh"}],
              [{"op": "linear", "in": 256, "out": 160, "bias": true}, {"op": "relu"}],
              [{"op": "linear", "in": 160, "out": 10, "bias": true}]]}
            """;

    private static String[] train(Path model, String... more) {
        return CliTest.concat(new String[]{"train", "--model", model.toString(), "--algorithm", "pc", "--batch-size", "128", "--epochs", "2", "--thread-invariant", "--quiet"},
                more);
    }

    @Test void aRunIsTheSameOnAnyThreadsAndResumesOnlyAsItWas(@TempDir Path tmp) throws Exception {
        Path model = Files.writeString(tmp.resolve("wide.json"), WIDE);
        for (String threads : new String[]{"1", "2", "3"}) {
            CliTest.Result r = run(train(model, "--threads", threads, "--out", tmp.resolve("t" + threads).toString()));
            assertEquals(0, r.code(), r.out() + r.err());
        }
        for (String other : new String[]{"t2", "t3"})
            assertArrayEquals(Files.readAllBytes(tmp.resolve("t1/model.safetensors")), Files.readAllBytes(tmp.resolve(other).resolve("model.safetensors")), other);
        assertEquals("on", json(tmp.resolve("t1/metrics.json")).object("settings").string("thread_invariant"));
        CliTest.Result inspected = run("inspect", "--checkpoint", tmp.resolve("t1").toString());
        assertTrue(inspected.out().lines().anyMatch(l -> l.startsWith("trained: ") && l.endsWith(", thread-invariant")), inspected.out());
        // predict (as eval, generate and compare) takes the option from the run that trained the model: its probabilities
        // are the same bytes on any --threads, not given. On random images in digits' stored range, 0..16: on digits' own
        // test images, probabilities split by the thread count happened to come out the same bytes.
        java.util.SplittableRandom random = new java.util.SplittableRandom(3);
        float[] raw = new float[360 * 64];
        for (int i = 0; i < raw.length; i++) raw[i] = (float) random.nextDouble(0, 16);
        Path input = Files.write(tmp.resolve("images.npy"), io.predcode.data.Npy.encode(new int[]{360, 8, 8}, raw));
        byte[] probs = null;
        for (String threads : new String[]{"1", "2", "3"}) {
            Path out = tmp.resolve("probs-" + threads + ".npy");
            CliTest.Result p = run("predict", "--checkpoint", tmp.resolve("t1").toString(), "--input", input.toString(), "--out", out.toString(), "--threads", threads,
                    "--batch-size", "360");
            assertEquals(0, p.code(), p.out() + p.err());
            if (probs == null) probs = Files.readAllBytes(out);
            else assertArrayEquals(probs, Files.readAllBytes(out), "probabilities on " + threads + " threads against 1");
        }
        // Stopped inside its first epoch on one thread, resumed on two: the same model as never stopped.
        Path resumed = tmp.resolve("resumed");
        CliTest.Result stopped = run(train(model, "--threads", "1", "--max-steps", "5", "--out", resumed.toString()));
        assertEquals(0, stopped.code(), stopped.out() + stopped.err());
        CliTest.Result r = run(train(model, "--threads", "2", "--out", resumed.toString(), "--resume"));
        assertEquals(0, r.code(), r.out() + r.err());
        assertArrayEquals(Files.readAllBytes(tmp.resolve("t1/model.safetensors")), Files.readAllBytes(resumed.resolve("model.safetensors")));
        // Without the option the run would split by the thread count: a resume that leaves it out keeps the run's, and a run
        // trained without it is not resumed with it.
        String[] without = java.util.Arrays.stream(train(model, "--threads", "1", "--max-steps", "3", "--out", tmp.resolve("plain").toString()))
                .filter(a -> !a.equals("--thread-invariant")).toArray(String[]::new);
        assertEquals(0, run(without).code());
        CliTest.Result refused = run("train", "--resume", "--thread-invariant", "--out", tmp.resolve("plain").toString());
        assertEquals(2, refused.code(), refused.out() + refused.err());
        assertEquals("predcode: " + tmp.resolve("plain").resolve("checkpoint.safetensors") + ": checkpoint was trained with --thread-invariant off, not on; --resume continues the same run",
                refused.err().strip());
        CliTest.Result kept = run("train", "--resume", "--threads", "2", "--out", resumed.toString(), "--epochs", "3", "--max-steps", "30");
        assertEquals(0, kept.code(), kept.out() + kept.err());
        assertTrue(kept.out().contains("--thread-invariant") && kept.out().contains("thread-invariant;"), "resumed thread-invariant: " + kept.out());
    }

    @Test void aHalvingsLastRungTakesEveryCoreAndTrainsAsTheWholeGrid(@TempDir Path tmp) throws Exception {
        Path model = Files.writeString(tmp.resolve("wide.json"), WIDE), halving = tmp.resolve("halving"), whole = tmp.resolve("whole");
        String[] grid = train(model, "--grid", "lr=0.01,0.001", "--parallel-runs", "2");
        CliTest.Result r = run(CliTest.concat(grid, new String[]{"--halving", "2", "--out", halving.toString()}));
        assertEquals(0, r.code(), r.out() + r.err());
        assertTrue(r.out().contains("grid: 2 at once, "), r.out());
        assertEquals(2, json(halving.resolve("grid.json")).list("points").size());
        String best = Path.of((String) ((java.util.Map<?, ?>) json(halving.resolve("grid.json")).list("points").getFirst()).get("out")).getFileName().toString();
        String last = r.out().substring(r.out().indexOf("halving: rung 2 of 2"));
        assertFalse(last.contains("at once"), "the last rung's one run trains alone, on every core: " + last);
        // The whole grid, each run on one thread: the point that went on is the same model.
        assertEquals(0, run(CliTest.concat(grid, new String[]{"--threads", "1", "--out", whole.toString()})).code());
        ParallelRunsTest.assertSameModels(whole, halving, best);
    }

    /** A run written before the option (its settings without thread_invariant) is a run without it: evaluated, predicted, inspected and resumed. */
    @Test void aRunFromBeforeTheOptionIsARunWithoutIt(@TempDir Path tmp) throws Exception {
        Path run = tmp.resolve("run");
        assertEquals(0, run("train", "--epochs", "1", "--out", run.toString(), "--quiet").code());
        for (String name : new String[]{"checkpoint.safetensors", "best/checkpoint.safetensors"}) {
            Path file = run.resolve(name);
            var c = io.predcode.core.io.Safetensors.read(file);
            var meta = new java.util.LinkedHashMap<>(c.metadata());
            assertTrue(meta.get("training").contains("\"thread_invariant\":\"off\","), meta.get("training"));
            meta.put("training", meta.get("training").replace("\"thread_invariant\":\"off\",", ""));
            io.predcode.core.io.Safetensors.write(file, c.tensors(), meta);
        }
        for (String[] args : java.util.List.of(new String[]{"eval"}, new String[]{"inspect"}, new String[]{"compare", "--algorithm", "strict"})) {
            CliTest.Result r = run(CliTest.concat(args, new String[]{"--checkpoint", run.toString()}));
            assertEquals(0, r.code(), args[0] + ": " + r.out() + r.err());
        }
        CliTest.Result resumed = run("train", "--epochs", "2", "--out", run.toString(), "--quiet", "--resume");
        assertEquals(0, resumed.code(), resumed.out() + resumed.err());
    }
}
