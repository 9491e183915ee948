package io.predcode.core;

import io.predcode.core.nn.Model;
import io.predcode.core.nn.ModelSpec;
import io.predcode.spi.Backend;
import io.predcode.spi.BackendProvider;
import io.predcode.spi.Backends;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A model larger than what the backend has left (host memory on the CPU, free device memory on CUDA) is refused with the numbers, before any allocation. */
class DeviceMemoryTest {
    @TestFactory List<DynamicTest> aModelThatCannotFitIsRefusedUpFront() {
        List<DynamicTest> tests = new ArrayList<>();
        for (BackendProvider p : Backends.providers()) {
            if (!p.availability().available()) {
                System.out.println("SKIPPED memory refusal on backend '" + p.name() + "': " + p.availability().reason());
                continue;
            }
            tests.add(DynamicTest.dynamicTest(p.name(), () -> {
                try (Backend be = p.open(io.predcode.spi.BackendOptions.defaults())) {
                    long available = be.memoryAvailable();
                    // A linear layer of more floats than the backend has bytes left: 4x over, whatever the machine.
                    int out = (int) Math.min(Integer.MAX_VALUE, available / 64 / 4 + 1);
                    ModelSpec spec = ModelSpec.builder().block(b -> b.linear(64, out)).build();
                    long before = be.counters().snapshot().allocations();
                    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Model.create(spec, new int[]{64}, be, 0));
                    assertTrue(e.getMessage().contains("the model") && e.getMessage().contains("available on backend '" + p.name() + "'"), e.getMessage());
                    assertTrue(be.counters().snapshot().allocations() == before, "nothing was allocated before the refusal");
                }
            }));
        }
        return tests;
    }
}
