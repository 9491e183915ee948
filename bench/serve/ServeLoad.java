import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A bounded load on `predcode serve` at 127.0.0.1:PORT: CLIENTS threads post requests of 1 to 8 random digits-sized
 * inputs (64 values 0..16) for SECONDS (at most 200,000 requests), then report requests/s, latency percentiles and
 * errors. Usage: java ServeLoad.java PORT [SECONDS=20] [CLIENTS=8]
 */
public class ServeLoad {
    public static void main(String[] a) throws Exception {
        int port = Integer.parseInt(a[0]), seconds = a.length > 1 ? Integer.parseInt(a[1]) : 20, clients = a.length > 2 ? Integer.parseInt(a[2]) : 8;
        URI uri = URI.create("http://127.0.0.1:" + port + "/predict");
        AtomicLong requests = new AtomicLong(), samples = new AtomicLong(), errors = new AtomicLong();
        List<long[]> latencies = new ArrayList<>();
        long end = System.nanoTime() + seconds * 1_000_000_000L;
        List<Thread> threads = new ArrayList<>();
        try (HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build()) {
            for (int c = 0; c < clients; c++) {
                long[] mine = new long[200_000];
                latencies.add(mine);
                SplittableRandom r = new SplittableRandom(c);
                threads.add(Thread.ofPlatform().start(() -> {
                    int n = 0;
                    while (System.nanoTime() < end && requests.get() < 200_000) {
                        int rows = 1 + r.nextInt(8);
                        StringBuilder body = new StringBuilder("{\"inputs\": [");
                        for (int i = 0; i < rows; i++) {
                            body.append(i == 0 ? "[" : ", [");
                            for (int j = 0; j < 64; j++) body.append(j == 0 ? "" : ",").append(r.nextInt(17));
                            body.append(']');
                        }
                        body.append("]}");
                        long t = System.nanoTime();
                        try {
                            HttpResponse<String> res = http.send(HttpRequest.newBuilder(uri).POST(HttpRequest.BodyPublishers.ofString(body.toString())).build(),
                                    HttpResponse.BodyHandlers.ofString());
                            if (res.statusCode() != 200 || !res.body().contains("\"probabilities\"")) errors.incrementAndGet();
                        } catch (Exception e) {
                            errors.incrementAndGet();
                        }
                        if (n < mine.length) mine[n++] = System.nanoTime() - t;
                        requests.incrementAndGet();
                        samples.addAndGet(rows);
                    }
                }));
            }
            for (Thread t : threads) t.join();
        }
        long[] all = latencies.stream().flatMapToLong(l -> Arrays.stream(l).filter(v -> v > 0)).sorted().toArray();
        System.out.printf("clients %d, %d s: %d requests (%.0f/s), %d samples (%.0f/s), p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, errors %d%n", clients, seconds,
                requests.get(), requests.get() / (double) seconds, samples.get(), samples.get() / (double) seconds, all[all.length / 2] / 1e6,
                all[(int) (all.length * 0.99)] / 1e6, all[(int) (all.length * 0.999)] / 1e6, errors.get());
    }
}
