package io.predcode.core.pc;

import io.predcode.spi.Backend;

import java.util.Arrays;
import java.util.function.IntConsumer;
import java.util.function.IntToDoubleFunction;

/**
 * The engine's sets of independent branches ({@link Backend#branches}): one body per block, plus small
 * branches beside them. The arrays and the branch objects are kept and reused, so that a step's many
 * rounds of branches (a few per sweep) allocate nothing of their own. A round started from inside
 * another (not something the engine does today) gets fresh objects.
 */
final class BranchSets {
    /** Runs body(index) as a branch. */
    private static final class Branch implements Runnable {
        private IntConsumer body;
        private int index;

        @Override public void run() { body.accept(index); }
    }

    /** Body i of a round runs as bodies[i]. */
    private Branch[] bodies = new Branch[0];
    /** The arrays handed to the backend, one pair per number of branches. */
    private Runnable[][] sets = new Runnable[0][];
    private double[][] shares = new double[0][];
    private boolean running;

    /**
     * Runs body(i) for i in [from, to) and the {@code beside} runnables as branches, with work scale * work(i) for
     * the bodies and 0 for those beside.
     */
    void run(Backend be, int from, int to, IntToDoubleFunction work, double scale, IntConsumer body, Runnable[] beside) {
        int count = to - from, n = count + beside.length;
        boolean reuse = !running;
        if (reuse) keep(count, n);
        Runnable[] set = reuse ? sets[n] : new Runnable[n];
        double[] share = reuse ? shares[n] : new double[n];
        for (int i = 0; i < count; i++) {
            Branch branch = reuse ? bodies[i] : new Branch();
            branch.body = body;
            branch.index = from + i;
            set[i] = branch;
            share[i] = work.applyAsDouble(from + i) * scale;
        }
        for (int i = 0; i < beside.length; i++) {
            set[count + i] = beside[i];
            share[count + i] = 0;
        }
        mostWorkFirst(share, set);
        running = true;
        try {
            be.branches(share, set);
        } finally {
            running = !reuse;
            if (reuse) { // hold no round's objects between rounds
                Arrays.fill(set, null);
                for (int i = 0; i < count; i++) bodies[i].body = null;
            }
        }
    }

    /**
     * Orders the branches by their work, the most first, equal work in the given order (the beside branches, of no
     * weight, after the bodies), as {@link Backend#branches} would: sorted here, in the kept arrays, the backend
     * sorts nothing and allocates nothing for it.
     */
    private static void mostWorkFirst(double[] share, Runnable[] set) {
        for (int i = 1; i < share.length; i++) {
            double w = share[i];
            Runnable r = set[i];
            int j = i - 1;
            for (; j >= 0 && share[j] < w; j--) {
                share[j + 1] = share[j];
                set[j + 1] = set[j];
            }
            share[j + 1] = w;
            set[j + 1] = r;
        }
    }

    /** Makes sure there are {@code count} kept bodies and a kept pair of arrays for n branches. */
    private void keep(int count, int n) {
        if (bodies.length < count) {
            int had = bodies.length;
            bodies = Arrays.copyOf(bodies, count);
            for (int i = had; i < count; i++) bodies[i] = new Branch();
        }
        if (sets.length <= n) {
            sets = Arrays.copyOf(sets, n + 1);
            shares = Arrays.copyOf(shares, n + 1);
        }
        if (sets[n] == null) {
            sets[n] = new Runnable[n];
            shares[n] = new double[n];
        }
    }
}
