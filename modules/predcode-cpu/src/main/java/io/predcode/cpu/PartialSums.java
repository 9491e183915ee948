package io.predcode.cpu;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static io.predcode.cpu.CpuBackend.F;

/**
 * Per-part partial results of a reduction split across threads (the conv weight gradients), in native
 * memory for OpenBLAS to accumulate into. The calling thread owns them, since a pool thread may run two
 * parts of one call, and keeps the buffer between calls. Summed in part order, so the result depends
 * only on the thread count.
 */
final class PartialSums {
    private static final ThreadLocal<MemorySegment[]> BUFFER = ThreadLocal.withInitial(() -> new MemorySegment[]{MemorySegment.NULL});

    private final MemorySegment all;
    private final int parts, size;

    /** Call on the thread that will call {@link #sum}. */
    PartialSums(int parts, int size) {
        MemorySegment[] holder = BUFFER.get();
        long bytes = (long) parts * size * Float.BYTES;
        if (holder[0].byteSize() < bytes) holder[0] = Arena.ofAuto().allocate(bytes, 64);
        this.all = holder[0];
        this.parts = parts;
        this.size = size;
    }

    /** Part p's {@code size} floats. */
    MemorySegment part(int p) { return all.asSlice(offset(p) * Float.BYTES, (long) size * Float.BYTES); }

    /** Every part's floats, part p from {@link #offset}: for a GEMM at an offset, with no slice object. */
    MemorySegment all() { return all; }

    /** Where part p starts in {@link #all}, in floats. */
    long offset(int p) { return (long) p * size; }

    /**
     * The parts' sum, in part order, in the first {@code size} floats of this thread's {@link Scratch} array 0 (valid
     * until the thread's next op; part staging in its array 1).
     */
    float[] sum() {
        float[] total = Scratch.floats(0, size), part = Scratch.floats(1, size);
        java.util.Arrays.fill(total, 0, size, 0f);
        for (int p = 0; p < parts; p++) {
            MemorySegment.copy(all, F, (long) p * size * Float.BYTES, part, 0, size);
            for (int i = 0; i < size; i++) total[i] += part[i];
        }
        return total;
    }
}
