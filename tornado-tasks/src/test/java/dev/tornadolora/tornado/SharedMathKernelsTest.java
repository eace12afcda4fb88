package dev.tornadolora.tornado;

import dev.tornadolora.math.Exp;
import dev.tornadolora.math.Nf4;
import dev.tornadolora.math.Silu;
import dev.tornadolora.math.Softmax;
import org.junit.jupiter.api.Test;
import uk.ac.manchester.tornado.api.TaskGraph;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.annotations.Parallel;
import uk.ac.manchester.tornado.api.enums.DataTransferMode;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The shared math ({@code dev.tornadolora.math}) called from TornadoVM kernels gives the JVM's bits: a kernel
 * calls {@link Exp#exp}, {@link Silu} and {@link Nf4#code(int, int)} as static methods, TornadoVM inlines them
 * (bailouts are off, so a method it cannot compile fails the test), and every element must equal the JVM's.
 * This is how the Llama ops' kernels share the math and vary only the schedule.
 *
 * <p>Bit for bit needs the OpenCL program built without TornadoVM's default {@code -cl-mad-enable
 * -cl-fast-relaxed-math} (up to 67 ulp apart in exp here): the tests run with
 * {@code -Dtornado.opencl.compiler.flags=-w} (tornado-tasks/pom.xml).
 */
class SharedMathKernelsTest {

    static void expAndSilu(FloatArray x, FloatArray dy, FloatArray exp, FloatArray silu, FloatArray dx, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            float v = x.get(i);
            exp.set(i, Exp.exp(v));
            silu.set(i, Silu.silu(v));
            dx.set(i, Silu.backward(dy.get(i), v));
        }
    }

    /** One work-item per row: max, then {@link Softmax#term} summed left to right, then p = e · (1 / sum). */
    static void softmaxRows(FloatArray x, FloatArray p, FloatArray sums, int rows, int n, float scale) {
        for (@Parallel int r = 0; r < rows; r++) {
            float m = x.get(r * n);
            for (int i = 1; i < n; i++) m = Math.max(m, x.get(r * n + i));
            m = m * scale;
            float sum = 0f;
            for (int i = 0; i < n; i++) {
                float e = Softmax.term(x.get(r * n + i), scale, m);
                p.set(r * n + i, e);
                sum += e;
            }
            float inv = 1f / sum;
            for (int i = 0; i < n; i++) p.set(r * n + i, p.get(r * n + i) * inv);
            sums.set(r, sum);
        }
    }

    static void nf4Codes(IntArray bytes, IntArray codes, int n) {
        for (@Parallel int e = 0; e < n; e++) {
            codes.set(e, Nf4.code(bytes.get(e >> 1), e));
        }
    }

    @Test
    void expAndSiluInAKernelAreTheJvmsBits() throws Exception {
        int n = 4099;
        SplittableRandom rnd = new SplittableRandom(17);
        float[] xs = new float[n], dys = new float[n];
        for (int i = 0; i < n; i++) {
            xs[i] = (float) rnd.nextDouble(-95, 95);
            dys[i] = (float) rnd.nextDouble(-2, 2);
        }
        xs[0] = 0f;
        xs[1] = -87.3f;
        xs[2] = 88.3f;
        FloatArray x = FloatArray.fromArray(xs), dy = FloatArray.fromArray(dys);
        FloatArray exp = new FloatArray(n), silu = new FloatArray(n), dx = new FloatArray(n);
        TaskGraph g = new TaskGraph("math").transferToDevice(DataTransferMode.FIRST_EXECUTION, x, dy)
                .task("expAndSilu", SharedMathKernelsTest::expAndSilu, x, dy, exp, silu, dx, n)
                .transferToHost(DataTransferMode.EVERY_EXECUTION, exp, silu, dx);
        try (TornadoExecutionPlan plan = new TornadoExecutionPlan(g.snapshot())) {
            plan.execute();
        }
        for (int i = 0; i < n; i++) {
            assertBits(Exp.exp(xs[i]), exp.get(i), "exp", xs[i]);
            assertBits(Silu.silu(xs[i]), silu.get(i), "silu", xs[i]);
            assertBits(Silu.backward(dys[i], xs[i]), dx.get(i), "silu backward", xs[i]);
        }
    }

    @Test
    void aSoftmaxRowInAKernelIsTheScalarDefinition() throws Exception {
        int rows = 7, n = 301;
        float scale = 0.125f;
        SplittableRandom rnd = new SplittableRandom(19);
        float[] xs = new float[rows * n];
        for (int i = 0; i < xs.length; i++) xs[i] = (float) rnd.nextDouble(-40, 40);
        FloatArray x = FloatArray.fromArray(xs), p = new FloatArray(rows * n), sums = new FloatArray(rows);
        TaskGraph g = new TaskGraph("softmax").transferToDevice(DataTransferMode.FIRST_EXECUTION, x)
                .task("rows", SharedMathKernelsTest::softmaxRows, x, p, sums, rows, n, scale)
                .transferToHost(DataTransferMode.EVERY_EXECUTION, p, sums);
        try (TornadoExecutionPlan plan = new TornadoExecutionPlan(g.snapshot())) {
            plan.execute();
        }
        float[] expected = xs.clone();
        for (int r = 0; r < rows; r++) {
            Softmax.softmaxInPlace(Softmax.SCALAR, n, expected, r * n, scale);
            float[] row = java.util.Arrays.copyOfRange(xs, r * n, (r + 1) * n);
            float m = Softmax.SCALAR.max(n, row, 0) * scale;
            assertBits(Softmax.SCALAR.expInPlace(n, row, 0, scale, m), sums.get(r), "sum of row", r);
        }
        for (int i = 0; i < expected.length; i++) assertBits(expected[i], p.get(i), "p", i);
    }

    @Test
    void nf4CodesInAKernelAreTheJvmsForEveryByte() throws Exception {
        int n = 512;  // every byte value, sign-extended as ByteArray.get gives it, twice (high and low nibble)
        int[] bs = new int[n / 2];
        for (int b = 0; b < bs.length; b++) bs[b] = (byte) b;
        IntArray bytes = IntArray.fromArray(bs), codes = new IntArray(n);
        TaskGraph g = new TaskGraph("nf4codes").transferToDevice(DataTransferMode.FIRST_EXECUTION, bytes)
                .task("codes", SharedMathKernelsTest::nf4Codes, bytes, codes, n)
                .transferToHost(DataTransferMode.EVERY_EXECUTION, codes);
        try (TornadoExecutionPlan plan = new TornadoExecutionPlan(g.snapshot())) {
            plan.execute();
        }
        for (int e = 0; e < n; e++) {
            assertEquals(Nf4.code(bs[e >> 1], e), codes.get(e), "code of element " + e);
        }
    }

    private static void assertBits(float expected, float actual, String what, float x) {
        assertEquals(Float.floatToRawIntBits(expected), Float.floatToRawIntBits(actual),
                what + "(" + x + "): expected " + expected + " but got " + actual);
    }
}
