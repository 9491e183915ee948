package io.predcode.cuda;

import java.nio.file.Path;

/**
 * A stream and what the ops issued to it use that another stream running at the same time must not
 * share: a cuBLAS handle with its own workspace, the reductions' partial sums, the convolutions'
 * scratch, and an event that marks how far its work has come (for joining it back). The CUDA
 * backend has one lane for ordinary work and adds more for branches that run at once.
 */
final class Lane {
    final long stream, workspace, partials, event;
    final Cublas cublas;
    /** Device scratch for the conv ops, grown on demand by the backend (0: none yet). */
    long scratch, scratchBytes;

    private Lane(long stream, long workspace, long partials, long event, Cublas cublas) {
        this.stream = stream;
        this.workspace = workspace;
        this.partials = partials;
        this.event = event;
        this.cublas = cublas;
    }

    /** Creates a lane, with an event where {@code event} (a branch lane; the backend's own needs none); where one step fails, gives back what the earlier ones took and rethrows. */
    static Lane open(CudaDriver driver, Path cublasPath, boolean event) {
        Undo undo = new Undo();
        try {
            long stream = driver.createStream();
            undo.push(() -> driver.destroyStream(stream));
            long workspace = driver.malloc(Cublas.WORKSPACE_BYTES);
            undo.push(() -> driver.free(workspace));
            Cublas cublas = new Cublas(cublasPath, stream, workspace);
            undo.push(cublas::close);
            long partials = driver.malloc(Kernels.PARTIALS_BYTES);
            undo.push(() -> driver.free(partials));
            driver.memsetD32(partials, 0, Kernels.PARTIALS_BYTES / 4, stream); // the count of a reduction's blocks done starts at 0
            driver.synchronize(stream); // before any graph, on whatever stream it runs, uses the lane
            long e = event ? driver.createEvent() : 0;
            return new Lane(stream, workspace, partials, e, cublas);
        } catch (RuntimeException e) {
            throw undo.all(e);
        }
    }

    /** Frees the lane's buffers and destroys its handle, event and stream; its work must be done. */
    void close(CudaDriver driver) {
        cublas.close();
        if (scratch != 0) driver.free(scratch);
        driver.free(partials);
        driver.free(workspace);
        if (event != 0) driver.destroyEvent(event);
        driver.destroyStream(stream);
    }
}
