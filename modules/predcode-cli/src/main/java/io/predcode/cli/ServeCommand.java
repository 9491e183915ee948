package io.predcode.cli;

import io.predcode.core.io.Checkpoint;
import io.predcode.core.serve.CheckpointWatch;
import io.predcode.core.serve.Predictor;
import io.predcode.spi.Backend;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/**
 * A checkpoint served over HTTP, and the newer ones a training run saves into its folder as it goes on: what a
 * service's {@link Predictor} does, as a process of its own, for clients in any language.
 */
@Command(name = "serve", mixinStandardHelpOptions = true, sortOptions = false, description = {"Serve a checkpoint's predictions over HTTP (JSON), taking each newer save of its run as it comes.",
        "POST /predict {\"inputs\": [[raw values], ...]} answers each sample's class, its name and every class's probability (a model trained on squared error:"
                + " its outputs) and the version of the parameters that answered; GET /info describes the model, GET /health counts. Stops at Ctrl-C or SIGTERM."})
final class ServeCommand implements Callable<Integer> {
    @Spec picocli.CommandLine.Model.CommandSpec spec;

    @Mixin Setup.CheckpointChoice checkpoint;

    @Option(names = "--host", defaultValue = "127.0.0.1", description = "The address to listen on: this machine alone by default; 0.0.0.0 for every network"
            + " it is on (default: ${DEFAULT-VALUE}).")
    String host;

    @Option(names = "--port", defaultValue = "8080", description = "The port to listen on; 0: a free one, printed (default: ${DEFAULT-VALUE}).")
    int port;

    @Option(names = "--watch", defaultValue = "10s", description = "How often to look for a newer save of the checkpoint (a run training into its folder"
            + " writes one each epoch): a number of seconds, or with ms, s or m; off: never. A save of another model, or with a NaN, is refused and the"
            + " current version keeps answering (default: ${DEFAULT-VALUE}).")
    String watch;

    @Option(names = "--http-threads", defaultValue = "4", description = "Requests answered at once (default: ${DEFAULT-VALUE}).")
    int httpThreads;

    @Option(names = "--max-rows", defaultValue = "1024", description = "The most samples one request may hold (default: ${DEFAULT-VALUE}).")
    int maxRows;

    @Option(names = "--request-timeout", defaultValue = "30", description = "Seconds a request may take to arrive whole: a client that stalls, or sends"
            + " less than it said it would, is cut off, so that it cannot hold a request thread (default: ${DEFAULT-VALUE}).")
    int requestTimeout;

    @Mixin Setup.BackendChoice backendChoice;

    /** Tests: stops the service as a signal would. */
    private volatile boolean stopRequested;

    void stop() { stopRequested = true; }

    /** --watch: "10" or "10s" seconds, "500ms", "2m"; null for off. */
    static java.time.Duration every(String text) {
        if (text.equals("off")) return null;
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("(\\d{1,6})(ms|s|m)?").matcher(text);
        if (!m.matches() || Long.parseLong(m.group(1)) == 0)
            throw new IllegalArgumentException("--watch must be a time above 0 (10, 10s, 500ms, 2m) or off, got '" + text + "'");
        long v = Long.parseLong(m.group(1));
        return "ms".equals(m.group(2)) ? java.time.Duration.ofMillis(v) : "m".equals(m.group(2)) ? java.time.Duration.ofMinutes(v) : java.time.Duration.ofSeconds(v);
    }

    @Override public Integer call() throws Exception {
        if (port < 0 || port > 65_535) throw new IllegalArgumentException("--port must be in 0..65535, got " + port);
        if (httpThreads < 1 || httpThreads > 1024) throw new IllegalArgumentException("--http-threads must be in 1..1024, got " + httpThreads);
        if (maxRows < 1 || maxRows > 1_000_000) throw new IllegalArgumentException("--max-rows must be in 1..1000000, got " + maxRows);
        if (requestTimeout < 1 || requestTimeout > 3600) throw new IllegalArgumentException("--request-timeout must be in 1..3600 seconds, got " + requestTimeout);
        // The JDK's server waits for a request forever by default: a few stalled clients would hold every request thread.
        // It reads this once, as it starts its first server in this JVM; a -D of the user's own wins.
        if (System.getProperty("sun.net.httpserver.maxReqTime") == null) System.setProperty("sun.net.httpserver.maxReqTime", Integer.toString(requestTimeout));
        java.time.Duration every = every(watch);
        if (ModuleLayer.boot().findModule("jdk.httpserver").isEmpty()) // a jlinked runtime without it: say so, not a NoClassDefFoundError
            throw new IllegalArgumentException("serve needs the JDK's jdk.httpserver module, which the Java runtime at " + System.getProperty("java.home")
                    + " lacks: run it on a full JDK (25 or newer)");
        Checkpoint.Loaded c = checkpoint.loadFinite();
        PrintWriter out = spec.commandLine().getOut();
        boolean probabilities = PredictCommand.answersProbabilities(c);
        var described = new HttpPredictions.Described(checkpoint.path.toString(), c.inputShape() != null ? c.inputShape() : c.spec().input(), probabilities, c.settings() == null ? null : c.settings().map());
        try (Interruption signals = Interruption.onSignals();
             Backend be = backendChoice.openFor(c);
             Predictor predictor = Predictor.load(checkpoint.path, be);
             HttpPredictions http = HttpPredictions.start(host, port, httpThreads, maxRows, predictor, described);
             CheckpointWatch watcher = every == null ? null : predictor.watch(checkpoint.path, every, new CheckpointWatch.Listener() {
                 @Override public void published(long version, Path file) { out.printf("serving version %d: %s saved anew%n", version, file); }

                 @Override public void refused(Path file, Exception reason) { out.printf("not taken: %s (version %d goes on answering)%n", Main.message(reason), predictor.version()); }
             })) {
            out.printf("serving %s (%s, inputs %s, %d %s) on http://%s:%d: POST /predict {\"inputs\": [[%d raw values], ...]}, GET /info, GET /health; %s; Ctrl-C stops%n",
                    checkpoint.path, be.name(), java.util.Arrays.toString(described.shape(predictor)), predictor.outputSize(), probabilities ? "classes" : "outputs",
                    host, http.port(), predictor.inputSize(), every == null ? "not watching for newer saves" : "a newer save is taken within " + watch);
            out.flush();
            String signal;
            while ((signal = signals.requested(0)) == null && !stopRequested) Thread.sleep(50);
            out.printf("stopped: %s%n", signal != null ? signal : "asked to");
            return signal != null ? signals.exitCode() : 0;
        }
    }
}
