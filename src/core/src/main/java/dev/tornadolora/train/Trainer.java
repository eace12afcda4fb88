package dev.tornadolora.train;

import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.nn.Parameter;
import dev.tornadolora.tensor.Tensor;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The one optimizer step of every training job ({@code finetune}'s Llama and {@code train}'s example alike), as
 * torchtune's recipes and transformers' Trainer take it, over a {@link TrainingTask}: zero the gradients, the
 * step's micro-batches forward and backward with the loss normalised by the step's counted units (so that
 * accumulation, and data parallelism, computes the full-batch loss exactly), clipping of the global gradient norm
 * (measured either way), the optimizer ({@link AdamW}, or {@link Sgd}), the schedule.
 *
 * <p>The two halves are separate, for data-parallel workers: {@link #accumulate} computes the gradients of any
 * share of a step's rows (summing the shares' gradients gives the step's gradient), and {@link #apply} takes the
 * summed gradients through clip, optimizer and schedule. {@link #step()} does both on one machine. A non-finite
 * loss or gradient norm stops the run before the update, naming the step.
 *
 * <p>State: the parameters, the optimizer's buffers and step count, the scheduler epoch, the dropout generators'
 * positions and the steps done. The data of a step depends only on its index, so {@link #save} / {@link #resume}
 * (the resume point, {@link TrainingState}) need no data position besides it.
 */
public final class Trainer {

    /** A loss with its gradient, e.g. {@code Losses::mse}. */
    @FunctionalInterface
    public interface LossFunction {
        /**
         * {@return the loss and its gradient with respect to {@code prediction}}
         *
         * @param prediction the model's output
         * @param target     what it should be
         */
        Losses.Result apply(Tensor prediction, Tensor target);
    }

    /**
     * What one step measured.
     *
     * @param step     the step's number (1-based)
     * @param loss     the loss before the update
     * @param lr       the learning rate the update used
     * @param gradNorm the global gradient norm before clipping
     * @param tokens   tokens (rows × positions) of the step
     */
    public record StepRecord(long step, double loss, double lr, double gradNorm, long tokens) {}

    private final TrainingTask task;
    private final Optimizer optimizer;
    private final LrSchedule schedule;
    private final double maxGradNorm;
    private final long steps;
    private final List<Parameter> params;
    private String stateFormat;
    private LrScheduler scheduler;
    private long stepsDone;

    /**
     * @param optimizer   updates the task's trainable parameters
     * @param schedule    the learning-rate multiplier by step
     * @param maxGradNorm clip threshold; 0 disables clipping (the norm is still measured)
     * @param steps       the run's length in optimizer steps
     */
    public Trainer(TrainingTask task, Optimizer optimizer, LrSchedule schedule, double maxGradNorm, long steps) {
        if (!(maxGradNorm >= 0) || Double.isInfinite(maxGradNorm)) {
            // NaN or a negative threshold would silently turn clipping off.
            throw new IllegalArgumentException("max_grad_norm must be a finite number >= 0 (0: no clipping), got "
                    + maxGradNorm);
        }
        if (steps <= 0) throw new IllegalArgumentException("steps must be positive, got " + steps);
        this.task = task;
        this.optimizer = optimizer;
        this.schedule = schedule;
        this.maxGradNorm = maxGradNorm;
        this.steps = steps;
        this.params = optimizer.parameters();
        this.scheduler = new LrScheduler(optimizer, schedule);
    }

    /**
     * The resume point's {@code format} metadata: written by {@link #save} and required by {@link #resume}
     * (null, the default: neither).
     */
    public Trainer stateFormat(String format) {
        this.stateFormat = format;
        return this;
    }

    /** Optimizer steps completed; the next {@link #step()} is step {@code stepsDone()} (0-based). */
    public long stepsDone() {
        return stepsDone;
    }

    public boolean finished() {
        return stepsDone >= steps;
    }

    /** The run's length. */
    public long steps() {
        return steps;
    }

    /**
     * Forward and backward of positions [{@code from}, {@code to}) of step {@code step}'s rows (0-based step), in
     * micro-batches cut at multiples of the task's micro-batch as the whole step's are, adding n_m/n times each
     * micro-batch's gradient to the parameters' gradients; returns Σ mean_m · n_m / n over them, this share of the
     * step's loss. The gradients are not zeroed first.
     */
    public double accumulate(long step, int from, int to) {
        int per = task.rowsPerStep();
        if (from < 0 || to > per || from > to) {
            throw new IllegalArgumentException("positions [" + from + ", " + to + ") outside the step's " + per + " rows");
        }
        long n = task.counted(step, 0, per);
        int b = task.microBatch();
        task.train(true);
        double loss = 0;
        for (int lo = from; lo < to; ) {
            int hi = Math.min(to, (lo / b + 1) * b);
            long nm = task.counted(step, lo, hi);
            if (nm > 0) {
                double share = (double) nm / n;
                loss += task.forwardBackward(step, lo, hi, share) * share;
            }
            lo = hi;
        }
        return loss;
    }

    /**
     * Finishes the step whose gradients are in the parameters: clip (when {@code maxGradNorm} &gt; 0; the norm is
     * measured either way), the optimizer, the schedule.
     */
    public StepRecord apply(double loss) {
        return apply(loss, new ExternalUpdate() {
            @Override
            public double gradNorm() {
                return maxGradNorm > 0 ? GradClip.clipGradNorm(params, maxGradNorm) : GradClip.globalNorm(params);
            }

            @Override
            public void update(double lr, long stepCount) {
                optimizer.step();
            }
        });
    }

    /** The clip-and-update half of an optimizer step, computed where the gradients are. */
    public interface ExternalUpdate {
        /** The global gradient norm before clipping; clips the gradients when the run's maxGradNorm &gt; 0. */
        double gradNorm();

        /** The optimizer's update at learning rate {@code lr}, its {@code stepCount}-th (1-based), then zeroed gradients. */
        void update(double lr, long stepCount);
    }

    /**
     * The end of a step whose gradients live elsewhere (a device that holds the adapters, their gradients and the
     * optimizer's buffers): {@link ExternalUpdate#gradNorm} measures (and clips) them, {@link ExternalUpdate#update}
     * takes the optimizer's step at this step's learning rate; the checks and the schedule are {@link #apply(double)}'s.
     */
    public StepRecord apply(double loss, ExternalUpdate u) {
        long step = stepsDone + 1;
        if (!Double.isFinite(loss)) {
            throw new IllegalStateException("training stopped at step " + step + ": the loss is " + loss
                    + " (try a lower learning rate); parameters were not updated");
        }
        double lr = optimizer.lr();
        double norm = u.gradNorm();
        if (!Double.isFinite(norm)) {
            throw new IllegalStateException("training stopped at step " + step + ": the gradient norm is " + norm
                    + "; parameters were not updated");
        }
        u.update(lr, step);
        scheduler.step();
        stepsDone++;
        return new StepRecord(step, loss, lr, norm, task.tokensPerStep());
    }

    /** One whole optimizer step on this machine: zero the gradients, every micro-batch, {@link #apply}. */
    public StepRecord step() {
        if (finished()) throw new IllegalStateException("all " + steps + " steps are done");
        task.zeroGrad();
        return apply(accumulate(stepsDone, 0, task.rowsPerStep()));
    }

    public TrainingTask task() { return task; }
    public Optimizer optimizer() { return optimizer; }
    public LrScheduler scheduler() { return scheduler; }

    /**
     * Writes the resume point atomically in one file (so it is whole whenever it exists): the optimizer's
     * buffers, the parameters and each adapted layer's dropout position ({@link TrainingState}), and in the
     * metadata the steps done, the scheduler's epoch and base rate, the state format, plus {@code extra}.
     */
    public void save(Path file, Map<String, String> extra) throws IOException {
        Map<String, String> meta = new LinkedHashMap<>();
        if (stateFormat != null) meta.put("format", stateFormat);
        meta.putAll(extra);
        TrainingState.save(file, optimizer, scheduler, stepsDone, meta, task.adapterModules());
    }

    /**
     * Restores a state written by {@link #save} of a run with the same settings: its format, a step within the
     * run, the base learning rate this trainer's and the scheduler at that step. Returns the file (for the
     * caller's metadata).
     */
    public SafeTensors resume(Path file) {
        SafeTensors head = SafeTensors.open(file);
        if (stateFormat != null && !stateFormat.equals(head.metadata().get("format"))) {
            throw new IllegalArgumentException(file + ": not a resume point of this kind of run (format "
                    + head.metadata().get("format") + ", expected " + stateFormat + ")");
        }
        long step = TrainingState.parseLong(head, TrainingState.STEP);
        if (step < 0 || step > steps) {
            throw new IllegalArgumentException(file + ": saved at step " + step + " of a run of " + steps);
        }
        String baseLr = head.requireMetadata(TrainingState.BASE_LR);
        if (!baseLr.equals(Double.toString(scheduler.baseLr()))) {
            throw new SettingException("{resume}: " + file + ": base_lr '"
                    + baseLr + "' is not the run's {lr} " + scheduler.baseLr());
        }
        long epoch = TrainingState.parseLong(head, TrainingState.SCHEDULER_EPOCH);
        if (epoch != step) {
            throw new SettingException("{resume}: " + file + ": scheduler_epoch " + epoch + " is not its step " + step);
        }
        SafeTensors st = TrainingState.resume(file, optimizer, task.adapterModules());
        scheduler = new LrScheduler(optimizer, schedule, Double.parseDouble(baseLr), epoch);
        stepsDone = step;
        return st;
    }
}
