package io.predcode.spi;

/**
 * A float32 tensor in memory its backend owns (off-heap on the CPU, device memory on a GPU).
 * The engine never reads the data directly: it asks its backend for explicit, counted copies.
 * Closing frees the memory; any later use throws.
 */
public abstract class Tensor implements AutoCloseable {
    private final Shape shape;
    private volatile boolean closed;

    protected Tensor(Shape shape) { this.shape = shape; }

    public final Shape shape() { return shape; }

    public final long size() { return shape.size(); }

    public abstract Backend backend();

    public final boolean isClosed() { return closed; }

    /** Throws when closed; the op name goes into the message. */
    public final void checkOpen(String op) {
        if (closed) throw new IllegalStateException(op + ": tensor " + shape + " used after close");
    }

    @Override public final void close() {
        if (closed) return;
        closed = true;
        release();
    }

    /** Frees the memory; called once. */
    protected abstract void release();

    @Override public String toString() { return backend().name() + " tensor " + shape + (closed ? " (closed)" : ""); }
}
