package io.predcode.core.pc;

import io.predcode.core.nn.Block;
import io.predcode.core.nn.Loss;
import io.predcode.core.nn.Model;
import io.predcode.spi.Backend;
import io.predcode.spi.Scope;
import io.predcode.spi.Tensor;

import static io.predcode.core.nn.Block.withBatch;

/**
 * Every tensor one inference step needs at one batch size, allocated once: after the first step at a
 * given batch size, a step allocates nothing. Indexing follows the paper: activation, belief and error
 * l belong to layer l (0 = input, L = output); block b maps layer b to layer b + 1.
 *
 * <p>The tensors are allocated in the same order for every batch size, so a workspace for a smaller
 * batch can be made of views of a larger one's ({@link #viewsOf}): one block of memory serves every
 * batch size up to the largest.
 */
final class Workspace implements AutoCloseable {
    final int batch;
    final Scope scope;
    /** The input batch (vhat_0 = v_0 = x) and the targets. */
    final Tensor x, y;
    /** The feedforward pass: ff[b].output() is vhat_{b+1}. */
    final Block.Tape[] ff;
    /** The per-sweep evaluations: sweep[b] holds f_{b+1}(v_b); sweep[0] only for iPC, whose block 0 changes during the relaxation (its input x never does). */
    final Block.Tape[] sweep;
    /** dL/dy at the feedforward output. */
    final Tensor dLdy;
    /** Prediction errors eps_0..eps_L; error[L] is STRICT's (the loss gradient at its last sweep); the others use dLdy. */
    final Tensor[] error;
    /** Beliefs v_0..v_L where an algorithm keeps them. */
    final Tensor[] belief;
    /** STRICT's state: displacement[l] = v_l - vhat_l (see Backend#pcStrictUpdate). */
    final Tensor[] displacement;
    /** feedback[l] = J_{l+1}^T eps_{l+1}, the error fed back to layer l. */
    final Tensor[] feedback;
    /**
     * [0] feedforward loss, [1] correct count, [ENERGY_AT ..) the relaxed energy by term, then centred nudging's first
     * relaxation's guard, and scratch. A step that checks its energy is guarded on the leading ones ({@link #guarded}).
     */
    final Tensor scalars;
    /** A view of {@link #scalars} (freed with it): the loss, the count and the energy terms, which centred nudging's first relaxation's guard sums. */
    private final Tensor relaxationTerms;
    /** STRICT's loss at the predicted output of the current sweep. */
    final Tensor sweepLoss;
    /**
     * PC's belief optimizer state per hidden layer: SGD's momentum or Adam's first moment, and Adam's
     * second moment; only as many of the two as {@link #moments} says (null otherwise), since plain SGD,
     * STRICT's, keeps none.
     */
    final Tensor[] beliefMoment, beliefSecondMoment;
    /** How many belief optimizer state tensors each hidden layer has: 0 (plain SGD), 1 (momentum) or 2 (Adam). */
    final int moments;
    /** STRICT's layer 1 in block 1's entry space, where block 1 has an entry op (null otherwise). */
    final Condensed condensed;
    /**
     * PC's Gram form, where the backend prefers short chains and every block above 0 takes it ({@link Block#takesGramForm};
     * null otherwise): per block b above 0, gram[b] = W W^T and gramProduct[b] the pre-activation's second product; per
     * hidden layer l, stepCopy[l] the copy of its step's terms that the first product reads.
     */
    final Tensor[] gram, gramProduct, stepCopy;

    /** A workspace with memory of its own, with {@code moments} belief optimizer state tensors per hidden layer. */
    Workspace(Model model, Loss loss, int batch, int moments) { this(model, loss, batch, moments, new Scope(model.backend())); }

    /** A workspace for a batch of {@code batch <= full.batch} in {@code full}'s memory: allocates nothing on the backend. */
    static Workspace viewsOf(Workspace full, Model model, Loss loss, int batch) {
        return new Workspace(model, loss, batch, full.moments, Scope.viewsOf(full.scope));
    }

    private Workspace(Model model, Loss loss, int batch, int moments, Scope scope) {
        this.batch = batch;
        this.moments = moments;
        this.scope = scope;
        try {
            int depth = model.depth();
            x = scope.allocate(withBatch(batch, model.inputShape()));
            y = scope.allocate(withBatch(batch, loss.targetShape(model.activationShape(depth))));
            ff = new Block.Tape[depth];
            sweep = new Block.Tape[depth];
            for (int b = 0; b < depth; b++) {
                ff[b] = model.blocks().get(b).newTape(scope, batch, true);
                sweep[b] = model.blocks().get(b).newTape(scope, batch, true);
            }
            dLdy = scope.allocate(withBatch(batch, model.activationShape(depth)));
            error = new Tensor[depth + 1];
            belief = new Tensor[depth + 1];
            feedback = new Tensor[depth];
            displacement = new Tensor[depth];
            beliefMoment = new Tensor[depth];
            beliefSecondMoment = new Tensor[depth];
            for (int l = 0; l <= depth; l++) {
                int[] shape = withBatch(batch, model.activationShape(l));
                error[l] = scope.allocate(shape);
                belief[l] = scope.allocate(shape);
                if (l < depth) feedback[l] = scope.allocate(shape);
                if (l > 0 && l < depth) {
                    displacement[l] = scope.allocate(shape);
                    if (moments >= 1) beliefMoment[l] = scope.allocate(shape);
                    if (moments >= 2) beliefSecondMoment[l] = scope.allocate(shape);
                }
            }
            scalars = scope.allocate(Math.max(8, guarded(depth, true)));
            relaxationTerms = model.backend().view(scalars, 0, io.predcode.spi.Shape.of(firstRelaxationGuardAt(depth)));
            sweepLoss = scope.allocate(1);
            Block.Entry entry = depth > 1 ? model.blocks().get(1).entry() : null;
            condensed = entry == null ? null : new Condensed(entry, scope, batch);
            boolean gramForm = model.backend().prefersShortChains() && depth > 1;
            for (int b = 1; b < depth; b++) gramForm &= model.blocks().get(b).takesGramForm(sweep[b], b == depth - 1) && model.blocks().get(b).takesGramForm(ff[b], b == depth - 1);
            gram = gramForm ? new Tensor[depth] : null;
            gramProduct = gramForm ? new Tensor[depth] : null;
            stepCopy = gramForm ? new Tensor[depth] : null;
            for (int b = 1; gramForm && b < depth; b++) {
                int out = (int) sweep[b].output().shape().rowSize();
                gram[b] = scope.allocate(out, out);
                gramProduct[b] = scope.allocate(withBatch(batch, model.activationShape(b + 1)));
                stepCopy[b] = scope.allocate(withBatch(batch, model.activationShape(b)));
            }
        } catch (RuntimeException e) {
            scope.close();
            throw e;
        }
    }

    /** Where {@link #writeEnergyTerms} puts STRICT's energy terms in {@link #scalars}. */
    static final int ENERGY_AT = 2;

    /**
     * The PC energy term by term into scalars[ENERGY_AT .. ENERGY_AT + depth): the output's loss, then
     * each hidden layer's ||eps_l||^2 / 2. The loss is the one at the last sweep's predicted output
     * for the algorithms that recompute predictions (STRICT, PC, iPC, Z-IL), the feedforward loss for
     * FIXED_PRED and EXACT, whose predictions stay at the feedforward values. Device ops only; the
     * host sums them after one copy.
     */
    void writeEnergyTerms(Backend be, int depth, Algorithm algorithm) {
        for (int l = 0; l < depth; l++) writeEnergyTerm(be, l, algorithm);
    }

    /** Term l of {@link #writeEnergyTerms} (0: the output's); each reads what no other writes, so they may run as branches. */
    void writeEnergyTerm(Backend be, int l, Algorithm algorithm) {
        if (l > 0) be.sumSquares(error[l], 0.5f, scalars, ENERGY_AT + l);
        else if (algorithm.recomputesPredictions()) be.copy(sweepLoss, 0, scalars, ENERGY_AT, 1);
        else be.copy(scalars, 0, scalars, ENERGY_AT, 1);
    }

    /** Where centred nudging's first relaxation leaves its guard in {@link #scalars}: after the energy terms. */
    static int firstRelaxationGuardAt(int depth) { return ENERGY_AT + depth; }

    /**
     * How many of {@link #scalars}' leading values a step that checks its energy is guarded on: the loss, the count and
     * the energy terms, and for centred nudging its first relaxation's guard. The optimizer's recorded step changes
     * nothing unless all are finite (its own kernel reads them): a NaN belief leaves the loss finite and makes its
     * layer's energy NaN, and its updates. A step that relaxes once does not read the first relaxation's slot.
     */
    static int guarded(int depth, boolean centred) { return ENERGY_AT + depth + (centred ? 1 : 0); }

    /**
     * Centred nudging, after its first relaxation's energy terms: 0 where they are all finite, NaN where one is not
     * (their sum of squares, in double, at scale 0), which the step is then guarded on with the second's terms: a first
     * relaxation that ran off leaves NaN in the updates it holds.
     */
    void writeFirstRelaxationGuard(Backend be, int depth) { be.sumSquares(relaxationTerms, 0f, scalars, firstRelaxationGuardAt(depth)); }

    /** vhat_l: the input for l = 0, else block l-1's feedforward output. */
    Tensor vhat(int l) { return l == 0 ? x : ff[l - 1].output(); }

    @Override public void close() { scope.close(); }
}
