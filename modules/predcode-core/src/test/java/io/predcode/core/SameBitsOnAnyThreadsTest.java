package io.predcode.core;

import io.predcode.core.nn.Loss;
import io.predcode.core.nn.Model;
import io.predcode.core.nn.ModelSpec;
import io.predcode.core.optim.Adam;
import io.predcode.core.pc.Algorithm;
import io.predcode.core.pc.BeliefOptimizer;
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
 * Training on a thread-invariant CPU backend ({@link BackendOptions#threadInvariant()}) gives the same bits on any
 * number of threads, for every algorithm: on models and batches large enough that the GEMMs and convolutions split
 * into parts (a 96 x 160 x 200 GEMM into 2, 40 images into 2), whose results would differ with the parts (see the cpu
 * module's SameBitsOnAnyThreadsTest). So a run resumed with another {@code --threads}, a sweep's runs at once, and a
 * run on a machine with more cores of the same kind (OpenBLAS picks its kernels by CPU) train as one run on one thread.
 */
class SameBitsOnAnyThreadsTest {
    private static final ModelSpec MLP = ModelSpec.builder().input(200)
            .block(b -> b.linear(200, 160).geluTanh()).block(b -> b.linear(160, 144).relu()).block(b -> b.linear(144, 10)).build();

    /** Direct (4 channels out), tap (24, stride 1) and gather (stride 2) convolutions, pooling, and a linear block. */
    private static final ModelSpec CNN = ModelSpec.builder().input(1, 12, 12)
            .block(b -> b.conv2d(1, 4, 3, 1, 1).geluTanh())
            .block(b -> b.conv2d(4, 24, 3, 1, 1).relu().maxPool(2))
            .block(b -> b.conv2d(24, 20, 3, 2, 1).tanh().flatten())
            .block(b -> b.linear(180, 10)).build();

    @TestFactory List<DynamicTest> everyAlgorithmTrainsTheSameOnOneTwoAndThreeThreads() {
        if (!Backends.provider("cpu").availability().available()) {
            System.out.println("SKIPPED thread counts on backend 'cpu': " + Backends.provider("cpu").availability().reason());
            return List.of();
        }
        List<DynamicTest> tests = new ArrayList<>();
        for (Algorithm a : Algorithm.values())
            for (boolean cnn : new boolean[]{false, true})
                tests.add(DynamicTest.dynamicTest(a + (cnn ? " on a CNN" : " on an MLP"), () -> {
                    Map<String, float[]> one = train(a, cnn, 1);
                    for (int threads : new int[]{2, 3}) {
                        Map<String, float[]> other = train(a, cnn, threads);
                        one.forEach((name, v) -> assertArrayEquals(v, other.get(name), a + ": " + name + " on " + threads + " threads against 1"));
                    }
                }));
        return tests;
    }

    /** Three training steps on a CPU backend of {@code threads} threads; the parameters after them. */
    private static Map<String, float[]> train(Algorithm algorithm, boolean cnn, int threads) {
        try (Backend be = Backends.open("cpu", new BackendOptions(threads, 0, true));
             Model m = Model.create(cnn ? CNN : MLP, be, 5); PcEngine e = new PcEngine(m, Loss.CROSS_ENTROPY)) {
            if (algorithm == Algorithm.PC || algorithm == Algorithm.IPC) e.beliefOptimizer(BeliefOptimizer.sgd(0.25f));
            float eta = algorithm == Algorithm.ZIL ? 1f : 0.1f;
            Trainer t = new Trainer(e, new Adam(m, 1e-2f), algorithm, eta, 4);
            SplittableRandom r = new SplittableRandom(9);
            int batch = cnn ? 40 : 96;
            for (int step = 0; step < 3; step++) {
                float[] x = PaperResultsTest.randomInput(r, batch * e.inputSize()), y = new float[batch];
                for (int i = 0; i < batch; i++) y[i] = r.nextInt(10);
                t.step(x, y, batch);
            }
            return m.parameterValues();
        }
    }
}
