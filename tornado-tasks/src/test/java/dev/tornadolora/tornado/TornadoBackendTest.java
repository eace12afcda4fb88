package dev.tornadolora.tornado;

import dev.tornadolora.kernels.ScalarLoraKernels;
import dev.tornadolora.nn.LoRALinear;
import dev.tornadolora.tensor.Tensor;
import dev.tornadolora.tornado.plan.Nf4Variant;
import dev.tornadolora.tornado.plan.Schedule;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every task graph on the SDK's default device (PoCL here), with bailouts disabled, against the scalar reference:
 * forward and backward, fp32 and NF4 bases, both schedules and both NF4 variants, on sizes that are multiples of
 * no local work size.
 */
class TornadoBackendTest {
    static final double TOL = 1e-4;
    static TornadoKernelsProvider provider;

    @BeforeAll
    static void device() {
        provider = new TornadoKernelsProvider();
        assertTrue(provider.available(), provider.unavailableReason());
        System.out.println("TornadoVM devices: " + provider.deviceNames());
    }

    record Case(String name, int in, int out, int rank, int tokens, boolean bias, float dropout, boolean nf4,
                Schedule schedule, Nf4Variant variant) {
        @Override
        public String toString() {
            return name;
        }
    }

    static Stream<Arguments> cases() {
        List<Case> c = new ArrayList<>();
        c.add(new Case("fp32 r1 t1 bias", 67, 45, 1, 1, true, 0f, false, Schedule.CPU_PANELS, null));
        c.add(new Case("fp32 r8 t5 dropout", 130, 97, 8, 5, false, 0.3f, false, Schedule.CPU_PANELS, null));
        c.add(new Case("fp32 r64 t512 bias dropout", 70, 33, 64, 512, true, 0.2f, false, Schedule.CPU_PANELS, null));
        c.add(new Case("fp32 r16 t37 tiled", 67, 45, 16, 37, true, 0.1f, false, Schedule.GPU_TILED, null));
        c.add(new Case("nf4 fused r4 t3 bias", 100, 37, 4, 3, true, 0f, true, Schedule.CPU_PANELS, Nf4Variant.FUSED));
        c.add(new Case("nf4 dequantize-task r16 t512 dropout", 100, 37, 16, 512, false, 0.25f, true, Schedule.CPU_PANELS, Nf4Variant.DEQUANTIZE_TASK));
        c.add(new Case("nf4 tiled r2 t9", 100, 37, 2, 9, true, 0.1f, true, Schedule.GPU_TILED, Nf4Variant.FUSED));
        c.add(new Case("nf4 tiled dequantize-task r32 t20", 100, 37, 32, 20, false, 0f, true, Schedule.GPU_TILED, Nf4Variant.DEQUANTIZE_TASK));
        c.add(new Case("fp32 r3 t512 no bias", 131, 70, 3, 512, false, 0f, false, Schedule.CPU_PANELS, null));
        return c.stream().map(Arguments::of);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void matchesTheReference(Case c) {
        TornadoLoraBackend device = new TornadoLoraBackend("tornado-test", provider.resolve("tornado:0:0"),
                new TornadoOptions(c.schedule, c.variant == null ? Nf4Variant.FUSED : c.variant, 16, 16));
        try (LoRALinear onDevice = layer(c).backend(device);
             LoRALinear reference = layer(c).backend(ScalarLoraKernels.INSTANCE)) {
            run(c, onDevice, reference);
        }
    }

    private static void run(Case c, LoRALinear onDevice, LoRALinear reference) {
        Tensor x = random(c.tokens * c.in, 1, c.tokens, c.in);
        Tensor dy = random(c.tokens * c.out, 2, c.tokens, c.out);
        for (int step = 0; step < 2; step++) { // the second call runs the plan again with new inputs
            Tensor yd = onDevice.forward(x);
            Tensor yr = reference.forward(x, onDevice.lastDropoutMultiplier());
            assertClose(yr.data(), yd.data(), c + " y");
            Tensor dxd = onDevice.backward(dy);
            Tensor dxr = reference.backward(dy);
            assertClose(dxr.data(), dxd.data(), c + " dx");
            assertClose(reference.adapterGradients().get("lora_a.weight").data(),
                    onDevice.adapterGradients().get("lora_a.weight").data(), c + " dA");
            assertClose(reference.adapterGradients().get("lora_b.weight").data(),
                    onDevice.adapterGradients().get("lora_b.weight").data(), c + " dB");
            x = random(c.tokens * c.in, 3 + step, c.tokens, c.in);
        }
    }

    static LoRALinear layer(Case c) {
        LoRALinear.Builder b = LoRALinear.builder(c.in, c.out).rank(c.rank).alpha(2.5f * c.rank).bias(c.bias)
                .dropout(c.dropout).seed(17).quantizeBase(c.nf4);
        if (c.nf4) {
            b.quantizationKwarg("block_size", 4).quantizationKwarg("scaler_block_size", 25);
        }
        LoRALinear l = b.build();
        l.load("lora_b.weight", random(c.out * c.rank, 5, c.out, c.rank)); // B = 0 would hide the LoRA path
        return l;
    }

    static Tensor random(int n, long seed, int... shape) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) (r.nextDouble() * 2 - 1);
        return Tensor.of(v, shape);
    }

    static void assertClose(float[] expected, float[] actual, String what) {
        double maxDiff = 0, maxRef = 0;
        for (int i = 0; i < expected.length; i++) {
            maxDiff = Math.max(maxDiff, Math.abs((double) expected[i] - actual[i]));
            maxRef = Math.max(maxRef, Math.abs(expected[i]));
        }
        double rel = maxDiff / Math.max(maxRef, 1e-30);
        assertTrue(rel <= TOL && !Double.isNaN(rel), what + ": relative error " + rel);
    }
}
