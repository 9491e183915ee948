package io.predcode.spi;

import java.util.ArrayList;
import java.util.List;

/**
 * Memory with a lifetime: every tensor allocated through a scope is freed when the scope closes.
 * A model's parameters are one scope, and so is a workspace.
 *
 * <p>A scope draws its small tensors as views from a few backend allocations (slabs of 256 KiB to 4 MiB), so a
 * workspace of fifty tensors costs a handful of allocations, not fifty; a tensor over 1 MiB gets an
 * allocation of its own. Each tensor starts on a 64-byte
 * boundary and is zero-filled, as from {@link Backend#allocate}.
 *
 * <p>{@link #viewsOf} makes a scope that allocates nothing: it hands out, in order, views of the
 * tensors another scope allocated, cut to a smaller leading (batch) dimension. Code that allocates
 * the same tensors in the same order for any batch size can so run a small batch inside the memory
 * of a large one.
 */
public final class Scope implements AutoCloseable {
    /** Slab sizes in floats: the first 256 KiB, each next one twice the last, up to 4 MiB. */
    private static final int FIRST_SLAB = 1 << 16, LAST_SLAB = 1 << 20;
    /** Every tensor starts on a multiple of 16 floats (64 bytes), like a fresh allocation. */
    private static final long ALIGN = 16;

    private final Backend backend;
    private final List<Tensor> slabs = new ArrayList<>();
    /** Every tensor handed out, in order: what {@link #viewsOf} replays. */
    private final List<Tensor> handedOut = new ArrayList<>();
    /** For a scope of views: the scope whose tensors it views (null for a scope that allocates). */
    private final Scope source;
    private Tensor slab;
    private long slabUsed;
    private boolean closed;

    /** A scope that allocates on {@code backend}. */
    public Scope(Backend backend) { this(backend, null); }

    private Scope(Backend backend, Scope source) {
        this.backend = backend;
        this.source = source;
    }

    /**
     * A scope whose i-th allocation is a view of {@code full}'s i-th tensor. A request must have the
     * same shape as that tensor, except a smaller first dimension (the batch). The views are unusable
     * once {@code full} closes.
     */
    public static Scope viewsOf(Scope full) { return new Scope(full.backend, full); }

    /** The backend this scope allocates on. */
    public Backend backend() { return backend; }

    /** A zero-filled tensor that lives until this scope closes. */
    public synchronized Tensor allocate(int... dims) {
        if (closed) throw new IllegalStateException("allocate " + Shape.of(dims) + ": scope is closed");
        Shape shape = Shape.of(dims);
        Tensor t = source != null ? viewOfSource(shape) : carve(shape);
        handedOut.add(t);
        return t;
    }

    /** A zero-filled tensor that lives until this scope closes. */
    public synchronized Tensor allocate(Shape shape) { return allocate(shape.dims()); }

    private Tensor carve(Shape shape) {
        long n = shape.size(), start = (slabUsed + ALIGN - 1) / ALIGN * ALIGN;
        if (n > LAST_SLAB / 4) { // a large tensor gets memory of its own: no slab space is wasted around it
            Tensor own = backend.allocate(shape);
            slabs.add(own);
            return backend.view(own, 0, shape);
        }
        if (slab == null || start + n > slab.size()) {
            int size = slab == null ? FIRST_SLAB : (int) Math.min(LAST_SLAB, 2 * slab.size());
            while (size < n) size *= 2;
            slab = backend.allocate(size);
            slabs.add(slab);
            start = 0;
        }
        slabUsed = start + n;
        return backend.view(slab, start, shape);
    }

    private Tensor viewOfSource(Shape shape) {
        int i = handedOut.size();
        Tensor whole;
        synchronized (source) {
            if (i >= source.handedOut.size())
                throw new IllegalStateException("allocate " + shape + ": the scope being viewed has only " + source.handedOut.size() + " tensors");
            whole = source.handedOut.get(i);
        }
        int[] want = shape.dims(), have = whole.shape().dims();
        boolean fits = want.length == have.length && (want.length == 0 || want[0] <= have[0]);
        for (int d = 1; fits && d < want.length; d++) fits = want[d] == have[d];
        if (!fits) throw new IllegalStateException("allocate " + shape + ": tensor " + i + " of the scope being viewed is " + whole.shape() + " (only the first dimension may be smaller)");
        return backend.view(whole, 0, shape);
    }

    /** Frees every slab, even when freeing one fails; the first failure is rethrown after. */
    @Override public synchronized void close() {
        if (closed) return;
        closed = true;
        RuntimeException failure = null;
        for (int i = handedOut.size() - 1; i >= 0; i--) handedOut.get(i).close();
        for (int i = slabs.size() - 1; i >= 0; i--) {
            try {
                slabs.get(i).close();
            } catch (RuntimeException e) {
                if (failure == null) failure = e;
                else failure.addSuppressed(e);
            }
        }
        handedOut.clear();
        slabs.clear();
        slab = null;
        if (failure != null) throw failure;
    }
}
