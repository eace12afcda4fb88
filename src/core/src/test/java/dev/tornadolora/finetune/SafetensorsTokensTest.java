package dev.tornadolora.finetune;

import dev.tornadolora.io.DType;
import dev.tornadolora.io.SafeTensorsWriter;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SafetensorsTokensTest {
    static byte[] i64(long... v) {
        ByteBuffer b = ByteBuffer.allocate(8 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        for (long x : v) b.putLong(x);
        return b.array();
    }

    @Test
    void readsIdsAndLabels(@TempDir Path tmp) throws Exception {
        Path f = tmp.resolve("d.safetensors");
        new SafeTensorsWriter().raw("input_ids", DType.I64, new int[] {2, 3}, i64(1, 2, 3, 4, 5, 6))
                .raw("labels", DType.I64, new int[] {2, 3}, i64(-100, 2, 3, 4, 5, -100)).write(f);
        TokenDataset d = SafetensorsTokens.read(f, 10);
        assertEquals(2, d.size());
        assertEquals(3, d.seqLen());
        assertArrayEquals(new int[] {4, 5, 6}, d.inputIds(new int[] {1}));
        assertArrayEquals(new int[] {-100, 2, 3, 4, 5, -100}, d.labels(new int[] {0, 1}));
    }

    @Test
    void labelsDefaultToTheIds(@TempDir Path tmp) throws Exception {
        Path f = tmp.resolve("d.safetensors");
        new SafeTensorsWriter().raw("input_ids", DType.I64, new int[] {1, 2}, i64(7, 8)).write(f);
        assertArrayEquals(new int[] {7, 8}, SafetensorsTokens.read(f, 10).labels(new int[] {0}));
    }

    @Test
    void anIdOutsideTheVocabularyIsRefusedWithFileRowAndPosition(@TempDir Path tmp) throws Exception {
        Path f = tmp.resolve("d.safetensors");
        new SafeTensorsWriter().raw("input_ids", DType.I64, new int[] {2, 2}, i64(1, 2, 3, 10)).write(f);
        var e = assertThrows(IllegalArgumentException.class, () -> SafetensorsTokens.read(f, 10));
        assertTrue(e.getMessage().contains("d.safetensors: row 1, position 1: input id 10"), e.getMessage());
    }

    @Test
    void emptyDataAndWrongTypesAreRefused(@TempDir Path tmp) throws Exception {
        Path empty = tmp.resolve("e.safetensors"), f32 = tmp.resolve("f.safetensors"), none = tmp.resolve("n.safetensors");
        new SafeTensorsWriter().raw("input_ids", DType.I64, new int[] {0, 4}, new byte[0]).write(empty);
        new SafeTensorsWriter().f32("input_ids", new int[] {1, 2}, new float[] {1, 2}).write(f32);
        new SafeTensorsWriter().f32("x", new int[] {1}, new float[] {1}).write(none);
        assertTrue(assertThrows(IllegalArgumentException.class, () -> SafetensorsTokens.read(empty, 10))
                .getMessage().contains("no rows"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> SafetensorsTokens.read(f32, 10))
                .getMessage().contains("expected I64 or I32"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> SafetensorsTokens.read(none, 10))
                .getMessage().contains("no tensor 'input_ids'"));
    }
}
