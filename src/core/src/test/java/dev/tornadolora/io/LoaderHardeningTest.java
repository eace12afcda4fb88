package dev.tornadolora.io;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tornadolora.nn.Activation;
import dev.tornadolora.nn.LoRALinear;
import dev.tornadolora.nn.Module;
import dev.tornadolora.nn.Sequential;
import dev.tornadolora.tensor.Tensor;
import dev.tornadolora.testing.Allocation;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Defect classes 5, 7, 8 and 9 of issue 12 in the loaders: allocation bounded by the file, degenerate adapters,
 * names escaped in messages, strict numbers and JSON. Each refusal is one IllegalArgumentException whose message
 * is asserted.
 */
class LoaderHardeningTest {
    @TempDir
    Path dir;

    private static Sequential model() {
        Map<String, Module> m = new LinkedHashMap<>();
        m.put("fc1", LoRALinear.builder(32, 32).rank(4).alpha(8).dropout(0.1f).seed(1).build());
        m.put("act1", Activation.relu());
        m.put("fc2", LoRALinear.builder(32, 16).rank(4).alpha(8).dropout(0.1f).seed(2).build());
        return new Sequential(m);
    }

    private Path saved(boolean adapters) throws IOException {
        Path f = dir.resolve("m.safetensors");
        ModelCheckpoint.save(f, model(), adapters);
        return f;
    }

    /** The file with its metadata entry {@code key} replaced (tensors copied). */
    private Path withMetadata(Path file, String key, String value) throws IOException {
        SafeTensors st = SafeTensors.open(file);
        SafeTensorsWriter w = new SafeTensorsWriter();
        for (String n : st.names()) w.copy(st, n);
        Map<String, String> meta = new LinkedHashMap<>(st.metadata());
        meta.put(key, value);
        Path out = dir.resolve("edited-" + file.getFileName());
        w.metadata(meta).write(out);
        return out;
    }

    private static String message(Runnable r) {
        return assertThrows(IllegalArgumentException.class, r::run).getMessage();
    }

    // ------------------------------------------------------------ class 7: allocation on the file's word

    @Test
    void aRankTheFileCannotBackIsRefusedWithoutAllocating() throws IOException {
        Path f = saved(false);
        String arch = SafeTensors.open(f).requireMetadata(ModelCheckpoint.ARCHITECTURE);
        Path hostile = withMetadata(f, ModelCheckpoint.ARCHITECTURE, arch.replaceFirst("\"rank\":4", "\"rank\":1000000"));
        long before = Allocation.currentThread();
        assertEquals(hostile + ": architecture entry 'fc1': rank 1000000 gives adapters larger than twice the [32, 32] base",
                message(() -> ModelCheckpoint.load(hostile)));
        assertTrue(Allocation.currentThread() - before < 4 << 20, "allocated " + (Allocation.currentThread() - before));

        Path withAdapters = saved(true);
        String arch2 = SafeTensors.open(withAdapters).requireMetadata(ModelCheckpoint.ARCHITECTURE);
        Path other = withMetadata(withAdapters, ModelCheckpoint.ARCHITECTURE, arch2.replaceFirst("\"rank\":4", "\"rank\":3"));
        assertEquals(other + ": architecture entry 'fc1': rank 3 but the file's adapters have shape [4, 32]",
                message(() -> ModelCheckpoint.load(other)));
    }

    @Test
    void layersClaimingTheFileTogetherAreRefused() throws IOException {
        Path f = saved(false);
        StringBuilder arch = new StringBuilder("[");
        for (int i = 0; i < 200; i++) {
            arch.append(i == 0 ? "" : ",").append("{\"name\":\"l").append(i).append("\",\"type\":\"lora\",\"in_dim\":64,"
                    + "\"out_dim\":64,\"rank\":1,\"alpha\":1.0}");
        }
        Path hostile = withMetadata(f, ModelCheckpoint.ARCHITECTURE, arch.append(']').toString());
        long before = Allocation.currentThread();
        String m = message(() -> ModelCheckpoint.load(hostile));
        assertTrue(m.contains(": architecture entry 'l") && m.contains("with the layers before it, more than the file's"), m);
        assertTrue(Allocation.currentThread() - before < 16 << 20, "allocated " + (Allocation.currentThread() - before));
    }

    private static byte[] file(String header) {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        return ByteBuffer.allocate(8 + h.length).order(ByteOrder.LITTLE_ENDIAN).putLong(h.length).put(h).array();
    }

    @Test
    void headerCountsAreBounded() {
        StringBuilder meta = new StringBuilder("{\"__metadata__\":{");
        for (int i = 0; i <= SafeTensors.MAX_METADATA_ENTRIES; i++) meta.append(i == 0 ? "" : ",").append("\"k").append(i).append("\":\"\"");
        String m = message(() -> SafeTensors.parse("f", ByteBuffer.wrap(file(meta.append("}}").toString()))));
        assertEquals("f: __metadata__ has 65537 entries, more than the 65536 accepted", m);

        StringBuilder tensors = new StringBuilder("{");
        for (int i = 0; i < 150_000; i++) {
            tensors.append(i == 0 ? "" : ",").append("\"t").append(i).append("\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}");
        }
        m = message(() -> SafeTensors.parse("f", ByteBuffer.wrap(file(tensors.append('}').toString()))));
        assertTrue(m.startsWith("f: header is not valid JSON: Token count (2000001) exceeds the maximum"), m);

        String dims = "[" + "1,".repeat(SafeTensors.MAX_DIMENSIONS) + "1]";
        m = message(() -> SafeTensors.parse("f", ByteBuffer.wrap(file("{\"t\":{\"dtype\":\"F32\",\"shape\":" + dims
                + ",\"data_offsets\":[0,4]}}"))));
        assertEquals("f: tensor 't': shape has 65 dimensions, more than the 64 accepted", m);
    }

    // ------------------------------------------------------------ class 5: degenerate adapters

    @Test
    void rankZeroAdaptersAreNotMerged() throws IOException {
        SafeTensorsWriter w = new SafeTensorsWriter().metadata("alpha", "8")
                .f32("fc1.weight", Tensor.of(new float[8], 2, 4))
                .f32("fc1.lora_a.weight", new int[] {0, 4}, new float[0])
                .f32("fc1.lora_b.weight", new int[] {2, 0}, new float[0]);
        SafeTensors st = SafeTensors.parse("c", ByteBuffer.wrap(w.toBytes()));
        assertEquals("module 'fc1': adapters of rank 0 (lora_a.weight [0, 4]); nothing to merge and alpha/r is undefined",
                message(() -> LoraMerge.merge(st, null, new LoraMerge.Options(false, false), s -> {})));
    }

    // ------------------------------------------------------------ class 8: names reach the terminal escaped

    @Test
    void controlCharactersInNamesAndValuesAreEscaped() throws IOException {
        assertEquals("a\\u001b[31mb\\u0007c\\u000dd\\u202e", SafeText.of("a\u001b[31mb\u0007c\rd\u202e"));
        assertEquals("'x'", SafeText.quote("x"));
        assertEquals("x".repeat(200) + "... (300 characters)", SafeText.of("x".repeat(300)));

        Path f = saved(false);
        SafeTensors st = SafeTensors.open(f);
        SafeTensorsWriter w = new SafeTensorsWriter().metadata(st.metadata());
        for (String n : st.names()) w.copy(st, n);
        w.f32("evil\u001b]0;owned\u0007\r.weight", Tensor.of(new float[] {1}, 1));
        Path hostile = dir.resolve("evil.safetensors");
        w.write(hostile);
        String m = message(() -> ModelCheckpoint.load(hostile));
        assertTrue(m.contains("evil\\u001b]0;owned\\u0007\\u000d.weight"), m);
        assertFalse(m.chars().anyMatch(c -> c == 0x1b || c == 0x07 || c == '\r'), m);

        SafeTensorsWriter merge = new SafeTensorsWriter().metadata("alpha", "\u001b[2Jx")
                .f32("weight", Tensor.of(new float[8], 2, 4))
                .f32("lora_a.weight", Tensor.of(new float[4], 1, 4))
                .f32("lora_b.weight", Tensor.of(new float[2], 2, 1));
        SafeTensors ms = SafeTensors.parse("c", ByteBuffer.wrap(merge.toBytes()));
        m = message(() -> LoraCheckpoint.read(ms));
        assertEquals("c: metadata 'alpha' is not a finite number: '\\u001b[2Jx'", m);
    }

    // ------------------------------------------------------------ class 9: strict parsing

    @Test
    void modelCheckpointNumbersAreExact() throws IOException {
        Path f = saved(false);
        String arch = SafeTensors.open(f).requireMetadata(ModelCheckpoint.ARCHITECTURE);
        Map<String, String> cases = new LinkedHashMap<>();
        cases.put(arch.replaceFirst("\"dropout\":0.1", "\"dropout\":\"abc\""), "architecture entry 'fc1': 'dropout' must be a number but is \"abc\"");
        cases.put(arch.replaceFirst("\"rank\":4", "\"rank\":4.5"), "architecture entry 'fc1': 'rank' must be an integer but is 4.5");
        cases.put(arch.replaceFirst("\"in_dim\":32", "\"in_dim\":4294967328"), "architecture entry 'fc1': 'in_dim' is 4294967328, outside [1, 2147483647]");
        cases.put(arch.replaceFirst("\"use_bias\":false", "\"use_bias\":\"yes\""), "architecture entry 'fc1': 'use_bias' must be true or false but is \"yes\"");
        cases.put(arch + " []", "metadata 'architecture': not valid JSON: Trailing token (of type START_ARRAY) found after value");
        cases.put(arch.replaceFirst("\"name\":\"fc2\"", "\"name\":\"fc1\""), "architecture entry 'fc1': the name is used twice");
        for (Map.Entry<String, String> c : cases.entrySet()) {
            Path hostile = withMetadata(f, ModelCheckpoint.ARCHITECTURE, c.getKey());
            String m = message(() -> ModelCheckpoint.load(hostile));
            assertTrue(m.startsWith(hostile + ": " + c.getValue()), m);
        }
    }

    @Test
    void aDenseAndAnNf4VersionOfOneWeightAreRefused() throws IOException {
        Map<String, Module> m = new LinkedHashMap<>();
        m.put("fc1", LoRALinear.builder(64, 64).rank(2).alpha(2).quantizeBase(true)
                .quantizationKwarg("scaler_block_size", 16).seed(1).build());
        Path f = dir.resolve("nf4.safetensors");
        ModelCheckpoint.save(f, new Sequential(m), true);
        SafeTensors st = SafeTensors.open(f);
        SafeTensorsWriter w = new SafeTensorsWriter().metadata(st.metadata());
        for (String n : st.names()) w.copy(st, n);
        w.f32("fc1.weight", Tensor.of(new float[64 * 64], 64, 64));
        Path both = dir.resolve("both.safetensors");
        w.write(both);
        assertEquals(both + ": holds both tensor 'fc1.weight' and an NF4 record 'fc1.weight.quantized_data'...;"
                + " a layer's base must be one or the other", message(() -> ModelCheckpoint.load(both)));
        SafeTensors bs = SafeTensors.open(both);
        assertEquals(both + ": holds both tensor 'fc1.weight' and an NF4 record 'fc1.weight.quantized_data'...;"
                + " a module's base must be one or the other",
                message(() -> LoraMerge.merge(bs, null, new LoraMerge.Options(false, false), s -> {})));
    }

    @Test
    void peftConfigIsParsedStrictlyAndComparedWithTheModel() throws IOException {
        Sequential model = model();
        Path peft = dir.resolve("peft");
        AdapterCheckpoints.savePeft(peft, model.loraModules());
        Path config = peft.resolve(AdapterCheckpoints.PEFT_CONFIG);
        String good = Files.readString(config);
        AdapterCheckpoints.loadPeft(peft, model().loraModules());  // the saved folder loads
        Map<String, String> cases = new LinkedHashMap<>();
        cases.put(good.replace("\"r\": 4", "\"r\": 8.7"), "'r' must be an integer but is 8.7");
        cases.put(good.replace("\"r\": 4", "\"r\": 4294967300"), "'r' is 4294967300, outside [1, 2147483647]");
        cases.put(good.replace("\"r\": 4", "\"r\": \"4\""), "'r' must be an integer but is \"4\"");
        cases.put(good + "{}", "not valid JSON: Trailing token");
        cases.put(good.replace("\"fc2\"", "\"fc3\""), "target_modules does not match the model's LoRA modules; not in the model: fc3; missing: fc2");
        cases.put(good.replace("\"lora_dropout\": 0.1", "\"lora_dropout\": 0.0"), "lora_dropout 0.0 but the model's layer 'fc1' has dropout 0.1");
        cases.put(good.replace("\"lora_dropout\": 0.1", "\"lora_dropout\": \"abc\""), "'lora_dropout' must be a number but is \"abc\"");
        cases.put(good.replace("\"peft_type\": \"LORA\"", "\"peft_type\": \"LORA\", \"peft_type\": \"LORA\""), "not valid JSON: Duplicate field 'peft_type'");
        // rank_pattern keys are PEFT's patterns ((.*\.)?(key)$ on the module name): fc.* gives fc1 rank 2
        cases.put(good.replace("\"rank_pattern\": {}", "\"rank_pattern\": {\"fc.*\": 2}"), "module 'fc1' has r=2");
        cases.put(good.replace("\"use_dora\": false", "\"use_dora\": true"), "use_rslora false, use_dora true but the model's layer 'fc1' has use_rslora false, use_dora false");
        for (Map.Entry<String, String> c : cases.entrySet()) {
            assertTrue(!c.getKey().equals(good), "case did not change the file: " + c.getValue());
            Files.writeString(config, c.getKey());
            String m = message(() -> AdapterCheckpoints.loadPeft(peft, model().loraModules()));
            assertTrue(m.startsWith(config + ": " + c.getValue()), m);
        }
    }

    @Test
    void strictJsonAccessors() {
        ObjectNode n = (ObjectNode) StrictJson.parse("s", "{\"i\": 8, \"f\": 8.7, \"big\": 4294967304, \"s\": \"abc\", \"b\": true}");
        assertEquals(8, StrictJson.requireInt(n, "i", 0, 100, "w"));
        assertEquals("w: 'f' must be an integer but is 8.7", message(() -> StrictJson.requireInt(n, "f", 0, 100, "w")));
        assertEquals("w: 'big' is 4294967304, outside [0, 2147483647]",
                message(() -> StrictJson.requireInt(n, "big", 0, Integer.MAX_VALUE, "w")));
        assertEquals("w: 's' must be a number but is \"abc\"", message(() -> StrictJson.requireDouble(n, "s", "w")));
        assertEquals("w: missing integer 'x'", message(() -> StrictJson.requireInt(n, "x", 0, 1, "w")));
        assertEquals(4294967304L, StrictJson.requireLong(n, "big", 0, Long.MAX_VALUE, "w"));
        assertTrue(message(() -> StrictJson.parse("s", "{} {}")).startsWith("s: not valid JSON: Trailing token"));
        assertTrue(message(() -> StrictJson.parse("s", "[".repeat(100))).startsWith("s: not valid JSON: Document nesting depth"));
        assertEquals("s: empty JSON document", message(() -> StrictJson.parse("s", "")));
        assertEquals(16.0, StrictJson.decimal("16"));
        assertEquals(1e-5, StrictJson.decimal("1.0E-5"));
        for (String bad : new String[] {"16f", "0x10p0", " 16", "NaN", "1e400", "+1", "1.", ""}) {
            assertThrows(NumberFormatException.class, () -> StrictJson.decimal(bad), bad);
        }
    }

    // ------------------------------------------------------------ determinism

    @Test
    void metadataOrderDoesNotChangeTheBytes() {
        Map<String, String> a = new LinkedHashMap<>(), b = new LinkedHashMap<>();
        a.put("x", "1");
        a.put("y", "2");
        b.put("y", "2");
        b.put("x", "1");
        Tensor t = Tensor.of(new float[] {1, 2}, 2);
        assertArrayEquals(new SafeTensorsWriter().metadata(a).f32("t", t).toBytes(),
                new SafeTensorsWriter().metadata(b).f32("t", t).toBytes());
    }
}
