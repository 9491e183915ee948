package io.predcode.core;

import io.predcode.core.nn.BuiltinModels;
import io.predcode.core.nn.Model;
import io.predcode.core.serve.Predictor;
import io.predcode.spi.Backend;
import io.predcode.spi.BackendOptions;
import io.predcode.spi.Backends;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

import java.util.SplittableRandom;

/**
 * Serving latency and throughput of a {@link Predictor} on digits-mlp (64-64-32-10): one sample into
 * the caller's buffer (run with {@code -t 1 -prof gc} for the allocation per call), and batches of
 * sizes mixed 1..64 against a fixed batch of 32 (run with {@code -t 8}: threads share the predictor).
 */
@State(Scope.Benchmark)
public class PredictorBenchmark {
    @Param({"1"}) public int threads;

    Backend backend;
    Model model;
    Predictor predictor;
    float[] inputs;

    @Setup(Level.Trial) public void setUp() {
        backend = Backends.open("cpu", new BackendOptions(threads, BackendOptions.defaults().device()));
        model = Model.create(BuiltinModels.get("digits-mlp"), backend, 1);
        predictor = Predictor.of(model);
        SplittableRandom r = new SplittableRandom(1);
        inputs = new float[64 * 64];
        for (int i = 0; i < inputs.length; i++) inputs[i] = (float) r.nextDouble();
    }

    /** Each benchmark thread's own buffers and its own sequence of batch sizes. */
    @State(Scope.Thread)
    public static class Caller {
        final float[] out = new float[64 * 10];
        final float[][] x = new float[65][];
        int next;

        @Setup(Level.Trial) public void setUp(PredictorBenchmark b) {
            for (int n = 1; n <= 64; n++) x[n] = java.util.Arrays.copyOf(b.inputs, n * 64);
        }
    }

    @Benchmark public long oneSample(Caller c) { return predictor.logits(c.x[1], 1, c.out); }

    @Benchmark public long fixedBatch32(Caller c) { return predictor.logits(c.x[32], 32, c.out); }

    /** Batch sizes 1..64 in a scrambled order; same mean (32.5) as the fixed batch, so samples/s compare. */
    @Benchmark public long mixedBatch1to64(Caller c) {
        int n = 1 + (c.next++ * 37) % 64;
        return predictor.logits(c.x[n], n, c.out);
    }

    @TearDown(Level.Trial) public void tearDown() {
        predictor.close();
        model.close();
        backend.close();
    }
}
