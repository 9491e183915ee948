package io.predcode.core.pc;

import io.predcode.core.nn.Block;
import io.predcode.core.nn.Loss;
import io.predcode.core.nn.Model;
import io.predcode.spi.Tensor;

import java.util.Arrays;
import java.util.List;

/**
 * PC and iPC: the beliefs relaxed for T steps by a belief optimizer on the energy's gradient, PC's parameter updates
 * at the relaxed state, iPC's at every step; nudged or not. Where the backend prefers short chains of ops, SGD's steps
 * are folded into the feedback GEMMs instead ({@link FoldedRelaxations}). Part of {@link PcEngine} (see {@link EngineCore}).
 */
abstract sealed class Relaxations extends Sweeps permits FoldedRelaxations {
    Relaxations(Model model, Loss loss) { super(model, loss); }

    /** Whether a relaxation by SGD on the beliefs folds each step into the feedback GEMMs ({@link FoldedRelaxations#folds}). */
    abstract boolean folds(Workspace ws);

    /** PC's relaxation folded into the feedback GEMMs ({@link FoldedRelaxations#relaxFolded}); whether it wrote the energy terms. */
    abstract boolean relaxFolded(Workspace ws, float eta, int n, boolean full, float beta, boolean withFeedforwardLoss, boolean errorAtVhat, float momentum,
                                 boolean perSample, boolean withEnergy);

    /** iPC's relaxation folded into the feedback GEMMs ({@link FoldedRelaxations#ipcFolded}); whether it wrote the energy terms. */
    abstract boolean ipcFolded(Workspace ws, float eta, int n, boolean full, float beta, java.util.function.IntConsumer weightStep, boolean withFeedforwardLoss,
                               boolean errorAtVhat, boolean withEnergy);

    /** Centred nudging's updates from its positive relaxation, one tensor per parameter; allocated on first use. */
    io.predcode.spi.Scope heldScope;
    Tensor[] held;

    /**
     * PC and iPC: STRICT's sweep, every layer relaxed in its own space, the step on each belief taken
     * by the belief optimizer on the energy's gradient J_{l+1}(v_l)^T eps_{l+1} - eps_l. With plain
     * SGD the step is STRICT's displacement += eta (eps_l - feedback), through STRICT's own fused op; on
     * a GPU, SGD's step (with or without momentum) is folded into the feedback GEMMs where the blocks
     * allow ({@link #relaxFolded}). Centred nudging relaxes twice, with +beta and -beta,
     * and averages the two updates; where the step is {@code guarded}, the first relaxation's energy is checked too.
     *
     * @return whether the relaxation wrote the energy terms (where {@code guarded}; see {@link #relax})
     */
    boolean standard(Workspace ws, Algorithm algorithm, float eta, int n, boolean full, java.util.function.IntConsumer weightStep, boolean errorAtVhat,
                  boolean guarded) {
        float beta = nudging.kind() == Nudging.Kind.NEGATIVE ? -nudging.beta() : nudging.beta();
        if (nudging.kind() != Nudging.Kind.CENTRED) {
            return relax(ws, algorithm == Algorithm.IPC, eta, n, full, beta, weightStep, lossBeside(algorithm, n), errorAtVhat, guarded);
        }
        List<io.predcode.core.nn.Parameter> ps = List.copyOf(model.parameters().values());
        relax(ws, false, eta, n, full, beta, null, false, false, false);
        if (guarded) { // a first relaxation that ran off leaves NaN in the held updates, and the second's energy finite
            writeEnergyTerms(ws, algorithm);
            ws.writeFirstRelaxationGuard(be, model.depth());
        }
        for (int i = 0; i < ps.size(); i++) be.copy(ps.get(i).grad(), held[i]);
        relax(ws, false, eta, n, full, -beta, null, false, false, false);
        for (int i = 0; i < ps.size(); i++) be.add(0.5f, held[i], 0.5f, ps.get(i).grad(), ps.get(i).grad());
        return false;
    }

    /**
     * One relaxation of PC ({@code incremental} false: the parameter updates at the end) or iPC (true:
     * at every step, from the state the step's belief update reads, each followed by
     * {@code weightStep}). {@code beta} != 0 nudges the output towards h = u - beta dl/du at the
     * feedforward output u, kept in belief[L] during the relaxation. {@code withFeedforwardLoss} computes the
     * step's feedforward loss beside the learning step's blocks (iPC's: its first step's; see {@link #lossBeside}). {@code errorAtVhat}: the feedforward pass already formed
     * the first step's output error. {@code withEnergy}: the step checks its energy; a relaxation may write the terms
     * itself, where they can run beside its learning step, and returns whether it did (else the caller writes them).
     */
    boolean relax(Workspace ws, boolean incremental, float eta, int n, boolean full, float beta, java.util.function.IntConsumer weightStep, boolean withFeedforwardLoss,
                  boolean errorAtVhat, boolean withEnergy) {
        boolean perSample = energy == Energy.PER_SAMPLE;
        if (!beliefOptimizer.isAdam() && (perSample || !incremental) && folds(ws)) {
            if (!incremental) return relaxFolded(ws, eta, n, full, beta, withFeedforwardLoss, errorAtVhat, beliefOptimizer.momentum(), perSample, withEnergy);
            return ipcFolded(ws, eta, n, full, beta, weightStep, withFeedforwardLoss, errorAtVhat, withEnergy);
        }
        int depth = model.depth();
        List<Block> blocks = model.blocks();
        Tensor target = nudgedTarget(ws, beta); // nudging relaxes each sample's own energy (run checks it)
        float updateScale = updateScale(ws, perSample, beta);
        float parameterScale = incremental ? updateScale : 0f; // the parameter gradients a step forms: iPC's, at every step
        // The start runs beside the first step's first round, which reads none of it (PC's, and iPC's where it takes the
        // error wave): on a GPU, not one after another.
        Runnable[] start = relaxationStart(ws, incremental ? depth : depth - n, !incremental && !perSample);
        boolean terms = termsBeside(withEnergy);
        boolean ipcWave = ipcWave(incremental, n);
        boolean startBeside = (!incremental || ipcWave) && be.runsBranchesAtOnce() && depth > 1;
        // Otherwise the start comes first: iPC's first round then reads the beliefs it copies.
        if (!startBeside) each(0, start.length, i -> 1, 1, i -> start[i].run(), NONE);
        for (int s = 1; s <= n; s++) {
            // The error wave: before step s only layers L-s+1 and up can have moved (the first step moves v_{L-1} alone,
            // each step one layer more), so the blocks below still give their feedforward values and the layers
            // below L-s get a zero gradient: both are skipped as exact zeros. iPC's first step too (its weights have not
            // moved yet): its hidden blocks' parameter gradients are zeros, filled beside the output block's; from its
            // second step on every block moves, since each optimizer step moves every weight.
            boolean wave = !incremental || s == 1 && ipcWave;
            int step = s, moved = wave ? Math.max(1, depth - s + 1) : 1, active = wave ? Math.max(1, depth - s) : 1;
            // The output's loss is reported from the final state: PC's learning step computes it; iPC has none, so its last step does.
            boolean withLoss = incremental && s == n;
            // Where ops in a row set the pace (a GPU), iPC's block 0 forms eps_1 and its gradients in the first round, beside
            // the other blocks, rather than from the error the belief update forms after them (in the wave's step they are
            // among the zeros), and the optimizer's step runs beside the belief updates, which read and write nothing of its:
            // three kernels fewer in a row a step. The CPU keeps the form with block 0's GEMMs split across its threads alone:
            // the GPU's form made PCX's iPC step 20% slower on 2 cores (6.9 against 5.7 ms, 2026-12-03).
            boolean stepBeside = incremental && be.prefersShortChains() && be.runsBranchesAtOnce() && depth > 1, blockZeroFirst = stepBeside && !wave;
            if (be.runsBranchesAtOnce() && depth > 1) {
                // Two rounds of independent branches, one per block, which the backend runs at once. First, block l
                // (l >= active) at the beliefs: its prediction of layer l + 1 (re-evaluated where its input moved), that
                // layer's error and the feedback J_l^T eps_{l+1} to layer l. iPC's weights change every step, so after its
                // first step layer 1's prediction too is recomputed, into sweep[0].
                StepRound r = round;
                r.ws = ws; r.target = target; r.perSample = perSample; r.withLoss = withLoss; r.incremental = incremental; r.ipcWave = ipcWave;
                r.blockZeroFirst = blockZeroFirst; r.errorAtVhat = errorAtVhat; r.step = step; r.moved = moved; r.eta = eta;
                r.parameterScale = parameterScale; r.updateScale = updateScale;
                eachBlock(ws, incremental && !wave ? 0 : active, depth, r.work, r.predictAndFeedBack,
                        s > 1 ? NONE : !incremental ? start : wave ? concat(ipcFirstBeside(ws, withFeedforwardLoss), start) : NONE);
                // Then each layer's belief update, from its start-of-step error (which the update writes again, the same, where
                // block 0's gradients read it after them) and its feedback; on a GPU, iPC's optimizer step beside them.
                eachBlock(ws, active, depth, layerSize, r.update, stepBeside ? afterFirstRound(ws, weightStep, s, s == n && terms) : NONE);
            } else {
                // One pass, fewer ops: the predictions, then top-down each layer's feedback and update, the update writing the
                // start-of-step error the block below reads next.
                if (incremental && wave) for (Runnable r : ipcFirstBeside(ws, withFeedforwardLoss)) r.run();
                if (incremental && !wave) blocks.get(0).forward(be, ws.x, ws.sweep[0]);
                for (int b = moved; b < depth; b++) blocks.get(b).forward(be, ws.belief[b], ws.sweep[b]);
                if (s > 1 || !errorAtVhat)
                    outputError(ws, depth - 1 >= moved ? ws.sweep[depth - 1].output() : depth == 1 && incremental ? ws.sweep[0].output() : ws.vhat(depth), target, perSample, withLoss);
                for (int l = depth - 1; l >= active; l--) {
                    feedBack(ws, l, moved, parameterScale);
                    beliefUpdate(ws, l, moved, incremental, eta, step, firstMove(l, incremental, ipcWave), true);
                }
            }
            if (incremental && !stepBeside) {
                // The CPU's form (see stepBeside): block 0's gradients from eps_1, which the step's belief update formed (in the
                // wave's step they are among the zeros), with a checked step's terms (its errors, all formed by now) beside them
                // in its last step where the backend writes them so; then the optimizer's step.
                if (!wave) {
                    if (s == n && terms) eachBlock(ws, 0, 1, b -> blockMacs[0], b -> blocks.get(0).backward(be, ws.sweep[0], ws.error[1], null, updateScale),
                            learningBeside(ws, false, Algorithm.IPC));
                    else blocks.get(0).backward(be, ws.sweep[0], ws.error[1], null, updateScale);
                }
                if (weightStep != null) weightStep.accept(s);
            }
        }
        if (incremental) {
            if (full) be.copy(ws.vhat(depth), ws.belief[depth]);
            return terms;
        } else if (perSample) {
            // PCX's learning step: the energy's parameter gradient at the relaxed state, errors and Jacobians both at the final beliefs.
            // The output block's branch forms the output's energy term too (the step's loss). On a GPU a checked step's term
            // of the layer each block's branch forms runs beside that block's backward pass, not one kernel more after them.
            eachBlock(ws, 0, depth, b -> (b == 0 ? 1 : 2) * blockMacs[b], b -> {
                int term = b == depth - 1 ? 0 : b + 1;
                Runnable beside = terms ? () -> ws.writeEnergyTerm(be, term, Algorithm.PC) : null;
                if (b > 0) forwardErrorAndBackward(ws, b, target, perSample, b == depth - 1, null, updateScale, beside);
                else errorAndBackward(ws, b, ws.ff[0], target, perSample, depth == 1, null, updateScale, beside);
            }, withFeedforwardLoss ? new Runnable[]{() -> feedforwardLoss(ws)} : NONE);
            if (full) be.copy(ws.vhat(depth), ws.belief[depth]);
            return terms;
        } else {
            // Torch2PC's: the errors from the start of the last sweep, as STRICT; on a GPU the checked step's terms beside them.
            updatesAtFinalBeliefs(ws, full, withFeedforwardLoss, updateScale, terms ? Algorithm.PC : null);
            return terms;
        }
    }

    /**
     * A relaxation step's two rounds of branches ({@link #relax}, where the backend runs branches at once): the step's
     * settings in fields, which {@code relax} sets before each round, read by bodies built once, so a step builds no
     * lambdas (each captured the step's values: half the JVM garbage of a PC step). An engine serves one thread at a
     * time; the rounds' branches read the fields after the backend hands them the round.
     */
    private final class StepRound {
        Workspace ws;
        Tensor target;
        boolean perSample, withLoss, incremental, ipcWave, blockZeroFirst, errorAtVhat;
        int step, moved;
        float eta, parameterScale, updateScale;

        /** The first round's work per block: block l's prediction of layer l + 1 (where its input moved), its error and feedback. */
        final java.util.function.IntToDoubleFunction work = l -> (l == 0 ? blockZeroFirst ? 2 : 1 : (l >= moved ? 2 : 1) + (incremental ? 1 : 0)) * blockMacs[l];

        /** The first round: block l at the beliefs, layer l + 1's error, the feedback to layer l (block 0: its prediction, or its gradients first). */
        final java.util.function.IntConsumer predictAndFeedBack = l -> {
            if (l == 0) {
                if (blockZeroFirst) forwardHiddenErrorAndBackward(ws, 0, ws.x, null, updateScale, null);
                else model.blocks().get(0).forward(be, ws.x, ws.sweep[0]);
                return;
            }
            if (l >= moved) forwardErrorAndBackward(ws, l, target, perSample, withLoss, ws.feedback[l], parameterScale, null);
            else if (step == 1 && errorAtVhat && l == model.depth() - 1) feedBack(ws, l, moved, parameterScale);
            else errorAndBackward(ws, l, ws.ff[l], target, perSample, withLoss, ws.feedback[l], parameterScale, null);
        };

        /** The second round: layer l's belief update. */
        final java.util.function.IntConsumer update = l -> beliefUpdate(ws, l, moved, incremental, eta, step, firstMove(l, incremental, ipcWave), !blockZeroFirst);
    }

    private final StepRound round = new StepRound();

    /** The parameter updates' scale: they are J^T eps summed over the batch; per sample, their mean; nudged, over beta. */
    float updateScale(Workspace ws, boolean perSample, float beta) { return (perSample ? 1f / lossBatch(ws) : 1f) / (beta != 0 ? beta : 1f); }

    /**
     * A relaxation on each sample's own energy nudged by {@code beta}: the output's target h = u - beta dl/du at the
     * feedforward output u, written into belief[L] and returned; null where beta is 0 (the target is y).
     */
    Tensor nudgedTarget(Workspace ws, float beta) {
        if (beta == 0) return null;
        int depth = model.depth();
        be.add(1f, ws.vhat(depth), -beta * perSampleScale(lossBatch(ws)), ws.dLdy, ws.belief[depth]);
        return ws.belief[depth];
    }

    /**
     * The ops that start a PC or iPC relaxation, independent of each other, two a runnable ({@link #inPairs}): every hidden layer's displacement at 0
     * and its belief at vhat below layer {@code copiesBelow} (above it, the relaxation writes each belief before it
     * reads it: PC's error wave reaches layer l at step L - l and reads v_l only from then on). Adam's moments start
     * at 0 and take the zero steps of a layer the wave reaches late (its bias correction counts them); momentum's
     * velocity needs no start: zero steps leave it 0, so a layer's first real step is its first (see
     * {@link #beliefUpdate}); plain SGD keeps no state. {@code zeroErrors}: Torch2PC's energy takes its updates from
     * the errors as the last step left them, 0 where the wave never came (the per-sample energy recomputes every error
     * at the final beliefs).
     */
    private Runnable[] relaxationStart(Workspace ws, int copiesBelow, boolean zeroErrors) {
        // The same start as the last relaxation's (the same workspace and settings, as every step of a run): built once.
        boolean adam = beliefOptimizer.isAdam();
        if (ws == startFor && copiesBelow == startCopiesBelow && zeroErrors == startZeroErrors && adam == startAdam) return lastStart;
        List<Runnable> ops = new java.util.ArrayList<>();
        for (int l = 1; l < model.depth(); l++) {
            Tensor d = ws.displacement[l], vhat = ws.vhat(l), v = ws.belief[l], m = ws.beliefMoment[l], m2 = ws.beliefSecondMoment[l], e = ws.error[l];
            ops.add(() -> be.fill(d, 0f));
            if (l < copiesBelow) ops.add(() -> be.copy(vhat, v));
            if (adam) {
                ops.add(() -> be.fill(m, 0f));
                ops.add(() -> be.fill(m2, 0f));
            }
            if (zeroErrors) ops.add(() -> be.fill(e, 0f));
        }
        startFor = ws;
        startCopiesBelow = copiesBelow;
        startZeroErrors = zeroErrors;
        startAdam = adam;
        return lastStart = inPairs(ops);
    }

    /** The last relaxation's start ({@link #relaxationStart}), and what it was built for. */
    private Runnable[] lastStart;
    private Workspace startFor;
    private int startCopiesBelow;
    private boolean startZeroErrors, startAdam;

    /** PC's feedback J_l^T eps_{l+1} to layer l, at block l's point this step (its feedforward one below the wave); iPC's parameter gradients too. */
    void feedBack(Workspace ws, int l, int moved, float parameterScale) {
        model.blocks().get(l).backward(be, l >= moved ? ws.sweep[l] : ws.ff[l], ws.error[l + 1], ws.feedback[l], parameterScale);
    }

    /**
     * Layer l's belief step by the belief optimizer, from its prediction this step and its feedback; writes its
     * start-of-step error. Each optimizer's step is one fused pass (eps_l, the gradient feedback - eps_l, SGD's velocity
     * or Adam's moments, d_l, v_l).
     */
    private void beliefUpdate(Workspace ws, int l, int moved, boolean incremental, float eta, int step, int first, boolean writesError) {
        BeliefOptimizer o = beliefOptimizer;
        Tensor error = writesError ? ws.error[l] : null; // null where the step's first round formed it, and others read it beside
        // Layer 1's prediction formed again by block 0 where every block moved (moved 1): iPC's, whose weights move, after its first step.
        Tensor prediction = l - 1 >= moved ? ws.sweep[l - 1].output() : l == 1 && moved == 1 && incremental ? ws.sweep[0].output() : ws.vhat(l);
        if (o.isAdam()) be.pcAdamUpdate(prediction, ws.vhat(l), ws.feedback[l], ws.displacement[l], ws.beliefMoment[l], ws.beliefSecondMoment[l], ws.belief[l],
                error, eta, o.beta1(), o.beta2(), o.eps(), step);
        else if (o.momentum() == 0f) be.pcStrictUpdate(prediction, ws.vhat(l), ws.feedback[l], ws.displacement[l], ws.belief[l], error, eta);
        else be.pcMomentumUpdate(prediction, ws.vhat(l), ws.feedback[l], ws.displacement[l], ws.beliefMoment[l], ws.belief[l], error, eta, o.momentum(),
                step == first);
    }

    /**
     * What runs beside the belief updates of an iPC step whose first round formed every gradient ({@code stepBeside} in
     * {@link #relax}): the optimizer's step, and in a checked step's last, its energy terms (from the errors the first
     * round formed).
     */
    private Runnable[] afterFirstRound(Workspace ws, java.util.function.IntConsumer weightStep, int s, boolean withTerms) {
        return concat(withTerms ? learningBeside(ws, false, Algorithm.IPC) : NONE, optimizerStep(weightStep, s));
    }

    /** iPC's optimizer step after inference step s as a branch beside others: none where the weights are held (no {@code weightStep}). */
    static Runnable[] optimizerStep(java.util.function.IntConsumer weightStep, int s) {
        return weightStep == null ? NONE : new Runnable[]{() -> weightStep.accept(s)};
    }

    /**
     * Whether iPC's first step takes PC's error wave ({@link #relax}): where it has a hidden layer and a step after it
     * (with one step, that step also writes what the step reports from its last step).
     */
    boolean ipcWave(boolean incremental, int n) { return incremental && n > 1 && model.depth() > 1; }

    /** The step at which layer l first moves: where the error wave reaches it; iPC's layers all at its first step, or below L-1 at its second after its wave. */
    private int firstMove(int l, boolean incremental, boolean ipcWave) {
        int reach = Math.max(1, model.depth() - l);
        return !incremental ? reach : ipcWave ? Math.min(2, reach) : 1;
    }

    /**
     * Whether the step's feedforward loss runs beside the relaxation's work rather than at the head of the step, where it
     * would lengthen the chain of ops a GPU runs one after another: PC's and STRICT's beside their learning step (their
     * relaxations never read dL/dy; nudging's target does), iPC's beside its first step where that step takes the error
     * wave (before the first optimizer step, which the loss guards).
     */
    boolean lossBeside(Algorithm algorithm, int n) {
        return algorithm == Algorithm.STRICT || !nudging.active() && (algorithm == Algorithm.PC || algorithm == Algorithm.IPC && ipcWave(true, n));
    }

    private Runnable[] zeroHiddenGradients;

    /**
     * What runs beside the output block's work in iPC's first step, where it takes the error wave: fills of every
     * parameter gradient of the blocks below the output (their errors are 0), a branch each, and with {@code withLoss}
     * the step's feedforward loss and correct count ({@link #lossBeside}, {@link #feedforwardLoss}).
     */
    Runnable[] ipcFirstBeside(Workspace ws, boolean withLoss) {
        if (zeroHiddenGradients == null) {
            List<Runnable> fills = new java.util.ArrayList<>();
            for (Block b : model.blocks().subList(0, model.depth() - 1))
                for (io.predcode.core.nn.Parameter p : b.parameters()) fills.add(() -> be.fill(p.grad(), 0f));
            zeroHiddenGradients = fills.toArray(Runnable[]::new);
        }
        if (!withLoss) return zeroHiddenGradients;
        // The loss and the correct count, each a branch of its own (they write different scalars): on a GPU one kernel in a row.
        return concat(zeroHiddenGradients, new Runnable[]{() -> lossGradient(ws, ws.vhat(model.depth()), ws.scalars, ws.dLdy), () -> countCorrect(ws)});
    }

    /** Whether this step relaxes twice (centred nudging). */
    boolean centred(Algorithm algorithm) { return algorithm.standard() && nudging.kind() == Nudging.Kind.CENTRED; }

    /** The energy's terms into the workspace's scalars; on a GPU side by side, one kernel on the step's chain. */
    void writeEnergyTerms(Workspace ws, Algorithm algorithm) {
        int depth = model.depth();
        if (be.prefersShortChains()) each(0, depth, l -> l == 0 ? 1 : ws.error[l].size(), 1, l -> ws.writeEnergyTerm(be, l, algorithm), NONE);
        else ws.writeEnergyTerms(be, depth, algorithm);
    }

    /** Allocates centred nudging's held updates, outside any recorded step. */
    void holdUpdates() {
        if (held != null) return;
        heldScope = new io.predcode.spi.Scope(be);
        held = model.parameters().values().stream().map(p -> heldScope.allocate(p.grad().shape())).toArray(Tensor[]::new);
    }

    /**
     * Layer l + 1's error from block l's prediction of it on tape {@code t} (the output error above the last block,
     * a hidden error below), then block l's backward pass from it: J_l^T eps_{l+1} into {@code dx} where not null,
     * the parameter gradients where asked; {@code beside} (where not null) a branch beside the backward pass.
     */
    private void errorAndBackward(Workspace ws, int l, Block.Tape t, Tensor target, boolean perSample, boolean withLoss, Tensor dx, float parameterScale,
                                  Runnable beside) {
        if (l + 1 < model.depth()) {
            hiddenErrorAndBackward(ws, l, t, dx, parameterScale, beside);
            return;
        }
        outputError(ws, t.output(), target, perSample, withLoss);
        outputBackward(ws, l, t, dx, parameterScale, beside);
    }

    /** The output block l's backward pass from eps_L, with {@code beside} (where not null) a branch beside it (the output's energy term). */
    private void outputBackward(Workspace ws, int l, Block.Tape t, Tensor dx, float parameterScale, Runnable beside) {
        Block block = model.blocks().get(l);
        if (beside == null) block.backward(be, t, ws.error[l + 1], dx, parameterScale);
        else be.branches(new double[]{blockMacs[l] * ws.batch, 1}, () -> block.backward(be, t, ws.error[l + 1], dx, parameterScale), beside);
    }

    /**
     * Block l evaluated at its belief into sweep[l], then {@link #errorAndBackward}: the evaluation and the error
     * in one op where the block allows (a hidden error: {@link #forwardHiddenErrorAndBackward}; an output error
     * by a subtraction: {@link Block#forwardWithOutputError}).
     */
    private void forwardErrorAndBackward(Workspace ws, int l, Tensor target, boolean perSample, boolean withLoss, Tensor dx, float parameterScale,
                                         Runnable beside) {
        if (l + 1 < model.depth()) {
            forwardHiddenErrorAndBackward(ws, l, ws.belief[l], dx, parameterScale, beside);
            return;
        }
        Block block = model.blocks().get(l);
        // With the loss, in the same op: on a GPU in the kernel that forms the error.
        if (outputLossApart(target, perSample) && block.forwardWithOutputError(be, ws.belief[l], ws.sweep[l], target != null ? target : ws.y, ws.error[l + 1],
                withLoss ? ws.sweepLoss : null, 0, outputLossScale(ws, target))) {
            outputBackward(ws, l, ws.sweep[l], dx, parameterScale, beside);
            return;
        }
        block.forward(be, ws.belief[l], ws.sweep[l]);
        errorAndBackward(ws, l, ws.sweep[l], target, perSample, withLoss, dx, parameterScale, beside);
    }

    /**
     * Block l (below the last) evaluated at {@code input} (its belief; block 0's x) into sweep[l], then
     * {@link #hiddenErrorAndBackward}: the evaluation and the error in one op where the block allows ({@link Block#forwardWithError}).
     */
    private void forwardHiddenErrorAndBackward(Workspace ws, int l, Tensor input, Tensor dx, float parameterScale, Runnable beside) {
        Block block = model.blocks().get(l);
        if (block.forwardWithError(be, input, ws.sweep[l], ws.vhat(l + 1), ws.displacement[l + 1], ws.error[l + 1])) {
            if (beside == null) block.backwardBelowOutput(be, ws.sweep[l], dx, parameterScale);
            else be.branches(new double[]{blockMacs[l] * ws.batch, layerSizes[l + 1] * ws.batch}, () -> block.backwardBelowOutput(be, ws.sweep[l], dx, parameterScale), beside);
            return;
        }
        block.forward(be, input, ws.sweep[l]);
        hiddenErrorAndBackward(ws, l, ws.sweep[l], dx, parameterScale, beside);
    }

    /**
     * {@link #errorAndBackward} below the last block. Where block l ends in an activation whose f' its forward kept,
     * the error and the backward's first step, eps * f', are one op (a kernel fewer one after another on a GPU).
     */
    void hiddenErrorAndBackward(Workspace ws, int l, Block.Tape t, Tensor dx, float parameterScale) { hiddenErrorAndBackward(ws, l, t, dx, parameterScale, null); }

    /** As {@link #hiddenErrorAndBackward(Workspace, int, Block.Tape, Tensor, float)}, with {@code beside} (where not null) a branch beside the backward pass. */
    void hiddenErrorAndBackward(Workspace ws, int l, Block.Tape t, Tensor dx, float parameterScale, Runnable beside) {
        Block block = model.blocks().get(l);
        Tensor derivative = block.outputDerivative(t);
        if (derivative == null) hiddenError(ws, l + 1, t.output());
        else be.pcPredictionError(t.output(), ws.vhat(l + 1), ws.displacement[l + 1], ws.error[l + 1], derivative, block.outputDerivativeGradient(t));
        if (beside != null) be.branches(new double[]{blockMacs[l] * ws.batch, layerSizes[l + 1] * ws.batch}, () -> backward(block, ws, l, t, dx, parameterScale), beside);
        else backward(block, ws, l, t, dx, parameterScale);
    }

    /** Block l's backward pass from eps_{l+1}, through its output's derivative where the error op already applied it. */
    private void backward(Block block, Workspace ws, int l, Block.Tape t, Tensor dx, float parameterScale) {
        if (block.outputDerivative(t) == null) block.backward(be, t, ws.error[l + 1], dx, parameterScale);
        else block.backwardBelowOutput(be, t, dx, parameterScale);
    }

    /** eps_l = (f_l(v_{l-1}) - vhat_l) - d_l from the displacement state, into error[l]. */
    private void hiddenError(Workspace ws, int l, Tensor prediction) { be.pcPredictionError(prediction, ws.vhat(l), ws.displacement[l], ws.error[l]); }
}
