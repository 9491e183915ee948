package io.predcode.cpu;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;
import java.util.Map;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * OpenBLAS bound through FFM. JavaCPP only unpacks and loads the shared library shipped in
 * org.bytedeco:openblas (with its libgfortran); we then bind the symbols of that same, already
 * loaded file. We load {@code openblas_nolapack} alone: loading the {@code openblas} class would map
 * a second 37 MB copy with its own thread pool.
 */
final class OpenBlas {
    static final int ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112;

    private static volatile OpenBlas instance;
    private static volatile Throwable failure;

    final MethodHandle sgemm, setThreads, getThreads, getConfig;
    final Path library;

    private OpenBlas(Path library) {
        this.library = library;
        Linker linker = Linker.nativeLinker();
        SymbolLookup lookup = SymbolLookup.libraryLookup(library, Arena.global());
        sgemm = linker.downcallHandle(lookup.findOrThrow("cblas_sgemm"), FunctionDescriptor.ofVoid(
                JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_FLOAT, ADDRESS, JAVA_INT, ADDRESS, JAVA_INT,
                JAVA_FLOAT, ADDRESS, JAVA_INT));
        setThreads = linker.downcallHandle(lookup.findOrThrow("openblas_set_num_threads"), FunctionDescriptor.ofVoid(JAVA_INT));
        getThreads = linker.downcallHandle(lookup.findOrThrow("openblas_get_num_threads"), FunctionDescriptor.of(JAVA_INT));
        getConfig = linker.downcallHandle(lookup.findOrThrow("openblas_get_config"), FunctionDescriptor.of(ADDRESS));
    }

    /** The bound library, or an exception saying why it could not be loaded. */
    static OpenBlas get() {
        if (instance != null) return instance;
        synchronized (OpenBlas.class) {
            if (instance != null) return instance;
            if (failure != null) throw new IllegalStateException(failure.getMessage(), failure);
            try {
                shortenThreadSpin();
                org.bytedeco.javacpp.Loader.load(org.bytedeco.openblas.global.openblas_nolapack.class);
                String path = null;
                for (Map.Entry<String, String> e : org.bytedeco.javacpp.Loader.getLoadedLibraries().entrySet())
                    if (e.getKey().startsWith("openblas_nolapack@")) path = e.getValue();
                if (path == null) throw new IllegalStateException("JavaCPP loaded no libopenblas_nolapack; loaded: " + org.bytedeco.javacpp.Loader.getLoadedLibraries().keySet());
                instance = new OpenBlas(Path.of(path));
                return instance;
            } catch (Throwable t) {
                failure = new IllegalStateException("OpenBLAS could not be loaded from org.bytedeco:openblas (linux-x86_64): " + t, t);
                throw (IllegalStateException) failure;
            }
        }
    }

    /**
     * After a GEMM, OpenBLAS's worker threads spin for 2^28 cycles (~0.1 s) by default before they
     * sleep, holding the cores our Java kernels run on next. OpenBLAS reads OPENBLAS_THREAD_TIMEOUT
     * (log2 cycles, 4..30) when it initialises: unless the user set it, ask for the shortest spin.
     * Measured on 2 cores (predcode bench, example-cnn STRICT): 583-631 ms/step with one thread,
     * 354-377 ms with two threads and the short spin.
     */
    private static void shortenThreadSpin() {
        if (System.getenv("OPENBLAS_THREAD_TIMEOUT") != null) return;
        try (Arena a = Arena.ofConfined()) {
            Linker linker = Linker.nativeLinker();
            MethodHandle setenv = linker.downcallHandle(linker.defaultLookup().findOrThrow("setenv"), FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT));
            int rc = (int) setenv.invokeExact(a.allocateFrom("OPENBLAS_THREAD_TIMEOUT"), a.allocateFrom("4"), 0);
            if (rc != 0) System.err.println("predcode: could not set OPENBLAS_THREAD_TIMEOUT (setenv returned " + rc + ")");
        } catch (Throwable t) {
            // Not fatal: OpenBLAS then spins with its default timeout.
        }
    }

    /**
     * Below this many multiply-adds a GEMM runs on the calling thread alone. OpenBLAS splits from 262K
     * (m n k) up, where handing half of a 10-50 us GEMM to its other thread costs more than it saves:
     * [300 x 50] x [50 x 30] took 69 us on two threads and 18 us on one; [300 x 605] x [605 x 50],
     * 234 and 201 us (JIT-warm, best of 15, 2 cores).
     */
    static final long SMALL_GEMM_MACS = 4L << 20;

    /** The thread count set through {@link #setThreads}, restored after each small GEMM. */
    private volatile int threads = 0;

    void sgemm(boolean ta, boolean tb, int m, int n, int k, float alpha, MemorySegment a, int lda, MemorySegment b, int ldb,
               float beta, MemorySegment c, int ldc) {
        int wide = threads;
        boolean alone = wide > 1 && (long) m * n * k < SMALL_GEMM_MACS;
        try {
            // The count is process-wide, so a concurrent GEMM may briefly see one thread: only its speed changes.
            if (alone) setThreads.invokeExact(1);
            sgemm.invokeExact(ROW_MAJOR, ta ? TRANS : NO_TRANS, tb ? TRANS : NO_TRANS, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        } catch (Throwable t) {
            throw new IllegalStateException("cblas_sgemm failed", t);
        } finally {
            if (alone) setThreadsQuietly(wide);
        }
    }

    void setThreads(int n) {
        setThreadsQuietly(n);
        threads = n;
    }

    /** Sets OpenBLAS's count without changing the one small GEMMs restore. */
    private void setThreadsQuietly(int n) {
        try { setThreads.invokeExact(n); } catch (Throwable t) { throw new IllegalStateException(t); }
    }

    int threads() {
        try { return (int) getThreads.invokeExact(); } catch (Throwable t) { throw new IllegalStateException(t); }
    }

    String config() {
        try {
            MemorySegment s = (MemorySegment) getConfig.invokeExact();
            return s.reinterpret(256).getString(0);
        } catch (Throwable t) {
            return "unknown";
        }
    }
}
