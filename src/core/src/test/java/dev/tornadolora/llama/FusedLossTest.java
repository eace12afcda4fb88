package dev.tornadolora.llama;

import dev.tornadolora.llama.ops.CausalLmLoss;
import dev.tornadolora.tensor.Tensor;
import org.junit.jupiter.api.Test;
import dev.tornadolora.testing.TestDevices;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The fused, chunked lm_head + loss of a training step (no full logits) against the unfused step that
 * materialises them ({@code forwardBackward(.., logitsOut)}): the same loss and layer gradients bit for bit, and
 * an lm_head adapter's gradients equal up to the order of the sum over tokens; ignored labels and sequence ends
 * fall inside chunks. Chunk 0 is the default, Liger's rule ({@link CausalLmLoss#chunkTokens}).
 */
class FusedLossTest {

    /**
     * Liger's {@code chunk_size = next_power_of_2(ceil(BT / ceil(V / H)))}, worked by hand: the benchmark
     * configuration (BT 512, V 8192, H 1024: ceil(512 / 8) = 64), TinyLlama at 512 tokens (32000 / 2048 → 16:
     * 32), Llama-3.2-1B (128256 / 2048 → 63: ceil(512 / 63) = 9 → 16), this test's model (96 / 32 → 3: 15 → 16),
     * and the floor of 16 rows (Llama-3's vocabulary at 64 tokens: 2 → 16); V ≤ H gives one chunk.
     */
    @Test
    void chunksFollowLigersRule() {
        assertEquals(64, CausalLmLoss.chunkTokens(512, 8192, 1024));
        assertEquals(32, CausalLmLoss.chunkTokens(512, 32000, 2048));
        assertEquals(16, CausalLmLoss.chunkTokens(512, 128256, 2048));
        assertEquals(16, CausalLmLoss.chunkTokens(45, 96, 32));
        assertEquals(16, CausalLmLoss.chunkTokens(64, 128256, 2048));
        assertEquals(1024, CausalLmLoss.chunkTokens(1000, 512, 1024));
        assertEquals(128, CausalLmLoss.chunkTokens(4096, 32000, 1024));  // 32 → 128
        // rows: chunks of 64; a last one under 16 rows joins its neighbour (520 = 7·64 + 72), 16 stay alone
        assertEquals(64, CausalLmLoss.chunkRows(520, 0, 64));
        assertEquals(72, CausalLmLoss.chunkRows(520, 448, 64));
        assertEquals(64, CausalLmLoss.chunkRows(528, 448, 64));
        assertEquals(16, CausalLmLoss.chunkRows(528, 512, 64));
    }

    @ParameterizedTest
    @CsvSource({"10, false, 0.0", "10, true, 0.0", "16, true, 0.2", "0, true, 0.0"})
    void chunkedLossEqualsTheLossOfTheFullLogits(int chunkTokens, boolean loraOutput, float dropout) {
        LlamaConfig c = new LlamaConfig(96, 32, 48, 2, 4, 2, 8, 1e-6, 10000, null, false, 128, 1, 2, "float32");
        LoraSettings lora = new LoraSettings(Set.of("q_proj", "v_proj"), true, loraOutput, 4, 8f, dropout, false, false);
        int batch = 3, seq = 15;
        int[] ids = new int[batch * seq], labels = new int[batch * seq];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = (i * 37 + 11) % c.vocabSize();
            labels[i] = i % 7 == 3 ? -100 : ids[i];
        }
        try (LlamaForCausalLM full = LlamaForCausalLM.random(c, lora, 5, TestDevices.jvm());
             LlamaForCausalLM fused = LlamaForCausalLM.random(c, lora, 5, TestDevices.jvm())) {
            NonZeroAdapters.load(full, fused);
            full.train(true);
            fused.train(true);
            fused.lossChunkTokens = chunkTokens;
            for (int step = 0; step < 2; step++) {
                full.zeroGrad();
                fused.zeroGrad();
                double expected = full.forwardBackward(ids, labels, batch, seq, 0.5, new float[ids.length * c.vocabSize()]);
                assertEquals(expected, fused.forwardBackward(ids, labels, batch, seq, 0.5), "loss of step " + step);
                Map<String, Tensor> gf = full.adapterGradients(), gc = fused.adapterGradients();
                for (String k : gf.keySet()) {
                    float[] e = gf.get(k).data(), a = gc.get(k).data();
                    if (k.contains("lm_head")) {  // summed chunk by chunk (0: Liger's rule, 16 + 29 rows)
                        for (int i = 0; i < e.length; i++) {
                            assertEquals(e[i], a[i], 1e-6 * (1 + Math.abs(e[i])), k + "[" + i + "]");
                        }
                    } else {
                        assertArrayEquals(e, a, "step " + step + ": " + k);
                    }
                }
                assertTrue(gf.keySet().stream().anyMatch(k -> k.contains("lm_head")) == loraOutput);
            }
            full.train(false);
            fused.train(false);
            assertEquals(full.loss(ids, labels, batch, seq), fused.loss(ids, labels, batch, seq), "eval loss");
        }
    }
}
