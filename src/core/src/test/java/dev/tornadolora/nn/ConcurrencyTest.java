package dev.tornadolora.nn;

import dev.tornadolora.testing.TestDevices;
import dev.tornadolora.tensor.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * One layer shared by 8 threads at once gives each thread what it gets alone: forward in eval mode, and
 * forward/backward pairs in training mode (each thread's backward uses its own forward; gradients sum).
 */
class ConcurrencyTest {
    static final int THREADS = 8, ROUNDS = 6, IN = 256, OUT = 128;
    /** Token counts per call: one token, a few, and enough for the backends' blocked paths. */
    static final int[] TOKENS = {1, 3, 8, 9, 33};

    private static LoRALinear layer(String device, boolean nf4) {
        LoRALinear l = LoRALinear.builder(IN, OUT).rank(8).alpha(16).bias(true).quantizeBase(nf4).seed(11)
                .device(TestDevices.named(device)).build();
        l.load("lora_b.weight", LoRALinearTest.randn(12, OUT, 8));
        return l;
    }

    private static Tensor input(int thread, int round, int dim) {
        return LoRALinearTest.randn(1000L * thread + round, TOKENS[(thread + round) % TOKENS.length], dim);
    }

    private static Tensor gradOutput(int thread, int round) {
        return LoRALinearTest.randn(7000L * thread + round, TOKENS[(thread + round) % TOKENS.length], OUT);
    }

    /** Runs body(thread) on THREADS threads released together, and returns their results in thread order. */
    private static <T> List<T> together(java.util.function.IntFunction<T> body) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(THREADS);
        try {
            CyclicBarrier start = new CyclicBarrier(THREADS);
            List<Future<T>> futures = new ArrayList<>();
            for (int t = 0; t < THREADS; t++) {
                int thread = t;
                futures.add(pool.submit((Callable<T>) () -> {
                    start.await();
                    return body.apply(thread);
                }));
            }
            List<T> results = new ArrayList<>();
            for (Future<T> f : futures) results.add(f.get(120, TimeUnit.SECONDS));
            return results;
        } finally {
            pool.shutdownNow();
        }
    }

    @ParameterizedTest(name = "{0}, nf4 base: {1}")
    @CsvSource({"reference, false", "jvm, false", "jvm, true"})
    void evalForwardFromManyThreadsMatchesSequential(String device, boolean nf4) throws Exception {
        LoRALinear shared = layer(device, nf4).eval();
        LoRALinear alone = layer(device, nf4).eval();
        float[][][] expected = new float[THREADS][ROUNDS][];
        for (int t = 0; t < THREADS; t++) {
            for (int r = 0; r < ROUNDS; r++) expected[t][r] = alone.forward(input(t, r, IN)).data();
        }
        List<float[][]> got = together(t -> {
            float[][] ys = new float[ROUNDS][];
            for (int r = 0; r < ROUNDS; r++) ys[r] = shared.forward(input(t, r, IN)).data();
            return ys;
        });
        for (int t = 0; t < THREADS; t++) {
            for (int r = 0; r < ROUNDS; r++) {
                assertArrayEquals(expected[t][r], got.get(t)[r], "thread " + t + ", round " + r);
            }
        }
    }

    @ParameterizedTest(name = "{0}, nf4 base: {1}")
    @CsvSource({"reference, false", "jvm, false", "jvm, true"})
    void trainingFromManyThreadsGivesEachItsOwnDxAndTheSumOfGradients(String device, boolean nf4) throws Exception {
        LoRALinear shared = layer(device, nf4).train(true);
        LoRALinear alone = layer(device, nf4).train(true);
        float[][][] expectedDx = new float[THREADS][ROUNDS][];
        double[] sumA = new double[8 * IN], sumB = new double[OUT * 8];
        for (int t = 0; t < THREADS; t++) {
            for (int r = 0; r < ROUNDS; r++) {
                alone.zeroGrad();
                alone.forward(input(t, r, IN));
                expectedDx[t][r] = alone.backward(gradOutput(t, r)).data();
                accumulate(sumA, alone.adapterGradients().get("lora_a.weight").data());
                accumulate(sumB, alone.adapterGradients().get("lora_b.weight").data());
            }
        }
        List<float[][]> got = together(t -> {
            float[][] dxs = new float[ROUNDS][];
            for (int r = 0; r < ROUNDS; r++) {
                shared.forward(input(t, r, IN));
                Thread.yield();  // let other threads' forwards come between this forward and its backward
                dxs[r] = shared.backward(gradOutput(t, r)).data();
            }
            return dxs;
        });
        for (int t = 0; t < THREADS; t++) {
            for (int r = 0; r < ROUNDS; r++) {
                assertArrayEquals(expectedDx[t][r], got.get(t)[r], "dx of thread " + t + ", round " + r);
            }
        }
        assertClose(sumA, shared.adapterGradients().get("lora_a.weight").data());
        assertClose(sumB, shared.adapterGradients().get("lora_b.weight").data());
    }

    @org.junit.jupiter.api.Test
    void backwardOnAThreadThatRanNoForwardIsRefused() throws Exception {
        LoRALinear l = layer("reference", false);
        l.forward(LoRALinearTest.randn(1, 2, IN));
        ExecutorService other = Executors.newSingleThreadExecutor();
        try {
            var e = assertThrows(java.util.concurrent.ExecutionException.class,
                    () -> other.submit(() -> l.backward(LoRALinearTest.randn(2, 2, OUT))).get());
            assertEquals(IllegalStateException.class, e.getCause().getClass());
            assertEquals("backward called before forward on this thread (a layer keeps each thread's last forward"
                    + " for that thread's backward)", e.getCause().getMessage());
        } finally {
            other.shutdownNow();
        }
        assertEquals(2, l.backward(LoRALinearTest.randn(2, 2, OUT)).dim(0), "the forwarding thread's backward works");
    }

    private static void accumulate(double[] sum, float[] g) {
        for (int i = 0; i < g.length; i++) sum[i] += g[i];
    }

    /** Sums in another order: equal to a few ulps of the largest gradient. */
    private static void assertClose(double[] expected, float[] actual) {
        double max = 0;
        for (double v : expected) max = Math.max(max, Math.abs(v));
        for (int i = 0; i < expected.length; i++) {
            assertTrue(Math.abs(expected[i] - actual[i]) <= 1e-5 * max, "element " + i + ": " + expected[i] + " vs " + actual[i]);
        }
    }
}
