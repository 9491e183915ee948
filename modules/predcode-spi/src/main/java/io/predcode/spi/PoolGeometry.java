package io.predcode.spi;

/** A pooling window over [channels, height, width] images, no padding (PyTorch's default, floor mode). */
public record PoolGeometry(int channels, int height, int width, int kh, int kw, int sh, int sw) {
    /** Checks that every size is positive and the window fits the input. */
    public PoolGeometry {
        if (channels < 1 || height < 1 || width < 1 || kh < 1 || kw < 1 || sh < 1 || sw < 1)
            throw new IllegalArgumentException("pool geometry " + describe(channels, height, width, kh, kw, sh, sw) + " has a non-positive size");
        if (height < kh || width < kw)
            throw new IllegalArgumentException("pool geometry " + describe(channels, height, width, kh, kw, sh, sw) + ": window larger than the input");
        if ((long) height * width > Integer.MAX_VALUE)
            throw new IllegalArgumentException("pool geometry " + describe(channels, height, width, kh, kw, sh, sw) + " is too large: a plane holds at most 2^31-1 values");
    }

    /** Output height. */
    public int outHeight() { return (height - kh) / sh + 1; }

    /** Output width. */
    public int outWidth() { return (width - kw) / sw + 1; }

    /** Floats per input image. */
    public long inputSize() { return (long) channels * height * width; }

    /** Floats per output image. */
    public long outputSize() { return (long) channels * outHeight() * outWidth(); }

    private static String describe(int c, int h, int w, int kh, int kw, int sh, int sw) {
        return "[in " + c + "x" + h + "x" + w + ", kernel " + kh + "x" + kw + ", stride " + sh + "x" + sw + "]";
    }

    @Override public String toString() { return describe(channels, height, width, kh, kw, sh, sw); }
}
