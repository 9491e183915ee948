package io.predcode.cpu;

import io.predcode.spi.Activation;

import java.lang.foreign.MemorySegment;

/**
 * One elementwise op's arguments on their way to the op's parts ({@link Parallel#forRange}), in an object that
 * each calling thread keeps and refills for every op, so that an op allocates nothing: a lambda capturing the
 * arguments would be a new object per call, hundreds in a training step. An op runs to its end before its thread
 * calls another, and the backend's workers only read the caller's object. The {@link Kernel} of an op is a
 * constant that captures nothing; it reads the arguments back by position, as the op wrote them.
 */
final class ElementwiseCall implements Parallel.Range {
    /** An op's kernel on elements [from, to), from the arguments in {@code c}. */
    interface Kernel { void run(ElementwiseCall c, long from, long to); }

    private static final ThreadLocal<ElementwiseCall> MINE = ThreadLocal.withInitial(ElementwiseCall::new);

    /** The native kernels, or null where the Java kernels run. */
    NativeKernels kernels;
    /** Tensors, by position in the kernel's signature. */
    MemorySegment s0, s1, s2, s3, s4, s5, s6, s7;
    /** Scalars, by position. */
    float x0, x1, x2, x3, x4, x5, x6;
    boolean flag0, flag1;
    Activation activation;
    private Kernel kernel;

    /** This thread's call, set to run {@code kernel}; its argument fields are then filled by the op. */
    static ElementwiseCall of(Kernel kernel, NativeKernels kernels) {
        ElementwiseCall call = MINE.get();
        call.kernel = kernel;
        call.kernels = kernels;
        return call;
    }

    /** Runs the kernel on elements [0, n), split across {@code par}'s threads from {@code minItems} elements a part. */
    void run(Parallel par, int n, int minItems) {
        try {
            par.forRange(n, minItems, this);
        } finally { // holds no tensor between ops
            s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = null;
            activation = null;
        }
    }

    @Override public void run(int from, int to) { kernel.run(this, from, to); }
}
