package dev.tornadolora.cli;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * {@code finetune} step for step against transformers + PEFT + {@code torch.optim.AdamW} (scripts/finetune_parity.py,
 * which loads each fixture as its own class, AutoModelForCausalLM) for every family beside Llama, on the fixtures of
 * scripts/family_golden.py: 20 steps from the fixture's PEFT adapter (non-zero B), each step's loss within 1e-4
 * relative, lr and gradient norm as {@link FinetuneParityTest} checks them, and PEFT loading OUT/peft reproducing the
 * logged eval loss within 1e-5. Qwen2 (biases, and sliding layers), Qwen3 (q/k norms, QLoRA), Mistral (sliding window
 * shorter than the rows, QLoRA on BF16), Gemma ((1 + w) norms, GeGLU, scaled embeddings; QLoRA with head_dim 256);
 * one merged checkpoint per family loaded by transformers gives the logits of PEFT on the base + OUT/peft.
 */
class FamilyFinetuneParityTest {
    static Path families;

    @BeforeEach
    void findOracle() {
        new FinetuneParityTest().findOracle();
        families = FinetuneParityTest.root.resolve("src/core/src/test/resources/golden/families");
        Assumptions.assumeTrue(Files.isDirectory(families), "no family fixtures in " + families);
    }

    private static void parity(Path tmp, String fixture, boolean quantize, int batch, int accum, String schedule,
                               int warmup, double clip, boolean merge) throws Exception {
        Path caseDir = families.resolve(fixture);
        FinetuneParityTest.compare(tmp, fixture, caseDir, quantize, batch, accum, schedule, warmup, clip, merge);
    }

    @Test
    void qwen2BiasesCosineClipAccumulationMerged(@TempDir Path tmp) throws Exception {
        parity(tmp, "qwen2_tied_attn", false, 2, 2, "cosine", 3, 0.5, true);
    }

    @Test
    void qwen2SlidingLayers(@TempDir Path tmp) throws Exception {
        parity(tmp, "qwen2_sliding_layers", false, 3, 1, "constant", 0, 0, false);
    }

    @Test
    void qwen3QloraTiedMerged(@TempDir Path tmp) throws Exception {
        parity(tmp, "qwen3_qlora_tied", true, 2, 1, "constant", 2, 1.0, true);
    }

    @Test
    void mistralSlidingWindowMerged(@TempDir Path tmp) throws Exception {
        parity(tmp, "mistral_window_gqa", false, 2, 2, "cosine", 4, 0.3, true);
    }

    @Test
    void mistralQloraBf16(@TempDir Path tmp) throws Exception {
        parity(tmp, "mistral_qlora_bf16", true, 1, 3, "constant", 2, 0, false);
    }

    @Test
    void gemmaGegluTiedMerged(@TempDir Path tmp) throws Exception {
        parity(tmp, "gemma_tied_geglu", false, 3, 1, "cosine", 3, 0.5, true);
    }

    @Test
    void gemmaQloraHeadDim256(@TempDir Path tmp) throws Exception {
        parity(tmp, "gemma_qlora_head256", true, 2, 1, "constant", 0, 0, false);
    }
}
