package io.predcode.core.serve;

/**
 * How a raw input becomes the model's input: {@code x * scale + shift}, elementwise. Training data is
 * read in the same way (e.g. digits' pixels 0..16 with scale 1/16), so a checkpoint that carries its
 * preprocessing lets a service pass raw values.
 *
 * @param scale multiplies each raw value
 * @param shift is added after scaling
 */
public record Preprocessing(float scale, float shift) {
    /** Inputs are used as given. */
    public static final Preprocessing NONE = new Preprocessing(1f, 0f);

    /** Checks that both numbers are finite and the scale is not zero. */
    public Preprocessing {
        if (!Float.isFinite(scale) || scale == 0f || !Float.isFinite(shift))
            throw new IllegalArgumentException("preprocessing: scale must be finite and nonzero, shift finite; got scale " + scale + ", shift " + shift);
    }

    /** True when inputs pass through unchanged. */
    public boolean isIdentity() { return scale == 1f && shift == 0f; }
}
