package io.predcode.cli;

import io.predcode.core.io.AtomicFiles;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.markers.SeriesMarkers;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * training.png: loss per step with validation and test loss per epoch, accuracy per epoch, and with
 * the monitor on, each block's angle between its PC update and the gradient, and for every algorithm
 * that forms prediction errors each layer's energy per step (XChart, headless).
 */
final class Charts {
    private Charts() {}

    /** Each chart's width in pixels: a per-step series is drawn from at most two points per pixel column. */
    private static final int WIDTH = 640;

    /** Points (x, y) in x order. */
    record Series(List<Double> x, List<Double> y) {}

    /**
     * At most two points per bucket of {@code buckets} equal runs of the series, the smallest and the
     * largest y in the run, in their order: at the chart's width the line looks the same (a spike stays a
     * spike), and drawing it costs the same however long the run.
     */
    static Series downsample(List<Double> x, List<Double> y, int buckets) {
        int n = y.size();
        if (n <= 2 * buckets) return new Series(x, y);
        List<Double> dx = new ArrayList<>(2 * buckets), dy = new ArrayList<>(2 * buckets);
        for (int b = 0; b < buckets; b++) {
            int from = (int) ((long) b * n / buckets), to = (int) ((long) (b + 1) * n / buckets);
            int lo = from, hi = from;
            for (int i = from + 1; i < to; i++) {
                if (y.get(i) < y.get(lo)) lo = i;
                if (y.get(i) > y.get(hi)) hi = i;
            }
            for (int i : lo == hi ? new int[]{lo} : new int[]{Math.min(lo, hi), Math.max(lo, hi)}) {
                dx.add(x.get(i));
                dy.add(y.get(i));
            }
        }
        return new Series(dx, dy);
    }

    /** Adds the series, down-sampled to the chart's width. */
    private static XYSeries addSeries(XYChart chart, String name, List<Double> x, List<Double> y) {
        Series d = downsample(x, y, WIDTH);
        return chart.addSeries(name, d.x(), d.y());
    }

    /** Most lines a sweep's chart draws: a legend of more is not read. */
    static final int MAX_CURVES = 10;

    /**
     * A sweep's chart (grid.png, seeds.png): one line per run or point, a value per epoch (each point's in {@code
     * curves}, in order, the first {@link #MAX_CURVES} drawn); a line that stops early is a point that stopped early (a
     * halving's rung, a collapse). Says why where it cannot be drawn, as training.png does.
     */
    static void curves(Path file, String title, String yTitle, java.util.SequencedMap<String, List<double[]>> curves, PrintWriter out) {
        try {
            XYChart chart = new XYChartBuilder().width(WIDTH).height(420).title(title + (curves.size() > MAX_CURVES ? " (the best " + MAX_CURVES + " of " + curves.size() + ")" : ""))
                    .xAxisTitle("epoch").yAxisTitle(yTitle).build();
            chart.getStyler().setMarkerSize(5);
            int drawn = 0;
            for (var c : curves.entrySet()) {
                if (c.getValue().isEmpty()) continue;
                if (drawn++ == MAX_CURVES) break;
                chart.addSeries(c.getKey(), c.getValue().stream().map(p -> p[0]).toList(), c.getValue().stream().map(p -> 100 * p[1]).toList());
            }
            if (drawn == 0) return; // no run finished an epoch
            PngGrid.inMemory();
            AtomicFiles.write(file, BitmapEncoder.getBitmapBytes(chart, BitmapEncoder.BitmapFormat.PNG));
        } catch (IOException | RuntimeException | Error e) {
            out.println("note: " + file.getFileName() + " not written (" + e + ")");
        }
    }

    static void write(Path file, String metricsCsv, List<RunState.EpochRecord> history, int[] monitored, PrintWriter out) {
        try {
            List<Double> steps = new ArrayList<>(), losses = new ArrayList<>();
            List<List<Double>> angleSteps = new ArrayList<>(), angles = new ArrayList<>();
            for (int b = 0; b < monitored.length; b++) { angleSteps.add(new ArrayList<>()); angles.add(new ArrayList<>()); }
            String[] lines = metricsCsv.split("\n");
            // energy_layerL columns (every algorithm but backprop): found by name, after the monitor's.
            List<Integer> energyColumns = new ArrayList<>();
            String[] header = lines[0].split(",", -1);
            for (int c = 0; c < header.length; c++) if (header[c].startsWith("energy_layer")) energyColumns.add(c);
            List<List<Double>> energySteps = new ArrayList<>(), energies = new ArrayList<>();
            for (int c = 0; c < energyColumns.size(); c++) { energySteps.add(new ArrayList<>()); energies.add(new ArrayList<>()); }
            for (int i = 1; i < lines.length; i++) {
                String[] f = lines[i].split(",", -1);
                if (f.length < 3) continue;
                steps.add(Double.parseDouble(f[0]));
                losses.add(Double.parseDouble(f[2]));
                for (int b = 0; b < monitored.length && 5 + 2 * b < f.length; b++)
                    if (!f[5 + 2 * b].isEmpty()) { angleSteps.get(b).add(Double.parseDouble(f[0])); angles.get(b).add(Double.parseDouble(f[5 + 2 * b])); }
                for (int c = 0; c < energyColumns.size(); c++) {
                    int col = energyColumns.get(c);
                    // A log axis takes positive values only: an exact 0 (a layer the relaxation never moved) is left out.
                    if (col < f.length && !f[col].isEmpty() && Double.parseDouble(f[col]) > 0) {
                        energySteps.get(c).add(Double.parseDouble(f[0]));
                        energies.get(c).add(Double.parseDouble(f[col]));
                    }
                }
            }
            if (steps.isEmpty()) return; // diverged at its first step: nothing to draw
            int stepsPerEpoch = history.isEmpty() ? 1 : Math.max(1, steps.size() / history.size());
            XYChart loss = new XYChartBuilder().width(WIDTH).height(420).title("Loss").xAxisTitle("step").yAxisTitle("loss").build();
            loss.getStyler().setMarkerSize(4);
            XYSeries train = addSeries(loss, "train (per step)", steps, losses);
            train.setMarker(SeriesMarkers.NONE);
            List<XYChart> charts = new ArrayList<>(List.of(loss));
            if (!history.isEmpty()) { // a run that diverged in its first epoch has steps only
                List<Double> epochSteps = history.stream().map(r -> (double) r.epoch() * stepsPerEpoch).toList();
                loss.addSeries("test (per epoch)", epochSteps, history.stream().map(RunState.EpochRecord::testLoss).toList());
                if (history.stream().anyMatch(r -> !Double.isNaN(r.validationLoss())))
                    loss.addSeries("validation (per epoch)", epochSteps, history.stream().map(RunState.EpochRecord::validationLoss).toList());
                XYChart acc = new XYChartBuilder().width(WIDTH).height(420).title("Accuracy").xAxisTitle("epoch").yAxisTitle("accuracy (%)").build();
                List<Double> epochs = history.stream().map(r -> (double) r.epoch()).toList();
                acc.addSeries("train", epochs, history.stream().map(r -> 100 * r.trainAccuracy()).toList());
                acc.addSeries("test", epochs, history.stream().map(r -> 100 * r.testAccuracy()).toList());
                if (history.stream().anyMatch(r -> !Double.isNaN(r.validationAccuracy())))
                    acc.addSeries("validation", epochs, history.stream().map(r -> 100 * r.validationAccuracy()).toList());
                acc.getStyler().setMarkerSize(6);
                charts.add(acc);
            }
            if (angles.stream().anyMatch(a -> !a.isEmpty())) {
                XYChart align = new XYChartBuilder().width(WIDTH).height(420).title("PC update vs gradient").xAxisTitle("step").yAxisTitle("angle (degrees)").build();
                align.getStyler().setMarkerSize(3);
                for (int b = 0; b < monitored.length; b++)
                    if (!angles.get(b).isEmpty()) addSeries(align, "block " + monitored[b], angleSteps.get(b), angles.get(b));
                charts.add(align);
            }
            if (energies.stream().anyMatch(e -> !e.isEmpty())) {
                XYChart energy = new XYChartBuilder().width(WIDTH).height(420).title("Energy per layer (a sample's mean)").xAxisTitle("step").yAxisTitle("energy").build();
                energy.getStyler().setYAxisLogarithmic(true);
                energy.getStyler().setMarkerSize(0);
                for (int c = 0; c < energyColumns.size(); c++)
                    if (!energies.get(c).isEmpty()) {
                        boolean output = c == energyColumns.size() - 1;
                        addSeries(energy, output ? "output" : "layer " + (c + 1), energySteps.get(c), energies.get(c)).setMarker(SeriesMarkers.NONE);
                    }
                charts.add(energy);
            }
            ByteArrayOutputStream png = new ByteArrayOutputStream();
            int width = 0, height = 0;
            List<java.awt.image.BufferedImage> images = new ArrayList<>();
            for (XYChart c : charts) {
                java.awt.image.BufferedImage im = BitmapEncoder.getBufferedImage(c);
                images.add(im);
                width += im.getWidth();
                height = Math.max(height, im.getHeight());
            }
            java.awt.image.BufferedImage all = new java.awt.image.BufferedImage(width, height, java.awt.image.BufferedImage.TYPE_INT_RGB);
            java.awt.Graphics2D g = all.createGraphics();
            int x = 0;
            for (java.awt.image.BufferedImage im : images) { g.drawImage(im, x, 0, null); x += im.getWidth(); }
            g.dispose();
            PngGrid.inMemory();
            javax.imageio.ImageIO.write(all, "png", png);
            AtomicFiles.write(file, png.toByteArray());
        } catch (IOException | RuntimeException | Error e) {
            // A machine without fonts cannot draw text; the run's numbers are in metrics.csv and metrics.json.
            out.println("note: training.png not written (" + e + ")");
        }
    }
}
