package io.predcode.cli;

import io.predcode.core.io.AtomicFiles;
import io.predcode.core.io.Checkpoint;
import io.predcode.core.json.Json;
import io.predcode.core.json.JsonFields;
import io.predcode.core.nn.Loss;
import io.predcode.core.nn.Model;
import io.predcode.core.nn.ModelSpec;
import io.predcode.core.optim.Adam;
import io.predcode.core.optim.Optimizer;
import io.predcode.core.optim.Sgd;
import io.predcode.core.pc.Algorithm;
import io.predcode.core.pc.DivergenceException;
import io.predcode.core.pc.PcEngine;
import io.predcode.core.pc.Trainer;
import io.predcode.data.Batches;
import io.predcode.data.DataSources;
import io.predcode.data.DataSplit;
import io.predcode.core.serve.Preprocessing;
import io.predcode.data.Dataset;
import io.predcode.spi.Backend;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** One training run: data, model, the epoch loop, metrics, chart and checkpoints. */
final class TrainingRun {
    record Settings(Setup.BackendChoice backend, Algorithm algorithm, String model, String data, int epochs, int batchSize, String optimizer,
                    float lr, float momentum, float weightDecay, float eta, int n, Loss loss, long seed, Path out, boolean resume, boolean quiet) {}

    record Score(double loss, double accuracy) {}

    /** dataWait: the fraction of the epoch's training time spent waiting for the next batch. */
    record EpochRecord(int epoch, double trainLoss, double trainAccuracy, double testLoss, double testAccuracy, double seconds, double msPerStep, double dataWait) {
        Map<String, Object> json() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("epoch", (double) epoch);
            m.put("train_loss", trainLoss);
            m.put("train_accuracy", trainAccuracy);
            m.put("test_loss", testLoss);
            m.put("test_accuracy", testAccuracy);
            m.put("seconds", seconds);
            m.put("ms_per_step", msPerStep);
            m.put("data_wait_fraction", dataWait);
            return m;
        }

        static EpochRecord of(JsonFields f) {
            return new EpochRecord(f.integer("epoch", 1), f.number("train_loss"), f.number("train_accuracy"), f.number("test_loss"),
                    f.number("test_accuracy"), f.number("seconds"), f.number("ms_per_step"), f.has("data_wait_fraction") ? f.number("data_wait_fraction") : Double.NaN);
        }
    }

    private final Settings s;
    private final PrintWriter out;

    TrainingRun(Settings s, PrintWriter out) { this.s = s; this.out = out; }

    int run() throws IOException {
        DataSplit data = DataSources.load(s.data());
        ModelSpec spec = Setup.model(s.model());
        int[] input = Setup.inputShape(spec, data.sampleShape(), s.model());
        prepareOut();
        try (Backend be = s.backend().open();
             Model model = Model.create(spec, input, be, s.seed());
             PcEngine engine = new PcEngine(model, s.loss());
             Optimizer opt = s.optimizer().equals("sgd") ? new Sgd(model, s.lr(), s.momentum(), s.weightDecay()) : new Adam(model, s.lr(), 0.9f, 0.999f, 1e-8f, s.weightDecay())) {
            int sweeps = s.n() > 0 ? s.n() : model.depth();
            if (s.loss() == Loss.MSE && data.classes() != model.activationShape(model.depth())[0])
                throw new IllegalArgumentException("--loss mse uses one-hot targets: the model outputs " + Arrays.toString(model.activationShape(model.depth())) + " but the data has " + data.classes() + " classes");
            List<EpochRecord> history = new ArrayList<>();
            StringBuilder csv = new StringBuilder("step,epoch,loss,batch_accuracy,ms\n");
            int firstEpoch = 0;
            long step = 0;
            if (s.resume()) {
                Checkpoint.Loaded c = Checkpoint.load(s.out());
                if (!c.spec().blocks().equals(spec.blocks()))
                    throw new IllegalArgumentException(c.source() + ": checkpoint is for a different model than --model " + s.model());
                JsonFields t = c.training();
                checkSame(t, "algorithm", s.algorithm().id(), c.source());
                checkSame(t, "optimizer", s.optimizer(), c.source());
                model.loadParameters(c.parameters(), c.source().toString());
                opt.loadState(c.optimizerState(), c.source().toString());
                firstEpoch = t.integer("epochs_done", 0);
                step = (long) t.number("steps");
                for (Object e : t.list("history")) history.add(EpochRecord.of(JsonFields.of(e, c.source().toString(), "history")));
                Path metricsCsv = s.out().resolve("metrics.csv");
                if (Files.exists(metricsCsv)) { csv.setLength(0); csv.append(Files.readString(metricsCsv)); }
                out.printf("resuming %s after epoch %d (step %d)%n", s.out(), firstEpoch, step);
            }
            out.printf("training %s on %s with %s (%s, eta %s, n %d), %s lr %s, batch %d, %d epochs, backend %s%n", s.model(), data.train(),
                    s.algorithm().id(), s.loss().id(), s.eta(), sweeps, s.optimizer(), s.lr(), s.batchSize(), s.epochs(), be.description());
            Trainer trainer = new Trainer(engine, opt, s.algorithm(), s.eta(), sweeps);
            Dataset train = data.train();
            for (int epoch = firstEpoch; epoch < s.epochs(); epoch++) {
                long t0 = System.nanoTime();
                double lossSum = 0, correct = 0, seen = 0;
                long waitNanos = 0, trainStart = System.nanoTime();
                List<Double> stepMs = new ArrayList<>();
                try (Batches batches = new Batches(train, s.batchSize(), s.seed(), epoch, true, s.loss() == Loss.MSE);
                     ProgressBar bar = s.quiet() ? null : new ProgressBarBuilder().setTaskName("epoch " + (epoch + 1) + "/" + s.epochs())
                             .setInitialMax(train.size()).setStyle(ProgressBarStyle.ASCII).setUnit(" samples", 1).showSpeed().setUpdateIntervalMillis(250)
                             .continuousUpdate().build()) {
                    while (true) {
                        long w0 = System.nanoTime();
                        if (!batches.hasNext()) break;
                        Batches.Batch b = batches.next();
                        waitNanos += System.nanoTime() - w0;
                        long st = System.nanoTime();
                        Trainer.Step r;
                        try {
                            r = trainer.step(b.x(), b.y(), b.size());
                        } catch (DivergenceException d) {
                            writeCsv(csv);
                            throw new DivergenceException(step + 1, "training diverged at step " + (step + 1) + " (epoch " + (epoch + 1) + ", batch " + (b.index() + 1)
                                    + "): loss is not finite; the last good checkpoint is " + (history.isEmpty() ? "none (no epoch finished)" : s.out().resolve(Checkpoint.RESUME_FILE)
                                    + " after epoch " + history.getLast().epoch()) + ". Try a smaller --lr or --eta.");
                        }
                        double ms = (System.nanoTime() - st) / 1e6;
                        step++;
                        stepMs.add(ms);
                        lossSum += r.loss() * b.size();
                        seen += b.size();
                        double batchAcc = r.correct() >= 0 ? (double) r.correct() / b.size() : Double.NaN;
                        correct += Math.max(0, r.correct());
                        csv.append(step).append(',').append(epoch + 1).append(',').append(r.loss()).append(',').append(r.correct() >= 0 ? Setup.fmt(batchAcc) : "").append(',')
                                .append(String.format(java.util.Locale.ROOT, "%.3f", ms)).append('\n');
                        if (bar != null) {
                            bar.stepBy(b.size());
                            bar.setExtraMessage(String.format(java.util.Locale.ROOT, " loss %.4f acc %.1f%%", lossSum / seen, 100 * correct / seen));
                        }
                    }
                }
                double dataWait = (double) waitNanos / (System.nanoTime() - trainStart);
                Score test = evaluate(engine, data.test(), 1000);
                double seconds = (System.nanoTime() - t0) / 1e9;
                EpochRecord rec = new EpochRecord(epoch + 1, lossSum / seen, correct / seen, test.loss(), test.accuracy(), seconds, median(stepMs), dataWait);
                history.add(rec);
                out.printf("epoch %d/%d  train loss %s acc %.2f%%  test loss %s acc %.2f%%  %.1f s, %.2f ms/step, data wait %.1f%%%n", epoch + 1, s.epochs(),
                        Setup.fmt(rec.trainLoss()), 100 * rec.trainAccuracy(), Setup.fmt(rec.testLoss()), 100 * rec.testAccuracy(), seconds, rec.msPerStep(), 100 * dataWait);
                out.flush();
                writeCsv(csv);
                // Raw values (bytes, digits' 0..16) become the model's inputs by the data's scale: a service passes them as they come.
                Checkpoint.save(s.out(), model, opt, trainingState(epoch + 1, step, history, be, sweeps),
                        new Preprocessing(data.pixelScale(), 0f), data.classNames());
                AtomicFiles.writeString(s.out().resolve("metrics.json"), Json.write(metricsJson(history, be, sweeps, data), 2) + "\n");
                Charts.write(s.out().resolve("training.png"), csv.toString(), history, out);
            }
            EpochRecord last = history.getLast();
            out.printf("final test accuracy %.2f%%; wrote %s (metrics.csv, metrics.json, training.png, %s)%n", 100 * last.testAccuracy(), s.out(), Checkpoint.RESUME_FILE);
            return 0;
        }
    }

    private void prepareOut() throws IOException {
        Path dir = s.out();
        if (Files.exists(dir) && !Files.isDirectory(dir)) throw new IllegalArgumentException("--out " + dir + " is a file, not a folder");
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new java.nio.file.AccessDeniedException(dir.toString(), null, "--out folder cannot be created (" + Main.message(e) + ")");
        }
        if (!Files.isWritable(dir)) throw new java.nio.file.AccessDeniedException(dir.toString(), null, "--out folder is not writable");
        if (s.resume() && !Files.exists(dir.resolve(Checkpoint.RESUME_FILE)))
            throw new java.nio.file.NoSuchFileException(dir.resolve(Checkpoint.RESUME_FILE).toString(), null, "--resume needs a checkpoint in --out, none found");
    }

    private static void checkSame(JsonFields t, String key, String value, Path source) {
        String saved = t.object("settings").string(key);
        if (!saved.equals(value)) throw new IllegalArgumentException(source + ": checkpoint was trained with " + key + " " + saved + ", not " + value + "; --resume continues the same run");
    }

    private void writeCsv(StringBuilder csv) throws IOException { AtomicFiles.writeString(s.out().resolve("metrics.csv"), csv.toString()); }

    private Map<String, Object> settingsJson(Backend be, int sweeps) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("backend", be.name());
        m.put("backend_description", be.description());
        m.put("algorithm", s.algorithm().id());
        m.put("model", s.model());
        m.put("data", s.data());
        m.put("epochs", (double) s.epochs());
        m.put("batch_size", (double) s.batchSize());
        m.put("optimizer", s.optimizer());
        m.put("lr", num(s.lr()));
        m.put("momentum", num(s.momentum()));
        m.put("weight_decay", num(s.weightDecay()));
        m.put("eta", num(s.eta()));
        m.put("n", (double) sweeps);
        m.put("loss", s.loss().id());
        m.put("seed", (double) s.seed());
        return m;
    }

    private Map<String, Object> trainingState(int epochsDone, long steps, List<EpochRecord> history, Backend be, int sweeps) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("epochs_done", (double) epochsDone);
        m.put("steps", (double) steps);
        m.put("settings", settingsJson(be, sweeps));
        m.put("history", history.stream().map(r -> (Object) r.json()).toList());
        return m;
    }

    private Map<String, Object> metricsJson(List<EpochRecord> history, Backend be, int sweeps, DataSplit data) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("settings", settingsJson(be, sweeps));
        m.put("train_samples", (double) data.train().size());
        m.put("test_samples", (double) data.test().size());
        m.put("epochs", history.stream().map(r -> (Object) r.json()).toList());
        m.put("final_test_accuracy", history.getLast().testAccuracy());
        m.put("final_test_loss", history.getLast().testLoss());
        m.put("ms_per_step", median(history.stream().map(EpochRecord::msPerStep).toList()));
        m.put("data_wait_fraction", history.stream().mapToDouble(EpochRecord::dataWait).max().orElse(Double.NaN));
        return m;
    }

    /** A float setting as the decimal the user typed (0.002, not 0.0020000000949949026). */
    static double num(float f) { return Double.parseDouble(Float.toString(f)); }

    static double median(List<Double> v) {
        if (v.isEmpty()) return Double.NaN;
        double[] a = v.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        return a.length % 2 == 1 ? a[a.length / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
    }

    /**
     * Test loss (the model's own loss: cross-entropy on labels, or mse on one-hot rows) and accuracy
     * (argmax against the label), in batches.
     */
    static Score evaluate(PcEngine engine, Dataset test, int batchSize) {
        double loss = 0, correct = 0;
        int per = test.sampleSize(), classes = test.classes();
        for (int start = 0; start < test.size(); start += batchSize) {
            int size = Math.min(batchSize, test.size() - start);
            float[] x = Arrays.copyOfRange(test.images(), start * per, (start + size) * per);
            float[] labels = Arrays.copyOfRange(test.labels(), start, start + size);
            if (engine.loss() == Loss.CROSS_ENTROPY) {
                PcEngine.Evaluation e = engine.evaluate(x, labels, size);
                loss += (double) e.loss() * size;
                correct += e.correct();
            } else {
                loss += (double) engine.evaluate(x, test.oneHot(start, size), size).loss() * size;
                float[] out = engine.predict(x, size);
                for (int i = 0; i < size; i++) {
                    int best = 0;
                    for (int c = 1; c < classes; c++) if (out[i * classes + c] > out[i * classes + best]) best = c;
                    if (best == labels[i]) correct++;
                }
            }
        }
        return new Score(loss / test.size(), correct / test.size());
    }
}
