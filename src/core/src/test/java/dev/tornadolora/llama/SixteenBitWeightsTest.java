package dev.tornadolora.llama;

import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.io.SafeTensorsWriter;
import dev.tornadolora.tensor.BFloat16;
import dev.tornadolora.tensor.BaseWeight;
import dev.tornadolora.tensor.DenseWeight;
import dev.tornadolora.tensor.HalfWeight;
import dev.tornadolora.tensor.Tensor;
import dev.tornadolora.testing.TestDevices;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

/**
 * BF16/F16 checkpoints stay 16-bit in memory ({@link HalfWeight}) and compute exactly what the same model computes
 * on its weights widened to fp32 (a {@link DenseWeight} model built from {@link SafeTensors#floats}): the kernels
 * decode the 16-bit values into the same panels and rows and sum in the same order, so logits, losses and adapter
 * gradients are equal bit for bit, on the GEMM path (16 tokens) and the few-token path (4 tokens).
 */
class SixteenBitWeightsTest {

    @ParameterizedTest
    @CsvSource({"BF16, false, 2, 8", "BF16, true, 2, 8", "F16, false, 2, 8", "BF16, false, 1, 4", "F16, true, 1, 4"})
    void sixteenBitWeightsComputeWhatTheirWidenedCopiesCompute(HalfWeight.Format format, boolean tied, int batch,
                                                                int seq, @TempDir Path dir) throws IOException {
        LlamaConfig c = new LlamaConfig(64, 32, 48, 2, 4, 2, 8, 1e-6, 10000, null, tied, 128, 1, 2, "bfloat16");
        writeRandomModel(c, format, dir);
        Map<String, Tensor> widened = new LinkedHashMap<>();
        SafeTensors st = SafeTensors.open(dir.resolve(HfWeights.SINGLE));
        for (String n : st.names()) widened.put(n, st.floats(n));
        // LoRA on q, v, the MLP and lm_head (when untied: lm_head's adapter then runs on the 16-bit weight too)
        LoraSettings lora = new LoraSettings(Set.of("q_proj", "v_proj"), true, !tied, 4, 8f, 0f, false, false);
        SplittableRandom r = new SplittableRandom(5);
        int[] ids = new int[batch * seq];
        for (int i = 0; i < ids.length; i++) ids[i] = r.nextInt(c.vocabSize());
        try (LlamaForCausalLM kept = LlamaForCausalLM.load(dir, lora, TestDevices.jvm());
             LlamaForCausalLM wide = LlamaForCausalLM.fromWeights(c, widened, lora, TestDevices.jvm())) {
            assertInstanceOf(HalfWeight.class, kept.embeddingWeight());
            assertInstanceOf(HalfWeight.class, kept.lmHeadWeight());
            assertInstanceOf(DenseWeight.class, wide.lmHeadWeight());
            NonZeroAdapters.load(kept, wide);
            assertArrayEquals(wide.logits(ids, batch, seq).data(), kept.logits(ids, batch, seq).data());
            kept.train(true);
            wide.train(true);
            assertEquals(wide.forwardBackward(ids, ids, batch, seq, 1.0), kept.forwardBackward(ids, ids, batch, seq, 1.0));
            Map<String, Tensor> gw = wide.adapterGradients(), gk = kept.adapterGradients();
            assertEquals(gw.keySet(), gk.keySet());
            gw.forEach((k, g) -> assertArrayEquals(g.data(), gk.get(k).data(), k));
            assertArrayEquals(wide.mergedWeights().get("model.embed_tokens.weight").data(),
                    kept.mergedWeights().get("model.embed_tokens.weight").data());
        }
    }

    /**
     * Decoding one token at a time through the KV cache reads a BF16 weight widened in registers (the one-token
     * GEMV): the logits at every step equal the widened model's bit for bit, on rows long enough for the GEMV's
     * unrolled loop, its single-vector loop and its scalar tail (hidden 168, intermediate 200), with LoRA on.
     */
    @Test
    void oneTokenDecodingOfABf16ModelEqualsItsWidenedCopy(@TempDir Path dir) throws IOException {
        LlamaConfig c = new LlamaConfig(300, 168, 200, 2, 4, 2, 42, 1e-6, 10000, null, false, 128, 1, 2, "bfloat16");
        writeRandomModel(c, HalfWeight.Format.BF16, dir);
        Map<String, Tensor> widened = new LinkedHashMap<>();
        SafeTensors st = SafeTensors.open(dir.resolve(HfWeights.SINGLE));
        for (String n : st.names()) widened.put(n, st.floats(n));
        LoraSettings lora = new LoraSettings(Set.of("q_proj", "v_proj"), true, true, 4, 8f, 0f, false, false);
        try (LlamaForCausalLM kept = LlamaForCausalLM.load(dir, lora, TestDevices.jvm());
             LlamaForCausalLM wide = LlamaForCausalLM.fromWeights(c, widened, lora, TestDevices.jvm())) {
            NonZeroAdapters.load(kept, wide);
            KvCache ck = kept.newCache(8), cw = wide.newCache(8);
            int[] prompt = {5, 17, 230};
            assertArrayEquals(wide.logits(prompt, cw).data(), kept.logits(prompt, ck).data(), "prefill");
            for (int id : new int[] {1, 299, 42, 7}) {
                assertArrayEquals(wide.logits(new int[] {id}, cw).data(), kept.logits(new int[] {id}, ck).data(),
                        "token " + id);
            }
        }
    }

    /**
     * A random model "stored" in BF16 or F16 (bench's bf16 step base) keeps every matrix 16-bit, holding the fp32
     * random model's values rounded to the format (by the JDK's and torch's rounding, ties to even), norms as they are.
     */
    @ParameterizedTest
    @CsvSource({"BF16", "F16"})
    void aRandomModelStoredIn16BitHoldsTheFp32ModelRounded(HalfWeight.Format format) {
        LlamaConfig c = new LlamaConfig(64, 32, 48, 2, 4, 2, 8, 1e-6, 10000, null, false, 128, 1, 2, "bfloat16");
        LoraSettings lora = new LoraSettings(Set.of("q_proj"), false, false, 4, 8f, 0f, false, false);
        try (LlamaForCausalLM wide = LlamaForCausalLM.random(c, lora, 7, TestDevices.jvm());
             LlamaForCausalLM kept = LlamaForCausalLM.random(c, lora, 7, TestDevices.jvm(), format)) {
            Map<String, BaseWeight> w = wide.frozenWeights(), k = kept.frozenWeights();
            assertEquals(w.keySet(), k.keySet());
            w.forEach((name, base) -> {
                float[] want = base.dequantize();
                if (!name.endsWith("norm.weight")) {
                    assertInstanceOf(HalfWeight.class, k.get(name), name);
                    for (int i = 0; i < want.length; i++) {
                        want[i] = format == HalfWeight.Format.BF16
                                ? BFloat16.toFloat(BFloat16.fromFloat(want[i]))
                                : Float.float16ToFloat(Float.floatToFloat16(want[i]));
                    }
                }
                assertArrayEquals(want, k.get(name).dequantize(), name);
            });
        }
    }

    /** config.json and model.safetensors of normal(0, 0.02) weights in {@code format}, norms near one. */
    static void writeRandomModel(LlamaConfig c, HalfWeight.Format format, Path dir) throws IOException {
        SplittableRandom r = new SplittableRandom(11);
        SafeTensorsWriter w = new SafeTensorsWriter().metadata("format", "pt");
        HfWeights.expected(c).forEach((name, shape) -> {
            float[] v = new float[java.util.Arrays.stream(shape).reduce(1, (a, b) -> a * b)];
            for (int i = 0; i < v.length; i++) {
                v[i] = name.endsWith("norm.weight") ? 1f + (float) (0.1 * r.nextGaussian()) : (float) (0.02 * r.nextGaussian());
            }
            if (format == HalfWeight.Format.BF16) w.bf16(name, shape, v);
            else w.f16(name, shape, v);
        });
        Files.createDirectories(dir);
        w.write(dir.resolve(HfWeights.SINGLE));
        Files.writeString(dir.resolve("config.json"), c.toJson());
    }
}
