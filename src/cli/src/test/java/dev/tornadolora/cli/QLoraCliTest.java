package dev.tornadolora.cli;

import dev.tornadolora.io.DType;
import dev.tornadolora.io.Nf4Record;
import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.io.SafeTensorsWriter;
import dev.tornadolora.kernels.ScalarLoraKernels;
import dev.tornadolora.tensor.Nf4Tensor;
import dev.tornadolora.nn.LoRALinear;
import dev.tornadolora.tensor.Tensor;
import dev.tornadolora.testing.Golden;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code quantize} and {@code eval} on NF4 checkpoints, through {@link Main#run} as a user runs them. */
class QLoraCliTest {

    @TempDir
    Path dir;

    private String fixture(String name) {
        return Golden.dir().resolve(name).toString();
    }

    private SafeTensors eval(String checkpoint, String data, String device) {
        Path o = dir.resolve("out-" + device + ".safetensors");
        CliRun r = CliRun.of("eval", "--checkpoint", checkpoint, "--input", data, "--grad-output", data,
                "--output", o.toString(), "--device", device);
        assertEquals(0, r.exitCode(), r.err());
        return SafeTensors.open(o);
    }

    @ParameterizedTest
    @CsvSource({
        "qlora_sq256_r16_bias.safetensors, reference", "qlora_sq256_r16_bias.safetensors, jvm",
        "qlora_in512_r4.safetensors, reference", "qlora_in512_r4.safetensors, jvm",
        "qlora_in1024_r8_bs32.safetensors, reference", "qlora_in1024_r8_bs32.safetensors, jvm"})
    void evalOfAQLoraCheckpointMatchesPyTorch(String file, String device) {
        SafeTensors expected = Golden.open(file);
        SafeTensors actual = eval(fixture(file), fixture(file), device);
        for (String name : new String[] {"y", "dx", "lora_a.weight.grad", "lora_b.weight.grad"}) {
            assertArrayEquals(expected.entry(name).shape(), actual.entry(name).shape(), name);
            Golden.assertClose(expected.f32(name).data(), actual.f32(name).data(), 1e-4, file + " " + name);
        }
        assertEquals(device, actual.metadata().get("device"));
    }

    /** A LoRA checkpoint quantized by the CLI evaluates exactly like a layer that quantized the same weight. */
    @Test
    void quantizeThenEvalEqualsTheQuantizedLayer() throws IOException {
        String lora = fixture("lora_tokens1.safetensors");
        Path q = dir.resolve("q.safetensors");
        CliRun r = CliRun.of("quantize", "--input", lora, "--output", q.toString());
        assertEquals(0, r.exitCode(), r.err());
        assertEquals(q + ": 'weight' [256, 320] -> NF4 (block_size 64, scaler_block_size 256), 4.1273 bits per parameter"
                + System.lineSeparator(), r.out());

        SafeTensors w = SafeTensors.open(Path.of(lora)), quantized = SafeTensors.open(q);
        for (String name : w.names()) {
            if (name.equals("weight")) {
                assertFalse(quantized.contains(name));
            } else {
                assertEquals(w.entry(name).dtype(), quantized.entry(name).dtype(), name);
                assertArrayEquals(w.entry(name).shape(), quantized.entry(name).shape(), name);
                assertEquals(w.buffer(name), quantized.buffer(name), name);
            }
        }
        Map<String, String> expectedMetadata = new HashMap<>(w.metadata());
        expectedMetadata.putAll(Map.of("block_size", "64", "scaler_block_size", "256", "weight.shape", "[256, 320]"));
        assertEquals(expectedMetadata, quantized.metadata());

        LoRALinear layer = LoRALinear.builder(320, 256).rank(32).alpha(64f).bias(true).quantizeBase(true).build();
        for (String name : new String[] {"weight", "bias", "lora_a.weight", "lora_b.weight"}) {
            layer.load(name, w.f32(name));
        }
        layer.backend(ScalarLoraKernels.INSTANCE).eval();
        Tensor y = layer.forward(w.f32("x"));
        Tensor dx = layer.backward(w.f32("dy"));

        SafeTensors o = eval(q.toString(), lora, "reference");
        assertArrayEquals(y.data(), o.f32("y").data());
        assertArrayEquals(dx.data(), o.f32("dx").data());
        assertArrayEquals(layer.adapterGradients().get("lora_a.weight").data(), o.f32("lora_a.weight.grad").data());
        assertArrayEquals(layer.adapterGradients().get("lora_b.weight").data(), o.f32("lora_b.weight.grad").data());
        // the base really is quantized, with NF4's error: y differs from the fp32 layer's (PyTorch's) y by a few
        // percent in norm (5.6% on this fixture), neither 0 nor garbage
        double relative = relativeL2(w.f32("y").data(), o.f32("y").data());
        assertTrue(relative > 1e-3 && relative < 0.1, "relative L2 error of y " + relative);
    }

    private static double relativeL2(float[] expected, float[] actual) {
        double num = 0, den = 0;
        for (int i = 0; i < expected.length; i++) {
            num += Math.pow(actual[i] - expected[i], 2);
            den += Math.pow(expected[i], 2);
        }
        return Math.sqrt(num / den);
    }

    /** The CLI writes the record PyTorch's reference writes, byte for byte, from the fixture's weight alone. */
    @Test
    void quantizeWritesTheReferenceRecord() throws IOException {
        SafeTensors fixture = Golden.open("nf4_custom_4x4096.safetensors");
        Path w = dir.resolve("w.safetensors");
        new SafeTensorsWriter().f32("base.w", fixture.f32("weight")).metadata("note", "kept").write(w);
        Path q = dir.resolve("q.safetensors");
        CliRun r = CliRun.of("quantize", "--input", w.toString(), "--output", q.toString(), "--key", "base.w",
                "--block-size", "32", "--scaler-block-size", "128");
        assertEquals(0, r.exitCode(), r.err());
        SafeTensors quantized = SafeTensors.open(q);
        assertEquals(Set.copyOf(Nf4Record.tensorNames("base.w")), quantized.names());
        assertEquals(Map.of("note", "kept", "block_size", "32", "scaler_block_size", "128", "base.w.shape", "[4, 4096]"),
                quantized.metadata());
        for (String suffix : new String[] {".quantized_data", ".quantized_scalers", ".quantization_factor", ".scaler_mean"}) {
            assertEquals(fixture.entry("weight" + suffix).dtype(), quantized.entry("base.w" + suffix).dtype(), suffix);
            assertArrayEquals(fixture.entry("weight" + suffix).shape(), quantized.entry("base.w" + suffix).shape(), suffix);
            assertEquals(fixture.buffer("weight" + suffix), quantized.buffer("base.w" + suffix), suffix);
        }
        Nf4Tensor record = Nf4Record.read(quantized, "base.w");
        assertArrayEquals(fixture.f32("weight.dequantized").data(), record.dequantize());
    }

    @Test
    void quantizeCanWriteOverItsInput() throws IOException {
        Path w = dir.resolve("w.safetensors");
        Files.copy(Golden.dir().resolve("lora_tokens1.safetensors"), w);
        CliRun r = CliRun.of("quantize", "--input", w.toString(), "--output", w.toString());
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(Nf4Record.present(SafeTensors.open(w), "weight"));
        r = CliRun.of("eval", "--checkpoint", w.toString(), "--input", w.toString(),
                "--output", dir.resolve("o.safetensors").toString());
        assertEquals(0, r.exitCode(), r.err());
    }

    /** Each failure: exit code 1, one line on stderr naming the problem, no output file. */
    private void assertQuantizeFails(String expectedMessage, String... args) {
        Path o = dir.resolve("never.safetensors");
        String[] full = new String[args.length + 3];
        full[0] = "quantize";
        System.arraycopy(args, 0, full, 1, args.length);
        full[args.length + 1] = "--output";
        full[args.length + 2] = o.toString();
        CliRun r = CliRun.of(full);
        assertEquals(1, r.exitCode(), r.err());
        assertEquals("tornado-lora quantize: error: " + expectedMessage + System.lineSeparator(), r.err());
        assertFalse(Files.exists(o));
    }

    @Test
    void quantizeErrorsAreOneLineAndNameTheProblem() throws IOException {
        String lora = fixture("lora_r4_bias.safetensors");
        assertQuantizeFails(lora + ": missing tensor 'base'", "--input", lora, "--key", "base");
        assertQuantizeFails(lora + ": tensor 'bias': expected a 2-D shape [rows, cols] but got [64]",
                "--input", lora, "--key", "bias");
        assertQuantizeFails(lora + ": tensor 'weight': scaler_block_size 256 does not divide the 128 blocks"
                + " (numel 8192 / block_size 64)", "--input", lora);
        assertQuantizeFails(lora + ": tensor 'weight': block_size 48 does not divide numel 8192 of [64, 128]",
                "--input", lora, "--block-size", "48", "--scaler-block-size", "1");
        assertQuantizeFails(lora + ": tensor 'weight': block_size (0) and scaler_block_size (1) must be positive",
                "--input", lora, "--block-size", "0", "--scaler-block-size", "1");

        String nf4 = fixture("nf4_randn_64x256.safetensors");
        assertQuantizeFails(nf4 + ": already holds tensor 'weight.quantized_data' of an NF4 record 'weight'",
                "--input", nf4);

        Path w = dir.resolve("w.safetensors");
        new SafeTensorsWriter().raw("weight", DType.BF16, new int[] {64, 256}, new byte[2 * 64 * 256]).write(w);
        assertQuantizeFails(w + ": tensor 'weight' has dtype BF16, expected F32", "--input", w.toString());

        new SafeTensorsWriter().f32("weight", new int[] {64, 256}, new float[64 * 256]).metadata("block_size", "32").write(w);
        assertQuantizeFails(w + ": metadata 'block_size' is 32 but --block-size is 64; the file's NF4 records share one"
                + " block_size", "--input", w.toString());

        float[] nan = new float[64 * 256];
        nan[300] = Float.NaN;
        new SafeTensorsWriter().f32("weight", new int[] {64, 256}, nan).write(w);
        assertQuantizeFails(w + ": tensor 'weight': weight: element 300 (row 1, column 44) is NaN; NF4 quantization"
                + " needs finite values", "--input", w.toString());

        Path missing = dir.resolve("missing.safetensors");
        assertQuantizeFails(missing + ": no such file", "--input", missing.toString());
    }

    @Test
    void quantizeUsageErrorsExitWith2() {
        CliRun r = CliRun.of("quantize", "--input", "a", "--output", "b", "--block-size", "sixty-four");
        assertEquals(2, r.exitCode());
        assertTrue(r.err().contains("--block-size"), r.err());
        r = CliRun.of("quantize", "--output", "b");
        assertEquals(2, r.exitCode());
        assertTrue(r.err().contains("--input"), r.err());
    }
}
