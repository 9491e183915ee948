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
     * An affine op's backward parts, each reading dy and writing a tensor of its own (the input gradient, the
     * weight's, the bias's; null where not asked for), with their work: run as branches ({@link Backend#branches}),
     * so that on a GPU the parameter gradients run beside the input gradient, off the chain of kernels the layer
     * below waits for, and on a CPU two GEMMs of one size each take a thread instead of splitting both.
     */
    static void backwardParts(Backend be, Runnable input, double inputWork, Runnable weight, double weightWork, Runnable bias, double biasWork) {
        int n = (input != null ? 1 : 0) + (weight != null ? 1 : 0) + (bias != null ? 1 : 0);
        if (n <= 1 || !be.runsBranchesAtOnce()) {
            if (input != null) input.run();
            if (weight != null) weight.run();
            if (bias != null) bias.run();
            return;
        }
        Runnable[] parts = new Runnable[n];
        double[] work = new double[n];
        int i = 0;
        if (input != null) { parts[i] = input; work[i++] = inputWork; }
        if (weight != null) { parts[i] = weight; work[i++] = weightWork; }
        if (bias != null) { parts[i] = bias; work[i] = biasWork; }
        be.branches(work, parts);
    }
}
