package io.predcode.study;

import io.predcode.core.nn.BuiltinModels;
import io.predcode.core.nn.Loss;
import io.predcode.core.nn.Model;
import io.predcode.core.nn.Parameter;
import io.predcode.core.optim.Adam;
import io.predcode.core.optim.Optimizer;
import io.predcode.core.optim.Sgd;
import io.predcode.core.pc.Algorithm;
import io.predcode.core.pc.Alignment;
import io.predcode.core.pc.InferenceResult;
import io.predcode.core.pc.PcEngine;
import io.predcode.data.Batches;
import io.predcode.data.Dataset;
import io.predcode.data.Digits;
import io.predcode.spi.Backend;
import io.predcode.spi.BackendOptions;
import io.predcode.spi.Backends;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The STRICT collapse on digits, measured step by step (docs/stability.md): Torch2PC's settings
 * (digits-mlp, cross-entropy, eta 0.1, n 20, Adam lr 0.002, batch 32, the whole 1,497-image training
 * set), and per step and block: the loss; |eps_l| and |v_l - vhat_l| after the relaxation; the PC
 * energy after each sweep's start (last sweep); the update's angle and relative error to the backprop
 * gradient; the optimizer's step |delta theta| / |theta|; and each weight's spectral norm, which bounds
 * how large a step the relaxation (gradient descent on the energy) can take.
 *
 * <p>With {@code stable}, the step does what {@code Trainer.stableRelaxation} does: when the
 * relaxation ends above the feedforward loss, eta is halved from then on and the batch relaxed again.
 *
 * <p>Usage: {@code CollapseStudy OUT.csv [epochs=20] [seed=0] [optimizer=adam|sgd] [lr=0.002] [eta=0.1] [weightDecay=0] [stable|torch2pc]}.
 */
public final class CollapseStudy {
    public static void main(String[] args) throws IOException {
        Path csv = Path.of(args[0]);
        int epochs = args.length > 1 ? Integer.parseInt(args[1]) : 20;
        long seed = args.length > 2 ? Long.parseLong(args[2]) : 0;
        String optName = args.length > 3 ? args[3] : "adam";
        float lr = args.length > 4 ? Float.parseFloat(args[4]) : 0.002f;
        float eta = args.length > 5 ? Float.parseFloat(args[5]) : 0.1f;
        float wd = args.length > 6 ? Float.parseFloat(args[6]) : 0f;
        boolean stable = args.length > 7 && args[7].equals("stable");
        int n = 20;
        Dataset train = Digits.split().train();
        StringBuilder out = new StringBuilder("step,epoch,loss,accuracy,energy,eta");
        int depth = 3;
        for (int b = 0; b < depth; b++)
            out.append(String.format(",eps%d,disp%d,angle%d,relerr%d,adam_step%d,spectral%d", b + 1, b + 1, b, b, b, b));
        out.append('\n');
        try (Backend be = Backends.open("cpu", new BackendOptions(1, 0)); Model m = Model.create(BuiltinModels.get("digits-mlp"), be, seed);
             PcEngine e = new PcEngine(m, Loss.CROSS_ENTROPY);
             Optimizer opt = optName.equals("sgd") ? new Sgd(m, lr, 0.9f, wd) : new Adam(m, lr, 0.9f, 0.999f, 1e-8f, wd)) {
            long step = 0;
            for (int epoch = 0; epoch < epochs; epoch++) {
                try (Batches batches = new Batches(train, 32, seed, epoch, true)) {
                    while (batches.hasNext()) {
                        Batches.Batch bt = batches.next();
                        float[] x = bt.x().toArray(java.lang.foreign.ValueLayout.JAVA_FLOAT), y = bt.y().toArray(java.lang.foreign.ValueLayout.JAVA_FLOAT);
                        e.infer(x, y, bt.size(), Algorithm.BACKPROP, eta, n);
                        Map<String, float[]> gradient = m.gradientValues();
                        InferenceResult r = e.infer(x, y, bt.size(), Algorithm.STRICT, eta, n);
                        double energy = r.energy();
                        while (stable && energy > r.loss() * 1.001 + 1e-6 && eta > 1e-6) {
                            eta /= 2;
                            r = e.infer(x, y, bt.size(), Algorithm.STRICT, eta, n);
                            energy = r.energy();
                        }
                        step++;
                        double[] eps = new double[depth], disp = new double[depth];
                        for (int l = 1; l <= depth; l++) {
                            eps[l - 1] = norm(r.download(r.error(l))) / bt.size();
                            disp[l - 1] = l < depth ? distance(r.download(r.belief(l)), r.download(r.vhat(l))) / bt.size() : 0;
                        }
                        Alignment al = Alignment.between(m, gradient, m.gradientValues(), step);
                        Map<String, float[]> before = m.parameterValues();
                        opt.step();
                        Map<String, float[]> after = m.parameterValues();
                        out.append(step).append(',').append(epoch + 1).append(',').append(f(r.loss())).append(',').append(f((double) r.correct() / bt.size())).append(',').append(f(energy)).append(',').append(f(eta));
                        for (int b = 0; b < depth; b++) {
                            double dTheta = 0, theta = 0;
                            for (Parameter p : m.blocks().get(b).parameters()) {
                                float[] u = before.get(p.name()), v = after.get(p.name());
                                for (int i = 0; i < u.length; i++) { dTheta += sq(v[i] - u[i]); theta += sq(u[i]); }
                            }
                            Parameter w = m.blocks().get(b).parameters().getFirst();
                            out.append(',').append(f(eps[b])).append(',').append(f(disp[b])).append(',').append(f(al.angleDegrees()[b])).append(',').append(f(al.relativeError()[b]))
                                    .append(',').append(f(Math.sqrt(dTheta / theta))).append(',').append(f(spectralNorm(after.get(w.name()), w.shape()[0], w.shape()[1])));
                        }
                        out.append('\n');
                    }
                }
            }
        }
        Files.writeString(csv, out);
        System.out.println("wrote " + csv);
    }

    /** The largest singular value of a row-major [rows, cols] matrix, by power iteration on W^T W. */
    static double spectralNorm(float[] w, int rows, int cols) {
        double[] v = new double[cols];
        java.util.Arrays.fill(v, 1 / Math.sqrt(cols));
        double s = 0;
        for (int it = 0; it < 50; it++) {
            double[] u = new double[rows];
            for (int i = 0; i < rows; i++) for (int j = 0; j < cols; j++) u[i] += w[i * cols + j] * v[j];
            double[] t = new double[cols];
            for (int i = 0; i < rows; i++) for (int j = 0; j < cols; j++) t[j] += w[i * cols + j] * u[i];
            double nt = 0;
            for (double d : t) nt += d * d;
            nt = Math.sqrt(nt);
            if (nt == 0) return 0;
            for (int j = 0; j < cols; j++) v[j] = t[j] / nt;
            s = Math.sqrt(nt);
        }
        return s;
    }

    static double norm(float[] a) { double s = 0; for (float x : a) s += sq(x); return Math.sqrt(s); }

    static double distance(float[] a, float[] b) { double s = 0; for (int i = 0; i < a.length; i++) s += sq(a[i] - b[i]); return Math.sqrt(s); }

    static double sq(double x) { return x * x; }

    static String f(double v) { return String.format(Locale.ROOT, "%.6g", v); }
}
