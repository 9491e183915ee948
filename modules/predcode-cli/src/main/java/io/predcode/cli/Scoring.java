package io.predcode.cli;

import io.predcode.core.nn.Loss;
import io.predcode.core.pc.PcEngine;
import io.predcode.data.Dataset;

import java.util.Arrays;

/** How train and eval score a model on a held-out set: its loss and accuracy, over all of it or its whole batches. */
final class Scoring {
    private Scoring() {}

    record Score(double loss, double accuracy) {}

    /**
     * The whole batches of {@code batchSize} in {@code set}, in stored order, as PCX's test loader (drop_last=True, no
     * shuffle) leaves them; train's and eval's --score-whole-batches.
     *
     * @throws IllegalArgumentException where the set holds no whole batch
     */
    static Dataset wholeBatches(Dataset set, int batchSize, String which) {
        if (set.size() % batchSize == 0) return set;
        int whole = set.size() / batchSize * batchSize;
        if (whole == 0)
            throw new IllegalArgumentException("--score-whole-batches: the " + which + " set's " + set.size() + " samples make no whole batch of " + batchSize);
        return set.subset(set.name() + ", " + whole + " in whole batches", java.util.stream.IntStream.range(0, whole).toArray());
    }

    /**
     * Test loss (the model's own loss: cross-entropy on labels, or mse on one-hot rows) and accuracy
     * (argmax against the label; for mse the one-hot row's argmax, the same), in batches, each one
     * forward pass and one copy of two scalars.
     */
    static Score evaluate(PcEngine engine, Dataset test, int batchSize) {
        return evaluate(engine, test, batchSize, null);
    }

    /**
     * The score, and where {@code confusion} is given, counts[true class][predicted class] added to it from the same
     * forward passes: the model's argmax, the first of equal outputs, as its accuracy takes it.
     */
    static Score evaluate(PcEngine engine, Dataset test, int batchSize, long[][] confusion) {
        double loss = 0, correct = 0;
        int per = test.sampleSize(), classes = test.classes();
        float[] outputs = confusion == null ? null : new float[Math.min(batchSize, test.size()) * classes];
        for (int start = 0; start < test.size(); start += batchSize) {
            int size = Math.min(batchSize, test.size() - start);
            float[] x = Arrays.copyOfRange(test.images(), start * per, (start + size) * per);
            float[] y = engine.loss() == Loss.CROSS_ENTROPY ? Arrays.copyOfRange(test.labels(), start, start + size) : test.oneHot(start, size);
            PcEngine.Evaluation e = confusion == null ? engine.evaluate(x, y, size) : engine.evaluate(x, y, size, outputs);
            for (int i = 0; confusion != null && i < size; i++) confusion[(int) test.labels()[start + i]][Loss.argmax(outputs, i, classes)]++;
            loss += (double) e.loss() * size;
            correct += Math.max(0, e.correct());
        }
        return new Score(loss / test.size(), correct / test.size());
    }
}
