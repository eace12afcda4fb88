package dev.tornadolora.finetune;

import dev.tornadolora.train.Trainer;
import dev.tornadolora.train.TrainingLog;

import java.io.IOException;
import java.nio.file.Path;

/**
 * What a {@link FinetuneRun} reports while it runs, for a front end to show (the CLI's progress bar and lines) or
 * to add outputs to (the CLI's {@code loss.png}). Every method has an empty default.
 */
public interface FinetuneListener {
    /** Hears nothing. */
    FinetuneListener NONE = new FinetuneListener() {};

    /** A line for the user: what runs, on which device, where it resumes. */
    default void info(String line) {}

    /** The loop starts at {@code stepsDone} of {@code steps} (not 0 when resumed). */
    default void started(long stepsDone, long steps) {}

    /**
     * An optimizer step is done.
     *
     * @param elapsedSeconds the run's time so far (a resumed run's earlier time included)
     * @param tokens         tokens of every step so far
     */
    default void step(Trainer.StepRecord record, double elapsedSeconds, long tokens) {}

    /** The eval loss at {@code step} (0: before training). */
    default void evaluated(long step, double loss) {}

    /** The loop is done (the final evaluation and save follow). */
    default void trained() {}

    /**
     * The outputs were written to {@code output}, the resume point last; {@code last}: the run's final save, with
     * the log's summary complete. A listener may add files of its own (written before the resume point is not
     * guaranteed: they are not part of it).
     */
    default void saved(Path output, TrainingLog log, boolean last) throws IOException {}
}
