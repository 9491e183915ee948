package io.predcode.core;

import io.predcode.core.io.Checkpoint;
import io.predcode.core.nn.Loss;
import io.predcode.core.nn.Model;
import io.predcode.core.nn.ModelSpec;
import io.predcode.core.optim.Adam;
import io.predcode.core.pc.Algorithm;
import io.predcode.core.pc.PcEngine;
import io.predcode.core.pc.Trainer;
import io.predcode.core.serve.Predictor;
import io.predcode.core.serve.Preprocessing;
import io.predcode.spi.Counters;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.*;

/** The Predictor: the same numbers as the engine, any batch size, versions under concurrent use, checkpoints for serving. */
class ServingTest {
    static final ModelSpec MLP = ModelSpec.builder().input(1, 5, 7)
            .block(b -> b.flatten().linear(35, 23).relu())
            .block(b -> b.linear(23, 13).tanh())
            .block(b -> b.linear(13, 6)).build();

    /** A call that does not fit (batch, input length, output buffer, row width) is refused naming what was expected, before anything is sized by it. */
    @TestFactory List<DynamicTest> misfittingCallsAreRefusedNamingWhatWasExpected() {
        return PaperResultsTest.onEveryBackend("predictor misuse", be -> {
            try (Model m = Model.create(MLP, be, 1); Predictor p = Predictor.of(m)) {
                float[] two = new float[2 * 35];
                for (int batch : new int[]{0, -1, Integer.MAX_VALUE, 3}) {
                    for (java.util.function.Consumer<Integer> call : List.<java.util.function.Consumer<Integer>>of(b -> p.logits(two, b), b -> p.probabilities(two, b), b -> p.classes(two, b))) {
                        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> call.accept(batch), "batch " + batch);
                        assertTrue(e.getMessage().startsWith("predict: "), e.getMessage());
                        assertTrue(e.getMessage().contains(batch < 1 ? "batch must be >= 1" : "x has 70 floats; a batch of " + batch + " samples of shape [1, 5, 7]"), e.getMessage());
                    }
                }
                assertTrue(assertThrows(IllegalArgumentException.class, () -> p.logits(two, 2, new float[11])).getMessage().contains("out has 11 floats; a batch of 2 needs 12"));
                assertTrue(assertThrows(IllegalArgumentException.class, () -> p.logits(new float[][]{new float[35], new float[34]})).getMessage().contains("row 1 has 34 floats; expected 35"));
                assertEquals(2, p.classes(two, 2).length, "and the same predictor still answers");
            }
        });
    }

    @TestFactory List<DynamicTest> predictionsEqualTheEnginesForEveryBatchSizeAndAllocateNothingOnceWarm() {
        List<DynamicTest> out = new ArrayList<>();
        for (ModelSpec spec : List.of(MLP, PaperResultsTest.CNN))
            out.addAll(PaperResultsTest.onEveryBackend("predictor = engine " + spec.depth() + " blocks", be -> {
                SplittableRandom r = new SplittableRandom(3);
                try (Model m = Model.create(spec, be, 7); Predictor p = Predictor.of(m)) {
                    int in = p.inputSize();
                    int[] sizes = {1, 64, 2, 63, 17, 1, 31, 64, 5};
                    float[][] xs = new float[65][];
                    for (int b : sizes) xs[b] = PaperResultsTest.randomInput(r, b * in);
                    for (int b : sizes) {
                        // An engine sized to exactly this batch is the reference: views of a larger workspace must not change a bit.
                        try (PcEngine fresh = new PcEngine(m, Loss.CROSS_ENTROPY)) {
                            assertArrayEquals(fresh.predict(xs[b], b), p.logits(xs[b], b), "batch " + b);
                        }
                    }
                    Counters.Snapshot before = be.counters().snapshot();
                    float[] buf = new float[64 * p.outputSize()];
                    for (int b : sizes) p.logits(xs[b], b, buf);
                    assertEquals(0, be.counters().snapshot().minus(before).allocations(), "allocations after warm-up, mixed batch sizes");

                    float[] probs = p.probabilities(xs[5], 5);
                    int[] classes = p.classes(xs[5], 5);
                    float[] logits = p.logits(xs[5], 5);
                    for (int i = 0; i < 5; i++) {
                        double sum = 0;
                        int best = 0;
                        for (int k = 0; k < p.outputSize(); k++) {
                            sum += probs[i * p.outputSize() + k];
                            if (logits[i * p.outputSize() + k] > logits[i * p.outputSize() + best]) best = k;
                        }
                        assertEquals(1.0, sum, 1e-5, "probabilities of sample " + i + " sum to 1");
                        assertEquals(best, classes[i], "class of sample " + i + " is the argmax");
                    }
                }
            }));
        return out;
    }

    /**
     * A trained model with a NaN or an infinity in any parameter (a step that diverged) is never published: publish
     * names the parameter and the version that was current keeps answering, bit for bit; once the parameters are
     * finite again the next publish goes through, and none of it allocates once warm.
     */
    @TestFactory List<DynamicTest> publishRefusesNonFiniteParametersAndKeepsTheCurrentVersion() {
        return PaperResultsTest.onEveryBackend("publish refuses non-finite parameters", be -> {
            SplittableRandom r = new SplittableRandom(11);
            try (Model m = Model.create(MLP, be, 7); Predictor p = Predictor.of(m)) {
                float[] x = PaperResultsTest.randomInput(r, 3 * p.inputSize());
                float[] answer = p.logits(x, 3);
                p.publish(m);
                p.publish(m); // warm: the spare versions exist
                long good = p.version();
                Counters.Snapshot before = be.counters().snapshot();
                List<String> names = List.copyOf(m.parameters().keySet());
                for (float bad : new float[]{Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY})
                    for (String name : List.of(names.getFirst(), names.getLast())) {
                        io.predcode.spi.Tensor value = m.parameters().get(name).value();
                        float[] kept = be.download(value);
                        float[] broken = kept.clone();
                        broken[broken.length / 2] = bad;
                        be.upload(broken, value);
                        Predictor.NotFiniteException e = assertThrows(Predictor.NotFiniteException.class, () -> p.publish(m), name + " = " + bad);
                        assertEquals(name, e.parameter());
                        assertTrue(e.getMessage().contains("version " + good + " stays current"), e.getMessage());
                        assertEquals(good, p.version());
                        assertArrayEquals(answer, p.logits(x, 3), "the current version answers as before");
                        be.upload(kept, value);
                    }
                assertEquals(good + 1, p.publish(m));
                assertArrayEquals(answer, p.logits(x, 3));
                assertEquals(0, be.counters().snapshot().minus(before).allocations(), "allocations by refused and accepted publishes once warm");
                // A predictor is never made for a non-finite model: nothing to serve (and it frees what it took).
                io.predcode.spi.Tensor first = m.parameters().get(names.getFirst()).value();
                float[] kept = be.download(first), broken = kept.clone();
                broken[0] = Float.NaN;
                be.upload(broken, first);
                Predictor.NotFiniteException none = assertThrows(Predictor.NotFiniteException.class, () -> Predictor.of(m));
                assertTrue(none.getMessage().endsWith("no version is current"), none.getMessage());
                be.upload(kept, first);
            }
        });
    }

    /** An engine sized by the largest batch serves smaller ones without allocating, and gives the numbers an exactly-sized engine gives. */
    @TestFactory List<DynamicTest> anEngineRunsEveryBatchSizeInOneWorkspace() {
        return PaperResultsTest.onEveryBackend("engine views", be -> {
            SplittableRandom r = new SplittableRandom(5);
            try (Model m = Model.create(PaperResultsTest.CNN, be, 2); PcEngine e = new PcEngine(m, Loss.CROSS_ENTROPY).maxBatch(40)) {
                assertEquals(40, e.capacity());
                Counters.Snapshot before = be.counters().snapshot();
                for (int b : new int[]{1, 40, 3, 39, 7}) {
                    float[] x = PaperResultsTest.randomInput(r, b * e.inputSize()), y = PaperResultsTest.labels(r, b, 5);
                    var inViews = e.infer(x, y, b, Algorithm.STRICT, 0.1f, 3);
                    float[] viaViews = inViews.download(inViews.error(1));
                    try (PcEngine exact = new PcEngine(m, Loss.CROSS_ENTROPY)) {
                        var res = exact.infer(x, y, b, Algorithm.STRICT, 0.1f, 3);
                        assertArrayEquals(res.download(res.error(1)), viaViews, "STRICT errors, batch " + b);
                    }
                }
                // The exactly-sized engines above allocated; this engine did not: check it alone.
                Counters.Snapshot mid = be.counters().snapshot();
                for (int b : new int[]{2, 40, 11}) e.predict(PaperResultsTest.randomInput(r, b * e.inputSize()), b);
                assertEquals(0, be.counters().snapshot().minus(mid).allocations(), "allocations of an engine with maxBatch set");
                IllegalArgumentException tooBig = assertThrows(IllegalArgumentException.class, () -> e.predict(new float[41 * e.inputSize()], 41));
                assertTrue(tooBig.getMessage().contains("maxBatch of 40"), tooBig.getMessage());
                assertTrue(be.counters().snapshot().minus(before).allocations() > 0); // the reference engines did allocate
            }
        });
    }

    /**
     * 8 threads predict with mixed batch sizes while a trainer publishes a version after every step.
     * Each answer must equal, bit for bit, the engine's answer at the parameters of the version the
     * predictor says answered: never a mix of two versions, never another request's output.
     */
    @TestFactory List<DynamicTest> concurrentPredictionsNeverSeeATornOrForeignVersion() {
        return PaperResultsTest.onEveryBackend("versions under load", be -> {
            int threads = 8, steps = 60;
            SplittableRandom r = new SplittableRandom(11);
            try (Model m = Model.create(MLP, be, 3); PcEngine engine = new PcEngine(m, Loss.CROSS_ENTROPY); Adam adam = new Adam(m, 0.05f);
                 Predictor p = Predictor.of(m)) {
                Trainer trainer = new Trainer(engine, adam, Algorithm.STRICT, 0.1f, 3);
                int in = p.inputSize(), outSize = p.outputSize();
                float[] tx = PaperResultsTest.randomInput(r, 16 * in), ty = PaperResultsTest.labels(r, 16, 6);
                // Each thread has its own inputs: an answer that is another thread's would not match.
                float[][] xs = new float[threads][];
                int[] batch = new int[threads];
                for (int t = 0; t < threads; t++) { batch[t] = 1 + t % 4 * 3; xs[t] = PaperResultsTest.randomInput(r, batch[t] * in); }
                Map<Long, Map<String, float[]>> versions = new ConcurrentHashMap<>();
                versions.put(p.version(), m.parameterValues());
                record Answer(int thread, long version, float[] out) {}
                List<List<Answer>> answers = new ArrayList<>();
                AtomicBoolean done = new AtomicBoolean();
                AtomicReference<Throwable> failure = new AtomicReference<>();
                AtomicLong predictions = new AtomicLong();
                CountDownLatch started = new CountDownLatch(threads);
                List<Thread> workers = new ArrayList<>();
                for (int t = 0; t < threads; t++) {
                    int id = t;
                    List<Answer> mine = new ArrayList<>();
                    answers.add(mine);
                    workers.add(Thread.ofPlatform().name("predict-" + t).start(() -> {
                        started.countDown();
                        try {
                            long last = -1;
                            int ofLast = 0;
                            while (!done.get()) {
                                float[] out = new float[batch[id] * outSize];
                                long v = p.logits(xs[id], batch[id], out);
                                // Keep a few answers of every version this thread saw, so the check
                                // spans the whole run however fast the predictions are.
                                ofLast = v == last ? ofLast + 1 : 0;
                                last = v;
                                if (ofLast < 3) mine.add(new Answer(id, v, out));
                                predictions.incrementAndGet();
                            }
                        } catch (Throwable e) {
                            failure.compareAndSet(null, e);
                        }
                    }));
                }
                try {
                    started.await();
                    for (int s = 0; s < steps; s++) {
                        trainer.step(tx, ty, 16);
                        long v = p.publish(m);
                        versions.put(v, m.parameterValues());
                        // Overlap by construction, not by timing: at most one prediction per thread
                        // was in flight at the publish, so after 2 x threads more answers at least
                        // `threads` of them began after it and answered this version.
                        long target = predictions.get() + 2L * threads, deadline = System.nanoTime() + 30_000_000_000L;
                        while (predictions.get() < target && failure.get() == null) {
                            if (System.nanoTime() > deadline) throw new AssertionError("predictions stalled after version " + v);
                            java.util.concurrent.locks.LockSupport.parkNanos(20_000);
                        }
                    }
                } catch (InterruptedException e) {
                    throw new AssertionError(e);
                } finally {
                    done.set(true);
                    for (Thread w : workers) {
                        try { w.join(); } catch (InterruptedException e) { throw new AssertionError(e); }
                    }
                }
                if (failure.get() != null) throw new AssertionError("a predicting thread failed", failure.get());
                // Reference: the engine at each version's parameters, on each thread's batch.
                int checked = 0;
                java.util.Set<Long> seen = new java.util.HashSet<>();
                try (Model ref = Model.create(MLP, be, 0); PcEngine refEngine = new PcEngine(ref, Loss.CROSS_ENTROPY)) {
                    Map<Long, float[][]> expected = new java.util.HashMap<>();
                    for (List<Answer> list : answers)
                        for (Answer a : list) {
                            float[][] perThread = expected.computeIfAbsent(a.version(), v -> {
                                Map<String, float[]> params = versions.get(v);
                                assertNotNull(params, "version " + v + " was never published");
                                ref.loadParameters(params, "version " + v);
                                float[][] e = new float[threads][];
                                for (int t = 0; t < threads; t++) e[t] = refEngine.predict(xs[t], batch[t]);
                                return e;
                            });
                            assertArrayEquals(perThread[a.thread()], a.out(), "thread " + a.thread() + ", version " + a.version());
                            seen.add(a.version());
                            checked++;
                        }
                }
                assertTrue(seen.size() >= steps, "predictions saw only " + seen.size() + " version(s) of " + versions.size() + ": the test did not overlap training");
                System.out.printf("versions under load [%s]: %d predictions, %d checked bit for bit across %d versions%n", be.name(), predictions.get(), checked, seen.size());
            }
        });
    }

    @TestFactory List<DynamicTest> aCheckpointCarriesPreprocessingAndClassNamesAndLoadsInOneCall(@TempDir Path dir) {
        return PaperResultsTest.onEveryBackend("checkpoint for serving", be -> {
            SplittableRandom r = new SplittableRandom(4);
            List<String> names = List.of("a", "b", "c", "d", "e", "f");
            Preprocessing pre = new Preprocessing(1f / 16, -0.25f);
            Path run = dir.resolve(be.name());
            try (Model m = Model.create(MLP, be, 9)) {
                Checkpoint.save(run, m, null, Map.of("epoch", 1), pre, names);
                float[] raw = new float[3 * 35];
                for (int i = 0; i < raw.length; i++) raw[i] = r.nextInt(17);
                float[] scaled = new float[raw.length];
                for (int i = 0; i < raw.length; i++) scaled[i] = raw[i] * pre.scale() + pre.shift();
                float[] expected;
                try (PcEngine e = new PcEngine(m, Loss.CROSS_ENTROPY)) { expected = e.predict(scaled, 3); }
                for (Path source : List.of(run, run.resolve(Checkpoint.MODEL_FILE), run.resolve(Checkpoint.RESUME_FILE)))
                    try (Predictor p = Predictor.load(source, be)) {
                        assertEquals(pre, p.preprocessing(), source.toString());
                        assertEquals(names, p.classNames(), source.toString());
                        float[] got = p.logits(raw, 3);
                        for (int i = 0; i < got.length; i++) assertEquals(expected[i], got[i], 1e-5f * (1 + Math.abs(expected[i])), source + " output " + i);
                    }
                // Feature names (a table's columns) travel in both files; a file without them names none.
                Path named = dir.resolve(be.name() + "-features");
                List<String> features = new java.util.ArrayList<>();
                for (int i = 0; i < 35; i++) features.add("f" + i);
                Checkpoint.save(named, m, null, Map.of("epoch", 1), pre, names, features);
                for (Path source : List.of(named.resolve(Checkpoint.MODEL_FILE), named.resolve(Checkpoint.RESUME_FILE)))
                    assertEquals(features, Checkpoint.load(source).featureNames(), source.toString());
                assertEquals(List.of(), Checkpoint.load(run).featureNames());
                // A predictor of such a model takes rows by name, in any order of the map, and refuses what is not a row.
                try (Predictor p = Predictor.load(named, be); Predictor none = Predictor.of(m)) {
                    assertEquals(features, p.featureNames());
                    Map<String, Number> row = new java.util.HashMap<>();
                    float[] byPosition = new float[35];
                    for (int i = 34; i >= 0; i--) { row.put("f" + i, i * 0.5f); byPosition[i] = i * 0.5f; }
                    assertArrayEquals(byPosition, p.row(row));
                    row.remove("f7");
                    assertTrue(assertThrows(IllegalArgumentException.class, () -> p.row(row)).getMessage().startsWith("no 'f7', a feature of the model"));
                    row.put("f7", 1);
                    row.put("id", 3);
                    assertTrue(assertThrows(IllegalArgumentException.class, () -> p.row(row)).getMessage().startsWith("[id] is not a feature of the model"));
                    assertEquals(List.of(), none.featureNames());
                    assertTrue(assertThrows(IllegalArgumentException.class, () -> none.row(Map.of("f0", 1))).getMessage().contains("names no features"));
                    row.remove("id");
                    row.put("f0", null);
                    assertTrue(assertThrows(IllegalArgumentException.class, () -> p.row(row)).getMessage().startsWith("'f0' is missing, and this model does not fill"),
                            "a missing value, where the model does not standardize its inputs");
                }
                // A table's text column as categories (sex=female, sex=male, sex=3): the row gives the text, one feature is 1.
                Path categories = dir.resolve(be.name() + "-categories");
                List<String> withText = new java.util.ArrayList<>(features.subList(0, 32));
                withText.addAll(List.of("sex=female", "sex=male", "sex=3"));
                Checkpoint.save(categories, m, null, Map.of("epoch", 1), pre, names, withText);
                try (Predictor p = Predictor.load(categories, be)) {
                    Map<String, Object> row = new java.util.HashMap<>();
                    for (int i = 0; i < 32; i++) row.put("f" + i, i);
                    row.put("sex", "male");
                    float[] x = p.row(row);
                    assertArrayEquals(new float[]{0, 1, 0}, Arrays.copyOfRange(x, 32, 35));
                    assertEquals(31f, x[31]);
                    row.put("sex", "unheard of");
                    assertArrayEquals(new float[]{0, 0, 0}, Arrays.copyOfRange(p.row(row), 32, 35), "a category the training set did not have: zeros");
                    row.put("sex", null);
                    assertArrayEquals(new float[]{0, 0, 0}, Arrays.copyOfRange(p.row(row), 32, 35), "a missing category: zeros");
                    row.put("sex", 3.0); // JSON's 3: the category a table wrote as "3"
                    assertArrayEquals(new float[]{0, 0, 1}, Arrays.copyOfRange(p.row(row), 32, 35));
                    row.remove("sex");
                    assertTrue(assertThrows(IllegalArgumentException.class, () -> p.row(row)).getMessage().startsWith("no 'sex', a feature of the model (it takes f0, "));
                }
                // A checkpoint from before serving metadata: inputs as given, no class names.
                Path old = dir.resolve(be.name() + "-old");
                Checkpoint.save(old, m, null, Map.of("epoch", 1));
                try (Predictor p = Predictor.load(old, be); Model loaded = Checkpoint.load(old).model(be)) {
                    assertEquals(Preprocessing.NONE, p.preprocessing());
                    assertEquals(List.of(), p.classNames());
                    assertEquals(Arrays.toString(m.parameterValues().get("2.0.weight")), Arrays.toString(loaded.parameterValues().get("2.0.weight")));
                }
                // A predictor made with neither, as of(model) makes it.
                try (Predictor p = Predictor.of(m, null, null)) {
                    assertEquals(Preprocessing.NONE, p.preprocessing());
                    assertEquals(List.of(), p.classNames());
                }
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
    }
}
