package io.predcode.cpu;

import io.predcode.spi.Backend;
import io.predcode.spi.BackendOptions;
import io.predcode.spi.Backends;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Backend.branches hands a backend its branches the most work first, equal work in the caller's order: a caller
 * need not sort them. On one thread the CPU backend runs them in the order it gets them, so the order shows.
 */
class BranchOrderTest {
    @Test void branchesRunTheMostWorkFirstAndTiesInTheCallersOrder() {
        try (Backend be = Backends.open("cpu", new BackendOptions(1, BackendOptions.defaults().device()))) {
            List<String> ran = new ArrayList<>();
            be.branches(new double[]{1, 5, 0, 5, 3}, () -> ran.add("a"), () -> ran.add("b"), () -> ran.add("c"), () -> ran.add("d"), () -> ran.add("e"));
            assertEquals(List.of("b", "d", "e", "a", "c"), ran);
            ran.clear();
            be.branches(new double[]{4, 2, 2}, () -> ran.add("x"), () -> ran.add("y"), () -> ran.add("z"));
            assertEquals(List.of("x", "y", "z"), ran, "already the most work first: as given");
        }
    }
}
