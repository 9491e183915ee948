package io.predcode.core;

import io.predcode.core.nn.Loss;
import io.predcode.core.nn.Model;
import io.predcode.core.nn.ModelSpec;
import io.predcode.core.pc.Algorithm;
import io.predcode.core.pc.BeliefOptimizer;
import io.predcode.core.pc.Energy;
import io.predcode.core.pc.InferenceResult;
import io.predcode.core.pc.PcEngine;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static io.predcode.core.PaperResultsTest.assertSameUpdates;
import static io.predcode.core.PaperResultsTest.labels;
import static io.predcode.core.PaperResultsTest.randomInput;
import static io.predcode.core.PaperResultsTest.updates;
import static org.junit.jupiter.api.Assertions.*;

/** Standard PC (beliefs moved by an optimizer), on every available backend. */
class StandardPcTest {
    /** With plain SGD of step eta, PC is STRICT relaxing every layer in its own space: the same updates. */
    @TestFactory List<DynamicTest> pcWithPlainSgdIsStrict() {
        return PaperResultsTest.onEveryBackend("PC with SGD = STRICT", be -> {
            SplittableRandom r = new SplittableRandom(7);
            for (ModelSpec spec : new ModelSpec[]{PaperResultsTest.CNN, PaperResultsTest.mlp(r, 4, "tanh")}) {
                int batch = 5;
                try (Model m = Model.create(spec, be, 3); PcEngine e = new PcEngine(m, Loss.CROSS_ENTROPY).condense(PcEngine.Condense.NEVER)) {
                    float[] x = randomInput(r, batch * e.inputSize());
                    float[] y = labels(r, batch, m.activationShape(m.depth())[0]);
                    // n = 2 stops while the error wave is still on its way down (PC skips the layers it has not reached); 12 runs past it.
                    for (int n : new int[]{2, 12}) {
                        Map<String, float[]> strict = updates(m, e, x, y, batch, Algorithm.STRICT, 0.1f, n);
                        Map<String, float[]> pc = updates(m, e.beliefOptimizer(BeliefOptimizer.sgd(0f)), x, y, batch, Algorithm.PC, 0.1f, n);
                        // STRICT forms its errors from changes, PC from float32 predictions: they agree to PC's rounding.
                        assertSameUpdates("PC/SGD against STRICT, n " + n, strict, pc, 5e-5);
                    }
                }
            }
        });
    }

    /** Every belief optimizer lowers the energy over the relaxation (small steps). */
    @TestFactory List<DynamicTest> everyBeliefOptimizerLowersTheEnergy() {
        return PaperResultsTest.onEveryBackend("PC lowers the energy", be -> {
            SplittableRandom r = new SplittableRandom(11);
            ModelSpec spec = PaperResultsTest.mlp(r, 4, "relu");
            int batch = 8;
            for (BeliefOptimizer o : new BeliefOptimizer[]{BeliefOptimizer.sgd(0f), BeliefOptimizer.sgd(0.5f), BeliefOptimizer.adam()}) {
                float eta = o.isAdam() ? 0.01f : 0.05f;
                try (Model m = Model.create(spec, be, 5); PcEngine e = new PcEngine(m, Loss.CROSS_ENTROPY).beliefOptimizer(o)) {
                    float[] x = randomInput(r, batch * e.inputSize());
                    float[] y = labels(r, batch, m.activationShape(m.depth())[0]);
                    double before = energy(e, x, y, batch, eta, 1), after = energy(e, x, y, batch, eta, 30);
                    assertTrue(after < before, o + ": energy " + before + " at the first step, " + after + " after 29 more");
                }
            }
        });
    }

    /**
     * Plain SGD (STRICT's) keeps no belief optimizer state in the workspace, momentum one tensor per
     * hidden layer, Adam two; an engine switched between them gives the updates of one that ran the
     * optimizer from the start, back to plain SGD included.
     */
    @TestFactory List<DynamicTest> beliefStateIsAllocatedOnlyWhenNeeded() {
        return PaperResultsTest.onEveryBackend("belief optimizer state on demand", be -> {
            // One hidden layer, its tensors over 1 MiB, so that each is an allocation of its own (a Scope carves smaller ones from shared slabs).
            ModelSpec spec = ModelSpec.builder().block(b -> b.linear(6, 512).tanh()).block(b -> b.linear(512, 4)).build();
            int batch = 520;
            long stateTensorBytes = 4L * batch * 512;
            SplittableRandom r = new SplittableRandom(3);
            BeliefOptimizer[] optimizers = {BeliefOptimizer.sgd(0f), BeliefOptimizer.sgd(0.5f), BeliefOptimizer.adam()};
            try (Model m = Model.create(spec, new int[]{6}, be, 1)) {
                float[] x = randomInput(r, batch * 6), y = labels(r, batch, 4);
                List<Map<String, float[]>> fresh = new java.util.ArrayList<>();
                long[] bytes = new long[optimizers.length];
                try (PcEngine warm = new PcEngine(m, Loss.CROSS_ENTROPY)) { updates(m, warm, x, y, batch, Algorithm.PC, 0.05f, 4); } // the model's own first-use allocations
                for (int i = 0; i < optimizers.length; i++)
                    try (PcEngine e = new PcEngine(m, Loss.CROSS_ENTROPY).energy(Energy.PER_SAMPLE).beliefOptimizer(optimizers[i])) {
                        long before = be.counters().snapshot().bytesAllocated();
                        fresh.add(updates(m, e, x, y, batch, Algorithm.PC, 0.05f, 4));
                        bytes[i] = be.counters().snapshot().bytesAllocated() - before;
                    }
                assertEquals(stateTensorBytes, bytes[1] - bytes[0], "momentum's workspace over plain SGD's");
                assertEquals(2 * stateTensorBytes, bytes[2] - bytes[0], "Adam's workspace over plain SGD's");
                try (PcEngine e = new PcEngine(m, Loss.CROSS_ENTROPY).energy(Energy.PER_SAMPLE)) {
                    for (int i = 0; i < optimizers.length; i++)
                        assertSameUpdates("switched to " + optimizers[i], fresh.get(i), updates(m, e.beliefOptimizer(optimizers[i]), x, y, batch, Algorithm.PC, 0.05f, 4), 0);
                    assertSameUpdates("back to plain SGD", fresh.get(0), updates(m, e.beliefOptimizer(optimizers[0]), x, y, batch, Algorithm.PC, 0.05f, 4), 0);
                }
            }
        });
    }

    private static double energy(PcEngine e, float[] x, float[] y, int batch, float eta, int n) {
        InferenceResult res = e.infer(x, y, batch, Algorithm.PC, eta, n);
        return res.energy();
    }

    /**
     * On the per-sample energy with squared error, the output's error is u - y by one subtraction, as
     * PCX's autodiff has it (not the mean loss's gradient scaled back up, which rounds twice), and the
     * energy reported is that of the final state: PC's from its learning step, iPC's from its last step.
     */
    @TestFactory List<DynamicTest> perSampleSquaredErrorIsTheOutputMinusTheTarget() {
        return PaperResultsTest.onEveryBackend("per-sample squared error", be -> {
            SplittableRandom r = new SplittableRandom(13);
            ModelSpec spec = ModelSpec.builder().input(7).block(b -> b.linear(7, 7)).build(); // one block: u is the feedforward output
            int batch = 11; // 2 (u - y) / 77 times 77 / 2 differs from u - y in about one value in five
            for (Algorithm a : new Algorithm[]{Algorithm.PC, Algorithm.IPC}) {
                try (Model m = Model.create(spec, be, 3); PcEngine e = new PcEngine(m, Loss.MSE).beliefOptimizer(BeliefOptimizer.sgd(0.1f)).energy(Energy.PER_SAMPLE)) {
                    float[] x = randomInput(r, batch * e.inputSize()), y = randomInput(r, batch * 7);
                    InferenceResult res = e.infer(x, y, batch, a, 0.1f, 3);
                    float[] eps = res.download(res.error(1));
                    if (a == Algorithm.PC) {
                        float[] u = res.download(res.vhat(1));
                        for (int i = 0; i < eps.length; i++) assertEquals(u[i] - y[i], eps[i], 0f, "PC: eps_L[" + i + "] = u - y exactly");
                    }
                    double squares = 0;
                    for (float v : eps) squares += 0.5 * v * v;
                    assertEquals(squares, res.energy(), 1e-5 * squares, a + ": the energy is the final state's, 1/2 ||u - y||^2 summed over samples");
                }
            }
        });
    }

    @Test void beliefOptimizersParseAndRefuseNonsense() {
        assertEquals(BeliefOptimizer.sgd(0.9f), BeliefOptimizer.parse("sgd:0.9"));
        assertEquals(BeliefOptimizer.adam(), BeliefOptimizer.parse("Adam"));
        assertThrows(IllegalArgumentException.class, () -> BeliefOptimizer.parse("sgd:1.5"));
        assertThrows(IllegalArgumentException.class, () -> BeliefOptimizer.parse("rmsprop"));
        assertEquals(Algorithm.PC, Algorithm.parse("pc"));
    }
}
