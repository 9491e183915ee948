package io.predcode.core.nn;

import io.predcode.core.json.JsonException;
import io.predcode.core.json.JsonFields;
import io.predcode.spi.Activation;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One op of a block, as written in a model spec (the {@code model} field of the golden files).
 * Shapes are per sample (no batch dimension); images are [channels, height, width].
 */
public sealed interface OpSpec {
    /** The op's name in JSON: linear, conv2d, maxpool2d, avgpool2d, relu, leaky_relu, tanh, sigmoid, gelu, gelu_tanh, flatten, normalize. */
    String op();

    /** Output shape for a given input shape; {@code where} ("block 2, op 0") goes into errors. */
    int[] outputShape(int[] input, String where);

    /** Parameter shapes in state_dict order (weight, then bias). */
    default Map<String, int[]> parameterShapes() { return Map.of(); }

    /** Inputs summed over by one output (for PyTorch's default initialisation); 0 when parameter-free. */
    default int fanIn() { return 0; }

    /** Multiply-adds per sample in the forward pass, for FLOP counts. */
    default long macs(int[] input) { return 0; }

    /** The op as it appears in a spec's JSON. */
    Map<String, Object> toJson();

    /**
     * A float as the double its shortest decimal is (0.286f as 0.286, not 0.28600001335144043), for spec files people
     * read; the float's own value where that decimal would not read back as the same float.
     */
    private static double shortest(float v) {
        double d = Double.parseDouble(Float.toString(v));
        return (float) d == v ? d : v;
    }

    /** A linear layer, PyTorch's Linear: weight [out, in]. */
    record Linear(int in, int out, boolean bias) implements OpSpec {
        /** Checks the sizes: each at least 1. */
        public Linear { atLeast("linear", 1, "in", in, "out", out); }
        public String op() { return "linear"; }
        public int[] outputShape(int[] input, String where) {
            if (input.length != 1)
                throw new IllegalArgumentException(where + " (linear): in=" + in + " expects a flat input, got shape " + java.util.Arrays.toString(input)
                        + " (" + java.util.Arrays.stream(input).asLongStream().reduce(1, (a, b) -> a * b) + " values); add a flatten op before it");
            if (input[0] != in)
                throw new IllegalArgumentException(where + " (linear): in=" + in + " but its input has " + input[0] + " features");
            return new int[]{out};
        }
        public Map<String, int[]> parameterShapes() { return bias ? ordered("weight", new int[]{out, in}, "bias", new int[]{out}) : ordered("weight", new int[]{out, in}); }
        public int fanIn() { return in; }
        public long macs(int[] input) { return (long) in * out; }
        public Map<String, Object> toJson() { return json("op", op(), "in", in, "out", out, "bias", bias); }
    }

    /** A 2-D convolution, PyTorch's Conv2d: weight [out, in, kh, kw]. */
    record Conv2d(int in, int out, int kh, int kw, int sh, int sw, int ph, int pw, boolean bias) implements OpSpec {
        /** Checks the sizes: channels, kernel and stride at least 1, padding at least 0. */
        public Conv2d {
            atLeast("conv2d", 1, "in", in, "out", out, "kernel height", kh, "kernel width", kw, "stride height", sh, "stride width", sw);
            atLeast("conv2d", 0, "padding height", ph, "padding width", pw);
        }
        public String op() { return "conv2d"; }
        public int[] outputShape(int[] input, String where) {
            if (input.length != 3)
                throw new IllegalArgumentException(where + " (conv2d): expects an image [channels, height, width], got shape " + java.util.Arrays.toString(input));
            if (input[0] != in) throw new IllegalArgumentException(where + " (conv2d): in=" + in + " but its input has " + input[0] + " channels");
            // In long: padding or kernels near 2^30 would overflow int and give a wrong (even positive) size.
            long ph2 = input[1] + 2L * ph, pw2 = input[2] + 2L * pw;
            if (ph2 < kh || pw2 < kw)
                throw new IllegalArgumentException(where + " (conv2d): kernel " + kh + "x" + kw + " is larger than the padded input " + ph2 + "x" + pw2);
            if (ph2 * pw2 > Integer.MAX_VALUE || (long) in * kh * kw > Integer.MAX_VALUE)
                throw new IllegalArgumentException(where + " (conv2d): padded input " + ph2 + "x" + pw2 + " with kernel " + in + "x" + kh + "x" + kw
                        + " is too large (a padded plane and a kernel window hold at most 2^31-1 values)");
            return new int[]{out, (int) ((ph2 - kh) / sh + 1), (int) ((pw2 - kw) / sw + 1)};
        }
        public Map<String, int[]> parameterShapes() {
            int[] w = {out, in, kh, kw};
            return bias ? ordered("weight", w, "bias", new int[]{out}) : ordered("weight", w);
        }
        public int fanIn() { return in * kh * kw; }
        public long macs(int[] input) { int[] o = outputShape(input, ""); return (long) out * o[1] * o[2] * in * kh * kw; }
        public Map<String, Object> toJson() {
            return json("op", op(), "in", in, "out", out, "kernel", List.of(kh, kw), "stride", List.of(sh, sw), "padding", List.of(ph, pw), "bias", bias);
        }
    }

    /** Max or average pooling, no padding. */
    record Pool2d(boolean max, int kh, int kw, int sh, int sw) implements OpSpec {
        /** Checks the window and stride: each at least 1. */
        public Pool2d { atLeast(max ? "maxpool2d" : "avgpool2d", 1, "kernel height", kh, "kernel width", kw, "stride height", sh, "stride width", sw); }
        public String op() { return max ? "maxpool2d" : "avgpool2d"; }
        public int[] outputShape(int[] input, String where) {
            if (input.length != 3)
                throw new IllegalArgumentException(where + " (" + op() + "): expects an image [channels, height, width], got shape " + java.util.Arrays.toString(input));
            if (input[1] < kh || input[2] < kw)
                throw new IllegalArgumentException(where + " (" + op() + "): window " + kh + "x" + kw + " is larger than the input " + input[1] + "x" + input[2]);
            return new int[]{input[0], (input[1] - kh) / sh + 1, (input[2] - kw) / sw + 1};
        }
        public Map<String, Object> toJson() { return json("op", op(), "kernel", List.of(kh, kw), "stride", List.of(sh, sw)); }
    }

    /** An elementwise nonlinearity; {@code slope} is leaky_relu's negative slope (0 otherwise). */
    record Act(Activation function, float slope) implements OpSpec {
        /** Checks the slope: a finite number. */
        public Act {
            if (!Float.isFinite(slope)) throw new IllegalArgumentException(function.id() + ": slope must be a finite number, got " + slope);
        }
        public String op() { return function.id(); }
        public int[] outputShape(int[] input, String where) { return input.clone(); }
        public Map<String, Object> toJson() { return function == Activation.LEAKY_RELU ? json("op", op(), "slope", shortest(slope)) : json("op", op()); }
    }

    /**
     * (x - mean[c]) / std[c] for each channel c, as torchvision's {@code Normalize}: channels are dim 0
     * of the per-sample shape ([C, H, W] images; each value of a flat [F] input); one mean and std apply to every value. The numbers are
     * part of the model (a checkpoint carries them, serving applies them), not trained parameters.
     *
     * @param mean per channel, or one for all
     * @param std  per channel, or one for all; each finite and &gt; 0
     */
    record Normalize(float[] mean, float[] std) implements OpSpec {
        /** Checks the numbers: as many means as stds, finite, stds &gt; 0. */
        public Normalize {
            if (mean.length == 0 || mean.length != std.length)
                throw new IllegalArgumentException("normalize: mean and std must be lists of the same length >= 1, got " + mean.length + " and " + std.length);
            for (int c = 0; c < mean.length; c++)
                if (!Float.isFinite(mean[c]) || !Float.isFinite(std[c]) || !(std[c] > 0))
                    throw new IllegalArgumentException("normalize: channel " + c + " has mean " + mean[c] + " and std " + std[c] + "; expected finite numbers, std > 0");
            mean = mean.clone();
            std = std.clone();
        }
        public String op() { return "normalize"; }
        public int[] outputShape(int[] input, String where) {
            // Flat inputs [F] (a table's features) take one mean and std per value: each its own channel.
            if (mean.length != 1 && input[0] != mean.length)
                throw new IllegalArgumentException(where + " (normalize): " + mean.length + " means and stds, one per channel (or per value of a flat input), but its input has shape "
                        + java.util.Arrays.toString(input) + "; give one mean and std for all values");
            return input.clone();
        }
        /** The values one mean and std apply to: all channels as one where a single pair is given. */
        public int channels() { return mean.length; }
        /** The means, a copy. */
        public float[] mean() { return mean.clone(); }
        /** The standard deviations, a copy. */
        public float[] std() { return std.clone(); }
        @Override public boolean equals(Object o) {
            return o instanceof Normalize n && java.util.Arrays.equals(mean, n.mean) && java.util.Arrays.equals(std, n.std);
        }
        @Override public int hashCode() { return 31 * java.util.Arrays.hashCode(mean) + java.util.Arrays.hashCode(std); }
        @Override public String toString() { return "Normalize[mean=" + java.util.Arrays.toString(mean) + ", std=" + java.util.Arrays.toString(std) + "]"; }
        public Map<String, Object> toJson() { return json("op", op(), "mean", numbers(mean), "std", numbers(std)); }
        private static List<Object> numbers(float[] a) {
            List<Object> l = new java.util.ArrayList<>();
            for (float v : a) l.add(shortest(v));
            return l;
        }
    }

    /** Keeps dim 0 (the batch) and flattens the rest, as torch.nn.Flatten. */
    record Flatten() implements OpSpec {
        public String op() { return "flatten"; }
        public int[] outputShape(int[] input, String where) {
            long n = 1;
            for (int d : input) n *= d; // each dim is an int and the product so far fits an int: no long overflow
            if (n > Integer.MAX_VALUE)
                throw new IllegalArgumentException(where + " (flatten): " + n + " values per sample (" + java.util.Arrays.toString(input) + "); at most 2^31-1");
            return new int[]{(int) n};
        }
        public Map<String, Object> toJson() { return json("op", op()); }
    }

    /** Refuses any of the {@code (name, value)} pairs below {@code min}, naming the op and the size. */
    private static void atLeast(String op, int min, Object... namesAndValues) {
        for (int i = 0; i < namesAndValues.length; i += 2)
            if ((int) namesAndValues[i + 1] < min)
                throw new IllegalArgumentException(op + ": " + namesAndValues[i] + " must be >= " + min + ", got " + namesAndValues[i + 1]);
    }

    /** Reads one op object; {@code where} names the file, block and op in errors. */
    static OpSpec parse(JsonFields f) {
        String op = f.string("op");
        onlyKnownKeys(f, op);
        try {
            return make(f, op);
        } catch (JsonException e) {
            throw e;
        } catch (IllegalArgumentException e) { // an op's own check (a slope of 1e300 is infinite in float): named by the file and field
            throw new JsonException(f.source() + ": field '" + f.path() + "': " + e.getMessage());
        }
    }

    private static OpSpec make(JsonFields f, String op) {
        return switch (op) {
            case "linear" -> new Linear(f.integer("in", 1), f.integer("out", 1), !f.has("bias") || f.bool("bias"));
            case "conv2d" -> {
                int[] k = f.ints("kernel", 2, 1);
                int[] s = f.has("stride") ? f.ints("stride", 2, 1) : new int[]{1, 1};
                int[] p = f.has("padding") ? f.ints("padding", 2, 0) : new int[]{0, 0};
                yield new Conv2d(f.integer("in", 1), f.integer("out", 1), k[0], k[1], s[0], s[1], p[0], p[1], !f.has("bias") || f.bool("bias"));
            }
            case "maxpool2d", "avgpool2d" -> {
                int[] k = f.ints("kernel", 2, 1);
                int[] s = f.has("stride") ? f.ints("stride", 2, 1) : k;
                yield new Pool2d(op.equals("maxpool2d"), k[0], k[1], s[0], s[1]);
            }
            case "flatten" -> new Flatten();
            case "normalize" -> {
                yield new Normalize(floats(f, "mean"), floats(f, "std"));
            }
            default -> {
                Activation a = Activation.byId(op);
                if (a == null)
                    throw new JsonException(f.source() + ": field '" + f.path() + ".op' is '" + op
                            + "'; expected one of linear, conv2d, maxpool2d, avgpool2d, flatten, normalize, " + Activation.ids());
                // Only leaky_relu has a parameter: its negative slope, PyTorch's default 0.01.
                yield new Act(a, a != Activation.LEAKY_RELU ? 0f : f.has("slope") ? (float) f.number("slope") : 0.01f);
            }
        };
    }

    /**
     * Refuses a key the op does not take, naming it and the ones it does: a misspelt {@code stride} or PyTorch's
     * {@code negative_slope} would otherwise leave the op at its default without a word.
     */
    private static void onlyKnownKeys(JsonFields f, String op) {
        List<String> known = switch (op) {
            case "linear" -> List.of("op", "in", "out", "bias");
            case "conv2d" -> List.of("op", "in", "out", "kernel", "stride", "padding", "bias");
            case "maxpool2d", "avgpool2d" -> List.of("op", "kernel", "stride");
            case "normalize" -> List.of("op", "mean", "std");
            case "leaky_relu" -> List.of("op", "slope");
            default -> Activation.byId(op) != null || op.equals("flatten") ? List.of("op") : null; // null: an unknown op, refused next by name
        };
        if (known == null) return;
        for (String key : f.map().keySet())
            if (!known.contains(key))
                throw new JsonException(f.source() + ": field '" + f.path() + "' (" + op + ") has the key '" + key + "', which " + op + " does not take; expected "
                        + String.join(", ", known) + (key.equals("negative_slope") ? " (predcode's 'slope' is PyTorch's negative_slope)" : ""));
    }

    /** A list of numbers, at most {@link #MAX_CHANNELS} of them. */
    private static float[] floats(JsonFields f, String key) {
        List<Object> l = f.list(key);
        if (l.isEmpty() || l.size() > MAX_CHANNELS)
            throw new JsonException(f.source() + ": field '" + f.path() + "." + key + "' (normalize) has " + l.size() + " numbers; expected 1 to " + MAX_CHANNELS);
        float[] a = new float[l.size()];
        for (int i = 0; i < a.length; i++) {
            if (!(l.get(i) instanceof Number n))
                throw new JsonException(f.source() + ": field '" + f.path() + "." + key + "[" + i + "]' (normalize) is not a number");
            a[i] = n.floatValue();
        }
        return a;
    }

    /** The most channels a normalize op takes: more would be a data set, not a layer. */
    int MAX_CHANNELS = 65536;

    private static Map<String, Object> json(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put((String) kv[i], kv[i + 1] instanceof Integer n ? (double) n : kv[i + 1]);
        return m;
    }

    private static Map<String, int[]> ordered(Object... kv) {
        Map<String, int[]> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put((String) kv[i], (int[]) kv[i + 1]);
        return m;
    }
}
