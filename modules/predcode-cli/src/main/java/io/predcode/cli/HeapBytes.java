package io.predcode.cli;

import java.lang.management.ManagementFactory;

/**
 * Bytes the JVM has allocated on its heap, summed over the threads alive when this was made (the caller's
 * and a backend's own threads, once they have started): the garbage a training step leaves. Reading it
 * allocates nothing. Where the JVM cannot count allocations per thread, it reads 0.
 */
final class HeapBytes {
    private final com.sun.management.ThreadMXBean threads;
    private final long[] ids;

    HeapBytes() {
        threads = counted() ? (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean() : null;
        ids = threads == null ? new long[0] : threads.getAllThreadIds();
    }

    /** Whether this JVM counts each thread's allocations (HotSpot does, where the jdk.management module is present). */
    static boolean counted() {
        try {
            return ManagementFactory.getThreadMXBean() instanceof com.sun.management.ThreadMXBean sun
                    && sun.isThreadAllocatedMemorySupported() && sun.isThreadAllocatedMemoryEnabled();
        } catch (LinkageError e) { // a runtime linked without jdk.management
            return false;
        }
    }

    /** The bytes allocated so far by the threads (one that has ended counts as nothing from then on). */
    long allocated() {
        long sum = 0;
        for (long id : ids) sum += Math.max(0, threads.getThreadAllocatedBytes(id));
        return sum;
    }
}
