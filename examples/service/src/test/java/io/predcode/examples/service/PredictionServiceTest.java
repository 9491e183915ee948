package io.predcode.examples.service;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** The example service under a short, bounded load on 127.0.0.1: no errors, versions advance, the answers are right. */
class PredictionServiceTest {
    @Test void servesWhileItLearns() throws Exception {
        LoadTest.Result r = LoadTest.run(3, 4, 20_000);
        System.out.println("example service, short load: " + r);
        assertEquals(0, r.errors(), "errors");
        assertTrue(r.requests() > 50, "requests: " + r.requests());
        assertTrue(r.versionsSeen() > 1, "the answers came from " + r.versionsSeen() + " version(s): training did not publish while serving");
        assertTrue(r.testAccuracy() > 0.8, "accuracy of the answers " + r.testAccuracy());
    }
}
