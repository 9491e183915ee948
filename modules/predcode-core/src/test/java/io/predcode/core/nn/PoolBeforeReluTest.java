package io.predcode.core.nn;

import io.predcode.spi.Backend;
import io.predcode.spi.Backends;
import io.predcode.spi.Scope;
import io.predcode.spi.Tensor;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

/**
 * ReLU then max pooling, run as pooling then ReLU, gives exactly what the spec's order gives (a zero
 * gradient may change sign: the pooling backward adds into zeros).
 */
class PoolBeforeReluTest {
    @Test void sameOutputAndGradientAsTheSpecOrder() {
        SplittableRandom r = new SplittableRandom(7);
        try (Backend be = Backends.open("cpu"); Scope scope = new Scope(be)) {
            for (int trial = 0; trial < 20; trial++) {
                int c = 1 + r.nextInt(3), h = 2 + r.nextInt(9), w = 2 + r.nextInt(9), k = 1 + r.nextInt(Math.min(3, Math.min(h, w))), batch = 1 + r.nextInt(4);
                int[] in = {c, h, w};
                List<Op> spec = new ArrayList<>();
                spec.add(Ops.create(new OpSpec.Act(io.predcode.spi.Activation.RELU, 0f), in, "0.0.", scope));
                spec.add(Ops.create(new OpSpec.Pool2d(true, k, k, k, k), in, "0.1.", scope));
                int[] out = spec.get(1).out;
                List<Op> swapped = Ops.poolBeforeRelu(spec);
                assertInstanceOf(Ops.PoolOp.class, swapped.get(0));
                Block a = new Block(0, spec, in, out), b = new Block(0, swapped, in, out);
                Block.Tape ta = a.newTape(scope, batch, true), tb = b.newTape(scope, batch, true);
                // Mostly non-positive values on a coarse grid: all-negative windows, maxima of exactly 0 and ties.
                float[] x = new float[batch * c * h * w], dy = new float[batch * out[0] * out[1] * out[2]];
                for (int i = 0; i < x.length; i++) x[i] = r.nextInt(3) == 0 ? (r.nextInt(5) - 1) * 0.5f : -(r.nextInt(3)) * 0.25f;
                if (trial % 5 == 4) x[r.nextInt(x.length)] = -0f;
                for (int i = 0; i < dy.length; i++) dy[i] = (float) r.nextGaussian();
                Tensor tx = scope.allocate(Block.withBatch(batch, in)), tdy = scope.allocate(Block.withBatch(batch, out));
                Tensor dxa = scope.allocate(Block.withBatch(batch, in)), dxb = scope.allocate(Block.withBatch(batch, in));
                be.upload(x, 0, tx, 0, x.length);
                be.upload(dy, 0, tdy, 0, dy.length);
                a.forward(be, tx, ta);
                b.forward(be, tx, tb);
                a.backward(be, ta, tdy, dxa, 0f);
                b.backward(be, tb, tdy, dxb, 0f);
                String what = "relu + maxpool " + k + " on " + java.util.Arrays.toString(in) + " x" + batch;
                assertArrayEquals(be.download(ta.output()), be.download(tb.output()), 0f, what + ": output");
                assertArrayEquals(be.download(dxa), be.download(dxb), 0f, what + ": input gradient");
            }
        }
    }
}
