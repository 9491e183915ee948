package io.predcode.examples.modular;

import io.predcode.core.nn.BuiltinModels;
import io.predcode.core.nn.Loss;
import io.predcode.core.nn.Model;
import io.predcode.core.optim.Adam;
import io.predcode.core.pc.Algorithm;
import io.predcode.core.pc.PcEngine;
import io.predcode.core.pc.Trainer;
import io.predcode.core.serve.Predictor;
import io.predcode.spi.Backend;
import io.predcode.spi.Backends;

/**
 * Trains digits-mlp for a few STRICT steps on random data and predicts with a {@link Predictor}, all
 * from the module path: the build runs it (exec:exec in the integration-test phase) to prove that
 * predcode's modules resolve, that the cpu backend is found as a service, and that its natives load.
 */
public final class Main {
    public static void main(String[] args) {
        if (!Main.class.getModule().isNamed()) throw new IllegalStateException("not running on the module path");
        try (Backend be = Backends.open("cpu"); Model m = Model.create(BuiltinModels.get("digits-mlp"), be, 1);
             PcEngine e = new PcEngine(m, Loss.CROSS_ENTROPY); Adam adam = new Adam(m, 0.01f); Predictor p = Predictor.of(m)) {
            float[] x = new float[8 * 64], y = new float[8];
            for (int i = 0; i < x.length; i++) x[i] = (i * 37 % 17) / 16f;
            for (int i = 0; i < y.length; i++) y[i] = i % 10;
            Trainer t = new Trainer(e, adam, Algorithm.STRICT, 0.1f, 5);
            float first = t.step(x, y, 8).loss(), last = first;
            for (int s = 0; s < 30; s++) last = t.step(x, y, 8).loss();
            p.publish(m);
            int[] classes = p.classes(x, 8);
            if (!(last < first)) throw new IllegalStateException("loss did not fall: " + first + " -> " + last);
            System.out.printf("module path OK: %s in module %s, backend %s from module %s (%s); loss %.4f -> %.4f; classes %s%n",
                    Main.class.getSimpleName(), Main.class.getModule().getName(), be.name(), be.getClass().getModule().getName(), be.description(),
                    first, last, java.util.Arrays.toString(classes));
        }
    }
}
