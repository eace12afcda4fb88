package dev.tornadolora.io;

import dev.tornadolora.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import dev.tornadolora.testing.Allocation;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
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

    /** One hostile or broken file per class of bad input, and the start of the message it must give. */
    static Stream<Arguments> malformedFiles() {
        String a8 = "\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}";
        String deep = "{\"__metadata__\": " + "[".repeat(40) + "]".repeat(40) + "}";
        byte[] latin1 = "{\"\u00e9\": 1}".getBytes(StandardCharsets.ISO_8859_1);
        return Stream.of(
            Arguments.of("shorter than the length prefix", new byte[3],
                "not a safetensors file (3 bytes, shorter than the 8-byte header length)"),
            Arguments.of("header length beyond the file", file(Long.MAX_VALUE, "{}"),
                "header length 9223372036854775807 does not fit in the file of 10 bytes"),
            Arguments.of("header length over 2^63 (negative as signed)", file(-8, "{}"),
                "header length 18446744073709551608 does not fit in the file of 10 bytes"),
            Arguments.of("not UTF-8", file(latin1.length, latin1), "header is not valid UTF-8"),
            Arguments.of("not JSON", header("{\"a\": {\"dtype\": \"F32\""), "header is not valid JSON"),
            Arguments.of("JSON but not an object", header("[1, 2]"),
                "header is not a JSON object (it must start with '{')"),
            Arguments.of("trailing JSON after the object", header("{} {}"), "header is not valid JSON: Trailing token"),
            Arguments.of("deeply nested JSON", header(deep), "header is not valid JSON: Document nesting depth (17)"),
            Arguments.of("entry not an object", header("{\"a\": 1}"), "tensor 'a': header entry is not a JSON object"),
            Arguments.of("unknown dtype", header("{\"a\": {\"dtype\": \"F8\", \"shape\": [1], \"data_offsets\": [0, 1]}}"),
                "tensor 'a': unsupported dtype 'F8' (supported: BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16,"
                    + " I32, U32, F32, F64, I64, U64)"),
            Arguments.of("negative dimension", header("{\"a\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}"),
                "tensor 'a': shape [-1] has a dimension that is not a non-negative integer"),
            Arguments.of("fractional dimension", header("{\"a\": {\"dtype\": \"F32\", \"shape\": [1.5], \"data_offsets\": [0, 4]}}"),
                "tensor 'a': shape [1.5] has a dimension that is not a non-negative integer"),
            Arguments.of("dimension beyond long", header("{\"a\": {\"dtype\": \"U8\", \"shape\": [99999999999999999999], \"data_offsets\": [0, 4]}}"),
                "tensor 'a': shape [99999999999999999999] has a dimension that is not a non-negative integer"),
            Arguments.of("dimension beyond int", header("{\"a\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296, 4294967296], \"data_offsets\": [0, 4]}}"),
                "tensor 'a': shape [4294967296,4294967296,4294967296] has a dimension over 2147483647"),
            Arguments.of("shape whose product overflows long", header("{\"a\": {\"dtype\": \"I64\", \"shape\": [2147483647, 2147483647, 2147483647, 2147483647, 2147483647], \"data_offsets\": [0, 8]}}"),
                "tensor 'a': shape [2147483647,2147483647,2147483647,2147483647,2147483647] has more elements than a Java array holds"),
            Arguments.of("shape claiming 8 GiB in a tiny file", header("{\"a\": {\"dtype\": \"I64\", \"shape\": [1073741824], \"data_offsets\": [0, 8589934592]}}"),
                "tensor 'a': data_offsets [0,8589934592] lie outside the data section of 0 bytes"),
            Arguments.of("offsets not integers", withData("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, \"4\"]}}", 4),
                "tensor 'a': data_offsets [0,\"4\"] are not non-negative integers"),
            Arguments.of("offsets begin after end", withData("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 4]}}", 8),
                "tensor 'a': data_offsets [8,4] begin after they end"),
            Arguments.of("offsets outside the data section", header("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}"),
                "tensor 'a': data_offsets [0,8] lie outside the data section of 0 bytes"),
            Arguments.of("offsets not matching dtype x shape", withData("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 4]}}", 4),
                "tensor 'a': data_offsets [0,4] span 4 bytes but F32 [2] needs 8"),
            Arguments.of("overlapping tensors", withData("{" + a8 + ", \"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", 8),
                "tensors 'a' and 'b' overlap"),
            Arguments.of("a hole between tensors", withData("{" + a8 + ", \"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [12, 16]}}", 16),
                "bytes [8, 12) of the data section, before tensor 'b', belong to no tensor (the format allows no holes)"),
            Arguments.of("a hole before the first tensor", withData("{\"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", 8),
                "bytes [0, 4) of the data section, before tensor 'b', belong to no tensor (the format allows no holes)"),
            Arguments.of("bytes after the last tensor", withData("{" + a8 + "}", 12),
                "the last 4 bytes of the 12-byte data section belong to no tensor (the format allows no holes)"),
            Arguments.of("duplicate tensor names", withData("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                        + " \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", 8),
                "header is not valid JSON: Duplicate field 'a'"),
            Arguments.of("metadata value not a string", header("{\"__metadata__\": {\"alpha\": 16}}"),
                "__metadata__ value of 'alpha' is not a string"),
            Arguments.of("metadata value an object", header("{\"__metadata__\": {\"alpha\": {\"x\": \"1\"}}}"),
                "__metadata__ value of 'alpha' is not a string"),
            Arguments.of("metadata not an object", header("{\"__metadata__\": [\"alpha\"]}"),
                "__metadata__ is not a JSON object of strings"),
            Arguments.of("a hostile name is quoted short and on one line",
                header("{\"" + "x".repeat(5000) + "\\n\": 1}"),
                "tensor '" + "x".repeat(120) + "...' (5001 characters): header entry is not a JSON object"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("malformedFiles")
    void malformedFilesAreRejectedWithTheReasonAndWithoutAllocatingTheirClaims(String what, byte[] bytes,
                                                                             String expectedSuffix) throws IOException {
        Path f = Files.write(dir.resolve("bad.safetensors"), bytes);
        long before = Allocation.currentThread();
        var e = assertThrows(SafeTensorsException.class, () -> SafeTensors.open(f));
        long allocated = Allocation.currentThread() - before;
        assertTrue(e.getMessage().startsWith(f + ": " + expectedSuffix), "message was: " + e.getMessage());
        assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
        assertTrue(allocated < 1 << 20, what + ": allocated " + allocated + " bytes");
        var again = assertThrows(SafeTensorsException.class, () -> SafeTensors.parse("mem", ByteBuffer.wrap(bytes)));
        assertEquals(e.getMessage().substring(f.toString().length()), again.getMessage().substring(3),
                "open and parse agree");
    }

    /** The length prefix claims 100000001 bytes and the (sparse) file has them: refused before reading any. */
    @Test
    void headerOverTheCapIsRefusedUnread() throws IOException {
        Path f = dir.resolve("big.safetensors");
        try (var ch = java.nio.channels.FileChannel.open(f, java.nio.file.StandardOpenOption.CREATE,
                java.nio.file.StandardOpenOption.WRITE)) {
            ch.write(le(8).putLong(SafeTensors.MAX_HEADER_BYTES + 1).flip());
            ch.write(ByteBuffer.wrap(new byte[] {'{', '}'}), 8 + SafeTensors.MAX_HEADER_BYTES);
        }
        long before = Allocation.currentThread();
        assertMessage(f + ": header length 100000001 is over the limit of 100000000 bytes", () -> SafeTensors.open(f));
        assertTrue(Allocation.currentThread() - before < 1 << 20);
    }

    /**
     * A 4.6 GB file (sparse: it takes no disk) with tensors on both sides of the 2 GiB and 4 GiB marks: those up to
     * 2 GiB read back wherever they lie, the one larger than any Java buffer is listed but refused by name.
     */
    @Test
    void filesOver2GiBAreMappedInWindows() throws IOException {
        long n1 = 600_000_000L, giant = 1_100_000_000L;
        String json = "{\"a\": {\"dtype\": \"U8\", \"shape\": [16], \"data_offsets\": [0, 16]},"
                + " \"big1\": {\"dtype\": \"I16\", \"shape\": [" + n1 + "], \"data_offsets\": [16, " + (16 + 2 * n1) + "]},"
                + " \"big2\": {\"dtype\": \"I16\", \"shape\": [" + n1 + "], \"data_offsets\": [" + (16 + 2 * n1) + ", " + (16 + 4 * n1) + "]},"
                + " \"giant\": {\"dtype\": \"I16\", \"shape\": [" + giant + "], \"data_offsets\": [" + (16 + 4 * n1) + ", " + (16 + 4 * n1 + 2 * giant) + "]},"
                + " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [" + (16 + 4 * n1 + 2 * giant) + ", " + (24 + 4 * n1 + 2 * giant) + "]}}";
        byte[] header = json.getBytes(StandardCharsets.UTF_8);
        long data = 8 + header.length;
        Path f = dir.resolve("huge.safetensors");
        try (var ch = java.nio.channels.FileChannel.open(f, java.nio.file.StandardOpenOption.CREATE,
                java.nio.file.StandardOpenOption.WRITE)) {
            ch.write(le(8).putLong(header.length).flip());
            ch.write(ByteBuffer.wrap(header));
            ch.write(ByteBuffer.wrap(new byte[] {1, 2, 3}), data);
            ch.write(le(2).putShort((short) -7).flip(), data + 16 + 2 * n1 - 2);  // last of big1
            ch.write(le(2).putShort((short) 9).flip(), data + 16 + 2 * n1);       // first of big2
            ch.write(le(8).putFloat(0.25f).putFloat(-3f).flip(), data + 16 + 4 * n1 + 2 * giant);
        }
        assertTrue(Files.size(f) > 4L << 30);
        SafeTensors st = SafeTensors.open(f);
        assertEquals(List.of("a", "big1", "big2", "giant", "b"), List.copyOf(st.names()));
        assertEquals(3, st.buffer("a").get(2));
        assertEquals(-7, st.buffer("big1").getShort((int) (2 * n1 - 2)));
        assertEquals(9, st.buffer("big2").getShort(0));
        assertArrayEquals(new float[] {0.25f, -3f}, st.f32("b", 2).data());
        assertEquals(giant, st.entry("giant").numel());
        assertMessage(f + ": tensor 'giant' spans 2200000000 bytes, more than one Java buffer holds (2147483647)",
                () -> st.buffer("giant"));
    }

    @Test
    void headerOrderNeedNotFollowTheOffsets() throws IOException {
        byte[] bytes = withData("{\"second\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]},"
                + " \"first\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                + " \"empty\": {\"dtype\": \"F32\", \"shape\": [0, 3], \"data_offsets\": [8, 8]},"
                + " \"__metadata__\": null}", 8);
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).putFloat(bytes.length - 8, 1.5f).putFloat(bytes.length - 4, -2f);
        SafeTensors st = SafeTensors.parse("mem", ByteBuffer.wrap(bytes));
        assertEquals(List.of("second", "first", "empty"), List.copyOf(st.names()));
        assertArrayEquals(new float[] {1.5f}, st.f32("first").data());
        assertArrayEquals(new float[] {-2f}, st.f32("second").data());
        assertEquals(0, st.f32("empty", 0, 3).numel());
        assertEquals(Map.of(), st.metadata());
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
