package dev.tornadolora.fuzz;

import dev.tornadolora.io.LoraCheckpoint;
import dev.tornadolora.io.SafeTensors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The committed corpus: the seeds are what {@link FuzzSeeds} makes and valid; no corpus file crashes a loader. */
class FuzzCorpusTest {
    @TempDir
    Path dir;

    @Test
    void seedsAreCurrentAndValid() throws IOException {
        Map<String, byte[]> generated = FuzzSeeds.generate();
        assertEquals(generated.keySet(), FuzzSeeds.paths("seeds").stream().map(p -> p.getFileName().toString())
                .collect(java.util.stream.Collectors.toSet()), "run ./build fuzz-seeds");
        for (Path p : FuzzSeeds.paths("seeds")) {
            assertArrayEquals(generated.get(p.getFileName().toString()), Files.readAllBytes(p), p + ": run ./build fuzz-seeds");
            SafeTensors st = SafeTensors.open(p);
            LoaderTargets.readAll(st, Files.size(p));
            if (st.contains("lora_a.weight")) {
                LoraCheckpoint.read(st);
            }
        }
    }

    /** Seeds and past crashes, from memory and from a mapped file: read, or rejected with a message. */
    @Test
    void noCorpusFileCrashesALoader() throws IOException {
        int files = 0;
        for (String kind : new String[] {"seeds", "regressions"}) {
            for (Path p : FuzzSeeds.paths(kind)) {
                if (p.getFileName().toString().startsWith(".")) continue;
                byte[] bytes = Files.readAllBytes(p);
                FuzzHarness.run("corpus", bytes, LoaderTargets::readAll);
                Path copy = Files.write(dir.resolve("f.safetensors"), bytes);
                FuzzHarness.run("corpus-file", bytes, b -> LoaderTargets.readAll(SafeTensors.open(copy), b.length));
                files++;
            }
        }
        assertTrue(files >= FuzzSeeds.generate().size());
    }

    /** The harness itself: a crash is reported, a rejection is not. */
    @Test
    void theHarnessTellsCrashesFromRejections() {
        assertEquals(FuzzHarness.Outcome.REJECTED, FuzzHarness.run("check", new byte[3],
                b -> SafeTensors.parse("x", ByteBuffer.wrap(b))));
        AssertionError e = org.junit.jupiter.api.Assertions.assertThrows(AssertionError.class,
                () -> FuzzHarness.run("check", new byte[3], b -> { throw new ArrayIndexOutOfBoundsException(3); }));
        assertTrue(e.getMessage().startsWith("check: crashed on the input saved as "), e.getMessage());
        assertFalse(e.getMessage().isBlank());
        e = org.junit.jupiter.api.Assertions.assertThrows(AssertionError.class,
                () -> FuzzHarness.run("check", new byte[3], b -> { long[] big = new long[128 << 20]; big[1] = 1; }));
        assertTrue(e.getCause().getMessage().startsWith("allocated "), e.getCause().getMessage());
        e = org.junit.jupiter.api.Assertions.assertThrows(AssertionError.class,
                () -> FuzzHarness.run("check", new byte[3], b -> Thread.sleep(10_000), 200));
        assertTrue(e.getMessage().startsWith("check: no answer within 200 ms (a hang?)"), e.getMessage());
    }
}
