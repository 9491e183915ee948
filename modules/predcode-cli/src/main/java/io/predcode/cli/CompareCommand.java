package io.predcode.cli;

import io.predcode.core.io.Checkpoint;
import io.predcode.core.json.Json;
import io.predcode.core.nn.Loss;
import io.predcode.core.nn.Model;
import io.predcode.core.nn.ModelSpec;
import io.predcode.core.pc.Algorithm;
import io.predcode.core.pc.Alignment;
import io.predcode.core.pc.BeliefOptimizer;
import io.predcode.core.pc.Energy;
import io.predcode.core.pc.Nudging;
import io.predcode.core.pc.PcEngine;
import io.predcode.data.DataSplit;
import io.predcode.data.Dataset;
import io.predcode.spi.Backend;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * The paper's central diagnostic: on one batch, per block, how far each PC algorithm's parameter
 * updates are from backprop's gradients (relative error and angle).
 */
@Command(name = "compare", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Per block: relative error and angle between each PC algorithm's parameter updates and backprop's gradients on one batch.")
final class CompareCommand implements Callable<Integer> {
    @Spec picocli.CommandLine.Model.CommandSpec spec;

    @Mixin Setup.BackendChoice backendChoice;

    @Option(names = "--model", defaultValue = "digits-mlp", description = "example-cnn, mlp, digits-mlp, pcx-mlp or FILE.json (default: ${DEFAULT-VALUE}); ignored with --checkpoint.")
    String model;

    @Option(names = "--checkpoint", description = "Compare on a trained model instead of a fresh one.")
    Path checkpoint;

    @Mixin Setup.DataChoice dataChoice;

    @Option(names = "--batch-size", defaultValue = "64", description = "Samples in the batch (default: ${DEFAULT-VALUE}).")
    int batchSize;

    @Option(names = "--algorithm", split = ",", defaultValue = "strict,fixedpred,exact", description = "PC algorithms to compare: strict, fixedpred, exact,"
            + " pc, ipc (its last inference step's updates, the weights held), zil (default: ${DEFAULT-VALUE}).")
    List<String> algorithms;

    @Mixin Setup.Relaxation relaxation;

    @Mixin Setup.Beliefs beliefs;

    @Mixin Setup.Nudged nudged;

    @Option(names = "--loss", defaultValue = "cross-entropy", description = "cross-entropy or mse (default: ${DEFAULT-VALUE}).")
    String loss;

    @Option(names = "--seed", defaultValue = "0", description = "Initialisation seed of a fresh model (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--json", description = "Print JSON instead of a table.")
    boolean json;

    record Row(String algorithm, int block, double relativeError, double angleDegrees) {}

    @Override public Integer call() throws Exception {
        relaxation.validate();
        float eta = relaxation.eta;
        int n = relaxation.sweeps(20);
        Loss l = Setup.loss(loss);
        List<Algorithm> algs = Setup.algorithms(algorithms);
        // pc and ipc relax as train relaxes them (the same defaults: each sample's own energy, sgd on the beliefs).
        BeliefOptimizer beliefOptimizer = beliefs.optimizer();
        Energy energy = beliefs.energy();
        Nudging nudging = nudged.nudging(algs, energy);
        boolean standard = algs.stream().anyMatch(Algorithm::standard);
        DataSplit split = dataChoice.load();
        Checkpoint.Loaded c = checkpoint == null ? null : Checkpoint.load(checkpoint);
        ModelSpec ms = c != null ? c.spec() : Setup.model(model);
        int[] input = Setup.inputShape(ms, split.sampleShape(), c != null ? checkpoint.toString() : model);
        Dataset test = split.test();
        int size = Math.min(batchSize, test.size());
        if (size < 1) throw new IllegalArgumentException("--batch-size must be >= 1, got " + batchSize);
        float[] x = Arrays.copyOf(test.images(), size * test.sampleSize());
        float[] y = l == Loss.CROSS_ENTROPY ? Arrays.copyOf(test.labels(), size) : test.oneHot(0, size);
        List<Row> rows = new ArrayList<>();
        try (Backend be = backendChoice.open(); Model m = Model.create(ms, input, be, seed);
             PcEngine e = new PcEngine(m, l).beliefOptimizer(beliefOptimizer).energy(energy).nudging(nudging)) {
            if (c != null) m.loadParameters(c.parameters(), c.source().toString());
            e.infer(x, y, size, Algorithm.BACKPROP, eta, n);
            Map<String, float[]> bp = m.gradientValues();
            for (Algorithm a : algs) {
                e.infer(x, y, size, a, eta, n);
                Alignment al = Alignment.between(m, bp, m.gradientValues(), 0);
                for (int i = 0; i < al.blocks().length; i++) rows.add(new Row(a.id(), al.blocks()[i], al.relativeError()[i], al.angleDegrees()[i]));
            }
        }
        var out = spec.commandLine().getOut();
        if (json) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("model", c != null ? checkpoint.toString() : model);
            m.put("batch_size", (double) size);
            m.put("eta", (double) eta);
            m.put("n", (double) n);
            if (standard) {
                m.put("belief_optimizer", beliefOptimizer.toString());
                m.put("energy", energy.id());
                m.put("nudging", nudging.toString());
            }
            m.put("rows", rows.stream().map(r -> {
                Map<String, Object> row = new LinkedHashMap<>();
                row.put("algorithm", r.algorithm());
                row.put("block", (double) r.block());
                row.put("relative_error", r.relativeError());
                row.put("angle_degrees", r.angleDegrees());
                return (Object) row;
            }).toList());
            out.println(Json.write(m, 2));
        } else {
            out.printf("PC updates vs backprop gradients on %d samples of %s (eta %s, n %d%s)%n", size, test.name(), eta, n,
                    standard ? "; pc and ipc: beliefs " + beliefOptimizer + ", " + energy.id() + " energy" + (nudging.active() ? ", nudging " + nudging : "") : "");
            out.printf("%-10s %5s %16s %12s%n", "algorithm", "block", "relative error", "angle (deg)");
            for (Row r : rows) out.printf("%-10s %5d %16.3e %12.3f%n", r.algorithm(), r.block(), r.relativeError(), r.angleDegrees());
        }
        return 0;
    }
}
