package dev.tornadolora.nn;

import dev.tornadolora.testing.TestDevices;
import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.tensor.Tensor;
import dev.tornadolora.testing.Golden;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Path;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** LoRALinear against PyTorch autograd (scripts/golden.py), on every backend of this build. */
class LoRALinearGoldenTest {
    static final double TOL = 1e-5;

    static Stream<Arguments> cases() {
        return Golden.files("lora_").stream()
                .flatMap(f -> Stream.of("reference", "jvm").map(d -> Arguments.of(f.getFileName().toString(), d)));
    }

    @ParameterizedTest(name = "{0} on {1}")
    @MethodSource("cases")
    void matchesPyTorch(String fixture, String device) {
        SafeTensors g = Golden.open(fixture);
        Map<String, String> meta = g.metadata();
        Tensor a = g.f32("lora_a.weight"), b = g.f32("lora_b.weight"), w = g.f32("weight");
        int rank = a.dim(0), in = a.dim(1), out = b.dim(0);
        float p = Float.parseFloat(meta.get("dropout"));
        LoRALinear layer = LoRALinear.builder(in, out).rank(rank).alpha(Float.parseFloat(meta.get("alpha")))
                .dropout(p).bias(g.contains("bias")).device(TestDevices.named(device)).build();
        assertEquals(device, layer.backend().name());
        layer.load("weight", w);
        if (g.contains("bias")) layer.load("bias", g.f32("bias"));
        layer.load("lora_a.weight", a);
        layer.load("lora_b.weight", b);

        Tensor x = g.f32("x");
        float[] multiplier = null;
        if (g.contains("mask")) {
            multiplier = g.f32("mask").data().clone();
            for (int i = 0; i < multiplier.length; i++) multiplier[i] /= (1 - p);
        }
        Tensor y = layer.forward(x, multiplier);
        Golden.assertClose(g.f32("y").data(), y.data(), TOL, fixture + " y");
        assertEquals(java.util.Arrays.toString(g.entry("y").shape()), java.util.Arrays.toString(y.shape()));

        Tensor dx = layer.backward(g.f32("dy"));
        Golden.assertClose(g.f32("dx").data(), dx.data(), TOL, fixture + " dx");
        Map<String, Tensor> grads = layer.adapterGradients();
        Golden.assertClose(g.f32("lora_a.weight.grad").data(), grads.get("lora_a.weight").data(), TOL, fixture + " dA");
        Golden.assertClose(g.f32("lora_b.weight.grad").data(), grads.get("lora_b.weight").data(), TOL, fixture + " dB");
    }

    static Path fixture(String name) {
        return Golden.dir().resolve(name);
    }
}
