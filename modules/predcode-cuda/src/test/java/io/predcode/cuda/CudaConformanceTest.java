package io.predcode.cuda;

import io.predcode.spi.conformance.BackendConformanceTest;

/** The SPI conformance suite on the GPU; skipped with the reason printed where CUDA is unavailable. */
class CudaConformanceTest extends BackendConformanceTest {
    @Override protected String backendName() { return "cuda"; }
}
