package io.predcode.cli;

/**
 * Whether this Java runtime has the java.desktop module (AWT, ImageIO), which training.png and
 * generate's PNG grid need. A runtime made with jlink may leave it out (the GPU kit's does); a class
 * that names AWT types then fails to load where it is first called, so ask here first.
 */
final class Awt {
    private Awt() {}

    static boolean available() { return ModuleLayer.boot().findModule("java.desktop").isPresent(); }

    /** The reason to give where it is missing. */
    static String missing() { return "this Java runtime (" + System.getProperty("java.home") + ") has no java.desktop module (AWT), which PNG output needs"; }
}
