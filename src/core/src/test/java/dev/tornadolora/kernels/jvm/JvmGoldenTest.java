package dev.tornadolora.kernels.jvm;

import dev.tornadolora.testing.TestDevices;
import dev.tornadolora.io.DType;
import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.tensor.Nf4Tensor;
import dev.tornadolora.kernels.Adapters;
import dev.tornadolora.kernels.LayerKernels;
import dev.tornadolora.tensor.BaseWeight;
import dev.tornadolora.tensor.DenseWeight;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

import static dev.tornadolora.kernels.jvm.JvmLoraKernelsTest.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The fast JVM backend against PyTorch autograd (float64) on the golden fixtures: LoRA on fp32 bases
 * ({@code lora_*}) and QLoRA on NF4 bases ({@code qlora_*}, the NF4 record read into an {@link Nf4Tensor}).
 */
class JvmGoldenTest {

    static Stream<Path> fixtures() throws IOException, URISyntaxException {
        Path dir = Path.of(JvmGoldenTest.class.getResource("/golden").toURI());
        try (Stream<Path> files = Files.list(dir)) {
            return files.filter(f -> f.getFileName().toString().matches("q?lora_.*\\.safetensors")).sorted().toList().stream();
        }
    }

    @ParameterizedTest
    @MethodSource("fixtures")
    void matchesPyTorch(Path file) {
        SafeTensors st = SafeTensors.open(file);
        float[] a = st.floats("lora_a.weight").data(), b = st.floats("lora_b.weight").data();
        int rank = st.entry("lora_a.weight").shape()[0];
        int in = st.entry("lora_a.weight").shape()[1];
        int out = st.entry("lora_b.weight").shape()[0];
        float alpha = Float.parseFloat(st.requireMetadata("alpha"));
        float dropout = Float.parseFloat(st.requireMetadata("dropout"));
        BaseWeight base = st.contains("weight") ? new DenseWeight(out, in, st.floats("weight").data()) : nf4(st, out, in);
        float[] bias = st.contains("bias") ? st.floats("bias").data() : null;
        Adapters ad = new Adapters(a, b);

        float[] x = st.floats("x").data(), dy = st.floats("dy").data();
        int tokens = x.length / in;
        float[] m = null;
        if (st.contains("mask")) {
            m = st.floats("mask").data().clone();
            for (int i = 0; i < m.length; i++) {
                m[i] /= 1f - dropout;
            }
        }
        float[] y = new float[tokens * out];
        float[] dx = new float[tokens * in], gradA = new float[rank * in], gradB = new float[out * rank];
        try (LayerKernels kernels = new VectorLoraBackend(TestDevices.jvm().executor(), true).bind(base, bias, rank, alpha / rank)) {
            LayerKernels.Activations saved = kernels.forward(x, m, tokens, ad, y);
            kernels.backward(saved, dy, dx, ad, new Adapters(gradA, gradB));
        }

        assertClose("y", st.floats("y").data(), y);
        assertClose("dx", st.floats("dx").data(), dx);
        assertClose("lora_a.weight.grad", st.floats("lora_a.weight.grad").data(), gradA);
        assertClose("lora_b.weight.grad", st.floats("lora_b.weight.grad").data(), gradB);
    }

    private static Nf4Tensor nf4(SafeTensors st, int out, int in) {
        Nf4Tensor w = new Nf4Tensor(out, in,
                Integer.parseInt(st.requireMetadata("block_size")),
                Integer.parseInt(st.requireMetadata("scaler_block_size")),
                st.bytes("weight.quantized_data", DType.U8),
                st.bytes("weight.quantized_scalers", DType.I8),
                st.floats("weight.quantization_factor").data(),
                st.floats("weight.scaler_mean").data()[0]);
        // The fixture's own dequantization agrees with the record, so the comparison is about the kernels.
        assertEquals(w.numel(), st.floats("weight.dequantized").numel(), "weight.dequantized size");
        return w;
    }
}
