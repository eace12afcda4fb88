package dev.tornadolora.io;

import dev.tornadolora.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SafeTensorsTest {
    @TempDir
    Path dir;

    @Test
    void roundTripsEveryDtypeAndMetadata() throws IOException {
        float[] v = {1.5f, -2.25f, 3e-3f, 65504f, -0f, 1e-8f};
        Path f = dir.resolve("t.safetensors");
        new SafeTensorsWriter()
                .metadata("alpha", "16.0").metadata("note", "ünïcode")
                .f32("a", new int[] {2, 3}, v)
                .bf16("b", new int[] {6}, v)
                .raw("u", DType.U8, new int[] {3}, new byte[] {0, (byte) 200, 7})
                .raw("i", DType.I8, new int[] {2}, new byte[] {-128, 127})
                .raw("i32", DType.I32, new int[] {1}, le(4).putInt(-7).array())
                .raw("i64", DType.I64, new int[] {1}, le(8).putLong(1L << 40).array())
                .raw("h", DType.F16, new int[] {2}, le(4).putShort(Float.floatToFloat16(0.5f)).putShort(Float.floatToFloat16(-3f)).array())
                .raw("scalar", DType.F32, new int[] {}, le(4).putFloat(42f).array())
                .write(f);
        SafeTensors st = SafeTensors.open(f);
        assertEquals(Map.of("alpha", "16.0", "note", "ünïcode"), st.metadata());
        assertEquals(List.of("a", "b", "u", "i", "i32", "i64", "h", "scalar"), List.copyOf(st.names()));
        Tensor a = st.f32("a", 2, 3);
        assertArrayEquals(v, a.data());
        float[] bf = st.floats("b").data();
        for (int k = 0; k < v.length; k++) assertEquals(v[k], bf[k], Math.abs(v[k]) / 128 + 1e-40);
        assertArrayEquals(new float[] {0.5f, -3f}, st.floats("h").data());
        assertArrayEquals(new byte[] {0, (byte) 200, 7}, st.bytes("u", DType.U8));
        assertArrayEquals(new byte[] {-128, 127}, st.bytes("i", DType.I8));
        assertEquals(42f, st.f32("scalar").data()[0]);
        assertEquals(0, st.f32("scalar").shape().length);
        long headerLen = ByteBuffer.wrap(Files.readAllBytes(f), 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertEquals(0, headerLen % 8, "header padded to 8 bytes");
    }

    @Test
    void wrongDtypeShapeAndMissingNamesAreNamed() throws IOException {
        Path f = dir.resolve("t.safetensors");
        new SafeTensorsWriter().f32("x", new int[] {2, 4}, new float[8])
                .raw("codes", DType.U8, new int[] {2}, new byte[2]).write(f);
        SafeTensors st = SafeTensors.open(f);
        assertMessage(f + ": missing tensor 'y'", () -> st.f32("y"));
        assertMessage(f + ": tensor 'codes' has dtype U8, expected F32", () -> st.f32("codes"));
        assertMessage(f + ": tensor 'x': expected shape [*, 3] but got [2, 4]", () -> st.f32("x", -1, 3));
        assertMessage(f + ": missing metadata 'alpha'", () -> st.requireMetadata("alpha"));
        assertMessage(f + ": tensor 'codes' has dtype U8, expected F32, F16 or BF16", () -> st.floats("codes"));
    }

    @Test
    void malformedFilesAreRejectedWithTheReason() throws IOException {
        assertBad(new byte[3], "not a safetensors file (3 bytes, shorter than the 8-byte header length)");
        assertBad(file(Long.MAX_VALUE, "{}"), "header length 9223372036854775807 does not fit in the file of 10 bytes");
        assertBad(header("{\"a\": {\"dtype\": \"F32\""), "header is not valid JSON");
        assertBad(header("[1, 2]"), "header is not a JSON object");
        assertBad(header("{\"__metadata__\": {\"alpha\": 16}}"), "__metadata__ value of 'alpha' is not a string");
        assertBad(header("{\"a\": {\"dtype\": \"F8\", \"shape\": [1], \"data_offsets\": [0, 1]}}"),
                "tensor 'a': unsupported dtype 'F8' (supported: F32, F16, BF16, U8, I8, I32, I64)");
        assertBad(header("{\"a\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}"),
                "tensor 'a': shape [-1] has a dimension that is not a non-negative integer");
        assertBad(header("{\"a\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296, 4294967296], \"data_offsets\": [0, 4]}}"),
                "tensor 'a': shape [4294967296,4294967296,4294967296] has more elements than a Java array holds");
        assertBad(header("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 4]}}"),
                "tensor 'a': data_offsets [0,4] lie outside the data section of 0 bytes");
        assertBad(withData("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 4]}}", 8),
                "tensor 'a': data_offsets [0,4] span 4 bytes but F32 [2] needs 8");
        assertBad(withData("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                        + " \"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", 8),
                "tensors 'a' and 'b' overlap");
        assertBad(withData("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                        + " \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", 8),
                "header is not valid JSON: Duplicate field 'a'");
        byte[] latin1 = "{\"\u00e9\": 1}".getBytes(StandardCharsets.ISO_8859_1);
        assertBad(file(latin1.length, latin1), "header is not valid UTF-8");
    }

    @Test
    void unreadableFileNamesThePath() {
        Path missing = dir.resolve("nope.safetensors");
        assertMessage(missing + ": no such file", () -> SafeTensors.open(missing));
    }

    private void assertBad(byte[] bytes, String expectedSuffix) throws IOException {
        Path f = Files.write(dir.resolve("bad.safetensors"), bytes);
        var e = assertThrows(SafeTensorsException.class, () -> SafeTensors.open(f));
        assertTrue(e.getMessage().startsWith(f + ": " + expectedSuffix), "message was: " + e.getMessage());
    }

    private static void assertMessage(String expected, org.junit.jupiter.api.function.Executable ex) {
        var e = assertThrows(IllegalArgumentException.class, ex);
        assertEquals(expected, e.getMessage());
    }

    private static ByteBuffer le(int n) {
        return ByteBuffer.allocate(n).order(ByteOrder.LITTLE_ENDIAN);
    }

    private static byte[] header(String json) {
        return withData(json, 0);
    }

    private static byte[] withData(String json, int dataBytes) {
        byte[] h = json.getBytes(StandardCharsets.UTF_8);
        byte[] f = file(h.length, h);
        return java.util.Arrays.copyOf(f, f.length + dataBytes);
    }

    private static byte[] file(long headerLength, String json) {
        return file(headerLength, json.getBytes(StandardCharsets.UTF_8));
    }

    private static byte[] file(long headerLength, byte[] header) {
        return le(8 + header.length).putLong(headerLength).put(header).array();
    }
}
