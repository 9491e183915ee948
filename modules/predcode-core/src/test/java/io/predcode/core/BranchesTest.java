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
 * Where a backend runs branches at once, the engine hands a relaxation step's blocks to
 * {@link Backend#branches} as independent branches. The CPU backend can run them in order, in reverse
 * order ({@code predcode.cpu.branches=serial|reverse}) or at once on two threads: training must come out
 * the same bit for bit all three ways, and as the one-pass form the engine takes on one thread. A branch
 * that read what another writes would make the reverse order differ (the models are small, so no op
 * splits across threads and every op computes the same in all of them). The CUDA backend runs branches
 * on streams of their own, which in a CUDA graph may run in any order: training must come out as with no
 * branches ({@code predcode.cuda.branches=serial}, the one-pass form), on a GPU and on the host simulator,
 * whose graph launches run independent work as recorded, latest first or interleaved.
 */
class BranchesTest {
    private record Case(String name, ModelSpec spec, Loss loss, Algorithm algorithm, BeliefOptimizer beliefs, Energy energy, Nudging nudging, float eta, int n,
                        PcEngine.Condense condense) {
        Case(String name, ModelSpec spec, Loss loss, Algorithm algorithm, BeliefOptimizer beliefs, Energy energy, Nudging nudging, float eta, int n) {
            this(name, spec, loss, algorithm, beliefs, energy, nudging, eta, n, PcEngine.Condense.AUTO);
        }
    }

    private static List<Case> cases() {
        SplittableRandom r = new SplittableRandom(5);
        ModelSpec gelu = ModelSpec.builder().input(13)
                .block(b -> b.linear(13, 17).geluTanh()).block(b -> b.linear(17, 11).geluTanh())
                .block(b -> b.linear(11, 9).geluTanh()).block(b -> b.linear(9, 4)).build();
        ModelSpec relu = PaperResultsTest.mlp(r, 5, "relu"), tanh = PaperResultsTest.mlp(r, 3, "tanh");
        ModelSpec single = ModelSpec.builder().input(6).block(b -> b.linear(6, 3)).build();
        // Layer 1 wider than block 1's output, so that STRICT may relax it in block 1's entry space (PcEngine.Condense).
        ModelSpec wide = ModelSpec.builder().input(5).block(b -> b.linear(5, 40).relu()).block(b -> b.linear(40, 6).tanh())
                .block(b -> b.linear(6, 7).relu()).block(b -> b.linear(7, 3)).build();
        ModelSpec wideTwoOps = ModelSpec.builder().input(5).block(b -> b.linear(5, 40).relu()).block(b -> b.linear(40, 6).tanh().relu())
                .block(b -> b.linear(6, 3)).build();
        ModelSpec wideTwoBlocks = ModelSpec.builder().input(5).block(b -> b.linear(5, 40).relu()).block(b -> b.linear(40, 3)).build();
        List<Case> cases = new ArrayList<>();
        for (int n : new int[]{2, 5}) // 2: the error wave still on its way down; 5: past it
            cases.add(new Case("PC, momentum, per-sample energy, n " + n, gelu, Loss.MSE, Algorithm.PC, BeliefOptimizer.sgd(0.1f), Energy.PER_SAMPLE, Nudging.none(), 0.05f, n));
        cases.add(new Case("PC, Adam beliefs, Torch2PC's energy", relu, Loss.CROSS_ENTROPY, Algorithm.PC, BeliefOptimizer.adam(), Energy.TORCH2PC, Nudging.none(), 0.01f, 6));
        cases.add(new Case("PC, plain SGD, centred nudging", tanh, Loss.CROSS_ENTROPY, Algorithm.PC, BeliefOptimizer.sgd(0f), Energy.PER_SAMPLE, Nudging.parse("centred:0.5"), 0.1f, 4));
        cases.add(new Case("iPC", gelu, Loss.MSE, Algorithm.IPC, BeliefOptimizer.sgd(0.2f), Energy.PER_SAMPLE, Nudging.none(), 0.1f, 4));
        cases.add(new Case("iPC, Adam beliefs", gelu, Loss.CROSS_ENTROPY, Algorithm.IPC, BeliefOptimizer.adam(), Energy.PER_SAMPLE, Nudging.none(), 0.05f, 4));
        for (PcEngine.Condense condense : PcEngine.Condense.values())
            cases.add(new Case("STRICT, condense " + condense, condense == PcEngine.Condense.NEVER ? relu : wide, Loss.CROSS_ENTROPY, Algorithm.STRICT,
                    BeliefOptimizer.sgd(0f), Energy.TORCH2PC, Nudging.none(), 0.1f, 5, condense));
        cases.add(new Case("STRICT, condensed, layer 2 not fused", wideTwoOps, Loss.CROSS_ENTROPY, Algorithm.STRICT,
                BeliefOptimizer.sgd(0f), Energy.TORCH2PC, Nudging.none(), 0.1f, 4, PcEngine.Condense.ALWAYS));
        cases.add(new Case("STRICT, condensed, two blocks", wideTwoBlocks, Loss.MSE, Algorithm.STRICT,
                BeliefOptimizer.sgd(0f), Energy.TORCH2PC, Nudging.none(), 0.1f, 4, PcEngine.Condense.ALWAYS));
        cases.add(new Case("FIXED_PRED", relu, Loss.CROSS_ENTROPY, Algorithm.FIXED_PRED, BeliefOptimizer.sgd(0f), Energy.TORCH2PC, Nudging.none(), 0.3f, 3));
        cases.add(new Case("Z-IL", tanh, Loss.CROSS_ENTROPY, Algorithm.ZIL, BeliefOptimizer.sgd(0f), Energy.TORCH2PC, Nudging.none(), 1f, 3));
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
            Map<String, float[]> serial = train(c, "serial", 2), reverse = train(c, "reverse", 2), together = train(c, "together", 2),
                    onePass = train(c, "together", 1);
            serial.forEach((name, v) -> {
                assertArrayEquals(v, reverse.get(name), c.name() + ": " + name + " after the branches ran in reverse order");
                assertArrayEquals(v, together.get(name), c.name() + ": " + name + " after the branches ran at once");
                assertArrayEquals(v, onePass.get(name), c.name() + ": " + name + " after the one-pass form (one thread: no branches at once)");
            });
        })).toList();
    }

    @TestFactory List<DynamicTest> branchesOnCudaStreamsTrainAsWithout() {
        if (!Backends.provider("cuda").availability().available()) {
            System.out.println("SKIPPED branches on CUDA streams: " + Backends.provider("cuda").availability().reason());
            return List.of();
        }
        // On the simulator, every graph order it can take; on a GPU, the order the device takes.
        String driver = System.getProperty("predcode.cuda.driver", java.util.Objects.requireNonNullElse(System.getenv("PREDCODE_CUDA_DRIVER"), ""));
        java.lang.invoke.MethodHandle schedule = !driver.contains("cudasim") ? null : java.lang.foreign.Linker.nativeLinker().downcallHandle(
                java.lang.foreign.SymbolLookup.libraryLookup(java.nio.file.Path.of(driver), java.lang.foreign.Arena.global()).find("cusimSetSchedule").orElseThrow(),
                java.lang.foreign.FunctionDescriptor.ofVoid(java.lang.foreign.ValueLayout.JAVA_INT));
        return cases().stream().map(c -> DynamicTest.dynamicTest(c.name(), () -> {
            Map<String, float[]> without = open("cuda", "predcode.cuda.branches", "serial", 0, be -> train(c, be));
            for (int order = 0; order < (schedule == null ? 1 : 3); order++) {
                if (schedule != null) schedule.invokeExact(order);
                try {
                    Map<String, float[]> with = open("cuda", "predcode.cuda.branches", "streams", 0, be -> train(c, be));
                    for (var e : without.entrySet())
                        assertArrayEquals(e.getValue(), with.get(e.getKey()), c.name() + ": " + e.getKey() + " with branches on streams, graph order " + order);
                } finally {
                    if (schedule != null) schedule.invokeExact(0);
                }
            }
        })).toList();
    }

    /** Three training steps on a CPU backend of these threads opened with this branch order; the parameters after them. */
    private static Map<String, float[]> train(Case c, String order, int threads) {
        return open("cpu", "predcode.cpu.branches", order, threads, be -> train(c, be));
    }

    /** Opens the backend with the system property set (it reads it when it opens), and runs {@code body} on it. */
    private static Map<String, float[]> open(String backend, String property, String value, int threads, java.util.function.Function<Backend, Map<String, float[]>> body) {
        Backend be;
        String before = System.getProperty(property);
        System.setProperty(property, value);
        try {
            be = Backends.open(backend, new BackendOptions(threads, 0));
        } finally {
            if (before == null) System.clearProperty(property);
            else System.setProperty(property, before);
        }
        try (be) {
            return body.apply(be);
        }
    }

    /** Three training steps of the case; the parameters after them. */
    private static Map<String, float[]> train(Case c, Backend be) {
        try (Model m = Model.create(c.spec(), be, 3); PcEngine e = new PcEngine(m, c.loss())) {
            e.beliefOptimizer(c.beliefs()).energy(c.energy()).nudging(c.nudging()).condense(c.condense());
            if (c.condense() == PcEngine.Condense.ALWAYS) assertNotNull(e.condensedEntry(), c.name() + ": layer 1 is relaxed in block 1's entry space");
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
