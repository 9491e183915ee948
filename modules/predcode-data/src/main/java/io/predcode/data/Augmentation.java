package io.predcode.data;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Training-time augmentation of images [C, H, W], as PCX trains VGG-5 on CIFAR-10 with torchvision:
 * a horizontal flip with probability 1/2 ({@code RandomHorizontalFlip}), then a random H x W window
 * of the image padded by {@code padding} pixels of black on every side ({@code RandomCrop(H, padding=P)}).
 * Black is the raw pixel 0, which is {@code fill} in the data as stored (-1 once inputs are mapped to
 * [-1, 1]).
 *
 * <p>A sample's draw depends only on (seed, epoch, the sample's index in its dataset), not on the
 * batch it lands in or the thread that assembles it: a resumed run sees the same images.
 *
 * @param flip    mirror each row with probability 1/2
 * @param padding the crop's padding P (0: no crop)
 * @param fill    the stored value of a black pixel
 */
public record Augmentation(boolean flip, int padding, float fill) {
    /** No augmentation. */
    public static final Augmentation NONE = new Augmentation(false, 0, 0f);

    /** The largest --augment crop padding: more would crop mostly padding out of a 32 x 32 image. */
    public static final int MAX_PADDING = 64;

    /** Checks the padding: 0 (no crop) to {@link #MAX_PADDING}. */
    public Augmentation {
        if (padding < 0 || padding > MAX_PADDING) throw new IllegalArgumentException("crop padding must be in 0.." + MAX_PADDING + ", got " + padding);
    }

    /**
     * An {@code --augment} value: none, or a comma-separated list of flip and crop:P.
     *
     * @param spec the option's value
     * @param fill the stored value of a black pixel
     * @return the augmentation
     */
    public static Augmentation parse(String spec, float fill) {
        String s = spec.trim();
        if (s.equals("none")) return NONE;
        boolean flip = false;
        int padding = 0;
        for (String part : s.split(",", -1)) {
            String p = part.trim();
            if (p.equals("flip") && !flip) flip = true;
            else if (p.startsWith("crop:") && padding == 0) {
                try {
                    padding = Integer.parseInt(p.substring(5));
                } catch (NumberFormatException e) {
                    padding = -1;
                }
                if (padding < 1 || padding > MAX_PADDING)
                    throw new IllegalArgumentException("--augment: crop:P takes a padding P in 1.." + MAX_PADDING + ", got '" + p + "'");
            } else throw new IllegalArgumentException("--augment: expected none, or flip and crop:P separated by commas (e.g. flip,crop:4), got '" + spec + "'");
        }
        return new Augmentation(flip, padding, fill);
    }

    /** Whether it changes anything. */
    public boolean active() { return flip || padding > 0; }

    /** The {@code --augment} value that gives it: none, flip, crop:P or flip,crop:P. */
    public String id() {
        if (!active()) return "none";
        return flip && padding > 0 ? "flip,crop:" + padding : flip ? "flip" : "crop:" + padding;
    }

    /**
     * Refuses data it cannot apply to: samples that are not images [C, H, W].
     *
     * @param data the training set
     */
    public void check(Dataset data) {
        if (active() && data.sampleShape().length != 3)
            throw new IllegalArgumentException("--augment " + id() + " needs images [C, H, W]; " + data.name() + " has samples of "
                    + Arrays.toString(data.sampleShape()));
    }

    /** The random source of one sample's draw. */
    static SplittableRandom draw(long seed, int epoch, int sample) {
        return new SplittableRandom(seed * 0x9E3779B97F4A7C15L + epoch * 0xC2B2AE3D27D4EB4FL + sample * 0x165667B19E3779F9L + 0x27D4EB2F165667C5L);
    }

    /**
     * The samples at these indices of {@code data}, in that order, each augmented with its draw for
     * (seed, epoch): what {@link Batches} would feed for them (a Spark shard's local batch).
     *
     * @param data    the dataset
     * @param samples indices into it
     * @param seed    the run's seed
     * @param epoch   the epoch
     * @return a new dataset of those samples
     */
    public Dataset subset(Dataset data, int[] samples, long seed, int epoch) {
        Dataset batch = data.subset(data.name(), samples);
        if (active()) for (int i = 0; i < samples.length; i++) apply(data, samples[i], seed, epoch, batch.images(), i * data.sampleSize());
        return batch;
    }

    /**
     * Writes sample {@code sample} of {@code data}, augmented with its draw for (seed, epoch), into
     * {@code out} from {@code at}.
     *
     * @param data   the dataset (images [C, H, W])
     * @param sample the sample's index in it
     * @param seed   the run's seed
     * @param epoch  the epoch
     * @param out    where the augmented image goes
     * @param at     its offset in {@code out}
     */
    public void apply(Dataset data, int sample, long seed, int epoch, float[] out, int at) {
        int[] shape = data.sampleShape();
        int channels = shape[0], h = shape[1], w = shape[2], per = channels * h * w;
        float[] in = data.images();
        int from = sample * per;
        SplittableRandom r = draw(seed, epoch, sample);
        boolean mirror = flip && r.nextInt(2) == 1;
        // The window's top-left corner in the padded image, [0, 2P] each way: pixel (y, x) of the output is
        // pixel (y + dy, x + dx) of the (flipped) image, where dy, dx in [-P, P] and outside it is black.
        int dy = padding > 0 ? r.nextInt(2 * padding + 1) - padding : 0, dx = padding > 0 ? r.nextInt(2 * padding + 1) - padding : 0;
        for (int c = 0; c < channels; c++)
            for (int y = 0; y < h; y++) {
                int sy = y + dy, row = at + (c * h + y) * w;
                if (sy < 0 || sy >= h) {
                    Arrays.fill(out, row, row + w, fill);
                    continue;
                }
                int src = from + (c * h + sy) * w;
                for (int x = 0; x < w; x++) {
                    int sx = x + dx;
                    out[row + x] = sx < 0 || sx >= w ? fill : in[src + (mirror ? w - 1 - sx : sx)];
                }
            }
    }
}
