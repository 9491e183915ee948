package io.predcode.cli;

import io.predcode.core.nn.Loss;
import io.predcode.core.pc.Trainer;
import io.predcode.data.Batches;
import io.predcode.data.Dataset;
import io.predcode.spark.SparkTraining;

/**
 * Where an epoch's training steps come from: batches through a {@link Trainer} in this process, or
 * synchronous steps on Spark. The run around them (metrics, validation, checkpoints) is the same.
 */
interface Steps extends AutoCloseable {
    /** Takes the next step; null when the epoch has no more. */
    Trainer.Step next();

    /** The last step's batch size. */
    int size();

    /** The last step's index in the epoch (0-based). */
    int index();

    /** The last step's own time, without waiting for its batch. */
    double millis();

    /** Nanoseconds this epoch waited for batches. */
    long waitNanos();

    /**
     * Whether the model and the optimizer are as after the last step {@link #next()} returned, so that a checkpoint
     * saved now resumes at the next: on Spark a barrier job applies several steps at once, and hands them out one by one.
     */
    boolean atBoundary();

    @Override void close();

    /**
     * An epoch of shuffled (and augmented) batches through the trainer, from batch {@code firstBatch} on (a run resumed
     * inside the epoch); with dropLast, whole batches only.
     */
    static Steps local(Dataset train, int batchSize, long seed, int epoch, int firstBatch, boolean shuffle, Loss loss, io.predcode.data.Augmentation augmentation,
                       boolean dropLast, Trainer trainer) {
        Batches batches = new Batches(train, batchSize, seed, epoch, shuffle, loss == Loss.MSE, augmentation, dropLast, firstBatch);
        return new Steps() {
            long wait;
            double millis;
            Batches.Batch last;

            @Override public Trainer.Step next() {
                long w0 = System.nanoTime();
                if (!batches.hasNext()) return null;
                last = batches.next();
                long st = System.nanoTime();
                wait += st - w0;
                Trainer.Step r = trainer.step(last.x(), last.y(), last.size());
                millis = (System.nanoTime() - st) / 1e6;
                return r;
            }

            @Override public int size() { return last.size(); }
            @Override public int index() { return last == null ? firstBatch - 1 : last.index(); }
            @Override public double millis() { return millis; }
            @Override public long waitNanos() { return wait; }
            @Override public boolean atBoundary() { return true; }
            @Override public void close() { batches.close(); }
        };
    }

    /**
     * The steps of {@code stepMillis} each that fit in {@code seconds}, at least one; one where no step has been timed yet
     * (the first job also loads the shards: its time is its own measure).
     */
    static int stepsWithin(int seconds, double stepMillis) {
        if (!(stepMillis > 0)) return 1;
        return (int) Math.max(1, Math.min(Integer.MAX_VALUE, Math.floor(seconds * 1000.0 / stepMillis)));
    }

    /**
     * An epoch of the plan's global batches on Spark (the executors read their shards themselves: no
     * wait here): up to {@code stepsPerJob} synchronous steps per barrier job, and no more than the last job's time a
     * step says end within {@code jobSeconds} (a stop waits for the job in progress; a scheduler's SIGKILL, after its grace period, does not),
     * or with {@code averageEvery} &gt; 1, jobs of that many local steps, averaged. A job never runs past the
     * epoch or past {@code maxSteps} (0: none) steps in all. Where jobs end changes no result. Every {@code monitorEvery}-th step of the run (0: none) runs
     * as a job of its own that also compares its update with backprop's gradient, as the monitor does in one process.
     *
     * @param firstBatch the epoch's steps already taken (a run resumed inside the epoch)
     * @param firstStep  the run's steps before this epoch
     * @param lrAt       the learning rate of the run's step (0-based) with this index
     */
    static Steps spark(SparkTraining training, int epoch, int firstBatch, int averageEvery, int stepsPerJob, int jobSeconds, int monitorEvery, long firstStep,
                       long maxSteps, java.util.function.LongFunction<Float> lrAt) {
        return new Steps() {
            int next = firstBatch, taken = firstBatch;
            SparkTraining.StepResult last;
            final java.util.ArrayDeque<SparkTraining.StepResult> pending = new java.util.ArrayDeque<>();

            @Override public Trainer.Step next() {
                if (pending.isEmpty()) {
                    int left = training.plan().stepsPerEpoch() - next;
                    if (left == 0) return null;
                    try {
                        if (averageEvery > 1) {
                            int k = Math.min(averageEvery, left);
                            pending.addAll(training.averaged(epoch, next, k));
                            next += k;
                        } else if (monitored(firstStep + next)) { // at the learning rate the run set for this step, the next one it takes
                            pending.add(training.step(epoch, next, true));
                            next++;
                        } else {
                            int k = (int) Math.min(Math.min(Math.min(stepsPerJob, left), stepsWithin(jobSeconds, training.stepMillis())),
                                    maxSteps > 0 ? maxSteps - firstStep - next : Long.MAX_VALUE);
                            for (int i = 1; i < k; i++) {
                                if (monitored(firstStep + next + i)) { // a monitored step runs as a job of its own
                                    k = i;
                                    break;
                                }
                            }
                            float[] lrs = new float[k];
                            for (int i = 0; i < k; i++) lrs[i] = lrAt.apply(firstStep + next + i);
                            pending.addAll(training.synchronous(epoch, next, lrs));
                            next += k;
                        }
                    } catch (io.predcode.core.pc.DivergenceException | IllegalArgumentException e) {
                        throw e;
                    } catch (Exception e) { // Spark's job failures: the executors' own error, in one line
                        throw new IllegalArgumentException("--spark: a step before " + (next + 1) + " of epoch " + (epoch + 1) + " failed on the executors: " + io.predcode.spark.DataParallelRun.rootMessage(e), e);
                    }
                }
                last = pending.poll();
                taken++;
                // Spark reports a step that diverged (a relaxation that ran off, or a guarded one that raised its energy at every eta) unapplied, with why.
                if (last.divergence() != null)
                    throw io.predcode.core.pc.DivergenceException.at(firstStep + taken, last.divergence(), "parameters are as after step " + (firstStep + taken - 1));
                return new Trainer.Step(last.loss(), (int) last.correct(), last.alignment(), last.eta(), last.energies());
            }

            /** Whether the run's step with this index (0-based) is measured by the monitor. */
            boolean monitored(long step) { return monitorEvery > 0 && (step + 1) % monitorEvery == 0; }

            @Override public int size() { return (int) last.samples(); }
            @Override public int index() { return taken - 1; }
            @Override public double millis() { return last.jobMillis(); }
            @Override public long waitNanos() { return 0; }
            @Override public boolean atBoundary() { return pending.isEmpty(); }
            @Override public void close() {}
        };
    }
}
