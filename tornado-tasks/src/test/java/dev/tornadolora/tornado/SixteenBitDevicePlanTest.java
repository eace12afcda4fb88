package dev.tornadolora.tornado;

import dev.tornadolora.device.Device;
import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.io.SafeTensorsWriter;
import dev.tornadolora.llama.LlamaConfig;
import dev.tornadolora.llama.LlamaForCausalLM;
import dev.tornadolora.llama.LoraSettings;
import dev.tornadolora.tensor.BaseWeight;
import dev.tornadolora.tensor.DenseWeight;
import dev.tornadolora.tensor.HalfWeight;
import dev.tornadolora.tensor.Tensor;
import dev.tornadolora.tornado.plan.LlamaDevicePlan;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

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
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A BF16/F16 checkpoint on the device plan stays 16-bit (embedding, projections, lm_head decoded by
 * {@code HalfDecode} inside the graphs) and trains exactly as the plan of the same model with its weights widened
 * to fp32 (built from {@link SafeTensors#floats}): losses, gradient norms and adapters bit for bit over two steps
 * (the widening is exact and the decoded panels are the packed ones), while TornadoVM's count of the plan's device
 * memory drops by at least half of what the widened projections take in their fp32 panels, less the layer panels the
 * 16-bit plan decodes a layer's projections into (one layer here: the saving grows with every layer more).
 */
class SixteenBitDevicePlanTest {

    @ParameterizedTest(name = "{0} tied {1}")
    @CsvSource({"BF16, false", "F16, true"})
    void aSixteenBitModelTrainsAsItsWidenedCopyInLessDeviceMemory(HalfWeight.Format format, boolean tied,
                                                                  @TempDir Path dir) throws IOException {
        LlamaConfig c = new LlamaConfig(96, 64, 96, 1, 4, 2, 16, 1e-5, 10000.0, null, tied, 256, 0, 1,
                format == HalfWeight.Format.BF16 ? "bfloat16" : "float16");
        LoraSettings lora = new LoraSettings(Set.of("q_proj", "v_proj"), true, false, 4, 8f, 0f, false,
                false);
        try (Device host = Device.open("jvm")) {
            writeModel(LlamaForCausalLM.random(c, lora, 3, host), format, tied, dir);
            Map<String, Tensor> widened = new LinkedHashMap<>();
            SafeTensors st = SafeTensors.open(dir.resolve("model.safetensors"));
            for (String n : st.names()) widened.put(n, st.floats(n));
            LlamaForCausalLM kept = LlamaForCausalLM.load(dir, lora, host);
            LlamaForCausalLM wide = LlamaForCausalLM.fromWeights(c, widened, lora, host);
            assertInstanceOf(HalfWeight.class, kept.frozenWeights().get("model.layers.0.self_attn.q_proj.weight"));
            assertInstanceOf(HalfWeight.class, kept.frozenWeights().get("lm_head.weight"));
            assertInstanceOf(DenseWeight.class, wide.frozenWeights().get("lm_head.weight"));
            int batch = 2, seq = 16;
            var opt = new LlamaDevicePlan.Optimizer(0.9, 0.999, 1e-8, 0.01, 1.0);
            SplittableRandom rng = new SplittableRandom(5);
            try (LlamaDevicePlan half = new LlamaDevicePlan(kept, batch, seq, opt, null, true);
                 LlamaDevicePlan full = new LlamaDevicePlan(wide, batch, seq, opt, null, true)) {
                for (int step = 1; step <= 2; step++) {  // the second with adapters B ≠ 0
                    int[] ids = new int[batch * seq], labels = new int[batch * seq];
                    for (int i = 0; i < ids.length; i++) {
                        ids[i] = rng.nextInt(c.vocabSize());
                        labels[i] = rng.nextInt(5) == 0 ? -100 : rng.nextInt(c.vocabSize());
                    }
                    assertEquals(full.forwardBackward(ids, labels, 1.0), half.forwardBackward(ids, labels, 1.0),
                            "loss, step " + step);
                    assertEquals(full.step(1e-2), half.step(1e-2), "gradient norm, step " + step);
                    assertEquals(full.loss(ids, labels), half.loss(ids, labels), "evaluation loss, step " + step);
                }
                half.adaptersToHost();
                full.adaptersToHost();
                long halfBytes = half.deviceBytes(), fullBytes = full.deviceBytes();
                long projectionPanels = 0;  // the widened plan's fp32 panels of the layers' projections, both layouts
                for (Map.Entry<String, BaseWeight> e : wide.frozenWeights().entrySet()) {
                    if (e.getKey().startsWith("model.layers.") && !e.getKey().endsWith("norm.weight")) {
                        projectionPanels += 2L * Float.BYTES * e.getValue().rows() * e.getValue().cols();
                    }
                }
                // the 16-bit plan's layer panels, shared by the layer graphs: the panels of the largest layer's
                // projections in the larger of the two layouts (each layer decodes all of them at once)
                Map<String, long[]> layerPanels = new LinkedHashMap<>();
                for (Map.Entry<String, BaseWeight> e : wide.frozenWeights().entrySet()) {
                    if (e.getKey().startsWith("model.layers.") && !e.getKey().endsWith("norm.weight")) {
                        long rows = e.getValue().rows(), cols = e.getValue().cols();
                        long[] both = layerPanels.computeIfAbsent(e.getKey().split("\\.")[2], l -> new long[2]);
                        both[0] += (rows + 15) / 16 * cols;
                        both[1] += (cols + 15) / 16 * rows;
                    }
                }
                long scratch = 0;
                for (long[] both : layerPanels.values()) {
                    scratch = Math.max(scratch, 16L * Float.BYTES * Math.max(both[0], both[1]));
                }
                String memory = format + ": device memory " + halfBytes + " B kept 16-bit, " + fullBytes
                        + " B widened; the widened projections' panels " + projectionPanels + " B, the layer panels "
                        + scratch + " B";
                System.out.println(memory);
                // layer 0's backward reads no q, k, v (no input gradient): the widened plan holds no W panels of
                // them there, while the 16-bit plan's backward still holds and decodes its layer's whole 16-bit
                // storage (2 B per parameter, and 2 B more of the layer panels it need not fill)
                long unread = 0;
                for (String m : new String[] {"q_proj", "k_proj", "v_proj"}) {
                    BaseWeight w = wide.frozenWeights().get("model.layers.0.self_attn." + m + ".weight");
                    unread += 4L * w.rows() * w.cols();
                }
                assertTrue(fullBytes - halfBytes >= projectionPanels / 2 - scratch - unread, memory);
            }
            Map<String, Tensor> a = wide.adapterStateDict(), b = kept.adapterStateDict();
            assertEquals(a.keySet(), b.keySet());
            a.forEach((k, t) -> assertArrayEquals(t.data(), b.get(k).data(), k));
            kept.close();
            wide.close();
        }
    }

    /** The model's frozen weights as a 16-bit checkpoint (lm_head left out when tied), with its config.json. */
    private static void writeModel(LlamaForCausalLM m, HalfWeight.Format format, boolean tied, Path dir)
            throws IOException {
        SafeTensorsWriter w = new SafeTensorsWriter().metadata("format", "pt");
        m.frozenWeights().forEach((name, base) -> {
            if (tied && name.equals("lm_head.weight")) return;
            int[] shape = name.endsWith("norm.weight") ? new int[] {base.cols()} : new int[] {base.rows(), base.cols()};
            if (format == HalfWeight.Format.BF16) w.bf16(name, shape, base.dequantize());
            else w.f16(name, shape, base.dequantize());
        });
        Files.createDirectories(dir);
        w.write(dir.resolve("model.safetensors"));
        Files.writeString(dir.resolve("config.json"), m.config().toJson());
    }
}
