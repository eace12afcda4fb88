package dev.tornadolora.cli;

import dev.tornadolora.data.SftData;
import dev.tornadolora.data.SftExample;
import dev.tornadolora.data.SftFormat;
import dev.tornadolora.data.SftOptions;
import dev.tornadolora.finetune.TokenDataset;
import dev.tornadolora.io.SafeText;
import dev.tornadolora.llama.LlamaConfig;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;

/**
 * The options of instruction and chat data ({@code data} and {@code finetune}), with TRL's SFTConfig names:
 * how .jsonl / .json examples become rows ({@link SftData}).
 */
final class SftDataOptions {
    /** What each read made (train, then eval data), for the log. */
    final java.util.List<SftData.Summary> summaries = new java.util.ArrayList<>();

    @Option(names = "--packing", paramLabel = "none|bfd|blocks", description = {
            "none: one example a row, right-padded (TRL packing=False; default for prompt/completion and chat data);",
            "bfd: TRL's best-fit-decreasing packing, position ids restarting and attention confined per example;",
            "blocks: {\"text\"} documents joined with EOS and cut into --seq-len blocks, attention across"
                    + " documents (the default for {\"text\"} data)"})
    String packing;

    @Option(names = "--assistant-only-loss", description = "loss on the assistant's tokens only (chat data): the"
            + " template's {%% generation %%} blocks; TRL's training variant is swapped in for a known template")
    boolean assistantOnlyLoss;

    @Option(names = "--completion-only-loss", paramLabel = "true|false", arity = "1",
            description = "loss on the completion only (prompt-completion and alpaca data; default true, as TRL)")
    Boolean completionOnlyLoss;

    @Option(names = "--truncation-mode", paramLabel = "M", defaultValue = "keep_start",
            description = "an example longer than --seq-len: keep_start, keep_end (TRL's truncation_mode) or error"
                    + " (default ${DEFAULT-VALUE})")
    String truncationMode;

    @Option(names = "--chat-template", paramLabel = "FILE", description = "a Jinja chat template instead of the"
            + " model folder's (chat_template.jinja or tokenizer_config.json's chat_template)")
    Path chatTemplate;

    /** Whether {@code file} is read as TRL's data types (else: {"text"} blocks, today's packing). */
    boolean trl(Path file) throws IOException {
        if (packing != null && !packing.equals("none") && !packing.equals("bfd") && !packing.equals("blocks")) {
            throw new IllegalArgumentException("--packing must be none, bfd or blocks, got '" + packing + "'");
        }
        if ("blocks".equals(packing)) return false;
        if (packing != null || assistantOnlyLoss || completionOnlyLoss != null || chatTemplate != null) return true;
        return SftExample.read(file).get(0).format() != SftFormat.LANGUAGE_MODELING;
    }

    SftOptions options(int seqLen) {
        return new SftOptions(seqLen, SftOptions.Truncation.parse(truncationMode), "bfd".equals(packing),
                assistantOnlyLoss, completionOnlyLoss, chatTemplate);
    }

    /**
     * The rows of a .jsonl / .json data file: TRL's preprocessing ({@link SftData}, one summary line printed to
     * {@code out}), or for {"text"} data without these options the blocks of {@link JsonlTokens}.
     */
    TokenDataset read(Path file, Path model, LlamaConfig c, int seqLen, PrintWriter out) throws IOException {
        if (!trl(file)) {
            if (!file.toString().endsWith(".jsonl")) {
                throw new IllegalArgumentException(file + ": {\"text\"} blocks are read from .jsonl only");
            }
            return dev.tornadolora.data.JsonlTokens.read(file, model.resolve("tokenizer.json"), c.eosTokenId(), seqLen,
                    c.vocabSize());
        }
        SftData.Result r = SftData.build(model, file, options(seqLen), c.vocabSize());
        summaries.add(r.summary());
        out.println(SafeText.of(r.summary().line(), 2000));
        out.flush();
        return r.rows();
    }

    /** The options and what the data became (examples, rows, tokens, loss tokens, truncated, dropped) into the log's config. */
    void describe(com.fasterxml.jackson.databind.node.ObjectNode c) {
        c.put("packing", packing).put("assistant_only_loss", assistantOnlyLoss)
                .put("completion_only_loss", completionOnlyLoss).put("truncation_mode", truncationMode)
                .put("chat_template", chatTemplate == null ? null : chatTemplate.toString());
        var prepared = c.putArray("data_preparation");
        for (SftData.Summary s : summaries) {
            prepared.addObject().put("source", s.source()).put("format", s.format().name().toLowerCase())
                    .put("template", s.template()).put("examples", s.examples()).put("rows", s.rows())
                    .put("tokens", s.tokens()).put("loss_tokens", s.lossTokens()).put("truncated", s.truncated())
                    .put("dropped", s.dropped()).put("packed", s.packing());
        }
    }
}
