package io.predcode.core;

import io.predcode.core.json.Json;
import io.predcode.core.json.JsonFields;
import io.predcode.core.nn.ModelSpec;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/** A golden case computed by Torch2PC's PCInfer (format: src/test/resources/golden/README.md). */
public record Golden(String name, Path file, JsonFields root) {
    /** A tensor from the file: shape and row-major data. */
    public record T(int[] shape, float[] data, double[] exact) {}

    /** Every case in -Dpredcode.golden.dir and $PREDCODE_GOLDEN_DIR, and in their subfolders. */
    public static List<Golden> all() {
        List<Path> dirs = new ArrayList<>();
        String prop = System.getProperty("predcode.golden.dir");
        if (prop != null) dirs.add(Path.of(prop));
        String env = System.getenv("PREDCODE_GOLDEN_DIR");
        if (env != null && !env.isBlank()) dirs.add(Path.of(env));
        List<Golden> cases = new ArrayList<>();
        for (Path dir : dirs) {
            if (!Files.isDirectory(dir)) throw new IllegalStateException("golden folder " + dir + " does not exist");
            try (Stream<Path> files = Files.walk(dir)) { // subfolders too: golden/generated holds the drawn cases
                for (Path f : files.filter(p -> p.toString().endsWith(".json")).sorted().toList()) cases.add(read(f));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        if (cases.isEmpty()) throw new IllegalStateException("no golden cases found in " + dirs + " (set -Dpredcode.golden.dir or PREDCODE_GOLDEN_DIR)");
        return cases;
    }

    public static Golden read(Path f) {
        try {
            JsonFields root = JsonFields.of(Json.parse(Files.readString(f), f.toString()), f.toString(), "");
            String name = f.getFileName().toString().replaceFirst("\\.json$", "");
            return new Golden(name, f, root);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public ModelSpec model() { return ModelSpec.parse(Json.write(root.get("model"), 0), file + " (model)"); }

    public static T tensor(Object o) {
        if (o == null) return null;
        JsonFields f = JsonFields.of(o, "golden", "tensor");
        List<Object> shape = f.list("shape"), data = f.list("data");
        int[] s = new int[shape.size()];
        for (int i = 0; i < s.length; i++) s[i] = ((Double) shape.get(i)).intValue();
        float[] d = new float[data.size()];
        double[] e = new double[data.size()];
        for (int i = 0; i < d.length; i++) { e[i] = (Double) data.get(i); d[i] = (float) e[i]; }
        return new T(s, d, e);
    }

    public T tensor(String key) { return tensor(root.get(key)); }

    public static List<T> tensors(Object list) {
        List<T> out = new ArrayList<>();
        for (Object o : (List<?>) list) out.add(tensor(o));
        return out;
    }

    public static Map<String, T> tensorMap(Object map) {
        Map<String, T> out = new LinkedHashMap<>();
        ((Map<?, ?>) map).forEach((k, v) -> out.put((String) k, tensor(v)));
        return out;
    }

    public static Map<String, float[]> floats(Map<String, T> m) {
        Map<String, float[]> out = new LinkedHashMap<>();
        m.forEach((k, v) -> out.put(k, v.data()));
        return out;
    }
}
