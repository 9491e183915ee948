package io.predcode.cli;

import io.predcode.core.io.AtomicFiles;
import io.predcode.core.io.Checkpoint;
import io.predcode.core.nn.Loss;
import io.predcode.core.nn.Model;
import io.predcode.core.pc.PcEngine;
import io.predcode.spi.Backend;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

/**
 * {@code predcode generate}: generative inference on a trained model. Each class is held at the
 * output and the input relaxes with the hidden layers on the PC energy ({@link PcEngine#generate});
 * the inferred inputs are drawn as a PNG grid, one row per class.
 */
@Command(name = "generate", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Infer inputs for each class of a trained model and draw them as a PNG grid, a row per class.",
                "The class is held at the output, and the input relaxes with the hidden layers on the PC energy."})
final class GenerateCommand implements Callable<Integer> {
    @Spec picocli.CommandLine.Model.CommandSpec spec;

    @Mixin Setup.CheckpointChoice checkpoint;

    @Option(names = "--out", defaultValue = "generated.png", description = "The PNG grid to write (default: ${DEFAULT-VALUE}).")
    Path out;

    @Option(names = "--npy", description = "Also write the inferred inputs to this .npy file: float32, shape (classes x per-class, ...the model's input),"
            + " class by class (rows c * per-class .. are class c's), in the data's raw units (the checkpoint's preprocessing undone), which predict takes back.")
    Path npy;

    @Option(names = "--per-class", defaultValue = "8", description = "Inputs inferred per class: the grid's columns (default: ${DEFAULT-VALUE}).")
    int perClass;

    @Option(names = "--steps", defaultValue = "1000", description = "Relaxation steps; with --tolerance, the most (default: ${DEFAULT-VALUE}).")
    int steps;

    @Option(names = "--tolerance", defaultValue = "0", description = "Stop once the energy no longer goes below its lowest by this fraction of it (0.01, say;"
            + " read back every " + PcEngine.GENERATION_CHECK_EVERY + " steps, and with --momentum 0.9 stopped after two such reads in a row, as the"
            + " energy may rise for a while); 0 takes every step (default: ${DEFAULT-VALUE}).")
    double tolerance;

    @Option(names = "--eta", defaultValue = "0.1", description = "Step size of the relaxation, per sample; halved until the relaxation does not run off (default: ${DEFAULT-VALUE}).")
    float eta;

    @Option(names = "--momentum", defaultValue = "0.9", description = "Heavy-ball momentum of the relaxation, in [0, 1); 0 is plain gradient descent (default: ${DEFAULT-VALUE}).")
    float momentum;

    @Option(names = "--noise", defaultValue = "0.1", description = "Each start is uniform noise in [0, NOISE] in the model's input units (default: ${DEFAULT-VALUE}).")
    float noise;

    @Option(names = "--seed", defaultValue = "0", description = "Seeds the starting noise (default: ${DEFAULT-VALUE}).")
    long seed;

    @Mixin Setup.BackendChoice backendChoice;

    @Override public Integer call() throws Exception {
        if (perClass < 1 || perClass > 1000) throw new IllegalArgumentException("--per-class must be in 1..1000, got " + perClass);
        Setup.outputFile("--out", out);
        Setup.outputFile("--npy", npy);
        Setup.Relaxation.check("--steps", steps, "--eta", eta);
        if (!(momentum >= 0 && momentum < 1)) throw new IllegalArgumentException("--momentum must be in [0, 1), got " + momentum);
        if (!(noise >= 0) || !Float.isFinite(noise)) throw new IllegalArgumentException("--noise must be a finite number >= 0, got " + noise);
        if (!(tolerance >= 0) || !(tolerance < 1)) throw new IllegalArgumentException("--tolerance must be in [0, 1), got " + tolerance);
        if (!out.toString().endsWith(".png")) throw new IllegalArgumentException("--out " + out + ": expected a .png file");
        if (npy != null && !npy.toString().endsWith(".npy")) throw new IllegalArgumentException("--npy " + npy + ": expected a .npy file");
        if (!Awt.available()) throw new IllegalArgumentException("generate writes a PNG grid, but " + Awt.missing());
        Checkpoint.Loaded c = checkpoint.loadFinite();
        Loss loss = c.loss();
        var print = spec.commandLine().getOut();
        try (Backend be = backendChoice.openFor(c); Model m = c.model(be); PcEngine e = new PcEngine(m, loss)) {
            int[] outShape = m.activationShape(m.depth());
            if (outShape.length != 1) throw new IllegalArgumentException(c.source() + ": generate holds one class at a flat output; this model outputs " + Arrays.toString(outShape));
            int classes = outShape[0], inputSize = e.inputSize(), batch = classes * perClass;
            float[] x0 = new float[batch * inputSize];
            SplittableRandom r = new SplittableRandom(seed);
            for (int i = 0; i < x0.length; i++) x0[i] = (float) (r.nextDouble() * noise);
            float[] y = new float[batch * e.targetSize()];
            for (int i = 0; i < batch; i++) {
                int cls = i / perClass;
                if (loss == Loss.CROSS_ENTROPY) y[i] = cls;
                else y[i * classes + cls] = 1f;
            }
            // Gradient descent on the energy diverges past a step size the model's weights set (larger weights, smaller eta):
            // a relaxation that ran off (its energy not finite, or above where it started) is taken again with eta halved,
            // as train's stable relaxation does, and says so.
            float etaNow = eta;
            PcEngine.Generation g = e.generate(x0, y, batch, etaNow, momentum, steps, tolerance, new int[0]);
            for (int halvings = 0; !(g.finalEnergy() <= g.startEnergy()); halvings++) {
                String energy = Double.isFinite(g.finalEnergy()) ? String.format(java.util.Locale.ROOT, "%.4g -> %.4g", g.startEnergy(), g.finalEnergy())
                        : Double.toString(g.finalEnergy());
                if (halvings == MAX_HALVINGS)
                    throw new io.predcode.core.pc.DivergenceException(g.steps(), "the relaxation diverged even at eta " + etaNow + " (energy " + energy + ")");
                print.printf("the relaxation diverged at eta %s (energy %s); relaxing again with eta %s%n", etaNow, energy, etaNow / 2);
                g = e.generate(x0, y, batch, etaNow /= 2, momentum, steps, tolerance, new int[0]);
            }
            String[] names = new String[classes];
            for (int cls = 0; cls < classes; cls++) names[cls] = cls < c.classNames().size() ? c.classNames().get(cls) : Integer.toString(cls);
            AtomicFiles.write(out, PngGrid.of(g.input(), m.inputShape(), names, perClass));
            if (npy != null) AtomicFiles.write(npy, npyOf(g.input(), batch, m.inputShape(), c.preprocessing()));
            print.printf("%s: %d inputs per class relaxed for %d steps%s (eta %s); energy per sample %s -> %s; grid in %s%n", c.source(), perClass, g.steps(),
                    g.steps() < steps ? " (settled: under " + tolerance + " of its energy in " + PcEngine.settlingChecks(momentum) * PcEngine.GENERATION_CHECK_EVERY + " steps)" : "", etaNow,
                    Setup.fmt(g.startEnergy()), Setup.fmt(g.finalEnergy()), out + (npy != null ? " and " + npy : ""));
            int reached = 0;
            for (int cls = 0; cls < classes; cls++) {
                int hits = 0;
                for (int k = 0; k < perClass; k++) if (Loss.argmax(g.output(), cls * perClass + k, classes) == cls) hits++;
                print.printf("  class %s: the model classifies %d of %d inferred inputs as it%n", names[cls], hits, perClass);
                reached += hits;
            }
            // A relaxation stopped early leaves the inputs near their start, which the model takes as one class or
            // a few: on a model trained on squared error, whose energy is small, 200 steps can be far too few.
            if (2 * reached < batch)
                print.printf("note: only %d of %d inferred inputs reach their class; the relaxation has not gone far enough: try --steps %d%s%s%n",
                        reached, batch, Math.multiplyExact(steps, 10), etaNow < eta ? "" : ", or a larger --eta (too large diverges)",
                        g.steps() < steps ? ", or a smaller --tolerance" : "");
        }
        return 0;
    }

    /** Halvings of eta a relaxation that runs off is taken again with before generate gives up: 0.1 down to 1e-7. */
    static final int MAX_HALVINGS = 20;

    /** The inputs as a float32 .npy array of {@code batch} samples of {@code shape}, mapped back to raw values by {@code p}. */
    static byte[] npyOf(float[] x, int batch, int[] shape, io.predcode.core.serve.Preprocessing p) {
        float[] raw = new float[x.length];
        for (int i = 0; i < x.length; i++) raw[i] = (x[i] - p.shift()) / p.scale();
        int[] dims = new int[shape.length + 1];
        dims[0] = batch;
        System.arraycopy(shape, 0, dims, 1, shape.length);
        return io.predcode.data.Npy.encode(dims, raw);
    }
}
