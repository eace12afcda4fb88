package dev.tornadolora.io;

/**
 * The names of the files a training run ({@code finetune}, {@code train}) writes in its output folder, in one
 * place for the writers, the readers (resume) and the output guards. The PEFT folder's own two files are named
 * by the PEFT reader/writer.
 */
public final class RunFiles {
    private RunFiles() {}

    /** The resume point: optimizer state, adapters, dropout positions, step and schedule; written last. */
    public static final String STATE = "training_state.safetensors";
    /** The options, every step's record, the evaluations and the summary. */
    public static final String LOG = "log.json";
    /** The training loss curve. */
    public static final String LOSS_CURVE = "loss.png";
    /** The adapters with torchtune's keys. */
    public static final String ADAPTER = "adapter.safetensors";
    /** The PEFT adapter folder. */
    public static final String PEFT = "peft";
    /** The merged model's folder (config.json + model.safetensors). */
    public static final String MERGED = "merged";
}
