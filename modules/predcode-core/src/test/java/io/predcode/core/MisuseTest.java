package io.predcode.core;

import io.predcode.core.internal.Guard;
import io.predcode.core.nn.Loss;
import io.predcode.core.nn.Model;
import io.predcode.core.pc.PcEngine;
import io.predcode.core.serve.Predictor;
import io.predcode.spi.Backend;
import io.predcode.spi.Backends;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.*;

/** Misuse is loud: a second thread on a single-user object throws, and close never races with a call. */
class MisuseTest {
    @Test void aSecondThreadGetsAClearErrorAndCloseWaitsForTheRunningCall() throws Exception {
        AtomicInteger released = new AtomicInteger();
        Guard g = new Guard("Thing@1", released::incrementAndGet);
        CountDownLatch inside = new CountDownLatch(1), leave = new CountDownLatch(1);
        Thread holder = Thread.ofPlatform().name("holder").start(() -> {
            g.enter();
            try {
                g.enter(); // re-entry by the holder is fine
                g.exit();
                inside.countDown();
                leave.await();
            } catch (InterruptedException e) {
                throw new AssertionError(e);
            } finally {
                g.exit();
            }
        });
        inside.await();
        IllegalStateException e = assertThrows(IllegalStateException.class, g::enter);
        assertTrue(e.getMessage().contains("Thing@1") && e.getMessage().contains("in use by thread 'holder'"), e.getMessage());
        g.close();
        g.close(); // idempotent
        assertEquals(0, released.get(), "released while a call was running");
        leave.countDown();
        holder.join();
        assertEquals(1, released.get(), "released once, as the running call left");
        IllegalStateException closed = assertThrows(IllegalStateException.class, g::enter);
        assertTrue(closed.getMessage().contains("Thing@1 is closed"), closed.getMessage());
    }

    @Test void closeFromInsideACallReleasesWhenTheCallReturns() {
        AtomicInteger released = new AtomicInteger();
        Guard g = new Guard("Thing@2", released::incrementAndGet);
        g.enter();
        g.close();
        assertEquals(0, released.get());
        g.exit();
        assertEquals(1, released.get());
    }

    /** Two threads on one engine: every call either answers or says the engine is in use; nothing else. */
    @Test void anEngineSharedByTwoThreadsThrowsInsteadOfMixingTheirWork() throws Exception {
        try (Backend be = Backends.open("cpu"); Model m = Model.create(ServingTest.MLP, be, 1); PcEngine e = new PcEngine(m, Loss.CROSS_ENTROPY)) {
            SplittableRandom r = new SplittableRandom(1);
            float[] a = PaperResultsTest.randomInput(r, 64 * e.inputSize()), b = PaperResultsTest.randomInput(r, 3 * e.inputSize());
            float[] expectA = e.predict(a, 64), expectB = e.predict(b, 3);
            AtomicInteger refused = new AtomicInteger();
            AtomicReference<Throwable> other = new AtomicReference<>();
            Runnable loop = () -> {
                boolean big = Thread.currentThread().getName().endsWith("a");
                // At least 3000 calls each, and on until the two have collided once (a busy machine
                // may run the threads one after the other for a while), within a bound.
                long deadline = System.nanoTime() + 30_000_000_000L;
                for (int i = 0; i < 3000 || refused.get() == 0 && System.nanoTime() < deadline; i++) {
                    try {
                        float[] got = big ? e.predict(a, 64) : e.predict(b, 3);
                        assertArrayEquals(big ? expectA : expectB, got, "an answer that is not this thread's own");
                    } catch (IllegalStateException ex) {
                        if (!ex.getMessage().contains("is in use by thread")) other.compareAndSet(null, ex);
                        refused.incrementAndGet();
                    } catch (Throwable t) {
                        other.compareAndSet(null, t);
                    }
                }
            };
            Thread ta = Thread.ofPlatform().name("user-a").start(loop), tb = Thread.ofPlatform().name("user-b").start(loop);
            ta.join();
            tb.join();
            if (other.get() != null) throw new AssertionError("a call failed otherwise", other.get());
            assertTrue(refused.get() > 0, "no call overlapped: the test proved nothing");
        }
    }

    /** A thread that makes {@code call} up to 1000 times, stopping at "closed"; any other failure goes to {@code other}. */
    private static Thread untilClosed(CountDownLatch running, AtomicReference<Throwable> other, Runnable call) {
        return Thread.ofPlatform().start(() -> {
            running.countDown();
            for (int i = 0; i < 1000; i++) {
                try {
                    call.run();
                } catch (IllegalStateException ex) {
                    if (!ex.getMessage().contains("closed")) other.compareAndSet(null, ex);
                    return;
                } catch (Throwable t) {
                    other.compareAndSet(null, t);
                    return;
                }
            }
        });
    }

    /** A close racing with calls: the calls that started finish or say "closed"; nothing else fails, and everything is freed. */
    @Test void closeRacingWithUseNeverFailsAndFreesEverything() throws Exception {
        try (Backend be = Backends.open("cpu")) {
            for (int trial = 0; trial < 200; trial++) {
                Model m = Model.create(ServingTest.MLP, be, 1);
                PcEngine e = new PcEngine(m, Loss.CROSS_ENTROPY);
                Predictor p = Predictor.of(m);
                float[] x = new float[8 * e.inputSize()], x3 = new float[3 * e.inputSize()];
                AtomicReference<Throwable> other = new AtomicReference<>();
                CountDownLatch running = new CountDownLatch(2);
                Thread user = untilClosed(running, other, () -> {
                    e.predict(x, 8);
                    p.logits(x, 8);
                });
                Thread user2 = untilClosed(running, other, () -> p.logits(x3, 3));
                running.await();
                if (trial % 2 == 0) Thread.onSpinWait(); else Thread.sleep(0, 1000 * (trial % 7));
                p.close();
                e.close();
                m.close();
                user.join();
                user2.join();
                if (other.get() != null) throw new AssertionError("trial " + trial + ": a call failed otherwise than 'closed'", other.get());
                assertTrue(m.guard().isClosed());
                assertTrue(m.parameters().values().iterator().next().value().isClosed(), "trial " + trial + ": parameters not freed");
            }
        }
    }

    /** An optimizer of another model would step that model's parameters while the engine's stayed as they were: refused when the trainer is made. */
    @Test void aTrainerRefusesAnOptimizerOfAnotherModel() {
        try (Backend be = Backends.open("cpu"); Model m = Model.create(ServingTest.MLP, be, 1); Model other = Model.create(ServingTest.MLP, be, 1);
             PcEngine e = new PcEngine(m, Loss.CROSS_ENTROPY); io.predcode.core.optim.Adam mine = new io.predcode.core.optim.Adam(m, 0.01f);
             io.predcode.core.optim.Sgd theirs = new io.predcode.core.optim.Sgd(other, 0.1f, 0f, 0f)) {
            for (io.predcode.core.pc.Algorithm a : io.predcode.core.pc.Algorithm.values()) {
                IllegalArgumentException x = assertThrows(IllegalArgumentException.class, () -> new io.predcode.core.pc.Trainer(e, theirs, a, 0.1f, 5), a.id());
                assertTrue(x.getMessage().contains("another model than the engine's"), x.getMessage());
                assertSame(e, new io.predcode.core.pc.Trainer(e, mine, a, 0.1f, 5).engine(), "its own model's optimizer is taken");
            }
        }
    }
}
