package dev.tornadolora.nn;

import dev.tornadolora.testing.Golden;
import dev.tornadolora.testing.TestDevices;
import dev.tornadolora.kernels.LayerKernels;
import dev.tornadolora.kernels.LoraBackend;
import dev.tornadolora.kernels.ScalarLoraKernels;
import dev.tornadolora.tensor.BaseWeight;
import dev.tornadolora.tensor.DenseWeight;
import dev.tornadolora.tensor.Nf4Tensor;
import dev.tornadolora.tensor.Tensor;
import dev.tornadolora.testing.DelegatingKernels;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** How layers hold their binding: made on the first forward, rebound when the frozen parts or the backend change, closed with the layer. */
class BindingTest {

    /** The reference, counting binds and closes. */
    static final class Counting implements LoraBackend {
        final List<BaseWeight> bound = new ArrayList<>();
        int closed;

        @Override
        public String name() {
            return "counting";
        }

        @Override
        public LayerKernels bind(BaseWeight base, float[] bias, int rank, float scale) {
            bound.add(base);
            return new DelegatingKernels(ScalarLoraKernels.INSTANCE.bind(base, bias, rank, scale)) {
                @Override
                public void close() {
                    closed++;
                    inner.close();
                }
            };
        }
    }

    static Tensor random(long seed, int... shape) {
        SplittableRandom r = new SplittableRandom(seed);
        int n = 1;
        for (int d : shape) n *= d;
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) r.nextDouble(-1, 1);
        return new Tensor(shape, v);
    }

    @Test
    void theLayerBindsOnceAndRebindsWhenItsFrozenPartsOrBackendChange() {
        Counting backend = new Counting();
        LoRALinear layer = LoRALinear.builder(16, 8).rank(2).bias(true).build().backend(backend);
        assertEquals(0, backend.bound.size(), "nothing is bound before the first forward");
        Tensor x = random(1, 3, 16);
        layer.forward(x);
        layer.backward(random(2, 3, 8));
        layer.forward(x);
        assertEquals(1, backend.bound.size(), "one binding serves every call");

        layer.load("lora_b.weight", random(3, 8, 2));  // adapters travel with each call: no rebind
        layer.forward(x);
        assertEquals(1, backend.bound.size());

        layer.load("weight", random(4, 8, 16));
        assertEquals(1, backend.closed, "replacing the base closes the binding");
        assertThrows(IllegalStateException.class, () -> layer.backward(random(2, 3, 8)),
                "a backward across a rebinding would mix two bases");
        layer.forward(x);
        assertEquals(2, backend.bound.size());

        layer.load("bias", random(5, 8));
        layer.setBase(Nf4Tensor.quantize(random(6, 8, 16).data(), 8, 16, 16, 2));
        layer.forward(x);
        assertEquals(3, backend.bound.size());
        assertTrue(backend.bound.get(2) instanceof Nf4Tensor);

        layer.backend(ScalarLoraKernels.INSTANCE);
        assertEquals(3, backend.closed, "moving to another backend closes the old binding");
        layer.close();
        assertEquals(3, backend.closed);
    }

    @Test
    void aDisabledLayerAndAFrozenLinearComputeTheBaseAlone() {
        int in = 40, out = 24, t = 5;
        Tensor w = random(7, out, in), b = random(8, out), x = random(9, t, in), dy = random(10, t, out);
        for (LoraBackend backend : List.of(TestDevices.jvm().backend(), ScalarLoraKernels.INSTANCE)) {
            try (FrozenLinear frozen = new FrozenLinear(new DenseWeight(out, in, w.data()), b.data()).backend(backend);
                 LoRALinear disabled = LoRALinear.builder(in, out).rank(4).bias(true).build().backend(backend)) {
                disabled.load("weight", w);
                disabled.load("bias", b);
                disabled.load("lora_b.weight", random(11, out, 4));
                disabled.setDisabled(true);
                Tensor y = frozen.forward(x), dx = frozen.backward(dy);
                float[] yRef = new float[t * out], dxRef = new float[t * in];
                for (int i = 0; i < t; i++) {
                    for (int j = 0; j < out; j++) {
                        double acc = b.data()[j];
                        for (int k = 0; k < in; k++) acc += (double) x.data()[i * in + k] * w.data()[j * in + k];
                        yRef[i * out + j] = (float) acc;
                    }
                    for (int k = 0; k < in; k++) {
                        double acc = 0;
                        for (int j = 0; j < out; j++) acc += (double) dy.data()[i * out + j] * w.data()[j * in + k];
                        dxRef[i * in + k] = (float) acc;
                    }
                }
                assertClose(yRef, y.data(), backend.name() + " frozen y");
                assertClose(dxRef, dx.data(), backend.name() + " frozen dx");
                assertClose(yRef, disabled.forward(x).data(), backend.name() + " disabled y");
                assertClose(dxRef, disabled.backward(dy).data(), backend.name() + " disabled dx");
                assertArrayEquals(new float[4 * in], disabled.adapterGradients().get("lora_a.weight").data());
            }
        }
    }

    static void assertClose(float[] expected, float[] actual, String what) {
        double err = Golden.relativeErrorAgainstNonZero(expected, actual);
        assertTrue(err <= 1e-5, what + ": " + err);
    }
}
