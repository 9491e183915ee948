package io.predcode.cli;

/**
 * Decides, epoch by epoch, which state is the best so far and whether training has collapsed: a
 * long PC run can leave a good model behind without a NaN (STRICT at Torch2PC's settings on digits
 * falls from 96% to chance in one epoch and stays there, its loss finite and growing).
 *
 * <p>Best: the highest validation accuracy, ties to the lower validation loss (without a validation
 * set, the training set's). An epoch is bad when validation accuracy is more than {@code margin}
 * below the best, or the training loss is more than twice its best (plus 0.05, so a tiny loss's
 * noise is not a collapse). {@code patience} bad epochs in a row are a collapse.
 */
final class CollapseWatch {
    private final double margin;
    private final int patience;
    private int bestEpoch = -1, badEpochs, firstBadEpoch = -1;
    private double bestAccuracy = Double.NEGATIVE_INFINITY, bestLoss = Double.POSITIVE_INFINITY, bestTrainLoss = Double.POSITIVE_INFINITY;

    CollapseWatch(double margin, int patience) {
        this.margin = margin;
        this.patience = patience;
    }

    /** What one epoch's numbers mean. */
    enum Verdict { BEST, OK, BAD, COLLAPSED }

    /** Takes an epoch's selection accuracy and loss (validation, or training without one) and its training loss. */
    Verdict observe(int epoch, double accuracy, double loss, double trainLoss) {
        boolean finite = Double.isFinite(loss) && Double.isFinite(trainLoss);
        boolean bad = !finite || accuracy < bestAccuracy - margin || trainLoss > 2 * bestTrainLoss + 0.05;
        if (finite) bestTrainLoss = Math.min(bestTrainLoss, trainLoss);
        if (finite && (accuracy > bestAccuracy || accuracy == bestAccuracy && loss < bestLoss)) {
            bestAccuracy = accuracy;
            bestLoss = loss;
            bestEpoch = epoch;
            badEpochs = 0;
            return Verdict.BEST;
        }
        if (!bad) {
            badEpochs = 0;
            return Verdict.OK;
        }
        if (badEpochs++ == 0) firstBadEpoch = epoch;
        return badEpochs >= patience ? Verdict.COLLAPSED : Verdict.BAD;
    }

    /** After a rollback to the best state: the bad run is forgotten, the best stays. */
    void rolledBack() {
        badEpochs = 0;
        firstBadEpoch = -1;
    }

    int bestEpoch() { return bestEpoch; }

    double bestAccuracy() { return bestAccuracy; }

    double bestLoss() { return bestLoss; }

    int firstBadEpoch() { return firstBadEpoch; }

    int badEpochs() { return badEpochs; }

    /** State for a checkpoint, so a resumed run judges as an uninterrupted one. */
    java.util.Map<String, Object> json() {
        java.util.Map<String, Object> m = new java.util.LinkedHashMap<>();
        m.put("best_epoch", (double) bestEpoch);
        m.put("best_accuracy", bestAccuracy);
        m.put("best_loss", bestLoss);
        m.put("best_train_loss", bestTrainLoss);
        m.put("bad_epochs", (double) badEpochs);
        m.put("first_bad_epoch", (double) firstBadEpoch);
        return m;
    }

    /** Restores {@link #json()}; infinities were written as null. */
    void restore(io.predcode.core.json.JsonFields f) {
        bestEpoch = (int) f.number("best_epoch");
        bestAccuracy = f.has("best_accuracy") ? f.number("best_accuracy") : Double.NEGATIVE_INFINITY;
        bestLoss = f.has("best_loss") ? f.number("best_loss") : Double.POSITIVE_INFINITY;
        bestTrainLoss = f.has("best_train_loss") ? f.number("best_train_loss") : Double.POSITIVE_INFINITY;
        badEpochs = (int) f.number("bad_epochs");
        firstBadEpoch = (int) f.number("first_bad_epoch");
    }
}
