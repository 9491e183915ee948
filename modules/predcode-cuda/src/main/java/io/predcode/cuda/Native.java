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
        this.lookup = SymbolLookup.libraryLookup(path, Arena.global());
    }

    /** The function, or null where this library lacks it (an older driver). */
    MethodHandle optionalFn(String name, FunctionDescriptor d) {
        return lookup.find(name).map(sym -> linker.downcallHandle(sym, d)).orElse(null);
    }

    MethodHandle fn(String name, FunctionDescriptor d) {
        return linker.downcallHandle(lookup.find(name).orElseThrow(() -> new IllegalStateException(path + " has no symbol " + name + " (too old?)")), d);
    }
}
