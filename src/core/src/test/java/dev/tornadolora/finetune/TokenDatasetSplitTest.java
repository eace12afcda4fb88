package dev.tornadolora.finetune;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** --eval-split: a seeded, disjoint split of the rows, positions and example ids kept. */
class TokenDatasetSplitTest {
    static ExampleRows rows(int n) {
        int[][] ids = new int[n][3], pos = new int[n][3], ex = new int[n][3];
        for (int i = 0; i < n; i++) {
            ids[i] = new int[] {i, i + 1, i + 2};
            pos[i] = new int[] {0, 1, 0};
            ex[i] = new int[] {2 * i, 2 * i, 2 * i + 1};
        }
        return new ExampleRows("d", ids, ids, pos, ex);
    }

    @Test
    void seededDisjointAndComplete() {
        ExampleRows d = rows(10);
        TokenDataset[] a = TokenDataset.split(d, 0.25, 7), b = TokenDataset.split(d, 0.25, 7);
        assertEquals(3, a[1].size());  // ⌈0.25 · 10⌉
        assertEquals(7, a[0].size());
        assertEquals(a[0], b[0]);
        assertEquals(a[1], b[1]);
        Set<Integer> seen = new HashSet<>();
        for (TokenDataset part : a) {
            assertTrue(part instanceof ExampleRows);
            for (int r = 0; r < part.size(); r++) {
                int[] ids = new int[3];
                part.inputIds(r, ids, 0);
                assertTrue(seen.add(ids[0]), "row " + ids[0] + " in both parts");
                assertArrayEquals(new int[] {0, 1, 0}, part.positionIds(new int[] {r}));
                assertArrayEquals(new int[] {2 * ids[0], 2 * ids[0], 2 * ids[0] + 1}, ((ExampleRows) part).exampleIds(new int[] {r}));
            }
        }
        assertEquals(10, seen.size());
        int[] all3 = {0, 1, 2};
        assertNotEquals(Arrays.toString(a[1].inputIds(all3)), Arrays.toString(TokenDataset.split(d, 0.25, 8)[1].inputIds(all3)),
                "another seed, another split");
        assertThrows(IllegalArgumentException.class, () -> TokenDataset.split(d, 1.0, 0));
        assertThrows(IllegalArgumentException.class, () -> TokenDataset.split(rows(1), 0.5, 0));
    }
}
