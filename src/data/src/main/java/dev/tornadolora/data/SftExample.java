package dev.tornadolora.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import dev.tornadolora.io.JsonLines;
import dev.tornadolora.io.StrictJson;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * One example of an SFT data file, checked: its place ({@code where}: file and line, or file and array index) and
 * its fields by {@link SftFormat}. Alpaca examples are mapped onto prompt-completion with torchtune's alpaca prompt
 * ({@code AlpacaToMessages}): the instruction, the input when it is not empty, and "### Response:\n".
 */
public record SftExample(String where, SftFormat format, String text, String prompt, String completion,
                         List<Map<String, Object>> messages, List<Map<String, Object>> promptMessages,
                         List<Map<String, Object>> completionMessages, Map<String, Object> templateArgs) {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** The longest .jsonl line (one example) read: the tokenizers library needs ~100 bytes per byte of text. */
    static final int MAX_LINE_BYTES = 8 << 20;
    /** The largest .json array file read. */
    static final long MAX_JSON_BYTES = 256L << 20;
    static final Set<String> ROLES = Set.of("system", "user", "assistant", "tool");

    /**
     * The examples of a {@code .jsonl} file (one JSON object a line, blank lines skipped) or a {@code .json} array.
     * The first example's keys give the format; every example must have it.
     *
     * @throws IllegalArgumentException one line naming the file, the line (or index) and the problem
     */
    public static List<SftExample> read(Path file) throws IOException {
        List<SftExample> out = new ArrayList<>();
        SftFormat[] format = {null};
        if (file.toString().endsWith(".json")) {
            JsonNode root = StrictJson.read(file, MAX_JSON_BYTES);
            if (root == null || !root.isArray()) {
                throw new IllegalArgumentException(file + ": expected a JSON array of examples");
            }
            for (int i = 0; i < root.size(); i++) out.add(parse(file + ", example " + i, root.get(i), format));
        } else {
            JsonLines.read(file, MAX_LINE_BYTES, "split the document into several lines", (n, node, where) -> out.add(parse(where, node, format)));
        }
        if (out.isEmpty()) throw new IllegalArgumentException(file + ": empty (no examples)");
        return out;
    }

    /** The format a JSON object has, by its keys in TRL's order of checks; null when none fits. */
    static SftFormat formatOf(JsonNode n) {
        if (n.has("messages")) return SftFormat.CONVERSATIONAL;
        if (n.has("prompt") && n.has("completion")) {
            return n.get("prompt").isArray() ? SftFormat.CONVERSATIONAL_PROMPT_COMPLETION : SftFormat.PROMPT_COMPLETION;
        }
        if (n.has("text")) return SftFormat.LANGUAGE_MODELING;
        if (n.has("instruction") && n.has("output")) return SftFormat.ALPACA;
        return null;
    }

    private static SftExample parse(String where, JsonNode n, SftFormat[] format) {
        if (n == null || !n.isObject()) throw new IllegalArgumentException(where + ": expected a JSON object");
        SftFormat f = formatOf(n);
        if (f == null) {
            throw new IllegalArgumentException(where + ": no known dataset type: expected \"text\", \"prompt\" and"
                    + " \"completion\", \"messages\", or \"instruction\" and \"output\" (has " + keys(n) + ")");
        }
        if (format[0] == null) format[0] = f;
        else if (format[0] != f) {
            throw new IllegalArgumentException(where + ": a " + f.description() + " example in a "
                    + format[0].description() + " dataset");
        }
        return switch (f) {
            case LANGUAGE_MODELING -> new SftExample(where, f, string(where, n, "text"), null, null, null, null, null,
                    Map.of());
            case PROMPT_COMPLETION -> new SftExample(where, f, null, string(where, n, "prompt"),
                    string(where, n, "completion"), null, null, null, Map.of());
            case ALPACA -> {
                String instruction = string(where, n, "instruction"), output = string(where, n, "output");
                String input = n.has("input") && !n.get("input").isNull() ? string(where, n, "input") : "";
                yield new SftExample(where, f, null, alpacaPrompt(instruction, input), output, null, null, null, Map.of());
            }
            case CONVERSATIONAL -> new SftExample(where, f, null, null, null, messages(where, n, "messages"), null, null,
                    templateArgs(where, n));
            case CONVERSATIONAL_PROMPT_COMPLETION -> new SftExample(where, f, null, null, null, null,
                    messages(where, n, "prompt"), messages(where, n, "completion"), templateArgs(where, n));
        };
    }

    /** torchtune's alpaca prompt ({@code AlpacaToMessages}). */
    static String alpacaPrompt(String instruction, String input) {
        if (!input.isEmpty()) {
            return "Below is an instruction that describes a task, paired with an input that provides further context. "
                    + "Write a response that appropriately completes the request.\n\n"
                    + "### Instruction:\n" + instruction + "\n\n### Input:\n" + input + "\n\n### Response:\n";
        }
        return "Below is an instruction that describes a task. Write a response that appropriately completes the "
                + "request.\n\n### Instruction:\n" + instruction + "\n\n### Response:\n";
    }

    private static String string(String where, JsonNode n, String key) {
        JsonNode v = n.get(key);
        if (v == null || !v.isTextual()) {
            throw new IllegalArgumentException(where + ": \"" + key + "\" must be a string, got "
                    + (v == null ? "nothing" : v.getNodeType().toString().toLowerCase()));
        }
        return v.asText();
    }

    @SuppressWarnings("unchecked")
    private static List<Map<String, Object>> messages(String where, JsonNode n, String key) {
        JsonNode v = n.get(key);
        if (v == null || !v.isArray() || v.isEmpty()) {
            throw new IllegalArgumentException(where + ": \"" + key + "\" must be a non-empty list of messages");
        }
        List<Map<String, Object>> out = new ArrayList<>();
        for (int i = 0; i < v.size(); i++) {
            JsonNode m = v.get(i);
            String at = where + ": " + key + "[" + i + "]";
            if (!m.isObject()) throw new IllegalArgumentException(at + " is not an object {\"role\", \"content\"}");
            if (!m.path("role").isTextual()) throw new IllegalArgumentException(at + " has no string \"role\"");
            String role = m.get("role").asText();
            if (!ROLES.contains(role)) {
                throw new IllegalArgumentException(at + ": unknown role '" + role + "' (expected system, user,"
                        + " assistant or tool)");
            }
            boolean toolCalls = m.path("tool_calls").isArray() && !m.get("tool_calls").isEmpty();
            if (!m.path("content").isTextual() && !(toolCalls && (m.path("content").isMissingNode() || m.path("content").isNull()))) {
                throw new IllegalArgumentException(at + " has no string \"content\"" + (role.equals("assistant")
                        ? " (nor \"tool_calls\")" : ""));
            }
            out.add(JSON.convertValue(m, LinkedHashMap.class));
        }
        return out;
    }

    /**
     * What TRL passes to {@code apply_chat_template} besides the messages: the {@code tools} column (a list of
     * JSON schemas, or a string holding one, which TRL {@code json.loads}) and the {@code chat_template_kwargs}
     * column's entries.
     */
    @SuppressWarnings("unchecked")
    private static Map<String, Object> templateArgs(String where, JsonNode n) {
        Map<String, Object> args = new LinkedHashMap<>();
        JsonNode tools = n.get("tools");
        if (tools != null && tools.isTextual()) {
            tools = StrictJson.parse(where + ": \"tools\"", tools.asText());
        }
        if (tools != null && !tools.isNull()) {
            if (!tools.isArray() || !java.util.stream.StreamSupport.stream(tools.spliterator(), false).allMatch(JsonNode::isObject)) {
                throw new IllegalArgumentException(where + ": \"tools\" must be a list of JSON schemas (objects),"
                        + " or a string holding one");
            }
            args.put("tools", JSON.convertValue(tools, List.class));
        }
        JsonNode kwargs = n.get("chat_template_kwargs");
        if (kwargs != null && !kwargs.isNull()) {
            if (!kwargs.isObject()) {
                throw new IllegalArgumentException(where + ": \"chat_template_kwargs\" must be an object");
            }
            args.putAll(JSON.convertValue(kwargs, LinkedHashMap.class));
        }
        return args;
    }

    private static String keys(JsonNode n) {
        List<String> k = new ArrayList<>();
        n.fieldNames().forEachRemaining(k::add);
        return k.isEmpty() ? "no keys" : String.join(", ", k);
    }
}
