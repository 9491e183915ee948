package io.predcode.core.pc;

import io.predcode.core.nn.Block;
import io.predcode.core.nn.Model;
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
 *
 * <p>Where block 1 is its entry op and one activation below a hidden layer 2, D's update is fused into
 * layer 2's ({@link Backend#pcStrictEntryUpdate}); otherwise it runs after layer 2's.
 */
final class Condensed {
    final Block.Entry entry;
    final boolean fused;
    /** G = A A^T, D, and dz (null when fused: the fused update forms it in registers). */
    private final Tensor gram, displacement, gradient;

    /** The condensed state of a workspace for {@code batch} samples; allocated in {@code scope}. */
    Condensed(Model model, Block.Entry entry, Scope scope, int batch) {
        this.entry = entry;
        this.fused = model.depth() > 2 && entry.fuses();
        gram = scope.allocate(entry.gramShape());
        displacement = scope.allocate(withBatch(batch, entry.outputShape()));
        gradient = fused ? null : scope.allocate(withBatch(batch, entry.outputShape()));
    }

    /** Before the first sweep: G, and D = 0 (beliefs start at vhat). */
    void start(Backend be) {
        entry.gram(be, gram);
        be.fill(displacement, 0f);
    }

    /** Block 1's forward at v_1 = vhat_1 + A^T D, through G D. */
    void forward(Backend be, Workspace ws) {
        if (fused) entry.forwardEntry(be, gram, displacement, ws.ff[1], ws.sweep[1]);
        else entry.forward(be, gram, displacement, ws.ff[1], ws.sweep[1]);
    }

    /** Layer 2's STRICT update and D's, in one pass (fused only); eps_1 first on the last sweep, from D as the sweep found it. */
    void updateWithLayerTwo(Backend be, Workspace ws, float eta, boolean last) {
        if (last) layerOneError(be, ws);
        entry.update(be, ws.sweep[1], ws.vhat(2), ws.feedback[2], ws.displacement[2], ws.belief[2], last ? ws.error[2] : null, displacement, eta);
    }

    /** Layer 1's update after layer 2's: D's (unless fused with layer 2's), and v_1 on the last sweep. */
    void updateLayerOne(Backend be, Workspace ws, float eta, boolean last) {
        if (!fused) {
            entry.backward(be, ws.sweep[1], ws.error[2], gradient);
            if (last) layerOneError(be, ws);
            be.axpby(-eta, gradient, 1f - eta, displacement);
        }
        if (last) {
            entry.adjoint(be, displacement, ws.displacement[1]);
            be.add(1f, ws.vhat(1), 1f, ws.displacement[1], ws.belief[1]);
        }
    }

    /** eps_1 = -d_1 = -A^T D. */
    private void layerOneError(Backend be, Workspace ws) {
        entry.adjoint(be, displacement, ws.displacement[1]);
        be.add(0f, ws.displacement[1], -1f, ws.displacement[1], ws.error[1]);
    }
}
