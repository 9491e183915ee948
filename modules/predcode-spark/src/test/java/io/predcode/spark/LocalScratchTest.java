package io.predcode.spark;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A local Spark run's scratch: in a folder of its process, and a gone process's folder removed by the next run. */
class LocalScratchTest {
    @Test void aGoneProcesssFolderIsRemovedAndNoOtherIs(@TempDir Path tmp) throws Exception {
        Process ended = new ProcessBuilder("true").start();
        ended.waitFor();
        Path gone = tmp.resolve(LocalScratch.PREFIX + ended.pid()), mine = LocalScratch.folder(tmp), other = tmp.resolve(LocalScratch.PREFIX + "notapid");
        Path outside = Files.writeString(tmp.resolve("kept.txt"), "not Spark's");
        Files.createDirectories(gone.resolve("blockmgr-1/0a"));
        Files.writeString(gone.resolve("blockmgr-1/0a/shuffle_0.data"), "x");
        Files.createSymbolicLink(gone.resolve("link"), outside);
        Files.createDirectories(mine.resolve("spark-1"));
        Files.createDirectories(other);
        assertEquals(1, LocalScratch.removeOrphans(tmp));
        assertFalse(Files.exists(gone), "the gone process's folder is removed");
        assertTrue(Files.exists(mine.resolve("spark-1")), "this process's stays");
        assertTrue(Files.exists(other), "a folder not named by a process id stays");
        assertEquals("not Spark's", Files.readString(outside), "a link's target stays");
    }

    @Test void onlyALocalRunWithNoFolderOfTheUsersTakesIt() {
        assertTrue(LocalScratch.applies("local[2]", Map.of()) == (System.getenv("SPARK_LOCAL_DIRS") == null));
        assertFalse(LocalScratch.applies("spark://127.0.0.1:7077", Map.of()), "a cluster's executors are elsewhere");
        assertFalse(LocalScratch.applies("local[2]", Map.of("spark.local.dir", "/data/spark")), "the user's folder");
    }
}
