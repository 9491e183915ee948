package io.predcode.cpu;

import io.predcode.spi.Availability;
import io.predcode.spi.Backend;
import io.predcode.spi.BackendOptions;
import io.predcode.spi.BackendProvider;
import io.predcode.spi.BackendUnavailableException;

/** The {@code cpu} backend: OpenBLAS for GEMM, predcode's native kernels where they apply, Java kernels for the rest. */
public final class CpuBackendProvider implements BackendProvider {
    /** The provider; {@link java.util.ServiceLoader} makes it. */
    public CpuBackendProvider() {}

    @Override public String name() { return "cpu"; }

    @Override public Availability availability() {
        try {
            OpenBlas blas = OpenBlas.get();
            return Availability.yes(blas.config().trim() + ", " + Runtime.getRuntime().availableProcessors() + " cores");
        } catch (RuntimeException | LinkageError e) {
            return Availability.no(e.getMessage());
        }
    }

    @Override public Backend open(BackendOptions options) {
        Availability a = availability();
        if (!a.available()) throw new BackendUnavailableException("backend 'cpu' is unavailable: " + a.reason());
        return new CpuBackend(OpenBlas.get(), options, NativeKernels.get());
    }
}
