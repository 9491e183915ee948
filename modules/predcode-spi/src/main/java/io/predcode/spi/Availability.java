package io.predcode.spi;

/** Whether a backend can run here, and if not, a sentence saying why (no driver, library not found, ...). */
public record Availability(boolean available, String reason) {
    public static Availability yes(String detail) { return new Availability(true, detail); }
    public static Availability no(String reason) { return new Availability(false, reason); }
}
