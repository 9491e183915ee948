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

/** training.png: loss per step with test loss per epoch, and accuracy per epoch (XChart, headless). */
final class Charts {
    private Charts() {}

    static void write(Path file, String metricsCsv, List<TrainingRun.EpochRecord> history, PrintWriter out) {
        try {
            List<Double> steps = new ArrayList<>(), losses = new ArrayList<>();
            String[] lines = metricsCsv.split("\n");
            for (int i = 1; i < lines.length; i++) {
                String[] f = lines[i].split(",");
                if (f.length < 3) continue;
                steps.add(Double.parseDouble(f[0]));
                losses.add(Double.parseDouble(f[2]));
            }
            int stepsPerEpoch = history.isEmpty() ? 1 : Math.max(1, steps.size() / history.size());
            XYChart loss = new XYChartBuilder().width(640).height(420).title("Loss").xAxisTitle("step").yAxisTitle("loss").build();
            loss.getStyler().setMarkerSize(4);
            XYSeries train = loss.addSeries("train (per step)", steps, losses);
            train.setMarker(SeriesMarkers.NONE);
            List<Double> epochSteps = history.stream().map(r -> (double) r.epoch() * stepsPerEpoch).toList();
            loss.addSeries("test (per epoch)", epochSteps, history.stream().map(TrainingRun.EpochRecord::testLoss).toList());
            XYChart acc = new XYChartBuilder().width(640).height(420).title("Accuracy").xAxisTitle("epoch").yAxisTitle("accuracy (%)").build();
            List<Double> epochs = history.stream().map(r -> (double) r.epoch()).toList();
            acc.addSeries("train", epochs, history.stream().map(r -> 100 * r.trainAccuracy()).toList());
            acc.addSeries("test", epochs, history.stream().map(r -> 100 * r.testAccuracy()).toList());
            acc.getStyler().setMarkerSize(6);
            ByteArrayOutputStream png = new ByteArrayOutputStream();
            java.awt.image.BufferedImage a = BitmapEncoder.getBufferedImage(loss), b = BitmapEncoder.getBufferedImage(acc);
            java.awt.image.BufferedImage both = new java.awt.image.BufferedImage(a.getWidth() + b.getWidth(), Math.max(a.getHeight(), b.getHeight()), java.awt.image.BufferedImage.TYPE_INT_RGB);
            java.awt.Graphics2D g = both.createGraphics();
            g.drawImage(a, 0, 0, null);
            g.drawImage(b, a.getWidth(), 0, null);
            g.dispose();
            javax.imageio.ImageIO.write(both, "png", png);
            AtomicFiles.write(file, png.toByteArray());
        } catch (IOException | RuntimeException | Error e) {
            // A machine without fonts cannot draw text; the run's numbers are in metrics.csv and metrics.json.
            out.println("note: training.png not written (" + e + ")");
        }
    }
}
