package dev.tornadolora.data;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tornadolora.finetune.ExampleRows;
import dev.tornadolora.math.CrossEntropy;
import dev.tornadolora.train.SettingException;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * SFT data as TRL 1.13's {@code SFTTrainer} prepares it, into rows that keep the examples apart
 * ({@link ExampleRows}): what {@code ./tornado-lora data} writes and {@code finetune} trains on.
 * <pre>
 *   tokenize   language modeling: tokenizer(text + eos)            (BOS where the tokenizer adds one)
 *              prompt-completion: tokenizer(prompt + completion + eos), completion_mask = 0 over tokenizer(prompt)
 *              conversational:    the chat template rendered and tokenized without special tokens;
 *                                 assistant_masks from its {% generation %} blocks (--assistant-only-loss)
 *              conversational prompt-completion: prompt rendered with add_generation_prompt, then prompt+completion
 *   labels     the id where every applicable mask is 1, else −100 (completion_mask with completion_only_loss)
 *   rows       without packing: truncated to seqLen (keep_start | keep_end), fully masked examples dropped, one
 *              example a row, right-padded (pad id, label −100)
 *              with packing: best-fit-decreasing bins of ≤ seqLen (longer examples cut, keep_start), per batch of
 *              1000 examples as datasets.map does; position ids restart at every example and its first label is
 *              −100 (the padding-free collator), so no example predicts or attends into another
 * </pre>
 */
public final class SftData {
    /** TRL's training variants, swapped in for an original that equals TRL's file exactly. */
    static final List<String> KNOWN_TEMPLATES = List.of("llama3", "qwen2_5", "qwen3", "phi3", "phi3_5", "gemma",
            "gemma3", "qwen3_instruct_2507", "deepseekv3", "cohere", "cohere2");
    /** datasets.map(batched=True)'s default batch: bfd packs within each. */
    static final int PACKING_BATCH = 1000;

    private SftData() {}

    /** What {@link #build} made, for the summary line and the log. */
    public record Summary(String source, SftFormat format, String template, int examples, int rows, int seqLen,
                          long tokens, long lossTokens, int truncated, int dropped, boolean packing) {
        public String line() {
            return String.format(java.util.Locale.ROOT, "%s: %d %s examples -> %d rows of %d (%s); %d tokens, %d in the loss (%.1f%%),"
                            + " %.1f%% padding; %d truncated, %d dropped (no token left in the loss)%s",
                    source, examples, format.name().toLowerCase().replace('_', '-'), rows, seqLen,
                    packing ? "packed" : "padded", tokens, lossTokens, tokens == 0 ? 0 : 100.0 * lossTokens / tokens,
                    100.0 * (1 - (double) tokens / ((long) rows * seqLen)), truncated, dropped,
                    template == null ? "" : "; template " + template);
        }

        /** The summary as log.json's {@code config.data_preparation} entries name it. */
        public ObjectNode toJson() {
            return JsonNodeFactory.instance.objectNode().put("source", source).put("format", format.name().toLowerCase())
                    .put("template", template).put("examples", examples).put("rows", rows).put("tokens", tokens)
                    .put("loss_tokens", lossTokens).put("truncated", truncated).put("dropped", dropped)
                    .put("packed", packing);
        }
    }

    public record Result(ExampleRows rows, Summary summary) {}

    /** One tokenized example: ids and labels (−100 outside the loss), and its index in the file. */
    record Tokenized(String where, int index, int[] ids, int[] labels) {}

    public static Result build(Path modelDir, Path file, SftOptions o, int vocabSize) throws IOException {
        List<SftExample> examples = SftExample.read(file);
        SftFormat format = examples.get(0).format();
        if (o.assistantOnlyLoss() && !format.conversational()) {
            throw new SettingException(file + ": {assistant_only_loss} needs conversational data"
                    + " ({\"messages\"} or prompt/completion message lists), this is " + format.description());
        }
        Map<String, Object> special = ChatTemplate.specialTokens(modelDir);
        ChatTemplate template = format.conversational() ? template(modelDir, o) : null;
        List<Tokenized> tokenized = new ArrayList<>(examples.size());
        try (SftTokenizer tok = new SftTokenizer(modelDir.resolve("tokenizer.json"), vocabSize)) {
            Object eosToken = special.get("eos_token");
            if (!(eosToken instanceof String eos)) {
                throw new IllegalArgumentException(modelDir.resolve("tokenizer_config.json") + ": no eos_token (TRL"
                        + " appends it to text and completions, and pads with it)");
            }
            int padId = tok.idOf("pad_token", special.get("pad_token") instanceof String p ? p : eos);
            boolean completionOnly = o.completionOnlyLoss() == null ? format.promptCompletion() : o.completionOnlyLoss();
            for (int i = 0; i < examples.size(); i++) {
                tokenized.add(tokenize(i, examples.get(i), tok, template, eos, o.assistantOnlyLoss(), completionOnly));
            }
            int[] counts = new int[2];  // truncated, dropped
            ExampleRows rows = o.packing() ? pack(file.toString(), tokenized, o, padId, counts)
                    : pad(file.toString(), tokenized, o, padId, counts);
            long tokens = 0, loss = 0;
            for (int r = 0; r < rows.size(); r++) {
                for (int t = 0; t < o.seqLen(); t++) {
                    if (rows.examples()[r][t] != ExampleRows.PADDING) tokens++;
                    if (t > 0 && rows.labelRows()[r][t] != CrossEntropy.IGNORE_INDEX) loss++;
                }
            }
            Summary s = new Summary(file.toString(), format, template == null ? null : template.source(),
                    examples.size(), rows.size(), o.seqLen(), tokens, loss, counts[0], counts[1], o.packing());
            return new Result(rows, s);
        }
    }

    /** The model's template (or --chat-template), its TRL training variant under assistant-only loss. */
    static ChatTemplate template(Path modelDir, SftOptions o) throws IOException {
        ChatTemplate t = ChatTemplate.load(modelDir, o.chatTemplate());
        if (!o.assistantOnlyLoss() || t.hasGenerationMarkers()) return t;
        for (String name : KNOWN_TEMPLATES) {
            if (t.text().equals(resource(name + ".jinja"))) {
                return t.withText("TRL's " + name + "_training (for " + t.source() + ")", resource(name + "_training.jinja"));
            }
        }
        throw new SettingException(t.source() + ": {assistant_only_loss} needs a chat template with"
                + " {% generation %} markers, and this one is none of TRL's known templates (" + String.join(", ",
                KNOWN_TEMPLATES) + "); give a generation-tagged template as {chat_template}");
    }

    private static String resource(String name) throws IOException {
        try (InputStream in = SftData.class.getResourceAsStream("chat_templates/" + name)) {
            if (in == null) throw new IllegalStateException("missing resource chat_templates/" + name);
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    static Tokenized tokenize(int index, SftExample e, SftTokenizer tok, ChatTemplate template, String eos,
                              boolean assistantOnly, boolean completionOnly) {
        String where = e.where();
        int[] ids, completionMask = null, assistantMask = null;
        switch (e.format()) {
            case LANGUAGE_MODELING -> ids = tok.encode(where, withEos(e.text(), eos), true).ids();
            case PROMPT_COMPLETION, ALPACA -> {
                int[] prompt = tok.encode(where, e.prompt(), true).ids();
                ids = tok.encode(where, e.prompt() + withEos(e.completion(), eos), true).ids();
                completionMask = completionMask(prompt.length, ids.length);
            }
            case CONVERSATIONAL -> {
                ChatTemplate.Rendered r = render(where, template, e.messages(), false, e.templateArgs());
                SftTokenizer.Tokens t = tok.encode(where, r.text(), false);
                ids = t.ids();
                if (assistantOnly) assistantMask = assistantMask(r, t);
            }
            case CONVERSATIONAL_PROMPT_COMPLETION -> {
                ChatTemplate.Rendered p = render(where, template, e.promptMessages(), true, e.templateArgs());
                int[] prompt = tok.encode(where, p.text(), false).ids();
                List<Map<String, Object>> all = new ArrayList<>(e.promptMessages());
                all.addAll(e.completionMessages());
                ChatTemplate.Rendered r = render(where, template, all, false, e.templateArgs());
                SftTokenizer.Tokens t = tok.encode(where, r.text(), false);
                ids = t.ids();
                completionMask = completionMask(prompt.length, ids.length);
                if (assistantOnly) assistantMask = assistantMask(r, t);
            }
            default -> throw new IllegalStateException();
        }
        if (assistantMask != null && Arrays.stream(assistantMask).noneMatch(m -> m == 1)) {
            throw new SettingException(where + ": no assistant tokens to train on under {assistant_only_loss}"
                    + " (no assistant turn, or the template marks none)");
        }
        int[] labels = ids.clone();
        for (int i = 0; i < ids.length; i++) {
            if (completionOnly && completionMask != null && completionMask[i] == 0) labels[i] = CrossEntropy.IGNORE_INDEX;
            if (assistantMask != null && assistantMask[i] == 0) labels[i] = CrossEntropy.IGNORE_INDEX;
        }
        return new Tokenized(where, index, ids, labels);
    }

    private static String withEos(String s, String eos) {
        return s.endsWith(eos) ? s : s + eos;
    }

    private static int[] completionMask(int promptLength, int length) {
        int[] m = new int[length];
        for (int i = Math.min(promptLength, length); i < length; i++) m[i] = 1;
        return m;
    }

    private static ChatTemplate.Rendered render(String where, ChatTemplate template, List<Map<String, Object>> messages,
                                                boolean addGenerationPrompt, Map<String, Object> templateArgs) {
        try {
            return template.render(messages, addGenerationPrompt, templateArgs);
        } catch (IllegalArgumentException ex) {
            throw new IllegalArgumentException(where + ": the chat template refuses it: " + ex.getMessage());
        }
    }

    /**
     * transformers' {@code return_assistant_tokens_mask}: for each generation block [s, e), the tokens from the one
     * holding character s to the one holding character e−1 (to the end when that is none or token 0).
     */
    static int[] assistantMask(ChatTemplate.Rendered r, SftTokenizer.Tokens t) {
        int n = t.ids().length;
        int[] mask = new int[n];
        String text = r.text();
        for (int[] span : r.generationSpans()) {
            if (span[1] <= span[0]) continue;  // an empty block marks no character
            int s = text.codePointCount(0, span[0]), e = text.codePointCount(0, span[1]);
            Integer first = charToToken(t, s), last = charToToken(t, e - 1);
            if (first == null) break;
            int to = last != null && last != 0 ? last + 1 : n;
            for (int k = first; k < to; k++) mask[k] = 1;
        }
        return mask;
    }

    private static Integer charToToken(SftTokenizer.Tokens t, int c) {
        for (int i = 0; i < t.ids().length; i++) {
            if (t.start()[i] <= c && c < t.end()[i]) return i;
        }
        return null;
    }

    // ---------------------------------------------------------------- rows

    /** One example a row: truncated, fully masked ones dropped, right-padded. */
    static ExampleRows pad(String source, List<Tokenized> examples, SftOptions o, int padId, int[] counts) {
        int s = o.seqLen();
        List<int[][]> rows = new ArrayList<>();
        for (Tokenized t : examples) {
            int[] ids = t.ids(), labels = t.labels();
            if (ids.length > s) {
                counts[0]++;
                switch (o.truncation()) {
                    case KEEP_START -> { ids = Arrays.copyOf(ids, s); labels = Arrays.copyOf(labels, s); }
                    case KEEP_END -> {
                        ids = Arrays.copyOfRange(ids, ids.length - s, ids.length);
                        labels = Arrays.copyOfRange(labels, labels.length - s, labels.length);
                    }
                    case ERROR -> throw tooLong(t, s);
                }
            }
            if (Arrays.stream(labels).allMatch(l -> l == CrossEntropy.IGNORE_INDEX)) {
                counts[1]++;
                continue;
            }
            int[] rowIds = new int[s], rowLabels = new int[s], pos = new int[s], ex = new int[s];
            Arrays.fill(rowIds, padId);
            Arrays.fill(rowLabels, CrossEntropy.IGNORE_INDEX);
            Arrays.fill(ex, ExampleRows.PADDING);
            System.arraycopy(ids, 0, rowIds, 0, ids.length);
            System.arraycopy(labels, 0, rowLabels, 0, labels.length);
            for (int i = 0; i < s; i++) pos[i] = i;
            Arrays.fill(ex, 0, ids.length, t.index());
            rows.add(new int[][] {rowIds, rowLabels, pos, ex});
        }
        return rows(source, rows, s);
    }

    private static IllegalArgumentException tooLong(Tokenized t, int s) {
        return new SettingException(t.where() + ": " + t.ids().length + " tokens, more than {seq_len} " + s
                + " ({truncation_mode} error)");
    }

    /** TRL's best-fit-decreasing packing ({@code _pack_bfd}, "truncate"), batch by batch, then the padding-free collator's positions and labels. */
    static ExampleRows pack(String source, List<Tokenized> examples, SftOptions o, int padId, int[] counts) {
        int s = o.seqLen();
        List<int[][]> rows = new ArrayList<>();
        for (int b0 = 0; b0 < examples.size(); b0 += PACKING_BATCH) {
            List<Tokenized> batch = new ArrayList<>();
            for (Tokenized t : examples.subList(b0, Math.min(examples.size(), b0 + PACKING_BATCH))) {
                if (t.ids().length == 0) continue;
                if (t.ids().length > s) {
                    if (o.truncation() == SftOptions.Truncation.ERROR) throw tooLong(t, s);
                    counts[0]++;
                    t = new Tokenized(t.where(), t.index(), Arrays.copyOf(t.ids(), s), Arrays.copyOf(t.labels(), s));
                }
                batch.add(t);
            }
            for (List<Tokenized> bin : bestFitDecreasing(batch, s)) {
                int[] ids = new int[s], labels = new int[s], pos = new int[s], ex = new int[s];
                Arrays.fill(ids, padId);
                Arrays.fill(labels, CrossEntropy.IGNORE_INDEX);
                Arrays.fill(ex, ExampleRows.PADDING);
                int at = 0;
                for (Tokenized t : bin) {
                    for (int i = 0; i < t.ids().length; i++, at++) {
                        ids[at] = t.ids()[i];
                        labels[at] = i == 0 ? CrossEntropy.IGNORE_INDEX : t.labels()[i];
                        pos[at] = i;
                        ex[at] = t.index();
                    }
                }
                rows.add(new int[][] {ids, labels, pos, ex});
            }
        }
        return rows(source, rows, s);
    }

    /**
     * Bins of total length ≤ capacity, as TRL's {@code _pack_bfd}: examples by length, longest first (ties in
     * order), each into the bin whose free space is the smallest that fits it (the first such bin when several
     * have that space), else a new bin; bins in the order they were opened.
     */
    static List<List<Tokenized>> bestFitDecreasing(List<Tokenized> examples, int capacity) {
        Integer[] order = new Integer[examples.size()];
        for (int i = 0; i < order.length; i++) order[i] = i;
        Arrays.sort(order, (a, b) -> Integer.compare(examples.get(b).ids().length, examples.get(a).ids().length));
        List<List<Tokenized>> bins = new ArrayList<>();
        Map<Integer, ArrayDeque<Integer>> bySpace = new HashMap<>();  // free space -> bins with it, in order
        java.util.TreeMap<Integer, Integer> spaces = new java.util.TreeMap<>();  // free space -> count of bins
        for (int k : order) {
            Tokenized t = examples.get(k);
            int len = t.ids().length;
            Integer space = spaces.ceilingKey(len);
            int bin;
            if (space == null) {
                bin = bins.size();
                bins.add(new ArrayList<>());
                space = capacity;
            } else {
                bin = bySpace.get(space).pollFirst();
                if (spaces.merge(space, -1, Integer::sum) == 0) spaces.remove(space);
            }
            bins.get(bin).add(t);
            int left = space - len;
            bySpace.computeIfAbsent(left, x -> new ArrayDeque<>()).addLast(bin);
            if (left > 0) spaces.merge(left, 1, Integer::sum);
        }
        return bins;
    }

    private static ExampleRows rows(String source, List<int[][]> rows, int s) {
        if (rows.isEmpty()) {
            throw new IllegalArgumentException(source + ": no example left with a token in the loss");
        }
        int n = rows.size();
        int[][] ids = new int[n][], labels = new int[n][], pos = new int[n][], ex = new int[n][];
        for (int i = 0; i < n; i++) {
            ids[i] = rows.get(i)[0];
            labels[i] = rows.get(i)[1];
            pos[i] = rows.get(i)[2];
            ex[i] = rows.get(i)[3];
        }
        return new ExampleRows(source, ids, labels, pos, ex);
    }
}
