package io.predcode.core.pc;

import io.predcode.core.nn.Block;
import io.predcode.core.nn.Loss;
import io.predcode.core.nn.Model;
import io.predcode.core.optim.Snapshot;
import io.predcode.spi.Backend;
import io.predcode.spi.Tensor;

import java.util.Arrays;
import java.util.List;

/**
 * What every algorithm's step is made of, for one engine's model, loss and settings: the feedforward pass, the loss
 * and the output error, the parameter updates at the final beliefs, and rounds of independent branches, a branch per
 * block ({@link #eachBlock}). The algorithms are built on it in layers, one object split by subject into
 * files: {@link Sweeps} (BACKPROP, EXACT, FIXED_PRED, STRICT, Z-IL), {@link Relaxations} (PC and iPC),
 * {@link FoldedRelaxations} (their SGD steps folded into the GEMMs, for a GPU), then {@link PcEngine}, the public
 * face (workspaces, settings, a step's run). Nothing here is public.
 */
abstract sealed class EngineCore permits Sweeps {
    final Model model;
    final Loss loss;
    final Backend be;

    // The settings PcEngine's setters change between steps.
    /** How PC moves the beliefs. */
    BeliefOptimizer beliefOptimizer = BeliefOptimizer.sgd(0f);
    /** Which energy PC and iPC relax. */
    Energy energy = Energy.TORCH2PC;
    /** How PC and iPC hold the output. */
    Nudging nudging = Nudging.none();
    /** The batch the loss is a mean over when this engine computes one shard of a larger one (0: its own batch). */
    int globalBatch;

    /** Each block's forward multiply-adds per sample, and each layer's size (layer l: block l's input), for the work {@link #eachBlock} balances. */
    final double[] blockMacs, layerSizes;
    /** No branches beside a round's blocks. */
    static final Runnable[] NONE = {};
    /** Layer l's size, a round's work per sample where each branch updates one layer. */
    final java.util.function.IntToDoubleFunction layerSize = this::sizeOfLayer;
    /** The kept arrays and branch objects of {@link #each}. */
    private final BranchSets branchSets = new BranchSets();
    /**
     * Whether the device counts a batch's correct classifications: cross-entropy's against its labels, squared
     * error's where the output is flat with two values or more, against its (one-hot) targets' argmax.
     */
    final boolean countsCorrect;

    /** The parts for {@code model} with this loss; cross-entropy needs a flat output of class scores. */
    EngineCore(Model model, Loss loss) {
        this.model = model;
        this.loss = loss;
        this.be = model.backend();
        blockMacs = blockMacs();
        layerSizes = new double[model.depth()];
        for (int l = 0; l < model.depth(); l++) layerSizes[l] = size(model.activationShape(l));
        int[] out = model.activationShape(model.depth());
        if (loss == Loss.CROSS_ENTROPY && out.length != 1)
            throw new IllegalArgumentException("cross_entropy needs a flat model output [classes]; block " + (model.depth() - 1) + " outputs " + Arrays.toString(out));
        countsCorrect = loss == Loss.CROSS_ENTROPY || out.length == 1 && out[0] > 1;
    }

    private double sizeOfLayer(int l) { return layerSizes[l]; }

    /** Each block's forward multiply-adds per sample. */
    double[] blockMacs() {
        double[] block = new double[model.depth()];
        for (io.predcode.core.nn.ModelSpec.OpAt at : model.spec().ops(model.inputShape())) block[at.block()] += at.op().macs(at.input());
        return block;
    }

    /**
     * The feedforward output's loss and its gradient dL/dy (the loss a step reports), and for
     * classification the correct argmaxes.
     */
    void feedforwardLoss(Workspace ws) {
        lossGradient(ws, ws.vhat(model.depth()), ws.scalars, ws.dLdy);
        countCorrect(ws);
    }

    /** The feedforward output's correct classifications into scalars[1], where {@link #countsCorrect}. */
    void countCorrect(Workspace ws) {
        if (loss == Loss.CROSS_ENTROPY) be.countCorrect(ws.vhat(model.depth()), ws.y, ws.scalars, 1);
        else if (countsCorrect) be.countArgmaxMatches(ws.vhat(model.depth()), ws.y, ws.scalars, 1);
    }

    /** Floats per sample of the targets (1 for class labels). */
    int targetFloats() { return Math.max(1, size(loss.targetShape(model.activationShape(model.depth())))); }

    /**
     * A sample's loss gradient over dL/dy, where L is the loss as PyTorch reduces it: the batch for
     * cross-entropy; for mse, whose per-sample term is ||u - y||^2 / 2 against L's mean of squares,
     * the batch times the output's size over 2.
     */
    float perSampleScale(int batch) {
        return loss == Loss.CROSS_ENTROPY ? batch : batch * (float) targetFloats() / 2f;
    }

    /** Whether this algorithm, as set, relaxes each sample's own energy. */
    boolean perSample(Algorithm algorithm) { return algorithm.standard() && energy == Energy.PER_SAMPLE; }

    void forward(Workspace ws) { forward(ws, false, false, null); }

    /**
     * The feedforward pass; with {@code outputError}, also eps_L = u - y into error[L] in the last block's op, where
     * that block is one linear op ({@link Block#forwardWithOutputError}): PC's first output error, a kernel fewer one
     * after another on a GPU. Beside it: with {@code gram}, the Gram form's W W^T of each block above 0
     * ({@link FoldedRelaxations#relaxFolded}); with a {@code snapshot} (iPC's, which never takes the Gram form), the copy
     * of the parameters and the optimizer's state. Returns whether it wrote eps_L.
     */
    boolean forward(Workspace ws, boolean outputError, boolean gram, Snapshot snapshot) {
        if (!gram && snapshot == null) return forward(ws, outputError);
        boolean[] wrote = new boolean[1];
        int depth = model.depth();
        double macs = 0;
        for (int b = 0; b < depth; b++) macs += blockMacs[b] * ws.batch;
        Runnable pass = () -> wrote[0] = forward(ws, outputError);
        if (snapshot != null) {
            be.branches(new double[]{macs, snapshot.floats()}, pass, snapshot::take);
            return wrote[0];
        }
        double gramMacs = 0; // W W^T: out * out * in
        for (int b = 1; b < depth; b++) gramMacs += blockMacs[b] * ws.gram[b].shape().dim(0);
        be.branches(new double[]{macs, gramMacs}, pass, () -> {
            for (int b = 1; b < depth; b++) model.blocks().get(b).gram(be, ws.gram[b]);
        });
        return wrote[0];
    }

    /**
     * Backprop's feedforward pass, then the loss and dL/dy. Where the backend prefers short chains and the output block
     * is one linear op, the loss's op adds that block's bias after its GEMM ({@link Loss#computeFromProducts}): on a GPU
     * the output block is a GEMM and the loss's kernel, not a GEMM, a bias kernel and the loss's.
     */
    void forwardAndLossGradient(Workspace ws) {
        List<Block> blocks = model.blocks();
        int last = blocks.size() - 1;
        if (!be.prefersShortChains() || !blocks.get(last).isOneLinearOp()) {
            forward(ws);
            lossGradient(ws, ws.vhat(last + 1), ws.scalars, ws.dLdy);
            return;
        }
        Tensor bias = forwardWithoutOutputBias(ws);
        loss.computeFromProducts(be, ws.vhat(last + 1), null, bias, ws.y, ws.scalars, ws.dLdy, false);
        scaleToGlobalBatch(ws, ws.dLdy);
    }

    /**
     * The feedforward pass with the output block (one linear op) left at its GEMM; returns that block's bias (null for
     * none), which the loss's op after it adds in its own pass.
     */
    private Tensor forwardWithoutOutputBias(Workspace ws) {
        List<Block> blocks = model.blocks();
        int last = blocks.size() - 1;
        for (int b = 0; b < last; b++) blocks.get(b).forward(be, ws.vhat(b), ws.ff[b]);
        return blocks.get(last).forwardWithoutBias(be, ws.vhat(last), ws.ff[last]);
    }

    boolean forward(Workspace ws, boolean outputError) {
        List<Block> blocks = model.blocks();
        int last = blocks.size() - 1;
        if (outputError && loss == Loss.CROSS_ENTROPY && blocks.get(last).isOneLinearOp()) { // the bias in the loss's op (see errorFromFeedforward)
            Tensor bias = forwardWithoutOutputBias(ws);
            loss.computeFromProducts(be, ws.vhat(last + 1), null, bias, ws.y, ws.sweepLoss, ws.error[last + 1], true);
            return true;
        }
        for (int b = 0; b < last; b++) blocks.get(b).forward(be, ws.vhat(b), ws.ff[b]);
        if (outputError && loss == Loss.MSE && blocks.get(last).forwardWithOutputError(be, ws.vhat(last), ws.ff[last], ws.y, ws.error[last + 1])) return true;
        blocks.get(last).forward(be, ws.vhat(last), ws.ff[last]);
        return false;
    }

    /**
     * PC's output error at the predicted {@code output}: with a nudging {@code target} h,
     * eps_L = output - h and the term ||eps_L||^2 / 2; otherwise the loss's gradient, for the
     * per-sample energy a sample's own: for squared error exactly output - y, the one subtraction
     * PCX's autodiff does, for cross-entropy softmax - onehot in the loss's own pass. The output's energy
     * term (into sweepLoss) comes with the gradient where one op forms both; where the error is a
     * subtraction ({@link #outputLossApart}), only {@code withLoss}: at the state whose energy a step reports.
     */
    void outputError(Workspace ws, Tensor output, Tensor target, boolean perSample, boolean withLoss) {
        if (outputLossApart(target, perSample)) {
            be.add(1f, output, -1f, target != null ? target : ws.y, ws.error[model.depth()]);
            if (withLoss) outputLoss(ws, target);
            return;
        }
        Tensor eps = ws.error[model.depth()];
        if (perSample && loss == Loss.CROSS_ENTROPY) { // each sample's own gradient, softmax - onehot, in the loss's pass
            be.softmaxCrossEntropy(output, ws.y, ws.sweepLoss, eps, true);
            return;
        }
        lossGradient(ws, output, ws.sweepLoss, eps);
        float outputScale = perSample ? perSampleScale(lossBatch(ws)) : 1f;
        if (outputScale != 1f) be.axpby(0f, eps, outputScale, eps);
    }

    /** Whether {@link #outputError} forms the error by a subtraction and leaves the energy term to {@link #outputLoss}: nudged, or the per-sample squared error. */
    boolean outputLossApart(Tensor target, boolean perSample) { return target != null || perSample && loss == Loss.MSE; }

    /** The output's energy term from the error {@link #outputError} formed by a subtraction: ||u - h||^2 / 2 nudged, else the squared error's mean. */
    private void outputLoss(Workspace ws, Tensor target) { be.sumSquares(ws.error[model.depth()], outputLossScale(ws, target), ws.sweepLoss, 0); }

    /** What {@link #outputLoss} scales the error's sum of squares by. */
    float outputLossScale(Workspace ws, Tensor target) { return target != null ? 0.5f : 1f / ws.error[model.depth()].size(); }

    /** The batch the loss is a mean over: the global batch of a data-parallel step, or the workspace's own. */
    int lossBatch(Workspace ws) { return globalBatch > 0 ? globalBatch : ws.batch; }

    /** The loss (this batch's mean) and its gradient, which for a shard of a global batch is scaled to be a mean over the global batch. */
    void lossGradient(Workspace ws, Tensor output, Tensor lossOut, Tensor grad) {
        loss.compute(be, output, ws.y, lossOut, grad);
        scaleToGlobalBatch(ws, grad);
    }

    /** A gradient of this workspace's batch mean, made one of the global batch's mean (a data-parallel step's shard). */
    void scaleToGlobalBatch(Workspace ws, Tensor grad) {
        if (lossBatch(ws) != ws.batch) be.axpby(0f, grad, (float) ws.batch / lossBatch(ws), grad);
    }

    /**
     * STRICT's and PC's parameter updates at the final beliefs: block 0 sees x (its feedforward tape); the others are
     * re-evaluated at v. Beside them, what {@link #learningBeside} gives.
     */
    void updatesAtFinalBeliefs(Workspace ws, boolean full, boolean withLoss, float parameterScale, Algorithm termsOf) {
        int depth = model.depth();
        List<Block> blocks = model.blocks();
        eachBlock(ws, 0, depth, b -> (b == 0 ? 1 : 2) * blockMacs[b], b -> {
            if (b > 0) blocks.get(b).forward(be, ws.belief[b], ws.sweep[b]);
            blocks.get(b).backward(be, b == 0 ? ws.ff[0] : ws.sweep[b], ws.error[b + 1], null, parameterScale);
        }, learningBeside(ws, withLoss, termsOf));
        if (full) be.copy(ws.vhat(depth), ws.belief[depth]);
    }

    /**
     * Whether a step that checks its energy ({@code withEnergy}) has its relaxation write the terms beside its last ops
     * (and return that it did): where the backend prefers short chains (a GPU), whose chain one more kernel after those ops
     * would lengthen. Elsewhere {@link PcEngine} writes them after the relaxation, as the CPU always has.
     */
    boolean termsBeside(boolean withEnergy) { return withEnergy && be.prefersShortChains(); }

    /**
     * What runs beside the blocks of a learning step that takes Torch2PC's updates (the errors as the relaxation's last
     * sweep formed them, or FIXED_PRED's start-of-sweep errors): the step's feedforward loss where {@code withLoss}, and where {@code termsOf} is not null that
     * algorithm's energy terms, which read only what the last sweep formed. On a GPU the terms are then not one kernel
     * more after the step's parameter gradients, before the optimizer's kernel that reads them.
     */
    Runnable[] learningBeside(Workspace ws, boolean withLoss, Algorithm termsOf) {
        if (termsOf == null) return withLoss ? new Runnable[]{() -> feedforwardLoss(ws)} : NONE;
        int depth = model.depth();
        Runnable[] beside = new Runnable[depth + (withLoss ? 1 : 0)];
        for (int l = 0; l < depth; l++) {
            int term = l;
            beside[l] = () -> ws.writeEnergyTerm(be, term, termsOf);
        }
        if (withLoss) beside[depth] = () -> feedforwardLoss(ws);
        return beside;
    }

    /**
     * Runs {@code body} for each block in [from, to): in block order, or where the backend runs branches
     * at once as independent branches ({@link Backend#branches}), those with the most {@code work} first
     * (per sample, times the batch: multiply-adds for a round of GEMMs, a layer's size for one of belief
     * updates), so that the longest start first. Each body may read any block's inputs but write only
     * its own block's tensors.
     */
    void eachBlock(Workspace ws, int from, int to, java.util.function.IntToDoubleFunction work, java.util.function.IntConsumer body, Runnable[] beside) {
        each(from, to, work, ws.batch, body, beside);
    }

    /** {@link #eachBlock} with nothing beside the bodies (not varargs: an empty array per call is garbage, many a step). */
    void eachBlock(Workspace ws, int from, int to, java.util.function.IntToDoubleFunction work, java.util.function.IntConsumer body) {
        each(from, to, work, ws.batch, body, NONE);
    }

    /**
     * As {@link #eachBlock}, for any independent bodies i in [from, to) whose whole work is {@code scale} times {@code work};
     * the {@code beside} branches (small work of no weight, independent of the bodies and of each other) run after them in
     * order, or as branches of their own.
     */
    void each(int from, int to, java.util.function.IntToDoubleFunction work, double scale, java.util.function.IntConsumer body, Runnable[] beside) {
        if (to - from + beside.length <= 1 || !be.runsBranchesAtOnce()) { // nothing to run side by side: in order, with no branches to build
            for (int b = from; b < to; b++) body.accept(b);
            for (Runnable r : beside) r.run();
            return;
        }
        branchSets.run(be, from, to, work, scale, body, beside);
    }

    /**
     * Small independent ops as branches of two each, in order. On a GPU a round's branches past the backend's lanes (CUDA's
     * 16) share a lane with its first ones, its GEMMs, and wait for them; a start of many fills and copies goes as half
     * as many branches, each two kernels long.
     */
    static Runnable[] inPairs(List<Runnable> ops) {
        Runnable[] pairs = new Runnable[(ops.size() + 1) / 2];
        for (int i = 0; i < pairs.length; i++) {
            Runnable first = ops.get(2 * i), second = 2 * i + 1 < ops.size() ? ops.get(2 * i + 1) : null;
            pairs[i] = second == null ? first : () -> {
                first.run();
                second.run();
            };
        }
        return pairs;
    }

    /** The runnables of a and then b. */
    static Runnable[] concat(Runnable[] a, Runnable[] b) {
        Runnable[] both = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, both, a.length, b.length);
        return both;
    }

    static int size(int[] shape) {
        int n = 1;
        for (int d : shape) n *= d;
        return n;
    }
}
