package io.predcode.spi;

/**
 * One conv2d's input size and window, PyTorch semantics (cross-correlation, zero padding).
 * im2col turns an image [c, h, w] into a matrix [c*kh*kw, oh*ow].
 */
public record Conv2dGeometry(int channels, int height, int width, int kh, int kw, int sh, int sw, int ph, int pw) {
    /** Checks that every size is positive and the kernel fits the padded input. */
    public Conv2dGeometry {
        if (channels < 1 || height < 1 || width < 1 || kh < 1 || kw < 1 || sh < 1 || sw < 1 || ph < 0 || pw < 0)
            throw new IllegalArgumentException("conv2d geometry " + describe(channels, height, width, kh, kw, sh, sw, ph, pw) + " has a non-positive size");
        long paddedH = height + 2L * ph, paddedW = width + 2L * pw; // in long: padding near 2^30 overflows int
        if (paddedH < kh || paddedW < kw)
            throw new IllegalArgumentException("conv2d geometry " + describe(channels, height, width, kh, kw, sh, sw, ph, pw) + ": kernel larger than the padded input");
        long outPixels = ((paddedH - kh) / sh + 1) * ((paddedW - kw) / sw + 1);
        if (paddedH * paddedW > Integer.MAX_VALUE || (long) channels * kh * kw > Integer.MAX_VALUE || outPixels > Integer.MAX_VALUE)
            throw new IllegalArgumentException("conv2d geometry " + describe(channels, height, width, kh, kw, sh, sw, ph, pw)
                    + " is too large: a padded plane, a kernel window and an output plane hold at most 2^31-1 values each");
    }

    /** Output height. */
    public int outHeight() { return (height + 2 * ph - kh) / sh + 1; }

    /** Output width. */
    public int outWidth() { return (width + 2 * pw - kw) / sw + 1; }

    /** Rows of the im2col matrix. */
    public int patchSize() { return channels * kh * kw; }

    /** Output pixels per channel. */
    public int outPixels() { return outHeight() * outWidth(); }

    /** Floats per input image. */
    public long inputSize() { return (long) channels * height * width; }

    private static String describe(int c, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw) {
        return "[in " + c + "x" + h + "x" + w + ", kernel " + kh + "x" + kw + ", stride " + sh + "x" + sw + ", padding " + ph + "x" + pw + "]";
    }

    @Override public String toString() { return describe(channels, height, width, kh, kw, sh, sw, ph, pw); }
}
