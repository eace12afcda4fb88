package dev.tornadolora.finetune;

import dev.tornadolora.train.Trainer;

/**
 * How a {@link Finetuner}'s optimizer step is computed: {@link #LOCAL} runs it whole on this machine; a
 * data-parallel replica computes its share of the rows ({@link Finetuner#accumulate}), sums the shares'
 * gradients with the other replicas, then takes the same {@link Finetuner#apply} as every replica.
 */
@FunctionalInterface
public interface StepExecutor {
    StepExecutor LOCAL = Finetuner::step;

    /** Runs the finetuner's next step ({@link Finetuner#stepsDone()}, 0-based) and returns its record. */
    Trainer.StepRecord step(Finetuner finetuner);
}
