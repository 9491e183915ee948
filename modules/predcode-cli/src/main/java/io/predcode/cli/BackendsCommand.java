package io.predcode.cli;

import io.predcode.spi.Availability;
import io.predcode.spi.Backend;
import io.predcode.spi.BackendOptions;
import io.predcode.spi.BackendProvider;
import io.predcode.spi.Backends;
import picocli.CommandLine.Command;
import picocli.CommandLine.Spec;

/** Lists every backend on the class path: available or not, and why. */
@Command(name = "backends", mixinStandardHelpOptions = true, description = "List the compute backends: available or not and why, library versions, threads or devices.")
final class BackendsCommand implements Runnable {
    @Spec picocli.CommandLine.Model.CommandSpec spec;

    @Override public void run() {
        var out = spec.commandLine().getOut();
        for (BackendProvider p : Backends.providers()) {
            Availability a = p.availability();
            if (a.available()) {
                try (Backend be = p.open(BackendOptions.defaults())) {
                    out.printf("%-6s available    %s%n", p.name(), be.description());
                }
            } else {
                out.printf("%-6s unavailable  %s%n", p.name(), a.reason());
            }
        }
    }
}
