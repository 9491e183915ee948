package io.predcode.spi;

/** Whether a backend can run here, and if not, a sentence saying why (no driver, library not found, ...). */
public record Availability(boolean available, String reason) {
    /** Available, with a line describing what runs (library versions, cores). */
    public static Availability yes(String detail) { return new Availability(true, detail); }
    /** Not available, with the sentence saying why. */
    public static Availability no(String reason) { return new Availability(false, reason); }
}
