package dev.tornadolora.testing;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The comparisons the tests rely on, on values worked out by hand. */
class GoldenTest {
    @Test
    void relativeErrorIsTheLargestDifferenceOverTheLargestReference() {
        assertEquals(0.5 / 4, Golden.relativeError(new float[] {1, -4, 2}, new float[] {1.5f, -4, 2}), 1e-15);
        assertEquals(0.5 / 4, Golden.relativeErrorAgainstNonZero(new float[] {1, -4, 2}, new float[] {1.5f, -4, 2}), 1e-15);
        assertEquals(Double.POSITIVE_INFINITY, Golden.relativeError(new float[] {1, 2}, new float[] {1, Float.NaN}));
        assertThrows(AssertionError.class, () -> Golden.relativeError(new float[2], new float[3]));
    }

    @Test
    void anAllZeroReferenceGivesTheAbsoluteErrorOrFailsWhereItMustNotBeZero() {
        assertEquals(0.25, Golden.relativeError(new float[2], new float[] {0, 0.25f}), 1e-15);
        assertThrows(AssertionError.class, () -> Golden.relativeErrorAgainstNonZero(new float[2], new float[2]));
    }
}
