package io.predcode.core;

import io.predcode.core.json.Json;
import io.predcode.core.json.JsonException;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** The one JSON reader (specs, safetensors headers, checkpoint metadata) refuses what would crash it or be read ambiguously. */
class JsonLimitsTest {
    @Test void deepNestingIsAnErrorNotAStackOverflow() {
        String deep = "[".repeat(100_000) + "]".repeat(100_000);
        JsonException e = assertThrows(JsonException.class, () -> Json.parse(deep, "deep.json"));
        assertTrue(e.getMessage().contains("deep.json") && e.getMessage().contains("nested deeper than 64"), e.getMessage());
        String ok = "[".repeat(Json.MAX_DEPTH) + "]".repeat(Json.MAX_DEPTH);
        assertNotNull(Json.parse(ok, "ok.json"));
    }

    @Test void aKeyGivenTwiceIsAnError() {
        JsonException e = assertThrows(JsonException.class, () -> Json.parse("{\"lr\": 1, \"n\": 2, \"lr\": 3}", "spec.json"));
        assertTrue(e.getMessage().contains("spec.json") && e.getMessage().contains("key \"lr\" given twice"), e.getMessage());
        assertEquals(2, ((java.util.Map<?, ?>) Json.parse("{\"a\": {\"x\": 1}, \"b\": {\"x\": 2}}", "ok")).size(), "the same key in two objects is fine");
    }
}
