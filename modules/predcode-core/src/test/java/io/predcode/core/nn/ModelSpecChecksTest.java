package io.predcode.core.nn;

import org.junit.jupiter.api.Test;

import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.*;

/** A spec built in code is held to what a spec file is: sizes of at least 1 (padding 0), finite slopes, a real input shape. */
class ModelSpecChecksTest {
    private static void refused(String expected, Consumer<ModelSpec.BlockBuilder> ops) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ModelSpec.builder().input(1, 8, 8).block(ops).build());
        assertEquals(expected, e.getMessage());
    }

    @Test void sizesBelowOneAreRefusedWhenTheSpecIsBuilt() {
        refused("linear: out must be >= 1, got 0", b -> b.flatten().linear(64, 0));
        refused("linear: in must be >= 1, got -4", b -> b.linear(-4, 3));
        refused("conv2d: out must be >= 1, got 0", b -> b.conv2d(1, 0, 3));
        refused("conv2d: kernel height must be >= 1, got 0", b -> b.conv2d(1, 4, 0));
        refused("conv2d: stride height must be >= 1, got 0", b -> b.conv2d(1, 4, 3, 0, 0));
        refused("conv2d: padding height must be >= 0, got -1", b -> b.conv2d(1, 4, 3, 1, -1));
        refused("maxpool2d: kernel height must be >= 1, got 0", b -> b.maxPool(0));
        refused("avgpool2d: kernel height must be >= 1, got -2", b -> b.avgPool(-2));
        refused("leaky_relu: slope must be a finite number, got NaN", b -> b.leakyRelu(Float.NaN));
        for (int[] shape : new int[][]{{}, {0}, {1, 0, 8}, {-3}}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ModelSpec.builder().input(shape).block(b -> b.flatten()).build());
            assertTrue(e.getMessage().startsWith("input shape " + java.util.Arrays.toString(shape) + ": expected one or more dimensions, each >= 1"), e.getMessage());
        }
        assertEquals(1, ModelSpec.builder().input(1, 8, 8).block(b -> b.conv2d(1, 1, 1, 1, 0).leakyRelu(0.2f).maxPool(1).flatten().linear(64, 1)).build().depth(),
                "the smallest sizes are fine");
    }

    /** A spec file's op that fails its own check is named by the file and the field, as every other bad value in it. */
    @Test void aSpecFilesOpCheckNamesTheFileAndField() {
        String json = "{\"input\": [4], \"blocks\": [[{\"op\": \"linear\", \"in\": 4, \"out\": 3}, {\"op\": \"leaky_relu\", \"slope\": 1e300}]]}";
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ModelSpec.parse(json, "my-model.json"));
        assertTrue(e.getMessage().startsWith("my-model.json: field 'blocks[0][1]': leaky_relu: slope must be a finite number, got Infinity"), e.getMessage());
    }
}
