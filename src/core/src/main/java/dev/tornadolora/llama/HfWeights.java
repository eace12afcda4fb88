package dev.tornadolora.llama;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tornadolora.io.DType;
import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.io.SafeTensorsException;
import dev.tornadolora.tensor.BaseWeight;
import dev.tornadolora.tensor.DenseWeight;
import dev.tornadolora.tensor.HalfWeight;
import dev.tornadolora.tensor.Shapes;
import dev.tornadolora.tensor.Tensor;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
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
 * projection lives only until it is quantized).
 * {@link #validate} checks every expected name, shape and dtype before anything is read.
 */
abstract class HfWeights implements AutoCloseable {
    static final String SINGLE = "model.safetensors";
    static final String INDEX = "model.safetensors.index.json";
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

    abstract String source();

    @Override
    public void close() {}

    /** Expected HF tensors of {@code c} with their shapes, in model order. */
    static Map<String, int[]> expected(LlamaConfig c) {
        Map<String, int[]> e = new LinkedHashMap<>();
        int h = c.hiddenSize();
        e.put("model.embed_tokens.weight", new int[] {c.vocabSize(), h});
        for (int i = 0; i < c.numHiddenLayers(); i++) {
            String p = "model.layers." + i + ".";
            e.put(p + "input_layernorm.weight", new int[] {h});
            e.put(p + "self_attn.q_proj.weight", new int[] {c.qDim(), h});
            e.put(p + "self_attn.k_proj.weight", new int[] {c.kvDim(), h});
            e.put(p + "self_attn.v_proj.weight", new int[] {c.kvDim(), h});
            e.put(p + "self_attn.o_proj.weight", new int[] {h, c.qDim()});
            e.put(p + "post_attention_layernorm.weight", new int[] {h});
            e.put(p + "mlp.gate_proj.weight", new int[] {c.intermediateSize(), h});
            e.put(p + "mlp.up_proj.weight", new int[] {c.intermediateSize(), h});
            e.put(p + "mlp.down_proj.weight", new int[] {h, c.intermediateSize()});
        }
        e.put("model.norm.weight", new int[] {h});
        if (!c.tieWordEmbeddings()) e.put("lm_head.weight", new int[] {c.vocabSize(), h});
        return e;
    }

    /** Every expected tensor present, floating point, of its shape; nothing unexpected (a bias, another model). */
    void validate(LlamaConfig c) {
        Map<String, int[]> expected = expected(c);
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
            boolean tiedHead = n.equals("lm_head.weight") && c.tieWordEmbeddings();
            if (!expected.containsKey(n) && !n.endsWith(INV_FREQ_SUFFIX) && !tiedHead) {
                throw new IllegalArgumentException(source() + ": unexpected tensor '" + n
                        + "' (not a weight of this Llama configuration: "
                        + (n.endsWith(".bias") ? "biases are not supported" : "check num_hidden_layers and the names")
                        + ")");
            }
        }
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
        JsonNode root;
        try {
            if (Files.size(index) > 100_000_000L) {
                throw new IllegalArgumentException(index + ": too large for a safetensors index");
            }
            root = new ObjectMapper().readTree(Files.readString(index));
        } catch (NoSuchFileException e) {
            throw new IllegalArgumentException(index + ": no such file");
        } catch (IOException e) {
            throw new IllegalArgumentException(index + ": not valid JSON: " + e.getMessage());
        }
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
