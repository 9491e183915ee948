package io.predcode.core;

import io.predcode.core.nn.Loss;
import io.predcode.core.nn.Model;
import io.predcode.core.nn.ModelSpec;
import io.predcode.core.pc.Algorithm;
import io.predcode.core.pc.InferenceResult;
import io.predcode.core.pc.PcEngine;
import io.predcode.spi.Backend;
import io.predcode.spi.BackendProvider;
import io.predcode.spi.Backends;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Consumer;

import static io.predcode.spi.conformance.Approx.assertClose;
import static io.predcode.spi.conformance.Approx.relativeError;
import static io.predcode.spi.conformance.Approx.toDouble;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The paper's results, as tests, on every available backend. */
public class PaperResultsTest {
    /** {@code test} as a dynamic test on each available backend, the others skipped with their reason printed. */
    public static List<DynamicTest> onEveryBackend(String name, Consumer<Backend> test) {
        List<DynamicTest> out = new ArrayList<>();
        for (BackendProvider p : Backends.providers()) {
            if (!p.availability().available()) {
                System.out.println("SKIPPED " + name + " on backend '" + p.name() + "': " + p.availability().reason());
                continue;
            }
            out.add(DynamicTest.dynamicTest(name + " [" + p.name() + "]", () -> {
                try (Backend be = p.open(io.predcode.spi.BackendOptions.defaults())) { test.accept(be); }
            }));
        }
        return out;
    }

    static final ModelSpec CNN = ModelSpec.builder().input(2, 11, 9)
            .block(b -> b.conv2d(2, 3, 3, 1, 1).relu().maxPool(2))
            .block(b -> b.conv2d(3, 4, 2).tanh().avgPool(2).flatten())
            .block(b -> b.linear(8, 7).leakyRelu(0.1f))
            .block(b -> b.linear(7, 5)).build();

    static ModelSpec mlp(SplittableRandom r, int depth, String act) {
        ModelSpec.Builder b = ModelSpec.builder();
        int in = 3 + r.nextInt(14);
        b.input(in);
        for (int l = 0; l < depth; l++) {
            int out = l == depth - 1 ? 2 + r.nextInt(6) : 2 + r.nextInt(20);
            int fin = in, fout = out;
            boolean last = l == depth - 1;
            b.block(k -> { k.linear(fin, fout); if (!last) { if (act.equals("tanh")) k.tanh(); else if (act.equals("sigmoid")) k.sigmoid(); else k.relu(); } });
            in = out;
        }
        return b.build();
    }

    static float[] randomInput(SplittableRandom r, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (r.nextDouble() * 2 - 1);
        return x;
    }

    static float[] labels(SplittableRandom r, int batch, int classes) {
        float[] y = new float[batch];
        for (int i = 0; i < batch; i++) y[i] = r.nextInt(classes);
        return y;
    }

    static Map<String, float[]> updates(Model m, PcEngine e, float[] x, float[] y, int batch, Algorithm a, float eta, int n) {
        e.infer(x, y, batch, a, eta, n);
        return new LinkedHashMap<>(m.gradientValues());
    }

    static void assertSameUpdates(String what, Map<String, float[]> ref, Map<String, float[]> got, double tol) {
        ref.forEach((k, v) -> assertClose(what + " " + k, toDouble(v), got.get(k), tol));
    }

    @TestFactory List<DynamicTest> exactEqualsBackprop() {
        return onEveryBackend("EXACT equals BACKPROP", be -> {
            SplittableRandom r = new SplittableRandom(1);
            for (int trial = 0; trial < 6; trial++) {
                ModelSpec spec = trial == 0 ? CNN : mlp(r, 2 + r.nextInt(4), trial % 2 == 0 ? "relu" : "tanh");
                int batch = 1 + r.nextInt(7);
                try (Model m = Model.create(spec, be, trial); PcEngine e = new PcEngine(m, Loss.CROSS_ENTROPY)) {
                    float[] x = randomInput(r, batch * e.inputSize()), y = labels(r, batch, m.activationShape(m.depth())[0]);
                    assertSameUpdates("EXACT vs BACKPROP, " + spec, updates(m, e, x, y, batch, Algorithm.BACKPROP, 0.1f, 1),
                            updates(m, e, x, y, batch, Algorithm.EXACT, 0.1f, 1), 1e-6);
                }
            }
        });
    }

    @TestFactory List<DynamicTest> fixedPredictionWithEtaOneAndNEqualsDepthIsBackprop() {
        return onEveryBackend("FIXED_PRED eta=1 n=L equals BACKPROP", be -> {
            SplittableRandom r = new SplittableRandom(2);
            for (int trial = 0; trial < 6; trial++) {
                ModelSpec spec = trial == 0 ? CNN : mlp(r, 2 + r.nextInt(4), trial % 3 == 0 ? "sigmoid" : "tanh");
                int batch = 1 + r.nextInt(7);
                try (Model m = Model.create(spec, be, trial); PcEngine e = new PcEngine(m, Loss.MSE)) {
                    int outSize = m.activationShape(m.depth())[0];
                    float[] x = randomInput(r, batch * e.inputSize()), y = randomInput(r, batch * outSize);
                    assertSameUpdates("FIXED_PRED(1, L) vs BACKPROP, " + spec, updates(m, e, x, y, batch, Algorithm.BACKPROP, 1f, 1),
                            updates(m, e, x, y, batch, Algorithm.FIXED_PRED, 1f, m.depth()), 1e-5);
                }
            }
        });
    }

    @TestFactory List<DynamicTest> strictLowersTheEnergyAtEverySweep() {
        return onEveryBackend("STRICT lowers the energy every sweep", be -> {
            SplittableRandom r = new SplittableRandom(3);
            for (int trial = 0; trial < 6; trial++) {
                boolean ce = trial % 2 == 0;
                ModelSpec spec = mlp(r, 3 + r.nextInt(3), trial % 3 == 0 ? "relu" : "tanh");
                int batch = 2 + r.nextInt(6);
                try (Model m = Model.create(spec, be, trial); PcEngine e = new PcEngine(m, ce ? Loss.CROSS_ENTROPY : Loss.MSE)) {
                    int outSize = m.activationShape(m.depth())[0];
                    float[] x = randomInput(r, batch * e.inputSize());
                    float[] y = ce ? labels(r, batch, outSize) : randomInput(r, batch * outSize);
                    double previous = Double.POSITIVE_INFINITY;
                    // infer with n sweeps reports the energy at the start of sweep n, i.e. after n - 1 updates.
                    for (int n = 1; n <= 25; n++) {
                        double energy = e.infer(x, y, batch, Algorithm.STRICT, 0.05f, n).energy();
                        assertTrue(energy <= previous + 1e-6 * Math.abs(previous), spec + ": energy rose from " + previous + " to " + energy + " at sweep " + n);
                        previous = energy;
                    }
                    double first = e.infer(x, y, batch, Algorithm.STRICT, 0.05f, 1).energy();
                    assertTrue(previous < first, "25 sweeps should lower the energy: " + first + " -> " + previous);
                }
            }
        });
    }

    @TestFactory List<DynamicTest> fixedPredictionTracksFloat64OverManySweeps() {
        return onEveryBackend("FIXED_PRED eta=0.1 n=200 tracks float64", be -> {
            int[] sizes = {20, 16, 12, 8, 4};
            Float64Mlp ref = new Float64Mlp(sizes, 4);
            ModelSpec.Builder b = ModelSpec.builder().input(sizes[0]);
            for (int l = 0; l < ref.depth(); l++) {
                int in = sizes[l], out = sizes[l + 1];
                boolean last = l == ref.depth() - 1;
                b.block(k -> { k.linear(in, out); if (!last) k.tanh(); });
            }
            SplittableRandom r = new SplittableRandom(5);
            int batch = 8;
            float[] x = randomInput(r, batch * sizes[0]), y = randomInput(r, batch * sizes[sizes.length - 1]);
            try (Model m = Model.create(b.build(), be, 0); PcEngine e = new PcEngine(m, Loss.MSE)) {
                Map<String, float[]> params = new LinkedHashMap<>();
                for (int l = 0; l < ref.depth(); l++) {
                    params.put(l + ".0.weight", toFloat(ref.w[l]));
                    params.put(l + ".0.bias", toFloat(ref.b[l]));
                }
                m.loadParameters(params, "float64 reference");
                double[][] expected = ref.fixedPredWeightUpdates(toDouble(x), toDouble(y), batch, 0.1, 200);
                InferenceResult res = e.infer(x, y, batch, Algorithm.FIXED_PRED, 0.1f, 200);
                assertTrue(Float.isFinite(res.loss()));
                Map<String, float[]> got = m.gradientValues();
                double worst = 0, torch2pc = 0;
                double[][] stored32 = ref.fixedPredWeightUpdates(toDouble(x), toDouble(y), batch, 0.1, 200, true);
                for (int l = 0; l < ref.depth(); l++) {
                    worst = Math.max(worst, relativeError(expected[l], got.get(l + ".0.weight")));
                    torch2pc = Math.max(torch2pc, relativeError(expected[l], toFloat(stored32[l])));
                }
                System.out.printf("FIXED_PRED eta=0.1 n=200 on %s: worst relative error vs float64 %.2e; Torch2PC's formulation with float32 storage %.2e%n",
                        be.name(), worst, torch2pc);
                assertTrue(torch2pc > 10 * worst, "keeping the errors as state should beat storing v and subtracting: " + worst + " vs " + torch2pc);
                for (int l = 0; l < ref.depth(); l++) assertClose("weight update of block " + l, expected[l], got.get(l + ".0.weight"), 1e-4);
            }
        });
    }

    static float[] toFloat(double[] d) {
        float[] f = new float[d.length];
        for (int i = 0; i < d.length; i++) f[i] = (float) d[i];
        return f;
    }
}
