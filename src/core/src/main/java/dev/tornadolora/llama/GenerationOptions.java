package dev.tornadolora.llama;

import java.util.Set;
import java.util.TreeSet;

/**
 * How {@link Generator} continues a prompt, as transformers' {@code GenerationConfig} for batch 1:
 * {@code max_new_tokens}, {@code do_sample} (false: greedy, the argmax), and for sampling {@code temperature},
 * {@code top_k} (0: off) and {@code top_p} (1: off) with a seed; generation stops after any id of
 * {@code eosTokenIds} (every id of {@code eos_token_id}, {@link #eosTokenIds(java.nio.file.Path)}).
 *
 * @param maxNewTokens the most tokens to generate, ≥ 0
 * @param doSample     sample (true) or take the argmax (false)
 * @param temperature  the logits' divisor when sampling, &gt; 0
 * @param topK         keep the k largest scores when sampling, ≥ 0 (0: all)
 * @param topP         keep the smallest set of tokens of at least this probability when sampling, in (0, 1]
 * @param seed         the sampler's seed
 * @param eosTokenIds  the ids that end generation (may be empty: only the limit stops it)
 */
public record GenerationOptions(int maxNewTokens, boolean doSample, double temperature, int topK, double topP,
                                long seed, Set<Integer> eosTokenIds) {
    public GenerationOptions {
        if (maxNewTokens < 0) throw new IllegalArgumentException("max_new_tokens must be ≥ 0, got " + maxNewTokens);
        eosTokenIds = Set.copyOf(new TreeSet<>(eosTokenIds));
        if (doSample) Sampler.check(temperature, topK, topP);
    }

    /** Greedy decoding ({@code do_sample=False}) of up to {@code maxNewTokens}, stopping at {@code eos}. */
    public static GenerationOptions greedy(int maxNewTokens, Set<Integer> eos) {
        return new GenerationOptions(maxNewTokens, false, 1, 0, 1, 0, eos);
    }

    /** Sampling with these warpers and seed, the rest as this. */
    public GenerationOptions sampling(double temperature, int topK, double topP, long seed) {
        return new GenerationOptions(maxNewTokens, true, temperature, topK, topP, seed, eosTokenIds);
    }

    /**
     * The ids that end generation for the model in {@code hfDir}, as transformers takes them: {@code eos_token_id}
     * of {@code generation_config.json} when that file sets it, else of {@code config.json}; an int or a list (all
     * its ids), null or absent: none.
     *
     * @throws IllegalArgumentException naming the file when the field is not an id or a list of ids
     */
    public static Set<Integer> eosTokenIds(java.nio.file.Path hfDir) {
        for (String name : new String[] {"generation_config.json", "config.json"}) {
            java.nio.file.Path f = hfDir.resolve(name);
            if (!java.nio.file.Files.isRegularFile(f)) continue;
            com.fasterxml.jackson.databind.JsonNode v = dev.tornadolora.io.StrictJson.read(f).get("eos_token_id");
            if (v == null || (v.isNull() && name.startsWith("generation"))) continue;
            Set<Integer> ids = new TreeSet<>();
            for (com.fasterxml.jackson.databind.JsonNode e : v.isArray() ? v : java.util.List.of(v)) {
                if (e.isNull()) continue;
                if (!e.canConvertToInt() || !e.isIntegralNumber() || e.asInt() < 0) {
                    throw new IllegalArgumentException(f + ": eos_token_id must be a token id or a list of them, got "
                            + v);
                }
                ids.add(e.asInt());
            }
            return ids;
        }
        return Set.of();
    }
}
