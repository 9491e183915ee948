package io.predcode.core;

import io.predcode.core.json.JsonException;
import io.predcode.core.nn.BuiltinModels;
import io.predcode.core.nn.Loss;
import io.predcode.core.nn.Model;
import io.predcode.core.nn.ModelSpec;
import io.predcode.core.optim.Adam;
import io.predcode.core.pc.Algorithm;
import io.predcode.core.pc.BeliefOptimizer;
import io.predcode.core.pc.DivergenceException;
import io.predcode.core.pc.Energy;
import io.predcode.core.pc.Nudging;
import io.predcode.core.pc.PcEngine;
import io.predcode.core.pc.Trainer;
import io.predcode.spi.Backend;
import io.predcode.spi.Backends;
import io.predcode.spi.Counters;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/** Device residency, bad input and the model spec round trip. */
class EngineContractTest {
    @TestFactory List<DynamicTest> aTrainingStepAllocatesNothingAndMovesOnlyTheBatchAndTheLoss() {
        List<DynamicTest> out = new ArrayList<>();
        for (Algorithm a : Algorithm.values())
            out.addAll(PaperResultsTest.onEveryBackend("residency " + a.id(), be -> {
                SplittableRandom r = new SplittableRandom(9);
                ModelSpec spec = PaperResultsTest.CNN;
                int batch = 5;
                try (Model m = Model.create(spec, be, 1); PcEngine e = new PcEngine(m, Loss.CROSS_ENTROPY); Adam opt = new Adam(m, 1e-3f)) {
                    Trainer t = new Trainer(e, opt, a, 0.1f, 4);
                    float[] x = PaperResultsTest.randomInput(r, batch * e.inputSize()), y = PaperResultsTest.labels(r, batch, 5);
                    t.step(x, y, batch); // sizes the workspace
                    Counters.Snapshot before = be.counters().snapshot();
                    for (int i = 0; i < 3; i++) t.step(x, y, batch);
                    Counters.Snapshot d = be.counters().snapshot().minus(before);
                    assertEquals(0, d.allocations(), a + ": allocations after the first step");
                    // Adam's steps, recorded with the rest of the step, read their step sizes from one more copy: 3 floats a step (iPC: n = 4 steps).
                    int scalars = (a == Algorithm.IPC ? 4 : 1) * io.predcode.spi.Backend.ADAM_SCALARS;
                    assertEquals(3L * 3, d.hostToDeviceCopies(), a + ": host-to-device copies (batch in, Adam's scalars)");
                    assertEquals(3L * (x.length + y.length + scalars) * Float.BYTES, d.hostToDeviceBytes(), a + ": host-to-device bytes");
                    assertEquals(3, d.deviceToHostCopies(), a + ": device-to-host copies (one per step)");
                    // The algorithms that relax with a step size also bring back their energy's terms, which the step is guarded on (Trainer.guardEnergy; Workspace.guarded).
                    int floats = a.relaxes() ? 2 + m.depth() : 2;
                    assertEquals(3L * floats * Float.BYTES, d.deviceToHostBytes(), a + ": device-to-host bytes (the loss, the correct count, the energy's terms and guard)");
                }
            }));
        return out;
    }

    /**
     * A classifier trained with squared error on one-hot targets (PCX's configurations) counts its hits on the
     * device: the step's one copy to the host carries the loss and the count, which is the feedforward output's
     * argmax against the target's, as the host counts them from the predictions.
     */
    @TestFactory List<DynamicTest> aSquaredErrorClassifierCountsItsHitsOnTheDevice() {
        List<DynamicTest> out = new ArrayList<>();
        for (Algorithm a : List.of(Algorithm.BACKPROP, Algorithm.STRICT, Algorithm.PC, Algorithm.IPC))
            out.addAll(PaperResultsTest.onEveryBackend("mse hits " + a.id(), be -> {
                SplittableRandom r = new SplittableRandom(4);
                int batch = 37, classes = 5;
                try (Model m = Model.create(PaperResultsTest.CNN, be, 2); PcEngine e = new PcEngine(m, Loss.MSE); Adam opt = new Adam(m, 1e-2f)) {
                    Trainer t = new Trainer(e, opt, a, 0.1f, 4);
                    float[] x = PaperResultsTest.randomInput(r, batch * e.inputSize()), labels = PaperResultsTest.labels(r, batch, classes);
                    float[] y = new float[batch * classes];
                    for (int i = 0; i < batch; i++) y[i * classes + (int) labels[i]] = 1f;
                    for (int step = 0; step < 4; step++) {
                        float[] scores = e.predict(x, batch);
                        int hits = 0;
                        for (int i = 0; i < batch; i++) if (Loss.argmax(scores, i, classes) == labels[i]) hits++;
                        assertEquals(hits, e.evaluate(x, y, batch).correct(), a + ": evaluate's count at step " + step);
                        Counters.Snapshot before = be.counters().snapshot();
                        Trainer.Step s = t.step(x, y, batch);
                        Counters.Snapshot d = be.counters().snapshot().minus(before);
                        assertEquals(hits, s.correct(), a + ": the step's count at step " + step);
                        assertEquals(1, d.deviceToHostCopies(), a + ": device-to-host copies in a step");
                        assertEquals((a.relaxes() ? 2 + m.depth() : 2L) * Float.BYTES, d.deviceToHostBytes(), a + ": the loss and the count (and the energy's terms)");
                    }
                }
                ModelSpec regression = ModelSpec.builder().input(3).block(b -> b.linear(3, 1)).build();
                try (Model m = Model.create(regression, be, 2); PcEngine e = new PcEngine(m, Loss.MSE); Adam opt = new Adam(m, 1e-2f)) {
                    float[] x = PaperResultsTest.randomInput(r, 6), y = PaperResultsTest.randomInput(r, 2);
                    assertEquals(-1, new Trainer(e, opt, a, 0.1f, 4).step(x, y, 2).correct(), a + ": one output is no classifier");
                    assertEquals(-1, e.evaluate(x, y, 2).correct(), a + ": evaluate, one output");
                }
            }));
        return out;
    }

    private static Backend cpu() { return Backends.open("cpu"); }

    @Test void specWithUnknownOpNamesTheField() {
        JsonException e = assertThrows(JsonException.class, () -> ModelSpec.parse("[[{\"op\": \"conv3d\"}]]", "bad.json"));
        assertTrue(e.getMessage().contains("bad.json") && e.getMessage().contains("model[0][0].op") && e.getMessage().contains("conv3d"), e.getMessage());
    }

    /** A key an op does not take is refused by name, not left at the op's default: PyTorch's negative_slope, a misspelt stride. */
    @Test void specWithAKeyTheOpDoesNotTakeNamesIt() {
        JsonException e = assertThrows(JsonException.class, () -> ModelSpec.parse(
                "[[{\"op\": \"linear\", \"in\": 4, \"out\": 3}, {\"op\": \"leaky_relu\", \"negative_slope\": 0.2}]]", "leaky.json"));
        assertTrue(e.getMessage().contains("leaky.json") && e.getMessage().contains("model[0][1]") && e.getMessage().contains("'negative_slope'")
                && e.getMessage().contains("slope"), e.getMessage());
        e = assertThrows(JsonException.class, () -> ModelSpec.parse(
                "[[{\"op\": \"conv2d\", \"in\": 1, \"out\": 2, \"kernel\": [3, 3], \"strides\": [2, 2]}]]", "conv.json"));
        assertTrue(e.getMessage().contains("conv.json") && e.getMessage().contains("'strides'") && e.getMessage().contains("stride"), e.getMessage());
        e = assertThrows(JsonException.class, () -> ModelSpec.parse("[[{\"op\": \"relu\", \"inplace\": true}]]", "relu.json"));
        assertTrue(e.getMessage().contains("'inplace'"), e.getMessage());
        assertEquals(0.2f, ((io.predcode.core.nn.OpSpec.Act) ModelSpec.parse("[[{\"op\": \"leaky_relu\", \"slope\": 0.2}]]", "ok.json").blocks().get(0).get(0)).slope());
    }

    @Test void inconsistentShapesNameTheBlockOpAndNumbers() {
        ModelSpec spec = ModelSpec.parse("""
                [[{"op": "conv2d", "in": 1, "out": 5, "kernel": [3, 3]}, {"op": "flatten"}],
                 [{"op": "linear", "in": 36, "out": 10}]]""", "m.json");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> spec.activationShapes(new int[]{1, 5, 5}));
        assertTrue(e.getMessage().contains("block 1, op 0") && e.getMessage().contains("in=36") && e.getMessage().contains("45"), e.getMessage());
    }

    @Test void malformedJsonNamesLineAndColumn() {
        JsonException e = assertThrows(JsonException.class, () -> ModelSpec.parse("[[{\"op\": \"relu\",}]]", "x.json"));
        assertTrue(e.getMessage().contains("x.json") && e.getMessage().contains("line 1"), e.getMessage());
    }

    @Test void badCallsAreRejectedWithTheNumbers() {
        try (Backend be = cpu(); Model m = Model.create(BuiltinModels.get("digits-mlp"), be, 0); PcEngine e = new PcEngine(m, Loss.CROSS_ENTROPY)) {
            float[] x = new float[2 * 64], y = {3, 10};
            IllegalArgumentException label = assertThrows(IllegalArgumentException.class, () -> e.infer(x, y, 2, Algorithm.STRICT, 0.1f, 5));
            assertTrue(label.getMessage().contains("label 10.0") && label.getMessage().contains("[0, 10)"), label.getMessage());
            IllegalArgumentException shape = assertThrows(IllegalArgumentException.class, () -> e.infer(new float[65], new float[]{1}, 1, Algorithm.STRICT, 0.1f, 5));
            assertTrue(shape.getMessage().contains("65") && shape.getMessage().contains("64"), shape.getMessage());
            IllegalArgumentException segmentLabel = assertThrows(IllegalArgumentException.class,
                    () -> e.infer(java.lang.foreign.MemorySegment.ofArray(x), java.lang.foreign.MemorySegment.ofArray(new float[]{1, -1}), 2, Algorithm.EXACT, 0.1f, 1));
            assertTrue(segmentLabel.getMessage().contains("label -1.0"), segmentLabel.getMessage());
            IllegalArgumentException eta = assertThrows(IllegalArgumentException.class, () -> e.infer(x, new float[]{1, 2}, 2, Algorithm.FIXED_PRED, 0f, 5));
            assertTrue(eta.getMessage().contains("eta"), eta.getMessage());
            IllegalArgumentException n = assertThrows(IllegalArgumentException.class, () -> e.infer(x, new float[]{1, 2}, 2, Algorithm.STRICT, 0.1f, 0));
            assertTrue(n.getMessage().contains("n (sweeps)"), n.getMessage());
        }
    }

    /**
     * A non-finite loss stops the step before the parameters or the optimizer's state change, and names it. Adam's step
     * runs inside the step's recorded ops, skipped on the device (its guard is the loss; iPC's n steps too): checked
     * after the recording replays (a CUDA graph from the second step), for an algorithm of each kind; training goes on
     * from there.
     */
    @TestFactory List<DynamicTest> divergenceStopsBeforeTheUpdateAndNamesTheStep() {
        List<DynamicTest> out = new ArrayList<>();
        for (Algorithm a : List.of(Algorithm.BACKPROP, Algorithm.PC, Algorithm.STRICT, Algorithm.IPC))
            for (boolean sgd : new boolean[]{false, true}) out.addAll(PaperResultsTest.onEveryBackend("divergence " + a.id() + (sgd ? ", sgd" : ", adam"), be -> {
                try (Model m = Model.create(BuiltinModels.get("digits-mlp"), be, 0); PcEngine e = new PcEngine(m, Loss.CROSS_ENTROPY);
                     io.predcode.core.optim.Optimizer opt = sgd ? new io.predcode.core.optim.Sgd(m, 0.05f, 0.9f, 0f) : new Adam(m, 1e-3f)) {
                    Trainer t = new Trainer(e, opt, a, 0.1f, 3);
                    float[] x = PaperResultsTest.randomInput(new SplittableRandom(3), 64), y = {1};
                    for (int i = 0; i < 3; i++) t.step(x, y, 1);
                    Map<String, float[]> before = m.parameterValues(), state = opt.state();
                    float[] bad = x.clone();
                    bad[5] = Float.NaN;
                    DivergenceException d = assertThrows(DivergenceException.class, () -> t.step(bad, y, 1));
                    assertEquals(4, d.step());
                    assertTrue(d.getMessage().contains("step 4"), d.getMessage());
                    Map<String, float[]> after = m.parameterValues(), stateAfter = opt.state();
                    before.forEach((k, v) -> assertArrayEquals(v, after.get(k), a + ": " + k + " changed by the diverged step"));
                    state.forEach((k, v) -> assertArrayEquals(v, stateAfter.get(k), a + ": optimizer state " + k + " changed by the diverged step"));
                    int per = a == Algorithm.IPC ? 3 : 1; // iPC: an optimizer step after each of its n = 3 inference steps
                    assertEquals(3 * per, opt.steps(), a + ": the optimizer's steps");
                    t.step(x, y, 1);
                    assertEquals(4 * per, opt.steps(), a + ": a finite step after it applies");
                    assertFalse(java.util.Arrays.equals(before.values().iterator().next(), m.parameterValues().values().iterator().next()), a + ": and moves the parameters");
                }
            }));
        return out;
    }

    /**
     * A relaxation that runs off (a step size far too large: the beliefs go infinite, then NaN) leaves the feedforward
     * loss finite, and the energy and the updates not. Where the step brings the energy back (as the command line's do)
     * that step stops, naming itself, before the parameters or the optimizer's state change: the recorded optimizer step
     * is guarded on the loss and energy terms' sum; iPC's, which step inside the relaxation, are undone from the copy the
     * step took first. Without it, the parameters would take the NaN updates and the next step's loss would be the first sign.
     */
    @TestFactory List<DynamicTest> aRelaxationThatRunsOffStopsItsOwnStep() {
        List<DynamicTest> out = new ArrayList<>();
        for (Algorithm a : List.of(Algorithm.PC, Algorithm.STRICT, Algorithm.FIXED_PRED, Algorithm.IPC))
            for (boolean sgd : new boolean[]{false, true}) out.addAll(PaperResultsTest.onEveryBackend("runs off " + a.id() + (sgd ? ", sgd" : ", adam"), be -> {
                int perStep = a == Algorithm.IPC ? 5 : 1; // iPC: an optimizer step after each of its 5 inference steps
                try (Model m = Model.create(BuiltinModels.get("digits-mlp"), be, 0); PcEngine e = new PcEngine(m, Loss.CROSS_ENTROPY);
                     io.predcode.core.optim.Optimizer opt = sgd ? new io.predcode.core.optim.Sgd(m, 0.05f, 0.9f, 0f) : new Adam(m, 1e-3f)) {
                    float[] x = PaperResultsTest.randomInput(new SplittableRandom(5), 4 * 64), y = {1, 4, 7, 9};
                    Trainer sane = new Trainer(e, opt, a, 0.1f, 5);
                    for (int i = 0; i < 3; i++) sane.step(x, y, 4);
                    Map<String, float[]> before = m.parameterValues(), state = opt.state();
                    Trainer wild = new Trainer(e, opt, a, 1e30f, 5); // the library's default trainer checks the energy (guardEnergy)
                    for (int k = 1; k <= 2; k++) { // the second replays the first's recording (a CUDA graph)
                        DivergenceException d = assertThrows(DivergenceException.class, () -> wild.step(x, y, 4));
                        assertEquals(k, d.step(), d.getMessage());
                        assertTrue(d.reason().contains("energy is not finite"), d.getMessage());
                        assertFalse(d.getMessage().contains("iPC updates"), d.getMessage());
                        Map<String, float[]> after = m.parameterValues(), stateAfter = opt.state();
                        before.forEach((name, v) -> assertArrayEquals(v, after.get(name), a + ": " + name + " changed by the step that ran off"));
                        state.forEach((name, v) -> assertArrayEquals(v, stateAfter.get(name), a + ": optimizer state " + name + " changed by the step that ran off"));
                        assertEquals(3 * perStep, opt.steps(), "the optimizer's steps");
                    }
                    sane.step(x, y, 4);
                    assertEquals(4 * perStep, opt.steps(), "a sane step after it applies");
                    m.parameterValues().forEach((k, v) -> { for (float f : v) assertTrue(Float.isFinite(f), k + " not finite"); });
                }
            }));
        return out;
    }

    /**
     * Centred nudging relaxes with +beta, holds the updates, relaxes with -beta and applies the mean: a first relaxation
     * that runs off while the second does not leaves NaN in the mean and the second's energy finite, so the step's guard
     * reads the first relaxation's too. The settings (found by a scan; near where the relaxation overflows, the two signs
     * part) are checked first: +beta alone runs off, -beta alone does not.
     */
    @TestFactory List<DynamicTest> aCentredStepWhoseFirstRelaxationRunsOffStops() {
        return PaperResultsTest.onEveryBackend("centred, the first relaxation runs off", be -> {
            float[] x = PaperResultsTest.randomInput(new SplittableRandom(5), 4 * 64), y = {1, 4, 7, 9};
            float beta = 3102.1755f;
            for (String kind : new String[]{"positive", "negative", "centred"})
                try (Model m = Model.create(BuiltinModels.get("digits-mlp"), be, 2);
                     PcEngine e = new PcEngine(m, Loss.CROSS_ENTROPY).energy(Energy.PER_SAMPLE).beliefOptimizer(BeliefOptimizer.sgd(0f)).nudging(Nudging.parse(kind + ":" + beta));
                     Adam opt = new Adam(m, 1e-3f)) {
                    Map<String, float[]> before = m.parameterValues();
                    Trainer t = new Trainer(e, opt, Algorithm.PC, 1024f, 5);
                    if (kind.equals("negative")) {
                        assertDoesNotThrow(() -> t.step(x, y, 4), "the settings: -beta alone must not run off");
                        continue;
                    }
                    DivergenceException d = assertThrows(DivergenceException.class, () -> t.step(x, y, 4), kind);
                    assertTrue(d.reason().contains("energy is not finite"), d.getMessage());
                    before.forEach((k, v) -> assertArrayEquals(v, m.parameterValues().get(k), kind + ": " + k + " changed by the step that ran off"));
                    // A sane step on the same workspace after it, with other settings, reads no stale guard.
                    e.nudging(Nudging.parse("positive:0.1"));
                    assertDoesNotThrow(() -> new Trainer(e, opt, Algorithm.PC, 0.1f, 5).step(x, y, 4), kind + ", then a sane step");
                }
        });
    }

    /**
     * The energy check (Trainer.guardEnergy, on by default) only reads the step's prediction errors: a run with it is bit
     * for bit the run without it, and brings back no energies unless asked. Without it, a relaxation that runs off reaches
     * the parameters and the next step's loss is the first sign.
     */
    @TestFactory List<DynamicTest> theEnergyGuardChangesNoBits() {
        List<DynamicTest> out = new ArrayList<>();
        for (Algorithm a : List.of(Algorithm.PC, Algorithm.STRICT, Algorithm.FIXED_PRED, Algorithm.IPC))
            out.addAll(PaperResultsTest.onEveryBackend("energy guard " + a.id(), be -> {
                float[] x = PaperResultsTest.randomInput(new SplittableRandom(7), 4 * 64), y = {0, 3, 5, 8};
                Map<String, float[]> guarded = null;
                for (boolean guard : new boolean[]{true, false})
                    try (Model m = Model.create(BuiltinModels.get("digits-mlp"), be, 2); PcEngine e = new PcEngine(m, Loss.CROSS_ENTROPY); Adam opt = new Adam(m, 1e-2f)) {
                        Trainer t = new Trainer(e, opt, a, 0.1f, 4).guardEnergy(guard);
                        for (int i = 0; i < 4; i++) assertNull(t.step(x, y, 4).energies(), a + ": energies brought back unasked");
                        assertNotNull(t.recordEnergies(true).step(x, y, 4).energies(), a + ": recordEnergies");
                        if (guarded == null) guarded = m.parameterValues();
                        else guarded.forEach((k, v) -> assertArrayEquals(v, m.parameterValues().get(k), a + ": " + k + " differs with the energy guard"));
                        if (guard) continue;
                        Trainer wild = new Trainer(e, opt, a, 1e30f, 5).guardEnergy(false);
                        wild.step(x, y, 4); // unchecked: the NaN updates go in
                        assertFalse(m.parameterValues().values().stream().allMatch(v -> { for (float f : v) if (!Float.isFinite(f)) return false; return true; }),
                                a + ": without the guard the runaway step's updates reach the parameters");
                        DivergenceException d = assertThrows(DivergenceException.class, () -> wild.step(x, y, 4));
                        assertEquals(2, d.step(), d.getMessage());
                    }
            }));
        return out;
    }

    @Test void specJsonRoundTripsAndBuiltinsBuild() {
        for (String name : BuiltinModels.NAMES) {
            ModelSpec s = BuiltinModels.get(name);
            assertEquals(s, ModelSpec.parse(s.toJson(), name));
        }
        ModelSpec cnn = BuiltinModels.get("example-cnn");
        assertArrayEquals(new int[]{605}, cnn.activationShapes(cnn.input())[2]);
        try (Backend be = cpu(); Model m = Model.create(cnn, be, 0)) {
            assertEquals(List.of("0.0.weight", "0.0.bias", "1.0.weight", "1.0.bias", "2.0.weight", "2.0.bias", "3.0.weight", "3.0.bias", "4.0.weight", "4.0.bias"),
                    List.copyOf(m.parameters().keySet()));
            float[] w = be.download(m.parameters().get("2.0.weight").value());
            double bound = 1 / Math.sqrt(605), max = 0;
            for (float v : w) max = Math.max(max, Math.abs(v));
            assertTrue(max <= bound && max > 0.9 * bound, "kaiming-uniform(a=sqrt 5) bound 1/sqrt(fan_in): max |w| = " + max);
        }
    }

    @Test void twoModelsOnTwoThreadsTrainIndependently() throws Exception {
        float[][] losses = new float[2][];
        Thread[] threads = new Thread[2];
        for (int k = 0; k < 2; k++) {
            int id = k;
            threads[k] = new Thread(() -> losses[id] = trainFew());
            threads[k].start();
        }
        for (Thread t : threads) t.join();
        assertArrayEquals(losses[0], losses[1]);
        assertArrayEquals(trainFew(), losses[0]);
    }

    private static float[] trainFew() {
        SplittableRandom r = new SplittableRandom(11);
        try (Backend be = cpu(); Model m = Model.create(BuiltinModels.get("digits-mlp"), be, 3); PcEngine e = new PcEngine(m, Loss.CROSS_ENTROPY);
             Adam opt = new Adam(m, 1e-2f)) {
            Trainer t = new Trainer(e, opt, Algorithm.STRICT, 0.1f, 10);
            float[] out = new float[20];
            for (int i = 0; i < out.length; i++)
                out[i] = t.step(PaperResultsTest.randomInput(r, 8 * 64), PaperResultsTest.labels(r, 8, 10), 8).loss();
            return out;
        }
    }
}
