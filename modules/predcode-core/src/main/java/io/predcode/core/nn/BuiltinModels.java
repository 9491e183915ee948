package io.predcode.core.nn;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;

/**
 * Models shipped with predcode, also as spec files (resources io/predcode/core/models/NAME.json):
 * {@code example-cnn} is Torch2PC's Example1 network, {@code mlp} a 784-512-256-10 ReLU MLP,
 * {@code digits-mlp} a 64-64-32-10 MLP for the bundled 8x8 digits, {@code pcx-mlp} the 784-128-128-128-10
 * MLP of PCX's Fashion-MNIST benchmark (leaky ReLU; bench/models has its GELU and ReLU variants).
 */
public final class BuiltinModels {
    private BuiltinModels() {}

    /** The names {@link #get} knows. */
    public static final List<String> NAMES = List.of("example-cnn", "mlp", "digits-mlp", "pcx-mlp");

    /** The built-in model of this name; throws, listing the names, if there is none. */
    public static ModelSpec get(String name) {
        if (!NAMES.contains(name)) throw new IllegalArgumentException("unknown model '" + name + "'; built-in models: " + String.join(", ", NAMES) + ", or a spec FILE.json");
        String resource = "/io/predcode/core/models/" + name + ".json";
        try (InputStream in = BuiltinModels.class.getResourceAsStream(resource)) {
            if (in == null) throw new IllegalStateException("missing resource " + resource);
            return ModelSpec.parse(new String(in.readAllBytes(), StandardCharsets.UTF_8), name + ".json");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A built-in name, or else a path to a spec file. */
    public static ModelSpec resolve(String nameOrFile) throws IOException {
        if (NAMES.contains(nameOrFile)) return get(nameOrFile);
        if (nameOrFile.endsWith(".json")) return ModelSpec.read(Path.of(nameOrFile));
        return get(nameOrFile);
    }
}
