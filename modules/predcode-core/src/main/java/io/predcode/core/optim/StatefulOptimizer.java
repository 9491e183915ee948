package io.predcode.core.optim;

import io.predcode.core.nn.Model;
import io.predcode.core.nn.Parameter;
import io.predcode.spi.Backend;
import io.predcode.spi.Scope;
import io.predcode.spi.Tensor;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Shared bookkeeping: per-parameter state tensors with names, the step count, save and load. */
abstract class StatefulOptimizer implements Optimizer {
    private final Model model;
    final Backend be;
    final List<Parameter> params;
    /** The parameters' values and gradients, in the order of params (for the ops that step them all at once). */
    final Tensor[] values, grads;
    final Scope scope;
    final Map<String, Tensor> stateTensors = new LinkedHashMap<>();
    long steps;

    /** {@code perParameter}: the state tensors each parameter gets (Adam 2, SGD with momentum 1), checked against memory first. */
    StatefulOptimizer(Model model, int perParameter) {
        this.model = model;
        this.be = model.backend();
        this.params = new ArrayList<>(model.parameters().values());
        values = params.stream().map(Parameter::value).toArray(Tensor[]::new);
        grads = params.stream().map(Parameter::grad).toArray(Tensor[]::new);
        io.predcode.core.internal.Memory.require(be, perParameter * 4L * model.parameterCount(), "the optimizer's state (" + perParameter + " copies of the parameters)");
        this.scope = new Scope(be);
        sizes = params.stream().mapToDouble(Parameter::size).toArray();
    }

    @Override public Model model() { return model; }

    /** The parameters' sizes: the work of each one's step. */
    private final double[] sizes;

    /**
     * Runs a step for every parameter, each an independent branch ({@link Backend#branches}, which takes the largest
     * first): on a GPU side by side rather than one after another (a CPU runs them in order unless they balance).
     */
    void eachParameter(java.util.function.IntConsumer step) {
        Runnable[] branches = new Runnable[sizes.length];
        for (int i = 0; i < sizes.length; i++) {
            int k = i;
            branches[i] = () -> step.accept(k);
        }
        be.inTurn(() -> be.branches(sizes, branches)); // a step called on its own, beside a Predictor's threads
    }

    Tensor stateFor(Parameter p, String suffix) {
        Tensor t = scope.allocate(p.shape());
        stateTensors.put(p.name() + "." + suffix, t);
        return t;
    }

    static void checkRate(String what, float v, boolean allowZero) {
        if (!Float.isFinite(v) || v < 0 || (!allowZero && v == 0)) throw new IllegalArgumentException(what + " must be a finite number " + (allowZero ? ">= 0" : "> 0") + ", got " + v);
    }

    private Snapshot snapshot;

    /**
     * The parameters' and the state's copy ({@link Optimizer.Recordable#snapshot}), made on first use and freed with
     * the optimizer.
     *
     * @return the snapshot
     */
    public Snapshot snapshot() {
        if (snapshot == null) {
            List<Tensor> live = new ArrayList<>(List.of(values));
            live.addAll(stateTensors.values());
            long floats = live.stream().mapToLong(Tensor::size).sum();
            io.predcode.core.internal.Memory.require(be, 4L * floats, "iPC's copy of the parameters and the optimizer's state");
            snapshot = new Snapshot(be, scope, live.toArray(Tensor[]::new));
        }
        return snapshot;
    }

    @Override public long steps() { return steps; }

    @Override public Map<String, float[]> state() {
        Map<String, float[]> out = new LinkedHashMap<>();
        be.inTurn(() -> stateTensors.forEach((name, t) -> out.put(name, be.download(t))));
        out.put("step", new float[]{steps});
        return out;
    }

    @Override public void loadState(Map<String, float[]> state, String source) {
        for (Map.Entry<String, Tensor> e : stateTensors.entrySet()) {
            float[] v = state.get(e.getKey());
            if (v == null) throw new IllegalArgumentException(source + ": optimizer state '" + e.getKey() + "' is missing");
            if (v.length != e.getValue().size())
                throw new IllegalArgumentException(source + ": optimizer state '" + e.getKey() + "' has " + v.length + " values, expected " + e.getValue().size());
        }
        float[] step = state.get("step");
        if (step == null || step.length != 1) throw new IllegalArgumentException(source + ": optimizer state 'step' is missing");
        be.inTurn(() -> stateTensors.forEach((name, t) -> be.upload(state.get(name), t)));
        steps = (long) step[0];
    }

    @Override public void close() { scope.close(); }
}
