package dev.tornadolora.cli;

import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.io.SafeTensorsWriter;
import dev.tornadolora.testing.Golden;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MergeCommandTest {
    @TempDir
    Path dir;

    /** Base and adapter in separate files (torchtune's layout on disk) merge like the combined fixture. */
    @Test
    void separateAdapterFileMergesLikeTheCombinedCheckpoint() throws IOException {
        SafeTensors in = Golden.open("train/merge_dense_in.safetensors");
        Path base = dir.resolve("base.safetensors"), adapter = dir.resolve("adapter.safetensors");
        SafeTensorsWriter b = new SafeTensorsWriter(), a = new SafeTensorsWriter().metadata(in.metadata());
        for (String k : in.names()) (k.contains("lora") ? a : b).copy(in, k);
        b.write(base);
        a.write(adapter);
        Path out = dir.resolve("m.safetensors");
        CliRun r = CliRun.of("merge", "--checkpoint", base.toString(), "--adapter", adapter.toString(),
                "--output", out.toString());
        assertEquals(0, r.exitCode(), r.err());
        SafeTensors expected = Golden.open("train/merge_dense_out.safetensors");
        assertEquals(expected.names(), SafeTensors.open(out).names());
        for (String k : expected.names()) {
            Golden.assertClose(expected.f32(k).data(), SafeTensors.open(out).f32(k).data(), 1e-6, k);
        }
    }

    @Test
    void safeMergeOfABrokenAdapterLeavesTheOldOutputAlone() throws IOException {
        SafeTensors in = Golden.open("train/merge_dense_in.safetensors");
        SafeTensorsWriter w = new SafeTensorsWriter().metadata(in.metadata());
        for (String k : in.names()) {
            float[] v = in.f32(k).data().clone();
            if (k.equals("fc1.lora_a.weight")) v[0] = Float.NaN;
            w.f32(k, in.entry(k).shape(), v);
        }
        Path bad = dir.resolve("bad.safetensors"), out = dir.resolve("m.safetensors");
        w.write(bad);
        Files.writeString(out, "previous");
        CliRun r = CliRun.of("merge", "--checkpoint", bad.toString(), "--output", out.toString(), "--safe");
        assertEquals(1, r.exitCode());
        assertTrue(r.err().startsWith("tornado-lora merge: error: merged weight 'fc1.weight' has NaN at [0, 0]"), r.err());
        assertEquals(1, r.err().strip().lines().count());
        assertEquals("previous", Files.readString(out));
    }

    @Test
    void missingCheckpointIsOneLine() {
        CliRun r = CliRun.of("merge", "--checkpoint", "/nonexistent/c.safetensors", "--output", dir.resolve("m").toString());
        assertEquals(1, r.exitCode());
        assertEquals("tornado-lora merge: error: /nonexistent/c.safetensors: no such file", r.err().strip());
        assertArrayEquals(new String[0], dir.toFile().list());
    }
}
