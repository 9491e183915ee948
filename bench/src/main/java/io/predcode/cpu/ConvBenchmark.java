package io.predcode.cpu;

import io.predcode.spi.Backend;
import io.predcode.spi.Backends;
import io.predcode.spi.Conv2dGeometry;
import io.predcode.spi.Tensor;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * The conv path of example-cnn's second block (conv 10->5, 3x3, on 13x13) at batch 300, the part of a
 * STRICT sweep that is not a large GEMM: im2col, col2im and the per-image GEMMs.
 */
@State(Scope.Thread)
public class ConvBenchmark {
    static final int BATCH = 300;
    final Conv2dGeometry g = new Conv2dGeometry(10, 13, 13, 3, 3, 1, 1, 0, 0);
    /** Threads for OpenBLAS and the Java kernels: 1 against all cores shows what splitting by image buys. */
    @org.openjdk.jmh.annotations.Param({"1", "2"})
    public int threads;

    Backend backend;
    Tensor x, col, w, y;

    @Setup(Level.Trial) public void setUp() {
        backend = Backends.open("cpu", new io.predcode.spi.BackendOptions(threads, 0));
        x = backend.allocate(BATCH, 10, 13, 13);
        col = backend.allocate(BATCH, g.patchSize(), g.outPixels());
        w = backend.allocate(5, g.patchSize());
        y = backend.allocate(BATCH, 5, g.outPixels());
        backend.randomUniform(x, -1, 1, 1);
        backend.randomUniform(w, -1, 1, 2);
        backend.im2col(x, g, col);
    }

    @TearDown(Level.Trial) public void tearDown() { backend.close(); }

    @Benchmark public void im2col() { backend.im2col(x, g, col); }

    @Benchmark public void col2im() { backend.col2im(col, g, x); }

    @Benchmark public void forwardGemms() {
        int p = g.outPixels(), k = g.patchSize();
        backend.gemm(false, false, 5, p, k, 1f, w, 0, k, 0, col, 0, p, (long) k * p, 0f, y, 0, p, 5L * p, BATCH);
    }
}
