package dev.tornadolora.finetune;

import dev.tornadolora.train.Trainer;

/**
 * How a {@link Trainer}'s optimizer step is computed: {@link #LOCAL} runs it whole on this machine; a
 * data-parallel replica computes its share of the rows ({@link Trainer#accumulate}), sums the shares'
 * gradients with the other replicas, then takes the same {@link Trainer#apply} as every replica.
 */
@FunctionalInterface
public interface StepExecutor {
    StepExecutor LOCAL = Trainer::step;

    /** Runs the trainer's next step ({@link Trainer#stepsDone()}, 0-based) and returns its record. */
    Trainer.StepRecord step(Trainer trainer);
}
