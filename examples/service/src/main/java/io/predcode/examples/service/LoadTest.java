package io.predcode.examples.service;

import io.predcode.core.json.Json;
import io.predcode.data.Dataset;
import io.predcode.data.Digits;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A bounded load test of {@link PredictionService} on 127.0.0.1 only: {@code clients} threads post
 * requests of 1 to 8 raw digits each for {@code seconds} (and at most {@code maxRequests} in all)
 * while the service trains online and publishes versions; then it stops by itself and reports
 * throughput, latency percentiles, errors and wrong-shaped answers.
 *
 * <p>Usage: {@code LoadTest [seconds=20] [clients=8] [json output file]}.
 */
public final class LoadTest {
    /** What a run measured. */
    public record Result(int clients, double seconds, long requests, long samples, long errors, long versionsSeen, long trainingSteps,
                         double p50Ms, double p99Ms, double p999Ms, double requestsPerSecond, double samplesPerSecond, double testAccuracy) {}

    public static Result run(double seconds, int clients, long maxRequests) throws Exception {
        Dataset test = Digits.split().test();
        try (PredictionService service = new PredictionService(0, 10);
             HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build()) {
            URI uri = URI.create("http://127.0.0.1:" + service.port() + "/predict");
            AtomicLong requests = new AtomicLong(), samples = new AtomicLong(), errors = new AtomicLong(), correct = new AtomicLong(), minVersion = new AtomicLong(Long.MAX_VALUE),
                    maxVersion = new AtomicLong();
            List<long[]> latencies = new ArrayList<>();
            long deadline = System.nanoTime() + (long) (seconds * 1e9);
            List<Thread> threads = new ArrayList<>();
            long start = System.nanoTime();
            for (int c = 0; c < clients; c++) {
                long[] mine = new long[(int) Math.min(maxRequests, 2_000_000)];
                latencies.add(mine);
                int id = c;
                threads.add(Thread.ofPlatform().name("client-" + c).start(() -> {
                    SplittableRandom r = new SplittableRandom(id);
                    int n = 0;
                    while (System.nanoTime() < deadline && requests.get() < maxRequests && n < mine.length) {
                        int rows = 1 + r.nextInt(8), first = r.nextInt(test.size() - rows);
                        StringBuilder body = new StringBuilder("{\"inputs\": [");
                        for (int i = 0; i < rows; i++) {
                            body.append(i == 0 ? "[" : ",[");
                            for (int p = 0; p < 64; p++) body.append(p == 0 ? "" : ",").append(Math.round(test.images()[(first + i) * 64 + p] * 16));
                            body.append(']');
                        }
                        body.append("]}");
                        long t0 = System.nanoTime();
                        try {
                            HttpResponse<String> resp = http.send(HttpRequest.newBuilder(uri).POST(HttpRequest.BodyPublishers.ofString(body.toString())).build(),
                                    HttpResponse.BodyHandlers.ofString());
                            mine[n++] = System.nanoTime() - t0;
                            requests.incrementAndGet();
                            if (resp.statusCode() != 200) { errors.incrementAndGet(); continue; }
                            Map<?, ?> out = (Map<?, ?>) Json.parse(resp.body(), "response");
                            List<?> classes = (List<?>) out.get("classes");
                            if (classes.size() != rows) { errors.incrementAndGet(); continue; }
                            long v = ((Double) out.get("version")).longValue();
                            minVersion.accumulateAndGet(v, Math::min);
                            maxVersion.accumulateAndGet(v, Math::max);
                            samples.addAndGet(rows);
                            for (int i = 0; i < rows; i++) if (((Double) classes.get(i)).intValue() == (int) test.labels()[first + i]) correct.incrementAndGet();
                        } catch (Exception e) {
                            errors.incrementAndGet();
                        }
                    }
                    latencies.set(id, Arrays.copyOf(mine, n));
                }));
            }
            for (Thread t : threads) t.join();
            double elapsed = (System.nanoTime() - start) / 1e9;
            long[] all = latencies.stream().flatMapToLong(Arrays::stream).sorted().toArray();
            return new Result(clients, elapsed, requests.get(), samples.get(), errors.get(), maxVersion.get() - Math.min(minVersion.get(), maxVersion.get()) + 1,
                    service.steps(), pct(all, 0.50), pct(all, 0.99), pct(all, 0.999), requests.get() / elapsed, samples.get() / elapsed,
                    samples.get() == 0 ? 0 : (double) correct.get() / samples.get());
        }
    }

    private static double pct(long[] sorted, double q) {
        return sorted.length == 0 ? Double.NaN : sorted[Math.min(sorted.length - 1, (int) Math.ceil(q * sorted.length) - 1)] / 1e6;
    }

    public static void main(String[] args) throws Exception {
        double seconds = args.length > 0 ? Double.parseDouble(args[0]) : 20;
        int clients = args.length > 1 ? Integer.parseInt(args[1]) : 8;
        Result r = run(seconds, clients, 10_000_000);
        System.out.printf("%d clients, %.1f s: %d requests (%d samples), %.0f requests/s, %.0f samples/s; latency p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms;"
                        + " %d errors; %d versions seen while %d training steps ran; accuracy of the answers %.1f%%%n",
                r.clients(), r.seconds(), r.requests(), r.samples(), r.requestsPerSecond(), r.samplesPerSecond(), r.p50Ms(), r.p99Ms(), r.p999Ms(),
                r.errors(), r.versionsSeen(), r.trainingSteps(), 100 * r.testAccuracy());
        if (args.length > 2) {
            Map<String, Object> json = new LinkedHashMap<>();
            for (var c : Result.class.getRecordComponents()) json.put(c.getName(), ((Number) c.getAccessor().invoke(r)).doubleValue());
            Files.writeString(Path.of(args[2]), Json.write(json, 2) + "\n");
        }
    }
}
