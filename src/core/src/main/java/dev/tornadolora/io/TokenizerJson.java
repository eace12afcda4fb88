package dev.tornadolora.io;

import com.fasterxml.jackson.databind.JsonNode;

import java.nio.file.Path;

/**
 * A Hugging Face {@code tokenizer.json} checked before the native tokenizers library sees it: read through
 * {@link StrictJson} (a regular file of at most {@link #MAX_BYTES}, strict JSON, the path in every message), a
 * {@code model} object, and no randomness: a BPE {@code dropout} (or any model's) above 0 makes tokenizing random,
 * so the same data would give other rows on every run and a resumed run would refuse its own data. What the
 * native library does with the checked text (its regexes, its normalizers) is not checked here; the caller
 * isolates it (see docs/guarantees.md).
 */
public final class TokenizerJson {
    /** Largest tokenizer.json read (the largest public ones are about 35 MB). */
    public static final long MAX_BYTES = 64L << 20;

    private TokenizerJson() {}

    /**
     * Reads and checks a tokenizer.json.
     *
     * @param file the file
     * @return its text, to be handed to the native library as read (not read again from the path)
     * @throws IllegalArgumentException naming the file when it is not a readable, bounded, strict JSON object with
     *                                  a {@code model}, or when it tokenizes at random
     */
    public static String read(Path file) {
        String text = StrictJson.readText(file, MAX_BYTES);
        check(file.toString(), StrictJson.parse(file.toString(), text, StrictJson.mapper(Math.max(StrictJson.MAX_TOKENS,
                MAX_BYTES / 2), (int) MAX_BYTES)));
        return text;
    }

    /**
     * Checks a parsed tokenizer.json.
     *
     * @param source names it in messages
     * @param root   its document
     * @throws IllegalArgumentException naming the source and the field
     */
    public static void check(String source, JsonNode root) {
        StrictJson.requireObject(root, source);
        JsonNode model = root.get("model");
        StrictJson.requireObject(model, source + ": 'model'");
        JsonNode dropout = model.get("dropout");
        if (dropout != null && !dropout.isNull()) {
            if (!dropout.isNumber()) {
                throw new IllegalArgumentException(source + ": model.dropout must be a number or null but is "
                        + SafeText.of(dropout.toString(), 40));
            }
            if (dropout.doubleValue() != 0) {
                throw new IllegalArgumentException(source + ": model.dropout is " + SafeText.of(dropout.toString(), 40)
                        + ": BPE dropout tokenizes the same text differently on every run (other rows each time,"
                        + " and a resumed run would refuse its own data); set \"dropout\": null for training data");
            }
        }
    }
}
