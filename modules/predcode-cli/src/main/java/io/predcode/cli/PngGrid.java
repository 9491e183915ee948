package io.predcode.cli;

import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;

/**
 * {@code generate}'s PNG grid. A class of its own so that only drawing loads java.desktop (AWT):
 * the verifier loads AWT's image classes for the class that holds this code, and picocli inspects
 * every command class at start-up, so in GenerateCommand it kept the CLI from starting on a runtime
 * without java.desktop (the GPU kit's jlinked one).
 */
final class PngGrid {
    private PngGrid() {}

    /**
     * One tile per inferred input, a row per class named at its left, each tile scaled to its own min..max. An input of
     * shape [C, H, W] is drawn as H x W (gray for one channel, RGB for three, else its first channel);
     * a flat input of a square size as a square, otherwise as one row. On a machine without fonts, the rows go unnamed.
     */
    static byte[] of(float[] inputs, int[] shape, String[] names, int cols) throws java.io.IOException {
        int rows = names.length;
        int size = inputs.length / (rows * cols), channels = 1, h, w;
        if (shape.length == 3) { channels = shape[0]; h = shape[1]; w = shape[2]; }
        else if (shape.length == 2) { h = shape[0]; w = shape[1]; }
        else {
            int side = (int) Math.round(Math.sqrt(size));
            if (side * side == size) { h = side; w = side; } else { h = 1; w = size; }
        }
        int zoom = Math.max(1, 64 / Math.max(h, w)), gap = 2, tileH = h * zoom, tileW = w * zoom;
        java.awt.Font font = new java.awt.Font(java.awt.Font.SANS_SERIF, java.awt.Font.PLAIN, Math.clamp(tileH * 2 / 5, 9, 13));
        int label = labelWidth(names, font), left = label > 0 ? label + 2 * gap : 0;
        BufferedImage im = new BufferedImage(left + cols * (tileW + gap) + gap, rows * (tileH + gap) + gap, BufferedImage.TYPE_INT_RGB);
        if (label > 0) drawLabels(im, names, font, gap, tileH);
        for (int t = 0; t < rows * cols; t++) {
            int off = t * size;
            float lo = Float.MAX_VALUE, hi = -Float.MAX_VALUE;
            for (int i = 0; i < size; i++) { lo = Math.min(lo, inputs[off + i]); hi = Math.max(hi, inputs[off + i]); }
            float range = hi > lo ? hi - lo : 1f;
            int x0 = left + gap + (t % cols) * (tileW + gap), y0 = gap + (t / cols) * (tileH + gap);
            for (int py = 0; py < h; py++)
                for (int px = 0; px < w; px++) {
                    int rgb = 0;
                    for (int ch = 0; ch < 3; ch++) {
                        int src = channels == 3 ? ch : 0;
                        int v = Math.round(255 * (inputs[off + (src * h + py) * w + px] - lo) / range);
                        rgb = rgb << 8 | Math.clamp(v, 0, 255);
                    }
                    for (int zy = 0; zy < zoom; zy++) for (int zx = 0; zx < zoom; zx++) im.setRGB(x0 + px * zoom + zx, y0 + py * zoom + zy, rgb);
                }
        }
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        inMemory();
        javax.imageio.ImageIO.write(im, "png", bytes);
        return bytes.toByteArray();
    }

    /**
     * ImageIO encodes a PNG to memory through a cache file in the temporary folder by default, which a process killed
     * while drawing (training.png is redrawn as a run goes) leaves behind: every PNG here is encoded in memory instead.
     */
    static void inMemory() { javax.imageio.ImageIO.setUseCache(false); }

    /** The widest row name's width in pixels; 0 where this machine cannot draw text (no fonts). */
    private static int labelWidth(String[] names, java.awt.Font font) {
        try {
            java.awt.Graphics2D g = new BufferedImage(1, 1, BufferedImage.TYPE_INT_RGB).createGraphics();
            java.awt.FontMetrics m = g.getFontMetrics(font);
            int widest = 0;
            for (String n : names) widest = Math.max(widest, m.stringWidth(n));
            g.dispose();
            return widest;
        } catch (RuntimeException | Error e) { // as Charts: a machine without fonts cannot draw text
            return 0;
        }
    }

    /** Each row's name at its left, centred on its tiles' height, in light gray on the black margin. */
    private static void drawLabels(BufferedImage im, String[] names, java.awt.Font font, int gap, int tileH) {
        java.awt.Graphics2D g = im.createGraphics();
        try {
            g.setRenderingHint(java.awt.RenderingHints.KEY_TEXT_ANTIALIASING, java.awt.RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
            g.setFont(font);
            g.setColor(new java.awt.Color(220, 220, 220));
            java.awt.FontMetrics m = g.getFontMetrics();
            for (int r = 0; r < names.length; r++)
                g.drawString(names[r], gap, gap + r * (tileH + gap) + (tileH + m.getAscent() - m.getDescent()) / 2);
        } finally {
            g.dispose();
        }
    }
}
