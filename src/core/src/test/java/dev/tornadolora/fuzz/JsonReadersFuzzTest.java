package dev.tornadolora.fuzz;

import dev.tornadolora.io.JsonLines;
import dev.tornadolora.io.TokenizerJson;
import dev.tornadolora.llama.LlamaConfig;
import dev.tornadolora.llama.LlamaForCausalLM;
import dev.tornadolora.llama.LoraSettings;
import dev.tornadolora.io.PeftAdapters;
import dev.tornadolora.testing.TestDevices;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.lifecycle.AfterContainer;
import net.jqwik.api.statistics.Statistics;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Fuzzes the JSON readers of issue 23 (config.json, the shard index, adapter_config.json, tokenizer.json, .jsonl)
 * through the one bounded reader: mutations of real files, each input written to a file and read as the commands
 * read it. An input is read or refused with a message, within the time limit and the memory bound per input of
 * {@link FuzzHarness} (no tree larger than its bytes allow).
 */
class JsonReadersFuzzTest {
    private static final Path GOLDEN = goldenModel();
    private static final Path WORK = tempDir();

    private static Path goldenModel() {
        for (String p : new String[] {"src/test/resources/golden/llama/gqa1_tied_tokenizer",
                "src/core/src/test/resources/golden/llama/gqa1_tied_tokenizer"}) {
            if (Files.isDirectory(Path.of(p))) return Path.of(p);
        }
        throw new IllegalStateException("no golden Llama fixture (scripts/llama_golden.py)");
    }

    private static Path tempDir() {
        try {
            Path d = Files.createTempDirectory("json-fuzz");
            d.toFile().deleteOnExit();
            return d;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static byte[] golden(String file) {
        try {
            return Files.readAllBytes(GOLDEN.resolve(file));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static final String INDEX = "{\"metadata\": {\"total_size\": 256}, \"weight_map\": {"
            + "\"model.embed_tokens.weight\": \"model-00001-of-00002.safetensors\","
            + "\"model.norm.weight\": \"model-00002-of-00002.safetensors\"}}";
    private static final String JSONL = "{\"text\": \"the cat\"}\n\n{\"text\": \"sat \\u00e9 \\\"on\\\" the mat\"}\r\n"
            + "{\"text\": \"x\", \"id\": 3}\n";

    /** Writes {@code bytes} as {@code name} in a fresh folder of its own; returns the folder. */
    private static Path folder(String name, byte[] bytes) throws IOException {
        Path d = Files.createTempDirectory(WORK, "in");
        Files.write(d.resolve(name), bytes);
        return d;
    }

    private static void delete(Path d) throws IOException {
        try (var s = Files.walk(d)) {
            for (Path p : s.sorted(java.util.Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        }
    }

    @Property
    void configJson(@ForAll("configs") byte[] file) {
        Statistics.collect(FuzzHarness.run("config.json", file, in -> {
            Path d = folder("config.json", in);
            try {
                LlamaConfig.read(d.resolve("config.json"));
            } finally {
                delete(d);
            }
        }));
    }

    @Property
    void shardIndex(@ForAll("indexes") byte[] file) {
        Statistics.collect(FuzzHarness.run("index", file, in -> {
            Path d = folder("model.safetensors.index.json", in);
            try {
                Files.copy(GOLDEN.resolve("model/config.json"), d.resolve("config.json"));
                try (LlamaForCausalLM m = LlamaForCausalLM.load(d, LoraSettings.none(false), TestDevices.named("jvm"))) {
                    throw new AssertionError("an index without its shards loaded: " + m.config());
                }
            } finally {
                delete(d);
            }
        }));
    }

    @Property
    void adapterConfig(@ForAll("adapterConfigs") byte[] file) {
        Statistics.collect(FuzzHarness.run("adapter_config.json", file, in -> {
            Path d = folder(PeftAdapters.CONFIG, in);
            try {
                PeftAdapters.read(d);  // no weights file: a config that parses is then refused for that
            } finally {
                delete(d);
            }
        }));
    }

    @Property
    void tokenizerJson(@ForAll("tokenizers") byte[] file) {
        Statistics.collect(FuzzHarness.run("tokenizer.json", file, in -> {
            Path d = folder("tokenizer.json", in);
            try {
                TokenizerJson.read(d.resolve("tokenizer.json"));
            } finally {
                delete(d);
            }
        }));
    }

    @Property
    void jsonl(@ForAll("jsonls") byte[] file) {
        Statistics.collect(FuzzHarness.run("jsonl", file, in -> {
            Path d = folder("d.jsonl", in);
            try {
                JsonLines.read(d.resolve("d.jsonl"), 1 << 16, "split it", (n, node, where) -> {
                    if (!node.isObject() || !node.path("text").isTextual()) {
                        throw new IllegalArgumentException(where + ": expected an object with a string \"text\"");
                    }
                });
            } finally {
                delete(d);
            }
        }));
    }

    @Provide
    Arbitrary<byte[]> configs() {
        return Mutations.mutatedFiles(List.of(golden("model/config.json")));
    }

    @Provide
    Arbitrary<byte[]> indexes() {
        return Mutations.mutatedFiles(List.of(INDEX.getBytes(StandardCharsets.UTF_8)));
    }

    @Provide
    Arbitrary<byte[]> adapterConfigs() {
        return Mutations.mutatedFiles(List.of(golden("adapter/adapter_config.json")));
    }

    @Provide
    Arbitrary<byte[]> tokenizers() {
        return Mutations.mutatedFiles(List.of(golden("model/tokenizer.json")));
    }

    @Provide
    Arbitrary<byte[]> jsonls() {
        return Mutations.mutatedFiles(List.of(JSONL.getBytes(StandardCharsets.UTF_8)));
    }

    @AfterContainer
    static void report() {
        System.out.println(FuzzHarness.summary());
        for (String t : List.of("config.json", "index", "adapter_config.json", "tokenizer.json", "jsonl")) {
            System.out.println(FuzzHarness.rejections(t));
        }
    }
}
