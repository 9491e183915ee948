package io.predcode.cuda;

import io.predcode.spi.Backend;
import io.predcode.spi.Backends;
import io.predcode.spi.Tensor;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Branches on streams of their own ({@link CudaBackend#doBranches}), on the host simulator: a CUDA
 * graph captured across streams must be forked and joined back as the driver requires, and the
 * branches must not share what one stream's ops keep between kernels (the reductions' partial sums).
 * The simulator runs a graph's independent nodes in the order a test sets: as recorded, the latest
 * first, or interleaved, so branches that shared a buffer would get each other's values.
 */
class StreamBranchesTest {
    private static MethodHandle schedule, depth, nodes, inject, clear;

    @BeforeEach void simulatorOnly() {
        String driver = System.getProperty(CudaBackendProvider.DRIVER_PROPERTY, "");
        boolean simulated = Backends.provider("cuda").availability().available() && driver.contains("cudasim");
        if (!simulated) System.out.println("SKIPPED stream branch tests: the cuda driver in use is not predcode's simulator (" + driver + ")");
        Assumptions.assumeTrue(simulated, "not the simulator");
        if (schedule == null) {
            SymbolLookup lib = SymbolLookup.libraryLookup(Path.of(driver), Arena.global());
            Linker linker = Linker.nativeLinker();
            schedule = linker.downcallHandle(lib.find("cusimSetSchedule").orElseThrow(), FunctionDescriptor.ofVoid(JAVA_INT));
            depth = linker.downcallHandle(lib.find("cusimLastGraphDepth").orElseThrow(), FunctionDescriptor.of(JAVA_LONG));
            nodes = linker.downcallHandle(lib.find("cusimLastGraphNodes").orElseThrow(), FunctionDescriptor.of(JAVA_LONG));
            inject = linker.downcallHandle(lib.find("cusimInjectFailure").orElseThrow(), FunctionDescriptor.ofVoid(ADDRESS, JAVA_INT, JAVA_INT));
            clear = linker.downcallHandle(lib.find("cusimClearFailures").orElseThrow(), FunctionDescriptor.ofVoid());
        }
    }

    @AfterEach void recordedOrderAndNoFailures() throws Throwable {
        if (schedule != null) schedule.invokeExact(0);
        if (clear != null) clear.invokeExact();
    }

    /**
     * Three branches, each a reduction of its own tensor through its own lane's partial sums and count of blocks
     * done: right in every order the graph may run them, and the captured graph's longest chain is one branch long.
     */
    @Test void branchesWithReductionsComeOutRightInEveryOrder() throws Throwable {
        // 50000 floats: several blocks, the last of which adds the partial sums; 5000: one block. A fill and one kernel a branch.
        for (int n : new int[]{50_000, 5000})
            for (int order = 0; order < 3; order++) {
                schedule.invokeExact(order);
                try (Backend be = Backends.open("cuda")) {
                    assertTrue(be.runsBranchesAtOnce(), be.description());
                    Tensor[] x = new Tensor[3];
                    Tensor sums = be.allocate(3);
                    for (int i = 0; i < 3; i++) x[i] = be.allocate(n);
                    Runnable step = () -> be.branches(new double[]{n, n, n},
                            () -> { be.fill(x[0], 1f); be.sumSquares(x[0], 1f, sums, 0); },
                            () -> { be.fill(x[1], 2f); be.sumSquares(x[1], 1f, sums, 1); },
                            () -> { be.fill(x[2], 3f); be.sumSquares(x[2], 1f, sums, 2); });
                    for (int run = 0; run < 3; run++) { // plain, captured and launched, launched
                        be.fill(sums, -1f);
                        be.replayable("sums", step);
                        float[] got = new float[3];
                        be.download(sums, 0, got, 0, 3);
                        assertArrayEquals(new float[]{n, 4f * n, 9f * n}, got, "n " + n + ", order " + order + ", run " + run);
                    }
                    assertEquals(1, ((CudaBackend) be).graphs().captures());
                    long all = (long) nodes.invokeExact(), chain = (long) depth.invokeExact();
                    assertEquals(6, all, "three branches of a fill and a sum, " + (n > Kernels.ONE_BLOCK ? "several blocks" : "one block"));
                    assertEquals(2, chain, "the branches run side by side: one branch on the longest chain");
                }
            }
    }

    /**
     * Branches inside branches (a layer's input and parameter gradients inside a block's branch) fork onto lanes
     * of their own: right in every order, and the graph's longest chain is one inner branch long. Had the second
     * block's inner branches taken the first's lanes, its ops would have waited for the first's there.
     */
    @Test void branchesInsideBranchesForkOntoLanesNoSiblingUses() throws Throwable {
        int n = 5000; // one block: a fill and a one-pass sum, 2 nodes a branch
        for (int order = 0; order < 3; order++) {
            schedule.invokeExact(order);
            try (Backend be = Backends.open("cuda")) {
                Tensor[] x = new Tensor[4];
                Tensor sums = be.allocate(4);
                for (int i = 0; i < 4; i++) x[i] = be.allocate(n);
                Runnable[] sum = new Runnable[4];
                for (int i = 0; i < 4; i++) {
                    int j = i;
                    sum[i] = () -> { be.fill(x[j], j + 1f); be.sumSquares(x[j], 1f, sums, j); };
                }
                Runnable step = () -> be.branches(new double[]{2, 2},
                        () -> be.branches(new double[]{1, 1}, sum[0], sum[1]),
                        () -> be.branches(new double[]{1, 1}, sum[2], sum[3]));
                for (int run = 0; run < 3; run++) { // plain, captured and launched, launched
                    be.fill(sums, -1f);
                    be.replayable("nested", step);
                    float[] got = new float[4];
                    be.download(sums, 0, got, 0, 4);
                    assertArrayEquals(new float[]{n, 4f * n, 9f * n, 16f * n}, got, "order " + order + ", run " + run);
                }
                assertEquals(8, (long) nodes.invokeExact(), "four branches of a fill and a one-pass sum");
                assertEquals(2, (long) depth.invokeExact(), "all four side by side: one inner branch on the longest chain");
                assertEquals(4, ((CudaBackend) be).lanes(), "a lane for each inner branch, the outer ones' first among them");
                // An outer branch's later inner branches take its joined-back lanes again: no more lanes.
                Runnable twice = () -> be.branches(new double[]{2, 2},
                        () -> { be.branches(new double[]{1, 1}, sum[0], sum[1]); be.branches(new double[]{1, 1}, sum[1], sum[0]); },
                        () -> be.branches(new double[]{1, 1}, sum[2], sum[3]));
                for (int run = 0; run < 2; run++) be.replayable("nested twice", twice); // plain, then captured and launched
                assertEquals(4, ((CudaBackend) be).lanes());
                assertEquals(4, (long) depth.invokeExact(), "the first branch's two forks one after another, each a fill and a sum long");
            }
        }
    }

    /** A branch that throws still has its stream joined back: the capture ends, and the backend works on. */
    @Test void aFailingBranchLeavesTheBackendWorking() {
        try (Backend be = Backends.open("cuda"); Tensor t = be.allocate(10); Tensor u = be.allocate(10)) {
            Runnable step = () -> be.branches(new double[]{1, 1},
                    () -> be.fill(t, 1f),
                    () -> { be.fill(u, 2f); throw new IllegalStateException("branch 2 failed"); });
            for (int run = 0; run < 3; run++) {
                IllegalStateException e = assertThrows(IllegalStateException.class, () -> be.replayable("failing", step));
                assertEquals("branch 2 failed", e.getMessage());
            }
            be.fill(t, 5f);
            be.synchronize();
            assertEquals(5f, be.readScalar(t, 9));
            assertEquals(2f, be.readScalar(u, 9));
        }
    }

    /** Where the device cannot make a stream for a branch, the branches share the streams there are: the step goes on. */
    @Test void aBranchStreamTheDeviceRefusesIsDoneWithout() throws Throwable {
        try (Backend be = Backends.open("cuda"); Tensor t = be.allocate(10); Tensor u = be.allocate(10)) {
            try (Arena a = Arena.ofConfined()) {
                inject.invokeExact(a.allocateFrom("cuStreamCreate"), 0, 2 /* CUDA_ERROR_OUT_OF_MEMORY */);
            }
            be.branches(new double[]{1, 1}, () -> be.fill(t, 1f), () -> be.fill(u, 2f));
            assertEquals(1f, be.readScalar(t, 9));
            assertEquals(2f, be.readScalar(u, 9));
        }
    }

    /** The driver's rules for a capture across streams, as the simulator enforces them. */
    @Test void aForkedStreamMustBeJoinedBackBeforeTheCaptureEnds() {
        try (Backend be = Backends.open("cuda"); Tensor t = be.allocate(64)) {
            be.synchronize(); // makes the context current on this thread
            CudaDriver d = ((CudaBackend) be).driver();
            long s0 = d.createStream(), s1 = d.createStream(), fork = d.createEvent(), join = d.createEvent();
            try {
                long p = ((CudaTensor) t).ptr;
                // Forked, never joined: the capture cannot end, and both streams run work again afterwards.
                d.beginCapture(s0);
                d.record(fork, s0);
                d.waitFor(s1, fork);
                d.memsetD32(p, 7, 64, s1);
                CudaException e = assertThrows(CudaException.class, () -> d.endCapture(s0));
                assertTrue(e.getMessage().contains("CUDA_ERROR_STREAM_CAPTURE_UNJOINED"), e.getMessage());
                d.memsetD32(p, 1, 64, s1);
                d.synchronize(s1);
                d.synchronize(s0);
                // Forked and joined: one graph of the work on both streams.
                d.beginCapture(s0);
                d.record(fork, s0);
                d.waitFor(s1, fork);
                d.memsetD32(p, 0x40000000 /* 2f */, 64, s1);
                d.record(join, s1);
                d.waitFor(s0, join);
                long exec = d.endCapture(s0);
                d.launchGraph(exec, s0);
                d.destroyGraph(exec);
                d.synchronize(s0);
                assertEquals(2f, be.readScalar(t, 63));
                // A capturing stream may not wait on work outside its capture.
                d.record(fork, s1);
                d.beginCapture(s0);
                CudaException isolated = assertThrows(CudaException.class, () -> d.waitFor(s0, fork));
                assertTrue(isolated.getMessage().contains("CUDA_ERROR_STREAM_CAPTURE_ISOLATION"), isolated.getMessage());
                assertThrows(CudaException.class, () -> d.endCapture(s0), "the capture was invalidated");
                // Nor on an event recorded in a capture that has ended, though a new capture on the same stream has
                // begun (the simulator numbers captures, so one whose graph took a freed graph's address is not the
                // old one; this test does not force that reuse).
                d.beginCapture(s0);
                d.record(fork, s0);
                d.waitFor(s1, fork);
                d.record(join, s1);
                d.waitFor(s0, join);
                d.destroyGraph(d.endCapture(s0));
                d.beginCapture(s0);
                CudaException stale = assertThrows(CudaException.class, () -> d.waitFor(s0, fork));
                assertTrue(stale.getMessage().contains("CUDA_ERROR_STREAM_CAPTURE_ISOLATION"), stale.getMessage());
                assertThrows(CudaException.class, () -> d.endCapture(s0), "the capture was invalidated");
            } finally {
                d.destroyEvent(join);
                d.destroyEvent(fork);
                d.destroyStream(s1);
                d.destroyStream(s0);
            }
        }
    }
}
