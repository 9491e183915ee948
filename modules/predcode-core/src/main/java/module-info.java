/**
 * The predictive-coding engine: models, losses, optimizers, Torch2PC's algorithms, training,
 * checkpoints and serving ({@link io.predcode.core.serve.Predictor}). It talks to backends only
 * through {@code io.predcode.spi}; add a backend module (io.predcode.cpu, io.predcode.cuda) to run.
 */
module io.predcode.core {
    requires transitive io.predcode.spi;

    exports io.predcode.core.io;
    exports io.predcode.core.json;
    exports io.predcode.core.nn;
    exports io.predcode.core.optim;
    exports io.predcode.core.pc;
    exports io.predcode.core.serve;
    // The single-user lease models and engines share (Model.guard()); not for applications.
    exports io.predcode.core.internal;
}
