package io.predcode.core.nn;

import io.predcode.spi.Activation;
import io.predcode.spi.Backend;
import io.predcode.spi.BeliefStep;
import io.predcode.spi.Scope;
import io.predcode.spi.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * One predictive-coding layer f_l: a few ops applied in order (e.g. conv2d, relu, maxpool2d).
 * The engine only ever asks a block for f_l(x) and for vector-Jacobian products at the x of the last
 * forward, so what the ops keep between the two lives in a {@link Tape}, one per place the block is
 * evaluated (the feedforward pass, a relaxation sweep).
 */
public final class Block {
    private final int index;
    private final List<Op> ops;
    private final int[] in, out;
    /** The index of the last real (non-view) op, or -1 for a block of views. */
    private final int lastReal;

    Block(int index, List<Op> ops, int[] in, int[] out) {
        this.index = index;
        this.ops = List.copyOf(ops);
        this.in = in;
        this.out = out;
        int i = ops.size() - 1;
        while (i >= 0 && ops.get(i).isView()) i--;
        this.lastReal = i;
    }

    /** This block's position in the model (0 = the first). */
    public int index() { return index; }

    /** Per-sample input and output shapes. */
    public int[] inputShape() { return in.clone(); }

    /** Per-sample output shape. */
    public int[] outputShape() { return out.clone(); }

    /** The block's parameters, in op order. */
    public List<Parameter> parameters() {
        List<Parameter> ps = new ArrayList<>();
        for (Op l : ops) ps.addAll(l.parameters());
        return ps;
    }

    /**
     * Activations and gradients for one evaluation point at one batch size. A tape for training also
     * keeps f' of each activation whose f' costs as much as f ({@link Activation#derivativeWorthKeeping}):
     * the forward writes it beside f in one pass, and every backward pass at that point (PC's
     * algorithms make several) multiplies by it instead of evaluating f' again. On a backend that
     * prefers short chains of ops ({@link Backend#prefersShortChains}: a GPU) it keeps every activation's
     * f': the error ops then form the error's pull-back through f' in their own pass, a kernel fewer in a
     * row each time, and PC's and iPC's belief steps fold into the feedback GEMMs of blocks of any activation.
     */
    public final class Tape {
        final Tensor[] acts, grads;
        /** derivatives[i + 1]: f'(acts[i]) for op i, where kept; every forward writes them. */
        final Tensor[] derivatives;
        final Tensor ownOutput;

        Tape(Scope scope, int batch, boolean keepDerivatives) {
            boolean keepEvery = keepDerivatives && scope.backend().prefersShortChains();
            int k = ops.size();
            acts = new Tensor[k + 1];
            grads = new Tensor[k + 1];
            derivatives = new Tensor[k + 1];
            boolean allViews = true;
            for (int i = 0; i < k; i++) {
                Op l = ops.get(i);
                allViews &= l.isView();
                if (!l.isView()) {
                    acts[i + 1] = scope.allocate(withBatch(batch, l.out));
                    if (i > 0) grads[i] = scope.allocate(withBatch(batch, l.in));
                    if (keepDerivatives && l instanceof Ops.ActivationOp a && (keepEvery || a.function.derivativeWorthKeeping()))
                        derivatives[i + 1] = scope.allocate(withBatch(batch, l.out));
                }
            }
            // A block of views alone would return its input's memory as its output; give it its own.
            ownOutput = allViews ? scope.allocate(withBatch(batch, out)) : null;
        }

        /** f_l(x) of the last forward. Its tensor may carry the pre-flatten shape; the data is the same. */
        public Tensor output() { return ownOutput != null ? ownOutput : acts[acts.length - 1]; }

        /** The block this tape belongs to. */
        public Block block() { return Block.this; }
    }

    /**
     * A tape for evaluating this block on {@code batch} samples, allocated in {@code scope}; with
     * {@code forTraining}, backward passes follow its forwards, and it keeps the derivatives worth keeping.
     */
    public Tape newTape(Scope scope, int batch, boolean forTraining) { return new Tape(scope, batch, forTraining); }

    /** Evaluates the block at {@code x} (which must stay unchanged until the tape's backward passes are done). */
    public void forward(Backend be, Tensor x, Tape t) {
        t.acts[0] = x;
        forwardOps(be, t);
        if (t.ownOutput != null) be.copy(x, t.ownOutput);
    }

    /** Runs the ops on the tape, from the input in {@code t.acts[0]}. */
    private void forwardOps(Backend be, Tape t) {
        for (int i = 0; i < ops.size(); i++) {
            Op l = ops.get(i);
            if (l.isView()) t.acts[i + 1] = t.acts[i];
            else if (l instanceof Ops.LinearOp linear && i + 1 < ops.size() && ops.get(i + 1) instanceof Ops.ActivationOp f) {
                // A linear op and the activation after it in one backend op: a GPU applies the bias and f in one kernel.
                linear.forward(be, f, t.acts[i], t.acts[i + 1], t.acts[i + 2], t.derivatives[i + 2]);
                i++;
            } else if (t.derivatives[i + 1] != null) ((Ops.ActivationOp) l).forward(be, t.acts[i], t.acts[i + 1], t.derivatives[i + 1]);
            else l.forward(be, t.acts[i], t.acts[i + 1]);
        }
    }

    /**
     * Evaluates the block at x = x0 + dx into tape t, as {@link #forward} does (for the backward passes at x), from its
     * feedforward tape {@code ff} at x0, and writes the change of its output less {@code minus} (where not null),
     * {@code dOut} = f_l(x0 + dx) - f_l(x0) - minus, op by op from dx ({@link Op#forwardIncrement}) without rounding
     * x0 + dx. A change far below f_l's magnitude so keeps its own precision, where f_l(x) - f_l(x0) in float32 would
     * carry an error of f_l's ulp: STRICT's prediction errors deep in a network, a millionth of the activations, are
     * such changes (less the predicted layer's displacement). The changes pass through the tape's gradient tensors,
     * which its backward passes overwrite later. With {@code withDelta}, where the block {@link #incrementFormsDelta},
     * also dOut f' into {@link #outputDerivativeGradient} in the output activation's pass, from which
     * {@link #backwardBelowOutput} finishes the backward pass of dOut: a STRICT sweep's feedback without a pass of its own
     * through the activation.
     */
    public void forwardIncrement(Backend be, Tape ff, Tensor x, Tensor dx, Tape t, Tensor minus, Tensor dOut, boolean withDelta) {
        t.acts[0] = x;
        if (t.ownOutput != null) { // a block of views
            be.copy(x, t.ownOutput);
            be.add(1f, dx, minus == null ? 0f : -1f, minus == null ? dx : minus, dOut);
            return;
        }
        incrementFrom(be, 0, ff, dx, t, minus, dOut, withDelta && incrementFormsDelta());
    }

    /** Whether {@link #forwardIncrement} can form dOut f' in its last pass: the block ends in an activation right after an affine op. */
    public boolean incrementFormsDelta() {
        int a = outputActivation();
        return a > 0 && ops.get(a - 1).affine();
    }

    /**
     * Ops {@code first}.. from the input in {@code t.acts[first]}, whose change from ff's is {@code dx}: the values into t,
     * the output's change less minus into dOut (and with {@code withDelta}, dOut f' as {@link #forwardIncrement} says).
     */
    private void incrementFrom(Backend be, int first, Tape ff, Tensor dx, Tape t, Tensor minus, Tensor dOut, boolean withDelta) {
        Tensor change = dx;
        for (int i = first; i < ops.size(); i++) {
            Op l = ops.get(i);
            if (l.isView()) {
                t.acts[i + 1] = t.acts[i];
                continue;
            }
            Tensor next = changeOf(t, i, dOut);
            if (l.affine()) {
                l.change(be, change, next);
                i = afterAffine(be, i, ff, t, minus, dOut, withDelta);
                next = changeOf(t, i, dOut);
            } else if (l instanceof Ops.ActivationOp f) {
                f.forwardIncrement(be, ff.acts[i], t.acts[i], change, t.acts[i + 1], t.derivatives[i + 1], i == lastReal ? minus : null, next);
            } else {
                l.forwardIncrement(be, ff.acts[i], ff.acts[i + 1], t.acts[i], change, t.acts[i + 1], t.derivatives[i + 1], next);
                if (i == lastReal && minus != null) be.axpby(-1f, minus, 1f, next);
            }
            change = next;
        }
    }

    /**
     * After affine op i wrote its output's change into {@link #changeOf}(t, i): its value y0 + dz, or where an activation
     * follows, that activation at the moved point with its change, in one backend op. Returns the last op it ran.
     */
    private int afterAffine(Backend be, int i, Tape ff, Tape t, Tensor minus, Tensor dOut, boolean withDelta) {
        Tensor dz = changeOf(t, i, dOut);
        if (i < lastReal && ops.get(i + 1) instanceof Ops.ActivationOp f) {
            boolean last = i + 1 == lastReal;
            // The delta overwrites dz (the output activation's input change, at outputDerivativeGradient) element by element.
            f.forwardIncrementAfterAffine(be, ff.acts[i + 1], dz, t.acts[i + 1], t.acts[i + 2], t.derivatives[i + 2], last ? minus : null,
                    changeOf(t, i + 1, dOut), last && withDelta ? dz : null);
            return i + 1;
        }
        be.add(1f, ff.acts[i + 1], 1f, dz, t.acts[i + 1]);
        if (i == lastReal && minus != null) be.axpby(-1f, minus, 1f, dz);
        return i;
    }

    /** Where op i's output change goes: the gradient tensor at the next real op's input (its shape), or dOut after the last. */
    private Tensor changeOf(Tape t, int i, Tensor dOut) {
        for (int j = i + 1; j < ops.size(); j++) if (!ops.get(j).isView()) return t.grads[j];
        return dOut;
    }

    /** Op i's VJP at the tape's point: through the derivative the forward kept, where it did. */
    private static void backwardOp(Backend be, Op l, int i, Tape t, Tensor dy, Tensor dx, float parameterScale) {
        Tensor derivative = t.derivatives[i + 1];
        if (derivative != null) ((Ops.ActivationOp) l).backward(be, derivative, dy, dx);
        else l.backward(be, t.acts[i], t.acts[i + 1], dy, dx, parameterScale);
    }

    /**
     * At the point of the tape's last forward: dx = J_x^T dy when {@code dx} is not null, and the
     * parameter gradients overwritten with {@code parameterScale} J_theta^T dy when {@code parameterScale} is
     * not 0 (1: the gradients; 1/B: their mean over a batch of B, scaled inside the ops that form them).
     */
    public void backward(Backend be, Tape t, Tensor dy, Tensor dx, float parameterScale) {
        backwardFrom(be, t, ops.size() - 1, dy, dx, parameterScale);
    }

    /**
     * f' of the block's output activation as the tape's last forward kept it: where the block's last real op
     * is an activation whose f' the tape keeps, with a real op before it (views aside). Otherwise null. With it,
     * dy * f' may be formed in another op's pass, into {@link #outputDerivativeGradient}, and the backward pass
     * finished by {@link #backwardBelowOutput}.
     */
    public Tensor outputDerivative(Tape t) {
        int a = outputActivation();
        return a > 0 ? t.derivatives[a + 1] : null;
    }

    /** Where dy * {@link #outputDerivative} goes: the gradient at the output activation's input. */
    public Tensor outputDerivativeGradient(Tape t) { return t.grads[outputActivation()]; }

    /** {@link #backward} from dy * f' already in {@link #outputDerivativeGradient}: the ops below the output activation. */
    public void backwardBelowOutput(Backend be, Tape t, Tensor dx, float parameterScale) {
        int a = outputActivation();
        backwardFrom(be, t, a - 1, t.grads[a], dx, parameterScale);
    }

    /**
     * Where the block is a linear op and then an activation whose f' tape t keeps (views aside): evaluates it at x
     * into t, as {@link #forward}, and writes the prediction error of the layer it predicts, error = (f_l(x) - vhat)
     * - displacement, with error * f' into {@link #outputDerivativeGradient}, in one backend op
     * ({@link Backend#pcLinearPredictionError}); {@link #backwardBelowOutput} then finishes the backward pass from
     * that error. Any other block: does nothing and returns false.
     */
    public boolean forwardWithError(Backend be, Tensor x, Tape t, Tensor vhat, Tensor displacement, Tensor error) {
        return forwardWithError(be, x, t, vhat, displacement, error, null);
    }

    /** As {@link #forwardWithError(Backend, Tensor, Tape, Tensor, Tensor, Tensor)}, and where {@code step} is not null the predicted layer's displacement step ({@link BeliefStep}) in the same op. */
    public boolean forwardWithError(Backend be, Tensor x, Tape t, Tensor vhat, Tensor displacement, Tensor error, BeliefStep step) {
        Ops.LinearOp linear = linearBeforeActivation(t);
        if (linear == null) return false;
        int a = outputActivation();
        t.acts[0] = x;
        for (int i = 0; i < a - 1; i++) t.acts[i + 1] = t.acts[i];
        linear.forward(be, (Ops.ActivationOp) ops.get(a), t.acts[a - 1], t.acts[a], t.acts[a + 1], t.derivatives[a + 1], vhat, displacement, error, t.grads[a], step);
        for (int i = a + 1; i < ops.size(); i++) t.acts[i + 1] = t.acts[i];
        return true;
    }

    /**
     * For a block that {@link #folds}, evaluated at x = x0 + d from the displacement d and its own feedforward tape
     * {@code ff} at x0: the linear op's pre-activation is zff + d W^T, zff from ff (no rounding of x0 + d, and the same
     * multiply-adds). Writes what {@link #forwardWithError} writes, in one backend op, and where {@code step} is not null
     * the step of the predicted layer's displacement ({@link BeliefStep}). A block of one linear op, whose output is the
     * prediction, takes two: the output, then the error (with no f' to pull it back through). The tape records {@code x}
     * as its input, for parameter gradients: it must hold x0 + d by the time a backward pass reads it.
     */
    public void forwardDisplacedWithError(Backend be, Tensor d, Tensor x, Tape ff, Tape t, Tensor vhat, Tensor displacement, Tensor error, BeliefStep step) {
        if (isOneLinearOp()) {
            forwardDisplacedWithOutputError(be, d, x, ff, t, null, null, null, 0, 0f);
            be.pcPredictionError(t.acts[1], vhat, displacement, error, null, null, step);
            return;
        }
        Ops.LinearOp linear = linearBeforeActivation(t);
        if (linear == null || !folds(t)) throw new IllegalStateException("block " + index + " is not one linear op, or one and an activation whose f' the tape keeps");
        t.acts[0] = x;
        linear.forwardDisplaced(be, (Ops.ActivationOp) ops.get(1), d, ff.acts[1], t.acts[1], t.acts[2], t.derivatives[2], vhat, displacement, error, t.grads[1], step);
    }

    /**
     * Whether PC's Gram form can take this block at tape t ({@link #gram}): it {@link #folds}, and as a hidden block ends in
     * an activation (the output block is one linear op).
     */
    public boolean takesGramForm(Tape t, boolean output) { return folds(t) && (output ? isOneLinearOp() : !isOneLinearOp()); }

    /**
     * PC's Gram form, for a block that {@link #folds}: g = W W^T of its linear op, [out, out]. In a folded relaxation the
     * block's input moves by d = terms + alpha dy' W, dy' what the feedback GEMM multiplies ({@link #feedbackOnto}); its
     * next pre-activation zff + d W^T is then zff + terms W^T + alpha dy' g, two products that read only what the step's
     * error ops wrote, so that they run beside the feedback GEMM instead of after it ({@link #inputProduct}, {@link #gramProduct}).
     */
    public void gram(Backend be, Tensor g) { linearOp().gram(be, g); }

    /** The Gram form's first product, terms W^T, into tape t's pre-activation (the output of a block of one linear op). */
    public void inputProduct(Backend be, Tensor terms, Tape t) { be.matmul(false, true, 1f, terms, linearOp().weight.value(), 0f, preActivation(t)); }

    /** The Gram form's second product, alpha dy' g, dy' as {@link #feedbackOnto} at tape t reads it (dy, or dy * f' where the block ends in an activation). */
    public void gramProduct(Backend be, Tape t, Tensor dy, Tensor g, float alpha, Tensor out) {
        be.matmul(false, false, alpha, isOneLinearOp() ? dy : t.grads[outputActivation()], g, 0f, out); // g is symmetric
    }

    /** For a block that {@link #folds}, its linear op's output on tape t: the pre-activation, or the output of a block of one linear op. */
    public Tensor preActivation(Tape t) { return t.acts[1]; }

    /**
     * A hidden block in the Gram form at x = x0 + d, its pre-activation's products in tape t (and {@code addend}, where
     * not null): writes what {@link #forwardDisplacedWithError} writes, in one backend op ({@link Backend#pcPredictionErrorFromProducts}).
     */
    public void errorFromProducts(Backend be, Tensor x, Tape ff, Tape t, Tensor addend, Tensor vhat, Tensor displacement, Tensor error, BeliefStep step) {
        Ops.ActivationOp f = (Ops.ActivationOp) ops.get(1);
        t.acts[0] = x;
        be.pcPredictionErrorFromProducts(t.acts[1], addend, ff.acts[1], f.function, f.slope, t.acts[2], t.derivatives[2], vhat, displacement, error, t.grads[1], step);
    }

    /**
     * The output block (one linear op) in the Gram form: its output from its products (and {@code addend}, where not
     * null), offset by its output on ff, and the loss with its gradient, in one backend op
     * ({@link Loss#computeFromProducts}; each sample's own squared error is {@link #outputErrorFromProducts}).
     */
    public void lossFromProducts(Backend be, Tensor x, Tape ff, Tape t, Tensor addend, Loss loss, Tensor target, Tensor lossOut, Tensor grad, boolean perSample) {
        t.acts[0] = x;
        loss.computeFromProducts(be, t.acts[1], addend, ff.acts[1], target, lossOut, grad, perSample);
    }

    /**
     * For a block of one linear op: x W^T into tape t's output, the bias left out and returned (null for none), for an
     * op after the GEMM to add in its own pass ({@link Backend#softmaxCrossEntropyFromProducts}, {@link Backend#mseFromProducts}):
     * the output is the block's once that op ran.
     */
    public Tensor forwardWithoutBias(Backend be, Tensor x, Tape t) {
        t.acts[0] = x;
        be.matmul(false, true, 1f, x, linearOp().weight.value(), 0f, t.acts[1]);
        return linearOp().biasValue();
    }

    /** The output block (one linear op) in the Gram form: what {@link #forwardDisplacedWithOutputError} writes with a target, in one backend op ({@link Backend#pcOutputErrorFromProducts}). */
    public void outputErrorFromProducts(Backend be, Tensor x, Tape ff, Tape t, Tensor addend, Tensor target, Tensor error, Tensor energy, long energyIndex, float energyScale) {
        t.acts[0] = x;
        be.pcOutputErrorFromProducts(t.acts[1], addend, ff.acts[1], target, error, energy, energyIndex, energyScale);
    }

    /** The linear op of a block that {@link #folds} (its first op). */
    private Ops.LinearOp linearOp() {
        if (!(ops.get(0) instanceof Ops.LinearOp linear)) throw new IllegalStateException("block " + index + " does not start with a linear op");
        return linear;
    }

    /**
     * For a block of one linear op, evaluated at x = x0 + d as {@link #forwardDisplacedWithError} evaluates a hidden
     * block: its output zff + d W^T with zff the output on ff; where {@code target} is not null also error = output -
     * target (and where {@code energy} is not null its energy term), in one backend op. The tape records {@code x} as its input.
     */
    public void forwardDisplacedWithOutputError(Backend be, Tensor d, Tensor x, Tape ff, Tape t, Tensor target, Tensor error, Tensor energy, long energyIndex,
                                                float energyScale) {
        if (!isOneLinearOp()) throw new IllegalStateException("block " + index + " is not one linear op");
        t.acts[0] = x;
        ((Ops.LinearOp) ops.get(0)).forwardDisplaced(be, d, ff.acts[1], t.acts[1], target, error, energy, energyIndex, energyScale);
    }

    /**
     * For a block that {@link #folds}, evaluated at x = x0 + d from d and its feedforward tape {@code ff} at x0, as
     * {@link #forwardDisplacedWithError} evaluates it but without an error: one backend op. The tape records {@code x} as
     * its input, which must hold x0 + d by the time a backward pass reads it.
     */
    public void forwardDisplaced(Backend be, Tensor d, Tensor x, Tape ff, Tape t) {
        if (!folds(t)) throw new IllegalStateException("block " + index + " is not a linear op, or one and an activation whose f' the tape keeps");
        if (isOneLinearOp()) {
            forwardDisplacedWithOutputError(be, d, x, ff, t, null, null, null, 0, 0f);
            return;
        }
        t.acts[0] = x;
        linearBeforeActivation(t).forwardDisplaced(be, (Ops.ActivationOp) ops.get(1), d, ff.acts[1], t.acts[1], t.acts[2], t.derivatives[2]);
    }

    /** The block's linear op where the block is views, that op and an activation whose f' tape t keeps, then views; otherwise null. */
    private Ops.LinearOp linearBeforeActivation(Tape t) {
        int a = outputActivation();
        if (a < 1 || !(ops.get(a - 1) instanceof Ops.LinearOp linear) || t.derivatives[a + 1] == null) return null;
        for (int i = 0; i < a - 1; i++) if (!ops.get(i).isView()) return null;
        return linear;
    }

    /**
     * Whether PC's folded relaxation can take this block at tape t: one linear op, or a linear op and then an activation
     * whose f' t keeps, and no views (whose shapes the GEMM would not see), so that its feedback is one GEMM, which can
     * add onto a belief's step ({@link #feedbackOnto}).
     */
    public boolean folds(Tape t) {
        for (Op l : ops) if (l.isView()) return false;
        return isOneLinearOp() || linearBeforeActivation(t) != null;
    }

    /**
     * dx = alpha J_x^T dy at the tape's point, added onto dx where {@code onto} (in the GEMM of the block's linear op: beta
     * 1), for a block that {@link #folds}. dy is the gradient at the block's output; where the block ends in an
     * activation, dy * f' must already be in {@link #outputDerivativeGradient} (the error ops leave it there) and dy is not read.
     */
    public void feedbackOnto(Backend be, Tape t, Tensor dy, Tensor dx, float alpha, boolean onto) {
        if (isOneLinearOp()) {
            ((Ops.LinearOp) ops.get(0)).inputGradient(be, dy, dx, alpha, onto);
            return;
        }
        Ops.LinearOp linear = linearBeforeActivation(t);
        if (linear == null) throw new IllegalStateException("block " + index + " does not fold: its feedback is not one linear op's");
        linear.inputGradient(be, t.grads[outputActivation()], dx, alpha, onto);
    }

    /**
     * For a block of one linear op ({@link #isOneLinearOp}): writes its output at x0, zff from its feedforward tape
     * {@code ff}, into tape t's output, where {@link #forwardDisplacedOnto} adds onto it.
     */
    public void startDisplaced(Backend be, Tape ff, Tape t) {
        if (!isOneLinearOp()) throw new IllegalStateException("block " + index + " is not one linear op");
        be.copy(ff.acts[1], t.acts[1]);
    }

    /**
     * For a block of one linear op whose output on tape t {@link #startDisplaced} set to zff: its output at x = x0 + d,
     * zff + d W^T, as the GEMM itself adds d W^T onto zff (a GEMM where the offset form of {@link Backend#linear} is a
     * GEMM and a pass on a GPU). The tape records {@code x} as its input.
     */
    public void forwardDisplacedOnto(Backend be, Tensor d, Tensor x, Tape t) {
        if (!isOneLinearOp()) throw new IllegalStateException("block " + index + " is not one linear op");
        t.acts[0] = x;
        ((Ops.LinearOp) ops.get(0)).forwardOnto(be, d, t.acts[1]);
    }

    /** Whether the block is one linear op and nothing else: an output block the folded relaxations evaluate from a displacement. */
    public boolean isOneLinearOp() { return ops.size() == 1 && ops.get(0) instanceof Ops.LinearOp; }

    /** The index of the block's one real op where that is linear (views aside); otherwise -1. */
    private int soleLinear() {
        int r = -1;
        for (int i = 0; i < ops.size(); i++) {
            if (ops.get(i).isView()) continue;
            if (r >= 0 || !(ops.get(i) instanceof Ops.LinearOp)) return -1;
            r = i;
        }
        return r;
    }

    /**
     * Where the block is one linear op (views aside): evaluates it at x into tape t, as {@link #forward}, and
     * writes error = f_l(x) - target, in one backend op ({@link Backend#pcLinearOutputError}). Any other block:
     * does nothing and returns false.
     */
    public boolean forwardWithOutputError(Backend be, Tensor x, Tape t, Tensor target, Tensor error) {
        return forwardWithOutputError(be, x, t, target, error, null, 0, 0f);
    }

    /**
     * As {@link #forwardWithOutputError(Backend, Tensor, Tape, Tensor, Tensor)}, with the error's energy term
     * {@code energyScale * ||error||^2} into {@code energy[energyIndex]} in the same op, where {@code energy} is not null.
     */
    public boolean forwardWithOutputError(Backend be, Tensor x, Tape t, Tensor target, Tensor error, Tensor energy, long energyIndex, float energyScale) {
        int r = soleLinear();
        if (r < 0) return false;
        t.acts[0] = x;
        for (int i = 0; i < ops.size(); i++)
            if (i == r) ((Ops.LinearOp) ops.get(r)).forward(be, t.acts[r], t.acts[r + 1], target, error, energy, energyIndex, energyScale);
            else t.acts[i + 1] = t.acts[i];
        return true;
    }

    /** The index of the last real op, or -1 where it is not an activation. */
    private int outputActivation() { return lastReal >= 0 && ops.get(lastReal) instanceof Ops.ActivationOp ? lastReal : -1; }

    /** The backward pass from op {@code top} down, with {@code dy} the gradient at its output. */
    private void backwardFrom(Backend be, Tape t, int top, Tensor dy, Tensor dx, float parameterScale) {
        Tensor g = dy;
        for (int i = top; i >= 0; i--) {
            Op l = ops.get(i);
            if (l.isView()) {
                if (i == 0 && dx != null) be.copy(g, dx);
                continue; // the gradient passes through unchanged
            }
            // Propagate below this op only if someone needs it: the caller (dx) or a parameter further down.
            boolean propagate = i == 0 ? dx != null : dx != null || (parameterScale != 0f && parametersBelow(i));
            Tensor target = !propagate ? null : i == 0 ? dx : t.grads[i];
            boolean ownGradients = parameterScale != 0f && !l.parameters().isEmpty();
            if (target == null && !ownGradients) return;
            backwardOp(be, l, i, t, g, target, parameterScale);
            if (target == null) return;
            g = target;
        }
    }

    /** The block's first real op when it is linear or conv2d with a Gram form (see {@link Entry}); otherwise null. */
    public Entry entry() {
        int e = 0;
        while (e < ops.size() && ops.get(e).isView()) e++;
        if (e == ops.size() || !(ops.get(e) instanceof AffineOp op) || op.gramShape() == null) return null;
        return new Entry(e, op);
    }

    /**
     * The block's first real op, y = A x + b, seen from its output space. A belief v = vhat + A^T D that
     * moves only along A^T can be kept as D: the block's pre-activation is then A v + b = z0 + G D with
     * G = A A^T and z0 = A vhat + b, and the rest of the block runs from there (STRICT's first hidden
     * layer, see PcEngine).
     */
    public final class Entry {
        private final int index;
        private final AffineOp op;

        private Entry(int index, AffineOp op) { this.index = index; this.op = op; }

        /** Whether applying G costs no more multiply-adds than applying A and A^T. */
        public boolean pays() { return op.gramMacs() <= 2 * op.forwardMacs(); }

        /** Multiply-adds per sample of A x and of G y, and per step of forming G. */
        public long forwardMacs() { return op.forwardMacs(); }

        /** Multiply-adds per sample of applying G. */
        public long gramMacs() { return op.gramMacs(); }

        /** Multiply-adds per step of forming G. */
        public long formationMacs() { return op.formationMacs(); }

        /** Shape of G, and per-sample shape of the op's output (of z, D and dz). */
        public int[] gramShape() { return op.gramShape(); }

        /** Per-sample shape of the entry op's output (of z, D and dz). */
        public int[] outputShape() { return ops.get(index).out.clone(); }

        /** Writes G = A A^T for the current weights. */
        public void gram(Backend be, Tensor g) { op.gram(be, g); }

        /**
         * Evaluates the block at vhat + A^T d into tape t, where {@code at} is the tape of its forward at vhat, and writes
         * the change of its output from at's, less minus, into dOut, as {@link Block#forwardIncrement} does: the entry's own
         * change is G d, never rounded to the magnitude of z.
         */
        public void forwardIncrement(Backend be, Tensor g, Tensor d, Tape at, Tape t, Tensor minus, Tensor dOut) {
            op.applyGram(be, g, d, changeOf(t, index, dOut));
            int i = afterAffine(be, index, at, t, minus, dOut, false);
            incrementFrom(be, i + 1, at, changeOf(t, i, dOut), t, minus, dOut, false);
        }

        /** dz = the VJP of the ops after the entry, at the tape's point: dy pulled back to the entry's output. */
        public void backward(Backend be, Tape t, Tensor dy, Tensor dz) {
            Tensor g = dy;
            for (int i = ops.size() - 1; i > index; i--) {
                Op l = ops.get(i);
                if (l.isView()) continue;
                Tensor target = realOpBetween(index, i) ? t.grads[i] : dz; // the last real op writes dz
                backwardOp(be, l, i, t, g, target, 0f);
                g = target;
            }
            if (g != dz) be.copy(g, dz); // only views followed the entry
        }

        /** dx = A^T dz (the entry's input gradient; its parameters are left alone). */
        public void adjoint(Backend be, Tensor dz, Tensor dx) {
            Op l = ops.get(index);
            l.backward(be, null, null, dz, dx, 0f);
        }
    }

    /** Whether a non-view layer lies strictly between ops a and b. */
    private boolean realOpBetween(int a, int b) {
        for (int j = a + 1; j < b; j++) if (!ops.get(j).isView()) return true;
        return false;
    }

    private boolean parametersBelow(int i) {
        for (int j = 0; j < i; j++) if (!ops.get(j).parameters().isEmpty()) return true;
        return false;
    }

    /** [batch, ...shape]: a per-sample shape with the batch dimension in front. */
    public static int[] withBatch(int batch, int[] shape) {
        int[] s = new int[shape.length + 1];
        s[0] = batch;
        System.arraycopy(shape, 0, s, 1, shape.length);
        return s;
    }
}
