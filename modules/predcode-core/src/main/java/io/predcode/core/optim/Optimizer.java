package io.predcode.core.optim;

import java.util.Map;

/**
 * Applies the parameter updates in each parameter's grad tensor, on the model's backend, with
 * PyTorch's semantics. State (momentum, Adam moments, step count) is kept on the device and can be
 * saved and restored for exact resumption.
 */
public interface Optimizer extends AutoCloseable {
    /** Applies the parameter updates in the model's grad tensors (one optimizer step). */
    void step();

    /**
     * The learning rate now.
     *
     * @return the learning rate
     */
    float learningRate();

    /**
     * Changes the learning rate from the next step on (e.g. lowered after a rollback).
     *
     * @param lr a finite rate &gt; 0
     */
    void learningRate(float lr);

    /** "sgd", "adam" or "adamw". */
    String name();

    /** Steps taken so far. */
    long steps();

    /** Host copies of the state tensors by name ("0.0.weight.exp_avg", ...), plus "step". */
    Map<String, float[]> state();

    /** Restores what {@link #state()} returned; names and sizes must match. */
    void loadState(Map<String, float[]> state, String source);

    @Override void close();
}
