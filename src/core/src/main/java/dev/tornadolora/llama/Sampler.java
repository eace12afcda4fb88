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
 *
 * <p>A sampler is one sequence's (its generator and its buffers are not shared between threads): it keeps its
 * vocabulary-sized buffers from token to token, finds top-k's k-th largest score with a heap of k (not a sort) and
 * orders top-p's candidates by a primitive sort of (score, index) keys over the tokens top-k left, not the whole
 * vocabulary. The scores, probabilities and draws are bit for bit those of sorting everything: a −∞ score has
 * probability 0, so it neither moves top-p's cumulative sum nor the draw.
 */
public final class Sampler {
    private final float temperature;
    private final int topK;
    private final double topP;
    private final SplittableRandom random;
    // Reused from token to token, grown to the vocabulary's size on first use.
    private float[] scores = new float[0];  // the warped scores, by token
    private float[] kept = new float[0];    // the scores not −∞, compacted, then their probabilities
    private int[] keptIds = new int[0];     // the token of each kept score; top-k's heap before that
    private long[] ranked = new long[0];    // top-p: (score's sort key, token), sorted ascending

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
        warpIntoScores(z, o, n);
        return Arrays.copyOf(scores, n);
    }

    /** The warped scores of z[o…o+n) into scores[0…n). */
    private void warpIntoScores(float[] z, int o, int n) {
        if (scores.length < n) {
            scores = new float[n];
            kept = new float[n];
            keptIds = new int[n];
        }
        float[] s = scores;
        System.arraycopy(z, o, s, 0, n);
        if (temperature != 1f) {
            for (int i = 0; i < n; i++) s[i] /= temperature;
        }
        if (topK != 0 && topK < n) {
            float kth = kthLargest(s, n, topK);
            for (int i = 0; i < n; i++) if (s[i] < kth) s[i] = Float.NEGATIVE_INFINITY;
        }
        if (topP < 1) topP(s, n);
    }

    /**
     * The k-th largest of s[0…n), the element Arrays.sort(float[]) puts at n − k (−0 before 0, NaN last): for a
     * k small beside n the least of a min-heap of the k largest so far (one pass, most scores only compared with
     * its root), else that sort itself.
     */
    private float kthLargest(float[] s, int n, int k) {
        if ((long) k * 16 > n) {
            float[] sorted = kept;
            System.arraycopy(s, 0, sorted, 0, n);
            Arrays.sort(sorted, 0, n);
            return sorted[n - k];
        }
        int[] heap = keptIds;
        for (int i = 0; i < k; i++) heap[i] = sortKey(s[i]);
        for (int i = k / 2 - 1; i >= 0; i--) siftDown(heap, k, i);
        for (int i = k; i < n; i++) {
            int key = sortKey(s[i]);
            if (key > heap[0]) {
                heap[0] = key;
                siftDown(heap, k, 0);
            }
        }
        return fromSortKey(heap[0]);
    }

    /** Moves heap[i] down the min-heap heap[0…size) to where its children are not smaller. */
    private static void siftDown(int[] heap, int size, int i) {
        int v = heap[i];
        for (int child = 2 * i + 1; child < size; child = 2 * i + 1) {
            if (child + 1 < size && heap[child + 1] < heap[child]) child++;
            if (heap[child] >= v) break;
            heap[i] = heap[child];
            i = child;
        }
        heap[i] = v;
    }

    /** An int whose signed order is Float.compare's (−0 before 0, NaN after +∞); {@link #fromSortKey} inverts it. */
    private static int sortKey(float v) {
        int bits = Float.floatToIntBits(v);
        return bits ^ ((bits >> 31) & 0x7fffffff);
    }

    private static float fromSortKey(int key) {
        return Float.intBitsToFloat(key ^ ((key >> 31) & 0x7fffffff));
    }

    private void topP(float[] s, int n) {
        if (ranked.length < n) ranked = new long[n];
        long[] order = ranked;
        int m = 0;
        for (int i = 0; i < n; i++) {
            // Ascending by score, equal scores (−0 = 0 included, hence + 0f) by token; −∞ is left out: its
            // probability is 0 and it sorts first, so it moves neither the cumulative sum nor which are removed.
            if (s[i] != Float.NEGATIVE_INFINITY) order[m++] = (long) sortKey(s[i] + 0f) << 32 | i;
        }
        Arrays.sort(order, 0, m);
        float[] p = kept;
        for (int j = 0; j < m; j++) p[j] = s[(int) order[j]];
        softmaxOfKept(p, m);
        float threshold = (float) (1 - topP);
        double cumulative = 0;
        for (int j = 0; j < m - 1; j++) {  // the largest (last) is always kept: min_tokens_to_keep = 1
            cumulative += p[j];
            if ((float) cumulative <= threshold) s[(int) order[j]] = Float.NEGATIVE_INFINITY;
        }
    }

    /** softmax(scores) with exactly 0 where a score is −∞ (the fp32 softmax of {@link Softmax} over the rest). */
    public static float[] probabilities(float[] scores) {
        int n = scores.length;
        float[] live = new float[n];
        int[] ids = new int[n];
        int kept = keep(scores, n, live, ids);
        softmaxOfKept(live, kept);
        float[] p = new float[n];
        for (int j = 0; j < kept; j++) p[ids[j]] = live[j];
        return p;
    }

    /** Compacts the scores of s[0…n) that are not −∞ into live, their tokens into ids; returns how many. */
    private static int keep(float[] s, int n, float[] live, int[] ids) {
        int kept = 0;
        for (int i = 0; i < n; i++) {
            if (s[i] != Float.NEGATIVE_INFINITY) {
                live[kept] = s[i];
                ids[kept++] = i;
            }
        }
        return kept;
    }

    /** live[0…kept) becomes its softmax, the scalar definition's (its order of summing). */
    private static void softmaxOfKept(float[] live, int kept) {
        if (kept == 0) throw new IllegalArgumentException("every score is -inf: nothing to sample");
        Softmax.softmaxInPlace(Softmax.SCALAR, kept, live, 0, 1f);
    }

    /** The next token drawn from the warped distribution of z[o…o+n). */
    public int next(float[] z, int o, int n) {
        warpIntoScores(z, o, n);
        int m = keep(scores, n, kept, keptIds);
        softmaxOfKept(kept, m);
        float[] p = kept;
        double total = 0;
        for (int j = 0; j < m; j++) total += p[j];
        double u = random.nextDouble() * total, c = 0;
        int last = -1;
        for (int j = 0; j < m; j++) {
            if (p[j] == 0f) continue;
            c += p[j];
            last = keptIds[j];
            if (u < c) return last;
        }
        return last;  // u within rounding of the total
    }
}
