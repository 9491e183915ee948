package io.predcode.core;

import io.predcode.spi.Activation;

import java.util.SplittableRandom;

/**
 * An independent float64 reference: an MLP with MSE loss (tanh hidden blocks, or another smooth
 * activation), and FIXED_PRED exactly as Torch2PC writes it (beliefs v stored, eps = vhat - v formed
 * each sweep). Used to show that the engine's float32 results track float64 where Torch2PC's own
 * float32 formulation does not.
 */
final class Float64Mlp {
    final int[] sizes;
    final double[][] w, b; // w[l] is [sizes[l+1], sizes[l]] row-major
    final Activation activation;

    Float64Mlp(int[] sizes, long seed) { this(sizes, seed, Activation.TANH); }

    /** With {@code activation} (tanh, gelu or gelu_tanh) after every block but the last. */
    Float64Mlp(int[] sizes, long seed, Activation activation) {
        if (activation != Activation.TANH && activation != Activation.GELU && activation != Activation.GELU_TANH)
            throw new IllegalArgumentException("the float64 MLP has tanh, gelu or gelu_tanh, not " + activation);
        this.sizes = sizes;
        this.activation = activation;
        SplittableRandom r = new SplittableRandom(seed);
        int L = sizes.length - 1;
        w = new double[L][];
        b = new double[L][];
        for (int l = 0; l < L; l++) {
            double bound = 1 / Math.sqrt(sizes[l]);
            w[l] = new double[sizes[l + 1] * sizes[l]];
            b[l] = new double[sizes[l + 1]];
            for (int i = 0; i < w[l].length; i++) w[l][i] = (float) ((r.nextDouble() * 2 - 1) * bound);
            for (int i = 0; i < b[l].length; i++) b[l][i] = (float) ((r.nextDouble() * 2 - 1) * bound);
        }
    }

    int depth() { return sizes.length - 1; }

    private static final double GELU_C = Math.sqrt(2 / Math.PI), GELU_A = 0.044715;

    private double f(double s) {
        return switch (activation) {
            case TANH -> Math.tanh(s);
            case GELU -> 0.5 * s * Activation.erfc(-s / Math.sqrt(2));
            default -> 0.5 * s * (1 + Math.tanh(GELU_C * (s + GELU_A * s * s * s)));
        };
    }

    private double fPrime(double s) {
        return switch (activation) {
            case TANH -> 1 - Math.tanh(s) * Math.tanh(s);
            case GELU -> 0.5 * Activation.erfc(-s / Math.sqrt(2)) + s * Math.exp(-0.5 * s * s) / Math.sqrt(2 * Math.PI);
            default -> {
                double t = Math.tanh(GELU_C * (s + GELU_A * s * s * s));
                yield 0.5 * (1 + t) + 0.5 * s * (1 - t * t) * GELU_C * (1 + 3 * GELU_A * s * s);
            }
        };
    }

    /** Block l's pre-activation W x + b. */
    private double[] affine(int l, double[] x, int batch) {
        int in = sizes[l], out = sizes[l + 1];
        double[] y = new double[batch * out];
        for (int n = 0; n < batch; n++)
            for (int o = 0; o < out; o++) {
                double s = b[l][o];
                for (int i = 0; i < in; i++) s += x[n * in + i] * w[l][o * in + i];
                y[n * out + o] = s;
            }
        return y;
    }

    /** Block l: linear then the activation, except the last block (linear only). */
    double[] block(int l, double[] x, int batch) {
        double[] y = affine(l, x, batch);
        if (l < depth() - 1) for (int i = 0; i < y.length; i++) y[i] = f(y[i]);
        return y;
    }

    /** g times the activation's derivative at block l's pre-activation for x: the gradient at the affine output. */
    private double[] throughActivation(int l, double[] x, double[] g, int batch) {
        double[] d = affine(l, x, batch);
        for (int i = 0; i < d.length; i++) d[i] = g[i] * (l == depth() - 1 ? 1 : fPrime(d[i]));
        return d;
    }

    /** J_x^T g for block l at x. */
    double[] vjpInput(int l, double[] x, double[] g, int batch) {
        int in = sizes[l], out = sizes[l + 1];
        double[] d = throughActivation(l, x, g, batch), dx = new double[batch * in];
        for (int n = 0; n < batch; n++)
            for (int o = 0; o < out; o++)
                for (int i = 0; i < in; i++) dx[n * in + i] += d[n * out + o] * w[l][o * in + i];
        return dx;
    }

    /** J_W^T g for block l at x: [out, in]. */
    double[] vjpWeight(int l, double[] x, double[] g, int batch) {
        int in = sizes[l], out = sizes[l + 1];
        double[] d = throughActivation(l, x, g, batch), dw = new double[out * in];
        for (int n = 0; n < batch; n++)
            for (int o = 0; o < out; o++)
                for (int i = 0; i < in; i++) dw[o * in + i] += d[n * out + o] * x[n * in + i];
        return dw;
    }

    /** J_b^T g for block l at x: [out]. */
    double[] vjpBias(int l, double[] x, double[] g, int batch) {
        int out = sizes[l + 1];
        double[] d = throughActivation(l, x, g, batch), db = new double[out];
        for (int n = 0; n < batch; n++)
            for (int o = 0; o < out; o++) db[o] += d[n * out + o];
        return db;
    }

    /**
     * Standard PC on the per-sample energy (PCX's), mse, in float64: the output term ||u - h||^2 / 2
     * with h = y, or with {@code beta} != 0 h = vhat_L - beta (vhat_L - y) and the updates over beta;
     * each hidden term ||v_l - f_l(v_{l-1})||^2 / 2; n steps of SGD with momentum {@code mu} (PyTorch's
     * form) of size eta on the beliefs, all from the state at the step's start. With {@code ipcLr} > 0
     * it is iPC: after each step's belief update every block also takes a plain SGD step of that size
     * on the batch mean of its energy gradient at that state (w and b change in place), and null is
     * returned. Otherwise the parameter updates, the energy's gradient at the final beliefs (PCX's
     * learning step); {weights of block 0, bias of block 0, ...}.
     */
    double[][] standardPc(double[] x, double[] y, int batch, double eta, double mu, int n, double beta, double ipcLr) {
        int L = depth();
        double[][] v = new double[L + 1][], m = new double[L][], eps = new double[L + 1][];
        v[0] = x.clone();
        for (int l = 0; l < L; l++) v[l + 1] = block(l, v[l], batch);
        double[] h = y.clone();
        if (beta != 0) for (int i = 0; i < h.length; i++) h[i] = v[L][i] - beta * (v[L][i] - y[i]);
        double scale = 1.0 / batch / (beta != 0 ? beta : 1);
        for (int s = 1; s <= n; s++) {
            for (int l = 1; l <= L; l++) {
                double[] pred = block(l - 1, v[l - 1], batch);
                eps[l] = new double[pred.length];
                // eps_l = f_l(v_{l-1}) - v_l for hidden layers; the output's is dE/du = u - h.
                for (int i = 0; i < pred.length; i++) eps[l][i] = l == L ? pred[i] - h[i] : pred[i] - v[l][i];
            }
            double[][] grads = new double[L][];
            for (int l = 1; l < L; l++) {
                double[] g = vjpInput(l, v[l], eps[l + 1], batch);
                for (int i = 0; i < g.length; i++) g[i] -= eps[l][i];
                grads[l] = g;
            }
            double[][] dw = new double[L][], db = new double[L][];
            if (ipcLr > 0) for (int l = 0; l < L; l++) {
                dw[l] = vjpWeight(l, v[l], eps[l + 1], batch);
                db[l] = vjpBias(l, v[l], eps[l + 1], batch);
            }
            for (int l = 1; l < L; l++) {
                if (s == 1) m[l] = grads[l].clone();
                else for (int i = 0; i < m[l].length; i++) m[l][i] = mu * m[l][i] + grads[l][i];
                for (int i = 0; i < v[l].length; i++) v[l][i] -= eta * m[l][i];
            }
            if (ipcLr > 0) for (int l = 0; l < L; l++) {
                for (int i = 0; i < w[l].length; i++) w[l][i] -= ipcLr * scale * dw[l][i];
                for (int i = 0; i < b[l].length; i++) b[l][i] -= ipcLr * scale * db[l][i];
            }
        }
        if (ipcLr > 0) return null;
        for (int l = 1; l <= L; l++) { // the errors at the final beliefs
            double[] pred = block(l - 1, v[l - 1], batch);
            for (int i = 0; i < pred.length; i++) eps[l][i] = l == L ? pred[i] - h[i] : pred[i] - v[l][i];
        }
        double[][] updates = new double[2 * L][];
        for (int l = 0; l < L; l++) {
            updates[2 * l] = vjpWeight(l, v[l], eps[l + 1], batch);
            updates[2 * l + 1] = vjpBias(l, v[l], eps[l + 1], batch);
            for (double[] u : new double[][]{updates[2 * l], updates[2 * l + 1]}) for (int i = 0; i < u.length; i++) u[i] *= scale;
        }
        return updates;
    }

    /**
     * STRICT as Torch2PC, mse (PyTorch's mean over all elements), in float64: n sweeps from v = vhat, each from the
     * state at its start, eps_L = dL/du at the predicted output and eps_l = f_l(v_{l-1}) - v_l below it, every hidden
     * v_l += eta (eps_l - J_{l+1}^T eps_{l+1}). The parameter updates J_theta^T eps_{l+1} take the errors of the last
     * sweep's start and each block's Jacobian at the final beliefs; {weights of block 0, bias of block 0, ...}.
     */
    double[][] strict(double[] x, double[] y, int batch, double eta, int n) {
        int L = depth();
        double[][] v = new double[L + 1][], eps = new double[L + 1][];
        v[0] = x.clone();
        for (int l = 0; l < L; l++) v[l + 1] = block(l, v[l], batch);
        for (int s = 1; s <= n; s++) {
            for (int l = 1; l <= L; l++) {
                double[] pred = block(l - 1, v[l - 1], batch);
                eps[l] = new double[pred.length];
                for (int i = 0; i < pred.length; i++) eps[l][i] = l == L ? 2 * (pred[i] - y[i]) / pred.length : pred[i] - v[l][i];
            }
            double[][] feedback = new double[L][];
            for (int l = 1; l < L; l++) feedback[l] = vjpInput(l, v[l], eps[l + 1], batch);
            for (int l = 1; l < L; l++) for (int i = 0; i < v[l].length; i++) v[l][i] += eta * (eps[l][i] - feedback[l][i]);
        }
        double[][] updates = new double[2 * L][];
        for (int l = 0; l < L; l++) {
            updates[2 * l] = vjpWeight(l, v[l], eps[l + 1], batch);
            updates[2 * l + 1] = vjpBias(l, v[l], eps[l + 1], batch);
        }
        return updates;
    }

    /**
     * Generative inference in float64, mse: the output held at y (term ||u - y||^2 / 2), every other
     * layer, the input included, moved by n plain gradient steps of size eta on each sample's energy,
     * all from the state at the step's start. Returns the final input.
     */
    double[] generate(double[] x0, double[] y, int batch, double eta, int n) { return generate(x0, y, batch, eta, 0, n); }

    /** {@link #generate(double[], double[], int, double, int)} by heavy-ball momentum: u = momentum u + grad, v -= eta u, from u = 0. */
    double[] generate(double[] x0, double[] y, int batch, double eta, double momentum, int n) {
        int L = depth();
        double[][] u = new double[L][];
        double[][] v = new double[L][], eps = new double[L + 1][];
        v[0] = x0.clone();
        for (int l = 0; l + 1 < L; l++) v[l + 1] = block(l, v[l], batch);
        for (int s = 0; s < n; s++) {
            for (int l = 1; l <= L; l++) {
                double[] pred = block(l - 1, v[l - 1], batch);
                eps[l] = new double[pred.length];
                for (int i = 0; i < pred.length; i++) eps[l][i] = l == L ? pred[i] - y[i] : pred[i] - v[l][i];
            }
            double[][] grads = new double[L][];
            for (int l = 0; l < L; l++) {
                grads[l] = vjpInput(l, v[l], eps[l + 1], batch);
                if (l > 0) for (int i = 0; i < grads[l].length; i++) grads[l][i] -= eps[l][i];
            }
            for (int l = 0; l < L; l++) {
                if (u[l] == null) u[l] = new double[v[l].length];
                for (int i = 0; i < v[l].length; i++) {
                    u[l][i] = momentum * u[l][i] + grads[l][i];
                    v[l][i] -= eta * u[l][i];
                }
            }
        }
        return v[0];
    }

    /** FIXED_PRED as Torch2PC, in float64: returns the weight updates of every block. */
    double[][] fixedPredWeightUpdates(double[] x, double[] target, int batch, double eta, int sweeps) {
        return fixedPredWeightUpdates(x, target, batch, eta, sweeps, false);
    }

    private static double[] round(double[] a, boolean f32) {
        if (f32) for (int i = 0; i < a.length; i++) a[i] = (float) a[i];
        return a;
    }

    /**
     * With {@code float32Storage}, every tensor Torch2PC stores (vhat, v, eps, the VJP) is rounded to
     * float32 as it is written: Torch2PC's own formulation run in float32, where eps = vhat - v cancels.
     */
    double[][] fixedPredWeightUpdates(double[] x, double[] target, int batch, double eta, int sweeps, boolean float32Storage) {
        int L = depth();
        double[][] vhat = new double[L + 1][];
        vhat[0] = round(x.clone(), float32Storage);
        for (int l = 0; l < L; l++) vhat[l + 1] = round(block(l, vhat[l], batch), float32Storage);
        double[][] eps = new double[L + 1][], v = new double[L + 1][];
        eps[L] = new double[vhat[L].length];
        for (int i = 0; i < eps[L].length; i++) eps[L][i] = 2 * (vhat[L][i] - target[i]) / eps[L].length;
        round(eps[L], float32Storage);
        for (int l = 0; l <= L; l++) v[l] = vhat[l].clone();
        for (int s = 0; s < sweeps; s++)
            for (int l = L - 1; l >= 0; l--) {
                eps[l] = new double[v[l].length];
                for (int i = 0; i < v[l].length; i++) eps[l][i] = vhat[l][i] - v[l][i];
                round(eps[l], float32Storage);
                double[] g = round(vjpInput(l, vhat[l], eps[l + 1], batch), float32Storage);
                for (int i = 0; i < v[l].length; i++) v[l][i] += eta * (eps[l][i] - g[i]);
                round(v[l], float32Storage);
            }
        double[][] updates = new double[L][];
        for (int l = 0; l < L; l++) updates[l] = vjpWeight(l, vhat[l], eps[l + 1], batch);
        return updates;
    }
}
