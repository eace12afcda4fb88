package dev.tornadolora.tornado;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Issue 23, class 10: Spark and TornadoVM in one installation. With the SDK wired in, {@code ./tornado-lora finetune
 * --spark local[2]} starts Spark (the SDK's log4j modules no longer hide Spark's log4j: one logging stack, one SLF4J
 * provider) and keeps Spark's own warnings off the terminal.
 */
class TornadoSparkTest {
    @TempDir
    Path dir;

    @Test
    void finetuneOnSparkRunsWithTheSdkWiredIn() throws Exception {
        Path root = Path.of("..").toAbsolutePath().normalize();
        Path launcher = root.resolve("tornado-lora");
        Path spark = root.resolve("src/spark/target/tornado-lora-spark.jar");
        Assumptions.assumeTrue(Files.isExecutable(launcher) && Files.isRegularFile(spark),
                "needs ./tornado-lora and the built Spark module (./build test builds it)");
        Path model = root.resolve("src/core/src/test/resources/golden/llama/gqa1_tied_tokenizer/model");
        Path data = Files.writeString(dir.resolve("d.jsonl"), "{\"text\": \"the cat sat on the mat\"}\n".repeat(8));
        ProcessBuilder pb = new ProcessBuilder(List.of(launcher.toString(), "finetune", "--model", model.toString(),
                "--data", data.toString(), "--output", dir.resolve("out").toString(), "--steps", "2", "--seq-len", "4",
                "--batch", "1", "--grad-accum", "2", "--device", "jvm", "--quiet", "--spark", "local[2]", "--workers", "2"));
        pb.environment().put("TORNADOVM_HOME", System.getenv().getOrDefault("TORNADOVM_HOME", "/opt/tornadovm-sdk"));
        Path out = dir.resolve("stdout.txt"), err = dir.resolve("stderr.txt");
        Process p = pb.redirectOutput(out.toFile()).redirectError(err.toFile()).start();
        assertTrue(p.waitFor(300, TimeUnit.SECONDS), "finetune --spark did not end");
        String o = Files.readString(out, StandardCharsets.UTF_8), e = Files.readString(err, StandardCharsets.UTF_8);
        assertEquals(0, p.exitValue(), o + e);
        assertTrue(o.contains("spark local[2]: 2 replicas"), o);
        assertFalse(e.contains("ClassCastException") || e.contains("SLF4J") || e.contains(" WARN ")
                || e.contains("sun.misc.Unsafe"), "Spark's lines reached the terminal:\n" + e);
    }
}
