package io.predcode.core.io;

import io.predcode.core.json.Json;
import io.predcode.core.json.JsonFields;
import io.predcode.core.nn.Model;
import io.predcode.core.nn.ModelSpec;
import io.predcode.core.nn.Parameter;
import io.predcode.core.optim.Optimizer;
import io.predcode.core.serve.Preprocessing;
import io.predcode.spi.Backend;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A training checkpoint in a folder, every file written atomically:
 * <ul>
 * <li>{@code model.safetensors}: the parameters under PyTorch state_dict names (loads into the
 *     equivalent torch.nn.Sequential), the model spec in its metadata;</li>
 * <li>{@code model.json}: the model spec;</li>
 * <li>{@code checkpoint.safetensors}: parameters ({@code model.*}), optimizer state
 *     ({@code optimizer.*}) and the training state (JSON in metadata "training"), for exact resumption.</li>
 * </ul>
 */
public final class Checkpoint {
    private Checkpoint() {}

    /** The parameters under PyTorch state_dict names, with serving metadata. */
    public static final String MODEL_FILE = "model.safetensors";
    /** The model spec as JSON. */
    public static final String SPEC_FILE = "model.json";
    /** Parameters, optimizer state and training state, for --resume. */
    public static final String RESUME_FILE = "checkpoint.safetensors";

    /**
     * What a checkpoint restores. {@code training} is free-form JSON written by the trainer (null in a
     * model-only file); {@code preprocessing} maps raw inputs to the model's (NONE in checkpoints older
     * than it); {@code classNames} is empty where none were recorded, and so is {@code featureNames} (a table's
     * columns, by which its inputs are matched). {@code settings} are the settings the model was trained with where the
     * trainer recorded them (the training state's "settings"; an export carries a copy), else null.
     */
    public record Loaded(ModelSpec spec, int[] inputShape, Map<String, float[]> parameters, Map<String, float[]> optimizerState, JsonFields training, Path source,
                         Preprocessing preprocessing, List<String> classNames, List<String> featureNames, JsonFields settings) {
        /**
         * The loss the model was trained with, as its training settings record it: what its test loss
         * means. Cross-entropy where the file records none.
         */
        public io.predcode.core.nn.Loss loss() {
            if (settings == null || !settings.has("loss")) return io.predcode.core.nn.Loss.CROSS_ENTROPY;
            try {
                return io.predcode.core.nn.Loss.parse(settings.string("loss"));
            } catch (IllegalArgumentException e) { // a tampered file: name it and the field
                throw new IllegalArgumentException(settings.source() + ": field '" + settings.path() + ".loss': " + e.getMessage(), e);
            }
        }

        /** The model on {@code backend}, with these parameters: one call from checkpoint to model. */
        public Model model(Backend backend) {
            Model m = Model.create(spec, inputShape, backend, 0);
            try {
                m.loadParameters(parameters, source.toString());
                return m;
            } catch (RuntimeException e) {
                m.close();
                throw e;
            }
        }
    }

    /** Thrown by {@link #save} before any file is written when a parameter holds a NaN or an infinity: nothing bad is ever saved. */
    public static final class NotFiniteException extends IllegalStateException {
        /** The first parameter found holding a NaN or an infinity. */
        private final String parameter;

        NotFiniteException(String parameter, Path dir) {
            super(dir + ": parameter '" + parameter + "' is not finite; checkpoint not written");
            this.parameter = parameter;
        }

        /**
         * The first parameter found holding a NaN or an infinity.
         *
         * @return its state_dict name
         */
        public String parameter() { return parameter; }
    }

    /** Metadata keys for serving: the input preprocessing ({"scale": s, "shift": t}) and the class names (a JSON list). */
    static final String PREPROCESSING_KEY = "predcode_preprocessing", CLASSES_KEY = "predcode_classes", FEATURES_KEY = "predcode_features";
    /** Metadata key of an export's copy of the settings its model was trained with (the training state's "settings"). */
    static final String SETTINGS_KEY = "predcode_training_settings";

    /** Saves without serving information (raw inputs are the model's inputs; no class names). */
    public static void save(Path dir, Model model, Optimizer optimizer, Map<String, Object> training) throws IOException {
        save(dir, model, optimizer, training, Preprocessing.NONE, List.of());
    }

    /**
     * Saves a checkpoint; {@code preprocessing} and {@code classNames} (may be empty) go into both files'
     * metadata, so a {@link io.predcode.core.serve.Predictor} loaded from either applies them.
     */
    public static void save(Path dir, Model model, Optimizer optimizer, Map<String, Object> training, Preprocessing preprocessing, List<String> classNames)
            throws IOException {
        save(dir, model, optimizer, training, preprocessing, classNames, List.of());
    }

    /**
     * As {@link #save(Path, Model, Optimizer, Map, Preprocessing, List)}, with the names of a flat input's features (a
     * table's columns; may be empty), by which a table to classify is matched to the model's inputs.
     */
    public static void save(Path dir, Model model, Optimizer optimizer, Map<String, Object> training, Preprocessing preprocessing, List<String> classNames,
                            List<String> featureNames) throws IOException {
        Files.createDirectories(dir);
        Map<String, String> serving = new LinkedHashMap<>();
        Map<String, Object> pre = new LinkedHashMap<>();
        pre.put("scale", (double) preprocessing.scale());
        pre.put("shift", (double) preprocessing.shift());
        serving.put(PREPROCESSING_KEY, Json.write(pre, 0));
        if (!classNames.isEmpty()) serving.put(CLASSES_KEY, Json.write(new ArrayList<Object>(classNames), 0));
        if (!featureNames.isEmpty()) serving.put(FEATURES_KEY, Json.write(new ArrayList<Object>(featureNames), 0));
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("format", "predcode-1");
        meta.put("model", Json.write(model.spec().withInput(model.inputShape()).toJsonValue(), 0));
        Map<String, Safetensors.Entry> params = new LinkedHashMap<>();
        Map<String, float[]> values = model.parameterValues();
        String notFinite = firstNotFinite(values);
        if (notFinite != null) throw new NotFiniteException(notFinite, dir);
        for (Parameter p : model.parameters().values()) params.put(p.name(), new Safetensors.Entry(p.shape(), values.get(p.name())));
        Map<String, Safetensors.Entry> all = new LinkedHashMap<>();
        params.forEach((k, v) -> all.put("model." + k, v));
        if (optimizer != null) {
            meta.put("optimizer", optimizer.name());
            optimizer.state().forEach((k, v) -> all.put("optimizer." + k, new Safetensors.Entry(new int[]{v.length}, v)));
        }
        meta.put("training", Json.write(training, 0));
        meta.putAll(serving);
        Map<String, String> modelMeta = new LinkedHashMap<>();
        modelMeta.put("format", "pt");
        modelMeta.put("predcode_model", meta.get("model"));
        modelMeta.putAll(serving);
        // How the model was trained (what its scores mean: the data set and the loss) travels with the export too; not the
        // machine it ran on, so that the same model trained on other threads or another backend is the same file.
        if (training.get("settings") instanceof Map<?, ?> settings) {
            Map<Object, Object> kept = new LinkedHashMap<>(settings);
            kept.keySet().removeAll(List.of("backend", "backend_description", "threads", "spark", "spark_partitions", "spark_threads", "spark_average_every"));
            modelMeta.put(SETTINGS_KEY, Json.write(kept, 0));
        }
        // The served file first: a service polling a new run's folder (Predictor.reloadIfChanged) finds model.safetensors
        // before any checkpoint, where it would serve the checkpoint and then the same parameters again from this file.
        Safetensors.write(dir.resolve(MODEL_FILE), params, modelMeta);
        AtomicFiles.writeString(dir.resolve(SPEC_FILE), model.spec().withInput(model.inputShape()).toJson() + "\n");
        Safetensors.write(dir.resolve(RESUME_FILE), all, meta);
    }

    /**
     * The first parameter holding a NaN or an infinity.
     *
     * @param parameters values by name
     * @return its name, or null where every value is finite
     */
    public static String firstNotFinite(Map<String, float[]> parameters) {
        for (Map.Entry<String, float[]> p : parameters.entrySet())
            for (float f : p.getValue()) if (!Float.isFinite(f)) return p.getKey();
        return null;
    }

    /** Reads a checkpoint folder, or a checkpoint.safetensors / model.safetensors file. */
    public static Loaded load(Path path) throws IOException {
        Path file = file(path);
        Safetensors.Contents c = Safetensors.read(file);
        boolean resumable = c.metadata().containsKey("training");
        String specJson = resumable ? c.metadata().get("model") : c.metadata().get("predcode_model");
        ModelSpec spec;
        if (specJson != null) spec = ModelSpec.parse(specJson, file + " (metadata 'model')");
        else if (Files.exists(file.resolveSibling(SPEC_FILE))) spec = ModelSpec.read(file.resolveSibling(SPEC_FILE));
        else throw new IllegalArgumentException(file + ": no model spec in its metadata and no " + SPEC_FILE + " beside it");
        if (spec.input() == null) throw new IllegalArgumentException(file + ": the model spec has no input shape");
        checkShapes(c.tensors(), resumable ? "model." : "", spec.parameterShapes(), file);
        Map<String, float[]> params = Safetensors.values(c.tensors(), resumable ? "model." : "");
        Map<String, float[]> opt = resumable ? Safetensors.values(c.tensors(), "optimizer.") : Map.of();
        JsonFields training = training(c.metadata(), file);
        return new Loaded(spec, spec.input(), params, opt, training, file, preprocessing(c.metadata(), file), names(c.metadata(), CLASSES_KEY, "class", file),
                names(c.metadata(), FEATURES_KEY, "feature", file), settings(training, c.metadata(), file));
    }

    /** The file {@link #load} reads for {@code path}: a folder's checkpoint, else its model; a file itself. */
    private static Path file(Path path) throws IOException {
        if (!Files.exists(path)) throw new java.nio.file.NoSuchFileException(path.toString(), null, "no such run folder or .safetensors file");
        return Files.isDirectory(path) ? (Files.exists(path.resolve(RESUME_FILE)) ? path.resolve(RESUME_FILE) : path.resolve(MODEL_FILE)) : path;
    }

    /**
     * The settings the model in {@code path} (as {@link #load} takes it) was trained with, read from the file's header alone,
     * without its tensors; null where it records none. See {@link Loaded#settings}.
     */
    public static JsonFields settings(Path path) throws IOException {
        Path file = file(path);
        Map<String, String> meta = Safetensors.metadata(file);
        return settings(training(meta, file), meta, file);
    }

    /** A checkpoint's training state (metadata "training"); null in a model-only file. */
    private static JsonFields training(Map<String, String> meta, Path file) {
        String json = meta.get("training");
        return json == null ? null : JsonFields.of(Json.parse(json, file + " (metadata 'training')"), file.toString(), "training");
    }

    /** The training settings: a checkpoint's training state's ({@code training}), or an export's copy in its metadata; null where none. */
    private static JsonFields settings(JsonFields training, Map<String, String> meta, Path file) {
        if (training != null) return training.has("settings") ? training.object("settings") : null;
        String json = meta.get(SETTINGS_KEY);
        return json == null ? null : JsonFields.of(Json.parse(json, file + " (metadata '" + SETTINGS_KEY + "')"), file.toString(), SETTINGS_KEY);
    }

    /**
     * Every parameter of the spec is in the file with exactly its shape (a [16, 256] tensor has the
     * element count of a [64, 64] weight, and must still not load into it), and nothing else is.
     *
     * @param tensors  a safetensors file's tensors
     * @param prefix   the prefix of the parameters' names in the file ("" for none)
     * @param expected the parameters' names and shapes ({@link io.predcode.core.nn.ModelSpec#parameterShapes})
     * @param file     the file, for messages
     * @throws IllegalArgumentException naming the file, the tensor and the shapes
     */
    public static void checkShapes(Map<String, Safetensors.Entry> tensors, String prefix, Map<String, int[]> expected, Path file) {
        for (Map.Entry<String, Safetensors.Entry> t : tensors.entrySet()) {
            if (!t.getKey().startsWith(prefix)) continue;
            String name = t.getKey().substring(prefix.length());
            int[] want = expected.get(name);
            if (want == null)
                throw new IllegalArgumentException(file + ": tensor '" + t.getKey() + "' is not a parameter of its model (which has " + expected.keySet() + ")");
            if (!java.util.Arrays.equals(want, t.getValue().shape()))
                throw new IllegalArgumentException(file + ": tensor '" + t.getKey() + "' has shape " + java.util.Arrays.toString(t.getValue().shape())
                        + "; its model's parameter " + name + " is " + java.util.Arrays.toString(want));
        }
        for (String name : expected.keySet())
            if (!tensors.containsKey(prefix + name)) throw new IllegalArgumentException(file + ": parameter '" + prefix + name + "' is missing");
    }

    private static Preprocessing preprocessing(Map<String, String> meta, Path file) {
        String json = meta.get(PREPROCESSING_KEY);
        if (json == null) return Preprocessing.NONE;
        String where = file + " (metadata '" + PREPROCESSING_KEY + "')";
        JsonFields f = JsonFields.of(Json.parse(json, where), where, "");
        try {
            return new Preprocessing((float) f.number("scale"), (float) f.number("shift"));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(where + ": " + e.getMessage(), e);
        }
    }

    /**
     * The feature names a safetensors file records (a model trained on a table with a header), empty where it records
     * none (a PyTorch state_dict, a model of images).
     *
     * @param file a checkpoint or model file
     * @return the names, in the order the model takes its inputs
     * @throws IOException where the file cannot be read as safetensors
     */
    public static List<String> featureNames(Path file) throws IOException {
        return names(Safetensors.read(file).metadata(), FEATURES_KEY, "feature", file);
    }

    /** The list of names under {@code key} (class or feature names), empty where there is none. */
    private static List<String> names(Map<String, String> meta, String key, String what, Path file) {
        String json = meta.get(key);
        if (json == null) return List.of();
        String where = file + " (metadata '" + key + "')";
        if (!(Json.parse(json, where) instanceof List<?> list)) throw new IllegalArgumentException(where + ": expected a JSON list of " + what + " names");
        List<String> names = new ArrayList<>();
        for (Object o : list) {
            if (!(o instanceof String name)) throw new IllegalArgumentException(where + ": " + what + " name " + names.size() + " is not a string");
            names.add(name);
        }
        return List.copyOf(names);
    }
}
