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
     * One tile per inferred input, a row per class, each tile scaled to its own min..max. An input of
     * shape [C, H, W] is drawn as H x W (gray for one channel, RGB for three, else its first channel);
     * a flat input of a square size as a square, otherwise as one row.
     */
    static byte[] of(float[] inputs, int[] shape, int rows, int cols) throws java.io.IOException {
        int size = inputs.length / (rows * cols), channels = 1, h, w;
        if (shape.length == 3) { channels = shape[0]; h = shape[1]; w = shape[2]; }
        else if (shape.length == 2) { h = shape[0]; w = shape[1]; }
        else {
            int side = (int) Math.round(Math.sqrt(size));
            if (side * side == size) { h = side; w = side; } else { h = 1; w = size; }
        }
        int zoom = Math.max(1, 64 / Math.max(h, w)), gap = 2, tileH = h * zoom, tileW = w * zoom;
        BufferedImage im = new BufferedImage(cols * (tileW + gap) + gap, rows * (tileH + gap) + gap, BufferedImage.TYPE_INT_RGB);
        for (int t = 0; t < rows * cols; t++) {
            int off = t * size;
            float lo = Float.MAX_VALUE, hi = -Float.MAX_VALUE;
            for (int i = 0; i < size; i++) { lo = Math.min(lo, inputs[off + i]); hi = Math.max(hi, inputs[off + i]); }
            float range = hi > lo ? hi - lo : 1f;
            int x0 = gap + (t % cols) * (tileW + gap), y0 = gap + (t / cols) * (tileH + gap);
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
        javax.imageio.ImageIO.write(im, "png", bytes);
        return bytes.toByteArray();
    }
}
