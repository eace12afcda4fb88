package dev.tornadolora.data;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.djl.huggingface.tokenizers.jni.CharSpan;
import dev.tornadolora.io.TokenizerJson;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The model folder's {@code tokenizer.json} through Hugging Face's tokenizers (DJL's binding), as transformers
 * calls it: {@code tokenizer(text)} with the tokenizer's own special tokens (its post-processor, e.g. Llama's BOS)
 * for plain text, and without them for a rendered chat template (which carries its own), with each token's
 * character span so that the template's generation blocks map onto tokens; and {@link #decode} as
 * {@code tokenizer.decode} (generate's text).
 */
public final class SftTokenizer implements AutoCloseable {
    private final Path path;
    private final HuggingFaceTokenizer tokenizer;
    private final int vocabSize;

    /** Ids and, per token, the [start, end) span in code points of the text it came from. */
    public record Tokens(int[] ids, int[] start, int[] end) {}

    public SftTokenizer(Path tokenizerJson, int vocabSize) throws IOException {
        if (!Files.isRegularFile(tokenizerJson)) {
            throw new IllegalArgumentException(tokenizerJson + ": no tokenizer.json in the model folder (text data"
                    + " needs it; or give pre-tokenized .safetensors data)");
        }
        TokenizerJson.read(tokenizerJson);  // strict JSON, bounded, no random BPE dropout: checked before native code
        this.path = tokenizerJson;
        this.vocabSize = vocabSize;
        this.tokenizer = HuggingFaceTokenizer.builder().optTokenizerPath(tokenizerJson)
                .optAddSpecialTokens(true).optTruncation(false).optPadding(false).build();
    }

    public Tokens encode(String where, String text, boolean addSpecialTokens) {
        Encoding e = tokenizer.encode(text, addSpecialTokens, false);
        long[] raw = e.getIds();
        CharSpan[] spans = e.getCharTokenSpans();
        int[] ids = new int[raw.length], start = new int[raw.length], end = new int[raw.length];
        for (int i = 0; i < raw.length; i++) {
            if (raw[i] < 0 || raw[i] >= vocabSize) {
                throw new IllegalArgumentException(where + ": token id " + raw[i] + " of " + path
                        + " is outside the model's vocabulary [0, " + vocabSize + ")");
            }
            ids[i] = (int) raw[i];
            start[i] = spans[i] == null ? -1 : spans[i].getStart();
            end[i] = spans[i] == null ? -1 : spans[i].getEnd();
        }
        return new Tokens(ids, start, end);
    }

    /** {@code tokenizer.decode(ids, skip_special_tokens=skipSpecialTokens)}: the text of ids. */
    public String decode(int[] ids, boolean skipSpecialTokens) {
        long[] raw = new long[ids.length];
        for (int i = 0; i < ids.length; i++) raw[i] = ids[i];
        return tokenizer.decode(raw, skipSpecialTokens);
    }

    /** The id of a special token's text (eos, pad), which must encode to exactly one id. */
    int idOf(String what, String token) {
        int[] ids = encode(path.toString(), token, false).ids();
        if (ids.length != 1) {
            throw new IllegalArgumentException(path + ": the " + what + " '" + token + "' is not one token (encodes to "
                    + ids.length + ")");
        }
        return ids[0];
    }

    @Override
    public void close() {
        tokenizer.close();
    }
}
