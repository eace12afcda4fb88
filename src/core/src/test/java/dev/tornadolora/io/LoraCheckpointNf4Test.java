package dev.tornadolora.io;

import dev.tornadolora.tensor.Nf4Tensor;
import dev.tornadolora.nn.LoRALinear;
import dev.tornadolora.testing.Golden;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Set;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A checkpoint's base as an NF4 record instead of {@code weight}, and the ways that can go wrong. */
class LoraCheckpointNf4Test {

    static final String QLORA = "qlora_sq256_r16_bias.safetensors";

    @TempDir
    Path dir;

    /** The fixture without the tensors {@code drop}, then whatever {@code add} adds (tensors, metadata). */
    private Path variant(String fixture, Set<String> drop, Consumer<SafeTensorsWriter> add) throws IOException {
        SafeTensors f = Golden.open(fixture);
        SafeTensorsWriter w = new SafeTensorsWriter().metadata(f.metadata());
        for (String name : f.names()) {
            if (!drop.contains(name)) w.copy(f, name);
        }
        add.accept(w);
        Path p = dir.resolve("variant.safetensors");
        w.write(p);
        return p;
    }

    private static String readError(Path p) {
        return assertThrows(SafeTensorsException.class, () -> LoraCheckpoint.read(SafeTensors.open(p))).getMessage();
    }

    @Test
    void nf4BaseIsTheStoredRecordWithoutAnFp32Copy() {
        SafeTensors f = Golden.open(QLORA);
        LoRALinear layer = LoraCheckpoint.read(f);
        assertTrue(layer.quantizeBase());
        Nf4Tensor base = assertInstanceOf(Nf4Tensor.class, layer.base());
        assertEquals(256, base.rows());
        assertEquals(256, base.cols());
        assertArrayEquals(f.bytes("weight.quantized_data", DType.U8), base.packedCodes());
        assertArrayEquals(f.bytes("weight.quantized_scalers", DType.I8), base.quantizedScalers());
        assertArrayEquals(f.f32("weight.dequantized").data(), base.dequantize());
        assertEquals(16, layer.rank());
        assertTrue(layer.useBias());
    }

    @Test
    void denseCheckpointStillLoadsDense() {
        LoRALinear layer = LoraCheckpoint.read(Golden.open("lora_r4_bias.safetensors"));
        assertFalse(layer.quantizeBase());
        assertSame(dev.tornadolora.tensor.DenseWeight.class, layer.base().getClass());
    }

    @Test
    void bothBasesAreRefused() throws IOException {
        SafeTensors f = Golden.open(QLORA);
        Path p = variant(QLORA, Set.of(), w -> w.f32("weight", f.f32("weight.dequantized")));
        assertEquals(p + ": holds both tensor 'weight' and an NF4 record 'weight.quantized_data'...; a checkpoint's base"
                + " must be one or the other", readError(p));
    }

    @Test
    void noBaseIsRefused() throws IOException {
        Path p = variant(QLORA, Set.copyOf(Nf4Record.tensorNames("weight")), w -> {});
        assertEquals(p + ": missing tensor 'weight' (or an NF4 record weight.quantized_data, weight.quantized_scalers,"
                + " weight.quantization_factor, weight.scaler_mean)", readError(p));
    }

    @Test
    void incompleteRecordIsNamed() throws IOException {
        Path p = variant(QLORA, Set.of("weight.scaler_mean"), w -> {});
        assertEquals(p + ": NF4 record 'weight' is incomplete: missing tensor 'weight.scaler_mean'", readError(p));
    }

    /** lora_a [16, 256] and lora_b [256, 16] fix the base at [256, 256]; the record's metadata must agree. */
    @Test
    void recordShapeMustMatchTheAdapters() throws IOException {
        Path p = variant(QLORA, Set.of(), w -> w.metadata("weight.shape", "[128, 512]"));
        assertEquals(p + ": NF4 record 'weight': expected shape [256, 256] but metadata 'weight.shape' says [128, 512]",
                readError(p));
        // in = 256 from lora_a, but the record holds a [256, 512] weight and has no shape metadata to say so
        Path q = variant("qlora_in512_r4.safetensors", Set.of("lora_a.weight"),
                w -> w.f32("lora_a.weight", new int[] {4, 256}, new float[4 * 256]));
        assertEquals(q + ": tensor 'weight.quantized_data': expected shape [32768] (numel 65536 of [256, 256] / 2) but got"
                + " [65536]", readError(q));
    }
}
