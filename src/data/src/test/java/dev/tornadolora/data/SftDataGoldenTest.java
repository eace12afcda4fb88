package dev.tornadolora.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tornadolora.finetune.ExampleRows;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link SftData} equals TRL 1.13's SFTTrainer preprocessing token for token (golden/chat/sft.json from
 * scripts/chat_golden.py): every dataset type (language modeling, prompt-completion, alpaca, conversational,
 * conversational prompt-completion) under llama3, llama3_1, qwen2_5, qwen3, phi3 and gemma3, with truncation
 * (keep_start, keep_end) or none, with assistant-only loss under the training variants, and with bfd packing
 * (rows, position_ids and the padding-free collator's labels). And the assistant masks of
 * {@code return_assistant_tokens_mask=True} for every generation-tagged template (render.json).
 */
class SftDataGoldenTest {
    static final Path GOLDEN = ChatTemplateGoldenTest.GOLDEN;
    static final ObjectMapper JSON = new ObjectMapper();
    static final int VOCAB = 1000;

    @Test
    void preparesAsTrl() throws Exception {
        JsonNode golden = JSON.readTree(GOLDEN.resolve("sft.json").toFile());
        List<String> failures = new ArrayList<>();
        int checked = 0;
        for (JsonNode c : golden.get("cases")) {
            boolean packing = c.get("packing").asBoolean();
            int seqLen = c.get("max_length").isNull() ? 256 : c.get("max_length").asInt();
            SftOptions o = new SftOptions(seqLen, SftOptions.Truncation.parse(c.get("truncation_mode").asText()),
                    packing, c.get("assistant_only_loss").asBoolean(), null, null);
            String name = c.get("data").asText() + " " + c.get("template").asText() + " packing=" + packing
                    + " max_length=" + c.get("max_length") + " " + c.get("truncation_mode").asText()
                    + (o.assistantOnlyLoss() ? " assistant-only" : "");
            checked++;
            ExampleRows rows;
            try {
                rows = SftData.build(GOLDEN.resolve("models").resolve(c.get("template").asText()),
                        GOLDEN.resolve("data").resolve(c.get("data").asText()), o, VOCAB).rows();
            } catch (IllegalArgumentException e) {
                // TRL leaves an empty dataset where every example lost its loss tokens to truncation; we refuse it
                if (!(c.get("rows").isEmpty() && e.getMessage().endsWith("no example left with a token in the loss"))) {
                    failures.add(name + ": " + e);
                }
                continue;
            }
            JsonNode expected = c.get("rows");
            if (rows.size() != expected.size()) {
                failures.add(name + ": " + rows.size() + " rows, TRL " + expected.size());
                continue;
            }
            for (int r = 0; r < rows.size(); r++) {
                JsonNode e = expected.get(r);
                int n = e.get("input_ids").size();
                int[] ex = rows.examples()[r];
                int used = (int) Arrays.stream(ex).filter(x -> x != ExampleRows.PADDING).count();
                String diff = null;
                if (used != n) diff = used + " tokens, TRL " + n;
                else if (!Arrays.equals(Arrays.copyOf(rows.ids()[r], n), ints(e.get("input_ids")))) diff = "input_ids";
                else if (!Arrays.equals(Arrays.copyOf(rows.labelRows()[r], n),
                        ints(e.get(packing ? "collated_labels" : "labels")))) diff = "labels";
                else if (packing && !Arrays.equals(Arrays.copyOf(rows.positions()[r], n), ints(e.get("position_ids")))) {
                    diff = "position_ids";
                } else if (packing && !Arrays.equals(runs(ex, n), ints(e.get("seq_lengths")))) diff = "seq_lengths";
                if (diff != null) {
                    failures.add(name + ", row " + r + ": " + diff + "\n  ours " + Arrays.toString(
                            Arrays.copyOf(rows.ids()[r], n)) + "\n       " + Arrays.toString(Arrays.copyOf(rows.labelRows()[r], n))
                            + "\n  TRL  " + e.get("input_ids") + "\n       " + e.get(packing ? "collated_labels" : "labels"));
                }
            }
        }
        assertTrue(checked >= 60, "cases: " + checked);
        assertTrue(failures.isEmpty(), failures.size() + " of " + checked + " cases differ:\n" + String.join("\n", failures));
    }

    @Test
    void assistantMasksAsTransformers() throws Exception {
        JsonNode golden = JSON.readTree(GOLDEN.resolve("render.json").toFile());
        Map<String, Object> extra = Map.of("date_string", golden.get("date_string").asText());
        int checked = 0;
        var names = golden.get("cases").fieldNames();
        while (names.hasNext()) {
            String name = names.next();
            Path dir = GOLDEN.resolve("models").resolve(name);
            ChatTemplate t = ChatTemplate.load(dir, null);
            try (SftTokenizer tok = new SftTokenizer(dir.resolve("tokenizer.json"), VOCAB)) {
                for (JsonNode c : golden.get("cases").get(name)) {
                    if (!c.has("assistant_masks")) continue;
                    @SuppressWarnings("unchecked")
                    List<Map<String, Object>> conv = JSON.convertValue(
                            golden.get("conversations").get(c.get("conversation").asInt()), List.class);
                    ChatTemplate.Rendered r = t.render(conv, c.get("add_generation_prompt").asBoolean(), extra);
                    SftTokenizer.Tokens ids = tok.encode(name, r.text(), false);
                    String where = name + " conversation " + c.get("conversation") + " gen=" + c.get("add_generation_prompt");
                    assertEquals(Arrays.toString(ints(c.get("input_ids"))), Arrays.toString(ids.ids()), where);
                    assertEquals(Arrays.toString(ints(c.get("assistant_masks"))),
                            Arrays.toString(SftData.assistantMask(r, ids)), where);
                    checked++;
                }
            }
        }
        assertTrue(checked >= 50, "cases: " + checked);
    }

    static int[] ints(JsonNode a) {
        int[] v = new int[a.size()];
        for (int i = 0; i < v.length; i++) v[i] = a.get(i).asInt();
        return v;
    }

    /** The lengths of the runs of equal example ids in the first n positions. */
    static int[] runs(int[] ex, int n) {
        List<Integer> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            if (i == 0 || ex[i] != ex[i - 1]) out.add(1);
            else out.set(out.size() - 1, out.get(out.size() - 1) + 1);
        }
        return out.stream().mapToInt(Integer::intValue).toArray();
    }
}
