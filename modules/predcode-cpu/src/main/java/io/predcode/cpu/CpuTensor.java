package io.predcode.cpu;

import io.predcode.spi.Backend;
import io.predcode.spi.Shape;
import io.predcode.spi.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/** A tensor in its own shared arena (off-heap, 64-byte aligned, zero-filled, freed on close), or a view of one. */
final class CpuTensor extends Tensor {
    private final CpuBackend backend;
    private final Arena arena;
    final MemorySegment segment;

    CpuTensor(CpuBackend backend, Shape shape) {
        super(shape);
        this.backend = backend;
        this.arena = Arena.ofShared();
        this.segment = arena.allocate(shape.size() * Float.BYTES, 64);
    }

    /** A view of {@code shape.size()} floats of {@code base} from element {@code offset}. */
    CpuTensor(CpuTensor base, long offset, Shape shape) {
        super(shape, base);
        this.backend = base.backend;
        this.arena = null;
        this.segment = base.segment.asSlice(offset * Float.BYTES, shape.size() * Float.BYTES);
    }

    @Override public Backend backend() { return backend; }

    @Override protected void release() { arena.close(); }
}
