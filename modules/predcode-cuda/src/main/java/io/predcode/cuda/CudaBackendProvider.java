package io.predcode.cuda;

import io.predcode.spi.Availability;
import io.predcode.spi.Backend;
import io.predcode.spi.BackendOptions;
import io.predcode.spi.BackendProvider;
import io.predcode.spi.BackendUnavailableException;

import java.nio.file.Path;
import java.util.List;
import java.util.stream.Collectors;

/**
 * The {@code cuda} backend. Availability is probed once per process, through FFM: the CUDA driver
 * (libcuda.so.1: cuInit, a device), cuBLAS (libcublas.so.13, else .12), the kernels built into this
 * jar, and a trial open (context, stream, module load), so "driver too old for the kernels" is
 * reported here rather than at the first step. Every failure becomes the reason shown.
 *
 * <p>{@code -Dpredcode.cuda.driver=PATH} pointing at predcode's host simulator of the driver
 * (native/cuda/sim, built into {@code modules/predcode-cuda/target/cudasim}) runs the backend without a
 * GPU; its description then starts with "simulated".
 */
public final class CudaBackendProvider implements BackendProvider {
    static final String DRIVER_PROPERTY = "predcode.cuda.driver", DRIVER_ENV = "PREDCODE_CUDA_DRIVER";
    static final String CUBLAS_PROPERTY = "predcode.cuda.cublas", CUBLAS_ENV = "PREDCODE_CUDA_CUBLAS";
    /** Set (to true) where CUDA must run, e.g. on the simulator in CI or on a GPU in the kit: unavailability is then an error, not a skip. */
    static final String REQUIRE_PROPERTY = "predcode.require.cuda";

    private record Probe(Availability availability, CudaDriver driver, Path cublas, byte[] kernels) {}

    private static volatile Probe probe;

    @Override public String name() { return "cuda"; }

    @Override public Availability availability() {
        Availability a = probe().availability();
        if (!a.available() && Boolean.getBoolean(REQUIRE_PROPERTY))
            throw new IllegalStateException("-D" + REQUIRE_PROPERTY + "=true, but the cuda backend is unavailable: " + a.reason());
        return a;
    }

    @Override public Backend open(BackendOptions options) {
        Probe p = probe();
        if (!p.availability().available()) throw new BackendUnavailableException("backend 'cuda' is unavailable: " + p.availability().reason());
        return new CudaBackend(p.driver(), p.cublas(), p.kernels(), options);
    }

    private static synchronized Probe probe() {
        if (probe == null) probe = runProbe();
        return probe;
    }

    private static Probe runProbe() {
        List<Path> search = CudaLibraries.searchPath(System.getenv());
        String explicitDriver = System.getProperty(DRIVER_PROPERTY, System.getenv(DRIVER_ENV));
        Path driverPath = CudaLibraries.find(explicitDriver, search, "libcuda.so.1", "libcuda.so");
        if (driverPath == null)
            return no("no CUDA driver: libcuda.so.1 not found (looked in " + describe(explicitDriver, search) + "); install the NVIDIA driver or set -D" + DRIVER_PROPERTY + "=PATH");
        CudaDriver driver;
        int devices;
        try {
            driver = new CudaDriver(driverPath);
            driver.init();
            devices = driver.deviceCount();
        } catch (Throwable t) {
            return no("CUDA driver " + driverPath + " could not be used: " + t.getMessage());
        }
        if (devices == 0) return no("CUDA driver " + driverPath + " found, but no CUDA device is visible");
        String explicitBlas = System.getProperty(CUBLAS_PROPERTY, System.getenv(CUBLAS_ENV));
        // The host simulator carries its own cuBLAS.
        if (explicitBlas == null && driver.simulator() != null) explicitBlas = driverPath.toString();
        Path cublas = CudaLibraries.find(explicitBlas, search, "libcublas.so.13", "libcublas.so.12", "libcublas.so");
        if (cublas == null)
            return no("CUDA driver found with " + devices + " device(s), but cuBLAS (libcublas.so.13 or .12) was not found (looked in "
                    + describe(explicitBlas, search) + "); set -D" + CUBLAS_PROPERTY + "=PATH");
        byte[] kernels = Kernels.image();
        if (kernels == null) return no("kernels not built: this jar was built without nvcc (rebuild on a machine with the CUDA toolkit)");
        try (Backend trial = new CudaBackend(driver, cublas, kernels, BackendOptions.defaults())) {
            return new Probe(Availability.yes(trial.description()), driver, cublas, kernels);
        } catch (Throwable t) {
            return no("CUDA device found, but the backend could not start: " + t.getMessage());
        }
    }

    private static Probe no(String reason) { return new Probe(Availability.no(reason), null, null, null); }

    private static String describe(String explicit, List<Path> search) {
        String dirs = search.stream().map(Path::toString).collect(Collectors.joining(", "));
        return (explicit != null ? explicit + ", " : "") + dirs;
    }
}
