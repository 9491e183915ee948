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
    RELU(0, false, false),
    /** x for x &gt; 0, slope * x otherwise. */
    LEAKY_RELU(1, false, false),
    /** tanh(x). */
    TANH(2, true, false),
    /** 1 / (1 + e^-x). */
    SIGMOID(3, true, false),
    /** x Phi(x), with Phi the standard normal CDF: PyTorch's exact GELU (approximate='none'). */
    GELU(4, false, true),
    /**
     * x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2: GELU's tanh approximation, PyTorch's
     * approximate='tanh' and JAX's default {@code jax.nn.gelu} (so PCX's "gelu").
     */
    GELU_TANH(5, false, true);

    /** sqrt(2 / pi) and the cubic term's coefficient of {@link #GELU_TANH}. */
    public static final double GELU_TANH_SCALE = Math.sqrt(2 / Math.PI), GELU_TANH_CUBIC = 0.044715;

    /**
     * erfc(x) to a relative error below 1.2e-7 everywhere (Numerical Recipes' Chebyshev fit), in
     * double: what GELU needs for float32 results, computed the same way by every Java kernel.
     *
     * @param x the argument
     * @return erfc(x)
     */
    public static double erfc(double x) {
        double z = Math.abs(x), t = 1 / (1 + 0.5 * z);
        double r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
                + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
        return x >= 0 ? r : 2 - r;
    }

    /**
     * f(x + dx) - f(x) in double, for float32 x and dx (whose sum double holds exactly, or to far below float32's
     * resolution): the Java kernels' {@link Backend#activationIncrement}. Piecewise-linear activations give it
     * exactly; the others to double's rounding of f, which float32's result never sees.
     *
     * @param slope leaky ReLU's negative slope (ignored by the others)
     * @param x the input
     * @param dx its change
     * @return the change of f's output
     */
    public double increment(double slope, double x, double dx) {
        double y = x + dx;
        return switch (this) {
            case RELU -> (y > 0 ? y : 0 * y) - (x > 0 ? x : 0 * x); // 0 * NaN stays NaN, as PyTorch's relu
            case LEAKY_RELU -> (y > 0 ? y : slope * y) - (x > 0 ? x : slope * x);
            case TANH -> 2 * sigmoidChange(2 * x, 2 * dx); // tanh v = 2 sigmoid(2v) - 1
            case SIGMOID -> sigmoidChange(x, dx);
            case GELU -> 0.5 * y * erfc(-y * SQRT_HALF) - 0.5 * x * erfc(-x * SQRT_HALF);
            case GELU_TANH -> 0.5 * y * (1 + Math.tanh(GELU_TANH_SCALE * (y + GELU_TANH_CUBIC * y * y * y)))
                    - 0.5 * x * (1 + Math.tanh(GELU_TANH_SCALE * (x + GELU_TANH_CUBIC * x * x * x)));
        };
    }

    /**
     * sigmoid(x + h) - sigmoid(x) as a product, sign(h) (1 - e^-|h|) (1 - sigmoid(lo)) sigmoid(hi), lo and hi the lower and
     * higher of x and x + h: relatively precise where both values saturate, where their difference would keep only
     * double's absolute precision (at x = 10 and h = 1e-6, about 1e-2 of the change).
     */
    private static double sigmoidChange(double x, double h) {
        double y = x + h, lo = h >= 0 ? x : y, hi = h >= 0 ? y : x;
        double m = -Math.expm1(-Math.abs(h)) / ((1 + Math.exp(lo)) * (1 + Math.exp(-hi)));
        return h >= 0 ? m : -m;
    }

    private static final double SQRT_HALF = Math.sqrt(0.5);

    private final int code;
    private final boolean derivativeFromOutput, derivativeWorthKeeping;

    Activation(int code, boolean derivativeFromOutput, boolean derivativeWorthKeeping) {
        this.code = code;
        this.derivativeFromOutput = derivativeFromOutput;
        this.derivativeWorthKeeping = derivativeWorthKeeping;
    }

    /** The code native kernels switch on (the enum in native/cuda/predcode.cu); a kernel traps on any other. */
    public int code() { return code; }

    /** True when f' is computed from the output y = f(x) (tanh, sigmoid), false when from the input x. */
    public boolean derivativeFromOutput() { return derivativeFromOutput; }

    /**
     * True when f' costs about as much as f (GELU's: erfc or e^x of the input again), so that a forward
     * pass whose backward passes follow does better to write f' beside f in one pass
     * ({@link Backend#activationWithDerivative}) and have each backward multiply by it. ReLU's and
     * leaky ReLU's f' is a compare, tanh's and sigmoid's a product of the output: not worth the memory.
     */
    public boolean derivativeWorthKeeping() { return derivativeWorthKeeping; }

    /** Its name in a model spec: relu, leaky_relu, tanh, sigmoid, gelu, gelu_tanh. */
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
