package io.predcode.core.serve;

import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;

/**
 * A thread of its own that polls a training run's checkpoint and publishes each new one into a {@link Predictor}
 * ({@link Predictor#reloadIfChanged}): what a service that serves a separate run's model would otherwise write
 * around a scheduler. Made by {@link Predictor#watch}; {@link #close()} stops it, and so does closing the predictor.
 *
 * <p>Each outcome reaches the {@link Listener} once: a new version, a checkpoint refused (another model, a NaN, a file
 * that is not one), and a checkpoint that is not there (yet), until the file is written again. A listener that throws
 * does not stop the watch.
 */
public final class CheckpointWatch implements AutoCloseable {
    /** What a watch tells its service. Both methods run on the watch's thread; each does nothing by default. */
    public interface Listener {
        /**
         * A new version is current.
         *
         * @param version its number
         * @param checkpoint the folder or file watched
         */
        default void published(long version, Path checkpoint) {}

        /**
         * A checkpoint was not published; the current version keeps answering.
         *
         * @param checkpoint the folder or file watched
         * @param reason why: {@link NoSuchFileException} where there is no checkpoint, {@link IllegalArgumentException} for
         *               another model, {@link Predictor.NotFiniteException} for a NaN, an {@link java.io.IOException} naming the file
         */
        default void refused(Path checkpoint, Exception reason) {}
    }

    private final Predictor predictor;
    private final Path checkpoint;
    private final Duration every;
    private final Listener listener;
    private final Thread thread;
    private volatile boolean stopping;
    private volatile long polls;

    CheckpointWatch(Predictor predictor, Path checkpoint, Duration every, Listener listener) {
        if (every.isNegative() || every.isZero()) throw new IllegalArgumentException("watch: the interval must be positive, got " + every);
        this.predictor = predictor;
        this.checkpoint = checkpoint;
        this.every = every;
        this.listener = listener == null ? new Listener() {} : listener;
        this.thread = Thread.ofPlatform().daemon().name("predcode-watch " + checkpoint).unstarted(this::run);
    }

    void start() { thread.start(); }

    private void run() {
        long shown;
        try {
            shown = predictor.version();
        } catch (IllegalStateException e) {
            return; // closed before the first poll
        }
        boolean missingSaid = false;
        while (!stopping) {
            try {
                long v = predictor.reloadIfChanged(checkpoint);
                missingSaid = false;
                if (v != shown) tell(() -> listener.published(v, checkpoint));
                shown = v;
            } catch (NoSuchFileException e) {
                // A run that has not saved yet, or a folder removed: said once, not at every poll.
                if (!missingSaid) tell(() -> listener.refused(checkpoint, e));
                missingSaid = true;
            } catch (Exception e) {
                if (stopping || predictor.isClosed()) return; // closed under the poll
                // reloadIfChanged noted the file before reading it: this one is not read (or said) again until it is rewritten.
                tell(() -> listener.refused(checkpoint, e));
            }
            polls++;
            // A wait close() ends, not an interrupt: one would reach a reload's file channel or the backend.
            synchronized (this) {
                long end = System.nanoTime() + every.toNanos();
                for (long left; !stopping && (left = end - System.nanoTime()) > 0; ) {
                    try {
                        wait(Math.max(1, left / 1_000_000));
                    } catch (InterruptedException e) {
                        return;
                    }
                }
            }
        }
    }

    private static void tell(Runnable call) {
        try {
            call.run();
        } catch (RuntimeException e) {
            // The service's listener failed; the watch goes on serving its checkpoints.
        }
    }

    /** The polls made so far. */
    public long polls() { return polls; }

    /** Stops polling and waits for a poll in progress to finish. Idempotent; safe from the listener itself. */
    @Override public void close() {
        synchronized (this) {
            stopping = true;
            notifyAll();
        }
        predictor.forget(this);
        if (Thread.currentThread() == thread || !thread.isAlive()) return;
        try {
            thread.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
