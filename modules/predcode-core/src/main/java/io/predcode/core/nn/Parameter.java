package io.predcode.core.nn;

import io.predcode.spi.Tensor;

import java.util.Arrays;

/**
 * A learnable tensor and the buffer its update is written to (PyTorch's {@code .grad}).
 * {@code name} is the PyTorch state_dict name, e.g. {@code 2.0.weight}.
 */
public record Parameter(String name, int[] shape, Tensor value, Tensor grad) {
    /** The number of floats. */
    public long size() { return value.size(); }

    @Override public String toString() { return name + " " + Arrays.toString(shape); }
}
