package dev.tornadolora.data;

import dev.tornadolora.finetune.TokenDataset;
import dev.tornadolora.finetune.TokenPacking;
import dev.tornadolora.io.JsonLines;
import dev.tornadolora.io.SafeText;
import dev.tornadolora.io.TokenizerJson;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Text blocks for a fine-tune ({@link JsonExamples} reads plain {@code {"text"}} data so): a {@code .jsonl} file with one {@code {"text": "..."}} object per line (blank
 * lines skipped), each text tokenized with the model folder's {@code tokenizer.json} through Hugging Face's
 * tokenizers library (DJL's binding; its native library is in the jar, extracted once to {@code ~/.djl.ai}, so
 * nothing is downloaded), without the tokenizer's own special tokens, then packed by {@link TokenPacking}: the
 * documents joined with the end-of-sequence id ({@code eos_token_id} of config.json) and cut into blocks.
 * A line that is not a JSON object with a string {@code text}, or an id the model's vocabulary does not have,
 * is refused naming the file and line.
 */
public final class JsonlTokens {
    /** The longest .jsonl line (one document) tokenized: the tokenizers library needs ~100 bytes per byte of text. */
    public static final int MAX_LINE_BYTES = 8 << 20;

    private JsonlTokens() {}

    /**
     * The rows of {@code file}, tokenized with {@code tokenizerJson}, joined with {@code eos} and cut into blocks
     * of {@code seqLen}.
     */
    public static TokenDataset read(Path file, Path tokenizerJson, int eos, int seqLen, int vocabSize) throws IOException {
        if (!Files.exists(tokenizerJson)) {
            throw new IllegalArgumentException(file + ": .jsonl data needs the model folder's tokenizer.json, but "
                    + tokenizerJson + " does not exist (or give pre-tokenized .safetensors data)");
        }
        String tokenizer = TokenizerJson.read(tokenizerJson);
        List<String> texts = new ArrayList<>();
        List<Integer> lineNumbers = new ArrayList<>();
        JsonLines.read(file, MAX_LINE_BYTES, "split the document into several lines", (n, node, where) -> {
            if (!node.isObject() || !node.path("text").isTextual()) {
                throw new IllegalArgumentException(where + ": expected an object with a string \"text\", got "
                        + SafeText.of(node.toString(), 60));
            }
            texts.add(node.get("text").asText());
            lineNumbers.add(n);
        });
        if (texts.isEmpty()) throw new IllegalArgumentException(file + ": empty (no {\"text\": ...} lines)");
        List<int[]> docs = new ArrayList<>(texts.size());
        // From the checked text, not the path (the native library reads no file, nor tokenizer_config.json beside
        // it), in a child JVM: the native code's crash on a user's tokenizer must not end this process.
        List<long[]> encoded = IsolatedTokenizer.encode(tokenizerJson, tokenizer, texts,
                i -> file + ", line " + lineNumbers.get(i));
        for (int i = 0; i < texts.size(); i++) {
            long[] ids = encoded.get(i);
            int[] doc = new int[ids.length];
            for (int t = 0; t < ids.length; t++) {
                if (ids[t] < 0 || ids[t] >= vocabSize) {
                    throw new IllegalArgumentException(file + ", line " + lineNumbers.get(i) + ": token id " + ids[t]
                            + " of " + tokenizerJson + " is outside the model's vocabulary [0, " + vocabSize + ")");
                }
                doc[t] = (int) ids[t];
            }
            docs.add(doc);
        }
        if (eos >= vocabSize) {
            throw new IllegalArgumentException("config.json: eos_token_id " + eos + " is outside the vocabulary [0, "
                    + vocabSize + ")");
        }
        return TokenPacking.pack(file.toString(), docs, eos, seqLen);
    }
}
