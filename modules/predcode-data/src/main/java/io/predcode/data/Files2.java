package io.predcode.data;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.zip.GZIPInputStream;

/** Reads a whole file, gunzipping it when it starts with the gzip magic. */
final class Files2 {
    private Files2() {}

    static byte[] readMaybeGzip(Path file) throws IOException {
        byte[] raw;
        try {
            raw = Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new NoSuchFileException(file.toString(), null, "file not found");
        }
        return gunzipIfNeeded(raw, file.toString());
    }

    static byte[] gunzipIfNeeded(byte[] raw, String name) throws IOException {
        if (raw.length >= 2 && (raw[0] & 0xff) == 0x1f && (raw[1] & 0xff) == 0x8b) {
            try (InputStream in = new GZIPInputStream(new java.io.ByteArrayInputStream(raw))) {
                return in.readAllBytes();
            } catch (IOException e) {
                throw new DataFormatException(name + ": corrupt gzip stream (" + e.getMessage() + ")");
            }
        }
        return raw;
    }
}
