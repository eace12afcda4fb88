package dev.tornadolora.cli;

import dev.tornadolora.finetune.FinetuneJob;
import picocli.CommandLine.Option;

import java.nio.file.Path;

/**
 * The options of instruction and chat data ({@code data} and {@code finetune}), with TRL's SFTConfig names: how
 * .jsonl / .json examples become rows, as the job's {@link FinetuneJob.Preparation}.
 */
final class SftDataOptions {
    @Option(names = "--packing", paramLabel = "none|bfd|blocks", description = {
            "none: one example a row, right-padded (TRL packing=False; default for prompt/completion and chat data);",
            "bfd: TRL's best-fit-decreasing packing, position ids restarting and attention confined per example;",
            "blocks: {\"text\"} documents joined with EOS and cut into --seq-len blocks, attention across"
                    + " documents (the default for {\"text\"} data without any of these options)"})
    String packing;

    @Option(names = "--assistant-only-loss", description = "loss on the assistant's tokens only (chat data): the"
            + " template's {%% generation %%} blocks; TRL's training variant is swapped in for a known template")
    boolean assistantOnlyLoss;

    @Option(names = "--completion-only-loss", paramLabel = "true|false", arity = "1",
            description = "loss on the completion only (prompt-completion and alpaca data; default true, as TRL)")
    Boolean completionOnlyLoss;

    @Option(names = "--truncation-mode", paramLabel = "M",
            description = "an example longer than --seq-len: keep_start (default), keep_end (TRL's truncation_mode)"
                    + " or error")
    String truncationMode;

    @Option(names = "--chat-template", paramLabel = "FILE", description = "a Jinja chat template instead of the"
            + " model folder's (chat_template.jinja or tokenizer_config.json's chat_template)")
    Path chatTemplate;

    /** The options as the job's preparation. */
    FinetuneJob.Preparation preparation() {
        return new FinetuneJob.Preparation(packing, assistantOnlyLoss, completionOnlyLoss, truncationMode, chatTemplate);
    }
}
