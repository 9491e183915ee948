package io.predcode.core;

import io.predcode.core.nn.Loss;
import io.predcode.core.nn.Model;
import io.predcode.core.optim.Sgd;
import io.predcode.core.pc.Algorithm;
import io.predcode.core.pc.InferenceResult;
import io.predcode.core.pc.PcEngine;
import io.predcode.core.pc.Trainer;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The remedy for STRICT's long-run collapse (docs/stability.md): the relaxation is gradient descent on
 * the energy with step eta, which diverges once the weights make the energy's curvature exceed 2 / eta.
 */
class StableRelaxationTest {
    static final io.predcode.core.nn.ModelSpec RELU_MLP = io.predcode.core.nn.ModelSpec.builder().input(35)
            .block(b -> b.linear(35, 23).relu())
            .block(b -> b.linear(23, 13).relu())
            .block(b -> b.linear(13, 6)).build();

    /** Layer 1 condensed where it saves multiply-adds, and not (relaxed in its own space, as Torch2PC). */
    private static final PcEngine.Condense[] MODES = {PcEngine.Condense.AUTO, PcEngine.Condense.NEVER};

    /** A run whose relaxation converges is bit for bit Torch2PC's with the guard on. */
    @TestFactory List<DynamicTest> aConvergingRunIsUnchanged() {
        return PaperResultsTest.onEveryBackend("stable relaxation: converging run unchanged", be -> {
            for (PcEngine.Condense mode : MODES) {
                SplittableRandom r = new SplittableRandom(6);
                float[] x = PaperResultsTest.randomInput(r, 16 * 35), y = PaperResultsTest.labels(r, 16, 6);
                Map<String, float[]> guarded = train(be, x, y, true, mode), plain = train(be, x, y, false, mode);
                plain.forEach((name, v) -> assertArrayEquals(v, guarded.get(name), mode + " " + name));
            }
        });
    }

    private static Map<String, float[]> train(io.predcode.spi.Backend be, float[] x, float[] y, boolean guard, PcEngine.Condense mode) {
        try (Model m = Model.create(ServingTest.MLP, be, 5); PcEngine e = new PcEngine(m, Loss.CROSS_ENTROPY).condense(mode); Sgd sgd = new Sgd(m, 0.05f, 0.9f, 0f)) {
            Trainer t = new Trainer(e, sgd, Algorithm.STRICT, 0.1f, 20).stableRelaxation(guard);
            for (int s = 0; s < 15; s++) t.step(x, y, 16);
            assertEquals(0.1f, t.eta(), "eta was never lowered");
            return m.parameterValues();
        }
    }

    /**
     * Weights scaled so that ||W||^2 is far above 2 / eta - 1: Torch2PC's relaxation then raises the
     * energy (its beliefs diverge); the guarded step halves eta until the energy falls.
     */
    @TestFactory List<DynamicTest> aDivergingRelaxationIsCaughtAndEtaLowered() {
        return PaperResultsTest.onEveryBackend("stable relaxation: diverging case", be -> {
            for (PcEngine.Condense mode : MODES) {
                SplittableRandom r = new SplittableRandom(8);
                float[] x = PaperResultsTest.randomInput(r, 16 * 35), y = PaperResultsTest.labels(r, 16, 6);
                try (Model m = Model.create(RELU_MLP, be, 5); PcEngine e = new PcEngine(m, Loss.CROSS_ENTROPY).condense(mode); Sgd sgd = new Sgd(m, 1e-4f, 0f, 0f)) {
                    // Layer 1's curvature is about 1 + ||W_2||^2 (ReLU passes the Jacobian unchanged where it is active).
                    Map<String, float[]> big = new HashMap<>(m.parameterValues());
                    float[] w2 = big.get("1.0.weight").clone();
                    for (int i = 0; i < w2.length; i++) w2[i] *= 10;
                    big.put("1.0.weight", w2);
                    m.loadParameters(big, "scaled");
                    InferenceResult plain = e.infer(x, y, 16, Algorithm.STRICT, 0.1f, 20);
                    assertTrue(plain.energy() > plain.loss(), "the unguarded relaxation must diverge here: energy " + plain.energy() + ", loss " + plain.loss());
                    Trainer t = new Trainer(e, sgd, Algorithm.STRICT, 0.1f, 20).stableRelaxation(true);
                    Trainer.Step step = t.step(x, y, 16);
                    assertTrue(step.eta() < 0.1f, "eta lowered: " + step.eta());
                    assertEquals(step.eta(), t.eta());
                    InferenceResult at = e.infer(x, y, 16, Algorithm.STRICT, t.eta(), 20);
                    assertTrue(at.energy() <= at.loss() * 1.001, "at the lowered eta the relaxation lowers the energy: " + at.energy() + " vs " + at.loss());
                }
            }
        });
    }

    /**
     * PC with SGD on the beliefs on Torch2PC's energy is the same descent from the same start (plain SGD is STRICT's
     * relaxation), so the guard takes it too: the scaled weights above make it diverge, and the guarded step lowers eta
     * until it does not; a converging run is bit for bit the unguarded one. On each sample's own energy, whose energy
     * is not on the loss's scale, the guard does nothing.
     */
    @TestFactory List<DynamicTest> pcOnTorch2pcEnergyIsGuardedToo() {
        return PaperResultsTest.onEveryBackend("stable relaxation: PC on Torch2PC's energy", be -> {
            for (float momentum : new float[]{0f, 0.1f}) {
                SplittableRandom r = new SplittableRandom(8);
                float[] x = PaperResultsTest.randomInput(r, 16 * 35), y = PaperResultsTest.labels(r, 16, 6);
                try (Model m = Model.create(RELU_MLP, be, 5); PcEngine e = new PcEngine(m, Loss.CROSS_ENTROPY).energy(io.predcode.core.pc.Energy.TORCH2PC)
                        .beliefOptimizer(io.predcode.core.pc.BeliefOptimizer.sgd(momentum)); Sgd sgd = new Sgd(m, 1e-4f, 0f, 0f)) {
                    Map<String, float[]> start = m.parameterValues();
                    Trainer converging = new Trainer(e, sgd, Algorithm.PC, 0.1f, 20).stableRelaxation(true);
                    for (int s = 0; s < 3; s++) converging.step(x, y, 16);
                    assertEquals(0.1f, converging.eta(), "momentum " + momentum + ": a converging relaxation keeps its eta");
                    Map<String, float[]> guarded = m.parameterValues();
                    m.loadParameters(start, "start");
                    Trainer plainTrainer = new Trainer(e, sgd, Algorithm.PC, 0.1f, 20);
                    for (int s = 0; s < 3; s++) plainTrainer.step(x, y, 16);
                    m.parameterValues().forEach((name, v) -> assertArrayEquals(v, guarded.get(name), "momentum " + momentum + ", converging: " + name));

                    Map<String, float[]> big = new HashMap<>(start);
                    float[] w2 = big.get("1.0.weight").clone();
                    for (int i = 0; i < w2.length; i++) w2[i] *= 10;
                    big.put("1.0.weight", w2);
                    m.loadParameters(big, "scaled");
                    InferenceResult plain = e.infer(x, y, 16, Algorithm.PC, 0.1f, 20);
                    assertTrue(plain.energy() > plain.loss(), "momentum " + momentum + ": the unguarded relaxation must diverge here: energy " + plain.energy() + ", loss " + plain.loss());
                    Trainer t = new Trainer(e, sgd, Algorithm.PC, 0.1f, 20).stableRelaxation(true);
                    assertTrue(t.step(x, y, 16).eta() < 0.1f, "momentum " + momentum + ": eta lowered");
                    InferenceResult at = e.infer(x, y, 16, Algorithm.PC, t.eta(), 20);
                    assertTrue(at.energy() <= at.loss() * 1.001, "momentum " + momentum + ": at the lowered eta the relaxation lowers the energy: " + at.energy() + " vs " + at.loss());

                    m.loadParameters(big, "scaled");
                    Trainer perSample = new Trainer(e.energy(io.predcode.core.pc.Energy.PER_SAMPLE), sgd, Algorithm.PC, 0.1f, 20).stableRelaxation(true);
                    perSample.step(x, y, 16);
                    assertEquals(0.1f, perSample.eta(), "momentum " + momentum + ": each sample's own energy is not guarded");
                }
            }
        });
    }
}
