package io.predcode.cpu;

import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;

import static org.junit.jupiter.api.Assertions.*;

/** The backend's own threads: every part and branch runs once, failures reach the caller, several callers share them, nothing deadlocks. */
class ParallelTest {
    private static final Duration LIMIT = Duration.ofSeconds(60);

    @Test void everyItemOnceInItsPart() {
        for (int threads : new int[]{1, 2, 3, 5})
            for (boolean invariant : new boolean[]{false, true})
            try (Parallel par = new Parallel(threads, invariant)) {
                for (int n : new int[]{1, 2, 7, 64, 1000, 4099})
                    for (int min : new int[]{1, 3, 100})
                        for (int most : new int[]{1, 2, 7, 64}) {
                            AtomicIntegerArray seen = new AtomicIntegerArray(n);
                            int parts = par.parts(n, min, most), byWork = Math.max(1, Math.min(most, n / min));
                            assertEquals(invariant ? byWork : Math.min(threads, byWork), parts, invariant ? "the parts come from the work alone" : "up to one part a thread");
                            AtomicIntegerArray partSeen = new AtomicIntegerArray(parts);
                            par.forParts(n, min, most, (part, from, to) -> {
                                assertEquals((int) ((long) n * part / parts), from, "part " + part + "'s start");
                                assertEquals((int) ((long) n * (part + 1) / parts), to, "part " + part + "'s end");
                                partSeen.incrementAndGet(part);
                                for (int i = from; i < to; i++) seen.incrementAndGet(i);
                            });
                            for (int p = 0; p < parts; p++) assertEquals(1, partSeen.get(p), threads + " threads, n " + n + ": part " + p);
                            for (int i = 0; i < n; i++) assertEquals(1, seen.get(i), threads + " threads, n " + n + ", min " + min + ": item " + i);
                        }
                for (int n : new int[]{1, 7, 1000}) { // forRange: at most one part per thread
                    AtomicIntegerArray seen = new AtomicIntegerArray(n);
                    AtomicInteger ranges = new AtomicInteger();
                    par.forRange(n, 1, (from, to) -> {
                        ranges.incrementAndGet();
                        for (int i = from; i < to; i++) seen.incrementAndGet(i);
                    });
                    assertEquals(Math.min(threads, n), ranges.get(), threads + " threads, n " + n);
                    for (int i = 0; i < n; i++) assertEquals(1, seen.get(i), threads + " threads, n " + n + ": item " + i);
                }
            }
    }

    /** On a thread-invariant pool, parts inside a branch run in order on the branch's thread, the same parts as outside. */
    @Test void invariantPartsInsideABranchAreTheSameParts() {
        try (Parallel par = new Parallel(2, true)) {
            int[][] seen = new int[2][];
            Runnable[] branches = new Runnable[2];
            for (int b = 0; b < 2; b++) {
                int branch = b;
                branches[b] = () -> {
                    Thread mine = Thread.currentThread();
                    int[] starts = new int[5];
                    par.forParts(100, 20, 5, (part, from, to) -> {
                        assertSame(mine, Thread.currentThread(), "a part inside a branch runs on the branch's thread");
                        starts[part] = from + 1;
                    });
                    seen[branch] = starts;
                };
            }
            par.branches(branches, true);
            int[] outside = new int[5];
            par.forParts(100, 20, 5, (part, from, to) -> outside[part] = from + 1);
            assertArrayEquals(new int[]{1, 21, 41, 61, 81}, outside);
            assertArrayEquals(outside, seen[0]);
            assertArrayEquals(outside, seen[1]);
        }
    }

    /**
     * The threads reuse one job object from hand-off to hand-off: a worker still looking at the last job, whose part
     * count was smaller, must claim nothing of the next before it is published, nor any part twice. Jobs of 2 and 3
     * parts alternate, back to back, each counting the runs of its parts.
     */
    @Test void backToBackJobsRunEachPartOnce() {
        for (int threads : new int[]{2, 3})
            try (Parallel par = new Parallel(threads)) {
                AtomicIntegerArray runs = new AtomicIntegerArray(3);
                for (int job = 0; job < 200_000; job++) {
                    int parts = Math.min(threads, 2 + job % 2);
                    par.forParts(parts, 1, parts, (part, from, to) -> runs.incrementAndGet(part));
                    for (int p = 0; p < 3; p++)
                        assertEquals(p < parts ? 1 : 0, runs.getAndSet(p, 0), threads + " threads, job " + job + " of " + parts + " parts: runs of part " + p);
                }
            }
    }

    @Test void aFailingPartReachesTheCallerAndTheThreadsCarryOn() {
        try (Parallel par = new Parallel(2)) {
            for (int failing = 0; failing < 2; failing++) { // the caller's part or a worker's: whichever claims it
                int bad = failing;
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> par.forParts(100, 10, 2, (part, from, to) -> { if (part == bad) throw new IllegalArgumentException("part " + part); }));
                assertEquals("part " + bad, e.getMessage());
            }
            AtomicInteger sum = new AtomicInteger();
            par.forRange(100, 10, (from, to) -> sum.addAndGet(to - from));
            assertEquals(100, sum.get());
        }
    }

    @Test void branchesRunOnceEachAndTheirOpsStayOnTheirThread() {
        try (Parallel par = new Parallel(2)) {
            for (int count : new int[]{1, 2, 3, 8}) {
                AtomicIntegerArray ran = new AtomicIntegerArray(count);
                Runnable[] branches = new Runnable[count];
                for (int i = 0; i < count; i++) {
                    int b = i;
                    branches[i] = () -> {
                        ran.incrementAndGet(b);
                        if (count > 1) assertEquals(1, par.parts(1 << 20, 1), "an op inside a branch splits no further");
                        par.branches(new Runnable[]{() -> {}, () -> {}}, true); // nested: runs in order on this thread
                    };
                }
                par.branches(branches, true);
                for (int i = 0; i < count; i++) assertEquals(1, ran.get(i), count + " branches: branch " + i);
            }
            assertEquals(2, par.parts(1 << 20, 1), "outside a branch ops split again");
        }
    }

    /** Two branches that each wait for the other finish only if they run at once. */
    @Test void branchesRunAtOnce() {
        try (Parallel par = new Parallel(2)) {
            assertTimeoutPreemptively(LIMIT, () -> {
                for (int round = 0; round < 50; round++) {
                    meet(par, 20, "the other branch never ran beside this one");
                    if (round % 10 == 0) Thread.sleep(5); // long enough for the worker to park: it must be woken
                }
            });
        }
    }

    /**
     * A job handed over before a new worker's thread has begun to run is still the worker's to take: a worker that
     * took the job it found at its start for one it had seen left the caller with the whole job (two branches that
     * wait for each other then never met).
     */
    @Test void aJobHandedOverAtOnceReachesTheNewWorker() {
        assertTimeoutPreemptively(LIMIT, () -> {
            for (int round = 0; round < 100; round++)
                try (Parallel par = new Parallel(2)) {
                    meet(par, 5, "the new worker never took the other branch");
                }
        });
    }

    /** Two branches on {@code par} that each wait up to {@code seconds} for the other: they finish only if they run at once. */
    private static void meet(Parallel par, int seconds, String never) {
        CountDownLatch both = new CountDownLatch(2);
        Runnable meet = () -> {
            both.countDown();
            try {
                assertTrue(both.await(seconds, TimeUnit.SECONDS), never);
            } catch (InterruptedException e) {
                throw new IllegalStateException(e);
            }
        };
        par.branches(new Runnable[]{meet, meet}, true);
    }

    @Test void severalCallersShareTheThreads() throws Exception {
        try (Parallel par = new Parallel(2)) {
            int callers = 4, rounds = 2_000;
            AtomicInteger wrong = new AtomicInteger();
            Thread[] ts = new Thread[callers];
            for (int c = 0; c < callers; c++) {
                int seed = c;
                ts[c] = Thread.ofPlatform().start(() -> {
                    for (int k = 0; k < rounds; k++) {
                        int n = 50 + (k * 31 + seed) % 500;
                        AtomicInteger sum = new AtomicInteger();
                        if (k % 3 == 0) {
                            AtomicInteger a = new AtomicInteger(), b = new AtomicInteger();
                            par.branches(new Runnable[]{() -> a.set(n), () -> b.set(2 * n)}, true);
                            sum.set(a.get() + b.get() - 2 * n);
                        } else par.forRange(n, 7, (from, to) -> sum.addAndGet(to - from));
                        if (sum.get() != n) wrong.incrementAndGet();
                    }
                });
            }
            assertTimeoutPreemptively(LIMIT, () -> { for (Thread t : ts) t.join(); });
            assertEquals(0, wrong.get(), "wrong results among " + callers * rounds + " calls");
        }
    }

    /**
     * On a machine with more threads than the jobs have parts, the workers the jobs do not need park
     * rather than keep a core each busy looking for work: over 300 ms of back-to-back 2-part jobs on 8
     * threads, sampled every millisecond, the five least busy workers are runnable in under a tenth of the
     * samples (3-6%; with the idle clock reset by every job a worker saw, as at first, 15-41%).
     */
    @Test void workersTheJobsDoNotNeedPark() throws Exception {
        try (Parallel par = new Parallel(8)) {
            int workers = par.workers().size();
            int[] runnable = new int[workers];
            AtomicInteger samples = new AtomicInteger();
            java.util.concurrent.atomic.AtomicBoolean running = new java.util.concurrent.atomic.AtomicBoolean(true);
            Thread sampler = Thread.ofPlatform().start(() -> {
                while (running.get()) {
                    for (int i = 0; i < workers; i++) if (par.workers().get(i).getState() == Thread.State.RUNNABLE) runnable[i]++;
                    samples.incrementAndGet();
                    java.util.concurrent.locks.LockSupport.parkNanos(1_000_000);
                }
            });
            long until = System.nanoTime() + 300_000_000L;
            AtomicInteger sum = new AtomicInteger();
            while (System.nanoTime() < until)
                par.forRange(64, 32, (from, to) -> { // two parts of ~20 us of work each
                    long end = System.nanoTime() + 20_000;
                    while (System.nanoTime() < end) Thread.onSpinWait();
                    sum.addAndGet(to - from);
                });
            running.set(false);
            sampler.join();
            assertEquals(0, sum.get() % 64);
            int[] sorted = runnable.clone();
            java.util.Arrays.sort(sorted);
            int leastFive = 0;
            for (int i = 0; i < 5; i++) leastFive += sorted[i];
            assertTrue(leastFive < samples.get() / 2, "the 5 least busy of " + workers + " workers were runnable in " + leastFive
                    + " of " + 5 * samples.get() + " samples: " + java.util.Arrays.toString(runnable));
        }
    }

    @Test void closeStopsTheWorkers() throws Exception {
        Parallel par = new Parallel(3);
        par.forRange(10, 1, (from, to) -> {});
        assertEquals(2, par.workers().size());
        par.close();
        for (Thread t : par.workers()) {
            t.join(10_000);
            assertFalse(t.isAlive(), t.getName() + " still runs after close");
        }
    }
}
