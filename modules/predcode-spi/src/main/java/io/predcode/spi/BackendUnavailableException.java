package io.predcode.spi;

/** The named backend cannot run on this machine; the message says why. */
public class BackendUnavailableException extends RuntimeException {
    public BackendUnavailableException(String message) { super(message); }
    public BackendUnavailableException(String message, Throwable cause) { super(message, cause); }
}
