package io.predcode.spi;

/**
 * A backend implementation, found with {@link java.util.ServiceLoader} and chosen by {@link #name()}.
 * Implementations must be cheap to construct: {@link #availability()} does the probing.
 */
public interface BackendProvider {
    /** Short name users type: {@code cpu}, {@code cuda}. */
    String name();

    /** Probes the machine (libraries, drivers, devices); never throws. */
    Availability availability();

    /** Opens a backend; throws {@link BackendUnavailableException} with the reason when it cannot run here. */
    Backend open(BackendOptions options);
}
