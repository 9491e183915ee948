/** A consumer of predcode on the module path: it requires only the engine; the cpu backend is bound as a service. */
module io.predcode.examples.modular {
    requires io.predcode.core;
}
