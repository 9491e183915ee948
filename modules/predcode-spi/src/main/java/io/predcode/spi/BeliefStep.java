package io.predcode.spi;

import java.util.Objects;

/**
 * A belief's SGD step, folded into the op that forms the belief's prediction error (PC's folded relaxation, see
 * {@link Backend#pcPredictionError(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, BeliefStep)}). The belief is kept as
 * its displacement d = v - vhat, and the op writes the step's own terms,
 * {@code next = d + momentum * (d - previous) + eta * error}; the feedback GEMM of the block above then adds
 * {@code -eta J^T eps_{l+1}} onto next ({@link Backend#matmul} with beta 1), which completes the step on the energy's
 * gradient J^T eps_{l+1} - eps_l without a pass of its own. With momentum it is SGD with PyTorch's momentum (dampening
 * 0) in its heavy-ball form, the velocity being the last step, d - previous, over -eta: at a layer's first step
 * previous is d itself, so that the first velocity is the gradient, as PyTorch's.
 *
 * @param next     where the step goes: a tensor of its own, the size of the displacement
 * @param eta      the step size
 * @param momentum the momentum, 0 for plain SGD
 * @param previous the displacement before the last step, where momentum is not 0; null where it is 0
 * @param copy     where not null, the op writes the step's terms here too, a tensor of its own: PC's Gram form reads
 *                 them in a GEMM that runs beside the feedback GEMM adding onto next (see
 *                 {@link Backend#pcPredictionErrorFromProducts})
 */
public record BeliefStep(Tensor next, float eta, float momentum, Tensor previous, Tensor copy) {
    /** Checks that next is given, eta and momentum are finite, and previous is given exactly where momentum is not 0. */
    public BeliefStep {
        Objects.requireNonNull(next, "next");
        if (!Float.isFinite(eta)) throw new IllegalArgumentException("belief step: eta must be finite, got " + eta);
        if (!Float.isFinite(momentum)) throw new IllegalArgumentException("belief step: momentum must be finite, got " + momentum);
        if ((momentum != 0f) != (previous != null))
            throw new IllegalArgumentException("belief step: the previous displacement is given exactly where the momentum is not 0 (momentum " + momentum + ")");
        if (copy != null && (copy == next || copy == previous)) throw new IllegalArgumentException("belief step: the copy must be a tensor of its own");
    }

    /** A step whose terms the op writes into next alone. */
    public BeliefStep(Tensor next, float eta, float momentum, Tensor previous) { this(next, eta, momentum, previous, null); }

    /** A plain SGD step of size eta into next. */
    public static BeliefStep sgd(Tensor next, float eta) { return new BeliefStep(next, eta, 0f, null); }
}
