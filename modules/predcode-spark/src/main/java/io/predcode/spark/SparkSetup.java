package io.predcode.spark;

import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.time.Duration;
import java.util.Map;

/**
 * Starts Spark for predcode: embedded ({@code local[N]}) or against a standalone master
 * ({@code spark://HOST:PORT}), with the driver bound to 127.0.0.1 and no web UI, so that nothing
 * listens on or talks to another address unless the user says so ({@code extra}, e.g.
 * spark.driver.host for a real cluster). Checks what can be checked up front, in bounded time: the
 * master answers, and at least one executor registers.
 */
public final class SparkSetup {
    private SparkSetup() {}

    /** Task attempts before a step fails: a lost executor or a failing task is retried on another. */
    static final int TASK_ATTEMPTS = 4;

    /**
     * The configuration for this master: loopback driver, no UI, retries (local[N] becomes
     * local[N,4], since local mode otherwise never retries a task), native access for executors,
     * and for a standalone master this JVM's class path on the executors (a cluster on this machine,
     * or one sharing its file system; otherwise use spark-submit with the application jar).
     *
     * @param master the master URL
     * @param extra  more settings, applied last
     * @return the configuration
     */
    public static SparkConf conf(String master, Map<String, String> extra) {
        SparkConf c = new SparkConf().setAppName("predcode").setMaster(withRetries(master))
                .set("spark.driver.host", "127.0.0.1")
                .set("spark.driver.bindAddress", "127.0.0.1")
                .set("spark.ui.enabled", "false")
                .set("spark.ui.showConsoleProgress", "false")
                .set("spark.task.maxFailures", Integer.toString(TASK_ATTEMPTS))
                // A step's updates come back with the task's status (up to 64 MB), not in a second fetch from the executor's block manager.
                .set("spark.task.maxDirectResultSize", "64m")
                // Parameters are floats, which lz4 barely shrinks: compressing the broadcast only costs time.
                .set("spark.broadcast.compress", "false")
                .set("spark.executor.extraJavaOptions", EXECUTOR_JAVA_OPTIONS);
        BARRIER.forEach(c::set);
        if (master.startsWith("spark://")) // absolute: executors run in their own work folders
            c.set("spark.executor.extraClassPath", java.util.Arrays.stream(System.getProperty("java.class.path").split(java.io.File.pathSeparator))
                    .map(e -> java.nio.file.Path.of(e).toAbsolutePath().toString()).collect(java.util.stream.Collectors.joining(java.io.File.pathSeparator)));
        extra.forEach(c::set);
        return c;
    }

    /** The executors' JVM options: native access for the backends (Java 25 warns without it), and no display. */
    static final String EXECUTOR_JAVA_OPTIONS = "--enable-native-access=ALL-UNNAMED -Djava.awt.headless=true";

    /**
     * For barrier jobs (SparkTraining.synchronous): one that cannot get a slot for every task fails
     * at once, and its steps run one job each, instead of after 40 checks 15 s apart; and a shard
     * waits at most an hour, not a year, for the others' updates in a step.
     */
    static final Map<String, String> BARRIER = Map.of("spark.scheduler.barrier.maxConcurrentTasksCheck.maxFailures", "1",
            "spark.scheduler.barrier.maxConcurrentTasksCheck.interval", "1s", "spark.barrier.sync.timeout", "3600s");

    static String withRetries(String master) {
        return master.matches("local\\[(\\d+|\\*)]") ? master.substring(0, master.length() - 1) + "," + TASK_ATTEMPTS + "]" : master;
    }

    /**
     * Starts the context: refuses a master URL it cannot use, a standalone master that does not
     * answer within {@code timeout}, and a cluster where no executor registers within it (no free
     * cores or memory), each with one line, instead of waiting forever.
     *
     * @param master  local, local[N] or spark://HOST:PORT
     * @param extra   more settings
     * @param timeout how long to wait for the master and the first executor
     * @return the context
     */
    public static JavaSparkContext start(String master, Map<String, String> extra, Duration timeout) { return start(master, Map.of(), extra, timeout); }

    /** {@link #start}, with predcode's {@code own} settings applied before {@code extra}: the user's win, and a failure names only theirs. */
    static JavaSparkContext start(String master, Map<String, String> own, Map<String, String> extra, Duration timeout) {
        if (master.equals(SUBMIT)) return submitted(extra);
        if (!master.matches("local(\\[([1-9]\\d*|\\*)(,\\d+)?])?") && !master.startsWith("spark://"))
            throw new IllegalArgumentException("--spark " + master + ": expected local, local[N] (N >= 1 cores), spark://HOST:PORT, or submit under spark-submit"
                    + " (for other cluster managers)");
        if (master.startsWith("spark://")) reachable(master, timeout);
        // The name Spark gives this host (executor and block manager addresses in local mode): otherwise the first non-loopback interface's.
        if (!extra.containsKey("spark.driver.host")) org.apache.spark.util.Utils.setCustomHostname("127.0.0.1");
        SparkConf c = conf(master, extra);
        own.forEach((k, v) -> { if (!extra.containsKey(k)) c.set(k, v); });
        JavaSparkContext sc = context(c, master, extra);
        if (master.startsWith("spark://")) {
            long deadline = System.nanoTime() + timeout.toNanos();
            // The driver counts itself among the executors the status tracker lists.
            while (sc.statusTracker().getExecutorInfos().length < 2) {
                if (System.nanoTime() > deadline) {
                    sc.stop();
                    throw new IllegalArgumentException("--spark " + master + ": no executor registered within " + timeout.toSeconds()
                            + " s (the cluster has no free cores or memory for this application)");
                }
                try {
                    Thread.sleep(100);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    sc.stop();
                    throw new IllegalStateException("interrupted while waiting for executors", e);
                }
            }
        }
        return sc;
    }

    /** The master name for a driver started by spark-submit, which sets the master and the cluster's addresses itself. */
    public static final String SUBMIT = "submit";

    /** Under spark-submit: its settings (the master, the driver's address for the cluster) as given, with retries and native access added. */
    private static JavaSparkContext submitted(Map<String, String> extra) {
        SparkConf c = new SparkConf(); // spark-submit passes its settings as spark.* system properties
        if (!c.contains("spark.master"))
            throw new IllegalArgumentException("--spark submit: no master set; run under spark-submit (bin/predcode-spark-submit), or give local[N] or spark://HOST:PORT");
        c.setIfMissing("spark.app.name", "predcode").setIfMissing("spark.task.maxFailures", Integer.toString(TASK_ATTEMPTS))
                .setIfMissing("spark.executor.extraJavaOptions", EXECUTOR_JAVA_OPTIONS);
        BARRIER.forEach(c::setIfMissing);
        extra.forEach(c::set);
        return context(c, SUBMIT, extra);
    }

    /**
     * The context for {@code conf}, or one line saying why Spark would not start with it: a setting it cannot use
     * (an address it cannot bind, a size it cannot parse), most often one of {@code extra}, or a port this machine
     * will not give.
     */
    private static JavaSparkContext context(SparkConf conf, String master, Map<String, String> extra) {
        try {
            return new JavaSparkContext(conf);
        } catch (Exception | ExceptionInInitializerError e) { // Scala throws checked exceptions undeclared: SparkException, ClassNotFoundException, BindException
            String why = e.getMessage() == null ? e.getClass().getSimpleName()
                    : (e instanceof ClassNotFoundException ? "class not found: " : "") + e.getMessage().lines().findFirst().orElse("");
            throw new IllegalArgumentException("--spark " + master + ": Spark did not start" + (extra.isEmpty() ? "" : " with --spark-conf " + String.join(", ", extra.keySet()))
                    + ": " + why, e);
        }
    }

    private static void reachable(String master, Duration timeout) {
        URI u;
        try {
            u = URI.create(master);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("--spark " + master + ": not a URL");
        }
        if (u.getHost() == null || u.getPort() < 0) throw new IllegalArgumentException("--spark " + master + ": expected spark://HOST:PORT");
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(u.getHost(), u.getPort()), (int) Math.min(Integer.MAX_VALUE, timeout.toMillis()));
        } catch (IOException e) {
            throw new IllegalArgumentException("--spark " + master + ": the master does not answer (" + (e.getMessage() != null ? e.getMessage() : e.toString()) + ")");
        }
    }
}
