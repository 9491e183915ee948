package io.predcode.cpu;

import io.predcode.spi.Backend;
import io.predcode.spi.Backends;
import io.predcode.spi.Tensor;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

import java.lang.foreign.MemorySegment;

/**
 * Elementwise ops against a plain MemorySegment copy of the same number of bytes moved:
 * the fused STRICT update moves 7 floats per element (4 read, 3 written), axpby 3, a copy 2.
 * Compare bytes per second: copy7 moves what pcStrictUpdate moves.
 */
@State(Scope.Thread)
public class ElementwiseBenchmark {
    @Param({"153600", "4194304"})
    public int size;

    Backend backend;
    Tensor p, anchor, fb, d, v, e;
    MemorySegment src, dst;

    @Setup(Level.Trial) public void setUp() {
        backend = Backends.open("cpu");
        p = backend.allocate(size); anchor = backend.allocate(size); fb = backend.allocate(size);
        d = backend.allocate(size); v = backend.allocate(size); e = backend.allocate(size);
        backend.randomUniform(p, -1, 1, 1);
        backend.randomUniform(anchor, -1, 1, 2);
        src = java.lang.foreign.Arena.global().allocate((long) size * 4 * 7 / 2, 64);
        dst = java.lang.foreign.Arena.global().allocate((long) size * 4 * 7 / 2, 64);
    }

    @TearDown(Level.Trial) public void tearDown() { backend.close(); }

    /** 7 floats per element. */
    @Benchmark public void pcStrictUpdate() { backend.pcStrictUpdate(p, anchor, fb, d, v, e, 0.1f); }

    /** 3 floats per element. */
    @Benchmark public void axpby() { backend.axpby(0.1f, fb, 0.9f, e); }

    /** The same 7 floats per element moved as a bulk copy (3.5 read + 3.5 written). */
    @Benchmark public void copy7() { MemorySegment.copy(src, 0, dst, 0, (long) size * 4 * 7 / 2); }
}
