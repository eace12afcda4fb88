package dev.tornadolora.llama;

import dev.tornadolora.kernels.Parallel;
import dev.tornadolora.llama.ops.CausalAttention;
import dev.tornadolora.llama.ops.GeGlu;
import dev.tornadolora.llama.OpTimer.Op;
import dev.tornadolora.llama.ops.RmsNorm;
import dev.tornadolora.llama.ops.Rope;
import dev.tornadolora.llama.ops.SwiGlu;
import dev.tornadolora.nn.LoRALinear;
import dev.tornadolora.nn.Module;
import dev.tornadolora.tensor.Tensor;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One {@code LlamaDecoderLayer}, pre-norm with residuals:
 * <pre>
 *   h = x + o_proj(attention(rope(q_proj(n)), rope(k_proj(n)), v_proj(n))),   n = input_layernorm(x)
 *   y = h + down_proj(silu(gate_proj(m)) · up_proj(m)),                        m = post_attention_layernorm(h)
 * </pre>
 * With the family's parts ({@link ModelFamily.Parts}): q/k/v carry their frozen biases inside their projections
 * (Qwen2); q and k are RMS-normalised per head, {@code q = q_norm(q_proj(n))}, before RoPE (Qwen3); the attention
 * of a sliding layer sees the last {@code window} positions only (Mistral, Qwen's sliding layers); the norms scale
 * by 1 + w and the MLP is GeGLU, {@code gelu_tanh(gate) · up} (Gemma).
 * The seven projections are on the model's backend: {@code LoRALinear} where the LoRA settings put an adapter,
 * {@code FrozenLinear} (base only) elsewhere. A forward with {@code keep} keeps its
 * activations (and its projections theirs) for its backward, which releases them; one forward/backward at a time.
 * A forward without {@code keep} keeps nothing, so that activation checkpointing can run it again in backward.
 */
final class DecoderLayer {
    /** The norms' weights as stored (merge writes them back). */
    final float[] inputNorm;
    final float[] postNorm;
    /** Per-head RMSNorm weights [head_dim] of q and k (Qwen3's q_norm, k_norm), or null. */
    final float[] qNorm;
    final float[] kNorm;
    /** What the norms multiply by: the weights, or 1 + w ({@link ModelFamily.Parts#normScale}). */
    private final float[] inputScale, postScale, qScale, kScale;
    /** The sliding window of this layer's attention, 0 for full causal attention. */
    private final int window;
    /** q_proj … down_proj by HF name, in model order. */
    final Map<String, Module> proj = new LinkedHashMap<>();
    private final LlamaConfig c;
    /** The device's executor, which every op here but the projections runs on. */
    private final Parallel par;

    private Saved saved;

    private record Saved(int batch, int seq, float[] x, float[] inv1, float[] q, float[] k, float[] v, float[] attn,
                         float[] lse, float[] h, float[] inv2, float[] g, float[] u, QkNorm qk) {}

    /** q and k before their per-head norms, and the norms' 1/rms per (token, head). */
    private record QkNorm(float[] q, float[] k, float[] invQ, float[] invK) {}

    /** Layer {@code index} of a model of config {@code c}; {@code qNorm}/{@code kNorm} null unless the family has them. */
    DecoderLayer(LlamaConfig c, Parallel par, int index, float[] inputNorm, float[] postNorm, float[] qNorm,
                 float[] kNorm) {
        if ((qNorm == null) != (kNorm == null)) throw new IllegalArgumentException("q_norm and k_norm come together");
        this.c = c;
        this.par = par;
        this.inputNorm = inputNorm;
        this.postNorm = postNorm;
        this.qNorm = qNorm;
        this.kNorm = kNorm;
        ModelFamily.Parts parts = c.parts();
        this.inputScale = parts.normScale(inputNorm);
        this.postScale = parts.normScale(postNorm);
        this.qScale = qNorm == null ? null : parts.normScale(qNorm);
        this.kScale = kNorm == null ? null : parts.normScale(kNorm);
        this.window = parts.window(index);
    }

    float[] forward(float[] x, int batch, int seq, Rope rope, Rope.Tables tables, boolean keep, OpTimer timer) {
        return forward(x, batch, seq, rope, tables, keep, timer, null, -1);
    }

    /**
     * With a {@code cache} (batch 1, no backward): the seq new tokens are at positions cache.length()… (tables
     * hold their angles) and attend to the cached keys and values of layer {@code index} as well.
     */
    float[] forward(float[] x, int batch, int seq, Rope rope, Rope.Tables tables, boolean keep, OpTimer timer,
                    KvCache cache, int index) {
        int t = batch * seq, d = c.hiddenSize();
        float eps = (float) c.rmsNormEps();
        float[] inv1 = new float[t], n = new float[t * d];
        long t0 = timer.start();
        RmsNorm.forward(par, x, inputScale, t, d, eps, n, inv1);
        timer.stop(Op.RMSNORM, t0);
        Tensor nt = new Tensor(new int[] {t, d}, n);
        t0 = timer.start();
        float[] q = proj.get("q_proj").forward(nt).data();
        float[] k = proj.get("k_proj").forward(nt).data();
        float[] v = proj.get("v_proj").forward(nt).data();
        timer.stop(Op.PROJECTIONS, t0);
        QkNorm qk = null;
        if (qNorm != null) {
            t0 = timer.start();
            int nh = c.numAttentionHeads(), nkv = c.numKeyValueHeads(), hd = c.headDim();
            qk = new QkNorm(q, k, new float[t * nh], new float[t * nkv]);
            q = new float[qk.q.length];
            k = new float[qk.k.length];
            RmsNorm.forward(par, qk.q, qScale, t * nh, hd, eps, q, qk.invQ);
            RmsNorm.forward(par, qk.k, kScale, t * nkv, hd, eps, k, qk.invK);
            timer.stop(Op.RMSNORM, t0);
        }
        t0 = timer.start();
        rope.apply(par, q, t, c.numAttentionHeads(), tables, false);
        rope.apply(par, k, t, c.numKeyValueHeads(), tables, false);
        timer.stop(Op.ROPE, t0);
        t0 = timer.start();
        float[] attn = new float[t * c.qDim()];
        float[] lse = keep ? new float[batch * c.numAttentionHeads() * seq] : null;
        if (cache == null) attention(batch, seq, tables.positions()).forward(q, k, v, attn, lse);
        else cache.attend(par, index, q, k, v, attn, seq);
        timer.stop(Op.ATTENTION, t0);
        t0 = timer.start();
        float[] h = proj.get("o_proj").forward(new Tensor(new int[] {t, c.qDim()}, attn)).data();
        timer.stop(Op.PROJECTIONS, t0);
        t0 = timer.start();
        addInPlace(par, h, x);
        timer.stop(Op.RESIDUAL, t0);
        float[] inv2 = new float[t], m = new float[t * d];
        t0 = timer.start();
        RmsNorm.forward(par, h, postScale, t, d, eps, m, inv2);
        timer.stop(Op.RMSNORM, t0);
        Tensor mt = new Tensor(new int[] {t, d}, m);
        t0 = timer.start();
        float[] g = proj.get("gate_proj").forward(mt).data();
        float[] u = proj.get("up_proj").forward(mt).data();
        timer.stop(Op.PROJECTIONS, t0);
        t0 = timer.start();
        float[] a = new float[g.length];
        if (c.parts().activation() == ModelFamily.Activation.GELU_TANH) GeGlu.forward(par, g, u, a);
        else SwiGlu.forward(par, g, u, a);
        timer.stop(Op.SWIGLU, t0);
        t0 = timer.start();
        float[] y = proj.get("down_proj").forward(new Tensor(new int[] {t, c.intermediateSize()}, a)).data();
        timer.stop(Op.PROJECTIONS, t0);
        t0 = timer.start();
        addInPlace(par, y, h);
        timer.stop(Op.RESIDUAL, t0);
        saved = keep ? new Saved(batch, seq, x, inv1, q, k, v, attn, lse, h, inv2, g, u, qk) : null;
        if (!keep) releaseActivations();
        return y;
    }

    /** dL/dx from dL/dy; accumulates the adapters' gradients. {@code needDx} false skips the input norm's backward. */
    float[] backward(float[] dy, Rope rope, Rope.Tables tables, boolean needDx, OpTimer timer) {
        Saved s = saved;
        if (s == null) throw new IllegalStateException("backward without a forward that kept its activations");
        int t = s.batch * s.seq, d = c.hiddenSize();
        long t0 = timer.start();
        float[] da = proj.get("down_proj").backward(new Tensor(new int[] {t, d}, dy)).data();
        timer.stop(Op.PROJECTIONS, t0);
        t0 = timer.start();
        float[] dg = new float[da.length], du = new float[da.length];
        if (c.parts().activation() == ModelFamily.Activation.GELU_TANH) GeGlu.backward(par, da, s.g, s.u, dg, du);
        else SwiGlu.backward(par, da, s.g, s.u, dg, du);
        timer.stop(Op.SWIGLU, t0);
        int[] midShape = {t, c.intermediateSize()};
        t0 = timer.start();
        float[] dm = proj.get("gate_proj").backward(new Tensor(midShape, dg)).data();
        addInPlace(par, dm, proj.get("up_proj").backward(new Tensor(midShape, du)).data());
        timer.stop(Op.PROJECTIONS, t0);
        t0 = timer.start();
        float[] dh = dy.clone();
        RmsNorm.backward(par, dm, s.h, postScale, s.inv2, t, d, dh, true);
        timer.stop(Op.RMSNORM, t0);
        t0 = timer.start();
        float[] dAttn = proj.get("o_proj").backward(new Tensor(new int[] {t, d}, dh)).data();
        timer.stop(Op.PROJECTIONS, t0);
        t0 = timer.start();
        float[] dq = new float[s.q.length], dk = new float[s.k.length], dv = new float[s.v.length];
        attention(s.batch, s.seq, tables.positions()).backward(dAttn, s.q, s.k, s.v, s.attn, s.lse, dq, dk, dv);
        timer.stop(Op.ATTENTION, t0);
        t0 = timer.start();
        rope.apply(par, dq, t, c.numAttentionHeads(), tables, true);
        rope.apply(par, dk, t, c.numKeyValueHeads(), tables, true);
        timer.stop(Op.ROPE, t0);
        if (s.qk != null) {
            t0 = timer.start();
            float[] dqPre = new float[dq.length], dkPre = new float[dk.length];
            RmsNorm.backward(par, dq, s.qk.q, qScale, s.qk.invQ, t * c.numAttentionHeads(), c.headDim(), dqPre, false);
            RmsNorm.backward(par, dk, s.qk.k, kScale, s.qk.invK, t * c.numKeyValueHeads(), c.headDim(), dkPre, false);
            dq = dqPre;
            dk = dkPre;
            timer.stop(Op.RMSNORM, t0);
        }
        t0 = timer.start();
        float[] dn = proj.get("q_proj").backward(new Tensor(new int[] {t, c.qDim()}, dq)).data();
        addInPlace(par, dn, proj.get("k_proj").backward(new Tensor(new int[] {t, c.kvDim()}, dk)).data());
        addInPlace(par, dn, proj.get("v_proj").backward(new Tensor(new int[] {t, c.kvDim()}, dv)).data());
        timer.stop(Op.PROJECTIONS, t0);
        if (needDx) {
            t0 = timer.start();
            RmsNorm.backward(par, dn, s.x, inputScale, s.inv1, t, d, dh, true);
            timer.stop(Op.RMSNORM, t0);
        }
        releaseActivations();
        return dh;
    }

    /** Drops the activations this layer and its projections keep for a backward. */
    void releaseActivations() {
        saved = null;
        proj.values().forEach(Module::releaseActivations);
    }

    /** Each adapted projection's dropout draws so far (0 for the others), in {@link #proj} order. */
    long[] dropoutDraws() {
        return proj.values().stream().mapToLong(p -> p instanceof LoRALinear l ? l.dropoutDraws() : 0L).toArray();
    }

    /** Puts the projections' dropout generators back where {@link #dropoutDraws()} said they stood. */
    void resumeDropout(long[] draws) {
        int i = 0;
        for (Module p : proj.values()) {
            if (p instanceof LoRALinear l && l.dropout() > 0 && l.dropoutDraws() != draws[i]) l.resumeDropout(draws[i]);
            i++;
        }
    }

    /**
     * Block-diagonal causal attention when the position ids pack several examples into a row, within the layer's
     * sliding window.
     */
    private CausalAttention attention(int batch, int seq, int[] positionIds) {
        return new CausalAttention(par, batch, seq, c.numAttentionHeads(), c.numKeyValueHeads(), c.headDim(),
                CausalAttention.segmentStarts(positionIds, batch, seq), window);
    }

    /** a += b. */
    static void addInPlace(Parallel par, float[] a, float[] b) {
        par.range(a.length, 16384, (i0, i1) -> {
            for (int i = i0; i < i1; i++) a[i] += b[i];
        });
    }
}
