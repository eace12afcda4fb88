package dev.tornadolora.llama;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tornadolora.io.StrictJson;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;

/**
 * The fields of Hugging Face's {@code LlamaConfig} (and of the other families' configs, {@link ModelFamily}) that
 * the computation depends on, read from a {@code config.json} and validated against each other before anything is
 * allocated. {@code parts} are the family's choices of decoder parts (q/k/v biases, q/k norm, (1 + w) norms,
 * the MLP's activation, the embedding scale, sliding windows).
 *
 * <p>Read as transformers 5 does: {@code head_dim} defaults to {@code hidden_size / num_attention_heads},
 * {@code num_key_value_heads} to {@code num_attention_heads}; the rotary parameters come from
 * {@code rope_parameters} (transformers 5) or from the legacy {@code rope_theta} + {@code rope_scaling}.
 * The family's config class supplies the defaults of absent fields ({@link ModelFamily#withDefaults}).
 * Refused by name: a {@code model_type} or architecture of no registered family, a {@code hidden_act} the family
 * does not compute, what the family refuses ({@link ModelFamily}: e.g. Llama's {@code attention_bias}/{@code mlp_bias} true), a rope type other than default/llama3,
 * {@code partial_rotary_factor} other than 1, and any size whose tensors a Java array cannot hold.
 */
public record LlamaConfig(int vocabSize, int hiddenSize, int intermediateSize, int numHiddenLayers,
                          int numAttentionHeads, int numKeyValueHeads, int headDim, double rmsNormEps,
                          double ropeTheta, RopeScaling ropeScaling, boolean tieWordEmbeddings,
                          int maxPositionEmbeddings, int bosTokenId, int eosTokenId, String torchDtype,
                          ModelFamily.Parts parts) {

    /** A Llama configuration ({@link ModelFamily.Parts#LLAMA}). */
    public LlamaConfig(int vocabSize, int hiddenSize, int intermediateSize, int numHiddenLayers,
                       int numAttentionHeads, int numKeyValueHeads, int headDim, double rmsNormEps,
                       double ropeTheta, RopeScaling ropeScaling, boolean tieWordEmbeddings,
                       int maxPositionEmbeddings, int bosTokenId, int eosTokenId, String torchDtype) {
        this(vocabSize, hiddenSize, intermediateSize, numHiddenLayers, numAttentionHeads, numKeyValueHeads, headDim,
                rmsNormEps, ropeTheta, ropeScaling, tieWordEmbeddings, maxPositionEmbeddings, bosTokenId, eosTokenId,
                torchDtype, ModelFamily.Parts.LLAMA);
    }

    /** Largest array a JVM allocates safely. */
    static final long MAX_ARRAY = Integer.MAX_VALUE - 8;
    private static final ObjectMapper JSON = new ObjectMapper(JsonFactory.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION).build())
            .enable(SerializationFeature.INDENT_OUTPUT)
            .enable(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS);
    private static final Set<String> DTYPES = Set.of("float32", "float16", "bfloat16", "float64");

    public LlamaConfig {
        java.util.Objects.requireNonNull(parts, "parts");
        positive("vocab_size", vocabSize);
        positive("hidden_size", hiddenSize);
        positive("intermediate_size", intermediateSize);
        positive("num_hidden_layers", numHiddenLayers);
        positive("num_attention_heads", numAttentionHeads);
        positive("num_key_value_heads", numKeyValueHeads);
        positive("head_dim", headDim);
        positive("max_position_embeddings", maxPositionEmbeddings);
        if (numAttentionHeads % numKeyValueHeads != 0) {
            throw new IllegalArgumentException("num_attention_heads (" + numAttentionHeads
                    + ") is not a multiple of num_key_value_heads (" + numKeyValueHeads + ")");
        }
        if (headDim % 2 != 0) {
            throw new IllegalArgumentException("head_dim must be even (rotary embedding rotates its two halves), got "
                    + headDim);
        }
        if (!(rmsNormEps > 0) || !Double.isFinite(rmsNormEps)) {
            throw new IllegalArgumentException("rms_norm_eps must be a positive finite number, got " + rmsNormEps);
        }
        if (!(ropeTheta > 1) || !Double.isFinite(ropeTheta)) {
            throw new IllegalArgumentException("rope_theta must be a finite number above 1, got " + ropeTheta);
        }
        fitsArray("embed_tokens.weight [vocab_size, hidden_size]", vocabSize, hiddenSize);
        fitsArray("q_proj.weight [num_attention_heads·head_dim, hidden_size]", (long) numAttentionHeads * headDim, hiddenSize);
        fitsArray("k_proj.weight [num_key_value_heads·head_dim, hidden_size]", (long) numKeyValueHeads * headDim, hiddenSize);
        fitsArray("gate_proj.weight [intermediate_size, hidden_size]", intermediateSize, hiddenSize);
        if (!parts.windows().isEmpty() && parts.windows().size() != numHiddenLayers) {
            throw new IllegalArgumentException("sliding windows given for " + parts.windows().size()
                    + " layers but num_hidden_layers is " + numHiddenLayers);
        }
        if (torchDtype != null && !DTYPES.contains(torchDtype)) {
            throw new IllegalArgumentException("torch_dtype '" + torchDtype + "' is not one of " + DTYPES);
        }
    }

    private static void positive(String name, int v) {
        if (v <= 0) throw new IllegalArgumentException(name + " must be a positive integer, got " + v);
    }

    private static void fitsArray(String what, long rows, long cols) {
        if (rows * cols > MAX_ARRAY) {
            throw new IllegalArgumentException(what + " = " + rows + " × " + cols + " elements: more than a Java array"
                    + " holds (" + MAX_ARRAY + ")");
        }
    }

    /** Dimension of the query projection's output, heads × head_dim. */
    public int qDim() {
        return numAttentionHeads * headDim;
    }

    /** Dimension of the key and value projections' outputs. */
    public int kvDim() {
        return numKeyValueHeads * headDim;
    }

    /** Parameters of the model (embedding, layers, final norm, lm_head unless tied). */
    public long parameterCount() {
        long h = hiddenSize;
        long perLayer = 2 * h + h * qDim() + 2L * h * kvDim() + (long) qDim() * h + 3L * h * intermediateSize
                + (parts.qkvBias() ? qDim() + 2L * kvDim() : 0) + (parts.qkNorm() ? 2L * headDim : 0);
        return (long) vocabSize * h * (tieWordEmbeddings ? 1 : 2) + numHiddenLayers * perLayer + h;
    }

    // ---------------------------------------------------------------- config.json

    /** Reads and validates a Hugging Face {@code config.json}; an {@link IllegalArgumentException} names the problem. */
    public static LlamaConfig read(Path configJson) {
        JsonNode c = StrictJson.read(configJson);
        try {
            return parse(c);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(configJson + ": " + e.getMessage(), e);
        }
    }

    /** Validates a parsed {@code config.json}. */
    public static LlamaConfig parse(JsonNode c) {
        if (c == null || !c.isObject()) throw new IllegalArgumentException("not a JSON object");
        ModelFamily family = ModelFamily.of(c);
        c = family.withDefaults(c);
        int layers = integer(c, "num_hidden_layers", 32);
        ModelFamily.Parts parts = family.parts(c, Math.max(layers, 0));
        int vocab = integer(c, "vocab_size", 32000);
        int hidden = integer(c, "hidden_size", 4096);
        int inter = integer(c, "intermediate_size", 11008);
        int heads = integer(c, "num_attention_heads", 32);
        int kv = c.hasNonNull("num_key_value_heads") ? integer(c, "num_key_value_heads", heads) : heads;
        int headDim;
        if (c.hasNonNull("head_dim")) {
            headDim = integer(c, "head_dim", 0);
        } else {
            headDim = ModelFamily.defaultHeadDim(hidden, heads);
        }
        double eps = number(c, "rms_norm_eps", 1e-6);
        double theta = number(c, "rope_theta", 10000.0);
        JsonNode rope = c.hasNonNull("rope_parameters") ? c.get("rope_parameters") : c.get("rope_scaling");
        RopeScaling scaling = null;
        if (rope != null && !rope.isNull()) {
            if (!rope.isObject()) throw new IllegalArgumentException("rope_parameters is not a JSON object");
            String type = text(rope, "rope_type", text(rope, "type", "default"));
            if (rope.hasNonNull("rope_theta")) theta = number(rope, "rope_theta", theta);
            if (rope.hasNonNull("partial_rotary_factor") && number(rope, "partial_rotary_factor", 1) != 1.0) {
                throw new IllegalArgumentException("partial_rotary_factor " + rope.get("partial_rotary_factor")
                        + " is not supported (only 1.0)");
            }
            switch (type) {
                case "default" -> { }
                case "llama3" -> scaling = new RopeScaling(number(rope, "factor", Double.NaN),
                        number(rope, "low_freq_factor", Double.NaN), number(rope, "high_freq_factor", Double.NaN),
                        rope.hasNonNull("original_max_position_embeddings")
                                ? integer(rope, "original_max_position_embeddings", 0)
                                : integer(c, "max_position_embeddings", 2048));
                default -> throw new IllegalArgumentException("rope type \"" + type
                        + "\" is not supported (supported: default, llama3)");
            }
        }
        if (c.hasNonNull("partial_rotary_factor") && number(c, "partial_rotary_factor", 1) != 1.0) {
            throw new IllegalArgumentException("partial_rotary_factor " + c.get("partial_rotary_factor")
                    + " is not supported (only 1.0)");
        }
        boolean tied = bool(c, "tie_word_embeddings", false);
        int maxPos = integer(c, "max_position_embeddings", 2048);
        int bos = tokenId(c, "bos_token_id", 1);
        int eos = tokenId(c, "eos_token_id", 2);
        String dtype = text(c, "dtype", text(c, "torch_dtype", null));
        return new LlamaConfig(vocab, hidden, inter, layers, heads, kv, headDim, eps, theta, scaling, tied, maxPos,
                bos, eos, dtype, parts);
    }

    /** This configuration as transformers 5 writes {@code config.json} for the family's causal LM. */
    public String toJson() {
        ModelFamily family = parts.family();
        ObjectNode c = JSON.createObjectNode();
        c.putArray("architectures").add(family.architecture());
        c.put("attention_dropout", 0.0);
        if (bosTokenId >= 0) c.put("bos_token_id", bosTokenId); else c.putNull("bos_token_id");
        c.put("dtype", torchDtype == null ? "float32" : torchDtype);
        if (eosTokenId >= 0) c.put("eos_token_id", eosTokenId); else c.putNull("eos_token_id");
        c.put("head_dim", headDim);
        c.put("hidden_act", parts.activation().hfName());
        c.put("hidden_size", hiddenSize);
        c.put("initializer_range", 0.02);
        c.put("intermediate_size", intermediateSize);
        c.put("max_position_embeddings", maxPositionEmbeddings);
        c.put("model_type", family.modelType());
        c.put("num_attention_heads", numAttentionHeads);
        c.put("num_hidden_layers", numHiddenLayers);
        c.put("num_key_value_heads", numKeyValueHeads);
        c.putNull("pad_token_id");
        c.put("rms_norm_eps", rmsNormEps);
        ObjectNode rope = c.putObject("rope_parameters");
        if (ropeScaling != null) {
            rope.put("factor", ropeScaling.factor());
            rope.put("high_freq_factor", ropeScaling.highFreqFactor());
            rope.put("low_freq_factor", ropeScaling.lowFreqFactor());
            rope.put("original_max_position_embeddings", ropeScaling.originalMaxPositionEmbeddings());
        }
        rope.put("rope_theta", ropeTheta);
        rope.put("rope_type", ropeScaling == null ? "default" : RopeScaling.TYPE);
        c.put("tie_word_embeddings", tieWordEmbeddings);
        c.put("transformers_version", "5.18.0");
        c.put("use_cache", true);
        c.put("vocab_size", vocabSize);
        family.writeFields(c, this);
        ObjectNode sorted = JSON.createObjectNode();  // transformers writes the keys sorted
        c.properties().stream().sorted(java.util.Map.Entry.comparingByKey())
                .forEach(e -> sorted.set(e.getKey(), e.getValue()));
        try {
            return JSON.writeValueAsString(sorted) + "\n";
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    // ---------------------------------------------------------------- strict field readers

    static String text(JsonNode c, String field, String dflt) {
        JsonNode v = c.get(field);
        if (v == null || v.isNull()) return dflt;
        if (!v.isTextual()) throw new IllegalArgumentException(field + " must be a string, got " + abbreviate(v));
        return v.asText();
    }

    static boolean bool(JsonNode c, String field, boolean dflt) {
        JsonNode v = c.get(field);
        if (v == null || v.isNull()) return dflt;
        if (!v.isBoolean()) throw new IllegalArgumentException(field + " must be true or false, got " + abbreviate(v));
        return v.asBoolean();
    }

    /** One rule for integers (StrictJson's, as transformers' strict config fields): a JSON integer, not 64.0. */
    static int integer(JsonNode c, String field, int dflt) {
        JsonNode v = c.get(field);
        if (v == null || v.isNull()) return dflt;
        return (int) StrictJson.exactLong(v, field, Integer.MIN_VALUE, Integer.MAX_VALUE, null);
    }

    private static double number(JsonNode c, String field, double dflt) {
        JsonNode v = c.get(field);
        if (v == null || v.isNull()) {
            if (Double.isNaN(dflt)) throw new IllegalArgumentException("missing " + field);
            return dflt;
        }
        if (!v.isNumber()) throw new IllegalArgumentException(field + " must be a number, got " + abbreviate(v));
        double d = v.asDouble();
        if (!Double.isFinite(d)) throw new IllegalArgumentException(field + " must be finite, got " + abbreviate(v));
        return d;
    }

    /** A token id: an integer, the first of a list (eos may be several), or -1 when null. */
    private static int tokenId(JsonNode c, String field, int dflt) {
        JsonNode v = c.get(field);
        if (v == null) return dflt;
        if (v.isNull()) return -1;
        if (v.isArray()) {
            if (v.isEmpty()) return -1;
            ObjectNode one = JSON.createObjectNode();
            one.set(field, v.get(0));
            return tokenId(one, field, dflt);
        }
        int id = integer(c, field, dflt);
        if (id < 0) throw new IllegalArgumentException(field + " must be non-negative, got " + id);
        return id;
    }

    private static String abbreviate(JsonNode v) {
        String s = v.toString();
        return s.length() <= 80 ? s : s.substring(0, 80) + "...";
    }

    /** The HF names of a layer's projections, in model order. */
    static final List<String> PROJECTIONS = List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
            "down_proj");
}
