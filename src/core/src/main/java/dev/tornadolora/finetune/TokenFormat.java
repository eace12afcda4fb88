package dev.tornadolora.finetune;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tornadolora.llama.LlamaConfig;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A data format {@link FinetuneRun} reads besides pre-tokenized {@code .safetensors}: a provider found through
 * {@link java.util.ServiceLoader}, e.g. tornado-lora-data's {@code .jsonl} / {@code .json} examples of TRL's
 * dataset types, tokenized with the model folder's {@code tokenizer.json} and rendered with its chat template.
 * Kept out of this library so that it has no tokenizer or template-engine dependency.
 */
public interface TokenFormat {
    /** Whether this format reads {@code file} (by its name, e.g. {@code .jsonl}). */
    boolean reads(Path file);

    /**
     * The rows of {@code file}.
     *
     * @param modelDir    the model folder (its tokenizer and chat template)
     * @param config      the model's config (vocabulary size, end-of-sequence id)
     * @param seqLen      tokens per row
     * @param preparation how examples become rows ({@link FinetuneJob.Preparation})
     */
    Prepared read(Path file, Path modelDir, LlamaConfig config, int seqLen, FinetuneJob.Preparation preparation)
            throws IOException;

    /**
     * What a read made.
     *
     * @param rows    the rows
     * @param summary what the examples became (format, examples, rows, tokens, tokens in the loss, truncated,
     *                dropped), for {@code log.json}'s {@code config.data_preparation}; null when there is nothing
     *                to say (text blocks)
     * @param line    the same in one line for people; null with {@code summary}
     */
    record Prepared(TokenDataset rows, ObjectNode summary, String line) {}
}
