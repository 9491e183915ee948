package io.predcode.data;

import org.junit.jupiter.api.Test;

import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Flip and padded crop against a plain reference (pad the image with black, mirror it, take the
 * window), on awkward shapes; each sample's draw reproducible from (seed, epoch, sample) alone.
 */
class AugmentationTest {
    private static Dataset images(SplittableRandom r, int n, int c, int h, int w) {
        float[] x = new float[n * c * h * w], y = new float[n];
        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextDouble(0.01, 1); // distinct from black (fill) and from each other
        for (int i = 0; i < n; i++) y[i] = i % 3;
        return new Dataset("test images", new int[]{c, h, w}, 3, x, y);
    }

    /** The torchvision way: mirror, pad by P with fill, take the H x W window at (top, left) of the padded image. */
    private static float[] reference(Dataset d, int sample, boolean mirror, int padding, int top, int left, float fill) {
        int c = d.sampleShape()[0], h = d.sampleShape()[1], w = d.sampleShape()[2], ph = h + 2 * padding, pw = w + 2 * padding;
        float[] padded = new float[c * ph * pw], out = new float[c * h * w];
        Arrays.fill(padded, fill);
        for (int k = 0; k < c; k++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    padded[(k * ph + y + padding) * pw + x + padding] = d.images()[sample * c * h * w + (k * h + y) * w + (mirror ? w - 1 - x : x)];
        for (int k = 0; k < c; k++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) out[(k * h + y) * w + x] = padded[(k * ph + y + top) * pw + x + left];
        return out;
    }

    @Test void everyImageIsTheReferenceForExactlyOneDrawAndEveryDrawOccurs() {
        SplittableRandom r = new SplittableRandom(1);
        int[][] shapes = {{1, 1, 1}, {3, 5, 7}, {1, 8, 8}, {2, 13, 3}};
        for (int[] shape : shapes)
            for (String spec : new String[]{"flip", "crop:1", "crop:3", "flip,crop:2"}) {
                Augmentation a = Augmentation.parse(spec, -1f);
                Dataset d = images(r, 600, shape[0], shape[1], shape[2]);
                int per = d.sampleSize(), flips = 0;
                Set<String> seen = new HashSet<>();
                float[] out = new float[per];
                for (int s = 0; s < d.size(); s++) {
                    a.apply(d, s, 42, 3, out, 0);
                    String match = null;
                    int matches = 0;
                    for (int m = 0; m <= (a.flip() ? 1 : 0); m++)
                        for (int top = 0; top <= 2 * a.padding(); top++)
                            for (int left = 0; left <= 2 * a.padding(); left++)
                                if (Arrays.equals(out, reference(d, s, m == 1, a.padding(), top, left, -1f))) { matches++; match = m + "/" + top + "/" + left; }
                    assertTrue(matches >= 1, spec + " on " + Arrays.toString(shape) + ": sample " + s + " is no flip and window of the image");
                    if (matches == 1) { seen.add(match); if (match.startsWith("1/")) flips++; }
                }
                // Where every window overlaps the image and rows have two pixels, every draw makes its own image.
                if (shape[2] > 1 && a.padding() < Math.min(shape[1], shape[2])) {
                    int draws = (a.flip() ? 2 : 1) * (2 * a.padding() + 1) * (2 * a.padding() + 1);
                    assertEquals(draws, seen.size(), spec + " on " + Arrays.toString(shape) + ": every flip and window occurs in 600 images");
                    if (a.flip()) assertTrue(flips > 240 && flips < 360, spec + ": mirrored with probability 1/2, got " + flips + " of 600");
                }
            }
    }

    @Test void aDrawDependsOnSeedEpochAndSampleOnly() {
        Dataset d = images(new SplittableRandom(2), 50, 3, 6, 6);
        Augmentation a = Augmentation.parse("flip,crop:2", 0f);
        float[] one = new float[d.sampleSize()], two = new float[d.sampleSize() + 5];
        int changed = 0;
        for (int s = 0; s < d.size(); s++) {
            a.apply(d, s, 7, 1, one, 0);
            a.apply(d, s, 7, 1, two, 5); // another buffer, another offset: the same image
            assertArrayEquals(one, Arrays.copyOfRange(two, 5, two.length), "sample " + s);
            a.apply(d, s, 7, 2, two, 5);
            if (!Arrays.equals(one, Arrays.copyOfRange(two, 5, two.length))) changed++;
        }
        assertTrue(changed > 40, "a new epoch draws anew: " + changed + " of 50 changed");
    }

    @Test void batchesCarryEachSampleAugmentedAndItsLabel() {
        Dataset d = images(new SplittableRandom(3), 37, 2, 4, 5);
        Augmentation a = Augmentation.parse("flip,crop:1", 0f);
        int[] order = Batches.order(d.size(), 9, 4, true);
        float[] expected = new float[d.sampleSize()];
        Dataset subset = a.subset(d, order, 9, 4); // what a Spark shard trains on for the same samples
        try (Batches b = new Batches(d, 8, 9, 4, true, false, a, false)) {
            int at = 0;
            while (b.hasNext()) {
                Batches.Batch batch = b.next();
                for (int i = 0; i < batch.size(); i++, at++) {
                    a.apply(d, order[at], 9, 4, expected, 0);
                    float[] got = new float[d.sampleSize()];
                    java.lang.foreign.MemorySegment.copy(batch.x(), ValueLayout.JAVA_FLOAT, (long) i * d.sampleSize() * Float.BYTES, got, 0, got.length);
                    assertArrayEquals(expected, got, "sample " + order[at]);
                    assertArrayEquals(expected, Arrays.copyOfRange(subset.images(), at * got.length, (at + 1) * got.length), "subset's sample " + order[at]);
                    assertEquals(d.labels()[order[at]], batch.y().getAtIndex(ValueLayout.JAVA_FLOAT, i));
                    assertEquals(d.labels()[order[at]], subset.labels()[at]);
                }
            }
            assertEquals(d.size(), at);
        }
    }

    /** A run stopped inside an epoch goes on with the batches it had yet to take: the same samples, draws and indices. */
    @Test void anEpochStartedAtABatchIsTheWholeEpochsTail() {
        Dataset d = images(new SplittableRandom(4), 37, 2, 4, 5); // 5 batches of 8, the last of 5
        Augmentation a = Augmentation.parse("flip,crop:1", 0f);
        List<float[]> whole = new ArrayList<>();
        List<Integer> wholeSizes = new ArrayList<>();
        try (Batches b = new Batches(d, 8, 9, 4, true, true, a, false)) {
            while (b.hasNext()) {
                Batches.Batch batch = b.next();
                whole.add(batch.x().toArray(ValueLayout.JAVA_FLOAT));
                whole.add(batch.y().toArray(ValueLayout.JAVA_FLOAT));
                wholeSizes.add(batch.size());
            }
        }
        assertEquals(5, wholeSizes.size());
        for (int first = 0; first <= 5; first++) {
            try (Batches b = new Batches(d, 8, 9, 4, true, true, a, false, first)) {
                int k = first;
                while (b.hasNext()) {
                    Batches.Batch batch = b.next();
                    assertEquals(k, batch.index());
                    assertEquals(wholeSizes.get(k), batch.size());
                    assertArrayEquals(whole.get(2 * k), batch.x().toArray(ValueLayout.JAVA_FLOAT), "batch " + k + " from " + first);
                    assertArrayEquals(whole.get(2 * k + 1), batch.y().toArray(ValueLayout.JAVA_FLOAT), "targets of batch " + k + " from " + first);
                    k++;
                }
                assertEquals(5, k, "from batch " + first + ": to the epoch's end");
            }
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new Batches(d, 8, 9, 4, true, true, a, false, 6));
        assertEquals("first batch 6 is outside the epoch's 5 batches", e.getMessage());
    }

    @Test void badValuesAndFlatDataAreRefusedInOneLine() {
        assertEquals(Augmentation.NONE, Augmentation.parse("none", 0f));
        for (String ok : new String[]{"flip", "crop:4", "flip,crop:4"}) assertEquals(ok, Augmentation.parse(ok, 0f).id());
        assertEquals("flip,crop:4", Augmentation.parse("crop:4, flip", 0f).id());
        for (String bad : new String[]{"", "flop", "crop", "crop:0", "crop:-1", "crop:65", "crop:x", "flip,flip", "crop:2,crop:3", "flip,"}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Augmentation.parse(bad, 0f), bad);
            assertTrue(e.getMessage().startsWith("--augment"), e.getMessage());
            assertFalse(e.getMessage().contains("\n"), e.getMessage());
        }
        Dataset flat = new Dataset("flat", new int[]{12}, 3, new float[24], new float[2]);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Augmentation.parse("flip", 0f).check(flat));
        assertEquals("--augment flip needs images [C, H, W]; flat has samples of [12]", e.getMessage());
        Augmentation.NONE.check(flat); // nothing to apply: any data
    }
}
