package io.predcode.data;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.SplittableRandom;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * One epoch of batches, shuffled with a seed that depends only on (seed, epoch) so a resumed run sees
 * the same order, assembled into off-heap float32 buffers by a background thread while the previous
 * batch trains. The last batch is partial when the set does not divide evenly: it is kept (PyTorch's
 * drop_last=False), so every sample is seen once per epoch, unless the batches are made to drop it.
 * An {@link Augmentation} (flips, padded crops) is applied to each image as it is copied in, with its
 * draw for (seed, epoch, sample).
 *
 * <p>A {@link Batch} is valid until the next call to {@link #next()}; buffers are recycled.
 */
public final class Batches implements Iterator<Batches.Batch>, AutoCloseable {
    /** x holds {@code size} samples, y their labels (or one-hot rows); both float32 off-heap. */
    public record Batch(int index, int size, MemorySegment x, MemorySegment y) {}

    private static final int BUFFERS = 3;
    private static final Batch END = new Batch(-1, 0, MemorySegment.NULL, MemorySegment.NULL);

    private final Dataset data;
    private final Augmentation augmentation;
    private final long seed;
    private final int epoch;
    private final int batchSize, count, targetSize;
    private final Arena arena = Arena.ofShared();
    private final BlockingQueue<MemorySegment[]> free = new ArrayBlockingQueue<>(BUFFERS);
    private final BlockingQueue<Object> ready = new ArrayBlockingQueue<>(BUFFERS + 1);
    private final Thread producer;
    private MemorySegment[] current;
    private Object nextItem;
    private volatile boolean closed;

    /** The batches of one epoch, shuffled (or not) by (seed, epoch) alone, without prefetching. */
    public Batches(Dataset data, int batchSize, long seed, int epoch, boolean shuffle) { this(data, batchSize, seed, epoch, shuffle, false); }

    /** With {@code oneHot}, y holds a one-hot row of {@code classes} floats per sample (targets for mse). */
    public Batches(Dataset data, int batchSize, long seed, int epoch, boolean shuffle, boolean oneHot) {
        this(data, batchSize, seed, epoch, shuffle, oneHot, Augmentation.NONE, false);
    }

    /**
     * With each image augmented by {@code augmentation}'s draw for (seed, epoch, its index in {@code data});
     * with {@code dropLast}, without the epoch's last partial batch (PyTorch's drop_last=True), so every batch has
     * {@code batchSize} samples.
     */
    public Batches(Dataset data, int batchSize, long seed, int epoch, boolean shuffle, boolean oneHot, Augmentation augmentation, boolean dropLast) {
        this(data, batchSize, seed, epoch, shuffle, oneHot, augmentation, dropLast, 0);
    }

    /**
     * The epoch from batch {@code firstBatch} on: the batches a run stopped inside the epoch had yet to take, the same
     * ones, with the same draws, as the whole epoch's from that index (a batch's samples and draws depend on its index
     * alone). {@link Batch#index()} counts from the epoch's start.
     */
    public Batches(Dataset data, int batchSize, long seed, int epoch, boolean shuffle, boolean oneHot, Augmentation augmentation, boolean dropLast, int firstBatch) {
        if (batchSize < 1) throw new IllegalArgumentException("batch size must be >= 1, got " + batchSize);
        if (dropLast && batchSize > data.size())
            throw new IllegalArgumentException("batch size " + batchSize + " is more than the " + data.size() + " samples of " + data.name() + ": dropping the partial batch leaves none");
        augmentation.check(data);
        this.data = data;
        this.augmentation = augmentation;
        this.seed = seed;
        this.epoch = epoch;
        this.batchSize = batchSize;
        this.count = stepsPerEpoch(data.size(), batchSize, dropLast);
        this.targetSize = oneHot ? data.classes() : 1;
        if (firstBatch < 0 || firstBatch > count) throw new IllegalArgumentException("first batch " + firstBatch + " is outside the epoch's " + count + " batches");
        long xBytes = (long) batchSize * data.sampleSize() * Float.BYTES, yBytes = (long) batchSize * targetSize * Float.BYTES;
        for (int i = 0; i < BUFFERS; i++) free.add(new MemorySegment[]{arena.allocate(xBytes, 64), arena.allocate(yBytes, 64)});
        int[] order = order(data.size(), seed, epoch, shuffle);
        producer = Thread.ofPlatform().daemon().name("predcode-batches").start(() -> produce(order, firstBatch));
    }

    /** Sample order of an epoch: a permutation seeded by (seed, epoch), or the identity. */
    public static int[] order(int n, long seed, int epoch, boolean shuffle) {
        if (!shuffle) {
            int[] p = new int[n];
            for (int i = 0; i < n; i++) p[i] = i;
            return p;
        }
        return permutation(n, new SplittableRandom(seed * 0x9E3779B97F4A7C15L + epoch));
    }

    /**
     * A Fisher-Yates shuffle of 0..n-1 driven by {@code r}: the one shuffle of every split and epoch
     * order, so the same seed gives the same order wherever it is drawn (a Spark executor too).
     *
     * @param n the size
     * @param r the random source
     * @return the permutation
     */
    public static int[] permutation(int n, SplittableRandom r) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) p[i] = i;
        for (int i = n - 1; i > 0; i--) {
            int j = r.nextInt(i + 1);
            int t = p[i]; p[i] = p[j]; p[j] = t;
        }
        return p;
    }

    /** The number of batches in the epoch. */
    public int count() { return count; }

    /**
     * Batches in an epoch of {@code size} samples: the last one partial unless {@code dropLast}, which drops it.
     *
     * @param size      samples
     * @param batchSize samples per batch
     * @param dropLast  whether a last partial batch is dropped
     * @return the number of batches
     */
    public static int stepsPerEpoch(int size, int batchSize, boolean dropLast) {
        return dropLast ? size / batchSize : (int) (((long) size + batchSize - 1) / batchSize);
    }

    private void produce(int[] order, int firstBatch) {
        int per = data.sampleSize();
        float[] augmented = augmentation.active() ? new float[per] : null;
        try {
            for (int b = firstBatch; b < count && !closed; b++) {
                MemorySegment[] buf = free.take();
                int start = b * batchSize, size = Math.min(batchSize, data.size() - start);
                for (int i = 0; i < size; i++) {
                    int s = order[start + i];
                    if (augmented == null) MemorySegment.copy(data.images(), s * per, buf[0], ValueLayout.JAVA_FLOAT, (long) i * per * Float.BYTES, per);
                    else {
                        augmentation.apply(data, s, seed, epoch, augmented, 0);
                        MemorySegment.copy(augmented, 0, buf[0], ValueLayout.JAVA_FLOAT, (long) i * per * Float.BYTES, per);
                    }
                    if (targetSize == 1) buf[1].setAtIndex(ValueLayout.JAVA_FLOAT, i, data.labels()[s]);
                    else for (int c = 0; c < targetSize; c++) buf[1].setAtIndex(ValueLayout.JAVA_FLOAT, (long) i * targetSize + c, c == data.labels()[s] ? 1f : 0f);
                }
                ready.put(new Object[]{b, size, buf});
            }
            ready.put(END);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (RuntimeException e) {
            ready.offer(e);
        }
    }

    @Override public boolean hasNext() {
        if (nextItem == null) {
            try {
                while ((nextItem = ready.poll(100, TimeUnit.MILLISECONDS)) == null)
                    if (!producer.isAlive() && ready.isEmpty()) throw new IllegalStateException("batch producer stopped");
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while waiting for a batch", e);
            }
        }
        if (nextItem instanceof RuntimeException e) throw e;
        return nextItem != END;
    }

    @Override public Batch next() {
        if (!hasNext()) throw new NoSuchElementException();
        Object[] item = (Object[]) nextItem;
        nextItem = null;
        if (current != null) free.add(current);
        current = (MemorySegment[]) item[2];
        int size = (int) item[1];
        return new Batch((int) item[0], size, current[0].asSlice(0, (long) size * data.sampleSize() * Float.BYTES), current[1].asSlice(0, (long) size * targetSize * Float.BYTES));
    }

    @Override public void close() {
        closed = true;
        producer.interrupt();
        try { producer.join(1000); } catch (InterruptedException e) { Thread.currentThread().interrupt(); }
        arena.close();
    }
}
