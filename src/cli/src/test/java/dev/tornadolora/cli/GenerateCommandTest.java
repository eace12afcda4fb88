package dev.tornadolora.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code generate} end to end on the chat golden model (byte-level BPE tokenizer, llama3's template, a PEFT
 * adapter): --prompt and --messages, with and without the adapter, the ids and text of transformers'
 * {@code generate(do_sample=False)} and {@code decode(skip_special_tokens=True)} (chat/generate.json of
 * scripts/generate_golden.py) in --json and on stdout; --merge; a seed that reproduces; bad input in one line.
 */
class GenerateCommandTest {
    static final Path CHAT = Path.of("../data/src/test/resources/golden/chat");
    static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    static JsonNode golden() throws IOException {
        Path f = CHAT.resolve("generate.json");
        Assumptions.assumeTrue(Files.isRegularFile(f), "no " + f + " (scripts/generate_golden.py)");
        return JSON.readTree(f.toFile());
    }

    static List<Integer> ints(JsonNode a) {
        List<Integer> v = new ArrayList<>();
        a.forEach(x -> v.add(x.asInt()));
        return v;
    }

    List<String> args(JsonNode golden, JsonNode c, Path json) throws IOException {
        List<String> a = new ArrayList<>(List.of("generate", "--model", CHAT.resolve("model").toString(), "--greedy",
                "--max-new-tokens", "32", "--device", "jvm", "--json", json.toString()));
        if (c.get("adapter").asBoolean()) a.addAll(List.of("--adapter", CHAT.resolve("adapter").toString()));
        if (c.get("input").asText().equals("prompt")) {
            a.addAll(List.of("--prompt", golden.get("prompt").asText()));
        } else {
            Path m = tmp.resolve("messages.json");
            Files.writeString(m, golden.get("messages").toString());
            a.addAll(List.of("--messages", m.toString()));
        }
        return a;
    }

    @TestFactory
    Stream<DynamicTest> greedyIdsAndTextEqualTransformers() throws IOException {
        JsonNode golden = golden();
        List<DynamicTest> tests = new ArrayList<>();
        for (JsonNode c : golden.get("cases")) {
            tests.add(DynamicTest.dynamicTest(c.get("input").asText() + " adapter=" + c.get("adapter"), () -> {
                Path json = tmp.resolve("out.json");
                CliRun r = CliRun.of(args(golden, c, json).toArray(String[]::new));
                assertEquals(0, r.exitCode(), r.err());
                JsonNode out = JSON.readTree(json.toFile());
                assertEquals(ints(c.get("prompt_ids")), ints(out.get("prompt_ids")), "prompt ids");
                assertEquals(ints(c.get("generated")), ints(out.get("generated_ids")), "generated ids");
                assertEquals(c.get("text").asText(), out.get("text").asText());
                assertEquals(c.get("text").asText() + System.lineSeparator(), r.out(), "streamed text");
                boolean eos = ints(c.get("generated")).contains(4);
                assertEquals(eos ? "eos" : "max_new_tokens", out.get("stopped").asText());
                JsonNode t = out.get("timings");
                assertEquals(c.get("prompt_ids").size(), t.get("prefill_tokens").asInt());
                assertEquals(c.get("generated").size() - 1, t.get("decode_tokens").asInt());
                assertTrue(t.get("prefill_tokens_per_second").asDouble() > 0 && t.get("decode_tokens_per_second").asDouble() > 0);
                assertTrue(r.err().contains("tokens/s"), r.err());
                assertEquals(List.of(4), ints(out.get("generation").get("eos_token_id")), "generation_config.json's eos");
            }));
        }
        return tests.stream();
    }

    @Test
    void mergedAdapterGivesTheSameIds() throws IOException {
        JsonNode golden = golden();
        for (JsonNode c : golden.get("cases")) {
            if (!c.get("adapter").asBoolean() || !c.get("input").asText().equals("messages")) continue;
            Path json = tmp.resolve("merged.json");
            List<String> a = args(golden, c, json);
            a.add("--merge");
            CliRun r = CliRun.of(a.toArray(String[]::new));
            assertEquals(0, r.exitCode(), r.err());
            JsonNode out = JSON.readTree(json.toFile());
            assertTrue(out.get("merged").asBoolean());
            assertEquals(ints(c.get("generated")), ints(out.get("generated_ids")));
        }
    }

    @Test
    void aSeedReproducesASample() throws IOException {
        List<List<Integer>> runs = new ArrayList<>();
        for (String seed : new String[] {"3", "3", "4"}) {
            Path json = tmp.resolve("s" + runs.size() + ".json");
            CliRun r = CliRun.of("generate", "--model", CHAT.resolve("model").toString(), "--prompt", "Hello there",
                    "--max-new-tokens", "24", "--temperature", "1.3", "--top-k", "100", "--top-p", "0.95",
                    "--seed", seed, "--device", "jvm", "--json", json.toString());
            assertEquals(0, r.exitCode(), r.err());
            JsonNode out = JSON.readTree(json.toFile());
            assertTrue(out.get("generation").get("do_sample").asBoolean());
            runs.add(ints(out.get("generated_ids")));
        }
        assertEquals(runs.get(0), runs.get(1), "the same seed, the same tokens");
        assertNotEquals(runs.get(0), runs.get(2), "another seed, other tokens");
    }

    @Test
    void badInputIsOneLine() throws IOException {
        String model = CHAT.resolve("model").toString();
        Path notList = tmp.resolve("messages.json");
        Files.writeString(notList, "{\"role\": \"user\", \"content\": \"hi\"}");
        Path noContent = tmp.resolve("no-content.json");
        Files.writeString(noContent, "[{\"role\": \"user\"}]");
        Path noTemplate = tmp.resolve("plain");
        Files.createDirectories(noTemplate);
        for (String f : new String[] {"config.json", "model.safetensors", "tokenizer.json"}) {
            Files.copy(CHAT.resolve("model").resolve(f), noTemplate.resolve(f));
        }
        Path noTokenizer = tmp.resolve("no-tokenizer");
        Files.createDirectories(noTokenizer);
        for (String f : new String[] {"config.json", "model.safetensors"}) {
            Files.copy(CHAT.resolve("model").resolve(f), noTokenizer.resolve(f));
        }
        Path good = tmp.resolve("good.json");
        Files.writeString(good, "[{\"role\": \"user\", \"content\": \"hi\"}]");
        Object[][] cases = {
                {new String[] {"--model", model, "--prompt", "hi", "--messages", good.toString()}, "mutually exclusive"},
                {new String[] {"--model", model}, "--prompt"},
                {new String[] {"--model", model, "--messages", notList.toString()}, "expected a JSON list"},
                {new String[] {"--model", model, "--messages", noContent.toString()}, "no string \"content\""},
                {new String[] {"--model", noTemplate.toString(), "--messages", good.toString()}, "no chat template"},
                {new String[] {"--model", model, "--prompt", "hi", "--temperature", "0"}, "temperature must be a positive"},
                {new String[] {"--model", model, "--prompt", "hi", "--top-p", "1.5"}, "top_p must be in (0, 1]"},
                {new String[] {"--model", model, "--prompt", "hi", "--top-k", "-1"}, "top_k must be"},
                {new String[] {"--model", model, "--prompt", "hi", "--max-new-tokens", "0"}, "--max-new-tokens must be at least 1"},
                {new String[] {"--model", model, "--prompt", "hi", "--merge"}, "--merge needs an --adapter"},
                {new String[] {"--model", tmp.resolve("missing").toString(), "--prompt", "hi"}, "missing"},
                {new String[] {"--model", noTokenizer.toString(), "--prompt", "hi"}, "no tokenizer.json"},
                {new String[] {"--model", model, "--prompt", "hi", "--chat-template", good.toString()},
                        "--chat-template applies to --messages"},
        };
        for (Object[] c : cases) {
            List<String> a = new ArrayList<>(List.of("generate"));
            a.addAll(List.of((String[]) c[0]));
            CliRun r = CliRun.of(a.toArray(String[]::new));
            assertNotEquals(0, r.exitCode(), String.join(" ", a));
            String first = r.err().lines().findFirst().orElse("");
            assertTrue(first.contains((String) c[1]), a + " -> " + r.err());
            assertTrue(r.err().lines().count() <= 2, r.err());  // the line and, for a usage error, the --help hint
            assertEquals("", r.out());
        }
    }
}
