package io.predcode.spi;

/**
 * How to open a backend.
 *
 * @param threads         CPU threads for the backend's own work (0 = all cores)
 * @param device          GPU ordinal for device backends
 * @param threadInvariant whether the CPU backend splits its work into parts fixed by the sizes alone, not by the
 *                        thread count, so that every op, and so a whole training run, gives the same bits on any
 *                        number of threads. It costs speed where the parts outnumber the threads: on one thread,
 *                        a step of PCX's MLP took 7% longer. Other backends ignore it.
 */
public record BackendOptions(int threads, int device, boolean threadInvariant) {
    /** Checks that both numbers are >= 0. */
    public BackendOptions {
        if (threads < 0) throw new IllegalArgumentException("threads must be >= 0 (0 = all cores), got " + threads);
        if (device < 0) throw new IllegalArgumentException("device must be >= 0, got " + device);
    }

    /**
     * Splits as the thread count suits, the fastest.
     *
     * @param threads CPU threads for the backend's own work (0 = all cores)
     * @param device  GPU ordinal for device backends
     */
    public BackendOptions(int threads, int device) { this(threads, device, false); }

    /** All cores, device 0. */
    public static BackendOptions defaults() { return new BackendOptions(0, 0); }
}
