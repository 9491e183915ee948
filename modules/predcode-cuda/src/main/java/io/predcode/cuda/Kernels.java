package io.predcode.cuda;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.HashMap;
import java.util.Map;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * predcode's kernels (native/cuda/predcode.cu), compiled by the build into a fatbin resource and
 * loaded with cuModuleLoadData. Launches reuse one argument block: launches are issued from one
 * thread per backend, and cuLaunchKernel copies the arguments before it returns.
 */
final class Kernels {
    static final String RESOURCE = "/io/predcode/cuda/predcode.fatbin";
    static final int BLOCK = 256, MAX_GRID = 65535;
    private static final int SLOTS = 24;

    private final CudaDriver driver;
    private final long module, stream;
    private final Map<String, Long> functions = new HashMap<>();
    /** Shared, not confined: a service calls the backend from any of its threads (one at a time). */
    private final Arena arena = Arena.ofShared();
    private final MemorySegment values = arena.allocate(8L * SLOTS, 8), pointers = arena.allocate(ADDRESS, SLOTS);
    private int count;

    /** The fatbin bytes from the jar, or null when the build had no nvcc. */
    static byte[] image() {
        try (InputStream in = Kernels.class.getResourceAsStream(RESOURCE)) {
            return in == null ? null : in.readAllBytes();
        } catch (IOException e) {
            return null;
        }
    }

    Kernels(CudaDriver driver, byte[] image, long stream) {
        this.driver = driver;
        this.stream = stream;
        MemorySegment img = arena.allocate(image.length + 1L, 16);
        MemorySegment.copy(image, 0, img, java.lang.foreign.ValueLayout.JAVA_BYTE, 0, image.length);
        this.module = driver.loadModule(img);
        for (int i = 0; i < SLOTS; i++) pointers.setAtIndex(ADDRESS, i, values.asSlice(8L * i, 8));
    }

    /** Starts an argument list; the kernel's name comes with the launch. */
    Kernels start() { count = 0; return this; }

    Kernels i(int v) { values.set(JAVA_INT, 8L * count++, v); return this; }

    Kernels l(long v) { values.set(JAVA_LONG, 8L * count++, v); return this; }

    Kernels f(float v) { values.set(JAVA_FLOAT, 8L * count++, v); return this; }

    /** A device pointer (0 for a null tensor). */
    Kernels p(long devicePointer) { return l(devicePointer); }

    /** Launches over {@code work} items with grid-stride loops. */
    void launch(String name, long work) {
        int grid = (int) Math.max(1, Math.min(MAX_GRID, (work + BLOCK - 1) / BLOCK));
        driver.launch(function(name), grid, BLOCK, stream, pointers, name);
    }

    /** Launches {@code grid} blocks (reductions: one block, or one per channel). */
    void launchBlocks(String name, int grid) { driver.launch(function(name), grid, BLOCK, stream, pointers, name); }

    private long function(String name) { return functions.computeIfAbsent(name, n -> driver.function(module, n)); }

    void close() { arena.close(); }
}
