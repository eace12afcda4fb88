package dev.tornadolora.benchmarks;

import dev.tornadolora.device.Device;
import dev.tornadolora.llama.LlamaConfig;
import dev.tornadolora.llama.LlamaForCausalLM;
import dev.tornadolora.llama.LoraSettings;
import dev.tornadolora.tensor.Tensor;
import dev.tornadolora.finetune.FinetuneConfig;
import dev.tornadolora.finetune.Finetuner;
import dev.tornadolora.train.Trainer;
import dev.tornadolora.finetune.TokenDataset;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * A Llama training step in issue 14's benchmark configuration (hidden 1024, 16 heads, 4 KV heads, head_dim 64,
 * intermediate 2816, 4 layers, vocab 8192; batch 2 × 256 tokens; LoRA r 16, α 32 on q_proj, v_proj, or on every
 * projection with {@code -all}), named as {@code benchmarks/compare.py} names it:
 * {@code llama-BASE-KIND[-all][-ckpt][-logits]} with BASE fp32|qlora (every q/k/v/o/gate/up/down weight NF4),
 * {@code -ckpt} with activation checkpointing ({@link LlamaForCausalLM#activationCheckpointing(boolean)}),
 * {@code -logits} (a step only) with the loss on the full logits, lm_head and loss unfused (the [tokens × vocab]
 * logits copied out, as before the fused chunked loss), and KIND
 * <ul>
 *   <li>{@code step}: {@link LlamaForCausalLM#forwardBackward} (transformers' loss, adapter gradients accumulate);
 *   <li>{@code finetune}: one optimizer step of {@code finetune}'s loop ({@link Trainer#step} of {@link Finetuner#trainer}): zero the
 *       gradients, the next batch of rows ((i·B + j) mod rows, {@code --shuffle false}), forward + backward,
 *       {@link dev.tornadolora.train.GradClip#clipGradNorm} to 1.0, {@link dev.tornadolora.train.AdamW} (constant lr).
 * </ul>
 * The PyTorch side (compare.py) runs the same calls with transformers + PEFT.
 */
public final class LlamaStepWorkload implements AutoCloseable {
    public static final LlamaConfig CONFIG = LlamaProfile.benchmarkConfig();
    public static final int BATCH = 2;
    public static final int SEQ = 256;
    public static final int ROWS = 8;
    public static final double MAX_GRAD_NORM = 1.0;
    public static final double LR = 1e-4;

    private final String name;
    private final boolean finetune;
    /** The full logits of the unfused loss ({@code -logits}), or null. */
    private final float[] logits;
    private final LlamaForCausalLM model;
    private final Trainer finetuner;
    private final int[] rows;
    private final int[] batchIds = new int[BATCH * SEQ];

    private LlamaStepWorkload(String name, boolean finetune, LlamaForCausalLM model) {
        this.name = name;
        this.finetune = finetune;
        this.model = model;
        List<String> options = options(name);
        model.activationCheckpointing(options.contains("ckpt"));
        logits = options.contains("logits") ? new float[BATCH * SEQ * CONFIG.vocabSize()] : null;
        SplittableRandom rnd = new SplittableRandom(3);
        // lora_B starts at zero (PEFT, torchtune); give it values so the update is real arithmetic.
        Map<String, Tensor> adapters = model.adapterStateDict();
        adapters.replaceAll((k, t) -> k.endsWith("lora_B.weight")
                ? Tensor.of(uniform(rnd, t.numel(), 0.01f), t.shape()) : t);
        model.loadAdapters(adapters);
        model.train(true);
        rows = new int[ROWS * SEQ];
        for (int i = 0; i < rows.length; i++) {
            rows[i] = rnd.nextInt(CONFIG.vocabSize());
        }
        System.arraycopy(rows, 0, batchIds, 0, batchIds.length);
        int[][] data = new int[ROWS][];
        for (int r = 0; r < ROWS; r++) data[r] = java.util.Arrays.copyOfRange(rows, r * SEQ, (r + 1) * SEQ);
        finetuner = !finetune ? null : Finetuner.trainer(model, TokenDataset.of("benchmark rows", data, null),
                new FinetuneConfig(model.lora(), Long.MAX_VALUE / (BATCH * (long) ROWS), BATCH, 1, SEQ, LR, 0.01, 0.9,
                        0.999, 1e-8, 0, FinetuneConfig.CONSTANT, MAX_GRAD_NORM, 0, false, 0, 0));
    }

    /** {@code llama-fp32-step}, {@code llama-qlora-finetune-all}, …: random weights, generated tensor by tensor. */
    public static LlamaStepWorkload parse(String name, Device device) {
        return new LlamaStepWorkload(name, kind(name), LlamaForCausalLM.random(CONFIG, settings(name), 1, device));
    }

    /** The same workload over an HF folder with this configuration, loaded tensor by tensor (the memory check). */
    public static LlamaStepWorkload load(String name, Path hfDir, Device device) {
        LlamaForCausalLM m = LlamaForCausalLM.load(hfDir, settings(name), device);
        if (!m.config().equals(CONFIG)) {
            String got = m.config().toString();
            m.close();
            throw new IllegalArgumentException(hfDir + ": expected the benchmark configuration " + CONFIG + " but got "
                    + got);
        }
        return new LlamaStepWorkload(name, kind(name), m);
    }

    private static final List<String> OPTIONS = List.of("all", "ckpt", "logits");

    /** The options after llama-BASE-KIND, checked: each at most once, in the order all, ckpt, logits. */
    private static List<String> options(String name) {
        String[] p = name.split("-");
        List<String> options = p.length < 3 ? List.of() : List.of(p).subList(3, p.length);
        boolean ordered = true;
        for (int i = 1; i < options.size(); i++) {
            ordered &= OPTIONS.indexOf(options.get(i - 1)) < OPTIONS.indexOf(options.get(i));
        }
        if (p.length < 3 || !p[0].equals("llama") || !(p[1].equals("fp32") || p[1].equals("qlora"))
                || !(p[2].equals("step") || p[2].equals("finetune")) || !OPTIONS.containsAll(options) || !ordered
                || (options.contains("logits") && !p[2].equals("step"))) {
            throw new IllegalArgumentException("workload: expected llama-fp32|qlora-step|finetune[-all][-ckpt] or"
                    + " llama-fp32|qlora-step[-all][-ckpt]-logits but got " + name);
        }
        return options;
    }

    private static boolean kind(String name) {
        options(name);
        return name.split("-")[2].equals("finetune");
    }

    static LoraSettings settings(String name) {
        return LlamaProfile.benchmarkLora(name.split("-")[1].equals("qlora"), options(name).contains("all"));
    }

    public String name() {
        return name;
    }

    public LlamaForCausalLM model() {
        return model;
    }

    /** One step (see the class comment); returns the loss. */
    public double run() {
        if (!finetune) {
            return model.forwardBackward(batchIds, batchIds, BATCH, SEQ, 1.0, logits);
        }
        return finetuner.step().loss();
    }

    @Override
    public void close() {
        model.close();
    }

    private static float[] uniform(SplittableRandom rnd, int n, float bound) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) rnd.nextDouble(-bound, bound);
        }
        return a;
    }
}
