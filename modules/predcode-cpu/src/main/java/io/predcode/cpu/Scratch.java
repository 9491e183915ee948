package io.predcode.cpu;

/**
 * Per-thread staging arrays, grown when too small and then kept, so that an op's Java-side buffers are
 * allocated once per thread rather than once per call (a training step calls each op many times). An op
 * uses them only while it runs, and never from inside another op on the same thread; its parts on the
 * backend's workers use the workers' own.
 */
final class Scratch {
    private static final ThreadLocal<Scratch> MINE = ThreadLocal.withInitial(Scratch::new);

    private final float[][] floats = {new float[0], new float[0]};
    private double[] doubles = new double[0];

    /** This thread's float array number {@code slot} (0 or 1), at least {@code n} long; its contents are stale. */
    static float[] floats(int slot, int n) {
        Scratch s = MINE.get();
        float[] a = s.floats[slot];
        return a.length >= n ? a : (s.floats[slot] = new float[n]);
    }

    /** This thread's double array, at least {@code n} long, its first n zero. */
    static double[] zeroDoubles(int n) {
        Scratch s = MINE.get();
        if (s.doubles.length < n) s.doubles = new double[n];
        else java.util.Arrays.fill(s.doubles, 0, n, 0.0);
        return s.doubles;
    }
}
