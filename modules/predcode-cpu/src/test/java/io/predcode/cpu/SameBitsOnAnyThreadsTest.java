package io.predcode.cpu;

import io.predcode.spi.Backend;
import io.predcode.spi.BackendOptions;
import io.predcode.spi.Conv2dGeometry;
import io.predcode.spi.Tensor;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.*;

/**
 * On a thread-invariant backend ({@link BackendOptions#threadInvariant()}), the ops whose results depend on where
 * their work is split (a GEMM's slices: OpenBLAS treats a slice's rows by their place in it; per-part partial sums)
 * give the same bits on 1, 2, 3 and 5 threads, with the native kernels and with the Java ones: their parts come from
 * the shapes alone (Parallel.parts). Split by the thread count, a 128 x 128 x 128 product in two parts on 2 threads
 * differed from the whole product of 1 thread in 8% of its elements. Each shape here splits (asserted), so each
 * comparison can fail.
 */
class SameBitsOnAnyThreadsTest {
    private static final int[] THREADS = {1, 2, 3, 5};

    /** A thread-invariant backend of {@code threads} threads, with this machine's native kernels or, when {@code java}, the Java kernels. */
    private static Backend open(int threads, boolean java) {
        return new CpuBackend(OpenBlas.get(), new BackendOptions(threads, 0, true), java ? null : NativeKernels.get());
    }

    /** {@code op}'s outputs on a backend of each thread count, of each kernel kind, compared with 1 thread's. */
    private static void sameOnEveryThreadCount(String what, Function<Backend, List<float[]>> op) {
        for (boolean java : new boolean[]{false, true}) {
            List<float[]> one = null;
            for (int threads : THREADS)
                try (Backend be = open(threads, java)) {
                    List<float[]> out = op.apply(be);
                    if (one == null) one = out;
                    else for (int i = 0; i < out.size(); i++)
                        assertArrayEquals(one.get(i), out.get(i), what + (java ? ", Java kernels" : "") + ": output " + i + " on " + threads + " threads against 1");
                }
        }
    }

    private static float[] random(SplittableRandom r, long n) {
        float[] v = new float[Math.toIntExact(n)];
        for (int i = 0; i < v.length; i++) v[i] = (float) r.nextDouble(-1, 1);
        return v;
    }

    private static Tensor tensor(Backend be, float[] values) {
        Tensor t = be.allocate(values.length);
        be.upload(values, t);
        return t;
    }

    @Test void gemmsGiveTheSameBitsOnAnyThreads() {
        // PCX's MLP at batch 128 (forward, input and weight gradients), sizes off every tile, one of one row, a tall one.
        int[][] shapes = {{128, 128, 784}, {128, 784, 128}, {784, 128, 128}, {128, 128, 128}, {301, 257, 97}, {97, 1031, 131}, {1, 4099, 37}, {2053, 67, 3}};
        for (int[] s : shapes) {
            int m = s[0], n = s[1], k = s[2];
            try (Parallel one = new Parallel(1, true)) {
                assertTrue(OpenBlas.parts(one, m, n, k) > 1, m + "x" + n + "x" + k + " splits, even on one thread");
            }
            for (int t = 0; t < 4; t++) {
                boolean ta = (t & 1) != 0, tb = (t & 2) != 0;
                SplittableRandom r = new SplittableRandom(m * 31L + n * 7L + k + t);
                float[] a = random(r, (long) m * k), b = random(r, (long) k * n), c = random(r, (long) m * n);
                sameOnEveryThreadCount(m + "x" + n + "x" + k + (ta ? " A^T" : "") + (tb ? " B^T" : ""), be -> {
                    try (Tensor x = be.allocate(ta ? k : m, ta ? m : k); Tensor y = be.allocate(tb ? n : k, tb ? k : n); Tensor z = be.allocate(m, n)) {
                        be.upload(a, x);
                        be.upload(b, y);
                        be.upload(c, z);
                        be.matmul(ta, tb, 0.75f, x, y, 0.5f, z); // beta 0.5: each part reads its own slice of C
                        return List.of(be.download(z));
                    }
                });
            }
        }
    }

    @Test void convolutionsGiveTheSameBitsOnAnyThreads() {
        // Each path: direct (few output channels), taps (stride 1, wide) and gather (stride 2); 67 and 128 images, in 4 and 8 parts.
        List<Conv2dGeometry> geometries = List.of(new Conv2dGeometry(3, 9, 11, 3, 3, 1, 1, 1, 1), new Conv2dGeometry(5, 8, 7, 3, 3, 1, 1, 1, 1),
                new Conv2dGeometry(6, 9, 9, 3, 3, 2, 2, 1, 1));
        int[] outs = {4, 24, 20};
        for (int gi = 0; gi < geometries.size(); gi++)
            for (int images : new int[]{67, 128}) {
                Conv2dGeometry g = geometries.get(gi);
                int out = outs[gi];
                int outputs = images * out * g.outPixels();
                SplittableRandom r = new SplittableRandom(gi * 1000L + images);
                float[] x = random(r, images * (long) g.inputSize()), w = random(r, (long) out * g.patchSize()), bias = random(r, out), dy = random(r, outputs);
                sameOnEveryThreadCount("conv " + g + " to " + out + " channels, " + images + " images", be -> {
                    List<float[]> results = new ArrayList<>();
                    try (Tensor tx = tensor(be, x); Tensor tw = tensor(be, w); Tensor tb = tensor(be, bias); Tensor tdy = tensor(be, dy);
                         Tensor y = be.allocate(outputs); Tensor dx = be.allocate(x.length); Tensor dw = be.allocate(w.length); Tensor db = be.allocate(out)) {
                        be.conv2d(tx, tw, tb, g, y);
                        be.conv2dBackwardInput(tdy, tw, g, dx);
                        be.conv2dBackwardWeight(tx, tdy, g, dw);
                        be.biasGrad(tdy, db, out, g.outPixels(), 1f, 0f);
                        for (Tensor t : new Tensor[]{y, dx, dw, db}) results.add(be.download(t));
                    }
                    return results;
                });
            }
    }
}
