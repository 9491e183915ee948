package io.predcode.data;

/** A training set and a test set of the same kind of sample. */
public record DataSplit(Dataset train, Dataset test) {
    public int[] sampleShape() { return train.sampleShape(); }

    public int classes() { return train.classes(); }
}
