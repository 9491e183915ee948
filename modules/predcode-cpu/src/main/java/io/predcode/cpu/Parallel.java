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

    private final int threads;
    private final ExecutorService pool;

    Parallel(int threads) {
        this.threads = Math.max(1, threads);
        this.pool = this.threads > 1
                ? Executors.newFixedThreadPool(this.threads - 1, r -> Thread.ofPlatform().daemon().name("predcode-cpu-kernel").unstarted(r))
                : null;
    }

    int threads() { return threads; }

    /** Runs body over [0, n) in up to {@code threads} contiguous parts; the caller takes the first. */
    void forRange(int n, int minItems, Range body) {
        int parts = Math.min(threads, Math.max(1, n / Math.max(1, minItems)));
        if (parts <= 1 || pool == null) { body.run(0, n); return; }
        @SuppressWarnings("unchecked") Future<?>[] futures = new Future<?>[parts - 1];
        for (int p = 1; p < parts; p++) {
            int from = (int) ((long) n * p / parts), to = (int) ((long) n * (p + 1) / parts);
            futures[p - 1] = pool.submit(() -> body.run(from, to));
        }
        body.run(0, (int) ((long) n / parts));
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
