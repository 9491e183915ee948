package io.predcode.core.nn;

import io.predcode.spi.Backend;
import io.predcode.spi.Tensor;

/**
 * An affine op y = A x + b (linear, conv2d) that can also apply its Gram operator G = A A^T, which maps
 * the output space to itself. When a belief is only ever read through A and only ever moved along A^T,
 * it can relax in the output space instead: see {@link Block.Entry}.
 */
interface AffineOp {
    /** G as a tensor, or null when it has no compact form (a strided or padded conv). */
    int[] gramShape();

    /** Multiply-adds per sample of A x, and of G y ({@link Long#MAX_VALUE} without a Gram form). */
    long forwardMacs();

    long gramMacs();

    /** Multiply-adds of forming G from the weights (once per step, not per sample). */
    long formationMacs();

    /** Writes G for the current weights. */
    void gram(Backend be, Tensor g);

    /** z = G y, for y and z shaped as the op's output. */
    void applyGram(Backend be, Tensor g, Tensor y, Tensor z);
}
