package dev.tornadolora.finetune;

import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class TokenBatchesTest {
    @Test
    void withoutShuffleStepIUsesRowsIBAPlusJModN() {
        TokenBatches b = new TokenBatches(7, 2, 3, false, 0);
        for (long i = 0; i < 10; i++) {
            int[] rows = b.rows(i);
            assertEquals(6, rows.length);
            for (int j = 0; j < 6; j++) assertEquals((int) ((i * 6 + j) % 7), rows[j], "step " + i + " j " + j);
        }
    }

    @Test
    void shuffleIsASeededPermutationPerEpoch() {
        TokenBatches b = new TokenBatches(10, 5, 1, true, 42);
        int[] epoch0 = concat(b.rows(0), b.rows(1)), epoch1 = concat(b.rows(2), b.rows(3));
        assertArrayEquals(range(10), sorted(epoch0));
        assertArrayEquals(range(10), sorted(epoch1));
        assertNotEquals(Arrays.toString(epoch0), Arrays.toString(epoch1), "each epoch its own order");
        assertNotEquals(Arrays.toString(range(10)), Arrays.toString(epoch0));
        assertArrayEquals(epoch0, concat(new TokenBatches(10, 5, 1, true, 42).rows(0),
                new TokenBatches(10, 5, 1, true, 42).rows(1)), "same seed, same order");
        assertNotEquals(Arrays.toString(epoch0), Arrays.toString(concat(new TokenBatches(10, 5, 1, true, 43).rows(0),
                new TokenBatches(10, 5, 1, true, 43).rows(1))));
        assertArrayEquals(b.rows(3), new TokenBatches(10, 5, 1, true, 42).rows(3), "a step's rows follow from its index");
    }

    @Test
    void epochsRoundUpToWholeSteps() {
        assertEquals(4, new TokenBatches(7, 2, 1, false, 0).stepsForEpochs(1));
        assertEquals(7, new TokenBatches(7, 2, 1, false, 0).stepsForEpochs(2));
        assertEquals(1, new TokenBatches(3, 4, 1, false, 0).stepsForEpochs(1));
    }

    @Test
    void refusesEmptyDataAndNonPositiveSizes() {
        assertThrows(IllegalArgumentException.class, () -> new TokenBatches(0, 1, 1, false, 0));
        assertThrows(IllegalArgumentException.class, () -> new TokenBatches(3, 0, 1, false, 0));
        assertThrows(IllegalArgumentException.class, () -> new TokenBatches(3, 1, 0, false, 0));
    }

    static int[] concat(int[] a, int[] b) {
        int[] c = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }

    static int[] sorted(int[] a) {
        int[] c = a.clone();
        Arrays.sort(c);
        return c;
    }

    static int[] range(int n) {
        int[] r = new int[n];
        for (int i = 0; i < n; i++) r[i] = i;
        return r;
    }
}
