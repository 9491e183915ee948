package io.predcode.core;

import io.predcode.core.nn.Loss;
import io.predcode.core.nn.Model;
import io.predcode.core.nn.ModelSpec;
import io.predcode.core.nn.OpSpec;
import io.predcode.core.pc.Algorithm;
import io.predcode.core.pc.BeliefOptimizer;
import io.predcode.core.pc.Energy;
import io.predcode.core.pc.PcEngine;
import io.predcode.spi.Activation;
import io.predcode.spi.Backend;
import io.predcode.spi.BackendOptions;
import io.predcode.spi.BackendProvider;
import io.predcode.spi.Backends;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Random small models under random settings: MLPs (depth 1-4, every activation, hidden blocks with and without one,
 * the output with and without one) and CNNs (one or two convs of kernel 2 or 3, stride 1 or 2, padding 0 or 1, with
 * or without an activation and max or average pooling, then one or two linear blocks); every algorithm, both
 * energies, every belief optimizer, layer 1 condensed or not, n, batch and loss. A step's parameter updates on a CPU
 * that folds as a GPU does ({@code -Dpredcode.cpu.shortChains=true}, which also keeps every activation's f') and on
 * every other available backend agree with the plain CPU's. The folded relaxations take only some block shapes; this
 * found two they took and could not run (an output activation, a hidden linear op alone).
 */
class RandomModelsAgreeTest {
    private static final Activation[] ACTIVATIONS = {Activation.TANH, Activation.RELU, Activation.LEAKY_RELU, Activation.SIGMOID, Activation.GELU,
            Activation.GELU_TANH};

    @Test void randomModelsAgreeAcrossBackendsAndFolding() {
        List<Backend> others = new ArrayList<>();
        try (Backend plain = Backends.open("cpu", BackendOptions.defaults())) {
            System.setProperty("predcode.cpu.shortChains", "true");
            try {
                others.add(Backends.open("cpu", BackendOptions.defaults()));
            } finally {
                System.clearProperty("predcode.cpu.shortChains");
            }
            for (BackendProvider p : Backends.providers())
                if (!p.name().equals("cpu")) {
                    if (p.availability().available()) others.add(p.open(BackendOptions.defaults()));
                    else System.out.println("SKIPPED random models on '" + p.name() + "': " + p.availability().reason());
                }
            SplittableRandom r = new SplittableRandom(2026_12_01L);
            for (int c = 0; c < 200; c++) {
                Case k = c % 4 == 3 ? randomCnn(r) : randomMlp(r);
                Map<String, float[]> reference = updates(plain, k);
                for (Backend be : others) {
                    String what = be.name() + (be.prefersShortChains() ? " (folding)" : "") + " against the plain cpu, " + k;
                    Map<String, float[]> got;
                    try {
                        got = updates(be, k);
                    } catch (RuntimeException e) {
                        throw new AssertionError(what + ": " + e, e);
                    }
                    double worst = worstError(reference, got);
                    assertTrue(worst < 1e-3, what + ": " + worst);
                }
            }
        } finally {
            others.forEach(Backend::close);
        }
    }

    private record Case(ModelSpec spec, String shape, Loss loss, Algorithm algorithm, Energy energy, BeliefOptimizer beliefs, PcEngine.Condense condense,
                        int n, float[] x, float[] y, int batch) {
        @Override public String toString() {
            return "case " + shape + " " + loss + " " + algorithm + " " + energy + " beliefs " + beliefs + " condense " + condense + " n " + n + " batch " + batch;
        }
    }

    private static Case randomMlp(SplittableRandom r) {
        int depth = 1 + r.nextInt(4);
        int[] sizes = new int[depth + 1];
        for (int l = 0; l <= depth; l++) sizes[l] = 2 + r.nextInt(9);
        ModelSpec.Builder b = ModelSpec.builder().input(sizes[0]);
        StringBuilder shape = new StringBuilder().append(sizes[0]);
        for (int l = 0; l < depth; l++) {
            int in = sizes[l], out = sizes[l + 1];
            Activation f = r.nextInt(l < depth - 1 ? 4 : 3) < (l < depth - 1 ? 3 : 1) ? activation(r) : null; // hidden: 3 in 4; output: 1 in 3
            b.block(k -> {
                k.linear(in, out);
                activate(k, f);
            });
            shape.append(" -> ").append(out).append(f == null ? "" : " " + f);
        }
        return withSettings(r, b.build(), shape.toString(), sizes[0], sizes[depth]);
    }

    /** One or two conv blocks on a small image, the last flattened, then one or two linear blocks. */
    private static Case randomCnn(SplittableRandom r) {
        int channels = 1 + r.nextInt(3), side = 6 + r.nextInt(6), inputSize = channels * side * side;
        ModelSpec.Builder b = ModelSpec.builder().input(channels, side, side);
        StringBuilder shape = new StringBuilder("[" + channels + ", " + side + ", " + side + "]");
        for (int i = 0, convs = 1 + r.nextInt(2); i < convs; i++) {
            int in = channels, out = 1 + r.nextInt(4), kernel = 2 + r.nextInt(2), stride = r.nextInt(4) == 0 ? 2 : 1, padding = r.nextInt(3) == 0 ? 1 : 0;
            int outSide = (side + 2 * padding - kernel) / stride + 1;
            Activation f = r.nextInt(5) > 0 ? activation(r) : null;
            boolean pool = outSide >= 4 && r.nextBoolean(), max = r.nextBoolean(), last = i == convs - 1 || (pool ? outSide / 2 : outSide) < 4;
            b.block(k -> {
                k.conv2d(in, out, kernel, stride, padding);
                activate(k, f);
                if (pool) {
                    if (max) k.maxPool(2);
                    else k.avgPool(2);
                }
                if (last) k.flatten();
            });
            shape.append(" -> conv").append(kernel).append(" s").append(stride).append(" p").append(padding).append(" ").append(out)
                    .append(f == null ? "" : " " + f).append(pool ? max ? " max" : " avg" : "");
            channels = out;
            side = pool ? outSide / 2 : outSide;
            if (last) break;
        }
        int flat = channels * side * side, classes = 2 + r.nextInt(5);
        if (r.nextBoolean()) {
            int hidden = 2 + r.nextInt(8);
            Activation f = activation(r);
            b.block(k -> {
                k.linear(flat, hidden);
                activate(k, f);
            });
            b.block(k -> k.linear(hidden, classes));
            shape.append(" -> ").append(hidden).append(" ").append(f);
        } else {
            b.block(k -> k.linear(flat, classes));
        }
        shape.append(" -> ").append(classes);
        return withSettings(r, b.build(), shape.toString(), inputSize, classes);
    }

    private static Activation activation(SplittableRandom r) { return ACTIVATIONS[r.nextInt(ACTIVATIONS.length)]; }

    private static void activate(ModelSpec.BlockBuilder k, Activation f) {
        if (f != null) k.op(new OpSpec.Act(f, f == Activation.LEAKY_RELU ? 0.1f : 0f));
    }

    /** The model with random settings, and a batch for it. */
    private static Case withSettings(SplittableRandom r, ModelSpec spec, String shape, int inputSize, int classes) {
        Loss loss = r.nextBoolean() ? Loss.MSE : Loss.CROSS_ENTROPY;
        // The relaxations by a belief optimizer (and STRICT) half the time: their folded paths take the most block shapes.
        Algorithm[] relaxing = {Algorithm.PC, Algorithm.IPC, Algorithm.STRICT};
        Algorithm algorithm = r.nextBoolean() ? relaxing[r.nextInt(relaxing.length)] : Algorithm.values()[r.nextInt(Algorithm.values().length)];
        Energy energy = r.nextBoolean() ? Energy.PER_SAMPLE : Energy.TORCH2PC;
        BeliefOptimizer beliefs = switch (r.nextInt(3)) {
            case 0 -> BeliefOptimizer.sgd(0f);
            case 1 -> BeliefOptimizer.sgd(0.3f);
            default -> BeliefOptimizer.adam();
        };
        PcEngine.Condense condense = r.nextBoolean() ? PcEngine.Condense.AUTO : PcEngine.Condense.NEVER;
        int n = algorithm == Algorithm.ZIL ? spec.depth() : 1 + r.nextInt(6), batch = 1 + r.nextInt(9);
        float[] x = PaperResultsTest.randomInput(r, batch * inputSize);
        float[] y = loss == Loss.MSE ? PaperResultsTest.randomInput(r, batch * classes) : PaperResultsTest.labels(r, batch, classes);
        return new Case(spec, shape, loss, algorithm, energy, beliefs, condense, n, x, y, batch);
    }

    private static Map<String, float[]> updates(Backend be, Case k) {
        try (Model m = Model.create(k.spec(), be, 7);
             PcEngine e = new PcEngine(m, k.loss()).energy(k.energy()).beliefOptimizer(k.beliefs()).condense(k.condense())) {
            e.infer(k.x(), k.y(), k.batch(), k.algorithm(), k.algorithm() == Algorithm.ZIL ? 1f : 0.1f, k.n());
            return m.gradientValues();
        }
    }

    /**
     * The worst relative distance over the updates, each tensor's measured against its own norm or a thousandth of
     * the largest tensor's, whichever is larger: an update that is exactly 0 in one (a layer the error wave never
     * reached) may be rounding-sized in the other.
     */
    private static double worstError(Map<String, float[]> reference, Map<String, float[]> got) {
        double scale = 0, worst = 0;
        for (float[] v : reference.values()) scale = Math.max(scale, norm(v, null));
        for (Map.Entry<String, float[]> e : reference.entrySet()) {
            double d = norm(e.getValue(), got.get(e.getKey()));
            worst = Math.max(worst, Double.isNaN(d) ? Double.POSITIVE_INFINITY : d / Math.max(norm(e.getValue(), null), 1e-3 * scale + 1e-30));
        }
        return worst;
    }

    /** ||a - b|| (||a|| where b is null). */
    private static double norm(float[] a, float[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            double d = a[i] - (b == null ? 0 : b[i]);
            s += d * d;
        }
        return Math.sqrt(s);
    }
}
