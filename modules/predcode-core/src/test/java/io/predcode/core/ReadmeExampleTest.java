package io.predcode.core;

import io.predcode.core.nn.Loss;
import io.predcode.core.nn.Model;
import io.predcode.core.nn.ModelSpec;
import io.predcode.core.optim.Adam;
import io.predcode.core.pc.Algorithm;
import io.predcode.core.pc.BeliefOptimizer;
import io.predcode.core.pc.DivergenceException;
import io.predcode.core.pc.Energy;
import io.predcode.core.pc.InferenceResult;
import io.predcode.core.pc.PcEngine;
import io.predcode.core.pc.Trainer;
import io.predcode.spi.Backend;
import io.predcode.spi.Backends;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The README's library example, kept compiling and working. */
class ReadmeExampleTest {
    @Test void readmeExample() {
        // --- README example start
        float[] x = new float[8 * 4], y = new float[8];          // 8 samples of 4 features, labels 0..2
        for (int i = 0; i < x.length; i++) x[i] = (float) Math.sin(i);
        for (int i = 0; i < y.length; i++) y[i] = i % 3;

        ModelSpec spec = ModelSpec.builder().input(4)
                .block(b -> b.linear(4, 16).tanh())                // one block = one PC layer
                .block(b -> b.linear(16, 3))
                .build();
        try (Backend backend = Backends.open("cpu");               // or "cuda"
             Model model = Model.create(spec, backend, 42);         // PyTorch's default init, seeded
             PcEngine engine = new PcEngine(model, Loss.CROSS_ENTROPY);
             Adam adam = new Adam(model, 0.01f)) {
            Trainer trainer = new Trainer(engine, adam, Algorithm.STRICT, 0.1f, 20);
            for (int step = 0; step < 200; step++) trainer.step(x, y, 8);

            InferenceResult r = engine.infer(x, y, 8, Algorithm.FIXED_PRED, 0.1f, 20); // = Torch2PC's PCInfer
            float[] error1 = r.download(r.error(1));                 // prediction error of layer 1
            float[] update = model.gradientValues().get("0.0.weight"); // what PCInfer writes to .grad
            float[] logits = engine.predict(x, 8);
            // --- README example end
            assertEquals(8 * 16, error1.length);
            assertEquals(16 * 4, update.length);
            int correct = 0;
            for (int i = 0; i < 8; i++) {
                int best = 0;
                for (int c = 1; c < 3; c++) if (logits[i * 3 + c] > logits[i * 3 + best]) best = c;
                if (best == y[i]) correct++;
            }
            assertTrue(correct >= 7, "the example model should fit its 8 samples, got " + correct);
        }
    }

    /** The snippets' data and model: the README example's. */
    private static final float[] X = new float[8 * 4], Y = new float[8];
    static {
        for (int i = 0; i < X.length; i++) X[i] = (float) Math.sin(i);
        for (int i = 0; i < Y.length; i++) Y[i] = i % 3;
    }
    private static final ModelSpec SPEC = ModelSpec.builder().input(4).block(b -> b.linear(4, 16).tanh()).block(b -> b.linear(16, 3)).build();

    /** The README's second snippet: standard PC as PCX runs it, iPC and generative inference. */
    @Test void readmeNewerAlgorithms() {
        float[] x = X, y = Y;
        try (Backend backend = Backends.open("cpu"); Model model = Model.create(SPEC, backend, 42);
             PcEngine engine = new PcEngine(model, Loss.CROSS_ENTROPY); Adam adam = new Adam(model, 0.01f)) {
            // --- README snippet start
            engine.energy(Energy.PER_SAMPLE).beliefOptimizer(BeliefOptimizer.sgd(0.1f));  // each sample's own energy, SGD with momentum on the beliefs
            new Trainer(engine, adam, Algorithm.PC, 0.026f, 5).recordEnergies(true).step(x, y, 8).energies(); // a sample's energy per layer
            new Trainer(engine, adam, Algorithm.IPC, 0.8f, 8).step(x, y, 8);                 // 8 weight updates in this step
            PcEngine.Generation g = engine.generate(x, y, 8, 0.1f, 200);                     // hold y, relax the input: g.input()
            PcEngine.Generation h = engine.generate(x, y, 8, 0.1f, 0.9f, 200, 0, new int[0]); // the same with momentum 0.9 (as predcode generate)
            // --- README snippet end
            assertEquals(9, adam.steps(), "one PC step, then iPC's eight");
            assertEquals(x.length, g.input().length);
            assertTrue(g.finalEnergy() < g.startEnergy());
            assertTrue(h.finalEnergy() < g.finalEnergy(), "momentum goes further in the same steps: " + h.finalEnergy() + " against " + g.finalEnergy());
        }
    }

    /** The README's third snippet: a step that diverges leaves the model and the optimizer as they were. */
    @Test void readmeDivergence() {
        float[] x = X, y = Y;
        try (Backend backend = Backends.open("cpu"); Model model = Model.create(SPEC, backend, 42);
             PcEngine engine = new PcEngine(model, Loss.CROSS_ENTROPY); Adam adam = new Adam(model, 0.01f)) {
            float[] before = model.parameterValues().get("0.0.weight");
            DivergenceException caught = null;
            // --- README snippet start
            Trainer wild = new Trainer(engine, adam, Algorithm.IPC, 1e30f, 8);  // a step size far too large
            try {
                wild.step(x, y, 8);
            } catch (DivergenceException e) {  // "training diverged at step 1: the relaxation's energy is not finite ..."
                // e.step(), e.reason(); the model and Adam's state are as before the step: skip the batch, retry smaller, or stop
                caught = e;
            }
            // --- README snippet end
            assertNotNull(caught, "the step diverges");
            assertEquals(1, caught.step());
            assertTrue(caught.reason().contains("energy is not finite"), caught.getMessage());
            assertEquals(0, adam.steps());
            assertArrayEquals(before, model.parameterValues().get("0.0.weight"));
        }
    }
}
