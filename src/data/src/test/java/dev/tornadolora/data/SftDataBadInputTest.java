package dev.tornadolora.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Bad SFT data is refused with one line naming the file, the line and the problem; nothing is trained on. */
class SftDataBadInputTest {
    static final Path MODELS = ChatTemplateGoldenTest.GOLDEN.resolve("models");

    String error(Path dir, String template, String jsonl, SftOptions o) throws Exception {
        Path f = dir.resolve("d.jsonl");
        Files.writeString(f, jsonl);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> SftData.build(MODELS.resolve(template), f, o, 1000));
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
        return e.getMessage().replace(f.toString(), "d.jsonl");
    }

    @Test
    void badMessages(@TempDir Path tmp) throws Exception {
        SftOptions o = SftOptions.defaults(64);
        assertEquals("d.jsonl, line 2: messages[1] has no string \"role\"", error(tmp, "qwen2_5",
                "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n"
                        + "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"content\": \"x\"}]}\n", o));
        assertEquals("d.jsonl, line 1: messages[0]: unknown role 'bot' (expected system, user, assistant or tool)",
                error(tmp, "qwen2_5", "{\"messages\": [{\"role\": \"bot\", \"content\": \"hi\"}]}\n", o));
        assertEquals("d.jsonl, line 1: messages[0] has no string \"content\"",
                error(tmp, "qwen2_5", "{\"messages\": [{\"role\": \"user\"}]}\n", o));
        assertEquals("d.jsonl, line 2: a prompt-completion {\"prompt\", \"completion\"} example in a conversational"
                        + " {\"messages\"} dataset", error(tmp, "qwen2_5",
                "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n{\"prompt\": \"a\", \"completion\": \"b\"}\n", o));
        assertEquals("d.jsonl, line 1: not valid JSON: Unrecognized token 'x': was expecting (JSON String, Number,"
                + " Array, Object or token 'null', 'true' or 'false')", error(tmp, "qwen2_5", "x\n", o));
    }

    @Test
    void noAssistantTurnUnderAssistantOnlyLoss(@TempDir Path tmp) throws Exception {
        SftOptions o = new SftOptions(64, SftOptions.Truncation.KEEP_START, false, true, null, null);
        assertEquals("d.jsonl, line 1: no assistant tokens to train on under assistant_only_loss (no assistant"
                        + " turn, or the template marks none)",
                error(tmp, "qwen2_5", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n", o));
        assertEquals("d.jsonl: assistant_only_loss needs conversational data ({\"messages\"} or prompt/completion"
                + " message lists), this is language modeling {\"text\"}", error(tmp, "qwen2_5", "{\"text\": \"hi\"}\n", o));
    }

    @Test
    void aTemplateThatCannotBeTaggedIsRefused(@TempDir Path tmp) throws Exception {
        SftOptions o = new SftOptions(64, SftOptions.Truncation.KEEP_START, false, true, null, null);
        String e = error(tmp, "llama3_1", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n", o);
        assertEquals(true, e.contains("assistant_only_loss needs a chat template with {% generation %} markers"), e);
    }

    @Test
    void theTemplateRaising(@TempDir Path tmp) throws Exception {
        assertEquals("d.jsonl, line 1: the chat template refuses it: System role not supported", error(tmp, "gemma",
                "{\"messages\": [{\"role\": \"system\", \"content\": \"s\"}, {\"role\": \"user\", \"content\": \"hi\"}]}\n",
                SftOptions.defaults(64)));
    }

    @Test
    void tooLongUnderTruncationError(@TempDir Path tmp) throws Exception {
        SftOptions o = new SftOptions(8, SftOptions.Truncation.ERROR, false, false, null, null);
        assertEquals("d.jsonl, line 2: 12 tokens, more than seq_len 8 (truncation_mode error)",
                error(tmp, "llama3", "{\"text\": \"hi\"}\n{\"text\": \"The quick brown fox jumps over the lazy dog.\"}\n", o));
    }
}
