package dev.tornadolora.io;

import dev.tornadolora.tensor.Nf4Tensor;
import dev.tornadolora.testing.Golden;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** get_merged_lora_ckpt parity with PyTorch (scripts/golden_train.py merge_* fixtures). */
class LoraMergeTest {
    @TempDir
    Path dir;

    private SafeTensors merge(String in, boolean requantize, boolean safe, List<String> warnings) throws IOException {
        LoraMerge.Result r = LoraMerge.merge(Golden.open("train/" + in + ".safetensors"), null,
                new LoraMerge.Options(requantize, safe), warnings::add);
        Path out = dir.resolve("merged.safetensors");
        r.writer().write(out);
        return SafeTensors.open(out);
    }

    @Test
    void denseMergeMatchesTorch() throws IOException {
        List<String> warnings = new ArrayList<>();
        SafeTensors merged = merge("merge_dense_in", false, true, warnings);
        SafeTensors expected = Golden.open("train/merge_dense_out.safetensors");
        assertEquals(expected.names(), merged.names(), "adapter keys removed, everything else kept");
        for (String k : expected.names()) {
            Golden.assertClose(expected.f32(k).data(), merged.f32(k).data(), 1e-6, k);
        }
        SafeTensors in = Golden.open("train/merge_dense_in.safetensors");
        assertArrayEquals(in.f32("norm.scale").data(), merged.f32("norm.scale").data(), "untouched tensor copied");
        assertArrayEquals(in.f32("fc1.bias").data(), merged.f32("fc1.bias").data());
        assertTrue(warnings.isEmpty());
        assertEquals(null, merged.metadata().get("alpha"), "alpha no longer applies");
    }

    @Test
    void nf4BaseIsDequantizedThenMerged() throws IOException {
        SafeTensors merged = merge("merge_nf4_in", false, false, new ArrayList<>());
        SafeTensors expected = Golden.open("train/merge_nf4_out.safetensors");
        assertEquals(Set.of("fc1.weight", "fc1.bias", "fc2.weight", "norm.scale"), merged.names());
        for (String k : merged.names()) {
            Golden.assertClose(expected.f32(k).data(), merged.f32(k).data(), 1e-6, k);
        }
    }

    @Test
    void requantizeWritesTheReferenceRecordAndWarns() throws IOException {
        List<String> warnings = new ArrayList<>();
        SafeTensors merged = merge("merge_nf4_in", true, false, warnings);
        assertEquals(List.of(LoraMerge.REQUANTIZE_WARNING), warnings);
        SafeTensors expected = Golden.open("train/merge_nf4_out.safetensors");
        assertArrayEquals(expected.bytes("fc1.requantized.quantized_data", DType.U8),
                merged.bytes("fc1.weight.quantized_data", DType.U8), "codes");
        assertArrayEquals(expected.bytes("fc1.requantized.quantized_scalers", DType.I8),
                merged.bytes("fc1.weight.quantized_scalers", DType.I8), "scalers");
        Golden.assertClose(expected.f32("fc1.requantized.quantization_factor").data(),
                merged.f32("fc1.weight.quantization_factor").data(), 1e-6, "factors");
        Nf4Tensor q = Nf4Record.read(merged, "fc1.weight", 32, 64);
        // re-quantization moves the merged weight by at most half an NF4 step of its block's scale
        double maxErr = 0;
        float[] exact = expected.f32("fc1.weight").data(), back = q.dequantize();
        for (int i = 0; i < exact.length; i++) maxErr = Math.max(maxErr, Math.abs(exact[i] - back[i]));
        assertTrue(maxErr > 0 && maxErr < 0.05, "requantization error " + maxErr);
    }

    @Test
    void safeMergeRefusesNonFiniteWeights() throws IOException {
        SafeTensors in = Golden.open("train/merge_dense_in.safetensors");
        SafeTensorsWriter w = new SafeTensorsWriter().metadata(in.metadata());
        for (String k : in.names()) {
            float[] v = in.f32(k).data().clone();
            if (k.equals("fc2.lora_b.weight")) v[5] = Float.POSITIVE_INFINITY;  // row 1, rank index 1
            w.f32(k, in.entry(k).shape(), v);
        }
        Path bad = dir.resolve("bad.safetensors");
        w.write(bad);
        var e = assertThrows(IllegalArgumentException.class,
                () -> LoraMerge.merge(SafeTensors.open(bad), null, new LoraMerge.Options(false, true), s -> {}));
        assertTrue(e.getMessage().startsWith("merged weight 'fc2.weight' has "), e.getMessage());
        assertTrue(e.getMessage().contains("at [1, ") && e.getMessage().endsWith("nothing was written (safe merge)"), e.getMessage());
        // without safe the merge goes through (as torchtune's, which does not check)
        LoraMerge.merge(SafeTensors.open(bad), null, new LoraMerge.Options(false, false), s -> {});
    }

    @Test
    void singleLayerCheckpointOfTheEvalContractMerges() throws IOException {
        SafeTensors in = Golden.open("lora_r4_bias.safetensors");
        LoraMerge.Result r = LoraMerge.merge(in, null, new LoraMerge.Options(false, true), s -> {});
        assertEquals(List.of(""), r.mergedModules());
        float[] w = in.f32("weight").data().clone();
        int out = in.entry("weight").shape()[0], inDim = in.entry("weight").shape()[1];
        int rank = in.entry("lora_a.weight").shape()[0];
        float alpha = Float.parseFloat(in.metadata().get("alpha"));
        float[] a = in.f32("lora_a.weight").data(), b = in.f32("lora_b.weight").data();
        for (int o = 0; o < out; o++) {
            for (int i = 0; i < inDim; i++) {
                double s = 0;
                for (int k = 0; k < rank; k++) s += (double) b[o * rank + k] * a[k * inDim + i];
                w[o * inDim + i] += (float) (alpha / rank * s);
            }
        }
        Path file = dir.resolve("m.safetensors");
        r.writer().write(file);
        Golden.assertClose(w, SafeTensors.open(file).f32("weight").data(), 1e-6, "weight");
    }

    @Test
    void missingPiecesAreNamed() throws IOException {
        SafeTensors in = Golden.open("train/merge_dense_in.safetensors");
        Path noAlpha = dir.resolve("a.safetensors");
        SafeTensorsWriter w = new SafeTensorsWriter();
        for (String k : in.names()) if (!k.equals("fc2.weight")) w.copy(in, k);
        w.write(noAlpha);
        var e = assertThrows(IllegalArgumentException.class,
                () -> LoraMerge.merge(SafeTensors.open(noAlpha), null, new LoraMerge.Options(false, false), s -> {}));
        assertEquals("missing metadata 'alpha' (or 'fc1.alpha') for module 'fc1' in " + noAlpha, e.getMessage());
        Path noBase = dir.resolve("b.safetensors");
        w.metadata("alpha", "2").write(noBase);
        e = assertThrows(IllegalArgumentException.class,
                () -> LoraMerge.merge(SafeTensors.open(noBase), null, new LoraMerge.Options(false, false), s -> {}));
        assertEquals("module 'fc2' has adapters but no base weight 'fc2.weight' (F32) or NF4 record"
                + " 'fc2.weight.quantized_data' in " + noBase, e.getMessage());
        Path noAdapters = dir.resolve("c.safetensors");
        new SafeTensorsWriter().copy(in, "fc1.weight").write(noAdapters);
        e = assertThrows(IllegalArgumentException.class,
                () -> LoraMerge.merge(SafeTensors.open(noAdapters), null, new LoraMerge.Options(false, false), s -> {}));
        assertTrue(e.getMessage().startsWith("no LoRA adapters"), e.getMessage());
    }
}
