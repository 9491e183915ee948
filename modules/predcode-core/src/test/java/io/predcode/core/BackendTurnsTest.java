package io.predcode.core;

import io.predcode.spi.Tensor;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Memory is taken and given back in the caller's turn on a backend that is not thread-safe (CUDA's pool and stream are
 * shared): a tensor allocated or freed on one thread while another thread's turn runs ops (a service predicting while
 * its trainer makes a model or an optimizer's state, or while a Predictor makes a version) waits for that turn to end.
 * A thread-safe backend never waits.
 */
class BackendTurnsTest {
    @TestFactory List<DynamicTest> allocatingAndFreeingWaitForAnotherThreadsTurn() {
        return PaperResultsTest.onEveryBackend("allocation takes the turn", be -> {
            Tensor kept = be.allocate(16);
            // Threads of its own: the common pool may have one, which the first waiting task would hold.
            ExecutorService threads = Executors.newFixedThreadPool(2);
            CompletableFuture<Tensor> allocating;
            CompletableFuture<Void> freeing;
            be.beginTurn(); // this thread's turn: as a prediction running ops
            try {
                allocating = CompletableFuture.supplyAsync(() -> be.allocate(32), threads);
                freeing = CompletableFuture.runAsync(kept::close, threads);
                if (!be.isThreadSafe()) {
                    assertThrows(TimeoutException.class, () -> allocating.get(300, TimeUnit.MILLISECONDS), "an allocation during another thread's turn must wait for it");
                    assertThrows(TimeoutException.class, () -> freeing.get(100, TimeUnit.MILLISECONDS), "and so must a tensor freed meanwhile");
                }
            } finally {
                be.endTurn();
            }
            try {
                allocating.get(30, TimeUnit.SECONDS).close();
                freeing.get(30, TimeUnit.SECONDS);
            } catch (Exception e) {
                throw new AssertionError(e);
            } finally {
                threads.shutdown();
            }
            assertTrue(kept.isClosed());
        });
    }
}
