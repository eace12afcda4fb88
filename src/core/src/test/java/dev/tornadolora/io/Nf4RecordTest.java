package dev.tornadolora.io;

import dev.tornadolora.tensor.Nf4Tensor;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Reading and writing NF4 records, and every malformed record, by its message. */
class Nf4RecordTest {

    @TempDir
    Path dir;

    /** One tensor of a file being put together. */
    record Raw(DType dtype, int[] shape, byte[] bytes) {}

    private final Nf4Tensor weight = Nf4Tensor.quantize(randn(64 * 256), 64, 256);
    private final Map<String, Raw> tensors = new LinkedHashMap<>();
    private final Map<String, String> metadata = new LinkedHashMap<>();
    private Path file;

    private static float[] randn(int n) {
        SplittableRandom r = new SplittableRandom(11);
        float[] w = new float[n];
        for (int i = 0; i < n; i++) w[i] = (float) r.nextGaussian();
        return w;
    }

    private static byte[] f32Bytes(float... v) {
        ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(v);
        return b.array();
    }

    /** The valid record of {@link #weight} with its metadata but without the shape, as the fixtures hold it. */
    @BeforeEach
    void validRecord() {
        tensors.put("weight.quantized_data", new Raw(DType.U8, new int[] {8192}, weight.packedCodes()));
        tensors.put("weight.quantized_scalers", new Raw(DType.I8, new int[] {256}, weight.quantizedScalers()));
        tensors.put("weight.quantization_factor", new Raw(DType.F32, new int[] {1}, f32Bytes(weight.quantizationFactor())));
        tensors.put("weight.scaler_mean", new Raw(DType.F32, new int[0], f32Bytes(weight.scalerMean())));
        metadata.put("block_size", "64");
        metadata.put("scaler_block_size", "256");
        file = dir.resolve("record.safetensors");
    }

    private SafeTensors written() throws IOException {
        SafeTensorsWriter w = new SafeTensorsWriter().metadata(metadata);
        tensors.forEach((name, t) -> w.raw(name, t.dtype(), t.shape(), t.bytes()));
        w.write(file);
        return SafeTensors.open(file);
    }

    /** The message of reading the record as [64, 256]; the file's path starts every message. */
    private String readError() throws IOException {
        SafeTensors f = written();
        String m = assertThrows(SafeTensorsException.class, () -> Nf4Record.read(f, "weight", 64, 256)).getMessage();
        assertTrue(m.startsWith(file + ": "), m);
        return m.substring(file.toString().length() + 2);
    }

    private static void assertSameRecord(Nf4Tensor expected, Nf4Tensor actual) {
        assertEquals(expected.rows(), actual.rows());
        assertEquals(expected.cols(), actual.cols());
        assertEquals(expected.blockSize(), actual.blockSize());
        assertEquals(expected.scalerBlockSize(), actual.scalerBlockSize());
        assertArrayEquals(expected.packedCodes(), actual.packedCodes());
        assertArrayEquals(expected.quantizedScalers(), actual.quantizedScalers());
        assertArrayEquals(expected.quantizationFactor(), actual.quantizationFactor());
        assertEquals(expected.scalerMean(), actual.scalerMean());
    }

    @Test
    void writeThenReadGivesTheSameRecordAndShape() throws IOException {
        Nf4Tensor t = Nf4Tensor.quantize(randn(4 * 4096), 4, 4096, 32, 128);
        SafeTensorsWriter w = new SafeTensorsWriter().f32("bias", new int[] {4}, new float[4]);
        Nf4Record.write(w, "layer.w", t).write(file);
        SafeTensors f = SafeTensors.open(file);
        assertEquals("[4, 4096]", f.metadata().get("layer.w.shape"));
        assertEquals("32", f.metadata().get("block_size"));
        assertEquals("128", f.metadata().get("scaler_block_size"));
        assertEquals(DType.U8, f.entry("layer.w.quantized_data").dtype());
        assertEquals(DType.I8, f.entry("layer.w.quantized_scalers").dtype());
        assertArrayEquals(new int[0], f.entry("layer.w.scaler_mean").shape());
        assertSameRecord(t, Nf4Record.read(f, "layer.w"));
        assertSameRecord(t, Nf4Record.read(f, "layer.w", 4, 4096));
        assertTrue(Nf4Record.present(f, "layer.w"));
        assertFalse(Nf4Record.present(f, "weight"));
    }

    @Test
    void fixtureLayoutWithoutShapeMetadataReadsWithAGivenShape() throws IOException {
        assertSameRecord(weight, Nf4Record.read(written(), "weight", 64, 256));
    }

    @Test
    void missingPartsAreNamed() throws IOException {
        for (String part : Nf4Record.tensorNames("weight")) {
            validRecord();
            Raw removed = tensors.remove(part);
            assertTrue(Nf4Record.present(written(), "weight"));
            assertEquals("NF4 record 'weight' is incomplete: missing tensor '" + part + "'", readError());
            tensors.put(part, removed);
        }
    }

    @Test
    void wrongDTypesAreNamed() throws IOException {
        tensors.put("weight.quantized_data", new Raw(DType.I8, new int[] {8192}, weight.packedCodes()));
        assertEquals("tensor 'weight.quantized_data' has dtype I8, expected U8", readError());
        validRecord();
        tensors.put("weight.quantized_scalers", new Raw(DType.U8, new int[] {256}, weight.quantizedScalers()));
        assertEquals("tensor 'weight.quantized_scalers' has dtype U8, expected I8", readError());
        validRecord();
        tensors.put("weight.quantization_factor", new Raw(DType.I32, new int[] {1}, new byte[4]));
        assertEquals("tensor 'weight.quantization_factor' has dtype I32, expected F32", readError());
        validRecord();
        tensors.put("weight.scaler_mean", new Raw(DType.BF16, new int[0], new byte[2]));
        assertEquals("tensor 'weight.scaler_mean' has dtype BF16, expected F32", readError());
    }

    @Test
    void wrongLengthsAreNamedWithTheirDerivation() throws IOException {
        tensors.put("weight.quantized_data", new Raw(DType.U8, new int[] {8190}, new byte[8190]));
        assertEquals("tensor 'weight.quantized_data': expected shape [8192] (numel 16384 of [64, 256] / 2) but got [8190]",
                readError());
        validRecord();
        tensors.put("weight.quantized_data", new Raw(DType.U8, new int[] {64, 128}, weight.packedCodes()));
        assertEquals("tensor 'weight.quantized_data': expected shape [8192] (numel 16384 of [64, 256] / 2) but got [64, 128]",
                readError());
        validRecord();
        tensors.put("weight.quantized_scalers", new Raw(DType.I8, new int[] {128}, new byte[128]));
        assertEquals("tensor 'weight.quantized_scalers': expected shape [256] (numel 16384 of [64, 256] / block_size 64)"
                + " but got [128]", readError());
        validRecord();
        tensors.put("weight.quantization_factor", new Raw(DType.F32, new int[] {2}, f32Bytes(1f, 1f)));
        assertEquals("tensor 'weight.quantization_factor': expected shape [1] (256 blocks / scaler_block_size 256)"
                + " but got [2]", readError());
        validRecord();
        tensors.put("weight.scaler_mean", new Raw(DType.F32, new int[] {1}, f32Bytes(1f)));
        assertEquals("tensor 'weight.scaler_mean': expected shape [] but got [1]", readError());
    }

    /** A record quantized with block_size 64 but labelled 32 is caught by its lengths, not decoded wrongly. */
    @Test
    void blockSizeMetadataIsCheckedAgainstTheLengths() throws IOException {
        metadata.put("block_size", "32");
        assertEquals("tensor 'weight.quantized_scalers': expected shape [512] (numel 16384 of [64, 256] / block_size 32)"
                + " but got [256]", readError());
        metadata.put("block_size", "48");
        assertEquals("NF4 record 'weight': block_size 48 does not divide numel 16384 of [64, 256]", readError());
        metadata.put("block_size", "64");
        metadata.put("scaler_block_size", "100");
        assertEquals("NF4 record 'weight': scaler_block_size 100 does not divide the 256 blocks (numel 16384 / block_size 64)",
                readError());
    }

    @Test
    void blockSizeMetadataMustBeAPositiveInteger() throws IOException {
        metadata.remove("block_size");
        assertEquals("missing metadata 'block_size' (needed by an NF4 record)", readError());
        for (String bad : new String[] {"abc", "0", "-64", "64.0", ""}) {
            metadata.put("block_size", bad);
            assertEquals("metadata 'block_size' is not a positive integer: '" + bad + "'", readError());
        }
        metadata.put("block_size", "64");
        metadata.remove("scaler_block_size");
        assertEquals("missing metadata 'scaler_block_size' (needed by an NF4 record)", readError());
    }

    @Test
    void shapeMetadataIsRequiredWithoutAGivenShapeAndMustAgree() throws IOException {
        SafeTensors noShape = written();
        String m = assertThrows(SafeTensorsException.class, () -> Nf4Record.read(noShape, "weight")).getMessage();
        assertEquals(file + ": NF4 record 'weight': missing metadata 'weight.shape' (the weight's shape, e.g. \"[128, 512]\")", m);

        metadata.put("weight.shape", "[256, 64]");
        assertEquals("NF4 record 'weight': expected shape [64, 256] but metadata 'weight.shape' says [256, 64]", readError());
        for (String bad : new String[] {"[64]", "[0, 16384]", "64x256", "[64, 256.5]", "[64, 256, 1]"}) {
            metadata.put("weight.shape", bad);
            assertEquals("metadata 'weight.shape' is not a shape [rows, cols] of two positive integers: '" + bad + "'",
                    readError());
        }
    }

    @Test
    void impossibleValuesAreNamed() throws IOException {
        tensors.put("weight.quantization_factor", new Raw(DType.F32, new int[] {1}, f32Bytes(-1f)));
        assertEquals("NF4 record 'weight': weight.quantization_factor[0]: expected a positive value but got -1.0",
                readError());
        validRecord();
        tensors.put("weight.scaler_mean", new Raw(DType.F32, new int[0], f32Bytes(Float.NaN)));
        assertEquals("NF4 record 'weight': weight.scaler_mean: expected a finite value but got NaN", readError());
    }

    @Test
    void aShapeThatCannotHoldTheRecordIsNamed() throws IOException {
        SafeTensors f = written();
        String m = assertThrows(SafeTensorsException.class, () -> Nf4Record.read(f, "weight", 63, 250)).getMessage();
        assertEquals(file + ": NF4 record 'weight': block_size 64 does not divide numel 15750 of [63, 250]", m);
        m = assertThrows(SafeTensorsException.class, () -> Nf4Record.read(f, "weight", 96, 256)).getMessage();
        assertEquals(file + ": NF4 record 'weight': scaler_block_size 256 does not divide the 384 blocks"
                + " (numel 24576 / block_size 64)", m);
        m = assertThrows(SafeTensorsException.class, () -> Nf4Record.read(f, "weight", 128, 256)).getMessage();
        assertEquals(file + ": tensor 'weight.quantized_data': expected shape [16384] (numel 32768 of [128, 256] / 2)"
                + " but got [8192]", m);
    }

    @Test
    void oddSizesAreNamed() throws IOException {
        SafeTensors f = written();
        String m = assertThrows(SafeTensorsException.class, () -> Nf4Record.read(f, "weight", 3, 5)).getMessage();
        assertEquals(file + ": NF4 record 'weight': numel 15 of [3, 5] is odd: NF4 packs two codes per byte", m);
        tensors.put("weight.quantized_data", new Raw(DType.U8, new int[] {8191}, new byte[8191]));
        assertEquals("tensor 'weight.quantized_data': expected shape [8192] (numel 16384 of [64, 256] / 2) but got [8191]",
                readError());
    }

    /** A forged factor so small that a scale overflows would decode to infinities: refused instead. */
    @Test
    void scalesThatWouldDecodeToInfinityAreNamed() throws IOException {
        byte[] scalers = new byte[256];
        scalers[3] = 100;
        tensors.put("weight.quantized_scalers", new Raw(DType.I8, new int[] {256}, scalers));
        tensors.put("weight.quantization_factor", new Raw(DType.F32, new int[] {1}, f32Bytes(1e-37f)));
        assertEquals("NF4 record 'weight': weight.quantized_scalers[3] / quantization_factor[0] + scaler_mean = 100 / 1.0E-37 + "
                + weight.scalerMean() + " is not finite", readError());
    }

    /** A shape in the metadata that no array could hold is refused before anything is allocated for it. */
    @Test
    void hugeShapeMetadataIsRefusedWithoutAllocating() throws IOException {
        metadata.put("weight.shape", "[2147483647, 2147483647]");
        SafeTensors f = written();
        long before = dev.tornadolora.testing.Allocation.currentThread();
        String m = assertThrows(SafeTensorsException.class, () -> Nf4Record.read(f, "weight")).getMessage();
        assertEquals(file + ": NF4 record 'weight': NF4 weight [2147483647, 2147483647] is too large for one array", m);
        assertTrue(dev.tornadolora.testing.Allocation.currentThread() - before < 1 << 20);
    }
}
