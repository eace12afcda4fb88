package dev.tornadolora.data;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Streaming text of real tokenizers: the chat golden one (byte-level BPE) and a Llama-2-style one (sentencepiece
 * "▁" spaces stripped at the start of a decode, byte-fallback pieces; golden/chat/sentencepiece of
 * scripts/generate_golden.py): characters whose UTF-8 bytes span several tokens come out once, whole, spaces are
 * kept, and the pieces add up to the decode of all tokens.
 */
class StreamingDetokenizerTest {
    static final Path TOKENIZER = Path.of("src/test/resources/golden/chat/model/tokenizer.json");

    @Test
    void multiByteCharactersComeOutWhole() throws IOException {
        try (SftTokenizer tok = new SftTokenizer(TOKENIZER, 420)) {
            String text = "caf\u00e9 \u65e5\u672c\u8a9e \uD83D\uDE00 na\u00efve <|eot_id|> end";
            int[] ids = tok.encode("test", text, false).ids();
            StreamingDetokenizer s = new StreamingDetokenizer(x -> tok.decode(x, true));
            StringBuilder all = new StringBuilder();
            List<String> pieces = new ArrayList<>();
            for (int id : ids) {
                String p = s.add(id);
                assertFalse(p.contains("\uFFFD"), "a piece with half a character: " + pieces + " + " + p);
                pieces.add(p);
                all.append(p);
            }
            all.append(s.finish());
            assertEquals(tok.decode(ids, true), all.toString());
            assertTrue(pieces.contains(""), "the text has characters spread over several tokens: " + pieces);
            assertTrue(all.toString().contains("\uD83D\uDE00") && !all.toString().contains("<|eot_id|>"));
        }
    }

    @Test
    void sentencepieceSpacesAndByteFallbackPieces() throws IOException {
        Path dir = Path.of("src/test/resources/golden/chat/sentencepiece");
        var golden = new com.fasterxml.jackson.databind.ObjectMapper().readTree(dir.resolve("decode.json").toFile());
        try (SftTokenizer tok = new SftTokenizer(dir.resolve("tokenizer.json"), golden.get("vocab_size").asInt())) {
            int[] ids = new int[golden.get("ids").size()];
            for (int i = 0; i < ids.length; i++) ids[i] = golden.get("ids").get(i).asInt();
            assertEquals(golden.get("decoded").asText(), tok.decode(ids, true), "tokenizers' decode");
            StreamingDetokenizer s = new StreamingDetokenizer(x -> tok.decode(x, true));
            StringBuilder all = new StringBuilder();
            List<String> pieces = new ArrayList<>();
            for (int id : ids) {
                String p = s.add(id);
                assertFalse(p.contains("\uFFFD"), pieces + " + " + p);
                pieces.add(p);
                all.append(p);
            }
            all.append(s.finish());
            assertEquals(golden.get("decoded").asText(), all.toString(), "pieces " + pieces);
            assertTrue(pieces.stream().anyMatch(p -> p.startsWith(" ")), "a piece keeps its leading space: " + pieces);
            assertTrue(pieces.contains("\uD83D\uDE00"), "the emoji's four byte pieces come out as one: " + pieces);
        }
    }

    @Test
    void anIncompleteCharacterAtTheEndComesOutAtFinish() throws IOException {
        try (SftTokenizer tok = new SftTokenizer(TOKENIZER, 420)) {
            int[] ids = tok.encode("test", "a\uD83D\uDE00", false).ids();
            StreamingDetokenizer s = new StreamingDetokenizer(x -> tok.decode(x, true));
            StringBuilder all = new StringBuilder();
            for (int i = 0; i < ids.length - 1; i++) all.append(s.add(ids[i]));  // the emoji's last byte never comes
            assertEquals("a", all.toString());
            String rest = s.finish();
            assertEquals(tok.decode(java.util.Arrays.copyOf(ids, ids.length - 1), true), "a" + rest);
            assertTrue(rest.contains("\uFFFD"), rest);
        }
    }
}
