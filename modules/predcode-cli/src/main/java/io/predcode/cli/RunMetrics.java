package io.predcode.cli;

import io.predcode.core.io.AtomicFiles;
import io.predcode.core.json.Json;
import io.predcode.core.pc.Alignment;
import io.predcode.core.pc.Trainer;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * A training run's record in --out for people and scripts: metrics.csv (a row a step, the validation scores on each
 * epoch's last), metrics.json and training.png. Checkpoints are {@link TrainingRun}'s.
 */
final class RunMetrics {
    /**
     * training.png is redrawn after an epoch at most this often, and whenever the run stops: drawing it
     * takes about a quarter of a second (AWT code that runs too seldom to be compiled), which redrawn
     * every epoch cost a 12-epoch run of PCX's MLP 15 s against 10.5 s without the chart.
     */
    static final long CHART_EVERY_NANOS = 10_000_000_000L;

    private final Path dir;
    private final PrintWriter out;
    /** The blocks the alignment monitor reports (none where it is off), and the energy_layer1..L columns (0: none). */
    private final int[] monitored;
    private final int energyLayers;
    private final StringBuilder csv;
    /** When training.png was last drawn (System.nanoTime), of how many epochs; whether the note that it cannot be was given. */
    private long chartDrawnAt;
    private int chartEpochs = -1;
    private boolean chartNoted;

    RunMetrics(Path dir, PrintWriter out, int[] monitored, int energyLayers) {
        this.dir = dir;
        this.out = out;
        this.monitored = monitored;
        this.energyLayers = energyLayers;
        StringBuilder h = new StringBuilder("step,epoch,loss,batch_accuracy,ms");
        for (int b : monitored) h.append(",angle_block").append(b).append(",relative_error_block").append(b);
        for (int l = 1; l <= energyLayers; l++) h.append(",energy_layer").append(l);
        csv = h.append(",validation_loss,validation_accuracy\n");
    }

    /**
     * On --resume: the rows of the run's metrics.csv up to its checkpoint's {@code step}, in this run's columns. Rows
     * past it (written before a kill, or by a run that then diverged) would be trained again: they are dropped.
     */
    void keepRowsUpTo(long step) throws IOException {
        Path metricsCsv = dir.resolve("metrics.csv");
        if (!Files.exists(metricsCsv)) return;
        List<String> rows = Files.readAllLines(metricsCsv);
        String header = csv.toString();
        // The earlier rows in this run's columns, which may differ (the monitor turned on or off, a build without energies on Spark).
        MetricsColumns columns = new MetricsColumns(rows.isEmpty() ? header.strip() : rows.getFirst(), header.strip());
        for (String row : rows.subList(Math.min(1, rows.size()), rows.size())) {
            int comma = row.indexOf(',');
            long rowStep;
            try {
                rowStep = comma > 0 ? Long.parseLong(row.substring(0, comma)) : Long.MAX_VALUE;
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(metricsCsv + ": a row starts with '" + row.substring(0, comma) + "', not a step number");
            }
            if (rowStep <= step) csv.append(columns.relay(row)).append('\n');
        }
    }

    /** A step's row: step {@code step} of epoch {@code epoch} (1-based) on {@code size} samples, taking {@code ms}. */
    void step(long step, int epoch, Trainer.Step r, int size, double ms) {
        csv.append(step).append(',').append(epoch).append(',').append(r.loss()).append(',').append(r.correct() >= 0 ? Setup.fmt((double) r.correct() / size) : "").append(',')
                .append(String.format(Locale.ROOT, "%.3f", ms));
        Alignment a = r.alignment();
        for (int i = 0; i < monitored.length; i++) {
            if (a == null) csv.append(",,");
            else csv.append(',').append(Setup.fmt(a.angleDegrees()[i])).append(',').append(Setup.fmt(a.relativeError()[i]));
        }
        for (int l = 1; l <= energyLayers; l++) csv.append(',').append(r.energies() == null ? "" : String.format(Locale.ROOT, "%.6g", r.energies()[l]));
        csv.append(",,\n"); // the validation columns, filled on the epoch's last row
    }

    /** Fills the validation columns of the epoch's last row (empty where there is no validation set). */
    void epochEnd(Scoring.Score validation) {
        csv.setLength(csv.length() - 3);
        csv.append(',').append(validation == null ? "" : Setup.fmt(validation.loss())).append(',').append(validation == null ? "" : Setup.fmt(validation.accuracy()))
                .append('\n');
    }

    void writeCsv() throws IOException { AtomicFiles.writeString(dir.resolve("metrics.csv"), csv.toString()); }

    void writeJson(Map<String, Object> metrics) throws IOException { AtomicFiles.writeString(dir.resolve("metrics.json"), Json.write(metrics, 2) + "\n"); }

    /** Draws training.png from the run so far; where this runtime has no AWT, says so once instead. */
    void chart(List<RunState.EpochRecord> history) {
        if (Awt.available()) Charts.write(dir.resolve("training.png"), csv.toString(), history, monitored, out);
        else if (!chartNoted) out.println("note: training.png not written: " + Awt.missing());
        chartNoted = true;
        chartDrawnAt = System.nanoTime();
        chartEpochs = history.size();
    }

    /** After an epoch: redraws training.png where it was never drawn or {@link #CHART_EVERY_NANOS} have passed. */
    void chartIfDue(List<RunState.EpochRecord> history) {
        if (chartEpochs < 0 || System.nanoTime() - chartDrawnAt >= CHART_EVERY_NANOS) chart(history);
    }

    /** Whether training.png was last drawn with fewer epochs than {@code epochs}. */
    boolean chartBehind(int epochs) { return chartEpochs != epochs; }
}
