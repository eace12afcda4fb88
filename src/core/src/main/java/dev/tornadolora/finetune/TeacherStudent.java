package dev.tornadolora.finetune;

import dev.tornadolora.device.Device;
import dev.tornadolora.io.PeftAdapters;
import dev.tornadolora.nn.LoRALinear;
import dev.tornadolora.llama.LlamaConfig;
import dev.tornadolora.llama.LlamaForCausalLM;
import dev.tornadolora.llama.LoraSettings;
import dev.tornadolora.math.Softmax;
import dev.tornadolora.tensor.Nf4Tensor;
import dev.tornadolora.tensor.Tensor;
import dev.tornadolora.train.SyntheticTask;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * The fine-tuning job with a known answer, built from a seed alone: a small random Llama <em>teacher</em> whose
 * LoRA'd projections carry hidden low-rank updates, a corpus sampled from it, and a QLoRA <em>student</em> (the
 * teacher's base in NF4, fresh adapters) to fine-tune on that corpus.
 * <pre>
 *   base      W ~ N(0, 1/in) per projection; embeddings ~ N(0, 1); lm_head ~ N(0, (logitStd)²/H): peaked logits
 *   teacher   deq(NF4(W)) + ΔW on each LoRA'd projection, ΔW = B*·A* of rank hiddenRank,
 *             ‖ΔW‖_F = updateScale · ‖deq(W)‖_F; every other projection deq(NF4(W))
 *   student   NF4(W) + scale·B·A (B = 0 at the start: the student is the base)
 *   corpus    sequences sampled token by token from the teacher (temperature 1), the first token uniform
 * </pre>
 * The teacher is built on the <em>dequantized</em> base, as the MLP task is ({@link SyntheticTask}): the student
 * then differs from it by ΔW alone, which rank-r adapters can represent exactly, so the criterion has a known
 * answer: KL(teacher ‖ student) on held-out sequences falls towards 0, and each learned scale·B·A lines up with
 * its ΔW (cosine → 1, up to what the finite corpus identifies).
 */
public final class TeacherStudent {

    /**
     * The job's sizes and seeds (the command line's embedded job, which {@code finetune} runs without a model, makes
     * one in {@code EmbeddedJob.spec}).
     */
    public record Spec(LlamaConfig model, LoraSettings lora, int hiddenRank, double updateScale, double logitStd,
                       int trainSequences, int evalSequences, int seqLen, long seed) {}

    private final Spec spec;
    private final Map<String, Tensor> baseWeights = new LinkedHashMap<>();
    private final Map<String, Tensor> teacherWeights = new LinkedHashMap<>();
    private final Map<String, float[]> hiddenUpdates = new LinkedHashMap<>();

    public TeacherStudent(Spec spec) {
        this.spec = spec;
        LlamaConfig c = spec.model();
        SplittableRandom rng = new SplittableRandom(spec.seed());
        int h = c.hiddenSize(), q = c.numAttentionHeads() * c.headDim(), kv = c.numKeyValueHeads() * c.headDim();
        put("model.embed_tokens.weight", gaussian(rng, 1.0, c.vocabSize(), h));
        List<String> targets = spec.lora().targetModules();
        for (int l = 0; l < c.numHiddenLayers(); l++) {
            String p = "model.layers." + l + ".";
            put(p + "input_layernorm.weight", ones(h));
            put(p + "post_attention_layernorm.weight", ones(h));
            projection(rng, p + "self_attn.q_proj", q, h, targets.contains("q_proj"));
            projection(rng, p + "self_attn.k_proj", kv, h, targets.contains("k_proj"));
            projection(rng, p + "self_attn.v_proj", kv, h, targets.contains("v_proj"));
            projection(rng, p + "self_attn.o_proj", h, q, targets.contains("o_proj"));
            projection(rng, p + "mlp.gate_proj", c.intermediateSize(), h, targets.contains("gate_proj"));
            projection(rng, p + "mlp.up_proj", c.intermediateSize(), h, targets.contains("up_proj"));
            projection(rng, p + "mlp.down_proj", h, c.intermediateSize(), targets.contains("down_proj"));
        }
        put("model.norm.weight", ones(h));
        if (!c.tieWordEmbeddings()) {
            put("lm_head.weight", gaussian(rng, spec.logitStd() / Math.sqrt(h), c.vocabSize(), h));
        }
    }

    private void put(String key, Tensor t) {
        baseWeights.put(key, t);
        teacherWeights.put(key, t);
    }

    /** W ~ N(0, 1/in); the teacher gets deq(NF4(W)) (+ ΔW when LoRA'd), the student's loader quantizes W itself. */
    private void projection(SplittableRandom rng, String module, int out, int in, boolean lora) {
        Tensor w = gaussian(rng, 1 / Math.sqrt(in), out, in);
        baseWeights.put(module + ".weight", w);
        float[] deq = Nf4Tensor.quantize(w.data(), out, in).dequantize();
        if (lora) {
            int r = spec.hiddenRank();
            float[] a = gaussian(rng, 1, r, in).data(), b = gaussian(rng, 1, out, r).data();
            float[] delta = new float[out * in];
            LoRALinear.addScaledProduct(delta, b, a, out, r, in, 1f);
            double s = spec.updateScale() * norm(deq) / norm(delta);
            for (int i = 0; i < delta.length; i++) delta[i] *= (float) s;
            hiddenUpdates.put(module, delta);
            for (int i = 0; i < deq.length; i++) deq[i] += delta[i];
        }
        teacherWeights.put(module + ".weight", Tensor.of(deq, out, in));
    }

    public Spec spec() { return spec; }

    /** HF-named weights of the base (fp32, before quantization): the student loads these with quantizeBase. */
    public Map<String, Tensor> baseWeights() { return baseWeights; }

    /** HF-named weights of the teacher: deq(NF4(W)) + ΔW. */
    public Map<String, Tensor> teacherWeights() { return teacherWeights; }

    /** ΔW [out, in] by module path ({@code model.layers.0.self_attn.q_proj}). */
    public Map<String, float[]> hiddenUpdates() { return hiddenUpdates; }

    /** The teacher on {@code device} (eval mode, no trainable adapters). */
    public LlamaForCausalLM teacher(Device device) {
        LoraSettings l = spec.lora();
        return LlamaForCausalLM.fromWeights(spec.model(), teacherWeights,
                l.withDropout(0f).withQuantizeBase(false), device)
                .train(false);
    }

    /** The student on {@code device}: the base (NF4 when the spec says so) with fresh adapters. */
    public LlamaForCausalLM student(Device device) {
        return LlamaForCausalLM.fromWeights(spec.model(), baseWeights, spec.lora(), device);
    }

    /**
     * {@code n} sequences of {@code seqLen} tokens sampled from the teacher, each from its own generator seeded by
     * (seed, stream, index): the first token uniform, then each next one from softmax(logits) at the previous
     * position. Batched over the sequences, one forward per position (no KV cache: the model is small).
     */
    public TokenDataset sample(LlamaForCausalLM teacher, int n, long stream, String name) {
        int s = spec.seqLen(), v = spec.model().vocabSize();
        int[][] rows = new int[n][s];
        SplittableRandom[] rngs = new SplittableRandom[n];
        for (int i = 0; i < n; i++) {
            rngs[i] = new SplittableRandom(spec.seed() * 0x9E3779B97F4A7C15L + stream * 1_000_003L + i);
            rows[i][0] = rngs[i].nextInt(v);
        }
        for (int t = 1; t < s; t++) {
            int[] ids = new int[n * t];
            for (int i = 0; i < n; i++) System.arraycopy(rows[i], 0, ids, i * t, t);
            float[] logits = teacher.logits(ids, n, t).data();
            for (int i = 0; i < n; i++) {
                rows[i][t] = draw(logits, ((long) i * t + t - 1) * v, v, rngs[i].nextDouble());
            }
        }
        return TokenDataset.of(name, rows, null);
    }

    /** Inverse-CDF draw from softmax(logits[off, off+v)) with uniform u ∈ [0, 1). */
    static int draw(float[] logits, long off, int v, double u) {
        int o = Math.toIntExact(off);
        double max = Double.NEGATIVE_INFINITY;
        for (int k = 0; k < v; k++) max = Math.max(max, logits[o + k]);
        double z = 0;
        for (int k = 0; k < v; k++) z += Math.exp(logits[o + k] - max);
        double target = u * z, acc = 0;
        for (int k = 0; k < v; k++) {
            acc += Math.exp(logits[o + k] - max);
            if (acc > target) return k;
        }
        return v - 1;
    }

    /**
     * The mean over every position of every row of KL(p_teacher ‖ p_student) = Σ_k p_T,k (log p_T,k − log p_S,k),
     * in nats, both models in eval mode, computed in double from their logits.
     */
    public static double kl(LlamaForCausalLM teacher, LlamaForCausalLM student, TokenDataset data, int batch) {
        int s = data.seqLen(), v = teacher.config().vocabSize();
        double sum = 0;
        long count = 0;
        student.train(false);
        try {
            for (int lo = 0; lo < data.size(); lo += batch) {
                int[] rows = new int[Math.min(batch, data.size() - lo)];
                for (int i = 0; i < rows.length; i++) rows[i] = lo + i;
                int[] ids = data.inputIds(rows);
                float[] lt = teacher.logits(ids, rows.length, s).data(), ls = student.logits(ids, rows.length, s).data();
                for (int p = 0; p < rows.length * s; p++) {
                    sum += klRow(lt, ls, p * v, v);
                    count++;
                }
            }
        } finally {
            student.train(true);
        }
        return sum / count;
    }

    static double klRow(float[] t, float[] s, int off, int v) {
        double lzt = Softmax.logSumExp(v, k -> t[off + k]), lzs = Softmax.logSumExp(v, k -> s[off + k]), kl = 0;
        for (int k = 0; k < v; k++) {
            double lpt = t[off + k] - lzt;
            kl += Math.exp(lpt) * (lpt - (s[off + k] - lzs));
        }
        return kl;
    }

    /**
     * cos(scale·B·A, ΔW) per LoRA'd module, from the student's adapters (PEFT keys
     * {@code base_model.model.<module>.lora_A.weight} [r, in] and {@code lora_B.weight} [out, r]).
     */
    public Map<String, Double> cosines(LlamaForCausalLM student) {
        Map<String, Tensor> ad = student.adapterStateDict();
        float scale = student.lora().scale();
        Map<String, Double> out = new LinkedHashMap<>();
        hiddenUpdates.forEach((module, delta) -> {
            Tensor a = ad.get(PeftAdapters.key(module, "lora_a.weight"));
            Tensor b = ad.get(PeftAdapters.key(module, "lora_b.weight"));
            if (a == null || b == null) throw new IllegalStateException("the student has no adapters on " + module);
            int r = a.dim(0), in = a.dim(1), o = b.dim(0);
            float[] learned = new float[o * in];
            LoRALinear.addScaledProduct(learned, b.data(), a.data(), o, r, in, scale);
            out.put(module, SyntheticTask.cosine(learned, delta));
        });
        return out;
    }

    private static Tensor gaussian(SplittableRandom rng, double std, int... shape) {
        Tensor t = Tensor.zeros(shape);
        float[] d = t.data();
        for (int i = 0; i < d.length; i++) d[i] = (float) (rng.nextGaussian() * std);
        return t;
    }

    private static Tensor ones(int n) {
        float[] d = new float[n];
        java.util.Arrays.fill(d, 1f);
        return Tensor.of(d, n);
    }

    private static double norm(float[] v) {
        double s = 0;
        for (float x : v) s += (double) x * x;
        return Math.sqrt(s);
    }
}
