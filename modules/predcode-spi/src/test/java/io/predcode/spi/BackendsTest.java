package io.predcode.spi;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

class BackendsTest {
    @Test void unknownBackendNamesTheKnownOnes() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Backends.provider("tpu"));
        assertTrue(e.getMessage().contains("unknown backend 'tpu'"), e.getMessage());
    }

    @Test void shapesRejectNonPositiveDimensions() {
        assertThrows(IllegalArgumentException.class, () -> Shape.of(3, 0));
        assertEquals(12, Shape.of(3, 4).size());
        assertEquals(4, Shape.of(3, 4).rowSize());
        assertEquals("[3, 4]", Shape.of(3, 4).toString());
    }

    @Test void randomIsDeterministicAndInRange() {
        for (long i = 0; i < 10000; i++) {
            float u = Random.unit(7, i);
            assertTrue(u >= 0 && u < 1);
            assertEquals(u, Random.unit(7, i));
        }
        assertNotEquals(Random.unit(7, 0), Random.unit(8, 0));
    }
}
