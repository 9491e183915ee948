package io.predcode.cli;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** How many steps a Spark barrier job takes to end within --spark-job-seconds (the run's stop waits for its job). */
class StepsTest {
    @Test void aJobTakesTheStepsThatFitInItsSeconds() {
        assertEquals(1, Steps.stepsWithin(10, Double.NaN), "no step timed yet: one");
        assertEquals(1, Steps.stepsWithin(10, 0), "a clock that read 0: one, not all");
        assertEquals(3, Steps.stepsWithin(10, 3000), "3 steps of 3 s end within 10 s, 4 would not");
        assertEquals(4, Steps.stepsWithin(10, 2500));
        assertEquals(1, Steps.stepsWithin(10, 30_000), "a step longer than the bound: one a job");
        assertEquals(4000, Steps.stepsWithin(10, 2.5));
        assertEquals(Integer.MAX_VALUE, Steps.stepsWithin(86_400, 1e-9), "no overflow");
    }
}
