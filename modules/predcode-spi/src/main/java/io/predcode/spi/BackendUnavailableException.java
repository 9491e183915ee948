package io.predcode.spi;

/** The named backend cannot run on this machine; the message says why. */
public class BackendUnavailableException extends RuntimeException {
    /** An unavailable backend, with the reason. */
    public BackendUnavailableException(String message) { super(message); }
    /** An unavailable backend, with the reason and its cause. */
    public BackendUnavailableException(String message, Throwable cause) { super(message, cause); }
}
