package io.predcode.core;

import io.predcode.core.nn.Loss;
import io.predcode.core.nn.Model;
import io.predcode.core.optim.Adam;
import io.predcode.core.pc.Algorithm;
import io.predcode.core.pc.PcEngine;
import io.predcode.core.pc.Trainer;
import io.predcode.spi.Backend;
import io.predcode.spi.BackendProvider;
import io.predcode.spi.Backends;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static io.predcode.spi.conformance.Approx.assertClose;
import static io.predcode.spi.conformance.Approx.toDouble;

/** Every available backend against the CPU: the same seeded model trained a few steps ends the same. */
class CrossBackendTest {
    @Test void everyBackendTrainsLikeTheCpu() {
        List<BackendProvider> others = Backends.providers().stream().filter(p -> !p.name().equals("cpu")).toList();
        List<BackendProvider> available = others.stream().filter(p -> p.availability().available()).toList();
        others.stream().filter(p -> !p.availability().available())
                .forEach(p -> System.out.println("SKIPPED cross-backend check on '" + p.name() + "': " + p.availability().reason()));
        Assumptions.assumeFalse(available.isEmpty(), "no backend besides cpu is available here");
        for (Algorithm a : Algorithm.values()) {
            Map<String, float[]> reference = train(Backends.provider("cpu"), a);
            for (BackendProvider p : available) {
                Map<String, float[]> got = train(p, a);
                reference.forEach((name, v) -> assertClose(p.name() + " vs cpu, " + a + ", " + name, toDouble(v), got.get(name), 1e-4));
            }
        }
    }

    private static Map<String, float[]> train(BackendProvider p, Algorithm a) {
        SplittableRandom r = new SplittableRandom(21);
        try (Backend be = p.open(io.predcode.spi.BackendOptions.defaults()); Model m = Model.create(PaperResultsTest.CNN, be, 5);
             PcEngine e = new PcEngine(m, Loss.CROSS_ENTROPY); Adam opt = new Adam(m, 1e-3f)) {
            Trainer t = new Trainer(e, opt, a, 0.1f, 8);
            for (int i = 0; i < 3; i++) t.step(PaperResultsTest.randomInput(r, 6 * e.inputSize()), PaperResultsTest.labels(r, 6, 5), 6);
            return m.parameterValues();
        }
    }
}
