package io.predcode.spi;

/**
 * A float32 tensor in memory its backend owns (off-heap on the CPU, device memory on a GPU).
 * The engine never reads the data directly: it asks its backend for explicit, counted copies.
 * Closing frees the memory; any later use throws.
 *
 * <p>A <em>view</em> ({@link Backend#view}) is a contiguous part of another tensor, its parent,
 * with a shape of its own. It owns no memory: closing it frees nothing, and it counts as closed as
 * soon as its parent is.
 */
public abstract class Tensor implements AutoCloseable {
    private final Shape shape;
    private final Tensor parent;
    private volatile boolean closed;

    /** A tensor that owns its memory. */
    protected Tensor(Shape shape) { this(shape, null); }

    /** A view into {@code parent}'s memory (null: the tensor owns its memory). */
    protected Tensor(Shape shape, Tensor parent) {
        this.shape = shape;
        this.parent = parent;
    }

    /** Dimensions. */
    public final Shape shape() { return shape; }

    /** The number of elements. */
    public final long size() { return shape.size(); }

    /** The backend that owns this tensor's memory. */
    public abstract Backend backend();

    /** True once this tensor, or for a view the tensor it views, is closed. */
    public final boolean isClosed() { return closed || parent != null && parent.isClosed(); }

    /** True for a view into another tensor's memory. */
    public final boolean isView() { return parent != null; }

    /** Throws when closed; the op name goes into the message. */
    public final void checkOpen(String op) {
        if (isClosed()) throw new IllegalStateException(op + ": tensor " + shape + " used after close" + (closed ? "" : " of the tensor it views"));
    }

    /** Frees the memory (a view frees nothing); on a backend that is not thread-safe, in the calling thread's turn. Idempotent. */
    @Override public final void close() {
        if (closed) return;
        closed = true;
        if (parent != null) return;
        Backend b = backend();
        b.beginTurn();
        try {
            release();
        } finally {
            b.endTurn();
        }
    }

    /** Frees the memory; called once, and never for a view. */
    protected abstract void release();

    @Override public String toString() { return backend().name() + " tensor " + shape + (isClosed() ? " (closed)" : ""); }
}
