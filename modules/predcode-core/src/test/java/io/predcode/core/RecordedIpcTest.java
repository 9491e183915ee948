package io.predcode.core;

import io.predcode.core.nn.Loss;
import io.predcode.core.nn.Model;
import io.predcode.core.nn.ModelSpec;
import io.predcode.core.optim.Adam;
import io.predcode.core.optim.Optimizer;
import io.predcode.core.optim.Sgd;
import io.predcode.core.pc.Algorithm;
import io.predcode.core.pc.BeliefOptimizer;
import io.predcode.core.pc.Energy;
import io.predcode.core.pc.PcEngine;
import io.predcode.core.pc.Trainer;
import io.predcode.spi.Backend;
import io.predcode.spi.BackendOptions;
import io.predcode.spi.Backends;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.*;

/**
 * iPC's training step, an optimizer step after each inference step, recorded whole ({@link Optimizer.Recordable}):
 * what moves with the step count and the learning rate (Adam's step sizes, SGD's rate and first step) comes from a
 * tensor the host fills, so a CUDA graph can hold the step. It must train bit for bit as the optimizer stepping from
 * the host, through changes of the learning rate (a schedule) and AdamW's decay, and on CUDA as with no graphs at all.
 */
class RecordedIpcTest {
    private static final ModelSpec SPEC = ModelSpec.builder().input(9)
            .block(b -> b.linear(9, 12).geluTanh()).block(b -> b.linear(12, 7).leakyRelu(0.1f)).block(b -> b.linear(7, 4)).build();

    /** An optimizer that hides its recordable steps: the engine then steps it from the host, as before recording; {@code before} runs first at each step. */
    private record FromHost(Optimizer inner, Runnable before) implements Optimizer {
        FromHost(Optimizer inner) { this(inner, () -> {}); }
        @Override public void step() {
            before.run();
            inner.step();
        }
        @Override public float learningRate() { return inner.learningRate(); }
        @Override public void learningRate(float lr) { inner.learningRate(lr); }
        @Override public String name() { return inner.name(); }
        @Override public String settings() { return inner.settings(); }
        @Override public long steps() { return inner.steps(); }
        @Override public Map<String, float[]> state() { return inner.state(); }
        @Override public void loadState(Map<String, float[]> state, String source) { inner.loadState(state, source); }
        @Override public void close() { inner.close(); }
    }

    @TestFactory List<DynamicTest> recordedAdamStepsTrainAsHostSteps() {
        List<DynamicTest> out = new ArrayList<>();
        for (String kind : List.of("Adam", "AdamW", "SGD with momentum"))
            out.addAll(PaperResultsTest.onEveryBackend("iPC, " + kind + ", recorded against host steps", be -> {
                Function<Model, Optimizer> adam = m -> switch (kind) {
                    case "Adam" -> new Adam(m, 3e-3f, 0.9f, 0.999f, 1e-8f, 1e-3f);
                    case "AdamW" -> Adam.adamW(m, 3e-3f, 0.05f);
                    default -> new Sgd(m, 0.05f, 0.9f, 1e-3f);
                };
                Result recorded = train(be, m -> adam.apply(m)), fromHost = train(be, m -> new FromHost(adam.apply(m)));
                assertEquals(fromHost.steps, recorded.steps, "the optimizer's step count");
                fromHost.values.forEach((name, v) -> assertArrayEquals(v, recorded.values.get(name), name));
                fromHost.state.forEach((name, v) -> assertArrayEquals(v, recorded.state.get(name), "optimizer state " + name));
            }));
        return out;
    }

    /** On CUDA, iPC's step is one graph with its Adam steps in it, and trains as with graphs off. */
    @Test void onCudaTheStepIsOneGraphThatTrainsAsWithout() throws Throwable {
        if (!Backends.provider("cuda").availability().available()) {
            System.out.println("SKIPPED iPC as a CUDA graph: " + Backends.provider("cuda").availability().reason());
            return;
        }
        Result without = open("false", be -> train(be, m -> Adam.adamW(m, 3e-3f, 0.05f)));
        Result with = open("true", be -> train(be, m -> Adam.adamW(m, 3e-3f, 0.05f)));
        without.values.forEach((name, v) -> assertArrayEquals(v, with.values.get(name), name + " with graphs"));
        String driver = System.getProperty("predcode.cuda.driver", java.util.Objects.requireNonNullElse(System.getenv("PREDCODE_CUDA_DRIVER"), ""));
        if (!driver.contains("cudasim")) return; // a GPU: no simulator to ask what the graph holds
        MemorySegment names = (MemorySegment) Linker.nativeLinker().downcallHandle(
                SymbolLookup.libraryLookup(Path.of(driver), Arena.global()).find("cusimLastGraphNames").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.ADDRESS)).invokeExact();
        long adamSteps = java.util.Arrays.stream(names.reinterpret(1 << 20).getString(0).split(" ")).filter("pc_adam_steps"::equals).count();
        assertEquals(3, adamSteps, "the last graph holds the optimizer's step after each of the 3 inference steps");
    }

    /**
     * An optimizer of the caller's own has no snapshot ({@link Optimizer.Recordable#snapshot}), and the engine steps it
     * from the host inside the relaxation: a runaway iPC step keeps the updates it took, and its message says so (with
     * predcode's optimizers it undoes them: EngineContractTest.aRelaxationThatRunsOffStopsItsOwnStep).
     */
    @TestFactory List<DynamicTest> aRunawayStepWithAnOptimizerOfOnesOwnSaysItKeptItsUpdates() {
        return PaperResultsTest.onEveryBackend("iPC runs off with an optimizer of one's own", be -> {
            try (Model m = Model.create(SPEC, be, 5); PcEngine e = new PcEngine(m, Loss.MSE); Optimizer opt = new FromHost(new Adam(m, 1e-3f))) {
                e.beliefOptimizer(BeliefOptimizer.sgd(0.2f)).energy(Energy.PER_SAMPLE);
                float[] x = PaperResultsTest.randomInput(new SplittableRandom(3), 2 * e.inputSize()), y = {1, 0, 0, 0, 0, 0, 1, 0};
                var d = assertThrows(io.predcode.core.pc.DivergenceException.class, () -> new Trainer(e, opt, Algorithm.IPC, 1e30f, 3).step(x, y, 2));
                assertTrue(d.getMessage().contains("and its 3 iPC updates"), d.getMessage());
                assertEquals(3, opt.steps(), "the host took its 3 steps");
            }
        });
    }

    /**
     * iPC's first inference step: its weights have not moved and its beliefs are the feedforward pass's, so every hidden
     * error, and every parameter gradient of a block below the output, is exactly 0 (not the rounding of predictions
     * formed again: on the CPU a block's fused evaluation adds its bias in another order than the feedforward pass, and
     * Adam, which normalises its steps, moved the weights by up to a full step on that noise). From the second step on they
     * are not. Adam and SGD on the beliefs (unfolded and, on a GPU, folded), on every backend.
     */
    @TestFactory List<DynamicTest> ipcsFirstStepMovesOnlyTheOutputBlock() {
        List<DynamicTest> out = new ArrayList<>();
        for (BeliefOptimizer beliefs : List.of(BeliefOptimizer.adam(), BeliefOptimizer.sgd(0.2f)))
            out.addAll(PaperResultsTest.onEveryBackend("iPC's first step, beliefs " + beliefs, be -> {
                try (Model m = Model.create(io.predcode.core.nn.BuiltinModels.get("digits-mlp"), be, 5); PcEngine e = new PcEngine(m, Loss.CROSS_ENTROPY);
                     Adam adam = new Adam(m, 1e-3f)) {
                    e.beliefOptimizer(beliefs).energy(Energy.PER_SAMPLE);
                    String output = (m.blocks().size() - 1) + ".";
                    List<Map<String, float[]>> gradients = new ArrayList<>(); // at each optimizer step
                    Trainer t = new Trainer(e, new FromHost(adam, () -> gradients.add(m.gradientValues())), Algorithm.IPC, 0.1f, 3);
                    SplittableRandom r = new SplittableRandom(2);
                    int batch = 32;
                    for (int step = 0; step < 2; step++) {
                        float[] x = PaperResultsTest.randomInput(r, batch * e.inputSize()), y = new float[batch];
                        for (int i = 0; i < batch; i++) y[i] = r.nextInt(10);
                        t.step(x, y, batch);
                    }
                    assertEquals(6, gradients.size());
                    for (int k = 0; k < 6; k++)
                        for (var g : gradients.get(k).entrySet()) {
                            boolean zero = true;
                            for (float v : g.getValue()) zero &= v == 0f;
                            boolean hidden = !g.getKey().startsWith(output);
                            String where = "inference step " + (k % 3 + 1) + " of training step " + (k / 3 + 1) + ": " + g.getKey();
                            // In the first training step the wave goes on (Adam's fresh moments leave weights with 0 gradient where they
                            // were); in the second, Adam's first moments move every weight at the first inference step.
                            if (k % 3 == 0) assertEquals(hidden, zero, where + (zero ? " is all zeros" : " is not all zeros"));
                            else if (k > 3) assertFalse(zero, where + " is all zeros");
                        }
                }
            }));
        return out;
    }

    private record Result(Map<String, float[]> values, Map<String, float[]> state, long steps) {}

    /** Four iPC steps (n = 3), the learning rate lowered between them as a schedule does; the parameters and optimizer state after. */
    private static Result train(Backend be, Function<Model, Optimizer> optimizer) {
        try (Model m = Model.create(SPEC, be, 5); PcEngine e = new PcEngine(m, Loss.MSE); Optimizer opt = optimizer.apply(m)) {
            e.beliefOptimizer(BeliefOptimizer.sgd(0.2f)).energy(Energy.PER_SAMPLE);
            Trainer t = new Trainer(e, opt, Algorithm.IPC, 0.1f, 3);
            SplittableRandom r = new SplittableRandom(11);
            int batch = 6;
            for (int step = 0; step < 4; step++) {
                float[] x = PaperResultsTest.randomInput(r, batch * e.inputSize()), y = new float[batch * 4];
                for (int i = 0; i < batch; i++) y[i * 4 + r.nextInt(4)] = 1f;
                t.step(x, y, batch);
                opt.learningRate(opt.learningRate() * 0.7f);
            }
            return new Result(m.parameterValues(), opt.state(), opt.steps());
        }
    }

    private static Result open(String graphs, Function<Backend, Result> body) {
        String before = System.getProperty("predcode.cuda.graphs");
        System.setProperty("predcode.cuda.graphs", graphs);
        Backend be;
        try {
            be = Backends.open("cuda", BackendOptions.defaults());
        } finally {
            if (before == null) System.clearProperty("predcode.cuda.graphs");
            else System.setProperty("predcode.cuda.graphs", before);
        }
        try (be) {
            return body.apply(be);
        }
    }
}
