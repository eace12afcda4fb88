package dev.tornadolora.tensor;

import dev.tornadolora.testing.TestDevices;
import dev.tornadolora.kernels.LoraBackend;
import dev.tornadolora.kernels.ScalarLoraKernels;
import dev.tornadolora.nn.LoRALinear;
import dev.tornadolora.tensor.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * QLoRA keeps the base only as NF4: a forward and backward of a 4096×4096 layer must not build an fp32 copy of
 * the weight (64 MiB), nor a bf16 one (32 MiB). Measured as heap bytes allocated by all threads (the JVM backend
 * works on pool threads) plus direct memory, around the first calls on a fresh layer, so a copy cached on first
 * use counts too. The budget, 16 MiB, covers activations (kilobytes here), per-thread decode tiles and class
 * loading, but not a dense copy of the weight.
 */
class Nf4AllocationTest {

    static final int DIM = 4096;
    static final int TOKENS = 3;
    static final long BUDGET = 16L << 20;

    static com.sun.management.ThreadMXBean threads;

    @BeforeAll
    static void allocationCounting() {
        threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        threads.setThreadAllocatedMemoryEnabled(true);
    }

    private static LoRALinear layer(LoraBackend kernels) {
        LoRALinear layer = LoRALinear.builder(DIM, DIM).rank(16).alpha(32f).quantizeBase(true).seed(5).build();
        assertInstanceOf(Nf4Tensor.class, layer.base());
        // non-zero B so the whole LoRA path runs
        float[] b = layer.loraB();
        for (int i = 0; i < b.length; i++) b[i] = (i % 7 - 3) * 0.01f;
        return layer.backend(kernels);
    }

    private static Tensor randn(long seed, int... shape) {
        Tensor t = Tensor.zeros(shape);
        SplittableRandom r = new SplittableRandom(seed);
        for (int i = 0; i < t.numel(); i++) t.data()[i] = (float) r.nextGaussian();
        return t;
    }

    private static long directBytes() {
        long used = 0;
        for (BufferPoolMXBean pool : ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class)) {
            used += pool.getMemoryUsed();
        }
        return used;
    }

    /** Heap bytes allocated by every thread, and by the calling one, and direct bytes, during one step. */
    private static long[] measureStep(LoRALinear layer, Tensor x, Tensor dy) {
        long allBefore = threads.getTotalThreadAllocatedBytes();
        long mineBefore = threads.getCurrentThreadAllocatedBytes();
        long directBefore = directBytes();
        layer.forward(x);
        layer.backward(dy);
        return new long[] {threads.getTotalThreadAllocatedBytes() - allBefore,
                threads.getCurrentThreadAllocatedBytes() - mineBefore, directBytes() - directBefore};
    }

    private static void assertWithinBudget(String backend, long[] bytes) {
        String report = String.format("%s: NF4 %dx%d forward+backward of %d tokens allocated %.2f MiB on all threads"
                + " (%.2f MiB on the caller), %.2f MiB direct", backend, DIM, DIM, TOKENS, bytes[0] / 1048576.0,
                bytes[1] / 1048576.0, bytes[2] / 1048576.0);
        System.out.println(report);
        assertTrue(bytes[0] >= 0 && bytes[0] < BUDGET && bytes[1] < BUDGET && bytes[2] < BUDGET, report);
    }

    @Test
    void referenceKernelsDecodeWithoutAnFp32Copy() {
        LoRALinear layer = layer(ScalarLoraKernels.INSTANCE);
        Tensor x = randn(1, TOKENS, DIM), dy = randn(2, TOKENS, DIM);
        assertWithinBudget("reference", measureStep(layer, x, dy));
        assertWithinBudget("reference (second step)", measureStep(layer, x, dy));
    }

    @Test
    void defaultJvmBackendDecodesWithoutAnFp32Copy() {
        warmUpJit();
        LoRALinear layer = layer(TestDevices.jvm().backend());
        Tensor x = randn(1, TOKENS, DIM), dy = randn(2, TOKENS, DIM);
        assertWithinBudget(TestDevices.jvm().backend().name(), measureStep(layer, x, dy));
        assertWithinBudget(TestDevices.jvm().backend().name() + " (second step)", measureStep(layer, x, dy));
    }

    /**
     * Until C2 compiles them, the JVM backend's Vector API kernels run interpreted, and every vector operation
     * allocates a box: tens of MiB that are no copy of anything. Steps on a smaller NF4 layer (the same code
     * paths) until a step allocates under 1 MiB get the JIT there; the layer measured is still fresh, so
     * anything it caches on first use is counted.
     */
    private static void warmUpJit() {
        LoRALinear small = LoRALinear.builder(1024, 1024).rank(16).alpha(32f).quantizeBase(true).seed(6).build();
        small.backend(TestDevices.jvm().backend());
        Tensor x = randn(3, TOKENS, 1024), dy = randn(4, TOKENS, 1024);
        for (int step = 0; step < 2000 && measureStep(small, x, dy)[0] >= 1L << 20; step++) {
            // keep stepping
        }
    }

    /** The measurement can fail: the fp32 copy that dequantize() makes is seen. */
    @Test
    void theMeasurementSeesAnFp32Copy() {
        LoRALinear layer = layer(ScalarLoraKernels.INSTANCE);
        long before = threads.getTotalThreadAllocatedBytes();
        float[] copy = layer.base().dequantize();
        long allocated = threads.getTotalThreadAllocatedBytes() - before;
        assertTrue(allocated >= 4L * DIM * DIM && copy.length == DIM * DIM, "saw " + allocated + " bytes");
    }
}
