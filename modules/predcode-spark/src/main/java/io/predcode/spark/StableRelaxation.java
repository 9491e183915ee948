package io.predcode.spark;

import io.predcode.core.pc.Algorithm;
import io.predcode.core.pc.InferenceResult;
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

    /**
     * Whether the run's relaxation is guarded and a shard's own relaxation of its batch, in local steps, raised its energy
     * (not for a non-finite loss: a divergence). The shard relaxes as in the global batch, so its output term is weighed
     * by its share of it: it descends that share of its batch's mean loss plus its samples' hidden ||eps||^2 / 2, from
     * that share of its feedforward loss. With one shard, one process's test ({@code Trainer.raisedEnergy} on
     * {@code InferenceResult.energy()}).
     */
    static boolean raisedEnergy(RunSpec spec, InferenceResult r, int samples) {
        if (!spec.guarded() || !Float.isFinite(r.loss())) return false;
        double share = (double) samples / spec.globalBatch(), output = r.layerEnergies()[r.depth()];
        return Trainer.raisedEnergy(r.energy() - (1 - share) * output, share * r.loss());
    }

    /** Why a relaxation that still raised the energy after {@code Trainer.MAX_HALVINGS} halvings is a divergence, in one process's words. */
    static String diverges(RunSpec spec, float eta, Contribution sum) {
        return Trainer.relaxationDiverges(Algorithm.parse(spec.algorithm()), eta, sum.relaxedEnergy(0), sum.lossSums()[0] / sum.samples()[0]);
    }

    /** Why local steps stop where a shard's relaxation raised its energy at every halving, the last at {@code eta}. */
    static String shardDiverges(RunSpec spec, float eta) {
        return (Algorithm.parse(spec.algorithm()) == Algorithm.STRICT ? "STRICT's" : "PC's") + " relaxation of a shard's batch diverges even at eta " + eta + " (local steps)";
    }
}
