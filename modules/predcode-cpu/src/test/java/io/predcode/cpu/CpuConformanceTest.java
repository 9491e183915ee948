package io.predcode.cpu;

import io.predcode.spi.conformance.BackendConformanceTest;
import io.predcode.spi.Tensor;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CpuConformanceTest extends BackendConformanceTest {
    @Override protected String backendName() { return "cpu"; }

    /** A confident softmax must not hand subnormal gradients to the sweeps (they cost x86 ~100 cycles an operation). */
    @Test void crossEntropyGradientHasNoSubnormals() {
        float[] logits = {0f, -95f, -200f, 3f, /**/ 50f, -50f, 0f, 1f};
        float[] labels = {0f, 0f};
        try (Tensor tl = tensor(logits, 2, 4); Tensor ty = tensor(labels, 2); Tensor loss = backend.allocate(1); Tensor g = backend.allocate(2, 4)) {
            backend.softmaxCrossEntropy(tl, ty, loss, g);
            float[] got = backend.download(g);
            for (int i = 0; i < got.length; i++)
                assertTrue(got[i] == 0f || Math.abs(got[i]) >= Float.MIN_NORMAL, "gradient[" + i + "] = " + got[i] + " is subnormal");
            assertEquals(0f, got[1], "e^-95 / 2 is below float's normal range: flushed to zero");
            assertTrue(got[3] > 0.4f, "the large entries are untouched");
        }
    }
}
