package dev.tornadolora.spark;

import dev.tornadolora.finetune.Finetuner;
import dev.tornadolora.finetune.StepExecutor;
import dev.tornadolora.train.Trainer;

/**
 * A {@link Trainer}'s step as one replica computes it: zero the gradients, {@link Trainer#accumulate} this
 * replica's share of the step's rows, the all-reduce of {@link DataParallelStep}, then the same
 * {@link Trainer#apply} (clip, AdamW, schedule) as every replica. After the last step, the final check.
 */
final class FinetuneStepExecutor implements StepExecutor {
    private final Collective collective;
    private final int checkEvery;
    private DataParallelStep dp;

    FinetuneStepExecutor(Collective collective, int checkEvery) {
        this.collective = collective;
        this.checkEvery = checkEvery;
    }

    @Override
    public Trainer.StepRecord step(Trainer f) {
        if (dp == null) {
            dp = new DataParallelStep(collective, f.task().trainableParameters(), f.task().rowsPerStep(), checkEvery,
                    f.stepsDone(), f.task() instanceof Finetuner ft ? ReplicaChecksum.ofBases(ft.model().projectionBases().values()) : 0);
        }
        long step = f.stepsDone() + 1;
        f.task().zeroGrad();
        double share = f.accumulate(step - 1, dp.from(), dp.to());
        Trainer.StepRecord r = f.apply(dp.allReduce(step, share));
        if (f.finished()) dp.finish(step);
        return r;
    }

    /** The replica's report; null when it had no step left to run. */
    TaskReport report(int stageAttempt) {
        return dp == null ? null : dp.report(stageAttempt);
    }
}
