package io.predcode.examples.service;

import org.junit.jupiter.api.Test;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Collections;

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
}
