package io.predcode.core.nn;

import io.predcode.spi.Activation;
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
        if (!NAMES.contains(name))
            throw new IllegalArgumentException("unknown model '" + name + "'; built-in models: " + String.join(", ", NAMES) + ", " + SIZED + " sized to the data, or a spec FILE.json");
        String resource = "/io/predcode/core/models/" + name + ".json";
        try (InputStream in = BuiltinModels.class.getResourceAsStream(resource)) {
            if (in == null) throw new IllegalStateException("missing resource " + resource);
            return ModelSpec.parse(new String(in.readAllBytes(), StandardCharsets.UTF_8), name + ".json");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** How a model sized to its data is named: hidden layers' widths, and their activation (relu by default). */
    public static final String SIZED = "mlp:H1-H2-...[:ACTIVATION]";

    /** Whether {@code name} asks for an MLP sized to its data ({@link #mlp}). */
    public static boolean isSized(String name) { return name.startsWith("mlp:"); }

    /**
     * An MLP sized to its data, as {@code --model mlp:128-64:tanh} names it: one block per hidden layer (linear, then the
     * activation), and a last block of one linear layer with an output per class. Inputs of more than one dimension are
     * flattened first; {@code mean} and {@code std}, where given, standardize each input value first ({@code normalize},
     * carried in the model so that serving applies it too).
     *
     * @param name    mlp:H1-H2-...[:ACTIVATION], widths from 1 to 65536, an activation of {@link Activation#ids()}
     * @param input   a sample's shape
     * @param classes outputs
     * @param mean    per input value, or null
     * @param std     per input value (each &gt; 0), or null
     * @return the spec
     */
    public static ModelSpec mlp(String name, int[] input, int classes, float[] mean, float[] std) {
        String[] parts = name.substring(name.indexOf(':') + 1).split(":", -1);
        String form = "expected " + SIZED + ", e.g. mlp:128-64 or mlp:256:tanh (widths 1 to 65536; activations " + Activation.ids() + ")";
        if (!isSized(name) || parts.length > 2 || !parts[0].matches("\\d{1,5}(-\\d{1,5})*"))
            throw new IllegalArgumentException("'" + name + "': " + form);
        Activation f = parts.length == 2 ? Activation.byId(parts[1]) : Activation.RELU;
        if (f == null) throw new IllegalArgumentException("'" + name + "': no activation '" + parts[1] + "'; " + form);
        int[] widths = java.util.Arrays.stream(parts[0].split("-")).mapToInt(Integer::parseInt).toArray();
        for (int w : widths) if (w < 1 || w > 65536) throw new IllegalArgumentException("'" + name + "': a width of " + w + "; " + form);
        int features = java.util.Arrays.stream(input).reduce(1, Math::multiplyExact);
        ModelSpec.Builder b = ModelSpec.builder().input(input);
        int in = features;
        for (int i = 0; i <= widths.length; i++) {
            int from = in, to = i < widths.length ? widths[i] : classes;
            boolean first = i == 0, hidden = i < widths.length;
            b.block(ops -> {
                if (first && input.length > 1) ops.flatten();
                if (first && mean != null) ops.normalize(mean, std);
                ops.linear(from, to);
                if (hidden) ops.op(new OpSpec.Act(f, f == Activation.LEAKY_RELU ? 0.01f : 0f));
            });
            in = to;
        }
        return b.build();
    }

    /** A built-in name, or else a path to a spec file. */
    public static ModelSpec resolve(String nameOrFile) throws IOException {
        if (NAMES.contains(nameOrFile)) return get(nameOrFile);
        if (nameOrFile.endsWith(".json")) return ModelSpec.read(Path.of(nameOrFile));
        return get(nameOrFile);
    }
}
