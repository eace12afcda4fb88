package dev.tornadolora.finetune;

import dev.tornadolora.llama.LlamaForCausalLM;
import dev.tornadolora.nn.LoRALinear;
import dev.tornadolora.nn.Parameter;
import dev.tornadolora.train.AdamW;
import dev.tornadolora.train.SettingException;
import dev.tornadolora.train.Trainer;
import dev.tornadolora.train.TrainingTask;

import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * torchtune's {@code lora_finetune_single_device} recipe on a {@link LlamaForCausalLM} as a {@link TrainingTask}:
 * per optimizer step, A micro-batches of B rows ({@link TokenBatches}), each token's cross-entropy counted when
 * its shifted label is not −100. {@link #trainer} puts it on the one step implementation, {@link Trainer} (clip,
 * {@code torch.optim.AdamW}, the schedule, the resume point), with the settings of a {@link FinetuneConfig}.
 *
 * <p>The loss of a step is normalised by the tokens of the whole step, as transformers' Trainer does with
 * {@code num_items_in_batch}, so that accumulation (and data parallelism) computes exactly the full-batch loss:
 * <pre>
 *   L = Σ_m Σ_{t ∈ m} CE_t / n,      n = counted label tokens of the step (after the shift, label ≠ −100)
 *   micro-batch m contributes  mean_m · n_m / n,   and its gradient is scaled by n_m / n
 * </pre>
 */
public final class Finetuner implements TrainingTask {
    public static final String STATE_FORMAT = "tornado-lora finetune state v1";

    private final LlamaForCausalLM model;
    private final TokenDataset data;
    private final FinetuneConfig config;
    private final TokenBatches order;

    public Finetuner(LlamaForCausalLM model, TokenDataset data, FinetuneConfig config) {
        if (data.seqLen() != config.seqLen()) {
            throw new SettingException(data.source() + ": rows of " + data.seqLen() + " tokens but {seq_len} "
                    + config.seqLen());
        }
        this.model = model;
        this.data = data;
        this.config = config;
        this.order = new TokenBatches(data.size(), config.batch(), config.gradAccum(), config.shuffle(), config.seed());
    }

    /** {@code model} fine-tuned on {@code data} as {@code config} says: AdamW, clipping, schedule, resume point. */
    public static Trainer trainer(LlamaForCausalLM model, TokenDataset data, FinetuneConfig config) {
        Finetuner task = new Finetuner(model, data, config);
        AdamW adamW = new AdamW(task.trainableParameters(), config.lr(), config.beta1(), config.beta2(), config.eps(),
                config.weightDecay());
        return new Trainer(task, adamW, config.lrSchedule(), config.maxGradNorm(), config.steps())
                .stateFormat(STATE_FORMAT);
    }

    /** The rows of optimizer step {@code step} (0-based), micro-batch after micro-batch. */
    public int[] stepRows(long step) {
        return order.rows(step);
    }

    /** The step's counted label tokens n (the loss's denominator). */
    public long countedTokens(long step) {
        int[] rows = stepRows(step);
        return LlamaForCausalLM.countedTokens(data.labels(rows), rows.length, data.seqLen());
    }

    @Override public List<Parameter> trainableParameters() { return model.trainableParameters(); }
    @Override public Map<String, LoRALinear> adapterModules() { return model.adapterModules(); }
    @Override public void zeroGrad() { model.zeroGrad(); }
    @Override public void train(boolean mode) { model.train(mode); }
    @Override public int rowsPerStep() { return order.rowsPerStep(); }
    @Override public int microBatch() { return config.batch(); }
    @Override public long tokensPerStep() { return (long) order.rowsPerStep() * data.seqLen(); }

    @Override
    public long counted(long step, int from, int to) {
        int[] rows = Arrays.copyOfRange(stepRows(step), from, to);
        long n = LlamaForCausalLM.countedTokens(data.labels(rows), rows.length, data.seqLen());
        if (n == 0 && from == 0 && to == order.rowsPerStep()) {
            throw new IllegalArgumentException(data.source() + ": optimizer step " + step + " has no counted label"
                    + " tokens (every label is -100 after the shift)");
        }
        return n;
    }

    @Override
    public double forwardBackward(long step, int from, int to, double share) {
        int[] mb = Arrays.copyOfRange(stepRows(step), from, to);
        return model.forwardBackward(data.inputIds(mb), data.positionIds(mb), data.labels(mb), mb.length, data.seqLen(),
                share, null);
    }

    /**
     * The mean cross-entropy over every counted token of {@code eval} (token-weighted across its batches of
     * {@code batch} rows, so the batch size does not change it), in eval mode (no dropout).
     */
    public double evalLoss(TokenDataset eval, int batch) {
        return evalLoss(model, eval, batch);
    }

    public static double evalLoss(LlamaForCausalLM model, TokenDataset eval, int batch) {
        model.train(false);
        try {
            return evalLoss(eval, batch, model::loss);
        } finally {
            model.train(true);
        }
    }

    /** The mean loss of one batch of rows, as {@link LlamaForCausalLM#loss(int[], int[], int[], int, int)}. */
    public interface BatchLoss {
        double loss(int[] inputIds, int[] positionIds, int[] labels, int rows, int seq);
    }

    /**
     * The mean cross-entropy over every counted token of {@code eval}, {@code loss} computing each batch of
     * {@code batch} rows (the last may be shorter): the batches' means weighted by their counted tokens.
     */
    public static double evalLoss(TokenDataset eval, int batch, BatchLoss loss) {
        double sum = 0;
        long count = 0;
        int s = eval.seqLen();
        for (int lo = 0; lo < eval.size(); lo += batch) {
            int[] rows = new int[Math.min(batch, eval.size() - lo)];
            for (int i = 0; i < rows.length; i++) rows[i] = lo + i;
            int[] labels = eval.labels(rows);
            long n = LlamaForCausalLM.countedTokens(labels, rows.length, s);
            if (n == 0) continue;
            sum += loss.loss(eval.inputIds(rows), eval.positionIds(rows), labels, rows.length, s) * n;
            count += n;
        }
        if (count == 0) throw new IllegalArgumentException(eval.source() + ": no counted label tokens to evaluate");
        return sum / count;
    }

    /** The clip-and-update half of an optimizer step, computed where the gradients are. */
    public interface ExternalUpdate {
        /** The global gradient norm before clipping; clips the gradients when the run's maxGradNorm &gt; 0. */
        double gradNorm();

        /** AdamW's update at learning rate {@code lr}, its {@code stepCount}-th (1-based), then zeroed gradients. */
        void update(double lr, long stepCount);
    }

    public LlamaForCausalLM model() { return model; }
    public TokenDataset data() { return data; }
    public FinetuneConfig config() { return config; }
}
