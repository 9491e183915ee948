package io.predcode.core.pc;

import io.predcode.core.nn.Model;
import io.predcode.core.nn.Parameter;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * How far a PC parameter update is from the true gradient, block by block: the paper's central
 * diagnostic. For each block with parameters, over all its parameters together,
 * {@code relativeError = |update - gradient| / |gradient|} and {@code angle} = the angle between the
 * two, in degrees (computed in double).
 *
 * @param step   the training step it was measured at (0 outside training)
 * @param blocks the blocks that have parameters, in order
 * @param relativeError per entry of {@code blocks}
 * @param angleDegrees  per entry of {@code blocks}
 */
public record Alignment(long step, int[] blocks, double[] relativeError, double[] angleDegrees) {
    /** Compares {@code update} with {@code gradient}, both by parameter name (as {@link Model#gradientValues()} gives them). */
    public static Alignment between(Model model, Map<String, float[]> gradient, Map<String, float[]> update, long step) {
        List<Integer> blocks = new ArrayList<>();
        List<double[]> rows = new ArrayList<>();
        for (int b = 0; b < model.depth(); b++) {
            double dot = 0, ng = 0, nu = 0, diff = 0;
            List<Parameter> ps = model.blocks().get(b).parameters();
            if (ps.isEmpty()) continue;
            for (Parameter p : ps) {
                float[] g = gradient.get(p.name()), u = update.get(p.name());
                for (int i = 0; i < g.length; i++) {
                    dot += (double) g[i] * u[i];
                    ng += (double) g[i] * g[i];
                    nu += (double) u[i] * u[i];
                    diff += ((double) u[i] - g[i]) * ((double) u[i] - g[i]);
                }
            }
            double cos = ng == 0 || nu == 0 ? (ng == nu ? 1 : 0) : dot / Math.sqrt(ng * nu);
            blocks.add(b);
            rows.add(new double[]{ng == 0 ? (diff == 0 ? 0 : Double.POSITIVE_INFINITY) : Math.sqrt(diff / ng), Math.toDegrees(Math.acos(Math.max(-1, Math.min(1, cos))))});
        }
        int[] bs = blocks.stream().mapToInt(Integer::intValue).toArray();
        double[] rel = new double[bs.length], ang = new double[bs.length];
        for (int i = 0; i < bs.length; i++) { rel[i] = rows.get(i)[0]; ang[i] = rows.get(i)[1]; }
        return new Alignment(step, bs, rel, ang);
    }

    /** The largest angle over the blocks, in degrees. */
    public double maxAngle() {
        double m = 0;
        for (double a : angleDegrees) m = Math.max(m, a);
        return m;
    }
}
