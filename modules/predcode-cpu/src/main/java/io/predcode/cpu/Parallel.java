package io.predcode.cpu;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The backend's threads: splits a kernel's outer loop (rows, images, planes) across them, and runs
 * independent branches of ops at once ({@link #branches}).
 *
 * <p>Why not an executor: a training step hands work over every 20-200 us, and an executor's hand-off
 * (queue, park, unpark, future) costs tens of microseconds on a small VM, as much as the work it hands
 * over (a 128^3 GEMM split in two took longer than whole). These workers are the backend's own
 * threads, each at hand for a while after its last job (spinning, then yielding) before it parks, so a
 * hand-off during a step is a volatile write and a read.
 *
 * <p>One job at a time: a caller that finds the workers busy (another thread's job) runs its own
 * work alone on its thread, so no caller ever waits for another's. Inside a branch every op runs on
 * its own thread alone (the branches already fill the threads).
 */
final class Parallel implements AutoCloseable {
    interface Range { void run(int from, int to); }

    /** A range that also knows which of the parts it is (for per-part partial results). */
    interface Part { void run(int part, int from, int to); }

    /**
     * How long an idle worker stays at hand before it parks: longer than the gaps between a step's ops,
     * short enough not to hold a core between steps. It spins for the first tenth, then yields its
     * core to any other runnable thread between looks (3 epochs of PCX's MLP on 2 threads, with the
     * batch loader sharing the cores: 0.67-0.69 s a BP epoch yielding, 0.81-0.95 s spinning throughout).
     */
    private static final long SPIN_NANOS = 200_000;

    /** True on a thread running a part of a job or a branch: its ops then take no other thread. */
    private static final ThreadLocal<boolean[]> ALONE = ThreadLocal.withInitial(() -> new boolean[1]);

    private final int threads;
    private final Worker[] workers;
    private final ReentrantLock busy = new ReentrantLock();
    private volatile boolean closed;

    /**
     * The one job, reused for every hand-off so that a hand-off allocates nothing: one job at a time
     * runs ({@link #busy}), and its claim counter carries the job's generation, so a worker still
     * looking at a finished job claims nothing of the next.
     */
    private final Job job = new Job();

    /**
     * One hand-off: its parts are claimed one by one by whichever thread comes first, the caller
     * included, so a worker the OS has taken off its core delays nothing it has not claimed.
     */
    private static final class Job {
        /** What a part runs: exactly one of them is set. Written before the job is published, read after a claim. */
        private Range range;
        private Part part;
        private Runnable[] branches;
        private int parts, items;

        /**
         * The claim counter: the generation (high 32 bits), the job's part count (16 bits) and the next unclaimed part
         * (low 16 bits). A claim is a compare-and-set that succeeds only for a part of the current generation below
         * that generation's own part count, read from the same word: a worker still looking at the last job claims
         * nothing of it once its parts are taken, even while the next job's fields are being written, and nothing
         * of the next job before it is published. A generation cannot end, nor its fields change, until every part
         * it handed out is done.
         */
        private final AtomicLong next = new AtomicLong();
        private final AtomicInteger done = new AtomicInteger();
        private final AtomicReference<Throwable> failure = new AtomicReference<>();

        /** The most parts a job has: its count and its next part share the counter's low 32 bits. */
        static final int MAX_PARTS = 0xFFFF;

        /** Publishes generation {@code gen}; the caller holds busy, and the previous generation is done. */
        void publish(int gen, Range range, Part part, Runnable[] branches, int parts, int items) {
            if (parts > MAX_PARTS) throw new IllegalArgumentException(parts + " parts: at most " + MAX_PARTS);
            this.range = range;
            this.part = part;
            this.branches = branches;
            this.parts = parts;
            this.items = items;
            failure.set(null);
            done.set(0);
            next.set((long) gen << 32 | (long) parts << 16); // the volatile write that publishes the fields above
        }

        /** The generation last published. */
        int generation() { return (int) (next.get() >>> 32); }

        /** Runs parts of generation {@code gen} until none is left to claim; returns how many it ran. */
        int work(int gen) {
            int ran = 0;
            for (long v; (int) ((v = next.get()) >>> 32) == gen && (int) (v & MAX_PARTS) < (int) (v >>> 16 & MAX_PARTS); ) {
                if (!next.compareAndSet(v, v + 1)) continue;
                int p = (int) (v & MAX_PARTS);
                try {
                    runPart(range, part, branches, p, (int) ((long) items * p / parts), (int) ((long) items * (p + 1) / parts));
                } catch (Throwable t) {
                    failure.compareAndSet(null, t);
                }
                done.incrementAndGet();
                ran++;
            }
            return ran;
        }

        /** Whether every part of the current generation is done. */
        boolean finished() { return done.get() >= parts; }

        /** Lets go of the caller's objects once the job is done, and throws the first failure of a part, if any. */
        void end() {
            range = null;
            part = null;
            branches = null;
            rethrow(failure.getAndSet(null));
        }
    }

    private static void runPart(Range range, Part part, Runnable[] branches, int p, int from, int to) {
        if (range != null) range.run(from, to);
        else if (part != null) part.run(p, from, to);
        else branches[p].run();
    }

    private static void rethrow(Throwable t) {
        if (t instanceof RuntimeException r) throw r;
        if (t instanceof Error e) throw e;
        if (t != null) throw new IllegalStateException(t);
    }

    /** The generation of the next job (wraps; only equality matters). */
    private int generation;

    /** Whether splits whose results depend on where their parts begin take parts from the work alone (see {@link #parts(int, int, int)}). */
    private final boolean threadInvariant;

    Parallel(int threads) { this(threads, false); }

    Parallel(int threads, boolean threadInvariant) {
        this.threads = Math.max(1, threads);
        this.threadInvariant = threadInvariant;
        workers = new Worker[this.threads - 1];
        for (int i = 0; i < workers.length; i++) {
            workers[i] = new Worker(i);
            workers[i].start();
        }
    }

    int threads() { return threads; }

    /** The worker threads (for tests: they end after {@link #close}). */
    java.util.List<Thread> workers() { return java.util.List.of(workers); }

    /**
     * How many parts {@link #forRange} splits n items into: one per thread at the most (1 inside a branch; never more
     * than a job holds). For work whose every item computes the same however it is split (elementwise ops).
     */
    int parts(int n, int minItems) {
        return workers.length == 0 || ALONE.get()[0] ? 1 : Math.min(Math.min(threads, Job.MAX_PARTS), Math.max(1, n / Math.max(1, minItems)));
    }

    /** Runs body over [0, n) in up to {@code threads} contiguous parts, the calling thread working on them too. */
    void forRange(int n, int minItems, Range body) {
        int parts = parts(n, minItems);
        if (parts <= 1) body.run(0, n);
        else split(body, null, parts, n);
    }

    /** Whether {@link #forParts} splits by the work alone, never the thread count (BackendOptions.threadInvariant). */
    boolean threadInvariant() { return threadInvariant; }

    /**
     * How many parts {@link #forParts} splits n items into: n / minItems, at least 1 and at most {@code maxParts}, and
     * at most one per thread (1 inside a branch) unless the pool is {@link #threadInvariant}. For work whose results
     * depend on where its parts begin (a GEMM's slices, per-part partial sums): with parts from the work alone, it
     * gives the same bits on any number of threads, inside a branch or not.
     */
    int parts(int n, int minItems, int maxParts) {
        int byWork = Math.max(1, Math.min(Math.min(maxParts, Job.MAX_PARTS), n / Math.max(1, minItems)));
        if (threadInvariant) return byWork;
        return workers.length == 0 || ALONE.get()[0] ? 1 : Math.min(threads, byWork);
    }

    /**
     * Runs body over [0, n) in {@link #parts(int, int, int)} parts, part p covering [n p / parts, n (p + 1) / parts),
     * telling each part its index: on the threads, or all here, in order, where there is one thread, inside a branch
     * or while the workers serve another caller.
     */
    void forParts(int n, int minItems, int maxParts, Part body) {
        int parts = parts(n, minItems, maxParts);
        if (parts <= 1) body.run(0, 0, n);
        else if (workers.length == 0 || ALONE.get()[0]) inOrder(null, body, parts, n);
        else split(null, body, parts, n);
    }

    /**
     * Runs independent {@code branches} on the threads, each branch's ops on one thread alone, the
     * branches taken in order by whichever thread is free (Backend.branches hands them over the longest first). Runs them here, in
     * order, each alone on this thread, when {@code together} is false, inside another branch or while
     * the workers serve another caller: each op computes the same either way.
     */
    void branches(Runnable[] branches, boolean together) {
        if (branches.length == 1) { branches[0].run(); return; }
        if (together && workers.length > 0 && branches.length <= Job.MAX_PARTS && !ALONE.get()[0] && busy.tryLock()) {
            try {
                handOff(null, null, branches, branches.length, branches.length);
            } finally {
                busy.unlock();
            }
            return;
        }
        boolean outer = enterAlone();
        try {
            for (Runnable b : branches) b.run();
        } finally {
            ALONE.get()[0] = outer;
        }
    }

    /** Keeps this thread's ops on this thread until the flag is set back to what this returns. */
    private static boolean enterAlone() {
        boolean[] alone = ALONE.get();
        boolean outer = alone[0];
        alone[0] = true;
        return outer;
    }

    /** Runs a range or parts in {@code parts} parts: on the workers too, or all here, in order, when another caller holds them. */
    private void split(Range range, Part part, int parts, int n) {
        if (!busy.tryLock()) {
            inOrder(range, part, parts, n);
            return;
        }
        try {
            handOff(range, part, null, parts, n);
        } finally {
            busy.unlock();
        }
    }

    /** Runs every part here, in order; a failing part does not keep the rest from running, and the first failure is thrown. */
    private static void inOrder(Range range, Part part, int parts, int n) {
        Throwable first = null;
        for (int p = 0; p < parts; p++) {
            try {
                runPart(range, part, null, p, (int) ((long) n * p / parts), (int) ((long) n * (p + 1) / parts));
            } catch (Throwable t) {
                if (first == null) first = t;
            }
        }
        rethrow(first);
    }

    /** Offers the parts to the workers, works on them here too, waits for the last; holds {@link #busy}. */
    private void handOff(Range range, Part part, Runnable[] branches, int parts, int n) {
        int gen = ++generation;
        job.publish(gen, range, part, branches, parts, n);
        for (int w = 0; w < Math.min(parts - 1, workers.length); w++) workers[w].wake();
        boolean outer = enterAlone();
        try {
            job.work(gen);
        } finally {
            ALONE.get()[0] = outer;
        }
        // Spin, then yield: a worker the OS took off its core mid-part (a busy machine, a JIT or GC thread) gets it back sooner.
        for (int spins = 0; !job.finished(); spins++) {
            if (spins < 2_000) Thread.onSpinWait();
            else Thread.yield();
        }
        job.end();
    }

    private final class Worker extends Thread {
        /** The generation of the job this worker last saw, so it runs each job once. */
        private int last;
        /** This worker's place among the workers: a job of more than index + 1 parts wakes it. */
        private final int index;
        private volatile boolean parked;

        Worker(int index) {
            super("predcode-cpu-kernel-" + (index + 1));
            this.index = index;
            // Here, before the thread starts, not in run(): a job published before run() begins is one this worker has
            // not seen, and taking it for seen left the caller with all of it (ParallelTest.aJobHandedOverAtOnceReachesTheNewWorker).
            last = job.generation();
            setDaemon(true);
        }

        void wake() { if (parked) LockSupport.unpark(this); }

        @Override public void run() {
            ALONE.get()[0] = true; // everything a worker runs is a part of a job
            long idleSince = System.nanoTime();
            while (!closed) {
                int gen = job.generation();
                if (gen == last) {
                    long idle = System.nanoTime() - idleSince;
                    if (idle < SPIN_NANOS / 10) {
                        Thread.onSpinWait();
                    } else if (idle < SPIN_NANOS) {
                        Thread.yield(); // still at hand, but the core goes to a runnable thread (a data loader) if there is one
                    } else {
                        parked = true; // then re-read the job: the caller writes the job, then reads this flag
                        if (job.generation() == last) LockSupport.parkNanos(this, 50_000_000L);
                        parked = false;
                        idleSince = System.nanoTime();
                    }
                    continue;
                }
                last = gen;
                // Idle counts from the last job that had a part for this worker (worker i is the (i + 2)-th thread a job
                // of that many parts uses) or that it ran a part of: on a machine with more threads than the jobs have
                // parts, the workers the jobs do not need park and stay parked, while the ones they need stay at hand
                // even through jobs the caller happened to finish alone.
                if (job.work(gen) > 0 || index < job.parts - 1) idleSince = System.nanoTime();
            }
        }
    }

    @Override public void close() {
        closed = true;
        for (Worker w : workers) LockSupport.unpark(w);
    }
}
