package dev.tornadolora.tornado;

import dev.tornadolora.kernels.ScalarLoraKernels;
import dev.tornadolora.nf4.Nf4Tensor;
import dev.tornadolora.nn.LoRALinear;
import dev.tornadolora.tensor.Tensor;
import dev.tornadolora.tornado.kernels.Nf4Decode;
import dev.tornadolora.tornado.kernels.TrainingKernels;
import dev.tornadolora.tornado.plan.LoraTrainingPlan;
import dev.tornadolora.tornado.plan.Schedule;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import uk.ac.manchester.tornado.api.TaskGraph;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.enums.DataTransferMode;
import uk.ac.manchester.tornado.api.types.arrays.ByteArray;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TornadoTrainingTest {

    /** Five AdamW steps entirely on the device give the adapters that five steps on the JVM give. */
    @ParameterizedTest(name = "nf4={0}")
    @ValueSource(booleans = {false, true})
    void fiveStepsOnTheDeviceMatchTheJvm(boolean nf4) throws Exception {
        int in = 100, out = 37, rank = 4, tokens = 24;
        float lr = 1e-2f;
        LoRALinear.Builder b = LoRALinear.builder(in, out).rank(rank).alpha(8).bias(true).seed(3).quantizeBase(nf4);
        if (nf4) b.quantizationKwarg("block_size", 4).quantizationKwarg("scaler_block_size", 25);
        LoRALinear jvm = b.build().kernels(ScalarLoraKernels.INSTANCE);
        LoRALinear dev = b.build();
        Tensor x = TornadoBackendTest.random(tokens * in, 1, tokens, in);
        Tensor target = TornadoBackendTest.random(tokens * out, 2, tokens, out);

        float[] mA = new float[rank * in], vA = new float[rank * in], mB = new float[out * rank], vB = new float[out * rank];
        for (int t = 1; t <= 5; t++) {
            jvm.zeroGrad();
            Tensor y = jvm.forward(x);
            float[] dy = new float[y.numel()];
            for (int i = 0; i < dy.length; i++) dy[i] = 2f * (y.data()[i] - target.data()[i]) / dy.length;
            jvm.backward(Tensor.of(dy, tokens, out));
            Map<String, Tensor> g = jvm.adapterGradients();
            TrainingKernels.adamWReference(jvm.loraA(), g.get("lora_a.weight").data(), mA, vA, lr, t,
                    LoraTrainingPlan.BETA1, LoraTrainingPlan.BETA2, LoraTrainingPlan.EPS, LoraTrainingPlan.WEIGHT_DECAY);
            TrainingKernels.adamWReference(jvm.loraB(), g.get("lora_b.weight").data(), mB, vB, lr, t,
                    LoraTrainingPlan.BETA1, LoraTrainingPlan.BETA2, LoraTrainingPlan.EPS, LoraTrainingPlan.WEIGHT_DECAY);
            jvm.markAdaptersUpdated();
        }

        var device = new TornadoKernelsProvider().resolve("tornado:0:0");
        try (LoraTrainingPlan plan = new LoraTrainingPlan(dev, device, Schedule.forDevice(device), tokens, false)) {
            double first = 0, last = 0;
            for (int t = 1; t <= 5; t++) {
                last = plan.step(x.data(), null, target.data(), lr);
                if (t == 1) first = last;
            }
            assertTrue(last < first, "loss decreases: " + first + " -> " + last);
            plan.copyAdaptersTo(dev.loraA(), dev.loraB());
        }
        TornadoBackendTest.assertClose(jvm.loraA(), dev.loraA(), "lora_a after 5 steps");
        TornadoBackendTest.assertClose(jvm.loraB(), dev.loraB(), "lora_b after 5 steps");
    }

    /** The dequantize task decodes NF4 exactly as the JVM does, bit for bit. */
    @Test
    void dequantizeTaskIsExact() throws Exception {
        int rows = 128, cols = 512;
        float[] w = TornadoBackendTest.random(rows * cols, 9, rows, cols).data();
        Nf4Tensor q = Nf4Tensor.quantize(w, rows, cols);
        ByteArray codes = ByteArray.fromArray(q.packedCodes());
        FloatArray scales = FloatArray.fromArray(q.blockScales());
        float[] book = new float[16];
        for (int c = 0; c < 16; c++) book[c] = Nf4Tensor.codebook(c);
        FloatArray codebook = FloatArray.fromArray(book);
        FloatArray out = new FloatArray(rows * cols);
        TaskGraph g = new TaskGraph("nf4")
                .transferToDevice(DataTransferMode.FIRST_EXECUTION, codes, scales, codebook)
                .task("dequantize", Nf4Decode::dequantize, codes, scales, codebook, out, rows * cols / 2, 6)
                .transferToHost(DataTransferMode.EVERY_EXECUTION, out);
        try (TornadoExecutionPlan plan = new TornadoExecutionPlan(g.snapshot())) {
            plan.execute();
        }
        float[] reference = new float[rows * cols];
        Nf4Decode.dequantizeReference(q.packedCodes(), q.blockScales(), book, reference, 6);
        assertArrayEquals(q.dequantize(), reference, "reference decoder = Nf4Tensor");
        assertArrayEquals(reference, out.toHeapArray(), "device decoder = reference");
    }
}
