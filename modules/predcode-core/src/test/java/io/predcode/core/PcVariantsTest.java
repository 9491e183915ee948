package io.predcode.core;

import io.predcode.core.nn.Loss;
import io.predcode.core.nn.Model;
import io.predcode.core.nn.ModelSpec;
import io.predcode.core.optim.Adam;
import io.predcode.core.optim.Sgd;
import io.predcode.core.pc.Algorithm;
import io.predcode.core.pc.BeliefOptimizer;
import io.predcode.core.pc.Energy;
import io.predcode.core.pc.InferenceResult;
import io.predcode.core.pc.Nudging;
import io.predcode.core.pc.PcEngine;
import io.predcode.core.pc.Trainer;
import io.predcode.spi.Activation;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static io.predcode.core.PaperResultsTest.CNN;
import static io.predcode.core.PaperResultsTest.assertSameUpdates;
import static io.predcode.core.PaperResultsTest.labels;
import static io.predcode.core.PaperResultsTest.mlp;
import static io.predcode.core.PaperResultsTest.onEveryBackend;
import static io.predcode.core.PaperResultsTest.randomInput;
import static io.predcode.core.PaperResultsTest.toFloat;
import static io.predcode.core.PaperResultsTest.updates;
import static io.predcode.spi.conformance.Approx.assertClose;
import static io.predcode.spi.conformance.Approx.relativeError;
import static io.predcode.spi.conformance.Approx.toDouble;
import static org.junit.jupiter.api.Assertions.*;

/**
 * The PC variants beyond Torch2PC (per-sample energy, nudging, iPC, Z-IL): against float64
 * references, and the properties that define them, on every available backend.
 */
class PcVariantsTest {
    private static final int[] SIZES = {9, 13, 11, 7, 5};

    /** The float64 reference's MLP, loaded into an engine model. */
    private static Model referenceModel(Float64Mlp ref, io.predcode.spi.Backend be) {
        ModelSpec.Builder b = ModelSpec.builder().input(ref.sizes[0]);
        for (int l = 0; l < ref.depth(); l++) {
            int in = ref.sizes[l], out = ref.sizes[l + 1];
            boolean last = l == ref.depth() - 1;
            b.block(k -> { k.linear(in, out); if (!last) k.op(new io.predcode.core.nn.OpSpec.Act(ref.activation, 0f)); });
        }
        Model m = Model.create(b.build(), be, 0);
        m.loadParameters(parameters(ref), "float64 reference");
        return m;
    }

    private static Map<String, float[]> parameters(Float64Mlp ref) {
        Map<String, float[]> p = new LinkedHashMap<>();
        for (int l = 0; l < ref.depth(); l++) {
            p.put(l + ".0.weight", toFloat(ref.w[l]));
            p.put(l + ".0.bias", toFloat(ref.b[l]));
        }
        return p;
    }

    @TestFactory List<DynamicTest> perSamplePcAndNudgingMatchFloat64() {
        return onEveryBackend("PC on the per-sample energy, plain and nudged, against float64", be -> {
            int batch = 6;
            SplittableRandom r = new SplittableRandom(21);
            float[] x = randomInput(r, batch * SIZES[0]), y = randomInput(r, batch * SIZES[SIZES.length - 1]);
            for (double beta : new double[]{0, 0.5, -0.3}) for (int n : new int[]{2, 20}) { // 2: the error wave has not reached the lower layers yet
                Float64Mlp ref = new Float64Mlp(SIZES, 8);
                double[][] expected = ref.standardPc(toDouble(x), toDouble(y), batch, 0.1, 0.5, n, beta, 0);
                Nudging nudging = beta == 0 ? Nudging.none() : new Nudging(beta > 0 ? Nudging.Kind.POSITIVE : Nudging.Kind.NEGATIVE, (float) Math.abs(beta));
                try (Model m = referenceModel(ref, be);
                     PcEngine e = new PcEngine(m, Loss.MSE).energy(Energy.PER_SAMPLE).nudging(nudging).beliefOptimizer(BeliefOptimizer.sgd(0.5f))) {
                    e.infer(x, y, batch, Algorithm.PC, 0.1f, n);
                    Map<String, float[]> got = m.gradientValues();
                    for (int l = 0; l < ref.depth(); l++) {
                        assertClose("n " + n + ", nudging " + nudging + ", weight update of block " + l, expected[2 * l], got.get(l + ".0.weight"), 1e-4);
                        assertClose("nudging " + nudging + ", bias update of block " + l, expected[2 * l + 1], got.get(l + ".0.bias"), 1e-4);
                    }
                }
            }
        });
    }

    /**
     * SGD on the beliefs, plain and with momentum, over blocks whose f' is kept: where the backend prefers short chains
     * (CUDA; the CPU when asked), the engine folds each belief's step into the feedback GEMMs (FoldedRelaxations.relaxFolded,
     * displacement buffers written in turn, predictions from the displacement); elsewhere it relaxes as before.
     * Against float64, with the error wave partway (n 1, 2) and past the bottom, numbers of steps that leave the last
     * step in each buffer, plain and nudged; folded, in the Gram form (FoldedRelaxations.gramFeedback). (Measured: within 1.3e-5
     * of float64 here, 1.1e-5 folded before the Gram form, where the unfolded relaxation is within 1.6e-5.)
     */
    @TestFactory List<DynamicTest> foldedSgdRelaxationMatchesFloat64() {
        return andOnAFoldingCpu("PC's SGD relaxation against float64", PcVariantsTest::sgdRelaxationMatchesFloat64);
    }

    /**
     * {@code test} on every backend, and on a CPU backend asked to take a GPU's forms of work (it prefers short chains,
     * so PC and iPC fold their belief steps into the feedback GEMMs, where the CPU otherwise relaxes unfolded).
     */
    private static List<DynamicTest> andOnAFoldingCpu(String name, java.util.function.Consumer<io.predcode.spi.Backend> test) {
        List<DynamicTest> tests = new java.util.ArrayList<>(onEveryBackend(name, test));
        tests.add(DynamicTest.dynamicTest(name + " [cpu, folded]", () -> {
            try (io.predcode.spi.Backend be = foldingCpu()) { test.accept(be); }
        }));
        return tests;
    }

    /** A CPU backend that prefers short chains of ops (-Dpredcode.cpu.shortChains=true, read as it opens). */
    private static io.predcode.spi.Backend foldingCpu() {
        System.setProperty("predcode.cpu.shortChains", "true");
        try {
            io.predcode.spi.Backend be = io.predcode.spi.Backends.open("cpu", io.predcode.spi.BackendOptions.defaults());
            assertTrue(be.prefersShortChains());
            return be;
        } finally {
            System.clearProperty("predcode.cpu.shortChains");
        }
    }

    /**
     * The folded relaxations (the CPU asked to prefer short chains) against the CPU's own, where the float64 reference has
     * no cross-entropy: PC and iPC (its weights held: the last step's updates), both losses, one hidden layer and three, a
     * prime batch, plain SGD and momentum, nudged and not, n 1 to 7; the parameter updates agree to float32 rounding.
     */
    @Test void foldedAndUnfoldedRelaxationsAgree() {
        try (io.predcode.spi.Backend folded = foldingCpu(); io.predcode.spi.Backend plain = io.predcode.spi.Backends.open("cpu", io.predcode.spi.BackendOptions.defaults())) {
            assertFalse(plain.prefersShortChains());
            int batch = 13;
            SplittableRandom r = new SplittableRandom(41);
            for (Algorithm algorithm : new Algorithm[]{Algorithm.PC, Algorithm.IPC})
            for (int[] sizes : new int[][]{{7, 11, 4}, {9, 13, 11, 7, 5}})
                for (Loss loss : new Loss[]{Loss.MSE, Loss.CROSS_ENTROPY})
                    for (float momentum : new float[]{0f, 0.3f})
                        for (Nudging nudging : algorithm == Algorithm.PC ? new Nudging[]{Nudging.none(), new Nudging(Nudging.Kind.CENTRED, 0.2f)}
                                : new Nudging[]{Nudging.none(), new Nudging(Nudging.Kind.POSITIVE, 0.3f)})
                            for (int n = 1; n <= 7; n += 3) {
                                Float64Mlp ref = new Float64Mlp(sizes, 50 + n, Activation.GELU_TANH);
                                float[] x = randomInput(r, batch * sizes[0]);
                                float[] y = loss == Loss.MSE ? randomInput(r, batch * sizes[sizes.length - 1]) : labels(r, batch, sizes[sizes.length - 1]);
                                @SuppressWarnings({"unchecked", "rawtypes"}) Map<String, float[]>[] got = new Map[2];
                                io.predcode.spi.Backend[] bes = {plain, folded};
                                for (int i = 0; i < 2; i++)
                                    try (Model m = referenceModel(ref, bes[i]); PcEngine e = new PcEngine(m, loss).energy(Energy.PER_SAMPLE).nudging(nudging)
                                            .beliefOptimizer(BeliefOptimizer.sgd(momentum))) {
                                        e.infer(x, y, batch, algorithm, 0.1f, n);
                                        got[i] = m.gradientValues();
                                    }
                                String what = algorithm + ", " + (sizes.length - 2) + " hidden, " + loss + ", momentum " + momentum + ", " + nudging + ", n " + n + ": ";
                                for (String name : got[0].keySet()) assertClose(what + name, toDouble(got[0].get(name)), got[1].get(name), 1e-4);
                            }
        }
    }

    /**
     * A model whose output block ends in an activation (a linear op and a sigmoid) relaxes unfolded, as the CPU relaxes
     * it: the folded relaxations evaluate the output from the displacement as one linear op. PC, iPC and STRICT on a CPU
     * that folds against the plain CPU.
     */
    @Test void anOutputActivationRelaxesUnfolded() {
        assertFoldingAgrees(ModelSpec.builder().input(6)
                .block(k -> k.linear(6, 9).tanh())
                .block(k -> { k.linear(9, 4); k.op(new io.predcode.core.nn.OpSpec.Act(Activation.SIGMOID, 0f)); }).build());
    }

    /** A hidden block of a linear op alone (no activation) relaxes folded, as the CPU relaxes it unfolded. */
    @Test void aHiddenLinearBlockFolds() {
        assertFoldingAgrees(ModelSpec.builder().input(6)
                .block(k -> k.linear(6, 9).tanh())
                .block(k -> k.linear(9, 7))
                .block(k -> k.linear(7, 4)).build());
    }

    /** PC, iPC and STRICT on a CPU that folds against the plain CPU, on {@code spec}. */
    private static void assertFoldingAgrees(ModelSpec spec) {
        try (io.predcode.spi.Backend folded = foldingCpu(); io.predcode.spi.Backend plain = io.predcode.spi.Backends.open("cpu", io.predcode.spi.BackendOptions.defaults())) {
            SplittableRandom r = new SplittableRandom(45);
            int batch = 7;
            float[] x = randomInput(r, batch * 6), y = randomInput(r, batch * 4);
            for (Algorithm algorithm : new Algorithm[]{Algorithm.PC, Algorithm.IPC, Algorithm.STRICT}) {
                @SuppressWarnings({"unchecked", "rawtypes"}) Map<String, float[]>[] got = new Map[2];
                io.predcode.spi.Backend[] bes = {plain, folded};
                for (int i = 0; i < 2; i++)
                    try (Model m = Model.create(spec, bes[i], 3); PcEngine e = new PcEngine(m, Loss.MSE).condense(PcEngine.Condense.NEVER)
                            .beliefOptimizer(BeliefOptimizer.sgd(0.2f))) {
                        e.infer(x, y, batch, algorithm, 0.1f, 4);
                        got[i] = m.gradientValues();
                    }
                for (String name : got[0].keySet()) assertClose(algorithm + " " + name, toDouble(got[0].get(name)), got[1].get(name), 1e-5);
            }
        }
    }

    /**
     * STRICT against float64 (tanh, squared error), layer 1 relaxed plainly: on every backend, and on a CPU that folds as a
     * GPU does. Within 1e-6 (3e-7 on this machine) since STRICT forms its errors from changes ({@code Block#forwardIncrement});
     * from float32 predictions it was 5.6e-5 off where the wave has just reached block 1 (3 hidden, n 4).
     */
    @TestFactory List<DynamicTest> strictMatchesFloat64() {
        return andOnAFoldingCpu("STRICT against float64", be -> {
            int batch = 5;
            SplittableRandom r = new SplittableRandom(44);
            for (int[] sizes : new int[][]{{7, 11, 4}, {9, 13, 11, 7, 5}})
                for (int n : new int[]{1, 2, 4, 20}) {
                    Float64Mlp ref = new Float64Mlp(sizes, 90 + n);
                    float[] x = randomInput(r, batch * sizes[0]), y = randomInput(r, batch * sizes[sizes.length - 1]);
                    double[][] expected = ref.strict(toDouble(x), toDouble(y), batch, 0.1, n);
                    try (Model m = referenceModel(ref, be); PcEngine e = new PcEngine(m, Loss.MSE).condense(PcEngine.Condense.NEVER)) {
                        e.infer(x, y, batch, Algorithm.STRICT, 0.1f, n);
                        Map<String, float[]> got = m.gradientValues();
                        for (int l = 0; l < ref.depth(); l++) {
                            String what = (sizes.length - 2) + " hidden, n " + n + ", block " + l;
                            assertClose(what + " weight", expected[2 * l], got.get(l + ".0.weight"), 1e-6);
                            assertClose(what + " bias", expected[2 * l + 1], got.get(l + ".0.bias"), 1e-6);
                        }
                    }
                }
        });
    }

    /**
     * STRICT, and PC on Torch2PC's energy, folded (on a CPU that folds as a GPU does) against the CPU's own: the parameter
     * updates, the final beliefs and the errors Torch2PC returns (those of the last step's start, 0 where the wave never
     * came: n = 1 and 2 leave the 3-hidden model's lowest layers unreached), for squared error and cross-entropy. The
     * bound is the two float32 results' distance, not either's error: where the wave has just reached block 1 (3 hidden,
     * n 4) its update is small and ill-conditioned. STRICT takes one path on both (its errors from changes,
     * {@link #strictMatchesFloat64}); PC's folded relaxation is the one this compares.
     */
    @Test void foldedStrictAndTorch2pcEnergyAgreeWithUnfolded() {
        try (io.predcode.spi.Backend folded = foldingCpu(); io.predcode.spi.Backend plain = io.predcode.spi.Backends.open("cpu", io.predcode.spi.BackendOptions.defaults())) {
            int batch = 11;
            SplittableRandom r = new SplittableRandom(43);
            for (Algorithm algorithm : new Algorithm[]{Algorithm.STRICT, Algorithm.PC})
            for (int[] sizes : new int[][]{{7, 11, 4}, {9, 13, 11, 7, 5}})
                for (Loss loss : new Loss[]{Loss.MSE, Loss.CROSS_ENTROPY})
                    for (float momentum : algorithm == Algorithm.PC ? new float[]{0f, 0.3f} : new float[]{0f})
                        for (int n : new int[]{1, 2, 4, 7}) {
                            Float64Mlp ref = new Float64Mlp(sizes, 70 + n, Activation.TANH);
                            float[] x = randomInput(r, batch * sizes[0]), other = randomInput(r, batch * sizes[0]);
                            float[] y = loss == Loss.MSE ? randomInput(r, batch * sizes[sizes.length - 1]) : labels(r, batch, sizes[sizes.length - 1]);
                            @SuppressWarnings({"unchecked", "rawtypes"}) Map<String, float[]>[] got = new Map[2];
                            float[][][] states = new float[2][][];
                            io.predcode.spi.Backend[] bes = {plain, folded};
                            for (int i = 0; i < 2; i++)
                                try (Model m = referenceModel(ref, bes[i]); PcEngine e = new PcEngine(m, loss).energy(Energy.TORCH2PC).condense(PcEngine.Condense.NEVER)
                                        .beliefOptimizer(BeliefOptimizer.sgd(momentum))) {
                                    e.infer(other, y, batch, algorithm, 0.1f, 7); // leaves every error nonzero: n < 3 must clear them
                                    InferenceResult res = e.infer(x, y, batch, algorithm, 0.1f, n);
                                    got[i] = m.gradientValues();
                                    states[i] = new float[2 * sizes.length][];
                                    for (int l = 1; l < sizes.length; l++) {
                                        states[i][2 * l] = res.download(res.belief(l));
                                        states[i][2 * l + 1] = res.download(res.error(l));
                                    }
                                }
                            String what = algorithm + ", " + (sizes.length - 2) + " hidden, " + loss + ", momentum " + momentum + ", n " + n + ": ";
                            for (String name : got[0].keySet()) assertClose(what + name, toDouble(got[0].get(name)), got[1].get(name), 3e-4);
                            for (int l = 1; l < sizes.length; l++) {
                                assertClose(what + "belief " + l, toDouble(states[0][2 * l]), states[1][2 * l], 3e-4);
                                assertClose(what + "error " + l, toDouble(states[0][2 * l + 1]), states[1][2 * l + 1], 3e-4);
                            }
                        }
        }
    }

    private static void sgdRelaxationMatchesFloat64(io.predcode.spi.Backend be) {
        int batch = 6;
        SplittableRandom r = new SplittableRandom(31);
        float[] x = randomInput(r, batch * SIZES[0]), y = randomInput(r, batch * SIZES[SIZES.length - 1]);
        for (double momentum : new double[]{0, 0.5}) for (double beta : new double[]{0, 0.5, -0.3}) for (int n : new int[]{1, 2, 5, 6, 20}) {
            Float64Mlp ref = new Float64Mlp(SIZES, 12, Activation.GELU_TANH);
            double[][] expected = ref.standardPc(toDouble(x), toDouble(y), batch, 0.1, momentum, n, beta, 0);
            Nudging nudging = beta == 0 ? Nudging.none() : new Nudging(beta > 0 ? Nudging.Kind.POSITIVE : Nudging.Kind.NEGATIVE, (float) Math.abs(beta));
            try (Model m = referenceModel(ref, be); PcEngine e = new PcEngine(m, Loss.MSE).energy(Energy.PER_SAMPLE).nudging(nudging)
                    .beliefOptimizer(BeliefOptimizer.sgd((float) momentum))) {
                e.infer(x, y, batch, Algorithm.PC, 0.1f, n);
                Map<String, float[]> got = m.gradientValues();
                String what = "momentum " + momentum + ", n " + n + ", nudging " + nudging;
                for (int l = 0; l < ref.depth(); l++) {
                    assertClose(what + ", weight update of block " + l, expected[2 * l], got.get(l + ".0.weight"), 1e-4);
                    assertClose(what + ", bias update of block " + l, expected[2 * l + 1], got.get(l + ".0.bias"), 1e-4);
                }
            }
        }
    }

    /**
     * GELU's f' is kept by the forward and multiplied in by every backward pass (Block.Tape): PC's
     * steps, FIXED_PRED's sweeps over one feedforward tape, backprop, against float64 with GELU itself.
     */
    @TestFactory List<DynamicTest> keptGeluDerivativesMatchFloat64() {
        return onEveryBackend("PC, FIXED_PRED and BP with GELU against float64", be -> {
            int batch = 6;
            SplittableRandom r = new SplittableRandom(24);
            float[] x = randomInput(r, batch * SIZES[0]), y = randomInput(r, batch * SIZES[SIZES.length - 1]);
            for (Activation f : new Activation[]{Activation.GELU, Activation.GELU_TANH}) {
                Float64Mlp ref = new Float64Mlp(SIZES, 11, f);
                try (Model m = referenceModel(ref, be); PcEngine e = new PcEngine(m, Loss.MSE)) {
                    e.infer(x, y, batch, Algorithm.FIXED_PRED, 0.1f, 6);
                    double[][] fixed = ref.fixedPredWeightUpdates(toDouble(x), toDouble(y), batch, 0.1, 6);
                    for (int l = 0; l < ref.depth(); l++) assertClose(f + " FIXED_PRED, weight update of block " + l, fixed[l], m.gradientValues().get(l + ".0.weight"), 1e-4);
                    // FIXED_PRED with eta = 1 and n = L is backprop; the reference's own gradient, from the same function.
                    e.infer(x, y, batch, Algorithm.BACKPROP, 0.1f, 1);
                    double[][] bp = ref.fixedPredWeightUpdates(toDouble(x), toDouble(y), batch, 1, ref.depth());
                    for (int l = 0; l < ref.depth(); l++) assertClose(f + " BACKPROP, weight gradient of block " + l, bp[l], m.gradientValues().get(l + ".0.weight"), 1e-4);
                    e.energy(Energy.PER_SAMPLE).beliefOptimizer(BeliefOptimizer.sgd(0.5f));
                    for (int n : new int[]{2, 7}) {
                        e.infer(x, y, batch, Algorithm.PC, 0.1f, n);
                        double[][] pc = ref.standardPc(toDouble(x), toDouble(y), batch, 0.1, 0.5, n, 0, 0);
                        for (int l = 0; l < ref.depth(); l++) {
                            assertClose(f + " PC n " + n + ", weight update of block " + l, pc[2 * l], m.gradientValues().get(l + ".0.weight"), 1e-4);
                            assertClose(f + " PC n " + n + ", bias update of block " + l, pc[2 * l + 1], m.gradientValues().get(l + ".0.bias"), 1e-4);
                        }
                    }
                }
            }
        });
    }

    @TestFactory List<DynamicTest> ipcMatchesFloat64() {
        return onEveryBackend("iPC's parameters after a step against float64", be -> {
            int batch = 5;
            SplittableRandom r = new SplittableRandom(22);
            float[] x = randomInput(r, batch * SIZES[0]), y = randomInput(r, batch * SIZES[SIZES.length - 1]);
            Float64Mlp ref = new Float64Mlp(SIZES, 9);
            try (Model m = referenceModel(ref, be);
                 PcEngine e = new PcEngine(m, Loss.MSE).energy(Energy.PER_SAMPLE).beliefOptimizer(BeliefOptimizer.sgd(0.25f));
                 Sgd sgd = new Sgd(m, 0.05f, 0f, 0f)) {
                Trainer t = new Trainer(e, sgd, Algorithm.IPC, 0.2f, 8);
                for (int step = 0; step < 3; step++) {
                    ref.standardPc(toDouble(x), toDouble(y), batch, 0.2, 0.25, 8, 0, 0.05);
                    t.step(x, y, batch);
                }
                Map<String, float[]> got = m.parameterValues(), expected = parameters(ref);
                assertEquals(24, sgd.steps(), "iPC takes an optimizer step at each of its 8 inference steps");
                for (String k : expected.keySet()) {
                    double[] exact = new double[expected.get(k).length];
                    // The reference keeps float64 parameters; compare against them, not their float32 rounding.
                    int l = k.charAt(0) - '0';
                    System.arraycopy(k.endsWith("weight") ? ref.w[l] : ref.b[l], 0, exact, 0, exact.length);
                    assertClose("iPC " + k, exact, got.get(k), 1e-5);
                }
            }
        });
    }

    /**
     * iPC where it relaxes unfolded (Adam on the beliefs; Torch2PC's energy) on a backend that prefers short chains, whose
     * steps form block 0's gradients in their first round and step the optimizer beside the belief updates: its parameters
     * after three checked training steps against the plain CPU's, which forms them one after another.
     */
    @TestFactory List<DynamicTest> ipcWithItsOptimizerBesideTheBeliefsTrainsAsTheCpu() {
        record Setting(BeliefOptimizer beliefs, Energy energy, Loss loss, int n) {}
        List<Setting> settings = List.of(new Setting(BeliefOptimizer.adam(), Energy.PER_SAMPLE, Loss.MSE, 5), new Setting(BeliefOptimizer.adam(), Energy.PER_SAMPLE, Loss.CROSS_ENTROPY, 2),
                new Setting(BeliefOptimizer.sgd(0.25f), Energy.TORCH2PC, Loss.MSE, 4), new Setting(BeliefOptimizer.sgd(0f), Energy.TORCH2PC, Loss.CROSS_ENTROPY, 1));
        int[] sizes = {9, 13, 11, 7, 5};
        int batch = 11;
        java.util.function.BiFunction<io.predcode.spi.Backend, Setting, Map<String, float[]>> train = (be, st) -> {
            SplittableRandom r = new SplittableRandom(43);
            Float64Mlp ref = new Float64Mlp(sizes, 60, Activation.GELU_TANH);
            try (Model m = referenceModel(ref, be); PcEngine e = new PcEngine(m, st.loss()).energy(st.energy()).beliefOptimizer(st.beliefs());
                 Adam adam = new Adam(m, 0.01f)) {
                Trainer t = new Trainer(e, adam, Algorithm.IPC, 0.05f, st.n());
                for (int step = 0; step < 3; step++) {
                    float[] x = randomInput(r, batch * sizes[0]);
                    float[] y = st.loss() == Loss.MSE ? randomInput(r, batch * sizes[sizes.length - 1]) : labels(r, batch, sizes[sizes.length - 1]);
                    t.step(x, y, batch);
                }
                return m.parameterValues();
            }
        };
        List<Map<String, float[]>> expected = new java.util.ArrayList<>();
        try (io.predcode.spi.Backend plain = io.predcode.spi.Backends.open("cpu", io.predcode.spi.BackendOptions.defaults())) {
            for (Setting st : settings) expected.add(train.apply(plain, st));
        }
        return andOnAFoldingCpu("iPC unfolded, its optimizer beside the beliefs, against the CPU", be -> {
            for (int i = 0; i < settings.size(); i++) {
                Map<String, float[]> got = train.apply(be, settings.get(i));
                for (var k : expected.get(i).entrySet()) assertClose(settings.get(i) + " " + k.getKey(), toDouble(k.getValue()), got.get(k.getKey()), 1e-4);
            }
        });
    }

    /** iPC with GELU blocks, which fold their belief steps where the backend prefers short chains: its parameters after SGD steps against float64. */
    @TestFactory List<DynamicTest> foldedIpcMatchesFloat64() {
        return andOnAFoldingCpu("iPC with GELU against float64", be -> {
            int batch = 7;
            SplittableRandom r = new SplittableRandom(25);
            float[] x = randomInput(r, batch * SIZES[0]), y = randomInput(r, batch * SIZES[SIZES.length - 1]);
            for (float momentum : new float[]{0f, 0.25f}) {
                Float64Mlp ref = new Float64Mlp(SIZES, 10, Activation.GELU_TANH);
                try (Model m = referenceModel(ref, be);
                     PcEngine e = new PcEngine(m, Loss.MSE).energy(Energy.PER_SAMPLE).beliefOptimizer(BeliefOptimizer.sgd(momentum));
                     Sgd sgd = new Sgd(m, 0.05f, 0f, 0f)) {
                    Trainer t = new Trainer(e, sgd, Algorithm.IPC, 0.2f, 5);
                    for (int step = 0; step < 2; step++) {
                        ref.standardPc(toDouble(x), toDouble(y), batch, 0.2, momentum, 5, 0, 0.05);
                        t.step(x, y, batch);
                    }
                    Map<String, float[]> got = m.parameterValues();
                    for (String k : parameters(ref).keySet()) {
                        int l = k.charAt(0) - '0';
                        double[] exact = (k.endsWith("weight") ? ref.w[l] : ref.b[l]).clone();
                        assertClose("iPC momentum " + momentum + " " + k, exact, got.get(k), 1e-5);
                    }
                }
            }
        });
    }

    /** With the weights held (iPC's inference alone, a learning rate of 0), iPC relaxes exactly as PC. */
    @TestFactory List<DynamicTest> ipcWithHeldWeightsRelaxesAsPc() {
        return onEveryBackend("iPC with held weights = PC", be -> {
            SplittableRandom r = new SplittableRandom(23);
            for (ModelSpec spec : new ModelSpec[]{CNN, mlp(r, 3, "relu")}) {
                int batch = 4;
                for (Energy energy : Energy.values()) {
                    try (Model m = Model.create(spec, be, 2); PcEngine e = new PcEngine(m, Loss.CROSS_ENTROPY).energy(energy).beliefOptimizer(BeliefOptimizer.sgd(0.3f))) {
                        float[] x = randomInput(r, batch * e.inputSize()), y = labels(r, batch, m.activationShape(m.depth())[0]);
                        List<float[]> pc = beliefs(e.infer(x, y, batch, Algorithm.PC, 0.05f, 6), m.depth());
                        List<float[]> ipc = beliefs(e.infer(x, y, batch, Algorithm.IPC, 0.05f, 6), m.depth());
                        for (int l = 1; l < m.depth(); l++) assertClose(energy + ": belief " + l, toDouble(pc.get(l)), ipc.get(l), 1e-6);
                    }
                }
            }
        });
    }

    private static List<float[]> beliefs(InferenceResult res, int depth) {
        return java.util.stream.IntStream.rangeClosed(0, depth).mapToObj(l -> res.download(res.belief(l))).toList();
    }

    @TestFactory List<DynamicTest> zilEqualsBackprop() {
        return onEveryBackend("Z-IL equals BACKPROP", be -> {
            SplittableRandom r = new SplittableRandom(24);
            for (int trial = 0; trial < 6; trial++) {
                ModelSpec spec = trial == 0 ? CNN : mlp(r, 2 + r.nextInt(4), trial % 2 == 0 ? "relu" : "tanh");
                int batch = 1 + r.nextInt(7);
                Loss loss = trial % 3 == 2 ? Loss.MSE : Loss.CROSS_ENTROPY;
                try (Model m = Model.create(spec, be, trial); PcEngine e = new PcEngine(m, loss)) {
                    float[] x = randomInput(r, batch * e.inputSize());
                    float[] y = loss == Loss.MSE ? randomInput(r, batch * e.targetSize()) : labels(r, batch, m.activationShape(m.depth())[0]);
                    assertSameUpdates("Z-IL vs BACKPROP, " + spec, updates(m, e, x, y, batch, Algorithm.BACKPROP, 0.1f, 1),
                            updates(m, e, x, y, batch, Algorithm.ZIL, 0.1f, 1), 1e-5);
                }
            }
        });
    }

    /** Z-IL's schedule matters: STRICT at eta 1 with the updates at the end, as Torch2PC takes them, is not backprop. */
    @TestFactory List<DynamicTest> strictAtEtaOneIsNotZil() {
        return onEveryBackend("STRICT eta=1 n=L differs from Z-IL", be -> {
            SplittableRandom r = new SplittableRandom(25);
            try (Model m = Model.create(mlp(r, 4, "tanh"), be, 1); PcEngine e = new PcEngine(m, Loss.CROSS_ENTROPY).condense(PcEngine.Condense.NEVER)) {
                int batch = 3;
                float[] x = randomInput(r, batch * e.inputSize()), y = labels(r, batch, m.activationShape(m.depth())[0]);
                Map<String, float[]> bp = updates(m, e, x, y, batch, Algorithm.BACKPROP, 1f, 4), strict = updates(m, e, x, y, batch, Algorithm.STRICT, 1f, 4);
                double worst = bp.keySet().stream().mapToDouble(k -> relativeError(toDouble(bp.get(k)), strict.get(k))).max().orElseThrow();
                assertTrue(worst > 1e-3, "STRICT's end-of-relaxation updates should differ from backprop's, worst relative difference " + worst);
            }
        });
    }

    /** Positive nudging with beta 1 on mse pulls the output to the target itself: standard PC with the output clamped. */
    @TestFactory List<DynamicTest> positiveNudgingWithBetaOneIsClampedPc() {
        return onEveryBackend("positive nudging beta=1 = PC on mse", be -> {
            SplittableRandom r = new SplittableRandom(26);
            try (Model m = Model.create(mlp(r, 4, "tanh"), be, 1); PcEngine e = new PcEngine(m, Loss.MSE).energy(Energy.PER_SAMPLE).beliefOptimizer(BeliefOptimizer.sgd(0.2f))) {
                int batch = 5;
                float[] x = randomInput(r, batch * e.inputSize()), y = randomInput(r, batch * e.targetSize());
                Map<String, float[]> plain = updates(m, e, x, y, batch, Algorithm.PC, 0.1f, 10);
                Map<String, float[]> nudged = updates(m, e.nudging(new Nudging(Nudging.Kind.POSITIVE, 1f)), x, y, batch, Algorithm.PC, 0.1f, 10);
                assertSameUpdates("nudged beta=1 vs clamped", plain, nudged, 1e-5);
            }
        });
    }

    /**
     * Relaxed to equilibrium, nudged PC's updates over beta tend to a limit as beta shrinks (not
     * backprop's gradient: PC's equilibrium spreads the output error over the layers). One-sided
     * nudging misses the limit by order beta, centred nudging by order beta^2 (Scellier et al.).
     */
    @TestFactory List<DynamicTest> centredNudgingCancelsTheFirstOrderBias() {
        return onEveryBackend("centred nudging cancels the first-order bias", be -> {
            SplittableRandom r = new SplittableRandom(27);
            try (Model m = Model.create(mlp(r, 3, "tanh"), be, 4); PcEngine e = new PcEngine(m, Loss.CROSS_ENTROPY).energy(Energy.PER_SAMPLE)) {
                int batch = 4;
                float[] x = randomInput(r, batch * e.inputSize()), y = labels(r, batch, m.activationShape(m.depth())[0]);
                Map<String, float[]> limit = updates(m, e.nudging(new Nudging(Nudging.Kind.CENTRED, 0.01f)), x, y, batch, Algorithm.PC, 0.2f, 300);
                double positive = worst(limit, updates(m, e.nudging(new Nudging(Nudging.Kind.POSITIVE, 0.2f)), x, y, batch, Algorithm.PC, 0.2f, 300));
                double centred = worst(limit, updates(m, e.nudging(new Nudging(Nudging.Kind.CENTRED, 0.2f)), x, y, batch, Algorithm.PC, 0.2f, 300));
                System.out.printf("nudging beta 0.2 on %s: relative distance to the small-beta limit, positive %.2e, centred %.2e%n", be.name(), positive, centred);
                assertTrue(centred < positive / 5, "centred nudging should be much closer to the limit than positive nudging: " + centred + " vs " + positive);
            }
        });
    }

    private static double worst(Map<String, float[]> ref, Map<String, float[]> got) {
        return ref.keySet().stream().mapToDouble(k -> relativeError(toDouble(ref.get(k)), got.get(k))).max().orElseThrow();
    }

    /** Small steps lower every variant's energy over the relaxation. */
    @TestFactory List<DynamicTest> everyVariantLowersItsEnergy() {
        return onEveryBackend("PC variants lower their energy", be -> {
            SplittableRandom r = new SplittableRandom(28);
            ModelSpec spec = mlp(r, 4, "relu");
            int batch = 8;
            record Variant(Algorithm a, Energy energy, Nudging nudging) {}
            for (Variant v : new Variant[]{new Variant(Algorithm.PC, Energy.PER_SAMPLE, Nudging.none()), new Variant(Algorithm.IPC, Energy.PER_SAMPLE, Nudging.none()),
                    new Variant(Algorithm.PC, Energy.PER_SAMPLE, new Nudging(Nudging.Kind.POSITIVE, 0.5f)), new Variant(Algorithm.IPC, Energy.TORCH2PC, Nudging.none())}) {
                try (Model m = Model.create(spec, be, 5); PcEngine e = new PcEngine(m, Loss.CROSS_ENTROPY).energy(v.energy()).nudging(v.nudging())) {
                    float[] x = randomInput(r, batch * e.inputSize()), y = labels(r, batch, m.activationShape(m.depth())[0]);
                    double before = e.infer(x, y, batch, v.a(), 0.05f, 1).energy(), after = e.infer(x, y, batch, v.a(), 0.05f, 30).energy();
                    assertTrue(after < before, v + ": energy " + before + " at the first step, " + after + " after 29 more");
                }
            }
        });
    }

    /** Per-layer energies are a sample's mean share of the energy relaxed, and their sum is that energy over the batch. */
    @TestFactory List<DynamicTest> layerEnergiesAddUpToTheEnergy() {
        return onEveryBackend("layer energies add up", be -> {
            SplittableRandom r = new SplittableRandom(29);
            try (Model m = Model.create(mlp(r, 4, "tanh"), be, 6)) {
                int batch = 7;
                for (Loss loss : Loss.values())
                    try (PcEngine e = new PcEngine(m, loss).energy(Energy.PER_SAMPLE)) {
                        float[] x = randomInput(r, batch * e.inputSize());
                        float[] y = loss == Loss.MSE ? randomInput(r, batch * e.targetSize()) : labels(r, batch, m.activationShape(m.depth())[0]);
                        InferenceResult res = e.infer(x, y, batch, Algorithm.PC, 0.1f, 5);
                        double[] layers = res.layerEnergies();
                        assertEquals(0.0, layers[0]);
                        for (int l = 1; l <= m.depth(); l++) assertTrue(layers[l] > 0, loss + ": layer " + l + " energy " + layers[l]);
                        assertEquals(res.energy(), java.util.Arrays.stream(layers).sum() * batch, 1e-4 * res.energy(), loss.id());
                    }
            }
        });
    }

    /**
     * A training step that checks its energy brings back the terms of the energy it relaxed, for FIXED_PRED, STRICT and PC on
     * either energy with SGD (folded on a GPU) or Adam on the beliefs: a GPU writes them beside the learning step
     * ({@code FoldedRelaxations.relaxFolded}, {@code EngineCore.learningBeside}), the CPU after it; both give what the
     * relaxation's own errors give.
     */
    @TestFactory List<DynamicTest> aCheckedStepReportsTheEnergyItRelaxed() {
        return onEveryBackend("a checked step's energies", be -> {
            SplittableRandom r = new SplittableRandom(33);
            try (Model m = Model.create(mlp(r, 4, "tanh"), be, 9)) {
                int batch = 6;
                for (Algorithm a : new Algorithm[]{Algorithm.FIXED_PRED, Algorithm.STRICT, Algorithm.PC, Algorithm.IPC})
                    for (Energy energy : Energy.values()) for (BeliefOptimizer beliefs : new BeliefOptimizer[]{BeliefOptimizer.sgd(0.5f), BeliefOptimizer.adam()})
                        for (Loss loss : Loss.values()) {
                            if (!a.standard() && (energy != Energy.TORCH2PC || beliefs.isAdam())) continue; // STRICT and FIXED_PRED have one form
                            String what = a + ", " + energy + ", " + beliefs + ", " + loss;
                            // iPC's weights step within the relaxation: at a rate too small to move a bit, its energies are those of
                            // infer's relaxation, which takes no weight steps. Adam's steps are recorded with the step, SGD's are not.
                            boolean ipc = a == Algorithm.IPC;
                            try (PcEngine e = new PcEngine(m, loss).energy(energy).beliefOptimizer(beliefs);
                                 io.predcode.core.optim.Optimizer sgd = ipc && beliefs.isAdam() ? new io.predcode.core.optim.Adam(m, 1e-12f)
                                         : new io.predcode.core.optim.Sgd(m, ipc ? 1e-12f : 1e-3f, 0f, 0f)) {
                                float[] x = randomInput(r, batch * e.inputSize());
                                float[] y = loss == Loss.MSE ? randomInput(r, batch * e.targetSize()) : labels(r, batch, m.activationShape(m.depth())[0]);
                                double[] expected = e.infer(x, y, batch, a, 0.1f, 5).layerEnergies();
                                // Another batch's terms in the workspace first: a term the step failed to write would show them.
                                float[] other = randomInput(r, batch * e.inputSize());
                                e.infer(other, y, batch, a, 0.1f, 5).layerEnergies();
                                double[] got = new Trainer(e, sgd, a, 0.1f, 5).recordEnergies(true).step(x, y, batch).energies();
                                for (int l = 1; l <= m.depth(); l++) {
                                    assertTrue(expected[l] > 0, what + ": layer " + l);
                                    assertEquals(expected[l], got[l], 1e-5 * expected[l], what + ": layer " + l + " " + java.util.Arrays.toString(got));
                                }
                            }
                        }
            }
        });
    }

    @TestFactory List<DynamicTest> generativeInferenceMatchesFloat64() {
        return onEveryBackend("generative inference against float64", be -> {
            int batch = 4;
            SplittableRandom r = new SplittableRandom(30);
            float[] x0 = randomInput(r, batch * SIZES[0]), y = randomInput(r, batch * SIZES[SIZES.length - 1]);
            Float64Mlp ref = new Float64Mlp(SIZES, 10);
            double[] expected = ref.generate(toDouble(x0), toDouble(y), batch, 0.05, 40);
            try (Model m = referenceModel(ref, be); PcEngine e = new PcEngine(m, Loss.MSE)) {
                PcEngine.Generation g = e.generate(x0, y, batch, 0.05f, 40);
                assertClose("inferred input", expected, g.input(), 1e-4);
                assertTrue(g.finalEnergy() < g.startEnergy(), g.startEnergy() + " -> " + g.finalEnergy());
                assertArrayEquals(x0, e.generate(x0, y, batch, 0.05f, 40, 0).input(), "layer 0 clamped: the input stays");
                // Heavy-ball momentum: the same descent with each layer's velocity; 0 is plain descent, bit for bit.
                assertClose("inferred input, momentum 0.9", ref.generate(toDouble(x0), toDouble(y), batch, 0.05, 0.9, 40),
                        e.generate(x0, y, batch, 0.05f, 0.9f, 40, 0, new int[0]).input(), 1e-4);
                assertArrayEquals(g.input(), e.generate(x0, y, batch, 0.05f, 0f, 40, 0, new int[0]).input());
                assertArrayEquals(x0, e.generate(x0, y, batch, 0.05f, 0.9f, 40, 0, new int[]{0}).input(), "layer 0 clamped: the input stays");
                for (float bad : new float[]{-0.1f, 1f, Float.NaN})
                    assertThrows(IllegalArgumentException.class, () -> e.generate(x0, y, batch, 0.05f, bad, 40, 0, new int[0]));
            }
        });
    }

    /** Held at a class, a classifier's inputs relax into inputs it takes as that class. */
    @TestFactory List<DynamicTest> generatedInputsAreTakenAsTheirClass() {
        return onEveryBackend("generated inputs classify as the held class", be -> {
            SplittableRandom r = new SplittableRandom(31);
            try (Model m = Model.create(mlp(r, 3, "tanh"), be, 7); PcEngine e = new PcEngine(m, Loss.CROSS_ENTROPY)) {
                int classes = m.activationShape(m.depth())[0], batch = 3 * classes;
                float[] x0 = randomInput(r, batch * e.inputSize()), y = new float[batch];
                for (int i = 0; i < batch; i++) y[i] = i % classes;
                PcEngine.Generation g = e.generate(x0, y, batch, 0.1f, 300);
                int hits = 0;
                for (int i = 0; i < batch; i++) {
                    int best = 0;
                    for (int c = 1; c < classes; c++) if (g.output()[i * classes + c] > g.output()[i * classes + best]) best = c;
                    if (best == y[i]) hits++;
                }
                assertEquals(batch, hits, "inputs classified as the class held at the output; energy " + g.startEnergy() + " -> " + g.finalEnergy());
            }
        });
    }

    /**
     * A generation that may stop early stops where its energy settled, and what it returns is the fixed-length relaxation
     * of the steps it took, bit for bit: the checks read the energy and change nothing. A tolerance it never meets
     * takes every step; a relaxation that raises the energy (eta too large) stops at its first check after the start.
     */
    @TestFactory List<DynamicTest> generationStopsWhereItSettled() {
        return onEveryBackend("generation stops where its energy settled", be -> {
            SplittableRandom r = new SplittableRandom(33);
            try (Model m = Model.create(mlp(r, 3, "tanh"), be, 9); PcEngine e = new PcEngine(m, Loss.CROSS_ENTROPY)) {
                int classes = m.activationShape(m.depth())[0], batch = 2 * classes;
                float[] x0 = randomInput(r, batch * e.inputSize()), y = new float[batch];
                for (int i = 0; i < batch; i++) y[i] = i % classes;
                int max = 4000, every = PcEngine.GENERATION_CHECK_EVERY;
                PcEngine.Generation settled = e.generate(x0, y, batch, 0.1f, max, 1e-3, new int[0]);
                assertTrue(settled.steps() < max && settled.steps() % every == 1, "stopped after a check's step: " + settled.steps());
                PcEngine.Generation fixed = e.generate(x0, y, batch, 0.1f, settled.steps());
                assertEquals(settled.steps(), fixed.steps());
                assertArrayEquals(fixed.input(), settled.input(), "the same inputs as " + settled.steps() + " steps without checks");
                assertEquals(fixed.finalEnergy(), settled.finalEnergy());
                assertEquals(fixed.startEnergy(), settled.startEnergy());
                assertTrue(settled.finalEnergy() < settled.startEnergy(), settled.startEnergy() + " -> " + settled.finalEnergy());
                // Going on lowers the energy by less than the tolerance allowed over a check's steps.
                PcEngine.Generation further = e.generate(x0, y, batch, 0.1f, settled.steps() + every);
                assertTrue(settled.finalEnergy() - further.finalEnergy() < 1e-3 * settled.finalEnergy() * 2,
                        settled.finalEnergy() + " -> " + further.finalEnergy() + " in " + every + " steps more");
                assertEquals(300, e.generate(x0, y, batch, 0.1f, 300, 1e-12, new int[0]).steps(), "a tolerance never met takes every step");
                assertEquals(every + 1, e.generate(x0, y, batch, 1e6f, max, 1e-3, new int[0]).steps(), "a relaxation that raises its energy stops");
                assertThrows(IllegalArgumentException.class, () -> e.generate(x0, y, batch, 0.1f, max, -1, new int[0]));
                assertThrows(IllegalArgumentException.class, () -> e.generate(x0, y, batch, 0.1f, max, Double.NaN, new int[0]));
            }
        });
    }

    /**
     * With momentum the energy may rise between two checks and fall below its lowest after: a generation with a tolerance
     * rides out such a rise and stops where the energy has stayed above its lowest (less the tolerance) for two checks
     * in a row at momentum 0.95 ({@code settlingChecks}), as the energies of fixed-length relaxations say it should.
     */
    @TestFactory List<DynamicTest> generationWithMomentumRidesOutARise() {
        return onEveryBackend("generation with momentum rides out a rise", be -> {
            SplittableRandom r = new SplittableRandom(38); // a ReLU MLP whose relaxation at momentum 0.95 rises at check 13 and falls past it at 14
            try (Model m = Model.create(mlp(r, 3, "relu"), be, 10); PcEngine e = new PcEngine(m, Loss.CROSS_ENTROPY)) {
                int classes = m.activationShape(m.depth())[0], batch = 2 * classes, every = PcEngine.GENERATION_CHECK_EVERY, max = 60 * every;
                float[] x0 = randomInput(r, batch * e.inputSize()), y = new float[batch];
                for (int i = 0; i < batch; i++) y[i] = i % classes;
                float eta = 1f, momentum = 0.95f;
                double tolerance = 1e-3;
                assertEquals(2, PcEngine.settlingChecks(momentum));
                assertEquals(2, PcEngine.settlingChecks(0.9f));
                assertEquals(3, PcEngine.settlingChecks(0.99f));
                assertEquals(1, PcEngine.settlingChecks(0f));
                PcEngine.Generation g = e.generate(x0, y, batch, eta, momentum, max, tolerance, new int[0]);
                assertTrue(g.steps() < max && g.steps() % every == 1, "stopped after a check's step: " + g.steps());
                // The energy at each check up to the stop: a relaxation of that many steps ends with it.
                int checks = g.steps() / every;
                double[] energy = new double[checks + 1];
                energy[0] = g.startEnergy();
                for (int k = 1; k <= checks; k++) energy[k] = e.generate(x0, y, batch, eta, momentum, k * every, 0, new int[0]).finalEnergy();
                String trajectory = java.util.Arrays.toString(energy);
                int rise = 0; // a check whose energy is above the one before, which a later check goes below
                for (int k = 1; k <= checks && rise == 0; k++) {
                    double before = energy[k - 1];
                    if (energy[k] > before && java.util.Arrays.stream(energy, k + 1, checks + 1).anyMatch(v -> v < before)) rise = k;
                }
                assertTrue(rise > 0, "the relaxation comes back from a rise before it stops: " + trajectory);
                // The rule on those energies: a new lowest (by the tolerance) or a stalled check; the second stalled in a row stops.
                double lowest = energy[0];
                int stalled = 0, stop = 0;
                for (int k = 1; k <= checks && stop == 0; k++)
                    if (lowest - energy[k] > tolerance * Math.abs(lowest)) { lowest = energy[k]; stalled = 0; }
                    else if (++stalled == 2) stop = k;
                assertEquals(checks, stop, "the check it stopped at; " + trajectory);
            }
        });
    }

    /** FIXED_PRED, EXACT and Z-IL report energies too: the output's loss and each hidden layer's ||eps||^2 / 2 per sample, from their own errors. */
    @TestFactory List<DynamicTest> everyAlgorithmWithErrorsHasLayerEnergies() {
        return onEveryBackend("layer energies of FIXED_PRED, EXACT, Z-IL", be -> {
            SplittableRandom r = new SplittableRandom(32);
            try (Model m = Model.create(mlp(r, 4, "tanh"), be, 8); PcEngine e = new PcEngine(m, Loss.CROSS_ENTROPY)) {
                int batch = 5;
                float[] x = randomInput(r, batch * e.inputSize()), y = labels(r, batch, m.activationShape(m.depth())[0]);
                for (Algorithm a : new Algorithm[]{Algorithm.FIXED_PRED, Algorithm.EXACT, Algorithm.ZIL}) {
                    InferenceResult res = e.infer(x, y, batch, a, 0.1f, 3);
                    double[] layers = res.layerEnergies();
                    for (int l = 1; l < m.depth(); l++) {
                        double ss = 0;
                        for (float v : res.download(res.error(l))) ss += (double) v * v;
                        assertEquals(0.5 * ss / batch, layers[l], 1e-5 * (0.5 * ss / batch) + 1e-12, a + " layer " + l);
                    }
                    assertTrue(layers[m.depth()] > 0, a + ": the output term");
                }
                assertThrows(IllegalStateException.class, () -> e.infer(x, y, batch, Algorithm.BACKPROP, 0.1f, 1).layerEnergies());
            }
        });
    }

    @Test void misuseIsRefusedWithReasons() {
        try (io.predcode.spi.Backend be = io.predcode.spi.Backends.open("cpu", io.predcode.spi.BackendOptions.defaults());
             Model m = Model.create(mlp(new SplittableRandom(1), 3, "relu"), be, 1); PcEngine e = new PcEngine(m, Loss.CROSS_ENTROPY);
             Sgd sgd = new Sgd(m, 0.1f, 0f, 0f)) {
            float[] x = new float[2 * e.inputSize()], y = {0, 1};
            IllegalArgumentException torch2pc = assertThrows(IllegalArgumentException.class,
                    () -> e.nudging(new Nudging(Nudging.Kind.POSITIVE, 0.1f)).infer(x, y, 2, Algorithm.PC, 0.1f, 3));
            assertTrue(torch2pc.getMessage().contains("per-sample"), torch2pc.getMessage());
            e.energy(Energy.PER_SAMPLE).nudging(new Nudging(Nudging.Kind.CENTRED, 0.1f));
            assertThrows(IllegalArgumentException.class, () -> e.infer(x, y, 2, Algorithm.IPC, 0.1f, 3));
            assertThrows(IllegalArgumentException.class, () -> new Trainer(e, sgd, Algorithm.IPC, 0.1f, 3).monitorEvery(5));
            assertThrows(IllegalArgumentException.class, () -> Nudging.parse("positive"));
            assertThrows(IllegalArgumentException.class, () -> Nudging.parse("sideways:0.1"));
            assertThrows(IllegalArgumentException.class, () -> Nudging.parse("negative:-1"));
            assertEquals(new Nudging(Nudging.Kind.CENTRED, 0.25f), Nudging.parse("centered:0.25"));
            assertEquals(Energy.PER_SAMPLE, Energy.parse("per-sample"));
            assertEquals(Algorithm.ZIL, Algorithm.parse("Z-IL"));
        }
    }
}
