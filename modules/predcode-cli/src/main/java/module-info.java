/**
 * The {@code predcode} command line: train, eval, predict, serve, generate, inspect, compare, bench, backends. Normally run as
 * {@code java -jar predcode-cli.jar}; as a module it needs a backend module beside it.
 */
@SuppressWarnings("requires-automatic") // predcode-spark (Spark is not modular) and xchart are automatic modules
module io.predcode.cli {
    requires io.predcode.core;
    requires io.predcode.data;
    requires io.predcode.spark;
    requires info.picocli;
    requires me.tongfei.progressbar;
    requires org.knowm.xchart;
    requires java.desktop;
    requires jdk.httpserver; // serve: the JDK's own HTTP server
    requires jdk.unsupported; // sun.misc.Signal: Ctrl-C and SIGTERM stop a run at a step boundary, saved (Interruption)
    requires static jdk.management; // bench's heap bytes per step, where the runtime has the module

    // picocli fills the commands' option fields by reflection.
    opens io.predcode.cli to info.picocli;
}
