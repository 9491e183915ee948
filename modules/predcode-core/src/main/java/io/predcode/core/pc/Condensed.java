package io.predcode.core.pc;

import io.predcode.core.nn.Block;
import io.predcode.spi.Backend;
import io.predcode.spi.Scope;
import io.predcode.spi.Tensor;

import static io.predcode.core.nn.Block.withBatch;

/**
 * STRICT's layer 1 relaxed in block 1's entry space ({@link PcEngine.Condense}). Layer 1's prediction
 * f_1(x) = vhat_1 never changes, so its error is -d_1 and its update d_1 <- (1 - eta) d_1 - eta A^T dz
 * is linear, with A block 1's entry op and dz the error above pulled back to its output. Starting
 * from 0, d_1 stays A^T D for the D that follows D <- (1 - eta) D - eta dz: a sweep needs only
 * A d_1 = G D (G = A A^T), so layer 1, often the widest, is touched only on the last sweep, which
 * writes eps_1 = -A^T D (as at that sweep's start) and v_1 = vhat_1 + A^T D (at its end).
 */
final class Condensed {
    final Block.Entry entry;
    /** G = A A^T, D, and dz. */
    private final Tensor gram, displacement, gradient;

    /** The condensed state of a workspace for {@code batch} samples; allocated in {@code scope}. */
    Condensed(Block.Entry entry, Scope scope, int batch) {
        this.entry = entry;
        gram = scope.allocate(entry.gramShape());
        displacement = scope.allocate(withBatch(batch, entry.outputShape()));
        gradient = scope.allocate(withBatch(batch, entry.outputShape()));
    }

    /** Before the first sweep: G, and D = 0 (beliefs start at vhat). */
    void start(Backend be) {
        entry.gram(be, gram);
        be.fill(displacement, 0f);
    }

    /** Block 1's forward at v_1 = vhat_1 + A^T D, through G D, with the change of its output from vhat_2, less minus (where not null), into {@code change}. */
    void forward(Backend be, Workspace ws, Tensor minus, Tensor change) {
        entry.forwardIncrement(be, gram, displacement, ws.ff[1], ws.sweep[1], minus, change);
    }

    /** Layer 1's update after layer 2's: D's, and v_1 on the last sweep (eps_1 first, from D as the sweep found it). */
    void updateLayerOne(Backend be, Workspace ws, float eta, boolean last) {
        pullBack(be, ws);
        update(be, ws, eta, last);
    }

    /** dz: eps_2 pulled back through block 1 to its entry's output, at the sweep's point; it needs only this sweep's eps_2. */
    void pullBack(Backend be, Workspace ws) { entry.backward(be, ws.sweep[1], ws.error[2], gradient); }

    /**
     * {@link #updateLayerOne} after {@link #pullBack}. On the last sweep eps_1 = -A^T D (D as the sweep found it) and
     * d_1 = A^T D' (D' = (1 - eta) D - eta dz, the step) read D alone, so D' goes into dz's tensor, which it consumes,
     * and the two run side by side: on a GPU two ops and three one after another, where the five were in one line.
     */
    void update(Backend be, Workspace ws, float eta, boolean last) {
        if (!last) {
            be.axpby(-eta, gradient, 1f - eta, displacement);
            return;
        }
        double work = (double) entry.forwardMacs() * ws.batch;
        be.branches(new double[]{work, work}, () -> layerOneError(be, ws), () -> {
            be.add(-eta, gradient, 1f - eta, displacement, gradient); // axpby's arithmetic, into dz's tensor
            entry.adjoint(be, gradient, ws.displacement[1]);
            be.add(1f, ws.vhat(1), 1f, ws.displacement[1], ws.belief[1]);
        });
    }

    /** eps_1 = -d_1 = -A^T D, formed in eps_1's own tensor. */
    private void layerOneError(Backend be, Workspace ws) {
        entry.adjoint(be, displacement, ws.error[1]);
        be.add(0f, ws.error[1], -1f, ws.error[1], ws.error[1]);
    }
}
