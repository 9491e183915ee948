package io.predcode.cpu;

import io.predcode.spi.Backend;
import io.predcode.spi.BackendOptions;
import io.predcode.spi.Backends;
import io.predcode.spi.Tensor;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/** A backend's thread count is its own: opening another with a different count changes nothing in the first. */
class ThreadsPerBackendTest {
    @Test void twoBackendsKeepTheirOwnThreadCountsAndAgree() {
        try (Backend two = Backends.open("cpu", new BackendOptions(2, BackendOptions.defaults().device()));
             Backend one = Backends.open("cpu", new BackendOptions(1, BackendOptions.defaults().device()))) {
            assertEquals(2, ((CpuBackend) two).threads());
            assertEquals(1, ((CpuBackend) one).threads());
            assertEquals(1, OpenBlas.get().threads(), "OpenBLAS's process-wide count stays at 1: backends thread their own GEMMs");
            assertTrue(two.description().contains("2 threads") && one.description().contains("1 thread;"), two.description() + " / " + one.description());
            // A GEMM large enough to split on the 2-thread backend, with odd sizes: both give the float64 result.
            SplittableRandom r = new SplittableRandom(8);
            int m = 301, n = 257, k = 97;
            float[] a = new float[m * k], b = new float[k * n];
            for (int i = 0; i < a.length; i++) a[i] = (float) r.nextDouble(-1, 1);
            for (int i = 0; i < b.length; i++) b[i] = (float) r.nextDouble(-1, 1);
            for (boolean wide : new boolean[]{true, false}) { // C taller than wide, and wider than tall (transposed product)
                for (Backend be : new Backend[]{two, one}) {
                    int mm = wide ? m : n, nn = wide ? n : m;
                    try (Tensor ta = be.allocate(wide ? m : n, k); Tensor tb = be.allocate(k, wide ? n : m); Tensor tc = be.allocate(mm, nn)) {
                        be.upload(wide ? a : java.util.Arrays.copyOf(b, n * k), ta);
                        be.upload(wide ? b : java.util.Arrays.copyOf(a, k * m), tb);
                        float[] x = be.download(ta), y = be.download(tb);
                        be.matmul(false, false, 1f, ta, tb, 0f, tc);
                        float[] c = be.download(tc);
                        for (int i = 0; i < mm; i += 7)
                            for (int j = 0; j < nn; j += 5) {
                                double s = 0;
                                for (int q = 0; q < k; q++) s += (double) x[i * k + q] * y[q * nn + j];
                                assertEquals(s, c[i * nn + j], 1e-4 * (1 + Math.abs(s)), be.description() + " C[" + i + "," + j + "]");
                            }
                    }
                }
            }
        }
    }
}
