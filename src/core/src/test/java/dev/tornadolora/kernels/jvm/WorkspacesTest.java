package dev.tornadolora.kernels.jvm;

import dev.tornadolora.kernels.Adapters;
import dev.tornadolora.kernels.LayerKernels;
import dev.tornadolora.kernels.Parallel;
import dev.tornadolora.tensor.BaseWeight;
import dev.tornadolora.tensor.DenseWeight;
import dev.tornadolora.tensor.Nf4Tensor;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * The backend's scratch ({@link Workspaces}) is per worker and per GEMM in flight: two callers running layers on one
 * backend at once (an NF4 layer decoded panel by panel and an fp32 one, many tokens and few) get exactly what each
 * gets alone. A scratch shared between them (one packed operand, one panel per thread) would mix their operands.
 */
class WorkspacesTest {

    @Test
    void concurrentCallersOnOneBackendGetTheirOwnResults() throws Exception {
        SplittableRandom rnd = new SplittableRandom(7);
        int in = 320, out = 256, r = 8;  // NF4: numel a multiple of 64 · 256
        float[] w = JvmLoraKernelsTest.uniform(rnd, out * in, 0.05f);
        BaseWeight nf4 = Nf4Tensor.quantize(w, out, in), dense = new DenseWeight(out, in, w);
        Adapters ad = new Adapters(JvmLoraKernelsTest.uniform(rnd, r * in, 0.1f), JvmLoraKernelsTest.uniform(rnd, out * r, 0.1f));
        try (Parallel executor = new Parallel(2)) {
            VectorLoraBackend backend = new VectorLoraBackend(executor, true);
            try (LayerKernels a = backend.bind(nf4, null, r, 2f); LayerKernels b = backend.bind(dense, null, r, 2f)) {
                Call[] calls = {
                    new Call(a, rnd, 200, in, out, ad), new Call(b, rnd, 200, in, out, ad),
                    new Call(a, rnd, 3, in, out, ad), new Call(b, rnd, 37, in, out, ad),
                };
                float[][] alone = new float[calls.length][];
                for (int i = 0; i < calls.length; i++) {
                    alone[i] = calls[i].run();
                }
                ExecutorService callers = Executors.newFixedThreadPool(calls.length);
                try {
                    for (int round = 0; round < 5; round++) {
                        Future<?>[] f = new Future<?>[calls.length];
                        for (int i = 0; i < calls.length; i++) {
                            Call c = calls[i];
                            f[i] = callers.submit(c::run);
                        }
                        for (int i = 0; i < calls.length; i++) {
                            assertArrayEquals(alone[i], (float[]) f[i].get(), "round " + round + ", call " + i);
                        }
                    }
                } finally {
                    callers.shutdownNow();
                }
            }
        }
    }

    /** Forward and backward of one layer on fixed inputs; returns y and dx one after the other. */
    private record Call(LayerKernels k, float[] x, float[] dy, int tokens, int in, int out, Adapters ad) {
        Call(LayerKernels k, SplittableRandom rnd, int tokens, int in, int out, Adapters ad) {
            this(k, JvmLoraKernelsTest.uniform(rnd, tokens * in, 1f), JvmLoraKernelsTest.uniform(rnd, tokens * out, 1f),
                    tokens, in, out, ad);
        }

        float[] run() {
            float[] y = new float[tokens * out], dx = new float[tokens * in];
            k.backward(k.forward(x, null, tokens, ad, y), dy, dx, ad, null);
            float[] both = new float[y.length + dx.length];
            System.arraycopy(y, 0, both, 0, y.length);
            System.arraycopy(dx, 0, both, y.length, dx.length);
            return both;
        }
    }
}
