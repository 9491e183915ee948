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
 * PC's and iPC's relaxations with SGD on the beliefs folded into the ops that are there anyway, where the backend prefers
 * short chains of ops (a GPU): each belief step rides on the feedback GEMM, and PC's, where it can, takes the Gram form,
 * a relaxation step a GEMM and a kernel. The same updates as {@link Relaxations#relax}'s unfolded steps, to rounding.
 * Part of {@link PcEngine} (see {@link EngineCore}).
 */
abstract sealed class FoldedRelaxations extends Relaxations permits PcEngine {
    FoldedRelaxations(Model model, Loss loss) { super(model, loss); }

    /**
     * Whether a relaxation by SGD steps on the beliefs folds each step into the feedback GEMMs ({@link #relaxFolded},
     * {@link #ipcFolded}): on a backend that prefers short chains of ops to few rounds of branches (a GPU), with above
     * block 0 blocks whose feedback is one linear op's GEMM ({@link Block#folds}), the output block one linear op (whose
     * error the output error is, with no activation's f' to pull it back through). PC and iPC fold with SGD (with or
     * without momentum) on the beliefs, iPC on each sample's own energy only; STRICT does not fold (it forms its errors
     * from changes: {@link #strict}). On 2 CPU threads the folded step, with a round of GEMM branches more a step, was
     * 3-23% slower (bench/results/folded-belief-updates-2026-12-01.md).
     */
    @Override boolean folds(Workspace ws) {
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
    @Override boolean relaxFolded(Workspace ws, float eta, int n, boolean full, float beta, boolean withFeedforwardLoss, boolean errorAtVhat, float momentum,
                                boolean perSample, boolean withEnergy) {
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
        if (!perSample) return torch2pcUpdates(ws, full, withFeedforwardLoss, updateScale, withEnergy);
        // The learning step at the final displacements (in displacement[l]), as relax's per-sample one: a branch per block
        // b, which forms v_b = vhat_b + d_b for b's parameter gradients beside b's prediction of layer b + 1 and its error.
        // Where the step checks its energy, the energy's term of the layer b's branch forms (the output's loss in the output
        // block's) runs beside b's backward pass: not one more kernel after them, before the optimizer's that reads the terms.
        eachBlock(ws, 0, depth, b -> (b == 0 ? 1 : 2) * blockMacs[b], b -> {
            int term = b == depth - 1 ? 0 : b + 1;
            if (b == 0) { // eps_1 = -d_1 (block 0's input never moves) and block 0's gradients, as relax's learning step
                if (withEnergy) hiddenErrorAndBackward(ws, 0, ws.ff[0], null, updateScale, () -> ws.writeEnergyTerm(be, term, Algorithm.PC));
                else hiddenErrorAndBackward(ws, 0, ws.ff[0], null, updateScale);
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
            if (withEnergy) be.branches(new double[]{blockMacs[b] * ws.batch, term == 0 ? 1 : layerSizes[term] * ws.batch},
                    () -> learningBackward(ws, b, updateScale), () -> ws.writeEnergyTerm(be, term, Algorithm.PC));
            else learningBackward(ws, b, updateScale);
        }, withFeedforwardLoss ? new Runnable[]{() -> feedforwardLoss(ws)} : NONE);
        if (full) be.copy(ws.vhat(depth), ws.belief[depth]);
        return withEnergy;
    }

    /** The learning step's backward pass of block b above 0 from eps_{b+1}: its parameter gradients. */
    private void learningBackward(Workspace ws, int b, float updateScale) {
        Block block = model.blocks().get(b);
        Block.Tape t = ws.sweep[b];
        if (b < model.depth() - 1 && block.outputDerivative(t) != null) block.backwardBelowOutput(be, t, null, updateScale);
        else block.backward(be, t, ws.error[b + 1], null, updateScale);
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
     * v_b = vhat_b + d_b, which its weight gradient reads. Where the step checks its energy, its terms, from errors and
     * a loss the relaxation's last step formed, run beside the blocks rather than after them; returns whether they did.
     */
    private boolean torch2pcUpdates(Workspace ws, boolean full, boolean withLoss, float parameterScale, boolean withEnergy) {
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
        }, learningBeside(ws, withLoss, withEnergy ? Algorithm.PC : null));
        if (full) be.copy(ws.vhat(depth), ws.belief[depth]);
        return withEnergy;
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
     * every step, so blocks predict from the beliefs themselves (block 0 from x), not from displacements. A step is three
     * rounds: each block's prediction of layer b + 1 at the step's state with that layer's error and its step's own terms;
     * then each block's parameter gradients (from those errors, at that state) beside its feedback GEMM onto the terms;
     * then v_b = vhat_b + d_b for the next step beside the optimizer's step, {@code weightStep}
     * ({@link #beliefsBesideWeightStep}). On a GPU a step is a GEMM, a kernel, a GEMM and a kernel (the optimizer's, v's
     * beside it) one after another. The first step takes PC's error wave ({@link #ipcFirstStep}). Where the step checks
     * its energy ({@code withEnergy}) on a GPU, its terms (the last step's errors, which its first round forms and nothing
     * after writes) run beside the last step's second round; returns whether they did.
     */
    @Override boolean ipcFolded(Workspace ws, float eta, int n, boolean full, float beta, java.util.function.IntConsumer weightStep, boolean withFeedforwardLoss,
                                boolean errorAtVhat, boolean withEnergy) {
        int depth = model.depth();
        List<Block> blocks = model.blocks();
        Tensor target = nudgedTarget(ws, beta);
        float updateScale = updateScale(ws, true, beta);
        Tensor[][] buffers = displacementBuffers(ws, beliefOptimizer.momentum());
        int k = buffers.length;
        boolean wave = ipcWave(true, n);
        // The start, an op per branch: v at vhat, and d at 0 in the buffers the first step reads (as d, and as momentum's
        // previous); the one it writes, it writes whole. The wave's first step writes only layer L-1's (and v_{L-1}), so
        // every layer below starts at 0 in all of them.
        List<Runnable> start = new java.util.ArrayList<>();
        for (int l = 1; l < depth; l++) {
            Tensor vhat = ws.vhat(l), v = ws.belief[l];
            if (!wave || l < depth - 1) start.add(() -> be.copy(vhat, v));
            for (int i = 0; i < k; i++)
                if (i != (n - 1) % k || wave && l < depth - 1) {
                    Tensor t = buffers[i][l];
                    start.add(() -> be.fill(t, 0f));
                }
        }
        Tensor[] d = new Tensor[depth];
        BeliefStep[] steps = new BeliefStep[depth];
        if (!wave) each(0, start.size(), i -> 1, 1, i -> start.get(i).run(), NONE);
        boolean terms = termsBeside(withEnergy);
        for (int s = 1; s <= n; s++) {
            stepBuffers(buffers, n, s, eta, beliefOptimizer.momentum(), d, steps, null);
            if (s == 1 && wave) {
                ipcFirstStep(ws, eta, target, updateScale, steps[depth - 1].next(), errorAtVhat, start, withFeedforwardLoss, weightStep);
                continue;
            }
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
            }, s == n && terms ? learningBeside(ws, false, Algorithm.IPC) : NONE);
            beliefsBesideWeightStep(ws, steps, weightStep, s);
        }
        if (full) be.copy(ws.vhat(depth), ws.belief[depth]);
        return terms;
    }

    /**
     * iPC's first step where it takes PC's error wave (see {@link Relaxations#relax}): its weights have not moved and every
     * belief is at its feedforward value, so every hidden error is 0 and only the output block has work, from its
     * feedforward tape. Its output error (where the feedforward pass did not form it); then its feedback GEMM, which
     * writes layer L-1's step alone into {@code next} (its error and last step are 0), beside its parameter gradients,
     * the zero gradients of the blocks below and with {@code withLoss} the feedforward loss; then v_{L-1} = vhat_{L-1} +
     * d_{L-1} beside the optimizer's step and the relaxation's {@code start}, which the next step reads first. On a GPU a
     * GEMM and a kernel one after another, where a step after it is two of each.
     */
    private void ipcFirstStep(Workspace ws, float eta, Tensor target, float updateScale, Tensor next, boolean errorAtVhat, List<Runnable> start,
                              boolean withLoss, java.util.function.IntConsumer weightStep) {
        int b = model.depth() - 1;
        Block block = model.blocks().get(b);
        Block.Tape t = ws.ff[b];
        if (!errorAtVhat) outputError(ws, t.output(), target, true, false);
        each(0, 2, i -> blockMacs[b], ws.batch, i -> {
            if (i == 0) block.feedbackOnto(be, t, ws.error[b + 1], next, -eta, false);
            else block.backward(be, t, ws.error[b + 1], null, updateScale);
        }, ipcFirstBeside(ws, withLoss));
        each(b, b + 1, layerSize, ws.batch, l -> be.add(1f, ws.vhat(l), 1f, next, ws.belief[l]), concat(start.toArray(Runnable[]::new), optimizerStep(weightStep, 1)));
    }

    /**
     * After a folded iPC step's feedback GEMMs: v_l = vhat_l + d_l for each hidden layer, beside the optimizer's step of
     * step {@code s} (where there is one). The two read and write nothing of each other's, and the optimizer's waits for
     * the feedback GEMMs, which read the weights it writes, as the beliefs wait for the displacements: on a GPU one
     * kernel in a row, where one after the other made two.
     */
    private void beliefsBesideWeightStep(Workspace ws, BeliefStep[] steps, java.util.function.IntConsumer weightStep, int s) {
        each(1, model.depth(), layerSize, ws.batch, l -> be.add(1f, ws.vhat(l), 1f, steps[l].next(), ws.belief[l]),
                optimizerStep(weightStep, s));
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
}
