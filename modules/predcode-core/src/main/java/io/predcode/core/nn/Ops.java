package io.predcode.core.nn;

import io.predcode.spi.Activation;
import io.predcode.spi.Backend;
import io.predcode.spi.BeliefStep;
import io.predcode.spi.Conv2dGeometry;
import io.predcode.spi.PoolGeometry;
import io.predcode.spi.Scope;
import io.predcode.spi.Tensor;

import java.util.ArrayList;
import java.util.List;

/** The op implementations, one small class per kind. */
final class Ops {
    private Ops() {}

    /** Binds an op to a backend; parameters are allocated in {@code scope} and named {@code prefix + "weight"}. */
    static Op create(OpSpec spec, int[] in, String prefix, Scope scope) {
        int[] out = spec.outputShape(in, prefix);
        List<Parameter> params = new ArrayList<>();
        spec.parameterShapes().forEach((name, shape) -> params.add(new Parameter(prefix + name, shape, scope.allocate(shape), scope.allocate(shape))));
        return switch (spec) {
            case OpSpec.Linear l -> new LinearOp(in, out, l, params);
            case OpSpec.Conv2d c -> new Conv2dOp(in, out, c, params);
            case OpSpec.Pool2d p -> new PoolOp(in, out, new PoolGeometry(in[0], in[1], in[2], p.kh(), p.kw(), p.sh(), p.sw()), p.max());
            case OpSpec.Act a -> new ActivationOp(in, out, a.function(), a.slope());
            case OpSpec.Flatten f -> new FlattenOp(in, out);
            case OpSpec.Normalize n -> new NormalizeOp(in, out, n, scope);
        };
    }

    /**
     * The ops with every ReLU followed by max pooling run in the other order: the ReLU then touches a
     * quarter of the values (2x2 pooling), forward and backward. The output is the same (max commutes
     * with any non-decreasing function) and so are the gradients: where the window maximum is positive,
     * the first maximum of relu(x) is the first maximum of x; where it is not, ReLU's gradient is 0 either
     * way. (Other activations can make new ties, which would route the gradient to another pixel.)
     */
    static List<Op> poolBeforeRelu(List<Op> ops) {
        List<Op> out = new ArrayList<>(ops);
        for (int i = 0; i + 1 < out.size(); i++)
            if (out.get(i) instanceof ActivationOp a && a.function == Activation.RELU && out.get(i + 1) instanceof PoolOp p && p.max) {
                out.set(i, new PoolOp(a.in, p.out, p.g, true));
                out.set(i + 1, new ActivationOp(p.out, p.out, Activation.RELU, a.slope));
                i++;
            }
        return out;
    }

    /** y = x W^T + b with W [out, in]. Its Gram operator is the matrix W W^T [out, out]. */
    static final class LinearOp extends Op implements AffineOp {
        final OpSpec.Linear spec;
        final Parameter weight, bias;
        private final List<Parameter> parameters;

        LinearOp(int[] in, int[] out, OpSpec.Linear spec, List<Parameter> params) {
            super(in, out);
            this.spec = spec;
            this.weight = params.get(0);
            this.bias = spec.bias() ? params.get(1) : null;
            this.parameters = bias == null ? List.of(weight) : List.of(weight, bias);
        }

        @Override List<Parameter> parameters() { return parameters; }

        @Override void forward(Backend be, Tensor x, Tensor y) {
            be.linear(x, weight.value(), biasValue(), y);
        }

        Tensor biasValue() { return bias == null ? null : bias.value(); }

        @Override boolean affine() { return true; }

        /** dy = dx W^T: the bias cancels. */
        @Override void change(Backend be, Tensor dx, Tensor dy) { be.matmul(false, true, 1f, dx, weight.value(), 0f, dy); }

        /** This op into z and activation f after it into y (and f' into {@code derivative}, where not null), as one {@link Backend#linearActivation}. */
        void forward(Backend be, ActivationOp f, Tensor x, Tensor z, Tensor y, Tensor derivative) {
            be.linearActivation(x, weight.value(), biasValue(), f.function, f.slope, z, y, derivative);
        }

        /** {@link #forward(Backend, Tensor, Tensor)} into y and error = y - target (and where asked its energy), as one {@link Backend#pcLinearOutputError}. */
        void forward(Backend be, Tensor x, Tensor y, Tensor target, Tensor error, Tensor energy, long energyIndex, float energyScale) {
            be.pcLinearOutputError(x, weight.value(), biasValue(), y, target, error, energy, energyIndex, energyScale);
        }

        /** {@link #forward(Backend, ActivationOp, Tensor, Tensor, Tensor, Tensor)} and the prediction error of y (and where not null the displacement's step), as one {@link Backend#pcLinearPredictionError}. */
        void forward(Backend be, ActivationOp f, Tensor x, Tensor z, Tensor y, Tensor derivative, Tensor vhat, Tensor displacement, Tensor error, Tensor delta,
                     BeliefStep step) {
            be.pcLinearPredictionError(x, weight.value(), biasValue(), f.function, f.slope, z, y, derivative, vhat, displacement, error, delta, step);
        }

        /**
         * The forward with the prediction error (and where not null the displacement's step) at x = x0 + d, from d and this
         * op's pre-activation zff at x0: z = zff + d W^T, zff as the offset of {@link Backend#linear}, in one
         * {@link Backend#pcLinearPredictionError}.
         */
        void forwardDisplaced(Backend be, ActivationOp f, Tensor d, Tensor zff, Tensor z, Tensor y, Tensor derivative, Tensor vhat, Tensor displacement,
                              Tensor error, Tensor delta, BeliefStep step) {
            be.pcLinearPredictionError(d, weight.value(), zff, f.function, f.slope, z, y, derivative, vhat, displacement, error, delta, step);
        }

        /** {@link #forward(Backend, ActivationOp, Tensor, Tensor, Tensor, Tensor)} at x = x0 + d: z = zff + d W^T, zff as the offset of one {@link Backend#linearActivation}. */
        void forwardDisplaced(Backend be, ActivationOp f, Tensor d, Tensor zff, Tensor z, Tensor y, Tensor derivative) {
            be.linearActivation(d, weight.value(), zff, f.function, f.slope, z, y, derivative);
        }

        /** y = zff + d W^T, the output at x0 + d from its value zff at x0; with a target, also the error y - target (and its energy) in one {@link Backend#pcLinearOutputError}. */
        void forwardDisplaced(Backend be, Tensor d, Tensor zff, Tensor y, Tensor target, Tensor error, Tensor energy, long energyIndex, float energyScale) {
            if (target == null) be.linear(d, weight.value(), zff, y);
            else be.pcLinearOutputError(d, weight.value(), zff, y, target, error, energy, energyIndex, energyScale);
        }

        /** y += d W^T, in the GEMM itself (beta 1): the output at x0 + d where y holds the pre-activation at x0. */
        void forwardOnto(Backend be, Tensor d, Tensor y) { be.matmul(false, true, 1f, d, weight.value(), 1f, y); }

        /** dx = alpha dy W, added onto dx in the GEMM itself (beta 1) where {@code onto}. */
        void inputGradient(Backend be, Tensor dy, Tensor dx, float alpha, boolean onto) { be.matmul(false, false, alpha, dy, weight.value(), onto ? 1f : 0f, dx); }

        @Override void backward(Backend be, Tensor x, Tensor y, Tensor dy, Tensor dx, float parameterScale) {
            if (parameterScale == 0f) { // a sweep's feedback: one GEMM, with no parts to build
                if (dx != null) inputGradient(be, dy, dx, 1f, false);
                return;
            }
            parts.run(be, x, dy, dx, parameterScale);
        }

        private final BackwardParts parts = new Parts();

        /** The input gradient dy W, the weight's scale dy^T x (each one GEMM, the scale in its alpha: no pass of its own) and the bias's column sums. */
        private final class Parts extends BackwardParts {
            @Override void toInput() { be.matmul(false, false, 1f, dy, weight.value(), 0f, dx); }

            @Override void toWeight() { be.matmul(true, false, scale, dy, x, 0f, weight.grad()); }

            @Override void toBias() { be.biasGrad(dy, bias.grad(), spec.out(), 1, scale, 0f); }

            @Override boolean hasBias() { return bias != null; }

            @Override double gemmWork() { return (double) batchOf(dy) * spec.in() * spec.out(); }

            @Override BackwardParts another() { return new Parts(); }
        }

        @Override public int[] gramShape() { return new int[]{spec.out(), spec.out()}; }

        @Override public long forwardMacs() { return (long) spec.in() * spec.out(); }

        @Override public long gramMacs() { return (long) spec.out() * spec.out(); }

        @Override public long formationMacs() { return (long) spec.out() * spec.out() * spec.in(); }

        @Override public void gram(Backend be, Tensor g) { be.matmul(false, true, 1f, weight.value(), weight.value(), 0f, g); }

        @Override public void applyGram(Backend be, Tensor g, Tensor y, Tensor z) {
            be.matmul(false, false, 1f, y, g, 0f, z); // W W^T is symmetric: y G = (G y^T)^T
        }
    }

    /**
     * PyTorch Conv2d through the backend's fused conv ops (the backend decides how to lay out im2col).
     * At stride 1 without padding, its Gram operator A A^T is itself a convolution of the output
     * channels with a (2kh-1)x(2kw-1) kernel and padding (kh-1, kw-1), whose kernel is W correlated with
     * itself: K[o, o', dy, dx] = sum over c, ky, kx of W[o, c, ky + dy, kx + dx] W[o', c, ky, kx].
     * (A^T x fills the whole input plane, so nothing is cropped between A^T and A.)
     */
    static final class Conv2dOp extends Op implements AffineOp {
        final Conv2dGeometry g;
        /** Geometries of K = W * W (the weights as a batch of images) and of G y (K over the output planes); null without a Gram kernel. */
        final Conv2dGeometry kernelGeometry, gramGeometry;
        final int outChannels;
        final Parameter weight, bias;
        private final List<Parameter> parameters;

        Conv2dOp(int[] in, int[] out, OpSpec.Conv2d spec, List<Parameter> params) {
            super(in, out);
            this.g = new Conv2dGeometry(in[0], in[1], in[2], spec.kh(), spec.kw(), spec.sh(), spec.sw(), spec.ph(), spec.pw());
            this.outChannels = spec.out();
            this.weight = params.get(0);
            this.bias = spec.bias() ? params.get(1) : null;
            boolean plain = g.sh() == 1 && g.sw() == 1 && g.ph() == 0 && g.pw() == 0;
            kernelGeometry = plain ? new Conv2dGeometry(g.channels(), g.kh(), g.kw(), g.kh(), g.kw(), 1, 1, g.kh() - 1, g.kw() - 1) : null;
            gramGeometry = plain ? new Conv2dGeometry(outChannels, g.outHeight(), g.outWidth(), 2 * g.kh() - 1, 2 * g.kw() - 1, 1, 1, g.kh() - 1, g.kw() - 1) : null;
            parameters = bias == null ? List.of(weight) : List.of(weight, bias);
        }

        @Override List<Parameter> parameters() { return parameters; }

        @Override public int[] gramShape() {
            return gramGeometry == null ? null : new int[]{outChannels, outChannels, gramGeometry.kh(), gramGeometry.kw()};
        }

        @Override public long forwardMacs() { return (long) outChannels * g.outPixels() * g.patchSize(); }

        @Override public long gramMacs() { return gramGeometry == null ? Long.MAX_VALUE : (long) outChannels * g.outPixels() * gramGeometry.patchSize(); }

        @Override public long formationMacs() {
            return kernelGeometry == null ? 0 : (long) outChannels * outChannels * kernelGeometry.outPixels() * kernelGeometry.patchSize();
        }

        @Override public void gram(Backend be, Tensor k) { be.conv2d(weight.value(), weight.value(), kernelGeometry, k); }

        @Override public void applyGram(Backend be, Tensor k, Tensor y, Tensor z) { be.conv2d(y, k, gramGeometry, z); }

        @Override void forward(Backend be, Tensor x, Tensor y) {
            be.conv2d(x, weight.value(), bias == null ? null : bias.value(), g, y);
        }

        @Override boolean affine() { return true; }

        /** dy = the convolution of dx: the bias cancels. */
        @Override void change(Backend be, Tensor dx, Tensor dy) { be.conv2d(dx, weight.value(), g, dy); }

        @Override void backward(Backend be, Tensor x, Tensor y, Tensor dy, Tensor dx, float parameterScale) {
            if (parameterScale == 0f) { // a sweep's feedback: one op, with no parts to build
                if (dx != null) be.conv2dBackwardInput(dy, weight.value(), g, dx);
                return;
            }
            parts.run(be, x, dy, dx, parameterScale);
        }

        private final BackwardParts parts = new Parts();

        /** The input and weight gradients' convolutions and the bias's sums over each channel's pixels. */
        private final class Parts extends BackwardParts {
            @Override void toInput() { be.conv2dBackwardInput(dy, weight.value(), g, dx); }

            @Override void toWeight() {
                be.conv2dBackwardWeight(x, dy, g, weight.grad());
                if (scale != 1f) be.axpby(0f, weight.grad(), scale, weight.grad()); // the conv weight gradient has no alpha
            }

            @Override void toBias() { be.biasGrad(dy, bias.grad(), outChannels, g.outPixels(), scale, 0f); }

            @Override boolean hasBias() { return bias != null; }

            @Override double gemmWork() { return (double) batchOf(dy) * forwardMacs(); }

            @Override BackwardParts another() { return new Parts(); }
        }
    }

    static final class PoolOp extends Op {
        final PoolGeometry g;
        final boolean max;

        PoolOp(int[] in, int[] out, PoolGeometry g, boolean max) { super(in, out); this.g = g; this.max = max; }

        @Override void forward(Backend be, Tensor x, Tensor y) {
            if (max) be.maxPool(x, g, y); else be.avgPool(x, g, y);
        }

        /** y from x; dy: average pooling is linear, so its pool of dx; max pooling's by {@link Backend#maxPoolIncrement}. */
        @Override void forwardIncrement(Backend be, Tensor x0, Tensor y0, Tensor x, Tensor dx, Tensor y, Tensor derivative, Tensor dy) {
            forward(be, x, y);
            if (max) be.maxPoolIncrement(x0, dx, g, dy); else be.avgPool(dx, g, dy);
        }

        @Override void backward(Backend be, Tensor x, Tensor y, Tensor dy, Tensor dx, float parameterScale) {
            if (dx == null) return;
            if (max) be.maxPoolBackward(x, g, dy, dx); else be.avgPoolBackward(g, dy, dx);
        }
    }

    static final class ActivationOp extends Op {
        final Activation function;
        final float slope;

        ActivationOp(int[] in, int[] out, Activation function, float slope) { super(in, out); this.function = function; this.slope = slope; }

        @Override void forward(Backend be, Tensor x, Tensor y) { be.activation(function, slope, x, y); }

        /** y = f(x), with f'(x) kept in {@code derivative} for {@link #backward(Backend, Tensor, Tensor, Tensor)}. */
        void forward(Backend be, Tensor x, Tensor y, Tensor derivative) { be.activationWithDerivative(function, slope, x, y, derivative); }

        /** y = f(x) (with f' where kept) from the value x already formed, and dy = f(x0 + dx) - f(x0) - minus ({@link Backend#activationIncrement}). */
        void forwardIncrement(Backend be, Tensor x0, Tensor x, Tensor dx, Tensor y, Tensor derivative, Tensor minus, Tensor dy) {
            if (derivative != null) forward(be, x, y, derivative); else forward(be, x, y);
            be.activationIncrement(function, slope, x0, dx, null, null, null, minus, dy);
        }

        /**
         * After an affine op, from its output's change dz and its feedforward output z0: z = z0 + dz, y = f(z) (with f' where
         * kept), dy = f(z0 + dz) - f(z0) - minus and where {@code delta} is not null the backward's dy f'(z), in one
         * {@link Backend#activationIncrement}.
         */
        void forwardIncrementAfterAffine(Backend be, Tensor z0, Tensor dz, Tensor z, Tensor y, Tensor derivative, Tensor minus, Tensor dy, Tensor delta) {
            be.activationIncrement(function, slope, z0, dz, z, y, derivative, minus, dy, delta);
        }

        /** dx = dy f'(x) from the derivative a forward kept. */
        void backward(Backend be, Tensor derivative, Tensor dy, Tensor dx) { be.multiply(dy, derivative, dx); }

        @Override void backward(Backend be, Tensor x, Tensor y, Tensor dy, Tensor dx, float parameterScale) {
            if (dx != null) be.activationBackward(function, slope, x, y, dy, dx);
        }
    }

    /**
     * y = x / std[c] - mean[c] / std[c] per channel, in one elementwise pass ({@link Backend#scaleChannels}: the
     * product, then the shift); its VJP and its change are dy / std[c]. The scales and shifts are constants of the
     * model, kept on the backend, not parameters.
     */
    static final class NormalizeOp extends Op {
        final int channels, inner;
        final Tensor scale, shift;

        NormalizeOp(int[] in, int[] out, OpSpec.Normalize spec, Scope scope) {
            super(in, out);
            channels = spec.channels();
            long n = 1;
            for (int d : in) n *= d;
            inner = (int) (n / channels);
            float[] d = new float[channels], t = new float[channels];
            float[] mean = spec.mean(), std = spec.std();
            for (int c = 0; c < channels; c++) {
                d[c] = 1f / std[c];
                t[c] = -mean[c] / std[c];
            }
            scale = scope.allocate(channels);
            shift = scope.allocate(channels);
            scope.backend().upload(d, scale);
            scope.backend().upload(t, shift);
        }

        @Override void forward(Backend be, Tensor x, Tensor y) { be.scaleChannels(x, scale, shift, channels, inner, y); }

        @Override boolean affine() { return true; }

        @Override void change(Backend be, Tensor dx, Tensor dy) { be.scaleChannels(dx, scale, null, channels, inner, dy); }

        @Override void backward(Backend be, Tensor x, Tensor y, Tensor dy, Tensor dx, float parameterScale) {
            if (dx != null) be.scaleChannels(dy, scale, null, channels, inner, dx);
        }
    }

    /** Contiguous NCHW data is already flat: the output is the input's memory, the gradient passes through. */
    static final class FlattenOp extends Op {
        FlattenOp(int[] in, int[] out) { super(in, out); }

        @Override boolean isView() { return true; }

        @Override void forward(Backend be, Tensor x, Tensor y) { throw new AssertionError("flatten is a view"); }

        @Override void backward(Backend be, Tensor x, Tensor y, Tensor dy, Tensor dx, float parameterScale) {
            throw new AssertionError("flatten is a view");
        }
    }
}
