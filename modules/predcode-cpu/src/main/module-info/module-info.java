/**
 * The {@code cpu} backend: OpenBLAS (from org.bytedeco:openblas) for GEMM and predcode's native or
 * Java kernels for the rest, all through the Foreign Function and Memory API. Give it native access
 * ({@code --enable-native-access=io.predcode.cpu,org.bytedeco.javacpp}).
 *
 * <p>This file is a template: the build fills in the platform of the OpenBLAS natives it pulls
 * (property predcode.natives), since JavaCPP ships them as one module per platform and the module
 * system resolves only the modules something requires.
 */
module io.predcode.cpu {
    requires transitive io.predcode.spi; // CpuBackend's public methods take and return its types
    requires org.bytedeco.javacpp;
    requires org.bytedeco.openblas;
    requires org.bytedeco.javacpp.${predcode.natives.module};
    requires org.bytedeco.openblas.${predcode.natives.module};

    exports io.predcode.cpu;

    provides io.predcode.spi.BackendProvider with io.predcode.cpu.CpuBackendProvider;
}
