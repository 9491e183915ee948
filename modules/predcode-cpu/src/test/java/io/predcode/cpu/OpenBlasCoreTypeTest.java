package io.predcode.cpu;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The description's warning where OPENBLAS_CORETYPE holds OpenBLAS below the CPU. */
class OpenBlasCoreTypeTest {
    @Test void warnsOnlyWhereTheVariableHoldsOpenBlasBelowAnAvx512Cpu() {
        String held = OpenBlas.coreTypeWarning("Haswell", "Haswell", true);
        assertTrue(held.contains("OPENBLAS_CORETYPE=Haswell") && held.contains("AVX-512"), held);
        assertTrue(OpenBlas.coreTypeWarning("zen", "Zen", true).contains("Zen kernels"));
        assertEquals("", OpenBlas.coreTypeWarning(null, "Haswell", true), "OpenBLAS chose itself");
        assertEquals("", OpenBlas.coreTypeWarning(" ", "Haswell", true), "an empty variable is OpenBLAS's own choice");
        assertEquals("", OpenBlas.coreTypeWarning("Haswell", "Haswell", false), "an AVX2 CPU loses nothing");
        for (String avx512 : new String[]{"SkylakeX", "Cooperlake", "SapphireRapids", "cooperlake"})
            assertEquals("", OpenBlas.coreTypeWarning(avx512, avx512, true), avx512);
    }

    /** The bound openblas_get_corename names the kernels that openblas_get_config names. */
    @Test void coreNameIsTheConfigs() {
        OpenBlas blas = OpenBlas.get();
        String core = blas.coreName();
        assertFalse(core.isBlank() || core.equals("unknown"), core);
        assertTrue(blas.config().toLowerCase(java.util.Locale.ROOT).contains(core.toLowerCase(java.util.Locale.ROOT)), blas.config() + " / " + core);
        System.out.println("OpenBLAS core: " + core + "; OPENBLAS_CORETYPE=" + System.getenv("OPENBLAS_CORETYPE"));
    }
}
