package io.predcode.cpu;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertNotNull;

/** Where the build had gcc, the native kernels were built and must load: a broken build cannot pass as "Java kernels". */
class NativeKernelsTest {
    @Test void builtWhereverGccWas() {
        String why = NativeKernels.unavailable();
        boolean gcc = Files.isExecutable(Path.of("/usr/bin/gcc"));
        if (why != null && (!gcc || why.contains("this CPU has") || why.contains("built for linux-x86_64 only") || why.contains("turned off")))
            System.out.println("SKIPPED native CPU kernels: " + why);
        Assumptions.assumeTrue(why == null || gcc && !why.contains("this CPU has") && !why.contains("built for linux-x86_64 only") && !why.contains("turned off"),
                () -> "native CPU kernels unavailable: " + why);
        assertNotNull(NativeKernels.get(), () -> "gcc is here, so the build compiled the native kernels, yet they did not load: " + why);
        System.out.println("native CPU kernels: " + NativeKernels.get().isa());
    }
}
