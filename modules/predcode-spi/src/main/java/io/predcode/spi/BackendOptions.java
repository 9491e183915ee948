package io.predcode.spi;

/**
 * How to open a backend.
 *
 * @param threads CPU threads for the backend's own work (0 = all cores)
 * @param device  GPU ordinal for device backends
 */
public record BackendOptions(int threads, int device) {
    /** Checks that both numbers are >= 0. */
    public BackendOptions {
        if (threads < 0) throw new IllegalArgumentException("threads must be >= 0 (0 = all cores), got " + threads);
        if (device < 0) throw new IllegalArgumentException("device must be >= 0, got " + device);
    }

    /** All cores, device 0. */
    public static BackendOptions defaults() { return new BackendOptions(0, 0); }
}
