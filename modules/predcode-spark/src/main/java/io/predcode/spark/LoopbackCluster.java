package io.predcode.spark;

import java.io.File;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * A Spark standalone cluster on this machine, for tests and benchmarks: a Master and Workers as
 * separate JVMs, everything bound to 127.0.0.1 (SPARK_LOCAL_IP and --host), the web UIs on loopback
 * ports too. Spark's launcher wants a Spark home with a jars/ folder: it is made of links to the
 * given jars. Logs go to {@code dir}/spark-*.log, the executors' scratch folders to {@code dir}/spark-local.
 */
public final class LoopbackCluster implements AutoCloseable {
    private final List<Process> processes = new ArrayList<>();
    private final List<Process> workers = new ArrayList<>();
    private final Process master;
    private final String url;

    /**
     * Starts the Master, waits for it, and starts the Workers (they register within seconds).
     *
     * @param jars           Spark's jars (and anything executors need): the class path of a build
     * @param dir            where the Spark home, work folders and logs go
     * @param workers        how many Workers
     * @param coresPerWorker cores each Worker offers
     * @param memory         memory each Worker offers, e.g. "1g"
     * @throws IOException when a JVM cannot start or the Master does not listen within a minute
     */
    public LoopbackCluster(List<Path> jars, Path dir, int workers, int coresPerWorker, String memory) throws IOException {
        Path home = dir.resolve("spark-home"), jarDir = home.resolve("jars");
        Files.createDirectories(jarDir);
        for (Path jar : jars) {
            Path link = jarDir.resolve(jar.getFileName());
            if (jar.toString().endsWith(".jar") && !Files.exists(link, LinkOption.NOFOLLOW_LINKS)) Files.createSymbolicLink(link, jar.toAbsolutePath());
        }
        int port = freePort();
        url = "spark://127.0.0.1:" + port;
        master = launch(home, dir, "master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", Integer.toString(port),
                "--webui-port", Integer.toString(freePort()));
        long deadline = System.nanoTime() + Duration.ofMinutes(1).toNanos();
        while (true) {
            try (Socket _ = new Socket(InetAddress.getLoopbackAddress(), port)) { // the master accepts: it is up
                break;
            } catch (IOException e) {
                if (System.nanoTime() > deadline || !master.isAlive()) {
                    close();
                    throw new IOException("the Spark master did not start; see " + dir.resolve("spark-master.log"), e);
                }
                try {
                    Thread.sleep(200);
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    close();
                    throw new IOException("interrupted", ie);
                }
            }
        }
        this.home = home;
        this.dir = dir;
        this.coresPerWorker = coresPerWorker;
        this.memory = memory;
        for (int w = 0; w < workers; w++) this.workers.add(worker(w));
    }

    private final Path home, dir;
    private final int coresPerWorker;
    private final String memory;

    private Process worker(int w) throws IOException {
        return launch(home, dir, "worker" + w, "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--cores", Integer.toString(coresPerWorker),
                "--memory", memory, "--webui-port", Integer.toString(freePort()), "--work-dir", dir.resolve("spark-work").toString(), url);
    }

    /** Starts a fresh Worker i in place of one that was killed (it registers with the Master in a few seconds). */
    public void restart(int worker) throws IOException {
        if (workers.get(worker).isAlive()) throw new IllegalStateException("worker " + worker + " is running");
        workers.set(worker, worker(worker));
    }

    /** The folder {@link #close} deletes: one {@link #temporary} made. */
    private Path owned;

    /**
     * A cluster in a new temporary folder named from {@code prefix}, which {@link #close} deletes once the cluster's
     * processes have exited: a benchmark's clusters leave nothing in the temporary folder.
     */
    public static LoopbackCluster temporary(String prefix, List<Path> jars, int workers, int coresPerWorker, String memory) throws IOException {
        Path dir = Files.createTempDirectory(prefix);
        try {
            LoopbackCluster cluster = new LoopbackCluster(jars, dir, workers, coresPerWorker, memory);
            cluster.owned = dir;
            return cluster;
        } catch (IOException | RuntimeException e) {
            LocalScratch.delete(dir);
            throw e;
        }
    }

    /** Where the Spark home, work folders and logs are. */
    public Path folder() { return dir; }

    /** The master URL, spark://127.0.0.1:PORT. */
    public String url() { return url; }

    /** The Master's process. */
    public Process master() { return master; }

    /** The Workers' processes. */
    public List<Process> workers() { return List.copyOf(workers); }

    /** The Master, the Workers and their executors, those alive now. */
    public List<ProcessHandle> processes() {
        List<ProcessHandle> all = new ArrayList<>();
        for (Process p : processes) {
            if (p.isAlive()) all.add(p.toHandle());
            p.descendants().filter(ProcessHandle::isAlive).forEach(all::add);
        }
        return all;
    }

    /** Kills Worker i and its executors at once, as a machine failing would. */
    public void kill(int worker) {
        Process w = workers.get(worker);
        w.descendants().forEach(ProcessHandle::destroyForcibly);
        w.destroyForcibly();
    }

    private Process launch(Path home, Path dir, String name, String main, String... args) throws IOException {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xmx256m",
                "--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow", "-cp", home.resolve("jars") + File.separator + "*", main));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(dir.resolve("spark-" + name + ".log").toFile());
        pb.environment().put("SPARK_LOCAL_IP", "127.0.0.1");
        pb.environment().put("SPARK_HOME", home.toString());
        pb.environment().put("SPARK_SCALA_VERSION", "2.13"); // the launcher asks, and finds no build folders to guess it from
        pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
        // The executors' scratch folders in dir, not the temporary folder: a Worker killed (as kill() does) never deletes them.
        Path local = Files.createDirectories(dir.resolve("spark-local"));
        pb.environment().put("SPARK_LOCAL_DIRS", local.toString());
        Process p = pb.start();
        processes.add(p);
        return p;
    }

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    @Override public void close() {
        List<ProcessHandle> all = processes();
        all.forEach(ProcessHandle::destroyForcibly);
        if (owned == null) return;
        // Their logs and scratch files are written until they exit.
        for (ProcessHandle h : all) h.onExit().completeOnTimeout(h, 30, java.util.concurrent.TimeUnit.SECONDS).join();
        LocalScratch.delete(owned); // the jar links, not the jars
    }
}
