package io.predcode.cuda;

import io.predcode.spi.Availability;
import io.predcode.spi.Backend;
import io.predcode.spi.BackendOptions;
import io.predcode.spi.BackendProvider;
import io.predcode.spi.BackendUnavailableException;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Collectors;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * The {@code cuda} backend's provider. It probes, through FFM, for the CUDA driver (libcuda.so.1),
 * initialises it and counts devices, and looks for cuBLAS; each failure becomes the reason shown by
 * {@code predcode backends}. The device op set is not implemented in this build, so even on a
 * machine with a GPU the backend reports itself unavailable and says so.
 */
public final class CudaBackendProvider implements BackendProvider {
    static final String DRIVER_PROPERTY = "predcode.cuda.driver", DRIVER_ENV = "PREDCODE_CUDA_DRIVER";
    static final String CUBLAS_PROPERTY = "predcode.cuda.cublas", CUBLAS_ENV = "PREDCODE_CUDA_CUBLAS";

    @Override public String name() { return "cuda"; }

    @Override public Availability availability() {
        List<Path> search = CudaLibraries.searchPath(System.getenv());
        String explicitDriver = System.getProperty(DRIVER_PROPERTY, System.getenv(DRIVER_ENV));
        Path driver = CudaLibraries.find(explicitDriver, search, "libcuda.so.1", "libcuda.so");
        if (driver == null)
            return Availability.no("no CUDA driver: libcuda.so.1 not found (looked in " + describe(explicitDriver, search)
                    + "); install the NVIDIA driver or set -D" + DRIVER_PROPERTY + "=PATH");
        int devices;
        try {
            devices = countDevices(driver);
        } catch (Throwable t) {
            return Availability.no("CUDA driver " + driver + " could not be used: " + t.getMessage());
        }
        if (devices <= 0) return Availability.no("CUDA driver " + driver + " found, but " + (devices == 0 ? "no CUDA device is visible" : "cuInit failed with error " + (-devices)));
        String explicitBlas = System.getProperty(CUBLAS_PROPERTY, System.getenv(CUBLAS_ENV));
        Path cublas = CudaLibraries.find(explicitBlas, search, "libcublas.so.13", "libcublas.so.12", "libcublas.so");
        if (cublas == null)
            return Availability.no("CUDA driver found with " + devices + " device(s), but cuBLAS (libcublas.so.13 or .12) was not found (looked in "
                    + describe(explicitBlas, search) + "); set -D" + CUBLAS_PROPERTY + "=PATH");
        return Availability.no("CUDA driver and cuBLAS found (" + devices + " device(s), " + cublas + "), but this build of predcode has no CUDA kernels yet; use --backend cpu");
    }

    @Override public Backend open(BackendOptions options) {
        throw new BackendUnavailableException("backend 'cuda' is unavailable: " + availability().reason());
    }

    private static String describe(String explicit, List<Path> search) {
        String dirs = search.stream().map(Path::toString).collect(Collectors.joining(", "));
        return (explicit != null ? explicit + ", " : "") + dirs;
    }

    /** cuInit(0) then cuDeviceGetCount; returns the count, or -error when cuInit fails. */
    static int countDevices(Path driver) throws Throwable {
        Linker linker = Linker.nativeLinker();
        try (Arena arena = Arena.ofConfined()) {
            SymbolLookup lib = SymbolLookup.libraryLookup(driver, arena);
            MethodHandle cuInit = linker.downcallHandle(lib.findOrThrow("cuInit"), FunctionDescriptor.of(JAVA_INT, JAVA_INT));
            MethodHandle count = linker.downcallHandle(lib.findOrThrow("cuDeviceGetCount"), FunctionDescriptor.of(JAVA_INT, ADDRESS));
            int rc = (int) cuInit.invokeExact(0);
            if (rc != 0) return -rc;
            MemorySegment n = arena.allocate(JAVA_INT);
            rc = (int) count.invokeExact(n);
            if (rc != 0) return -rc;
            return n.get(JAVA_INT, 0);
        }
    }
}
