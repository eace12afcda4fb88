package dev.tornadolora.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tornadolora.finetune.ExampleRows;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The {@code tools} column of conversational data as TRL passes it to the template (golden/chat/tools.json from
 * scripts/chat_tools_golden.py): qwen2_5, qwen3, llama3_1, llama3_2 and the training variants render tools, tool
 * calls and tool results as transformers' {@code apply_chat_template(messages, tools=...)}, byte for byte; and
 * data/tools.jsonl (tools as a JSON string) is prepared as TRL 1.13's SFTTrainer prepares it, with and without
 * assistant-only loss.
 */
class ToolsGoldenTest {
    static final Path GOLDEN = ChatTemplateGoldenTest.GOLDEN;
    static final ObjectMapper JSON = new ObjectMapper();

    @Test
    @SuppressWarnings("unchecked")
    void toolsRenderAsTransformers() throws Exception {
        JsonNode golden = JSON.readTree(GOLDEN.resolve("tools.json").toFile());
        List<Object> tools = JSON.convertValue(golden.get("tools"), List.class);
        int checked = 0;
        var names = golden.get("render").fieldNames();
        while (names.hasNext()) {
            String name = names.next();
            ChatTemplate t = ChatTemplate.load(GOLDEN.resolve("models").resolve(name), null);
            for (JsonNode c : golden.get("render").get(name)) {
                List<Map<String, Object>> conv = JSON.convertValue(golden.get("conversations").get(c.get("conversation").asInt()), List.class);
                boolean gen = c.get("add_generation_prompt").asBoolean();
                String where = name + " conversation " + c.get("conversation") + " gen=" + gen;
                Map<String, Object> extra = Map.of("tools", tools, "date_string", "26 Jul 2024");
                if (c.has("error")) {
                    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> t.render(conv, gen, extra), where);
                    assertEquals(c.get("error").asText(), e.getMessage(), where);
                } else {
                    assertEquals(c.get("text").asText(), t.render(conv, gen, extra).text(), where);
                }
                checked++;
            }
        }
        assertEquals(24, checked);
    }

    @Test
    void toolsColumnIsPreparedAsTrl() throws Exception {
        JsonNode golden = JSON.readTree(GOLDEN.resolve("tools.json").toFile());
        int checked = 0;
        for (JsonNode c : golden.get("sft")) {
            boolean assistantOnly = c.get("assistant_only_loss").asBoolean();
            SftOptions o = new SftOptions(1024, SftOptions.Truncation.KEEP_START, false, assistantOnly, null, null);
            String name = c.get("template").asText() + (assistantOnly ? " assistant-only" : "");
            ExampleRows rows = SftData.build(GOLDEN.resolve("models").resolve(c.get("template").asText()),
                    GOLDEN.resolve("data/tools.jsonl"), o, SftDataGoldenTest.VOCAB).rows();
            assertEquals(c.get("rows").size(), rows.size(), name);
            for (int r = 0; r < rows.size(); r++) {
                JsonNode e = c.get("rows").get(r);
                int n = e.get("input_ids").size();
                assertTrue(rows.examples()[r][n - 1] != ExampleRows.PADDING && rows.examples()[r][n] == ExampleRows.PADDING,
                        name + " row " + r + ": " + n + " tokens");
                assertEquals(Arrays.toString(SftDataGoldenTest.ints(e.get("input_ids"))),
                        Arrays.toString(Arrays.copyOf(rows.ids()[r], n)), name + " row " + r);
                assertEquals(Arrays.toString(SftDataGoldenTest.ints(e.get("labels"))),
                        Arrays.toString(Arrays.copyOf(rows.labelRows()[r], n)), name + " row " + r);
                checked++;
            }
        }
        assertEquals(8, checked);
    }

    @Test
    void badToolsAreOneLine(@TempDir Path tmp) throws Exception {
        String conv = "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"yo\"}], ";
        Path d = tmp.resolve("d.jsonl");
        Files.writeString(d, conv + "\"tools\": \"[{\\\"a\\\": 1\"}\n");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> SftData.build(GOLDEN.resolve("models/qwen2_5"), d, SftOptions.defaults(64), SftDataGoldenTest.VOCAB));
        assertTrue(e.getMessage().startsWith(d + ", line 1: \"tools\": not valid JSON"), e.getMessage());
        Files.writeString(d, conv + "\"tools\": [1, 2]}\n");
        e = assertThrows(IllegalArgumentException.class,
                () -> SftData.build(GOLDEN.resolve("models/qwen2_5"), d, SftOptions.defaults(64), SftDataGoldenTest.VOCAB));
        assertEquals(d + ", line 1: \"tools\" must be a list of JSON schemas (objects), or a string holding one", e.getMessage());
        Files.writeString(d, "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\"}]}\n");
        e = assertThrows(IllegalArgumentException.class,
                () -> SftData.build(GOLDEN.resolve("models/qwen2_5"), d, SftOptions.defaults(64), SftDataGoldenTest.VOCAB));
        assertEquals(d + ", line 1: messages[1] has no string \"content\" (nor \"tool_calls\")", e.getMessage());
    }
}
