package io.predcode.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * cuBLAS through FFM: one handle bound to the backend's stream, and strided-batched SGEMM. cuBLAS is
 * column-major, so a row-major C = op(A) op(B) is computed as C^T = op(B)^T op(A)^T. The handle gets
 * a fixed workspace (set after the stream, which resets it), so a GEMM recorded into a CUDA graph
 * never asks for memory of its own.
 */
final class Cublas implements AutoCloseable {
    private static final int OP_N = 0, OP_T = 1;
    /** cuBLAS's recommendation for Hopper is 32 MiB; the backend owns and frees it. */
    static final long WORKSPACE_BYTES = 32L << 20;
    private final MethodHandle destroy, sgemmStridedBatched;
    private final long handle;
    /** Shared, not confined: a service calls the backend from any of its threads (one at a time). */
    private final Arena arena = Arena.ofShared();
    private final MemorySegment alpha = arena.allocate(JAVA_FLOAT), beta = arena.allocate(JAVA_FLOAT);
    final Path path;

    Cublas(Path path, long stream, long workspace) {
        this.path = path;
        Native lib = new Native(path);
        MethodHandle create = lib.fn("cublasCreate_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        MethodHandle setStream = lib.fn("cublasSetStream_v2", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG));
        MethodHandle setWorkspace = lib.fn("cublasSetWorkspace_v2", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG));
        destroy = lib.fn("cublasDestroy_v2", FunctionDescriptor.of(JAVA_INT, JAVA_LONG));
        sgemmStridedBatched = lib.fn("cublasSgemmStridedBatched", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                ADDRESS, JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_LONG, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_INT));
        try {
            MemorySegment h = arena.allocate(JAVA_LONG);
            check((int) create.invokeExact(h), "cublasCreate");
            handle = h.get(JAVA_LONG, 0);
            check((int) setStream.invokeExact(handle, stream), "cublasSetStream");
            check((int) setWorkspace.invokeExact(handle, workspace, WORKSPACE_BYTES), "cublasSetWorkspace");
        } catch (RuntimeException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    private static void check(int status, String call) {
        if (status != 0) throw new CudaException(call + " failed: cuBLAS status " + status, status);
    }

    /** Row-major batched GEMM on device pointers (element offsets already applied). */
    void sgemm(boolean transA, boolean transB, int m, int n, int k, float a, long pa, int lda, long strideA,
               long pb, int ldb, long strideB, float b, long pc, int ldc, long strideC, int batch) {
        alpha.set(JAVA_FLOAT, 0, a);
        beta.set(JAVA_FLOAT, 0, b);
        try {
            check((int) sgemmStridedBatched.invokeExact(handle, transB ? OP_T : OP_N, transA ? OP_T : OP_N, n, m, k, alpha, pb, ldb, strideB,
                    pa, lda, strideA, beta, pc, ldc, strideC, batch), "cublasSgemmStridedBatched");
        } catch (RuntimeException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    @Override public void close() {
        try { check((int) destroy.invokeExact(handle), "cublasDestroy"); } catch (Throwable ignored) { /* closing anyway */ }
        arena.close();
    }
}
