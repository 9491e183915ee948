package io.predcode.cpu;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static io.predcode.cpu.CpuBackend.F;

/**
 * Per-part partial results of a reduction split across threads (the conv weight gradients), in native
 * memory for OpenBLAS to accumulate into. The calling thread owns them, since a pool thread may run two
 * parts of one call, and keeps the buffer between calls. Summed in part order, so the result depends only
 * on how many parts there are: the thread count, or the sizes alone on a thread-invariant pool ({@link #over}).
 */
final class PartialSums {
    /** The most parts a reduction splits into. */
    static final int MAX_PARTS = 8;

    /** The most floats the parts hold together (64 MB): a large weight gradient takes fewer parts. */
    private static final long MAX_FLOATS = 1L << 24;

    private static final ThreadLocal<MemorySegment[]> BUFFER = ThreadLocal.withInitial(() -> new MemorySegment[]{MemorySegment.NULL});

    private final MemorySegment all;
    private final int parts, size;

    /**
     * Partial sums of {@code size} floats for a reduction over {@code items} split on {@code par} into parts of at
     * least {@code minItems}, within {@link #MAX_PARTS} and {@link #MAX_FLOATS}. Call on the thread that will call
     * {@link #sum}, and split the work with {@code par.forParts(items, minItems, parts(), ...)}, which gives exactly
     * {@link #parts()} parts.
     */
    static PartialSums over(Parallel par, int items, int minItems, int size) {
        int most = (int) Math.max(1, Math.min(MAX_PARTS, MAX_FLOATS / Math.max(1, size)));
        return new PartialSums(par.parts(items, minItems, most), size);
    }

    private PartialSums(int parts, int size) {
        MemorySegment[] holder = BUFFER.get();
        long bytes = (long) parts * size * Float.BYTES;
        if (holder[0].byteSize() < bytes) holder[0] = Arena.ofAuto().allocate(bytes, 64);
        this.all = holder[0];
        this.parts = parts;
        this.size = size;
    }

    /** How many parts: the {@code maxParts} to split the reduction's items with. */
    int parts() { return parts; }

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
