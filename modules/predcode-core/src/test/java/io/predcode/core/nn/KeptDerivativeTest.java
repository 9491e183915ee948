package io.predcode.core.nn;

import io.predcode.spi.Activation;
import io.predcode.spi.Backend;
import io.predcode.spi.Backends;
import io.predcode.spi.Scope;
import io.predcode.spi.Tensor;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.SplittableRandom;

import static io.predcode.spi.conformance.Approx.assertClose;
import static io.predcode.spi.conformance.Approx.toDouble;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A training tape keeps GELU's f' from its forward: its backward passes give what a tape without it
 * gives (bit for bit on the native kernels), also after a forward from a change of the input ({@link Block#forwardIncrement}).
 */
class KeptDerivativeTest {
    @Test void trainingTapesBackpropagateAsPlainOnes() {
        SplittableRandom r = new SplittableRandom(3);
        try (Backend be = Backends.open("cpu"); Scope scope = new Scope(be)) {
            // The native kernels compute f' with the backward kernel's own expression: the same bits. The Java
            // kernels' backward rounds dy f' once from double, the kept path twice.
            double tolerance = be.description().contains("native kernels") ? 0 : 1e-6;
            System.out.println("kept derivatives on " + be.description() + ": tolerance " + tolerance);
            for (int trial = 0; trial < 3; trial++)
                for (Activation f : Activation.values()) {
                    int in = 1 + r.nextInt(20), out = 1 + r.nextInt(20), batch = 1 + r.nextInt(5);
                    Block block = block(f, in, out, scope);
                    Block.Tape kept = block.newTape(scope, batch, true), plain = block.newTape(scope, batch, false);
                    assertEquals(f.derivativeWorthKeeping(), kept.derivatives[2] != null, f + ": derivative kept");
                    Tensor x = random(be, scope, r, 2, batch, in), dy = random(be, scope, r, 1, batch, out);
                    Tensor dxKept = scope.allocate(batch, in), dxPlain = scope.allocate(batch, in);
                    block.forward(be, x, kept);
                    block.forward(be, x, plain);
                    for (int pass = 0; pass < 2; pass++) { // PC's algorithms make several backward passes at one point
                        block.backward(be, kept, dy, dxKept, 1f);
                        float[] keptWeightGrad = be.download(block.parameters().getFirst().grad());
                        block.backward(be, plain, dy, dxPlain, 1f);
                        String what = f + " " + in + ">" + out + " x" + batch;
                        assertClose(what + ": output", toDouble(be.download(plain.output())), be.download(kept.output()), 0);
                        assertClose(what + ": input gradient", toDouble(be.download(dxPlain)), be.download(dxKept), tolerance);
                        assertClose(what + ": weight gradient", toDouble(be.download(block.parameters().getFirst().grad())), keptWeightGrad, tolerance);
                    }
                }
        }
    }

    /**
     * {@link Block#forwardIncrement}: the change of the output from a move of the input a millionth of its size keeps
     * its own precision (float32 outputs subtracted would be off by about 10%), and the tape it leaves is the forward's
     * at the moved point, for the backward passes there.
     */
    @Test void forwardIncrementKeepsTheChangePreciseAndTheTapeAtTheMovedPoint() {
        SplittableRandom r = new SplittableRandom(4);
        try (Backend be = Backends.open("cpu"); Scope scope = new Scope(be)) {
            for (Activation f : Activation.values()) {
                int in = 7, out = 5, batch = 3;
                Block block = block(f, in, out, scope);
                Block.Tape at = block.newTape(scope, batch, true), moved = block.newTape(scope, batch, true), plain = block.newTape(scope, batch, true);
                Tensor x0 = random(be, scope, r, 2, batch, in), dx = random(be, scope, r, 1e-6, batch, in), x = scope.allocate(batch, in);
                Tensor change = scope.allocate(batch, out), dy = random(be, scope, r, 1, batch, out);
                Tensor dxMoved = scope.allocate(batch, in), dxPlain = scope.allocate(batch, in);
                be.add(1f, x0, 1f, dx, x);
                block.forward(be, x0, at);
                block.forwardIncrement(be, at, x, dx, moved, null, change, false);
                block.forward(be, x, plain);

                float[] w = be.download(block.parameters().get(0).value()), b = be.download(block.parameters().get(1).value());
                float[] a = be.download(x0), d = be.download(dx);
                double[] expected = new double[batch * out];
                for (int s = 0; s < batch; s++)
                    for (int o = 0; o < out; o++) {
                        double z0 = b[o], dz = 0;
                        for (int i = 0; i < in; i++) {
                            z0 += (double) w[o * in + i] * a[s * in + i];
                            dz += (double) w[o * in + i] * d[s * in + i];
                        }
                        expected[s * out + o] = f.increment(0.07, z0, dz);
                    }
                assertClose(f + ": the output's change", expected, be.download(change), 1e-5);

                block.backward(be, moved, dy, dxMoved, 0f);
                block.backward(be, plain, dy, dxPlain, 0f);
                assertClose(f + ": the output at the moved point", toDouble(be.download(plain.output())), be.download(moved.output()), 1e-6);
                assertClose(f + ": the input gradient there", toDouble(be.download(dxPlain)), be.download(dxMoved), 1e-5);
            }
        }
    }

    private static Block block(Activation f, int in, int out, Scope scope) {
        int[] shape = {in};
        Op linear = Ops.create(new OpSpec.Linear(in, out, true), shape, "0.0.", scope);
        Op act = Ops.create(new OpSpec.Act(f, 0.07f), linear.out, "0.1.", scope);
        Block b = new Block(0, List.of(linear, act), shape, act.out);
        SplittableRandom r = new SplittableRandom(in * 31L + out);
        for (Parameter p : b.parameters()) scope.backend().upload(randomArray(r, (int) p.value().size(), 0.5), p.value());
        return b;
    }

    private static Tensor random(Backend be, Scope scope, SplittableRandom r, double scale, int... dims) {
        Tensor t = scope.allocate(dims);
        be.upload(randomArray(r, (int) t.size(), scale), t);
        return t;
    }

    private static float[] randomArray(SplittableRandom r, int n, double scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) ((r.nextDouble() * 2 - 1) * scale);
        return a;
    }
}
