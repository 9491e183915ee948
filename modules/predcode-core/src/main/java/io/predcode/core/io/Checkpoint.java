package io.predcode.core.io;

import io.predcode.core.json.Json;
import io.predcode.core.json.JsonFields;
import io.predcode.core.nn.Model;
import io.predcode.core.nn.ModelSpec;
import io.predcode.core.nn.Parameter;
import io.predcode.core.optim.Optimizer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
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

    public static final String MODEL_FILE = "model.safetensors", SPEC_FILE = "model.json", RESUME_FILE = "checkpoint.safetensors";

    /** What a checkpoint restores. {@code training} is free-form JSON written by the trainer. */
    public record Loaded(ModelSpec spec, int[] inputShape, Map<String, float[]> parameters, Map<String, float[]> optimizerState, JsonFields training, Path source) {}

    public static void save(Path dir, Model model, Optimizer optimizer, Map<String, Object> training) throws IOException {
        Files.createDirectories(dir);
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("format", "predcode-1");
        meta.put("model", Json.write(model.spec().withInput(model.inputShape()).toJsonValue(), 0));
        Map<String, Safetensors.Entry> params = new LinkedHashMap<>();
        Map<String, float[]> values = model.parameterValues();
        for (Parameter p : model.parameters().values()) params.put(p.name(), new Safetensors.Entry(p.shape(), values.get(p.name())));
        Map<String, Safetensors.Entry> all = new LinkedHashMap<>();
        params.forEach((k, v) -> all.put("model." + k, v));
        if (optimizer != null) {
            meta.put("optimizer", optimizer.name());
            optimizer.state().forEach((k, v) -> all.put("optimizer." + k, new Safetensors.Entry(new int[]{v.length}, v)));
        }
        meta.put("training", Json.write(training, 0));
        Safetensors.write(dir.resolve(RESUME_FILE), all, meta);
        Map<String, String> modelMeta = new LinkedHashMap<>();
        modelMeta.put("format", "pt");
        modelMeta.put("predcode_model", meta.get("model"));
        Safetensors.write(dir.resolve(MODEL_FILE), params, modelMeta);
        AtomicFiles.writeString(dir.resolve(SPEC_FILE), model.spec().withInput(model.inputShape()).toJson() + "\n");
    }

    /** Reads a checkpoint folder, or a checkpoint.safetensors / model.safetensors file. */
    public static Loaded load(Path path) throws IOException {
        Path file = Files.isDirectory(path) ? (Files.exists(path.resolve(RESUME_FILE)) ? path.resolve(RESUME_FILE) : path.resolve(MODEL_FILE)) : path;
        Safetensors.Contents c = Safetensors.read(file);
        boolean resumable = c.metadata().containsKey("training");
        String specJson = resumable ? c.metadata().get("model") : c.metadata().get("predcode_model");
        ModelSpec spec;
        if (specJson != null) spec = ModelSpec.parse(specJson, file + " (metadata 'model')");
        else if (Files.exists(file.resolveSibling(SPEC_FILE))) spec = ModelSpec.read(file.resolveSibling(SPEC_FILE));
        else throw new IllegalArgumentException(file + ": no model spec in its metadata and no " + SPEC_FILE + " beside it");
        if (spec.input() == null) throw new IllegalArgumentException(file + ": the model spec has no input shape");
        Map<String, float[]> params = Safetensors.values(c.tensors(), resumable ? "model." : "");
        Map<String, float[]> opt = resumable ? Safetensors.values(c.tensors(), "optimizer.") : Map.of();
        JsonFields training = resumable ? JsonFields.of(Json.parse(c.metadata().get("training"), file + " (metadata 'training')"), file.toString(), "training") : null;
        return new Loaded(spec, spec.input(), params, opt, training, file);
    }
}
