package io.predcode.spi;

import java.util.ArrayList;
import java.util.List;

/**
 * Memory with a lifetime: every tensor allocated through a scope is freed when the scope closes.
 * A model's workspace for one batch size is one scope.
 */
public final class Scope implements AutoCloseable {
    private final Backend backend;
    private final List<Tensor> owned = new ArrayList<>();
    private boolean closed;

    public Scope(Backend backend) { this.backend = backend; }

    public Backend backend() { return backend; }

    public synchronized Tensor allocate(int... dims) {
        if (closed) throw new IllegalStateException("allocate " + Shape.of(dims) + ": scope is closed");
        Tensor t = backend.allocate(Shape.of(dims));
        owned.add(t);
        return t;
    }

    public synchronized Tensor allocate(Shape shape) { return allocate(shape.dims()); }

    @Override public synchronized void close() {
        if (closed) return;
        closed = true;
        for (int i = owned.size() - 1; i >= 0; i--) owned.get(i).close();
        owned.clear();
    }
}
