/**
 * The {@code cuda} backend: cuBLAS and predcode's kernels on the CUDA driver API, bound through the
 * Foreign Function and Memory API. Give it native access ({@code --enable-native-access=io.predcode.cuda}).
 */
module io.predcode.cuda {
    requires io.predcode.spi;

    provides io.predcode.spi.BackendProvider with io.predcode.cuda.CudaBackendProvider;
}
