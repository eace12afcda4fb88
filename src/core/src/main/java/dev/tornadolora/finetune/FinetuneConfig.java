package dev.tornadolora.finetune;

import dev.tornadolora.train.SettingException;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tornadolora.llama.LoraSettings;
import dev.tornadolora.tensor.CheckedMath;
import dev.tornadolora.train.ConstantWithWarmup;
import dev.tornadolora.train.CosineWithWarmup;
import dev.tornadolora.train.LrSchedule;

import java.util.Locale;

/**
 * Everything a fine-tune's optimisation depends on, as torchtune's {@code lora_finetune_single_device} recipe
 * reads it from its config: the adapters ({@link LoraSettings}), the data order (batch B, gradient accumulation
 * A, shuffle, seed), AdamW ({@code torch.optim.AdamW}: lr, weight decay, betas, eps), the schedule (torchtune's
 * cosine with linear warm-up, or transformers' constant with warm-up), clipping ({@code maxGradNorm} 0: off), and when to evaluate and save.
 * The run's length is {@code steps} optimizer steps (see {@link TokenBatches#stepsForEpochs} for epochs).
 */
public record FinetuneConfig(LoraSettings lora, long steps, int batch, int gradAccum, int seqLen, double lr,
                             double weightDecay, double beta1, double beta2, double eps, long warmupSteps,
                             String schedule, double maxGradNorm, long seed, boolean shuffle, int evalEvery,
                             int saveEvery) {
    public static final String COSINE = "cosine";
    public static final String CONSTANT = "constant";

    public FinetuneConfig {
        if (steps <= 0) throw new SettingException("{steps} must be positive, got " + steps);
        if (batch <= 0) throw new SettingException("{batch} must be positive, got " + batch);
        if (gradAccum <= 0) throw new SettingException("{grad_accum} must be positive, got " + gradAccum);
        if (seqLen < 2) throw new SettingException("{seq_len} must be >= 2, got " + seqLen);
        long rows = CheckedMath.arrayLength("rows per optimizer step", CheckedMath.of("{batch}", batch),
                CheckedMath.of("{grad_accum}", gradAccum));
        CheckedMath.arrayLength("tokens per micro-batch", CheckedMath.of("{batch}", batch), CheckedMath.of("{seq_len}", seqLen));
        CheckedMath.product("data positions of the run", Long.MAX_VALUE, CheckedMath.of("{steps}", steps),
                CheckedMath.of("rows per step", rows));
        if (!(lr >= 0) || Double.isInfinite(lr)) throw new SettingException("{lr} must be finite and >= 0, got " + lr);
        if (!(weightDecay >= 0) || Double.isInfinite(weightDecay)) {
            throw new SettingException("{weight_decay} must be finite and >= 0, got " + weightDecay);
        }
        if (warmupSteps < 0) throw new SettingException("{warmup_steps} must be >= 0, got " + warmupSteps);
        if (!(maxGradNorm >= 0) || Double.isInfinite(maxGradNorm)) {
            throw new SettingException("{max_grad_norm} must be finite and >= 0 (0: no clipping), got " + maxGradNorm);
        }
        if (evalEvery < 0) throw new SettingException("{eval_every} must be >= 0, got " + evalEvery);
        if (saveEvery < 0) throw new SettingException("{save_every} must be >= 0, got " + saveEvery);
        schedule = schedule.toLowerCase(Locale.ROOT);
        if (!schedule.equals(COSINE) && !schedule.equals(CONSTANT)) {
            throw new SettingException("{schedule}: expected cosine or constant, got '" + schedule + "'");
        }
    }

    /** The learning-rate multiplier by scheduler step. */
    public LrSchedule lrSchedule() {
        return schedule.equals(COSINE) ? new CosineWithWarmup(warmupSteps, steps)
                : new ConstantWithWarmup(warmupSteps);
    }

    /** Rows per optimizer step, B·A. */
    public int rowsPerStep() {
        return batch * gradAccum;
    }

    /** The options as the log records them (and a resumed run compares). */
    public void describe(ObjectNode c) {
        LoraSettings l = lora;
        var mods = c.putArray("lora_modules");
        l.targetModules().forEach(mods::add);
        c.put("lora_rank", l.rank()).put("lora_alpha", l.alpha()).put("lora_dropout", l.dropout())
         .put("rslora", l.rslora()).put("dora", l.dora()).put("quantize_base", l.quantizeBase())
         .put("steps", steps).put("batch", batch).put("grad_accum", gradAccum).put("seq_len", seqLen)
         .put("lr", lr).put("weight_decay", weightDecay).put("betas", beta1 + "," + beta2).put("eps", eps)
         .put("schedule", schedule).put("warmup_steps", warmupSteps).put("max_grad_norm", maxGradNorm)
         .put("seed", seed).put("shuffle", shuffle).put("eval_every", evalEvery).put("save_every", saveEvery);
        ObjectNode ranks = c.putObject("rank_pattern"), alphas = c.putObject("alpha_pattern");
        l.rankPattern().forEach(ranks::put);
        l.alphaPattern().forEach(alphas::put);
    }
}
