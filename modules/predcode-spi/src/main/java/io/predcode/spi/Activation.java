package io.predcode.spi;

/** Elementwise nonlinearities with PyTorch semantics; LEAKY_RELU takes its negative slope as a parameter. */
public enum Activation { RELU, LEAKY_RELU, TANH, SIGMOID }
