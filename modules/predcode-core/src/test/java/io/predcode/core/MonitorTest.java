package io.predcode.core;

import io.predcode.core.nn.Loss;
import io.predcode.core.nn.Model;
import io.predcode.core.optim.Adam;
import io.predcode.core.pc.Algorithm;
import io.predcode.core.pc.Alignment;
import io.predcode.core.pc.PcEngine;
import io.predcode.core.pc.Trainer;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/** The alignment monitor measures without changing what is trained, and measures the paper's diagnostic. */
class MonitorTest {
    @TestFactory List<DynamicTest> monitoringChangesNoUpdateAndMatchesADirectComparison() {
        return PaperResultsTest.onEveryBackend("alignment monitor", be -> {
            SplittableRandom r = new SplittableRandom(2);
            float[] x = PaperResultsTest.randomInput(r, 12 * 35), y = PaperResultsTest.labels(r, 12, 6);
            Map<String, float[]> plain, monitored;
            Trainer.Step last = null;
            try (Model m = Model.create(ServingTest.MLP, be, 4); PcEngine e = new PcEngine(m, Loss.CROSS_ENTROPY); Adam a = new Adam(m, 0.01f)) {
                Trainer t = new Trainer(e, a, Algorithm.STRICT, 0.1f, 8);
                for (int s = 0; s < 6; s++) t.step(x, y, 12);
                plain = m.parameterValues();
            }
            try (Model m = Model.create(ServingTest.MLP, be, 4); PcEngine e = new PcEngine(m, Loss.CROSS_ENTROPY); Adam a = new Adam(m, 0.01f)) {
                Trainer t = new Trainer(e, a, Algorithm.STRICT, 0.1f, 8).monitorEvery(3);
                for (int s = 0; s < 6; s++) {
                    Trainer.Step step = t.step(x, y, 12);
                    assertEquals((s + 1) % 3 == 0, step.alignment() != null, "step " + (s + 1));
                    if (step.alignment() != null) last = step;
                }
                monitored = m.parameterValues();
                plain.forEach((name, v) -> assertArrayEquals(v, monitored.get(name), name + ": the monitor changed the training"));
            }
            // The monitor's numbers at step 6 are compare's: the gradient and the PC update at the parameters before step 6.
            try (Model m = Model.create(ServingTest.MLP, be, 4); PcEngine e = new PcEngine(m, Loss.CROSS_ENTROPY); Adam a = new Adam(m, 0.01f)) {
                Trainer t = new Trainer(e, a, Algorithm.STRICT, 0.1f, 8);
                for (int s = 0; s < 5; s++) t.step(x, y, 12);
                e.infer(x, y, 12, Algorithm.BACKPROP, 0.1f, 8);
                Map<String, float[]> g = m.gradientValues();
                e.infer(x, y, 12, Algorithm.STRICT, 0.1f, 8);
                Alignment direct = Alignment.between(m, g, m.gradientValues(), 6);
                assertArrayEquals(new int[]{0, 1, 2}, last.alignment().blocks());
                assertArrayEquals(direct.angleDegrees(), last.alignment().angleDegrees(), 1e-9);
                assertArrayEquals(direct.relativeError(), last.alignment().relativeError(), 1e-9);
                assertTrue(direct.maxAngle() > 0 && direct.maxAngle() < 90, "STRICT's update points roughly along the gradient: " + direct.maxAngle());
            }
        });
    }
}
