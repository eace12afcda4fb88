package dev.tornadolora.data;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** TRL's own example of bfd packing (trl.data_utils.pack_dataset's docstring), sequence lengths 5, 2, 3, 1 into 4. */
class BestFitDecreasingTest {
    @Test
    void trlsDocstringExample() {
        List<SftData.Tokenized> ex = List.of(t(0, 1, 2, 3, 4, 5), t(1, 6, 7), t(2, 8, 9, 10), t(3, 11));
        // TRL truncates 1..5 to 1..4 before binning: [[1, 2, 3, 4], [8, 9, 10, 11], [6, 7]]
        List<SftData.Tokenized> cut = new ArrayList<>(ex);
        cut.set(0, t(0, 1, 2, 3, 4));
        List<List<SftData.Tokenized>> bins = SftData.bestFitDecreasing(cut, 4);
        assertEquals("[[0], [2, 3], [1]]", bins.stream().map(b -> b.stream().map(SftData.Tokenized::index).toList())
                .toList().toString());
    }

    private static SftData.Tokenized t(int index, int... ids) {
        return new SftData.Tokenized("line " + index, index, ids, ids);
    }
}
