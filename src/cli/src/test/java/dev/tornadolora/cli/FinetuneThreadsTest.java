package dev.tornadolora.cli;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code -Dtornadolora.threads} reaches the device {@code finetune} runs on: the log and the header say how many
 * threads worked, and with 1 no worker thread of a device is started. (That a 1-thread device runs every op on the
 * caller's thread is {@code DeviceTest}'s proof, with the CPU time of every thread.)
 */
class FinetuneThreadsTest {

    @Test
    void threadsPropertyGovernsTheFinetunesDevice(@TempDir Path tmp) throws Exception {
        FinetuneCommandTest.findFixture();
        for (int threads : new int[] {1, 2}) {
            Set<Thread> before = new HashSet<>(Thread.getAllStackTraces().keySet());
            String old = System.setProperty("tornadolora.threads", Integer.toString(threads));
            CliRun r;
            try {
                r = CliRun.of(FinetuneCommandTest.args(FinetuneCommandTest.fixture.resolve("data.jsonl"),
                        tmp.resolve("t" + threads), "--seq-len", "8", "--steps", "2", "--batch", "2"));
            } finally {
                if (old == null) System.clearProperty("tornadolora.threads");
                else System.setProperty("tornadolora.threads", old);
            }
            assertEquals(0, r.exitCode(), r.err());
            assertTrue(r.out().contains("device jvm (" + threads + " threads)"), r.out());
            JsonNode log = FinetuneCommandTest.JSON.readTree(tmp.resolve("t" + threads).resolve(dev.tornadolora.io.RunFiles.LOG).toFile());
            assertEquals(threads, log.get("config").get("threads").asInt(), log.get("config").toString());
            if (threads == 1) {
                List<String> workers = Thread.getAllStackTraces().keySet().stream().filter(t -> !before.contains(t))
                        .map(Thread::getName).filter(n -> n.startsWith("tornado-lora-")).toList();
                assertTrue(workers.isEmpty(), "device workers started with threads=1: " + workers);
            }
        }
    }

    @Test
    void aBadThreadsPropertyIsOneLine() {
        String old = System.setProperty("tornadolora.threads", "0");
        try {
            var e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, BackendProperties::read);
            assertEquals("-Dtornadolora.threads: expected a positive integer, got '0'", e.getMessage());
        } finally {
            if (old == null) System.clearProperty("tornadolora.threads");
            else System.setProperty("tornadolora.threads", old);
        }
    }
}
