package io.predcode.core;

import io.predcode.core.nn.Loss;
import io.predcode.core.nn.Model;
import io.predcode.core.nn.ModelSpec;
import io.predcode.core.pc.Algorithm;
import io.predcode.core.pc.InferenceResult;
import io.predcode.core.pc.PcEngine;
import io.predcode.core.pc.PcEngine.Condense;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static io.predcode.core.PaperResultsTest.labels;
import static io.predcode.core.PaperResultsTest.onEveryBackend;
import static io.predcode.core.PaperResultsTest.randomInput;
import static io.predcode.spi.conformance.Approx.assertClose;
import static io.predcode.spi.conformance.Approx.toDouble;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** STRICT with layer 1 relaxed in block 1's entry space gives what the plain relaxation gives. */
class CondensedStrictTest {
    /**
     * Block 1 enters through: a linear layer, a flatten then a linear layer, convs of odd and even kernels (1x1 included).
     * Its update is fused with layer 2's where one activation follows the entry (relu, tanh, sigmoid here), and not where
     * more follows (leaky relu then avg pool) or block 1 is the output block.
     */
    static List<ModelSpec> specs(SplittableRandom r) {
        return List.of(
                PaperResultsTest.mlp(r, 3, "relu"),
                PaperResultsTest.mlp(r, 4, "tanh"),
                PaperResultsTest.mlp(r, 2, "sigmoid"), // block 1 is the output block
                ModelSpec.builder().input(2, 12, 11)
                        .block(b -> b.conv2d(2, 7, 3).relu().maxPool(2))          // 7 x 5 x 4
                        .block(b -> b.conv2d(7, 3, 3).relu().flatten())            // 3 x 3 x 2
                        .block(b -> b.linear(18, 5)).build(),
                ModelSpec.builder().input(1, 9, 10)
                        .block(b -> b.conv2d(1, 5, 2).tanh())                      // 5 x 8 x 9
                        .block(b -> b.conv2d(5, 2, 2).leakyRelu(0.1f).avgPool(2).flatten()) // 2 x 3 x 4
                        .block(b -> b.linear(24, 13).relu())
                        .block(b -> b.linear(13, 3)).build(),
                ModelSpec.builder().input(3, 5, 5)
                        .block(b -> b.conv2d(3, 4, 1).relu())
                        .block(b -> b.conv2d(4, 2, 1).sigmoid().flatten())
                        .block(b -> b.linear(50, 4)).build(),
                ModelSpec.builder().input(2, 6, 6)
                        .block(b -> b.conv2d(2, 3, 3).relu().flatten())            // 3 x 4 x 4
                        .block(b -> b.flatten().linear(48, 11).tanh())
                        .block(b -> b.linear(11, 6)).build());
    }

    @TestFactory List<DynamicTest> condensedRelaxationMatchesThePlainOne() {
        return onEveryBackend("STRICT condensed = STRICT plain", be -> {
            SplittableRandom r = new SplittableRandom(11);
            int trial = 0;
            for (ModelSpec spec : specs(r)) {
                boolean ce = trial % 2 == 0;
                int batch = 1 + r.nextInt(6);
                try (Model m = Model.create(spec, be, trial++); PcEngine e = new PcEngine(m, ce ? Loss.CROSS_ENTROPY : Loss.MSE)) {
                    assertNotNull(m.blocks().get(1).entry(), "block 1 of " + spec + " should have a Gram form");
                    int outSize = m.activationShape(m.depth())[0];
                    float[] x = randomInput(r, batch * e.inputSize());
                    float[] y = ce ? labels(r, batch, outSize) : randomInput(r, batch * outSize);
                    for (int n : new int[]{1, 2, 7}) {
                        Snapshot plain = Snapshot.of(m, e.condense(Condense.NEVER).infer(x, y, batch, Algorithm.STRICT, 0.2f, n));
                        Snapshot condensed = Snapshot.of(m, e.condense(Condense.ALWAYS).infer(x, y, batch, Algorithm.STRICT, 0.2f, n));
                        String what = spec + " batch " + batch + " n " + n + ": ";
                        assertEquals(plain.loss, condensed.loss, what + "loss");
                        assertEquals(plain.energy, condensed.energy, 1e-5 * Math.abs(plain.energy), what + "energy");
                        for (int l = 1; l < m.depth(); l++) {
                            assertClose(what + "belief " + l, toDouble(plain.beliefs[l]), condensed.beliefs[l], 2e-6);
                            assertClose(what + "error " + l, toDouble(plain.errors[l]), condensed.errors[l], 2e-5);
                        }
                        // The golden tolerance: a bias update sums eps_1 over the batch, which cancels, and the plain path rounds
                        // d_1 at every sweep (on the golden CNN the condensed path is the closer to float64: 1.3e-6 against 1.2e-5).
                        plain.updates.forEach((k, v) -> assertClose(what + "update " + k, toDouble(v), condensed.updates.get(k), 1e-4));
                    }
                }
            }
        });
    }

    @Test void aStridedOrPaddedConvHasNoGramForm() {
        try (var be = io.predcode.spi.Backends.open("cpu")) {
            for (int[] sp : new int[][]{{2, 0}, {1, 1}}) {
                ModelSpec spec = ModelSpec.builder().input(2, 9, 9)
                        .block(b -> b.conv2d(2, 4, 3).relu())
                        .block(b -> b.conv2d(4, 2, 3, sp[0], sp[1]).relu().flatten())
                        .block(b -> b.linear(sp[0] == 2 ? 18 : 98, 3)).build();
                try (Model m = Model.create(spec, be, 0)) { assertNull(m.blocks().get(1).entry(), spec.toString()); }
            }
        }
    }

    @Test void autoCondensesTheBuiltInModels() {
        try (var be = io.predcode.spi.Backends.open("cpu")) {
            for (String name : new String[]{"example-cnn", "mlp"})
                try (Model m = Model.create(io.predcode.core.nn.BuiltinModels.get(name), be, 0)) {
                    assertTrue(m.blocks().get(1).entry().pays(), name);
                }
        }
    }

    /** What one infer call returned, copied to the host before the next call reuses the workspace. */
    record Snapshot(float loss, double energy, float[][] beliefs, float[][] errors, Map<String, float[]> updates) {
        static Snapshot of(Model m, InferenceResult res) {
            int depth = res.depth();
            float[][] v = new float[depth + 1][], eps = new float[depth + 1][];
            for (int l = 1; l <= depth; l++) {
                v[l] = res.download(res.belief(l));
                eps[l] = res.download(res.error(l));
            }
            return new Snapshot(res.loss(), res.energy(), v, eps, Map.copyOf(m.gradientValues()));
        }
    }
}
