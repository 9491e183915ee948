package io.predcode.core.internal;

import io.predcode.spi.Backend;

import java.util.Locale;

/** Refuses an allocation that cannot fit, before it is made, with the numbers (a model, its optimizer state, a workspace). */
public final class Memory {
    private Memory() {}

    /**
     * Throws {@link IllegalArgumentException} when {@code bytes} exceed what {@code backend} says it has left.
     *
     * @param backend where the memory would be allocated
     * @param bytes   how much would be allocated
     * @param what    what needs it, for the message ("model", "the workspace for batch 32")
     */
    public static void require(Backend backend, long bytes, String what) {
        long available = backend.memoryAvailable();
        if (bytes > available)
            throw new IllegalArgumentException(what + " needs " + human(bytes) + "; " + human(available) + " available on backend '" + backend.name() + "'");
    }

    /** Bytes as GB or MB, one decimal. */
    public static String human(long bytes) {
        return bytes >= 1L << 30 ? String.format(Locale.ROOT, "%.1f GB", bytes / (double) (1L << 30)) : String.format(Locale.ROOT, "%.1f MB", bytes / (double) (1L << 20));
    }
}
