package io.predcode.core.nn;

import io.predcode.spi.Backend;
import io.predcode.spi.BackendOptions;
import io.predcode.spi.Backends;
import io.predcode.spi.Scope;
import io.predcode.spi.Tensor;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * An op keeps its backward parts and refills them each call ({@link Op.BackwardParts}); a call that finds them in use
 * runs on parts of its own, so neither call sees the other's tensors. Here a part calls backward again from inside
 * (the same thing, deterministically, as a second thread at once).
 */
class BackwardPartsTest {
    @Test void aCallThatFindsThePartsInUseRunsOnPartsOfItsOwn() {
        try (Backend be = Backends.open("cpu", new BackendOptions(1, 0)); Scope scope = new Scope(be)) {
            Tensor a = scope.allocate(1), b = scope.allocate(1), dx = scope.allocate(1);
            Map<Tensor, String> names = Map.of(a, "A", b, "B");
            List<String> calls = new ArrayList<>();
            final class Recording extends Op.BackwardParts {
                private final boolean outer;

                Recording(boolean outer) { this.outer = outer; }

                @Override void toInput() { calls.add("input " + names.get(dy) + " " + scale); }

                @Override void toWeight() {
                    calls.add("weight " + names.get(dy) + " " + scale);
                    if (outer) run(be, x, b, null, 2f); // in use: runs on another()
                }

                @Override void toBias() { calls.add("bias " + names.get(dy) + " " + scale); }

                @Override boolean hasBias() { return true; }

                @Override double gemmWork() { return 1; }

                @Override Op.BackwardParts another() { return new Recording(false); }
            }
            Recording parts = new Recording(true);
            parts.run(be, a, a, dx, 1f);
            assertEquals(List.of("input A 1.0", "weight A 1.0", "weight B 2.0", "bias B 2.0", "bias A 1.0"), calls);
            calls.clear();
            parts.run(be, a, b, null, 3f); // free again: the kept parts take the next call
            assertEquals(List.of("weight B 3.0", "weight B 2.0", "bias B 2.0", "bias B 3.0"), calls);
        }
    }
}
