package io.predcode.core.optim;

import io.predcode.core.nn.Model;
import io.predcode.spi.Backend;
import io.predcode.spi.Tensor;

/** torch.optim.SGD: momentum (buffer = grad on the first step), dampening, weight decay, Nesterov. */
public final class Sgd extends StatefulOptimizer implements Optimizer.Recordable {
    private final float momentum, dampening, weightDecay;
    private float lr;
    private final boolean nesterov;
    private final Tensor[] buffers;

    /** SGD with momentum and weight decay. */
    public Sgd(Model model, float lr, float momentum, float weightDecay) { this(model, lr, momentum, 0f, weightDecay, false); }

    /** SGD with every option of PyTorch's torch.optim.SGD. */
    public Sgd(Model model, float lr, float momentum, float dampening, float weightDecay, boolean nesterov) {
        super(model, momentum > 0 ? 1 : 0);
        checkRate("sgd learning rate", lr, false);
        checkRate("sgd momentum", momentum, true);
        checkRate("sgd weight decay", weightDecay, true);
        if (nesterov && (momentum == 0 || dampening != 0)) throw new IllegalArgumentException("Nesterov momentum needs momentum > 0 and zero dampening");
        this.lr = lr;
        this.momentum = momentum;
        this.dampening = dampening;
        this.weightDecay = weightDecay;
        this.nesterov = nesterov;
        buffers = new Tensor[params.size()];
        if (momentum != 0) for (int i = 0; i < params.size(); i++) buffers[i] = stateFor(params.get(i), "momentum_buffer");
    }

    @Override public String name() { return "sgd"; }

    @Override public String settings() { return Optimizer.settings(name(), lr, momentum, dampening, weightDecay, nesterov ? 1 : 0); }

    @Override public float learningRate() { return lr; }

    @Override public void learningRate(float lr) {
        checkRate("sgd learning rate", lr, false);
        this.lr = lr;
    }

    @Override public void step() {
        boolean first = steps == 0;
        eachParameter(i -> be.sgdStep(params.get(i).value(), params.get(i).grad(), buffers[i], lr, momentum, dampening, weightDecay, nesterov, first));
        steps++;
    }

    @Override public int scalarsPerStep() { return Backend.SGD_SCALARS; }

    @Override public void nextScalars(int count, float[] into) {
        for (int k = 0; k < count; k++) Backend.sgdScalars(lr, steps + k == 0, into, k * Backend.SGD_SCALARS);
    }

    /** Every parameter's step in one op (on a GPU one kernel, not one a parameter). */
    @Override public void step(Tensor scalars, long at, Tensor guard, long guardIndex, int guardCount) {
        be.sgdSteps(values, grads, buffers, scalars, at, guard, guardIndex, guardCount, momentum, dampening, weightDecay, nesterov);
    }

    @Override public void stepsTaken(int count) { steps += count; }
}
