package dev.tornadolora.bench;

import dev.tornadolora.llama.LlamaConfig;
import dev.tornadolora.llama.LoraSettings;

import java.util.Locale;
import java.util.Set;

/**
 * The model a {@link Workload.Op#STEP} workload trains: a Llama configuration, its batch of {@code batch × seq}
 * tokens, and LoRA on q_proj, v_proj ({@code qv}) or on all seven projections ({@code all}).
 *
 * <p>Shapes: {@code bench} is the benchmark configuration every step number of the project is quoted on (hidden
 * 1024, 16 heads / 4 KV heads, head_dim 64, intermediate 2816, 4 layers, vocab 8192, 2 × 256 tokens);
 * {@code small} keeps its proportions (GQA 4:1, llama rope) at a size a test runs in seconds (hidden 256, 8 heads /
 * 2 KV heads, head_dim 32, intermediate 512, 2 layers, vocab 512, 2 × 32 tokens); every projection of both holds
 * whole NF4 blocks (64 × 256 elements), so either runs QLoRA.
 *
 * <p>FLOPs per step, a multiply-add counting 2, T = batch·seq tokens, the frozen base needing dx only:
 * <pre>
 *   projections  4·T·Σ in·out  (forward y = x·Wᵀ, backward dx = dy·W; every layer)
 *   lm_head      4·T·hidden·vocab
 *   LoRA         6·T·r·(in + out) per adapted projection
 *   attention    6·batch·heads·seq²·head_dim  (the causal half of QKᵀ and P·V forward, four products backward)
 * </pre>
 * Base-weight traffic: two passes (forward, backward) over every projection at its bytes per parameter and over
 * lm_head in fp32.
 */
public record ModelStep(String shape, LlamaConfig config, int batch, int seq, boolean allProjections) {

    /** The benchmark configuration (see the class comment). */
    public static final LlamaConfig BENCH = new LlamaConfig(8192, 1024, 2816, 4, 16, 4, 64, 1e-6, 10000.0, null,
            false, 2048, 1, 2, "float32");
    /** The small shape a test runs. */
    public static final LlamaConfig SMALL = new LlamaConfig(512, 256, 512, 2, 8, 2, 32, 1e-6, 10000.0, null, false,
            256, 1, 2, "float32");

    public ModelStep {
        if (batch <= 0 || seq < 2) {
            throw new IllegalArgumentException("model step: batch must be positive and seq >= 2, got " + batch + " x "
                    + seq);
        }
    }

    /** {@code bench} or {@code small}, with LoRA on q,v ({@code all} false) or on the seven projections. */
    public static ModelStep of(String shape, boolean allProjections) {
        return switch (shape.trim().toLowerCase(Locale.ROOT)) {
            case "bench" -> new ModelStep("bench", BENCH, 2, 256, allProjections);
            case "small" -> new ModelStep("small", SMALL, 2, 32, allProjections);
            default -> throw new IllegalArgumentException("step shape '" + shape + "': expected bench or small");
        };
    }

    /** {@code qv} or {@code all}. */
    public static boolean parseModules(String s) {
        return switch (s.trim().toLowerCase(Locale.ROOT)) {
            case "qv" -> false;
            case "all" -> true;
            default -> throw new IllegalArgumentException("step LoRA modules '" + s + "': expected qv or all");
        };
    }

    public String modules() {
        return allProjections ? "all" : "qv";
    }

    public int tokens() {
        return batch * seq;
    }

    /** LoRA of rank r, α = 2r, no dropout, on this step's projections; NF4 base weights for QLoRA. */
    public LoraSettings lora(int rank, boolean nf4) {
        return new LoraSettings(allProjections ? Set.copyOf(LoraSettings.ATTN_MODULES) : Set.of("q_proj", "v_proj"),
                allProjections, false, rank, 2f * rank, 0f, false, nf4);
    }

    /** Σ in·out over one layer's seven projections. */
    private double layerWeights() {
        LlamaConfig c = config;
        double d = c.hiddenSize();
        return d * c.qDim() * 2 + d * c.kvDim() * 2 + 3 * d * c.intermediateSize();
    }

    /** Σ (in + out) over one layer's adapted projections. */
    private double adaptedEdges() {
        LlamaConfig c = config;
        double d = c.hiddenSize(), qv = (d + c.qDim()) + (d + c.kvDim());
        return allProjections ? qv + (d + c.kvDim()) + (c.qDim() + d) + 3 * (d + c.intermediateSize()) : qv;
    }

    /** FLOPs of one step (see the class comment). */
    public double flops(int rank) {
        LlamaConfig c = config;
        double t = tokens(), layers = c.numHiddenLayers();
        double attention = 6.0 * batch * c.numAttentionHeads() * seq * (double) seq * c.headDim();
        return layers * (4 * t * layerWeights() + 6 * t * rank * adaptedEdges() + attention)
                + 4 * t * c.hiddenSize() * (double) c.vocabSize();
    }

    /** Bytes of base weight one step reads (see the class comment). */
    public double weightBytes(double bytesPerParameter) {
        return 2 * (config.numHiddenLayers() * layerWeights() * bytesPerParameter
                + 4.0 * config.hiddenSize() * config.vocabSize());
    }

    /** E.g. {@code bench qv}. */
    public String label() {
        return shape + " " + modules();
    }
}
