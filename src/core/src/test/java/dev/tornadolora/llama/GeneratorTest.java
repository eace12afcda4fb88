package dev.tornadolora.llama;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tornadolora.testing.Golden;
import dev.tornadolora.testing.TestDevices;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Greedy generation with the KV cache against transformers' {@code generate(do_sample=False)} (fixtures of
 * {@code scripts/generate_golden.py}: Llama, Qwen2, Qwen3, Mistral and Qwen2 with sliding windows that move while
 * decoding, Gemma; with and without an adapter), and the cached logits
 * against a full forward at every position.
 */
class GeneratorTest {
    static final Path GOLDEN = LlamaGoldenTest.goldenRoot().getParent();

    static List<JsonNode> cases() throws IOException {
        Path f = GOLDEN.resolve("generate.json");
        Assumptions.assumeTrue(Files.isRegularFile(f), "no " + f + " (scripts/generate_golden.py)");
        List<JsonNode> out = new ArrayList<>();
        new ObjectMapper().readTree(Files.readString(f)).get("cases").forEach(out::add);
        return out;
    }

    static LlamaForCausalLM load(JsonNode c) {
        Path dir = GOLDEN.resolve(c.get("model").asText());
        dev.tornadolora.io.PeftAdapters.Adapter adapter = dev.tornadolora.io.PeftAdapters.read(dir.resolve("adapter"));
        LoraSettings settings = c.get("adapter").asBoolean() ? LoraSettings.of(adapter.config()) : LoraSettings.of(adapter.config()).withQuantizeBase(false);
        LlamaForCausalLM m = LlamaForCausalLM.load(dir.resolve("model"), settings, TestDevices.jvm());
        if (c.get("adapter").asBoolean()) m.loadAdapters(adapter.tensors());
        return m; // without the adapter: LoRA B = 0 at initialisation, so the model is its base
    }

    static int[] ints(JsonNode a) {
        int[] v = new int[a.size()];
        for (int i = 0; i < v.length; i++) v[i] = a.get(i).asInt();
        return v;
    }

    @TestFactory
    Stream<DynamicTest> greedyIdsEqualTransformersGenerate() throws IOException {
        return cases().stream().map(c -> DynamicTest.dynamicTest(c.get("model").asText() + " adapter=" + c.get("adapter"), () -> {
            Set<Integer> eos = new HashSet<>();
            JsonNode e = c.get("eos_token_id");
            if (e.isArray()) e.forEach(x -> eos.add(x.asInt())); else if (!e.isNull()) eos.add(e.asInt());
            try (LlamaForCausalLM m = load(c)) {
                List<Integer> streamed = new ArrayList<>();
                int[] ids = new Generator(m).greedy(ints(c.get("prompt")), 32, eos, streamed::add);
                assertArrayEquals(ints(c.get("generated")), ids);
                assertEquals(streamed, java.util.Arrays.stream(ids).boxed().toList(), "streamed as they came");
            }
        }));
    }

    @TestFactory
    Stream<DynamicTest> cachedLogitsEqualAFullForwardAtEveryPosition() throws IOException {
        return cases().stream().map(c -> DynamicTest.dynamicTest(c.get("model").asText() + " adapter=" + c.get("adapter"), () -> {
            int[] prompt = ints(c.get("prompt")), gen = ints(c.get("generated"));
            int[] all = new int[prompt.length + gen.length];
            System.arraycopy(prompt, 0, all, 0, prompt.length);
            System.arraycopy(gen, 0, all, prompt.length, gen.length);
            try (LlamaForCausalLM m = load(c)) {
                int v = m.config().vocabSize();
                float[] full = m.logits(all, 1, all.length).data();
                float[] cached = new float[full.length];
                KvCache cache = m.newCache(all.length);
                System.arraycopy(m.logits(prompt, cache).data(), 0, cached, 0, prompt.length * v);
                for (int i = prompt.length; i < all.length; i++) {
                    System.arraycopy(m.logits(new int[] {all[i]}, cache).data(), 0, cached, i * v, v);
                }
                assertEquals(all.length, cache.length());
                Golden.assertClose(full, cached, 1e-5, "cached logits");
                KvCache next = m.newCache(all.length);  // generate's path: lm_head on the last new token only
                Golden.assertClose(java.util.Arrays.copyOfRange(full, (prompt.length - 1) * v, prompt.length * v),
                        m.nextTokenLogits(prompt, next), 1e-5, "next-token logits of the prefill");
                Golden.assertClose(java.util.Arrays.copyOfRange(full, prompt.length * v, (prompt.length + 1) * v),
                        m.nextTokenLogits(new int[] {all[prompt.length]}, next), 1e-5, "next-token logits of a step");
                IllegalArgumentException full2 = assertThrows(IllegalArgumentException.class,
                        () -> m.logits(new int[] {0}, cache));
                assertTrue(full2.getMessage().contains("do not fit"), full2.getMessage());
            }
        }));
    }

    /**
     * On the sliding-window models a sliding layer's cache keeps W positions, a full layer's all of them, while
     * the sequence (prompt + transformers' greedy tokens) is fed in chunks of 1 to 3 tokens, so that the ring
     * wraps inside a chunk and between single tokens; the logits at every position stay the full forward's.
     */
    @TestFactory
    Stream<DynamicTest> aSlidingLayerKeepsItsWindowOnlyAndTheLogitsStayTheFullForwards() throws IOException {
        return cases().stream().filter(c -> c.get("model").asText().contains("window")
                || c.get("model").asText().contains("sliding")).map(c -> DynamicTest.dynamicTest(
                c.get("model").asText() + " adapter=" + c.get("adapter"), () -> {
            int[] prompt = ints(c.get("prompt")), gen = ints(c.get("generated"));
            int[] all = new int[prompt.length + gen.length];
            System.arraycopy(prompt, 0, all, 0, prompt.length);
            System.arraycopy(gen, 0, all, prompt.length, gen.length);
            try (LlamaForCausalLM m = load(c)) {
                int v = m.config().vocabSize(), layers = m.config().numHiddenLayers(), sliding = 0;
                float[] full = m.logits(all, 1, all.length).data();
                float[] cached = new float[full.length];
                KvCache cache = m.newCache(all.length);
                for (int at = 0, chunk = 1; at < all.length; at += chunk, chunk = chunk % 3 + 1) {
                    int n = Math.min(chunk, all.length - at);
                    System.arraycopy(m.logits(java.util.Arrays.copyOfRange(all, at, at + n), cache).data(), 0,
                            cached, at * v, n * v);
                }
                assertEquals(all.length, cache.length());
                for (int l = 0; l < layers; l++) {
                    int w = m.config().parts().window(l);
                    if (w > 0) sliding++;
                    assertTrue(w < all.length, "the sequence goes past layer " + l + "'s window " + w);
                    assertEquals(w > 0 ? w : all.length, cache.slots(l), "positions layer " + l + " keeps");
                }
                assertTrue(sliding > 0, "a sliding layer");
                Golden.assertClose(full, cached, 1e-5, "cached logits");
            }
        }));
    }

    @Test
    void samplingWithASeedReproducesAndStopsAtEos() throws IOException {
        JsonNode c = cases().get(1);
        try (LlamaForCausalLM m = load(c)) {
            int[] prompt = ints(c.get("prompt"));
            GenerationOptions o = GenerationOptions.greedy(24, Set.of()).sampling(1.2, 40, 0.9, 5);
            Generator.Generation a = new Generator(m).generate(prompt, o, null);
            Generator.Generation b = new Generator(m).generate(prompt, o, null);
            assertArrayEquals(a.ids(), b.ids(), "the same seed, the same tokens");
            assertEquals(24, a.ids().length);
            int stop = a.ids()[5];
            Generator.Generation e = new Generator(m).generate(prompt,
                    new GenerationOptions(24, true, 1.2, 40, 0.9, 5, Set.of(stop)), null);
            int at = 0;
            while (a.ids()[at] != stop) at++;
            assertArrayEquals(java.util.Arrays.copyOf(a.ids(), at + 1), e.ids(), "stops after the first eos id");
            assertTrue(e.stoppedAtEos());
        }
    }

    @Test
    void refusesTrainingModeAndAnEmptyPrompt() throws IOException {
        JsonNode c = cases().get(0);
        try (LlamaForCausalLM m = load(c)) {
            assertThrows(IllegalArgumentException.class, () -> new Generator(m).greedy(new int[0], 4, Set.of(), null));
            m.train(true);
            assertThrows(IllegalStateException.class, () -> new Generator(m).greedy(new int[] {1}, 4, Set.of(), null));
        }
    }
}
