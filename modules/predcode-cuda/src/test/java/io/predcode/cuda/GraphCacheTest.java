package io.predcode.cuda;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The graph bookkeeping, against a recorder that logs what the device would be asked to do. */
class GraphCacheTest {
    static final class Log implements GraphCache.Recorder {
        final List<String> calls = new ArrayList<>();
        boolean capturing, failEnd, failLaunch;
        long next = 100;

        @Override public void begin() { calls.add("begin"); capturing = true; }

        @Override public long end() {
            capturing = false;
            if (failEnd) { calls.add("end-failed"); throw new CudaException("cuStreamEndCapture failed: CUDA_ERROR_STREAM_CAPTURE_INVALIDATED", 901); }
            calls.add("end " + next);
            return next++;
        }

        @Override public void abort() { calls.add("abort"); capturing = false; }

        @Override public void launch(long exec) {
            if (failLaunch) { calls.add("launch-failed " + exec); throw new CudaException("cuGraphLaunch failed: CUDA_ERROR_OUT_OF_MEMORY", 2); }
            calls.add("launch " + exec);
        }

        @Override public void destroy(long exec) { calls.add("destroy " + exec); }
    }

    @Test void runsPlainlyThenCapturesThenOnlyLaunches() {
        Log log = new Log();
        GraphCache cache = new GraphCache(log, 4);
        List<String> body = new ArrayList<>();
        Runnable ops = () -> body.add(log.capturing ? "recorded" : "ran");
        for (int step = 0; step < 4; step++) cache.run("step", ops);
        assertEquals(List.of("ran", "recorded"), body, "the ops run once plainly, then once into the capture, then never again");
        assertEquals(List.of("begin", "end 100", "launch 100", "launch 100", "launch 100"), log.calls);
        assertEquals(1, cache.captures());
        assertEquals(3, cache.launches());
    }

    @Test void aFailedCaptureFallsBackToPlainRunsForThatKey() {
        Log log = new Log();
        log.failEnd = true;
        GraphCache cache = new GraphCache(log, 4);
        List<String> body = new ArrayList<>();
        Runnable ops = () -> body.add(log.capturing ? "recorded" : "ran");
        for (int step = 0; step < 4; step++) cache.run("k", ops);
        assertEquals(List.of("ran", "recorded", "ran", "ran", "ran"), body, "after the failure every call runs the ops, the failed one included");
        assertEquals(List.of("begin", "end-failed", "abort"), log.calls, "one attempt, no launch, no second attempt");
    }

    @Test void aFailedGraphLaunchDestroysTheGraphAndRunsTheOpsInstead() {
        Log log = new Log();
        GraphCache cache = new GraphCache(log, 4);
        List<String> body = new ArrayList<>();
        Runnable ops = () -> body.add(log.capturing ? "recorded" : "ran");
        cache.run("k", ops);
        cache.run("k", ops);
        log.failLaunch = true;
        cache.run("k", ops);
        log.failLaunch = false;
        cache.run("k", ops);
        assertEquals(List.of("ran", "recorded", "ran", "ran"), body, "the failed launch's step ran plainly, and so does every later one");
        assertEquals(List.of("begin", "end 100", "launch 100", "launch-failed 100", "destroy 100"), log.calls);
        assertEquals(1, cache.failures());
        cache.close();
        assertEquals(5, log.calls.size(), "the destroyed graph is not destroyed twice");
    }

    @Test void anExceptionInTheBodyWhileCapturingEndsTheCaptureAndSurfacesOnThePlainRun() {
        Log log = new Log();
        GraphCache cache = new GraphCache(log, 4);
        int[] runs = {0};
        Runnable bad = () -> { runs[0]++; if (runs[0] > 1) throw new IllegalArgumentException("linear: shapes do not fit"); };
        cache.run("k", bad);
        assertThrows(IllegalArgumentException.class, () -> cache.run("k", bad));
        assertEquals(List.of("begin", "abort"), log.calls);
    }

    @Test void leastRecentlyUsedGraphsAreDestroyedBeyondCapacity() {
        Log log = new Log();
        GraphCache cache = new GraphCache(log, 2);
        Runnable ops = () -> {};
        for (String k : new String[]{"a", "a", "b", "b"}) cache.run(k, ops); // a -> 100, b -> 101
        cache.run("a", ops);                 // a is now the most recent
        cache.run("c", ops);                 // evicts b
        assertEquals("destroy 101", log.calls.get(log.calls.size() - 1));
        cache.close();
        assertEquals("destroy 100", log.calls.get(log.calls.size() - 1), "close destroys what is left");
    }

    @Test void invalidateDestroysGraphsAndRecapturesOnNextUse() {
        Log log = new Log();
        GraphCache cache = new GraphCache(log, 4);
        List<String> body = new ArrayList<>();
        Runnable ops = () -> body.add(log.capturing ? "recorded" : "ran");
        cache.run("k", ops);
        cache.run("k", ops);
        cache.invalidate();
        cache.run("k", ops);
        cache.run("k", ops);
        assertEquals(List.of("ran", "recorded", "recorded"), body, "after invalidation the next call records again");
        assertEquals(List.of("begin", "end 100", "launch 100", "destroy 100", "begin", "end 101", "launch 101", "launch 101"), log.calls);
    }
}
