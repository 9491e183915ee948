package io.predcode.core.nn;

import io.predcode.core.PaperResultsTest;
import io.predcode.spi.Activation;
import io.predcode.spi.Backend;
import io.predcode.spi.Scope;
import io.predcode.spi.Tensor;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static io.predcode.spi.conformance.Approx.assertClose;

/**
 * A backward pass with a parameter scale s (PC's mean over the batch, 1/B, or nudging's 1/beta) writes s times
 * the gradients it writes with 1, scaled inside the ops that form them (the GEMM's alpha, the bias sum's scale;
 * the conv weight gradient by a pass of its own), and leaves the parameter gradients alone with 0.
 */
class ScaledParameterGradientsTest {
    private static final float[] SCALES = {1f / 128, 1f / 7, -10f};

    @TestFactory List<DynamicTest> scaledGradientsAreTheScaledGradients() {
        return PaperResultsTest.onEveryBackend("scaled parameter gradients", be -> {
            SplittableRandom r = new SplittableRandom(11);
            try (Scope scope = new Scope(be)) {
                for (int trial = 0; trial < 4; trial++) {
                    int in = 1 + r.nextInt(37), out = 1 + r.nextInt(37), batch = 1 + r.nextInt(13);
                    check(be, scope, r, linear(in, out, scope, r), new int[]{batch, in}, new int[]{batch, out});
                    int c = 1 + r.nextInt(3), o = 1 + r.nextInt(4), h = 5 + r.nextInt(6);
                    check(be, scope, r, conv(c, o, h, scope, r), new int[]{batch, c, h, h}, new int[]{batch, o, h - 2, h - 2});
                }
            }
        });
    }

    private static void check(Backend be, Scope scope, SplittableRandom r, Block block, int[] xShape, int[] yShape) {
        Block.Tape tape = block.newTape(scope, xShape[0], true);
        Tensor x = random(be, scope, r, xShape), dy = random(be, scope, r, yShape);
        block.forward(be, x, tape);
        block.backward(be, tape, dy, null, 1f);
        List<float[]> plain = new ArrayList<>();
        for (Parameter q : block.parameters()) plain.add(be.download(q.grad()));
        for (float s : SCALES) {
            block.backward(be, tape, dy, null, s);
            for (int i = 0; i < plain.size(); i++) {
                double[] expected = new double[plain.get(i).length];
                for (int k = 0; k < expected.length; k++) expected[k] = (double) s * plain.get(i)[k];
                assertClose(be.name() + " " + block.parameters().get(i).name() + " x" + s, expected, be.download(block.parameters().get(i).grad()), 1e-6);
            }
        }
        for (Parameter q : block.parameters()) be.fill(q.grad(), 42f);
        block.backward(be, tape, dy, null, 0f);
        for (Parameter q : block.parameters())
            for (float v : be.download(q.grad())) if (v != 42f) throw new AssertionError(be.name() + " " + q.name() + ": scale 0 wrote the gradient");
    }

    private static Block linear(int in, int out, Scope scope, SplittableRandom r) {
        int[] shape = {in};
        Op linear = Ops.create(new OpSpec.Linear(in, out, true), shape, "0.0.", scope);
        Op act = Ops.create(new OpSpec.Act(Activation.GELU_TANH, 0f), linear.out, "0.1.", scope);
        return initialised(new Block(0, List.of(linear, act), shape, act.out), scope, r);
    }

    private static Block conv(int channels, int out, int size, Scope scope, SplittableRandom r) {
        int[] shape = {channels, size, size};
        Op conv = Ops.create(new OpSpec.Conv2d(channels, out, 3, 3, 1, 1, 0, 0, true), shape, "0.0.", scope);
        Op act = Ops.create(new OpSpec.Act(Activation.TANH, 0f), conv.out, "0.1.", scope);
        return initialised(new Block(0, List.of(conv, act), shape, act.out), scope, r);
    }

    private static Block initialised(Block b, Scope scope, SplittableRandom r) {
        for (Parameter p : b.parameters()) scope.backend().upload(array(r, (int) p.value().size()), p.value());
        return b;
    }

    private static Tensor random(Backend be, Scope scope, SplittableRandom r, int... dims) {
        Tensor t = scope.allocate(dims);
        be.upload(array(r, (int) t.size()), t);
        return t;
    }

    private static float[] array(SplittableRandom r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) (r.nextDouble() * 2 - 1);
        return a;
    }
}
