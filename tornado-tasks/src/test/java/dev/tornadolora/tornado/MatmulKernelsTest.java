package dev.tornadolora.tornado;

import dev.tornadolora.tornado.kernels.Matmul;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import uk.ac.manchester.tornado.api.GridScheduler;
import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.TaskGraph;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.WorkerGrid2D;
import uk.ac.manchester.tornado.api.enums.DataTransferMode;
import uk.ac.manchester.tornado.api.types.arrays.ByteArray;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;
import uk.ac.manchester.tornado.api.types.collections.VectorFloat16;
import uk.ac.manchester.tornado.api.types.matrix.Matrix2DFloat;
import uk.ac.manchester.tornado.matrix.MatrixMath;

/**
 * Each schedule of {@link Matmul} on the device, and its sequential reference {@link Matmul#reference}, against
 * the SDK's host matrix product (tornado-matrices' {@code MatrixMath.sgemm}), both directions, odd sizes.
 */
class MatmulKernelsTest {

    /** c = a · B with B = Wᵀ ({@code transposed}: W is [n, k]) or W ([k, n]), by tornado-matrices. */
    static float[] sgemm(float[] a, float[] w, int m, int n, int k, boolean transposed) {
        Matrix2DFloat am = new Matrix2DFloat(m, k), bm = new Matrix2DFloat(k, n), cm = new Matrix2DFloat(m, n);
        for (int i = 0; i < m; i++) {
            for (int q = 0; q < k; q++) {
                am.set(i, q, a[i * k + q]);
            }
        }
        for (int q = 0; q < k; q++) {
            for (int j = 0; j < n; j++) {
                bm.set(q, j, transposed ? w[j * k + q] : w[q * n + j]);
            }
        }
        MatrixMath.sgemm(am, bm, cm);
        float[] c = new float[m * n];
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                c[i * n + j] = cm.get(i, j);
            }
        }
        return c;
    }

    @ParameterizedTest(name = "reference m={0} n={1} k={2} transposed={3}")
    @CsvSource({"37,45,67,true", "9,70,33,false", "1,16,8,true"})
    void sequentialReferenceMatchesTornadoMatrices(int m, int n, int k, boolean transposed) {
        float[] a = TornadoBackendTest.random(m * k, 1, m, k).data();
        float[] w = TornadoBackendTest.random(n * k, 2, n * k).data();
        float[] c = new float[m * n];
        Matmul.reference(a, w, c, m, n, k, transposed);
        TornadoBackendTest.assertClose(sgemm(a, w, m, n, k, transposed), c, "Matmul.reference");
    }

    @ParameterizedTest(name = "{0} m={1} n={2} k={3} transposed={4}")
    @CsvSource({"panels,37,45,67,true", "panels,9,70,33,false", "panelsTransposed,9,70,33,false",
            "panelsTransposed,37,45,67,false", "blocked,37,45,67,true", "blocked,9,70,33,false",
            "tiled,37,45,67,true", "tiled,9,70,33,false"})
    void scheduleMatchesTheReference(String schedule, int m, int n, int k, boolean transposed) throws Exception {
        float[] a = TornadoBackendTest.random(m * k, 1, m, k).data();
        float[] w = TornadoBackendTest.random(n * k, 2, n * k).data(); // W [n, k] or [k, n]: n·k values either way
        float[] expected = sgemm(a, w, m, n, k, transposed);

        FloatArray av = FloatArray.fromArray(a), c = new FloatArray(m * n);
        FloatArray wv = FloatArray.fromArray(w), none = new FloatArray(1), book = new FloatArray(1);
        ByteArray codes = new ByteArray(1);
        VectorFloat16 panels = Matmul.packPanels(w, n, k, transposed), noPanels = new VectorFloat16(1),
                noBias = new VectorFloat16(1);
        int bT = transposed ? 1 : 0;
        IntArray sizes = IntArray.fromArray(new int[] {m, 0, 0});
        TaskGraph g = new TaskGraph("mm").transferToDevice(DataTransferMode.FIRST_EXECUTION, av, wv, none, book, codes,
                panels, noPanels, noBias, sizes);
        WorkerGrid2D grid;
        switch (schedule) {
            case "panels" -> {
                int np = (n + Matmul.PANEL - 1) / Matmul.PANEL, mb = (m + Matmul.PANEL_ROWS - 1) / Matmul.PANEL_ROWS;
                g.task("t", Matmul::panels, av, panels, none, noPanels, noBias, c, sizes, np, mb, n, k, 0, 0, 0, 0, 0);
                grid = new WorkerGrid2D(np, mb);
            }
            case "panelsTransposed" -> {  // c = a·W, W [k, n] read from the panels of Wᵀ's layout
                VectorFloat16 wPanels = Matmul.packPanels(w, k, n, true);
                VectorFloat16 aPanels = new VectorFloat16(m * ((k + Matmul.PANEL - 1) / Matmul.PANEL));
                Matmul.packRows(a, m, k, aPanels);
                int mb = (m + Matmul.PANEL_ROWS - 1) / Matmul.PANEL_ROWS;
                g.transferToDevice(DataTransferMode.FIRST_EXECUTION, wPanels, aPanels);
                g.task("t", Matmul::panelsTransposed, aPanels, wPanels, c, sizes, n, mb, n, (k + Matmul.PANEL - 1) / Matmul.PANEL);
                grid = new WorkerGrid2D((n + 15) / 16 * 16, mb);
                grid.setLocalWork(16, 1, 1);
            }
            case "blocked" -> {
                int nb = (n + Matmul.BLOCK_N - 1) / Matmul.BLOCK_N, mb = (m + Matmul.BLOCK_M - 1) / Matmul.BLOCK_M;
                g.task("t", Matmul::blocked, av, wv, codes, none, book, c, sizes, nb, mb, n, k, bT, 0, 0);
                grid = new WorkerGrid2D(nb, mb);
            }
            default -> {
                g.task("t", Matmul::tiled, new KernelContext(), av, wv, codes, none, book, c, sizes, n, k,
                        (k + Matmul.TILE - 1) / Matmul.TILE, bT, 0, 0);
                grid = new WorkerGrid2D((n + 15) / 16 * 16, (m + 15) / 16 * 16);
                grid.setLocalWork(Matmul.TILE, Matmul.TILE, 1);
            }
        }
        g.transferToHost(DataTransferMode.EVERY_EXECUTION, c);
        try (TornadoExecutionPlan plan = new TornadoExecutionPlan(g.snapshot())) {
            plan.withGridScheduler(new GridScheduler("mm.t", grid)).execute();
        }
        TornadoBackendTest.assertClose(expected, c.toHeapArray(), schedule + " c");
    }
}
