package dev.tornadolora.kernels.jvm;

import dev.tornadolora.kernels.Parallel;
import dev.tornadolora.math.Nf4;
import dev.tornadolora.testing.Golden;
import dev.tornadolora.testing.TestDevices;
import dev.tornadolora.kernels.Adapters;
import dev.tornadolora.kernels.LayerKernels;
import dev.tornadolora.kernels.LoraBackend;
import dev.tornadolora.kernels.ScalarLoraKernels;
import dev.tornadolora.tensor.Nf4Tensor;
import dev.tornadolora.tensor.BaseWeight;
import dev.tornadolora.tensor.DenseWeight;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The fast JVM backend against the scalar reference, over shapes that do not fit its vectors and tiles. */
class JvmLoraKernelsTest {
    static final double TOLERANCE = 1e-5;
    private static final LoraBackend VECTOR = new VectorLoraBackend(new Parallel(2), true);
    private static final LoraBackend UNPACKED = new VectorLoraBackend(new Parallel(2), false);
    private static final LoraBackend SCALAR = new ScalarThreadsBackend(new Parallel(3));

    @Test
    void theJvmBackendUsesTheVectorApiWhenReadable() {  // surefire runs with --add-modules jdk.incubator.vector
        assertTrue(JvmBackends.vectorApiReadable());
        assertEquals(VectorLoraBackend.class, JvmBackends.create(TestDevices.jvm().executor(), true).getClass());
    }

    enum Base { FP32, NF4 }

    /** A case: the base kind and sizes, and which optional parts are on. */
    record Case(Base base, int in, int out, int rank, int tokens, boolean bias, boolean dropout, boolean adapters,
                boolean dx, int blockSize) {
        @Override
        public String toString() {
            return base + " in=" + in + " out=" + out + " r=" + rank + " T=" + tokens + (bias ? " bias" : "")
                    + (dropout ? " dropout" : "") + (adapters ? "" : " disabled") + (dx ? "" : " no-dx")
                    + (base == Base.NF4 ? " block=" + blockSize : "");
        }
    }

    static Stream<Case> cases() {
        return Stream.of(
                // odd sizes: no multiple of the vector length, the 6-row tile or the panel
                new Case(Base.FP32, 37, 53, 3, 1, false, false, true, true, 0),
                new Case(Base.FP32, 37, 53, 3, 7, true, true, true, true, 0),
                new Case(Base.FP32, 37, 53, 3, 8, true, false, true, true, 0),
                new Case(Base.FP32, 37, 53, 3, 9, true, true, true, true, 0),
                new Case(Base.FP32, 101, 67, 1, 13, false, true, true, true, 0),
                new Case(Base.FP32, 129, 250, 64, 31, true, false, true, true, 0),
                new Case(Base.FP32, 300, 70, 16, 600, true, true, true, true, 0),
                new Case(Base.FP32, 70, 300, 5, 600, false, false, true, false, 0),
                new Case(Base.FP32, 1, 1, 1, 11, true, true, true, true, 0),
                new Case(Base.FP32, 65, 17, 2, 2, false, false, false, true, 0),
                new Case(Base.FP32, 65, 17, 2, 20, true, true, false, true, 0),
                new Case(Base.FP32, 65, 17, 2, 20, true, true, true, false, 0),
                new Case(Base.FP32, 512, 520, 8, 1100, true, true, true, true, 0),
                // ranks one and two vectors wide (NarrowGemm), with and without dropout, ragged rows
                new Case(Base.FP32, 70, 90, 20, 40, true, true, true, true, 0),
                new Case(Base.FP32, 48, 37, 32, 25, false, false, true, true, 0),
                new Case(Base.FP32, 96, 64, 16, 60, false, false, true, true, 0),
                new Case(Base.FP32, 33, 130, 12, 17, false, true, true, true, 0),
                // NF4, vectorized layout (rows and blocks are whole 2L-element units)
                new Case(Base.NF4, 256, 96, 16, 1, false, false, true, true, 64),
                new Case(Base.NF4, 256, 96, 16, 5, true, true, true, true, 64),
                new Case(Base.NF4, 256, 96, 16, 77, true, true, true, true, 64),
                new Case(Base.NF4, 512, 130, 64, 9, false, false, true, true, 64),
                new Case(Base.NF4, 192, 70, 4, 1, true, false, true, true, 128),
                new Case(Base.NF4, 1024, 128, 8, 3, true, false, true, true, 32),
                new Case(Base.NF4, 64, 40, 1, 1, false, false, false, true, 64),
                new Case(Base.NF4, 320, 64, 7, 130, false, true, false, false, 64),
                new Case(Base.NF4, 256, 96, 24, 50, true, true, true, true, 64),
                // NF4, layouts the vector decoder refuses: blocks across rows, odd widths
                new Case(Base.NF4, 96, 50, 3, 1, true, false, true, true, 64),
                new Case(Base.NF4, 10, 6, 2, 4, true, true, true, true, 4),
                new Case(Base.NF4, 33, 20, 5, 25, false, true, true, true, 2),
                new Case(Base.NF4, 48, 31, 9, 40, true, false, true, true, 16));
    }

    static Stream<Arguments> backendCases() {
        return Stream.of(VECTOR, UNPACKED, SCALAR).flatMap(b -> cases().map(c -> Arguments.of(b, c)));
    }

    @ParameterizedTest
    @MethodSource("backendCases")
    void matchesReference(LoraBackend backend, Case c) {
        SplittableRandom rnd = new SplittableRandom(c.hashCode());
        int in = c.in(), out = c.out(), r = c.rank(), t = c.tokens();
        float[] w = uniform(rnd, in * out, 1f / (float) Math.sqrt(in));
        BaseWeight base = c.base() == Base.FP32 ? new DenseWeight(out, in, w)
                : Nf4Tensor.quantize(w, out, in, c.blockSize(), 1);
        float[] bias = c.bias() ? uniform(rnd, out, 0.5f) : null;
        Adapters ad = c.adapters() ? new Adapters(uniform(rnd, r * in, 0.3f), uniform(rnd, out * r, 0.3f)) : null;
        float[] x = uniform(rnd, t * in, 1f);
        float[] m = c.dropout() ? dropMultiplier(rnd, t * in, 0.3f) : null;
        float[] dy = uniform(rnd, t * out, 1f);
        // The reference sees the NF4 weight dequantized element by element, by the format's definition.
        try (LayerKernels ref = ScalarLoraKernels.INSTANCE.bind(dequantized(base), bias, r, 2f / r);
             LayerKernels fast = backend.bind(base, bias, r, 2f / r)) {
            float[] yRef = new float[t * out], y = filled(t * out, Float.NaN);
            LayerKernels.Activations savedRef = ref.forward(x, m, t, ad, yRef);
            LayerKernels.Activations saved = fast.forward(x, m, t, ad, y);
            assertClose("y", yRef, y);

            float[] dxRef = c.dx() ? new float[t * in] : null, dx = c.dx() ? filled(t * in, Float.NaN) : null;
            Adapters gRef = null, g = null;
            if (c.adapters()) {  // gradients accumulate onto what is there
                gRef = new Adapters(uniform(new SplittableRandom(1), r * in, 1f), uniform(new SplittableRandom(2), out * r, 1f));
                g = new Adapters(gRef.a().clone(), gRef.b().clone());
            }
            ref.backward(savedRef, dy, dxRef, ad, gRef);
            fast.backward(saved, dy, dx, ad, g);
            if (c.dx()) {
                assertClose("dx", dxRef, dx);
            }
            if (c.adapters()) {
                assertClose("lora_a.weight.grad", gRef.a(), g.a());
                assertClose("lora_b.weight.grad", gRef.b(), g.b());
            }
        }
    }

    @Test
    void threadCountDoesNotChangeResults() {
        SplittableRandom rnd = new SplittableRandom(7);
        int in = 160, out = 96, r = 4, t = 50;
        BaseWeight base = Nf4Tensor.quantize(uniform(rnd, in * out, 0.1f), out, in, 64, 4);
        Adapters ad = new Adapters(uniform(rnd, r * in, 0.3f), uniform(rnd, out * r, 0.3f));
        float[] x = uniform(rnd, t * in, 1f), dy = uniform(rnd, t * out, 1f);
        float[] y1 = new float[t * out], yN = new float[t * out], dx1 = new float[t * in], dxN = new float[t * in];
        Adapters g1 = new Adapters(new float[r * in], new float[out * r]);
        Adapters gN = new Adapters(new float[r * in], new float[out * r]);
        try (Parallel oneThread = new Parallel(1); Parallel threeThreads = new Parallel(3);
             LayerKernels one = new VectorLoraBackend(oneThread, true).bind(base, null, r, 0.5f);
             LayerKernels three = new VectorLoraBackend(threeThreads, true).bind(base, null, r, 0.5f)) {
            one.backward(one.forward(x, null, t, ad, y1), dy, dx1, ad, g1);
            three.backward(three.forward(x, null, t, ad, yN), dy, dxN, ad, gN);
        }
        assertArrayEquals(y1, yN);
        assertArrayEquals(dx1, dxN);
        assertArrayEquals(g1.a(), gN.a());
        assertArrayEquals(g1.b(), gN.b());
    }

    /**
     * The fused loss's premise (FusedLossTest): a chunk of rows run alone gives those rows' y and dx bit for bit as
     * the whole batch does, whatever rows share a micro-tile (chunks of 20 and 28 rows end in 4-row tiles), for
     * every base kind, panel by panel or panels filled in groups (one thread).
     */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.CsvSource({"FP32, 1", "FP32, 2", "NF4, 1", "NF4, 2", "BF16, 1", "BF16, 2"})
    void aChunkOfRowsGivesTheWholeBatchsRowsBitForBit(String kind, int threads) {
        SplittableRandom rnd = new SplittableRandom(13);
        int in = 192, out = 200, t = 60;
        float[] w = uniform(rnd, in * out, 0.1f);
        BaseWeight base = switch (kind) {
            case "FP32" -> new DenseWeight(out, in, w);
            case "NF4" -> Nf4Tensor.quantize(w, out, in, 64, 1);
            default -> {
                short[] bits = new short[w.length];
                for (int i = 0; i < w.length; i++) bits[i] = dev.tornadolora.tensor.BFloat16.fromFloat(w[i]);
                yield new dev.tornadolora.tensor.HalfWeight(out, in, bits, dev.tornadolora.tensor.HalfWeight.Format.BF16);
            }
        };
        float[] x = uniform(rnd, t * in, 1f), dy = uniform(rnd, t * out, 1f);
        float[] y = new float[t * out], dx = new float[t * in];
        try (Parallel par = new Parallel(threads);
             LayerKernels k = new VectorLoraBackend(par, true).bind(base, null, 1, 1f)) {
            k.backward(k.forward(x, null, t, null, y), dy, dx, null, null);
            for (int[] chunk : new int[][] {{0, 20}, {20, 48}, {48, 60}}) {
                int r0 = chunk[0], rows = chunk[1] - r0;
                float[] yc = new float[rows * out], dxc = new float[rows * in];
                k.backward(k.forward(java.util.Arrays.copyOfRange(x, r0 * in, (r0 + rows) * in), null, rows, null, yc),
                        java.util.Arrays.copyOfRange(dy, r0 * out, (r0 + rows) * out), dxc, null, null);
                assertArrayEquals(java.util.Arrays.copyOfRange(y, r0 * out, (r0 + rows) * out), yc, "y rows " + r0);
                assertArrayEquals(java.util.Arrays.copyOfRange(dx, r0 * in, (r0 + rows) * in), dxc, "dx rows " + r0);
            }
        }
    }

    @Test
    void oneArrayViewedAsTwoShapesIsPackedForEach() {  // each binding packs its own view of the array
        SplittableRandom rnd = new SplittableRandom(9);
        float[] w = uniform(rnd, 40 * 96, 0.2f);
        for (int[] shape : new int[][] {{40, 96}, {96, 40}, {40, 96}}) {
            int out = shape[0], in = shape[1], t = 30;
            DenseWeight base = new DenseWeight(out, in, w);
            Adapters ad = new Adapters(uniform(rnd, 2 * in, 0.3f), uniform(rnd, out * 2, 0.3f));
            float[] x = uniform(rnd, t * in, 1f), y = new float[t * out], yRef = new float[t * out];
            try (LayerKernels ref = ScalarLoraKernels.INSTANCE.bind(base, null, 2, 1f);
                 LayerKernels fast = VECTOR.bind(base, null, 2, 1f)) {
                ref.forward(x, null, t, ad, yRef);
                fast.forward(x, null, t, ad, y);
            }
            assertClose("y of " + out + "x" + in, yRef, y);
        }
    }

    @Test
    void adaptersChangedInPlaceBetweenCallsAreSeen() {  // nothing is cached from the adapters
        SplittableRandom rnd = new SplittableRandom(11);
        int in = 64, out = 48, r = 4, t = 20;
        DenseWeight base = new DenseWeight(out, in, uniform(rnd, in * out, 0.2f));
        Adapters ad = new Adapters(uniform(rnd, r * in, 0.3f), uniform(rnd, out * r, 0.3f));
        float[] x = uniform(rnd, t * in, 1f), y = new float[t * out], yRef = new float[t * out];
        try (LayerKernels fast = VECTOR.bind(base, null, r, 1f);
             LayerKernels ref = ScalarLoraKernels.INSTANCE.bind(base, null, r, 1f)) {
            fast.forward(x, null, t, ad, y);
            for (int i = 0; i < ad.b().length; i++) ad.b()[i] += 0.5f;  // an optimizer step, in place
            fast.forward(x, null, t, ad, y);
            ref.forward(x, null, t, ad, yRef);
        }
        assertClose("y after the step", yRef, y);
    }

    @Test
    void aClosedBindingRefusesCalls() {
        LayerKernels k = VECTOR.bind(new DenseWeight(2, 2, new float[4]), null, 1, 1f);
        k.close();
        assertThrows(IllegalStateException.class, () -> k.forward(new float[2], null, 1, null, new float[2]));
    }

    @Test
    void rejectsZeroThreads() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new Parallel(0));
        assertEquals("threads must be at least 1, got 0", e.getMessage());
    }

    /** NF4[code(e)] · scale[e / blockSize] for every element; a dense weight as it is. */
    static DenseWeight dequantized(BaseWeight w) {
        if (!(w instanceof Nf4Tensor q)) {
            return (DenseWeight) w;
        }
        float[] data = new float[q.numel()];
        for (int e = 0; e < data.length; e++) {
            data[e] = Nf4.element(q.packedCodes(), q.blockScales(), q.blockSize(), e);
        }
        return new DenseWeight(q.rows(), q.cols(), data);
    }

    static void assertClose(String what, float[] expected, float[] actual) {
        double rel = Golden.relativeErrorAgainstNonZero(expected, actual);
        assertTrue(rel <= TOLERANCE, what + ": max|a-b|/max|b| = " + rel + " > " + TOLERANCE);
    }

    static float[] uniform(SplittableRandom rnd, int n, float bound) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) rnd.nextDouble(-bound, bound);
        }
        return a;
    }

    static float[] dropMultiplier(SplittableRandom rnd, int n, float p) {
        float[] m = new float[n];
        for (int i = 0; i < n; i++) {
            m[i] = rnd.nextDouble() < p ? 0f : 1f / (1f - p);
        }
        return m;
    }

    static float[] filled(int n, float v) {
        float[] a = new float[n];
        java.util.Arrays.fill(a, v);
        return a;
    }
}
