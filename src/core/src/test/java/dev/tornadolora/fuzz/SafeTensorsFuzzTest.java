package dev.tornadolora.fuzz;

import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.Tuple;
import dev.tornadolora.io.DType;
import java.util.List;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.statistics.Statistics;
import net.jqwik.api.lifecycle.AfterContainer;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * Fuzzes the safetensors reader and everything built on it (NF4 records, LoRA checkpoints, a forward and backward
 * through the layer they give) with mutations of the seed corpus and with generated headers.
 * Tries per property: {@code jqwik.tries.default} (src/test/resources/junit-platform.properties for CI;
 * {@code ./build fuzz N} for a longer run). See {@link FuzzHarness} for what counts as a crash.
 */
class SafeTensorsFuzzTest {

    @Property
    void everyMutationOfAValidFileIsReadOrRejectedWithAMessage(@ForAll("mutatedSeeds") byte[] file) {
        Statistics.collect(FuzzHarness.run("safetensors", file, LoaderTargets::readAll));
    }

    @Property
    void generatedHeadersAreReadOrRejectedWithAMessage(@ForAll("generatedHeaders") byte[] file) {
        Statistics.collect(FuzzHarness.run("safetensors-generated", file, LoaderTargets::readAll));
    }

    @Provide
    Arbitrary<byte[]> mutatedSeeds() {
        return Mutations.mutatedFiles(FuzzSeeds.seeds());
    }

    /**
     * Headers built from the format's own vocabulary: up to four entries whose dtype, shape and data_offsets are
     * mostly well-formed but take edge values (so they reach the size, offset and tiling checks), an optional
     * __metadata__ and a data section of 0 to 64 bytes, with a correct length prefix.
     */
    @Provide
    Arbitrary<byte[]> generatedHeaders() {
        Arbitrary<String> number = Arbitraries.frequencyOf(
                Tuple.of(3, Arbitraries.integers().between(0, 40).map(String::valueOf)),
                Tuple.of(1, Arbitraries.of(Mutations.NUMBERS)));
        Arbitrary<String> string = Arbitraries.of(Mutations.STRINGS).map(SafeTensorsFuzzTest::jsonString);
        Arbitrary<String> dtype = Arbitraries.frequencyOf(
                Tuple.of(6, Arbitraries.of(DType.values()).map(d -> jsonString(d.name()))),
                Tuple.of(1, string), Tuple.of(1, number));
        Arbitrary<String> shape = Arbitraries.frequencyOf(
                Tuple.of(6, number.list().ofMaxSize(4).map(l -> "[" + String.join(",", l) + "]")),
                Tuple.of(1, string));
        Arbitrary<String> offsets = Arbitraries.frequencyOf(
                Tuple.of(6, number.list().ofMinSize(2).ofMaxSize(2).map(l -> "[" + String.join(",", l) + "]")),
                Tuple.of(1, number.list().ofMaxSize(3).map(l -> "[" + String.join(",", l) + "]")),
                Tuple.of(1, string));
        Arbitrary<String> entry = Combinators.combine(dtype.injectNull(0.05), shape.injectNull(0.05),
                offsets.injectNull(0.05)).as((d, sh, o) -> {
                    StringBuilder sb = new StringBuilder("{");
                    if (d != null) sb.append("\"dtype\":").append(d).append(',');
                    if (sh != null) sb.append("\"shape\":").append(sh).append(',');
                    if (o != null) sb.append("\"data_offsets\":").append(o).append(',');
                    return (sb.length() > 1 ? sb.substring(0, sb.length() - 1) : sb) + "}";
                });
        Arbitrary<String> metadata = Combinators.combine(string, Arbitraries.frequencyOf(
                Tuple.of(4, string), Tuple.of(1, number), Tuple.of(1, Arbitraries.just("{}"))))
                .as((k, v) -> k + ":" + v).list().ofMaxSize(3).map(l -> "\"__metadata__\":{" + String.join(",", l) + "}");
        Arbitrary<String> named = Combinators.combine(Arbitraries.of("a", "b", "c", "weight", "lora_a.weight",
                "lora_b.weight", "bias", "weight.quantized_data"), entry).as((n, e) -> jsonString(n) + ":" + e);
        return Combinators.combine(named.list().ofMaxSize(4), metadata.injectNull(0.7),
                        Arbitraries.integers().between(0, 64))
                .as((entries, meta, dataBytes) -> {
                    List<String> fields = new java.util.ArrayList<>(entries);
                    if (meta != null) fields.add(meta);
                    byte[] h = ("{" + String.join(",", fields) + "}").getBytes(StandardCharsets.UTF_8);
                    return ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN)
                            .putLong(h.length).put(h).array();
                });
    }

    private static String jsonString(String s) {
        return "\"" + s.replace("\"", "\\\"") + "\"";
    }

    @AfterContainer
    static void report() {
        System.out.println(FuzzHarness.summary());
        System.out.println(FuzzHarness.rejections("safetensors"));
        System.out.println(FuzzHarness.rejections("safetensors-generated"));
    }
}
