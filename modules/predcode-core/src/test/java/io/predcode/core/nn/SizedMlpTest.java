package io.predcode.core.nn;

import io.predcode.core.optim.Sgd;
import io.predcode.core.pc.Algorithm;
import io.predcode.core.pc.PcEngine;
import io.predcode.core.pc.Trainer;
import io.predcode.spi.Activation;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static io.predcode.core.PaperResultsTest.onEveryBackend;
import static io.predcode.spi.conformance.Approx.assertClose;
import static io.predcode.spi.conformance.Approx.toDouble;
import static org.junit.jupiter.api.Assertions.*;

/** {@code --model mlp:H1-H2[:ACTIVATION]}: MLPs sized to their data, and a table's standardization inside them. */
class SizedMlpTest {
    @Test void blocksFollowTheName() {
        ModelSpec flat = BuiltinModels.mlp("mlp:32-16:tanh", new int[]{7}, 3, null, null);
        assertEquals(List.of(
                List.of(new OpSpec.Linear(7, 32, true), new OpSpec.Act(Activation.TANH, 0f)),
                List.of(new OpSpec.Linear(32, 16, true), new OpSpec.Act(Activation.TANH, 0f)),
                List.of(new OpSpec.Linear(16, 3, true))), flat.blocks());
        assertArrayEquals(new int[]{7}, flat.input());
        // Images are flattened first; ReLU by default; leaky ReLU with PyTorch's slope.
        ModelSpec images = BuiltinModels.mlp("mlp:5", new int[]{1, 8, 8}, 10, null, null);
        assertEquals(List.of(new OpSpec.Flatten(), new OpSpec.Linear(64, 5, true), new OpSpec.Act(Activation.RELU, 0f)), images.blocks().getFirst());
        assertEquals(new OpSpec.Act(Activation.LEAKY_RELU, 0.01f), BuiltinModels.mlp("mlp:4:leaky_relu", new int[]{2}, 2, null, null).blocks().getFirst().get(1));
        // Standardization is the first op, its numbers in the spec (a checkpoint carries them).
        ModelSpec standard = BuiltinModels.mlp("mlp:4", new int[]{2}, 2, new float[]{1, 2}, new float[]{3, 4});
        assertEquals(new OpSpec.Normalize(new float[]{1, 2}, new float[]{3, 4}), standard.blocks().getFirst().getFirst());
        assertEquals(standard.blocks(), ModelSpec.parse(standard.toJson(), "round trip").blocks());
        assertTrue(BuiltinModels.isSized("mlp:4") && !BuiltinModels.isSized("mlp"));
    }

    @Test void badNamesAreOneLine() {
        for (String bad : new String[]{"mlp:", "mlp:0", "mlp:65537", "mlp:8-", "mlp:-8", "mlp:8,8", "mlp:8:", "mlp:8:swish", "mlp:8:relu:x", "mlp:99999999999", "mlp:8 "}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> BuiltinModels.mlp(bad, new int[]{3}, 2, null, null), bad);
            assertTrue(e.getMessage().startsWith("'" + bad + "': ") && e.getMessage().contains("mlp:H1-H2") && !e.getMessage().contains("\n"), e.getMessage());
        }
        assertTrue(assertThrows(IllegalArgumentException.class, () -> BuiltinModels.get("mlp:8")).getMessage().contains("mlp:H1-H2-...[:ACTIVATION] sized to the data"));
    }

    /**
     * Training through the standardization equals training a model without it on inputs standardized in float64: the
     * op only moves where the clamped input sits, for every algorithm that relaxes from it.
     */
    @TestFactory List<DynamicTest> trainingThroughStandardizationEqualsStandardizedInputs() {
        return onEveryBackend("standardized table", be -> {
            SplittableRandom r = new SplittableRandom(11);
            int features = 5, batch = 6, classes = 3;
            float[] mean = new float[features], std = new float[features], x = new float[batch * features], standardized = new float[x.length], y = new float[batch];
            for (int j = 0; j < features; j++) { mean[j] = (float) r.nextDouble(-50, 50); std[j] = (float) r.nextDouble(0.5, 40); }
            for (int i = 0; i < x.length; i++) {
                int j = i % features;
                x[i] = (float) (mean[j] + std[j] * r.nextDouble(-2, 2));
                standardized[i] = (float) ((x[i] - (double) mean[j]) / std[j]);
            }
            for (int i = 0; i < batch; i++) y[i] = r.nextInt(classes);
            for (Algorithm a : new Algorithm[]{Algorithm.STRICT, Algorithm.FIXED_PRED, Algorithm.PC, Algorithm.BACKPROP}) {
                ModelSpec with = BuiltinModels.mlp("mlp:8-8:tanh", new int[]{features}, classes, mean, std), without = BuiltinModels.mlp("mlp:8-8:tanh", new int[]{features}, classes, null, null);
                try (Model mw = Model.create(with, be, 4); Model mo = Model.create(without, be, 4);
                     PcEngine ew = new PcEngine(mw, Loss.CROSS_ENTROPY); PcEngine eo = new PcEngine(mo, Loss.CROSS_ENTROPY);
                     Sgd sw = new Sgd(mw, 0.05f, 0f, 0f); Sgd so = new Sgd(mo, 0.05f, 0f, 0f)) {
                    Map<String, float[]> renamed = new HashMap<>();
                    mw.parameterValues().forEach((k, v) -> renamed.put(k.startsWith("0.1.") ? "0.0." + k.substring(4) : k, v));
                    mo.loadParameters(renamed, "the same layers");
                    Trainer tw = new Trainer(ew, sw, a, 0.1f, 6), to = new Trainer(eo, so, a, 0.1f, 6);
                    for (int step = 0; step < 3; step++) { tw.step(x, y, batch); to.step(standardized, y, batch); }
                    assertClose(a + ": last layer after 3 steps", toDouble(mo.parameterValues().get("2.0.weight")), mw.parameterValues().get("2.0.weight"), 2e-5);
                    assertClose(a + ": first layer after 3 steps", toDouble(mo.parameterValues().get("0.0.weight")), mw.parameterValues().get("0.1.weight"), 2e-5);
                }
            }
        });
    }
}
