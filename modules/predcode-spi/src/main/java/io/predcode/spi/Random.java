package io.predcode.spi;

/**
 * The counter-based generator every backend uses for {@link Backend#randomUniform}: element i of a
 * fill with seed s is a SplitMix64 hash of (s, i), so a CPU and a GPU fill agree bit for bit and
 * filling is trivially parallel.
 */
public final class Random {
    private Random() {}

    /** SplitMix64's finalizer: a 64-bit hash. */
    public static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /** Uniform in [0, 1) with 24 random bits, for element {@code index} of a fill seeded by {@code seed}. */
    public static float unit(long seed, long index) {
        long z = mix(seed * 0x9E3779B97F4A7C15L + index + 0x632BE59BD9B4E019L);
        return (z >>> 40) * 0x1.0p-24f;
    }

    /** Uniform in [lo, hi) for element {@code index} of a fill seeded by {@code seed}. */
    public static float uniform(long seed, long index, float lo, float hi) {
        float u = lo + (hi - lo) * unit(seed, index);
        return u < hi ? u : Math.nextDown(hi);
    }
}
