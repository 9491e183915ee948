package io.predcode.core.pc;

import io.predcode.core.nn.Block;
import io.predcode.core.nn.Loss;
import io.predcode.core.nn.Model;


/**
 * The algorithms whose sweeps follow a fixed schedule, Torch2PC's and Z-IL: BACKPROP and EXACT by reverse mode,
 * FIXED_PRED with the errors as state, STRICT on displacements from the feedforward values, and Z-IL (STRICT's sweeps
 * with eta = 1, L of them). Part of {@link PcEngine} (see {@link EngineCore}).
 */
abstract sealed class Sweeps extends EngineCore permits Relaxations {
    Sweeps(Model model, Loss loss) { super(model, loss); }

    /** Where STRICT relaxes layer 1 (set by PcEngine's setter). */
    PcEngine.Condense condense = PcEngine.Condense.AUTO;

    /** Block 1's entry op when STRICT, as set, relaxes layer 1 in its output space; null when it relaxes layer 1 in its own. */
    abstract Block.Entry condensedEntry();

    /** BACKPROP and EXACT: eps_l = dL/dvhat_l by reverse mode; EXACT also forms v_l = vhat_l - eps_l. */
    void backprop(Workspace ws, boolean beliefs) {
        int depth = model.depth();
        for (int b = depth - 1; b >= 0; b--)
            model.blocks().get(b).backward(be, ws.ff[b], b == depth - 1 ? ws.dLdy : ws.error[b + 1], b > 0 ? ws.error[b] : null, 1f);
        if (beliefs) {
            for (int l = 1; l < depth; l++) be.add(1f, ws.vhat(l), -1f, ws.error[l], ws.belief[l]);
            be.add(1f, ws.vhat(depth), -1f, ws.dLdy, ws.belief[depth]);
        }
    }

    /**
     * FIXED_PRED with the errors as state. Sweep s updates every layer from the start-of-sweep errors:
     * eps_l <- (1 - eta) eps_l + eta J_{l+1}(vhat_l)^T eps_{l+1}, with eps_L = dL/dy: every feedback
     * first, from the start-of-sweep errors, then every update. The last sweep
     * also writes the parameter updates J_theta^T eps (at vhat, with the returned errors). Where the step checks its
     * energy ({@code withEnergy}) on a GPU, its terms (those errors) run beside the updates; returns whether they did.
     */
    boolean fixedPrediction(Workspace ws, float eta, int n, boolean full, boolean withEnergy) {
        int depth = model.depth();
        boolean terms = termsBeside(withEnergy);
        for (int l = 0; l < depth; l++) be.fill(ws.error[l], 0f);
        // A sweep's two rounds of a branch per block, built once for all the sweeps of the step (not n times: JVM garbage):
        // every feedback from the start-of-sweep errors (the last sweep's with the parameter updates), then every error's update.
        java.util.function.IntToDoubleFunction work = l -> blockMacs[l];
        java.util.function.IntConsumer feedBack = feedBackAtVhat(ws, full, 0f), lastFeedBack = feedBackAtVhat(ws, full, 1f);
        java.util.function.IntConsumer update = l -> be.axpby(eta, ws.feedback[l], 1f - eta, ws.error[l]);
        java.util.function.IntConsumer lastUpdate = l -> {
            if (!full) return;
            // v_l = vhat_l - eps_l after this sweep's update; eps_l itself stays at the start-of-sweep value.
            be.add(1f - eta, ws.error[l], eta, ws.feedback[l], ws.belief[l]);
            be.add(1f, ws.vhat(l), -1f, ws.belief[l], ws.belief[l]);
        };
        for (int s = 1; s <= n; s++) {
            boolean last = s == n;
            // Before sweep s only the top s-1 hidden errors can be nonzero: skip exact zeros (not on the last sweep, which writes updates).
            int lowest = last ? 0 : Math.max(0, depth - s);
            eachBlock(ws, lowest, depth, work, last ? lastFeedBack : feedBack, last && terms ? learningBeside(ws, false, Algorithm.FIXED_PRED) : NONE);
            eachBlock(ws, Math.max(lowest, full ? 0 : 1), depth, layerSize, last ? lastUpdate : update);
        }
        if (full) be.copy(ws.vhat(depth), ws.belief[depth]);
        return terms;
    }

    /**
     * FIXED_PRED's feedback from block l at its feedforward point: J_l^T of eps_{l+1} (dL/dy above the last block) into
     * feedback[l] (below layer 1 only for {@code full}), and the parameter updates times {@code parameterScale} (0: none).
     */
    private java.util.function.IntConsumer feedBackAtVhat(Workspace ws, boolean full, float parameterScale) {
        int depth = model.depth();
        return l -> model.blocks().get(l).backward(be, ws.ff[l], l + 1 == depth ? ws.dLdy : ws.error[l + 1], l > 0 || full ? ws.feedback[l] : null, parameterScale);
    }

    /**
     * STRICT: beliefs start at vhat with v_0 = x fixed. Each sweep: predictions f_{l}(v_{l-1}) from the
     * start-of-sweep beliefs; eps_L = dL/dy at the predicted output; top-down, eps_l = f_l(v_{l-1}) - v_l
     * and v_l += eta (eps_l - J_{l+1}(v_l)^T eps_{l+1}): gradient descent on the energy
     * L(f_L(v_{L-1})) + sum ||eps_l||^2 / 2. Parameter updates J_theta(f_l at v_{l-1})^T eps_l at the final beliefs.
     * The state is the displacement d_l = v_l - vhat_l, and each hidden error is formed from changes alone:
     * eps_1 = -d_1, and eps_l = (f_l(v_{l-1}) - vhat_l) - d_l with the prediction's change taken op by op
     * from d_{l-1} ({@link Block#forwardIncrement}). Deep in a network these errors are a millionth of the
     * activations and less; formed from float32 predictions and beliefs they would be mostly rounding. Where the step
     * checks its energy ({@code withEnergy}) on a GPU, the terms run beside the parameter updates; returns whether they did.
     */
    boolean strict(Workspace ws, float eta, int n, boolean full, boolean withEnergy) {
        int depth = model.depth();
        Condensed layerOne = condensedEntry() == null ? null : ws.condensed;
        int first = layerOne == null ? 1 : 2; // the lowest layer relaxed plainly
        startAtVhat(ws, first);
        if (layerOne != null) layerOne.start(be);
        // Where the output block is evaluated onto its feedforward output (outputOnto), each sweep's updates copy that
        // output, zff, into place for the next sweep beside them, off the chain; the first copy goes before the sweeps.
        boolean onto = outputOnto(first);
        Block output = model.blocks().get(depth - 1);
        Runnable zff = () -> output.startDisplaced(be, ws.ff[depth - 1], ws.sweep[depth - 1]);
        if (onto) zff.run();
        // A sweep's rounds, built once for all the sweeps of the step.
        // On a GPU the condensed layer 1's update is taken off the chain of kernels the next sweep waits for: eps_2's
        // pull-back through block 1 in block 1's own prediction branch, right after it forms eps_2, and D's update beside
        // the other layers' updates (it writes only layer 1's state). A CPU keeps it after them, its ops split across the threads.
        boolean layerOneBeside = layerOne != null && be.prefersShortChains() && be.runsBranchesAtOnce();
        FeedBackRound feedBack = new FeedBackRound(ws, first, layerOne, b -> false, onto, layerOneBeside);
        java.util.function.IntConsumer update = l -> strictUpdate(ws, l, eta, false), lastUpdate = l -> strictUpdate(ws, l, eta, true);
        Runnable[] besideSweep = onto ? new Runnable[]{zff} : NONE, besideLast = NONE;
        if (layerOneBeside) {
            Runnable one = () -> layerOne.update(be, ws, eta, false);
            besideSweep = onto ? new Runnable[]{zff, one} : new Runnable[]{one};
            besideLast = new Runnable[]{() -> layerOne.update(be, ws, eta, true)};
        }
        for (int s = 1; s <= n; s++) {
            boolean last = s == n;
            Runnable[] beside = last ? besideLast : besideSweep;
            if (be.runsBranchesAtOnce()) {
                feedBack.run();
                // Then each layer's update, a branch each, from its start-of-sweep error and its feedback.
                eachBlock(ws, first, depth, layerSize, last ? lastUpdate : update, beside);
            } else {
                predict(ws, first, layerOne, onto);
                for (int l = depth - 1; l >= first; l--) {
                    feedBack(ws, l, 0f);
                    strictUpdate(ws, l, eta, last);
                }
                for (Runnable r : beside) r.run();
            }
            if (layerOne != null && !layerOneBeside) layerOne.updateLayerOne(be, ws, eta, last); // reads eps_2
        }
        boolean terms = termsBeside(withEnergy);
        updatesAtFinalBeliefs(ws, full, true, 1f, terms ? Algorithm.STRICT : null);
        return terms;
    }

    /**
     * Whether STRICT's sweeps evaluate the output block at v_{L-1} = vhat_{L-1} + d as zff + d W^T, one GEMM onto its
     * feedforward output zff ({@link Block#forwardDisplacedOnto}), where evaluating it at v_{L-1} takes a GEMM and a bias
     * pass one after the other: where the backend prefers short chains (a GPU, whose sweep is as long as its output
     * block's branch) and the output block, relaxed plainly, is one linear op. The CPU keeps the plain evaluation.
     */
    private boolean outputOnto(int first) {
        int depth = model.depth();
        return be.prefersShortChains() && depth - 1 >= first && model.blocks().get(depth - 1).isOneLinearOp();
    }

    /**
     * Layer l's STRICT update from its error this sweep (eps_1 = -d_1; above, {@link #predictHidden}'s) and its feedback:
     * d_l += eta (eps_l - feedback), v_l = vhat_l + d_l.
     */
    private void strictUpdate(Workspace ws, int l, float eta, boolean last) {
        // Layer 1's prediction is vhat_1 itself, its error -d_1; that is only read after the sweeps (block 0's update, the returned errors).
        if (l == 1) be.pcStrictUpdate(ws.vhat(1), ws.vhat(1), ws.feedback[1], ws.displacement[1], ws.belief[1], last ? ws.error[1] : null, eta);
        else be.pcStrictStep(ws.error[l], ws.vhat(l), ws.feedback[l], ws.displacement[l], ws.belief[l], eta);
    }

    /**
     * A sweep's predictions f_b(v_{b-1}) from the start-of-sweep beliefs (block 1's through the condensed layer one, where
     * there is one), with the hidden layers' errors ({@link #predictHidden}), and eps_L, the loss gradient at the predicted output.
     */
    void predict(Workspace ws, int first, Condensed layerOne, boolean outputOnto) {
        int depth = model.depth();
        if (layerOne != null) condensedPrediction(ws, layerOne);
        for (int b = first; b < depth; b++) {
            if (b < depth - 1) predictHidden(ws, b);
            else predictOutput(ws, b, outputOnto);
        }
        lossGradient(ws, depth == 1 ? ws.vhat(1) : ws.sweep[depth - 1].output(), ws.sweepLoss, ws.error[depth]);
    }

    /**
     * Block b evaluated at v_b into sweep[b], and the error of the hidden layer b + 1 it predicts, eps = (f_b(v_b) -
     * vhat_{b+1}) - d_{b+1}, the prediction's change from d_b less d_{b+1} ({@link Block#forwardIncrement}), with eps f'
     * for {@link #feedBack} where the block forms it.
     */
    private void predictHidden(Workspace ws, int b) {
        model.blocks().get(b).forwardIncrement(be, ws.ff[b], ws.belief[b], ws.displacement[b], ws.sweep[b], ws.displacement[b + 1], ws.error[b + 1], true);
    }

    /** Block 1 through the condensed layer one, and where layer 2 is hidden its error, as {@link #predictHidden}. */
    private void condensedPrediction(Workspace ws, Condensed layerOne) {
        layerOne.forward(be, ws, model.depth() > 2 ? ws.displacement[2] : null, ws.error[2]);
    }

    /** Beliefs v_l = vhat_l (displacement 0) for the layers from {@code first} up, before STRICT's or PC's first sweep. */
    private void startAtVhat(Workspace ws, int first) {
        eachBlock(ws, first, model.depth(), l -> 2 * layerSizes[l], l -> {
            be.copy(ws.vhat(l), ws.belief[l]);
            be.fill(ws.displacement[l], 0f);
        });
    }

    /**
     * The first round of a STRICT or Z-IL sweep, a branch per block b from the start-of-sweep beliefs: its
     * prediction f_b(v_{b-1}) (block 1's through the condensed layer one, where there is one), and for
     * b >= {@code first} the error of layer b + 1 ({@link #predictHidden}; the loss gradient at the predicted output)
     * and the feedback J_b^T eps_{b+1} to layer b, with b's parameter gradients where {@code parameters} says. The output
     * block is evaluated onto its zff where {@code outputOnto} ({@link #outputOnto}). One object is the round's bodies and
     * their work, built once and run at every sweep.
     */
    final class FeedBackRound implements java.util.function.IntConsumer, java.util.function.IntToDoubleFunction {
        private final Workspace ws;
        private final int first;
        private final Condensed layerOne;
        private final java.util.function.IntPredicate parameters;
        private final boolean outputOnto;
        /** Whether block 1's branch also pulls eps_2 back for the condensed layer 1 ({@link Condensed#pullBack}). */
        private final boolean layerOnePullBack;

        FeedBackRound(Workspace ws, int first, Condensed layerOne, java.util.function.IntPredicate parameters, boolean outputOnto, boolean layerOnePullBack) {
            this.ws = ws;
            this.first = first;
            this.layerOne = layerOne;
            this.parameters = parameters;
            this.outputOnto = outputOnto;
            this.layerOnePullBack = layerOnePullBack;
        }

        void run() {
            if (model.depth() == 1) lossGradient(ws, ws.vhat(1), ws.sweepLoss, ws.error[1]);
            else eachBlock(ws, layerOne != null ? 1 : first, model.depth(), this, this);
        }

        /** Block b's work: its GEMM rounds (prediction, feedback and, where asked, parameter gradients) times its multiply-adds. */
        @Override public double applyAsDouble(int b) { return (b < first ? 1 : parameters.test(b) ? 3 : 2) * blockMacs[b]; }

        @Override public void accept(int b) {
            int depth = model.depth();
            if (b < first) {
                condensedPrediction(ws, layerOne);
                if (b == depth - 1) lossGradient(ws, ws.sweep[b].output(), ws.sweepLoss, ws.error[depth]);
                if (layerOnePullBack) layerOne.pullBack(be, ws);
                return;
            }
            if (b < depth - 1) {
                predictHidden(ws, b);
            } else {
                predictOutput(ws, b, outputOnto);
                lossGradient(ws, ws.sweep[b].output(), ws.sweepLoss, ws.error[depth]);
            }
            feedBack(ws, b, parameters.test(b) ? 1f : 0f);
        }
    }

    /** The output block b at v_b into sweep[b]: onto the zff already there ({@link #outputOnto}), or plainly. */
    private void predictOutput(Workspace ws, int b, boolean onto) {
        Block block = model.blocks().get(b);
        if (onto) block.forwardDisplacedOnto(be, ws.displacement[b], ws.belief[b], ws.sweep[b]);
        else block.forward(be, ws.belief[b], ws.sweep[b]);
    }

    /**
     * A sweep's feedback to layer b, J_b^T eps_{b+1}, at the start-of-sweep beliefs (and b's parameter gradients with
     * {@code parameterScale}): from eps_{b+1} f' where {@link #predictHidden} formed it beside the error.
     */
    void feedBack(Workspace ws, int b, float parameterScale) {
        Block block = model.blocks().get(b);
        if (b < model.depth() - 1 && block.incrementFormsDelta()) block.backwardBelowOutput(be, ws.sweep[b], ws.feedback[b], parameterScale);
        else block.backward(be, ws.sweep[b], ws.error[b + 1], ws.feedback[b], parameterScale);
    }

    /**
     * Z-IL: STRICT's sweeps with eta = 1 from v = vhat, L of them. Sweep s moves the layers the error
     * has reached: before sweep s only v_{L-1} .. v_{L-s+1} have moved, so at its start eps_{L-s+1}
     * is backprop's dL/dvhat_{L-s+1} and the layers below block L-s still sit at vhat. Block b
     * therefore takes J_theta(vhat_b)^T eps_{b+1} at sweep L - b: backprop's gradient, from local
     * quantities only.
     */
    void zil(Workspace ws, boolean full) {
        int depth = model.depth();
        startAtVhat(ws, 1);
        for (int s = 1; s <= depth; s++) {
            int sweep = s;
            if (be.runsBranchesAtOnce()) {
                new FeedBackRound(ws, 1, null, b -> sweep == depth - b, false, false).run();
                eachBlock(ws, 1, depth, layerSize, l -> strictUpdate(ws, l, 1f, true));
            } else {
                predict(ws, 1, null, false);
                for (int l = depth - 1; l >= 1; l--) {
                    feedBack(ws, l, sweep == depth - l ? 1f : 0f);
                    strictUpdate(ws, l, 1f, true);
                }
            }
        }
        model.blocks().get(0).backward(be, ws.ff[0], ws.error[1], null, 1f); // eps_1 at the start of sweep L
        if (full) be.copy(ws.vhat(depth), ws.belief[depth]);
    }
}
