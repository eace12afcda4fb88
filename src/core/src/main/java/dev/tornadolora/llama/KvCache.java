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
 * {@code DynamicSlidingWindowLayer} with its mask: position p sees p − W + 1 … p). Every position is kept (the
 * capacity is the whole sequence's); a sliding layer reads only its window of them. Made by
 * {@link LlamaForCausalLM#newCache}.
 */
public final class KvCache {
    private final LlamaConfig c;
    private final int capacity;
    private final List<float[]> keys = new ArrayList<>();
    private final List<float[]> values = new ArrayList<>();
    private int length;

    KvCache(LlamaConfig c, int capacity) {
        if (capacity <= 0) throw new IllegalArgumentException("KV cache capacity must be positive, got " + capacity);
        if ((long) capacity * c.kvDim() > LlamaConfig.MAX_ARRAY) {
            throw new IllegalArgumentException("KV cache of " + capacity + " positions is larger than a Java array holds");
        }
        this.c = c;
        this.capacity = capacity;
        for (int i = 0; i < c.numHiddenLayers(); i++) {
            keys.add(new float[capacity * c.kvDim()]);
            values.add(new float[capacity * c.kvDim()]);
        }
    }

    /** Positions held. */
    public int length() { return length; }

    /** Positions it can hold. */
    public int capacity() { return capacity; }

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
     * Appends layer {@code layer}'s k, v [n, kv·d] at positions length…length+n−1 and writes the attention output
     * [n, H·d] of q [n, H·d] over positions 0…length+i for new token i (length+i−window+1…length+i with a
     * sliding {@code window} > 0).
     */
    void attend(Parallel par, int layer, float[] q, float[] k, float[] v, float[] out, int n, int window) {
        int d = c.headDim(), heads = c.numAttentionHeads(), kw = c.kvDim(), qw = c.qDim();
        int rep = heads / c.numKeyValueHeads();
        float[] kc = keys.get(layer), vc = values.get(layer);
        System.arraycopy(k, 0, kc, length * kw, n * kw);
        System.arraycopy(v, 0, vc, length * kw, n * kw);
        float scale = (float) (1.0 / Math.sqrt(d));
        par.range(n * heads, 1, (p0, p1) -> {
            float[] s = new float[length + n];
            for (int pair = p0; pair < p1; pair++) {
                int i = pair / heads, h = pair % heads, g = h / rep, end = length + i + 1;
                int first = window > 0 ? Math.max(0, end - window) : 0, len = end - first;
                int qo = i * qw + h * d;
                for (int j = 0; j < len; j++) s[j] = Vec.dot(d, q, qo, kc, (first + j) * kw + g * d);
                Softmax.softmaxInPlace(Vec.ROWS, len, s, 0, scale);
                java.util.Arrays.fill(out, qo, qo + d, 0f);
                for (int j = 0; j < len; j++) Vec.axpy(d, s[j], vc, (first + j) * kw + g * d, out, qo);
            }
        });
    }
}
