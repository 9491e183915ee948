package io.predcode.cpu;

import io.predcode.spi.Backend;
import io.predcode.spi.conformance.BackendConformanceTest;
import io.predcode.spi.BackendOptions;
import io.predcode.spi.BackendProvider;
import org.junit.jupiter.api.Assumptions;

/**
 * The conformance suite on the AVX2 build of the native kernels, which CPUs without AVX-512 run: on an
 * AVX-512 machine {@link CpuConformanceTest} runs the other build, so this one would go untested.
 */
class CpuAvx2ConformanceTest extends BackendConformanceTest {
    @Override protected String backendName() { return "cpu"; }

    @Override protected Backend openBackend(BackendProvider provider) {
        NativeKernels avx2;
        try {
            avx2 = NativeKernels.withWidth(8);
        } catch (Exception e) {
            System.out.println("SKIPPED the AVX2 build of the native CPU kernels: " + e.getMessage());
            Assumptions.abort("AVX2 native kernels unavailable: " + e.getMessage());
            throw new AssertionError(e);
        }
        return new CpuBackend(OpenBlas.get(), BackendOptions.defaults(), avx2);
    }
}
