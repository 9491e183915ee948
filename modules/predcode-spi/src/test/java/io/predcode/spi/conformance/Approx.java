package io.predcode.spi.conformance;

import io.predcode.spi.*;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/** Comparisons of float32 results with float64 references: relative error of the whole tensor. */
public final class Approx {
    private Approx() {}

    /** ||got - ref|| / ||ref|| (absolute error when ref is all zeros). NaN positions must match exactly. */
    public static double relativeError(double[] ref, float[] got) {
        assertEquals(ref.length, got.length, "length");
        double num = 0, den = 0;
        for (int i = 0; i < ref.length; i++) {
            if (Double.isNaN(ref[i]) != Float.isNaN(got[i])) return Double.POSITIVE_INFINITY;
            if (Double.isNaN(ref[i])) continue;
            if (Double.isInfinite(ref[i]) || Float.isInfinite(got[i])) {
                if (ref[i] != got[i]) return Double.POSITIVE_INFINITY;
                continue;
            }
            double d = got[i] - ref[i];
            num += d * d;
            den += ref[i] * ref[i];
        }
        return den == 0 ? Math.sqrt(num) : Math.sqrt(num / den);
    }

    public static void assertClose(String what, double[] ref, float[] got, double tolerance) {
        double err = relativeError(ref, got);
        if (!(err <= tolerance)) {
            StringBuilder sb = new StringBuilder(what + ": relative error " + err + " > " + tolerance + "; first differences:");
            int shown = 0;
            for (int i = 0; i < ref.length && shown < 5; i++)
                if (Math.abs(ref[i] - got[i]) > tolerance * (1 + Math.abs(ref[i])) || Double.isNaN(ref[i]) != Float.isNaN(got[i])) {
                    sb.append(" [").append(i).append("] ref=").append(ref[i]).append(" got=").append(got[i]);
                    shown++;
                }
            fail(sb.toString());
        }
    }

    public static double[] toDouble(float[] a) {
        double[] d = new double[a.length];
        for (int i = 0; i < a.length; i++) d[i] = a[i];
        return d;
    }
}
