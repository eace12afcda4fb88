package dev.tornadolora.llama;

import java.util.Arrays;
import java.util.Set;
import java.util.function.IntConsumer;

/**
 * Continues a prompt with a KV cache, as transformers' {@code generate} for batch 1: the prompt is prefilled at
 * once, then each new token is fed back one at a time through the same model (LoRA unmerged, or a merged model),
 * attending to the cached keys and values. The next token is the argmax of the last position's logits (greedy,
 * {@code do_sample=False}: the first index among equal maxima, as {@code torch.argmax}) or drawn by a
 * {@link Sampler}; generation stops after an id of {@link GenerationOptions#eosTokenIds()} (included in the
 * result, as transformers returns it) or at {@code max_new_tokens}. The model must be in eval mode (no dropout).
 *
 * <pre>
 *   Generation g = new Generator(model).generate(promptIds, GenerationOptions.greedy(128, eos), id -> ...);
 * </pre>
 */
public final class Generator {
    private final LlamaForCausalLM model;

    /** The result: the prompt and generated ids, why it stopped, and the wall time of the model's work. */
    public record Generation(int[] promptIds, int[] ids, boolean stoppedAtEos, long prefillNanos, long decodeNanos) {
        /** Prompt tokens per second of the prefill (which also yields the first new token). */
        public double prefillTokensPerSecond() {
            return prefillNanos == 0 ? 0 : promptIds.length * 1e9 / prefillNanos;
        }

        /** New tokens per second of the one-token steps after the prefill (ids.length − 1 of them). */
        public double decodeTokensPerSecond() {
            return decodeNanos == 0 ? 0 : (ids.length - 1) * 1e9 / decodeNanos;
        }
    }

    public Generator(LlamaForCausalLM model) {
        this.model = java.util.Objects.requireNonNull(model, "model");
    }

    /**
     * Generates from {@code prompt} as {@code options} say, passing each new id to {@code onToken} (may be null)
     * as it comes; the callback's time is not counted in the timings.
     */
    public Generation generate(int[] prompt, GenerationOptions options, IntConsumer onToken) {
        if (prompt.length == 0) throw new IllegalArgumentException("generate: the prompt has no tokens");
        if (model.isTraining()) {
            throw new IllegalStateException("generate: the model is in training mode (dropout); call train(false)");
        }
        int max = options.maxNewTokens();
        Sampler sampler = options.doSample()
                ? new Sampler(options.temperature(), options.topK(), options.topP(), options.seed()) : null;
        Set<Integer> eos = options.eosTokenIds();
        int vocab = model.config().vocabSize();
        int[] out = new int[max];
        int n = 0;
        long prefill = 0, decode = 0;
        boolean atEos = false;
        KvCache cache = max == 0 ? null : model.newCache(prompt.length + max);
        int[] next = prompt;
        while (n < max) {
            long t0 = System.nanoTime();
            float[] z = model.nextTokenLogits(next, cache);
            int id = sampler == null ? argmax(z, 0, vocab) : sampler.next(z, 0, vocab);
            long dt = System.nanoTime() - t0;
            if (n == 0) prefill = dt; else decode += dt;
            out[n++] = id;
            if (onToken != null) onToken.accept(id);
            if (eos.contains(id)) {
                atEos = true;
                break;
            }
            next = new int[] {id};
        }
        return new Generation(prompt.clone(), Arrays.copyOf(out, n), atEos, prefill, decode);
    }

    /** Greedy ids of {@link #generate} (the EOS id included when it ends the sequence). */
    public int[] greedy(int[] prompt, int maxNewTokens, Set<Integer> eos, IntConsumer onToken) {
        return generate(prompt, GenerationOptions.greedy(maxNewTokens, eos), onToken).ids();
    }

    /** The first index of the largest of z[o…o+n) (torch.argmax's tie rule). */
    static int argmax(float[] z, int o, int n) {
        int best = 0;
        for (int i = 1; i < n; i++) {
            if (z[o + i] > z[o + best]) best = i;
        }
        return best;
    }
}
