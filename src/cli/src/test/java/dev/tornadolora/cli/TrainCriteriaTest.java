package dev.tornadolora.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** train's exit status says whether it learned: 1 when the criteria are missed, with the outputs still written. */
class TrainCriteriaTest {
    static final List<String> TINY = List.of("train", "--sizes", "32,32", "--rank", "2", "--alpha", "4", "--batch", "8",
            "--no-quantize-base", "--eval-batch", "32", "--device", "jvm", "--quiet");

    @TempDir
    Path dir;

    private CliRun train(Path out, String... more) {
        List<String> args = new java.util.ArrayList<>(TINY);
        args.addAll(List.of(more));
        args.addAll(List.of("--output", out.toString()));
        return CliRun.of(args.toArray(String[]::new));
    }

    @Test
    void missedCriteriaExitWithOneNamingThem() throws Exception {
        Path out = dir.resolve("short");
        CliRun r = train(out, "--steps", "2");
        assertEquals(1, r.exitCode(), r.out() + r.err());
        assertTrue(r.err().startsWith("tornado-lora train: learning criteria not met: final/initial loss "), r.err());
        assertTrue(r.err().contains("cosine fc1 "), r.err());
        assertTrue(r.out().contains("learning criteria NOT met"), r.out());
        assertTrue(Files.exists(out.resolve("adapter.safetensors")), "the outputs are written");
        JsonNode summary = new ObjectMapper().readTree(out.resolve("log.json").toFile()).get("summary");
        assertFalse(summary.get("criteria_met").asBoolean());
    }

    @Test
    void withDropoutTheCriterionIsThatTheLossFell() throws Exception {
        Path out = dir.resolve("dropout");
        CliRun r = train(out, "--steps", "60", "--lr", "0.05", "--dropout", "0.3");
        assertEquals(0, r.exitCode(), r.out() + r.err());
        assertTrue(r.out().contains("(criterion with dropout: below 100%): ok"), r.out());
        assertTrue(r.out().contains("no criterion with dropout"), r.out());
        JsonNode summary = new ObjectMapper().readTree(out.resolve("log.json").toFile()).get("summary");
        assertTrue(summary.get("criteria_met").asBoolean());
        assertTrue(summary.get("min_cosine").isNull());
    }
}
