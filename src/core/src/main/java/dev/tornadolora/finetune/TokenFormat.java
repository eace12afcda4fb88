package dev.tornadolora.finetune;

import dev.tornadolora.llama.LlamaConfig;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A data format {@link FinetuneRun} reads besides pre-tokenized {@code .safetensors}: a provider found through
 * {@link java.util.ServiceLoader}, e.g. tornado-lora-data's {@code .jsonl} text, tokenized with the model
 * folder's {@code tokenizer.json}. Kept out of this library so that it has no tokenizer dependency.
 */
public interface TokenFormat {
    /** Whether this format reads {@code file} (by its name, e.g. {@code .jsonl}). */
    boolean reads(Path file);

    /**
     * The rows of {@code file}.
     *
     * @param modelDir the model folder (its tokenizer)
     * @param config   the model's config (vocabulary size, end-of-sequence id)
     * @param seqLen   tokens per row
     */
    TokenDataset read(Path file, Path modelDir, LlamaConfig config, int seqLen) throws IOException;
}
