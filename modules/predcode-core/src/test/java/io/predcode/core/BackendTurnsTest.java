package io.predcode.core;

import io.predcode.core.nn.Loss;
import io.predcode.core.nn.Model;
import io.predcode.core.optim.Adam;
import io.predcode.core.pc.Algorithm;
import io.predcode.core.pc.InferenceResult;
import io.predcode.core.pc.PcEngine;
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

    /**
     * The library's objects take the turn for what they do on the device outside an engine call: an optimizer's step,
     * state and restore, a result's download. Each waits for another thread's turn; an op issued without a turn beside
     * one is refused, naming the fix, where it would have shared the stream and staging buffer with that turn's ops (an
     * optimizer's state saved beside a Predictor's threads gave them answers of no model).
     */
    @TestFactory List<DynamicTest> libraryCallsWaitForAnotherThreadsTurnAndBareOpsAreRefused() {
        return PaperResultsTest.onEveryBackend("library calls take the turn", be -> {
            ExecutorService threads = Executors.newFixedThreadPool(1);
            float[] x = PaperResultsTest.randomInput(new java.util.SplittableRandom(3), 4 * 35), y = {0, 1, 2, 3};
            try (Model m = Model.create(ServingTest.MLP, be, 1); PcEngine engine = new PcEngine(m, Loss.CROSS_ENTROPY); Adam adam = new Adam(m, 0.01f)) {
                InferenceResult r = engine.infer(x, y, 4, Algorithm.FIXED_PRED, 0.1f, 3);
                Tensor bare = be.allocate(8);
                List<Runnable> calls = List.of(adam::step, adam::state, () -> adam.loadState(adam.state(), "test"), () -> r.download(r.error(1)), r::layerEnergies);
                for (Runnable call : calls) {
                    CompletableFuture<Void> waiting;
                    be.beginTurn();
                    try {
                        waiting = CompletableFuture.runAsync(call, threads);
                        if (!be.isThreadSafe()) {
                            assertThrows(TimeoutException.class, () -> waiting.get(200, TimeUnit.MILLISECONDS), "a library call during another thread's turn waits for it");
                            var refused = assertThrows(java.util.concurrent.ExecutionException.class,
                                    () -> CompletableFuture.runAsync(() -> be.fill(bare, 1f), Executors.newVirtualThreadPerTaskExecutor()).get(30, TimeUnit.SECONDS));
                            assertTrue(refused.getCause() instanceof IllegalStateException && refused.getCause().getMessage().contains("while another thread has its turn"),
                                    String.valueOf(refused.getCause()));
                        }
                    } finally {
                        be.endTurn();
                    }
                    waiting.get(30, TimeUnit.SECONDS);
                }
                bare.close();
            } catch (Exception e) {
                throw new AssertionError(e);
            } finally {
                threads.shutdown();
            }
        });
    }
}
