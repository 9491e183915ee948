package io.predcode.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;

/** A shared library opened through FFM, with a helper that turns a non-zero status into an exception. */
final class Native {
    final Path path;
    final SymbolLookup lookup;
    private final Linker linker = Linker.nativeLinker();

    Native(Path path) {
        this.path = path;
        requireElf(path);
        this.lookup = SymbolLookup.libraryLookup(path, Arena.global());
    }

    /**
     * Refuses a file that is not an ELF object before the dynamic loader sees it: the JVM answers a file the loader
     * refuses (a mistyped -Dpredcode.cuda.driver=, say) with two lines of warning about stack guards.
     */
    static void requireElf(Path path) {
        byte[] magic = new byte[4];
        int n;
        try (java.io.InputStream in = java.nio.file.Files.newInputStream(path)) {
            n = in.readNBytes(magic, 0, 4);
        } catch (java.io.IOException e) {
            throw new IllegalStateException(path + " cannot be read (" + e.getMessage() + ")", e);
        }
        if (n < 4 || magic[0] != 0x7f || magic[1] != 'E' || magic[2] != 'L' || magic[3] != 'F')
            throw new IllegalStateException(path + " is not a shared library (no ELF header)");
    }

    /** The function, or null where this library lacks it (an older driver). */
    MethodHandle optionalFn(String name, FunctionDescriptor d) {
        return lookup.find(name).map(sym -> linker.downcallHandle(sym, d)).orElse(null);
    }

    MethodHandle fn(String name, FunctionDescriptor d) {
        return linker.downcallHandle(lookup.find(name).orElseThrow(() -> new IllegalStateException(path + " has no symbol " + name + " (too old?)")), d);
    }
}
