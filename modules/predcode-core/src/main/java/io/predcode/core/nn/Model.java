package io.predcode.core.nn;

import io.predcode.core.internal.Guard;
import io.predcode.spi.Backend;
import io.predcode.spi.Scope;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A model bound to a backend: its blocks and their parameters (named as PyTorch's state_dict).
 * Owns the parameter memory; close it to free it. Holds no global state: two models on two
 * backends train independently on two threads.
 */
public final class Model implements AutoCloseable {
    private final ModelSpec spec;
    private final int[] inputShape;
    private final int[][] shapes;
    private final Backend backend;
    private final Scope scope;
    private final List<Block> blocks = new ArrayList<>();
    /** {@link #blocks}, read-only: one view, since the engine asks for it many times a step. */
    private final List<Block> blockView = Collections.unmodifiableList(blocks);
    private final Map<String, Parameter> parameters = new LinkedHashMap<>();
    private final Guard guard;

    private Model(ModelSpec spec, int[] inputShape, Backend backend) {
        this.shapes = spec.activationShapes(inputShape); // shapes first: their errors name the block and op
        checkFits(spec, backend);
        this.spec = spec;
        this.inputShape = inputShape.clone();
        this.backend = backend;
        this.scope = new Scope(backend);
        this.guard = new Guard("Model@" + Integer.toHexString(System.identityHashCode(this)) + " (" + spec.depth() + " blocks)", scope::close, backend);
        try {
            for (int b = 0; b < spec.depth(); b++) {
                List<Op> ops = new ArrayList<>();
                int[] s = shapes[b];
                List<OpSpec> specs = spec.blocks().get(b);
                for (int k = 0; k < specs.size(); k++) {
                    Op op = Ops.create(specs.get(k), s, b + "." + k + ".", scope);
                    ops.add(op);
                    for (Parameter p : op.parameters()) parameters.put(p.name(), p);
                    s = op.out;
                }
                blocks.add(new Block(b, Ops.poolBeforeRelu(ops), shapes[b], shapes[b + 1]));
            }
        } catch (RuntimeException e) {
            scope.close();
            throw e;
        }
    }

    /**
     * Refuses, before allocating anything, a model whose parameters and their updates would not fit
     * in what the backend has left (a 64 -> 10^9 linear layer would otherwise be allocated until the
     * machine kills the process).
     */
    private static void checkFits(ModelSpec spec, Backend backend) {
        long floats = spec.parameterCount();
        long bytes = floats <= Long.MAX_VALUE / 8 ? floats * 8 : Long.MAX_VALUE; // the parameters and their updates
        io.predcode.core.internal.Memory.require(backend, bytes, String.format(java.util.Locale.ROOT, "the model (%,d parameters and their updates)", floats));
    }

    /** A model with PyTorch's default initialisation from {@code seed}; the spec must name its input shape. */
    public static Model create(ModelSpec spec, Backend backend, long seed) {
        if (spec.input() == null)
            throw new IllegalArgumentException("the model spec has no \"input\" shape; pass one, e.g. Model.create(spec, new int[]{1, 28, 28}, backend, seed)");
        return create(spec, spec.input(), backend, seed);
    }

    /** A model with PyTorch's default initialisation from {@code seed}, for inputs of {@code inputShape}. */
    public static Model create(ModelSpec spec, int[] inputShape, Backend backend, long seed) {
        // In the backend's turn: some ops upload constants as they are made (normalize's), beside a Predictor's threads perhaps.
        return backend.inTurn(() -> {
            Model m = new Model(spec, inputShape, backend);
            m.initialize(seed);
            return m;
        });
    }

    /**
     * PyTorch's default for Linear and Conv2d: weight from kaiming_uniform(a = sqrt(5)) and bias from
     * U(-1/sqrt(fan_in), 1/sqrt(fan_in)); both bounds come to 1/sqrt(fan_in). Drawn on the backend
     * from a counter-based generator, so every backend initialises identically.
     */
    public void initialize(long seed) {
        guard.enter();
        try {
            initializeUnguarded(seed);
        } finally {
            guard.exit();
        }
    }

    private void initializeUnguarded(long seed) {
        int i = 0;
        for (int b = 0; b < spec.depth(); b++)
            for (OpSpec op : spec.blocks().get(b)) {
                if (op.fanIn() == 0) continue;
                float bound = (float) (1.0 / Math.sqrt(op.fanIn()));
                for (Parameter p : parametersOf(b, op)) backend.randomUniform(p.value(), -bound, bound, seed * 1_000_003L + i++);
            }
    }

    private List<Parameter> parametersOf(int block, OpSpec op) {
        int k = spec.blocks().get(block).indexOf(op);
        List<Parameter> ps = new ArrayList<>();
        for (String name : op.parameterShapes().keySet()) ps.add(parameters.get(block + "." + k + "." + name));
        return ps;
    }

    /** The spec this model was built from. */
    public ModelSpec spec() { return spec; }

    /** The backend holding the parameters. */
    public Backend backend() { return backend; }

    /** The blocks, in order. */
    public List<Block> blocks() { return blockView; }

    /** The number of blocks (PC ops). */
    public int depth() { return blocks.size(); }

    /** Per-sample input shape. */
    public int[] inputShape() { return inputShape.clone(); }

    /** Per-sample shape of activation l (0 = input, depth() = output). */
    public int[] activationShape(int l) { return shapes[l].clone(); }

    /** The parameters by PyTorch state_dict name. */
    public Map<String, Parameter> parameters() { return Collections.unmodifiableMap(parameters); }

    /** The number of learnable floats. */
    public long parameterCount() { return parameters.values().stream().mapToLong(Parameter::size).sum(); }

    /** Copies every parameter to the host, by state_dict name. */
    public Map<String, float[]> parameterValues() { return download(Parameter::value); }

    /** Copies every parameter update (.grad) to the host, by state_dict name. */
    public Map<String, float[]> gradientValues() { return download(Parameter::grad); }

    private Map<String, float[]> download(java.util.function.Function<Parameter, io.predcode.spi.Tensor> which) {
        guard.enter();
        try {
            Map<String, float[]> out = new LinkedHashMap<>();
            parameters.forEach((name, p) -> out.put(name, backend.download(which.apply(p))));
            return out;
        } finally {
            guard.exit();
        }
    }

    /** Loads parameters by state_dict name; every parameter must be given with its exact size. */
    public void loadParameters(Map<String, float[]> values, String source) {
        for (String name : parameters.keySet())
            if (!values.containsKey(name)) throw new IllegalArgumentException(source + ": parameter '" + name + "' is missing (model has " + parameters.keySet() + ")");
        for (Map.Entry<String, float[]> e : values.entrySet()) {
            Parameter p = parameters.get(e.getKey());
            if (p == null) throw new IllegalArgumentException(source + ": parameter '" + e.getKey() + "' is not in this model (model has " + parameters.keySet() + ")");
            if (e.getValue().length != p.size())
                throw new IllegalArgumentException(source + ": parameter '" + e.getKey() + "' has " + e.getValue().length + " values, the model's " + Arrays.toString(p.shape()) + " needs " + p.size());
        }
        guard.enter();
        try {
            values.forEach((name, v) -> backend.upload(v, parameters.get(name).value()));
        } finally {
            guard.exit();
        }
    }

    /**
     * The model's single-user lease: the engine holds it during every call, so a model used by two
     * threads at once throws instead of mixing their work, and a close during a call waits for it.
     */
    public Guard guard() { return guard; }

    /** Frees the parameters. Idempotent; when another thread is inside a call on the model, they are freed as that call returns. */
    @Override public void close() { guard.close(); }
}
