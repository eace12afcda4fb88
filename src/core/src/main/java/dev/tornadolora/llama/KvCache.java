package dev.tornadolora.llama;

import dev.tornadolora.kernels.Parallel;
import dev.tornadolora.llama.ops.Vec;
import dev.tornadolora.math.Softmax;

import java.util.ArrayList;
import java.util.List;

/**
 * The keys and values (after RoPE) of the positions a model has seen in one sequence, per layer, so that each new
 * token attends to them without recomputing them: transformers' {@code DynamicCache}, batch 1. New tokens at
 * positions {@code length()…} attend causally to every cached position and to each other
 * (the same attention as {@link dev.tornadolora.llama.ops.CausalAttention}: σ = 1/√head_dim, fp32 softmax from
 * {@link Softmax}, grouped-query heads), or on a sliding layer to the last W positions only (transformers'
 * {@code DynamicSlidingWindowLayer} with its mask: position p sees p − W + 1 … p). A full layer keeps every
 * position (the capacity is the whole sequence's); a sliding layer keeps only the last W in a ring (position p in
 * slot p mod W), as transformers' sliding-window cache keeps no more than its window: older keys can never be
 * attended again. New tokens read the positions before them from the cache and those of their own call from
 * the new keys and values, which then replace the oldest slots; every token attends to the same positions in
 * the same order either way. Made by {@link LlamaForCausalLM#newCache}.
 */
public final class KvCache {
    private final LlamaConfig c;
    private final int capacity;
    private final List<float[]> keys = new ArrayList<>();
    private final List<float[]> values = new ArrayList<>();
    private final int[] slots;  // per layer, the positions its arrays hold: the capacity, or the window's W
    private int length;

    KvCache(LlamaConfig c, int capacity) {
        if (capacity <= 0) throw new IllegalArgumentException("KV cache capacity must be positive, got " + capacity);
        if ((long) capacity * c.kvDim() > LlamaConfig.MAX_ARRAY) {
            throw new IllegalArgumentException("KV cache of " + capacity + " positions is larger than a Java array holds");
        }
        this.c = c;
        this.capacity = capacity;
        this.slots = new int[c.numHiddenLayers()];
        for (int i = 0; i < slots.length; i++) {
            int window = c.parts().window(i);
            slots[i] = window > 0 ? Math.min(window, capacity) : capacity;
            keys.add(new float[slots[i] * c.kvDim()]);
            values.add(new float[slots[i] * c.kvDim()]);
        }
    }

    /** Positions held. */
    public int length() { return length; }

    /** Positions it can hold. */
    public int capacity() { return capacity; }

    /** Positions layer {@code layer} keeps: the capacity, or its sliding window (the last W positions). */
    public int slots(int layer) { return slots[layer]; }

    /** Makes room for {@code n} more positions or refuses (before any layer writes). */
    void reserve(int n) {
        if (length + n > capacity) {
            throw new IllegalArgumentException("KV cache holds " + capacity + " positions; " + length + " + " + n
                    + " new tokens do not fit");
        }
    }

    /** Counts the {@code n} tokens every layer has appended. */
    void advance(int n) {
        length += n;
    }

    /**
     * Writes the attention output [n, H·d] of q [n, H·d] for n new tokens at positions length…length+n−1 over
     * positions 0…length+i for new token i (length+i−W+1…length+i on a layer with a sliding window W), then
     * keeps their k, v [n, kv·d] in layer {@code layer}'s slots.
     */
    void attend(Parallel par, int layer, float[] q, float[] k, float[] v, float[] out, int n) {
        int d = c.headDim(), heads = c.numAttentionHeads(), kw = c.kvDim(), qw = c.qDim();
        int rep = heads / c.numKeyValueHeads(), ring = slots[layer], window = c.parts().window(layer);
        float[] kc = keys.get(layer), vc = values.get(layer);
        float scale = (float) (1.0 / Math.sqrt(d));
        par.range(n * heads, 1, (p0, p1) -> {
            float[] s = new float[length + n];
            for (int pair = p0; pair < p1; pair++) {
                int i = pair / heads, h = pair % heads, g = h / rep, end = length + i + 1;
                int first = window > 0 ? Math.max(0, end - window) : 0, len = end - first;
                int qo = i * qw + h * d;
                for (int j = 0; j < len; j++) {
                    int p = first + j;
                    s[j] = p < length ? Vec.dot(d, q, qo, kc, p % ring * kw + g * d)
                            : Vec.dot(d, q, qo, k, (p - length) * kw + g * d);
                }
                Softmax.softmaxInPlace(Vec.ROWS, len, s, 0, scale);
                java.util.Arrays.fill(out, qo, qo + d, 0f);
                for (int j = 0; j < len; j++) {
                    int p = first + j;
                    if (p < length) Vec.axpy(d, s[j], vc, p % ring * kw + g * d, out, qo);
                    else Vec.axpy(d, s[j], v, (p - length) * kw + g * d, out, qo);
                }
            }
        });
        for (int p = Math.max(length, length + n - ring); p < length + n; p++) {  // the last `ring` of them
            System.arraycopy(k, (p - length) * kw, kc, p % ring * kw, kw);
            System.arraycopy(v, (p - length) * kw, vc, p % ring * kw, kw);
        }
    }
}
