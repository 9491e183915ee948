package io.predcode.cli;

import io.predcode.core.json.Json;
import io.predcode.core.json.JsonFields;
import io.predcode.core.serve.Predictor;
import io.predcode.data.DataSources;
import io.predcode.data.Dataset;
import io.predcode.spi.Backend;
import io.predcode.spi.Backends;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.HttpURLConnection;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * {@code predcode serve} as its users run it, a process of its own: answers equal to a {@link Predictor}'s on the same
 * checkpoint, float for float, from many clients at once; a run training on into the folder is taken up as a new
 * version; each bad request gets its status and one line; SIGTERM stops it with exit 143.
 */
class ServeCommandTest {
    private record Reply(int status, JsonFields body) {}

    /** An HTTP request to the service; the reply's status and JSON body. */
    private static Reply call(int port, String method, String path, String body) throws IOException {
        HttpURLConnection c = (HttpURLConnection) URI.create("http://127.0.0.1:" + port + path).toURL().openConnection();
        c.setRequestMethod(method);
        c.setConnectTimeout(10_000);
        c.setReadTimeout(30_000); // a service that stopped answering fails the test, not hangs it
        if (body != null) {
            c.setDoOutput(true);
            try (var out = c.getOutputStream()) { out.write(body.getBytes(StandardCharsets.UTF_8)); }
        }
        int status = c.getResponseCode();
        try (var in = status < 400 ? c.getInputStream() : c.getErrorStream()) {
            String text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
            return new Reply(status, JsonFields.of(Json.parse(text, path), path, ""));
        }
    }

    /** {"inputs": [...]} for samples [from, from + rows) of the digits' test set, as raw values (0..16, as the data set stores them). */
    private static String inputs(Dataset test, int from, int rows) {
        List<Object> list = new ArrayList<>();
        for (int r = 0; r < rows; r++) {
            double[] row = new double[test.sampleSize()];
            for (int i = 0; i < row.length; i++) row[i] = Math.round(test.images()[(from + r) * row.length + i] * 16);
            list.add(row);
        }
        return Json.write(java.util.Map.of("inputs", list), 0);
    }

    private static float[] raw(Dataset test, int from, int rows) {
        float[] x = new float[rows * test.sampleSize()];
        for (int i = 0; i < x.length; i++) x[i] = Math.round(test.images()[from * test.sampleSize() + i] * 16);
        return x;
    }

    /** The predictor's probabilities for the same samples, as the service answers them. */
    private static void assertAnswers(Path checkpoint, Dataset test, int from, int rows, JsonFields answer) throws IOException {
        try (Backend be = Backends.open("cpu"); Predictor p = Predictor.load(checkpoint, be)) {
            float[] expected = p.probabilities(raw(test, from, rows), rows);
            List<Object> got = answer.list("probabilities"), classes = answer.list("classes");
            assertEquals(rows, got.size());
            for (int r = 0; r < rows; r++) {
                List<?> row = (List<?>) got.get(r);
                int best = 0;
                for (int k = 0; k < row.size(); k++) {
                    assertEquals(expected[r * row.size() + k], ((Number) row.get(k)).floatValue(), "sample " + (from + r) + ", class " + k + ": the predictor's float");
                    if (expected[r * row.size() + k] > expected[r * row.size() + best]) best = k;
                }
                assertEquals(best, ((Number) classes.get(r)).intValue());
                assertEquals(Integer.toString(best), answer.list("labels").get(r), "digits' classes are named by their digit");
            }
        }
    }

    /** `predcode serve` of {@code run} on a free port, with {@code options}, as a process of its own; its output and errors in one stream. */
    private static Process serve(Path run, String... options) throws IOException {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "--enable-native-access=ALL-UNNAMED",
                "-cp", CliTest.classPath(), "io.predcode.cli.Main", "serve", "--checkpoint", run.toString(), "--port", "0"));
        cmd.addAll(List.of(options));
        return new ProcessBuilder(cmd).redirectErrorStream(true).start();
    }

    /** SIGTERM, as a scheduler sends it (Process.destroy would close the output still to be read), and the service gone within 30 s. */
    private static void stop(Process p) throws Exception {
        assertEquals(0, new ProcessBuilder("kill", "-TERM", Long.toString(p.pid())).start().waitFor());
        assertTrue(p.waitFor(30, TimeUnit.SECONDS), "the service did not stop within 30 s of SIGTERM");
    }

    @Test void servesAsItsPredictorAnswersTakesNewSavesAndStopsOnSigterm(@TempDir Path tmp) throws Exception {
        Path run = tmp.resolve("run");
        assertEquals(0, CliTest.run("train", "--epochs", "1", "--out", run.toString(), "--quiet").code());
        Dataset test = DataSources.load("digits").test();
        Process p = serve(run, "--watch", "200ms", "--max-rows", "8");
        BlockingQueue<String> lines = new LinkedBlockingQueue<>();
        List<String> all = java.util.Collections.synchronizedList(new ArrayList<>());
        Thread reader = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                for (String l; (l = r.readLine()) != null; ) {
                    lines.add(l);
                    all.add(l);
                }
            } catch (IOException ignored) { // the process ended
            }
        });
        reader.start();
        try {
            String first = lines.poll(60, TimeUnit.SECONDS);
            assertNotNull(first, "the service did not start in 60 s");
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("on http://127\\.0\\.0\\.1:(\\d+): POST /predict").matcher(first);
            assertTrue(first.startsWith("serving " + run + " (cpu, inputs [1, 8, 8], 10 classes)") && m.find(), first);
            int port = Integer.parseInt(m.group(1));

            Reply health = call(port, "GET", "/health", null);
            assertEquals(200, health.status());
            assertEquals(1, health.body().number("version"));
            JsonFields info = call(port, "GET", "/info", null).body();
            assertEquals(64, info.number("input_size"));
            assertEquals("probabilities", info.string("answers"));
            assertEquals("digits", info.object("trained").string("data"), "what the model was trained on");

            Reply answer = call(port, "POST", "/predict", inputs(test, 0, 5));
            assertEquals(200, answer.status(), String.valueOf(answer.body()));
            assertEquals(1, answer.body().number("version"));
            assertAnswers(run, test, 0, 5, answer.body());

            // Many clients at once, each answer checked against the predictor's: no answer is another request's.
            List<Thread> clients = new ArrayList<>();
            List<Throwable> failures = java.util.Collections.synchronizedList(new ArrayList<>());
            for (int t = 0; t < 6; t++) {
                int seed = t;
                clients.add(Thread.ofPlatform().start(() -> {
                    java.util.Random random = new java.util.Random(seed);
                    try {
                        for (int i = 0; i < 15; i++) {
                            int from = random.nextInt(test.size() - 8), rows = 1 + random.nextInt(8);
                            Reply r = call(port, "POST", "/predict", inputs(test, from, rows));
                            assertEquals(200, r.status());
                            assertAnswers(run, test, from, rows, r.body());
                        }
                    } catch (Throwable e) {
                        failures.add(e);
                    }
                }));
            }
            for (Thread c : clients) c.join();
            assertEquals(List.of(), failures);
            assertEquals(1 + 6 * 15, call(port, "GET", "/health", null).body().number("requests"));

            // Each bad request: its status and one line.
            String[][] bad = {{"POST", "/predict", "{\"inputs\": [[1, 2]]}", "400", "inputs[0]: expected 64 numbers, the model's input [1, 8, 8] in C order"},
                    {"POST", "/predict", "not json", "400", "the request body: invalid JSON"}, {"POST", "/predict", "{\"inputs\": []}", "400", "with 1 to 8 rows (--max-rows)"},
                    {"POST", "/predict", inputs(test, 0, 9), "400", "with 1 to 8 rows"}, {"POST", "/predict", "{\"inputs\": [[" + "\"a\", ".repeat(63) + "1]]}", "400", "inputs[0][0]: expected a finite number, got \"a\""},
                    {"POST", "/predict", " ".repeat(20_000), "413", "the request body is larger than"}, {"GET", "/predict", null, "405", "/predict takes POST, not GET"},
                    {"POST", "/health", "{}", "405", "/health takes GET"}, {"GET", "/nothing", null, "404", "no such path: /nothing"}};
            for (String[] b : bad) {
                Reply r = call(port, b[0], b[1], b[2]);
                assertEquals(Integer.parseInt(b[3]), r.status(), b[1] + " " + b[4]);
                assertTrue(r.body().string("error").contains(b[4]) && !r.body().string("error").contains("\n"), r.body().string("error"));
            }

            // A second service on the same port: one line.
            CliTest.Result taken = CliTest.run("serve", "--checkpoint", run.toString(), "--port", Integer.toString(port));
            assertEquals(2, taken.code());
            assertTrue(taken.err().startsWith("predcode: --host 127.0.0.1 --port " + port + ": cannot listen there ("), taken.err());

            // The run trains on into its folder: the service takes its saves as new versions and answers from them.
            assertEquals(0, CliTest.run("train", "--epochs", "2", "--out", run.toString(), "--quiet", "--resume").code());
            String line;
            do {
                line = lines.poll(30, TimeUnit.SECONDS);
                assertNotNull(line, "no new version within 30 s");
            } while (!line.startsWith("serving version "));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (call(port, "GET", "/health", null).body().number("version") < 2 && System.nanoTime() < deadline) Thread.sleep(50);
            answer = call(port, "POST", "/predict", inputs(test, 10, 4));
            assertTrue(answer.body().number("version") >= 2, String.valueOf(answer.body()));
            assertAnswers(run, test, 10, 4, answer.body());
        } finally {
            stop(p);
            reader.join(5_000);
        }
        assertEquals(143, p.exitValue());
        assertTrue(all.contains("stopped: SIGTERM"), String.valueOf(all));
    }

    /** A client that stalls mid-request is cut off after --request-timeout: it cannot hold the service's one request thread. */
    @Test void aStalledClientIsCutOff(@TempDir Path tmp) throws Exception {
        Path run = tmp.resolve("run");
        assertEquals(0, CliTest.run("train", "--epochs", "1", "--max-steps", "2", "--out", run.toString(), "--quiet").code());
        Process p = serve(run, "--http-threads", "1", "--request-timeout", "2", "--watch", "off");
        try (BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            String first = out.readLine();
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("127\\.0\\.0\\.1:(\\d+)").matcher(String.valueOf(first));
            assertTrue(m.find(), first);
            int port = Integer.parseInt(m.group(1));
            try (java.net.Socket stalled = new java.net.Socket("127.0.0.1", port)) {
                stalled.getOutputStream().write("POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"inputs\"".getBytes(StandardCharsets.US_ASCII));
                stalled.getOutputStream().flush();
                Thread.sleep(300); // the request thread is now reading the stalled body
                assertEquals(200, call(port, "GET", "/health", null).status(), "answered once the stalled request was cut off");
                stalled.setSoTimeout(20_000);
                assertEquals(-1, stalled.getInputStream().read(), "the stalled client's connection is closed");
            }
        } finally {
            stop(p);
        }
    }

    /** A model trained on a table takes rows by its features' names, as /info lists them: the same answers as by position. */
    @Test void aTableModelTakesRowsByName(@TempDir Path tmp) throws Exception {
        StringBuilder csv = new StringBuilder("height,weight,label\n");
        java.util.Random r = new java.util.Random(3);
        for (int i = 0; i < 60; i++) csv.append(150 + r.nextInt(50)).append(',').append(50 + r.nextInt(50)).append(',').append(i % 2 == 0 ? "a" : "b").append('\n');
        Path table = tmp.resolve("t.csv"), run = tmp.resolve("run");
        java.nio.file.Files.writeString(table, csv);
        assertEquals(0, CliTest.run("train", "--data", "csv:" + table, "--model", "mlp:8", "--epochs", "1", "--out", run.toString(), "--quiet").code());
        Process p = serve(run, "--watch", "off");
        try (BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("127\\.0\\.0\\.1:(\\d+)").matcher(String.valueOf(out.readLine()));
            assertTrue(m.find());
            int port = Integer.parseInt(m.group(1));
            assertEquals(List.of("height", "weight"), call(port, "GET", "/info", null).body().list("feature_names"));
            Reply byPosition = call(port, "POST", "/predict", "{\"inputs\": [[170, 60], [155, 95]]}");
            Reply byName = call(port, "POST", "/predict", "{\"rows\": [{\"weight\": 60, \"height\": 170}, {\"height\": 155, \"weight\": 95}]}");
            assertEquals(200, byName.status(), String.valueOf(byName.body()));
            assertEquals(byPosition.body().list("probabilities"), byName.body().list("probabilities"));
            // A missing value (null) is the training mean: the model standardizes its inputs.
            Reply missing = call(port, "POST", "/predict", "{\"rows\": [{\"weight\": 60, \"height\": null}]}");
            assertEquals(200, missing.status(), String.valueOf(missing.body()));
            String[][] bad = {{"{\"rows\": [{\"height\": 170}]}", "rows[0]: no 'weight', a feature of the model (it takes height, weight)"},
                    {"{\"rows\": [{\"height\": 170, \"weight\": 60, \"id\": 1}]}", "rows[0]: [id] is not a feature of the model"},
                    {"{\"rows\": [{\"height\": \"tall\", \"weight\": 60}]}", "rows[0]: 'height': expected a number, got tall"},
                    {"{\"rows\": [{\"height\": [1], \"weight\": 60}]}", "rows[0].height: expected a finite number, text for a column of categories, or null, got [1]"},
                    {"{\"rows\": [[170, 60]]}", "rows[0]: expected an object of the model's features by name: height, weight"},
                    {"{\"inputs\": [[170, 60]], \"rows\": [{\"height\": 170, \"weight\": 60}]}", "or {\"rows\": [{\"height\": number, ...}, ...]}"}};
            for (String[] b : bad) {
                Reply reply = call(port, "POST", "/predict", b[0]);
                assertEquals(400, reply.status(), b[0]);
                assertTrue(reply.body().string("error").contains(b[1]), reply.body().string("error"));
            }
        } finally {
            stop(p);
        }
    }

    @Test void badOptionsAreOneLine(@TempDir Path tmp) {
        Path run = tmp.resolve("run");
        assertEquals(0, CliTest.run("train", "--epochs", "1", "--max-steps", "2", "--out", run.toString(), "--quiet").code());
        String[][] cases = {{"--port", "70000", "--port must be in 0..65535"}, {"--watch", "0", "--watch must be a time above 0"}, {"--watch", "5h", "--watch must be"},
                {"--http-threads", "0", "--http-threads must be in 1..1024"}, {"--request-timeout", "0", "--request-timeout must be in 1..3600 seconds"}, {"--max-rows", "0", "--max-rows must be in 1..1000000"}};
        for (String[] c : cases) {
            CliTest.Result r = CliTest.run("serve", "--checkpoint", run.toString(), c[0], c[1]);
            assertEquals(2, r.code(), c[0]);
            assertTrue(r.err().startsWith("predcode: " + c[2]) && r.err().strip().lines().count() == 1, r.err());
        }
    }
}
