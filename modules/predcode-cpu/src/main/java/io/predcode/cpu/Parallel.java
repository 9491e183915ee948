package io.predcode.cpu;

import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Splits a kernel's outer loop (images, planes) across the backend's threads. Work below
 * {@code minItems} items per thread runs on the caller alone: handing off costs tens of
 * microseconds, which only large batches repay (see ConvBenchmark's threads parameter).
 */
final class Parallel implements AutoCloseable {
    interface Range { void run(int from, int to); }

    /** A range that also knows which of the parts it is (for per-part partial results). */
    interface Part { void run(int part, int from, int to); }

    private final int threads;
    private final ExecutorService pool;

    Parallel(int threads) {
        this.threads = Math.max(1, threads);
        this.pool = this.threads > 1
                ? Executors.newFixedThreadPool(this.threads - 1, r -> Thread.ofPlatform().daemon().name("predcode-cpu-kernel").unstarted(r))
                : null;
    }

    int threads() { return threads; }

    /** How many parts {@link #forParts} splits n items into. */
    int parts(int n, int minItems) { return pool == null ? 1 : Math.min(threads, Math.max(1, n / Math.max(1, minItems))); }

    /** Runs body over [0, n) in up to {@code threads} contiguous parts; the caller takes the first. */
    void forRange(int n, int minItems, Range body) {
        if (parts(n, minItems) <= 1) { body.run(0, n); return; } // the common small case: no wrapper object
        forParts(n, minItems, (part, from, to) -> body.run(from, to));
    }

    /** As {@link #forRange}, telling each part its index: part p covers [n p / parts, n (p + 1) / parts). */
    void forParts(int n, int minItems, Part body) {
        int parts = parts(n, minItems);
        if (parts <= 1) { body.run(0, 0, n); return; }
        Future<?>[] futures = new Future<?>[parts - 1];
        for (int p = 1; p < parts; p++) {
            int part = p, from = (int) ((long) n * p / parts), to = (int) ((long) n * (p + 1) / parts);
            futures[p - 1] = pool.submit(() -> body.run(part, from, to));
        }
        body.run(0, 0, (int) ((long) n / parts));
        for (Future<?> f : futures) {
            try {
                f.get();
            } catch (java.util.concurrent.ExecutionException e) {
                throw e.getCause() instanceof RuntimeException r ? r : new IllegalStateException(e.getCause());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted in a CPU kernel", e);
            }
        }
    }

    @Override public void close() { if (pool != null) pool.shutdownNow(); }
}
