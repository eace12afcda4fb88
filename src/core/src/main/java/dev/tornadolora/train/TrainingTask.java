package dev.tornadolora.train;

import dev.tornadolora.nn.LoRALinear;
import dev.tornadolora.nn.Parameter;

import java.util.List;
import java.util.Map;

/**
 * What {@link Trainer} trains: a model with its data, seen as the step needs them. Each optimizer step has
 * {@link #rowsPerStep()} rows, taken in micro-batches of at most {@link #microBatch()}; the loss of a step is
 * normalised by the step's counted units n (label tokens of a language model, rows of a regression):
 * <pre>
 *   L = Σ_m mean_m · n_m / n      and micro-batch m's gradient is scaled by n_m / n
 * </pre>
 * Implementations: the Llama fine-tune ({@code finetune.Finetuner}) and a regression of any {@code Module}
 * ({@link RegressionTask}, the {@code train} example).
 */
public interface TrainingTask {
    /** The trainable parameters in a fixed order (the optimizer's, and the all-reduce's of a data-parallel run). */
    List<Parameter> trainableParameters();

    /** The adapted layers by name: their dropout generators' positions are part of the resume point. */
    Map<String, LoRALinear> adapterModules();

    /** Zeroes the trainable parameters' gradients. */
    void zeroGrad();

    /** Training mode (dropout on) or eval mode. */
    void train(boolean mode);

    /** Rows of one optimizer step. */
    int rowsPerStep();

    /** Rows of one micro-batch; the step's rows are cut at its multiples. */
    int microBatch();

    /**
     * The counted units of positions [{@code from}, {@code to}) of step {@code step}'s rows (0-based step).
     *
     * @throws IllegalArgumentException when the whole step counts nothing (its loss is undefined)
     */
    long counted(long step, int from, int to);

    /**
     * Forward and backward of positions [{@code from}, {@code to}) of step {@code step}'s rows (one micro-batch),
     * adding {@code share} times the gradient of its mean loss to the parameters' gradients; returns the mean loss.
     */
    double forwardBackward(long step, int from, int to, double share);

    /** Tokens (rows × positions) of one optimizer step, for its record. */
    long tokensPerStep();
}
