package dev.tornadolora.data;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tornadolora.finetune.TokenDataset;
import dev.tornadolora.finetune.TokenFormat;
import dev.tornadolora.llama.LlamaConfig;
import dev.tornadolora.finetune.TokenPacking;

import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Text data for a fine-tune ({@link TokenFormat} of {@code .jsonl} files): a {@code .jsonl} file with one {@code {"text": "..."}} object per line (blank
 * lines skipped), each text tokenized with the model folder's {@code tokenizer.json} through Hugging Face's
 * tokenizers library (DJL's binding; its native library is in the jar, extracted once to {@code ~/.djl.ai}, so
 * nothing is downloaded), without the tokenizer's own special tokens, then packed by {@link TokenPacking}: the
 * documents joined with the end-of-sequence id ({@code eos_token_id} of config.json) and cut into blocks.
 * A line that is not a JSON object with a string {@code text}, or an id the model's vocabulary does not have,
 * is refused naming the file and line.
 */
public final class JsonlTokens implements TokenFormat {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** The provider ServiceLoader makes. */
    public JsonlTokens() {}

    @Override
    public boolean reads(Path file) {
        return file.getFileName() != null
                && file.getFileName().toString().toLowerCase(java.util.Locale.ROOT).endsWith(".jsonl");
    }

    @Override
    public TokenDataset read(Path file, Path modelDir, LlamaConfig config, int seqLen) throws IOException {
        return read(file, modelDir.resolve("tokenizer.json"), config.eosTokenId(), seqLen, config.vocabSize());
    }

    /**
     * The rows of {@code file}, tokenized with {@code tokenizerJson}, joined with {@code eos} and cut into blocks
     * of {@code seqLen}.
     */
    public static TokenDataset read(Path file, Path tokenizerJson, int eos, int seqLen, int vocabSize) throws IOException {
        if (!Files.isRegularFile(tokenizerJson)) {
            throw new IllegalArgumentException(file + ": .jsonl data needs the model folder's tokenizer.json, but "
                    + tokenizerJson + " does not exist (or give pre-tokenized .safetensors data)");
        }
        List<String> texts = new ArrayList<>();
        List<Integer> lineNumbers = new ArrayList<>();
        try (BufferedReader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            String line;
            int n = 0;
            while ((line = r.readLine()) != null) {
                n++;
                if (line.isBlank()) continue;
                JsonNode node;
                try {
                    node = JSON.readTree(line);
                } catch (JsonProcessingException e) {
                    throw new IllegalArgumentException(file + ", line " + n + ": not JSON ("
                            + e.getOriginalMessage() + ")");
                }
                if (node == null || !node.isObject() || !node.path("text").isTextual()) {
                    throw new IllegalArgumentException(file + ", line " + n + ": expected an object with a string"
                            + " \"text\", got " + abbreviate(line));
                }
                texts.add(node.get("text").asText());
                lineNumbers.add(n);
            }
        } catch (java.nio.charset.MalformedInputException e) {
            throw new IllegalArgumentException(file + ": not UTF-8 text");
        }
        if (texts.isEmpty()) throw new IllegalArgumentException(file + ": empty (no {\"text\": ...} lines)");
        List<int[]> docs = new ArrayList<>(texts.size());
        try (HuggingFaceTokenizer tok = HuggingFaceTokenizer.builder().optTokenizerPath(tokenizerJson)
                .optAddSpecialTokens(false).optTruncation(false).optPadding(false).build()) {
            for (int i = 0; i < texts.size(); i++) {
                Encoding e = tok.encode(texts.get(i));
                long[] ids = e.getIds();
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
        }
        if (eos >= vocabSize) {
            throw new IllegalArgumentException("config.json: eos_token_id " + eos + " is outside the vocabulary [0, "
                    + vocabSize + ")");
        }
        return TokenPacking.pack(file.toString(), docs, eos, seqLen);
    }

    private static String abbreviate(String line) {
        String s = line.length() > 60 ? line.substring(0, 57) + "..." : line;
        StringBuilder b = new StringBuilder("'");  // control characters escaped: the line goes to a terminal
        s.codePoints().forEach(c -> {
            if (Character.isISOControl(c) || c == 0x7f) b.append(String.format("\\u%04x", c));
            else b.appendCodePoint(c);
        });
        return b.append("'").toString();
    }
}
