package io.predcode.core.nn;

import io.predcode.spi.Backend;
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
    private final List<Layer> layers;
    private final int[] in, out;

    Block(int index, List<Layer> layers, int[] in, int[] out) {
        this.index = index;
        this.layers = List.copyOf(layers);
        this.in = in;
        this.out = out;
    }

    public int index() { return index; }

    /** Per-sample input and output shapes. */
    public int[] inputShape() { return in.clone(); }

    public int[] outputShape() { return out.clone(); }

    public List<Parameter> parameters() {
        List<Parameter> ps = new ArrayList<>();
        for (Layer l : layers) ps.addAll(l.parameters());
        return ps;
    }

    /** Activations and gradients for one evaluation point at one batch size. */
    public final class Tape {
        final Tensor[] acts, grads;
        final Tensor ownOutput;

        Tape(Scope scope, int batch) {
            int k = layers.size();
            acts = new Tensor[k + 1];
            grads = new Tensor[k + 1];
            boolean allViews = true;
            for (int i = 0; i < k; i++) {
                Layer l = layers.get(i);
                allViews &= l.isView();
                if (!l.isView()) {
                    acts[i + 1] = scope.allocate(withBatch(batch, l.out));
                    if (i > 0) grads[i] = scope.allocate(withBatch(batch, l.in));
                }
            }
            // A block of views alone would return its input's memory as its output; give it its own.
            ownOutput = allViews ? scope.allocate(withBatch(batch, out)) : null;
        }

        /** f_l(x) of the last forward. Its tensor may carry the pre-flatten shape; the data is the same. */
        public Tensor output() { return ownOutput != null ? ownOutput : acts[acts.length - 1]; }

        public Block block() { return Block.this; }
    }

    public Tape newTape(Scope scope, int batch) { return new Tape(scope, batch); }

    /** Evaluates the block at {@code x} (which must stay unchanged until the tape's backward passes are done). */
    public void forward(Backend be, Tensor x, Tape t) {
        t.acts[0] = x;
        for (int i = 0; i < layers.size(); i++) {
            Layer l = layers.get(i);
            if (l.isView()) t.acts[i + 1] = t.acts[i];
            else l.forward(be, t.acts[i], t.acts[i + 1]);
        }
        if (t.ownOutput != null) be.copy(x, t.ownOutput);
    }

    /**
     * At the point of the tape's last forward: dx = J_x^T dy when {@code dx} is not null, and the
     * parameter gradients overwritten with J_theta^T dy when {@code parameterGradients}.
     */
    public void backward(Backend be, Tape t, Tensor dy, Tensor dx, boolean parameterGradients) {
        Tensor g = dy;
        for (int i = layers.size() - 1; i >= 0; i--) {
            Layer l = layers.get(i);
            if (l.isView()) {
                if (i == 0 && dx != null) be.copy(g, dx);
                continue; // the gradient passes through unchanged
            }
            // Propagate below this op only if someone needs it: the caller (dx) or a parameter further down.
            boolean propagate = i == 0 ? dx != null : dx != null || (parameterGradients && parametersBelow(i));
            Tensor target = !propagate ? null : i == 0 ? dx : t.grads[i];
            boolean ownGradients = parameterGradients && !l.parameters().isEmpty();
            if (target == null && !ownGradients) return;
            l.backward(be, t.acts[i], t.acts[i + 1], g, target, parameterGradients);
            if (target == null) return;
            g = target;
        }
    }

    private boolean parametersBelow(int i) {
        for (int j = 0; j < i; j++) if (!layers.get(j).parameters().isEmpty()) return true;
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
