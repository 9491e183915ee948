package io.predcode.cpu;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import io.predcode.spi.Activation;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

/** Where the build had gcc, the native kernels were built and must load: a broken build cannot pass as "Java kernels". */
class NativeKernelsTest {
    @Test void builtWhereverGccWas() {
        String why = NativeKernels.unavailable();
        boolean gcc = Files.isExecutable(Path.of("/usr/bin/gcc"));
        if (why != null && (!gcc || why.contains("this CPU has") || why.contains("built for linux-x86_64 only") || why.contains("turned off")))
            System.out.println("SKIPPED native CPU kernels: " + why);
        Assumptions.assumeTrue(why == null || gcc && !why.contains("this CPU has") && !why.contains("built for linux-x86_64 only") && !why.contains("turned off"),
                () -> "native CPU kernels unavailable: " + why);
        assertNotNull(NativeKernels.get(), () -> "gcc is here, so the build compiled the native kernels, yet they did not load: " + why);
        System.out.println("native CPU kernels: " + NativeKernels.get().isa());
    }

    /** Leaky ReLU's native forward and gradient give the Java kernels' bits, at zeros of both signs, NaN, infinities and subnormals too. */
    @Test void leakyReluMatchesTheJavaKernelsBitForBit() {
        NativeKernels k = NativeKernels.get();
        Assumptions.assumeTrue(k != null, () -> "native CPU kernels unavailable: " + NativeKernels.unavailable());
        float[] special = {0f, -0f, 1f, -1f, Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.MIN_VALUE, -Float.MIN_VALUE,
                Float.MIN_NORMAL, -Float.MIN_NORMAL, Float.MAX_VALUE, -Float.MAX_VALUE, 3e-39f, -3e-39f};
        int n = 1031; // past the vector width, not a multiple of it
        float[] x = new float[n], dy = new float[n];
        java.util.SplittableRandom r = new java.util.SplittableRandom(7);
        for (int i = 0; i < n; i++) {
            x[i] = i < special.length ? special[i] : (float) (r.nextDouble(-4, 4) * Math.pow(10, r.nextInt(-6, 3)));
            dy[i] = i % 17 == 0 ? special[i % special.length] : (float) r.nextDouble(-2, 2);
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment sx = floats(arena, x), sd = floats(arena, dy), a = arena.allocate(4L * n, 64), b = arena.allocate(4L * n, 64);
            for (float slope : new float[]{0.01f, 0f, 1f, 1.5f, -0.5f}) {
                JavaKernels.activation(Activation.LEAKY_RELU, slope, sx, a, 0, n);
                k.leakyRelu(sx, b, slope, 0, n);
                same("forward, slope " + slope, a, b, n);
                JavaKernels.activationBackward(Activation.LEAKY_RELU, slope, sx, sx, sd, a, 0, n);
                k.leakyReluBackward(sx, sd, b, slope, 0, n);
                same("gradient, slope " + slope, a, b, n);
            }
        }
    }

    /**
     * The sum of squares, both builds (AVX-512 where this CPU has it, and AVX2), gives the Java kernel's bits: lengths
     * around the eight running sums and the Java kernel's 1024-float chunks, magnitudes far apart (where the order of the
     * additions shows), and NaN and infinities.
     */
    @Test void sumOfSquaresMatchesTheJavaKernelsBitForBit() throws java.io.IOException {
        Assumptions.assumeTrue(NativeKernels.get() != null, () -> "native CPU kernels unavailable: " + NativeKernels.unavailable());
        java.util.List<NativeKernels> builds = new java.util.ArrayList<>(java.util.List.of(NativeKernels.get()));
        if (NativeKernels.get().width == 16) builds.add(NativeKernels.withWidth(8));
        java.util.SplittableRandom r = new java.util.SplittableRandom(3);
        try (Arena arena = Arena.ofConfined()) {
            for (int n : new int[]{0, 1, 7, 8, 9, 15, 17, 1023, 1024, 1031, 4099, 100_003}) {
                float[] x = new float[n];
                for (int i = 0; i < n; i++) x[i] = (float) (r.nextDouble(-1, 1) * Math.pow(10, r.nextInt(-3, 4)));
                MemorySegment sx = floats(arena, x);
                double java = JavaKernels.sumSquares(sx, n);
                double reference = 0;
                for (float v : x) reference += (double) v * v;
                assertEquals(reference, java, Math.abs(reference) * 1e-12, "the Java kernel against a plain sum, n " + n);
                for (NativeKernels k : builds) assertEquals(Double.doubleToRawLongBits(java), Double.doubleToRawLongBits(k.sumSquares(sx, n)), k.isa() + ", n " + n);
            }
            for (float special : new float[]{Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY}) {
                float[] x = new float[37];
                java.util.Arrays.fill(x, 0.5f);
                x[36] = special; // in the tail, after the vector loop
                MemorySegment sx = floats(arena, x);
                for (NativeKernels k : builds) assertEquals(Double.doubleToRawLongBits(JavaKernels.sumSquares(sx, 37)), Double.doubleToRawLongBits(k.sumSquares(sx, 37)), k.isa() + ", " + special);
            }
        }
    }

    private static MemorySegment floats(Arena arena, float[] v) {
        MemorySegment s = arena.allocate(4L * v.length, 64);
        MemorySegment.copy(v, 0, s, ValueLayout.JAVA_FLOAT, 0, v.length);
        return s;
    }

    private static void same(String what, MemorySegment java, MemorySegment nat, int n) {
        for (int i = 0; i < n; i++)
            assertEquals(Float.floatToRawIntBits(java.getAtIndex(ValueLayout.JAVA_FLOAT, i)), Float.floatToRawIntBits(nat.getAtIndex(ValueLayout.JAVA_FLOAT, i)),
                    what + ", element " + i);
    }
}
