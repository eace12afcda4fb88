package dev.tornadolora.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The README's first command: {@code finetune} with no model or data meets its criterion and writes every output. */
class EmbeddedJobTest {
    @Test
    void theEmbeddedJobLearnsTheHiddenUpdates(@TempDir Path tmp) throws Exception {
        CliRun r = CliRun.of("finetune", "--output", tmp.toString(), "--quiet", "--device", "jvm");
        assertEquals(0, r.exitCode(), r.out() + r.err());
        assertTrue(r.out().contains("learning criteria met"), r.out());
        JsonNode s = new ObjectMapper().readTree(tmp.resolve("log.json").toFile()).get("summary");
        assertTrue(s.get("criteria_met").asBoolean());
        assertTrue(s.get("kl_removed").asDouble() >= EmbeddedJob.MIN_KL_REMOVED, s.toString());
        assertTrue(s.get("kl_after").asDouble() < s.get("kl_before").asDouble());
        s.get("cosine").forEach(c -> assertTrue(c.asDouble() >= EmbeddedJob.MIN_COSINE, s.toString()));
        assertEquals(2, s.get("cosine").size(), "q_proj and v_proj of the one layer");
        for (String f : new String[] {"peft/adapter_model.safetensors", "peft/adapter_config.json", "adapter.safetensors",
                "log.json", "loss.png", dev.tornadolora.io.RunFiles.STATE, "base_model/config.json", "base_model/model.safetensors",
                "train_data.safetensors", "eval_data.safetensors"}) {
            assertTrue(Files.isRegularFile(tmp.resolve(f)), f);
        }
    }
}
