package io.predcode.spark;

import org.apache.spark.BarrierTaskContext;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * A synchronous step's sum over shards through Spark's barrier {@code allGather}, with Spark's public
 * APIs only ({@code spark.predcode.exchange=allgather}; {@link BlockExchange}, the default, moves
 * the bytes executor to executor instead, and uses this class's allGather for their addresses): each task sends
 * its contribution to the driver's barrier coordinator and gets every task's back, in partition
 * order, and sums them in that order, so every task holds the same sum, equal to the one the driver
 * forms from per-step jobs. allGather carries strings, which Spark's messages write a character
 * at a time (Java serialization's modified UTF-8, at most 3 bytes a character); a contribution
 * travels as its little-endian bytes two to a character, half the characters of Latin-1 and 3/8 of
 * Base64's, which is what the time goes with. Pieces are small enough that a reply of every task's
 * piece stays well inside Spark's RPC message limit.
 */
final class BarrierExchange implements ShardWorker.Exchange {
    /** Characters of all tasks' pieces together in one allGather reply: at most 72 MiB (Spark refuses messages over spark.rpc.message.maxSize, 128 MiB by default). */
    static final int REPLY_CHARS = 24 << 20;

    private final BarrierTaskContext context;
    private final int tasks;

    BarrierExchange(BarrierTaskContext context, int tasks) {
        this.context = context;
        this.tasks = tasks;
    }

    @Override public Contribution sum(Contribution mine) {
        String text = text(encode(mine));
        int piece = Math.max(1, REPLY_CHARS / tasks);
        java.nio.CharBuffer[] all = new java.nio.CharBuffer[tasks];
        byte[][] bytes = new byte[tasks][2 * text.length()];
        for (int i = 0; i < tasks; i++) all[i] = ByteBuffer.wrap(bytes[i]).order(ByteOrder.LITTLE_ENDIAN).asCharBuffer();
        // Every task's text has the same length (the same model), so all make the same number of calls.
        for (int at = 0; at < text.length(); at += piece) {
            String[] got = allGather(context, text.substring(at, Math.min(text.length(), at + piece)));
            if (got.length != tasks) throw new IllegalStateException("allGather returned " + got.length + " pieces for " + tasks + " tasks");
            for (int i = 0; i < tasks; i++) all[i].put(got[i]);
        }
        Contribution sum = null;
        for (byte[] b : bytes) {
            Contribution c = decode(b);
            sum = sum == null ? c : sum.plus(c);
        }
        return sum;
    }

    /**
     * {@code context.allGather}, answered as soon as the last task's piece arrives. Spark's barrier
     * call checks for the coordinator's reply and then sleeps a whole second before it checks again,
     * which would cost up to a second a step; an interrupt ends that sleep early (Spark ignores it
     * there and checks again; its own kill of a task is a separate flag). So while this thread waits,
     * another interrupts it now and then; it is stopped, and the interrupt cleared, before this
     * returns.
     */
    static String[] allGather(BarrierTaskContext context, String piece) {
        Thread caller = Thread.currentThread();
        java.util.concurrent.atomic.AtomicBoolean done = new java.util.concurrent.atomic.AtomicBoolean();
        long start = System.nanoTime();
        Thread waker = Thread.ofPlatform().daemon().name("predcode-allgather-waker").start(() -> {
            while (!done.get()) {
                // A sixteenth of the wait so far, within [0.1, 2] ms: late by at most about 6% or 2 ms, and few wake-ups while a slower shard computes.
                java.util.concurrent.locks.LockSupport.parkNanos(Math.clamp((System.nanoTime() - start) / 16, MIN_WAKE_NANOS, MAX_WAKE_NANOS));
                if (!done.get()) caller.interrupt();
            }
        });
        try {
            return context.allGather(piece);
        } finally {
            done.set(true);
            while (waker.isAlive()) {
                try {
                    waker.join();
                } catch (InterruptedException e) {
                    // the waker's, or Spark's: a kill is also recorded in the task context, which Spark checks itself
                }
            }
            Thread.interrupted(); // no interrupt of the waker's may outlive the call
        }
    }

    /** Bounds on how often a waiting allGather is woken to look for its reply. */
    static final long MIN_WAKE_NANOS = 100_000, MAX_WAKE_NANOS = 2_000_000;

    /** Bytes (an even number) two to a character: any 16-bit value is a Java char, and Java serialization keeps every one. */
    static String text(byte[] bytes) {
        char[] c = new char[bytes.length / 2];
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asCharBuffer().get(c);
        return new String(c);
    }

    /** A one-step contribution's bytes: its loss sum, correct count and samples, its energy sums (a count, then each), then its values. */
    static byte[] encode(Contribution c) {
        if (c.gradient().length > 0) throw new IllegalStateException("a monitored step's gradient does not travel in a barrier job: the step runs as a job of its own");
        double[] energies = c.energySums();
        ByteBuffer b = ByteBuffer.allocate(28 + 8 * energies.length + 4 * c.values().length).order(ByteOrder.LITTLE_ENDIAN);
        b.putDouble(c.lossSums()[0]).putLong(c.correct()[0]).putLong(c.samples()[0]).putInt(energies.length);
        for (double e : energies) b.putDouble(e);
        b.asFloatBuffer().put(c.values());
        return b.array();
    }

    /** {@link #encode}'s inverse. */
    static Contribution decode(byte[] bytes) { return decode(ByteBuffer.wrap(bytes)); }

    /** {@link #encode}'s inverse, from the buffer's remaining bytes (read in place, not copied first). */
    static Contribution decode(ByteBuffer bytes) {
        ByteBuffer b = bytes.slice().order(ByteOrder.LITTLE_ENDIAN);
        double loss = b.getDouble();
        long correct = b.getLong(), samples = b.getLong();
        int count = b.getInt();
        if (count < 0 || count > b.remaining() / 8) throw new IllegalStateException("a shard's update names " + count + " energies in " + b.remaining() + " bytes");
        double[] energies = new double[count];
        for (int i = 0; i < energies.length; i++) energies[i] = b.getDouble();
        float[] values = new float[b.remaining() / 4];
        b.asFloatBuffer().get(values);
        return new Contribution(values, new double[]{loss}, new long[]{correct}, new long[]{samples}, energies);
    }
}
