package io.predcode.core.internal;

import io.predcode.spi.Backend;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

/**
 * A single-user lease for an object that is not thread-safe (an engine, a trainer, a model), and its
 * close. Every public call holds the lease; a second thread that calls while it is held gets an
 * {@link IllegalStateException} naming the object and the holder, never a wrong answer. A thread may
 * re-enter its own lease.
 *
 * <p>A guard made with a backend also takes the backend's turn ({@link Backend#beginTurn()}) while
 * the lease is held, so objects on a backend that is not thread-safe may be used from different
 * threads (each by one at a time) without their ops interleaving.
 *
 * <p>{@link #close} is idempotent and never races with a call: when another thread holds the lease,
 * the release runs as that call leaves, so its result stays valid to its end and nothing leaks. After
 * close, every call throws.
 */
public final class Guard {
    private static final int OPEN = 0, CLOSING = 1, CLOSED = 2;

    private final String name;
    private final Runnable release;
    private final Backend backend;
    private final AtomicReference<Thread> holder = new AtomicReference<>();
    private final AtomicInteger state = new AtomicInteger(OPEN);
    /** Re-entries by the holder; only the holder reads or writes it. */
    private int depth;

    /** {@code name} goes into messages (e.g. "PcEngine for model digits-mlp"); {@code release} frees the object's memory, once. */
    public Guard(String name, Runnable release) { this(name, release, null); }

    /** A guard that also holds {@code backend}'s turn while the lease is held. */
    public Guard(String name, Runnable release, Backend backend) {
        this.name = name;
        this.release = release;
        this.backend = backend;
    }

    /** Takes the lease for the calling thread; pair with {@link #exit} in a finally block. */
    public void enter() {
        Thread me = Thread.currentThread();
        if (holder.get() == me) { depth++; return; }
        if (state.get() != OPEN) throw closed();
        if (!holder.compareAndSet(null, me)) {
            if (state.get() != OPEN) throw closed(); // held by the thread that is closing it
            Thread other = holder.get();
            throw new IllegalStateException(name + " is in use by thread '" + (other == null ? "?" : other.getName())
                    + "': it is not thread-safe; give each thread its own, or use a Predictor to serve many threads");
        }
        if (state.get() != OPEN) { // closed between the check and taking the lease: finish the close ourselves
            leave();
            throw closed();
        }
        if (backend != null) backend.beginTurn();
        depth = 1;
    }

    /**
     * Takes this lease, then {@code inner} (the lease of an object this one uses); gives this lease
     * back if the inner one cannot be taken. Pair with {@link #exit(Runnable)}.
     *
     * @param inner takes the inner lease
     */
    public void enter(Runnable inner) {
        enter();
        try {
            inner.run();
        } catch (RuntimeException e) {
            exit();
            throw e;
        }
    }

    /**
     * Gives back {@code inner} (the inner lease of {@link #enter(Runnable)}), then this lease, even if
     * the first fails.
     *
     * @param inner gives the inner lease back
     */
    public void exit(Runnable inner) {
        try {
            inner.run();
        } finally {
            exit();
        }
    }

    /** Gives the lease back; runs a close that was asked for while it was held. */
    public void exit() {
        if (--depth > 0) return;
        if (backend != null) backend.endTurn();
        leave();
    }

    private void leave() {
        holder.set(null);
        if (state.get() == CLOSING && holder.compareAndSet(null, Thread.currentThread())) finishClose();
    }

    /** Closes now, or as soon as the thread holding the lease leaves. Idempotent. */
    public void close() {
        if (!state.compareAndSet(OPEN, CLOSING)) return;
        Thread me = Thread.currentThread();
        if (holder.get() == me) return; // closed from inside a call: released when it returns
        if (holder.compareAndSet(null, me)) finishClose();
    }

    private void finishClose() {
        if (backend != null) backend.beginTurn();
        try {
            release.run();
        } finally {
            if (backend != null) backend.endTurn();
            state.set(CLOSED);
            holder.set(null);
        }
    }

    /** True once close was called (the release may still be waiting for a running call). */
    public boolean isClosed() { return state.get() != OPEN; }

    /** Throws if closed, without taking the lease. */
    public void checkOpen() { if (state.get() != OPEN) throw closed(); }

    private IllegalStateException closed() { return new IllegalStateException(name + " is closed"); }
}
