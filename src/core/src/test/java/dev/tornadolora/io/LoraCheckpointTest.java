package dev.tornadolora.io;

import dev.tornadolora.testing.Allocation;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Checkpoints whose shapes or metadata claim a base far larger than the file holds. */
class LoraCheckpointTest {
    @TempDir
    Path dir;

    /**
     * lora_a [1, 40000] and lora_b [40000, 1] (320 KB) imply a 40000 x 40000 base: 6.4 GB of fp32 that building the
     * layer would allocate. The base's own entry is checked first, so the claim is refused without that allocation.
     */
    @Test
    void adapterShapesDoNotMakeTheLoaderAllocateAnUnbackedBase() throws IOException {
        int dim = 40_000;
        Path f = dir.resolve("c.safetensors");
        new SafeTensorsWriter().metadata("alpha", "1")
                .f32("weight", new int[] {1, 1}, new float[1])
                .f32("lora_a.weight", new int[] {1, dim}, new float[dim])
                .f32("lora_b.weight", new int[] {dim, 1}, new float[dim])
                .write(f);
        SafeTensors c = SafeTensors.open(f);
        long before = Allocation.currentThread();
        var e = assertThrows(SafeTensorsException.class, () -> LoraCheckpoint.read(c));
        assertEquals(f + ": tensor 'weight': expected shape [40000, 40000] but got [1, 1]", e.getMessage());
        assertTrue(Allocation.currentThread() - before < 4 << 20);
    }

    @Test
    void emptyAdaptersAreNamed() throws IOException {
        Path f = dir.resolve("c.safetensors");
        new SafeTensorsWriter().metadata("alpha", "1")
                .f32("weight", new int[] {2, 3}, new float[6])
                .f32("lora_a.weight", new int[] {0, 3}, new float[0])
                .f32("lora_b.weight", new int[] {2, 0}, new float[0])
                .write(f);
        var e = assertThrows(SafeTensorsException.class, () -> LoraCheckpoint.read(SafeTensors.open(f)));
        assertEquals(f + ": lora_a.weight [0, 3] and lora_b.weight [2, 0] give rank, in and out that are not all"
                + " positive", e.getMessage());
    }

    /** A model checkpoint's architecture metadata claiming a 40000 x 40000 layer in a file of a few bytes. */
    @Test
    void modelArchitectureDoesNotMakeTheLoaderAllocateAnUnbackedLayer() throws IOException {
        Path f = dir.resolve("m.safetensors");
        new SafeTensorsWriter().metadata(ModelCheckpoint.ARCHITECTURE,
                        "[{\"name\": \"fc1\", \"type\": \"lora\", \"in_dim\": 40000, \"out_dim\": 40000, \"rank\": 1, \"alpha\": 1}]")
                .f32("fc1.weight", new int[] {1, 1}, new float[1])
                .write(f);
        long before = Allocation.currentThread();
        var e = assertThrows(SafeTensorsException.class, () -> ModelCheckpoint.load(f));
        assertEquals(f + ": architecture entry 'fc1' claims a base of 40000 x 40000 parameters, more than the file's"
                + " 4 bytes of tensor data can hold", e.getMessage());
        assertTrue(Allocation.currentThread() - before < 4 << 20);
    }
}
