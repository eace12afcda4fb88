package dev.tornadolora.tensor;

import dev.tornadolora.testing.TestDevices;
import dev.tornadolora.io.LoraCheckpoint;
import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.kernels.LoraBackend;
import dev.tornadolora.kernels.ScalarLoraKernels;
import dev.tornadolora.nn.LoRALinear;
import dev.tornadolora.tensor.Tensor;
import dev.tornadolora.testing.Golden;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * QLoRA forward and backward against PyTorch autograd on the dequantized weight (scripts/golden.py, qlora_*),
 * through a checkpoint whose base is an NF4 record, on the reference kernels and the default JVM backend.
 */
class QLoraGoldenTest {

    static final double RTOL = 1e-4;

    static List<Arguments> cases() {
        List<Arguments> cases = new ArrayList<>();
        for (String file : Golden.files("qlora_").stream().map(p -> p.getFileName().toString()).toList()) {
            cases.add(Arguments.of(file, ScalarLoraKernels.INSTANCE));
            cases.add(Arguments.of(file, TestDevices.jvm().backend()));
        }
        return cases;
    }

    @ParameterizedTest(name = "{0} on {1}")
    @MethodSource("cases")
    void forwardAndBackwardMatchPyTorch(String file, LoraBackend kernels) {
        SafeTensors f = Golden.open(file);
        LoRALinear layer = LoraCheckpoint.read(f).backend(kernels);

        assertTrue(layer.quantizeBase());
        Nf4Tensor base = assertInstanceOf(Nf4Tensor.class, layer.base());
        assertEquals(Map.of("block_size", Integer.parseInt(f.requireMetadata("block_size")),
                "scaler_block_size", Integer.parseInt(f.requireMetadata("scaler_block_size"))), layer.quantizationKwargs());
        assertArrayEquals(f.bytes("weight.quantized_data", dev.tornadolora.io.DType.U8), base.packedCodes());

        Tensor x = f.f32("x");
        float[] dropMultiplier = null;
        if (f.contains("mask")) {
            float p = Float.parseFloat(f.requireMetadata("dropout"));
            float[] mask = f.f32("mask").data();
            dropMultiplier = new float[mask.length];
            for (int i = 0; i < mask.length; i++) dropMultiplier[i] = mask[i] / (1f - p);
        }
        Tensor y = layer.forward(x, dropMultiplier);
        Tensor dx = layer.backward(f.f32("dy"));
        Map<String, Tensor> grads = layer.adapterGradients();

        Golden.assertClose(f.f32("y").data(), y.data(), RTOL, file + " y");
        Golden.assertClose(f.f32("dx").data(), dx.data(), RTOL, file + " dx");
        Golden.assertClose(f.f32("lora_a.weight.grad").data(), grads.get("lora_a.weight").data(), RTOL, file + " dA");
        Golden.assertClose(f.f32("lora_b.weight.grad").data(), grads.get("lora_b.weight").data(), RTOL, file + " dB");
        assertArrayEquals(f.f32("y").shape(), y.shape());
        assertArrayEquals(x.shape(), dx.shape());
    }
}
