package io.predcode.examples.service;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.predcode.core.io.Checkpoint;
import io.predcode.core.json.Json;
import io.predcode.core.nn.BuiltinModels;
import io.predcode.core.nn.Loss;
import io.predcode.core.nn.Model;
import io.predcode.core.optim.Adam;
import io.predcode.core.pc.Algorithm;
import io.predcode.core.pc.DivergenceException;
import io.predcode.core.pc.PcEngine;
import io.predcode.core.pc.Trainer;
import io.predcode.core.serve.Predictor;
import io.predcode.core.serve.Preprocessing;
import io.predcode.data.DataSplit;
import io.predcode.data.Dataset;
import io.predcode.data.Digits;
import io.predcode.spi.Backend;
import io.predcode.spi.Backends;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A digits classifier served over HTTP while it keeps learning: what a JVM team would write on
 * predcode. One {@link Predictor} answers every request thread; a trainer thread trains the same
 * model with predictive coding (FIXED_PRED, which stays stable over long runs) on a stream of
 * labelled samples, at most one step per {@code STEP_INTERVAL_MS} as a stream would deliver them,
 * and publishes a new version every {@code publishEvery} steps. A request always gets the answer of exactly one version, and says
 * which. Given a state folder, it keeps what it learned there (every {@code SAVE_EVERY_STEPS} steps and when it stops,
 * SIGTERM included) and a restart goes on from it.
 *
 * <pre>
 * POST /predict   {"inputs": [[64 raw pixel values 0..16], ...]}
 *              -> {"version": 12, "classes": [3, ...], "labels": ["3", ...], "probabilities": [[...10 floats], ...]}
 * GET  /health    -> {"version": 12, "steps": 3400, "predictions": 120345, "saved_steps": 3000}
 * </pre>
 * It listens on 127.0.0.1 only.
 */
public final class PredictionService implements AutoCloseable {
    private static final int MAX_BATCH = 256, BATCH = 32, MAX_BODY = 4 << 20;
    /** The stream's pace: a new batch of labelled samples at most this often. */
    private static final long STEP_INTERVAL_MS = 2;
    /** With a state folder: what the service learned is saved this often, and when it closes. */
    static final long SAVE_EVERY_STEPS = 500;

    private final Backend backend;
    private final Model model;
    private final PcEngine engine;
    private final Adam adam;
    private final Predictor predictor;
    private final HttpServer server;
    private final ExecutorService requests;
    private final Thread trainerThread;
    private final AtomicLong steps = new AtomicLong(), predictions = new AtomicLong(), savedSteps = new AtomicLong(-1);
    private volatile boolean stopping;
    /** Where what it learned is kept (null: nowhere); the stream's next sample, saved with it. */
    private final Path state;
    private int streamAt;

    /** Starts serving on 127.0.0.1:{@code port} (0: any free port) and starts learning online, keeping nothing. */
    public PredictionService(int port, int publishEvery) throws IOException { this(port, publishEvery, null); }

    /**
     * As above, keeping what it learns in {@code state} (null: nowhere): a service started on a folder that holds a
     * checkpoint goes on from it (the parameters, Adam's state, the step count and the place in the stream) instead of
     * learning from the start.
     */
    public PredictionService(int port, int publishEvery, Path state) throws IOException {
        this.state = state;
        DataSplit digits = Digits.split();
        try {
            backend = Backends.open("cpu");
            model = Model.create(BuiltinModels.get("digits-mlp"), backend, 1);
            engine = new PcEngine(model, Loss.CROSS_ENTROPY);
            adam = new Adam(model, 0.002f);
            // Clients send raw pixels 0..16, as the data set stores them; the predictor scales them as training did.
            predictor = Predictor.of(model, new Preprocessing(digits.pixelScale(), 0f), digits.classNames());
            // With the energies brought back, a relaxation that runs off stops its own step before the parameters change.
            Trainer trainer = new Trainer(engine, adam, Algorithm.FIXED_PRED, 0.1f, 20).recordEnergies(true);
            if (state != null && Files.exists(state.resolve(Checkpoint.RESUME_FILE))) {
                Checkpoint.Loaded saved = Checkpoint.load(state); // a file of another model, or damaged, is refused naming it
                model.loadParameters(saved.parameters(), saved.source().toString());
                adam.loadState(saved.optimizerState(), saved.source().toString());
                steps.set((long) saved.training().number("steps"));
                savedSteps.set(steps.get());
                streamAt = saved.training().integer("stream_at", 0) % (digits.train().size() - BATCH);
            } else {
                // Start from a model that has seen the training set twice, as one loaded from a checkpoint would have.
                for (int at = 0; at + BATCH <= 2 * digits.train().size(); at += BATCH) step(trainer, digits.train(), at % (digits.train().size() - BATCH));
            }
            predictor.publish(model);
            server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 128); // a port in use fails here
            requests = Executors.newVirtualThreadPerTaskExecutor();
            server.setExecutor(requests);
            server.createContext("/predict", this::predict);
            server.createContext("/health", this::health);
            server.start();
            trainerThread = Thread.ofPlatform().name("online-trainer").daemon().start(() -> learn(trainer, digits.train(), publishEvery));
        } catch (IOException | RuntimeException | Error e) {
            release(); // a refused checkpoint or a port in use: nothing opened stays open, the backend's native memory included
            throw e;
        }
    }

    public int port() { return server.getAddress().getPort(); }

    public long version() { return predictor.version(); }

    public long steps() { return steps.get(); }

    /** The trainer: PC on the stream (here, the digits training set over and over), a new version every few steps. */
    private void learn(Trainer trainer, Dataset stream, int publishEvery) {
        try {
            while (!stopping) {
                step(trainer, stream, streamAt);
                streamAt = (streamAt + BATCH) % (stream.size() - BATCH);
                long n = steps.incrementAndGet();
                if (n % publishEvery == 0) predictor.publish(model);
                if (n % SAVE_EVERY_STEPS == 0) save();
                Thread.sleep(STEP_INTERVAL_MS);
            }
        } catch (InterruptedException e) {
            // stopping
        } catch (DivergenceException | Predictor.NotFiniteException e) {
            // Neither a diverged step nor a model gone bad reaches the clients: the last good version keeps answering.
            System.err.println("online learning stopped: " + e.getMessage() + "; serving version " + predictor.version());
        }
    }

    /**
     * Saves what the service learned into its state folder (the trainer's thread, or close() once that has ended). A
     * save that fails (a full disk) is said on stderr, the folder keeping its last whole checkpoint (files are replaced
     * atomically), and the service goes on.
     */
    private void save() {
        if (state == null) return;
        Map<String, Object> training = new LinkedHashMap<>();
        training.put("steps", (double) steps.get());
        training.put("stream_at", (double) streamAt);
        try {
            // What the predictor applies and names: a Predictor loaded from the folder serves as this one does.
            Checkpoint.save(state, model, adam, training, predictor.preprocessing(), predictor.classNames());
            savedSteps.set(steps.get());
        } catch (IOException | RuntimeException e) { // Checkpoint.NotFiniteException too: a model gone bad is never saved
            System.err.println("not saved: " + e.getMessage() + "; " + state + " keeps the state of step " + savedSteps.get());
        }
    }

    private static void step(Trainer trainer, Dataset data, int at) {
        int per = data.sampleSize();
        trainer.step(Arrays.copyOfRange(data.images(), at * per, (at + BATCH) * per), Arrays.copyOfRange(data.labels(), at, at + BATCH), BATCH);
    }

    private void predict(HttpExchange ex) throws IOException {
        try (ex) {
            if (!"POST".equals(ex.getRequestMethod())) { send(ex, 405, Map.of("error", "POST a JSON body {\"inputs\": [[...], ...]}")); return; }
            float[] x;
            int rows;
            try (InputStream in = ex.getRequestBody()) {
                byte[] bytes = in.readNBytes(MAX_BODY + 1);
                if (bytes.length > MAX_BODY) {
                    // Read on (to a bound) before answering: a client still sending when the connection closes sees a reset, not the 413.
                    in.transferTo(new java.io.OutputStream() {
                        long left = 16L * MAX_BODY;
                        @Override public void write(int b) throws IOException { if (--left < 0) throw new IOException("request body too large"); }
                        @Override public void write(byte[] b, int off, int len) throws IOException { if ((left -= len) < 0) throw new IOException("request body too large"); }
                    });
                    send(ex, 413, Map.of("error", "request body over " + (MAX_BODY >> 20) + " MiB"));
                    return;
                }
                Object body = Json.parse(new String(bytes, StandardCharsets.UTF_8), "request body");
                if (!(body instanceof Map<?, ?> m) || !(m.get("inputs") instanceof List<?> inputs) || inputs.isEmpty() || inputs.size() > MAX_BATCH)
                    throw new IllegalArgumentException("expected {\"inputs\": [[" + predictor.inputSize() + " numbers], ...]} with 1 to " + MAX_BATCH + " rows");
                rows = inputs.size();
                x = new float[rows * predictor.inputSize()];
                for (int r = 0; r < rows; r++) {
                    if (!(inputs.get(r) instanceof List<?> row) || row.size() != predictor.inputSize())
                        throw new IllegalArgumentException("inputs[" + r + "]: expected " + predictor.inputSize() + " numbers");
                    for (int i = 0; i < row.size(); i++) {
                        // A value past float's range (1e39) would be an infinity, and every probability of its row NaN.
                        if (!(row.get(i) instanceof Double d) || !Float.isFinite(d.floatValue()))
                            throw new IllegalArgumentException("inputs[" + r + "][" + i + "]: expected a finite number within float's range");
                        x[r * predictor.inputSize() + i] = d.floatValue();
                    }
                }
            } catch (RuntimeException e) {
                send(ex, 400, Map.of("error", String.valueOf(e.getMessage())));
                return;
            }
            int k = predictor.outputSize();
            float[] probs = new float[rows * k];
            long version = predictor.probabilities(x, rows, probs);
            predictions.addAndGet(rows);
            List<Object> classes = new ArrayList<>(), labels = new ArrayList<>(), p = new ArrayList<>();
            for (int r = 0; r < rows; r++) {
                int best = 0;
                List<Object> row = new ArrayList<>();
                for (int c = 0; c < k; c++) {
                    row.add((double) probs[r * k + c]);
                    if (probs[r * k + c] > probs[r * k + best]) best = c;
                }
                classes.add((double) best);
                labels.add(predictor.classNames().get(best));
                p.add(row);
            }
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("version", (double) version);
            out.put("classes", classes);
            out.put("labels", labels);
            out.put("probabilities", p);
            send(ex, 200, out);
        }
    }

    private void health(HttpExchange ex) throws IOException {
        try (ex) {
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("version", (double) predictor.version());
            out.put("steps", (double) steps.get());
            out.put("predictions", (double) predictions.get());
            if (state != null) out.put("saved_steps", (double) savedSteps.get());
            send(ex, 200, out);
        }
    }

    private static void send(HttpExchange ex, int status, Map<String, Object> body) throws IOException {
        byte[] bytes = Json.write(body, 0).getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", "application/json");
        ex.sendResponseHeaders(status, bytes.length);
        try (OutputStream os = ex.getResponseBody()) { os.write(bytes); }
    }

    /** Stops learning, saves what it learned (with a state folder), then stops serving and frees everything. */
    @Override public void close() {
        stopping = true;
        try {
            trainerThread.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (!trainerThread.isAlive()) save();
        release();
    }

    /** Closes what the constructor opened, as far as it got. */
    private void release() {
        if (server != null) server.stop(0);
        if (requests != null) requests.close();
        for (AutoCloseable c : new AutoCloseable[]{predictor, adam, engine, model, backend}) {
            try {
                if (c != null) c.close();
            } catch (Exception e) {
                throw new IllegalStateException(e); // none of these throws a checked exception; a failure is a bug worth seeing
            }
        }
    }

    public static void main(String[] args) throws Exception {
        int port = args.length > 0 ? Integer.parseInt(args[0]) : 8080;
        Path state = args.length > 1 ? Path.of(args[1]) : null;
        PredictionService s = new PredictionService(port, 10, state);
        Runtime.getRuntime().addShutdownHook(new Thread(s::close)); // Ctrl-C and SIGTERM: saved before the process ends
        System.out.println("predcode example service on http://127.0.0.1:" + s.port() + "/predict (POST {\"inputs\": [[64 pixels 0..16]]}); "
                + (state == null ? "" : "learning kept in " + state + (s.steps() > 0 ? ", from step " + s.steps() : "") + "; ") + "Ctrl-C stops");
        Thread.currentThread().join();
    }
}
