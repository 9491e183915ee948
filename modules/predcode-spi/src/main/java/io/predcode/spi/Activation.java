package io.predcode.spi;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/**
 * Elementwise nonlinearities with PyTorch semantics; LEAKY_RELU takes its negative slope as a
 * parameter. Adding one touches this enum, each backend's math (JavaKernels, native/cuda/predcode.cu)
 * and the conformance suite's reference: docs/architecture.md.
 */
public enum Activation {
    /** max(x, 0). */
    RELU(0, false),
    /** x for x &gt; 0, slope * x otherwise. */
    LEAKY_RELU(1, false),
    /** tanh(x). */
    TANH(2, true),
    /** 1 / (1 + e^-x). */
    SIGMOID(3, true);

    private final int code;
    private final boolean derivativeFromOutput;

    Activation(int code, boolean derivativeFromOutput) {
        this.code = code;
        this.derivativeFromOutput = derivativeFromOutput;
    }

    /** The code native kernels switch on (the enum in native/cuda/predcode.cu); a kernel traps on any other. */
    public int code() { return code; }

    /** True when f' is computed from the output y = f(x) (tanh, sigmoid), false when from the input x. */
    public boolean derivativeFromOutput() { return derivativeFromOutput; }

    /** Its name in a model spec: relu, leaky_relu, tanh, sigmoid. */
    public String id() { return name().toLowerCase(Locale.ROOT); }

    /**
     * The activation a model spec names.
     *
     * @param id a name such as "relu"
     * @return the activation, or null when {@code id} names none
     */
    public static Activation byId(String id) {
        for (Activation a : values()) if (a.id().equals(id)) return a;
        return null;
    }

    /** Every name, comma-separated, for messages. */
    public static String ids() { return Arrays.stream(values()).map(Activation::id).collect(Collectors.joining(", ")); }
}
