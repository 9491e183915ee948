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
    /** compare --help's headings, and the options under each ({@link HelpSections}). */
    static final Map<String, List<String>> HELP_SECTIONS = helpSections();

    private static Map<String, List<String>> helpSections() {
        Map<String, List<String>> s = new LinkedHashMap<>();
        s.put("What to compare", List.of("--algorithm", "--model", "--checkpoint", "--data", "--batch-size", "--loss", "--seed"));
        s.put("The relaxation", List.of("--eta", "--inference-lr", "--n", "--T", "--belief-optimizer", "--inference-optimizer", "--inference-momentum",
                "--energy", "--nudging"));
        s.put("Machine and output", List.of("--backend", "--threads", "--thread-invariant", "--json"));
        s.put("Help", List.of("--help", "--version"));
        return java.util.Collections.unmodifiableMap(s);
    }

    @Spec picocli.CommandLine.Model.CommandSpec spec;

    @Mixin Setup.BackendChoice backendChoice;

    @Option(names = "--model", defaultValue = "digits-mlp", description = "example-cnn, mlp, digits-mlp, pcx-mlp, mlp:H1-H2-...[:ACTIVATION] (sized to the data) or FILE.json (default: ${DEFAULT-VALUE}); ignored with --checkpoint.")
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

    @Option(names = "--loss", description = "cross-entropy or mse (default: the loss a --checkpoint was trained with, else cross-entropy).")
    String loss;

    @Option(names = "--seed", defaultValue = "0", description = "Initialisation seed of a fresh model (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--json", description = "Print JSON instead of a table.")
    boolean json;

    record Row(String algorithm, int block, double relativeError, double angleDegrees) {}

    /**
     * A setting a checkpoint was trained with ({@code key} in its training settings), where none of {@code options} was
     * given here; null otherwise, or where the checkpoint does not record it (an export, an older run).
     */
    private <T> T trained(Checkpoint.Loaded c, String key, java.util.function.Function<String, T> parse, String... options) {
        Object value = Setup.recorded(c, key);
        if (value == null) return null;
        for (String o : options) if (spec.commandLine().getParseResult().hasMatchedOption(o)) return null;
        return Setup.option(c.source() + ": field '" + c.settings().path() + "." + key + "'", value instanceof Double d ? Double.toString(d) : String.valueOf(value), parse);
    }

    @Override public Integer call() throws Exception {
        relaxation.validate();
        List<Algorithm> algs = Setup.algorithms(algorithms);
        Checkpoint.Loaded c = checkpoint == null ? null : Setup.checkpoint(checkpoint);
        if (c != null) Setup.requireFinite(c);
        // Recorded values within the bounds --eta and --n take.
        Float trainedEta = trained(c, "eta", v -> Setup.Relaxation.checkEta("eta", Float.parseFloat(v)), "--eta", "--inference-lr");
        Integer trainedN = trained(c, "n", v -> Setup.Relaxation.checkSteps("n", Double.parseDouble(v)), "--n", "--T");
        float eta = trainedEta != null ? trainedEta : relaxation.eta;
        int n = trainedN != null ? trainedN : relaxation.sweeps(20);
        // The loss, and pc's and ipc's settings, as a checkpoint was trained with them unless given here; else train's defaults
        // (each sample's own energy, sgd on the beliefs).
        Loss l = loss != null ? Setup.loss(loss) : c != null ? c.loss() : Loss.CROSS_ENTROPY;
        BeliefOptimizer beliefOptimizer = trained(c, "belief_optimizer", BeliefOptimizer::parse, "--belief-optimizer", "--inference-optimizer", "--inference-momentum");
        if (beliefOptimizer == null) beliefOptimizer = beliefs.optimizer();
        Energy energy = trained(c, "energy", Energy::parse, "--energy");
        if (energy == null) energy = beliefs.energy();
        // A checkpoint's nudging where these algorithms take it (compare's default algorithms on a nudged pc run do not).
        Nudging nudging = trained(c, "nudging", Nudging::parse, "--nudging");
        if (nudging == null || Setup.Nudged.refusal(nudging, algs, energy) != null) nudging = nudged.nudging(algs, energy);
        boolean standard = algs.stream().anyMatch(Algorithm::standard);
        DataSplit split = c != null ? dataChoice.loadFor(c) : dataChoice.load();
        ModelSpec ms = c != null ? c.spec() : Setup.model(model, split, dataChoice.name());
        int[] input = c != null ? Setup.inputShape(ms, split, "the model in " + checkpoint) : Setup.inputShapeOfModelOption(ms, split, model);
        Dataset test = split.test();
        int size = Math.min(batchSize, test.size());
        if (size < 1) throw new IllegalArgumentException("--batch-size must be >= 1, got " + batchSize);
        float[] x = Arrays.copyOf(test.images(), size * test.sampleSize());
        float[] y = l == Loss.CROSS_ENTROPY ? Arrays.copyOf(test.labels(), size) : test.oneHot(0, size);
        List<Row> rows = new ArrayList<>();
        try (Backend be = backendChoice.openFor(c); Model m = Model.create(ms, input, be, seed);
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
            m.put("loss", l.id());
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
            out.printf("PC updates vs backprop gradients on %d samples of %s (%s, eta %s, n %d%s)%n", size, test.name(), l.id(), eta, n,
                    standard ? "; pc and ipc: beliefs " + beliefOptimizer + ", " + energy.id() + " energy" + (nudging.active() ? ", nudging " + nudging : "") : "");
            out.printf("%-10s %5s %16s %12s%n", "algorithm", "block", "relative error", "angle (deg)");
            for (Row r : rows) out.printf("%-10s %5d %16.3e %12.3f%n", r.algorithm(), r.block(), r.relativeError(), r.angleDegrees());
        }
        return 0;
    }
}
