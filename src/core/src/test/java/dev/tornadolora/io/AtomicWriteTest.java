package dev.tornadolora.io;

import dev.tornadolora.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** A writer that fails midway leaves the previous file as it was and no temporary file behind. */
class AtomicWriteTest {
    @TempDir
    Path dir;

    private List<String> listing() throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    @Test
    void failedWriteKeepsTheOldFileAndCleansUp() throws IOException {
        Path target = dir.resolve("adapter.safetensors");
        new SafeTensorsWriter().f32("lora_a.weight", Tensor.of(new float[] {1, 2}, 1, 2)).write(target);
        byte[] before = Files.readAllBytes(target);

        var e = assertThrows(IOException.class, () -> AtomicFiles.write(target, out -> {
            out.write(new byte[100_000]);  // more than the buffer: some bytes reach the temporary file
            throw new IOException("disk full (simulated)");
        }));
        assertEquals("disk full (simulated)", e.getMessage());
        assertArrayEquals(before, Files.readAllBytes(target));
        assertEquals(List.of("adapter.safetensors"), listing());
        assertArrayEquals(new float[] {1, 2}, SafeTensors.open(target).f32("lora_a.weight").data());
    }

    @Test
    void runtimeFailureAlsoCleansUp() throws IOException {
        Path target = dir.resolve("log.json");
        AtomicFiles.writeString(target, "{\"old\": true}");
        assertThrows(IllegalStateException.class, () -> AtomicFiles.write(target, out -> {
            out.write("{\"new\"".getBytes());
            throw new IllegalStateException("serializer failed");
        }));
        assertEquals("{\"old\": true}", Files.readString(target));
        assertEquals(List.of("log.json"), listing());
    }

    @Test
    void successfulWriteReplacesWholly() throws IOException {
        Path target = dir.resolve("a.txt");
        AtomicFiles.writeString(target, "first version, longer");
        AtomicFiles.writeString(target, "second");
        assertEquals("second", Files.readString(target));
        assertEquals(List.of("a.txt"), listing());
    }
}
