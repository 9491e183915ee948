package io.predcode.core.json;

/** Malformed JSON, or JSON that does not have the fields expected; the message names the file and field. */
public class JsonException extends IllegalArgumentException {
    /** A JSON problem, with its file and JSON path in the message. */
    public JsonException(String message) { super(message); }
}
