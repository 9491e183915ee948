package io.predcode.cuda;

import io.predcode.spi.Backend;
import io.predcode.spi.Shape;
import io.predcode.spi.Tensor;

/** Device memory from the backend's caching pool; closing returns it to the pool. */
final class CudaTensor extends Tensor {
    private final CudaBackend backend;
    final long ptr, bytes;

    CudaTensor(CudaBackend backend, Shape shape, long ptr, long bytes) {
        super(shape);
        this.backend = backend;
        this.ptr = ptr;
        this.bytes = bytes;
    }

    /** A view of {@code shape.size()} floats of {@code base} from element {@code offset}: no memory of its own. */
    CudaTensor(CudaTensor base, long offset, Shape shape) {
        super(shape, base);
        this.backend = base.backend;
        this.ptr = base.at(offset);
        this.bytes = shape.size() * Float.BYTES;
    }

    /** Device address of element {@code index}. */
    long at(long index) { return ptr + index * Float.BYTES; }

    @Override public Backend backend() { return backend; }

    @Override protected void release() { backend.recycle(this); }
}
