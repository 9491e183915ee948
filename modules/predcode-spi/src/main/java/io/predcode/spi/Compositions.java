package io.predcode.spi;

import java.util.Arrays;

/**
 * The ops that are not primitives, written with the primitives: what {@link Backend}'s default hooks
 * run, so a new backend is complete with the abstract hooks alone. A backend overrides a default for
 * speed (one pass, no temporaries, no host round trip); the conformance suite checks every override
 * against its composition here. Host round trips and temporaries make these unfit inside a
 * {@link Backend#replayable} region of a backend that records it, which is why the CPU and CUDA
 * backends override every one.
 */
public final class Compositions {
    private Compositions() {}

    private static final int CHUNK = 1 << 16;

    /** {@link Backend#fill}: uploads the value from the host. */
    public static void fill(Backend be, Tensor t, long offset, long length, float value) {
        float[] chunk = new float[(int) Math.min(length, CHUNK)];
        Arrays.fill(chunk, value);
        for (long at = 0; at < length; at += chunk.length) be.upload(chunk, 0, t, offset + at, (int) Math.min(chunk.length, length - at));
    }

    /** {@link Backend#copy}: through the host. */
    public static void copy(Backend be, Tensor src, long srcOffset, Tensor dst, long dstOffset, long length) {
        float[] chunk = new float[(int) Math.min(length, CHUNK)];
        for (long at = 0; at < length; at += chunk.length) {
            int len = (int) Math.min(chunk.length, length - at);
            be.download(src, srcOffset + at, chunk, 0, len);
            be.upload(chunk, 0, dst, dstOffset + at, len);
        }
    }

    /** {@link Backend#randomUniform}: the counter-based generator on the host, uploaded. */
    public static void randomUniform(Backend be, Tensor t, float lo, float hi, long seed) {
        float[] chunk = new float[(int) Math.min(t.size(), CHUNK)];
        for (long at = 0; at < t.size(); at += chunk.length) {
            int len = (int) Math.min(chunk.length, t.size() - at);
            for (int i = 0; i < len; i++) chunk[i] = Random.uniform(seed, at + i, lo, hi);
            be.upload(chunk, 0, t, at, len);
        }
    }

    /** {@link Backend#linearActivation}: linear, then activation or activationWithDerivative. */
    public static void linearActivation(Backend be, Tensor x, Tensor weight, Tensor bias, Activation f, float slope, Tensor z, Tensor y, Tensor derivative) {
        be.linear(x, weight, bias, z);
        if (derivative == null) be.activation(f, slope, z, y);
        else be.activationWithDerivative(f, slope, z, y, derivative);
    }

    /** {@link Backend#pcLinearOutputError}: linear, then add(1, output, -1, target, error), then where asked sumSquares of the error. */
    public static void pcLinearOutputError(Backend be, Tensor x, Tensor weight, Tensor bias, Tensor output, Tensor target, Tensor error,
                                           Tensor energy, long energyIndex, float energyScale) {
        be.linear(x, weight, bias, output);
        be.add(1f, output, -1f, target, error);
        if (energy != null) be.sumSquares(error, energyScale, energy, energyIndex);
    }

    /** {@link Backend#pcLinearPredictionError}: linearActivation, then pcPredictionError with its delta (and the step). */
    public static void pcLinearPredictionError(Backend be, Tensor x, Tensor weight, Tensor bias, Activation f, float slope, Tensor z, Tensor prediction,
                                               Tensor derivative, Tensor vhat, Tensor displacement, Tensor error, Tensor delta, BeliefStep step) {
        be.linearActivation(x, weight, bias, f, slope, z, prediction, derivative);
        be.pcPredictionError(prediction, vhat, displacement, error, derivative, delta, step);
    }

    /** {@link Backend#pcPredictionErrorFromProducts}: the products and the bias added, activationWithDerivative, then pcPredictionError with its delta (and the step). */
    public static void pcPredictionErrorFromProducts(Backend be, Tensor z, Tensor addend, Tensor bias, Activation f, float slope, Tensor prediction,
                                                     Tensor derivative, Tensor vhat, Tensor displacement, Tensor error, Tensor delta, BeliefStep step) {
        addProducts(be, z, addend, bias);
        be.activationWithDerivative(f, slope, z, prediction, derivative);
        be.pcPredictionError(prediction, vhat, displacement, error, derivative, delta, step);
    }

    /** {@link Backend#pcOutputErrorFromProducts}: the products and the bias added, then add(1, output, -1, target, error), then where asked sumSquares of the error. */
    public static void pcOutputErrorFromProducts(Backend be, Tensor output, Tensor addend, Tensor bias, Tensor target, Tensor error, Tensor energy,
                                                 long energyIndex, float energyScale) {
        addProducts(be, output, addend, bias);
        be.add(1f, output, -1f, target, error);
        if (energy != null) be.sumSquares(error, energyScale, energy, energyIndex);
    }

    /** z = (z + addend) + bias, the bias as {@link Backend#linear} adds it after its GEMM: one per output feature, or an offset of z's size. */
    static void addProducts(Backend be, Tensor z, Tensor addend, Tensor bias) {
        if (addend != null) be.add(1f, z, 1f, addend, z);
        if (bias == null) return;
        if (bias.size() != z.shape().rowSize()) be.add(1f, z, 1f, bias, z);
        else be.addBias(z, bias, (int) z.shape().rowSize(), 1);
    }

    /** {@link Backend#activationWithDerivative}: y = f(x), then f' as the backward pass of a gradient of ones. */
    public static void activationWithDerivative(Backend be, Activation f, float slope, Tensor x, Tensor y, Tensor derivative) {
        be.activation(f, slope, x, y);
        be.fill(derivative, 1f);
        be.activationBackward(f, slope, x, y, derivative, derivative); // dx may alias dy
    }

    /**
     * {@link Backend#pcPredictionError}: error = (prediction - vhat) - displacement, in two passes; then, where
     * {@code derivative} is not null, delta = error * derivative; where {@code step} is not null, the displacement's
     * step ({@link BeliefStep}): next = d + momentum (d - previous) + eta error, its terms added in that order.
     */
    public static void pcPredictionError(Backend be, Tensor prediction, Tensor vhat, Tensor displacement, Tensor error, Tensor derivative, Tensor delta,
                                         BeliefStep step) {
        be.add(1f, prediction, -1f, vhat, error);
        be.axpby(-1f, displacement, 1f, error);
        if (derivative != null) be.multiply(error, derivative, delta);
        if (step == null) return;
        if (step.previous() == null) be.add(1f, displacement, step.eta(), error, step.next());
        else {
            be.add(1f, displacement, -1f, step.previous(), step.next());          // d - previous
            be.add(1f, displacement, step.momentum(), step.next(), step.next());  // d + momentum (d - previous)
            be.axpby(step.eta(), error, 1f, step.next());                         // ... + eta error
        }
        if (step.copy() != null) be.copy(step.next(), step.copy());
    }

    /**
     * {@link Backend#pcStrictUpdate}: error = (prediction - vhat) - displacement, displacement +=
     * eta (error - feedback), belief = vhat + displacement. Without an error tensor the error is
     * formed in belief, which is free until its last write.
     */
    public static void pcStrictUpdate(Backend be, Tensor prediction, Tensor vhat, Tensor feedback, Tensor displacement, Tensor belief, Tensor error, float eta) {
        Tensor e = error != null ? error : belief;
        be.add(1f, prediction, -1f, vhat, e);
        be.axpby(-1f, displacement, 1f, e);
        be.axpby(eta, e, 1f, displacement);
        be.axpby(-eta, feedback, 1f, displacement);
        be.add(1f, vhat, 1f, displacement, belief);
    }

    /**
     * {@link Backend#pcMomentumUpdate}: error = (prediction - vhat) - displacement, velocity =
     * (feedback - error) + momentum velocity (not on the first step), displacement -= eta velocity,
     * belief = vhat + displacement. Without an error tensor the error is formed in belief.
     */
    public static void pcMomentumUpdate(Backend be, Tensor prediction, Tensor vhat, Tensor feedback, Tensor displacement, Tensor velocity,
                                        Tensor belief, Tensor error, float eta, float momentum, boolean firstStep) {
        Tensor e = error != null ? error : belief;
        be.add(1f, prediction, -1f, vhat, e);
        be.axpby(-1f, displacement, 1f, e);
        if (firstStep) be.add(1f, feedback, -1f, e, velocity);
        else {
            be.axpby(1f, feedback, momentum, velocity);
            be.axpby(-1f, e, 1f, velocity);
        }
        be.axpby(-eta, velocity, 1f, displacement);
        be.add(1f, vhat, 1f, displacement, belief);
    }

    /**
     * {@link Backend#pcAdamUpdate}: error = (prediction - vhat) - displacement, g = feedback - error, Adam's step on the
     * displacement with g (no weight decay), belief = vhat + displacement. g is formed in belief, free until its last write,
     * and without an error tensor the error too.
     */
    public static void pcAdamUpdate(Backend be, Tensor prediction, Tensor vhat, Tensor feedback, Tensor displacement, Tensor moment, Tensor secondMoment,
                                    Tensor belief, Tensor error, float stepSize, float bc2Sqrt, float beta1, float beta2, float eps) {
        Tensor e = error != null ? error : belief;
        be.pcPredictionError(prediction, vhat, displacement, e);
        be.add(1f, feedback, -1f, e, belief);
        be.doAdamStep(displacement, belief, moment, secondMoment, stepSize, bc2Sqrt, beta1, beta2, eps, 0f, 1f, null, 0, null, 0, 0);
        be.add(1f, vhat, 1f, displacement, belief);
    }

    /** {@link Backend#mse}: dy = 2 (y - t) / n, and the loss n/4 sum(dy^2) = mean((y - t)^2). Without dy, a temporary holds it. */
    public static void mse(Backend be, Tensor y, Tensor target, Tensor loss, Tensor dy) {
        long n = y.size();
        try (Tensor temporary = dy != null ? null : be.allocate(y.shape())) {
            Tensor d = dy != null ? dy : temporary;
            be.add(2f / n, y, -2f / n, target, d);
            be.sumSquares(d, n / 4f, loss, 0);
        }
    }

    /**
     * {@link Backend#sgdStep}, torch.optim.SGD: d = grad + wd param; with momentum, buf = d on the first
     * step, else momentum buf + (1 - dampening) d, and the step takes d + momentum buf (Nesterov) or
     * buf. Each term of d is added where it is used, so nothing holds d.
     */
    public static void sgdStep(Backend be, Tensor param, Tensor grad, Tensor buf, float lr, float momentum, float dampening, float weightDecay,
                               boolean nesterov, boolean firstStep) {
        if (momentum == 0f) {
            be.axpby(-lr, grad, 1f - lr * weightDecay, param);
            return;
        }
        if (firstStep) {
            be.copy(grad, buf);
            if (weightDecay != 0f) be.axpby(weightDecay, param, 1f, buf);
        } else {
            be.axpby(1f - dampening, grad, momentum, buf);
            if (weightDecay != 0f) be.axpby((1f - dampening) * weightDecay, param, 1f, buf);
        }
        if (nesterov) {
            be.axpby(-lr, grad, 1f - lr * weightDecay, param);
            be.axpby(-lr * momentum, buf, 1f, param);
        } else {
            be.axpby(-lr, buf, 1f, param);
        }
    }
}
