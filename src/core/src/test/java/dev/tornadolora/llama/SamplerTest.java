package dev.tornadolora.llama;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The sampling warpers against transformers' TemperatureLogitsWarper → TopKLogitsWarper → TopPLogitsWarper on
 * fixed logits with and without ties (golden/warpers.json, scripts/generate_golden.py): the same tokens removed,
 * the same warped scores and probabilities; draws that follow those probabilities and a seed that reproduces.
 */
class SamplerTest {
    static JsonNode golden() throws IOException {
        Path f = GeneratorTest.GOLDEN.resolve("warpers.json");
        Assumptions.assumeTrue(Files.isRegularFile(f), "no " + f + " (scripts/generate_golden.py)");
        return new ObjectMapper().readTree(f.toFile());
    }

    static float[] floats(JsonNode a) {
        float[] v = new float[a.size()];
        for (int i = 0; i < v.length; i++) v[i] = a.get(i).isNull() ? Float.NEGATIVE_INFINITY : (float) a.get(i).asDouble();
        return v;
    }

    /** The values other than −∞ (or 0 for probabilities), sorted. */
    static float[] sortedKept(float[] v) {
        int n = 0;
        float[] kept = new float[v.length];
        for (float x : v) if (x != Float.NEGATIVE_INFINITY && x != 0f) kept[n++] = x;
        kept = java.util.Arrays.copyOf(kept, n);
        java.util.Arrays.sort(kept);
        return kept;
    }

    /** Whether token i's logit is shared by a kept and a removed token (a tie the top-p cut splits). */
    static boolean splitByTheCut(float[] logits, float[] expected, int i) {
        boolean kept = false, removed = false;
        for (int j = 0; j < logits.length; j++) {
            if (logits[j] == logits[i]) {
                if (expected[j] == Float.NEGATIVE_INFINITY) removed = true; else kept = true;
            }
        }
        return kept && removed;
    }

    static Sampler sampler(JsonNode c, long seed) {
        return new Sampler(c.get("temperature").asDouble(), c.get("top_k").asInt(), c.get("top_p").asDouble(), seed);
    }

    @TestFactory
    Stream<DynamicTest> warpedScoresAndProbabilitiesEqualTransformers() throws IOException {
        JsonNode g = golden();
        List<DynamicTest> tests = new ArrayList<>();
        for (JsonNode c : g.get("cases")) {
            String name = "row " + c.get("row") + " T=" + c.get("temperature") + " k=" + c.get("top_k") + " p=" + c.get("top_p");
            tests.add(DynamicTest.dynamicTest(name, () -> {
                float[] logits = floats(g.get("logits").get(c.get("row").asInt()));
                float[] expected = floats(c.get("warped")), p = floats(c.get("probabilities"));
                float[] warped = sampler(c, 0).warp(logits, 0, logits.length);
                // Which of equal scores straddling the top-p cut survive is torch.sort's unstable order (not a
                // rule); what is fixed is how many of each value survive: compare the kept values and their
                // probabilities as multisets, and token by token wherever a value is not split by the cut.
                assertArrayEquals(sortedKept(expected), sortedKept(warped), 1e-6f, "kept scores");
                float[] probabilities = Sampler.probabilities(warped);
                assertArrayEquals(sortedKept(p), sortedKept(probabilities), 1e-6f, "probabilities");
                for (int i = 0; i < logits.length; i++) {
                    if (!splitByTheCut(logits, expected, i)) {
                        assertEquals(expected[i] == Float.NEGATIVE_INFINITY, warped[i] == Float.NEGATIVE_INFINITY,
                                "token " + i + " removed or kept");
                        assertEquals(p[i], probabilities[i], 1e-6, "p of token " + i);
                    }
                }
            }));
        }
        return tests.stream();
    }

    @Test
    void drawsFollowTheWarpedProbabilitiesAndASeedReproduces() throws IOException {
        JsonNode g = golden();
        JsonNode c = g.get("cases").get(23);  // T = 0.7, k = 10, p = 0.8 on nearly flat logits: several tokens
        float[] logits = floats(g.get("logits").get(c.get("row").asInt()));
        float[] p = floats(c.get("probabilities"));
        assertTrue(java.util.stream.IntStream.range(0, p.length).filter(i -> p[i] > 0.05).count() >= 4);
        int draws = 40_000;
        int[] counts = new int[logits.length], first = new int[50], again = new int[50], other = new int[50];
        Sampler s = sampler(c, 11), same = sampler(c, 11), another = sampler(c, 12);
        for (int i = 0; i < draws; i++) {
            int id = s.next(logits, 0, logits.length);
            counts[id]++;
            if (i < 50) {
                first[i] = id;
                again[i] = same.next(logits, 0, logits.length);
                other[i] = another.next(logits, 0, logits.length);
            }
        }
        for (int i = 0; i < logits.length; i++) {
            double sd = Math.sqrt(draws * p[i] * (1 - p[i]));
            assertEquals(draws * p[i], counts[i], 5 * sd + 1e-9, "token " + i + " drawn " + counts[i] + " times");
        }
        assertArrayEquals(first, again, "the same seed, the same draws");
        assertNotEquals(java.util.Arrays.toString(first), java.util.Arrays.toString(other), "another seed, other draws");
    }

    @Test
    void refusesSettingsTransformersRefuses() {
        assertThrows(IllegalArgumentException.class, () -> new Sampler(0, 0, 1, 0));
        assertThrows(IllegalArgumentException.class, () -> new Sampler(-1, 0, 1, 0));
        assertThrows(IllegalArgumentException.class, () -> new Sampler(1, -1, 1, 0));
        assertThrows(IllegalArgumentException.class, () -> new Sampler(1, 0, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> new Sampler(1, 0, 1.01, 0));
        assertThrows(IllegalArgumentException.class,
                () -> GenerationOptions.greedy(4, Set.of()).sampling(Double.NaN, 0, 1, 0));
    }

    @Test
    void eosIdsComeFromGenerationConfigThenConfig(@org.junit.jupiter.api.io.TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("config.json"), "{\"eos_token_id\": 2}");
        assertEquals(Set.of(2), GenerationOptions.eosTokenIds(dir));
        Files.writeString(dir.resolve("generation_config.json"), "{\"eos_token_id\": [128001, 128008, 128009]}");
        assertEquals(Set.of(128001, 128008, 128009), GenerationOptions.eosTokenIds(dir));
        Files.writeString(dir.resolve("generation_config.json"), "{\"bos_token_id\": 1}");
        assertEquals(Set.of(2), GenerationOptions.eosTokenIds(dir), "generation_config.json without eos: config.json's");
        Files.writeString(dir.resolve("config.json"), "{\"eos_token_id\": \"</s>\"}");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> GenerationOptions.eosTokenIds(dir));
        assertTrue(e.getMessage().contains("config.json: eos_token_id"), e.getMessage());
    }
}
