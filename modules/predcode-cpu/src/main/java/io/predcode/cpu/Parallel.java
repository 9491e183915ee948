package io.predcode.cpu;

import java.util.concurrent.atomic.AtomicInteger;
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

    /** The latest job; a new object each time, so a worker tells jobs apart by identity. */
    private volatile Job current;

    /**
     * One hand-off: its parts are claimed one by one by whichever thread comes first, the caller
     * included, so a worker the OS has taken off its core delays nothing it has not claimed.
     */
    private static final class Job {
        final Part body;
        final int parts, items;
        final AtomicInteger next = new AtomicInteger(), done = new AtomicInteger();
        final AtomicReference<Throwable> failure = new AtomicReference<>();

        Job(Part body, int parts, int items) {
            this.body = body;
            this.parts = parts;
            this.items = items;
        }

        /** Runs parts until none is left to claim; returns how many it ran. */
        int work() {
            int ran = 0;
            for (int p; (p = next.getAndIncrement()) < parts; ran++) {
                try {
                    body.run(p, (int) ((long) items * p / parts), (int) ((long) items * (p + 1) / parts));
                } catch (Throwable t) {
                    failure.compareAndSet(null, t);
                }
                done.incrementAndGet();
            }
            return ran;
        }

        /** Throws the first failure of a part, if any. */
        void rethrow() {
            Throwable t = failure.get();
            if (t instanceof RuntimeException r) throw r;
            if (t instanceof Error e) throw e;
            if (t != null) throw new IllegalStateException(t);
        }
    }

    Parallel(int threads) {
        this.threads = Math.max(1, threads);
        workers = new Worker[this.threads - 1];
        for (int i = 0; i < workers.length; i++) {
            workers[i] = new Worker(i);
            workers[i].start();
        }
    }

    int threads() { return threads; }

    /** The worker threads (for tests: they end after {@link #close}). */
    java.util.List<Thread> workers() { return java.util.List.of(workers); }

    /** How many parts {@link #forParts} splits n items into (1 inside a branch). */
    int parts(int n, int minItems) {
        return workers.length == 0 || ALONE.get()[0] ? 1 : Math.min(threads, Math.max(1, n / Math.max(1, minItems)));
    }

    /** Runs body over [0, n) in up to {@code threads} contiguous parts, the calling thread working on them too. */
    void forRange(int n, int minItems, Range body) {
        if (parts(n, minItems) <= 1) { body.run(0, n); return; } // the common small case: no wrapper object
        forParts(n, minItems, (part, from, to) -> body.run(from, to));
    }

    /**
     * As {@link #forRange}, telling each part its index: part p covers [n p / parts, n (p + 1) / parts).
     * When the workers are busy with another caller's job, all parts run here, in order.
     */
    void forParts(int n, int minItems, Part body) {
        int parts = parts(n, minItems);
        if (parts <= 1) { body.run(0, 0, n); return; }
        if (!busy.tryLock()) { // the same parts, all on this thread
            Job job = new Job(body, parts, n);
            job.work();
            job.rethrow();
            return;
        }
        try {
            run(body, parts, n);
        } finally {
            busy.unlock();
        }
    }

    /**
     * Runs independent {@code branches} on the threads, each branch's ops on one thread alone, the
     * branches taken in order by whichever thread is free (Backend.branches hands them over the longest first). Runs them here, in
     * order, each alone on this thread, when {@code together} is false, inside another branch or while
     * the workers serve another caller: each op computes the same either way.
     */
    void branches(Runnable[] branches, boolean together) {
        if (branches.length == 1) { branches[0].run(); return; }
        if (!together || workers.length == 0 || ALONE.get()[0] || !busy.tryLock()) {
            alone(() -> { for (Runnable b : branches) b.run(); });
            return;
        }
        try {
            run((part, from, to) -> branches[part].run(), branches.length, branches.length);
        } finally {
            busy.unlock();
        }
    }

    /** Runs body with this thread's ops kept on this thread. */
    private static void alone(Runnable body) {
        boolean[] flag = ALONE.get();
        boolean outer = flag[0];
        flag[0] = true;
        try {
            body.run();
        } finally {
            flag[0] = outer;
        }
    }

    /** Offers the parts to the workers, works on them here too, waits for the last; holds {@link #busy}. */
    private void run(Part body, int parts, int n) {
        Job job = new Job(body, parts, n);
        current = job; // the volatile write that publishes the job
        for (int w = 0; w < Math.min(parts - 1, workers.length); w++) workers[w].wake();
        alone(job::work);
        // Spin, then yield: a worker the OS took off its core mid-part (a busy machine, a JIT or GC thread) gets it back sooner.
        for (int spins = 0; job.done.get() < parts; spins++) {
            if (spins < 2_000) Thread.onSpinWait();
            else Thread.yield();
        }
        current = null;
        job.rethrow();
    }

    private final class Worker extends Thread {
        /** The job this worker last saw, so it runs each job once. */
        private Job last;
        /** This worker's place among the workers: a job of more than index + 1 parts wakes it. */
        private final int index;
        private volatile boolean parked;

        Worker(int index) {
            super("predcode-cpu-kernel-" + (index + 1));
            this.index = index;
            setDaemon(true);
        }

        void wake() { if (parked) LockSupport.unpark(this); }

        @Override public void run() {
            ALONE.get()[0] = true; // everything a worker runs is a part of a job
            long idleSince = System.nanoTime();
            while (!closed) {
                Job j = current;
                if (j == null || j == last) {
                    long idle = System.nanoTime() - idleSince;
                    if (idle < SPIN_NANOS / 10) {
                        Thread.onSpinWait();
                    } else if (idle < SPIN_NANOS) {
                        Thread.yield(); // still at hand, but the core goes to a runnable thread (a data loader) if there is one
                    } else {
                        parked = true; // then re-read the job: the caller writes the job, then reads this flag
                        Job again = current;
                        if (again == null || again == last) LockSupport.parkNanos(this, 50_000_000L);
                        parked = false;
                        idleSince = System.nanoTime();
                    }
                    continue;
                }
                last = j;
                // Idle counts from the last job that had a part for this worker (worker i is the (i + 2)-th thread a job
                // of that many parts uses) or that it ran a part of: on a machine with more threads than the jobs have
                // parts, the workers the jobs do not need park and stay parked, while the ones they need stay at hand
                // even through jobs the caller happened to finish alone.
                if (j.work() > 0 || index < j.parts - 1) idleSince = System.nanoTime();
            }
        }
    }

    @Override public void close() {
        closed = true;
        for (Worker w : workers) LockSupport.unpark(w);
    }
}
