package io.predcode.cli;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * A run folder trains one run at a time. A second run into it (`./predcode train` in a second terminal, both into
 * runs/latest, or a job started twice) would interleave its checkpoints and metrics with the first's, and delete the
 * first's files in flight as stale: it is refused in one line naming the process that holds the folder. The operating
 * system releases the lock when that process ends, however it ends (SIGKILL too), so a lock is never stale; the file
 * stays, empty of meaning, between runs.
 */
final class RunLock implements AutoCloseable {
    static final String FILE = ".predcode.lock";

    private final FileChannel channel;
    private final FileLock lock;

    private RunLock(FileChannel channel, FileLock lock) {
        this.channel = channel;
        this.lock = lock;
    }

    /**
     * Takes {@code dir} for this run.
     *
     * @throws IllegalArgumentException where another run holds it
     */
    static RunLock take(Path dir) {
        Path file = dir.resolve(FILE);
        FileChannel channel;
        try {
            channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
        } catch (IOException e) {
            return new RunLock(null, null); // a folder that cannot take a file: the --out probe says so next
        }
        FileLock lock;
        try {
            lock = channel.tryLock();
        } catch (OverlappingFileLockException e) { // this process holds it: a run on another thread
            lock = null;
        } catch (IOException e) { // a file system without locks (some network mounts): no guard, as before
            close(channel);
            return new RunLock(null, null);
        }
        if (lock == null) {
            close(channel);
            String holder;
            try {
                holder = Files.readString(file, StandardCharsets.UTF_8).strip();
            } catch (IOException e) {
                holder = "";
            }
            throw new IllegalArgumentException("--out " + dir + " is being trained into by another run" + (holder.isEmpty() ? "" : " (" + holder + ")")
                    + "; wait for it to end, stop it, or give another --out");
        }
        try { // who holds it, for the refusal above; a full disk leaves it empty, and the lock holds all the same
            channel.truncate(0);
            channel.write(ByteBuffer.wrap(("process " + ProcessHandle.current().pid() + "\n").getBytes(StandardCharsets.UTF_8)), 0);
        } catch (IOException e) {
            // the refusal then names no process
        }
        return new RunLock(channel, lock);
    }

    @Override public void close() {
        if (lock != null) {
            try {
                lock.release();
            } catch (IOException e) {
                // closing the channel releases it too
            }
        }
        if (channel != null) close(channel);
    }

    private static void close(FileChannel channel) {
        try {
            channel.close();
        } catch (IOException e) {
            // nothing was written through it that matters
        }
    }
}
