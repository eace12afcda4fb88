package dev.tornadolora.finetune;

import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.llama.LlamaForCausalLM;
import dev.tornadolora.nn.Parameter;
import dev.tornadolora.train.AdamW;
import dev.tornadolora.train.GradClip;
import dev.tornadolora.train.LrScheduler;
import dev.tornadolora.train.Trainer;
import dev.tornadolora.train.TrainingState;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The optimisation loop of torchtune's {@code lora_finetune_single_device} recipe on a {@link LlamaForCausalLM}:
 * per optimizer step, A micro-batches of B rows ({@link TokenBatches}) forward and backward with gradients
 * accumulated into the adapters, then clipping of the global norm, {@code torch.optim.AdamW} and the schedule.
 *
 * <p>The loss of a step is normalised by the tokens of the whole step, as transformers' Trainer does with
 * {@code num_items_in_batch}, so that accumulation (and data parallelism) computes exactly the full-batch loss:
 * <pre>
 *   L = Σ_m Σ_{t ∈ m} CE_t / n,      n = counted label tokens of the step (after the shift, label ≠ −100)
 *   micro-batch m contributes  mean_m · n_m / n,   and its gradient is scaled by n_m / n
 * </pre>
 * The two halves are separate, for data-parallel workers: {@link #accumulate} computes the gradients of any
 * share of a step's rows into the adapters' gradient arrays (summing the shares' gradients gives the step's
 * gradient), and {@link #apply} takes the summed gradients through clip, AdamW and the schedule.
 * {@link #step()} does both on one machine.
 *
 * <p>State: the adapters, AdamW's buffers and step count, the scheduler epoch, the dropout generators' positions
 * and the number of steps done. The data order depends only on the step index, so {@link #save} /
 * {@link #resume} need no data position besides it.
 */
public final class Finetuner {
    public static final String STATE_FORMAT = "tornado-lora finetune state v1";

    private final LlamaForCausalLM model;
    private final TokenDataset data;
    private final FinetuneConfig config;
    private final TokenBatches order;
    private final AdamW optimizer;
    private final List<Parameter> params;
    private LrScheduler scheduler;
    private long stepsDone;

    public Finetuner(LlamaForCausalLM model, TokenDataset data, FinetuneConfig config) {
        if (data.seqLen() != config.seqLen()) {
            throw new IllegalArgumentException(data.source() + ": rows of " + data.seqLen() + " tokens but --seq-len "
                    + config.seqLen());
        }
        this.model = model;
        this.data = data;
        this.config = config;
        this.order = new TokenBatches(data.size(), config.batch(), config.gradAccum(), config.shuffle(), config.seed());
        this.params = model.trainableParameters();
        this.optimizer = new AdamW(params, config.lr(), config.beta1(), config.beta2(), config.eps(), config.weightDecay());
        this.scheduler = new LrScheduler(optimizer, config.lrSchedule());
    }

    /** Optimizer steps completed; the next {@link #step()} is step {@code stepsDone()} (0-based). */
    public long stepsDone() {
        return stepsDone;
    }

    public boolean finished() {
        return stepsDone >= config.steps();
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

    /**
     * Forward and backward of positions [{@code from}, {@code to}) of step {@code step}'s rows (in micro-batches of
     * at most B, cut at multiples of B as the whole step's are), adding n_m/n times each micro-batch's gradient to
     * the adapters' gradients; returns Σ mean_m · n_m / n over these micro-batches, this share of the step's loss.
     * The gradients are not zeroed first.
     */
    public double accumulate(long step, int from, int to) {
        int per = order.rowsPerStep();
        if (from < 0 || to > per || from > to) {
            throw new IllegalArgumentException("positions [" + from + ", " + to + ") outside the step's " + per + " rows");
        }
        long n = countedTokens(step);
        if (n == 0) {
            throw new IllegalArgumentException(data.source() + ": optimizer step " + step + " has no counted label"
                    + " tokens (every label is -100 after the shift)");
        }
        int[] rows = stepRows(step);
        int s = data.seqLen(), b = config.batch();
        model.train(true);
        double loss = 0;
        for (int lo = from; lo < to; ) {
            int hi = Math.min(to, (lo / b + 1) * b);
            int[] mb = java.util.Arrays.copyOfRange(rows, lo, hi);
            int[] labels = data.labels(mb);
            long nm = LlamaForCausalLM.countedTokens(labels, mb.length, s);
            if (nm > 0) {
                double share = (double) nm / n;
                loss += model.forwardBackward(data.inputIds(mb), labels, mb.length, s, share) * share;
            }
            lo = hi;
        }
        return loss;
    }

    /**
     * Finishes the step whose gradients are in the adapters: clip (when {@code maxGradNorm} &gt; 0; the norm is
     * measured either way), AdamW, the schedule. A non-finite loss or norm stops before the update, naming the step.
     */
    public Trainer.StepRecord apply(double loss) {
        return apply(loss, new ExternalUpdate() {
            @Override
            public double gradNorm() {
                return config.maxGradNorm() > 0 ? GradClip.clipGradNorm(params, config.maxGradNorm())
                        : GradClip.globalNorm(params);
            }

            @Override
            public void update(double lr, long stepCount) {
                optimizer.step();
            }
        });
    }

    /**
     * The end of a step whose gradients live elsewhere (a device that holds the adapters, their gradients and
     * AdamW's buffers): {@link ExternalUpdate#gradNorm} measures (and, when {@code maxGradNorm} &gt; 0, clips) them,
     * {@link ExternalUpdate#update} takes AdamW's step at this step's learning rate; the checks and the schedule are
     * {@link #apply(double)}'s. The host's adapters and {@link #optimizer()} buffers are then stale until the other
     * side writes them back (before {@link #save}, an evaluation, the end).
     */
    public Trainer.StepRecord apply(double loss, ExternalUpdate u) {
        long step = stepsDone + 1;
        if (!Double.isFinite(loss)) {
            throw new IllegalStateException("training stopped at step " + step + ": the loss is " + loss
                    + " (try a lower --lr); the adapters were not updated");
        }
        double lr = optimizer.lr();
        double norm = u.gradNorm();
        if (!Double.isFinite(norm)) {
            throw new IllegalStateException("training stopped at step " + step + ": the gradient norm is " + norm
                    + "; the adapters were not updated");
        }
        u.update(lr, step);
        scheduler.step();
        stepsDone++;
        return new Trainer.StepRecord(step, loss, lr, norm, (long) order.rowsPerStep() * data.seqLen());
    }

    /** One whole optimizer step on this machine: zero the gradients, every micro-batch, {@link #apply}. */
    public Trainer.StepRecord step() {
        if (finished()) throw new IllegalStateException("all " + config.steps() + " steps are done");
        model.zeroGrad();
        double loss = accumulate(stepsDone, 0, order.rowsPerStep());
        return apply(loss);
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
            double sum = 0;
            long count = 0;
            int s = eval.seqLen();
            for (int lo = 0; lo < eval.size(); lo += batch) {
                int[] rows = new int[Math.min(batch, eval.size() - lo)];
                for (int i = 0; i < rows.length; i++) rows[i] = lo + i;
                int[] labels = eval.labels(rows);
                long n = LlamaForCausalLM.countedTokens(labels, rows.length, s);
                if (n == 0) continue;
                sum += model.loss(eval.inputIds(rows), labels, rows.length, s) * n;
                count += n;
            }
            if (count == 0) throw new IllegalArgumentException(eval.source() + ": no counted label tokens to evaluate");
            return sum / count;
        } finally {
            model.train(true);
        }
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
    public AdamW optimizer() { return optimizer; }
    public LrScheduler scheduler() { return scheduler; }

    /**
     * Writes the resume point atomically in one file (so it is whole whenever it exists): AdamW's buffers, the
     * adapters and each adapted layer's dropout position ({@link TrainingState} with the model's adapter modules),
     * and in the metadata the steps done, the scheduler's epoch and base rate, plus {@code extra}.
     */
    public void save(Path file, Map<String, String> extra) throws IOException {
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("format", STATE_FORMAT);
        meta.putAll(extra);
        TrainingState.save(file, optimizer, scheduler, stepsDone, meta, model.adapterModules());
    }

    /** Restores a state written by {@link #save}; returns the file (for the caller's metadata). */
    public SafeTensors resume(Path file) {
        SafeTensors head = SafeTensors.open(file);
        String format = head.metadata().get("format");
        if (!STATE_FORMAT.equals(format)) {
            throw new IllegalArgumentException(file + ": not a finetune resume point (format " + format + ")");
        }
        long step = TrainingState.parseLong(head, TrainingState.STEP);
        if (step < 0 || step > config.steps()) {
            throw new IllegalArgumentException(file + ": saved at step " + step + " of a run of " + config.steps());
        }
        double baseLr = TrainingState.parseDouble(head, TrainingState.BASE_LR);
        if (baseLr != config.lr()) {  // the state's rate would be used while the log records the config's
            throw new IllegalArgumentException(file + ": saved with learning rate " + baseLr + " but this run's is "
                    + config.lr());
        }
        SafeTensors st = TrainingState.resume(file, optimizer, model.adapterModules());
        scheduler = new LrScheduler(optimizer, config.lrSchedule(), baseLr,
                TrainingState.parseLong(st, TrainingState.SCHEDULER_EPOCH));
        stepsDone = step;
        return st;
    }
}
