package dev.tornadolora.fuzz;

import dev.tornadolora.io.DType;
import dev.tornadolora.io.Nf4Record;
import dev.tornadolora.io.SafeTensorsWriter;
import dev.tornadolora.tensor.Nf4Tensor;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;

/**
 * The fuzz corpus under {@code src/test/resources/fuzz}: {@code seeds/} holds small valid files of every kind the
 * loaders read, which the fuzzers mutate; {@code regressions/} holds inputs that once crashed a loader. The seeds
 * are made by {@link #generate()}; {@code ./build fuzz-seeds} writes them again.
 */
final class FuzzSeeds {
    private FuzzSeeds() {}

    /** The seed files by name; every one is a valid file that the loaders read without complaint. */
    static Map<String, byte[]> generate() {
        SplittableRandom rng = new SplittableRandom(2024);
        Map<String, byte[]> seeds = new LinkedHashMap<>();
        seeds.put("lora.safetensors", new SafeTensorsWriter().metadata("alpha", "4.0")
                .f32("weight", new int[] {6, 8}, randn(rng, 48))
                .f32("bias", new int[] {6}, randn(rng, 6))
                .f32("lora_a.weight", new int[] {2, 8}, randn(rng, 16))
                .f32("lora_b.weight", new int[] {6, 2}, randn(rng, 12))
                .toBytes());
        Nf4Tensor base = Nf4Tensor.quantize(randn(rng, 64), 4, 16, 8, 4);
        seeds.put("qlora.safetensors", Nf4Record.write(new SafeTensorsWriter().metadata("alpha", "2"), "weight", base)
                .f32("lora_a.weight", new int[] {2, 16}, randn(rng, 32))
                .f32("lora_b.weight", new int[] {4, 2}, randn(rng, 8))
                .toBytes());
        seeds.put("nf4_record.safetensors", Nf4Record.write(new SafeTensorsWriter(), "layer.w",
                Nf4Tensor.quantize(randn(rng, 60), 6, 10, 6, 5)).toBytes());
        seeds.put("dtypes.safetensors", new SafeTensorsWriter().metadata("note", "every dtype, a scalar, an empty one")
                .raw("bool", DType.BOOL, new int[] {3}, new byte[] {0, 1, 1})
                .raw("u8", DType.U8, new int[] {2}, new byte[] {0, (byte) 255})
                .raw("i8", DType.I8, new int[] {2}, new byte[] {-128, 127})
                .raw("f8", DType.F8_E4M3, new int[] {1}, new byte[] {0x38})
                .raw("i16", DType.I16, new int[] {1}, le(2).putShort((short) -2).array())
                .raw("f16", DType.F16, new int[] {2}, le(4).putShort(Float.floatToFloat16(0.5f))
                        .putShort(Float.floatToFloat16(-3f)).array())
                .bf16("bf16", new int[] {2}, new float[] {1.5f, -0.25f})
                .raw("i32", DType.I32, new int[] {1}, le(4).putInt(-7).array())
                .f32("f32", new int[] {2, 2}, new float[] {1, -2, Float.MIN_VALUE, 3e38f})
                .raw("f64", DType.F64, new int[] {1}, le(8).putDouble(Math.PI).array())
                .raw("u64", DType.U64, new int[] {1}, le(8).putLong(-1).array())
                .f32("scalar", new int[0], new float[] {42f})
                .f32("empty", new int[] {0, 4}, new float[0])
                .toBytes());
        seeds.put("empty.safetensors", new SafeTensorsWriter().toBytes());
        seeds.put("metadata_only.safetensors", new SafeTensorsWriter().metadata("format", "pt")
                .metadata("unicode \u00e9\u4e2d", "\ud83d\ude00").toBytes());
        seeds.put("unordered.safetensors", handWritten("{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},"
                + "\"__metadata__\":{\"k\":\"v\"},\"a\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8));
        return seeds;
    }

    static List<byte[]> seeds() {
        return files("seeds");
    }

    static List<byte[]> regressions() {
        return files("regressions");
    }

    /** All corpus files under {@code fuzz/<kind>} on the test class path, by name. */
    static List<Path> paths(String kind) {
        try {
            Path dir = Path.of(FuzzSeeds.class.getResource("/fuzz/" + kind).toURI());
            try (Stream<Path> s = Files.list(dir)) {
                return s.filter(Files::isRegularFile).sorted().toList();
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    private static List<byte[]> files(String kind) {
        return paths(kind).stream().map(p -> {
            try {
                return Files.readAllBytes(p);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }).toList();
    }

    /** {@code ./build fuzz-seeds}: writes the seeds into the source tree. */
    public static void main(String[] args) throws IOException {
        Path dir = Files.createDirectories(Path.of(args.length > 0 ? args[0] : "src/test/resources/fuzz/seeds"));
        for (Map.Entry<String, byte[]> e : generate().entrySet()) {
            Files.write(dir.resolve(e.getKey()), e.getValue());
        }
        System.out.println("wrote " + generate().size() + " seeds to " + dir);
    }

    private static byte[] handWritten(String json, int dataBytes) {
        byte[] h = json.getBytes(StandardCharsets.UTF_8);
        return le(8 + h.length + dataBytes).putLong(h.length).put(h).array();
    }

    private static float[] randn(SplittableRandom rng, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) (rng.nextGaussian() * 0.5);
        return v;
    }

    private static ByteBuffer le(int n) {
        return ByteBuffer.allocate(n).order(ByteOrder.LITTLE_ENDIAN);
    }
}
