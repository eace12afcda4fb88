package dev.tornadolora.kernels.jvm;

import dev.tornadolora.kernels.Parallel;
import dev.tornadolora.tensor.Nf4Tensor;
import dev.tornadolora.kernels.Adapters;
import dev.tornadolora.kernels.LayerKernels;
import dev.tornadolora.tensor.BaseWeight;
import dev.tornadolora.tensor.DenseWeight;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.management.ManagementFactory;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * No allocation proportional to the weight per call: once warm (the first call packs an fp32 weight once and
 * makes and sizes the backend's workspaces, which later calls take again; until C2 compiles the kernels, interpreted vector code allocates boxes), forward
 * + backward of a 2048 × 2048 layer allocates far less than the 16 MiB an fp32 copy of W would take, on all
 * threads together. A per-call copy of W would never get under the limit, however warm.
 */
class JvmAllocationTest {
    private static final com.sun.management.ThreadMXBean THREADS =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

    private static final long LIMIT = 1L << 20;

    @ParameterizedTest
    @ValueSource(strings = {"fp32", "nf4"})
    void perCallAllocationIsFarBelowTheWeight(String kind) {
        int n = 2048, r = 16;
        SplittableRandom rnd = new SplittableRandom(1);
        float[] w = JvmLoraKernelsTest.uniform(rnd, n * n, 0.02f);
        BaseWeight base = kind.equals("nf4") ? Nf4Tensor.quantize(w, n, n) : new DenseWeight(n, n, w);
        Adapters ad = new Adapters(JvmLoraKernelsTest.uniform(rnd, r * n, 0.01f), JvmLoraKernelsTest.uniform(rnd, n * r, 0.01f));
        // Its own executor, as a device owns one: only this layer's calls run on its threads.
        try (Parallel executor = new Parallel(Runtime.getRuntime().availableProcessors());
             LayerKernels kernels = new VectorLoraBackend(executor, true).bind(base, null, r, 2f)) {
            measure(kind, kernels, rnd, n, r, ad);
        }
    }

    private static void measure(String kind, LayerKernels kernels, SplittableRandom rnd, int n, int r, Adapters ad) {
        for (int tokens : new int[] {1, 24}) {
            float[] x = JvmLoraKernelsTest.uniform(rnd, tokens * n, 1f), dy = JvmLoraKernelsTest.uniform(rnd, tokens * n, 1f);
            float[] y = new float[tokens * n], dx = new float[tokens * n];
            Adapters grads = new Adapters(new float[r * n], new float[n * r]);
            Runnable step = () -> kernels.backward(kernels.forward(x, null, tokens, ad, y), dy, dx, ad, grads);
            long least = Long.MAX_VALUE;
            // Under load C2 compiles the vector kernels late: up to 400 calls to get warm (it stops at the first under the limit).
            for (int call = 0; call < 400 && least >= LIMIT; call++) {
                long before = allocatedByAllThreads();
                step.run();
                least = Math.min(least, allocatedByAllThreads() - before);
            }
            assertTrue(least < LIMIT, kind + ", " + tokens + " tokens: every call allocated at least " + least + " bytes");
        }
    }

    private static long allocatedByAllThreads() {
        long total = 0;
        for (long id : THREADS.getAllThreadIds()) {
            total += Math.max(0, THREADS.getThreadAllocatedBytes(id));
        }
        return total;
    }
}
