package io.predcode.core.pc;

import java.util.Locale;

/**
 * How PC and iPC hold the output during inference, as PCX defines nudging. With none, the output
 * term is the loss itself. Otherwise the output is pulled towards a fixed target
 * h = u - beta * dl/du, taken at the feedforward output u (for mse with beta = 1: the target itself),
 * the output term is ||f_L(v_{L-1}) - h||^2 / 2, and the parameter updates are divided by beta.
 * Positive nudging uses +beta, negative -beta, and centred averages the updates of both (two
 * relaxations per step), which cancels the bias of order beta that either alone has (Scellier et al.,
 * "Energy-based learning algorithms", 2023). Nudging needs the {@link Energy#PER_SAMPLE} energy.
 *
 * @param kind what kind
 * @param beta the strength, &gt; 0 (ignored for none)
 */
public record Nudging(Kind kind, float beta) {
    /** The kinds. */
    public enum Kind {
        /** The output term is the loss. */
        NONE,
        /** Towards the target by beta. */
        POSITIVE,
        /** Away from the target by beta. */
        NEGATIVE,
        /** Both, the updates averaged. */
        CENTRED
    }

    /** Checks beta. */
    public Nudging {
        java.util.Objects.requireNonNull(kind, "kind");
        if (kind != Kind.NONE && !(beta > 0 && Float.isFinite(beta))) throw new IllegalArgumentException("nudging: beta must be a finite number > 0, got " + beta);
    }

    /** No nudging: the output term is the loss. */
    public static Nudging none() { return new Nudging(Kind.NONE, 0f); }

    /** Whether the output is nudged. */
    public boolean active() { return kind != Kind.NONE; }

    /**
     * Reads "none", or "positive", "negative" or "centred" (also "centered") with ":BETA", e.g. "positive:1".
     *
     * @param s the text
     * @return the nudging
     */
    public static Nudging parse(String s) {
        String t = s.toLowerCase(Locale.ROOT).strip();
        if (t.equals("none")) return none();
        int colon = t.indexOf(':');
        String name = colon < 0 ? t : t.substring(0, colon);
        Kind kind = switch (name) {
            case "positive" -> Kind.POSITIVE;
            case "negative" -> Kind.NEGATIVE;
            case "centred", "centered" -> Kind.CENTRED;
            default -> throw new IllegalArgumentException("unknown nudging '" + s + "'; expected none, positive:BETA, negative:BETA or centred:BETA");
        };
        if (colon < 0) throw new IllegalArgumentException("nudging '" + s + "': give its strength, e.g. " + name + ":0.1");
        try {
            return new Nudging(kind, Float.parseFloat(t.substring(colon + 1)));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("nudging '" + s + "': the strength after ':' is not a number");
        }
    }

    @Override public String toString() { return kind == Kind.NONE ? "none" : kind.name().toLowerCase(Locale.ROOT) + ":" + beta; }
}
