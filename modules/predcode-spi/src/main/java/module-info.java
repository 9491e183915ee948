/**
 * predcode's backend SPI: tensors, the op set every backend implements, and backend discovery.
 * Backends are found with {@link java.util.ServiceLoader} ({@link io.predcode.spi.BackendProvider}).
 */
module io.predcode.spi {
    exports io.predcode.spi;

    uses io.predcode.spi.BackendProvider;
}
