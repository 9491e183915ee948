package io.predcode.cpu;

import io.predcode.spi.Backend;
import io.predcode.spi.conformance.BackendConformanceTest;
import io.predcode.spi.BackendOptions;
import io.predcode.spi.BackendProvider;

/**
 * The conformance suite on the CPU backend with its Java kernels only: what runs where predcode's
 * native kernels are not built or the CPU has no AVX2 ({@link CpuConformanceTest} runs the native ones).
 */
class CpuJavaKernelsConformanceTest extends BackendConformanceTest {
    @Override protected String backendName() { return "cpu"; }

    @Override protected Backend openBackend(BackendProvider provider) {
        return new CpuBackend(OpenBlas.get(), BackendOptions.defaults(), null);
    }
}
