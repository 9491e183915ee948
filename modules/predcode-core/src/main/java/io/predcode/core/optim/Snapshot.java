package io.predcode.core.optim;

import io.predcode.spi.Backend;
import io.predcode.spi.Scope;
import io.predcode.spi.Tensor;

/**
 * A copy, on the device, of the parameters an optimizer steps and of its state (Adam's moments, SGD's momentum
 * buffers). A training step that moves them as it goes (iPC takes an optimizer step after each inference step) takes
 * it first and puts it back if the step diverges, so that the step leaves the model and the optimizer as they were,
 * as every other algorithm's diverged step does. The step count needs no copy: the host moves it only once the
 * step is known to be good ({@link Optimizer.Recordable#stepsTaken}).
 */
public final class Snapshot {
    private final Backend be;
    private final Tensor[] live, kept;
    private final double[] sizes;
    /** One copy per tensor, made once: taking the snapshot every step allocates nothing. */
    private final Runnable[] copies;

    Snapshot(Backend be, Scope scope, Tensor[] live) {
        this.be = be;
        this.live = live.clone();
        kept = new Tensor[live.length];
        sizes = new double[live.length];
        copies = new Runnable[live.length];
        for (int i = 0; i < live.length; i++) {
            Tensor from = live[i], to = kept[i] = scope.allocate(from.shape());
            sizes[i] = from.size();
            copies[i] = () -> be.copy(from, to);
        }
    }

    /**
     * Copies the parameters and the state, each tensor a branch of its own (on a GPU side by side). Device ops only,
     * so a recorded step holds it.
     */
    public void take() { be.branches(sizes, copies); }

    /** Puts back what {@link #take} copied: after a step that diverged, before anything else runs. */
    public void restore() {
        for (int i = 0; i < live.length; i++) be.copy(kept[i], live[i]);
    }

    /**
     * The floats {@link #take} copies: its work, beside other work.
     *
     * @return the count
     */
    public double floats() {
        double n = 0;
        for (double s : sizes) n += s;
        return n;
    }
}
