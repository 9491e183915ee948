package io.predcode.core.pc;

import io.predcode.core.nn.Block;
import io.predcode.core.nn.Loss;
import io.predcode.core.nn.Model;
import io.predcode.spi.Backend;
import io.predcode.spi.BeliefStep;
import io.predcode.spi.Tensor;

import java.util.Arrays;
import java.util.List;

/**
 * PC and iPC: the beliefs relaxed for T steps by a belief optimizer on the energy's gradient, PC's parameter updates
 * at the relaxed state, iPC's at every step; nudged or not; folded into the feedback GEMMs, and in the Gram form,
 * where the backend prefers short chains of ops. Part of {@link PcEngine} (see {@link EngineCore}).
 */
abstract sealed class Relaxations extends Sweeps permits PcEngine {
    Relaxations(Model model, Loss loss) { super(model, loss); }

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
     */
    void standard(Workspace ws, Algorithm algorithm, float eta, int n, boolean full, java.util.function.IntConsumer weightStep, boolean errorAtVhat,
                  boolean guarded) {
        float beta = nudging.kind() == Nudging.Kind.NEGATIVE ? -nudging.beta() : nudging.beta();
        if (nudging.kind() != Nudging.Kind.CENTRED) {
            relax(ws, algorithm == Algorithm.IPC, eta, n, full, beta, weightStep, lossInLastRound(algorithm), errorAtVhat);
            return;
        }
        List<io.predcode.core.nn.Parameter> ps = List.copyOf(model.parameters().values());
        relax(ws, false, eta, n, full, beta, null, false, false);
        if (guarded) { // a first relaxation that ran off leaves NaN in the held updates, and the second's energy finite
            writeEnergyTerms(ws, algorithm);
            ws.writeFirstRelaxationGuard(be, model.depth());
        }
        for (int i = 0; i < ps.size(); i++) be.copy(ps.get(i).grad(), held[i]);
        relax(ws, false, eta, n, full, -beta, null, false, false);
        for (int i = 0; i < ps.size(); i++) be.add(0.5f, held[i], 0.5f, ps.get(i).grad(), ps.get(i).grad());
    }

    /**
     * One relaxation of PC ({@code incremental} false: the parameter updates at the end) or iPC (true:
     * at every step, from the state the step's belief update reads, each followed by
     * {@code weightStep}). {@code beta} != 0 nudges the output towards h = u - beta dl/du at the
     * feedforward output u, kept in belief[L] during the relaxation. {@code withFeedforwardLoss} computes the
     * step's feedforward loss beside the learning step's blocks. {@code errorAtVhat}: the feedforward pass already formed
     * the first step's output error.
     */
    void relax(Workspace ws, boolean incremental, float eta, int n, boolean full, float beta, java.util.function.IntConsumer weightStep, boolean withFeedforwardLoss,
                       boolean errorAtVhat) {
        boolean perSample = energy == Energy.PER_SAMPLE;
        if (!beliefOptimizer.isAdam() && (perSample || !incremental) && folds(ws)) {
            if (incremental) ipcFolded(ws, eta, n, full, beta, weightStep);
            else relaxFolded(ws, eta, n, full, beta, withFeedforwardLoss, errorAtVhat, beliefOptimizer.momentum(), perSample);
            return;
        }
        int depth = model.depth();
        List<Block> blocks = model.blocks();
        Tensor target = nudgedTarget(ws, beta); // nudging relaxes each sample's own energy (run checks it)
        float updateScale = updateScale(ws, perSample, beta);
        float parameterScale = incremental ? updateScale : 0f; // the parameter gradients a step forms: iPC's, at every step
        // PC's start runs beside its first step's first round, which reads none of it: on a GPU, not one after another.
        Runnable[] start = relaxationStart(ws, incremental ? depth : depth - n, !incremental && !perSample);
        boolean startBeside = !incremental && be.runsBranchesAtOnce() && depth > 1;
        // Otherwise the start comes first, a branch per layer: iPC's first round reads the beliefs it copies.
        if (!startBeside) eachBlock(ws, 1, depth, layerSize, l -> start[l - 1].run());
        for (int s = 1; s <= n; s++) {
            // The error wave: before step s only layers L-s+1 and up can have moved (the first step moves v_{L-1} alone,
            // each step one layer more), so the blocks below still give their feedforward values and the layers
            // below L-s get a zero gradient: both are skipped as exact zeros. Not for iPC, whose weights move everywhere.
            int step = s, moved = incremental ? 1 : Math.max(1, depth - s + 1), active = incremental ? 1 : Math.max(1, depth - s);
            // The output's loss is reported from the final state: PC's learning step computes it; iPC has none, so its last step does.
            boolean withLoss = incremental && s == n;
            if (be.runsBranchesAtOnce() && depth > 1) {
                // Two rounds of independent branches, one per block, which the backend runs at once. First, block l
                // (l >= active) at the beliefs: its prediction of layer l + 1 (re-evaluated where its input moved), that
                // layer's error and the feedback J_l^T eps_{l+1} to layer l. iPC's weights change every step, so layer
                // 1's prediction too is recomputed, into sweep[0].
                eachBlock(ws, incremental ? 0 : active, depth, l -> (l == 0 ? 1 : (l >= moved ? 2 : 1) + (incremental ? 1 : 0)) * blockMacs[l], l -> {
                    if (l == 0) { blocks.get(0).forward(be, ws.x, ws.sweep[0]); return; }
                    if (l >= moved) forwardErrorAndBackward(ws, l, target, perSample, withLoss, ws.feedback[l], parameterScale);
                    else if (step == 1 && errorAtVhat && l == depth - 1) feedBack(ws, l, moved, parameterScale);
                    else errorAndBackward(ws, l, ws.ff[l], target, perSample, withLoss, ws.feedback[l], parameterScale);
                }, s == 1 && startBeside ? start : NONE);
                // Then each layer's belief update, from its start-of-step error (which the update writes again, the same) and its feedback.
                eachBlock(ws, active, depth, layerSize, l -> beliefUpdate(ws, l, moved, incremental, eta, step));
            } else {
                // One pass, fewer ops: the predictions, then top-down each layer's feedback and update, the update writing the
                // start-of-step error the block below reads next.
                if (incremental) blocks.get(0).forward(be, ws.x, ws.sweep[0]);
                for (int b = moved; b < depth; b++) blocks.get(b).forward(be, ws.belief[b], ws.sweep[b]);
                if (s > 1 || !errorAtVhat)
                    outputError(ws, depth - 1 >= moved ? ws.sweep[depth - 1].output() : depth == 1 && incremental ? ws.sweep[0].output() : ws.vhat(depth), target, perSample, withLoss);
                for (int l = depth - 1; l >= active; l--) {
                    feedBack(ws, l, moved, parameterScale);
                    beliefUpdate(ws, l, moved, incremental, eta, step);
                }
            }
            if (incremental) {
                blocks.get(0).backward(be, ws.sweep[0], ws.error[1], null, updateScale);
                if (weightStep != null) weightStep.accept(s);
            }
        }
        if (incremental) {
            if (full) be.copy(ws.vhat(depth), ws.belief[depth]);
        } else if (perSample) {
            // PCX's learning step: the energy's parameter gradient at the relaxed state, errors and Jacobians both at the final beliefs.
            // The output block's branch forms the output's energy term too (the step's loss).
            eachBlock(ws, 0, depth, b -> (b == 0 ? 1 : 2) * blockMacs[b], b -> {
                if (b > 0) forwardErrorAndBackward(ws, b, target, perSample, b == depth - 1, null, updateScale);
                else errorAndBackward(ws, b, ws.ff[0], target, perSample, depth == 1, null, updateScale);
            }, withFeedforwardLoss ? new Runnable[]{() -> feedforwardLoss(ws)} : NONE);
            if (full) be.copy(ws.vhat(depth), ws.belief[depth]);
        } else {
            updatesAtFinalBeliefs(ws, full, withFeedforwardLoss, updateScale); // Torch2PC's: the errors from the start of the last sweep, as STRICT
        }
    }

    /**
     * Whether a relaxation by SGD steps on the beliefs folds each step into the feedback GEMMs ({@link #relaxFolded},
     * {@link #ipcFolded}): on a backend that prefers short chains of ops to few rounds of branches (a GPU), with above
     * block 0 blocks whose feedback is one linear op's GEMM ({@link Block#folds}), the output block one linear op (whose
     * error the output error is, with no activation's f' to pull it back through). PC and iPC fold with SGD (with or
     * without momentum) on the beliefs, iPC on each sample's own energy only; STRICT does not fold (it forms its errors
     * from changes: {@link #strict}). On 2 CPU threads the folded step, with a round of GEMM branches more a step, was
     * 3-23% slower (bench/results/folded-belief-updates-2026-12-01.md).
     */
    private boolean folds(Workspace ws) {
        if (!be.prefersShortChains() || model.depth() < 2 || !model.blocks().get(model.depth() - 1).isOneLinearOp()) return false;
        for (int b = 1; b < model.depth(); b++)
            if (!model.blocks().get(b).folds(ws.sweep[b]) || !model.blocks().get(b).folds(ws.ff[b])) return false;
        return true;
    }

    /**
     * PC's relaxation with SGD on the beliefs, each step v_l += eta (eps_l - J_{l+1}^T eps_{l+1}) (with momentum, plus
     * momentum times the last step) folded into the ops that are there anyway: the op that forms eps_l also writes the
     * step's own terms ({@link BeliefStep}), and the feedback GEMM of block l adds -eta J^T eps_{l+1} onto them (beta 1).
     * A step is then two rounds, a branch per block each: the predictions with their errors, then the feedback GEMMs; on
     * a GPU a GEMM, a kernel and a GEMM one after another, where a pass for the update made it four.
     * <p>
     * The state is the displacement d_l = v_l - vhat_l, as STRICT's (the errors do not cancel in float32), and a block
     * predicts from it without forming v: its pre-activation is zff + d W^T, zff its feedforward one (the offset form of
     * {@link Backend#linear}). The displacements live in buffers that the steps write in turn: displacement[l],
     * feedback[l] (which this relaxation does not otherwise use) and with momentum beliefMoment[l] (the displacement two
     * steps back), ordered so that the last step writes displacement[l]. The error wave skips what {@link #relax} skips.
     * On each sample's own energy ({@code perSample}) the learning step is relax's per-sample one, each block's branch
     * also forming v = vhat + d for its parameter gradients, beside its prediction. On Torch2PC's energy (PC on it) the
     * output error is the batch loss's gradient, and the learning step is Torch2PC's: the errors as the last step found
     * them (0 where the wave never came), each block's Jacobian at the final beliefs. Where it can, the relaxation takes
     * the Gram form ({@link #gramFeedback}): a step is then a round of GEMMs and a round of error ops.
     */
    void relaxFolded(Workspace ws, float eta, int n, boolean full, float beta, boolean withFeedforwardLoss, boolean errorAtVhat, float momentum,
                             boolean perSample) {
        int depth = model.depth();
        List<Block> blocks = model.blocks();
        Tensor target = nudgedTarget(ws, beta);
        float updateScale = updateScale(ws, perSample, beta);
        Tensor[][] buffers = displacementBuffers(ws, momentum);
        int k = buffers.length;
        // Layer l's first step is step L - l, when the wave reaches it: its error and last step are then 0 (it and its
        // prediction are both at their feedforward values), so the feedback GEMM writes the step alone (beta 0). Every
        // other buffer starts at 0 (d before any step; all of them where the wave never comes), in a start that writes
        // nothing the first feedback round reads or writes and so runs beside it, a fill per branch.
        List<Runnable> fills = new java.util.ArrayList<>();
        for (int l = 1; l < depth; l++)
            for (int i = 0; i < k; i++)
                if (depth - l > n || i != (n - (depth - l)) % k) {
                    Tensor t = buffers[i][l];
                    fills.add(() -> be.fill(t, 0f));
                }
        if (!perSample) // Torch2PC's updates read every error; the last step writes those from layer L - n + 1 up
            for (int l = 1; l <= depth - n; l++) {
                Tensor t = ws.error[l];
                fills.add(() -> be.fill(t, 0f));
            }
        Runnable[] start = fills.toArray(Runnable[]::new);
        boolean startBeside = be.runsBranchesAtOnce();
        if (!startBeside) for (Runnable r : start) r.run();
        // Where the output's error is not formed in the op that evaluates the output (cross-entropy; Torch2PC's energy), each
        // feedback round also copies zff into the output block's output, beside the GEMMs, and the evaluation after it is a
        // GEMM onto it (displacedOutputError): a GEMM one after another where the offset took a GEMM and a pass.
        Block outputBlock = blocks.get(depth - 1);
        Runnable outputStart = outputLossApart(target, perSample) ? null : () -> outputBlock.startDisplaced(be, ws.ff[depth - 1], ws.sweep[depth - 1]);
        boolean gram = gramForm(ws, Algorithm.PC);
        Tensor[] d = new Tensor[depth];
        BeliefStep[] steps = new BeliefStep[depth];
        for (int s = 1; s <= n; s++) {
            // In the Gram form each moving block's next pre-activation is formed beside the step's feedback GEMMs, from a copy
            // of the step's terms: read by the next step, and after the last by the per-sample learning step. Torch2PC's
            // evaluates each block from its final displacement instead, so its last step's feedback round is the plain one.
            boolean gramRound = gram && (perSample || s < n);
            stepBuffers(buffers, n, s, eta, momentum, d, steps, gramRound ? ws.stepCopy : null);
            // The wave (see relax): blocks from `moved` up read moved beliefs; layers from `active` up move.
            int moved = Math.max(1, depth - s + 1), active = Math.max(1, depth - s);
            boolean outputErrorKnown = s == 1 && errorAtVhat;
            int step = s;
            // First, for each layer l from `moved` up, its error and its step's own terms, a branch per predicting block b = l - 1.
            eachBlock(ws, moved - 1, depth, b -> b >= moved && !gram ? blockMacs[b] : b + 1 < depth ? layerSizes[b + 1] : 1, b -> {
                Block block = blocks.get(b);
                if (b == depth - 1) {
                    if (b >= moved && gram) outputErrorFromProducts(ws, gramAddend(ws, step, b), target, perSample, false);
                    else if (b >= moved) displacedOutputError(ws, b, d[b], target, perSample, false);
                    else if (!outputErrorKnown) outputError(ws, ws.ff[b].output(), target, perSample, false);
                } else if (b >= moved && gram) {
                    block.errorFromProducts(be, ws.belief[b], ws.ff[b], ws.sweep[b], gramAddend(ws, step, b), ws.vhat(b + 1), d[b + 1], ws.error[b + 1], steps[b + 1]);
                } else if (b >= moved) {
                    block.forwardDisplacedWithError(be, d[b], ws.belief[b], ws.ff[b], ws.sweep[b], ws.vhat(b + 1), d[b + 1], ws.error[b + 1], steps[b + 1]);
                } else { // block b's input has not moved: its prediction is vhat_{b+1}, with f' from the feedforward pass (none needed below block 1)
                    Tensor derivative = b == 0 ? null : block.outputDerivative(ws.ff[b]);
                    be.pcPredictionError(ws.vhat(b + 1), ws.vhat(b + 1), d[b + 1], ws.error[b + 1], derivative,
                            derivative == null ? null : block.outputDerivativeGradient(ws.ff[b]), steps[b + 1]);
                }
            });
            // Then each moving layer's feedback GEMM, onto its step's own terms (the step itself where the layer moves first).
            Runnable[] beside = s == 1 && startBeside ? start : NONE;
            if (outputStart != null && !gramRound) {
                beside = Arrays.copyOf(beside, beside.length + 1);
                beside[beside.length - 1] = outputStart;
            }
            if (gramRound) gramFeedback(ws, step, moved, active, eta, steps, beside);
            else eachBlock(ws, active, depth, b -> blockMacs[b], b -> blocks.get(b).feedbackOnto(be, b >= moved ? ws.sweep[b] : ws.ff[b], ws.error[b + 1],
                    steps[b].next(), -eta, step > depth - b), beside);
        }
        if (!perSample) {
            torch2pcUpdates(ws, full, withFeedforwardLoss, updateScale);
            return;
        }
        // The learning step at the final displacements (in displacement[l]), as relax's per-sample one: a branch per block
        // b, which forms v_b = vhat_b + d_b for b's parameter gradients beside b's prediction of layer b + 1 and its error.
        eachBlock(ws, 0, depth, b -> (b == 0 ? 1 : 2) * blockMacs[b], b -> {
            if (b == 0) { // eps_1 = -d_1 (block 0's input never moves) and block 0's gradients, as relax's learning step
                hiddenErrorAndBackward(ws, 0, ws.ff[0], null, updateScale);
                return;
            }
            Block block = blocks.get(b);
            Block.Tape t = ws.sweep[b];
            boolean fromProducts = gram && b >= Math.max(1, depth - n); // the blocks the last step moved, whose products it formed
            Runnable error = () -> {
                if (b == depth - 1 && fromProducts) outputErrorFromProducts(ws, gramAddend(ws, n + 1, b), target, true, true);
                else if (b == depth - 1) displacedOutputError(ws, b, ws.displacement[b], target, true, true);
                else if (fromProducts)
                    block.errorFromProducts(be, ws.belief[b], ws.ff[b], t, gramAddend(ws, n + 1, b), ws.vhat(b + 1), ws.displacement[b + 1], ws.error[b + 1], null);
                else block.forwardDisplacedWithError(be, ws.displacement[b], ws.belief[b], ws.ff[b], t, ws.vhat(b + 1), ws.displacement[b + 1], ws.error[b + 1], null);
            };
            be.branches(new double[]{blockMacs[b] * ws.batch, layerSizes[b] * ws.batch}, error, () -> be.add(1f, ws.vhat(b), 1f, ws.displacement[b], ws.belief[b]));
            if (b < depth - 1 && block.outputDerivative(t) != null) block.backwardBelowOutput(be, t, null, updateScale);
            else block.backward(be, t, ws.error[b + 1], null, updateScale);
        }, withFeedforwardLoss ? new Runnable[]{() -> feedforwardLoss(ws)} : NONE);
        if (full) be.copy(ws.vhat(depth), ws.belief[depth]);
    }

    /**
     * Whether PC's folded relaxation takes the Gram form ({@link #gramFeedback}): where the workspace has its tensors (the
     * backend prefers short chains and every block above 0 takes it) and the relaxation folds, on either energy: the output
     * error (a subtraction, or the loss's gradient, each sample's own or the batch mean's) is one op from products. The
     * step forms W W^T beside its feedforward pass where this holds.
     */
    boolean gramForm(Workspace ws, Algorithm algorithm) {
        return ws.gram != null && algorithm == Algorithm.PC && !beliefOptimizer.isAdam() && folds(ws);
    }

    /**
     * The feedback round of a folded step in the Gram form. Block b's next pre-activation is zff + d W^T with
     * d = terms - eta dy' W the displacement its feedback GEMM completes (dy' the error pulled back through its
     * activation), that is zff + terms W^T - eta dy' G with G = W W^T, fixed for the relaxation. Both products read only
     * what the error round wrote (the terms as their copy, since the feedback GEMM adds onto the terms themselves), so
     * they run beside the feedback GEMM, and the next error round is the error op alone: on a GPU a step is a GEMM and
     * a kernel one after another, not a GEMM, a GEMM and a kernel. Branches per moving block b: its feedback GEMM, the
     * Gram product into gramProduct[b], the first product into the pre-activation; where b moves for the first time its
     * terms are 0, and the Gram product is the pre-activation's only one.
     */
    private void gramFeedback(Workspace ws, int step, int moved, int active, float eta, BeliefStep[] steps, Runnable[] beside) {
        int depth = model.depth();
        List<Block> blocks = model.blocks();
        int first = step > depth - active ? 3 : 2; // the lowest block's branches
        java.util.function.IntUnaryOperator blockOf = i -> i < first ? active : active + 1 + (i - first) / 3, partOf = i -> i < first ? i : (i - first) % 3;
        each(0, first + 3 * (depth - active - 1), i -> {
            int b = blockOf.applyAsInt(i);
            return partOf.applyAsInt(i) == 1 ? blockMacs[b] * ws.gram[b].shape().dim(0) / layerSizes[b] : blockMacs[b];
        }, ws.batch, i -> {
            int b = blockOf.applyAsInt(i);
            Block block = blocks.get(b);
            Block.Tape t = b >= moved ? ws.sweep[b] : ws.ff[b];
            boolean onto = step > depth - b;
            switch (partOf.applyAsInt(i)) {
                case 0 -> block.feedbackOnto(be, t, ws.error[b + 1], steps[b].next(), -eta, onto);
                case 1 -> block.gramProduct(be, t, ws.error[b + 1], ws.gram[b], -eta, onto ? ws.gramProduct[b] : block.preActivation(ws.sweep[b]));
                default -> block.inputProduct(be, ws.stepCopy[b], ws.sweep[b]);
            }
        }, beside);
    }

    /**
     * The output block in the Gram form: its output from its products (and {@code addend}, where not null) and eps_L, with
     * the output's energy term where {@code withLoss} (the learning step's), in one op: on each sample's own energy a
     * subtraction, or cross-entropy's per-sample gradient; on Torch2PC's the loss's gradient, which for a shard of a
     * global batch a pass after it scales (as {@link #lossGradient}), with the loss.
     */
    private void outputErrorFromProducts(Workspace ws, Tensor addend, Tensor target, boolean perSample, boolean withLoss) {
        int b = model.depth() - 1;
        Block block = model.blocks().get(b);
        if (outputLossApart(target, perSample)) {
            block.outputErrorFromProducts(be, ws.belief[b], ws.ff[b], ws.sweep[b], addend, target != null ? target : ws.y, ws.error[b + 1],
                    withLoss ? ws.sweepLoss : null, 0, withLoss ? outputLossScale(ws, target) : 0f);
            return;
        }
        block.lossFromProducts(be, ws.belief[b], ws.ff[b], ws.sweep[b], addend, loss, ws.y, ws.sweepLoss, ws.error[b + 1], perSample);
        if (!perSample) scaleToGlobalBatch(ws, ws.error[b + 1]);
    }

    /** The Gram form's second product of block b's pre-activation at step s, where step s - 1 formed two (block b's input had moved before). */
    private static Tensor gramAddend(Workspace ws, int s, int b) { return s - 1 > ws.sweep.length - b ? ws.gramProduct[b] : null; }

    /**
     * Torch2PC's parameter updates after a folded relaxation, as {@link #updatesAtFinalBeliefs}: the errors as the last step
     * found them, each block's Jacobian at the final beliefs. A branch per block b above 0 evaluates b from its final
     * displacement (zff + d W^T; the output block onto the zff the last feedback round copied) beside forming
     * v_b = vhat_b + d_b, which its weight gradient reads.
     */
    private void torch2pcUpdates(Workspace ws, boolean full, boolean withLoss, float parameterScale) {
        int depth = model.depth();
        List<Block> blocks = model.blocks();
        eachBlock(ws, 0, depth, b -> (b == 0 ? 1 : 2) * blockMacs[b], b -> {
            Block block = blocks.get(b);
            if (b > 0) {
                Tensor d = ws.displacement[b], v = ws.belief[b];
                Runnable evaluate = b == depth - 1 ? () -> block.forwardDisplacedOnto(be, d, v, ws.sweep[b]) : () -> block.forwardDisplaced(be, d, v, ws.ff[b], ws.sweep[b]);
                be.branches(new double[]{blockMacs[b] * ws.batch, layerSizes[b] * ws.batch}, evaluate, () -> be.add(1f, ws.vhat(b), 1f, d, v));
            }
            block.backward(be, b == 0 ? ws.ff[0] : ws.sweep[b], ws.error[b + 1], null, parameterScale);
        }, withLoss ? new Runnable[]{() -> feedforwardLoss(ws)} : NONE);
        if (full) be.copy(ws.vhat(depth), ws.belief[depth]);
    }

    /** The parameter updates' scale: they are J^T eps summed over the batch; per sample, their mean; nudged, over beta. */
    private float updateScale(Workspace ws, boolean perSample, float beta) { return (perSample ? 1f / lossBatch(ws) : 1f) / (beta != 0 ? beta : 1f); }

    /**
     * A relaxation on each sample's own energy nudged by {@code beta}: the output's target h = u - beta dl/du at the
     * feedforward output u, written into belief[L] and returned; null where beta is 0 (the target is y).
     */
    private Tensor nudgedTarget(Workspace ws, float beta) {
        if (beta == 0) return null;
        int depth = model.depth();
        be.add(1f, ws.vhat(depth), -beta * perSampleScale(lossBatch(ws)), ws.dLdy, ws.belief[depth]);
        return ws.belief[depth];
    }

    /**
     * The displacement buffers of a folded relaxation, which its steps write in turn: displacement[l] and feedback[l]
     * (which the folded relaxations do not otherwise use), and with momentum beliefMoment[l] (the displacement two steps back).
     */
    private Tensor[][] displacementBuffers(Workspace ws, float momentum) {
        return momentum == 0f ? new Tensor[][]{ws.displacement, ws.feedback} : new Tensor[][]{ws.displacement, ws.feedback, ws.beliefMoment};
    }

    /**
     * Step s of n's buffers, into d (what it reads) and steps (what it writes, and momentum's previous displacement): step s
     * writes buffer (n - s) mod k, so that the last writes buffer 0 (displacement); it reads the one step s - 1 wrote, and
     * momentum's previous displacement is the one step s - 2 wrote.
     */
    private void stepBuffers(Tensor[][] buffers, int n, int s, float eta, float momentum, Tensor[] d, BeliefStep[] steps, Tensor[] copies) {
        int k = buffers.length;
        for (int l = 1; l < d.length; l++) {
            d[l] = buffers[(n - s + 1) % k][l];
            steps[l] = new BeliefStep(buffers[(n - s) % k][l], eta, momentum, momentum == 0f ? null : buffers[(n - s + 2) % k][l], copies == null ? null : copies[l]);
        }
    }

    /**
     * iPC's relaxation with SGD on the beliefs, each step folded as {@link #relaxFolded} folds PC's. The weights move
     * every step, so blocks predict from the beliefs themselves (block 0 from x), not from displacements. A step is two
     * rounds, a branch per block each, then the optimizer's step ({@code weightStep}): each block's prediction of layer
     * b + 1 at the step's state with that layer's error and its step's own terms; then each block's parameter gradients
     * (from those errors, at that state) beside its feedback GEMM onto the terms, after which v_b = vhat_b + d_b for the
     * next step. On a GPU a step is a GEMM, a kernel, a GEMM, a kernel and the optimizer one after another.
     */
    private void ipcFolded(Workspace ws, float eta, int n, boolean full, float beta, java.util.function.IntConsumer weightStep) {
        int depth = model.depth();
        List<Block> blocks = model.blocks();
        Tensor target = nudgedTarget(ws, beta);
        float updateScale = updateScale(ws, true, beta);
        Tensor[][] buffers = displacementBuffers(ws, beliefOptimizer.momentum());
        int k = buffers.length;
        // The start, an op per branch: v at vhat, and d at 0 in the buffers the first step reads (as d, and as momentum's
        // previous); the one it writes, it writes whole.
        List<Runnable> start = new java.util.ArrayList<>();
        for (int l = 1; l < depth; l++) {
            Tensor vhat = ws.vhat(l), v = ws.belief[l];
            start.add(() -> be.copy(vhat, v));
            for (int i = 0; i < k; i++)
                if (i != (n - 1) % k) {
                    Tensor t = buffers[i][l];
                    start.add(() -> be.fill(t, 0f));
                }
        }
        each(0, start.size(), i -> 1, 1, i -> start.get(i).run(), NONE);
        Tensor[] d = new Tensor[depth];
        BeliefStep[] steps = new BeliefStep[depth];
        for (int s = 1; s <= n; s++) {
            stepBuffers(buffers, n, s, eta, beliefOptimizer.momentum(), d, steps, null);
            boolean withLoss = s == n; // iPC reports its last step's output energy
            eachBlock(ws, 0, depth, b -> blockMacs[b], b -> {
                Block block = blocks.get(b);
                Tensor input = b == 0 ? ws.x : ws.belief[b];
                if (b == depth - 1) {
                    if (outputLossApart(target, true) && block.forwardWithOutputError(be, input, ws.sweep[b], target != null ? target : ws.y, ws.error[b + 1],
                            withLoss ? ws.sweepLoss : null, 0, outputLossScale(ws, target))) return;
                    block.forward(be, input, ws.sweep[b]);
                    outputError(ws, ws.sweep[b].output(), target, true, withLoss);
                } else if (!block.forwardWithError(be, input, ws.sweep[b], ws.vhat(b + 1), d[b + 1], ws.error[b + 1], steps[b + 1])) {
                    block.forward(be, input, ws.sweep[b]); // block 0 of another form
                    Tensor derivative = block.outputDerivative(ws.sweep[b]);
                    be.pcPredictionError(ws.sweep[b].output(), ws.vhat(b + 1), d[b + 1], ws.error[b + 1], derivative,
                            derivative == null ? null : block.outputDerivativeGradient(ws.sweep[b]), steps[b + 1]);
                }
            });
            eachBlock(ws, 0, depth, b -> 2 * blockMacs[b], b -> {
                Block block = blocks.get(b);
                Block.Tape t = ws.sweep[b];
                Runnable gradients = () -> {
                    if (b < depth - 1 && block.outputDerivative(t) != null) block.backwardBelowOutput(be, t, null, updateScale);
                    else block.backward(be, t, ws.error[b + 1], null, updateScale);
                };
                if (b == 0) {
                    gradients.run();
                    return;
                }
                double macs = blockMacs[b] * ws.batch;
                be.branches(new double[]{macs, macs}, () -> block.feedbackOnto(be, t, ws.error[b + 1], steps[b].next(), -eta, true), gradients);
                be.add(1f, ws.vhat(b), 1f, steps[b].next(), ws.belief[b]);
            });
            if (weightStep != null) weightStep.accept(s);
        }
        if (full) be.copy(ws.vhat(depth), ws.belief[depth]);
    }

    /**
     * The output block at v_{L-1} = vhat_{L-1} + d into sweep[L-1] from the displacement d ({@link Block#forwardDisplacedWithOutputError}),
     * and eps_L, in one op where the loss allows; otherwise a GEMM onto the zff that relaxFolded's feedback round before
     * copied there, then eps_L. With {@code withLoss}, the output's energy term (the learning step's).
     */
    private void displacedOutputError(Workspace ws, int b, Tensor d, Tensor target, boolean perSample, boolean withLoss) {
        Block block = model.blocks().get(b);
        if (outputLossApart(target, perSample)) {
            block.forwardDisplacedWithOutputError(be, d, ws.belief[b], ws.ff[b], ws.sweep[b], target != null ? target : ws.y, ws.error[b + 1],
                    withLoss ? ws.sweepLoss : null, 0, outputLossScale(ws, target));
            return;
        }
        block.forwardDisplacedOnto(be, d, ws.belief[b], ws.sweep[b]); // onto the zff the feedback round before copied (relaxFolded)
        outputError(ws, ws.sweep[b].output(), target, perSample, withLoss);
    }

    /**
     * The ops that start a PC or iPC relaxation, a runnable per hidden layer, independent of each other: every hidden layer's displacement at 0
     * and its belief at vhat below layer {@code copiesBelow} (above it, the relaxation writes each belief before it
     * reads it: PC's error wave reaches layer l at step L - l and reads v_l only from then on). Adam's moments start
     * at 0 and take the zero steps of a layer the wave reaches late (its bias correction counts them); momentum's
     * velocity needs no start: zero steps leave it 0, so a layer's first real step is its first (see
     * {@link #beliefUpdate}); plain SGD keeps no state. {@code zeroErrors}: Torch2PC's energy takes its updates from
     * the errors as the last step left them, 0 where the wave never came (the per-sample energy recomputes every error
     * at the final beliefs).
     */
    private Runnable[] relaxationStart(Workspace ws, int copiesBelow, boolean zeroErrors) {
        Runnable[] start = new Runnable[model.depth() - 1]; // start[l - 1]: hidden layer l's ops
        for (int l = 1; l < model.depth(); l++) {
            int layer = l;
            start[l - 1] = () -> {
                be.fill(ws.displacement[layer], 0f);
                if (layer < copiesBelow) be.copy(ws.vhat(layer), ws.belief[layer]);
                if (beliefOptimizer.isAdam()) {
                    be.fill(ws.beliefMoment[layer], 0f);
                    be.fill(ws.beliefSecondMoment[layer], 0f);
                }
                if (zeroErrors) be.fill(ws.error[layer], 0f);
            };
        }
        return start;
    }

    /** PC's feedback J_l^T eps_{l+1} to layer l, at block l's point this step (its feedforward one below the wave); iPC's parameter gradients too. */
    void feedBack(Workspace ws, int l, int moved, float parameterScale) {
        model.blocks().get(l).backward(be, l >= moved ? ws.sweep[l] : ws.ff[l], ws.error[l + 1], ws.feedback[l], parameterScale);
    }

    /**
     * Layer l's belief step by the belief optimizer, from its prediction this step and its feedback; writes its
     * start-of-step error. SGD's step is one fused pass (eps_l, the gradient feedback - eps_l, the velocity, d_l,
     * v_l); Adam's is four.
     */
    private void beliefUpdate(Workspace ws, int l, int moved, boolean incremental, float eta, int step) {
        BeliefOptimizer o = beliefOptimizer;
        Tensor prediction = l == 1 && incremental ? ws.sweep[0].output() : l - 1 >= moved ? ws.sweep[l - 1].output() : ws.vhat(l);
        if (o.isAdam()) {
            hiddenError(ws, l, prediction);
            be.axpby(-1f, ws.error[l], 1f, ws.feedback[l]);
            be.adamStep(ws.displacement[l], ws.feedback[l], ws.beliefMoment[l], ws.beliefSecondMoment[l], eta, o.beta1(), o.beta2(), o.eps(), 0f, step);
            be.add(1f, ws.vhat(l), 1f, ws.displacement[l], ws.belief[l]);
        } else if (o.momentum() == 0f) be.pcStrictUpdate(prediction, ws.vhat(l), ws.feedback[l], ws.displacement[l], ws.belief[l], ws.error[l], eta);
        else be.pcMomentumUpdate(prediction, ws.vhat(l), ws.feedback[l], ws.displacement[l], ws.beliefMoment[l], ws.belief[l], ws.error[l], eta, o.momentum(),
                step == (incremental ? 1 : Math.max(1, model.depth() - l))); // the step the wave reaches layer l
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
     * the parameter gradients where asked.
     */
    private void errorAndBackward(Workspace ws, int l, Block.Tape t, Tensor target, boolean perSample, boolean withLoss, Tensor dx, float parameterScale) {
        if (l + 1 < model.depth()) {
            hiddenErrorAndBackward(ws, l, t, dx, parameterScale);
            return;
        }
        outputError(ws, t.output(), target, perSample, withLoss);
        model.blocks().get(l).backward(be, t, ws.error[l + 1], dx, parameterScale);
    }

    /**
     * Block l evaluated at its belief into sweep[l], then {@link #errorAndBackward}: the evaluation and the error
     * in one op where the block allows (a hidden error: {@link #forwardHiddenErrorAndBackward}; an output error
     * by a subtraction: {@link Block#forwardWithOutputError}).
     */
    private void forwardErrorAndBackward(Workspace ws, int l, Tensor target, boolean perSample, boolean withLoss, Tensor dx, float parameterScale) {
        if (l + 1 < model.depth()) {
            forwardHiddenErrorAndBackward(ws, l, dx, parameterScale);
            return;
        }
        Block block = model.blocks().get(l);
        // With the loss, in the same op: on a GPU in the kernel that forms the error.
        if (outputLossApart(target, perSample) && block.forwardWithOutputError(be, ws.belief[l], ws.sweep[l], target != null ? target : ws.y, ws.error[l + 1],
                withLoss ? ws.sweepLoss : null, 0, outputLossScale(ws, target))) {
            block.backward(be, ws.sweep[l], ws.error[l + 1], dx, parameterScale);
            return;
        }
        block.forward(be, ws.belief[l], ws.sweep[l]);
        errorAndBackward(ws, l, ws.sweep[l], target, perSample, withLoss, dx, parameterScale);
    }

    /**
     * Block l (below the last) evaluated at its belief into sweep[l], then {@link #hiddenErrorAndBackward}: the
     * evaluation and the error in one op where the block allows ({@link Block#forwardWithError}).
     */
    private void forwardHiddenErrorAndBackward(Workspace ws, int l, Tensor dx, float parameterScale) {
        Block block = model.blocks().get(l);
        if (block.forwardWithError(be, ws.belief[l], ws.sweep[l], ws.vhat(l + 1), ws.displacement[l + 1], ws.error[l + 1])) {
            block.backwardBelowOutput(be, ws.sweep[l], dx, parameterScale);
            return;
        }
        block.forward(be, ws.belief[l], ws.sweep[l]);
        hiddenErrorAndBackward(ws, l, ws.sweep[l], dx, parameterScale);
    }

    /**
     * {@link #errorAndBackward} below the last block. Where block l ends in an activation whose f' its forward kept,
     * the error and the backward's first step, eps * f', are one op (a kernel fewer one after another on a GPU).
     */
    private void hiddenErrorAndBackward(Workspace ws, int l, Block.Tape t, Tensor dx, float parameterScale) {
        Block block = model.blocks().get(l);
        Tensor derivative = block.outputDerivative(t);
        if (derivative == null) {
            hiddenError(ws, l + 1, t.output());
            block.backward(be, t, ws.error[l + 1], dx, parameterScale);
            return;
        }
        be.pcPredictionError(t.output(), ws.vhat(l + 1), ws.displacement[l + 1], ws.error[l + 1], derivative, block.outputDerivativeGradient(t));
        block.backwardBelowOutput(be, t, dx, parameterScale);
    }

    /** eps_l = (f_l(v_{l-1}) - vhat_l) - d_l from the displacement state, into error[l]. */
    private void hiddenError(Workspace ws, int l, Tensor prediction) { be.pcPredictionError(prediction, ws.vhat(l), ws.displacement[l], ws.error[l]); }
}
