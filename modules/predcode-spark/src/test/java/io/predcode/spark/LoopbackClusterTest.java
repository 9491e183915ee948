package io.predcode.spark;

import org.junit.jupiter.api.Test;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A benchmark's temporary cluster (a Master alone here) leaves nothing in the temporary folder once closed. */
class LoopbackClusterTest {
    @Test void aTemporaryClusterDeletesItsFolder() throws Exception {
        Path target = Path.of("target").toAbsolutePath();
        List<Path> jars = java.util.Arrays.stream(Files.readString(target.resolve("test-classpath.txt")).strip().split(File.pathSeparator)).map(Path::of).toList();
        Path folder;
        try (LoopbackCluster cluster = LoopbackCluster.temporary("predcode-test-cluster", jars, 0, 1, "1g")) {
            folder = cluster.folder();
            assertTrue(Files.isRegularFile(folder.resolve("spark-master.log")), "the master's log is in " + folder);
            assertTrue(jars.stream().allMatch(j -> !j.toString().endsWith(".jar") || Files.exists(j)), "the jars themselves are there");
        }
        assertFalse(Files.exists(folder), folder + " is left behind");
        assertTrue(jars.stream().allMatch(j -> !j.toString().endsWith(".jar") || Files.exists(j)), "deleting the jar links left the jars");
    }
}
