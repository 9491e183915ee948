package io.predcode.core.nn;

import io.predcode.spi.Backend;
import io.predcode.spi.Tensor;

import java.util.List;

/**
 * One op of a block, bound to a backend: forward and vector-Jacobian products. An op keeps no
 * per-batch state: a backward pass reads the forward's input and output, which the block's tape owns.
 */
abstract class Op {
    final int[] in, out;

    Op(int[] in, int[] out) { this.in = in; this.out = out; }

    List<Parameter> parameters() { return List.of(); }

    /** True when the output is the input's memory reinterpreted (flatten): no op runs. */
    boolean isView() { return false; }

    /** y = f(x) for a batch. */
    abstract void forward(Backend be, Tensor x, Tensor y);

    /**
     * The forward at x = x0 + dx, from this op's forward at x0 (input x0, output y0): y = f(x) (and f' into
     * {@code derivative} where not null), and dy = f(x0 + dx) - f(x0) formed from dx without rounding x0 + dx, so that
     * it keeps its own precision however small dx is against x0 (see {@link Block#forwardIncrement}). Pooling's; an
     * affine op's change is {@link #change}, an activation's {@code ActivationOp.forwardIncrement}.
     */
    void forwardIncrement(Backend be, Tensor x0, Tensor y0, Tensor x, Tensor dx, Tensor y, Tensor derivative, Tensor dy) {
        throw new UnsupportedOperationException(getClass().getSimpleName() + " has no change rule");
    }

    /** Whether the op is affine in its input (linear, conv2d, normalize): its output's change is {@link #change}. */
    boolean affine() { return false; }

    /** For an {@link #affine} op: dy = the change of its output when its input moves by dx, its linear part alone. */
    void change(Backend be, Tensor dx, Tensor dy) { throw new UnsupportedOperationException(getClass().getSimpleName() + " is not affine"); }

    /**
     * Given dy = dL/dy at the point of the last {@link #forward} with these tensors: writes dx = J_x^T dy
     * when {@code dx} is not null, and overwrites the parameter gradients with
     * {@code parameterScale} J_theta^T dy when {@code parameterScale} is not 0 (0: leaves them).
     */
    abstract void backward(Backend be, Tensor x, Tensor y, Tensor dy, Tensor dx, float parameterScale);

    static int batchOf(Tensor t) { return t.shape().dim(0); }

    /**
     * An affine op's backward with parameter gradients, in parts that each read dy and write a tensor of their own: the
     * input gradient (where asked for), the weight's and the bias's (where the op has one). They run as branches
     * ({@link Backend#branches}), so that on a GPU the parameter gradients run beside the input gradient, off the chain of
     * kernels the layer below waits for, and on a CPU two GEMMs of one size each take a thread instead of splitting both.
     * The op keeps one of these and refills it each call, so that a learning step builds no lambdas or arrays for its
     * parts (iPC takes one per block and inference step); a call that finds it in use, the op's backward on two threads
     * at once, which no engine does, runs on one of its own.
     */
    abstract static class BackwardParts {
        private final java.util.concurrent.atomic.AtomicBoolean busy = new java.util.concurrent.atomic.AtomicBoolean();
        private final Runnable input = this::toInput, weight = this::toWeight, bias = this::toBias;
        private final Runnable[] two = new Runnable[2], three = new Runnable[3];
        private final double[] twoWork = new double[2], threeWork = new double[3];
        /** The call's backend, the forward's input, the output gradient, the input gradient (or null) and the parameter gradients' scale. */
        Backend be;
        Tensor x, dy, dx;
        float scale;

        /** dx = J_x^T dy. */
        abstract void toInput();

        /** The weight's gradient, {@code scale} J_W^T dy. */
        abstract void toWeight();

        /** The bias's gradient, {@code scale} J_b^T dy (only where {@link #hasBias}). */
        abstract void toBias();

        abstract boolean hasBias();

        /** The input gradient's work, which is the weight gradient's too: their multiply-adds for this dy. */
        abstract double gemmWork();

        /** The bias gradient's work: the floats of dy it sums. */
        double biasWork() { return dy.size(); }

        /** A fresh instance for the same op (see the class comment). */
        abstract BackwardParts another();

        final void run(Backend be, Tensor x, Tensor dy, Tensor dx, float scale) {
            if (!busy.compareAndSet(false, true)) {
                another().run(be, x, dy, dx, scale);
                return;
            }
            try {
                this.be = be;
                this.x = x;
                this.dy = dy;
                this.dx = dx;
                this.scale = scale;
                int n = 1 + (dx != null ? 1 : 0) + (hasBias() ? 1 : 0);
                if (n == 1 || !be.runsBranchesAtOnce()) {
                    if (dx != null) toInput();
                    toWeight();
                    if (hasBias()) toBias();
                    return;
                }
                Runnable[] parts = n == 2 ? two : three;
                double[] work = n == 2 ? twoWork : threeWork;
                int i = 0;
                if (dx != null) { parts[i] = input; work[i++] = gemmWork(); }
                parts[i] = weight;
                work[i++] = gemmWork();
                if (hasBias()) { parts[i] = bias; work[i] = biasWork(); }
                be.branches(work, parts);
            } finally {
                this.be = null; // keeps no tensor past the call
                this.x = this.dy = this.dx = null;
                busy.set(false);
            }
        }
    }
}
