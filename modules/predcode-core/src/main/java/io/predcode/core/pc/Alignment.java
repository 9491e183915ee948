package io.predcode.core.pc;

import io.predcode.core.nn.Model;
import io.predcode.core.nn.Parameter;

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
    /**
     * The blocks an alignment reports: those with parameters, in order.
     *
     * @param model the model
     * @return their indices
     */
    public static int[] blocksOf(Model model) {
        return java.util.stream.IntStream.range(0, model.depth()).filter(b -> !model.blocks().get(b).parameters().isEmpty()).toArray();
    }

    /** Compares {@code update} with {@code gradient}, both by parameter name (as {@link Model#gradientValues()} gives them). */
    public static Alignment between(Model model, Map<String, float[]> gradient, Map<String, float[]> update, long step) {
        int[] blocks = blocksOf(model);
        double[] rel = new double[blocks.length], ang = new double[blocks.length];
        for (int i = 0; i < blocks.length; i++) {
            double dot = 0, ng = 0, nu = 0, diff = 0;
            for (Parameter p : model.blocks().get(blocks[i]).parameters()) {
                float[] g = gradient.get(p.name()), u = update.get(p.name());
                for (int k = 0; k < g.length; k++) {
                    dot += (double) g[k] * u[k];
                    ng += (double) g[k] * g[k];
                    nu += (double) u[k] * u[k];
                    diff += ((double) u[k] - g[k]) * ((double) u[k] - g[k]);
                }
            }
            double cos = ng == 0 || nu == 0 ? (ng == nu ? 1 : 0) : dot / Math.sqrt(ng * nu);
            rel[i] = ng == 0 ? (diff == 0 ? 0 : Double.POSITIVE_INFINITY) : Math.sqrt(diff / ng);
            ang[i] = Math.toDegrees(Math.acos(Math.max(-1, Math.min(1, cos))));
        }
        return new Alignment(step, blocks, rel, ang);
    }

    /** The largest angle over the blocks, in degrees. */
    public double maxAngle() {
        double m = 0;
        for (double a : angleDegrees) m = Math.max(m, a);
        return m;
    }
}
