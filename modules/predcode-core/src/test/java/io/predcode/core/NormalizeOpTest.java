package io.predcode.core;

import io.predcode.core.json.JsonException;
import io.predcode.core.nn.Block;
import io.predcode.core.nn.Model;
import io.predcode.core.nn.ModelSpec;
import io.predcode.spi.Scope;
import io.predcode.spi.Tensor;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.util.List;
import java.util.SplittableRandom;

import static io.predcode.core.PaperResultsTest.onEveryBackend;
import static io.predcode.spi.conformance.Approx.assertClose;
import static org.junit.jupiter.api.Assertions.*;

/**
 * The normalize op (torchvision's Normalize inside the model): forward and input gradient against
 * float64 per channel and with one pair for every value, its spec round trip, and its refusals.
 */
class NormalizeOpTest {
    @TestFactory List<DynamicTest> normalizeMatchesFloat64() {
        return onEveryBackend("normalize against float64", be -> {
            SplittableRandom r = new SplittableRandom(5);
            // Flat shapes per channel: one pair per value (a table's features); 1, primes and sizes off the vector width.
            int[][] shapes = {{3, 5, 7}, {1, 4, 4}, {2, 1, 1}, {13}, {1}, {17}, {64}};
            for (int[] shape : shapes)
                for (boolean perChannel : new boolean[]{true, false}) {
                    int channels = perChannel ? shape[0] : 1, per = 1, batch = 1 + r.nextInt(5);
                    for (int d : shape) per *= d;
                    float[] mean = new float[channels], std = new float[channels];
                    for (int c = 0; c < channels; c++) { mean[c] = (float) r.nextDouble(-1, 1); std[c] = (float) r.nextDouble(0.1, 2); }
                    ModelSpec spec = ModelSpec.builder().input(shape).block(k -> k.normalize(mean, std)).build();
                    try (Model m = Model.create(spec, be, 0); Scope scope = new Scope(be)) {
                        Block block = m.blocks().getFirst();
                        Block.Tape t = block.newTape(scope, batch, true);
                        float[] x = new float[batch * per], dy = new float[batch * per];
                        for (int i = 0; i < x.length; i++) { x[i] = (float) r.nextDouble(-3, 3); dy[i] = (float) r.nextDouble(-1, 1); }
                        Tensor tx = scope.allocate(Block.withBatch(batch, shape)), tdy = scope.allocate(Block.withBatch(batch, shape)), tdx = scope.allocate(Block.withBatch(batch, shape));
                        be.upload(x, tx);
                        be.upload(dy, tdy);
                        block.forward(be, tx, t);
                        block.backward(be, t, tdy, tdx, 0f);
                        double[] ey = new double[x.length], edx = new double[x.length];
                        for (int i = 0; i < x.length; i++) {
                            int c = channels == 1 ? 0 : (i % per) / (per / channels);
                            ey[i] = (x[i] - (double) mean[c]) / std[c];
                            edx[i] = dy[i] / (double) std[c];
                        }
                        String what = java.util.Arrays.toString(shape) + (perChannel ? " per channel" : " one pair") + " x" + batch;
                        assertClose(what + ": forward", ey, be.download(t.output()), 2e-6);
                        assertClose(what + ": input gradient", edx, be.download(tdx), 2e-6);
                        assertTrue(m.parameters().isEmpty(), "no trained parameters");
                    }
                }
        });
    }

    /** A service's predictor normalises as training does: its logits are the model's on normalised inputs. */
    @TestFactory List<DynamicTest> servingNormalisesRawInputs() {
        return onEveryBackend("serving a normalising model", be -> {
            SplittableRandom r = new SplittableRandom(6);
            float[] mean = {0.2f, 0.5f}, std = {0.5f, 0.25f};
            ModelSpec withOp = ModelSpec.builder().input(2, 3, 3).block(k -> k.normalize(mean, std).flatten().linear(18, 4)).build();
            ModelSpec without = ModelSpec.builder().input(2, 3, 3).block(k -> k.flatten().linear(18, 4)).build();
            int batch = 5;
            float[] x = new float[batch * 18], normalised = new float[x.length];
            for (int i = 0; i < x.length; i++) {
                x[i] = (float) r.nextDouble();
                int c = (i % 18) / 9;
                normalised[i] = (float) ((x[i] - (double) mean[c]) / std[c]);
            }
            try (Model a = Model.create(withOp, be, 3); Model b = Model.create(without, be, 3);
                 io.predcode.core.serve.Predictor pa = io.predcode.core.serve.Predictor.of(a); io.predcode.core.serve.Predictor pb = io.predcode.core.serve.Predictor.of(b)) {
                b.loadParameters(java.util.Map.of("0.1.weight", a.parameterValues().get("0.2.weight"), "0.1.bias", a.parameterValues().get("0.2.bias")), "the same linear layer");
                assertClose("logits", io.predcode.spi.conformance.Approx.toDouble(pb.logits(normalised, batch)), pa.logits(x, batch), 1e-5);
            }
        });
    }

    @Test void specRoundTripsAndBadNumbersAreRefused() {
        ModelSpec spec = ModelSpec.builder().input(3, 4, 4).block(k -> k.normalize(new float[]{0.49f, 0.48f, 0.45f}, new float[]{0.25f, 0.24f, 0.26f}).flatten().linear(48, 10)).build();
        ModelSpec again = ModelSpec.parse(spec.toJson(), "round trip");
        assertEquals(spec.blocks(), again.blocks(), "a checkpoint's spec reads back equal (resume compares them)");
        assertTrue(spec.toJson().contains("[0.49, 0.48, 0.45]"), "written as people wrote them: " + spec.toJson());
        // Any float reads back as itself, written short or not: 2,000 drawn, of every magnitude.
        java.util.SplittableRandom r = new java.util.SplittableRandom(5);
        float[] mean = new float[2000], std = new float[2000];
        for (int i = 0; i < mean.length; i++) {
            mean[i] = Float.intBitsToFloat(r.nextInt()) % 1e30f;
            std[i] = Math.abs(Float.intBitsToFloat(r.nextInt(0x00800000, 0x7f000000)));
            if (!Float.isFinite(mean[i])) mean[i] = r.nextFloat();
        }
        ModelSpec drawn = ModelSpec.builder().input(2000).block(k -> k.normalize(mean, std).leakyRelu(0.2f)).build();
        assertEquals(drawn.blocks(), ModelSpec.parse(drawn.toJson(), "drawn").blocks());
        String[] bad = {
                "{\"op\": \"normalize\", \"mean\": [0.5, 0.5], \"std\": [0.5]}",
                "{\"op\": \"normalize\", \"mean\": [0.5], \"std\": [0]}",
                "{\"op\": \"normalize\", \"mean\": [0.5], \"std\": [-1]}",
                "{\"op\": \"normalize\", \"mean\": [], \"std\": []}",
                "{\"op\": \"normalize\", \"mean\": [\"a\"], \"std\": [1]}"};
        for (String op : bad) {
            String json = "{\"input\": [3, 4, 4], \"blocks\": [[" + op + ", {\"op\": \"flatten\"}, {\"op\": \"linear\", \"in\": 48, \"out\": 10}]]}";
            RuntimeException e = assertThrows(RuntimeException.class, () -> ModelSpec.parse(json, "spec.json"), op);
            assertTrue(e instanceof JsonException || e instanceof IllegalArgumentException, e.toString());
            assertTrue(e.getMessage().contains("normalize"), e.getMessage());
        }
        // Two channels' numbers for a three-channel input: refused where the shapes are worked out.
        ModelSpec twoForThree = ModelSpec.builder().input(3, 4, 4).block(k -> k.normalize(new float[]{0.5f, 0.5f}, new float[]{1, 1}).flatten().linear(48, 10)).build();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> twoForThree.activationShapes(new int[]{3, 4, 4}));
        assertTrue(e.getMessage().contains("(normalize): 2 means and stds, one per channel (or per value of a flat input), but its input has shape [3, 4, 4]"), e.getMessage());
        // A flat input takes one pair per value, and no other count but one.
        assertDoesNotThrow(() -> ModelSpec.builder().input(5).block(k -> k.normalize(new float[5], new float[]{1, 1, 1, 1, 1}).linear(5, 2)).build().activationShapes(new int[]{5}));
        ModelSpec fourForFive = ModelSpec.builder().input(5).block(k -> k.normalize(new float[4], new float[]{1, 1, 1, 1}).linear(5, 2)).build();
        e = assertThrows(IllegalArgumentException.class, () -> fourForFive.activationShapes(new int[]{5}));
        assertTrue(e.getMessage().contains("4 means and stds"), e.getMessage());
    }
}
