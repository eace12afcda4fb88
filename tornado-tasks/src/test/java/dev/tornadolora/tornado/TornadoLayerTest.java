package dev.tornadolora.tornado;

import dev.tornadolora.kernels.Adapters;
import dev.tornadolora.kernels.LayerKernels;
import dev.tornadolora.kernels.ScalarLoraKernels;
import dev.tornadolora.tensor.BaseWeight;
import dev.tornadolora.tensor.DenseWeight;
import dev.tornadolora.tensor.Nf4Tensor;
import dev.tornadolora.tornado.plan.Nf4Variant;
import dev.tornadolora.tornado.plan.TornadoLayer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * One bound layer through batches of 1, 7, 64 and 512 tokens: every result against the scalar reference, one
 * plan that grows (8, 64, 512 tokens of capacity) and, by TornadoVM's own count of the plan's device memory, the
 * base on the device once: the memory follows the capacity's activation buffers, never a second base.
 */
class TornadoLayerTest {
    static final int IN = 1024, OUT = 768, RANK = 8;
    static TornadoKernelsProvider provider;

    @BeforeAll
    static void device() {
        provider = new TornadoKernelsProvider();
        assertTrue(provider.available(), provider.unavailableReason());
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"fp32", "nf4"})
    void oneLayerServesEveryBatchSizeWithOneCopyOfTheBase(String kind) {
        float[] w = TornadoBackendTest.random(IN * OUT, 11, IN * OUT).data();
        for (int i = 0; i < w.length; i++) w[i] *= 0.05f;
        BaseWeight base = kind.equals("nf4") ? Nf4Tensor.quantize(w, OUT, IN) : new DenseWeight(OUT, IN, w);
        float[] bias = TornadoBackendTest.random(OUT, 12, OUT).data();
        Adapters ad = new Adapters(TornadoBackendTest.random(RANK * IN, 13, RANK * IN).data(),
                TornadoBackendTest.random(OUT * RANK, 14, OUT * RANK).data());
        // FUSED keeps only the NF4 record on the device (the dequantize task adds weight-sized scratch buffers)
        TornadoLoraBackend backend = new TornadoLoraBackend("tornado:0:0", provider.resolve("tornado:0:0"),
                new TornadoOptions(null, Nf4Variant.FUSED, 16, 16));
        Map<Integer, Long> allocated = new TreeMap<>();
        try (TornadoLayer layer = backend.bind(base, bias, RANK, 2f);
             LayerKernels ref = ScalarLoraKernels.INSTANCE.bind(base, bias, RANK, 2f)) {
            layer.setProfiling(true);
            for (int tokens : new int[] {1, 7, 64, 512}) {
                float[] x = TornadoBackendTest.random(tokens * IN, tokens, tokens * IN).data();
                float[] dy = TornadoBackendTest.random(tokens * OUT, tokens + 1, tokens * OUT).data();
                float[] mask = tokens == 7 ? dropout(tokens * IN) : null;
                float[] y = new float[tokens * OUT], yRef = new float[tokens * OUT];
                float[] dx = new float[tokens * IN], dxRef = new float[tokens * IN];
                Adapters g = new Adapters(new float[RANK * IN], new float[OUT * RANK]);
                Adapters gRef = new Adapters(new float[RANK * IN], new float[OUT * RANK]);
                layer.backward(layer.forward(x, mask, tokens, ad, y), dy, dx, ad, g);
                ref.backward(ref.forward(x, mask, tokens, ad, yRef), dy, dxRef, ad, gRef);
                String what = kind + " " + tokens + " tokens ";
                TornadoBackendTest.assertClose(yRef, y, what + "y");
                TornadoBackendTest.assertClose(dxRef, dx, what + "dx");
                TornadoBackendTest.assertClose(gRef.a(), g.a(), what + "dA");
                TornadoBackendTest.assertClose(gRef.b(), g.b(), what + "dB");

                int capacity = layer.capacity();
                long bytes = layer.deviceBytes();
                System.out.printf(Locale.ROOT, "%s %d tokens: capacity %d, device memory %.2f MiB (base %.2f MiB)%n",
                        kind, tokens, capacity, bytes / 1048576.0, layer.baseBytes() / 1048576.0);
                assertEquals(tokens <= 8 ? 8 : tokens, capacity, "capacity after " + tokens + " tokens");
                allocated.put(capacity, bytes);
            }
        }
        // By TornadoVM's count, the plan of capacity C allocates fixed + C·perToken bytes: the same fixed part
        // (one base, the adapters) whatever the capacity, so no plan holds a second base, and that part is one
        // base plus adapter-sized arrays.
        long a8 = allocated.get(8), a64 = allocated.get(64), a512 = allocated.get(512);
        double perToken = (a512 - a64) / 448.0;
        assertEquals(perToken, (a64 - a8) / 56.0, 1.0, kind + ": device memory grows linearly with the capacity");
        long fixed = Math.round(a8 - 8 * perToken), baseBytes = baseBytes(base);
        long adapterArrays = 10L * Math.max(RANK, 16) * (IN + OUT) * Float.BYTES;  // A, B, their gradients and panels
        assertTrue(fixed >= baseBytes && fixed <= baseBytes + adapterArrays, kind + ": " + fixed
                + " bytes besides the activations, expected one base of " + baseBytes + " plus at most "
                + adapterArrays + " bytes of adapter arrays");
        System.out.printf(Locale.ROOT, "%s: %d bytes fixed (base %d), %.0f bytes per token of capacity%n", kind, fixed,
                baseBytes, perToken);
    }

    /** One device copy of the base: NF4 codes and block scales, or fp32 W (on the CPU schedule as the panels of Wᵀ, which both passes read). */
    static long baseBytes(BaseWeight base) {
        return switch (base) {
            case Nf4Tensor q -> q.packedCodes().length + 4L * q.blockScales().length;
            case DenseWeight d -> 4L * d.data().length;
            case dev.tornadolora.tensor.HalfWeight h -> 4L * h.bits().length;  // widened on the device
        };
    }

    static float[] dropout(int n) {
        float[] m = TornadoBackendTest.random(n, 99, n).data();
        for (int i = 0; i < n; i++) m[i] = m[i] < -0.4f ? 0f : 1f / 0.7f;
        return m;
    }
}
