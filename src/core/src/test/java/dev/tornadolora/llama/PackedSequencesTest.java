package dev.tornadolora.llama;

import dev.tornadolora.llama.ops.CausalAttention;
import dev.tornadolora.testing.TestDevices;
import dev.tornadolora.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

/**
 * Packed rows keep their examples apart: with position ids restarting at each example (transformers' packed
 * {@code position_ids}), the logits, loss and adapter gradients of a packed row equal those of its examples run
 * one by one; right padding changes nothing for the real tokens.
 */
class PackedSequencesTest {
    static final LlamaConfig CONFIG = new LlamaConfig(64, 32, 48, 2, 4, 2, 8, 1e-6, 10000, null, false, 128, 1, 2, "float32");
    /** Mistral's parts with a sliding window of 3, shorter than both examples below. */
    static final LlamaConfig MISTRAL = new LlamaConfig(64, 32, 48, 2, 4, 2, 8, 1e-6, 10000, null, false, 128, 1, 2,
            "float32", new ModelFamily.Parts(ModelFamily.MISTRAL, false, false, false, ModelFamily.Activation.SILU,
            false, java.util.List.of(3, 3)));
    static final LoraSettings LORA = new LoraSettings(Set.of("q_proj", "v_proj"), true, false, 4, 8f, 0f, false, false);

    @Test
    void segmentStartsFollowTransformersPackedSequenceIndices() {
        // find_packed_sequence_indices: a new sequence wherever position_ids do not count up by one
        assertArrayEquals(new int[] {0, 0, 0, 3, 3, 5, 6, 6}, CausalAttention.segmentStarts(
                new int[] {0, 1, 2, 0, 1, 0, 0, 1}, 1, 8));
        assertNull(CausalAttention.segmentStarts(new int[] {0, 1, 2, 3, 0, 1, 2, 3}, 2, 4));
        assertNull(CausalAttention.segmentStarts(null, 2, 4));
    }

    @Test
    void blockDiagonalAttentionMatchesItsReference() {
        int batch = 2, seq = 7, heads = 4, kv = 2, d = 4;
        int[] pos = {0, 1, 2, 0, 1, 2, 3, 0, 1, 0, 1, 2, 0, 0};
        CausalAttention a = new CausalAttention(TestDevices.jvm().executor(), batch, seq, heads, kv, d, CausalAttention.segmentStarts(pos, batch, seq));
        Random r = new Random(5);
        double[] q = new double[batch * seq * heads * d], k = new double[batch * seq * kv * d],
                v = new double[k.length], dOut = new double[q.length];
        for (double[] x : new double[][] {q, k, v, dOut}) for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
        float[] out = new float[q.length], lse = new float[batch * heads * seq];
        a.forward(f(q), f(k), f(v), out, lse);
        double[] ref = a.forwardReference(q, k, v);
        for (int i = 0; i < out.length; i++) assertEquals(ref[i], out[i], 1e-5, "out " + i);
        float[] dq = new float[q.length], dk = new float[k.length], dv = new float[v.length];
        a.backward(f(dOut), f(q), f(k), f(v), out, lse, dq, dk, dv);
        double[][] g = a.backwardReference(dOut, q, k, v);
        for (int i = 0; i < dq.length; i++) assertEquals(g[0][i], dq[i], 1e-5, "dq " + i);
        for (int i = 0; i < dk.length; i++) assertEquals(g[1][i], dk[i], 1e-5, "dk " + i);
        for (int i = 0; i < dv.length; i++) assertEquals(g[2][i], dv[i], 1e-5, "dv " + i);
    }

    /**
     * Also within a sliding window (Mistral): transformers ands the window with the packed mask (checked by hand:
     * MistralForCausalLM with packed position_ids and use_cache=False gives each example's own logits, 0.0 apart;
     * with a cache transformers does not look for packing at all).
     */
    @Test
    void aPackedRowEqualsItsExamplesOneByOne() {
        aPackedRowEqualsItsExamplesOneByOne(CONFIG);
        aPackedRowEqualsItsExamplesOneByOne(MISTRAL);
    }

    private static void aPackedRowEqualsItsExamplesOneByOne(LlamaConfig config) {
        int[] a = {3, 9, 14, 2, 7}, b = {5, 11, 8, 1};
        int[] packed = concat(a, b), pos = {0, 1, 2, 3, 4, 0, 1, 2, 3};
        // the collator's labels: −100 at each example's first token, so no example predicts the next one's
        int[] labels = packed.clone();
        labels[0] = -100;
        labels[a.length] = -100;
        try (LlamaForCausalLM m = model(config); LlamaForCausalLM alone = model(config)) {
            float[] zp = m.logits(packed, pos, 1, packed.length).data();
            float[] za = alone.logits(a, 1, a.length).data(), zb = alone.logits(b, 1, b.length).data();
            int v = CONFIG.vocabSize();
            for (int i = 0; i < za.length; i++) assertEquals(za[i], zp[i], 2e-5, "example a, logit " + i);
            for (int i = 0; i < zb.length; i++) assertEquals(zb[i], zp[a.length * v + i], 2e-5, "example b, logit " + i);

            m.train(true);
            alone.train(true);
            m.zeroGrad();
            double lp = m.forwardBackward(packed, pos, labels, 1, packed.length, 1.0, null);
            alone.zeroGrad();
            // the packed loss is the token-weighted mean of the two examples' losses: (4·La + 3·Lb) / 7
            double la = alone.forwardBackward(a, a, 1, a.length, 4.0 / 7), lb = alone.forwardBackward(b, b, 1, b.length, 3.0 / 7);
            assertEquals((4 * la + 3 * lb) / 7, lp, 1e-5);
            Map<String, Tensor> gp = m.adapterGradients(), ga = alone.adapterGradients();
            for (String key : gp.keySet()) {
                float[] x = gp.get(key).data(), y = ga.get(key).data();
                for (int i = 0; i < x.length; i++) assertEquals(y[i], x[i], 1e-5, key + " " + i);
            }
        }
    }

    @Test
    void rightPaddingLeavesTheRealTokensAlone() {
        int[] a = {3, 9, 14, 2, 7};
        int[] padded = {3, 9, 14, 2, 7, 0, 0, 0};
        try (LlamaForCausalLM m = model(CONFIG)) {
            float[] z = m.logits(a, 1, a.length).data(), zp = m.logits(padded, 1, padded.length).data();
            for (int i = 0; i < z.length; i++) assertEquals(z[i], zp[i], 1e-6, "logit " + i);
        }
    }

    private static LlamaForCausalLM model(LlamaConfig config) {
        LlamaForCausalLM m = LlamaForCausalLM.random(config, LORA, 3, TestDevices.jvm());
        Map<String, Tensor> sd = new LinkedHashMap<>(m.adapterStateDict());
        sd.replaceAll((k, t) -> {  // B starts at zero: give the adapters values so that they matter
            float[] v = t.data().clone();
            for (int i = 0; i < v.length; i++) v[i] = 0.05f * (float) Math.sin(i + k.length());
            return new Tensor(t.shape(), v);
        });
        m.loadAdapters(sd);
        return m;
    }

    private static int[] concat(int[] a, int[] b) {
        int[] c = new int[a.length + b.length];
        System.arraycopy(a, 0, c, 0, a.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }

    private static float[] f(double[] x) {
        float[] y = new float[x.length];
        for (int i = 0; i < x.length; i++) y[i] = (float) x[i];
        return y;
    }
}
