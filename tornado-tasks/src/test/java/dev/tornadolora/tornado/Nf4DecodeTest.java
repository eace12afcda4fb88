package dev.tornadolora.tornado;

import dev.tornadolora.math.Nf4;
import dev.tornadolora.tensor.Nf4Tensor;
import dev.tornadolora.tornado.kernels.Nf4Decode;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import uk.ac.manchester.tornado.api.TaskGraph;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.enums.DataTransferMode;
import uk.ac.manchester.tornado.api.types.arrays.ByteArray;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/** NF4 decoding on the device against the format's one decode ({@link Nf4#decode}, via Nf4Tensor), bit for bit. */
class Nf4DecodeTest {

    @ParameterizedTest(name = "{0}x{1} block {2}")
    @CsvSource({"37,64,64", "16,20,4", "3,256,128"})
    void dequantizeTaskMatchesNf4Tensor(int rows, int cols, int blockSize) throws Exception {
        float[] w = TornadoBackendTest.random(rows * cols, 7, rows * cols).data();
        int scalerBlock = rows * cols / blockSize % 4 == 0 ? 4 : 1;
        Nf4Tensor q = Nf4Tensor.quantize(w, rows, cols, blockSize, scalerBlock);
        ByteArray codes = ByteArray.fromArray(q.packedCodes());
        FloatArray scales = FloatArray.fromArray(q.blockScales()), codebook = FloatArray.fromArray(Nf4.codebook());
        FloatArray out = new FloatArray(rows * cols);
        TaskGraph g = new TaskGraph("nf4").transferToDevice(DataTransferMode.FIRST_EXECUTION, codes, scales, codebook)
                .task("t", Nf4Decode::dequantize, codes, scales, codebook, out, rows * cols / 2,
                        Integer.numberOfTrailingZeros(blockSize))
                .transferToHost(DataTransferMode.EVERY_EXECUTION, out);
        try (TornadoExecutionPlan plan = new TornadoExecutionPlan(g.snapshot())) {
            plan.execute();
        }
        assertArrayEquals(q.dequantize(), out.toHeapArray());
    }
}
