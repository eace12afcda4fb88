package dev.tornadolora.tornado;

import dev.tornadolora.math.Nf4;
import dev.tornadolora.tensor.BFloat16;
import dev.tornadolora.tensor.BaseWeight;
import dev.tornadolora.tensor.HalfWeight;
import dev.tornadolora.tensor.Nf4Tensor;
import dev.tornadolora.tornado.kernels.HalfDecode;
import dev.tornadolora.tornado.kernels.Matmul;
import dev.tornadolora.tornado.kernels.PanelSegments;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import uk.ac.manchester.tornado.api.GridScheduler;
import uk.ac.manchester.tornado.api.TaskGraph;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.WorkerGrid2D;
import uk.ac.manchester.tornado.api.enums.DataTransferMode;
import uk.ac.manchester.tornado.api.types.arrays.ByteArray;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;
import uk.ac.manchester.tornado.api.types.arrays.ShortArray;
import uk.ac.manchester.tornado.api.types.collections.VectorFloat16;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Several weights decoded by one launch into one panel buffer (a decoder layer's bases in the device plan):
 * {@link PanelSegments#decode}, NF4 and 16-bit, against the panels
 * packed from the JVM's decode of each weight ({@link Nf4Tensor#dequantize}, {@link HalfWeight#dequantize}), both
 * directions, from a slot past the buffer's start; and {@link Matmul#panels} reading two of them at their offsets
 * in one product against tornado-matrices' sgemm.
 */
class PanelSegmentsTest {

    /** [rows, cols] of the weights: the first two share their rows (the forward's n), so they make a pair. */
    private static final int[][] SHAPES = {{37, 64}, {37, 16}, {3, 36}};
    private static final int FROM = 5;

    @ParameterizedTest
    @ValueSource(strings = {"NF4", "BF16", "F16"})
    void segmentsDecodeToThePanelsOfTheJvmsDecode(String format) throws Exception {
        List<BaseWeight> ws = weights(format);
        int count = ws.size(), elements = 0;
        int[] fn = new int[count], fk = new int[count], bn = new int[count], bk = new int[count];
        int[] first = new int[count];
        for (int i = 0; i < count; i++) {
            BaseWeight w = ws.get(i);
            fn[i] = w.rows();
            fk[i] = w.cols();
            bn[i] = w.cols();
            bk[i] = w.rows();
            first[i] = elements;
            elements += w.rows() * w.cols();
        }
        int[] fTable = PanelSegments.table(fn, fk, first, FROM), bTable = PanelSegments.table(bn, bk, first, FROM);
        IntArray ft = IntArray.fromArray(fTable), bt = IntArray.fromArray(bTable);
        VectorFloat16 forward = new VectorFloat16(PanelSegments.end(fTable));
        VectorFloat16 backward = new VectorFloat16(PanelSegments.end(bTable));
        int fSlots = PanelSegments.end(fTable) - FROM, bSlots = PanelSegments.end(bTable) - FROM;

        // a product reading the first two weights' forward panels where the decode put them: c = a·W0ᵀ + a2·W1ᵀ
        int m = 11, n = SHAPES[0][0], k = SHAPES[0][1], k2 = SHAPES[1][1];
        float[] a = TornadoBackendTest.random(m * k, 1, m, k).data();
        float[] a2 = TornadoBackendTest.random(m * k2, 2, m, k2).data();
        FloatArray av = FloatArray.fromArray(a), a2v = FloatArray.fromArray(a2), c = new FloatArray(m * n);
        IntArray sizes = IntArray.fromArray(new int[] {m, 0, 1});
        VectorFloat16 noBias = new VectorFloat16(1);
        int nPanels = (n + Matmul.PANEL - 1) / Matmul.PANEL, mBlocks = (m + Matmul.PANEL_ROWS - 1) / Matmul.PANEL_ROWS;
        int at0 = fTable[PanelSegments.START], at1 = fTable[PanelSegments.FIELDS + PanelSegments.START];

        TaskGraph g = new TaskGraph("segments").transferToDevice(DataTransferMode.FIRST_EXECUTION, ft, bt, av, a2v,
                sizes, noBias);
        if (format.equals("NF4")) {
            ByteArray codes = new ByteArray(elements / 2);
            FloatArray scales = new FloatArray(elements / 4);
            int ci = 0, si = 0;
            for (BaseWeight w : ws) {
                for (byte b : ((Nf4Tensor) w).packedCodes()) codes.set(ci++, b);
                for (float s : ((Nf4Tensor) w).blockScales()) scales.set(si++, s);
            }
            FloatArray book = FloatArray.fromArray(Nf4.codebook()), noPowers = new FloatArray(1);
            ShortArray noHalves = new ShortArray(1);
            g.transferToDevice(DataTransferMode.FIRST_EXECUTION, codes, scales, book)
                    .transferToDevice(DataTransferMode.FIRST_EXECUTION, noHalves, noPowers)
                    .task("f", PanelSegments::decode, codes, scales, book, noHalves, noPowers, ft, forward, fSlots,
                            count, 1, 2, 0)
                    .task("b", PanelSegments::decode, codes, scales, book, noHalves, noPowers, bt, backward, bSlots,
                            count, 0, 2, 0);
        } else {
            HalfWeight.Format f = HalfWeight.Format.valueOf(format);
            ShortArray bits = new ShortArray(elements);
            int e = 0;
            for (BaseWeight w : ws) {
                for (short b : ((HalfWeight) w).bits()) bits.set(e++, b);
            }
            FloatArray powers = FloatArray.fromArray(HalfDecode.powers(f));
            int mb = HalfDecode.mantissaBits(f);
            ByteArray noCodes = new ByteArray(1);
            FloatArray none = new FloatArray(1);
            g.transferToDevice(DataTransferMode.FIRST_EXECUTION, bits, powers, noCodes, none)
                    .task("f", PanelSegments::decode, noCodes, none, none, bits, powers, ft, forward, fSlots, count, 1,
                            0, mb)
                    .task("b", PanelSegments::decode, noCodes, none, none, bits, powers, bt, backward, bSlots, count, 0,
                            0, mb);
        }
        g.task("product", Matmul::panels, av, forward, a2v, forward, noBias, c, sizes, nPanels, mBlocks, n, k, k2, 1,
                        0, at0, at1)
                .transferToHost(DataTransferMode.EVERY_EXECUTION, forward, backward, c);
        try (TornadoExecutionPlan plan = new TornadoExecutionPlan(g.snapshot())) {
            plan.withGridScheduler(new GridScheduler("segments.product", new WorkerGrid2D(nPanels, mBlocks))).execute();
        }

        List<Float> wantF = new ArrayList<>(), wantB = new ArrayList<>();
        for (int i = 0; i < FROM * Matmul.PANEL; i++) {  // the slots before the first segment: untouched
            wantF.add(0f);
            wantB.add(0f);
        }
        for (BaseWeight w : ws) {
            float[] dense = w.dequantize();
            for (float v : Matmul.packPanels(dense, w.rows(), w.cols(), true).getArray().toHeapArray()) wantF.add(v);
            for (float v : Matmul.packPanels(dense, w.cols(), w.rows(), false).getArray().toHeapArray()) wantB.add(v);
        }
        assertSameValues(wantF, forward, format + " forward panels");
        assertSameValues(wantB, backward, format + " backward panels");

        float[] w0 = ws.get(0).dequantize(), w1 = ws.get(1).dequantize();
        float[] want = MatmulKernelsTest.sgemm(a, w0, m, n, k, true);
        float[] want2 = MatmulKernelsTest.sgemm(a2, w1, m, n, k2, true);
        for (int i = 0; i < want.length; i++) want[i] += want2[i];
        TornadoBackendTest.assertClose(want, c.toHeapArray(), format + " product at offsets");
    }

    private static List<BaseWeight> weights(String format) {
        List<BaseWeight> out = new ArrayList<>();
        SplittableRandom r = new SplittableRandom(11);
        for (int[] shape : SHAPES) {
            int rows = shape[0], cols = shape[1];
            float[] w = new float[rows * cols];
            for (int i = 0; i < w.length; i++) w[i] = (float) (0.05 * r.nextGaussian());
            if (format.equals("NF4")) {
                out.add(Nf4Tensor.quantize(w, rows, cols, 4, 1));
            } else {
                HalfWeight.Format f = HalfWeight.Format.valueOf(format);
                short[] raw = new short[w.length];
                for (int i = 0; i < w.length; i++) {
                    raw[i] = f == HalfWeight.Format.BF16 ? BFloat16.fromFloat(w[i]) : Float.floatToFloat16(w[i]);
                }
                out.add(new HalfWeight(rows, cols, raw, f));
            }
        }
        return out;
    }

    /** Equal bits, except that a padding lane past N may hold −0 for 0 (a decoded value times 0; never stored). */
    private static void assertSameValues(List<Float> want, VectorFloat16 got, String what) {
        float[] g = got.getArray().toHeapArray();
        assertEquals(want.size(), g.length, what);
        for (int i = 0; i < g.length; i++) {
            float w = want.get(i);
            if (!(w == 0f && g[i] == 0f)) {
                assertEquals(Float.floatToRawIntBits(w), Float.floatToRawIntBits(g[i]), what + " at " + i);
            }
        }
    }
}
