package io.predcode.core;

import io.predcode.core.nn.Loss;
import io.predcode.core.nn.Model;
import io.predcode.core.nn.ModelSpec;
import io.predcode.core.optim.Adam;
import io.predcode.core.pc.Algorithm;
import io.predcode.core.pc.BeliefOptimizer;
import io.predcode.core.pc.Energy;
import io.predcode.core.pc.PcEngine;
import io.predcode.core.pc.Trainer;
import io.predcode.spi.Backend;
import io.predcode.spi.Backends;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The shape of a CUDA training step on PCX's MLP, as the host simulator records it: how many kernels its graph
 * holds, how many of them run one after another (its longest chain: what a step of small layers on a large GPU
 * waits on), and how often the host hands the device work or waits for it. No GPU has timed these here, so this
 * keeps them from growing unnoticed: each is at most what bench/results/ records for it (optimizer-one-kernel,
 * backward-branches, folded-belief-updates). Simulator only; skipped, with the reason, elsewhere.
 */
class CudaGraphShapeTest {
    /** PCX's MLP with GELU (bench/models/pcx-mlp-gelu.json). */
    private static final String PCX_MLP = """
            {"input": [784], "blocks": [
              [{"op": "flatten"}, {"op": "linear", "in": 784, "out": 128, "bias": true}, {"op": "gelu_tanh"}],
              [{"op": "linear", "in": 128, "out": 128, "bias": true}, {"op": "gelu_tanh"}],
              [{"op": "linear", "in": 128, "out": 128, "bias": true}, {"op": "gelu_tanh"}],
              [{"op": "linear", "in": 128, "out": 10, "bias": true}]]}""";
    private static MethodHandle nodes, depth, submissions, waits;

    @BeforeAll static void simulatorOnly() {
        String driver = System.getProperty("predcode.cuda.driver", java.util.Objects.requireNonNullElse(System.getenv("PREDCODE_CUDA_DRIVER"), ""));
        boolean simulated = Backends.provider("cuda").availability().available() && driver.contains("cudasim");
        if (!simulated) System.out.println("SKIPPED CUDA graph shapes: the cuda driver in use is not predcode's simulator (" + driver + ")");
        Assumptions.assumeTrue(simulated, "not the simulator");
        SymbolLookup lib = SymbolLookup.libraryLookup(Path.of(driver), Arena.global());
        Linker linker = Linker.nativeLinker();
        FunctionDescriptor count = FunctionDescriptor.of(ValueLayout.JAVA_LONG);
        nodes = linker.downcallHandle(lib.find("cusimLastGraphNodes").orElseThrow(), count);
        depth = linker.downcallHandle(lib.find("cusimLastGraphDepth").orElseThrow(), count);
        submissions = linker.downcallHandle(lib.find("cusimSubmissions").orElseThrow(), count);
        waits = linker.downcallHandle(lib.find("cusimSynchronizations").orElseThrow(), count);
    }

    private record Shape(long nodes, long chain, long submissions, long waits) {}

    /** The graph of the step after three (the second records it, the third launches it), and the host's calls in that step. */
    private static Shape step(Algorithm algorithm, int n, PcEngine.Condense condense, Loss loss, Energy energy, boolean guarded, BeliefOptimizer beliefs) throws Throwable {
        try (Backend be = Backends.open("cuda"); Model m = Model.create(ModelSpec.parse(PCX_MLP, "pcx-mlp-gelu"), be, 0);
             PcEngine e = new PcEngine(m, loss).condense(condense); Adam adam = Adam.adamW(m, 3e-4f, 1e-3f)) {
            if (algorithm.standard()) e.beliefOptimizer(beliefs).energy(energy);
            Trainer t = new Trainer(e, adam, algorithm, 0.026f, n).guardEnergy(guarded);
            int batch = 16;
            float[] x = new float[batch * 784], y = new float[loss == Loss.MSE ? batch * 10 : batch]; // one-hot rows, or class labels
            for (int i = 0; i < x.length; i++) x[i] = (i % 29) / 29f - 0.5f;
            for (int s = 0; s < batch; s++)
                if (loss == Loss.MSE) y[s * 10 + s % 10] = 1f;
                else y[s] = s % 10;
            for (int s = 0; s < 3; s++) t.step(x, y, batch);
            long submitted = (long) submissions.invokeExact(), waited = (long) waits.invokeExact();
            t.step(x, y, batch);
            Shape shape = new Shape((long) nodes.invokeExact(), (long) depth.invokeExact(),
                    (long) submissions.invokeExact() - submitted, (long) waits.invokeExact() - waited);
            System.out.println("PCX's MLP, " + algorithm + " n " + n + ", condense " + condense + ", " + loss + (algorithm.standard() ? ", energy " + energy.id() + ", " + beliefs : "")
                    + (guarded ? ", energy checked" : "") + ": " + shape);
            return shape;
        }
    }

    @Test void backpropsParameterGradientsStayOffItsChain() throws Throwable {
        // The output block's bias in the loss's kernel (EngineCore.forwardAndLossGradient): 16, where a bias kernel of its own made it 17.
        assertShape(Algorithm.BACKPROP, 1, 16, 24, "a GEMM and a derivative a layer, its weight and bias gradients beside; the output's bias in the loss; the optimizer one kernel");
    }

    @Test void pcsStepKeepsItsShape() throws Throwable {
        // The belief updates folded into the feedback GEMMs (FoldedRelaxations.relaxFolded), in the Gram form (FoldedRelaxations.gramFeedback):
        // a step of the relaxation is the feedback GEMM, with the next pre-activation's two products beside it, then the
        // error kernel; 20 in all, where a GEMM of its own before each error kernel made it 25, and an update kernel 30.
        assertShape(Algorithm.PC, 5, 20, 81, "T = 5");
        // With cross-entropy the same (the loss's kernel adds the products: Backend.softmaxCrossEntropyFromProducts), where it was 26.
        assertShape(Algorithm.PC, 5, PcEngine.Condense.AUTO, Loss.CROSS_ENTROPY, 20, 81, "T = 5, cross-entropy");
        // On Torch2PC's energy (the library's default) too: the loss's kernel forms the batch mean's gradient from the
        // products; the last step's feedback round is the plain one (the learning step evaluates each block from its final
        // displacement), so 23, where without the Gram form it was 27.
        assertShape(Algorithm.PC, 5, PcEngine.Condense.AUTO, Loss.MSE, Energy.TORCH2PC, 23, 81, "T = 5, Torch2PC's energy");
        assertShape(Algorithm.PC, 5, PcEngine.Condense.AUTO, Loss.CROSS_ENTROPY, Energy.TORCH2PC, 23, 81, "T = 5, Torch2PC's energy, cross-entropy");
        // Checking the energy every step, as the library's Trainer does by default and train does: its terms, which the
        // optimizer's kernel checks itself (Workspace.guarded), each beside the learning step's backward pass of the block
        // that forms its error, so none more; after the learning step it was 21, a kernel summing them for the optimizer to
        // read made it 22, and the terms one after another 24.
        assertShape(Algorithm.PC, 5, PcEngine.Condense.AUTO, Loss.MSE, Energy.PER_SAMPLE, true, 20, 85, "T = 5, energy checked");
        assertShape(Algorithm.PC, 5, PcEngine.Condense.AUTO, Loss.CROSS_ENTROPY, Energy.PER_SAMPLE, true, 20, 85, "T = 5, cross-entropy, energy checked");
        // On Torch2PC's energy the terms read what the relaxation's last step formed: beside the learning step's blocks (24 after them).
        assertShape(Algorithm.PC, 5, PcEngine.Condense.AUTO, Loss.MSE, Energy.TORCH2PC, true, 23, 85, "T = 5, Torch2PC's energy, energy checked");
    }

    @Test void ipcsStepKeepsItsShape() throws Throwable {
        // Folded (FoldedRelaxations.ipcFolded): a step is a prediction GEMM, its error kernel, the feedback GEMM (the parameter
        // gradients beside it) and the optimizer's kernel, v formed beside it; where unfolded it was 68, with v formed before
        // the optimizer's step 46. The first step takes PC's error wave (ipcFirstStep): the output error from the feedforward
        // pass, the output block's feedback GEMM (its gradients, the zero gradients below and the feedforward loss beside it),
        // then v_{L-1} beside the optimizer and the start; 38 in all, where forming the first step whole made it 51 (and 203 nodes).
        assertShape(Algorithm.IPC, 8, 38, 192, "n = 8");
        // The energy checked (the default): its terms beside the last step's second round, which reads the errors its first
        // formed, so none more (after the last optimizer step it was 52). Its 24 copies of the parameters and Adam's moments
        // (optim.Snapshot, put back if the energy is not finite), each a branch beside the feedforward pass: nodes, none in a row.
        assertShape(Algorithm.IPC, 8, PcEngine.Condense.AUTO, Loss.MSE, Energy.PER_SAMPLE, true, 38, 220, "n = 8, energy checked");
    }

    @Test void adamOnTheBeliefsKeepsItsShape() throws Throwable {
        // Adam's step on a belief is one kernel (Backend.pcAdamUpdate) where the error, the gradient feedback - error, Adam's
        // step and v = vhat + d were four in a row: PC at T = 5 31, where it was 47 (32 with the start a branch per layer,
        // each four kernels long; now two a branch, Relaxations.relaxationStart).
        assertShape(Algorithm.PC, 5, PcEngine.Condense.AUTO, Loss.MSE, Energy.PER_SAMPLE, false, BeliefOptimizer.adam(), 31, 79, "T = 5, Adam on the beliefs");
        // Checked, the terms beside the learning step's backward passes, as with SGD (after them it was 48).
        assertShape(Algorithm.PC, 5, PcEngine.Condense.AUTO, Loss.MSE, Energy.PER_SAMPLE, true, BeliefOptimizer.adam(), 31, 83, "T = 5, Adam on the beliefs, energy checked");
        // iPC unfolded (Adam does not fold): checked, and its snapshot's 24 copies beside the feedforward pass. Its first step
        // takes PC's error wave: the output block from its feedforward values (its error formed by the feedforward pass),
        // with the hidden blocks' gradients filled with zeros, the feedforward loss and the relaxation's start beside it (49
        // and 170 nodes when it formed every block's prediction again; 46 with the start and the loss before it). Block 0
        // forms eps_1 and its gradients in the first round, and the optimizer's step (with the last step's energy terms)
        // runs beside the belief updates: a step is a GEMM, the error kernel, the feedback GEMM and the belief update, 27
        // in all, where block 0's gradients and the optimizer's step after the belief updates made it 40.
        assertShape(Algorithm.IPC, 5, PcEngine.Condense.AUTO, Loss.MSE, Energy.PER_SAMPLE, true, BeliefOptimizer.adam(), 27, 153, "n = 5, Adam on the beliefs, energy checked");
    }

    @Test void fixedPredictionsStepKeepsItsShape() throws Throwable {
        // A sweep is a round of feedback GEMMs and a round of updates; the energy checked (train's default), its terms (the
        // last sweep's start-of-sweep errors) beside the last sweep's parameter updates, so none more (after them it was 29).
        assertShape(Algorithm.FIXED_PRED, 5, 28, 52, "n = 5");
        assertShape(Algorithm.FIXED_PRED, 5, PcEngine.Condense.AUTO, Loss.MSE, Energy.PER_SAMPLE, true, 28, 56, "n = 5, energy checked");
    }

    @Test void strictsSweepsKeepTheirShape() throws Throwable {
        // STRICT forms each hidden error from changes (Block.forwardIncrement): a sweep's layer is the GEMM of the change,
        // the activation at the moved point with its change less the displacement and that times f' (one kernel), the
        // feedback's GEMM and the step; the output block's is a GEMM onto its feedforward output (copied beside the steps),
        // the loss gradient, the feedback's GEMM and the step. Folded into PC's relaxation from float32 predictions it was
        // 72, but off Torch2PC by up to 4e-4 on deep models.
        assertShape(Algorithm.STRICT, 20, PcEngine.Condense.NEVER, 96, 294, "n = 20, layer 1 not condensed");
        // Condensed (the default), layer 1's update stays off the chain: eps_2's pull-back in block 1's prediction branch,
        // D's update beside the other layers' updates. After them, in the sweep's chain, it made it 142. On the last sweep
        // eps_1 and v_1 are formed side by side (Condensed.update), where one after the other they made it 102.
        assertShape(Algorithm.STRICT, 20, PcEngine.Condense.AUTO, 100, 298, "n = 20, layer 1 condensed");
        // The energy checked (train's default, with --stable-relaxation): its terms beside the parameter updates, which read
        // only what the last sweep formed (EngineCore.learningBeside); after them it was 101.
        assertShape(Algorithm.STRICT, 20, PcEngine.Condense.AUTO, Loss.MSE, Energy.TORCH2PC, true, 100, 302, "n = 20, layer 1 condensed, energy checked");
    }

    private static void assertShape(Algorithm algorithm, int n, long chain, long nodes, String why) throws Throwable {
        assertShape(algorithm, n, PcEngine.Condense.AUTO, Loss.MSE, chain, nodes, why);
    }

    private static void assertShape(Algorithm algorithm, int n, PcEngine.Condense condense, long chain, long nodes, String why) throws Throwable {
        assertShape(algorithm, n, condense, Loss.MSE, chain, nodes, why);
    }

    private static void assertShape(Algorithm algorithm, int n, PcEngine.Condense condense, Loss loss, long chain, long nodes, String why) throws Throwable {
        assertShape(algorithm, n, condense, loss, Energy.PER_SAMPLE, chain, nodes, why);
    }

    /** The step of {@code algorithm} with n steps, the energy unchecked: at most {@code chain} kernels on its longest chain and {@code nodes} in its graph, 5 host submissions and 1 wait. */
    private static void assertShape(Algorithm algorithm, int n, PcEngine.Condense condense, Loss loss, Energy energy, long chain, long nodes, String why) throws Throwable {
        assertShape(algorithm, n, condense, loss, energy, false, chain, nodes, why);
    }

    /** As above; with {@code guarded}, the step checks its energy ({@link Trainer#guardEnergy}, the default). PC and iPC take SGD on the beliefs, PCX's. */
    private static void assertShape(Algorithm algorithm, int n, PcEngine.Condense condense, Loss loss, Energy energy, boolean guarded, long chain, long nodes, String why) throws Throwable {
        assertShape(algorithm, n, condense, loss, energy, guarded, BeliefOptimizer.sgd(0.1f), chain, nodes, why);
    }

    /** As above, with {@code beliefs} moving PC's and iPC's beliefs. */
    private static void assertShape(Algorithm algorithm, int n, PcEngine.Condense condense, Loss loss, Energy energy, boolean guarded, BeliefOptimizer beliefs,
                                    long chain, long nodes, String why) throws Throwable {
        Shape s = step(algorithm, n, condense, loss, energy, guarded, beliefs);
        assertTrue(s.chain() <= chain, algorithm + "'s longest chain, " + why + " (" + s + ")");
        assertTrue(s.nodes() <= nodes, algorithm + "'s graph, " + why + " (" + s + ")");
        assertEquals(5, s.submissions(), "the batch's two copies, the step sizes, the graph launch, the copy back");
        assertEquals(1, s.waits(), "the host waits for the device once a step: for the loss");
    }
}
