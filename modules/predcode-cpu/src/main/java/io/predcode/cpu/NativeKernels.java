package io.predcode.cpu;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * predcode's own CPU kernels (native/cpu, C compiled by gcc when the module is built), bound through
 * FFM: the direct convolution for few channels, 2x2 max pooling, softmax cross-entropy, Adam, and
 * the elementwise ops of a STRICT sweep. They run where the Java kernels are held back by the JIT (no vector FMA register blocking,
 * no vectorised loop over two offsets of one array): example-cnn's 5-channel Gram convolution runs
 * about 3x faster. The library holds an AVX-512 and an AVX2 build of each kernel; the CPU picks.
 *
 * <p>{@code -Dpredcode.cpu.kernels=java} turns them off; {@code =native} makes their absence an error
 * (CI sets it, so a build without them cannot pass unnoticed). Every kernel works on a range (of
 * images, planes or elements), so the backend splits a call across its threads.
 */
final class NativeKernels {
    static final String PROPERTY = "predcode.cpu.kernels";
    private static final String RESOURCE = "/io/predcode/cpu/linux-x86_64/libpredcode_cpu.so";

    private static final Object LOCK = new Object();
    private static NativeKernels instance;
    private static String unavailable;

    /** Floats per vector in the build chosen for this CPU: 16 (AVX-512) or 8 (AVX2). */
    final int width;
    private final MethodHandle conv2d, conv2dWeightGrad, maxPool2, maxPool2Backward, axpby, add, multiply, relu, reluIncrement, reluBackward, leakyRelu, leakyReluBackward, tanh, sigmoid, smoothIncrement, gelu, geluBackward, geluWithDerivative, geluTanh, geluTanhBackward, geluTanhWithDerivative, predictionError, strictUpdate, strictStep, momentumUpdate, adamUpdate, softmaxCrossEntropy, adamStep, sumSquares;

    private final SymbolLookup lookup;

    private NativeKernels(SymbolLookup lookup, int width) {
        this.lookup = lookup;
        this.width = width;
        String isa = width == 16 ? "_avx512" : "_avx2";
        Linker linker = Linker.nativeLinker();
        java.util.function.BiFunction<String, FunctionDescriptor, MethodHandle> bind =
                (name, fd) -> linker.downcallHandle(lookup.findOrThrow("pc_" + name + isa), fd);
        conv2d = bind.apply("conv2d", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT,
                JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
        conv2dWeightGrad = bind.apply("conv2d_weight_grad", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT,
                JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
        maxPool2 = bind.apply("max_pool2", FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT));
        maxPool2Backward = bind.apply("max_pool2_backward", FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT));
        axpby = bind.apply("axpby", FunctionDescriptor.ofVoid(JAVA_FLOAT, ADDRESS, JAVA_FLOAT, ADDRESS, JAVA_LONG, JAVA_LONG));
        add = bind.apply("add", FunctionDescriptor.ofVoid(JAVA_FLOAT, ADDRESS, JAVA_FLOAT, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG));
        multiply = bind.apply("multiply", FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG));
        relu = bind.apply("relu", FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG));
        reluIncrement = bind.apply("relu_increment", FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_FLOAT,
                JAVA_INT, JAVA_LONG, JAVA_LONG));
        reluBackward = bind.apply("relu_backward", FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG));
        leakyRelu = bind.apply("leaky_relu", FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, JAVA_FLOAT, JAVA_LONG, JAVA_LONG));
        leakyReluBackward = bind.apply("leaky_relu_backward", FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, ADDRESS, JAVA_FLOAT, JAVA_LONG, JAVA_LONG));
        tanh = bind.apply("tanh", FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG));
        sigmoid = bind.apply("sigmoid", FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG));
        smoothIncrement = bind.apply("smooth_increment", FunctionDescriptor.ofVoid(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                ADDRESS, JAVA_LONG, JAVA_LONG));
        gelu = bind.apply("gelu", FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG));
        geluBackward = bind.apply("gelu_backward", FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG));
        geluWithDerivative = bind.apply("gelu_with_derivative", FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG));
        geluTanhWithDerivative = bind.apply("gelu_tanh_with_derivative", FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG));
        geluTanh = bind.apply("gelu_tanh", FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG));
        geluTanhBackward = bind.apply("gelu_tanh_backward", FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG));
        predictionError = bind.apply("prediction_error", FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                JAVA_FLOAT, JAVA_FLOAT, ADDRESS, JAVA_LONG, JAVA_LONG));
        strictUpdate = bind.apply("strict_update", FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                JAVA_FLOAT, JAVA_LONG, JAVA_LONG));
        strictStep = bind.apply("strict_step", FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_FLOAT, JAVA_LONG, JAVA_LONG));
        momentumUpdate = bind.apply("momentum_update", FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                JAVA_FLOAT, JAVA_FLOAT, JAVA_INT, JAVA_LONG, JAVA_LONG));
        adamUpdate = bind.apply("adam_update", FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                JAVA_FLOAT, JAVA_FLOAT, JAVA_FLOAT, JAVA_FLOAT, JAVA_FLOAT, JAVA_LONG, JAVA_LONG));
        softmaxCrossEntropy = bind.apply("softmax_cross_entropy", FunctionDescriptor.of(JAVA_DOUBLE, ADDRESS, ADDRESS, ADDRESS,
                JAVA_INT, JAVA_INT, JAVA_DOUBLE, JAVA_INT));
        sumSquares = bind.apply("sum_squares", FunctionDescriptor.of(JAVA_DOUBLE, ADDRESS, JAVA_LONG));
        adamStep = bind.apply("adam_step", FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_FLOAT, JAVA_FLOAT, JAVA_FLOAT,
                JAVA_FLOAT, JAVA_FLOAT, JAVA_FLOAT, JAVA_FLOAT, JAVA_LONG, JAVA_LONG));
    }

    /** The kernels for this CPU, or null (and {@link #unavailable()} says why) when they cannot or should not run. */
    static NativeKernels get() {
        synchronized (LOCK) {
            loadOnce();
            return instance;
        }
    }

    /** Why {@link #get()} returns null; null when it does not. */
    static String unavailable() {
        synchronized (LOCK) {
            loadOnce();
            return unavailable;
        }
    }

    /** Under LOCK: the first call loads (or records why not), later ones do nothing. */
    private static void loadOnce() {
        if (instance != null || unavailable != null) return;
        String mode = System.getProperty(PROPERTY, "auto");
        if (!mode.equals("auto") && !mode.equals("java") && !mode.equals("native"))
            throw new IllegalArgumentException("-D" + PROPERTY + "=" + mode + ": expected auto, java or native");
        if (mode.equals("java")) { unavailable = "turned off by -D" + PROPERTY + "=java"; return; }
        try {
            instance = open();
        } catch (RuntimeException | IOException | LinkageError e) {
            unavailable = e.getMessage();
        }
        if (instance == null && mode.equals("native"))
            throw new IllegalStateException("-D" + PROPERTY + "=native, but predcode's native CPU kernels are unavailable: " + unavailable);
    }

    /** The build for {@code width} (8: AVX2, 16: AVX-512) where this CPU runs it: tests run the AVX2 build on AVX-512 machines too. */
    static NativeKernels withWidth(int width) throws IOException {
        NativeKernels best = open();
        if (width != 8 && width != 16) throw new IllegalArgumentException("width must be 8 (AVX2) or 16 (AVX-512), got " + width);
        if (width > best.width) throw new IllegalStateException("this CPU cannot run the " + (width == 16 ? "AVX-512" : "AVX2") + " build");
        return width == best.width ? best : new NativeKernels(best.lookup, width);
    }

    private static NativeKernels open() throws IOException {
        String os = System.getProperty("os.name"), arch = System.getProperty("os.arch");
        if (!os.equals("Linux") || !(arch.equals("amd64") || arch.equals("x86_64")))
            throw new IllegalStateException("built for linux-x86_64 only; this is " + os + " " + arch);
        URL url = NativeKernels.class.getResource(RESOURCE);
        if (url == null) throw new IllegalStateException("not built (no gcc when predcode-cpu was built); the Java kernels run instead");
        Path file = localFile(url);
        SymbolLookup lookup;
        try {
            lookup = SymbolLookup.libraryLookup(file, Arena.global());
        } finally {
            // A copy out of the jar is gone once loaded (the mapping outlives the name): nothing is left in the temporary
            // folder, not even by a JVM killed before its exit hooks, which left one copy (400 KB) each time.
            if (!url.getProtocol().equals("file")) Files.deleteIfExists(file);
        }
        MethodHandle simd = Linker.nativeLinker().downcallHandle(lookup.findOrThrow("pc_simd_width"), FunctionDescriptor.of(JAVA_INT));
        int width;
        try {
            width = (int) simd.invokeExact();
        } catch (Throwable t) {
            throw new IllegalStateException("pc_simd_width failed: " + t, t);
        }
        if (width == 0) throw new IllegalStateException("this CPU has neither AVX-512 nor AVX2 with FMA");
        return new NativeKernels(lookup, width);
    }

    /** The library as a file: itself when the classes are a directory, else a temporary copy out of the jar (deleted once loaded). */
    private static Path localFile(URL url) throws IOException {
        if (url.getProtocol().equals("file")) {
            try {
                return Path.of(url.toURI());
            } catch (URISyntaxException e) {
                throw new IOException("bad library path " + url, e);
            }
        }
        Path file = Files.createTempFile("libpredcode_cpu", ".so");
        file.toFile().deleteOnExit(); // a JVM stopped while it copies (SIGTERM at start-up); once loaded, it is deleted at once
        try (InputStream in = url.openStream()) {
            Files.copy(in, file, StandardCopyOption.REPLACE_EXISTING);
        }
        return file;
    }

    /** "AVX-512" or "AVX2": for the backend's description. */
    String isa() { return width == 16 ? "AVX-512" : "AVX2"; }

    // ------------------------------------------------------------------ the kernels (ranges; the caller splits across threads)

    /** Whether {@link #conv2d} computes this stride-1 convolution: its padding must be within the kernel. */
    static boolean suits(io.predcode.spi.Conv2dGeometry g) {
        return g.sh() == 1 && g.sw() == 1 && g.ph() < g.kh() && g.pw() < g.kw();
    }

    /**
     * Forward (y = conv(x, w) + bias, bias may be null) or, transposed, input gradient (y = dx
     * from x = dy) of images [from, to).
     */
    void conv2d(MemorySegment x, MemorySegment w, MemorySegment bias, MemorySegment y, int from, int to,
                io.predcode.spi.Conv2dGeometry g, int outChannels, boolean transposed) {
        int rc;
        // Locals: invokeExact types a ?: argument as Object.
        MemorySegment b = bias == null ? MemorySegment.NULL : bias;
        try {
            rc = (int) conv2d.invokeExact(x, w, b, y, from, to, g.channels(), g.height(), g.width(),
                    outChannels, g.kh(), g.kw(), g.ph(), g.pw(), transposed ? 1 : 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        if (rc != 0) throw new OutOfMemoryError("native conv2d: no memory for its scratch buffers (" + g + ")");
    }

    /** dw = the weight gradient summed over images [from, to) (overwritten). */
    void conv2dWeightGrad(MemorySegment x, MemorySegment dy, MemorySegment dw, int from, int to, io.predcode.spi.Conv2dGeometry g, int outChannels) {
        int rc;
        try {
            rc = (int) conv2dWeightGrad.invokeExact(x, dy, dw, from, to, g.channels(), g.height(), g.width(), outChannels, g.kh(), g.kw(), g.ph(), g.pw());
        } catch (Throwable t) {
            throw rethrow(t);
        }
        if (rc != 0) throw new OutOfMemoryError("native conv2d weight gradient: no memory for its scratch buffers (" + g + ")");
    }

    void maxPool2(MemorySegment x, MemorySegment y, long fromPlane, long toPlane, int height, int width) {
        try { maxPool2.invokeExact(x, y, fromPlane, toPlane, height, width); } catch (Throwable t) { throw rethrow(t); }
    }

    void maxPool2Backward(MemorySegment x, MemorySegment dy, MemorySegment dx, long fromPlane, long toPlane, int height, int width) {
        try { maxPool2Backward.invokeExact(x, dy, dx, fromPlane, toPlane, height, width); } catch (Throwable t) { throw rethrow(t); }
    }

    void axpby(float alpha, MemorySegment x, float beta, MemorySegment y, long from, long to) {
        try { axpby.invokeExact(alpha, x, beta, y, from, to); } catch (Throwable t) { throw rethrow(t); }
    }

    void add(float alpha, MemorySegment a, float beta, MemorySegment b, MemorySegment out, long from, long to) {
        try { add.invokeExact(alpha, a, beta, b, out, from, to); } catch (Throwable t) { throw rethrow(t); }
    }

    void multiply(MemorySegment a, MemorySegment b, MemorySegment out, long from, long to) {
        try { multiply.invokeExact(a, b, out, from, to); } catch (Throwable t) { throw rethrow(t); }
    }

    void relu(MemorySegment x, MemorySegment y, long from, long to) {
        try { relu.invokeExact(x, y, from, to); } catch (Throwable t) { throw rethrow(t); }
    }

    /** Backend.activationIncrement for relu and leaky relu (slope 0 and not leaky: relu); x, y, d, minus and delta may be null. */
    void reluIncrement(MemorySegment x0, MemorySegment dx, MemorySegment x, MemorySegment y, MemorySegment d, MemorySegment minus, MemorySegment change,
                       MemorySegment delta, float slope, boolean leaky, long from, long to) {
        MemorySegment sx = orNull(x), sy = orNull(y), sd = orNull(d), sm = orNull(minus), se = orNull(delta);
        int isLeaky = leaky ? 1 : 0;
        try { reluIncrement.invokeExact(x0, dx, sx, sy, sd, sm, change, se, slope, isLeaky, from, to); } catch (Throwable t) { throw rethrow(t); }
    }

    /**
     * Backend.activationIncrement for tanh, sigmoid, GELU and GELU's tanh approximation (kind: their Activation code), the
     * change in double as Activation.increment; x, y, d, minus and delta may be null.
     */
    void smoothIncrement(int kind, MemorySegment x0, MemorySegment dx, MemorySegment x, MemorySegment y, MemorySegment d, MemorySegment minus,
                         MemorySegment change, MemorySegment delta, long from, long to) {
        MemorySegment sx = orNull(x), sy = orNull(y), sd = orNull(d), sm = orNull(minus), se = orNull(delta);
        try { smoothIncrement.invokeExact(kind, x0, dx, sx, sy, sd, sm, change, se, from, to); } catch (Throwable t) { throw rethrow(t); }
    }

    /** tanh in double, rounded: the Java kernels' values but for a rare last-bit tie. */
    void tanh(MemorySegment x, MemorySegment y, long from, long to) {
        try { tanh.invokeExact(x, y, from, to); } catch (Throwable t) { throw rethrow(t); }
    }

    /** 1 / (1 + e^-x) in double, rounded, as {@link #tanh}. */
    void sigmoid(MemorySegment x, MemorySegment y, long from, long to) {
        try { sigmoid.invokeExact(x, y, from, to); } catch (Throwable t) { throw rethrow(t); }
    }

    private static MemorySegment orNull(MemorySegment s) { return s == null ? MemorySegment.NULL : s; }

    void reluBackward(MemorySegment x, MemorySegment dy, MemorySegment dx, long from, long to) {
        try { reluBackward.invokeExact(x, dy, dx, from, to); } catch (Throwable t) { throw rethrow(t); }
    }

    /** Leaky ReLU, bit for bit as the Java kernels. */
    void leakyRelu(MemorySegment x, MemorySegment y, float slope, long from, long to) {
        try { leakyRelu.invokeExact(x, y, slope, from, to); } catch (Throwable t) { throw rethrow(t); }
    }

    /** dx = dy leaky_relu'(x), bit for bit as the Java kernels. */
    void leakyReluBackward(MemorySegment x, MemorySegment dy, MemorySegment dx, float slope, long from, long to) {
        try { leakyReluBackward.invokeExact(x, dy, dx, slope, from, to); } catch (Throwable t) { throw rethrow(t); }
    }

    void gelu(MemorySegment x, MemorySegment y, long from, long to) {
        try { gelu.invokeExact(x, y, from, to); } catch (Throwable t) { throw rethrow(t); }
    }

    void geluBackward(MemorySegment x, MemorySegment dy, MemorySegment dx, long from, long to) {
        try { geluBackward.invokeExact(x, dy, dx, from, to); } catch (Throwable t) { throw rethrow(t); }
    }

    /** y = gelu(x) and d = gelu'(x), as {@link #gelu} and {@link #geluBackward} give them. */
    void geluWithDerivative(MemorySegment x, MemorySegment y, MemorySegment d, long from, long to) {
        try { geluWithDerivative.invokeExact(x, y, d, from, to); } catch (Throwable t) { throw rethrow(t); }
    }

    /** y = gelu_tanh(x) and d = gelu_tanh'(x), as {@link #geluTanh} and {@link #geluTanhBackward} give them. */
    void geluTanhWithDerivative(MemorySegment x, MemorySegment y, MemorySegment d, long from, long to) {
        try { geluTanhWithDerivative.invokeExact(x, y, d, from, to); } catch (Throwable t) { throw rethrow(t); }
    }

    void geluTanh(MemorySegment x, MemorySegment y, long from, long to) {
        try { geluTanh.invokeExact(x, y, from, to); } catch (Throwable t) { throw rethrow(t); }
    }

    void geluTanhBackward(MemorySegment x, MemorySegment dy, MemorySegment dx, long from, long to) {
        try { geluTanhBackward.invokeExact(x, dy, dx, from, to); } catch (Throwable t) { throw rethrow(t); }
    }

    void momentumUpdate(MemorySegment prediction, MemorySegment vhat, MemorySegment feedback, MemorySegment displacement, MemorySegment velocity,
                        MemorySegment belief, MemorySegment error, float eta, float momentum, boolean first, long from, long to) {
        MemorySegment e = error == null ? MemorySegment.NULL : error;
        int f = first ? 1 : 0;
        try { momentumUpdate.invokeExact(prediction, vhat, feedback, displacement, velocity, belief, e, eta, momentum, f, from, to); } catch (Throwable t) { throw rethrow(t); }
    }

    void adamUpdate(MemorySegment prediction, MemorySegment vhat, MemorySegment feedback, MemorySegment displacement, MemorySegment moment,
                    MemorySegment second, MemorySegment belief, MemorySegment error, float stepSize, float bc2Sqrt, float beta1, float beta2, float eps,
                    long from, long to) {
        MemorySegment e = error == null ? MemorySegment.NULL : error;
        try { adamUpdate.invokeExact(prediction, vhat, feedback, displacement, moment, second, belief, e, stepSize, bc2Sqrt, beta1, beta2, eps, from, to); }
        catch (Throwable t) { throw rethrow(t); }
    }

    void predictionError(MemorySegment prediction, MemorySegment vhat, MemorySegment displacement, MemorySegment error, MemorySegment derivative,
                         MemorySegment delta, MemorySegment next, float eta, float momentum, MemorySegment previous, long from, long to) {
        try { predictionError.invokeExact(prediction, vhat, displacement, error, derivative, delta, next, eta, momentum, previous, from, to); } catch (Throwable t) { throw rethrow(t); }
    }

    void strictUpdate(MemorySegment prediction, MemorySegment vhat, MemorySegment feedback, MemorySegment displacement,
                      MemorySegment belief, MemorySegment error, float eta, long from, long to) {
        MemorySegment e = error == null ? MemorySegment.NULL : error;
        try { strictUpdate.invokeExact(prediction, vhat, feedback, displacement, belief, e, eta, from, to); } catch (Throwable t) { throw rethrow(t); }
    }

    void strictStep(MemorySegment error, MemorySegment vhat, MemorySegment feedback, MemorySegment displacement, MemorySegment belief, float eta,
                    long from, long to) {
        try { strictStep.invokeExact(error, vhat, feedback, displacement, belief, eta, from, to); } catch (Throwable t) { throw rethrow(t); }
    }

    /** Sum of the losses of rows [from, to) (NaN for a bad label); writes their dlogits, (softmax - onehot) / divisor, unless null. */
    double softmaxCrossEntropy(MemorySegment logits, MemorySegment labels, MemorySegment dlogits, int from, int to, double divisor, int classes) {
        MemorySegment d = dlogits == null ? MemorySegment.NULL : dlogits;
        try {
            return (double) softmaxCrossEntropy.invokeExact(logits, labels, d, from, to, divisor, classes);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** The sum of squares of the first n floats, in double, in JavaKernels.sumSquares's order (the same bits). */
    double sumSquares(MemorySegment x, long n) {
        try { return (double) sumSquares.invokeExact(x, n); } catch (Throwable t) { throw rethrow(t); }
    }

    void adamStep(MemorySegment param, MemorySegment grad, MemorySegment m, MemorySegment v, float stepSize, float bc2Sqrt,
                  float beta1, float beta2, float eps, float weightDecay, float decay, long from, long to) {
        try { adamStep.invokeExact(param, grad, m, v, stepSize, bc2Sqrt, beta1, beta2, eps, weightDecay, decay, from, to); } catch (Throwable t) { throw rethrow(t); }
    }

    /**
     * A downcall's Throwable as what it is (FFM declares every call as throwing Throwable). The calls catch it
     * themselves rather than through a lambda, which would be an object per call.
     */
    private static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) return r;
        if (t instanceof Error e) throw e;
        return new IllegalStateException(t);
    }
}
