package io.predcode.cpu;

import io.predcode.spi.Backend;
import io.predcode.spi.Backends;
import io.predcode.spi.Tensor;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * GEMM through the backend (validation, offsets, the FFM downcall) against the raw FFM cblas_sgemm
 * call on the same memory: the backend's overhead. Shapes: squares 64..2048 and the GEMMs of a
 * 784-512-256-10 MLP at batch 300 ("MxNxK", row-major C[MxN] = A[MxK] B[KxN]).
 * Lives in io.predcode.cpu to reach the package-private binding.
 */
@State(Scope.Thread)
public class GemmBenchmark {
    @Param({"64x64x64", "128x128x128", "256x256x256", "512x512x512", "1024x1024x1024", "2048x2048x2048",
            "300x512x784", "300x256x512", "300x10x256", "512x784x300"})
    public String shape;

    Backend backend;
    Tensor a, b, c;
    int m, n, k;
    OpenBlas blas;

    @Setup(Level.Trial) public void setUp() {
        String[] d = shape.split("x");
        m = Integer.parseInt(d[0]);
        n = Integer.parseInt(d[1]);
        k = Integer.parseInt(d[2]);
        backend = Backends.open("cpu");
        a = backend.allocate(m, k);
        b = backend.allocate(k, n);
        c = backend.allocate(m, n);
        backend.randomUniform(a, -1, 1, 1);
        backend.randomUniform(b, -1, 1, 2);
        blas = OpenBlas.get();
    }

    @TearDown(Level.Trial) public void tearDown() { backend.close(); }

    @Benchmark public void backendMatmul() { backend.matmul(false, false, 1f, a, b, 0f, c); }

    @Benchmark public void rawCblasSgemm() {
        blas.sgemm(false, false, m, n, k, 1f, CpuBackend.seg(a), k, CpuBackend.seg(b), n, 0f, CpuBackend.seg(c), n);
    }
}
