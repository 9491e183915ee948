package io.predcode.cuda;

import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The bookkeeping of CUDA graphs for {@link io.predcode.spi.Backend#replayable}: per key, the first
 * call runs the ops plainly (so every buffer and workspace they need exists, and nothing is
 * allocated while capturing), the second records them into a graph and launches it, later calls
 * launch the graph alone. A key whose capture or graph launch fails is run plainly from then on (a
 * failed launch destroys its graph and runs the ops instead, so no step is lost). The least recently
 * used graphs beyond {@code capacity} are destroyed. Kept apart from the driver so it is tested
 * without a GPU.
 */
final class GraphCache implements AutoCloseable {
    /** What the cache asks of the device: capture on the stream, launch and destroy executable graphs. */
    interface Recorder {
        void begin();

        /** Ends the capture and returns an executable graph; throws if the capture failed. */
        long end();

        /** Ends a capture that failed part way, ignoring errors, so the stream is usable again. */
        void abort();

        void launch(long exec);

        void destroy(long exec);
    }

    private static final long SEEN = 0, FAILED = -1;

    private final Recorder recorder;
    private final int capacity;
    /** Per key: SEEN, FAILED, or an executable graph. Access order, for LRU eviction. */
    private final LinkedHashMap<Object, Long> state = new LinkedHashMap<>(16, 0.75f, true);
    private long captures, launches, failures;

    GraphCache(Recorder recorder, int capacity) {
        this.recorder = recorder;
        this.capacity = capacity;
    }

    void run(Object key, Runnable body) {
        Long s = state.get(key);
        if (s == null) {
            put(key, SEEN);
            body.run();
            return;
        }
        if (s == FAILED) {
            body.run();
            return;
        }
        if (s != SEEN) {
            launchOrRun(key, s, body);
            return;
        }
        long exec;
        recorder.begin();
        try {
            body.run();
            exec = recorder.end();
        } catch (RuntimeException e) {
            recorder.abort();
            state.put(key, FAILED);
            body.run(); // as it would have run without graphs (and throws again if the ops themselves are wrong)
            return;
        }
        captures++;
        state.put(key, exec);
        launchOrRun(key, exec, body);
    }

    private void launchOrRun(Object key, long exec, Runnable body) {
        try {
            recorder.launch(exec);
            launches++;
        } catch (RuntimeException e) {
            failures++;
            state.put(key, FAILED);
            try {
                recorder.destroy(exec);
            } catch (RuntimeException ignored) {
                // the graph is forgotten either way
            }
            body.run();
        }
    }

    /** Forgets every graph (their buffers moved); each key is captured again on its next call. */
    void invalidate() {
        for (Map.Entry<Object, Long> e : state.entrySet()) {
            if (e.getValue() > 0) recorder.destroy(e.getValue());
            if (e.getValue() != FAILED) e.setValue(SEEN);
        }
    }

    private void put(Object key, long value) {
        state.put(key, value);
        Iterator<Map.Entry<Object, Long>> it = state.entrySet().iterator();
        while (state.size() > capacity) {
            Map.Entry<Object, Long> oldest = it.next();
            if (oldest.getValue() > 0) recorder.destroy(oldest.getValue());
            it.remove();
        }
    }

    long captures() { return captures; }

    long launches() { return launches; }

    /** Graph launches that failed (their keys run plainly since). */
    long failures() { return failures; }

    @Override public void close() {
        for (long v : state.values()) if (v > 0) recorder.destroy(v);
        state.clear();
    }
}
