package dev.tornadolora.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * TRL's chat templates (llama3, llama3_1, llama3_2, qwen2_5, qwen3, phi3, gemma, gemma3 and their {@code _training}
 * variants) rendered in Java equal transformers 5.18's {@code apply_chat_template} byte for byte, with and without
 * {@code add_generation_prompt}, and raise where it raises (golden/chat/render.json, scripts/chat_golden.py).
 */
class ChatTemplateGoldenTest {
    static final Path GOLDEN = Path.of("src/test/resources/golden/chat");
    static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void rendersAsTransformers() throws Exception {
        JsonNode golden = JSON.readTree(GOLDEN.resolve("render.json").toFile());
        List<List<Map<String, Object>>> conversations = new ArrayList<>();
        for (JsonNode c : golden.get("conversations")) conversations.add(JSON.convertValue(c, List.class));
        Map<String, Object> extra = Map.of("date_string", golden.get("date_string").asText());
        List<String> failures = new ArrayList<>();
        int checked = 0;
        var names = golden.get("cases").fieldNames();
        while (names.hasNext()) {
            String name = names.next();
            ChatTemplate t = ChatTemplate.load(GOLDEN.resolve("models").resolve(name), null);
            assertEquals(Files.readString(GOLDEN.resolve("templates/" + name + ".jinja")), t.text(), name);
            for (JsonNode c : golden.get("cases").get(name)) {
                var conv = conversations.get(c.get("conversation").asInt());
                boolean gen = c.get("add_generation_prompt").asBoolean();
                String where = name + " conversation " + c.get("conversation").asInt() + " gen=" + gen;
                checked++;
                try {
                    String text = t.render(conv, gen, extra).text();
                    if (c.has("error")) failures.add(where + ": expected the error '" + c.get("error").asText() + "'");
                    else if (!text.equals(c.get("text").asText())) {
                        failures.add(where + ":\n  expected " + JSON.writeValueAsString(c.get("text").asText())
                                + "\n  got      " + JSON.writeValueAsString(text));
                    }
                } catch (IllegalArgumentException e) {
                    if (!c.has("error")) failures.add(where + ": " + e.getMessage());
                    else if (!e.getMessage().equals(c.get("error").asText())) {
                        failures.add(where + ": error '" + e.getMessage() + "', expected '" + c.get("error").asText() + "'");
                    }
                }
            }
        }
        assertTrue(checked >= 140, "cases checked: " + checked);
        assertTrue(failures.isEmpty(), failures.size() + " of " + checked + " differ:\n" + String.join("\n", failures));
    }
}
