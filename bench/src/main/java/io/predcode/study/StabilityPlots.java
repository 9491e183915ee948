package io.predcode.study;

import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.markers.SeriesMarkers;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The figures of docs/stability.md from two {@link CollapseStudy} logs of the same run, Torch2PC's
 * fixed eta and the stable relaxation. Usage: {@code StabilityPlots TORCH2PC.csv STABLE.csv OUT_DIR [eta=0.1]}.
 */
public final class StabilityPlots {
    public static void main(String[] args) throws IOException {
        Log plain = Log.read(Path.of(args[0])), stable = Log.read(Path.of(args[1]));
        Path dir = Path.of(args[2]);
        double eta = args.length > 3 ? Double.parseDouble(args[3]) : 0.1;
        Files.createDirectories(dir);
        // 1. The collapse: loss and energy per step, both runs (log scale).
        XYChart loss = chart("Loss and PC energy per step", "step", "value (log)", true);
        line(loss, "loss, fixed eta (Torch2PC)", plain, "loss");
        line(loss, "energy at the last sweep, fixed eta", plain, "energy");
        line(loss, "loss, stable relaxation", stable, "loss");
        save(loss, dir.resolve("stability-loss.png"));
        // 2. The cause: each weight's spectral norm against the largest the relaxation tolerates at this eta.
        XYChart spectral = chart("Spectral norm of each block's weight", "step", "||W||_2", false);
        for (int b = 0; b < 3; b++) line(spectral, "block " + b + " (fixed eta)", plain, "spectral" + b);
        double hidden = Math.sqrt(2 / eta - 1);
        XYSeries limit = spectral.addSeries(String.format("limit for a hidden layer's W above it: sqrt(2/eta - 1) = %.2f", hidden),
                new double[]{1, plain.size()}, new double[]{hidden, hidden});
        limit.setMarker(SeriesMarkers.NONE);
        save(spectral, dir.resolve("stability-spectral.png"));
        // 3. What the monitor sees first: the update's angle to the gradient, and the beliefs' displacement.
        XYChart angle = chart("PC update vs gradient (fixed eta)", "step", "angle (degrees)", false);
        for (int b = 0; b < 3; b++) line(angle, "block " + b, plain, "angle" + b);
        save(angle, dir.resolve("stability-angle.png"));
        XYChart disp = chart("Mean |v_l - vhat_l| per sample after the relaxation", "step", "displacement (log)", true);
        for (int l = 1; l <= 2; l++) line(disp, "layer " + l + ", fixed eta", plain, "disp" + l);
        for (int l = 1; l <= 2; l++) line(disp, "layer " + l + ", stable relaxation", stable, "disp" + l);
        save(disp, dir.resolve("stability-displacement.png"));
        System.out.println("wrote " + dir);
    }

    record Log(List<String> header, List<double[]> rows) {
        static Log read(Path f) throws IOException {
            List<String> lines = Files.readAllLines(f);
            List<double[]> rows = new ArrayList<>();
            for (String l : lines.subList(1, lines.size())) {
                String[] p = l.split(",");
                double[] v = new double[p.length];
                for (int i = 0; i < p.length; i++) v[i] = Double.parseDouble(p[i]);
                rows.add(v);
            }
            return new Log(List.of(lines.getFirst().split(",")), rows);
        }

        int size() { return rows.size(); }

        double[] column(String name) {
            int c = header.indexOf(name);
            return rows.stream().mapToDouble(r -> r[c]).toArray();
        }
    }

    static XYChart chart(String title, String x, String y, boolean log) {
        XYChart c = new XYChartBuilder().width(900).height(450).title(title).xAxisTitle(x).yAxisTitle(y).build();
        c.getStyler().setYAxisLogarithmic(log);
        c.getStyler().setMarkerSize(0);
        return c;
    }

    /** A column against the step, values of at most 1e30 (XChart's log axis cannot draw past that or at 0). */
    static void line(XYChart c, String name, Log log, String column) {
        double[] x = log.column("step"), y = log.column(column);
        for (int i = 0; i < y.length; i++) y[i] = Math.max(1e-8, Math.min(1e30, y[i]));
        c.addSeries(name, x, y).setMarker(SeriesMarkers.NONE);
    }

    static void save(XYChart c, Path file) throws IOException { BitmapEncoder.saveBitmap(c, file.toString(), BitmapEncoder.BitmapFormat.PNG); }
}
