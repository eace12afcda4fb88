package dev.tornadolora.llama;

import dev.tornadolora.math.Softmax;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * The next token of transformers' {@code generate(do_sample=True)} for batch 1: the last position's fp32 logits
 * go through its logits warpers in its order, {@code TemperatureLogitsWarper} (x / T, when T ≠ 1), then
 * {@code TopKLogitsWarper} (when k ≠ 0: every score below the k-th largest becomes −∞, so ties with the k-th are
 * all kept), then {@code TopPLogitsWarper} (when p &lt; 1: sorted ascending, the probabilities' cumulative sum,
 * accumulated in double and rounded to fp32 as torch's CPU cumsum, removes every token whose sum is ≤ 1 − p,
 * the largest always kept; equal scores sort by index), and a token is drawn from the softmax of what is left.
 * The draw is seeded ({@link SplittableRandom}): one seed gives one sequence, but not the one of torch's
 * {@code multinomial} generator. Greedy decoding does not use a sampler (argmax, {@link Generator}).
 */
public final class Sampler {
    private final float temperature;
    private final int topK;
    private final double topP;
    private final SplittableRandom random;

    /**
     * @param temperature the divisor of the logits, &gt; 0 (1: none)
     * @param topK        how many of the largest scores to keep, ≥ 0 (0: all)
     * @param topP        the probability mass to keep, in (0, 1] (1: all)
     * @param seed        the generator's seed
     * @throws IllegalArgumentException naming the setting out of range (transformers refuses the same values)
     */
    public Sampler(double temperature, int topK, double topP, long seed) {
        check(temperature, topK, topP);
        this.temperature = (float) temperature;
        this.topK = topK;
        this.topP = topP;
        this.random = new SplittableRandom(seed);
    }

    /** Refuses, naming it, a setting transformers' warpers refuse. */
    static void check(double temperature, int topK, double topP) {
        if (!(temperature > 0) || !Double.isFinite(temperature)) {
            throw new IllegalArgumentException("temperature must be a positive number, got " + temperature
                    + " (greedy decoding is do_sample=False, not temperature 0)");
        }
        if (topK < 0) throw new IllegalArgumentException("top_k must be ≥ 0 (0: off), got " + topK);
        if (!(topP > 0 && topP <= 1)) throw new IllegalArgumentException("top_p must be in (0, 1], got " + topP);
    }

    /**
     * The scores of z[o…o+n) after the warpers: divided by the temperature, −∞ where top-k or top-p removed them
     * (a new array; z is not changed).
     */
    public float[] warp(float[] z, int o, int n) {
        float[] s = Arrays.copyOfRange(z, o, o + n);
        if (temperature != 1f) {
            for (int i = 0; i < n; i++) s[i] /= temperature;
        }
        if (topK != 0 && topK < n) {
            float[] sorted = s.clone();
            Arrays.sort(sorted);
            float kth = sorted[n - topK];
            for (int i = 0; i < n; i++) if (s[i] < kth) s[i] = Float.NEGATIVE_INFINITY;
        }
        if (topP < 1) topP(s);
        return s;
    }

    private void topP(float[] s) {
        int n = s.length;
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) order[i] = i;
        Arrays.sort(order, (a, b) -> s[a] != s[b] ? Float.compare(s[a], s[b]) : Integer.compare(a, b));
        float[] sorted = new float[n];
        for (int i = 0; i < n; i++) sorted[i] = s[order[i]];
        float[] p = probabilities(sorted);
        float threshold = (float) (1 - topP);
        double cumulative = 0;
        for (int i = 0; i < n - 1; i++) {  // the largest (last) is always kept: min_tokens_to_keep = 1
            cumulative += p[i];
            if ((float) cumulative <= threshold) s[order[i]] = Float.NEGATIVE_INFINITY;
        }
    }

    /** softmax(scores) with exactly 0 where a score is −∞ (the fp32 softmax of {@link Softmax} over the rest). */
    public static float[] probabilities(float[] scores) {
        int n = scores.length, kept = 0;
        float[] live = new float[n];
        for (float v : scores) if (v != Float.NEGATIVE_INFINITY) live[kept++] = v;
        if (kept == 0) throw new IllegalArgumentException("every score is -inf: nothing to sample");
        Softmax.softmaxInPlace(Softmax.SCALAR, kept, live, 0, 1f);
        float[] p = new float[n];
        for (int i = 0, j = 0; i < n; i++) if (scores[i] != Float.NEGATIVE_INFINITY) p[i] = live[j++];
        return p;
    }

    /** The next token drawn from the warped distribution of z[o…o+n). */
    public int next(float[] z, int o, int n) {
        float[] p = probabilities(warp(z, o, n));
        double total = 0;
        for (float v : p) total += v;
        double u = random.nextDouble() * total, c = 0;
        int last = -1;
        for (int i = 0; i < n; i++) {
            if (p[i] == 0f) continue;
            c += p[i];
            last = i;
            if (u < c) return i;
        }
        return last;  // u within rounding of the total
    }
}
