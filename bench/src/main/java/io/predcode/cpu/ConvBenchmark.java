package io.predcode.cpu;

import io.predcode.spi.Backend;
import io.predcode.spi.BackendOptions;
import io.predcode.spi.Conv2dGeometry;
import io.predcode.spi.Tensor;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * Example-cnn's second conv (10 -> 5 channels, 3x3, on 13x13) at batch 300: the fused conv ops a
 * STRICT sweep runs every sweep (forward and input gradient) and once a step (weight gradient), on
 * predcode's native kernels and on the Java + OpenBLAS ones they replace.
 */
@State(Scope.Thread)
public class ConvBenchmark {
    static final int BATCH = 300;
    /** Example-cnn's second conv and its input shape, from the built-in spec (not a copy of it). */
    static final io.predcode.core.nn.ModelSpec.OpAt CONV = secondConv();
    final io.predcode.core.nn.OpSpec.Conv2d c = (io.predcode.core.nn.OpSpec.Conv2d) CONV.op();
    final Conv2dGeometry g = new Conv2dGeometry(c.in(), CONV.input()[1], CONV.input()[2], c.kh(), c.kw(), c.sh(), c.sw(), c.ph(), c.pw());

    static io.predcode.core.nn.ModelSpec.OpAt secondConv() {
        try {
            io.predcode.core.nn.ModelSpec cnn = io.predcode.core.nn.BuiltinModels.resolve("example-cnn");
            return cnn.ops(cnn.input()).stream().filter(at -> at.op() instanceof io.predcode.core.nn.OpSpec.Conv2d).skip(1).findFirst().orElseThrow();
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /** Threads for OpenBLAS and the Java kernels: 1 against all cores shows what splitting by image buys. */
    @org.openjdk.jmh.annotations.Param({"1", "2"})
    public int threads;

    /** predcode's native kernels (the default where built) or the Java ones they replace: the two side by side. */
    @org.openjdk.jmh.annotations.Param({"native", "java"})
    public String kernels;

    Backend backend;
    Tensor x, w, b, y, dw;

    @Setup(Level.Trial) public void setUp() {
        BackendOptions options = new BackendOptions(threads, 0);
        if (kernels.equals("java")) backend = new CpuBackend(OpenBlas.get(), options, null);
        else if (NativeKernels.get() != null) backend = new CpuBackend(OpenBlas.get(), options, NativeKernels.get());
        else throw new IllegalStateException("native CPU kernels unavailable: " + NativeKernels.unavailable());
        x = backend.allocate(BATCH, g.channels(), g.height(), g.width());
        w = backend.allocate(c.out(), g.channels(), g.kh(), g.kw());
        b = backend.allocate(c.out());
        y = backend.allocate(BATCH, c.out(), g.outHeight(), g.outWidth());
        dw = backend.allocate(c.out(), g.channels(), g.kh(), g.kw());
        backend.randomUniform(x, -1, 1, 1);
        backend.randomUniform(w, -1, 1, 2);
        backend.randomUniform(y, -1, 1, 3);
    }

    @TearDown(Level.Trial) public void tearDown() { backend.close(); }

    @Benchmark public void forwardWithBias() { backend.conv2d(x, w, b, g, y); }

    @Benchmark public void inputGradient() { backend.conv2dBackwardInput(y, w, g, x); }

    @Benchmark public void weightGradient() { backend.conv2dBackwardWeight(x, y, g, dw); }
}
