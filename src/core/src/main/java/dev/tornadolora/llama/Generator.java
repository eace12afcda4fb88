package dev.tornadolora.llama;

import java.util.Arrays;
import java.util.Set;
import java.util.function.IntConsumer;

/**
 * Greedy decoding with a KV cache, as transformers' {@code generate(do_sample=False)} for batch 1: the prompt is
 * prefilled at once, then each next token is the argmax of the last position's logits (the first index among
 * equal maxima, as {@code torch.argmax}), fed back one at a time through the same model (LoRA unmerged), until an
 * id of {@code eos} or {@code maxNewTokens}. The model must be in eval mode (no dropout).
 */
public final class Generator {
    private final LlamaForCausalLM model;

    public Generator(LlamaForCausalLM model) {
        this.model = java.util.Objects.requireNonNull(model, "model");
    }

    /**
     * The generated ids (the EOS id included when it ends the sequence, as transformers returns it), each passed
     * to {@code onToken} as it comes.
     */
    public int[] greedy(int[] prompt, int maxNewTokens, Set<Integer> eos, IntConsumer onToken) {
        if (prompt.length == 0) throw new IllegalArgumentException("generate: the prompt has no tokens");
        if (maxNewTokens < 0) throw new IllegalArgumentException("max_new_tokens must be ≥ 0, got " + maxNewTokens);
        if (model.isTraining()) {
            throw new IllegalStateException("generate: the model is in training mode (dropout); call train(false)");
        }
        KvCache cache = model.newCache(prompt.length + maxNewTokens);
        int vocab = model.config().vocabSize();
        int[] out = new int[maxNewTokens];
        int n = 0;
        int[] next = prompt;
        while (n < maxNewTokens) {
            float[] z = model.logits(next, cache).data();
            int id = argmax(z, (next.length - 1) * vocab, vocab);
            out[n++] = id;
            if (onToken != null) onToken.accept(id);
            if (eos.contains(id)) break;
            next = new int[] {id};
        }
        return Arrays.copyOf(out, n);
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
