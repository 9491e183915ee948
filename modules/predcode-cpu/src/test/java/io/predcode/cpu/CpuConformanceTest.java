package io.predcode.cpu;

import io.predcode.spi.BackendConformanceTest;

class CpuConformanceTest extends BackendConformanceTest {
    @Override protected String backendName() { return "cpu"; }
}
