package io.predcode.spi.conformance;

import io.predcode.spi.*;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static io.predcode.spi.conformance.Approx.assertClose;
import static io.predcode.spi.conformance.Approx.toDouble;
import static org.junit.jupiter.api.Assertions.*;

/**
 * The op set's contract, run against every backend module: each op against a float64 plain-Java
 * reference on awkward shapes (1, primes, sizes off any SIMD width, padded leading dimensions,
 * offsets, shared batch operands) and edge values (zeros, negatives, large magnitudes, NaN).
 * A backend that is not available here is skipped with its reason printed.
 */
public abstract class BackendConformanceTest {
    /** The provider name to test, e.g. "cpu". */
    protected abstract String backendName();

    protected Backend backend;
    protected final SplittableRandom rng = new SplittableRandom(20260101);
    private static final int[] SIZES = {1, 2, 3, 7, 8, 13, 17, 31, 64, 97};
    private static final double TOL = 2e-6;

    @BeforeEach void open() {
        BackendProvider p = Backends.provider(backendName());
        Availability a = p.availability();
        if (!a.available()) System.out.println("SKIPPED backend '" + backendName() + "': " + a.reason());
        Assumptions.assumeTrue(a.available(), () -> "backend '" + backendName() + "' unavailable: " + a.reason());
        backend = openBackend(p);
    }

    /** Opens the backend under test; a module may override it to test a variant (e.g. other kernels). */
    protected Backend openBackend(BackendProvider provider) { return provider.open(BackendOptions.defaults()); }

    @AfterEach void closeBackend() { if (backend != null) backend.close(); }

    // ------------------------------------------------------------ helpers

    private static float[] abs(float[] a) {
        for (int i = 0; i < a.length; i++) a[i] = Math.abs(a[i]);
        return a;
    }

    protected float[] random(int n, double scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) ((rng.nextDouble() * 2 - 1) * scale);
        return a;
    }

    protected Tensor tensor(float[] data, int... dims) {
        Tensor t = backend.allocate(dims);
        backend.upload(data, t);
        return t;
    }

    private int size() { return SIZES[rng.nextInt(SIZES.length)]; }

    // ------------------------------------------------------------ memory

    @Test void allocateIsZeroAndCounted() {
        Counters.Snapshot before = backend.counters().snapshot();
        try (Tensor t = backend.allocate(3, 5)) {
            assertArrayEquals(new float[15], backend.download(t));
            Counters.Snapshot d = backend.counters().snapshot().minus(before);
            assertEquals(1, d.allocations());
            assertEquals(60, d.bytesAllocated());
            assertEquals(60, d.deviceToHostBytes());
        }
    }

    @Test void uploadDownloadWithOffsetsRoundTrips() {
        float[] data = random(97, 10);
        try (Tensor t = backend.allocate(100)) {
            backend.upload(data, 3, t, 5, 50);
            float[] out = new float[60];
            backend.download(t, 5, out, 7, 50);
            for (int i = 0; i < 50; i++) assertEquals(data[3 + i], out[7 + i]);
            assertEquals(0f, backend.readScalar(t, 4));
            assertEquals(data[3], backend.readScalar(t, 5));
        }
    }

    @Test void scopeFreesWhatItMade() {
        Tensor kept;
        try (Scope scope = new Scope(backend)) {
            kept = scope.allocate(4, 4);
            assertFalse(kept.isClosed());
        }
        assertTrue(kept.isClosed());
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> backend.fill(kept, 1f));
        assertTrue(e.getMessage().contains("fill") && e.getMessage().contains("after close"), e.getMessage());
    }

    @Test void fillAndCopyRanges() {
        try (Tensor a = backend.allocate(31); Tensor b = backend.allocate(31)) {
            backend.fill(a, 2.5f);
            backend.fill(a, 3, 7, -1f);
            backend.copy(a, 1, b, 10, 20);
            float[] got = backend.download(b);
            for (int i = 0; i < 31; i++) {
                float expect = i < 10 || i >= 30 ? 0f : (i - 9 >= 3 && i - 9 < 10 ? -1f : 2.5f);
                assertEquals(expect, got[i], "b[" + i + "]");
            }
        }
    }

    // ------------------------------------------------------------ GEMM

    @Test void gemmMatchesFloat64OnAwkwardShapes() {
        for (int trial = 0; trial < 40; trial++) {
            float beta = rng.nextInt(3) == 0 ? 0f : (float) rng.nextDouble();
            checkGemm(rng.nextBoolean(), rng.nextBoolean(), size(), size(), size(), 1 + rng.nextInt(3), beta, false);
        }
    }

    /** One row or one column of C (a batch of one sample): a backend may take a matrix-vector path there; with beta 0, C's old NaNs must not survive. */
    @Test void gemmWithOneRowOrOneColumnMatchesFloat64() {
        for (boolean ta : new boolean[]{false, true})
            for (boolean tb : new boolean[]{false, true})
                for (int[] mn : new int[][]{{1, 1}, {1, 7}, {1, 130}, {7, 1}, {130, 1}})
                    for (float beta : new float[]{0f, 0.5f})
                        checkGemm(ta, tb, mn[0], mn[1], 1 + rng.nextInt(70), 1 + rng.nextInt(2), beta, beta == 0f);
    }

    private void checkGemm(boolean ta, boolean tb, int m, int n, int k, int batch, float beta, boolean nanC) {
            int padA = rng.nextInt(3), padB = rng.nextInt(3), padC = rng.nextInt(3);
            int aRows = ta ? k : m, aCols = ta ? m : k, bRows = tb ? n : k, bCols = tb ? k : n;
            int lda = aCols + padA, ldb = bCols + padB, ldc = n + padC;
            boolean shareA = rng.nextInt(4) == 0;
            long strideA = shareA ? 0 : (long) aRows * lda + 1, strideB = (long) bRows * ldb + 2, strideC = (long) m * ldc + 3;
            int offA = rng.nextInt(4), offB = rng.nextInt(4), offC = rng.nextInt(4);
            float alpha = rng.nextBoolean() ? 1f : (float) (rng.nextDouble() * 2 - 1);
            float[] a = random((int) (offA + (batch - 1) * strideA + (long) aRows * lda), 1);
            float[] b = random((int) (offB + (batch - 1) * strideB + (long) bRows * ldb), 1);
            float[] c = random((int) (offC + (batch - 1) * strideC + (long) m * ldc), 1);
            double[] expect = toDouble(c);
            for (int bi = 0; bi < batch; bi++)
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < n; j++) {
                        double s = 0;
                        for (int p = 0; p < k; p++) {
                            double av = ta ? a[(int) (offA + bi * strideA + (long) p * lda + i)] : a[(int) (offA + bi * strideA + (long) i * lda + p)];
                            double bv = tb ? b[(int) (offB + bi * strideB + (long) j * ldb + p)] : b[(int) (offB + bi * strideB + (long) p * ldb + j)];
                            s += av * bv;
                        }
                        int ci = (int) (offC + bi * strideC + (long) i * ldc + j);
                        expect[ci] = alpha * s + beta * c[ci];
                        if (nanC) c[ci] = Float.NaN; // beta 0: the old value must not matter
                    }
            try (Tensor ta_ = tensor(a, a.length); Tensor tb_ = tensor(b, b.length); Tensor tc = tensor(c, c.length)) {
                backend.gemm(ta, tb, m, n, k, alpha, ta_, offA, lda, strideA, tb_, offB, ldb, strideB, beta, tc, offC, ldc, strideC, batch);
                assertClose("gemm ta=" + ta + " tb=" + tb + " m=" + m + " n=" + n + " k=" + k + " batch=" + batch + " beta=" + beta, expect, backend.download(tc), 1e-5);
            }
    }

    @Test void matmulChecksShapes() {
        try (Tensor a = backend.allocate(3, 4); Tensor b = backend.allocate(5, 6); Tensor c = backend.allocate(3, 6)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> backend.matmul(false, false, 1f, a, b, 0f, c));
            assertTrue(e.getMessage().contains("matmul") && e.getMessage().contains("[3, 4]") && e.getMessage().contains("[5, 6]"), e.getMessage());
        }
    }

    @Test void gemmRejectsOutOfRangeOperands() {
        try (Tensor a = backend.allocate(6); Tensor b = backend.allocate(6); Tensor c = backend.allocate(4)) {
            Exception e = assertThrows(IndexOutOfBoundsException.class,
                    () -> backend.gemm(false, false, 2, 2, 3, 1f, a, 1, 3, 0, b, 0, 2, 0, 0f, c, 0, 2, 0, 1));
            assertTrue(e.getMessage().contains("gemm") && e.getMessage().contains("A"), e.getMessage());
        }
    }

    // ------------------------------------------------------------ elementwise

    @Test void axpbyAndAdd() {
        for (int n : new int[]{1, 7, 33, 1000}) {
            float[] x = random(n, 3), y = random(n, 3);
            float alpha = -0.7f, beta = 0.3f;
            double[] e1 = new double[n], e2 = new double[n];
            for (int i = 0; i < n; i++) { e1[i] = alpha * (double) x[i] + beta * (double) y[i]; e2[i] = alpha * (double) x[i] + y[i]; }
            try (Tensor tx = tensor(x, n); Tensor ty = tensor(y, n); Tensor to = backend.allocate(n); Tensor ty2 = tensor(y, n)) {
                backend.add(alpha, tx, beta, ty, to);
                assertClose("add n=" + n, e1, backend.download(to), TOL);
                backend.axpby(alpha, tx, beta, ty);
                assertClose("axpby n=" + n, e1, backend.download(ty), TOL);
                backend.axpby(alpha, tx, 1f, ty2);
                assertClose("axpy n=" + n, e2, backend.download(ty2), TOL);
            }
        }
    }

    private static double act(Activation f, double slope, double x) {
        return switch (f) {
            case RELU -> Double.isNaN(x) ? x : Math.max(0, x);
            case LEAKY_RELU -> x < 0 ? slope * x : x;
            case TANH -> Math.tanh(x);
            case SIGMOID -> 1 / (1 + Math.exp(-x));
            case GELU -> 0.5 * x * Activation.erfc(-x / Math.sqrt(2));
            case GELU_TANH -> 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
        };
    }

    /**
     * activationIncrement against float64: the change f(x0 + dx) - f(x0) (less minus), dx from 1e-7 to 1 of x0, each element
     * within 1e-5 of its own size (plus a float32 ulp of the largest, for changes that cancel to nothing); formed in float32
     * as f(x0 + dx) - f(x0), the smallest would be off by 100% and more. The value, f and f' at x = x0 + dx are the
     * activation's at that point.
     */
    @Test void activationIncrementKeepsSmallChangesPrecise() {
        float slope = 0.07f;
        for (Activation f : Activation.values())
            for (double scale : new double[]{1e-7, 1e-5, 1e-3, 1}) {
                int n = size() * 13;
                float[] x0 = random(n, 4), dx = random(n, 4 * scale), minus = random(n, 4 * scale);
                x0[0] = 0f;
                if (n > 1) x0[1] = -dx[1] / 2; // the input crosses 0 (ReLU's kink)
                for (boolean withMinus : new boolean[]{false, true}) {
                    double[] expected = new double[n], value = new double[n], fx = new double[n], grad = new double[n];
                    for (int i = 0; i < n; i++) {
                        expected[i] = act(f, slope, (double) x0[i] + dx[i]) - act(f, slope, x0[i]) - (withMinus ? minus[i] : 0);
                        value[i] = x0[i] + dx[i]; // in float, as the op writes it
                        fx[i] = act(f, slope, (float) value[i]);
                        grad[i] = actGrad(f, slope, (float) value[i]);
                    }
                    try (Tensor t0 = tensor(x0, n); Tensor td = tensor(dx, n); Tensor tm = tensor(minus, n); Tensor out = backend.allocate(n);
                         Tensor tx = backend.allocate(n); Tensor ty = backend.allocate(n); Tensor tg = backend.allocate(n)) {
                        backend.activationIncrement(f, slope, t0, td, null, null, null, withMinus ? tm : null, out);
                        float[] got = backend.download(out);
                        double largest = 0;
                        for (double e : expected) largest = Math.max(largest, Math.abs(e));
                        String what = f + ", dx up to " + scale + " of x0" + (withMinus ? ", less minus" : "");
                        for (int i = 0; i < n; i++)
                            assertEquals(expected[i], got[i], 1e-5 * Math.abs(expected[i]) + Math.ulp((float) largest),
                                    what + ", element " + i + " (x0 " + x0[i] + ", dx " + dx[i] + ")");
                        backend.activationIncrement(f, slope, t0, td, tx, ty, tg, withMinus ? tm : null, td); // the change over dx, with the value, f and f'
                        assertArrayEquals(got, backend.download(td), what + ": the change over dx");
                        assertClose(what + ": x", value, backend.download(tx), 0);
                        assertClose(what + ": f(x)", fx, backend.download(ty), 1e-6);
                        assertClose(what + ": f'(x)", grad, backend.download(tg), 1e-5);
                        backend.upload(dx, td);
                        // The delta, change f'(x), into dx itself: what the backward pass makes of the change at x.
                        double[] delta = new double[n];
                        for (int i = 0; i < n; i++) delta[i] = got[i] * grad[i];
                        // Bit for bit what the backward pass makes of the change: activationBackward, or by f' where f' is asked for.
                        for (boolean keep : new boolean[]{false, true}) {
                            backend.activationIncrement(f, slope, t0, td, null, null, keep ? tg : null, withMinus ? tm : null, out, td);
                            assertArrayEquals(got, backend.download(out), what + ": the change beside a delta");
                            float[] gotDelta = backend.download(td);
                            assertClose(what + ": delta", delta, gotDelta, 1e-5);
                            if (keep) backend.multiply(out, tg, ty);
                            else backend.activationBackward(f, slope, tx, ty, out, ty);
                            assertArrayEquals(backend.download(ty), gotDelta, what + ": delta as the backward pass makes it" + (keep ? ", by f'" : ""));
                            backend.upload(dx, td);
                            backend.activation(f, slope, tx, ty); // f(x) again, which the backward overwrote
                        }
                    }
                }
            }
    }

    /**
     * tanh's and sigmoid's changes where both values saturate (|x0| from 4 to 16, dx from 1e-7 to 0.1 of it, either sign):
     * each within 1e-5 of its own size, against sinh(h) / (cosh x cosh(x + h)) for tanh and sinh(h / 2) / (2 cosh(x / 2)
     * cosh((x + h) / 2)) for sigmoid, products without cancellation. The difference of the two values, even in double,
     * keeps only double's absolute precision there: at x0 = 10 and dx = 1e-6, about 1e-2 of the change.
     */
    @Test void saturatedActivationChangesStayRelativelyPrecise() {
        int n = size() * 7 + 3;
        float[] x0 = new float[n], dx = new float[n];
        for (int i = 0; i < n; i++) {
            x0[i] = (float) ((4 + 12 * rng.nextDouble()) * (rng.nextBoolean() ? 1 : -1));
            dx[i] = (float) (x0[i] * Math.pow(10, -7 + 6 * rng.nextDouble()) * (rng.nextBoolean() ? 1 : -1));
        }
        for (Activation f : new Activation[]{Activation.TANH, Activation.SIGMOID})
            try (Tensor t0 = tensor(x0, n); Tensor td = tensor(dx, n); Tensor out = backend.allocate(n)) {
                backend.activationIncrement(f, 0f, t0, td, null, null, null, null, out);
                float[] got = backend.download(out);
                for (int i = 0; i < n; i++) {
                    double x = x0[i], h = dx[i], y = x + h;
                    double expected = f == Activation.TANH ? Math.sinh(h) / (Math.cosh(x) * Math.cosh(y))
                            : Math.sinh(h / 2) / (2 * Math.cosh(x / 2) * Math.cosh(y / 2));
                    assertEquals(expected, got[i], 1e-5 * Math.abs(expected), f + ", element " + i + " (x0 " + x0[i] + ", dx " + dx[i] + ")");
                }
            }
    }

    /** pcStrictStep against float64: d += eta (error - feedback), v = vhat + d. */
    @Test void pcStrictStepMovesTheDisplacementAndTheBelief() {
        for (int n : new int[]{1, 13, 257, 70_001}) {
            float eta = 0.1f;
            float[] e = random(n, 1), vhat = random(n, 3), fb = random(n, 1), d = random(n, 0.1);
            double[] ed = new double[n], ev = new double[n];
            for (int i = 0; i < n; i++) {
                ed[i] = d[i] + (double) eta * (e[i] - fb[i]);
                ev[i] = vhat[i] + ed[i];
            }
            try (Tensor te = tensor(e, n); Tensor ta = tensor(vhat, n); Tensor tf = tensor(fb, n); Tensor td = tensor(d, n); Tensor tv = backend.allocate(n)) {
                backend.pcStrictStep(te, ta, tf, td, tv, eta);
                assertClose("displacement on " + n, ed, backend.download(td), 1e-6);
                assertClose("belief on " + n, ev, backend.download(tv), 1e-6);
                assertArrayEquals(e, backend.download(te), "the error is read, not written");
            }
        }
    }

    private static double actGrad(Activation f, double slope, double x) {
        return switch (f) {
            case RELU -> x > 0 ? 1 : 0;
            case LEAKY_RELU -> x > 0 ? 1 : slope;
            case TANH -> 1 - Math.tanh(x) * Math.tanh(x);
            case SIGMOID -> act(f, slope, x) * (1 - act(f, slope, x));
            case GELU -> 0.5 * Activation.erfc(-x / Math.sqrt(2)) + x * Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
            case GELU_TANH -> { // d/dx of x (1 + tanh u) / 2, written from 1 - tanh^2 = sech^2 rather than the kernels' form
                double u = Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x), sech = 1 / Math.cosh(u);
                yield 0.5 * (1 + Math.tanh(u)) + 0.5 * x * sech * sech * Math.sqrt(2 / Math.PI) * (1 + 3 * 0.044715 * x * x);
            }
        };
    }

    @Test void activationsForwardAndBackward() {
        for (Activation f : Activation.values()) for (float slope : f == Activation.LEAKY_RELU ? new float[]{0.07f, 1.5f} : new float[]{0.07f}) {
            float[] x = random(131, 4);
            x[0] = 0f; x[1] = -0f; x[2] = 80f; x[3] = -80f; x[4] = 1e-8f; x[5] = Float.NaN;
            x[6] = Float.MIN_VALUE; x[7] = -Float.MIN_VALUE; x[8] = 1e30f; x[9] = -1e30f; // subnormals: relu' is still exactly 1 / 0
            float[] dy = random(131, 2);
            double[] ey = new double[x.length], edx = new double[x.length];
            for (int i = 0; i < x.length; i++) {
                ey[i] = act(f, slope, x[i]);
                edx[i] = Float.isNaN(x[i]) ? Double.NaN : dy[i] * actGrad(f, slope, x[i]);
            }
            try (Tensor tx = tensor(x, x.length); Tensor ty = backend.allocate(x.length); Tensor tdy = tensor(dy, x.length); Tensor tdx = backend.allocate(x.length)) {
                backend.activation(f, slope, tx, ty);
                assertClose(f + " forward, slope " + slope, ey, backend.download(ty), TOL);
                backend.activationBackward(f, slope, tx, ty, tdy, tdx);
                // relu/leaky relu at a NaN input: PyTorch's masks give a NaN or a finite value depending on the
                // kernel; only the tanh and sigmoid NaN positions are pinned down.
                float[] got = backend.download(tdx);
                if (f == Activation.RELU || f == Activation.LEAKY_RELU) { got[5] = Float.NaN; }
                assertClose(f + " backward, slope " + slope, edx, got, TOL);
                // The same through a kept derivative: y and f' in one pass, then dy f'.
                float[] plainY = backend.download(ty);
                try (Tensor td = backend.allocate(x.length)) {
                    backend.fill(ty, 7f);
                    backend.activationWithDerivative(f, slope, tx, ty, td);
                    assertClose(f + " forward with derivative, slope " + slope, toDouble(plainY), backend.download(ty), 0);
                    backend.multiply(tdy, td, tdx);
                    float[] kept = backend.download(tdx);
                    if (f == Activation.RELU || f == Activation.LEAKY_RELU) { kept[5] = Float.NaN; }
                    assertClose(f + " backward through the kept derivative, slope " + slope, edx, kept, TOL);
                }
            }
        }
    }

    @Test void multiplyMatchesFloat64AndMayAlias() {
        for (int n : new int[]{1, 7, 13, 33, 1000, 300_001}) {
            float[] a = random(n, 3), b = random(n, 3);
            a[0] = Float.NaN;
            if (n > 2) { b[1] = Float.POSITIVE_INFINITY; a[2] = 0f; b[2] = Float.POSITIVE_INFINITY; }
            double[] e = new double[n];
            for (int i = 0; i < n; i++) e[i] = (float) ((double) a[i] * b[i]);
            try (Tensor ta = tensor(a, n); Tensor tb = tensor(b, n); Tensor to = backend.allocate(n)) {
                backend.multiply(ta, tb, to);
                assertClose("multiply n=" + n, e, backend.download(to), 0);
                backend.multiply(ta, tb, tb);
                assertClose("multiply into b, n=" + n, e, backend.download(tb), 0);
            }
        }
    }

    /** Tensors large enough that a backend splits elementwise work (threads, blocks); an odd size off every chunk. */
    @Test void elementwiseOnLargeTensors() {
        int n = 300_001;
        float[] x = random(n, 3), g = random(n, 1), a = random(n, 1), d = random(n, 0.1), fb = random(n, 1);
        double[] ey = new double[n], edx = new double[n], ee = new double[n], ed = new double[n], ev = new double[n];
        for (int i = 0; i < n; i++) {
            ey[i] = Math.tanh(x[i]);
            edx[i] = x[i] > 0 ? g[i] : 0;
            ee[i] = ((double) x[i] - a[i]) - d[i];
            ed[i] = d[i] + 0.1 * (ee[i] - fb[i]);
            ev[i] = a[i] + ed[i];
        }
        try (Tensor tx = tensor(x, n); Tensor ty = backend.allocate(n); Tensor tg = tensor(g, n); Tensor tdx = backend.allocate(n);
             Tensor ta = tensor(a, n); Tensor td = tensor(d, n); Tensor tf = tensor(fb, n); Tensor tv = backend.allocate(n); Tensor te = backend.allocate(n)) {
            backend.activation(Activation.TANH, 0f, tx, ty);
            assertClose("tanh on " + n, ey, backend.download(ty), TOL);
            backend.activationBackward(Activation.RELU, 0f, tx, ty, tg, tdx);
            assertClose("relu backward on " + n, edx, backend.download(tdx), TOL);
            double[] eAdd = new double[n], eAxpby = new double[n];
            for (int i = 0; i < n; i++) { eAdd[i] = 0.5 * x[i] - 2.0 * g[i]; eAxpby[i] = 0.3 * a[i] + 0.7 * x[i]; }
            backend.add(0.5f, tx, -2f, tg, tv);
            assertClose("add on " + n, eAdd, backend.download(tv), TOL);
            backend.copy(tx, te);
            backend.axpby(0.3f, ta, 0.7f, te);
            assertClose("axpby on " + n, eAxpby, backend.download(te), TOL);
            backend.pcPredictionError(tx, ta, td, te);
            assertClose("prediction error on " + n, ee, backend.download(te), TOL);
            // Fused with the backward's first step: delta = error * f' (g stands in for f').
            double[] eDelta = new double[n];
            for (int i = 0; i < n; i++) eDelta[i] = ee[i] * g[i];
            backend.fill(te, 0f);
            backend.pcPredictionError(tx, ta, td, te, tg, tdx);
            assertClose("prediction error with delta on " + n, ee, backend.download(te), TOL);
            assertClose("prediction error's delta on " + n, eDelta, backend.download(tdx), TOL);
            IllegalArgumentException aliased = assertThrows(IllegalArgumentException.class, () -> backend.pcPredictionError(tx, ta, td, te, tg, te));
            assertTrue(aliased.getMessage().contains("pcPredictionError"), aliased.getMessage());
            backend.pcStrictUpdate(tx, ta, tf, td, tv, te, 0.1f);
            assertClose("strict error on " + n, ee, backend.download(te), TOL);
            assertClose("strict displacement on " + n, ed, backend.download(td), TOL);
            assertClose("strict belief on " + n, ev, backend.download(tv), TOL);
        }
    }

    @Test void linearMatchesFloat64() {
        for (int trial = 0; trial < 12; trial++) {
            int batch = size(), in = size(), out = size();
            boolean withBias = trial % 3 != 0;
            float[] x = random(batch * in, 1), w = random(out * in, 1), b = random(out, 1);
            double[] y = new double[batch * out];
            for (int r = 0; r < batch; r++)
                for (int o = 0; o < out; o++) {
                    double s = withBias ? b[o] : 0;
                    for (int k = 0; k < in; k++) s += (double) x[r * in + k] * w[o * in + k];
                    y[r * out + o] = s;
                }
            try (Tensor tx = tensor(x, batch, in); Tensor tw = tensor(w, out, in); Tensor tb = tensor(b, out); Tensor ty = tensor(random(batch * out, 9), batch, out)) {
                backend.linear(tx, tw, withBias ? tb : null, ty);
                assertClose("linear " + batch + "x" + in + " -> " + out + (withBias ? " + bias" : ""), y, backend.download(ty), 1e-5);
            }
        }
        try (Tensor tx = backend.allocate(4, 6); Tensor tw = backend.allocate(3, 5); Tensor ty = backend.allocate(4, 3)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> backend.linear(tx, tw, null, ty));
            assertTrue(e.getMessage().contains("linear") && e.getMessage().contains("[3, 5]"), e.getMessage());
        }
    }

    /** linearActivation: the bits of linear, then activation (with its derivative where asked); tanh's y against float64 too. */
    @Test void linearActivationIsLinearThenActivation() {
        for (Activation f : Activation.values())
            for (int variant = 0; variant < 4; variant++) {
                int batch = size(), in = size(), out = size();
                boolean withBias = variant % 2 == 0, withDerivative = variant < 2;
                float[] x = random(batch * in, 2), w = random(out * in, 1), b = random(out, 1);
                try (Tensor tx = tensor(x, batch, in); Tensor tw = tensor(w, out, in); Tensor tb = tensor(b, out);
                     Tensor z = backend.allocate(batch, out); Tensor y = backend.allocate(batch, out); Tensor d = backend.allocate(batch, out);
                     Tensor z2 = backend.allocate(batch, out); Tensor y2 = backend.allocate(batch, out); Tensor d2 = backend.allocate(batch, out)) {
                    String what = "linearActivation " + f + " " + batch + "x" + in + " -> " + out + (withBias ? " + bias" : "") + (withDerivative ? " with f'" : "");
                    backend.linearActivation(tx, tw, withBias ? tb : null, f, 0.07f, z, y, withDerivative ? d : null);
                    backend.linear(tx, tw, withBias ? tb : null, z2);
                    if (withDerivative) backend.activationWithDerivative(f, 0.07f, z2, y2, d2);
                    else backend.activation(f, 0.07f, z2, y2);
                    assertClose(what + ": z", toDouble(backend.download(z2)), backend.download(z), 0);
                    assertClose(what + ": y", toDouble(backend.download(y2)), backend.download(y), 0);
                    if (withDerivative) assertClose(what + ": f'", toDouble(backend.download(d2)), backend.download(d), 0);
                    if (f != Activation.TANH) continue;
                    double[] ey = new double[batch * out];
                    for (int r = 0; r < batch; r++)
                        for (int o = 0; o < out; o++) {
                            double sum = withBias ? b[o] : 0;
                            for (int k = 0; k < in; k++) sum += (double) x[r * in + k] * w[o * in + k];
                            ey[r * out + o] = Math.tanh(sum);
                        }
                    assertClose(what + ": y against float64", ey, backend.download(y), 1e-5);
                }
            }
        try (Tensor tx = backend.allocate(4, 5); Tensor tw = backend.allocate(3, 5); Tensor z = backend.allocate(4, 3); Tensor y = backend.allocate(4, 3)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> backend.linearActivation(tx, tw, null, Activation.RELU, 0f, z, z, null));
            assertTrue(e.getMessage().contains("linearActivation"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> backend.linearActivation(tx, tw, null, Activation.RELU, 0f, tx, y, null));
            assertTrue(e.getMessage().contains("linearActivation"), e.getMessage());
        }
    }

    /** pcLinearPredictionError: the bits of linearActivation with f', then pcPredictionError with its delta. */
    @Test void linearPredictionErrorIsLinearActivationThenPredictionError() {
        for (Activation f : Activation.values())
            for (boolean withBias : new boolean[]{true, false}) {
                int batch = size(), in = size(), out = size(), n = batch * out;
                float[] x = random(batch * in, 2), w = random(out * in, 1), b = random(out, 1), vhat = random(n, 1), d = random(n, 0.1);
                Tensor[] fused = new Tensor[5], apart = new Tensor[5];
                try (Tensor tx = tensor(x, batch, in); Tensor tw = tensor(w, out, in); Tensor tb = tensor(b, out); Tensor tv = tensor(vhat, batch, out);
                     Tensor td = tensor(d, batch, out)) {
                    for (int i = 0; i < 5; i++) {
                        fused[i] = backend.allocate(batch, out);
                        apart[i] = backend.allocate(batch, out);
                    }
                    Tensor bias = withBias ? tb : null;
                    backend.pcLinearPredictionError(tx, tw, bias, f, 0.07f, fused[0], fused[1], fused[2], tv, td, fused[3], fused[4]);
                    backend.linearActivation(tx, tw, bias, f, 0.07f, apart[0], apart[1], apart[2]);
                    backend.pcPredictionError(apart[1], tv, td, apart[3], apart[2], apart[4]);
                    String[] names = {"z", "prediction", "f'", "error", "delta"};
                    for (int i = 0; i < 5; i++)
                        assertClose("pcLinearPredictionError " + f + " " + batch + "x" + in + " -> " + out + (withBias ? " + bias" : "") + ": " + names[i],
                                toDouble(backend.download(apart[i])), backend.download(fused[i]), 0);
                    if (f == Activation.TANH) {
                        double[] eError = new double[n];
                        for (int r = 0; r < batch; r++)
                            for (int o = 0; o < out; o++) {
                                double sum = withBias ? b[o] : 0;
                                for (int k = 0; k < in; k++) sum += (double) x[r * in + k] * w[o * in + k];
                                eError[r * out + o] = (Math.tanh(sum) - vhat[r * out + o]) - d[r * out + o];
                            }
                        assertClose("pcLinearPredictionError tanh: error against float64", eError, backend.download(fused[3]), 1e-5);
                    }
                    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                            () -> backend.pcLinearPredictionError(tx, tw, bias, f, 0.07f, fused[0], fused[1], fused[2], tv, td, fused[1], fused[4]));
                    assertTrue(e.getMessage().contains("pcLinearPredictionError"), e.getMessage());
                    // With the displacement's step (PC's folded relaxation), and from an offset in place of the bias (z = offset + x W^T,
                    // PC's predictions from a displacement): linearActivation, then pcPredictionError with the step.
                    float[] offset = random(n, 1), previous = random(n, 0.1);
                    for (int variant = 0; variant < 6; variant++) {
                        boolean withOffset = variant % 2 == 1;
                        int stepKind = variant / 2; // 0: no step, 1: plain SGD, 2: momentum
                        String what = "pcLinearPredictionError " + f + " " + batch + "x" + in + " -> " + out + (withOffset ? " + offset" : withBias ? " + bias" : "")
                                + " step " + stepKind + ": ";
                        try (Tensor fusedNext = backend.allocate(batch, out); Tensor apartNext = backend.allocate(batch, out); Tensor tq = tensor(previous, batch, out);
                             Tensor to = tensor(offset, batch, out)) {
                            Tensor add = withOffset ? to : bias;
                            java.util.function.Function<Tensor, BeliefStep> step = next -> stepKind == 0 ? null : new BeliefStep(next, 0.1f, stepKind == 2 ? 0.9f : 0f,
                                    stepKind == 2 ? tq : null);
                            backend.pcLinearPredictionError(tx, tw, add, f, 0.07f, fused[0], fused[1], fused[2], tv, td, fused[3], fused[4], step.apply(fusedNext));
                            backend.linearActivation(tx, tw, add, f, 0.07f, apart[0], apart[1], apart[2]);
                            backend.pcPredictionError(apart[1], tv, td, apart[3], apart[2], apart[4], step.apply(apartNext));
                            for (int i = 0; i < 5; i++) assertClose(what + names[i], toDouble(backend.download(apart[i])), backend.download(fused[i]), 0);
                            if (stepKind > 0) assertClose(what + "next", toDouble(backend.download(apartNext)), backend.download(fusedNext), 0);
                            if (withOffset) {
                                double[] ez = new double[n];
                                for (int r = 0; r < batch; r++)
                                    for (int o = 0; o < out; o++) {
                                        double sum = offset[r * out + o];
                                        for (int k = 0; k < in; k++) sum += (double) x[r * in + k] * w[o * in + k];
                                        ez[r * out + o] = sum;
                                    }
                                assertClose(what + "z against float64", ez, backend.download(fused[0]), 1e-5);
                            }
                            e = assertThrows(IllegalArgumentException.class, () -> backend.pcLinearPredictionError(tx, tw, add, f, 0.07f, fused[0], fused[1], fused[2],
                                    tv, td, fused[3], fused[4], BeliefStep.sgd(fused[0], 0.1f)));
                            assertTrue(e.getMessage().contains("pcLinearPredictionError") && e.getMessage().contains("next"), e.getMessage());
                        }
                    }
                } finally {
                    for (int i = 0; i < 5; i++) {
                        if (fused[i] != null) fused[i].close();
                        if (apart[i] != null) apart[i].close();
                    }
                }
            }
    }

    /** The ops apart that the *FromProducts ops fuse: z = (z + addend) + bias, the bias per feature (kind 1: tb) or an offset (kind 2: to). */
    private void addProductsApart(Tensor z, Tensor addend, int biasKind, Tensor tb, Tensor to, int out) {
        if (addend != null) backend.add(1f, z, 1f, addend, z);
        if (biasKind == 1) backend.addBias(z, tb, out, 1);
        if (biasKind == 2) backend.add(1f, z, 1f, to, z);
    }

    /** (p + a) + bias in double, as {@link #addProductsApart} adds them (a where withAddend; bias b per feature or the offset). */
    private static double[] productsInDouble(float[] p, float[] a, boolean withAddend, int biasKind, float[] b, float[] offset, int out) {
        double[] z = new double[p.length];
        for (int i = 0; i < p.length; i++) z[i] = (double) p[i] + (withAddend ? a[i] : 0) + (biasKind == 1 ? b[i % out] : biasKind == 2 ? offset[i] : 0);
        return z;
    }

    /**
     * pcPredictionErrorFromProducts (PC's Gram form): the bits of add(z, addend), the bias as linear adds it (per feature, or
     * an offset), activationWithDerivative, then pcPredictionError with its delta and step, for every activation, with and
     * without an addend and a bias, with no step, plain SGD and momentum; the step's copy has next's bits, also from
     * pcPredictionError itself. Against float64 for tanh. Aliases are refused, naming the op.
     */
    @Test void predictionErrorFromProductsIsTheOpsApart() {
        for (Activation f : Activation.values())
            for (int variant = 0; variant < 12; variant++) {
                boolean withAddend = variant % 2 == 0;
                int biasKind = variant / 2 % 3, stepKind = variant / 6 + (f.ordinal() % 2); // bias: none, per feature, offset; step: none, SGD, momentum
                int batch = size(), out = size(), n = batch * out;
                float[] p = random(n, 2), a = random(n, 1), b = random(out, 1), offset = random(n, 1), vhat = random(n, 1), d = random(n, 0.1), previous = random(n, 0.1);
                String what = "pcPredictionErrorFromProducts " + f + " " + batch + "x" + out + (withAddend ? " + addend" : "") + " bias " + biasKind + " step " + stepKind + ": ";
                Tensor[] fused = new Tensor[7], apart = new Tensor[7]; // z, prediction, f', error, delta, next, copy
                try (Tensor ta = tensor(a, batch, out); Tensor tb = tensor(b, out); Tensor to = tensor(offset, batch, out); Tensor tv = tensor(vhat, batch, out);
                     Tensor td = tensor(d, batch, out); Tensor tq = tensor(previous, batch, out)) {
                    for (int i = 0; i < 7; i++) {
                        fused[i] = i == 0 ? tensor(p, batch, out) : backend.allocate(batch, out);
                        apart[i] = i == 0 ? tensor(p, batch, out) : backend.allocate(batch, out);
                    }
                    Tensor addend = withAddend ? ta : null, bias = biasKind == 0 ? null : biasKind == 1 ? tb : to;
                    java.util.function.BiFunction<Tensor, Tensor, BeliefStep> step = (next, copy) -> stepKind == 0 ? null
                            : new BeliefStep(next, 0.1f, stepKind == 2 ? 0.9f : 0f, stepKind == 2 ? tq : null, copy);
                    backend.pcPredictionErrorFromProducts(fused[0], addend, bias, f, 0.07f, fused[1], fused[2], tv, td, fused[3], fused[4], step.apply(fused[5], fused[6]));
                    addProductsApart(apart[0], addend, biasKind, tb, to, out);
                    backend.activationWithDerivative(f, 0.07f, apart[0], apart[1], apart[2]);
                    backend.pcPredictionError(apart[1], tv, td, apart[3], apart[2], apart[4], step.apply(apart[5], apart[6]));
                    String[] names = {"z", "prediction", "f'", "error", "delta", "next", "copy"};
                    for (int i = 0; i < (stepKind == 0 ? 5 : 7); i++) assertClose(what + names[i], toDouble(backend.download(apart[i])), backend.download(fused[i]), 0);
                    if (stepKind > 0) assertClose(what + "copy is next", toDouble(backend.download(fused[5])), backend.download(fused[6]), 0);
                    if (f == Activation.TANH) {
                        double[] eError = productsInDouble(p, a, withAddend, biasKind, b, offset, out);
                        for (int i = 0; i < n; i++) eError[i] = (Math.tanh(eError[i]) - vhat[i]) - d[i];
                        assertClose(what + "error against float64", eError, backend.download(fused[3]), 1e-5);
                    }
                    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                            () -> backend.pcPredictionErrorFromProducts(fused[0], addend, bias, f, 0.07f, fused[0], fused[2], tv, td, fused[3], fused[4], null));
                    assertTrue(e.getMessage().contains("pcPredictionErrorFromProducts"), e.getMessage());
                    e = assertThrows(IllegalArgumentException.class, () -> backend.pcPredictionErrorFromProducts(fused[0], fused[3], bias, f, 0.07f, fused[1], fused[2], tv,
                            td, fused[3], fused[4], null));
                    assertTrue(e.getMessage().contains("pcPredictionErrorFromProducts"), e.getMessage());
                    e = assertThrows(IllegalArgumentException.class, () -> backend.pcPredictionErrorFromProducts(fused[0], addend, bias, f, 0.07f, fused[1], fused[2], tv,
                            td, fused[3], fused[4], new BeliefStep(fused[5], 0.1f, 0f, null, tv)));
                    assertTrue(e.getMessage().contains("pcPredictionErrorFromProducts") && e.getMessage().contains("copy"), e.getMessage());
                } finally {
                    for (int i = 0; i < 7; i++) {
                        if (fused[i] != null) fused[i].close();
                        if (apart[i] != null) apart[i].close();
                    }
                }
            }
        try (Tensor t = backend.allocate(2, 3)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new BeliefStep(t, 0.1f, 0f, null, t));
            assertTrue(e.getMessage().contains("copy"), e.getMessage());
        }
    }

    /**
     * pcOutputErrorFromProducts: the bits of add(output, addend), the bias as linear adds it, add(1, output, -1, target)
     * and with an energy sumSquares of the error (at sizes a GPU sums in one block and in more); against float64 too.
     */
    @Test void outputErrorFromProductsIsTheOpsApart() {
        for (int trial = 0; trial < 12; trial++) {
            int batch = trial == 11 ? 300 : size(), out = trial == 11 ? 70 : size(), n = batch * out;
            boolean withAddend = trial % 2 == 0, withEnergy = trial % 4 != 1;
            int biasKind = trial % 3;
            float energyScale = trial % 2 == 0 ? 0.5f : 1f / n;
            float[] p = random(n, 2), a = random(n, 1), b = random(out, 1), offset = random(n, 1), target = random(n, 1);
            String what = "pcOutputErrorFromProducts " + batch + "x" + out + (withAddend ? " + addend" : "") + " bias " + biasKind + (withEnergy ? " with energy" : "") + ": ";
            try (Tensor u = tensor(p, batch, out); Tensor u2 = tensor(p, batch, out); Tensor ta = tensor(a, batch, out); Tensor tb = tensor(b, out);
                 Tensor to = tensor(offset, batch, out); Tensor tt = tensor(target, batch, out); Tensor e = backend.allocate(batch, out); Tensor e2 = backend.allocate(batch, out);
                 Tensor energy = backend.allocate(3); Tensor energy2 = backend.allocate(3)) {
                Tensor addend = withAddend ? ta : null, bias = biasKind == 0 ? null : biasKind == 1 ? tb : to;
                backend.pcOutputErrorFromProducts(u, addend, bias, tt, e, withEnergy ? energy : null, 2, energyScale);
                addProductsApart(u2, addend, biasKind, tb, to, out);
                backend.add(1f, u2, -1f, tt, e2);
                assertOutputErrorIsTheOpsApart(what, u2, u, e2, e, withEnergy ? energy : null, energy2, energyScale);
                double[] ee = productsInDouble(p, a, withAddend, biasKind, b, offset, out);
                for (int i = 0; i < n; i++) ee[i] -= target[i];
                assertClose(what + "error against float64", ee, backend.download(e), 1e-5);
                IllegalArgumentException aliased = assertThrows(IllegalArgumentException.class, () -> backend.pcOutputErrorFromProducts(u, tt, bias, tt, e, null, 0, 0f));
                assertTrue(aliased.getMessage().contains("pcOutputErrorFromProducts"), aliased.getMessage());
                aliased = assertThrows(IllegalArgumentException.class, () -> backend.pcOutputErrorFromProducts(u, u, bias, tt, e, null, 0, 0f));
                assertTrue(aliased.getMessage().contains("pcOutputErrorFromProducts"), aliased.getMessage());
            }
        }
    }

    /**
     * An output error op's output and error have the bits of the ops apart (output2, error2), and where {@code energy}
     * is not null its energy term at [2] has the bits of sumSquares of error2 (formed into energy2).
     */
    private void assertOutputErrorIsTheOpsApart(String what, Tensor output2, Tensor output, Tensor error2, Tensor error, Tensor energy, Tensor energy2, float energyScale) {
        assertClose(what + "output", toDouble(backend.download(output2)), backend.download(output), 0);
        assertClose(what + "error", toDouble(backend.download(error2)), backend.download(error), 0);
        if (energy == null) return;
        backend.sumSquares(error2, energyScale, energy2, 2);
        assertEquals(backend.readScalar(energy2, 2), backend.readScalar(energy, 2), what + "energy, the bits of sumSquares");
    }

    /**
     * pcLinearOutputError: the bits of linear, then add(1, output, -1, target), and with an energy the bits of
     * sumSquares of the error after them (at sizes a GPU sums in one block and in more); against float64 too.
     */
    @Test void linearOutputErrorIsLinearThenSubtraction() {
        for (int trial = 0; trial < 8; trial++) {
            int batch = trial == 7 ? 300 : size(), in = size(), out = trial == 7 ? 70 : size(); // the last: 21000 errors
            boolean withBias = trial % 2 == 0, withEnergy = trial % 4 != 0;
            float energyScale = trial % 2 == 0 ? 0.5f : 1f / (batch * out);
            float[] x = random(batch * in, 1), w = random(out * in, 1), b = random(out, 1), target = random(batch * out, 1);
            try (Tensor tx = tensor(x, batch, in); Tensor tw = tensor(w, out, in); Tensor tb = tensor(b, out); Tensor tt = tensor(target, batch, out);
                 Tensor u = backend.allocate(batch, out); Tensor e = backend.allocate(batch, out); Tensor u2 = backend.allocate(batch, out); Tensor e2 = backend.allocate(batch, out);
                 Tensor energy = backend.allocate(3); Tensor energy2 = backend.allocate(3)) {
                String what = "pcLinearOutputError " + batch + "x" + in + " -> " + out + (withBias ? " + bias" : "") + (withEnergy ? " with energy" : "");
                if (withEnergy) backend.pcLinearOutputError(tx, tw, withBias ? tb : null, u, tt, e, energy, 2, energyScale);
                else backend.pcLinearOutputError(tx, tw, withBias ? tb : null, u, tt, e);
                backend.linear(tx, tw, withBias ? tb : null, u2);
                backend.add(1f, u2, -1f, tt, e2);
                assertOutputErrorIsTheOpsApart(what + ": ", u2, u, e2, e, withEnergy ? energy : null, energy2, energyScale);
                if (withEnergy) {
                    double sq = 0;
                    for (float v : backend.download(e2)) sq += (double) v * v;
                    assertClose(what + ": energy", new double[]{energyScale * sq}, new float[]{backend.readScalar(energy, 2)}, 1e-6);
                }
                double[] ee = new double[batch * out];
                for (int r = 0; r < batch; r++)
                    for (int o = 0; o < out; o++) {
                        double sum = withBias ? b[o] : 0;
                        for (int k = 0; k < in; k++) sum += (double) x[r * in + k] * w[o * in + k];
                        ee[r * out + o] = sum - target[r * out + o];
                    }
                assertClose(what + ": error against float64", ee, backend.download(e), 1e-5);
                IllegalArgumentException aliased = assertThrows(IllegalArgumentException.class, () -> backend.pcLinearOutputError(tx, tw, null, u, tt, tt));
                assertTrue(aliased.getMessage().contains("pcLinearOutputError"), aliased.getMessage());
            }
        }
    }

    @Test void biasAddAndGrad() {
        for (int trial = 0; trial < 13; trial++) {
            int outer = size(), channels = size(), inner = rng.nextBoolean() ? 1 : size();
            if (trial == 10) { outer = 67; channels = 5; inner = 401; } // large enough for a backend to split the images
            if (trial == 11) { outer = 300; channels = 3; inner = 1021; } // large enough to split a channel into chunks
            if (trial == 12) { outer = 100_003; channels = 2; inner = 1; } // a linear layer's bias at a huge batch
            float beta = trial == 12 ? 0f : 0.5f, alpha = trial % 3 == 0 ? 1f : trial % 3 == 1 ? 1f / 7 : -2.5f; // 1/7: a mean over 7 samples
            int n = outer * channels * inner;
            float[] y = random(n, 1), b = random(channels, 1), db0 = random(channels, 1);
            double[] ey = toDouble(y), edb = new double[channels];
            for (int o = 0; o < outer; o++) for (int c = 0; c < channels; c++) for (int i = 0; i < inner; i++) {
                int idx = (o * channels + c) * inner + i;
                ey[idx] += b[c];
                edb[c] += y[idx];
            }
            for (int c = 0; c < channels; c++) edb[c] = alpha * edb[c] + beta * db0[c];
            try (Tensor ty = tensor(y, n); Tensor tb = tensor(b, channels); Tensor tdb = tensor(db0, channels)) {
                backend.biasGrad(ty, tdb, channels, inner, alpha, beta);
                assertClose("biasGrad", edb, backend.download(tdb), 1e-5);
                backend.addBias(ty, tb, channels, inner);
                assertClose("addBias", ey, backend.download(ty), TOL);
            }
        }
    }

    /** y = x scale[c] (+ shift[c]) per channel, against float64: flat rows (inner 1), images, in place, without a shift. */
    @Test void scaleChannels() {
        for (int trial = 0; trial < 12; trial++) {
            int outer = size(), channels = size(), inner = trial % 2 == 0 ? 1 : size();
            if (trial == 10) { outer = 129; channels = 784; inner = 1; } // a wide table's rows, split across threads
            if (trial == 11) { outer = 37; channels = 3; inner = 1031; } // images' channels
            boolean shifted = trial % 3 != 0, inPlace = trial % 4 == 1;
            int n = outer * channels * inner;
            float[] x = random(n, 1), a = random(channels, 1), b = random(channels, 1);
            for (int i = trial; i < n; i += 7) x[i] = Float.NaN; // missing values: 0 with a shift (the mean), NaN without
            double[] ey = new double[n];
            for (int o = 0; o < outer; o++) for (int c = 0; c < channels; c++) for (int i = 0; i < inner; i++) {
                int idx = (o * channels + c) * inner + i;
                ey[idx] = Float.isNaN(x[idx]) && shifted ? 0 : (double) x[idx] * a[c] + (shifted ? b[c] : 0);
            }
            try (Tensor tx = tensor(x, n); Tensor ta = tensor(a, channels); Tensor tb = tensor(b, channels); Tensor ty = inPlace ? null : backend.allocate(n)) {
                Tensor out = inPlace ? tx : ty;
                backend.scaleChannels(tx, ta, shifted ? tb : null, channels, inner, out);
                assertClose("scaleChannels " + outer + "x" + channels + "x" + inner + (shifted ? " shifted" : "") + (inPlace ? " in place" : ""), ey, backend.download(out), TOL);
            }
        }
        try (Tensor x = backend.allocate(12); Tensor s = backend.allocate(5)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> backend.scaleChannels(x, s, null, 5, 1, x));
            assertTrue(e.getMessage().contains("scaleChannels"), e.getMessage());
        }
    }

    // ------------------------------------------------------------ convolution and pooling

    private Conv2dGeometry randomConv() { return randomConv(1 + rng.nextInt(3)); }

    private Conv2dGeometry randomConv(int channels) {
        int kh = 1 + rng.nextInt(4), kw = 1 + rng.nextInt(4);
        // Padding 0 to k: up to k - 1 the CPU backend may convolve directly, at k it cannot.
        int ph = rng.nextInt(kh + 1), pw = rng.nextInt(kw + 1);
        // Stride 1 in both directions about half the time: backends may have a separate path for it.
        int sh = rng.nextInt(3) == 0 ? 2 : 1, sw = rng.nextInt(3) == 0 ? 2 + rng.nextInt(2) : 1;
        return new Conv2dGeometry(channels, kh + rng.nextInt(9), kw + rng.nextInt(9), kh, kw, sh, sw, ph, pw);
    }

    /** The adjoint of im2colRef: every col entry added back onto the input pixel it was read from. */
    private static double[] col2imRef(double[] col, Conv2dGeometry g, int images) {
        int oh = g.outHeight(), ow = g.outWidth();
        double[] x = new double[(int) (images * g.inputSize())];
        for (int n = 0; n < images; n++) for (int c = 0; c < g.channels(); c++) for (int i = 0; i < g.kh(); i++) for (int j = 0; j < g.kw(); j++)
            for (int oy = 0; oy < oh; oy++) for (int ox = 0; ox < ow; ox++) {
                int iy = oy * g.sh() - g.ph() + i, ix = ox * g.sw() - g.pw() + j;
                if (iy < 0 || iy >= g.height() || ix < 0 || ix >= g.width()) continue;
                x[((n * g.channels() + c) * g.height() + iy) * g.width() + ix] += col[((n * g.patchSize() + (c * g.kh() + i) * g.kw() + j) * oh + oy) * ow + ox];
            }
        return x;
    }

    private static double[] im2colRef(float[] x, Conv2dGeometry g, int images) {
        int oh = g.outHeight(), ow = g.outWidth();
        double[] col = new double[images * g.patchSize() * oh * ow];
        for (int n = 0; n < images; n++) for (int c = 0; c < g.channels(); c++) for (int i = 0; i < g.kh(); i++) for (int j = 0; j < g.kw(); j++)
            for (int oy = 0; oy < oh; oy++) for (int ox = 0; ox < ow; ox++) {
                int iy = oy * g.sh() - g.ph() + i, ix = ox * g.sw() - g.pw() + j;
                int row = (c * g.kh() + i) * g.kw() + j;
                col[((n * g.patchSize() + row) * oh + oy) * ow + ox] =
                        iy < 0 || iy >= g.height() || ix < 0 || ix >= g.width() ? 0 : x[((n * g.channels() + c) * g.height() + iy) * g.width() + ix];
            }
        return col;
    }

    @Test void fusedConvolutionOpsMatchFloat64() {
        for (int trial = 0; trial < 32; trial++) {
            // Few channels, some and many, in and out: a backend may switch algorithm between them
            // (the CPU one at 16 in, and at 12 channels x kernel columns).
            int channels = switch (trial % 4) { case 1 -> 16 + rng.nextInt(4); case 3 -> 4 + rng.nextInt(9); default -> 1 + rng.nextInt(3); };
            Conv2dGeometry g = randomConv(channels);
            int images = trial % 4 == 0 ? 40 + rng.nextInt(30) : 1 + rng.nextInt(4), out = trial % 3 == 2 ? 15 + rng.nextInt(6) : 1 + rng.nextInt(5);
            assertConvOpsMatchFloat64(g, images, out);
        }
    }

    /** Stride-1 convs over batches a backend works through in several groups of images per thread, the last one smaller. */
    @Test void stride1ConvolutionsOnLargeBatches() {
        assertConvOpsMatchFloat64(new Conv2dGeometry(8, 12, 13, 3, 3, 1, 1, 1, 1), 203, 6);
        assertConvOpsMatchFloat64(new Conv2dGeometry(3, 9, 9, 2, 2, 1, 1, 0, 0), 311, 5);
        // Padding k - 1 and 1x1 kernels: an image's output rows run to the next image's first row.
        assertConvOpsMatchFloat64(new Conv2dGeometry(4, 7, 5, 3, 3, 1, 1, 2, 2), 257, 3);
        assertConvOpsMatchFloat64(new Conv2dGeometry(5, 7, 9, 1, 1, 1, 1, 0, 0), 301, 7);
    }

    private void assertConvOpsMatchFloat64(Conv2dGeometry g, int images, int out) {
        int patch = g.patchSize(), p = g.outPixels(), xn = (int) (images * g.inputSize()), yn = images * out * p;
        float[] x = random(xn, 1), w = random(out * patch, 1), dy = random(yn, 1);
        double[] col = im2colRef(x, g, images);
        double[] y = new double[yn], dw = new double[out * patch], dcol = new double[images * patch * p];
        for (int n = 0; n < images; n++)
            for (int o = 0; o < out; o++)
                for (int q = 0; q < p; q++) {
                    double s = 0;
                    for (int k = 0; k < patch; k++) s += w[o * patch + k] * col[(n * patch + k) * p + q];
                    y[(n * out + o) * p + q] = s;
                    double d = dy[(n * out + o) * p + q];
                    for (int k = 0; k < patch; k++) {
                        dw[o * patch + k] += d * col[(n * patch + k) * p + q];
                        dcol[(n * patch + k) * p + q] += w[o * patch + k] * d;
                    }
                }
        double[] dx = col2imRef(dcol, g, images);
        try (Tensor tx = tensor(x, xn); Tensor tw = tensor(w, out * patch); Tensor ty = backend.allocate(yn); Tensor tdy = tensor(dy, yn);
             Tensor tdx = tensor(random(xn, 3), xn); Tensor tdw = tensor(random(out * patch, 3), out * patch)) {
            backend.conv2d(tx, tw, g, ty);
            assertClose("conv2d " + g + " x" + images + " out " + out, y, backend.download(ty), 1e-5);
            float[] bias = random(out, 1);
            double[] yb = y.clone();
            for (int i = 0; i < yn; i++) yb[i] += bias[(i / p) % out];
            try (Tensor tb = tensor(bias, out)) {
                backend.conv2d(tx, tw, tb, g, ty);
                assertClose("conv2d + bias " + g + " x" + images + " out " + out, yb, backend.download(ty), 1e-5);
            }
            backend.conv2dBackwardWeight(tx, tdy, g, tdw);
            assertClose("conv2dBackwardWeight " + g + " x" + images, dw, backend.download(tdw), 1e-5);
            backend.conv2dBackwardInput(tdy, tw, g, tdx);
            assertClose("conv2dBackwardInput " + g + " x" + images + " out " + out, dx, backend.download(tdx), 1e-5);
        }
    }

    private PoolGeometry randomPool() {
        int kh = 1 + rng.nextInt(3), kw = 1 + rng.nextInt(3);
        return new PoolGeometry(1 + rng.nextInt(3), kh + rng.nextInt(8), kw + rng.nextInt(8), kh, kw, 1 + rng.nextInt(3), 1 + rng.nextInt(3));
    }

    @Test void poolingForwardAndBackward() {
        for (int trial = 0; trial < 24; trial++) {
            // Every third geometry is the common 2x2 window at stride 2 (odd sizes too, and rows of up to 20
            // windows: a backend may work on 8 or 16 at a time), which backends may special-case.
            PoolGeometry g = trial % 3 == 2 ? new PoolGeometry(1 + rng.nextInt(3), 2 + rng.nextInt(8), 2 + rng.nextInt(40), 2, 2, 2, 2) : randomPool();
            int images = 1 + rng.nextInt(3), xn = (int) (images * g.inputSize()), yn = (int) (images * g.outputSize());
            float[] x = random(xn, 3), dy = random(yn, 1);
            if (trial % 4 == 0) for (int i = 0; i < xn; i += 2) x[i] = 1f; // ties: the first maximum wins
            if (trial % 4 == 1) for (int i = 0; i < xn; i += 3) x[i] = i % 2 == 0 ? 0f : -0f; // +0 and -0 tie too
            if (trial % 5 == 2) for (int i = 1; i < xn; i += 7) x[i] = Float.NaN; // the last NaN in scan order wins
            int oh = g.outHeight(), ow = g.outWidth(), plane = g.height() * g.width();
            double[] maxY = new double[yn], avgY = new double[yn], maxDx = new double[xn], avgDx = new double[xn];
            int o = 0;
            for (int pl = 0; pl < images * g.channels(); pl++) for (int oy = 0; oy < oh; oy++) for (int ox = 0; ox < ow; ox++, o++) {
                // PyTorch's CPU rule: start at the window's first pixel and -inf, move to a greater value or to a NaN.
                int best = pl * plane + oy * g.sh() * g.width() + ox * g.sw(); double bv = Double.NEGATIVE_INFINITY, sum = 0;
                for (int i = 0; i < g.kh(); i++) for (int j = 0; j < g.kw(); j++) {
                    int idx = pl * plane + (oy * g.sh() + i) * g.width() + ox * g.sw() + j;
                    if (x[idx] > bv || Float.isNaN(x[idx])) { best = idx; bv = x[idx]; }
                    sum += x[idx];
                }
                maxY[o] = bv; maxDx[best] += dy[o];
                avgY[o] = sum / (g.kh() * g.kw());
                for (int i = 0; i < g.kh(); i++) for (int j = 0; j < g.kw(); j++)
                    avgDx[pl * plane + (oy * g.sh() + i) * g.width() + ox * g.sw() + j] += dy[o] / (g.kh() * g.kw());
            }
            try (Tensor tx = tensor(x, xn); Tensor ty = backend.allocate(yn); Tensor tdy = tensor(dy, yn); Tensor tdx = tensor(random(xn, 1), xn)) {
                backend.maxPool(tx, g, ty);
                assertClose("maxPool " + g, maxY, backend.download(ty), 0);
                backend.maxPoolBackward(tx, g, tdy, tdx);
                assertClose("maxPoolBackward " + g, maxDx, backend.download(tdx), 1e-6);
                backend.avgPool(tx, g, ty);
                assertClose("avgPool " + g, avgY, backend.download(ty), TOL);
                backend.avgPoolBackward(g, tdy, tdx);
                assertClose("avgPoolBackward " + g, avgDx, backend.download(tdx), TOL);
            }
        }
    }

    /** Pooling over batches large enough that a backend splits the work (by image, across threads or blocks); convs: stride1ConvolutionsOnLargeBatches. */
    @Test void poolingOnLargeBatches() {
        PoolGeometry pg = new PoolGeometry(3, 9, 7, 2, 2, 2, 2);
        int images = 67, xn = (int) (images * pg.inputSize()), yn = (int) (images * pg.outputSize());
        float[] x = random(xn, 1), dy = random(yn, 1);
        try (Tensor tx = tensor(x, xn); Tensor ty = backend.allocate(yn); Tensor tdy = tensor(dy, yn); Tensor tpdx = backend.allocate(xn)) {
            backend.maxPool(tx, pg, ty);
            backend.maxPoolBackward(tx, pg, tdy, tpdx);
            float[] y = backend.download(ty), pdx = backend.download(tpdx);
            int plane = pg.height() * pg.width(), o = 0;
            double[] expY = new double[yn], expDx = new double[xn];
            for (int pl = 0; pl < images * pg.channels(); pl++)
                for (int oy = 0; oy < pg.outHeight(); oy++)
                    for (int ox = 0; ox < pg.outWidth(); ox++, o++) {
                        int best = -1;
                        for (int i = 0; i < pg.kh(); i++)
                            for (int j = 0; j < pg.kw(); j++) {
                                int idx = pl * plane + (oy * pg.sh() + i) * pg.width() + ox * pg.sw() + j;
                                if (best < 0 || x[idx] > x[best]) best = idx;
                            }
                        expY[o] = x[best];
                        expDx[best] += dy[o];
                    }
            assertClose("maxPool, " + images + " images", expY, y, 0);
            assertClose("maxPoolBackward, " + images + " images", expDx, pdx, 1e-6);
        }
    }

    @Test void maxPoolPropagatesNaNAndRoutesToTheLastNaN() {
        PoolGeometry g = new PoolGeometry(1, 2, 2, 2, 2, 2, 2);
        try (Tensor x = tensor(new float[]{1f, Float.NaN, 3f, Float.NaN}, 4); Tensor y = backend.allocate(1);
             Tensor dy = tensor(new float[]{5f}, 1); Tensor dx = backend.allocate(4)) {
            backend.maxPool(x, g, y);
            assertTrue(Float.isNaN(backend.readScalar(y, 0)));
            backend.maxPoolBackward(x, g, dy, dx);
            assertArrayEquals(new float[]{0f, 0f, 0f, 5f}, backend.download(dx), "PyTorch's CPU kernel moves to every NaN it meets");
        }
    }

    /** maxPoolIncrement against max(x + dx) - max(x) per window in float64, on awkward windows, dx from 1e-7 to 1 of x. */
    @Test void maxPoolIncrementKeepsSmallChangesPrecise() {
        for (int trial = 0; trial < 12; trial++) {
            int channels = 1 + rng.nextInt(3), kh = 1 + rng.nextInt(3), kw = 1 + rng.nextInt(3), sh = 1 + rng.nextInt(3), sw = 1 + rng.nextInt(3);
            int h = kh + rng.nextInt(7), w = kw + rng.nextInt(7), images = 1 + rng.nextInt(3);
            PoolGeometry g = new PoolGeometry(channels, h, w, kh, kw, sh, sw);
            double scale = new double[]{1e-7, 1e-4, 1}[trial % 3];
            int n = images * channels * h * w, outs = (int) (images * g.outputSize());
            float[] x = random(n, 4), dx = random(n, 4 * scale);
            double[] expected = new double[outs];
            for (int pl = 0, o = 0; pl < images * channels; pl++)
                for (int oy = 0; oy < g.outHeight(); oy++)
                    for (int ox = 0; ox < g.outWidth(); ox++) {
                        double base = Double.NEGATIVE_INFINITY, moved = Double.NEGATIVE_INFINITY;
                        for (int i = 0; i < kh; i++)
                            for (int j = 0; j < kw; j++) {
                                int at = pl * h * w + (oy * sh + i) * w + ox * sw + j;
                                base = Math.max(base, x[at]);
                                moved = Math.max(moved, (double) x[at] + dx[at]);
                            }
                        expected[o++] = moved - base;
                    }
            try (Tensor tx = tensor(x, n); Tensor td = tensor(dx, n); Tensor out = backend.allocate(outs)) {
                backend.maxPoolIncrement(tx, td, g, out);
                float[] got = backend.download(out);
                for (int o = 0; o < outs; o++)
                    assertEquals(expected[o], got[o], 1e-6 * Math.abs(expected[o]) + 1e-30, g + ", dx up to " + scale + " of x, output " + o);
            }
        }
    }

    @Test void geometryRejectsImpossibleWindows() {
        assertThrows(IllegalArgumentException.class, () -> new Conv2dGeometry(1, 2, 2, 3, 3, 1, 1, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> new PoolGeometry(1, 1, 5, 2, 2, 2, 2));
        try (Tensor x = backend.allocate(10); Tensor y = backend.allocate(1)) {
            Exception e = assertThrows(IllegalArgumentException.class, () -> backend.maxPool(x, new PoolGeometry(1, 2, 2, 2, 2, 2, 2), y));
            assertTrue(e.getMessage().contains("maxPool"), e.getMessage());
        }
    }

    // ------------------------------------------------------------ losses

    @Test void softmaxCrossEntropyIsStableAndExact() {
        for (int trial = 0; trial < 10; trial++) {
            int rows = trial == 9 ? 70_001 : size(), classes = trial == 9 ? 3 : 1 + size(); // the last: many rows, across blocks
            double scale = trial % 3 == 0 ? 500 : 3;
            float[] logits = random(rows * classes, scale), labels = new float[rows];
            for (int r = 0; r < rows; r++) labels[r] = rng.nextInt(classes);
            double loss = 0;
            double[] grad = new double[rows * classes];
            for (int r = 0; r < rows; r++) {
                double max = Double.NEGATIVE_INFINITY, sum = 0;
                for (int c = 0; c < classes; c++) max = Math.max(max, logits[r * classes + c]);
                for (int c = 0; c < classes; c++) sum += Math.exp(logits[r * classes + c] - max);
                double lse = max + Math.log(sum);
                loss += lse - logits[r * classes + (int) labels[r]];
                for (int c = 0; c < classes; c++) grad[r * classes + c] = (Math.exp(logits[r * classes + c] - lse) - (c == labels[r] ? 1 : 0)) / rows;
            }
            try (Tensor tl = tensor(logits, rows, classes); Tensor ty = tensor(labels, rows); Tensor tloss = backend.allocate(1); Tensor tg = backend.allocate(rows, classes)) {
                backend.softmaxCrossEntropy(tl, ty, tloss, tg);
                float meanLoss = backend.readScalar(tloss, 0);
                assertClose("cross entropy loss", new double[]{loss / rows}, new float[]{meanLoss}, 1e-6);
                assertClose("cross entropy grad", grad, backend.download(tg), 1e-5);
                // Each row's own gradient, softmax - onehot (PC's per-sample output error): the same loss, the gradient times the rows.
                backend.softmaxCrossEntropy(tl, ty, tloss, tg, true);
                assertEquals(meanLoss, backend.readScalar(tloss, 0), "the loss is the batch's mean either way");
                for (int i = 0; i < grad.length; i++) grad[i] *= rows;
                assertClose("cross entropy per-sample grad", grad, backend.download(tg), 1e-5);
            }
        }
    }

    /**
     * The numerics every backend shares by design: a confident softmax's gradients below float's normal
     * range (e^-100 here) are exactly zero, not subnormal, and the others match float64 (exp in double).
     */
    @Test void crossEntropyFlushesSubnormalGradientsOnEveryBackend() {
        float[] logits = {0f, 100f, 30f, /**/ 5f, -95f, 5f};
        float[] labels = {1, 0};
        try (Tensor tl = tensor(logits, 2, 3); Tensor ty = tensor(labels, 2); Tensor loss = backend.allocate(1); Tensor tg = backend.allocate(2, 3)) {
            backend.softmaxCrossEntropy(tl, ty, loss, tg);
            float[] g = backend.download(tg);
            assertEquals(0f, g[0], "e^-100 / 2 is below Float.MIN_NORMAL: flushed");
            assertEquals(0f, g[4], "e^-100 / 2 is below Float.MIN_NORMAL: flushed");
            double p2 = Math.exp(-70) / (1 + Math.exp(-70) + Math.exp(-100));
            assertClose("a small but normal gradient", new double[]{p2 / 2}, new float[]{g[2]}, 1e-6);
            backend.softmaxCrossEntropy(tl, ty, loss, tg, true);
            g = backend.download(tg);
            assertEquals(0f, g[0], "e^-100 is below Float.MIN_NORMAL: flushed per sample too");
            assertClose("a small but normal per-sample gradient", new double[]{p2}, new float[]{g[2]}, 1e-6);
        }
    }

    @Test void crossEntropyWithBadLabelIsNaN() {
        try (Tensor tl = tensor(new float[]{1, 2, 3, 4}, 2, 2); Tensor ty = tensor(new float[]{0, 2}, 2); Tensor tloss = backend.allocate(1)) {
            backend.softmaxCrossEntropy(tl, ty, tloss, null);
            assertTrue(Float.isNaN(backend.readScalar(tloss, 0)));
        }
    }

    @Test void mseLossAndGradient() {
        for (int n : new int[]{1, 5, 97, 70_001, 300_007}) {
            float[] y = random(n, 2), t = random(n, 2);
            double loss = 0;
            double[] grad = new double[n];
            for (int i = 0; i < n; i++) { double d = (double) y[i] - t[i]; loss += d * d / n; grad[i] = 2 * d / n; }
            try (Tensor ty = tensor(y, n); Tensor tt = tensor(t, n); Tensor tl = backend.allocate(1); Tensor tg = backend.allocate(n)) {
                backend.mse(ty, tt, tl, tg);
                assertClose("mse loss", new double[]{loss}, new float[]{backend.readScalar(tl, 0)}, 1e-6);
                assertClose("mse grad", grad, backend.download(tg), TOL);
            }
        }
    }

    /**
     * softmaxCrossEntropyFromProducts and mseFromProducts: the bits of add(logits, addend), the bias as linear adds it (per
     * feature, or an offset), then the loss (batch mean or per sample), with and without an addend and a gradient, at
     * sizes a GPU sums in one block and in more; against float64 too. Aliases are refused, naming the op.
     */
    @Test void lossesFromProductsAreTheOpsApart() {
        for (int trial = 0; trial < 12; trial++) {
            int rows = trial == 11 ? 20_001 : size(), classes = trial == 11 ? 3 : 1 + size(), n = rows * classes;
            boolean withAddend = trial % 2 == 0, withGrad = trial % 4 != 3, perSample = trial % 3 == 1;
            int biasKind = trial % 3; // none, per feature, offset
            float[] p = random(n, 3), a = random(n, 1), b = random(classes, 1), offset = random(n, 1), target = random(n, 1), labels = new float[rows];
            for (int r = 0; r < rows; r++) labels[r] = rng.nextInt(classes);
            String what = rows + "x" + classes + (withAddend ? " + addend" : "") + " bias " + biasKind + (withGrad ? "" : " no gradient") + (perSample ? " per sample" : "") + ": ";
            try (Tensor l1 = tensor(p, rows, classes); Tensor l2 = tensor(p, rows, classes); Tensor ta = tensor(a, rows, classes); Tensor tb = tensor(b, classes);
                 Tensor to = tensor(offset, rows, classes); Tensor ty = tensor(labels, rows); Tensor tt = tensor(target, rows, classes);
                 Tensor g1 = backend.allocate(rows, classes); Tensor g2 = backend.allocate(rows, classes); Tensor loss1 = backend.allocate(1); Tensor loss2 = backend.allocate(1)) {
                Tensor addend = withAddend ? ta : null, bias = biasKind == 0 ? null : biasKind == 1 ? tb : to;
                double[] z = productsInDouble(p, a, withAddend, biasKind, b, offset, classes);
                for (boolean ce : new boolean[]{true, false}) {
                    String name = (ce ? "softmaxCrossEntropyFromProducts " : "mseFromProducts ") + what;
                    backend.upload(p, 0, l1, 0, n);
                    backend.upload(p, 0, l2, 0, n);
                    if (ce) backend.softmaxCrossEntropyFromProducts(l1, addend, bias, ty, loss1, withGrad ? g1 : null, perSample);
                    else backend.mseFromProducts(l1, addend, bias, tt, loss1, withGrad ? g1 : null);
                    addProductsApart(l2, addend, biasKind, tb, to, classes);
                    if (ce) backend.softmaxCrossEntropy(l2, ty, loss2, withGrad ? g2 : null, perSample);
                    else backend.mse(l2, tt, loss2, withGrad ? g2 : null);
                    assertClose(name + "logits", toDouble(backend.download(l2)), backend.download(l1), 0);
                    assertEquals(backend.readScalar(loss2, 0), backend.readScalar(loss1, 0), name + "loss, the bits of the ops apart");
                    if (withGrad) assertClose(name + "gradient", toDouble(backend.download(g2)), backend.download(g1), 0);
                    assertClose(name + "logits against float64", z, backend.download(l1), 1e-6);
                    double expected = 0;
                    for (int r = 0; r < rows; r++)
                        if (ce) {
                            double max = Double.NEGATIVE_INFINITY, sum = 0;
                            for (int c = 0; c < classes; c++) max = Math.max(max, z[r * classes + c]);
                            for (int c = 0; c < classes; c++) sum += Math.exp(z[r * classes + c] - max);
                            expected += (max + Math.log(sum) - z[r * classes + (int) labels[r]]) / rows;
                        } else for (int c = 0; c < classes; c++) expected += Math.pow(z[r * classes + c] - target[r * classes + c], 2) / n;
                    assertClose(name + "loss against float64", new double[]{expected}, new float[]{backend.readScalar(loss1, 0)}, 1e-5);
                }
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> backend.softmaxCrossEntropyFromProducts(l1, l1, bias, ty, loss1, g1, false));
                assertTrue(e.getMessage().contains("softmaxCrossEntropyFromProducts"), e.getMessage());
                e = assertThrows(IllegalArgumentException.class, () -> backend.mseFromProducts(l1, addend, bias, tt, loss1, l1));
                assertTrue(e.getMessage().contains("mseFromProducts"), e.getMessage());
            }
        }
    }

    /** Sums over sizes that a device splits across blocks, and beyond (a reduction's passes, every remainder). */
    @Test void reductionsOverLargeAndAwkwardSizes() {
        for (int n : new int[]{255, 256, 257, 16_384, 16_385, 65_537, 300_007}) { // 16384: the most a GPU sums in one block
            float[] x = random(n, 3);
            double sq = 0;
            for (float v : x) sq += (double) v * v;
            int rows = n / 3, classes = 3;
            float[] labels = new float[rows];
            int correct = 0;
            for (int r = 0; r < rows; r++) {
                labels[r] = rng.nextInt(classes);
                int best = 0;
                for (int c = 1; c < classes; c++) if (x[r * classes + c] > x[r * classes + best]) best = c;
                if (best == labels[r]) correct++;
            }
            try (Tensor tx = tensor(x, n); Tensor out = backend.allocate(4);
                 Tensor tl = tensor(java.util.Arrays.copyOf(x, rows * classes), rows, classes); Tensor ty = tensor(labels, rows)) {
                backend.sumSquares(tx, 0.25f, out, 3);
                assertClose("sum of squares of " + n, new double[]{0.25 * sq}, new float[]{backend.readScalar(out, 3)}, 1e-6);
                backend.countCorrect(tl, ty, out, 0);
                assertEquals((float) correct, backend.readScalar(out, 0), "correct of " + rows + " rows");
            }
        }
    }

    /**
     * sumSquares at scale 0 tells a non-finite tensor from a finite one exactly: the double sum of finite floats' squares
     * stays finite (3.4e38 squared is 1.2e77), so 0 x sum is 0, and a NaN or an infinity makes it NaN. A backend that
     * skipped the sum at scale 0 would let {@code Predictor.publish} pass a NaN parameter.
     */
    @Test void sumSquaresAtScaleZeroFlagsExactlyTheNonFinite() {
        for (int n : new int[]{1, 257, 16_385, 300_007}) {
            float[] x = random(n, 3);
            x[n / 2] = Float.MAX_VALUE; // finite, however large
            try (Tensor tx = tensor(x, n); Tensor out = backend.allocate(2)) {
                backend.sumSquares(tx, 0f, out, 1);
                assertEquals(0f, backend.readScalar(out, 1), "finite, " + n);
                for (float bad : new float[]{Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY}) {
                    float[] y = x.clone();
                    y[n - 1] = bad;
                    backend.upload(y, tx);
                    backend.sumSquares(tx, 0f, out, 1);
                    assertTrue(Float.isNaN(backend.readScalar(out, 1)), bad + " in " + n);
                }
            }
        }
    }

    /** Squared error's correct count: rows whose argmax is their target row's, over row counts a device splits and beyond. */
    @Test void countArgmaxMatchesComparesEachRowsArgmax() {
        for (int[] rc : new int[][]{{1, 2}, {7, 10}, {257, 3}, {65_537, 10}, {3, 1_031}}) {
            int rows = rc[0], classes = rc[1];
            float[] out = random(rows * classes, 1), target = new float[rows * classes];
            for (int r = 0; r < rows; r++) target[r * classes + rng.nextInt(classes)] = 1f; // one-hot
            if (rows > 7) target[5 * classes] = target[5 * classes + classes - 1] = 1f; // two equal maxima: the first is the class
            int hits = 0;
            for (int r = 0; r < rows; r++) {
                int a = 0, b = 0;
                for (int c = 1; c < classes; c++) {
                    if (out[r * classes + c] > out[r * classes + a]) a = c;
                    if (target[r * classes + c] > target[r * classes + b]) b = c;
                }
                if (a == b) hits++;
            }
            try (Tensor to = tensor(out, rows, classes); Tensor tt = tensor(target, rows, classes); Tensor res = backend.allocate(3)) {
                backend.countArgmaxMatches(to, tt, res, 2);
                assertEquals((float) hits, backend.readScalar(res, 2), rows + " rows of " + classes);
                backend.countArgmaxMatches(to, to, res, 0);
                assertEquals((float) rows, backend.readScalar(res, 0), "every row matches itself");
            }
        }
        float[] logits = {1, 3, 3, /**/ 5, 0, 0, /**/ 0, 0, 1, /**/ 2, 2, 2};
        float[] targets = {0, 1, 0, /**/ 1, 0, 0, /**/ 0, 1, 0, /**/ 0, 0, 1};
        try (Tensor tl = tensor(logits, 4, 3); Tensor ty = tensor(targets, 4, 3); Tensor out = backend.allocate(2)) {
            backend.countArgmaxMatches(tl, ty, out, 1);
            assertEquals(2f, backend.readScalar(out, 1), "ties go to the first maximum, in outputs and targets alike");
            assertThrows(IllegalArgumentException.class, () -> backend.countArgmaxMatches(tl, out, out, 0));
        }
    }

    @Test void countCorrectUsesFirstArgmax() {
        float[] logits = {1, 3, 3, /**/ 5, 0, 0, /**/ 0, 0, 1, /**/ 2, 2, 2};
        float[] labels = {1, 0, 1, 0};
        try (Tensor tl = tensor(logits, 4, 3); Tensor ty = tensor(labels, 4); Tensor out = backend.allocate(2)) {
            backend.countCorrect(tl, ty, out, 1);
            assertEquals(3f, backend.readScalar(out, 1));
        }
    }

    // ------------------------------------------------------------ predictive coding

    // ------------------------------------------------------------ overrides against their compositions

    /** Runs {@code op} on fresh copies of {@code inputs}, returning every tensor's values after it. */
    private float[][] afterRunning(float[][] inputs, java.util.function.Consumer<Tensor[]> op) {
        Tensor[] t = new Tensor[inputs.length];
        try {
            for (int i = 0; i < inputs.length; i++) t[i] = inputs[i] == null ? null : tensor(inputs[i], inputs[i].length);
            op.accept(t);
            float[][] out = new float[inputs.length][];
            for (int i = 0; i < t.length; i++) out[i] = t[i] == null ? null : backend.download(t[i]);
            return out;
        } finally {
            for (Tensor x : t) if (x != null) x.close();
        }
    }

    private void assertSameAfter(String what, float[][] inputs, java.util.function.Consumer<Tensor[]> fused, java.util.function.Consumer<Tensor[]> composed, double tol) {
        float[][] a = afterRunning(inputs, fused), b = afterRunning(inputs, composed);
        for (int i = 0; i < a.length; i++) if (a[i] != null) assertClose(what + ", tensor " + i, toDouble(b[i]), a[i], tol);
    }

    /** Every op with a default in {@link Compositions} gives, as this backend runs it, what the composition gives. */
    @Test void overridesEqualTheirCompositions() {
        float eta = 0.1f, slope = 0.07f;
        for (int n : new int[]{1, 13, 257, 70_001}) {
            float[][] five = {random(n, 2), random(n, 2), random(n, 2), random(n, 0.1), random(n, 1), random(n, 1), random(n, 1)};
            for (boolean withError : new boolean[]{true, false}) {
                float[][] in = five.clone();
                if (!withError) in[5] = null;
                assertSameAfter("pcStrictUpdate " + n, in, t -> backend.pcStrictUpdate(t[0], t[1], t[2], t[3], t[4], t[5], eta),
                        t -> Compositions.pcStrictUpdate(backend, t[0], t[1], t[2], t[3], t[4], t[5], eta), 1e-5);
                for (boolean first : new boolean[]{true, false})
                    assertSameAfter("pcMomentumUpdate first=" + first + " " + n, in,
                            t -> backend.pcMomentumUpdate(t[0], t[1], t[2], t[3], t[6], t[4], t[5], eta, 0.9f, first),
                            t -> Compositions.pcMomentumUpdate(backend, t[0], t[1], t[2], t[3], t[6], t[4], t[5], eta, 0.9f, first), 1e-5);
                // Adam's moments as a few steps leave them: the second non-negative. Inputs: p, vhat, feedback, d, belief, error, m, s.
                float[][] adam = {five[0], five[1], five[2], five[3], five[4], in[5], random(n, 0.5), abs(random(n, 0.5))};
                for (long step : new long[]{1, 7})
                    assertSameAfter("pcAdamUpdate step=" + step + " " + n, adam,
                            t -> backend.pcAdamUpdate(t[0], t[1], t[2], t[3], t[6], t[7], t[4], t[5], eta, 0.9f, 0.999f, 1e-8f, step),
                            t -> Compositions.pcAdamUpdate(backend, t[0], t[1], t[2], t[3], t[6], t[7], t[4], t[5], (float) (eta / (1 - Math.pow(0.9, step))),
                                    (float) Math.sqrt(1 - Math.pow(0.999, step)), 0.9f, 0.999f, 1e-8f), 1e-5);
            }
            for (Activation f : Activation.values()) {
                float[][] act = {random(n, 4), new float[n], new float[n]};
                assertSameAfter("activationWithDerivative " + f + " " + n, act, t -> backend.activationWithDerivative(f, slope, t[0], t[1], t[2]),
                        t -> Compositions.activationWithDerivative(backend, f, slope, t[0], t[1], t[2]), 1e-6);
            }
            float[][] error = {five[0], five[1], five[3], new float[n], five[2], new float[n]};
            assertSameAfter("pcPredictionError " + n, error, t -> backend.pcPredictionError(t[0], t[1], t[2], t[3]),
                    t -> Compositions.pcPredictionError(backend, t[0], t[1], t[2], t[3], null, null, null), 0);
            // With delta = error * derivative: the bits of the error, then multiply's product (the block's backward step it replaces).
            assertSameAfter("pcPredictionError with delta " + n, error, t -> backend.pcPredictionError(t[0], t[1], t[2], t[3], t[4], t[5]),
                    t -> Compositions.pcPredictionError(backend, t[0], t[1], t[2], t[3], t[4], t[5], null), 0);
            float[] inPlace = afterRunning(error, t -> backend.pcPredictionError(t[0], t[1], t[2], t[0]))[0],
                    apart = afterRunning(error, t -> Compositions.pcPredictionError(backend, t[0], t[1], t[2], t[3], null, null, null))[3];
            assertClose("pcPredictionError in place of the prediction " + n, toDouble(apart), inPlace, 0);
            float[] inPlaceDelta = afterRunning(error, t -> backend.pcPredictionError(t[0], t[1], t[2], t[0], t[4], t[5]))[5],
                    apartDelta = afterRunning(error, t -> Compositions.pcPredictionError(backend, t[0], t[1], t[2], t[3], t[4], t[5], null))[5];
            assertClose("pcPredictionError's delta with the error in place of the prediction " + n, toDouble(apartDelta), inPlaceDelta, 0);
            // With the displacement's step (PC's folded relaxation), with and without delta, plain and heavy-ball; also in place of the prediction.
            float[][] stepped = {five[0], five[1], five[3], new float[n], five[2], new float[n], new float[n], random(n, 0.1)};
            for (int variant = 0; variant < 4; variant++) {
                boolean withDelta = variant % 2 == 1, heavyBall = variant >= 2;
                float[][] in = stepped.clone();
                if (!withDelta) in[4] = in[5] = null;
                if (!heavyBall) in[7] = null;
                java.util.function.Function<Tensor[], BeliefStep> step = t -> new BeliefStep(t[6], eta, heavyBall ? 0.9f : 0f, t[7]);
                String what = "pcPredictionError with its step, delta=" + withDelta + " momentum=" + heavyBall + " " + n;
                assertSameAfter(what, in, t -> backend.pcPredictionError(t[0], t[1], t[2], t[3], t[4], t[5], step.apply(t)),
                        t -> Compositions.pcPredictionError(backend, t[0], t[1], t[2], t[3], t[4], t[5], step.apply(t)), 0);
                float[][] overPrediction = afterRunning(in, t -> backend.pcPredictionError(t[0], t[1], t[2], t[0], t[4], t[5], step.apply(t))),
                        own = afterRunning(in, t -> backend.pcPredictionError(t[0], t[1], t[2], t[3], t[4], t[5], step.apply(t)));
                assertClose(what + ": error in place of the prediction", toDouble(own[3]), overPrediction[0], 0);
                assertClose(what + ": next, the error in place", toDouble(own[6]), overPrediction[6], 0);
            }
            float[][] mse = {random(n, 2), random(n, 2), new float[1], new float[n]};
            assertSameAfter("mse " + n, mse, t -> backend.mse(t[0], t[1], t[2], t[3]), t -> Compositions.mse(backend, t[0], t[1], t[2], t[3]), 1e-5);
            float[][] mseNoGrad = {mse[0], mse[1], new float[1], null};
            assertSameAfter("mse without dy " + n, mseNoGrad, t -> backend.mse(t[0], t[1], t[2], null), t -> Compositions.mse(backend, t[0], t[1], t[2], null), 1e-5);
            for (int variant = 0; variant < 5; variant++) {
                float momentum = variant == 0 ? 0f : 0.9f, wd = variant % 2 == 1 ? 0.01f : 0f, dampening = variant == 4 ? 0.2f : 0f;
                boolean nesterov = variant == 3, first = variant == 2;
                float[][] sgd = {random(n, 1), random(n, 1), random(n, 1)};
                assertSameAfter("sgdStep variant " + variant + " " + n, sgd,
                        t -> backend.sgdStep(t[0], t[1], t[2], 0.05f, momentum, dampening, wd, nesterov, first),
                        t -> Compositions.sgdStep(backend, t[0], t[1], t[2], 0.05f, momentum, dampening, wd, nesterov, first), 1e-5);
            }
            float[][] two = {random(n, 1), random(n, 1)};
            assertSameAfter("fill " + n, two, t -> backend.fill(t[0], n / 3, n - n / 3, 2.5f), t -> Compositions.fill(backend, t[0], n / 3, n - n / 3, 2.5f), 0);
            assertSameAfter("copy " + n, two, t -> backend.copy(t[0], 0, t[1], 0, n), t -> Compositions.copy(backend, t[0], 0, t[1], 0, n), 0);
            assertSameAfter("randomUniform " + n, two, t -> backend.randomUniform(t[0], -0.3f, 0.7f, 42), t -> Compositions.randomUniform(backend, t[0], -0.3f, 0.7f, 42), 0);
        }
    }

    /**
     * The displacement's step against float64: error = (prediction - vhat) - d, delta = error * f', next = d + momentum
     * (d - previous) + eta * error; and next with a feedback GEMM added onto it (beta 1) is PC's SGD step on the
     * displacement, d + momentum (d - previous) + eta (eps - J^T eps_above). Misuse names the op and what is wrong.
     */
    @Test void displacementStepAndFoldedUpdateMatchFloat64() {
        for (int n : new int[]{1, 7, 17, 257}) for (float momentum : new float[]{0f, 0.9f}) {
            int above = 1 + n % 5;
            float eta = 0.1f;
            float[] p = random(n, 2), a = random(n, 2), d = random(n, 0.1), q = random(n, 0.1), f = random(n, 1), delta = random(above, 1), w = random(above * n, 1);
            double[] ee = new double[n], eg = new double[n], en = new double[n], step = new double[n];
            for (int i = 0; i < n; i++) {
                ee[i] = ((double) p[i] - a[i]) - d[i];
                eg[i] = ee[i] * f[i];
                en[i] = d[i] + momentum * ((double) d[i] - q[i]) + eta * ee[i];
                double feedback = 0;
                for (int o = 0; o < above; o++) feedback += (double) delta[o] * w[o * n + i];
                step[i] = en[i] - eta * feedback;
            }
            String what = "n " + n + ", momentum " + momentum + ": ";
            try (Tensor tp = tensor(p, 1, n); Tensor ta = tensor(a, 1, n); Tensor td = tensor(d, 1, n); Tensor tq = tensor(q, 1, n); Tensor tf = tensor(f, 1, n);
                 Tensor te = backend.allocate(1, n); Tensor tg = backend.allocate(1, n); Tensor tn = backend.allocate(1, n); Tensor tdelta = tensor(delta, 1, above);
                 Tensor tw = tensor(w, above, n)) {
                BeliefStep s = new BeliefStep(tn, eta, momentum, momentum == 0f ? null : tq);
                backend.pcPredictionError(tp, ta, td, te, tf, tg, s);
                assertClose(what + "error", ee, backend.download(te), TOL);
                assertClose(what + "delta", eg, backend.download(tg), TOL);
                assertClose(what + "next", en, backend.download(tn), TOL);
                backend.matmul(false, false, -eta, tdelta, tw, 1f, tn);
                assertClose(what + "the folded step", step, backend.download(tn), 1e-5);
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> backend.pcPredictionError(tp, ta, td, te, tf, tg, BeliefStep.sgd(td, eta)));
                assertTrue(e.getMessage().contains("pcPredictionError") && e.getMessage().contains("next"), e.getMessage());
                e = assertThrows(IllegalArgumentException.class, () -> backend.pcPredictionError(tp, ta, td, te, tf, null, s));
                assertTrue(e.getMessage().contains("derivative and delta"), e.getMessage());
                e = assertThrows(IllegalArgumentException.class, () -> new BeliefStep(tn, eta, 0.5f, null));
                assertTrue(e.getMessage().contains("previous"), e.getMessage());
                try (Tensor small = backend.allocate(1, n + 1)) {
                    e = assertThrows(IllegalArgumentException.class, () -> backend.pcPredictionError(tp, ta, td, te, tf, tg, BeliefStep.sgd(small, eta)));
                    assertTrue(e.getMessage().contains("pcPredictionError"), e.getMessage());
                }
            }
        }
    }

    /** A linear op's bias as an offset of the output's own size (PC's predictions from a displacement): y = offset + x W^T, against float64. */
    @Test void linearTakesAnOffsetInPlaceOfTheBias() {
        for (int batch : new int[]{1, 3, 17}) {
            int in = size(), out = size();
            float[] x = random(batch * in, 1), w = random(out * in, 1), offset = random(batch * out, 2);
            double[] expected = new double[batch * out];
            for (int r = 0; r < batch; r++)
                for (int o = 0; o < out; o++) {
                    double sum = offset[r * out + o];
                    for (int k = 0; k < in; k++) sum += (double) x[r * in + k] * w[o * in + k];
                    expected[r * out + o] = sum;
                }
            try (Tensor tx = tensor(x, batch, in); Tensor tw = tensor(w, out, in); Tensor to = tensor(offset, batch, out); Tensor y = backend.allocate(batch, out);
                 Tensor target = backend.allocate(batch, out); Tensor error = backend.allocate(batch, out); Tensor wrong = backend.allocate(out + 1)) {
                backend.linear(tx, tw, to, y);
                assertClose("linear with an offset, batch " + batch, expected, backend.download(y), 1e-5);
                backend.fill(y, 0f);
                backend.pcLinearOutputError(tx, tw, to, y, target, error);
                assertClose("pcLinearOutputError with an offset, batch " + batch, expected, backend.download(error), 1e-5);
                if (batch > 1) {
                    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> backend.linear(tx, tw, wrong, y));
                    assertTrue(e.getMessage().contains("linear") && e.getMessage().contains("bias"), e.getMessage());
                }
            }
        }
    }

    @Test void strictUpdateAndEnergy() {
        int n = 257;
        float[] p = random(n, 2), vhat = random(n, 2), fb = random(n, 2), d = random(n, 0.01);
        float eta = 0.1f;
        double[] ee = new double[n], ed = new double[n], ev = new double[n];
        double energy = 0;
        for (int i = 0; i < n; i++) {
            ee[i] = ((double) p[i] - vhat[i]) - d[i];
            ed[i] = d[i] + eta * (ee[i] - fb[i]);
            ev[i] = vhat[i] + ed[i];
            energy += 0.5 * ee[i] * ee[i];
        }
        try (Tensor tp = tensor(p, n); Tensor ta = tensor(vhat, n); Tensor tf = tensor(fb, n); Tensor td = tensor(d, n);
             Tensor tv = backend.allocate(n); Tensor te = backend.allocate(n); Tensor out = backend.allocate(3)) {
            backend.pcStrictUpdate(tp, ta, tf, td, tv, te, eta);
            assertClose("error", ee, backend.download(te), TOL);
            assertClose("displacement", ed, backend.download(td), TOL);
            assertClose("belief", ev, backend.download(tv), TOL);
            backend.sumSquares(te, 0.5f, out, 2);
            assertClose("energy", new double[]{energy}, new float[]{backend.readScalar(out, 2)}, 1e-6);
        }
        // Without an error tensor (nobody reads it): the same displacement and belief.
        try (Tensor tp = tensor(p, n); Tensor ta = tensor(vhat, n); Tensor tf = tensor(fb, n); Tensor td = tensor(d, n); Tensor tv = backend.allocate(n)) {
            backend.pcStrictUpdate(tp, ta, tf, td, tv, null, eta);
            assertClose("displacement, no error tensor", ed, backend.download(td), TOL);
            assertClose("belief, no error tensor", ev, backend.download(tv), TOL);
        }
    }

    /** PC's belief step with momentum, two steps (the first does not read the velocity), against float64; also with prediction = vhat (layer 1). */
    @Test void momentumUpdateMatchesFloat64() {
        for (int n : new int[]{1, 7, 257}) for (boolean anchored : new boolean[]{false, true}) {
            float[] p = random(n, 2), vhat = random(n, 2), fb1 = random(n, 2), fb2 = random(n, 2), d = random(n, 0.01), garbage = random(n, 5);
            if (anchored) p = vhat;
            float eta = 0.03f, momentum = 0.9f;
            double[] ed = toDouble(d), ev = new double[n], ee = new double[n], em = new double[n], eb = new double[n];
            for (int step = 0; step < 2; step++)
                for (int i = 0; i < n; i++) {
                    ee[i] = ((double) p[i] - vhat[i]) - ed[i];
                    double g = (step == 0 ? fb1[i] : fb2[i]) - ee[i];
                    em[i] = step == 0 ? g : momentum * em[i] + g;
                    ed[i] -= eta * em[i];
                    eb[i] = vhat[i] + ed[i];
                }
            try (Tensor ta = tensor(vhat, n); Tensor tp = anchored ? null : tensor(p, n); Tensor tf1 = tensor(fb1, n); Tensor tf2 = tensor(fb2, n);
                 Tensor td = tensor(d, n); Tensor tm = tensor(garbage, n); Tensor tv = backend.allocate(n); Tensor te = backend.allocate(n)) {
                Tensor prediction = anchored ? ta : tp;
                backend.pcMomentumUpdate(prediction, ta, tf1, td, tm, tv, null, eta, momentum, true);
                backend.pcMomentumUpdate(prediction, ta, tf2, td, tm, tv, te, eta, momentum, false);
                String what = "n=" + n + (anchored ? ", prediction = vhat" : "") + ": ";
                assertClose(what + "error", ee, backend.download(te), TOL);
                assertClose(what + "velocity", em, backend.download(tm), TOL);
                assertClose(what + "displacement", ed, backend.download(td), TOL);
                assertClose(what + "belief", eb, backend.download(tv), TOL);
            }
        }
    }

    /**
     * PC's belief step by Adam, three steps from zero moments, against float64 (PyTorch's Adam on the displacement with the
     * energy's gradient feedback - error); also with prediction = vhat (layer 1), and without an error tensor.
     */
    @Test void adamUpdateMatchesFloat64() {
        for (int n : new int[]{1, 7, 257}) for (boolean anchored : new boolean[]{false, true}) {
            float[] p = random(n, 2), vhat = random(n, 2), d = random(n, 0.01);
            float[][] fb = {random(n, 2), random(n, 2), random(n, 2)};
            if (anchored) p = vhat;
            double eta = 0.05f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f; // float's values: 1 - 0.999f is 4.7e-5 off 1 - 0.999
            double[] ed = toDouble(d), ev = new double[n], ee = new double[n], em = new double[n], es = new double[n];
            for (int step = 1; step <= 3; step++)
                for (int i = 0; i < n; i++) {
                    ee[i] = ((double) p[i] - vhat[i]) - ed[i];
                    double g = fb[step - 1][i] - ee[i];
                    em[i] = b1 * em[i] + (1 - b1) * g;
                    es[i] = b2 * es[i] + (1 - b2) * g * g;
                    ed[i] -= eta / (1 - Math.pow(b1, step)) * em[i] / (Math.sqrt(es[i]) / Math.sqrt(1 - Math.pow(b2, step)) + eps);
                    ev[i] = vhat[i] + ed[i];
                }
            try (Tensor ta = tensor(vhat, n); Tensor tp = anchored ? null : tensor(p, n); Tensor tf = backend.allocate(n); Tensor td = tensor(d, n);
                 Tensor tm = backend.allocate(n); Tensor ts = backend.allocate(n); Tensor tv = backend.allocate(n); Tensor te = backend.allocate(n)) {
                Tensor prediction = anchored ? ta : tp;
                backend.fill(tm, 0f);
                backend.fill(ts, 0f);
                for (int step = 1; step <= 3; step++) {
                    backend.upload(fb[step - 1], tf);
                    backend.pcAdamUpdate(prediction, ta, tf, td, tm, ts, tv, step == 3 ? te : null, (float) eta, (float) b1, (float) b2, (float) eps, step);
                }
                String what = "n=" + n + (anchored ? ", prediction = vhat" : "") + ": ";
                assertClose(what + "error", ee, backend.download(te), TOL);
                assertClose(what + "first moment", em, backend.download(tm), TOL);
                assertClose(what + "second moment", es, backend.download(ts), TOL);
                assertClose(what + "displacement", ed, backend.download(td), TOL);
                assertClose(what + "belief", ev, backend.download(tv), TOL);
                assertArrayEquals(fb[2], backend.download(tf), what + "feedback is only read");
            }
        }
    }

    @Test void strictUpdateErrorIsExactlyMinusDisplacementWhenPredictionIsTheAnchor() {
        int n = 64;
        float[] vhat = random(n, 3), d = random(n, 1e-4), fb = random(n, 1e-3);
        try (Tensor ta = tensor(vhat, n); Tensor tf = tensor(fb, n); Tensor td = tensor(d, n); Tensor tv = backend.allocate(n); Tensor te = backend.allocate(n)) {
            backend.pcStrictUpdate(ta, ta, tf, td, tv, te, 0.1f);
            float[] e = backend.download(te);
            for (int i = 0; i < n; i++) assertEquals(-d[i], e[i], 0f, "error[" + i + "]");
        }
    }

    // ------------------------------------------------------------ optimizers

    @Test void sgdMatchesPyTorchSemantics() {
        for (boolean nesterov : new boolean[]{false, true}) {
            int n = 37;
            float[] p = random(n, 1), buf = new float[n];
            double[] ep = toDouble(p), eb = new double[n];
            float lr = 0.05f, mom = 0.9f, wd = 0.01f;
            try (Tensor tp = tensor(p, n); Tensor tg = backend.allocate(n); Tensor tb = tensor(buf, n)) {
                for (int step = 0; step < 4; step++) {
                    float[] g = random(n, 1);
                    for (int i = 0; i < n; i++) {
                        double d = g[i] + wd * ep[i];
                        eb[i] = step == 0 ? d : mom * eb[i] + d;
                        ep[i] -= lr * (nesterov ? d + mom * eb[i] : eb[i]);
                    }
                    backend.upload(g, tg);
                    backend.sgdStep(tp, tg, tb, lr, mom, 0f, wd, nesterov, step == 0);
                }
                assertClose("sgd nesterov=" + nesterov, ep, backend.download(tp), 1e-6);
            }
        }
    }

    @Test void adamMatchesPyTorchSemantics() {
        int n = 41;
        float[] p = random(n, 1);
        double[] ep = toDouble(p), m = new double[n], v = new double[n];
        double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.001;
        try (Tensor tp = tensor(p, n); Tensor tg = backend.allocate(n); Tensor tm = backend.allocate(n); Tensor tv = backend.allocate(n)) {
            for (int step = 1; step <= 5; step++) {
                float[] g = random(n, 1);
                for (int i = 0; i < n; i++) {
                    double gi = g[i] + wd * ep[i];
                    m[i] = b1 * m[i] + (1 - b1) * gi;
                    v[i] = b2 * v[i] + (1 - b2) * gi * gi;
                    double denom = Math.sqrt(v[i]) / Math.sqrt(1 - Math.pow(b2, step)) + eps;
                    ep[i] -= lr / (1 - Math.pow(b1, step)) * m[i] / denom;
                }
                backend.upload(g, tg);
                backend.adamStep(tp, tg, tm, tv, (float) lr, (float) b1, (float) b2, (float) eps, (float) wd, step);
            }
            assertClose("adam", ep, backend.download(tp), 1e-6);
        }
    }

    /** AdamW: the decoupled decay inside the step is axpby(0, p, decay, p) then the step, bit for bit; and PyTorch's AdamW in float64. */
    @Test void adamWithDecayIsTheDecayThenTheStep() {
        int n = 70_001;
        float lr = 0.01f, wd = 0.05f, decay = 1f - lr * wd;
        float[] p = random(n, 1);
        double[] ep = toDouble(p), m = new double[n], v = new double[n];
        try (Tensor tp = tensor(p, n); Tensor tp2 = tensor(p, n); Tensor tg = backend.allocate(n); Tensor tm = backend.allocate(n); Tensor tv = backend.allocate(n);
             Tensor tm2 = backend.allocate(n); Tensor tv2 = backend.allocate(n)) {
            for (int step = 1; step <= 3; step++) {
                float[] g = random(n, 1);
                for (int i = 0; i < n; i++) {
                    ep[i] *= 1 - (double) lr * wd;
                    m[i] = 0.9 * m[i] + 0.1 * g[i];
                    v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i];
                    ep[i] -= lr / (1 - Math.pow(0.9, step)) * m[i] / (Math.sqrt(v[i]) / Math.sqrt(1 - Math.pow(0.999, step)) + 1e-8);
                }
                backend.upload(g, tg);
                backend.adamStep(tp, tg, tm, tv, lr, 0.9f, 0.999f, 1e-8f, 0f, decay, step);
                backend.axpby(0f, tp2, decay, tp2);
                backend.adamStep(tp2, tg, tm2, tv2, lr, 0.9f, 0.999f, 1e-8f, 0f, step);
            }
            assertClose("adamW in one pass against axpby then adam", toDouble(backend.download(tp2)), backend.download(tp), 0);
            assertClose("adamW against float64", ep, backend.download(tp), 1e-5);
        }
    }

    /**
     * Adam with its step sizes read from a tensor (a step a recorded sequence of ops holds) is Adam with them given: the
     * same bits; guarded by a value that is not finite, it changes nothing.
     */
    @Test void adamWithScalarsFromATensorIsAdamWithThemGiven() {
        for (int n : new int[]{1, 33, 70_001}) {
            float[] p = random(n, 1);
            float wd = 0.01f;
            try (Tensor tp = tensor(p, n); Tensor tp2 = tensor(p, n); Tensor tg = backend.allocate(n); Tensor tm = backend.allocate(n); Tensor tv = backend.allocate(n);
                 Tensor tm2 = backend.allocate(n); Tensor tv2 = backend.allocate(n); Tensor scalars = backend.allocate(4 + 3 * io.predcode.spi.Backend.ADAM_SCALARS)) {
                float[] host = new float[3 * io.predcode.spi.Backend.ADAM_SCALARS];
                float[] lrs = {0.01f, 0.003f, 0.02f}, decays = {1f, 0.999f, 0.98f};
                for (int step = 1; step <= 3; step++) io.predcode.spi.Backend.adamScalars(lrs[step - 1], 0.9f, 0.999f, decays[step - 1], step, host, (step - 1) * 3);
                backend.upload(host, 0, scalars, 4, host.length); // at an offset, as a tensor may hold other values first
                for (int step = 1; step <= 3; step++) {
                    backend.upload(random(n, 1), tg);
                    backend.adamStep(tp, tg, tm, tv, lrs[step - 1], 0.9f, 0.999f, 1e-8f, wd, decays[step - 1], step);
                    backend.upload(new float[]{step}, 0, scalars, 1, 1); // a finite guard: the step applies
                    backend.adamStep(tp2, tg, tm2, tv2, scalars, 4 + (step - 1) * 3, step == 2 ? scalars : null, 1, 0.9f, 0.999f, 1e-8f, wd);
                }
                assertClose("parameters, " + n, toDouble(backend.download(tp)), backend.download(tp2), 0);
                assertClose("second moments, " + n, toDouble(backend.download(tv)), backend.download(tv2), 0);
                float[] p3 = backend.download(tp2), m3 = backend.download(tm2), v3 = backend.download(tv2);
                for (float bad : new float[]{Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY}) {
                    backend.upload(new float[]{bad}, 0, scalars, 1, 1);
                    backend.adamStep(tp2, tg, tm2, tv2, scalars, 4, scalars, 1, 0.9f, 0.999f, 1e-8f, wd);
                    assertArrayEquals(p3, backend.download(tp2), "a guard of " + bad + " leaves the parameters");
                    assertArrayEquals(m3, backend.download(tm2), "a guard of " + bad + " leaves the first moments");
                    assertArrayEquals(v3, backend.download(tv2), "a guard of " + bad + " leaves the second moments");
                }
                assertThrows(IndexOutOfBoundsException.class, () -> backend.adamStep(tp, tg, tm, tv, scalars, 11, null, 0, 0.9f, 0.999f, 1e-8f, wd), "scalars past the tensor's end");
            }
        }
    }

    /** Parameter sizes for the steps of several parameters in one op: off any vector width, more than one CUDA launch takes (16). */
    private static final int[] STEP_SIZES = {1, 33, 7, 70_001, 128, 3, 17, 1, 10, 1280, 2, 5, 64, 31, 9, 257, 4, 1000, 6, 100};

    /** One zero-filled tensor per size (null for every one where {@code wanted} is false). */
    private Tensor[] tensors(int[] sizes, boolean wanted) {
        Tensor[] t = new Tensor[sizes.length];
        if (wanted) for (int i = 0; i < sizes.length; i++) t[i] = backend.allocate(sizes[i]);
        return t;
    }

    /** The same random values into a[i] and b[i]: parameters for one step taken two ways. */
    private void sameRandomValues(Tensor[] a, Tensor[] b) {
        for (int i = 0; i < a.length; i++) {
            float[] values = random((int) a[i].size(), 1);
            backend.upload(values, a[i]);
            backend.upload(values, b[i]);
        }
    }

    private static void closeAll(Tensor[]... groups) {
        for (Tensor[] ts : groups) for (Tensor t : ts) if (t != null) t.close();
    }

    /**
     * Several parameters' Adam steps in one op are each parameter's step: the same bits, for {@link #STEP_SIZES};
     * guarded by a value that is not finite, none changes.
     */
    @Test void adamStepsOfSeveralParametersAreEachOnesStep() {
        int[] sizes = STEP_SIZES;
        int count = sizes.length;
        Tensor[] p = tensors(sizes, true), p2 = tensors(sizes, true), g = tensors(sizes, true), m = tensors(sizes, true), v = tensors(sizes, true),
                m2 = tensors(sizes, true), v2 = tensors(sizes, true);
        try (Tensor scalars = backend.allocate(4 + 2 * io.predcode.spi.Backend.ADAM_SCALARS)) {
            sameRandomValues(p, p2);
            float[] host = new float[2 * io.predcode.spi.Backend.ADAM_SCALARS];
            for (int step = 1; step <= 2; step++) io.predcode.spi.Backend.adamScalars(0.01f * step, 0.9f, 0.999f, 0.999f, step, host, (step - 1) * 3);
            backend.upload(host, 0, scalars, 4, host.length);
            backend.upload(new float[]{1.5f}, 0, scalars, 1, 1); // a finite guard
            for (int step = 1; step <= 2; step++) {
                for (int i = 0; i < count; i++) {
                    backend.upload(random(sizes[i], 1), g[i]);
                    backend.adamStep(p[i], g[i], m[i], v[i], scalars, 4 + (step - 1) * 3, scalars, 1, 0.9f, 0.999f, 1e-8f, 0.01f);
                }
                backend.adamSteps(p2, g, m2, v2, scalars, 4 + (step - 1) * 3, step == 2 ? scalars : null, 1, 0.9f, 0.999f, 1e-8f, 0.01f);
            }
            for (int i = 0; i < count; i++) {
                assertArrayEquals(backend.download(p[i]), backend.download(p2[i]), "parameter " + i + " (" + sizes[i] + " floats)");
                assertArrayEquals(backend.download(m[i]), backend.download(m2[i]), "first moment " + i);
                assertArrayEquals(backend.download(v[i]), backend.download(v2[i]), "second moment " + i);
            }
            float[] before = backend.download(p2[count - 1]), first = backend.download(p2[0]);
            backend.upload(new float[]{Float.NaN}, 0, scalars, 1, 1);
            backend.adamSteps(p2, g, m2, v2, scalars, 4, scalars, 1, 0.9f, 0.999f, 1e-8f, 0.01f);
            assertArrayEquals(before, backend.download(p2[count - 1]), "a guard of NaN leaves the last parameter");
            assertArrayEquals(first, backend.download(p2[0]), "a guard of NaN leaves the first parameter");
            assertThrows(IllegalArgumentException.class, () -> backend.adamSteps(p2, new Tensor[]{g[0]}, m2, v2, scalars, 4, null, 0, 0.9f, 0.999f, 1e-8f, 0f), "one gradient for many parameters");
            assertThrows(IllegalArgumentException.class, () -> backend.adamSteps(new Tensor[]{p2[0]}, new Tensor[]{g[1]}, new Tensor[]{m2[0]}, new Tensor[]{v2[0]}, scalars, 4, null, 0, 0.9f, 0.999f, 1e-8f, 0f), "sizes that differ");
        } finally {
            closeAll(p, p2, g, m, v, m2, v2);
        }
    }

    /**
     * A guard of several values (a training step's loss and its energy's terms): the steps change nothing where any of
     * them is not finite, the last included, and go on where the one past them is not; Adam's and SGD's alike.
     */
    @Test void stepsGuardedOnSeveralValuesStopAtAnyOfThem() {
        int[] sizes = STEP_SIZES;
        Tensor[] p = tensors(sizes, true), g = tensors(sizes, true), m = tensors(sizes, true), v = tensors(sizes, true), b = tensors(sizes, true);
        try (Tensor scalars = backend.allocate(io.predcode.spi.Backend.ADAM_SCALARS); Tensor sgd = backend.allocate(io.predcode.spi.Backend.SGD_SCALARS);
             Tensor guard = backend.allocate(8)) {
            float[] host = new float[io.predcode.spi.Backend.ADAM_SCALARS], sgdHost = new float[io.predcode.spi.Backend.SGD_SCALARS];
            io.predcode.spi.Backend.adamScalars(0.01f, 0.9f, 0.999f, 1f, 1, host, 0);
            io.predcode.spi.Backend.sgdScalars(0.01f, true, sgdHost, 0);
            backend.upload(host, scalars);
            backend.upload(sgdHost, sgd);
            for (int i = 0; i < sizes.length; i++) backend.upload(random(sizes[i], 1 + i), g[i]);
            for (float bad : new float[]{Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY})
                for (int at = 2; at <= 6; at++) { // the guard is [2, 6): at 6, just past it
                    float[] values = {0f, 0f, 1f, 2f, 3f, 4f, 0f, 0f};
                    values[at] = bad;
                    backend.upload(values, guard);
                    float[] first = backend.download(p[0]), last = backend.download(p[sizes.length - 1]);
                    backend.adamSteps(p, g, m, v, scalars, 0, guard, 2, 4, 0.9f, 0.999f, 1e-8f, 0f);
                    boolean stops = at < 6;
                    assertEquals(stops, java.util.Arrays.equals(first, backend.download(p[0])), "Adam, " + bad + " at " + at + ": the first parameter " + (stops ? "changed" : "kept"));
                    assertEquals(stops, java.util.Arrays.equals(last, backend.download(p[sizes.length - 1])), "Adam, " + bad + " at " + at + ": the last parameter");
                    first = backend.download(p[0]);
                    backend.sgdSteps(p, g, b, sgd, 0, guard, 2, 4, 0.9f, 0f, 0f, false);
                    assertEquals(stops, java.util.Arrays.equals(first, backend.download(p[0])), "SGD, " + bad + " at " + at + ": the first parameter");
                }
            assertThrows(IllegalArgumentException.class, () -> backend.adamSteps(p, g, m, v, scalars, 0, guard, 2, 0, 0.9f, 0.999f, 1e-8f, 0f), "a guard of no values");
            assertThrows(IndexOutOfBoundsException.class, () -> backend.sgdSteps(p, g, b, sgd, 0, guard, 6, 3, 0.9f, 0f, 0f, false), "a guard past the tensor's end");
        } finally {
            closeAll(p, g, m, v, b);
        }
    }

    /** Several parameters' SGD steps in one op are each parameter's step, with and without momentum: as {@link #adamStepsOfSeveralParametersAreEachOnesStep}. */
    @Test void sgdStepsOfSeveralParametersAreEachOnesStep() {
        int[] sizes = STEP_SIZES;
        int count = sizes.length;
        for (float[] o : new float[][]{{0f, 0f, 0f}, {0.9f, 0f, 0f}, {0.9f, 0.1f, 0f}, {0.9f, 0f, 1f}}) { // momentum, dampening, nesterov
            float momentum = o[0], dampening = o[1];
            boolean nesterov = o[2] != 0;
            Tensor[] p = tensors(sizes, true), p2 = tensors(sizes, true), g = tensors(sizes, true), b = tensors(sizes, momentum != 0), b2 = tensors(sizes, momentum != 0);
            try (Tensor scalars = backend.allocate(2 + 2 * io.predcode.spi.Backend.SGD_SCALARS)) {
                sameRandomValues(p, p2);
                float[] host = new float[2 * io.predcode.spi.Backend.SGD_SCALARS];
                for (int step = 0; step < 2; step++) io.predcode.spi.Backend.sgdScalars(0.05f * (step + 1), step == 0, host, step * io.predcode.spi.Backend.SGD_SCALARS);
                backend.upload(host, 0, scalars, 2, host.length);
                backend.upload(new float[]{0.25f}, 0, scalars, 1, 1); // a finite guard
                for (int step = 0; step < 2; step++) {
                    long at = 2 + step * io.predcode.spi.Backend.SGD_SCALARS;
                    for (int i = 0; i < count; i++) {
                        backend.upload(random(sizes[i], 1), g[i]);
                        backend.sgdStep(p[i], g[i], b[i], scalars, at, scalars, 1, momentum, dampening, 0.01f, nesterov);
                    }
                    backend.sgdSteps(p2, g, b2, scalars, at, step == 1 ? scalars : null, 1, momentum, dampening, 0.01f, nesterov);
                }
                for (int i = 0; i < count; i++) {
                    assertArrayEquals(backend.download(p[i]), backend.download(p2[i]), "parameter " + i + " (" + sizes[i] + " floats), momentum " + momentum);
                    if (momentum != 0) assertArrayEquals(backend.download(b[i]), backend.download(b2[i]), "momentum buffer " + i);
                }
                float[] last = backend.download(p2[count - 1]);
                backend.upload(new float[]{Float.POSITIVE_INFINITY}, 0, scalars, 1, 1);
                backend.sgdSteps(p2, g, b2, scalars, 2, scalars, 1, momentum, dampening, 0.01f, nesterov);
                assertArrayEquals(last, backend.download(p2[count - 1]), "a guard of infinity leaves the parameters");
            } finally {
                closeAll(p, p2, g, b, b2);
            }
        }
    }

    /** SGD with its learning rate and first-step flag read from a tensor is SGD with them given; guarded by a value that is not finite, it changes nothing. */
    @Test void sgdWithScalarsFromATensorIsSgdWithThemGiven() {
        for (int n : new int[]{1, 33, 70_001})
            for (float[] v : new float[][]{{0f, 0f, 0f}, {0.9f, 0f, 0f}, {0.9f, 0.1f, 0f}, {0.9f, 0f, 1f}}) { // momentum, dampening, nesterov
                float momentum = v[0], dampening = v[1], wd = 0.01f;
                boolean nesterov = v[2] != 0;
                float[] p = random(n, 1);
                try (Tensor tp = tensor(p, n); Tensor tp2 = tensor(p, n); Tensor tg = backend.allocate(n); Tensor tb = backend.allocate(n); Tensor tb2 = backend.allocate(n);
                     Tensor scalars = backend.allocate(2 + 3 * io.predcode.spi.Backend.SGD_SCALARS)) {
                    float[] lrs = {0.05f, 0.02f, 0.07f}, host = new float[3 * io.predcode.spi.Backend.SGD_SCALARS];
                    for (int step = 0; step < 3; step++) io.predcode.spi.Backend.sgdScalars(lrs[step], step == 0, host, step * 2);
                    backend.upload(host, 0, scalars, 2, host.length);
                    Tensor b = momentum != 0 ? tb : null, b2 = momentum != 0 ? tb2 : null;
                    for (int step = 0; step < 3; step++) {
                        backend.upload(random(n, 1), tg);
                        backend.sgdStep(tp, tg, b, lrs[step], momentum, dampening, wd, nesterov, step == 0);
                        backend.upload(new float[]{step}, 0, scalars, 0, 1); // a finite guard: the step applies
                        backend.sgdStep(tp2, tg, b2, scalars, 2 + step * 2, step == 1 ? scalars : null, 0, momentum, dampening, wd, nesterov);
                    }
                    String what = n + ", momentum " + momentum + ", dampening " + dampening + ", nesterov " + nesterov;
                    assertClose("parameters, " + what, toDouble(backend.download(tp)), backend.download(tp2), 0);
                    if (b != null) assertClose("momentum buffers, " + what, toDouble(backend.download(tb)), backend.download(tb2), 0);
                    float[] p3 = backend.download(tp2), b3 = backend.download(tb2);
                    backend.upload(new float[]{Float.NaN}, 0, scalars, 0, 1);
                    backend.sgdStep(tp2, tg, b2, scalars, 4, scalars, 0, momentum, dampening, wd, nesterov);
                    assertArrayEquals(p3, backend.download(tp2), "a NaN guard leaves the parameters, " + what);
                    assertArrayEquals(b3, backend.download(tb2), "a NaN guard leaves the momentum buffer, " + what);
                }
            }
    }

    // ------------------------------------------------------------ random

    @Test void randomUniformIsTheSharedCounterGenerator() {
        int n = 1001;
        try (Tensor t = backend.allocate(n)) {
            backend.randomUniform(t, -0.5f, 0.25f, 42);
            float[] got = backend.download(t);
            double mean = 0;
            for (int i = 0; i < n; i++) {
                assertEquals(Random.uniform(42, i, -0.5f, 0.25f), got[i], "element " + i);
                assertTrue(got[i] >= -0.5f && got[i] < 0.25f);
                mean += got[i] / n;
            }
            assertEquals(-0.125, mean, 0.03);
            backend.randomUniform(t, -0.5f, 0.25f, 43);
            assertNotEquals(got[0], backend.readScalar(t, 0));
        }
    }

    // ------------------------------------------------------------ bad input

    @Test void mismatchedSizesNameTheOp() {
        try (Tensor a = backend.allocate(3, 4); Tensor b = backend.allocate(13)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> backend.axpby(1f, a, 1f, b));
            assertTrue(e.getMessage().contains("axpby") && e.getMessage().contains("[3, 4]") && e.getMessage().contains("[13]"), e.getMessage());
        }
    }

    @Test void wrongUploadLengthIsRejected() {
        try (Tensor a = backend.allocate(2, 3)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> backend.upload(new float[5], a));
            assertTrue(e.getMessage().contains("upload") && e.getMessage().contains("5"), e.getMessage());
        }
    }

    /**
     * Branches, small and large, on disjoint tensors: each computes what it computes alone (a GEMM and
     * an update each, against float64), whatever order or threads the backend gives them; a failing
     * branch's exception reaches the caller; bad work figures are refused.
     */
    @Test void branchesComputeWhatEachComputesAlone() {
        for (int scale : new int[]{1, 200}) { // 200: large enough for the CPU backend to split each op instead
            int branches = 5, m = 3 * scale + 1, k = 17, n = 2 * scale + 3;
            float[][] a = new float[branches][], b = new float[branches][];
            Tensor[] ta = new Tensor[branches], tb = new Tensor[branches], tc = new Tensor[branches];
            try {
                Runnable[] work = new Runnable[branches];
                double[] amounts = new double[branches];
                for (int i = 0; i < branches; i++) {
                    a[i] = random(m * k, 1);
                    b[i] = random(k * n, 1);
                    ta[i] = tensor(a[i], m, k);
                    tb[i] = tensor(b[i], k, n);
                    tc[i] = backend.allocate(m, n);
                    int j = i;
                    work[i] = () -> {
                        backend.matmul(false, false, 1f, ta[j], tb[j], 0f, tc[j]);
                        backend.axpby(2f, tc[j], 0.5f, tc[j]); // c = 2.5 A B
                    };
                    amounts[i] = (double) m * n * k * (branches - i);
                }
                backend.branches(amounts, work);
                for (int i = 0; i < branches; i++) {
                    float[] c = backend.download(tc[i]);
                    for (int r = 0; r < m; r++)
                        for (int q = 0; q < n; q++) {
                            double sum = 0;
                            for (int p = 0; p < k; p++) sum += (double) a[i][r * k + p] * b[i][p * n + q];
                            assertEquals(2.5 * sum, c[r * n + q], 1e-4 * (1 + Math.abs(sum)), "branch " + i + " C[" + r + "," + q + "]");
                        }
                }
            } finally {
                for (Tensor[] ts : new Tensor[][]{ta, tb, tc}) for (Tensor t : ts) if (t != null) t.close();
            }
        }
        IllegalStateException failed = assertThrows(IllegalStateException.class, () -> backend.branches(new double[]{1, 1},
                () -> {}, () -> { throw new IllegalStateException("branch 2 failed"); }));
        assertEquals("branch 2 failed", failed.getMessage());
        assertThrows(IllegalArgumentException.class, () -> backend.branches(new double[]{1}, () -> {}, () -> {}));
        assertThrows(IllegalArgumentException.class, () -> backend.branches(new double[]{1, Double.NaN}, () -> {}, () -> {}));
        assertThrows(IllegalArgumentException.class, () -> backend.branches(new double[]{-1, 1}, () -> {}, () -> {}));
    }

    @Test void closedBackendRefusesWork() {
        Tensor t = backend.allocate(2);
        backend.close();
        assertThrows(IllegalStateException.class, () -> backend.fill(t, 1f));
        assertThrows(IllegalStateException.class, () -> backend.allocate(2));
    }
}
