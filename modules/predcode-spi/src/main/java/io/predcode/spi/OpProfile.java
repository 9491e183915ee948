package io.predcode.spi;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Where a step's host time goes, op by op: attached to a backend with {@link Backend#profile}, it
 * charges the time from one op's start to the next op's start (or to {@link #stop}) to the first op.
 * On the CPU backend ops are synchronous, so that is the op's wall time; on an asynchronous backend
 * (CUDA) it is the time to launch. One thread at a time, like the backend.
 */
public final class OpProfile {
    /** Total nanoseconds and calls of one op. */
    public static final class Entry {
        long nanos, calls;

        Entry() {}

        /** Nanoseconds charged to the op. */
        public long nanos() { return nanos; }

        /** How many times the op ran. */
        public long calls() { return calls; }
    }

    private final Map<String, Entry> entries = new LinkedHashMap<>();
    private String current;
    private long since;

    /** An empty profile, to attach to a backend with {@link Backend#profile}. */
    public OpProfile() {}

    void enter(String op) {
        long now = System.nanoTime();
        charge(now);
        current = op;
        since = now;
    }

    /** Ends the current op's interval (call it at the end of each step, before any host-side work). */
    public void stop() {
        charge(System.nanoTime());
        current = null;
    }

    private void charge(long now) {
        if (current == null) return;
        Entry e = entries.computeIfAbsent(current, k -> new Entry());
        e.nanos += now - since;
        e.calls++;
    }

    /** Per op, in order of first use. */
    public Map<String, Entry> entries() { return java.util.Collections.unmodifiableMap(entries); }

    /** Nanoseconds charged to all ops. */
    public long totalNanos() { return entries.values().stream().mapToLong(Entry::nanos).sum(); }
}
