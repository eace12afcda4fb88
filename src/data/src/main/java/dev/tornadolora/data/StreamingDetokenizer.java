package dev.tornadolora.data;

import java.util.Arrays;
import java.util.function.Function;

/**
 * Text of generated tokens as they come, for a terminal: each new token yields the text it completes, so that a
 * character whose UTF-8 bytes span several byte-level tokens (or sentencepiece byte-fallback pieces) is printed
 * once, whole, and a piece's leading space ("▁" of sentencepiece, which the decoder strips at the start of a
 * text) is kept. The method of Hugging Face's text-generation-inference: decode the tokens from a prefix offset
 * twice, without and with the new ones, and print the difference unless it ends in U+FFFD (an incomplete
 * character: wait for the next token); the prefix then moves up to what was printed. The pieces together are
 * the decode of all tokens, except that a character still incomplete when generation stops comes out at
 * {@link #finish()} as the decoder renders it (U+FFFD).
 */
public final class StreamingDetokenizer {
    private final Function<int[], String> decode;
    private int[] ids = new int[16];
    private int length, prefixOffset, readOffset;
    private final StringBuilder printed = new StringBuilder();

    /** @param decode the tokenizer's decode of a token sequence (special tokens skipped or not, as wanted) */
    public StreamingDetokenizer(Function<int[], String> decode) {
        this.decode = decode;
    }

    /** Adds a token; returns the text it completes (empty when it waits for the next one). */
    public String add(int id) {
        if (length == ids.length) ids = Arrays.copyOf(ids, 2 * length);
        ids[length++] = id;
        String prefix = decode.apply(Arrays.copyOfRange(ids, prefixOffset, readOffset));
        String text = decode.apply(Arrays.copyOfRange(ids, prefixOffset, length));
        if (text.length() > prefix.length() && !text.endsWith("\uFFFD") && text.startsWith(prefix)) {
            String piece = text.substring(prefix.length());
            prefixOffset = readOffset;
            readOffset = length;
            printed.append(piece);
            return piece;
        }
        return "";
    }

    /** The text not yet returned once generation has stopped: the rest of the decode of all tokens. */
    public String finish() {
        String all = decode.apply(Arrays.copyOf(ids, length));
        String rest = all.startsWith(printed.toString()) ? all.substring(printed.length())
                : decode.apply(Arrays.copyOfRange(ids, readOffset, length));
        printed.append(rest);
        readOffset = prefixOffset = length;
        return rest;
    }
}
