package dev.tornadolora.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.el.JinjavaInterpreterResolver;
import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.exptest.ExpTest;
import com.hubspot.jinjava.lib.filter.Filter;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import com.hubspot.jinjava.lib.tag.Tag;
import com.hubspot.jinjava.tree.Node;
import com.hubspot.jinjava.tree.TagNode;
import jinjava.javax.el.CompositeELResolver;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.ZoneId;
import java.time.ZonedDateTime;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * A model's chat template rendered as transformers' {@code apply_chat_template} renders it (Jinja2 with
 * {@code trim_blocks} and {@code lstrip_blocks}, {@code raise_exception}, {@code strftime_now}, Python's
 * {@code tojson}, and the {@code {% generation %}} block that marks the assistant's text), on HubSpot's jinjava
 * with the Python string methods of {@link PythonStrings}. The template comes from {@code --chat-template FILE},
 * else {@code chat_template.jinja}, else {@code chat_template} of {@code tokenizer_config.json} in the model folder;
 * the special-token strings ({@code bos_token}, {@code eos_token}, ...) from {@code tokenizer_config.json}.
 *
 * <p>{@link #render} returns the text and, for a generation-tagged template, the character spans of the
 * assistant's text, from which {@link ChatTokens} derives the {@code assistant_masks} of
 * {@code return_assistant_tokens_mask=True}.
 */
public final class ChatTemplate {
    /** Marks a generation block's edges in jinjava's output; taken out again, their positions kept. */
    private static final char OPEN = '\uE000', CLOSE = '\uE001';
    private static final ObjectMapper JSON = new ObjectMapper();
    /** Python's reversal slice {@code x[::-1]}, which jinjava's expression parser lacks: the reverse filter. */
    private static final Pattern REVERSED = Pattern.compile("(\\w+(?:\\.\\w+)*)\\[::-1\\]");
    /** {@code not x is defined}: Jinja2 reads {@code not (x is defined)}, jinjava {@code (not x) is defined}. */
    private static final Pattern NOT_IS = Pattern.compile(
            "\\bnot\\s+([A-Za-z_][\\w.]*)\\s+is\\s+(not\\s+)?([a-z_]+)(?=\\s*(?:-?%}|\\)|\\band\\b|\\bor\\b))");

    private final String source;
    private final String text;
    private final Map<String, Object> specialTokens;
    private final Jinjava jinjava;

    /** A rendered conversation: the text and the [start, end) character spans of its generation blocks. */
    public record Rendered(String text, List<int[]> generationSpans) {}

    ChatTemplate(String source, String text, Map<String, Object> specialTokens) {
        this.source = source;
        this.text = text;
        this.specialTokens = specialTokens;
        JinjavaConfig config = JinjavaConfig.newBuilder()
                .withTrimBlocks(true).withLstripBlocks(true).withKeepTrailingNewline(true)
                .withLegacyOverrides(LegacyOverrides.newBuilder()
                        .withUseTrimmingForNotesAndExpressions(true)
                        .withUseNaturalOperatorPrecedence(true)
                        .withParseWhitespaceControlStrictly(true)
                        .withKeepNullableLoopValues(true)
                        .withEvaluateMapKeys(true)
                        .build())
                .withElResolver(new CompositeELResolver() {{
                    add(new PythonStrings());
                    add(JinjavaInterpreterResolver.DEFAULT_RESOLVER_READ_ONLY);
                }})
                .withMaxOutputSize(64L << 20)
                .build();
        this.jinjava = new Jinjava(config);
        var g = jinjava.getGlobalContext();
        g.registerTag(new GenerationTag());
        g.registerFilter(new ToJson());
        g.registerExpTest(new IsIterable());
        g.registerFunction(new ELFunctionDefinition("", "raise_exception", ChatTemplate.class, "raiseException",
                Object.class));
        g.registerFunction(new ELFunctionDefinition("", "strftime_now", ChatTemplate.class, "strftimeNow",
                String.class));
    }

    /**
     * The template of {@code modelDir} (or {@code override}) with its special tokens.
     *
     * @throws IllegalArgumentException naming the file when there is no template or a file is unreadable
     */
    public static ChatTemplate load(Path modelDir, Path override) throws IOException {
        Path config = modelDir.resolve("tokenizer_config.json");
        JsonNode cfg = tokenizerConfig(modelDir);
        Map<String, Object> tokens = specialTokens(modelDir);
        if (override != null) {
            if (!Files.isRegularFile(override)) throw new IllegalArgumentException(override + ": no such chat template file");
            return new ChatTemplate(override.toString(), Files.readString(override, StandardCharsets.UTF_8), tokens);
        }
        Path jinja = modelDir.resolve("chat_template.jinja");
        if (Files.isRegularFile(jinja)) {
            return new ChatTemplate(jinja.toString(), Files.readString(jinja, StandardCharsets.UTF_8), tokens);
        }
        if (cfg != null) {
            JsonNode t = cfg.path("chat_template");
            if (t.isTextual()) return new ChatTemplate(config + " chat_template", t.asText(), tokens);
            if (t.isArray()) {  // named templates: [{"name": "default", "template": ...}, ...]
                for (JsonNode e : t) {
                    if ("default".equals(e.path("name").asText()) && e.path("template").isTextual()) {
                        return new ChatTemplate(config + " chat_template 'default'", e.get("template").asText(), tokens);
                    }
                }
            }
        }
        throw new IllegalArgumentException(modelDir + ": no chat template (neither chat_template.jinja nor"
                + " \"chat_template\" in tokenizer_config.json); give one with --chat-template FILE");
    }

    private static JsonNode tokenizerConfig(Path modelDir) throws IOException {
        Path config = modelDir.resolve("tokenizer_config.json");
        if (!Files.isRegularFile(config)) return null;
        try {
            return JSON.readTree(Files.readString(config, StandardCharsets.UTF_8));
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalArgumentException(config + ": not JSON (" + e.getOriginalMessage() + ")");
        }
    }

    /** The special-token strings of {@code tokenizer_config.json} (bos_token, eos_token, ...), as transformers' special_tokens_map. */
    public static Map<String, Object> specialTokens(Path modelDir) throws IOException {
        JsonNode cfg = tokenizerConfig(modelDir);
        Map<String, Object> tokens = new LinkedHashMap<>();
        if (cfg != null) {
            for (String k : List.of("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token",
                    "mask_token")) {
                JsonNode v = cfg.path(k);
                if (v.isTextual()) tokens.put(k, v.asText());
                else if (v.isObject() && v.path("content").isTextual()) tokens.put(k, v.get("content").asText());
            }
        }
        return tokens;
    }

    public static ChatTemplate of(String source, String text, Map<String, Object> specialTokens) {
        return new ChatTemplate(source, text, new LinkedHashMap<>(specialTokens));
    }

    public String source() { return source; }
    public String text() { return text; }
    public Map<String, Object> specialTokens() { return specialTokens; }

    /** This template with another text (a training variant), the same special tokens. */
    public ChatTemplate withText(String source, String text) {
        return new ChatTemplate(source, text, specialTokens);
    }

    /** Whether the template marks the assistant's text with {@code {% generation %}} (transformers' check). */
    public boolean hasGenerationMarkers() {
        return Pattern.compile("\\{%-?\\s*generation\\s*-?%}").matcher(text).find();
    }

    /**
     * Renders {@code messages} as {@code apply_chat_template(messages, add_generation_prompt=...)} with
     * {@code tools=None}; {@code extra} adds template variables (as apply_chat_template's keyword arguments).
     *
     * @throws IllegalArgumentException with the template's own message when it raises or cannot be rendered
     */
    public Rendered render(List<? extends Map<String, ?>> messages, boolean addGenerationPrompt, Map<String, ?> extra) {
        Map<String, Object> ctx = new HashMap<>(specialTokens);
        ctx.put("messages", messages);
        ctx.put("tools", null);
        ctx.put("documents", null);
        ctx.put("add_generation_prompt", addGenerationPrompt);
        if (extra != null) ctx.putAll(extra);
        for (Map<String, ?> m : messages) {
            for (Object v : m.values()) {
                if (v instanceof String s && (s.indexOf(OPEN) >= 0 || s.indexOf(CLOSE) >= 0)) {
                    throw new IllegalArgumentException("a message contains U+E000 or U+E001, which mark the"
                            + " template's generation blocks");
                }
            }
        }
        // Jinja2's keep_trailing_newline=False drops one newline at the end of the source (jinjava: of the output)
        String prepared = text.endsWith("\n") ? text.substring(0, text.length() - 1) : text;
        prepared = REVERSED.matcher(prepared).replaceAll("($1|reverse|list)");
        prepared = NOT_IS.matcher(prepared).replaceAll("not ($1 is $2$3)");
        prepared = parenthesizeKeywordArguments(prepared, "namespace(");
        RenderResult r = jinjava.renderForResult(prepared, ctx);
        for (TemplateError e : r.getErrors()) {
            if (e.getSeverity() == TemplateError.ErrorType.FATAL) {
                Throwable cause = e.getException();
                while (cause != null && !(cause instanceof TemplateRaised)) cause = cause.getCause();
                String msg = cause != null ? cause.getMessage() : e.getMessage();
                throw new IllegalArgumentException(cause != null ? msg : source + ": " + msg
                        + (e.getLineno() > 0 ? " (template line " + e.getLineno() + ")" : ""));
            }
        }
        String out = r.getOutput();
        StringBuilder b = new StringBuilder(out.length());
        List<int[]> spans = new ArrayList<>();
        int open = -1;
        for (int i = 0; i < out.length(); i++) {
            char c = out.charAt(i);
            if (c == OPEN) open = b.length();
            else if (c == CLOSE) spans.add(new int[] {open, b.length()});
            else b.append(c);
        }
        return new Rendered(b.toString(), spans);
    }

    /**
     * {@code f(a=x|length - 1)} → {@code f(a=(x|length - 1))}: jinjava binds a keyword argument tighter than the
     * arithmetic after it, Jinja2 takes the whole expression as the value.
     */
    static String parenthesizeKeywordArguments(String t, String call) {
        StringBuilder b = new StringBuilder();
        int from = 0, at;
        while ((at = t.indexOf(call, from)) >= 0) {
            int open = at + call.length();
            b.append(t, from, open);
            int depth = 1, i = open, argStart = open;
            char quote = 0;
            List<String> args = new ArrayList<>();
            for (; i < t.length() && depth > 0; i++) {
                char c = t.charAt(i);
                if (quote != 0) {
                    if (c == '\\') i++;
                    else if (c == quote) quote = 0;
                } else if (c == '\'' || c == '"') quote = c;
                else if (c == '(' || c == '[' || c == '{') depth++;
                else if (c == ')' || c == ']' || c == '}') depth--;
                if (depth == 1 && quote == 0 && c == ',' || depth == 0) {
                    args.add(t.substring(argStart, i));
                    argStart = i + 1;
                }
            }
            for (int k = 0; k < args.size(); k++) {
                String a = args.get(k);
                var m = Pattern.compile("^(\\s*\\w+\\s*)=(?!=)(.*)$", Pattern.DOTALL).matcher(a);
                b.append(k > 0 ? "," : "").append(m.matches() ? m.group(1) + "=(" + m.group(2) + ")" : a);
            }
            b.append(')');
            from = i;
        }
        return b.append(t.substring(from)).toString();
    }

    // ---------------------------------------------------------------- the template's functions

    /** The exception {@code raise_exception(message)} throws: the template refuses the conversation. */
    static final class TemplateRaised extends RuntimeException {
        TemplateRaised(String message) { super(message); }
    }

    public static Object raiseException(Object message) {
        throw new TemplateRaised(String.valueOf(message));
    }

    /** transformers' {@code strftime_now}: the local time now, Python's strftime directives. */
    public static String strftimeNow(String format) {
        ZonedDateTime now = ZonedDateTime.now(ZoneId.systemDefault());
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < format.length(); i++) {
            char c = format.charAt(i);
            if (c != '%' || i + 1 == format.length()) {
                b.append(c);
                continue;
            }
            char d = format.charAt(++i);
            String p = switch (d) {
                case 'd' -> "dd"; case 'm' -> "MM"; case 'Y' -> "yyyy"; case 'y' -> "yy"; case 'b' -> "MMM";
                case 'B' -> "MMMM"; case 'H' -> "HH"; case 'M' -> "mm"; case 'S' -> "ss"; case 'A' -> "EEEE";
                case 'a' -> "EEE"; case 'j' -> "DDD";
                default -> null;
            };
            if (p == null) b.append('%').append(d);
            else b.append(java.time.format.DateTimeFormatter.ofPattern(p, java.util.Locale.ENGLISH).format(now));
        }
        return b.toString();
    }

    /** {@code {% generation %}...{% endgeneration %}}: renders its body between the two markers. */
    static final class GenerationTag implements Tag {
        @Override public String getName() { return "generation"; }
        @Override public String getEndTagName() { return "endgeneration"; }

        @Override
        public String interpret(TagNode tagNode, JinjavaInterpreter interpreter) {
            StringBuilder b = new StringBuilder().append(OPEN);
            for (Node child : tagNode.getChildren()) b.append(child.render(interpreter).getValue());
            return b.append(CLOSE).toString();
        }
    }

    /** Python's {@code is iterable}: strings too (jinjava's is false for them; llama3_1 tojson's a tool result so). */
    static final class IsIterable implements ExpTest {
        @Override public String getName() { return "iterable"; }

        @Override
        public boolean evaluate(Object var, JinjavaInterpreter interpreter, Object... args) {
            return var instanceof String || var instanceof java.lang.Iterable<?> || var instanceof Map<?, ?>
                    || (var != null && var.getClass().isArray());
        }
    }

    /**
     * transformers' {@code tojson}: {@code json.dumps(x, ensure_ascii=False, indent=indent)}: separators ", " and
     * ": ", or with {@code indent} (llama3_1's tools) one item a line, indented, separated by ",".
     */
    static final class ToJson implements Filter {
        @Override public String getName() { return "tojson"; }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            return filter(var, interpreter, args, Map.of());
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, Object[] args, Map<String, Object> kwargs) {
            Object indent = kwargs.containsKey("indent") ? kwargs.get("indent") : args.length > 0 ? args[0] : null;
            StringBuilder b = new StringBuilder();
            write(var, b, indent == null ? null : " ".repeat(Integer.parseInt(String.valueOf(indent).trim())), "");
            return b.toString();
        }

        /** @param indent one level's indentation, null for none; @param at the current line's */
        private static void write(Object v, StringBuilder b, String indent, String at) {
            if (v == null) b.append("null");
            else if (v instanceof Boolean x) b.append(x ? "true" : "false");
            else if (v instanceof Number n) b.append(n);
            else if (v instanceof Map<?, ?> m) {
                items(b, '{', '}', m.entrySet(), indent, at, (e, inner) -> {
                    string(String.valueOf(e.getKey()), b);
                    b.append(": ");
                    write(e.getValue(), b, indent, inner);
                });
            } else if (v instanceof Iterable<?> it) {
                items(b, '[', ']', it, indent, at, (x, inner) -> write(x, b, indent, inner));
            } else string(String.valueOf(v), b);
        }

        private static <T> void items(StringBuilder b, char open, char close, Iterable<T> items, String indent,
                                      String at, java.util.function.BiConsumer<T, String> item) {
            b.append(open);
            String inner = indent == null ? at : at + indent;
            boolean first = true;
            for (T x : items) {
                if (!first) b.append(indent == null ? ", " : ",");
                if (indent != null) b.append('\n').append(inner);
                first = false;
                item.accept(x, inner);
            }
            if (indent != null && !first) b.append('\n').append(at);
            b.append(close);
        }

        private static void string(String s, StringBuilder b) {
            b.append('"');
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                switch (c) {
                    case '"' -> b.append("\\\"");
                    case '\\' -> b.append("\\\\");
                    case '\n' -> b.append("\\n");
                    case '\r' -> b.append("\\r");
                    case '\t' -> b.append("\\t");
                    case '\b' -> b.append("\\b");
                    case '\f' -> b.append("\\f");
                    default -> {
                        if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
                        else b.append(c);
                    }
                }
            }
            b.append('"');
        }
    }
}
