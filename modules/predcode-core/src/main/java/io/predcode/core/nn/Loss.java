package io.predcode.core.nn;

import io.predcode.spi.Backend;
import io.predcode.spi.Tensor;

import java.util.Arrays;

/** The loss on the model's output, as PyTorch's MSELoss() and CrossEntropyLoss() with mean reduction. */
public enum Loss {
    /** Mean over all elements of (output - target)^2; targets have the output's shape. */
    MSE("mse"),
    /** Softmax cross-entropy of logits [N, C] against class indices [N], mean over the batch. */
    CROSS_ENTROPY("cross_entropy");

    private final String id;

    Loss(String id) { this.id = id; }

    /** The name used in specs and on the command line. */
    public String id() { return id; }

    /** Accepts mse, cross_entropy, cross-entropy, ce (any case). */
    public static Loss parse(String s) {
        return switch (s.toLowerCase().replace('-', '_')) {
            case "mse" -> MSE;
            case "cross_entropy", "ce", "crossentropy" -> CROSS_ENTROPY;
            default -> throw new IllegalArgumentException("unknown loss '" + s + "'; expected mse or cross-entropy");
        };
    }

    /** Per-sample target shape for a per-sample output shape. */
    public int[] targetShape(int[] outputShape) {
        return this == MSE ? outputShape.clone() : new int[0];
    }

    /** Writes the loss into {@code loss[0]} and, when not null, dL/doutput into {@code grad}. */
    public void compute(Backend be, Tensor output, Tensor target, Tensor loss, Tensor grad) {
        if (this == MSE) be.mse(output, target, loss, grad);
        else be.softmaxCrossEntropy(output, target, loss, grad);
    }

    /**
     * As {@link #compute}, the output given as a linear op's products: the product, an addend and the bias (each of
     * the last two null for none), which the loss's op adds first and writes back ({@link Backend#mseFromProducts},
     * {@link Backend#softmaxCrossEntropyFromProducts}).
     *
     * @param addend    a second product, added to {@code output} first
     * @param bias      the linear op's bias (or an offset of the output's size), added after the addend
     * @param perSample cross-entropy only: each sample's own gradient, softmax - onehot, not the batch mean's
     *                  (each sample's own squared error is a subtraction, not this op)
     */
    public void computeFromProducts(Backend be, Tensor output, Tensor addend, Tensor bias, Tensor target, Tensor loss, Tensor grad, boolean perSample) {
        if (this == CROSS_ENTROPY) be.softmaxCrossEntropyFromProducts(output, addend, bias, target, loss, grad, perSample);
        else if (perSample) throw new IllegalArgumentException("each sample's own squared error is a subtraction, not mse's batch mean");
        else be.mseFromProducts(output, addend, bias, target, loss, grad);
    }

    /**
     * The class a row of outputs (or of one-hot targets) names: the index of its largest value, the
     * first of equal ones, as torch.argmax.
     *
     * @param rows    rows of {@code classes} values each
     * @param row     which row
     * @param classes values per row
     * @return the index within the row
     */
    public static int argmax(float[] rows, int row, int classes) {
        int from = row * classes, best = 0;
        for (int c = 1; c < classes; c++) if (rows[from + c] > rows[from + best]) best = c;
        return best;
    }

    /** Rejects targets that cannot be right before they reach the device: labels out of range, NaN. */
    public void checkTargets(float[] y, int offset, int batch, int[] outputShape, String source) {
        if (this == CROSS_ENTROPY) {
            if (outputShape.length != 1)
                throw new IllegalArgumentException("cross_entropy needs a flat output [classes], the model outputs " + Arrays.toString(outputShape));
            int classes = outputShape[0];
            for (int i = 0; i < batch; i++) {
                float label = y[offset + i];
                if (label != Math.rint(label) || label < 0 || label >= classes)
                    throw new IllegalArgumentException(source + ": label " + label + " at row " + i + " is not a class index in [0, " + classes + ")");
            }
        } else {
            long n = (long) batch * Arrays.stream(outputShape).asLongStream().reduce(1, (a, b) -> a * b);
            for (long i = 0; i < n; i++)
                if (!Float.isFinite(y[(int) (offset + i)])) throw new IllegalArgumentException(source + ": target " + i + " is " + y[(int) (offset + i)]);
        }
    }
}
