package io.predcode.core.nn;

import io.predcode.core.json.Json;
import io.predcode.core.json.JsonException;
import io.predcode.core.json.JsonFields;
import io.predcode.spi.Activation;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * A model: a sequence of blocks, each block a list of ops; one block is one predictive-coding layer
 * (Torch2PC treats each element of the outer nn.Sequential as a layer). Optionally the per-sample
 * input shape, which conv models need before data is seen.
 *
 * <p>JSON: either the golden files' {@code model} field (a list of blocks) or
 * {@code {"input": [1, 28, 28], "blocks": [...]}}.
 */
public record ModelSpec(List<List<OpSpec>> blocks, int[] input) {
    /** Copies the blocks and checks that there is at least one, each with at least one op. */
    public ModelSpec {
        if (blocks.isEmpty()) throw new IllegalArgumentException("a model needs at least one block");
        for (int b = 0; b < blocks.size(); b++)
            if (blocks.get(b).isEmpty()) throw new IllegalArgumentException("block " + b + " has no ops");
        blocks = blocks.stream().map(List::copyOf).toList();
        if (input != null && (input.length == 0 || java.util.Arrays.stream(input).anyMatch(d -> d < 1)))
            throw new IllegalArgumentException("input shape " + java.util.Arrays.toString(input) + ": expected one or more dimensions, each >= 1");
        input = input == null ? null : input.clone();
    }

    /**
     * Whether the model fills a missing input value (NaN) itself: its first op, after any flatten, is a normalize, which
     * gives a NaN the mean's place ({@code Backend.scaleChannels}). Any other model would carry the NaN into every output.
     */
    public boolean fillsMissingValues() {
        for (OpSpec op : blocks.getFirst()) if (!(op instanceof OpSpec.Flatten)) return op instanceof OpSpec.Normalize;
        return false;
    }

    /**
     * The number of learnable floats, counted in checked arithmetic without allocating anything.
     *
     * @return the parameter count
     * @throws IllegalArgumentException when it does not fit a long
     */
    public long parameterCount() {
        long floats = 0;
        try {
            for (List<OpSpec> block : blocks)
                for (OpSpec op : block)
                    for (int[] shape : op.parameterShapes().values()) {
                        long n = 1;
                        for (int d : shape) n = Math.multiplyExact(n, d);
                        floats = Math.addExact(floats, n);
                    }
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException("the model has more parameters than a long counts");
        }
        return floats;
    }

    /** The number of blocks. */
    public int depth() { return blocks.size(); }

    /** The same blocks with a known input shape. */
    public ModelSpec withInput(int... shape) { return new ModelSpec(blocks, shape); }

    /**
     * The same model with {@code outputs} outputs, where it ends in a linear layer: a built-in classifier fitted to a
     * data set's number of classes. A model ending otherwise is returned as it is.
     */
    public ModelSpec withOutputs(int outputs) {
        List<OpSpec> last = blocks.getLast();
        if (!(last.getLast() instanceof OpSpec.Linear l) || l.out() == outputs) return this;
        List<OpSpec> block = new java.util.ArrayList<>(last);
        block.set(block.size() - 1, new OpSpec.Linear(l.in(), outputs, l.bias()));
        List<List<OpSpec>> all = new java.util.ArrayList<>(blocks);
        all.set(all.size() - 1, List.copyOf(block));
        return new ModelSpec(List.copyOf(all), input);
    }

    /**
     * Per-sample shapes of every activation: index 0 is the input, index l the output of block l.
     * Throws naming the block, op and numbers when the ops do not fit together.
     */
    public int[][] activationShapes(int[] inputShape) {
        int[][] shapes = new int[depth() + 1][];
        shapes[0] = inputShape.clone();
        for (int b = 0; b < depth(); b++) {
            int[] s = shapes[b];
            List<OpSpec> ops = blocks.get(b);
            for (int k = 0; k < ops.size(); k++) {
                s = ops.get(k).outputShape(s, "block " + b + ", op " + k);
                long n = 1;
                for (int d : s) n *= d; // at most 3 dims, each an int: no long overflow
                if (n > Integer.MAX_VALUE)
                    throw new IllegalArgumentException("block " + b + ", op " + k + " (" + ops.get(k).op() + "): output " + java.util.Arrays.toString(s) + " has "
                            + n + " values per sample; at most 2^31-1");
            }
            shapes[b + 1] = s;
        }
        return shapes;
    }

    /** One op of a model with the per-sample shape it receives, at the model's own shapes. */
    public record OpAt(int block, int index, OpSpec op, int[] input) {}

    /**
     * Every op with its input shape, in order: benchmarks time the ops at a model's real shapes from
     * here instead of copying them.
     *
     * @param inputShape the per-sample input shape
     * @return the ops, block by block
     */
    public List<OpAt> ops(int[] inputShape) {
        List<OpAt> out = new ArrayList<>();
        int[] s = inputShape.clone();
        for (int b = 0; b < depth(); b++)
            for (int k = 0; k < blocks.get(b).size(); k++) {
                OpSpec op = blocks.get(b).get(k);
                out.add(new OpAt(b, k, op, s));
                s = op.outputShape(s, "block " + b + ", op " + k);
            }
        return out;
    }

    /** Parameter names (PyTorch state_dict: "B.K.weight") and shapes, in state_dict order. */
    public Map<String, int[]> parameterShapes() {
        Map<String, int[]> out = new LinkedHashMap<>();
        for (int b = 0; b < depth(); b++)
            for (int k = 0; k < blocks.get(b).size(); k++)
                for (Map.Entry<String, int[]> e : blocks.get(b).get(k).parameterShapes().entrySet())
                    out.put(b + "." + k + "." + e.getKey(), e.getValue());
        return out;
    }

    /** Forward multiply-adds per sample. */
    public long forwardMacs(int[] inputShape) {
        long macs = 0;
        for (OpAt at : ops(inputShape)) macs += at.op().macs(at.input());
        return macs;
    }

    // ------------------------------------------------------------------ JSON

    /** Parses a spec (a list of blocks, or an object with input and blocks); {@code source} names it in errors. */
    public static ModelSpec parse(String json, String source) {
        Object root = Json.parse(json, source);
        if (root instanceof List<?>) return parseBlocks(root, source, "model", null);
        JsonFields f = JsonFields.of(root, source, "");
        int[] input = null;
        if (f.has("input")) {
            List<Object> l = f.list("input");
            input = f.ints("input", l.size(), 1);
        }
        return parseBlocks(f.get("blocks"), source, "blocks", input);
    }

    private static ModelSpec parseBlocks(Object blocksJson, String source, String path, int[] input) {
        if (!(blocksJson instanceof List<?> bl)) throw new JsonException(source + ": field '" + path + "' must be an array of blocks");
        if (bl.isEmpty()) throw new JsonException(source + ": field '" + path + "' has no blocks");
        List<List<OpSpec>> blocks = new ArrayList<>();
        for (int b = 0; b < bl.size(); b++) {
            if (!(bl.get(b) instanceof List<?> ops) || ops.isEmpty())
                throw new JsonException(source + ": field '" + path + "[" + b + "]' must be a non-empty array of ops");
            List<OpSpec> block = new ArrayList<>();
            for (int k = 0; k < ops.size(); k++) block.add(OpSpec.parse(JsonFields.of(ops.get(k), source, path + "[" + b + "][" + k + "]")));
            blocks.add(block);
        }
        return new ModelSpec(blocks, input);
    }

    /** Reads a spec from a JSON file. */
    public static ModelSpec read(Path file) throws IOException {
        try {
            return parse(Files.readString(file), file.toString());
        } catch (NoSuchFileException e) {
            throw new NoSuchFileException(file.toString(), null, "model spec file not found");
        } catch (java.nio.charset.CharacterCodingException e) {
            throw new IllegalArgumentException(file + ": not UTF-8 text; a model spec is a JSON file");
        } catch (IOException e) {
            // "Is a directory" and the like come without the file's name
            throw new java.nio.file.FileSystemException(file.toString(), null, e.getMessage() != null ? e.getMessage() : e.toString());
        }
    }

    /** The spec as JSON values (lists and maps). */
    public Object toJsonValue() {
        List<Object> bl = blocks.stream().map(b -> (Object) b.stream().map(OpSpec::toJson).toList()).toList();
        if (input == null) return bl;
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("input", input);
        m.put("blocks", bl);
        return m;
    }

    /** The spec as indented JSON. */
    public String toJson() { return Json.write(toJsonValue(), 2); }

    @Override public boolean equals(Object o) { return o instanceof ModelSpec m && m.blocks.equals(blocks) && Arrays.equals(m.input, input); }

    @Override public int hashCode() { return blocks.hashCode() * 31 + Arrays.hashCode(input); }

    @Override public String toString() { return "ModelSpec" + Json.write(toJsonValue(), 0); }

    // ------------------------------------------------------------------ fluent API

    /** A fluent builder. */
    public static Builder builder() { return new Builder(); }

    /** Builds a spec in code: {@code ModelSpec.builder().input(1,28,28).block(b -> b.conv2d(1,10,3).relu().maxPool(2))...build()}. */
    public static final class Builder {
        private final List<List<OpSpec>> blocks = new ArrayList<>();
        private int[] input;

        Builder() {}

        /** The per-sample input shape. */
        public Builder input(int... shape) { this.input = shape.clone(); return this; }

        /** Adds a block made by {@code ops}. */
        public Builder block(Consumer<BlockBuilder> ops) {
            BlockBuilder b = new BlockBuilder();
            ops.accept(b);
            blocks.add(b.ops);
            return this;
        }

        /** The spec. */
        public ModelSpec build() { return new ModelSpec(blocks, input); }
    }

    /** Adds ops to one block. */
    public static final class BlockBuilder {
        private final List<OpSpec> ops = new ArrayList<>();

        BlockBuilder() {}

        /** A linear layer with bias. */
        public BlockBuilder linear(int in, int out) { ops.add(new OpSpec.Linear(in, out, true)); return this; }
        /** A linear layer, with or without bias. */
        public BlockBuilder linear(int in, int out, boolean bias) { ops.add(new OpSpec.Linear(in, out, bias)); return this; }
        /** A square conv2d with bias, stride 1 and no padding. */
        public BlockBuilder conv2d(int in, int out, int kernel) { return conv2d(in, out, kernel, 1, 0); }
        /** A square conv2d with bias. */
        public BlockBuilder conv2d(int in, int out, int kernel, int stride, int padding) {
            ops.add(new OpSpec.Conv2d(in, out, kernel, kernel, stride, stride, padding, padding, true));
            return this;
        }
        /** A square max pooling with stride equal to its kernel. */
        public BlockBuilder maxPool(int kernel) { ops.add(new OpSpec.Pool2d(true, kernel, kernel, kernel, kernel)); return this; }
        /** A square average pooling with stride equal to its kernel. */
        public BlockBuilder avgPool(int kernel) { ops.add(new OpSpec.Pool2d(false, kernel, kernel, kernel, kernel)); return this; }
        /** A ReLU. */
        public BlockBuilder relu() { ops.add(new OpSpec.Act(Activation.RELU, 0f)); return this; }
        /** A leaky ReLU with this negative slope. */
        public BlockBuilder leakyRelu(float slope) { ops.add(new OpSpec.Act(Activation.LEAKY_RELU, slope)); return this; }
        /** A tanh. */
        public BlockBuilder tanh() { ops.add(new OpSpec.Act(Activation.TANH, 0f)); return this; }

        /** An exact GELU, x Phi(x). */
        public BlockBuilder gelu() { ops.add(new OpSpec.Act(Activation.GELU, 0f)); return this; }

        /** GELU's tanh approximation (JAX's default gelu, PyTorch's approximate='tanh'). */
        public BlockBuilder geluTanh() { ops.add(new OpSpec.Act(Activation.GELU_TANH, 0f)); return this; }
        /** A sigmoid. */
        public BlockBuilder sigmoid() { ops.add(new OpSpec.Act(Activation.SIGMOID, 0f)); return this; }
        /** Flattens all but the batch dimension. */
        public BlockBuilder flatten() { ops.add(new OpSpec.Flatten()); return this; }

        /** (x - mean[c]) / std[c] per channel, torchvision's Normalize (one mean and std: every value). */
        public BlockBuilder normalize(float[] mean, float[] std) { ops.add(new OpSpec.Normalize(mean, std)); return this; }
        /** Any op. */
        public BlockBuilder op(OpSpec op) { ops.add(op); return this; }
    }
}
