package io.predcode.cuda;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

/**
 * Where the CUDA shared libraries may be, in the order we look: an explicit system property or
 * environment variable, LD_LIBRARY_PATH, CUDA_HOME / CUDA_PATH, /usr/local/cuda, the driver's usual
 * folders, and the nvidia-* package folders of Python environments (where pip's PyTorch puts cuBLAS).
 */
final class CudaLibraries {
    private CudaLibraries() {}

    /** Folders to search, for a library whose property is {@code predcode.cuda.<key>} and env var {@code PREDCODE_CUDA_<KEY>}. */
    static List<Path> searchPath(Map<String, String> env) {
        Set<Path> dirs = new LinkedHashSet<>();
        for (String var : new String[]{"LD_LIBRARY_PATH"}) {
            String v = env.get(var);
            if (v != null) for (String d : v.split(":")) if (!d.isBlank()) dirs.add(Path.of(d));
        }
        for (String var : new String[]{"CUDA_HOME", "CUDA_PATH"}) {
            String v = env.get(var);
            if (v != null && !v.isBlank()) { dirs.add(Path.of(v, "lib64")); dirs.add(Path.of(v, "lib")); }
        }
        dirs.add(Path.of("/usr/local/cuda/lib64"));
        dirs.add(Path.of("/usr/local/cuda/targets/x86_64-linux/lib"));
        dirs.add(Path.of("/usr/lib/x86_64-linux-gnu"));
        dirs.add(Path.of("/usr/lib64"));
        dirs.add(Path.of("/usr/local/nvidia/lib64"));
        dirs.addAll(pythonNvidiaDirs(List.of(Path.of("/opt"), Path.of("/usr/local/lib"), Path.of("/usr/lib"),
                Path.of(System.getProperty("user.home"), ".local", "lib"))));
        return new ArrayList<>(dirs);
    }

    /** nvidia/&lt;pkg&gt;/lib folders under site-packages of Python environments below the given roots (bounded depth). */
    static List<Path> pythonNvidiaDirs(List<Path> roots) {
        List<Path> out = new ArrayList<>();
        for (Path root : roots) {
            if (!Files.isDirectory(root)) continue;
            try (Stream<Path> s = Files.find(root, 9, (p, a) -> a.isDirectory() && p.getFileName() != null
                    && p.getFileName().toString().equals("lib") && p.getParent() != null && p.getParent().getParent() != null
                    && p.getParent().getParent().getFileName() != null && p.getParent().getParent().getFileName().toString().equals("nvidia"))) {
                s.sorted().forEach(out::add);
            } catch (IOException | RuntimeException e) {
                // unreadable folders are simply not searched
            }
        }
        return out;
    }

    /**
     * The first existing file among {@code names} in an explicit location or the search path; null if none.
     * {@code explicit} is a file or folder named by the user (property or environment), searched first.
     */
    static Path find(String explicit, List<Path> searchPath, String... names) {
        List<Path> dirs = new ArrayList<>();
        if (explicit != null && !explicit.isBlank()) {
            Path p = Path.of(explicit);
            if (Files.isRegularFile(p)) return p;
            dirs.add(p);
        }
        dirs.addAll(searchPath);
        for (String name : names)
            for (Path d : dirs) {
                Path f = d.resolve(name);
                if (Files.exists(f)) return f;
            }
        return null;
    }
}
