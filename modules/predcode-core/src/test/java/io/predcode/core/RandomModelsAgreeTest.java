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
 * Random small MLPs (depth 1-4, every activation, hidden blocks with and without one, the output with and without one)
 * under random settings (every algorithm, both energies, every belief optimizer, layer 1 condensed or not, n, batch,
 * loss): a step's parameter updates on a CPU that folds as a GPU does ({@code -Dpredcode.cpu.shortChains=true}) and on
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
            for (int c = 0; c < 60; c++) {
                Case k = randomCase(r);
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

    private static Case randomCase(SplittableRandom r) {
        int depth = 1 + r.nextInt(4);
        int[] sizes = new int[depth + 1];
        for (int l = 0; l <= depth; l++) sizes[l] = 2 + r.nextInt(9);
        ModelSpec.Builder b = ModelSpec.builder().input(sizes[0]);
        StringBuilder shape = new StringBuilder().append(sizes[0]);
        for (int l = 0; l < depth; l++) {
            int in = sizes[l], out = sizes[l + 1];
            Activation f = l < depth - 1 ? (r.nextInt(5) > 0 ? ACTIVATIONS[r.nextInt(ACTIVATIONS.length)] : null) : (r.nextInt(4) == 0 ? ACTIVATIONS[r.nextInt(ACTIVATIONS.length)] : null);
            b.block(k -> {
                k.linear(in, out);
                if (f != null) k.op(new OpSpec.Act(f, f == Activation.LEAKY_RELU ? 0.1f : 0f));
            });
            shape.append(" -> ").append(out).append(f == null ? "" : " " + f);
        }
        Loss loss = r.nextBoolean() ? Loss.MSE : Loss.CROSS_ENTROPY;
        Algorithm algorithm = Algorithm.values()[r.nextInt(Algorithm.values().length)];
        Energy energy = r.nextBoolean() ? Energy.PER_SAMPLE : Energy.TORCH2PC;
        BeliefOptimizer beliefs = switch (r.nextInt(3)) {
            case 0 -> BeliefOptimizer.sgd(0f);
            case 1 -> BeliefOptimizer.sgd(0.3f);
            default -> BeliefOptimizer.adam();
        };
        PcEngine.Condense condense = r.nextBoolean() ? PcEngine.Condense.AUTO : PcEngine.Condense.NEVER;
        int n = algorithm == Algorithm.ZIL ? depth : 1 + r.nextInt(6), batch = 1 + r.nextInt(9), classes = sizes[depth];
        float[] x = PaperResultsTest.randomInput(r, batch * sizes[0]);
        float[] y = loss == Loss.MSE ? PaperResultsTest.randomInput(r, batch * classes) : PaperResultsTest.labels(r, batch, classes);
        return new Case(b.build(), shape.toString(), loss, algorithm, energy, beliefs, condense, n, x, y, batch);
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
            float[] want = e.getValue(), have = got.get(e.getKey());
            double d = norm(want, have);
            worst = Math.max(worst, Double.isNaN(d) ? Double.POSITIVE_INFINITY : d / Math.max(norm(want, null), 1e-3 * scale + 1e-30));
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
