package io.predcode.core.io;

import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * Writes a file completely or not at all: a temporary file in the same folder, forced to disk, then a
 * rename, and the folder forced too, so that after a crash the file is the old one or the new one.
 */
public final class AtomicFiles {
    private AtomicFiles() {}

    /** Writes {@code content} to a temporary file beside {@code target}, then renames it over the target. */
    public static void write(Path target, byte[] content) throws IOException {
        // The rename would replace an empty folder with the file (and fail on a full one, naming the temporary file).
        if (Files.isDirectory(target)) throw new java.nio.file.FileSystemException(target.toAbsolutePath().toString(), null, "is a folder, not a file to write");
        Path dir = target.toAbsolutePath().getParent();
        Files.createDirectories(dir);
        if (!Files.isWritable(dir)) throw new AccessDeniedException(dir.toString(), null, "folder is not writable");
        Path tmp;
        try {
            tmp = Files.createTempFile(dir, "." + target.getFileName() + ".", ".tmp");
        } catch (java.nio.file.FileSystemException e) {
            // Name the file asked for, not the temporary one beside it (a folder such as /proc takes no new files).
            throw new java.nio.file.FileSystemException(target.toString(), null, "cannot be written in " + dir + (e.getReason() != null ? " (" + e.getReason() + ")" : ""));
        }
        try {
            try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(tmp, java.nio.file.StandardOpenOption.WRITE,
                    java.nio.file.StandardOpenOption.TRUNCATE_EXISTING)) {
                java.nio.ByteBuffer buf = java.nio.ByteBuffer.wrap(content);
                while (buf.hasRemaining()) ch.write(buf);
                ch.force(true);
            }
            try {
                // createTempFile makes the file private (0600); a result file should read like any other.
                Files.setPosixFilePermissions(tmp, java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--"));
            } catch (UnsupportedOperationException e) {
                // not a POSIX file system: keep the default
            }
            try {
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
            }
            forceFolder(dir);
        } catch (java.nio.file.FileSystemException e) {
            throw e; // names its files already
        } catch (IOException e) {
            // A full disk or a failing device: FileChannel says only "No space left on device"; name the file, and that it is as it was.
            throw new java.nio.file.FileSystemException(target.toString(), null, "not written (" + e.getMessage() + "); the file there before, if any, is unchanged");
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /** Makes a rename in {@code dir} durable (fsync of the folder); a file system that cannot is left as it is. */
    private static void forceFolder(Path dir) {
        try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(dir, java.nio.file.StandardOpenOption.READ)) {
            ch.force(true);
        } catch (IOException | UnsupportedOperationException e) {
            // Some file systems do not open folders; the rename itself is still atomic there.
        }
    }

    /**
     * Removes temporary files an interrupted write left in {@code dir} (named ".NAME.*.tmp" by
     * {@link #write}); returns how many.
     *
     * @param dir the folder to clean
     * @return the number of files removed
     * @throws IOException if the folder cannot be listed
     */
    public static int removeStale(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) return 0;
        int n = 0;
        try (var files = Files.list(dir)) {
            for (Path f : files.filter(f -> f.getFileName().toString().startsWith(".") && f.getFileName().toString().endsWith(".tmp")).toList())
                if (Files.deleteIfExists(f)) n++;
        }
        return n;
    }

    /** As {@link #write}, for UTF-8 text. */
    public static void writeString(Path target, String content) throws IOException {
        write(target, content.getBytes(java.nio.charset.StandardCharsets.UTF_8));
    }
}
