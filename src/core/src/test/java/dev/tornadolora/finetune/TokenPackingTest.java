package dev.tornadolora.finetune;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TokenPackingTest {
    @Test
    void documentsJoinedWithEosAndCutIntoBlocks() {
        // stream 5 6 7 | 2 | 8 9 | 2 | 10 | 2  = 9 tokens -> two blocks of 4, the last token dropped
        TokenDataset d = TokenPacking.pack("t", List.of(new int[] {5, 6, 7}, new int[] {8, 9}, new int[] {10}), 2, 4);
        assertEquals(2, d.size());
        assertArrayEquals(new int[] {5, 6, 7, 2, 8, 9, 2, 10}, d.inputIds(new int[] {0, 1}));
        assertArrayEquals(d.inputIds(new int[] {0, 1}), d.labels(new int[] {0, 1}), "labels = ids (the loss shifts)");
    }

    @Test
    void withoutEosDocumentsAreConcatenated() {
        TokenDataset d = TokenPacking.pack("t", List.of(new int[] {1, 2, 3}, new int[] {4}), -1, 2);
        assertArrayEquals(new int[] {1, 2, 3, 4}, d.inputIds(new int[] {0, 1}));
    }

    @Test
    void textShorterThanOneBlockIsRefusedNamingTheSource() {
        var e = assertThrows(IllegalArgumentException.class,
                () -> TokenPacking.pack("data.jsonl", List.of(new int[] {1, 2}), 0, 8));
        assertTrue(e.getMessage().startsWith("data.jsonl: 3 tokens"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> TokenPacking.pack("x", List.of(), 0, 8));
    }
}
