package io.predcode.spi;

/** Elementwise nonlinearities with PyTorch semantics; LEAKY_RELU takes its negative slope as a parameter. */
public enum Activation {
    /** max(x, 0). */
    RELU,
    /** x for x &gt; 0, slope * x otherwise. */
    LEAKY_RELU,
    /** tanh(x). */
    TANH,
    /** 1 / (1 + e^-x). */
    SIGMOID
}
