package dev.tornadolora.spark;

import dev.tornadolora.nn.Parameter;

import java.util.List;

/**
 * One full copy of a fine-tuning run, as a data-parallel task holds it. The loop ({@link ReplicaLoop}) drives it
 * step by step: the gradient of this task's share of the step's rows, then (after the all-reduce has replaced
 * the gradients by their sum over all shares) the same update on every replica.
 *
 * <p>The share's loss is normalised by the counted tokens of the <em>whole</em> step, so the shares' losses and
 * gradients add up to the single-process step's exactly (up to the order of float additions).
 */
public interface Replica extends AutoCloseable {
    /** Optimizer steps already taken: 0 for a fresh run, else the step of the resume point it loaded. */
    long completedSteps();

    /** The step count the run ends at. */
    long totalSteps();

    /** Rows of one optimizer step (batch × grad-accum). */
    int globalBatch();

    /** The trainable parameters in a fixed order; the all-reduce reads and writes their gradients. */
    List<Parameter> trainableParameters();

    /**
     * Zeroes the gradients and accumulates those of rows [from, to) of optimizer step {@code step} (1-based),
     * each token's loss divided by the counted tokens of all the step's rows. Returns this share's loss.
     */
    double shareGradients(long step, int from, int to);

    /**
     * Clip, optimizer step and schedule with the summed gradients now in {@link #trainableParameters()}; records
     * the step with its whole loss. The {@code writer} (rank 0) also logs it and writes a resume point when one
     * is due, as a single-process run does.
     */
    void apply(long step, double loss, boolean writer);

    /** End of the run: the writer writes the outputs as a single-process run does. */
    void finish(boolean writer);

    @Override
    void close();
}
