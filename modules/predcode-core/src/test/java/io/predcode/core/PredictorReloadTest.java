package io.predcode.core;

import io.predcode.core.io.Checkpoint;
import io.predcode.core.io.Safetensors;
import io.predcode.core.nn.Loss;
import io.predcode.core.nn.Model;
import io.predcode.core.nn.ModelSpec;
import io.predcode.core.optim.Adam;
import io.predcode.core.pc.Algorithm;
import io.predcode.core.pc.PcEngine;
import io.predcode.core.pc.Trainer;
import io.predcode.core.serve.Predictor;
import io.predcode.core.serve.Preprocessing;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.*;

/** A Predictor serving what a separate training run saves: reloads, polling, and checkpoints it must refuse. */
class PredictorReloadTest {
    static final Preprocessing PRE = new Preprocessing(0.5f, -1f);
    static final List<String> NAMES = List.of("a", "b", "c", "d", "e", "f");

    @TestFactory List<DynamicTest> aServiceServesWhatAnotherRunSaves(@TempDir Path tmp) {
        return PaperResultsTest.onEveryBackend("reload", be -> {
            try {
                Path run = Files.createDirectories(tmp.resolve(be.name()));
                SplittableRandom r = new SplittableRandom(11);
                float[] x = PaperResultsTest.randomInput(r, 8 * 35), y = new float[8];
                for (int i = 0; i < 8; i++) y[i] = i % 6;
                // The "training process": its own model, saved as train saves it.
                try (Model trained = Model.create(ServingTest.MLP, be, 3); PcEngine engine = new PcEngine(trained, Loss.CROSS_ENTROPY);
                     Adam adam = new Adam(trained, 0.01f)) {
                    Trainer trainer = new Trainer(engine, adam, Algorithm.FIXED_PRED, 0.1f, 3);
                    Checkpoint.save(run, trained, adam, Map.of("epoch", 1), PRE, NAMES);
                    try (Predictor p = Predictor.load(run, be)) {
                        assertEquals(1, p.version());
                        long first = p.reloadIfChanged(run);
                        assertEquals(1, first, "unchanged since load read it: no new version");
                        for (int round = 0; round < 3; round++) {
                            for (int s = 0; s < 5; s++) trainer.step(x, y, 8);
                            Checkpoint.save(run, trained, adam, Map.of("epoch", 2 + round), PRE, NAMES);
                            long v = p.reloadIfChanged(run);
                            assertEquals(first + round + 1, v, "a new version for each save");
                            assertEquals(v, p.reloadIfChanged(run), "and none without one");
                            float[] expected;
                            try (PcEngine reference = new PcEngine(trained, Loss.CROSS_ENTROPY)) {
                                float[] scaled = x.clone();
                                for (int i = 0; i < scaled.length; i++) scaled[i] = scaled[i] * PRE.scale() + PRE.shift();
                                expected = reference.predict(scaled, 8);
                            }
                            assertArrayEquals(expected, p.logits(x, 8), "round " + round + ": the saved parameters, bit for bit");
                        }
                        float[] before = p.logits(x, 8);
                        long current = p.version();
                        // Another model, other preprocessing, other names: refused naming the file and what differs.
                        Path other = tmp.resolve(be.name() + "-other");
                        try (Model m = Model.create(ModelSpec.builder().input(1, 5, 7).block(b -> b.flatten().linear(35, 6)).build(), be, 1)) {
                            Checkpoint.save(other, m, null, Map.of(), PRE, NAMES);
                        }
                        IllegalArgumentException spec = assertThrows(IllegalArgumentException.class, () -> p.reload(other));
                        assertTrue(spec.getMessage().startsWith("reload: " + other.resolve(Checkpoint.MODEL_FILE) + " holds another model"), spec.getMessage());
                        Checkpoint.save(other, trained, null, Map.of(), new Preprocessing(1f, 0f), NAMES);
                        assertTrue(assertThrows(IllegalArgumentException.class, () -> p.reload(other)).getMessage().contains("preprocesses inputs as"));
                        Checkpoint.save(other, trained, null, Map.of(), PRE, List.of("1", "2", "3", "4", "5", "6"));
                        assertTrue(assertThrows(IllegalArgumentException.class, () -> p.reload(other)).getMessage().contains("names the classes [1, 2"));
                        // A NaN in the saved file: refused, and a poller reports it once, then waits for the next write.
                        Path file = run.resolve(Checkpoint.MODEL_FILE);
                        Safetensors.Contents contents = Safetensors.read(file);
                        Map<String, Safetensors.Entry> tensors = new LinkedHashMap<>(contents.tensors());
                        float[] w = tensors.get("1.0.weight").data().clone();
                        w[7] = Float.POSITIVE_INFINITY;
                        tensors.put("1.0.weight", new Safetensors.Entry(tensors.get("1.0.weight").shape(), w));
                        Safetensors.write(file, tensors, contents.metadata());
                        Predictor.NotFiniteException nan = assertThrows(Predictor.NotFiniteException.class, () -> p.reloadIfChanged(run));
                        assertEquals("1.0.weight", nan.parameter());
                        assertEquals(current, p.reloadIfChanged(run), "the refused file is not read again");
                        assertEquals(current, p.version());
                        assertArrayEquals(before, p.logits(x, 8), "the current version kept answering");
                        Checkpoint.save(run, trained, adam, Map.of("epoch", 9), PRE, NAMES);
                        assertEquals(current + 1, p.reloadIfChanged(run), "the next good save is taken");
                    }
                }
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
    }

    /**
     * A folder caught mid-save (its model.safetensors, written first, newer than its checkpoint.safetensors): load serves
     * the file it notes as seen, so the newer parameters are served now, not skipped until the next save.
     */
    @TestFactory List<DynamicTest> loadServesTheFileItNotes(@TempDir Path tmp) {
        return PaperResultsTest.onEveryBackend("load mid-save", be -> {
            Path run = tmp.resolve(be.name() + "-mid"), later = tmp.resolve(be.name() + "-later");
            float[] x = PaperResultsTest.randomInput(new SplittableRandom(4), 2 * 35);
            try (Model older = Model.create(ServingTest.MLP, be, 1); Model newer = Model.create(ServingTest.MLP, be, 2)) {
                Checkpoint.save(run, older, null, Map.of(), PRE, NAMES);
                Checkpoint.save(later, newer, null, Map.of(), PRE, NAMES);
                Files.copy(later.resolve(Checkpoint.MODEL_FILE), run.resolve(Checkpoint.MODEL_FILE), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
                try (Predictor p = Predictor.load(run, be); Predictor expected = Predictor.load(later.resolve(Checkpoint.MODEL_FILE), be)) {
                    assertArrayEquals(expected.logits(x, 2), p.logits(x, 2), "the newer model.safetensors is served");
                    assertEquals(p.version(), p.reloadIfChanged(run), "and counted as seen");
                }
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
    }

    /**
     * Predictor.watch: a thread that polls a run folder, publishes each save and says each outcome once: a checkpoint not
     * there yet, a new version, another model refused (however many polls see it); a listener that throws does not stop
     * it; closing the watch stops its polls, and closing the predictor stops its watches.
     */
    @TestFactory List<DynamicTest> aWatchPublishesEachSaveAndSaysEachRefusalOnce(@TempDir Path tmp) {
        return PaperResultsTest.onEveryBackend("watch", be -> {
            Path run = tmp.resolve(be.name() + "-watched");
            List<String> heard = java.util.Collections.synchronizedList(new ArrayList<>());
            CheckpointWatchLog log = new CheckpointWatchLog(heard);
            try (Model trained = Model.create(ServingTest.MLP, be, 3); PcEngine engine = new PcEngine(trained, Loss.CROSS_ENTROPY);
                 Adam adam = new Adam(trained, 0.01f)) {
                SplittableRandom r = new SplittableRandom(2);
                float[] x = PaperResultsTest.randomInput(r, 8 * 35), y = {0, 1, 2, 3, 4, 5, 0, 1};
                Trainer trainer = new Trainer(engine, adam, Algorithm.BACKPROP, 0.1f, 1);
                Predictor p = Predictor.of(trained, PRE, NAMES);
                io.predcode.core.serve.CheckpointWatch w = p.watch(run, java.time.Duration.ofMillis(5), log);
                await(heard, 1);
                Thread.sleep(50); // polls that find nothing again say nothing again
                assertEquals(List.of("refused NoSuchFileException"), heard);
                for (int save = 0; save < 3; save++) {
                    trainer.step(x, y, 8);
                    Checkpoint.save(run, trained, adam, Map.of(), PRE, NAMES);
                    await(heard, 2 + save);
                    assertEquals("published " + (2 + save), heard.get(1 + save));
                }
                try (Model other = Model.create(ModelSpec.builder().input(1, 5, 7).block(b -> b.flatten().linear(35, 6)).build(), be, 1)) {
                    Checkpoint.save(run, other, null, Map.of(), PRE, NAMES);
                }
                await(heard, 5);
                long polls = w.polls();
                while (w.polls() < polls + 5) Thread.sleep(5);
                assertEquals(List.of("refused NoSuchFileException", "published 2", "published 3", "published 4", "refused IllegalArgumentException"), heard);
                log.fail = true; // the next outcome's listener throws: the one after it is still heard
                Checkpoint.save(run, trained, adam, Map.of(), PRE, NAMES);
                while (p.version() < 5) Thread.sleep(5);
                log.fail = false;
                Checkpoint.save(run, trained, adam, Map.of(), PRE, NAMES);
                await(heard, 7);
                assertEquals("published 6", heard.get(6));
                w.close();
                polls = w.polls();
                Thread.sleep(50);
                assertEquals(polls, w.polls(), "a closed watch polls no more");
                io.predcode.core.serve.CheckpointWatch second = p.watch(run, java.time.Duration.ofMillis(5), null);
                while (second.polls() == 0) Thread.sleep(5);
                p.close();
                polls = second.polls();
                Thread.sleep(50);
                assertEquals(polls, second.polls(), "closing the predictor stopped its watch");
                assertThrows(IllegalStateException.class, () -> p.watch(run, java.time.Duration.ofMillis(5), null));
                assertThrows(IllegalArgumentException.class, () -> Predictor.of(trained).watch(run, java.time.Duration.ZERO, null));
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        });
    }

    /** Records a watch's outcomes as "published N" and "refused ExceptionClass"; throws after recording while {@code fail} is set. */
    static final class CheckpointWatchLog implements io.predcode.core.serve.CheckpointWatch.Listener {
        final List<String> heard;
        volatile boolean fail;

        CheckpointWatchLog(List<String> heard) { this.heard = heard; }

        @Override public void published(long version, Path checkpoint) {
            heard.add("published " + version);
            if (fail) throw new IllegalStateException("a listener that fails");
        }

        @Override public void refused(Path checkpoint, Exception reason) {
            heard.add("refused " + reason.getClass().getSimpleName());
            if (fail) throw new IllegalStateException("a listener that fails");
        }
    }

    private static void await(List<String> heard, int count) throws InterruptedException {
        long end = System.nanoTime() + 20_000_000_000L;
        while (heard.size() < count) {
            assertTrue(System.nanoTime() < end, () -> "heard only " + heard);
            Thread.sleep(2);
        }
    }

    /** Threads predict without pause while another saves and the service reloads: every answer is one of the saved versions'. */
    @TestFactory List<DynamicTest> reloadsUnderLoadNeverTearAnAnswer(@TempDir Path tmp) {
        return PaperResultsTest.onEveryBackend("reload under load", be -> {
            Path run = tmp.resolve(be.name());
            SplittableRandom r = new SplittableRandom(5);
            float[] x = PaperResultsTest.randomInput(r, 4 * 35), y = {0, 1, 2, 3};
            List<float[]> answers = new ArrayList<>();
            try (Model trained = Model.create(ServingTest.MLP, be, 4); PcEngine engine = new PcEngine(trained, Loss.CROSS_ENTROPY);
                 Adam adam = new Adam(trained, 0.01f)) {
                Trainer trainer = new Trainer(engine, adam, Algorithm.BACKPROP, 0.1f, 1);
                answers.add(engine.predict(x, 4));
                Checkpoint.save(run, trained, adam, Map.of(), Preprocessing.NONE, List.of());
                try (Predictor p = Predictor.load(run, be)) {
                    AtomicBoolean stop = new AtomicBoolean();
                    AtomicReference<Throwable> failure = new AtomicReference<>();
                    List<List<float[]>> seen = new ArrayList<>();
                    List<Thread> threads = new ArrayList<>();
                    for (int t = 0; t < 2; t++) {
                        List<float[]> mine = new ArrayList<>();
                        seen.add(mine);
                        threads.add(Thread.ofPlatform().start(() -> {
                            try {
                                while (!stop.get()) {
                                    float[] a = p.logits(x, 4);
                                    if (mine.size() < 500) mine.add(a);
                                }
                            } catch (Throwable e) {
                                failure.set(e);
                            }
                        }));
                    }
                    for (int save = 0; save < 15; save++) {
                        trainer.step(x, y, 4);
                        answers.add(engine.predict(x, 4));
                        Checkpoint.save(run, trained, adam, Map.of(), Preprocessing.NONE, List.of());
                        p.reloadIfChanged(run);
                    }
                    stop.set(true);
                    for (Thread t : threads) t.join();
                    assertNull(failure.get(), () -> "a prediction failed: " + failure.get());
                    int checked = 0;
                    for (List<float[]> mine : seen)
                        for (float[] a : mine) {
                            assertTrue(answers.stream().anyMatch(v -> java.util.Arrays.equals(v, a)), () -> "an answer that is no saved version's: " + java.util.Arrays.toString(a)
                                    + " nearest diffs " + answers.stream().mapToDouble(v -> { double m = 0; for (int i = 0; i < v.length; i++) m = Math.max(m, Math.abs(v[i] - a[i])); return m; }).boxed().toList());
                            checked++;
                        }
                    assertTrue(checked > 0);
                    assertEquals(16, p.version());
                }
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        });
    }
}
