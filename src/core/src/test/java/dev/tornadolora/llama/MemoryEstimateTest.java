package dev.tornadolora.llama;

import dev.tornadolora.tensor.BaseWeight;
import dev.tornadolora.tensor.DenseWeight;
import dev.tornadolora.tensor.HalfWeight;
import dev.tornadolora.tensor.Nf4Tensor;
import dev.tornadolora.testing.TestDevices;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The estimate's weights are the bytes the loaded model holds (BF16 kept, NF4 with its scalers and block scales,
 * fp32 norms), within 1 %; adapters are four fp32 copies of A and B; checkpointing shrinks the activations.
 */
class MemoryEstimateTest {

    @ParameterizedTest
    @CsvSource({"false, false", "true, false", "false, true", "true, true"})
    void weightsAreWhatTheModelHolds(boolean quantize, boolean tied, @TempDir Path dir) throws IOException {
        LlamaConfig c = new LlamaConfig(256, 128, 256, 2, 4, 4, 32, 1e-6, 10000, null, tied, 128, 1, 2, "bfloat16");
        SixteenBitWeightsTest.writeRandomModel(c, HalfWeight.Format.BF16, dir);
        LoraSettings lora = new LoraSettings(Set.of("q_proj", "v_proj"), true, false, 8, 16f, 0f, false, quantize);
        MemoryEstimate e = MemoryEstimate.training(c, lora, 2, 2, 64, false, 2);
        try (LlamaForCausalLM m = LlamaForCausalLM.load(dir, lora, TestDevices.jvm())) {
            long held = 0;
            java.util.Set<BaseWeight> seen = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
            for (BaseWeight w : m.frozenWeights().values()) if (seen.add(w)) held += heldBytes(w);  // tied: once
            assertEquals(held, e.weights(), 0.01 * held, "weights");
            long adapterFloats = m.trainableParameters().stream().mapToLong(p -> p.data().length).sum();
            assertEquals(adapterFloats * 16, e.adapters(), "adapters, gradients, AdamW moments");
        }
        MemoryEstimate ckpt = MemoryEstimate.training(c, lora, 2, 2, 64, true, 2);
        assertEquals(e.activations(), ckpt.activationsOther());
        assertTrue(ckpt.activations() < e.activations(), "checkpointing keeps less");
    }

    private static long heldBytes(BaseWeight w) {
        return switch (w) {
            case DenseWeight d -> 4L * d.data().length;
            case HalfWeight h -> 2L * h.bits().length;
            case Nf4Tensor q -> q.packedCodes().length + q.quantizedScalers().length + 4L * q.blockScales().length
                    + 4L * q.quantizationFactor().length;
        };
    }
}
