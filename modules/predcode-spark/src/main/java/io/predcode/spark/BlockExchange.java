package io.predcode.spark;

import org.apache.spark.BarrierTaskContext;
import org.apache.spark.SparkEnv;
import org.apache.spark.network.buffer.ManagedBuffer;
import org.apache.spark.storage.BlockData;
import org.apache.spark.storage.BlockId;
import org.apache.spark.storage.BlockManager;
import org.apache.spark.storage.BlockManagerId;
import org.apache.spark.storage.StorageLevel;
import org.apache.spark.storage.TestBlockId;
import org.apache.spark.util.io.ChunkedByteBuffer;

import java.nio.ByteBuffer;
import java.util.ArrayDeque;

/**
 * A synchronous step's sum over shards with the bytes moved by Spark's block manager, executor to
 * executor, and only the blocks' names through the barrier {@code allGather}. {@link BarrierExchange}
 * sends every update through the driver's barrier coordinator, which writes each as a Java string a
 * character at a time and replies with all of them to every task: on the loopback cluster that cost
 * 50-90 ms a step for mlp. Here each task stores its update as a serialized block in its own
 * executor's block manager, their addresses go round through allGather (a few bytes), and each task
 * fetches the others' blocks, as raw bytes, through Spark's block transfer service (the way
 * executors fetch broadcast pieces and shuffle blocks). Sums are formed in partition order, so the
 * result is bit for bit {@link BarrierExchange}'s.
 *
 * <p>The block manager is not one of Spark's public APIs ({@code private[spark]} in Scala, public in
 * the bytecode). It has kept these methods through Spark 3 and 4; where a Spark lacks them, the
 * setting {@code spark.predcode.exchange=allgather} keeps to public APIs ({@link SparkTraining#EXCHANGE}).
 *
 * <p>A task's block for step t is removed after step t + 1's allGather, when every task has
 * fetched it; {@link #finish} waits at a barrier for the last step's fetches, and a task removes
 * the rest of its blocks when it completes, failed or not. Blocks are named as {@link TestBlockId}s,
 * the one kind of block id that takes a free-form name and that no part of Spark interprets or
 * cleans up; they are kept from the driver's block manager master, which need not know of them.
 */
final class BlockExchange implements ShardWorker.Exchange {
    /**
     * Memory only: a block never meets the disk, where Spark's I/O encryption (when on) would decrypt
     * bytes it never encrypted. A block manager short of memory refuses the put, and the job's steps
     * then run one job each, as after any failed barrier job.
     */
    private static final StorageLevel LEVEL = StorageLevel.MEMORY_ONLY_SER();
    private static final scala.reflect.ClassTag<byte[]> BYTES = scala.reflect.ClassTag$.MODULE$.apply(byte[].class);

    private final BarrierTaskContext context;
    private final int tasks;
    private final BlockManager blocks = SparkEnv.get().blockManager();
    /** This task's blocks not yet removed, oldest first. */
    private final ArrayDeque<BlockId> mine = new ArrayDeque<>();
    private int step;

    BlockExchange(BarrierTaskContext context, int tasks) {
        this.context = context;
        this.tasks = tasks;
        // Whether the task succeeds (after finish) or fails (its stage has then failed, and nobody fetches them), it leaves no blocks behind.
        context.addTaskCompletionListener((org.apache.spark.util.TaskCompletionListener) c -> removeAll());
    }

    @Override public Contribution sum(Contribution own) {
        // The task attempt's id is unique within the application, so a retried stage never meets an old block.
        BlockId id = new TestBlockId("predcode-" + context.taskAttemptId() + "-" + step++);
        byte[] bytes = BarrierExchange.encode(own);
        // Not reported to the driver's block manager master: peers learn where a block is from allGather, which saves three driver round trips a step.
        if (!blocks.putBytes(id, new ChunkedByteBuffer(ByteBuffer.wrap(bytes)), LEVEL, false, BYTES))
            throw new IllegalStateException("the block manager refused this shard's update (" + bytes.length + " bytes) as block " + id.name());
        mine.addLast(id);
        String self = address(id);
        String[] where = BarrierExchange.allGather(context, self);
        if (where.length != tasks) throw new IllegalStateException("allGather returned " + where.length + " block addresses for " + tasks + " tasks");
        // Every task has passed the last step's fetches to get here: its blocks are no longer needed.
        while (mine.size() > 1) blocks.removeBlock(mine.removeFirst(), false);
        Contribution sum = null;
        for (String at : where) {
            Contribution c = at.equals(self) ? own : fetch(at, bytes.length);
            sum = sum == null ? c : sum.plus(c);
        }
        return sum;
    }

    /** Where a peer finds this task's block: its name, then this executor's id and its block manager's host and port. */
    private String address(BlockId id) {
        BlockManagerId self = blocks.blockManagerId();
        return id.name() + " " + self.executorId() + " " + self.host() + " " + self.port();
    }

    /** A peer's block, from this executor's store where the peer ran here, else from the peer's executor. */
    private Contribution fetch(String address, int length) {
        String[] at = address.split(" ");
        BlockId id = BlockId.apply(at[0]);
        if (at[1].equals(blocks.blockManagerId().executorId())) {
            scala.Option<BlockData> local = blocks.getLocalBytes(id);
            if (local.isEmpty()) throw new IllegalStateException("another shard's update, block " + id.name() + ", is missing from this executor");
            BlockData data = local.get();
            try {
                return decode(data.toByteBuffer(), length, id);
            } finally {
                blocks.releaseLockAndDispose(id, data, scala.Option.apply(context));
            }
        }
        ManagedBuffer remote = blocks.blockTransferService().fetchBlockSync(at[2], Integer.parseInt(at[3]), at[1], id.name(), null);
        try {
            return decode(remote.nioByteBuffer(), length, id);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException("reading another shard's update, block " + id.name() + " from executor " + at[1], e);
        } finally {
            remote.release();
        }
    }

    private static Contribution decode(ByteBuffer b, int length, BlockId id) {
        if (b.remaining() != length) throw new IllegalStateException("block " + id.name() + " holds " + b.remaining() + " bytes; this shard's update has " + length);
        return BarrierExchange.decode(b);
    }

    /**
     * After the last step, on every task (not on one that failed, which must not enter another
     * barrier): waits until every task has fetched the last step's blocks, which the task's
     * completion then removes.
     */
    @Override public void finish() {
        if (!mine.isEmpty()) BarrierExchange.allGather(context, ""); // a barrier, woken as allGather is
    }

    private void removeAll() {
        while (!mine.isEmpty()) blocks.removeBlock(mine.removeFirst(), false);
    }
}
