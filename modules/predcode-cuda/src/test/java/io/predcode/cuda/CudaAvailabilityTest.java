package io.predcode.cuda;

import io.predcode.spi.Availability;
import io.predcode.spi.BackendOptions;
import io.predcode.spi.BackendUnavailableException;
import io.predcode.spi.Backends;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** What needs no GPU: discovery, the library search and the reasons given. */
class CudaAvailabilityTest {
    @Test void providerIsFoundByName() {
        assertEquals("cuda", Backends.provider("cuda").name());
    }

    @Test void availabilityIsHonest() {
        Availability a = Backends.provider("cuda").availability();
        System.out.println("cuda availability: " + a);
        assertFalse(a.reason().isBlank());
        if (a.available()) {
            try (var be = Backends.open("cuda", BackendOptions.defaults())) { assertFalse(be.description().isBlank()); }
        } else {
            BackendUnavailableException e = assertThrows(BackendUnavailableException.class, () -> Backends.open("cuda", BackendOptions.defaults()));
            assertTrue(e.getMessage().contains("unavailable") && e.getMessage().contains(a.reason()), e.getMessage());
        }
    }

    @Test void kernelsAreBuiltWhereTheToolkitIs() {
        if (Files.exists(Path.of("/usr/local/cuda/bin/nvcc"))) {
            byte[] image = Kernels.image();
            assertNotNull(image, "nvcc is installed, so the build must have compiled native/cuda/predcode.cu");
            assertTrue(image.length > 10_000, "fatbin of " + image.length + " bytes");
        } else {
            System.out.println("SKIPPED kernel build check: no nvcc at /usr/local/cuda/bin/nvcc");
        }
    }

    @Test void searchPathCoversTheUsualPlacesInOrder() {
        List<Path> dirs = CudaLibraries.searchPath(Map.of("LD_LIBRARY_PATH", "/a:/b", "CUDA_HOME", "/opt/cuda-13"));
        assertEquals(Path.of("/a"), dirs.get(0));
        assertEquals(Path.of("/b"), dirs.get(1));
        assertEquals(Path.of("/opt/cuda-13/lib64"), dirs.get(2));
        assertTrue(dirs.contains(Path.of("/usr/local/cuda/lib64")));
    }

    @Test void findsPythonNvidiaPackagesAndExplicitFiles(@TempDir Path tmp) throws Exception {
        Path lib = tmp.resolve("venv/lib/python3.12/site-packages/nvidia/cublas/lib");
        Files.createDirectories(lib);
        Files.writeString(lib.resolve("libcublas.so.13"), "");
        List<Path> found = CudaLibraries.pythonNvidiaDirs(List.of(tmp));
        assertEquals(List.of(lib), found);
        assertEquals(lib.resolve("libcublas.so.13"), CudaLibraries.find(null, found, "libcublas.so.13", "libcublas.so.12"));
        Path explicit = tmp.resolve("my-libcuda.so");
        Files.writeString(explicit, "");
        assertEquals(explicit, CudaLibraries.find(explicit.toString(), found, "libcuda.so.1"));
        assertNull(CudaLibraries.find(null, List.of(tmp), "libcuda.so.1"));
    }

    /** A file that is no library (a mistyped path) is refused by its header, before the loader and the JVM's warnings see it. */
    @Test void aFileThatIsNoLibraryIsRefusedByItsHeader(@TempDir Path tmp) throws Exception {
        for (String text : new String[]{"", "ELF", "root:x:0:0:root:/root:/bin/bash\n"}) {
            Path notALibrary = Files.writeString(tmp.resolve("libcuda.so.1"), text);
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> new Native(notALibrary));
            assertEquals(notALibrary + " is not a shared library (no ELF header)", e.getMessage());
        }
        Path elf = Path.of(System.getProperty("java.home"), "lib", "libjava.so");
        assertEquals(elf, new Native(elf).path, "a real shared library opens");
    }
}
