package io.predcode.spark;

import io.predcode.core.nn.Model;
import io.predcode.core.nn.ModelSpec;
import io.predcode.core.optim.Sgd;
import io.predcode.spi.Backend;
import io.predcode.spi.Backends;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.File;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * A real cluster on this machine: Spark's standalone Master and two Workers (1 core each) as
 * separate JVMs bound to 127.0.0.1, their executors as further JVMs. Training on it equals training
 * in one process; a Worker killed mid-run costs its executor, the run finishes on the other with the
 * same parameters; and no process of the cluster listens on or talks to another address.
 */
class StandaloneClusterTest {
    static final Path TARGET = Path.of("target").toAbsolutePath();
    static LoopbackCluster cluster;
    static String url;

    @BeforeAll static void startCluster() throws Exception {
        List<Path> jars = java.util.Arrays.stream(Files.readString(TARGET.resolve("test-classpath.txt")).strip().split(File.pathSeparator)).map(Path::of).toList();
        cluster = new LoopbackCluster(jars, TARGET, 2, 1, "1g");
        url = cluster.url();
    }

    @AfterAll static void stopCluster() {
        if (cluster != null) cluster.close();
    }

    /** Runs steps on the cluster, a job each; {@code killAfter} >= 0 kills worker 1 (and its executor) after that step. */
    static Map<String, float[]> train(RunSpec spec, int killAfter, Check whileRunning) {
        return train(spec, killAfter, whileRunning, false);
    }

    /**
     * Runs steps on the cluster: a job each, or in barrier jobs of 2 steps ({@code barrier}); with
     * {@code killAfter} >= 0, worker 1 is killed after that step, or in barrier mode as soon as one
     * barrier job of every step is running.
     */
    static Map<String, float[]> train(RunSpec spec, int killAfter, Check whileRunning, boolean barrier) {
        JavaSparkContext sc = SparkSetup.start(url, Map.of("spark.cores.max", "2", "spark.executor.memory", "512m"), Duration.ofSeconds(90));
        try (Backend be = Backends.open("cpu"); Model model = Model.create(ModelSpec.parse(spec.specJson(), "spec"), spec.inputShape(), be, 3);
             Sgd sgd = new Sgd(model, 0.1f, 0.9f, 0f); SparkTraining t = new SparkTraining(sc, spec, SparkExactnessTest.train.size(), model, sgd)) {
            long deadline = System.nanoTime() + 90_000_000_000L;
            while (sc.statusTracker().getExecutorInfos().length < 3) { // both executors, and the driver
                assertTrue(System.nanoTime() < deadline, "two executors should register; see target/spark-worker*.log");
                Thread.sleep(100);
            }
            if (barrier) {
                Thread killer = null;
                if (killAfter >= 0) {
                    killer = new Thread(() -> {
                        long until = System.nanoTime() + 30_000_000_000L;
                        while (sc.statusTracker().getActiveJobIds().length == 0 && System.nanoTime() < until) Thread.onSpinWait();
                        cluster.kill(1);
                    });
                    killer.start();
                }
                // Undisturbed: barrier jobs of 2 steps, each after the first starting from the state the last left on the executors
                // (on whichever executor Spark places each partition); with a worker killed, one job of every step.
                int perJob = killAfter < 0 ? 2 : SparkExactnessTest.STEPS;
                for (int s = 0; s < SparkExactnessTest.STEPS; s += perJob)
                    assertEquals(perJob, t.synchronous(0, s, SparkExactnessTest.lrs(perJob, 0.1f)).size());
                if (killAfter < 0) assertEquals(2L * (SparkExactnessTest.STEPS / perJob - 1), t.heldStarts(), "barrier tasks that did not fetch the broadcast");
                if (killer != null) killer.join();
                System.out.println(killAfter < 0 ? "barrier job on the cluster: " + (t.barrierFailure() == null ? "ran" : t.barrierFailure())
                        : "worker killed during the barrier job: " + t.barrierFailure() + "; its steps ran one job each");
                if (killAfter < 0) assertNull(t.barrierFailure());
            } else {
                for (int s = 0; s < SparkExactnessTest.STEPS; s++) {
                    t.step(0, s);
                    if (s == killAfter) cluster.kill(1);
                }
            }
            // Each partition stays on the executor it first ran on, so no executor builds a second shard's worker.
            if (killAfter < 0) assertEquals(1, t.mostWorkersInAnExecutor(), "this run's workers in one executor");
            whileRunning.run();
            return model.parameterValues();
        } catch (InterruptedException | IOException e) {
            throw new IllegalStateException(e);
        } finally {
            sc.stop();
        }
    }

    @Test void trainsLikeOneProcessOnlyOnLoopbackAndSurvivesALostWorker() throws Exception {
        SparkExactnessTest.train = io.predcode.data.DataSources.load("digits").train().holdOut(0.1, 3)[0];
        RunSpec spec = SparkExactnessTest.spec("strict", -1);
        Map<String, float[]> onCluster = train(spec, -1, StandaloneClusterTest::onlyLoopback);
        double e = SparkExactnessTest.worst(SparkExactnessTest.inProcess(spec), onCluster);
        System.out.printf("standalone cluster, 2 workers x 1 core: relative difference to one process %.2e%n", e);
        assertTrue(e <= 1e-5, "cluster against one process: " + e);

        Map<String, float[]> inBarrierJob = train(SparkExactnessTest.spec("strict", -1), -1, () -> {}, true);
        for (String k : onCluster.keySet()) assertArrayEquals(onCluster.get(k), inBarrierJob.get(k), "barrier jobs on the cluster, as a job per step: " + k);

        Map<String, float[]> disturbed = train(SparkExactnessTest.spec("strict", -1), 2, () -> {});
        for (String k : onCluster.keySet()) assertArrayEquals(onCluster.get(k), disturbed.get(k), "a worker lost after step 3 changes nothing: " + k);
        assertFalse(cluster.workers().get(1).isAlive());
    }

    /** A worker lost while a barrier job runs: the job's steps run again, a job each, on what remains, to the same parameters. */
    @Test void aWorkerLostDuringABarrierJobChangesNothing() throws Exception {
        SparkExactnessTest.train = io.predcode.data.DataSources.load("digits").train().holdOut(0.1, 3)[0];
        if (!cluster.workers().get(1).isAlive()) cluster.restart(1);
        RunSpec spec = SparkExactnessTest.spec("strict", -1);
        Map<String, float[]> clean = SparkExactnessTest.inProcess(spec), disturbed = train(spec, 0, () -> {}, true);
        double e = SparkExactnessTest.worst(clean, disturbed);
        assertTrue(e <= 1e-5, "against one process: " + e);
        assertFalse(cluster.workers().get(1).isAlive());
    }

    /** A cluster that cannot give the application an executor (it asks for more cores than a worker has) is refused in bounded time. */
    @Test void noFreeCoresIsOneLineNotAHang() {
        long t0 = System.nanoTime();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> SparkSetup.start(url, Map.of("spark.executor.cores", "4"), Duration.ofSeconds(8)));
        assertTrue(e.getMessage().contains("no executor registered within 8 s"), e.getMessage());
        assertTrue(System.nanoTime() - t0 < 30e9);
    }

    @Test void anUnreachableMasterIsOneLine() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SparkSetup.start("spark://127.0.0.1:" + unusedPort(), Map.of(), Duration.ofSeconds(3)));
        assertTrue(e.getMessage().contains("the master does not answer"), e.getMessage());
    }

    static int unusedPort() throws IOException { return LoopbackCluster.freePort(); }

    interface Check { void run() throws IOException; }

    /** While the application runs: the master, both workers, both executors and this driver use loopback only. */
    static void onlyLoopback() throws IOException {
        assertTrue(Sockets.tcp(Long.toString(cluster.master().pid())).stream().anyMatch(s -> s.contains("state 0A")), "the master listens (the check sees its sockets)");
        List<ProcessHandle> running = cluster.processes();
        assertTrue(running.size() >= 5, "master, 2 workers and their executors: " + running.size());
        for (ProcessHandle p : running) assertEquals(List.of(), Sockets.notLoopback(Long.toString(p.pid())), "process " + p.pid() + " " + p.info().command().orElse(""));
        assertEquals(List.of(), Sockets.notLoopback("self"));
    }

}
