package io.predcode.cli;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * training.png's per-step series are drawn from at most two points per pixel column, each column's lowest and highest;
 * a sweep's chart draws each point's mean over its runs at the epochs all of them reached.
 */
class ChartsTest {
    @Test void downsamplingKeepsEachBucketsExtremesInOrder() {
        SplittableRandom r = new SplittableRandom(3);
        for (int n : new int[]{0, 1, 7, 1280, 1281, 5617, 100_003}) {
            List<Double> x = new ArrayList<>(), y = new ArrayList<>();
            for (int i = 0; i < n; i++) { x.add((double) i + 1); y.add(r.nextGaussian()); }
            if (n > 100) y.set(n / 3, 50.0); // a spike
            Charts.Series d = Charts.downsample(x, y, 640);
            assertEquals(d.x().size(), d.y().size());
            if (n <= 1280) {
                assertEquals(y, d.y(), "short series are drawn as they are");
                continue;
            }
            assertTrue(d.y().size() <= 1280, n + " points down to " + d.y().size());
            assertEquals(Collections.max(y), Collections.max(d.y()), "the highest point stays (a loss spike is still drawn)");
            assertEquals(Collections.min(y), Collections.min(d.y()), "the lowest point stays");
            for (int i = 1; i < d.x().size(); i++) assertTrue(d.x().get(i) > d.x().get(i - 1), "x stays in order");
            for (int i = 0; i < d.x().size(); i++) assertEquals(y.get((int) (double) d.x().get(i) - 1), d.y().get(i), "every point drawn is a point of the series");
            // every bucket is represented: no gap in x wider than two buckets
            double widest = 0;
            for (int i = 1; i < d.x().size(); i++) widest = Math.max(widest, d.x().get(i) - d.x().get(i - 1));
            assertTrue(widest <= 2.0 * n / 640 + 1, "gap " + widest);
        }
    }

    @Test void aSweepsCurveIsTheMeanAtEpochsEveryRunReached(@org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp) throws Exception {
        java.nio.file.Path a = java.nio.file.Files.createDirectories(tmp.resolve("a")), b = java.nio.file.Files.createDirectories(tmp.resolve("b"));
        java.nio.file.Files.writeString(a.resolve("metrics.json"), "{\"epochs\": [{\"epoch\": 1, \"validation_accuracy\": 0.5}, {\"epoch\": 2, \"validation_accuracy\": 0.7},"
                + " {\"epoch\": 3, \"validation_accuracy\": 0.8}]}");
        java.nio.file.Files.writeString(b.resolve("metrics.json"), "{\"epochs\": [{\"epoch\": 1, \"validation_accuracy\": 0.25}, {\"epoch\": 2, \"validation_accuracy\": null}]}");
        List<double[]> curve = Sweep.curve(List.of(a, b), "validation_accuracy");
        assertEquals(1, curve.size(), "epoch 2 has one run's value, epoch 3 one run");
        assertArrayEquals(new double[]{1, 0.375}, curve.getFirst());
        assertEquals(3, Sweep.curve(List.of(a), "validation_accuracy").size());
        assertEquals(0, Sweep.curve(List.of(tmp.resolve("none")), "validation_accuracy").size(), "a run with no metrics.json yet");
    }
}
