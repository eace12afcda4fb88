package dev.tornadolora.data;

import dev.tornadolora.finetune.FinetuneJob;
import dev.tornadolora.train.SettingException;

import java.nio.file.Path;

/**
 * How SFT data becomes rows, with TRL's {@code SFTConfig} names in brackets.
 *
 * @param seqLen             the row length [max_length]: longer examples are truncated, rows are padded to it
 * @param truncation         [truncation_mode] keep_start, keep_end, or error (refuse an example longer than seqLen)
 * @param packing            [packing, packing_strategy "bfd"] best-fit-decreasing packing of examples into rows
 * @param assistantOnlyLoss  [assistant_only_loss] loss on the assistant's tokens only (conversational data)
 * @param completionOnlyLoss [completion_only_loss] null: true for prompt-completion data, as TRL's default
 * @param chatTemplate       a template file overriding the model folder's; null: the model's
 */
public record SftOptions(int seqLen, Truncation truncation, boolean packing, boolean assistantOnlyLoss,
                         Boolean completionOnlyLoss, Path chatTemplate) {
    public enum Truncation {
        KEEP_START, KEEP_END, ERROR;

        public static Truncation parse(String s) {
            return switch (s) {
                case "keep_start" -> KEEP_START;
                case "keep_end" -> KEEP_END;
                case "error" -> ERROR;
                default -> throw new SettingException("{truncation_mode} must be keep_start, keep_end or"
                        + " error, got '" + s + "'");
            };
        }

        public String trlName() {
            return name().toLowerCase();
        }
    }

    public SftOptions {
        if (seqLen < 2) throw new SettingException("{seq_len} must be >= 2, got " + seqLen);
        if (truncation == null) truncation = Truncation.KEEP_START;
        if (packing && truncation == Truncation.KEEP_END) {
            throw new SettingException("{packing} bfd truncates as TRL's bfd packing does (keep_start);"
                    + " {truncation_mode} keep_end applies without packing");
        }
    }

    /** A job's preparation ({@code packing} none or bfd) with rows of {@code seqLen}. */
    public static SftOptions of(int seqLen, FinetuneJob.Preparation p) {
        return new SftOptions(seqLen, p.truncationMode() == null ? Truncation.KEEP_START : Truncation.parse(p.truncationMode()),
                "bfd".equals(p.packing()), p.assistantOnlyLoss(), p.completionOnlyLoss(), p.chatTemplate());
    }

    public static SftOptions defaults(int seqLen) {
        return new SftOptions(seqLen, Truncation.KEEP_START, false, false, null, null);
    }
}
