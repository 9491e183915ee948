package io.predcode.core;

import io.predcode.core.nn.Loss;
import io.predcode.core.nn.Model;
import io.predcode.core.nn.ModelSpec;
import io.predcode.core.optim.Adam;
import io.predcode.core.pc.Algorithm;
import io.predcode.core.pc.BeliefOptimizer;
import io.predcode.core.pc.Energy;
import io.predcode.core.pc.Nudging;
import io.predcode.core.pc.PcEngine;
import io.predcode.core.pc.Trainer;
import io.predcode.spi.Backend;
import io.predcode.spi.BackendOptions;
import io.predcode.spi.Backends;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The engine hands a relaxation step's blocks to {@link Backend#branches} as independent branches. The
 * CPU backend can run them in order, in reverse order ({@code predcode.cpu.branches=serial|reverse})
 * or at once on two threads: training must come out the same bit for bit all three ways. A branch
 * that read what another writes would make the reverse order differ (the models are small, so no op
 * splits across threads and every op computes the same in all three).
 */
class BranchesTest {
    private record Case(String name, ModelSpec spec, Loss loss, Algorithm algorithm, BeliefOptimizer beliefs, Energy energy, Nudging nudging, float eta, int n) {}

    private static List<Case> cases() {
        SplittableRandom r = new SplittableRandom(5);
        ModelSpec gelu = ModelSpec.builder().input(13)
                .block(b -> b.linear(13, 17).geluTanh()).block(b -> b.linear(17, 11).geluTanh())
                .block(b -> b.linear(11, 9).geluTanh()).block(b -> b.linear(9, 4)).build();
        ModelSpec relu = PaperResultsTest.mlp(r, 5, "relu"), tanh = PaperResultsTest.mlp(r, 3, "tanh");
        ModelSpec single = ModelSpec.builder().input(6).block(b -> b.linear(6, 3)).build();
        List<Case> cases = new ArrayList<>();
        for (int n : new int[]{2, 5}) // 2: the error wave still on its way down; 5: past it
            cases.add(new Case("PC, momentum, per-sample energy, n " + n, gelu, Loss.MSE, Algorithm.PC, BeliefOptimizer.sgd(0.1f), Energy.PER_SAMPLE, Nudging.none(), 0.05f, n));
        cases.add(new Case("PC, Adam beliefs, Torch2PC's energy", relu, Loss.CROSS_ENTROPY, Algorithm.PC, BeliefOptimizer.adam(), Energy.TORCH2PC, Nudging.none(), 0.01f, 6));
        cases.add(new Case("PC, plain SGD, centred nudging", tanh, Loss.CROSS_ENTROPY, Algorithm.PC, BeliefOptimizer.sgd(0f), Energy.PER_SAMPLE, Nudging.parse("centred:0.5"), 0.1f, 4));
        cases.add(new Case("iPC", gelu, Loss.MSE, Algorithm.IPC, BeliefOptimizer.sgd(0.2f), Energy.PER_SAMPLE, Nudging.none(), 0.1f, 4));
        cases.add(new Case("STRICT", relu, Loss.CROSS_ENTROPY, Algorithm.STRICT, BeliefOptimizer.sgd(0f), Energy.TORCH2PC, Nudging.none(), 0.1f, 5));
        cases.add(new Case("PC on a CNN", PaperResultsTest.CNN, Loss.CROSS_ENTROPY, Algorithm.PC, BeliefOptimizer.sgd(0.3f), Energy.PER_SAMPLE, Nudging.none(), 0.1f, 5));
        cases.add(new Case("PC, one block", single, Loss.CROSS_ENTROPY, Algorithm.PC, BeliefOptimizer.sgd(0.1f), Energy.PER_SAMPLE, Nudging.none(), 0.1f, 3));
        cases.add(new Case("iPC, one block", single, Loss.CROSS_ENTROPY, Algorithm.IPC, BeliefOptimizer.sgd(0f), Energy.PER_SAMPLE, Nudging.none(), 0.1f, 3));
        return cases;
    }

    @TestFactory List<DynamicTest> branchesInAnyOrderTrainTheSame() {
        if (!Backends.provider("cpu").availability().available()) {
            System.out.println("SKIPPED branches on backend 'cpu': " + Backends.provider("cpu").availability().reason());
            return List.of();
        }
        return cases().stream().map(c -> DynamicTest.dynamicTest(c.name(), () -> {
            Map<String, float[]> serial = train(c, "serial"), reverse = train(c, "reverse"), together = train(c, "together");
            serial.forEach((name, v) -> {
                assertArrayEquals(v, reverse.get(name), c.name() + ": " + name + " after the branches ran in reverse order");
                assertArrayEquals(v, together.get(name), c.name() + ": " + name + " after the branches ran at once");
            });
        })).toList();
    }

    /** Three training steps on a CPU backend of two threads opened with this branch order; the parameters after them. */
    private static Map<String, float[]> train(Case c, String order) {
        Backend be;
        String before = System.getProperty("predcode.cpu.branches");
        System.setProperty("predcode.cpu.branches", order);
        try {
            be = Backends.open("cpu", new BackendOptions(2, 0)); // the backend reads the order when it opens
        } finally {
            if (before == null) System.clearProperty("predcode.cpu.branches");
            else System.setProperty("predcode.cpu.branches", before);
        }
        try (be; Model m = Model.create(c.spec(), be, 3); PcEngine e = new PcEngine(m, c.loss())) {
            e.beliefOptimizer(c.beliefs()).energy(c.energy()).nudging(c.nudging());
            Trainer t = new Trainer(e, new Adam(m, 1e-2f), c.algorithm(), c.eta(), c.n());
            SplittableRandom r = new SplittableRandom(9);
            int batch = 7, classes = m.activationShape(m.depth())[0];
            for (int step = 0; step < 3; step++) {
                float[] x = PaperResultsTest.randomInput(r, batch * e.inputSize()), y = new float[batch * e.targetSize()];
                for (int i = 0; i < batch; i++) {
                    int k = r.nextInt(classes);
                    if (e.targetSize() == 1) y[i] = k; else y[i * classes + k] = 1f;
                }
                t.step(x, y, batch);
            }
            return m.parameterValues();
        }
    }
}
