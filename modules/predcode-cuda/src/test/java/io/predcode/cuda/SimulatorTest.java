package io.predcode.cuda;

import io.predcode.spi.Backend;
import io.predcode.spi.Backends;
import io.predcode.spi.Conv2dGeometry;
import io.predcode.spi.Tensor;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static org.junit.jupiter.api.Assertions.*;

/**
 * The failure paths of the CUDA backend, on the host simulator with injected faults: what a GPU
 * does rarely (out of memory, a failed graph launch, a kernel trap) is made to happen here. Skipped,
 * with the reason, where the driver in use is not the simulator.
 */
class SimulatorTest {
    private static MethodHandle inject, clear, bytesInUse, synchronizations;

    @BeforeEach void simulatorOnly() {
        String driver = System.getProperty(CudaBackendProvider.DRIVER_PROPERTY, "");
        boolean simulated = Backends.provider("cuda").availability().available() && driver.contains("cudasim");
        if (!simulated) System.out.println("SKIPPED simulator fault tests: the cuda driver in use is not predcode's simulator (" + driver + ")");
        Assumptions.assumeTrue(simulated, "not the simulator");
        if (inject == null) {
            SymbolLookup lib = SymbolLookup.libraryLookup(Path.of(driver), Arena.global());
            Linker linker = Linker.nativeLinker();
            inject = linker.downcallHandle(lib.find("cusimInjectFailure").orElseThrow(), FunctionDescriptor.ofVoid(ADDRESS, JAVA_INT, JAVA_INT));
            clear = linker.downcallHandle(lib.find("cusimClearFailures").orElseThrow(), FunctionDescriptor.ofVoid());
            bytesInUse = linker.downcallHandle(lib.find("cusimBytesInUse").orElseThrow(), FunctionDescriptor.of(java.lang.foreign.ValueLayout.JAVA_LONG));
            synchronizations = linker.downcallHandle(lib.find("cusimSynchronizations").orElseThrow(), FunctionDescriptor.of(java.lang.foreign.ValueLayout.JAVA_LONG));
        }
    }

    @AfterEach void clearInjections() throws Throwable {
        if (clear != null) clear.invokeExact();
    }

    /** Makes the named driver or cuBLAS call fail once with {@code status}, after {@code skip} successes. */
    static void inject(String call, int skip, int status) {
        try (Arena a = Arena.ofConfined()) {
            inject.invokeExact(a.allocateFrom(call), skip, status);
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /**
     * A step's uploads (batch, targets, the optimizer's scalars) take places of their own in the staging buffer, so
     * the host does not wait for one copy before issuing the next: the step's download is its one wait. Copies that
     * outgrow the buffer grow it, and every value arrives.
     */
    @Test void aStepsUploadsDoNotWaitForOneAnother() throws Throwable {
        try (Backend be = Backends.open("cuda"); Tensor x = be.allocate(100_000); Tensor y = be.allocate(1000); Tensor s = be.allocate(3);
             Tensor big = be.allocate(600_000)) {
            float[] xs = new float[100_000], ys = new float[1000], big1 = new float[600_000];
            for (int i = 0; i < xs.length; i++) xs[i] = i;
            for (int i = 0; i < ys.length; i++) ys[i] = -i;
            for (int i = 0; i < big1.length; i++) big1[i] = i % 1000;
            be.synchronize();
            for (int step = 0; step < 3; step++) {
                long before = (long) synchronizations.invokeExact();
                be.upload(xs, 0, x, 0, xs.length);
                be.upload(ys, 0, y, 0, ys.length);
                be.upload(new float[]{1, 2, 3}, 0, s, 0, 3);
                be.add(1f, s, 1f, s, s);
                assertArrayEquals(new float[]{2, 4, 6}, be.download(s));
                assertEquals(1, (long) synchronizations.invokeExact() - before, "step " + step + ": the download is the one wait");
            }
            // 2.4 MB and 0.4 MB in one step: more than the buffer held; it grows, the copies stay right.
            be.upload(big1, 0, big, 0, big1.length);
            be.upload(xs, 0, x, 0, xs.length);
            assertEquals(999f, be.readScalar(big, 599_999));
            assertArrayEquals(xs, be.download(x));
            long before = (long) synchronizations.invokeExact();
            be.upload(big1, 0, big, 0, big1.length);
            be.upload(xs, 0, x, 0, xs.length);
            assertEquals(xs[99_999], be.readScalar(x, 99_999));
            assertEquals(1, (long) synchronizations.invokeExact() - before, "the grown buffer holds both");
        }
    }

    /**
     * Where the device has no page-locked memory for a larger staging buffer, the old one stays: copies that fit it go
     * on (waiting for one another), a copy larger than it fails with the driver's error, and the backend works on.
     */
    @Test void aStagingBufferThatCannotGrowKeepsTheOldOne() {
        try (Backend be = Backends.open("cuda"); Tensor x = be.allocate(200_000); Tensor big = be.allocate(1_000_000)) {
            float[] xs = new float[200_000];
            for (int i = 0; i < xs.length; i++) xs[i] = i;
            inject("cuMemAllocHost", 0, 2 /* CUDA_ERROR_OUT_OF_MEMORY */);
            for (int k = 0; k < 3; k++) be.upload(xs, 0, x, 0, xs.length); // 0.8 MB each: the second would grow the 1 MiB buffer
            assertArrayEquals(xs, be.download(x));
            inject("cuMemAllocHost", 0, 2);
            CudaException e = assertThrows(CudaException.class, () -> be.upload(new float[1_000_000], big));
            assertTrue(e.getMessage().contains("cuMemAllocHost"), e.getMessage());
            be.upload(xs, 0, x, 0, xs.length);
            assertEquals(199_999f, be.readScalar(x, 199_999));
        }
    }

    @Test void outOfDeviceMemoryIsOneClearErrorAndTheBackendGoesOn() {
        try (Backend be = Backends.open("cuda")) {
            inject("cuMemAlloc", 0, 2 /* CUDA_ERROR_OUT_OF_MEMORY */);
            CudaException e = assertThrows(CudaException.class, () -> be.allocate(1000));
            assertTrue(e.getMessage().contains("cuMemAlloc") && e.getMessage().contains("CUDA_ERROR_OUT_OF_MEMORY"), e.getMessage());
            try (Tensor t = be.allocate(1000)) {
                be.fill(t, 2f);
                assertEquals(2f, be.readScalar(t, 999));
            }
        }
    }

    /** A backend whose start fails part way gives back what it took: no device memory, stream or context is left behind. */
    @Test void aFailedStartLeaksNothing() throws Throwable {
        long before = (long) bytesInUse.invokeExact();
        for (String call : new String[]{"cuModuleLoadData", "cuMemAllocHost", "cublasCreate_v2"}) {
            inject(call, 0, 2 /* CUDA_ERROR_OUT_OF_MEMORY */);
            RuntimeException e = assertThrows(RuntimeException.class, () -> Backends.provider("cuda").open(io.predcode.spi.BackendOptions.defaults()));
            assertTrue(e.getMessage() != null && !e.getMessage().isBlank(), call + ": " + e);
            assertEquals(before, (long) bytesInUse.invokeExact(), "device memory left behind by a start that failed at " + call);
        }
        try (Backend be = Backends.open("cuda"); Tensor t = be.allocate(4)) {
            be.fill(t, 1f);
            assertEquals(1f, be.readScalar(t, 3), "a later start works");
        }
    }

    @Test void memoryAvailableIsTheDevicesFreeMemory() {
        try (Backend be = Backends.open("cuda")) {
            long before = be.memoryAvailable();
            try (Tensor _ = be.allocate(1 << 20)) {
                assertEquals(before - (4L << 20), be.memoryAvailable(), "a 4 MiB tensor is 4 MiB less free device memory");
            }
        }
    }

    /** A graph launch that fails loses no step: the graph is dropped and its ops run one by one, now and later. */
    @Test void aFailedGraphLaunchRunsTheOpsInstead() {
        try (Backend be = Backends.open("cuda"); Tensor x = be.allocate(300); Tensor y = be.allocate(300)) {
            GraphCache graphs = ((CudaBackend) be).graphs();
            Assumptions.assumeTrue(graphs != null, "graphs are off");
            be.fill(x, 1f);
            Runnable step = () -> be.axpby(1f, x, 1f, y); // y += x
            be.replayable("step", step); // plain
            be.replayable("step", step); // captured and launched
            inject("cuGraphLaunch", 0, 2);
            be.replayable("step", step); // the launch fails: run plainly
            be.replayable("step", step); // plain from now on
            assertEquals(4f, be.readScalar(y, 299), "every one of the four steps ran once");
            assertEquals(1, graphs.failures());
            assertEquals(1, graphs.launches());
        }
    }

    /** Graphs hold raw device pointers: growing the conv scratch frees the old one, so graphs that use it must be recaptured. */
    @Test void graphsAreRecapturedWhenTheConvScratchMoves() {
        Conv2dGeometry g = new Conv2dGeometry(2, 5, 5, 3, 3, 1, 1, 1, 1);
        try (Backend be = Backends.open("cuda"); Tensor w = be.allocate(4, 2, 3, 3); Tensor x = be.allocate(1, 2, 5, 5); Tensor y = be.allocate(1, 4, 5, 5);
             Tensor big = be.allocate(8, 2, 5, 5); Tensor bigY = be.allocate(8, 4, 5, 5)) {
            be.randomUniform(w, -1f, 1f, 1);
            be.randomUniform(x, -1f, 1f, 2);
            Runnable conv = () -> be.conv2d(x, w, g, y);
            be.replayable("conv", conv);
            be.replayable("conv", conv); // captured with the current scratch
            float[] expected = be.download(y);
            be.conv2d(big, w, g, bigY); // needs more scratch: the old buffer is freed
            be.fill(y, 0f);
            be.replayable("conv", conv); // a stale graph would read freed memory (the simulator refuses it)
            assertArrayEquals(expected, be.download(y));
        }
    }

    /** A kernel given an argument it does not accept traps; the context is then broken, as on a GPU, until it is released. */
    @Test void aKernelTrapFailsTheLaunchAndBreaksTheContextUntilReleased() {
        Backend be = Backends.open("cuda");
        Tensor x = be.allocate(10);
        CudaException e = assertThrows(CudaException.class, () -> {
            ((CudaBackend) be).kernels().activation(99, 0f, 10, ((CudaTensor) x).ptr, ((CudaTensor) x).ptr);
            be.synchronize();
        });
        assertTrue(e.getMessage().contains("CUDA_ERROR_LAUNCH_FAILED") && e.getMessage().contains("trap"), e.getMessage());
        assertThrows(CudaException.class, () -> be.fill(x, 1f), "a broken context fails every later call");
        assertThrows(CudaException.class, be::close, "closing reports the fault, and still releases the context");
        try (Backend fresh = Backends.open("cuda"); Tensor t = fresh.allocate(3)) {
            fresh.fill(t, 5f);
            assertEquals(5f, fresh.readScalar(t, 2), "a new context after the release works");
        }
    }
}
