package dev.tornadolora.llama;

import dev.tornadolora.device.Device;
import dev.tornadolora.io.PeftAdapters;
import dev.tornadolora.kernels.LoraBackend;
import dev.tornadolora.llama.ops.CausalLmLoss;
import dev.tornadolora.llama.OpTimer.Op;
import dev.tornadolora.llama.ops.RmsNorm;
import dev.tornadolora.llama.ops.Rope;
import dev.tornadolora.math.CrossEntropy;
import dev.tornadolora.tensor.Nf4Tensor;
import dev.tornadolora.nn.FrozenLinear;
import dev.tornadolora.nn.LoRALinear;
import dev.tornadolora.nn.Module;
import dev.tornadolora.nn.Parameter;
import dev.tornadolora.tensor.BaseWeight;
import dev.tornadolora.tensor.DenseWeight;
import dev.tornadolora.tensor.Shapes;
import dev.tornadolora.tensor.Tensor;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Hugging Face's {@code LlamaForCausalLM} with LoRA/QLoRA adapters placed as torchtune's {@code lora_llama}
 * builders place them, and PEFT's names for them; the decoder of every {@link ModelFamily} (Qwen2's q/k/v biases,
 * Qwen3's q/k norms, Mistral's sliding window, Gemma's scaled embeddings, (1 + w) norms and GeGLU are parts the
 * family chooses, {@link LlamaConfig#parts}):
 * <pre>
 *   x = embed_tokens[ids];   x = layer_i(x) for each decoder layer;   logits = lm_head(norm(x))
 *   loss = transformers' causal-LM loss of (logits, labels)            (see {@link CausalLmLoss})
 * </pre>
 * Every projection (q/k/v/o, gate/up/down, lm_head) is a {@link LoRALinear} on the model's backend (the JVM, or a
 * TornadoVM device): with an adapter where {@link LoraSettings} puts one, base-only elsewhere. With
 * {@code quantizeBase} the seven layer projections hold their weights as NF4 (torchao's {@code to_nf4}, block 64,
 * scaler block 256); embeddings, norms and lm_head stay as stored. lm_head shares the embedding's weight when
 * {@code tie_word_embeddings} and the file does not hold a different {@code lm_head.weight} (transformers' rule,
 * {@link HfWeights#tiedPair}). Matrices stored as F16/BF16 stay 16-bit ({@link dev.tornadolora.tensor.HalfWeight}),
 * decoded to fp32 inside the kernels (exact, so results equal those on the widened weights); norms are widened.
 *
 * <p>Gradients flow only to the adapters; the backward of every op computes dx (hand-written, see the ops in
 * {@code dev.tornadolora.llama.ops}). A model starts in eval mode (as {@code from_pretrained} returns it); one
 * forward/backward at a time per model.
 */
public final class LlamaForCausalLM implements AutoCloseable {

    private final LlamaConfig config;
    private final LoraSettings lora;
    private final Device device;
    /** embed_tokens [V, H] as stored (fp32 or 16-bit); lm_head's weight too when tied. */
    private final BaseWeight embedding;
    private final List<DecoderLayer> layers;
    private final float[] finalNorm;
    /** What the final norm multiplies by (the weights, or Gemma's 1 + w). */
    private final float[] finalScale;
    /** The embedding's multiplier (Gemma's √hidden in fp32), 1 for the others. */
    private final float embedScale;
    private final Module lmHead;
    /** Whether lm_head is the embedding (tie_word_embeddings as transformers resolved it for the file). */
    private final boolean headTied;
    /** The digest of the weights as read ({@link HfWeights#digest}). */
    private final String weightsDigest;
    private final Rope rope;
    private final OpTimer timer = new OpTimer();
    private boolean training;
    private boolean activationCheckpointing;

    private Saved saved;

    /**
     * What backward needs of the forward: the final norm's input and statistics, and with activation checkpointing
     * each layer's input and its projections' dropout draws before it ran (null without).
     */
    private record Saved(int batch, int seq, float[] x, float[] inv, Rope.Tables tables, float[][] layerInputs,
                         long[][] layerDraws) {}

    private LlamaForCausalLM(LlamaConfig config, LoraSettings lora, Device device, BaseWeight embedding,
                             List<DecoderLayer> layers, float[] finalNorm, Module lmHead, boolean headTied,
                             String weightsDigest) {
        this.config = config;
        this.lora = lora;
        this.device = device;
        this.embedding = embedding;
        this.layers = layers;
        this.finalNorm = finalNorm;
        this.finalScale = config.parts().normScale(finalNorm);
        // GemmaTextScaledWordEmbedding: torch.tensor(hidden ** 0.5) is fp32, then .to(the compute dtype, fp32)
        this.embedScale = config.parts().embedScale() ? (float) Math.sqrt(config.hiddenSize()) : 1f;
        this.lmHead = lmHead;
        this.headTied = headTied;
        this.weightsDigest = weightsDigest;
        this.rope = new Rope(config.headDim(), config.ropeTheta(), config.ropeScaling());
        train(false);
    }

    // ---------------------------------------------------------------- construction

    /**
     * Loads an HF folder ({@code config.json} + {@code model.safetensors} or its sharded index), tensor by tensor
     * from memory-mapped files, after validating the config and every tensor's name, shape and dtype.
     */
    public static LlamaForCausalLM load(Path hfDir, LoraSettings lora, Device device) {
        LlamaConfig c = LlamaConfig.read(hfDir.resolve("config.json"));
        try (HfWeights w = HfWeights.open(hfDir)) {
            return build(c, w, lora, device);
        }
    }

    /** Builds the model from HF-named fp32 weights (validated as {@link #load} validates files). */
    public static LlamaForCausalLM fromWeights(LlamaConfig c, Map<String, Tensor> hfWeights, LoraSettings lora,
                                               Device device) {
        return build(c, HfWeights.of(hfWeights), lora, device);
    }

    /**
     * A model with random weights as transformers initialises a fresh {@code LlamaForCausalLM} (normal(0, 0.02)
     * for embeddings and projections, ones for the norms: zeros for Gemma's 1 + w), for benchmarks and tests; the
     * adapters as LoRALinear
     * initialises them (B = 0).
     */
    public static LlamaForCausalLM random(LlamaConfig c, LoraSettings lora, long seed, Device device) {
        return random(c, lora, seed, device, null);
    }

    /**
     * As {@link #random(LlamaConfig, LoraSettings, long, Device)}, as if read from a checkpoint stored in
     * {@code stored} (null: fp32): the matrices rounded to it (ties to even) and kept 16-bit ({@link
     * dev.tornadolora.tensor.HalfWeight}), as {@link #load} keeps a BF16/F16 file's.
     */
    public static LlamaForCausalLM random(LlamaConfig c, LoraSettings lora, long seed, Device device,
                                          dev.tornadolora.tensor.HalfWeight.Format stored) {
        java.util.SplittableRandom rng = new java.util.SplittableRandom(seed);
        Map<String, int[]> shapes = HfWeights.expected(c);
        HfWeights lazy = new HfWeights() {
            @Override java.util.Set<String> names() { return shapes.keySet(); }
            @Override int[] shape(String name) { return shapes.get(name); }
            @Override boolean isFloat(String name) { return true; }
            @Override float[] read(String name) {
                float[] a = new float[Shapes.numel(shapes.get(name))];
                if (name.endsWith("norm.weight")) {
                    java.util.Arrays.fill(a, c.parts().normPlusOne() ? 0f : 1f);
                } else {
                    for (int i = 0; i < a.length; i++) a[i] = (float) (gaussian(rng) * 0.02);
                }
                return a;
            }
            @Override BaseWeight weight(String name) {
                if (stored == null) return super.weight(name);
                float[] a = read(name);
                short[] bits = new short[a.length];
                for (int i = 0; i < a.length; i++) {
                    bits[i] = stored == dev.tornadolora.tensor.HalfWeight.Format.BF16
                            ? dev.tornadolora.tensor.BFloat16.fromFloat(a[i]) : Float.floatToFloat16(a[i]);
                }
                int[] s = shapes.get(name);
                return new dev.tornadolora.tensor.HalfWeight(s[0], s[1], bits, stored);
            }
            @Override String source() { return "random weights"; }
        };
        return build(c, lazy, lora, device);
    }

    private static double gaussian(java.util.SplittableRandom rng) {
        double u = rng.nextDouble(), v = rng.nextDouble();
        return Math.sqrt(-2 * Math.log1p(-u)) * Math.cos(2 * Math.PI * v);
    }

    private static LlamaForCausalLM build(LlamaConfig c, HfWeights w, LoraSettings lora, Device device) {
        java.util.Objects.requireNonNull(device, "device (open one with Device.open)");
        w.validate(c);
        if (lora.quantizeBase()) {
            // torchao's to_nf4 needs whole blocks and scaler blocks: refuse before reading anything.
            for (Map.Entry<String, int[]> e : HfWeights.expected(c).entrySet()) {
                if (!e.getKey().endsWith("_proj.weight")) continue;
                try {
                    Nf4Tensor.checkSizes(e.getValue()[0], e.getValue()[1], Nf4Tensor.DEFAULT_BLOCK_SIZE,
                            Nf4Tensor.DEFAULT_SCALER_BLOCK_SIZE);
                } catch (IllegalArgumentException x) {
                    throw new IllegalArgumentException("--quantize-base: " + e.getKey() + " cannot be NF4 (block 64,"
                            + " scaler block 256): " + x.getMessage(), x);
                }
            }
        }
        LoraBackend k = device.backend();
        HfWeights.TiedPair pair = w.tiedPair(c);
        BaseWeight emb = pair.embedding();
        requireTargetsExist(c, lora);
        List<DecoderLayer> layers = new ArrayList<>();
        int seed = 0;
        for (int i = 0; i < c.numHiddenLayers(); i++) {
            String p = "model.layers." + i + ".";
            DecoderLayer layer = new DecoderLayer(c, device.executor(), i, w.take(p + "input_layernorm.weight"),
                    w.take(p + "post_attention_layernorm.weight"),
                    c.parts().qkNorm() ? w.take(p + "self_attn.q_norm.weight") : null,
                    c.parts().qkNorm() ? w.take(p + "self_attn.k_norm.weight") : null);
            for (String name : LlamaConfig.PROJECTIONS) {
                String key = p + (LoraSettings.ATTN_MODULES.contains(name) ? "self_attn." : "mlp.") + name + ".weight";
                int[] s = w.shape(key);
                BaseWeight base = lora.quantizeBase() ? Nf4Tensor.quantize(w.take(key), s[0], s[1])
                        : w.takeWeight(key);
                float[] bias = hasBias(c, name) ? w.take(key.replace(".weight", ".bias")) : null;
                layer.proj.put(name, projection(base, bias, lora, modulePath(i, name), k, seed++));
            }
            layers.add(layer);
        }
        float[] norm = w.take("model.norm.weight");
        BaseWeight head = pair.head();
        Module lmHead = projection(head, null, lora, LoraSettings.OUTPUT_MODULE, k, seed);
        return new LlamaForCausalLM(c, lora, device, emb, Collections.unmodifiableList(layers), norm, lmHead, pair.tied(),
                w.digest());
    }

    /** Whether the family gives projection {@code name} a (frozen) bias: q/k/v of Qwen2. */
    static boolean hasBias(LlamaConfig c, String name) {
        return c.parts().qkvBias() && (name.equals("q_proj") || name.equals("k_proj") || name.equals("v_proj"));
    }

    /**
     * A LoRALinear over {@code base} (and its frozen {@code bias}, or null) when the settings adapt {@code path},
     * else a FrozenLinear (base and bias only).
     */
    private static Module projection(BaseWeight base, float[] bias, LoraSettings lora, String path, LoraBackend k,
                                      long seed) {
        if (!lora.targets(path)) {
            return new FrozenLinear(base, bias).backend(k);
        }
        LoRALinear l = LoRALinear.builder(base.cols(), base.rows()).rank(lora.rankOf(path)).alpha(lora.alphaOf(path))
                .rslora(lora.rslora()).dora(lora.dora()).dropout(lora.dropout()).seed(seed).base(base)
                .bias(bias != null).build();
        if (bias != null) l.load("bias", new Tensor(new int[] {bias.length}, bias));
        return l.backend(k);
    }

    /** As PEFT ("Target modules ... not found in the base model"): every listed name must name some module. */
    private static void requireTargetsExist(LlamaConfig c, LoraSettings lora) {
        List<String> paths = new ArrayList<>();
        for (int i = 0; i < c.numHiddenLayers(); i++) {
            for (String name : LlamaConfig.PROJECTIONS) paths.add(modulePath(i, name));
        }
        paths.add(LoraSettings.OUTPUT_MODULE);
        List<String> names = lora.targets().names();
        for (String n : names == null ? List.<String>of() : names) {
            if (paths.stream().noneMatch(p -> p.equals(n) || p.endsWith("." + n))) {
                throw new IllegalArgumentException("target_modules: '" + n + "' names no linear layer of the model"
                        + " (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, lm_head, or a suffix of"
                        + " a full name such as model.layers.0.self_attn.q_proj)");
            }
        }
        if (lora.targets().regex() != null && paths.stream().noneMatch(lora::targets)) {
            throw new IllegalArgumentException("target_modules: the regex '" + lora.targets().regex()
                    + "' matches no linear layer of the model (it must match a full name such as"
                    + " model.layers.0.self_attn.q_proj)");
        }
    }

    private static BaseWeight baseOf(Module m) {
        return m instanceof LoRALinear l ? l.base() : ((FrozenLinear) m).base();
    }

    private static float[] biasOf(Module m) {
        return m instanceof LoRALinear l ? l.bias() : ((FrozenLinear) m).bias();
    }

    private static void close(Module m) {
        if (m instanceof LoRALinear l) l.close();
        else ((FrozenLinear) m).close();
    }

    // ---------------------------------------------------------------- accessors

    public LlamaConfig config() { return config; }

    /**
     * {@return a digest of the base weights as they were read (CRC32C of names and values, in model order)}: a
     * run's identity includes it, so a resumed run notices a checkpoint changed in place.
     */
    public String weightsDigest() { return weightsDigest; }

    public LoraSettings lora() { return lora; }

    /** The device the model runs on (the caller's: closing the model does not close it). */
    public Device device() { return device; }

    /** The backend the projections run on: {@code device().backend()}. */
    public LoraBackend backend() { return device.backend(); }

    /** The frozen weight of {@code model.embed_tokens} as held (fp32, or 16-bit as stored). */
    BaseWeight embeddingWeight() { return embedding; }

    /** The frozen weight of {@code lm_head} as held (the embedding's when tied). */
    BaseWeight lmHeadWeight() { return baseOf(lmHead); }


    /** Per-op wall time of forward and backward, off until {@code timer().enable(true)}. */
    public OpTimer timer() { return timer; }

    // ---------------------------------------------------------------- computation

    /** Logits [B, S, V] of the ids [B·S] (row-major), in the current mode's semantics (dropout in training). */
    public Tensor logits(int[] inputIds, int batch, int seq) {
        return logits(inputIds, null, batch, seq);
    }

    /**
     * Logits with {@code positionIds} [B·S] as transformers' {@code position_ids}: RoPE at those positions and, where
     * they restart inside a row (packed examples), attention confined to each example; null: 0 … S−1 per row.
     */
    public Tensor logits(int[] inputIds, int[] positionIds, int batch, int seq) {
        float[] z = forward(inputIds, positionIds, batch, seq, false);
        return new Tensor(new int[] {batch, seq, config.vocabSize()}, z);
    }

    /**
     * The loss as transformers' {@code LlamaForCausalLM(labels=...)} computes it (shift, ignore -100, mean over
     * counted tokens); accumulates {@code lossScale · d(loss)/d(adapter)} into the adapters' gradients.
     */
    public double forwardBackward(int[] inputIds, int[] labels, int batch, int seq, double lossScale) {
        return forwardBackward(inputIds, labels, batch, seq, lossScale, null);
    }

    /** As {@link #forwardBackward(int[], int[], int, int, double)}, copying the logits [B·S·V] to {@code logitsOut}. */
    public double forwardBackward(int[] inputIds, int[] labels, int batch, int seq, double lossScale, float[] logitsOut) {
        return forwardBackward(inputIds, null, labels, batch, seq, lossScale, logitsOut);
    }

    /** As {@link #forwardBackward(int[], int[], int, int, double, float[])} with position ids (see {@link #logits(int[], int[], int, int)}). */
    public double forwardBackward(int[] inputIds, int[] positionIds, int[] labels, int batch, int seq, double lossScale,
                                  float[] logitsOut) {
        checkLabels(labels, batch, seq);
        boolean anyAdapter = !trainableParameters().isEmpty();
        if (logitsOut == null) {
            float[] n = hidden(inputIds, positionIds, batch, seq, anyAdapter);
            ChunkedLoss l = chunkedLoss(n, labels, batch, seq, anyAdapter, lossScale);
            if (anyAdapter) backwardFromNorm(l.dn());
            return l.loss();
        }
        float[] z = forward(inputIds, positionIds, batch, seq, anyAdapter);
        if (logitsOut != null) System.arraycopy(z, 0, logitsOut, 0, z.length);
        long t0 = timer.start();
        double loss = CausalLmLoss.forward(device.executor(), z, labels, batch, seq, config.vocabSize(), anyAdapter ? z : null, lossScale);
        timer.stop(Op.LOSS, t0);
        if (anyAdapter) backward(z);
        return loss;
    }

    /** The loss without gradients. */
    public double loss(int[] inputIds, int[] labels, int batch, int seq) {
        return loss(inputIds, null, labels, batch, seq);
    }

    /** The loss without gradients, with position ids (see {@link #logits(int[], int[], int, int)}). */
    public double loss(int[] inputIds, int[] positionIds, int[] labels, int batch, int seq) {
        checkLabels(labels, batch, seq);
        return chunkedLoss(hidden(inputIds, positionIds, batch, seq, false), labels, batch, seq, false, 1.0).loss();
    }

    /**
     * Tokens per chunk of the fused lm_head + loss, 0 for {@link CausalLmLoss#chunkTokens}; package-private for
     * the test that makes chunks small.
     */
    int lossChunkTokens = 0;

    private record ChunkedLoss(double loss, float[] dn) {}

    /**
     * lm_head and the causal-LM loss fused and chunked over tokens (Liger's fused linear cross-entropy, torchtune's
     * chunked loss): per chunk of tokens ({@link CausalLmLoss#chunkTokens}: Liger's chunk rule), logits, their loss
     * terms and gradient, and (with {@code backward}) the gradient through lm_head into dn, so the [tokens × vocab]
     * logits never exist at once. Chunks hold at least 16 tokens, more than the JVM backend's few-token path
     * takes, so every row of logits and dn is computed as the unchunked GEMMs compute it, and the row terms are
     * summed in row order as {@link CausalLmLoss#forward} sums them: loss and the layers' gradients equal the
     * unchunked ones bit for bit; only an lm_head adapter's gradients, sums over tokens, are summed chunk by chunk.
     */
    private ChunkedLoss chunkedLoss(float[] n, int[] labels, int batch, int seq, boolean backward, double lossScale) {
        int t = batch * seq, h = config.hiddenSize(), vocab = config.vocabSize();
        int chunk = lossChunkTokens > 0 ? lossChunkTokens : CausalLmLoss.chunkTokens(t, vocab, h);
        long count = CausalLmLoss.counted(labels, batch, seq);
        double[] rowLoss = new double[t];
        boolean oneChunk = CausalLmLoss.chunkRows(t, 0, chunk) == t;
        // one chunk (vocab ≤ hidden, or a few tokens): lm_head's dx is dn itself, not copied
        float[] dn = backward && !oneChunk ? new float[t * h] : null;
        for (int r0 = 0; r0 < t; ) {
            int rows = CausalLmLoss.chunkRows(t, r0, chunk);
            float[] nc = oneChunk ? n : java.util.Arrays.copyOfRange(n, r0 * h, (r0 + rows) * h);
            long t0 = timer.start();
            float[] z = lmHead.forward(new Tensor(new int[] {rows, h}, nc)).data();
            timer.stop(Op.LM_HEAD, t0);
            t0 = timer.start();
            CausalLmLoss.rows(device.executor(), z, labels, seq, vocab, r0, rows, count, backward ? z : null,
                    lossScale, rowLoss);
            timer.stop(Op.LOSS, t0);
            if (backward) {
                t0 = timer.start();
                float[] dnc = lmHead.backward(new Tensor(new int[] {rows, vocab}, z)).data();
                if (oneChunk) {
                    dn = dnc;
                } else {
                    System.arraycopy(dnc, 0, dn, r0 * h, rows * h);
                }
                timer.stop(Op.LM_HEAD, t0);
            }
            lmHead.releaseActivations();
            r0 += rows;
        }
        return new ChunkedLoss(CausalLmLoss.mean(rowLoss, count), dn);
    }

    /** The number of counted (label != -100) tokens after the shift, for exact token-weighted averaging. */
    public static long countedTokens(int[] labels, int batch, int seq) {
        if (labels.length != (long) batch * seq) {
            throw new IllegalArgumentException("labels: expected " + batch + "×" + seq + " values but got " + labels.length);
        }
        return CausalLmLoss.counted(labels, batch, seq);
    }

    /** A KV cache for one sequence of up to {@code capacity} positions ({@link #logits(int[], KvCache)}). */
    public KvCache newCache(int capacity) {
        return new KvCache(config, capacity);
    }

    /**
     * Logits [n, V] of n new tokens of one sequence at positions {@code cache.length()…}, attending to the
     * cached positions too; appends their keys and values to the cache. The prefill is the prompt at once, then
     * one token at a time: the same layers as {@link #logits(int[], int, int)} (LoRA unmerged), no backward.
     */
    public Tensor logits(int[] ids, KvCache cache) {
        int n = ids.length;
        cache.reserve(n);
        float[] z = forward(ids, cachePositions(n, cache), 1, n, false, cache);
        cache.advance(n);
        return new Tensor(new int[] {1, n, config.vocabSize()}, z);
    }

    /**
     * As {@link #logits(int[], KvCache)}, but lm_head runs on the last new token only: its logits [V], the next
     * token's distribution (transformers' {@code logits_to_keep=1} in {@code generate}); the cache takes all n.
     */
    public float[] nextTokenLogits(int[] ids, KvCache cache) {
        int n = ids.length, h = config.hiddenSize();
        cache.reserve(n);
        float[] normed = hidden(ids, cachePositions(n, cache), 1, n, false, cache);
        cache.advance(n);
        float[] last = n == 1 ? normed : java.util.Arrays.copyOfRange(normed, (n - 1) * h, n * h);
        long t0 = timer.start();
        float[] z = lmHead.forward(new Tensor(new int[] {1, h}, last)).data();
        timer.stop(Op.LM_HEAD, t0);
        lmHead.releaseActivations();
        return z;
    }

    /** Positions cache.length() … cache.length() + n − 1 of n new tokens. */
    private static int[] cachePositions(int n, KvCache cache) {
        int[] positions = new int[n];
        for (int i = 0; i < n; i++) positions[i] = cache.length() + i;
        return positions;
    }

    private float[] forward(int[] ids, int[] positionIds, int batch, int seq, boolean keep) {
        return forward(ids, positionIds, batch, seq, keep, null);
    }

    private float[] forward(int[] ids, int[] positionIds, int batch, int seq, boolean keep, KvCache cache) {
        float[] n = hidden(ids, positionIds, batch, seq, keep, cache);
        long t0 = timer.start();
        float[] z = lmHead.forward(new Tensor(new int[] {batch * seq, config.hiddenSize()}, n)).data();
        timer.stop(Op.LM_HEAD, t0);
        if (!keep) lmHead.releaseActivations();
        return z;
    }

    /** The final norm's output [B·S, H]: the input of lm_head. */
    private float[] hidden(int[] ids, int[] positionIds, int batch, int seq, boolean keep) {
        return hidden(ids, positionIds, batch, seq, keep, null);
    }

    /** The same, attending also to (and extending) {@code cache} when one is given. */
    private float[] hidden(int[] ids, int[] positionIds, int batch, int seq, boolean keep, KvCache cache) {
        checkIds(ids, batch, seq);
        if (positionIds != null && positionIds.length != ids.length) {
            throw new IllegalArgumentException("position_ids: expected " + batch + "×" + seq + " values but got "
                    + positionIds.length);
        }
        int t = batch * seq, h = config.hiddenSize();
        long t0 = timer.start();
        float[] x = new float[t * h], row = new float[h];
        for (int i = 0; i < t; i++) {
            embedding.decodeRows(ids[i], 1, row);
            if (embedScale != 1f) {
                for (int j = 0; j < h; j++) row[j] *= embedScale;
            }
            System.arraycopy(row, 0, x, i * h, h);
        }
        timer.stop(Op.EMBEDDING, t0);
        t0 = timer.start();
        Rope.Tables tables = rope.tables(seq, positionIds);
        timer.stop(Op.ROPE, t0);
        boolean checkpoint = keep && activationCheckpointing;
        float[][] inputs = checkpoint ? new float[layers.size()][] : null;
        long[][] draws = checkpoint ? new long[layers.size()][] : null;
        for (int i = 0; i < layers.size(); i++) {
            DecoderLayer layer = layers.get(i);
            if (checkpoint) {
                inputs[i] = x;
                draws[i] = layer.dropoutDraws();
            }
            x = layer.forward(x, batch, seq, rope, tables, keep && !checkpoint, timer, cache, i);
        }
        float[] inv = new float[t], n = new float[t * h];
        t0 = timer.start();
        RmsNorm.forward(device.executor(), x, finalScale, t, h, (float) config.rmsNormEps(), n, inv);
        timer.stop(Op.RMSNORM, t0);
        saved = keep ? new Saved(batch, seq, x, inv, tables, inputs, draws) : null;
        return n;
    }

    private void backward(float[] dLogits) {
        int t = saved.batch * saved.seq;
        long t0 = timer.start();
        float[] dn = lmHead.backward(new Tensor(new int[] {t, config.vocabSize()}, dLogits)).data();
        timer.stop(Op.LM_HEAD, t0);
        lmHead.releaseActivations();
        backwardFromNorm(dn);
    }

    /** Backward from dL/d(final norm output) through the norm and the layers. */
    private void backwardFromNorm(float[] dn) {
        Saved s = saved;
        saved = null;
        if (!layersHaveAdapters()) return;
        int t = s.batch * s.seq, h = config.hiddenSize();
        float[] dx = new float[t * h];
        long t0 = timer.start();
        RmsNorm.backward(device.executor(), dn, s.x, finalScale, s.inv, t, h, dx, false);
        timer.stop(Op.RMSNORM, t0);
        for (int i = layers.size() - 1; i >= 0; i--) {
            DecoderLayer layer = layers.get(i);
            if (s.layerInputs != null) {
                // Recompute the layer, keeping its activations, with the dropout masks its first forward drew.
                layer.resumeDropout(s.layerDraws[i]);
                layer.forward(s.layerInputs[i], s.batch, s.seq, rope, s.tables, true, timer);
                s.layerInputs[i] = null;
            }
            dx = layer.backward(dx, rope, s.tables, i > 0, timer);
        }
    }

    private boolean layersHaveAdapters() {
        return adapted().keySet().stream().anyMatch(p -> !p.equals(LoraSettings.OUTPUT_MODULE));
    }

    private void checkIds(int[] ids, int batch, int seq) {
        if (batch <= 0 || seq <= 0) {
            throw new IllegalArgumentException("batch and seq must be positive, got " + batch + " and " + seq);
        }
        if (ids.length != (long) batch * seq) {
            throw new IllegalArgumentException("input_ids: expected " + batch + "×" + seq + " values but got " + ids.length);
        }
        if ((long) batch * seq * Math.max(config.vocabSize(), config.intermediateSize()) > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("input_ids: " + batch + "×" + seq + " tokens need activations larger"
                    + " than a Java array holds (vocab " + config.vocabSize() + ")");
        }
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] < 0 || ids[i] >= config.vocabSize()) {
                throw new IllegalArgumentException("input_ids[" + (i / seq) + ", " + (i % seq) + "] = " + ids[i]
                        + " is out of range [0, " + config.vocabSize() + ")");
            }
        }
    }

    private void checkLabels(int[] labels, int batch, int seq) {
        if (labels.length != (long) batch * seq) {
            throw new IllegalArgumentException("labels: expected " + batch + "×" + seq + " values but got " + labels.length);
        }
        for (int i = 0; i < labels.length; i++) {
            int l = labels[i];
            if (l != CrossEntropy.IGNORE_INDEX && (l < 0 || l >= config.vocabSize())) {
                throw new IllegalArgumentException("labels[" + (i / seq) + ", " + (i % seq) + "] = " + l
                        + " is neither -100 nor in [0, " + config.vocabSize() + ")");
            }
        }
    }

    // ---------------------------------------------------------------- adapters

    /**
     * The adapted projections by HF module path ({@code model.layers.0.self_attn.q_proj}, {@code lm_head}), in
     * model order (layer, module): the live layers, e.g. for their dropout state ({@code dropoutDraws},
     * {@code resumeDropout}) when a run resumes.
     */
    public Map<String, LoRALinear> adapterModules() {
        return Collections.unmodifiableMap(adapted());
    }

    private Map<String, LoRALinear> adapted() {
        Map<String, LoRALinear> m = new LinkedHashMap<>();
        for (int i = 0; i < layers.size(); i++) {
            for (Map.Entry<String, Module> e : layers.get(i).proj.entrySet()) {
                if (e.getValue() instanceof LoRALinear l) m.put(modulePath(i, e.getKey()), l);
            }
        }
        if (lmHead instanceof LoRALinear l) m.put(LoraSettings.OUTPUT_MODULE, l);
        return m;
    }

    /**
     * The frozen base weights of the seven projections of every layer (NF4 under {@code quantizeBase}) by HF
     * module path, in model order: e.g. for a digest that proves two replicas quantized the same bits.
     */
    public Map<String, BaseWeight> projectionBases() {
        Map<String, BaseWeight> m = new LinkedHashMap<>();
        for (int i = 0; i < layers.size(); i++) {
            for (Map.Entry<String, Module> e : layers.get(i).proj.entrySet()) {
                BaseWeight w = switch (e.getValue()) {
                    case LoRALinear l -> l.base();
                    case FrozenLinear f -> f.base();
                    default -> throw new IllegalStateException(e.getKey() + ": not a linear projection");
                };
                m.put(modulePath(i, e.getKey()), w);
            }
        }
        return Collections.unmodifiableMap(m);
    }

    /** HF module path: {@code model.layers.3.self_attn.q_proj}, {@code model.layers.3.mlp.up_proj}. */
    static String modulePath(int layer, String projection) {
        return "model.layers." + layer + "." + (LoraSettings.ATTN_MODULES.contains(projection) ? "self_attn." : "mlp.")
                + projection;
    }

    /**
     * The adapters as optimizer parameters, named by PEFT key, in order (layer, module; A, B, then DoRA's
     * magnitude); live arrays.
     */
    public List<Parameter> trainableParameters() {
        List<Parameter> out = new ArrayList<>();
        adapted().forEach((path, l) -> {
            for (Parameter p : l.parameters()) {
                out.add(new Parameter(PeftAdapters.key(path, p.name()), p.shape(), p.data(), p.grad()));
            }
        });
        return out;
    }

    public void zeroGrad() {
        adapted().values().forEach(LoRALinear::zeroGrad);
    }

    /** Training mode turns the adapters' dropout on. */
    public LlamaForCausalLM train(boolean mode) {
        training = mode;
        for (DecoderLayer l : layers) l.proj.values().forEach(p -> p.train(mode));
        lmHead.train(mode);
        return this;
    }

    public boolean isTraining() {
        return training;
    }

    /**
     * Activation checkpointing per decoder layer (torchtune's {@code enable_activation_checkpointing},
     * transformers' {@code gradient_checkpointing_enable()}): a training forward keeps only each layer's input,
     * and backward runs each layer's forward again, with the same dropout masks, before its backward. Losses and
     * gradients are those without it, bit for bit; the activations of one layer live at a time instead of all.
     */
    public LlamaForCausalLM activationCheckpointing(boolean on) {
        activationCheckpointing = on;
        return this;
    }

    public boolean activationCheckpointing() {
        return activationCheckpointing;
    }

    /** The adapters under PEFT keys (copies). */
    public Map<String, Tensor> adapterStateDict() {
        return PeftAdapters.stateDict(adapted());
    }

    /** The adapters' gradients under PEFT keys (live arrays). */
    public Map<String, Tensor> adapterGradients() {
        Map<String, Tensor> out = new LinkedHashMap<>();
        adapted().forEach((path, l) -> l.adapterGradients().forEach((p, g) -> out.put(PeftAdapters.key(path, p), g)));
        return out;
    }

    /** The adapters under torchtune's Llama keys ({@code layers.0.attn.q_proj.lora_a.weight}, copies). */
    public Map<String, Tensor> adapterStateDictTorchtune() {
        Map<String, Tensor> out = new LinkedHashMap<>();
        adapted().forEach((path, l) -> l.adapterStateDict().forEach((p, t) -> out.put(AdapterKeys.torchtuneKey(path, p), t)));
        return out;
    }

    /**
     * Writes the adapters as a PEFT folder ({@code adapter_model.safetensors} + {@code adapter_config.json}, as
     * PEFT 0.21 writes them; see {@link PeftAdapters}), each file atomically.
     */
    public void savePeft(Path dir, String baseModelNameOrPath) throws java.io.IOException {
        Map<String, LoRALinear> a = adapted();
        if (a.isEmpty()) throw new IllegalArgumentException("the model has no adapters to write");
        PeftAdapters.write(dir, lora.peftConfig(baseModelNameOrPath, new ArrayList<>(a.keySet())), a, Map.of());
    }

    /** Dropout draws each adapted layer has made, by HF module path (the dropout state a resumed run restores). */
    public Map<String, Long> dropoutDraws() {
        Map<String, Long> d = new LinkedHashMap<>();
        adapted().forEach((path, l) -> d.put(path, l.dropoutDraws()));
        return d;
    }

    /** Puts every adapted layer's dropout generator where {@link #dropoutDraws()} said it stood; all paths required. */
    public void resumeDropout(Map<String, Long> draws) {
        Map<String, LoRALinear> a = adapted();
        if (!draws.keySet().equals(a.keySet())) {
            throw new IllegalArgumentException("dropout state names modules " + draws.keySet()
                    + " but the model's adapted modules are " + a.keySet());
        }
        a.forEach((path, l) -> l.resumeDropout(draws.get(path)));
    }

    /**
     * Loads adapters under PEFT keys ({@code base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight},
     * {@code ...lora_magnitude_vector}) or torchtune keys ({@code layers.0.attn.q_proj.lora_a.weight}); every
     * adapter key must be present, nothing else may be, and shapes must equal the model's.
     */
    public void loadAdapters(Map<String, Tensor> keys) {
        Map<String, Tensor> peft = AdapterKeys.toPeft(keys);
        peft.forEach((k, t) -> HfWeights.requireFinite("adapter tensor '" + k + "'", t.data()));
        PeftAdapters.load(peft, adapted(), "adapter does not fit the model ("
                + layers.size() + " layers, target_modules " + lora.targets() + ")");
    }

    /**
     * HF weights with the adapters merged, W + scale·B·A, NF4 dequantized, fp32 (lm_head omitted when tied and not
     * adapted); the family's biases and q/k norms as they were read (frozen: LoRA does not change them).
     */
    public Map<String, Tensor> mergedWeights() {
        Map<String, Tensor> w = new LinkedHashMap<>();
        int h = config.hiddenSize();
        w.put("model.embed_tokens.weight", new Tensor(new int[] {config.vocabSize(), h}, embedding.dequantize()));
        for (int i = 0; i < layers.size(); i++) {
            DecoderLayer l = layers.get(i);
            String p = "model.layers." + i + ".";
            w.put(p + "input_layernorm.weight", new Tensor(new int[] {h}, l.inputNorm.clone()));
            for (Map.Entry<String, Module> e : l.proj.entrySet()) {
                if (e.getKey().equals("gate_proj")) {
                    w.put(p + "post_attention_layernorm.weight", new Tensor(new int[] {h}, l.postNorm.clone()));
                }
                w.put(modulePath(i, e.getKey()) + ".weight", merged(e.getValue()));
                float[] bias = biasOf(e.getValue());
                if (bias != null) w.put(modulePath(i, e.getKey()) + ".bias", new Tensor(new int[] {bias.length}, bias.clone()));
                if (e.getKey().equals("o_proj") && l.qNorm != null) {
                    int hd = config.headDim();
                    w.put(p + "self_attn.q_norm.weight", new Tensor(new int[] {hd}, l.qNorm.clone()));
                    w.put(p + "self_attn.k_norm.weight", new Tensor(new int[] {hd}, l.kNorm.clone()));
                }
            }
        }
        w.put("model.norm.weight", new Tensor(new int[] {h}, finalNorm.clone()));
        if (!headTied || lora.output()) {
            w.put("lm_head.weight", merged(lmHead));
        }
        return w;
    }

    private Tensor merged(Module m) {
        BaseWeight base = baseOf(m);
        float[] wt = m instanceof LoRALinear l ? l.mergedWeight() : base.dequantize();
        return new Tensor(new int[] {base.rows(), base.cols()}, wt);
    }

    /**
     * The frozen tensors under their HF names, live (not copies), for a device plan that uploads them once: the
     * norms as {@link DenseWeight}s (a norm is 1 × hidden), the embedding, lm_head and the seven projections of each
     * layer as stored ({@link DenseWeight}, {@link dev.tornadolora.tensor.HalfWeight} for a BF16/F16 checkpoint, or
     * {@link Nf4Tensor} with {@code quantizeBase}). lm_head is present also when tied (the embedding's object).
     */
    public Map<String, BaseWeight> frozenWeights() {
        if (!config.parts().equals(ModelFamily.Parts.LLAMA)) {
            // the map has no place for Qwen2's biases or Qwen3's q/k norms: a plan built from it would drop them
            throw new IllegalStateException("frozenWeights covers Llama's parts only; this model is "
                    + config.parts().family().architecture() + " " + config.parts());
        }
        Map<String, BaseWeight> w = new LinkedHashMap<>();
        int h = config.hiddenSize();
        w.put("model.embed_tokens.weight", embedding);
        for (int i = 0; i < layers.size(); i++) {
            DecoderLayer l = layers.get(i);
            String p = "model.layers." + i + ".";
            w.put(p + "input_layernorm.weight", new DenseWeight(1, h, l.inputNorm));
            w.put(p + "post_attention_layernorm.weight", new DenseWeight(1, h, l.postNorm));
            for (Map.Entry<String, Module> e : l.proj.entrySet()) {
                w.put(modulePath(i, e.getKey()) + ".weight", baseOf(e.getValue()));
            }
        }
        w.put("model.norm.weight", new DenseWeight(1, h, finalNorm));
        w.put("lm_head.weight", baseOf(lmHead));
        return w;
    }

    /** Closes every projection's binding on the backend (device buffers and plans of a TornadoVM device). */
    @Override
    public void close() {
        for (DecoderLayer l : layers) l.proj.values().forEach(LlamaForCausalLM::close);
        close(lmHead);
    }
}
