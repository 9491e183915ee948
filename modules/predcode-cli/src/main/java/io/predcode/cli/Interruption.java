package io.predcode.cli;

import sun.misc.Signal;
import sun.misc.SignalHandler;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A request to stop training: Ctrl-C (SIGINT), SIGTERM (a cluster's scheduler at its time limit, {@code kill},
 * {@code docker stop}) or SIGHUP (the terminal or the ssh session it ran in closed). The run stops at its next step boundary and saves a checkpoint that {@code --resume}
 * continues from, where the JVM's own handling would end it at once and lose the epoch in progress. A second
 * signal ends the process at once, as without this: the first may be waiting on a long step or a Spark job.
 *
 * <p>Only while a run trains: closing restores the handlers there were, so other commands stop at Ctrl-C as usual.
 */
final class Interruption implements AutoCloseable {
    private final Map<Signal, SignalHandler> previous = new LinkedHashMap<>();
    /** Tests: a stop requested once the run has taken this many steps in all; -1 for none. */
    private final long afterSteps;
    private volatile Signal received;

    private Interruption(long afterSteps) { this.afterSteps = afterSteps; }

    /** Handles SIGINT, SIGTERM and SIGHUP until closed; a signal this JVM may not handle (e.g. under -Xrs) keeps its own handling. */
    static Interruption onSignals() {
        Interruption i = new Interruption(-1);
        for (String name : new String[]{"INT", "TERM", "HUP"}) {
            try {
                Signal signal = new Signal(name);
                i.previous.put(signal, Signal.handle(signal, i::received));
            } catch (IllegalArgumentException | UnsupportedOperationException e) {
                // Reserved by the VM or unknown to this OS: that signal ends the run as before.
            }
        }
        return i;
    }

    /** For tests: a stop as a signal would ask for it, once the run has taken {@code steps} steps. */
    static Interruption afterSteps(long steps) { return new Interruption(steps); }

    private void received(Signal signal) {
        if (received != null) { // the second: the JVM's own handling, now (for these three, shutdown with 128 + the number)
            SignalHandler before = previous.get(signal);
            if (before != null && before != SignalHandler.SIG_DFL && before != SignalHandler.SIG_IGN) before.handle(signal);
            else System.exit(128 + signal.getNumber());
            return;
        }
        received = signal;
    }

    /** Why the run, having taken {@code steps} steps, should stop at this boundary (e.g. "SIGINT"); null to go on. */
    String requested(long steps) {
        Signal s = received;
        if (s != null) return "SIG" + s.getName();
        return afterSteps >= 0 && steps >= afterSteps ? "a stop requested after step " + afterSteps : null;
    }

    /** The exit code of a run stopped by this request: 128 + the signal's number, as a shell reports it (130 for Ctrl-C). */
    int exitCode() {
        Signal s = received;
        return 128 + (s != null ? s.getNumber() : 2);
    }

    @Override public void close() {
        previous.forEach(Signal::handle);
        previous.clear();
    }
}
