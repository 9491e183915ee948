package io.predcode.examples.service;

import io.predcode.core.io.Checkpoint;
import io.predcode.core.json.Json;
import io.predcode.core.json.JsonFields;
import io.predcode.core.serve.Predictor;
import io.predcode.spi.Backend;
import io.predcode.spi.Backends;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Collections;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** The example service under a short, bounded load on 127.0.0.1: no errors, versions advance, the answers are right. */
class PredictionServiceTest {
    @Test void servesWhileItLearns() throws Exception {
        LoadTest.Result r = LoadTest.run(3, 4, 20_000);
        System.out.println("example service, short load: " + r);
        assertEquals(0, r.errors(), "errors");
        assertTrue(r.requests() > 50, "requests: " + r.requests());
        assertTrue(r.versionsSeen() > 1, "the answers came from " + r.versionsSeen() + " version(s): training did not publish while serving");
        assertTrue(r.testAccuracy() > 0.8, "accuracy of the answers " + r.testAccuracy());
    }

    /** A bad request gets its status and a line saying what was expected; the service goes on answering good ones. */
    @Test void badRequestsAreRefusedWithTheirReason() throws Exception {
        try (PredictionService service = new PredictionService(0, 10);
             HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build()) {
            URI predict = URI.create("http://127.0.0.1:" + service.port() + "/predict");
            String good = "{\"inputs\": [[" + String.join(", ", Collections.nCopies(64, "3")) + "]]}";
            String[][] cases = {
                    {"not json", "400", "request body"},
                    {"{\"inputs\": []}", "400", "with 1 to 256 rows"},
                    {"{\"inputs\": [[1, 2, 3]]}", "400", "inputs[0]: expected 64 numbers"},
                    {good.replaceFirst("3", "1e39"), "400", "inputs[0][0]: expected a finite number"},
                    {good.replaceFirst("3", "\"3\""), "400", "inputs[0][0]: expected a finite number"},
                    {"[" + " ".repeat(5 << 20) + "]", "413", "over 4 MiB"},
                    {good, "200", "\"classes\""},
            };
            for (String[] c : cases) {
                HttpResponse<String> r = http.send(HttpRequest.newBuilder(predict).POST(HttpRequest.BodyPublishers.ofString(c[0])).build(), HttpResponse.BodyHandlers.ofString());
                String shown = c[0].length() > 60 ? c[0].substring(0, 60) + "..." : c[0];
                assertEquals(Integer.parseInt(c[1]), r.statusCode(), shown + " -> " + r.body());
                assertTrue(r.body().contains(c[2]), shown + " -> " + r.body());
            }
            HttpResponse<String> get = http.send(HttpRequest.newBuilder(predict).GET().build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(405, get.statusCode());
        }
    }

    /**
     * With a state folder, what the service learned outlives it: closing saves it, and a service started on the folder
     * answers with the saved model, byte for byte, and counts its steps on from the saved count.
     */
    @Test void whatItLearnedOutlivesARestart(@TempDir Path state) throws Exception {
        int never = Integer.MAX_VALUE; // publishes no version while learning: the answers are the starting model's
        try (PredictionService service = new PredictionService(0, never, state)) {
            long deadline = System.nanoTime() + 60_000_000_000L;
            while (service.steps() < 40 && System.nanoTime() < deadline) Thread.sleep(10);
            assertTrue(service.steps() >= 40, "steps learned: " + service.steps());
        }
        long saved = (long) Checkpoint.load(state).training().number("steps");
        assertTrue(saved >= 40, "saved at step " + saved);
        String pixels = String.join(", ", Collections.nCopies(32, "0")) + ", " + String.join(", ", Collections.nCopies(32, "9"));
        float[] x = new float[64];
        for (int i = 32; i < 64; i++) x[i] = 9;
        float[] expected;
        try (Backend be = Backends.open("cpu"); Predictor p = Predictor.load(state, be)) {
            expected = p.probabilities(x, 1);
        }
        try (PredictionService service = new PredictionService(0, never, state);
             HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build()) {
            assertTrue(service.steps() >= saved, "counts on from step " + saved + ": " + service.steps());
            URI base = URI.create("http://127.0.0.1:" + service.port());
            HttpResponse<String> r = http.send(HttpRequest.newBuilder(base.resolve("/predict")).POST(HttpRequest.BodyPublishers.ofString("{\"inputs\": [[" + pixels + "]]}")).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(200, r.statusCode(), r.body());
            List<Object> row = (List<Object>) JsonFields.of(Json.parse(r.body(), "answer"), "answer", "").list("probabilities").getFirst();
            for (int c = 0; c < expected.length; c++) assertEquals(expected[c], ((Double) row.get(c)).floatValue(), "class " + c + " of " + r.body());
            String health = http.send(HttpRequest.newBuilder(base.resolve("/health")).GET().build(), HttpResponse.BodyHandlers.ofString()).body();
            assertTrue(health.contains("\"saved_steps\":" + saved), health);
        }
        assertTrue(Files.exists(state.resolve(Checkpoint.MODEL_FILE)));
        assertTrue((long) Checkpoint.load(state).training().number("steps") > saved, "the second run saved on close too");
    }

    /** A start refused (a damaged state file, a port in use) fails in its constructor and leaves nothing open: the backend's threads end with it. */
    @Test void aRefusedStartLeavesNothingOpen(@TempDir Path state) throws Exception {
        long before = kernelThreads(n -> n == 0);
        try (PredictionService service = new PredictionService(0, 10)) {
            assertTrue(kernelThreads(n -> n > before) > before, "a running service's backend has kernel threads to leak");
        }
        assertEquals(before, kernelThreads(n -> n == before));
        Files.writeString(state.resolve(Checkpoint.RESUME_FILE), "not a checkpoint");
        Exception e = assertThrows(Exception.class, () -> new PredictionService(0, 10, state));
        assertTrue(e.getMessage().contains(Checkpoint.RESUME_FILE), e.getMessage());
        try (java.net.ServerSocket taken = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            assertThrows(java.net.BindException.class, () -> new PredictionService(taken.getLocalPort(), 10));
        }
        assertEquals(before, kernelThreads(n -> n == before), "the refused starts' backends were closed");
    }

    /** The CPU backend's live kernel threads, once their count is {@code as} expected or 5 s have passed (a closed backend's end in their own time). */
    private static long kernelThreads(java.util.function.LongPredicate as) throws InterruptedException {
        long deadline = System.nanoTime() + 5_000_000_000L, n;
        while (!as.test(n = Thread.getAllStackTraces().keySet().stream().filter(t -> t.isAlive() && t.getName().startsWith("predcode-cpu-kernel-")).count())
                && System.nanoTime() < deadline) Thread.sleep(20);
        return n;
    }
}
