package io.predcode.core;

import io.predcode.core.nn.Loss;
import io.predcode.core.nn.Model;
import io.predcode.core.nn.ModelSpec;
import io.predcode.core.pc.Algorithm;
import io.predcode.core.pc.BeliefOptimizer;
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
                        assertSameUpdates("PC/SGD against STRICT, n " + n, strict, pc, 1e-5);
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

    private static double energy(PcEngine e, float[] x, float[] y, int batch, float eta, int n) {
        InferenceResult res = e.infer(x, y, batch, Algorithm.PC, eta, n);
        return res.energy();
    }

    @Test void beliefOptimizersParseAndRefuseNonsense() {
        assertEquals(BeliefOptimizer.sgd(0.9f), BeliefOptimizer.parse("sgd:0.9"));
        assertEquals(BeliefOptimizer.adam(), BeliefOptimizer.parse("Adam"));
        assertThrows(IllegalArgumentException.class, () -> BeliefOptimizer.parse("sgd:1.5"));
        assertThrows(IllegalArgumentException.class, () -> BeliefOptimizer.parse("rmsprop"));
        assertEquals(Algorithm.PC, Algorithm.parse("pc"));
    }
}
