package io.predcode.cli;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.predcode.core.json.Json;
import io.predcode.core.serve.Predictor;

import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;

/**
 * {@code predcode serve}'s HTTP side, on the JDK's own server: {@code POST /predict} answers from a {@link Predictor}
 * (any number of requests at once, each wholly on one version of the parameters), {@code GET /health} and
 * {@code GET /info} describe it. A request it cannot answer gets its status and {@code {"error": "one line"}}.
 * Kept apart from {@link ServeCommand} so that only serving loads the JDK's jdk.httpserver classes.
 */
final class HttpPredictions implements AutoCloseable {
    /** What /info tells of the model beside the predictor's own sizes, names and preprocessing. */
    record Described(String checkpoint, int[] inputShape, boolean probabilities, Map<String, Object> trained) {
        /** The input's shape; a file that records none: its size. */
        int[] shape(Predictor p) { return inputShape != null ? inputShape : new int[]{p.inputSize()}; }
    }

    private final HttpServer server;
    private final ExecutorService workers;
    private final Predictor predictor;
    private final Described model;
    private final int maxRows;
    /** The longest feature name's length: a row by name spends it (and a quoted key's 4 characters) on each value. */
    private final int longestFeatureName;
    private final AtomicLong requests = new AtomicLong(), samples = new AtomicLong();

    private HttpPredictions(HttpServer server, ExecutorService workers, Predictor predictor, Described model, int maxRows) {
        this.server = server;
        this.workers = workers;
        this.predictor = predictor;
        this.model = model;
        this.maxRows = maxRows;
        this.longestFeatureName = predictor.featureNames().stream().mapToInt(String::length).max().orElse(0) + 4;
    }

    /** Serves {@code predictor} on host:port (0: a free port) with {@code threads} request threads, at most {@code maxRows} samples a request. */
    static HttpPredictions start(String host, int port, int threads, int maxRows, Predictor predictor, Described model) throws IOException {
        InetSocketAddress address = new InetSocketAddress(host, port);
        if (address.isUnresolved()) throw new IllegalArgumentException("--host " + host + ": no such host; give an address of this machine (127.0.0.1, or 0.0.0.0 for all)");
        HttpServer server;
        try {
            server = HttpServer.create(address, 64);
        } catch (java.net.BindException e) {
            throw new IllegalArgumentException("--host " + host + " --port " + port + ": cannot listen there (" + e.getMessage() + "); give another --host or --port (0: a free port)", e);
        }
        ExecutorService workers = Executors.newFixedThreadPool(threads, r -> {
            Thread t = new Thread(r, "predcode-serve");
            t.setDaemon(true);
            return t;
        });
        HttpPredictions h = new HttpPredictions(server, workers, predictor, model, maxRows);
        server.setExecutor(workers);
        server.createContext("/predict", ex -> h.answer(ex, "POST", h::predict));
        server.createContext("/health", ex -> h.answer(ex, "GET", h::health));
        server.createContext("/info", ex -> h.answer(ex, "GET", h::info));
        server.createContext("/", ex -> h.answer(ex, null, e -> { throw new Refused(404, "no such path: " + e.getRequestURI().getPath() + " (POST /predict, GET /info, GET /health)"); }));
        server.start();
        return h;
    }

    /** The port it listens on (the one chosen, for port 0). */
    int port() { return server.getAddress().getPort(); }

    /** A request refused with an HTTP status and a line saying why. */
    private static final class Refused extends RuntimeException {
        final int status;

        Refused(int status, String why) {
            super(why, null, false, false);
            this.status = status;
        }
    }

    private interface Handler { Object handle(HttpExchange ex) throws IOException; }

    private void answer(HttpExchange ex, String method, Handler handler) throws IOException {
        try (ex) {
            int status = 200;
            Object body;
            try {
                if (method != null && !method.equals(ex.getRequestMethod())) {
                    ex.getResponseHeaders().set("Allow", method);
                    throw new Refused(405, ex.getRequestURI().getPath() + " takes " + method + ", not " + ex.getRequestMethod());
                }
                body = handler.handle(ex);
            } catch (Refused r) {
                status = r.status;
                body = Map.of("error", r.getMessage());
            } catch (IllegalArgumentException e) { // a body Json refuses, or the predictor refuses (its sizes)
                status = 400;
                body = Map.of("error", Main.message(e));
            } catch (IllegalStateException e) { // closing: the service is stopping
                status = 503;
                body = Map.of("error", "the service is stopping");
            } catch (RuntimeException e) { // a fault of the service's own: said, not a dropped connection
                status = 500;
                body = Map.of("error", "the service failed: " + e);
            }
            byte[] bytes = (Json.write(body, 0) + "\n").getBytes(StandardCharsets.UTF_8);
            ex.getResponseHeaders().set("Content-Type", "application/json");
            ex.sendResponseHeaders(status, bytes.length);
            ex.getResponseBody().write(bytes);
        }
    }

    /**
     * {"inputs": [[raw values], ...]}, or for a model trained on a table {"rows": [{"feature": value, ...}, ...]} (each
     * of its features by name, no other key), to each sample's class, its name and every class's probability (or
     * output), and the version that answered.
     */
    private Object predict(HttpExchange ex) throws IOException {
        int per = predictor.inputSize(), k = predictor.outputSize();
        String text = new String(read(ex.getRequestBody(), 64L + (long) maxRows * per * (32 + longestFeatureName)), StandardCharsets.UTF_8);
        List<String> features = predictor.featureNames();
        String expected = "expected {\"inputs\": [[" + per + " numbers], ...]}" + (features.isEmpty() ? "" : " or {\"rows\": [{\"" + features.getFirst() + "\": number, ...}, ...]}")
                + " with 1 to " + maxRows + " rows (--max-rows)";
        if (!(Json.parse(text, "the request body") instanceof Map<?, ?> m) || m.containsKey("inputs") && m.containsKey("rows")) throw new Refused(400, expected);
        boolean named = !features.isEmpty() && m.containsKey("rows"); // rows by name only where the model names its features
        if (!(m.get(named ? "rows" : "inputs") instanceof List<?> inputs) || inputs.isEmpty() || inputs.size() > maxRows) throw new Refused(400, expected);
        int rows = inputs.size();
        float[] x = new float[rows * per];
        for (int r = 0; r < rows; r++) {
            List<?> row = named ? byName(inputs.get(r), r, features) : inputs.get(r) instanceof List<?> l && l.size() == per ? l : null;
            if (row == null)
                throw new Refused(400, "inputs[" + r + "]: expected " + per + " numbers, the model's input " + java.util.Arrays.toString(model.shape(predictor)) + " in C order (raw values, as its data set stores them)"
                        + (features.isEmpty() ? "" : ": " + String.join(", ", features)));
            for (int i = 0; i < per; i++) {
                // A named row's NaN is a missing value its model fills (Predictor.row refused it otherwise).
                if (!(row.get(i) instanceof Number v) || !Float.isFinite(v.floatValue()) && !(named && Float.isNaN(v.floatValue())))
                    throw new Refused(400, (named ? "rows[" + r + "]." + features.get(i) : "inputs[" + r + "][" + i + "]") + ": expected a finite number, got " + Json.write(row.get(i), 0));
                x[r * per + i] = v.floatValue();
            }
        }
        int[] classes = new int[rows];
        float[] out = new float[rows * k];
        long version = predictor.classes(x, rows, classes, out);
        if (model.probabilities()) Predictor.softmaxRows(out, rows, k);
        List<Object> values = new ArrayList<>(rows), labels = new ArrayList<>(rows);
        for (int r = 0; r < rows; r++) {
            double[] v = new double[k];
            for (int c = 0; c < k; c++) v[c] = Double.parseDouble(Float.toString(out[r * k + c])); // the float's shortest digits
            values.add(v);
            if (!predictor.classNames().isEmpty()) labels.add(predictor.classNames().get(classes[r]));
        }
        requests.incrementAndGet();
        samples.addAndGet(rows);
        Map<String, Object> answer = new LinkedHashMap<>();
        answer.put("version", (double) version);
        answer.put("classes", classes);
        if (!labels.isEmpty()) answer.put("labels", labels);
        answer.put(model.probabilities() ? "probabilities" : "outputs", values);
        return answer;
    }

    /**
     * A row given by name, {"column": value, ...}, as the model's features' values in its order ({@link Predictor#row}):
     * a number, text for a column the model took as categories, or null for a missing value.
     */
    private List<Object> byName(Object row, int r, List<String> features) {
        if (!(row instanceof Map<?, ?> m)) throw new Refused(400, "rows[" + r + "]: expected an object of the model's features by name: " + String.join(", ", features));
        Map<String, Object> values = new LinkedHashMap<>();
        for (Map.Entry<?, ?> e : m.entrySet()) {
            if (e.getValue() instanceof Number v && !Float.isFinite(v.floatValue()) || e.getValue() != null && !(e.getValue() instanceof Number) && !(e.getValue() instanceof String))
                throw new Refused(400, "rows[" + r + "]." + e.getKey() + ": expected a finite number, text for a column of categories, or null, got " + Json.write(e.getValue(), 0));
            values.put(String.valueOf(e.getKey()), e.getValue());
        }
        try {
            List<Object> ordered = new ArrayList<>(features.size());
            for (float v : predictor.row(values)) ordered.add(v);
            return ordered;
        } catch (IllegalArgumentException e) {
            throw new Refused(400, "rows[" + r + "]: " + e.getMessage());
        }
    }

    private Object health(HttpExchange ex) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("status", "ok");
        m.put("version", (double) predictor.version());
        m.put("requests", (double) requests.get());
        m.put("samples", (double) samples.get());
        return m;
    }

    private Object info(HttpExchange ex) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("checkpoint", model.checkpoint());
        m.put("version", (double) predictor.version());
        m.put("input_shape", model.shape(predictor));
        m.put("input_size", (double) predictor.inputSize());
        m.put("outputs", (double) predictor.outputSize());
        m.put("answers", model.probabilities() ? "probabilities" : "outputs");
        m.put("class_names", predictor.classNames());
        if (!predictor.featureNames().isEmpty()) m.put("feature_names", predictor.featureNames()); // a table's columns: the order an input row's values take
        m.put("preprocessing", Map.of("scale", (double) predictor.preprocessing().scale(), "shift", (double) predictor.preprocessing().shift()));
        m.put("max_rows", (double) maxRows);
        if (model.trained() != null) m.put("trained", model.trained());
        return m;
    }

    /** The body, refused past {@code limit} bytes (413) before it is all held. */
    private static byte[] read(InputStream in, long limit) throws IOException {
        byte[] bytes = in.readNBytes((int) Math.min(Integer.MAX_VALUE - 8, limit + 1));
        if (bytes.length > limit) throw new Refused(413, "the request body is larger than " + limit + " bytes, more than --max-rows samples take");
        return bytes;
    }

    /** Stops listening, letting requests in progress finish for up to a second, then the request threads. */
    @Override public void close() {
        server.stop(1);
        workers.shutdown();
    }
}
