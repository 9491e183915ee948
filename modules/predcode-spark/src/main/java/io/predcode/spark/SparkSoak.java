package io.predcode.spark;

import io.predcode.core.io.Safetensors;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * A long run as a user makes it, twice: {@code ./predcode train} against a loopback standalone
 * cluster (2 workers x 1 core, started here) and with {@code --spark local[2]}, the same options
 * otherwise; then checks that both wrote the same per-step losses and accuracies and the same
 * checkpoint tensors, bit for bit (exact data parallelism does not depend on where the shards run).
 * Run by bench/spark-soak.sh, which passes the launcher, the output directory and the train options.
 */
public final class SparkSoak {
    private SparkSoak() {}

    public static void main(String[] args) throws Exception {
        if (args.length < 2) throw new IllegalArgumentException("usage: SparkSoak LAUNCHER OUT_DIR TRAIN_OPTIONS...");
        String launcher = args[0];
        Path out = Path.of(args[1]);
        List<String> options = Arrays.asList(args).subList(2, args.length);
        List<Path> jars = Arrays.stream(System.getProperty("java.class.path").split(File.pathSeparator)).map(Path::of).toList();
        Path clusterRun = out.resolve("cluster"), localRun = out.resolve("local");
        long t0 = System.nanoTime();
        try (LoopbackCluster cluster = LoopbackCluster.temporary("predcode-spark-soak", jars, 2, 1, "3g")) {
            train(launcher, cluster.url(), clusterRun, options);
        }
        double clusterSeconds = (System.nanoTime() - t0) / 1e9;
        t0 = System.nanoTime();
        train(launcher, "local[2]", localRun, options);
        double localSeconds = (System.nanoTime() - t0) / 1e9;
        List<String> a = stepColumns(clusterRun.resolve("metrics.csv")), b = stepColumns(localRun.resolve("metrics.csv"));
        boolean sameSteps = a.equals(b), sameTensors = sameTensors(clusterRun.resolve("checkpoint.safetensors"), localRun.resolve("checkpoint.safetensors"));
        System.out.printf("%d steps on the loopback cluster (%.0f s) and on local[2] (%.0f s): per-step loss and accuracy %s; checkpoint tensors %s%n",
                a.size(), clusterSeconds, localSeconds, sameSteps ? "identical" : "DIFFER", sameTensors ? "identical" : "DIFFER");
        if (!sameSteps || !sameTensors) System.exit(1);
    }

    private static void train(String launcher, String master, Path run, List<String> options) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(launcher, "train", "--spark", master, "--out", run.toString()));
        cmd.addAll(options);
        int code = new ProcessBuilder(cmd).inheritIO().start().waitFor();
        if (code != 0) throw new IllegalStateException(String.join(" ", cmd) + " exited " + code);
    }

    /** metrics.csv's step, epoch, loss and batch accuracy per row (the rest are timings). */
    private static List<String> stepColumns(Path csv) throws IOException {
        return Files.readAllLines(csv).stream().skip(1).map(l -> String.join(",", Arrays.asList(l.split(",")).subList(0, 4))).toList();
    }

    /** Whether two checkpoints hold the same tensors, bit for bit (their metadata holds timings, which differ). */
    private static boolean sameTensors(Path a, Path b) throws IOException {
        Map<String, Safetensors.Entry> x = Safetensors.read(a).tensors(), y = Safetensors.read(b).tensors();
        return x.keySet().equals(y.keySet()) && x.keySet().stream().allMatch(k -> Arrays.equals(x.get(k).shape(), y.get(k).shape())
                && Arrays.equals(x.get(k).data(), y.get(k).data()));
    }
}
