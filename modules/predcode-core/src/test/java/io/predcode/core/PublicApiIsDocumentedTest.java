package io.predcode.core;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Every public or protected member of the library modules (spi, cpu, cuda, core, data) has a doc
 * comment: javadoc's own doclint "no comment" check over their sources, on the class path (the
 * javadoc jars of the build check references and HTML).
 */
class PublicApiIsDocumentedTest {
    static final List<String> LIBRARIES = List.of("predcode-spi", "predcode-cpu", "predcode-cuda", "predcode-core", "predcode-data");

    @Test void everyPublicMemberHasAComment(@org.junit.jupiter.api.io.TempDir Path html) throws Exception { // (deleted after: each run left one in /tmp)
        Path modules = Path.of("").toAbsolutePath().getParent(); // tests run in modules/predcode-core
        List<String> args = new ArrayList<>(List.of("-quiet", "-Xdoclint:all", "-Xmaxwarns", "100000", "-d",
                html.toString(), "-cp", System.getProperty("java.class.path")));
        List<String> sourcePath = new ArrayList<>();
        for (String m : LIBRARIES) {
            Path src = modules.resolve(m).resolve("src/main/java");
            assertTrue(Files.isDirectory(src), "sources of " + m + " not found at " + src);
            sourcePath.add(src.toString());
            try (Stream<Path> files = Files.walk(src)) {
                files.filter(f -> f.toString().endsWith(".java") && !f.getFileName().toString().equals("module-info.java")).forEach(f -> args.add(f.toString()));
            } catch (UncheckedIOException e) {
                throw new IOException(e);
            }
        }
        args.addAll(List.of("-sourcepath", String.join(java.io.File.pathSeparator, sourcePath)));
        java.util.spi.ToolProvider javadoc = java.util.spi.ToolProvider.findFirst("javadoc")
                .orElseThrow(() -> new AssertionError("the javadoc tool is not in this JDK (module jdk.javadoc)"));
        StringWriter out = new StringWriter();
        PrintWriter w = new PrintWriter(out);
        int rc = javadoc.run(w, w, args.toArray(String[]::new));
        w.flush();
        List<String> undocumented = new ArrayList<>();
        String[] lines = out.toString().split("\n");
        for (int i = 0; i < lines.length; i++)
            if (lines[i].contains("warning: no comment")) undocumented.add(lines[i].replace(modules.toString(), "modules") + (i + 1 < lines.length ? " | " + lines[i + 1].strip() : ""));
        assertTrue(undocumented.isEmpty(), undocumented.size() + " public members without a doc comment:\n" + String.join("\n", undocumented));
        assertEquals(0, rc, "javadoc failed:\n" + out);
    }
}
