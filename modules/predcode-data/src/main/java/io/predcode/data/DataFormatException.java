package io.predcode.data;

import java.io.IOException;

/** A data file that is truncated, corrupt or not what its name says; the message names the file and the field. */
public class DataFormatException extends IOException {
    /** A malformed data file; the message names it and what was wrong. */
    public DataFormatException(String message) { super(message); }
}
