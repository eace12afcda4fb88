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
 * projection with {@code -all}), named as {@code benchmarks/compare.py} names it: {@code llama-BASE-KIND[-all]}
 * with BASE fp32|qlora (every q/k/v/o/gate/up/down weight NF4) and KIND
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
    private final LlamaForCausalLM model;
    private final Trainer finetuner;
    private final int[] rows;
    private final int[] batchIds = new int[BATCH * SEQ];

    private LlamaStepWorkload(String name, boolean finetune, LlamaForCausalLM model) {
        this.name = name;
        this.finetune = finetune;
        this.model = model;
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

    private static String[] split(String name) {
        String[] p = name.split("-");
        if (p.length < 3 || p.length > 4 || !p[0].equals("llama") || !(p[1].equals("fp32") || p[1].equals("qlora"))
                || !(p[2].equals("step") || p[2].equals("finetune")) || (p.length == 4 && !p[3].equals("all"))) {
            throw new IllegalArgumentException("workload: expected llama-fp32|qlora-step|finetune[-all] but got "
                    + name);
        }
        return p;
    }

    private static boolean kind(String name) {
        return split(name)[2].equals("finetune");
    }

    static LoraSettings settings(String name) {
        String[] p = split(name);
        return LlamaProfile.benchmarkLora(p[1].equals("qlora"), p.length == 4);
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
            return model.forwardBackward(batchIds, batchIds, BATCH, SEQ, 1.0);
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
