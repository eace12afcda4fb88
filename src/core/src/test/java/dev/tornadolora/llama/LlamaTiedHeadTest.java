package dev.tornadolora.llama;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.io.StrictJson;
import dev.tornadolora.tensor.Tensor;
import dev.tornadolora.testing.TestDevices;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code tie_word_embeddings: true} resolved as transformers 5.18's {@code from_pretrained} resolves it, against the
 * logits of transformers itself ({@code scripts/tied_head_golden.py}): a file with a different {@code lm_head.weight}
 * is not tied (the file's head is used), equal values are tied, a file with only lm_head ties the embedding to it.
 */
class LlamaTiedHeadTest {
    private static final Path ROOT = LlamaGoldenTest.ROOT.resolveSibling("llama_tied");

    @ParameterizedTest
    @ValueSource(strings = {"file_head", "equal_head", "head_only"})
    void logitsMatchTransformers(String name) {
        Path dir = ROOT.resolve(name);
        JsonNode c = StrictJson.read(dir.resolve("case.json"));
        TokenTensors.Tokens ids = TokenTensors.read(SafeTensors.open(dir.resolve("input.safetensors")), "input_ids");
        float[] expected = SafeTensors.open(dir.resolve("expected.safetensors")).floats("logits").data();
        try (LlamaForCausalLM m = LlamaForCausalLM.load(dir.resolve("model"), LoraSettings.none(false), TestDevices.named("jvm"))) {
            float[] logits = m.logits(ids.values(), ids.batch(), ids.seq()).data();
            double worst = 0;
            for (int i = 0; i < logits.length; i++) worst = Math.max(worst, Math.abs(logits[i] - expected[i]));
            assertTrue(worst <= 1e-4, name + ": logits differ from transformers' by " + worst);
            Map<String, Tensor> merged = m.mergedWeights();
            // The head is written out exactly when transformers did not tie it, so the merged folder loads the same.
            assertEquals(!c.get("transformers_tied").asBoolean(), merged.containsKey("lm_head.weight"), name);
            if (merged.containsKey("lm_head.weight")) {
                assertArrayEquals(SafeTensors.open(dir.resolve("model/model.safetensors")).floats("lm_head.weight").data(),
                        merged.get("lm_head.weight").data());
            }
        }
    }
}
