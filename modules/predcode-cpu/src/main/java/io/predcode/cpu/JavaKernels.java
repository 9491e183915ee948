package io.predcode.cpu;

import io.predcode.spi.Activation;

import java.lang.foreign.MemorySegment;

import static io.predcode.cpu.CpuBackend.F;

/**
 * The elementwise kernels in Java, with the signatures of {@link NativeKernels} (elements [from, to)
 * of off-heap segments; activations for every {@link Activation}, where the native ones have ReLU).
 * They stage L1-sized chunks through on-heap tiles: bulk copies in, a plain array loop the JIT
 * unrolls and vectorises, bulk copies out. Per-element access to several native segments in one loop
 * is several times slower on this JVM. Each thread has its own tiles.
 */
final class JavaKernels {
    private JavaKernels() {}

    static final int CHUNK = 1024;
    private static final ThreadLocal<float[][]> TILES = ThreadLocal.withInitial(() -> new float[9][CHUNK]);

    /** One chunk: its byte offset, its length in floats, and this thread's tiles. */
    private interface Chunk { void run(long byteOffset, int len, float[][] tiles); }

    private static void chunks(long from, long to, Chunk body) {
        float[][] tiles = TILES.get();
        for (long start = from; start < to; start += CHUNK) body.run(start * Float.BYTES, (int) Math.min(CHUNK, to - start), tiles);
    }

    static void axpby(float alpha, MemorySegment sx, float beta, MemorySegment sy, long from, long to) {
        chunks(from, to, (off, len, t) -> {
            float[] xs = t[0], ys = t[1];
            MemorySegment.copy(sx, F, off, xs, 0, len);
            MemorySegment.copy(sy, F, off, ys, 0, len);
            if (beta == 1f) for (int i = 0; i < len; i++) ys[i] += alpha * xs[i];
            else for (int i = 0; i < len; i++) ys[i] = alpha * xs[i] + beta * ys[i];
            MemorySegment.copy(ys, 0, sy, F, off, len);
        });
    }

    static void add(float alpha, MemorySegment sa, float beta, MemorySegment sb, MemorySegment so, long from, long to) {
        chunks(from, to, (off, len, t) -> {
            float[] as = t[0], bs = t[1], os = t[2];
            MemorySegment.copy(sa, F, off, as, 0, len);
            MemorySegment.copy(sb, F, off, bs, 0, len);
            for (int i = 0; i < len; i++) os[i] = alpha * as[i] + beta * bs[i];
            MemorySegment.copy(os, 0, so, F, off, len);
        });
    }

    static void activation(Activation f, float slope, MemorySegment sx, MemorySegment sy, long from, long to) {
        chunks(from, to, (off, len, t) -> {
            float[] in = t[0], out = t[1];
            MemorySegment.copy(sx, F, off, in, 0, len);
            activate(f, slope, in, out, len);
            MemorySegment.copy(out, 0, sy, F, off, len);
        });
    }

    static void activationBackward(Activation f, float slope, MemorySegment sx, MemorySegment sy, MemorySegment sd, MemorySegment so, long from, long to) {
        MemorySegment source = f.derivativeFromOutput() ? sy : sx;
        chunks(from, to, (off, len, t) -> {
            float[] v = t[0], g = t[1], out = t[2];
            MemorySegment.copy(source, F, off, v, 0, len);
            MemorySegment.copy(sd, F, off, g, 0, len);
            activateBackward(f, slope, v, g, out, len);
            MemorySegment.copy(out, 0, so, F, off, len);
        });
    }

    /**
     * Backend.activationIncrement on [from, to): x = x0 + dx, y = f(x), f'(x) where their segments are not null, the
     * change f(x0 + dx) - f(x0) (less minus) in double ({@link Activation#increment}), and where delta is not null the
     * backward's VJP of the change at x. Each chunk's inputs are read before its outputs are written (change and delta
     * may alias dx).
     */
    static void activationIncrement(Activation f, float slope, MemorySegment sx0, MemorySegment sdx, MemorySegment sx, MemorySegment sy,
                                    MemorySegment sd, MemorySegment sm, MemorySegment sc, MemorySegment se, long from, long to) {
        chunks(from, to, (off, len, t) -> {
            float[] base = t[0], change = t[1], x = t[2], y = t[3], ones = t[4], d = t[5], minus = t[6], delta = t[7];
            MemorySegment.copy(sx0, F, off, base, 0, len);
            MemorySegment.copy(sdx, F, off, change, 0, len);
            if (sm != null) MemorySegment.copy(sm, F, off, minus, 0, len);
            boolean values = sx != null || sy != null || sd != null || se != null;
            if (values) {
                for (int i = 0; i < len; i++) x[i] = base[i] + change[i];
                activate(f, slope, x, y, len);
                if (sd != null) {
                    java.util.Arrays.fill(ones, 0, len, 1f);
                    activateBackward(f, slope, f.derivativeFromOutput() ? y : x, ones, d, len);
                    MemorySegment.copy(d, 0, sd, F, off, len);
                }
                if (sx != null) MemorySegment.copy(x, 0, sx, F, off, len);
                if (sy != null) MemorySegment.copy(y, 0, sy, F, off, len);
            }
            if (f == Activation.RELU || f == Activation.LEAKY_RELU) increment(f == Activation.RELU ? 0f : slope, base, change, len);
            else for (int i = 0; i < len; i++) change[i] = (float) f.increment(slope, base[i], change[i]);
            if (sm != null) for (int i = 0; i < len; i++) change[i] -= minus[i];
            MemorySegment.copy(change, 0, sc, F, off, len);
            if (se != null) { // as the backward at x: by the kept f' where the caller keeps one, else activationBackward
                if (sd != null) for (int i = 0; i < len; i++) delta[i] = change[i] * d[i];
                else activateBackward(f, slope, f.derivativeFromOutput() ? y : x, change, delta, len);
                MemorySegment.copy(delta, 0, se, F, off, len);
            }
        });
    }

    /** y = f(x) and d = f'(x): the forward's tile, then the backward's with a gradient of ones. */
    static void activationWithDerivative(Activation f, float slope, MemorySegment sx, MemorySegment sy, MemorySegment sd, long from, long to) {
        chunks(from, to, (off, len, t) -> {
            float[] in = t[0], out = t[1], ones = t[2], d = t[3];
            MemorySegment.copy(sx, F, off, in, 0, len);
            activate(f, slope, in, out, len);
            java.util.Arrays.fill(ones, 0, len, 1f);
            activateBackward(f, slope, f.derivativeFromOutput() ? out : in, ones, d, len);
            MemorySegment.copy(out, 0, sy, F, off, len);
            MemorySegment.copy(d, 0, sd, F, off, len);
        });
    }

    static void multiply(MemorySegment sa, MemorySegment sb, MemorySegment so, long from, long to) {
        chunks(from, to, (off, len, t) -> {
            float[] as = t[0], bs = t[1], os = t[2];
            MemorySegment.copy(sa, F, off, as, 0, len);
            MemorySegment.copy(sb, F, off, bs, 0, len);
            for (int i = 0; i < len; i++) os[i] = as[i] * bs[i];
            MemorySegment.copy(os, 0, so, F, off, len);
        });
    }

    /** out = f(in) on the first len values. */
    private static void activate(Activation f, float slope, float[] in, float[] out, int len) {
        switch (f) {
            // Branch-free, so the JIT vectorises them (it does not vectorise a float ?: here, and a branch
            // on a sign mispredicts half the time): max keeps NaN as NaN; max(v, slope v) is leaky_relu for slope <= 1.
            case RELU -> { for (int i = 0; i < len; i++) out[i] = Math.max(in[i], 0f); }
            case LEAKY_RELU -> {
                if (slope <= 1f) for (int i = 0; i < len; i++) out[i] = Math.max(in[i], in[i] * slope);
                else for (int i = 0; i < len; i++) out[i] = Math.min(in[i], in[i] * slope);
            }
            case TANH -> { for (int i = 0; i < len; i++) out[i] = (float) Math.tanh(in[i]); }
            case SIGMOID -> { for (int i = 0; i < len; i++) out[i] = (float) (1.0 / (1.0 + Math.exp(-in[i]))); }
            case GELU -> { for (int i = 0; i < len; i++) out[i] = (float) (0.5 * in[i] * Activation.erfc(-in[i] * SQRT_HALF)); }
            case GELU_TANH -> {
                for (int i = 0; i < len; i++) {
                    double x = in[i];
                    out[i] = (float) (0.5 * x * (1 + Math.tanh(Activation.GELU_TANH_SCALE * (x + Activation.GELU_TANH_CUBIC * x * x * x))));
                }
            }
        }
    }

    /** out = g f'(.) on the first len values; v is f's input, or its output where {@link Activation#derivativeFromOutput}. */
    private static void activateBackward(Activation f, float slope, float[] v, float[] g, float[] out, int len) {
        switch (f) {
            // PyTorch: relu'(0) = 0, leaky_relu'(0) = slope. step(v) is exactly 1 for v > 0 (the smallest
            // subnormal times 2^254 is still >= 1) and 0 otherwise, branch-free as above.
            case RELU -> { for (int i = 0; i < len; i++) out[i] = g[i] * step(v[i]); }
            case LEAKY_RELU -> {
                for (int i = 0; i < len; i++) {
                    float s = step(v[i]);
                    out[i] = g[i] * (s + (1f - s) * slope);
                }
            }
            case TANH -> { for (int i = 0; i < len; i++) out[i] = g[i] * (1f - v[i] * v[i]); }
            case SIGMOID -> { for (int i = 0; i < len; i++) out[i] = g[i] * v[i] * (1f - v[i]); }
            case GELU -> { // Phi(x) + x phi(x)
                for (int i = 0; i < len; i++) {
                    double x = v[i];
                    out[i] = (float) (g[i] * (0.5 * Activation.erfc(-x * SQRT_HALF) + x * Math.exp(-0.5 * x * x) * INV_SQRT_2PI));
                }
            }
            case GELU_TANH -> { // (1 + t) / 2 + x (1 - t^2) u' / 2 with t = tanh(u)
                for (int i = 0; i < len; i++) {
                    double x = v[i], t = Math.tanh(Activation.GELU_TANH_SCALE * (x + Activation.GELU_TANH_CUBIC * x * x * x));
                    out[i] = (float) (g[i] * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * Activation.GELU_TANH_SCALE * (1 + 3 * Activation.GELU_TANH_CUBIC * x * x)));
                }
            }
        }
    }

    private static final double SQRT_HALF = Math.sqrt(0.5), INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

    /** 1 for v &gt; 0, else 0 (NaN: 0), without a branch. */
    private static float step(float v) { return Math.min(Math.max(v * 0x1p127f * 0x1p127f, 0f), 1f); }

    /**
     * Backend.pcPredictionError on [from, to): e = (p - a) - d, as strictStep forms it; where sf is not NULL, g = e * f;
     * where sn is not NULL, the displacement's step n = d + momentum (d - q) + eta e (sq NULL: d + eta e; BeliefStep).
     */
    static void predictionError(MemorySegment sp, MemorySegment sa, MemorySegment sd, MemorySegment se, MemorySegment sf, MemorySegment sg,
                                MemorySegment sn, float eta, float momentum, MemorySegment sq, long from, long to) {
        boolean delta = !sf.equals(MemorySegment.NULL), next = !sn.equals(MemorySegment.NULL), heavyBall = !sq.equals(MemorySegment.NULL);
        chunks(from, to, (off, len, t) -> {
            float[] p = t[0], a = t[1], d = t[3], e = t[5], f = t[2], g = t[4];
            MemorySegment.copy(sp, F, off, p, 0, len);
            MemorySegment.copy(sa, F, off, a, 0, len);
            MemorySegment.copy(sd, F, off, d, 0, len);
            for (int i = 0; i < len; i++) e[i] = (p[i] - a[i]) - d[i];
            MemorySegment.copy(e, 0, se, F, off, len);
            if (next) { // p and a are free: the previous displacements, then the step
                if (heavyBall) {
                    MemorySegment.copy(sq, F, off, p, 0, len);
                    for (int i = 0; i < len; i++) a[i] = (d[i] + momentum * (d[i] - p[i])) + eta * e[i];
                } else for (int i = 0; i < len; i++) a[i] = d[i] + eta * e[i];
                MemorySegment.copy(a, 0, sn, F, off, len);
            }
            if (!delta) return;
            MemorySegment.copy(sf, F, off, f, 0, len);
            for (int i = 0; i < len; i++) g[i] = e[i] * f[i];
            MemorySegment.copy(g, 0, sg, F, off, len);
        });
    }

    /** Backend.pcStrictUpdate on [from, to); {@code se} may be null. When prediction is vhat (layer 1) one stream fewer is read. */
    static void strictUpdate(MemorySegment sp, MemorySegment sa, MemorySegment sf, MemorySegment sd, MemorySegment sv, MemorySegment se, float eta,
                             long from, long to) {
        boolean samePrediction = sp.address() == sa.address();
        chunks(from, to, (off, len, t) -> {
            float[] a = t[1], p = samePrediction ? a : t[0], f = t[2], d = t[3], v = t[4], e = t[5];
            MemorySegment.copy(sa, F, off, a, 0, len);
            if (!samePrediction) MemorySegment.copy(sp, F, off, p, 0, len);
            MemorySegment.copy(sf, F, off, f, 0, len);
            MemorySegment.copy(sd, F, off, d, 0, len);
            strictStep(p, a, f, d, e, v, eta, len);
            if (se != null) MemorySegment.copy(e, 0, se, F, off, len);
            MemorySegment.copy(d, 0, sd, F, off, len);
            MemorySegment.copy(v, 0, sv, F, off, len);
        });
    }

    /**
     * A (leaky) ReLU's change f(a + h) - f(a), over h in place, in float and branch-free (the JIT vectorises it): h or
     * slope h where a and a + h sit on one side of 0, exact; across 0, (a + h)'s part less a's, each at most |h|.
     */
    private static void increment(float slope, float[] a, float[] h, int len) {
        for (int i = 0; i < len; i++) {
            float x = a[i], d = h[i], y = x + d, sx = step(x), sy = step(y);
            h[i] = sx * sy * d + (1f - sx) * (1f - sy) * slope * d + (1f - sx) * sy * (y - slope * x) + sx * (1f - sy) * (slope * y - x);
        }
    }

    /** Backend.pcStrictStep on [from, to): d += eta (e - f), v = a + d. */
    static void strictStep(MemorySegment se, MemorySegment sa, MemorySegment sf, MemorySegment sd, MemorySegment sv, float eta, long from, long to) {
        chunks(from, to, (off, len, t) -> {
            float[] e = t[0], a = t[1], f = t[2], d = t[3], v = t[4];
            MemorySegment.copy(se, F, off, e, 0, len);
            MemorySegment.copy(sa, F, off, a, 0, len);
            MemorySegment.copy(sf, F, off, f, 0, len);
            MemorySegment.copy(sd, F, off, d, 0, len);
            for (int i = 0; i < len; i++) {
                d[i] += eta * (e[i] - f[i]);
                v[i] = a[i] + d[i];
            }
            MemorySegment.copy(d, 0, sd, F, off, len);
            MemorySegment.copy(v, 0, sv, F, off, len);
        });
    }

    /** Backend.pcMomentumUpdate on [from, to); {@code se} may be null. */
    static void momentumUpdate(MemorySegment sp, MemorySegment sa, MemorySegment sf, MemorySegment sd, MemorySegment sm, MemorySegment sv,
                               MemorySegment se, float eta, float momentum, boolean firstStep, long from, long to) {
        boolean samePrediction = sp.address() == sa.address();
        chunks(from, to, (off, len, t) -> {
            float[] a = t[1], p = samePrediction ? a : t[0], f = t[2], d = t[3], v = t[4], e = t[5], m = t[6];
            MemorySegment.copy(sa, F, off, a, 0, len);
            if (!samePrediction) MemorySegment.copy(sp, F, off, p, 0, len);
            MemorySegment.copy(sf, F, off, f, 0, len);
            MemorySegment.copy(sd, F, off, d, 0, len);
            if (!firstStep) MemorySegment.copy(sm, F, off, m, 0, len);
            for (int i = 0; i < len; i++) {
                float ei = (p[i] - a[i]) - d[i];
                float mi = firstStep ? f[i] - ei : momentum * m[i] + (f[i] - ei); // the first step reads no velocity
                float di = d[i] - eta * mi;
                e[i] = ei;
                m[i] = mi;
                d[i] = di;
                v[i] = a[i] + di;
            }
            if (se != null) MemorySegment.copy(e, 0, se, F, off, len);
            MemorySegment.copy(m, 0, sm, F, off, len);
            MemorySegment.copy(d, 0, sd, F, off, len);
            MemorySegment.copy(v, 0, sv, F, off, len);
        });
    }

    /** Backend.pcAdamUpdate on [from, to), its bias corrections folded into stepSize and bc2Sqrt; {@code se} may be null. */
    static void adamUpdate(MemorySegment sp, MemorySegment sa, MemorySegment sf, MemorySegment sd, MemorySegment sm, MemorySegment ss, MemorySegment sv,
                           MemorySegment se, float stepSize, float bc2Sqrt, float beta1, float beta2, float eps, long from, long to) {
        boolean samePrediction = sp.address() == sa.address();
        chunks(from, to, (off, len, t) -> {
            float[] a = t[1], p = samePrediction ? a : t[0], f = t[2], d = t[3], m = t[4], s = t[5], v = t[6], e = t[7];
            MemorySegment.copy(sa, F, off, a, 0, len);
            if (!samePrediction) MemorySegment.copy(sp, F, off, p, 0, len);
            MemorySegment.copy(sf, F, off, f, 0, len);
            MemorySegment.copy(sd, F, off, d, 0, len);
            MemorySegment.copy(sm, F, off, m, 0, len);
            MemorySegment.copy(ss, F, off, s, 0, len);
            for (int i = 0; i < len; i++) {
                float ei = (p[i] - a[i]) - d[i], gi = f[i] - ei;
                float mi = beta1 * m[i] + (1f - beta1) * gi, si = beta2 * s[i] + (1f - beta2) * gi * gi; // as adamStep rounds them
                float di = d[i] - stepSize * mi / ((float) Math.sqrt(si) / bc2Sqrt + eps);
                e[i] = ei;
                m[i] = mi;
                s[i] = si;
                d[i] = di;
                v[i] = a[i] + di;
            }
            if (se != null) MemorySegment.copy(e, 0, se, F, off, len);
            MemorySegment.copy(m, 0, sm, F, off, len);
            MemorySegment.copy(s, 0, ss, F, off, len);
            MemorySegment.copy(d, 0, sd, F, off, len);
            MemorySegment.copy(v, 0, sv, F, off, len);
        });
    }

    /** STRICT's update of len values: e = (p - a) - d, d += eta (e - f), v = a + d. */
    private static void strictStep(float[] p, float[] a, float[] f, float[] d, float[] e, float[] v, float eta, int len) {
        for (int i = 0; i < len; i++) {
            float ei = (p[i] - a[i]) - d[i];
            float di = d[i] + eta * (ei - f[i]);
            e[i] = ei;
            d[i] = di;
            v[i] = a[i] + di;
        }
    }

    /**
     * Rows [from, to) of softmax cross-entropy: returns the sum of their losses, and writes their
     * gradients (softmax - onehot) / rows into dlogits when it is not null. exp in double; gradients
     * below float's normal range are flushed to zero (see flushSubnormal).
     */
    static double softmaxCrossEntropy(MemorySegment sl, MemorySegment sy, MemorySegment sg, int from, int to, double divisor, int classes) {
        double total = 0;
        double[] e = new double[classes]; // exp(logit - max), computed once per logit: exp dominates this op
        for (int r = from; r < to; r++) {
            long base = (long) r * classes;
            double max = Double.NEGATIVE_INFINITY;
            for (int c = 0; c < classes; c++) max = Math.max(max, sl.getAtIndex(F, base + c));
            double sum = 0;
            for (int c = 0; c < classes; c++) sum += e[c] = Math.exp(sl.getAtIndex(F, base + c) - max);
            double lse = max + Math.log(sum);
            float labelValue = sy.getAtIndex(F, r);
            int label = (int) labelValue;
            boolean valid = label == labelValue && label >= 0 && label < classes;
            total += valid ? lse - sl.getAtIndex(F, base + label) : Double.NaN;
            if (sg != null)
                for (int c = 0; c < classes; c++) {
                    double p = e[c] / sum;
                    sg.setAtIndex(F, base + c, valid ? flushSubnormal((float) ((p - (c == label ? 1 : 0)) / divisor)) : Float.NaN);
                }
        }
        return total;
    }

    /**
     * A confident classifier's softmax gives the other classes probabilities like e^-100, below
     * float's normal range. Subnormal operands cost x86 ~100 cycles per operation, and in a relaxation
     * they flow through every sweep's GEMMs and kernels (a fashion-mnist STRICT step ran 3x slower than
     * on random data). Gradients below 1.2e-38 are flushed to zero, a change no tolerance can see.
     */
    private static float flushSubnormal(float v) { return Math.abs(v) < Float.MIN_NORMAL ? 0f : v; }

    /** torch.optim.SGD on [from, to); {@code sb} is null without momentum. */
    static void sgdStep(MemorySegment sp, MemorySegment sg, MemorySegment sb, float lr, float momentum, float dampening, float weightDecay,
                        boolean nesterov, boolean firstStep, long from, long to) {
        chunks(from, to, (off, len, t) -> {
            float[] p = t[0], g = t[1], buf = t[2];
            MemorySegment.copy(sp, F, off, p, 0, len);
            MemorySegment.copy(sg, F, off, g, 0, len);
            if (momentum != 0f && !firstStep) MemorySegment.copy(sb, F, off, buf, 0, len);
            for (int i = 0; i < len; i++) {
                float d = g[i] + weightDecay * p[i];
                if (momentum != 0f) {
                    float b = firstStep ? d : momentum * buf[i] + (1f - dampening) * d;
                    buf[i] = b;
                    d = nesterov ? d + momentum * b : b;
                }
                p[i] -= lr * d;
            }
            MemorySegment.copy(p, 0, sp, F, off, len);
            if (momentum != 0f) MemorySegment.copy(buf, 0, sb, F, off, len);
        });
    }

    /** torch.optim.Adam on [from, to), its bias corrections folded into stepSize and bc2Sqrt by the caller; the parameters times decay first. */
    static void adamStep(MemorySegment sp, MemorySegment sg, MemorySegment sm, MemorySegment sv, float stepSize, float bc2Sqrt, float beta1, float beta2,
                         float eps, float weightDecay, float decay, long from, long to) {
        chunks(from, to, (off, len, t) -> {
            float[] p = t[0], g = t[1], mm = t[2], vv = t[3];
            MemorySegment.copy(sp, F, off, p, 0, len);
            MemorySegment.copy(sg, F, off, g, 0, len);
            MemorySegment.copy(sm, F, off, mm, 0, len);
            MemorySegment.copy(sv, F, off, vv, 0, len);
            for (int i = 0; i < len; i++) {
                p[i] *= decay;
                float gi = g[i] + weightDecay * p[i];
                float mi = beta1 * mm[i] + (1f - beta1) * gi, vi = beta2 * vv[i] + (1f - beta2) * gi * gi;
                mm[i] = mi;
                vv[i] = vi;
                p[i] -= stepSize * mi / ((float) Math.sqrt(vi) / bc2Sqrt + eps);
            }
            MemorySegment.copy(p, 0, sp, F, off, len);
            MemorySegment.copy(mm, 0, sm, F, off, len);
            MemorySegment.copy(vv, 0, sv, F, off, len);
        });
    }

    /**
     * In double, chunk by chunk through this thread's tile: element i into running sum i mod 8, the last n mod 8 into
     * sum 0, the eight added pairwise at the end (one sum was a chain of dependent additions, about a float a
     * nanosecond). The native kernel (pc_sum_squares) keeps this order, so the two give the same bits.
     */
    static double sumSquares(MemorySegment sx, long n) {
        float[] t = TILES.get()[0];
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
        for (long start = 0; start < n; start += CHUNK) {
            int len = (int) Math.min(CHUNK, n - start), i = 0;
            MemorySegment.copy(sx, F, start * Float.BYTES, t, 0, len);
            for (; i + 8 <= len; i += 8) {
                s0 += (double) t[i] * t[i];
                s1 += (double) t[i + 1] * t[i + 1];
                s2 += (double) t[i + 2] * t[i + 2];
                s3 += (double) t[i + 3] * t[i + 3];
                s4 += (double) t[i + 4] * t[i + 4];
                s5 += (double) t[i + 5] * t[i + 5];
                s6 += (double) t[i + 6] * t[i + 6];
                s7 += (double) t[i + 7] * t[i + 7];
            }
            for (; i < len; i++) s0 += (double) t[i] * t[i];
        }
        return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
    }
}
