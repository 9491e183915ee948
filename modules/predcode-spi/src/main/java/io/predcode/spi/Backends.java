package io.predcode.spi;

import java.util.ArrayList;
import java.util.List;
import java.util.ServiceLoader;

/** Finds backends on the class path by name. No global state beyond what ServiceLoader reads. */
public final class Backends {
    private Backends() {}

    /** Every provider on the class path, in a stable order (cpu first). */
    public static List<BackendProvider> providers() {
        List<BackendProvider> out = new ArrayList<>();
        ServiceLoader.load(BackendProvider.class, Backends.class.getClassLoader()).forEach(out::add);
        out.sort((a, b) -> rank(a.name()) != rank(b.name()) ? Integer.compare(rank(a.name()), rank(b.name())) : a.name().compareTo(b.name()));
        return out;
    }

    private static int rank(String name) { return name.equals("cpu") ? 0 : name.equals("cuda") ? 1 : 2; }

    /** The provider of this name; throws, listing the names, if there is none. */
    public static BackendProvider provider(String name) {
        List<String> known = new ArrayList<>();
        for (BackendProvider p : providers()) {
            if (p.name().equalsIgnoreCase(name)) return p;
            known.add(p.name());
        }
        throw new IllegalArgumentException("unknown backend '" + name + "'; known backends: " + String.join(", ", known));
    }

    /** Opens the named backend, or throws with the reason it is unavailable. */
    public static Backend open(String name, BackendOptions options) {
        BackendProvider p = provider(name);
        Availability a = p.availability();
        if (!a.available()) throw new BackendUnavailableException("backend '" + p.name() + "' is unavailable: " + a.reason());
        return p.open(options);
    }

    /** Opens a backend by name with the default options. */
    public static Backend open(String name) { return open(name, BackendOptions.defaults()); }
}
