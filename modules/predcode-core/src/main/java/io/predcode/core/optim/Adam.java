package io.predcode.core.optim;

import io.predcode.core.nn.Model;
import io.predcode.spi.Backend;
import io.predcode.spi.Tensor;

/**
 * torch.optim.Adam (not AMSGrad), bias-corrected, L2 weight decay added to the gradient; or with
 * {@link #adamW} torch.optim.AdamW, whose decay shrinks the parameters apart from the gradient.
 */
public final class Adam extends StatefulOptimizer implements Optimizer.Recordable {
    private final float beta1, beta2, eps, weightDecay;
    private boolean decoupled;
    private float lr;
    private final Tensor[] m, v;

    /** PyTorch's defaults: betas (0.9, 0.999), eps 1e-8, no weight decay. */
    public Adam(Model model, float lr) { this(model, lr, 0.9f, 0.999f, 1e-8f, 0f); }

    /** Adam with every hyperparameter given (PyTorch's torch.optim.Adam; weightDecay as its L2 term). */
    public Adam(Model model, float lr, float beta1, float beta2, float eps, float weightDecay) {
        super(model, 2);
        checkRate("adam learning rate", lr, false);
        if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) throw new IllegalArgumentException("adam betas must be in [0, 1), got " + beta1 + ", " + beta2);
        checkRate("adam eps", eps, false);
        checkRate("adam weight decay", weightDecay, true);
        this.lr = lr;
        this.beta1 = beta1;
        this.beta2 = beta2;
        this.eps = eps;
        this.weightDecay = weightDecay;
        m = new Tensor[params.size()];
        v = new Tensor[params.size()];
        for (int i = 0; i < params.size(); i++) {
            m[i] = stateFor(params.get(i), "exp_avg");
            v[i] = stateFor(params.get(i), "exp_avg_sq");
        }
    }

    /**
     * torch.optim.AdamW: before each Adam step (without L2 term) the parameters shrink by lr * weightDecay.
     *
     * @param model       the model
     * @param lr          the learning rate
     * @param weightDecay the decoupled decay (PyTorch's default is 0.01)
     * @return the optimizer
     */
    public static Adam adamW(Model model, float lr, float weightDecay) { return of(model, lr, 0.9f, 0.999f, 1e-8f, weightDecay, true); }

    /** Adam or AdamW with every hyperparameter given. */
    static Adam of(Model model, float lr, float beta1, float beta2, float eps, float weightDecay, boolean decoupled) {
        Adam a = new Adam(model, lr, beta1, beta2, eps, weightDecay);
        a.decoupled = decoupled;
        return a;
    }

    @Override public String name() { return decoupled ? "adamw" : "adam"; }

    @Override public String settings() { return Optimizer.settings(name(), lr, beta1, beta2, eps, weightDecay); }

    @Override public float learningRate() { return lr; }

    @Override public void learningRate(float lr) {
        checkRate("adam learning rate", lr, false);
        this.lr = lr;
    }

    @Override public void step() {
        steps++;
        eachParameter(i -> be.adamStep(params.get(i).value(), params.get(i).grad(), m[i], v[i], lr, beta1, beta2, eps, l2(), decay(), steps));
    }

    /** The L2 term added to the gradient: Adam's weight decay; none for AdamW. */
    private float l2() { return decoupled ? 0f : weightDecay; }

    /** AdamW shrinks the parameters by 1 - lr * weightDecay before the step, in the step's own pass; 1 leaves them. */
    private float decay() { return decoupled && weightDecay > 0 ? 1f - lr * weightDecay : 1f; }

    @Override public int scalarsPerStep() { return Backend.ADAM_SCALARS; }

    @Override public void nextScalars(int count, float[] into) {
        for (int k = 0; k < count; k++) Backend.adamScalars(lr, beta1, beta2, decay(), steps + 1 + k, into, k * Backend.ADAM_SCALARS);
    }

    /** Every parameter's step in one op (on a GPU one kernel, not one a parameter). */
    @Override public void step(Tensor scalars, long at, Tensor guard, long guardIndex, int guardCount) {
        be.adamSteps(values, grads, m, v, scalars, at, guard, guardIndex, guardCount, beta1, beta2, eps, l2());
    }

    @Override public void stepsTaken(int count) { steps += count; }
}
