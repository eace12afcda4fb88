package dev.tornadolora.llama;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tornadolora.io.DType;
import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.io.SafeTensorsException;
import dev.tornadolora.io.StrictJson;
import dev.tornadolora.tensor.BaseWeight;
import dev.tornadolora.tensor.DenseWeight;
import dev.tornadolora.tensor.HalfWeight;
import dev.tornadolora.tensor.Shapes;
import dev.tornadolora.tensor.Tensor;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * The weights of a Hugging Face Llama checkpoint under their HF names ({@code model.layers.0.self_attn.q_proj.weight}
 * …), read one tensor at a time: from memory-mapped safetensors files (one {@code model.safetensors} or the shards
 * of {@code model.safetensors.index.json}) or from a map. {@link #weight} keeps F16 and BF16 matrices as stored
 * ({@link HalfWeight}); {@link #read} widens to fp32, one tensor at a time (so with NF4 the fp32 copy of a
 * projection lives only until it is quantized). Tensors are read with positional reads, not through the mapping.
 * {@link #validate} checks every expected name, shape and dtype before anything is read.
 */
abstract class HfWeights implements AutoCloseable {
    static final String SINGLE = "model.safetensors";
    static final String INDEX = "model.safetensors.index.json";
    static final String EMBED = "model.embed_tokens.weight";
    static final String HEAD = "lm_head.weight";
    /** Buffers some exporters wrote; never read. */
    private static final String INV_FREQ_SUFFIX = ".rotary_emb.inv_freq";

    abstract Set<String> names();

    /** The shape of {@code name}, or null when absent. */
    abstract int[] shape(String name);

    /** Whether {@code name} is held as a floating-point dtype this loader computes with. */
    abstract boolean isFloat(String name);

    /** The tensor widened to fp32 (a fresh array, or the map's own). */
    abstract float[] read(String name);

    /** A 2-D tensor as a frozen weight in its stored precision: BF16/F16 kept 16-bit, F32 dense. */
    BaseWeight weight(String name) {
        int[] s = shape(name);
        return new DenseWeight(s[0], s[1], read(name));
    }

    private final java.util.zip.CRC32C digest = new java.util.zip.CRC32C();
    private final java.nio.ByteBuffer digestChunk = java.nio.ByteBuffer.allocate(1 << 16);
    private long digestValues;

    /**
     * {@link #read}, adding the name and the values read to the weights' digest: the model's part of a run's
     * identity, so that a weight changed in place since the run began is noticed (not only another path).
     */
    final float[] take(String name) {
        float[] v = read(name);
        digestName(name);
        digestValues(name, v, v.length, 0);
        return v;
    }

    /**
     * {@link #weight}, digested and checked as {@link #take} does (the widened values, so the digest is the same
     * whether a weight is kept 16-bit or not), a block of rows at a time: no fp32 copy of a 16-bit weight.
     */
    final BaseWeight takeWeight(String name) {
        BaseWeight w = weight(name);
        digestName(name);
        if (w instanceof DenseWeight d) {
            digestValues(name, d.data(), d.data().length, 0);
        } else {
            int cols = w.cols(), rowsPerBlock = Math.max(1, (1 << 16) / cols);
            float[] block = new float[rowsPerBlock * cols];
            for (int r0 = 0; r0 < w.rows(); r0 += rowsPerBlock) {
                int n = Math.min(rowsPerBlock, w.rows() - r0);
                w.decodeRows(r0, n, block);
                digestValues(name, block, n * cols, (long) r0 * cols);
            }
        }
        return w;
    }

    private void digestName(String name) {
        digest.update(name.getBytes(java.nio.charset.StandardCharsets.UTF_8));
    }

    /** Checks v[0 .. n) (elements offset .. of the tensor) finite and adds them to the digest. */
    private void digestValues(String name, float[] v, int n, long offset) {
        for (int i = 0; i < n; i++) {
            if (!Float.isFinite(v[i])) {
                throw new IllegalArgumentException(source() + ": tensor '" + name + "' holds " + v[i] + " at index "
                        + (offset + i) + " (a damaged or overflowed checkpoint)");
            }
        }
        java.nio.FloatBuffer f = digestChunk.clear().asFloatBuffer();
        for (int i = 0; i < n; i += f.capacity()) {
            int c = Math.min(f.capacity(), n - i);
            f.clear();
            f.put(v, i, c);
            digest.update(digestChunk.array(), 0, 4 * c);
        }
        digestValues += n;
    }

    /**
     * Refuses NaN and ±Inf by position: a weight like that makes every loss NaN, which would otherwise be reported
     * as a training problem ("try a lower learning rate") rather than as the file's.
     */
    static void requireFinite(String what, float[] v) {
        for (int i = 0; i < v.length; i++) {
            if (!Float.isFinite(v[i])) {
                throw new IllegalArgumentException(what + " holds " + v[i] + " at index " + i
                        + " (a damaged or overflowed checkpoint)");
            }
        }
    }

    /** {@return the digest of every tensor {@link #take}n, in the order taken: "crc32c:HEX/VALUES"} */
    final String digest() {
        return String.format("crc32c:%08x/%d", digest.getValue(), digestValues);
    }

    abstract String source();

    @Override
    public void close() {}

    /** Expected HF tensors of {@code c} with their shapes, in model order. */
    static Map<String, int[]> expected(LlamaConfig c) {
        Map<String, int[]> e = new LinkedHashMap<>();
        int h = c.hiddenSize();
        e.put(EMBED, new int[] {c.vocabSize(), h});
        for (int i = 0; i < c.numHiddenLayers(); i++) {
            String p = "model.layers." + i + ".";
            e.put(p + "input_layernorm.weight", new int[] {h});
            e.put(p + "self_attn.q_proj.weight", new int[] {c.qDim(), h});
            e.put(p + "self_attn.k_proj.weight", new int[] {c.kvDim(), h});
            e.put(p + "self_attn.v_proj.weight", new int[] {c.kvDim(), h});
            if (c.parts().qkvBias()) {
                e.put(p + "self_attn.q_proj.bias", new int[] {c.qDim()});
                e.put(p + "self_attn.k_proj.bias", new int[] {c.kvDim()});
                e.put(p + "self_attn.v_proj.bias", new int[] {c.kvDim()});
            }
            e.put(p + "self_attn.o_proj.weight", new int[] {h, c.qDim()});
            if (c.parts().qkNorm()) {
                e.put(p + "self_attn.q_norm.weight", new int[] {c.headDim()});
                e.put(p + "self_attn.k_norm.weight", new int[] {c.headDim()});
            }
            e.put(p + "post_attention_layernorm.weight", new int[] {h});
            e.put(p + "mlp.gate_proj.weight", new int[] {c.intermediateSize(), h});
            e.put(p + "mlp.up_proj.weight", new int[] {c.intermediateSize(), h});
            e.put(p + "mlp.down_proj.weight", new int[] {h, c.intermediateSize()});
        }
        e.put("model.norm.weight", new int[] {h});
        if (!c.tieWordEmbeddings()) e.put(HEAD, new int[] {c.vocabSize(), h});
        return e;
    }

    /**
     * Every expected tensor present, floating point, of its shape; nothing unexpected (a bias, another model).
     * With {@code tie_word_embeddings} either of the tied pair may be in the file (transformers ties whichever is
     * there to the other, and keeps both when both are there and differ, see {@link #tiedPair}), not neither.
     */
    void validate(LlamaConfig c) {
        Map<String, int[]> expected = expected(c);
        if (c.tieWordEmbeddings() && shape(HEAD) != null) {
            int[] s = expected.get(EMBED);
            if (shape(EMBED) == null) expected.remove(EMBED);
            expected.put(HEAD, s);
        }
        for (Map.Entry<String, int[]> e : expected.entrySet()) {
            int[] s = shape(e.getKey());
            if (s == null) {
                throw new IllegalArgumentException(source() + ": missing tensor '" + e.getKey() + "'");
            }
            if (!java.util.Arrays.equals(s, e.getValue())) {
                throw new IllegalArgumentException(source() + ": tensor '" + e.getKey() + "' has shape "
                        + Shapes.format(s) + " but config.json implies " + Shapes.format(e.getValue()));
            }
            if (!isFloat(e.getKey())) {
                throw new IllegalArgumentException(source() + ": tensor '" + e.getKey()
                        + "' is not F32, F16 or BF16");
            }
        }
        for (String n : names()) {
            if (!expected.containsKey(n) && !n.endsWith(INV_FREQ_SUFFIX)) {
                throw new IllegalArgumentException(source() + ": unexpected tensor '" + n
                        + "' (not a weight of this " + c.parts().family().architecture() + " configuration: "
                        + (n.endsWith(".bias") ? "biases are not supported (but the family's own)"
                                : "check num_hidden_layers and the names")
                        + ")");
            }
        }
    }

    /** The embedding and the lm_head weight (as stored), the same object when the model ties them. */
    record TiedPair(BaseWeight embedding, BaseWeight head) {
        boolean tied() {
            return embedding == head;
        }
    }

    /**
     * The embedding and lm_head as transformers 5.18's {@code from_pretrained} resolves them
     * ({@code PreTrainedModel.tie_weights} with the checkpoint's missing keys): untied configs read both; a tied
     * config with only one of the pair in the file ties it to the other; with both in the file they are tied only
     * when their values are equal ({@code torch.equal}), otherwise each keeps the file's values (transformers warns
     * and does not tie). Call after {@link #validate}.
     */
    TiedPair tiedPair(LlamaConfig c) {
        if (!c.tieWordEmbeddings()) return new TiedPair(takeWeight(EMBED), takeWeight(HEAD));
        if (shape(EMBED) == null) {
            BaseWeight head = takeWeight(HEAD);
            return new TiedPair(head, head);
        }
        BaseWeight emb = takeWeight(EMBED);
        if (shape(HEAD) == null) return new TiedPair(emb, emb);
        BaseWeight head = takeWeight(HEAD);
        return new TiedPair(emb, sameValues(emb, head) ? emb : head);
    }

    /**
     * torch.equal on the values: equal shapes and every element {@code ==} (NaN never equal, -0 equal to 0),
     * compared a block of rows at a time (a 16-bit weight is not widened whole).
     */
    private static boolean sameValues(BaseWeight a, BaseWeight b) {
        if (a.rows() != b.rows() || a.cols() != b.cols()) return false;
        int cols = a.cols(), rowsPerBlock = Math.max(1, (1 << 16) / cols);
        float[] x = new float[rowsPerBlock * cols], y = new float[rowsPerBlock * cols];
        for (int r0 = 0; r0 < a.rows(); r0 += rowsPerBlock) {
            int n = Math.min(rowsPerBlock, a.rows() - r0);
            a.decodeRows(r0, n, x);
            b.decodeRows(r0, n, y);
            for (int i = 0; i < n * cols; i++) {
                if (x[i] != y[i]) return false;
            }
        }
        return true;
    }

    // ---------------------------------------------------------------- from a map

    static HfWeights of(Map<String, Tensor> weights) {
        return new HfWeights() {
            @Override Set<String> names() { return weights.keySet(); }
            @Override int[] shape(String name) {
                Tensor t = weights.get(name);
                return t == null ? null : t.shape();
            }
            @Override boolean isFloat(String name) { return true; }
            @Override float[] read(String name) { return weights.get(name).data(); }
            @Override String source() { return "weights"; }
        };
    }

    // ---------------------------------------------------------------- from safetensors files

    /** The checkpoint files of an HF folder: the index's shards, or model.safetensors. */
    static HfWeights open(Path dir) {
        Path index = dir.resolve(INDEX), single = dir.resolve(SINGLE);
        if (Files.isRegularFile(index)) {
            return sharded(dir, index);
        }
        if (Files.isRegularFile(single)) {
            SafeTensors st = SafeTensors.open(single);
            Map<String, SafeTensors> where = new LinkedHashMap<>();
            for (String n : st.names()) where.put(n, st);
            return files(where, single.toString());
        }
        throw new IllegalArgumentException(dir + ": no " + SINGLE + " or " + INDEX);
    }

    private static HfWeights sharded(Path dir, Path index) {
        JsonNode root = StrictJson.read(index);
        JsonNode map = root == null ? null : root.get("weight_map");
        if (map == null || !map.isObject()) {
            throw new IllegalArgumentException(index + ": no weight_map object");
        }
        Map<String, SafeTensors> shards = new LinkedHashMap<>();
        Map<String, SafeTensors> where = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = map.properties().iterator(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (!e.getValue().isTextual()) {
                throw new IllegalArgumentException(index + ": weight_map value of '" + e.getKey() + "' is not a file name");
            }
            String file = e.getValue().asText();
            if (file.isEmpty() || file.contains("/") || file.contains("\\") || file.equals("..") || file.equals(".")) {
                throw new IllegalArgumentException(index + ": shard name '" + file + "' is not a file in the folder");
            }
            SafeTensors st = shards.computeIfAbsent(file, f -> SafeTensors.open(dir.resolve(f)));
            if (!st.contains(e.getKey())) {
                throw new IllegalArgumentException(index + ": '" + e.getKey() + "' is mapped to " + file
                        + ", which does not hold it");
            }
            where.put(e.getKey(), st);
        }
        for (Map.Entry<String, SafeTensors> s : shards.entrySet()) {
            for (String n : s.getValue().names()) {
                if (where.get(n) != s.getValue()) {
                    throw new IllegalArgumentException(index + ": shard " + s.getKey() + " holds '" + n
                            + "', which the weight_map does not map to it");
                }
            }
        }
        return files(where, index.toString());
    }

    private static HfWeights files(Map<String, SafeTensors> where, String source) {
        return new HfWeights() {
            @Override Set<String> names() { return where.keySet(); }
            @Override int[] shape(String name) {
                SafeTensors st = where.get(name);
                return st == null ? null : st.entry(name).shape();
            }
            @Override boolean isFloat(String name) {
                DType d = where.get(name).entry(name).dtype();
                return d == DType.F32 || d == DType.F16 || d == DType.BF16;
            }
            @Override float[] read(String name) {
                try {
                    return where.get(name).floats(name).data();
                } catch (SafeTensorsException e) {
                    throw new IllegalArgumentException(e.getMessage(), e);
                }
            }
            @Override BaseWeight weight(String name) {
                SafeTensors st = where.get(name);
                SafeTensors.Entry e = st.entry(name);
                HalfWeight.Format f = e.dtype() == DType.BF16 ? HalfWeight.Format.BF16
                        : e.dtype() == DType.F16 ? HalfWeight.Format.F16 : null;
                if (f == null) return super.weight(name);
                short[] bits = new short[e.numel()];
                try {
                    st.read(name).asShortBuffer().get(bits);
                } catch (SafeTensorsException x) {
                    throw new IllegalArgumentException(x.getMessage(), x);
                }
                return new HalfWeight(e.shape()[0], e.shape()[1], bits, f);
            }
            @Override String source() { return source; }
        };
    }
}
