package io.predcode.spark;

import org.apache.spark.BarrierTaskContext;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Base64;

/**
 * A synchronous step's sum over shards through Spark's barrier {@code allGather}: each task sends
 * its contribution to the driver's barrier coordinator and gets every task's back, in partition
 * order, and sums them in that order, so every task holds the same sum, equal to the one the driver
 * forms from per-step jobs. allGather carries strings; a contribution travels as Base64 of its
 * little-endian bytes (4/3 of them, and Base64 text costs one byte a character in Spark's messages),
 * in pieces small enough that a reply of every task's piece stays well inside Spark's RPC message
 * limit.
 */
final class BarrierExchange implements ShardWorker.Exchange {
    /** Characters of all tasks' pieces together in one allGather reply (Spark refuses messages over spark.rpc.message.maxSize, 128 MiB by default). */
    static final int REPLY_CHARS = 32 << 20;

    private final BarrierTaskContext context;
    private final int tasks;

    BarrierExchange(BarrierTaskContext context, int tasks) {
        this.context = context;
        this.tasks = tasks;
    }

    @Override public Contribution sum(Contribution mine) {
        String text = Base64.getEncoder().encodeToString(encode(mine));
        int piece = Math.max(4, REPLY_CHARS / tasks / 4 * 4); // whole Base64 quads: each piece decodes alone
        StringBuilder[] all = new StringBuilder[tasks];
        for (int i = 0; i < tasks; i++) all[i] = new StringBuilder(text.length());
        // Every task's text has the same length (the same model), so all make the same number of calls.
        for (int at = 0; at < text.length(); at += piece) {
            String[] got = allGather(text.substring(at, Math.min(text.length(), at + piece)));
            if (got.length != tasks) throw new IllegalStateException("allGather returned " + got.length + " pieces for " + tasks + " tasks");
            for (int i = 0; i < tasks; i++) all[i].append(got[i]);
        }
        Contribution sum = null;
        for (StringBuilder b : all) {
            Contribution c = decode(Base64.getDecoder().decode(b.toString()));
            sum = sum == null ? c : sum.plus(c);
        }
        return sum;
    }

    /**
     * {@code context.allGather}, answered as soon as the last task's piece arrives. Spark's barrier
     * call checks for the coordinator's reply and then sleeps a whole second before it checks again,
     * which would cost up to a second a step; an interrupt ends that sleep early (Spark ignores it
     * there and checks again; its own kill of a task is a separate flag). So while this thread waits,
     * another interrupts it every {@link #WAKE_NANOS}; it is stopped, and the interrupt cleared,
     * before this returns.
     */
    private String[] allGather(String piece) {
        Thread caller = Thread.currentThread();
        java.util.concurrent.atomic.AtomicBoolean done = new java.util.concurrent.atomic.AtomicBoolean();
        Thread waker = Thread.ofPlatform().daemon().name("predcode-allgather-waker").start(() -> {
            while (!done.get()) {
                java.util.concurrent.locks.LockSupport.parkNanos(WAKE_NANOS);
                if (!done.get()) caller.interrupt();
            }
        });
        try {
            return context.allGather(piece);
        } finally {
            done.set(true);
            boolean interrupted = false;
            while (waker.isAlive()) {
                try {
                    waker.join();
                } catch (InterruptedException e) {
                    interrupted = true; // the waker's, or Spark's: Spark's kill is also recorded in the task context, which it checks itself
                }
            }
            Thread.interrupted(); // no interrupt of the waker's may outlive the call
        }
    }

    /** How often a waiting allGather is woken to look for its reply. */
    static final long WAKE_NANOS = 200_000;

    /** A one-step contribution's bytes: its loss sum, correct count and samples, then its values. */
    static byte[] encode(Contribution c) {
        ByteBuffer b = ByteBuffer.allocate(24 + 4 * c.values().length).order(ByteOrder.LITTLE_ENDIAN);
        b.putDouble(c.lossSums()[0]).putLong(c.correct()[0]).putLong(c.samples()[0]);
        b.asFloatBuffer().put(c.values());
        return b.array();
    }

    /** {@link #encode}'s inverse. */
    static Contribution decode(byte[] bytes) {
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        double loss = b.getDouble();
        long correct = b.getLong(), samples = b.getLong();
        float[] values = new float[(bytes.length - 24) / 4];
        b.asFloatBuffer().get(values);
        return new Contribution(values, new double[]{loss}, new long[]{correct}, new long[]{samples});
    }
}
