package dev.tornadolora.llama;

import dev.tornadolora.tensor.Tensor;
import dev.tornadolora.testing.TestDevices;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

/**
 * Activation checkpointing recomputes each decoder layer in backward: losses, gradients and the dropout state after
 * each step are those of the same model without it, bit for bit, over several steps (so the recomputed forward
 * reproduces the dropout masks and leaves the generators where the first forward left them).
 */
class ActivationCheckpointingTest {

    @ParameterizedTest
    @CsvSource({"0.0, false, false", "0.3, false, false", "0.3, true, false", "0.1, true, true"})
    void checkpointedStepsEqualTheStepsWithoutIt(float dropout, boolean mlp, boolean quantize) {
        LlamaConfig c = new LlamaConfig(64, 128, 128, 3, 4, 4, 32, 1e-6, 10000, null, false, 128, 1, 2, "float32");
        LoraSettings lora = new LoraSettings(Set.of("q_proj", "v_proj"), mlp, false, 4, 8f, dropout, false, quantize);
        int[] ids = {1, 5, 9, 3, 7, 2, 8, 4, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53};
        try (LlamaForCausalLM plain = LlamaForCausalLM.random(c, lora, 3, TestDevices.jvm());
             LlamaForCausalLM ckpt = LlamaForCausalLM.random(c, lora, 3, TestDevices.jvm())) {
            NonZeroAdapters.load(plain, ckpt);
            plain.train(true);
            ckpt.train(true).activationCheckpointing(true);
            double previous = Double.NaN;
            for (int step = 0; step < 3; step++) {
                plain.zeroGrad();
                ckpt.zeroGrad();
                double expected = plain.forwardBackward(ids, ids, 2, 10, 1.0);
                assertEquals(expected, ckpt.forwardBackward(ids, ids, 2, 10, 1.0), "loss of step " + step);
                Map<String, Tensor> gp = plain.adapterGradients(), gc = ckpt.adapterGradients();
                for (String k : gp.keySet()) assertArrayEquals(gp.get(k).data(), gc.get(k).data(), "step " + step + ": " + k);
                assertEquals(plain.dropoutDraws(), ckpt.dropoutDraws(), "dropout state after step " + step);
                if (dropout > 0 && step > 0) assertNotEquals(previous, expected, "new masks each step");
                previous = expected;
            }
        }
    }
}
