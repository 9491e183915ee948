package io.predcode.spark;

import io.predcode.core.pc.Algorithm;
import io.predcode.core.pc.Trainer;

/**
 * {@code Trainer.stableRelaxation} on a data-parallel run: a guarded relaxation ({@link RunSpec#guarded}) that raised the
 * global batch's energy above its feedforward loss has eta halved, from that step on, and the batch relaxed again. The
 * test is one process's ({@code Trainer.raisedEnergy}), on the shards' summed loss and energies, so a run takes the
 * same etas as one process on the same global batches, unless a step's test sits within rounding of its threshold.
 */
final class StableRelaxation {
    private StableRelaxation() {}

    /** Whether the run's relaxation is guarded and step 0 of {@code sum} raised the energy (not for a non-finite loss: a divergence). */
    static boolean raisedEnergy(RunSpec spec, Contribution sum) {
        double loss = sum.lossSums()[0] / sum.samples()[0];
        return spec.guarded() && Double.isFinite(loss) && Trainer.raisedEnergy(sum.relaxedEnergy(0), loss);
    }

    /** Why a relaxation that still raised the energy after {@code Trainer.MAX_HALVINGS} halvings is a divergence, in one process's words. */
    static String diverges(RunSpec spec, float eta, Contribution sum) {
        return Trainer.relaxationDiverges(Algorithm.parse(spec.algorithm()), eta, sum.relaxedEnergy(0), sum.lossSums()[0] / sum.samples()[0]);
    }
}
