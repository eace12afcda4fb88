package dev.tornadolora.tornado;

import dev.tornadolora.tensor.HalfWeight;
import dev.tornadolora.tornado.kernels.HalfDecode;
import dev.tornadolora.tornado.kernels.Matmul;
import dev.tornadolora.tornado.kernels.PanelSegments;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;
import uk.ac.manchester.tornado.api.TaskGraph;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.enums.DataTransferMode;
import uk.ac.manchester.tornado.api.types.arrays.ByteArray;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;
import uk.ac.manchester.tornado.api.types.arrays.ShortArray;
import uk.ac.manchester.tornado.api.types.collections.VectorFloat16;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * BF16/F16 decoding on the device and on the JVM ({@link HalfWeight#decode}) against the JDK's conversions
 * ({@code Float.intBitsToFloat(bits << 16)}, {@code Float.float16ToFloat}) bit for bit, for every 16-bit pattern
 * (a NaN as an infinity on the device), and the panels the matmul reads against those packed from the widened weight,
 * both directions.
 */
class HalfDecodeTest {

    @ParameterizedTest
    @EnumSource(HalfWeight.Format.class)
    void everyPatternDecodesToTheJvmsBits(HalfWeight.Format format) throws Exception {
        int n = 1 << 16;
        short[] all = new short[n];
        for (int i = 0; i < n; i++) all[i] = (short) i;
        float[] jvm = new HalfWeight(256, 256, all, format).dequantize();
        ShortArray bits = ShortArray.fromArray(all);
        FloatArray powers = FloatArray.fromArray(HalfDecode.powers(format)), out = new FloatArray(n);
        TaskGraph g = new TaskGraph("half").transferToDevice(DataTransferMode.FIRST_EXECUTION, bits, powers)
                .task("t", HalfDecode::decode, bits, powers, out, n, HalfDecode.mantissaBits(format))
                .transferToHost(DataTransferMode.EVERY_EXECUTION, out);
        try (TornadoExecutionPlan plan = new TornadoExecutionPlan(g.snapshot())) {
            plan.execute();
        }
        for (int i = 0; i < n; i++) {
            short b = (short) i;
            float want = format == HalfWeight.Format.BF16 ? Float.intBitsToFloat(i << 16) : Float.float16ToFloat(b);
            String what = format + " 0x" + Integer.toHexString(i) + ": expected " + want;
            if (Float.isNaN(want)) {  // a NaN pattern decodes as an infinity on the device (HalfDecode)
                assertTrue(Float.isInfinite(out.get(i)) && Float.isNaN(jvm[i]), what);
            } else {
                assertEquals(Float.floatToRawIntBits(want), Float.floatToRawIntBits(jvm[i]), what + " on the JVM");
                assertEquals(Float.floatToRawIntBits(want), Float.floatToRawIntBits(out.get(i)),
                        what + " but the device gave " + out.get(i));
            }
        }
    }

    @ParameterizedTest(name = "{0} {1}x{2}")
    @CsvSource({"BF16, 37, 64", "F16, 20, 33", "BF16, 16, 5"})
    void panelsEqualThosePackedFromTheWidenedWeight(HalfWeight.Format format, int rows, int cols) throws Exception {
        SplittableRandom r = new SplittableRandom(3);
        short[] raw = new short[rows * cols];
        for (int i = 0; i < raw.length; i++) {
            float v = (float) (0.02 * r.nextGaussian());
            raw[i] = format == HalfWeight.Format.BF16 ? dev.tornadolora.tensor.BFloat16.fromFloat(v)
                    : Float.floatToFloat16(v);
        }
        HalfWeight w = new HalfWeight(rows, cols, raw, format);
        float[] dense = w.dequantize();
        ShortArray bits = ShortArray.fromArray(raw);
        FloatArray powers = FloatArray.fromArray(HalfDecode.powers(format));
        int m = HalfDecode.mantissaBits(format);
        // forward: B = Wᵀ, n = rows, k = cols; backward: B = W, n = cols, k = rows
        int fPanels = (rows + Matmul.PANEL - 1) / Matmul.PANEL, bPanels = (cols + Matmul.PANEL - 1) / Matmul.PANEL;
        VectorFloat16 forward = new VectorFloat16(fPanels * cols), backward = new VectorFloat16(bPanels * rows);
        // one segment each (PanelSegments.decode, the device plan's decode; PanelSegmentsTest: several)
        IntArray ft = IntArray.fromArray(PanelSegments.table(new int[] {rows}, new int[] {cols}, new int[1], 0));
        IntArray bt = IntArray.fromArray(PanelSegments.table(new int[] {cols}, new int[] {rows}, new int[1], 0));
        ByteArray noCodes = new ByteArray(1);
        FloatArray none = new FloatArray(1);
        TaskGraph g = new TaskGraph("halfPanels").transferToDevice(DataTransferMode.FIRST_EXECUTION, bits, powers, ft,
                        bt, noCodes, none)
                .task("f", PanelSegments::decode, noCodes, none, none, bits, powers, ft, forward, fPanels * cols, 1, 1,
                        0, m)
                .task("b", PanelSegments::decode, noCodes, none, none, bits, powers, bt, backward, bPanels * rows, 1, 0,
                        0, m)
                .transferToHost(DataTransferMode.EVERY_EXECUTION, forward, backward);
        try (TornadoExecutionPlan plan = new TornadoExecutionPlan(g.snapshot())) {
            plan.execute();
        }
        assertSameValues(Matmul.packPanels(dense, rows, cols, true), forward, "forward panels");
        assertSameValues(Matmul.packPanels(dense, cols, rows, false), backward, "backward panels");
    }

    /** Equal bits, except that a padding lane past N may hold −0 for 0 (a decoded value times 0; never stored). */
    private static void assertSameValues(VectorFloat16 want, VectorFloat16 got, String what) {
        float[] w = want.getArray().toHeapArray(), g = got.getArray().toHeapArray();
        assertEquals(w.length, g.length, what);
        for (int i = 0; i < w.length; i++) {
            if (!(w[i] == 0f && g[i] == 0f)) {
                assertEquals(Float.floatToRawIntBits(w[i]), Float.floatToRawIntBits(g[i]), what + " at " + i);
            }
        }
    }
}
