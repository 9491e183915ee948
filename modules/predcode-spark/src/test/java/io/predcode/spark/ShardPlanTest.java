package io.predcode.spark;

import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.*;

/** The shards' samples: disjoint, covering the training set, reshuffled each epoch, cut into local batches in that order; and where each shard prefers to run. */
class ShardPlanTest {
    @Test void shardsPartitionTheSetAndEachEpochReordersIts() {
        for (boolean shuffle : new boolean[]{true, false}) {
            ShardPlan plan = new ShardPlan(103, 3, 7, 42, shuffle);
            boolean[] seen = new boolean[103];
            for (int p = 0; p < 3; p++) {
                int[] first = plan.epochOrder(p, 0), second = plan.epochOrder(p, 1);
                int[] sorted = first.clone();
                Arrays.sort(sorted);
                assertArrayEquals(plan.shard(p), sorted, "epoch 0's order is a permutation of shard " + p);
                for (int i : first) {
                    assertFalse(seen[i], "sample " + i + " in two shards");
                    seen[i] = true;
                }
                assertEquals(shuffle, !Arrays.equals(first, second), "epochs 0 and 1 of shard " + p + (shuffle ? " differ" : " keep the stored order"));
                assertArrayEquals(first, plan.epochOrder(p, 0), "the same epoch gives the same order");
                for (int s = 0; s < plan.stepsPerEpoch(); s++)
                    assertArrayEquals(Arrays.copyOfRange(first, s * 7, s * 7 + 7), plan.localBatch(p, 0, s), "shard " + p + ", step " + s);
            }
            for (int i = 0; i < seen.length; i++) assertTrue(seen[i], "sample " + i + " in no shard");
        }
    }

    /** A partition prefers the executor it last ran on while that executor lives; once it is gone, none (no locality wait). */
    @Test void aPartitionPrefersItsLastExecutorOnlyWhileItLives() {
        assertEquals(java.util.List.of("executor_127.0.0.1_1"), SparkTraining.preferred("executor_127.0.0.1_1", java.util.Set.of()));
        assertEquals(java.util.List.of("executor_127.0.0.1_1"), SparkTraining.preferred("executor_127.0.0.1_1", java.util.Set.of("0", "11")));
        assertEquals(java.util.List.of(), SparkTraining.preferred("executor_127.0.0.1_1", java.util.Set.of("1")));
        assertEquals(java.util.List.of(), SparkTraining.preferred("executor_worker-2.local_12", java.util.Set.of("12")));
    }
}
