package io.predcode.cpu;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;
import java.util.Map;
import java.util.Objects;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

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

    final MethodHandle sgemm, sgemv, setThreads, getThreads, getConfig, getCoreName;
    final Path library;

    private OpenBlas(Path library) {
        this.library = library;
        Linker linker = Linker.nativeLinker();
        SymbolLookup lookup = SymbolLookup.libraryLookup(library, Arena.global());
        // The matrices go as bare addresses (C pointers and longs are passed alike on the 64-bit ABIs predcode ships for), so
        // that a matrix at an offset, a GEMM's part, needs no slice object: see address(), which checks what FFM would.
        sgemm = linker.downcallHandle(lookup.findOrThrow("cblas_sgemm"), FunctionDescriptor.ofVoid(
                JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_FLOAT, JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_INT,
                JAVA_FLOAT, JAVA_LONG, JAVA_INT));
        sgemv = linker.downcallHandle(lookup.findOrThrow("cblas_sgemv"), FunctionDescriptor.ofVoid(
                JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_FLOAT, JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_INT, JAVA_FLOAT, JAVA_LONG, JAVA_INT));
        setThreads = linker.downcallHandle(lookup.findOrThrow("openblas_set_num_threads"), FunctionDescriptor.ofVoid(JAVA_INT));
        getThreads = linker.downcallHandle(lookup.findOrThrow("openblas_get_num_threads"), FunctionDescriptor.of(JAVA_INT));
        getConfig = linker.downcallHandle(lookup.findOrThrow("openblas_get_config"), FunctionDescriptor.of(ADDRESS));
        getCoreName = linker.downcallHandle(lookup.findOrThrow("openblas_get_corename"), FunctionDescriptor.of(ADDRESS));
    }

    /** The bound library, or an exception saying why it could not be loaded. */
    static OpenBlas get() {
        if (instance != null) return instance;
        synchronized (OpenBlas.class) {
            if (instance != null) return instance;
            if (failure != null) throw new IllegalStateException(failure.getMessage(), failure);
            try {
                org.bytedeco.javacpp.Loader.load(org.bytedeco.openblas.global.openblas_nolapack.class);
                String path = null;
                for (Map.Entry<String, String> e : org.bytedeco.javacpp.Loader.getLoadedLibraries().entrySet())
                    if (e.getKey().startsWith("openblas_nolapack@")) path = e.getValue();
                if (path == null) throw new IllegalStateException("JavaCPP loaded no libopenblas_nolapack; loaded: " + org.bytedeco.javacpp.Loader.getLoadedLibraries().keySet());
                OpenBlas blas = new OpenBlas(Path.of(path));
                blas.setThreads(1); // each backend threads its own GEMMs (see sgemm(Parallel, ...))
                instance = blas;
                return instance;
            } catch (Throwable t) {
                failure = new IllegalStateException("OpenBLAS could not be loaded from org.bytedeco:openblas (" + org.bytedeco.javacpp.Loader.getPlatform() + "; the build pulls the natives named by predcode.natives): " + t, t);
                throw (IllegalStateException) failure;
            }
        }
    }

    /**
     * Below this many multiply-adds (a 50^3 GEMM) a GEMM runs on the calling thread alone: a few
     * microseconds of work, about what handing half of it to another thread costs. With the backend's
     * spinning workers ({@link Parallel}) splitting pays from there up: on 2 cores a 128^3 GEMM took 45 us
     * split and 62 whole, 256^3 235 and 413 ({@code bench --ops --threads 2}). A part has at least 64 rows
     * or columns ({@link #MIN_SPLIT_UNITS}), so a 64^3 GEMM (8.8 us split, 10.6 whole) runs whole.
     */
    static final long SMALL_GEMM_MACS = 1L << 17;

    /** A split GEMM's parts are whole multiples of this many rows (or columns) of C, the last part excepted. */
    private static final int SPLIT_UNIT = 16;

    /** Units of a part at the least on a thread-invariant pool (64 rows or columns): a thinner slice costs more than it gains. */
    private static final int MIN_SPLIT_UNITS = 4;

    /** The most parts a GEMM splits into. */
    private static final int MAX_SPLIT_PARTS = 32;

    /**
     * On a thread-invariant pool a GEMM splits into 2 parts where its size allows, and one more for each this many
     * multiply-adds (a 256^3 GEMM). A part costs its own call and packing, and on one thread the parts run one after
     * another: 2 parts of PCX's MLP's GEMMs (128 x 128 x 128, 128 x 128 x 784 and 128 x 784 x 128) took 3-13% longer
     * than the whole, 12 parts of the last 35%. Two parts keep two threads busy on a small model's GEMMs; larger GEMMs
     * take more parts for more threads.
     */
    private static final long MACS_PER_EXTRA_PART = 1L << 24;

    /** One single-threaded GEMM on the calling thread (row-major), on whole segments: see the next method. */
    void sgemm(boolean ta, boolean tb, int m, int n, int k, float alpha, MemorySegment a, int lda, MemorySegment b, int ldb,
               float beta, MemorySegment c, int ldc) {
        sgemm(ta, tb, m, n, k, alpha, a, 0, lda, b, 0, ldb, beta, c, 0, ldc);
    }

    /**
     * One single-threaded GEMM on the calling thread (row-major), each matrix at a float offset into its segment.
     * A product with one row or one column of C (a batch of one sample, say) is a matrix-vector product:
     * cblas_sgemv is several times faster there than sgemm, which packs its operands for blocking first (a
     * 1 x 64 x 64 linear layer: 3.3 us as sgemm).
     */
    void sgemm(boolean ta, boolean tb, int m, int n, int k, float alpha, MemorySegment a, long aOffset, int lda, MemorySegment b, long bOffset, int ldb,
               float beta, MemorySegment c, long cOffset, int ldc) {
        long pa = address(a, aOffset, ta ? k : m, ta ? m : k, lda), pb = address(b, bOffset, tb ? n : k, tb ? k : n, ldb), pc = address(c, cOffset, m, n, ldc);
        try {
            // With beta 0, C's old contents must not matter: OpenBLAS 0.3.31's gemv honours that (a NaN there does not survive;
            // the conformance suite checks it, should an upgrade change it).
            if (m == 1 && k > 0) { // c (1 x n) = a (1 x k) op(B): c^T = op(B)^T a, with a's elements lda apart when A is transposed
                sgemv.invokeExact(ROW_MAJOR, tb ? NO_TRANS : TRANS, tb ? n : k, tb ? k : n, alpha, pb, ldb, pa, ta ? lda : 1, beta, pc, 1);
                return;
            }
            if (n == 1 && k > 0) { // c (m x 1, ldc apart) = op(A) b, with b's elements ldb apart unless B is transposed
                sgemv.invokeExact(ROW_MAJOR, ta ? TRANS : NO_TRANS, ta ? k : m, ta ? m : k, alpha, pa, lda, pb, tb ? 1 : ldb, beta, pc, ldc);
                return;
            }
            sgemm.invokeExact(ROW_MAJOR, ta ? TRANS : NO_TRANS, tb ? TRANS : NO_TRANS, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc);
        } catch (Throwable t) {
            throw new IllegalStateException("cblas_sgemm failed", t);
        }
    }

    /**
     * The address of a {@code rows x cols} row-major matrix, rows {@code ld} floats apart, from float
     * {@code offset} of {@code s}: checked to lie within s, which must be native and alive, as FFM checks
     * a segment it passes. The backend's callers keep their tensors open for the call.
     */
    private static long address(MemorySegment s, long offset, int rows, int cols, int ld) {
        long floats = rows <= 0 || cols <= 0 ? 0 : (long) (rows - 1) * ld + cols;
        if (!s.isNative() || !s.scope().isAlive()) throw new IllegalArgumentException("sgemm: a matrix is not in open native memory");
        Objects.checkFromIndexSize(offset * Float.BYTES, floats * Float.BYTES, s.byteSize());
        return s.address() + offset * Float.BYTES;
    }

    /**
     * A GEMM split across {@code par}'s threads: C's rows (or its columns, when it has as many or more)
     * in contiguous parts, each one single-threaded cblas_sgemm. OpenBLAS's own thread count is
     * process-wide, so predcode fixes it at 1 and threads each backend's GEMMs on the backend's own
     * pool: two backends with different thread counts never change each other's. Never call this from
     * inside a {@code par} task (its pool would wait on itself).
     *
     * <p>An element of C can differ in its last bits with the slice it is computed in (OpenBLAS's kernels
     * treat a slice's rows and columns by their place in it: a 128 x 128 x 128 product split in two differs
     * from the whole in 8% of its elements). On a thread-invariant pool the parts come from the GEMM's shape
     * alone ({@link #parts}), so every part is the same call on any number of threads.
     */
    void sgemm(Parallel par, boolean ta, boolean tb, int m, int n, int k, float alpha, MemorySegment a, long aOffset, int lda,
               MemorySegment b, long bOffset, int ldb, float beta, MemorySegment c, long cOffset, int ldc) {
        int parts = parts(par, m, n, k);
        if (parts <= 1) {
            sgemm(ta, tb, m, n, k, alpha, a, aOffset, lda, b, bOffset, ldb, beta, c, cOffset, ldc);
        } else {
            Split split = SPLITS.get();
            split.set(this, ta, tb, m, n, k, alpha, a, aOffset, lda, b, bOffset, ldb, beta, c, cOffset, ldc);
            try {
                par.forParts(units(Math.max(m, n)), 1, parts, split);
            } finally {
                split.clear();
            }
        }
    }

    /**
     * How many parts an m x n x k GEMM splits into on {@code par}: 1 below {@link #SMALL_GEMM_MACS}; else up to one
     * per thread, or, on a thread-invariant pool, from the shape alone (see {@link #MACS_PER_EXTRA_PART}), each part
     * at least {@link #MIN_SPLIT_UNITS}.
     */
    static int parts(Parallel par, int m, int n, int k) {
        long macs = (long) m * n * k;
        if (macs < SMALL_GEMM_MACS) return 1;
        int units = units(Math.max(m, n));
        return par.threadInvariant() ? par.parts(units, MIN_SPLIT_UNITS, (int) Math.min(MAX_SPLIT_PARTS, 2 + macs / MACS_PER_EXTRA_PART))
                : par.parts(units, 1, MAX_SPLIT_PARTS);
    }

    /** {@link #SPLIT_UNIT}s in {@code rows}, a last partial one included. */
    private static int units(int rows) { return (rows + SPLIT_UNIT - 1) / SPLIT_UNIT; }

    /**
     * A split GEMM's parts: rows [from, to) of C in {@link #SPLIT_UNIT}s where C has more rows than columns, else its
     * columns. One object per calling thread, set up for each split GEMM (a lambda would be a new object of 16
     * captured values per GEMM); its parts run while that thread waits in the call.
     */
    private static final class Split implements Parallel.Part {
        private OpenBlas blas;
        private boolean ta, tb;
        private int m, n, k, lda, ldb, ldc;
        private float alpha, beta;
        private MemorySegment a, b, c;
        private long aOffset, bOffset, cOffset;

        void set(OpenBlas blas, boolean ta, boolean tb, int m, int n, int k, float alpha, MemorySegment a, long aOffset, int lda,
                 MemorySegment b, long bOffset, int ldb, float beta, MemorySegment c, long cOffset, int ldc) {
            this.blas = blas;
            this.ta = ta;
            this.tb = tb;
            this.m = m;
            this.n = n;
            this.k = k;
            this.alpha = alpha;
            this.a = a;
            this.aOffset = aOffset;
            this.lda = lda;
            this.b = b;
            this.bOffset = bOffset;
            this.ldb = ldb;
            this.beta = beta;
            this.c = c;
            this.cOffset = cOffset;
            this.ldc = ldc;
        }

        /** Holds no segment between calls. */
        void clear() {
            blas = null;
            a = b = c = null;
        }

        @Override public void run(int part, int fromUnit, int toUnit) {
            int from = fromUnit * SPLIT_UNIT, to = Math.min(toUnit * SPLIT_UNIT, Math.max(m, n));
            if (m > n) // rows of C: rows of op(A); a square C splits by columns, which measured faster (see MACS_PER_EXTRA_PART's GEMMs)
                blas.sgemm(ta, tb, to - from, n, k, alpha, a, aOffset + (long) from * (ta ? 1 : lda), lda, b, bOffset, ldb, beta, c, cOffset + (long) from * ldc, ldc);
            else // columns of C: columns of op(B)
                blas.sgemm(ta, tb, m, to - from, k, alpha, a, aOffset, lda, b, bOffset + (long) from * (tb ? ldb : 1), ldb, beta, c, cOffset + from, ldc);
        }
    }

    private static final ThreadLocal<Split> SPLITS = ThreadLocal.withInitial(Split::new);

    /** Sets OpenBLAS's process-wide thread count (predcode sets 1, once, when it loads the library). */
    private void setThreads(int n) {
        try { setThreads.invokeExact(n); } catch (Throwable t) { throw new IllegalStateException(t); }
    }

    int threads() {
        try { return (int) getThreads.invokeExact(); } catch (Throwable t) { throw new IllegalStateException(t); }
    }

    String config() { return string(getConfig); }

    /** The kernels OpenBLAS chose at load (DYNAMIC_ARCH): "Haswell", "Cooperlake", ... */
    String coreName() { return string(getCoreName); }

    /** The C string a no-argument OpenBLAS function returns (its static text), or "unknown". */
    private static String string(MethodHandle f) {
        try {
            return ((MemorySegment) f.invokeExact()).reinterpret(256).getString(0);
        } catch (Throwable t) {
            return "unknown";
        }
    }

    /** OpenBLAS's kernel sets that use AVX-512 (lower case, as openblas_get_corename spells them in any case). */
    private static final java.util.Set<String> AVX512_CORES = java.util.Set.of("skylakex", "cooperlake", "sapphirerapids");

    /**
     * A warning for the backend's description where the environment's OPENBLAS_CORETYPE (read when the library
     * loads) holds OpenBLAS to kernels without AVX-512 on a CPU that has it, or "" otherwise. Some machines set
     * it because older OpenBLAS builds miscompute on new CPUs; 0.3.31 passes the conformance suite with its
     * own choice (Cooperlake on a Zen 5 VM), whose sgemm ran 1.8x faster at 1024^3 and PCX's MLP steps
     * 1.35x (bench/results/openblas-coretype-2026-12-01.md).
     */
    static String coreTypeWarning(String coreTypeVariable, String coreName, boolean cpuHasAvx512) {
        if (coreTypeVariable == null || coreTypeVariable.isBlank() || !cpuHasAvx512) return "";
        if (AVX512_CORES.contains(coreName.toLowerCase(java.util.Locale.ROOT))) return "";
        return "; OPENBLAS_CORETYPE=" + coreTypeVariable + " keeps OpenBLAS (" + coreName
                + " kernels) off this CPU's AVX-512: unset it for faster GEMMs (README, Backends)";
    }
}
