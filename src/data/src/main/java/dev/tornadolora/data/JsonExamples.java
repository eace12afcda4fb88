package dev.tornadolora.data;

import dev.tornadolora.finetune.FinetuneJob;
import dev.tornadolora.finetune.TokenFormat;
import dev.tornadolora.io.JsonLines;
import dev.tornadolora.llama.LlamaConfig;
import dev.tornadolora.train.SettingException;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Locale;

/**
 * The {@link TokenFormat} of {@code .jsonl} and {@code .json} example files, what {@code finetune --data} and the
 * {@code data} command read: TRL's dataset types prepared as its {@code SFTTrainer} does ({@link SftData}), or,
 * for plain {@code {"text"}} {@code .jsonl} with every preparation setting at its default (or
 * {@code packing=blocks}), the documents joined with EOS and cut into blocks ({@link JsonlTokens}, this project's
 * reading before the TRL types).
 */
public final class JsonExamples implements TokenFormat {
    /** The provider ServiceLoader makes. */
    public JsonExamples() {}

    @Override
    public boolean reads(Path file) {
        String name = file.getFileName() == null ? "" : file.getFileName().toString().toLowerCase(Locale.ROOT);
        return name.endsWith(".jsonl") || name.endsWith(".json");
    }

    @Override
    public Prepared read(Path file, Path modelDir, LlamaConfig config, int seqLen, FinetuneJob.Preparation p)
            throws IOException {
        if (blocks(file, p)) {
            if (!file.toString().toLowerCase(Locale.ROOT).endsWith(".jsonl")) {
                throw new IllegalArgumentException(file + ": {\"text\"} blocks are read from .jsonl only");
            }
            if (!FinetuneJob.Preparation.DEFAULT.equals(new FinetuneJob.Preparation(null, p.assistantOnlyLoss(),
                    p.completionOnlyLoss(), p.truncationMode(), p.chatTemplate()))) {
                throw new SettingException(file + ": {packing} blocks joins {\"text\"} documents as they are;"
                        + " {assistant_only_loss}, {completion_only_loss}, {truncation_mode} and {chat_template}"
                        + " apply to TRL's preparation ({packing} none or bfd)");
            }
            return new Prepared(JsonlTokens.read(file, modelDir.resolve("tokenizer.json"), config.eosTokenId(), seqLen,
                    config.vocabSize()), null, null);
        }
        SftData.Result r = SftData.build(modelDir, file, SftOptions.of(seqLen, p), config.vocabSize());
        return new Prepared(r.rows(), r.summary().toJson(), r.summary().line());
    }

    /**
     * Whether {@code file} is read as {"text"} blocks: {@code packing=blocks}, or a {@code .jsonl} file with every
     * preparation setting at its default whose first example is not one of the other TRL types (a {"text"}
     * example; a line that is none, or not JSON, the blocks reader refuses as it always did).
     */
    static boolean blocks(Path file, FinetuneJob.Preparation p) {
        if ("blocks".equals(p.packing())) return true;
        if (!p.atDefaults() || !file.toString().toLowerCase(Locale.ROOT).endsWith(".jsonl")) return false;
        SftFormat[] first = {null};
        try {
            JsonLines.read(file, SftExample.MAX_LINE_BYTES, "split the document into several lines", (n, node, where) -> {
                first[0] = SftExample.formatOf(node);
                throw new FirstLine();
            });
        } catch (FirstLine | IllegalArgumentException e) {
            // the first example's format, or a file the blocks reader refuses with the same message
        }
        return first[0] == null || first[0] == SftFormat.LANGUAGE_MODELING;
    }

    /** Ends the reading after the first example. */
    private static final class FirstLine extends RuntimeException {
        FirstLine() {
            super(null, null, false, false);
        }
    }
}
