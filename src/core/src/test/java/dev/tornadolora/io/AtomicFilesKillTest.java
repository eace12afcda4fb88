package dev.tornadolora.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Instant;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A writer process killed with SIGKILL in the middle of {@link AtomicFiles#write} leaves the previous file whole
 * and byte for byte the same, and its temporary is neither read as the file nor kept forever. (A kill leaves the
 * page cache intact, so this proves the rename protocol; the fsyncs that make it survive power loss cannot be
 * tested here.)
 */
class AtomicFilesKillTest {
    static final int FLOATS = 1 << 20;  // a 4 MiB file: 64 pieces, about 1.3 s of writing in the slow mode

    @TempDir
    Path dir;

    private Process start(String... args) throws IOException {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<String> command = new java.util.ArrayList<>(List.of(java, "-cp", System.getProperty("java.class.path"),
                SlowWriterProcess.class.getName()));
        command.addAll(List.of(args));
        return new ProcessBuilder(command).redirectErrorStream(true).start();
    }

    /** Reads the child's lines until one starts with {@code prefix}; fails if it exits first. */
    private static void awaitLine(BufferedReader out, String prefix) throws IOException {
        for (String line; (line = out.readLine()) != null; ) {
            if (line.startsWith(prefix)) return;
        }
        throw new AssertionError("the writer process exited before printing '" + prefix + "'");
    }

    private List<Path> temporaries() throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(AtomicFiles::isTemporary).toList();
        }
    }

    @Test
    void killedMidWriteLeavesThePreviousFileIntact() throws Exception {
        Path target = dir.resolve("adapter.safetensors");
        byte[] previous = SlowWriterProcess.version(1, FLOATS);
        AtomicFiles.write(target, out -> out.write(previous));
        Files.setPosixFilePermissions(target, PosixFilePermissions.fromString("rw-r-----"));

        Process writer = start("slow", target.toString(), "2", Integer.toString(FLOATS));
        try (BufferedReader out = new BufferedReader(new InputStreamReader(writer.getInputStream(), StandardCharsets.UTF_8))) {
            awaitLine(out, "writing");
            List<Path> inProgress = temporaries();
            assertEquals(1, inProgress.size(), "the new version is being written beside the target");
            assertTrue(inProgress.get(0).getFileName().toString().startsWith(".adapter.safetensors.tmp-"));
            writer.destroyForcibly();
            assertTrue(writer.waitFor(30, TimeUnit.SECONDS));
        }
        assertArrayEquals(previous, Files.readAllBytes(target), "the previous file, byte for byte");
        assertEquals("1", SafeTensors.open(target).requireMetadata("version"));

        List<Path> left = temporaries();
        assertEquals(1, left.size(), "the killed writer's temporary is left behind");
        assertTrue(Files.size(left.get(0)) < previous.length, "it holds a part of the new file");
        try (Stream<Path> s = Files.list(dir)) {
            assertEquals(List.of(target), s.filter(p -> p.toString().endsWith(".safetensors")).toList(),
                    "no temporary looks like a checkpoint");
        }

        byte[] next = SlowWriterProcess.version(3, 16);
        AtomicFiles.write(target, o -> o.write(next));
        assertEquals(1, temporaries().size(), "a temporary newer than this JVM may be a live writer's: kept");
        assertEquals(left, AtomicFiles.removeStaleTemporaries(dir, Instant.now().plusSeconds(1)));
        assertEquals(List.of(), temporaries());
        assertArrayEquals(next, Files.readAllBytes(target));
        assertEquals(PosixFilePermissions.fromString("rw-r-----"), Files.getPosixFilePermissions(target),
                "a replaced file keeps its permissions");
    }

    /** A process rewriting the file in a loop, killed at random moments: the file is always one whole version. */
    @Test
    void killedAtRandomMomentsTheFileIsAlwaysOneWholeVersion() throws Exception {
        Path target = dir.resolve("state.safetensors");
        SplittableRandom rng = new SplittableRandom(7);
        for (int round = 0; round < 3; round++) {
            Process writer = start("loop", target.toString(), Integer.toString(FLOATS / 4));
            try (BufferedReader out = new BufferedReader(new InputStreamReader(writer.getInputStream(), StandardCharsets.UTF_8))) {
                awaitLine(out, "wrote 2");
                Thread.sleep(rng.nextInt(5, 60));
                writer.destroyForcibly();
                assertTrue(writer.waitFor(30, TimeUnit.SECONDS));
            }
            SafeTensors st = SafeTensors.open(target);
            int version = Integer.parseInt(st.requireMetadata("version"));
            assertTrue(version >= 2);
            assertArrayEquals(SlowWriterProcess.version(version, FLOATS / 4), Files.readAllBytes(target),
                    "round " + round + ": version " + version + " whole");
        }
    }
}
