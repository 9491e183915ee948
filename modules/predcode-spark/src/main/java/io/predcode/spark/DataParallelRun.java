package io.predcode.spark;

import io.predcode.core.nn.Model;
import io.predcode.core.optim.Optimizer;
import org.apache.spark.SparkException;
import org.apache.spark.api.java.JavaSparkContext;

import java.time.Duration;
import java.util.Map;

/**
 * A Spark context and a {@link SparkTraining} on it, started and stopped together: what a command
 * line or a service needs for one data-parallel run.
 */
public final class DataParallelRun implements AutoCloseable {
    private final JavaSparkContext sc;
    private final SparkTraining training;
    /** The local run's scratch folder ({@link LocalScratch}), deleted on close; null on a cluster. */
    private final java.nio.file.Path scratch;

    private DataParallelRun(JavaSparkContext sc, SparkTraining training, java.nio.file.Path scratch) {
        this.sc = sc;
        this.training = training;
        this.scratch = scratch;
    }

    /**
     * Starts Spark ({@link SparkSetup#start}) and the run.
     *
     * @param master    local, local[N] or spark://HOST:PORT
     * @param conf      more Spark settings
     * @param timeout   how long to wait for the master and the first executor
     * @param spec      the run
     * @param trainSize the training set's size after the validation split
     * @param model     the driver's model
     * @param optimizer its optimizer
     * @return the run
     */
    public static DataParallelRun start(String master, Map<String, String> conf, Duration timeout, RunSpec spec, int trainSize, Model model, Optimizer optimizer) {
        java.nio.file.Path tmp = java.nio.file.Path.of(System.getProperty("java.io.tmpdir")), scratch = null;
        if (LocalScratch.applies(master, conf)) {
            LocalScratch.removeOrphans(tmp);
            scratch = LocalScratch.folder(tmp);
        }
        JavaSparkContext sc = SparkSetup.start(master, scratch == null ? Map.of() : Map.of("spark.local.dir", scratch.toString()), conf, timeout);
        try {
            return new DataParallelRun(sc, new SparkTraining(sc, spec, trainSize, model, optimizer), scratch);
        } catch (RuntimeException e) {
            sc.stop();
            if (scratch != null) LocalScratch.delete(scratch);
            throw e;
        }
    }

    /** The training. */
    public SparkTraining training() { return training; }

    /**
     * What to tell a user about a failed Spark job in one line: the executors' own error (a data
     * path they cannot read, a bad setting), without Spark's stage and task bookkeeping.
     *
     * @param e the failure
     * @return its root cause's message
     */
    public static String rootMessage(Throwable e) {
        Throwable t = e;
        while (t.getCause() != null && t.getCause() != t) t = t.getCause();
        String m = t.getMessage() != null ? t.getMessage() : t.toString();
        if (t instanceof SparkException && m.contains("\n")) m = m.substring(0, m.indexOf('\n'));
        return m;
    }

    @Override public void close() {
        try {
            training.close();
        } finally {
            sc.stop();
            if (scratch != null) LocalScratch.delete(scratch); // what Spark would delete at the JVM's exit, now: nothing is left for SIGKILL
        }
    }
}
