package io.predcode.spark;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.Map;

/**
 * Where a local Spark run (local[N]: the driver and its executors in this JVM) keeps Spark's scratch folders
 * (spark-*, blockmgr-*): in {@code <tmp>/predcode-spark-<pid>}, one folder per process, deleted when the run closes.
 * In the temporary folder itself they are deleted by Spark's shutdown hook, which SIGKILL never runs: each killed run
 * (a scheduler's SIGKILL after its grace period) left two folders there. A folder whose process is gone is deleted by the
 * next local run on the machine. One folder for the process, as Spark keeps the first local root it is given for the
 * JVM's life. Not where the user chose a folder (spark.local.dir, SPARK_LOCAL_DIRS) or the master is a cluster's,
 * whose executors are elsewhere.
 */
final class LocalScratch {
    private LocalScratch() {}

    static final String PREFIX = "predcode-spark-";

    /**
     * Whether a run on {@code master} with the user's settings {@code extra} keeps its scratch in this process's folder
     * ({@code spark.local.dir} set to {@link #folder}).
     */
    static boolean applies(String master, Map<String, String> extra) {
        return master.startsWith("local") && !extra.containsKey("spark.local.dir") && System.getenv("SPARK_LOCAL_DIRS") == null;
    }

    /** This process's folder in {@code tmp} (made when Spark first writes to it). */
    static Path folder(Path tmp) { return tmp.resolve(PREFIX + ProcessHandle.current().pid()); }

    /**
     * Deletes the folders in {@code tmp} of processes that are gone (a process id now another's keeps its folder until
     * that one ends); returns how many.
     */
    static int removeOrphans(Path tmp) {
        int removed = 0;
        try (var entries = Files.list(tmp)) {
            for (Path p : entries.filter(p -> p.getFileName().toString().matches(PREFIX + "\\d{1,18}")).toList()) {
                long pid = Long.parseLong(p.getFileName().toString().substring(PREFIX.length()));
                if (ProcessHandle.of(pid).isEmpty() && delete(p)) removed++;
            }
        } catch (IOException | RuntimeException e) {
            // a temporary folder it cannot list: nothing to stop a run for
        }
        return removed;
    }

    /** Deletes a folder and what it holds (links, not what they point to); whether it is gone. Another user's stays. */
    static boolean delete(Path dir) {
        try (var paths = Files.walk(dir)) {
            paths.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        } catch (IOException | RuntimeException e) {
            // gone meanwhile, or not ours to read
        }
        return !Files.exists(dir, java.nio.file.LinkOption.NOFOLLOW_LINKS);
    }
}
