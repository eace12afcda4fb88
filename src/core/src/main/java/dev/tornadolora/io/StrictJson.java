package dev.tornadolora.io;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;

import java.io.IOException;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/**
 * JSON read the way every loader here reads it: one document and nothing after it (trailing tokens refused),
 * duplicate keys refused, nesting, token count and file size bounded so that a small file cannot make a large
 * tree; and field accessors that take a value only when it is exactly what is asked for: an integer field must
 * be a JSON integer that fits ({@code 8.7} and {@code 4294967304} are refused for an int, not truncated or
 * wrapped), a string must be a string ({@code "abc"} is not a number), a boolean a boolean. Every refusal is an
 * {@link IllegalArgumentException} naming the source and the field. Writers use {@link #writer()}: keys in
 * insertion order, which callers keep deterministic.
 */
public final class StrictJson {
    /** Files larger than this are refused before they are read. */
    public static final long MAX_FILE_BYTES = 16L << 20;
    /** Deepest nesting accepted. */
    public static final int MAX_DEPTH = 32;
    /** Most tokens in a document (bounds the tree's memory at a few hundred bytes per token). */
    public static final long MAX_TOKENS = 1_000_000;

    private static final ObjectMapper READER = mapper(MAX_TOKENS);
    private static final ObjectMapper WRITER = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private StrictJson() {}

    private static ObjectMapper mapper(long maxTokens) {
        return new ObjectMapper(JsonFactory.builder()
                .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
                .streamReadConstraints(StreamReadConstraints.builder().maxNestingDepth(MAX_DEPTH)
                        .maxTokenCount(maxTokens).build())
                .build())
                .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
    }

    private static final java.util.regex.Pattern DECIMAL =
            java.util.regex.Pattern.compile("-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?");

    /**
     * A number written as text (a metadata value) in JSON's grammar, finite: {@code 16}, {@code 16.0},
     * {@code 1.0E-5}; not {@code 16f}, {@code 0x10p0}, {@code " 16"}, {@code NaN} or {@code 1e400}, which
     * {@link Double#parseDouble} takes.
     */
    public static double decimal(String text) {
        if (text == null || text.length() > 100 || !DECIMAL.matcher(text).matches()) {
            throw new NumberFormatException("not a decimal number: " + text);
        }
        double d = Double.parseDouble(text);
        if (!Double.isFinite(d)) throw new NumberFormatException("not finite: " + text);
        return d;
    }

    /** The strict reading mapper (shared, thread-safe; do not reconfigure it). */
    public static ObjectMapper reader() {
        return READER;
    }

    /** An indenting mapper for writing files. */
    public static ObjectMapper writer() {
        return WRITER;
    }

    /** Parses {@code file} (at most {@link #MAX_FILE_BYTES}, UTF-8); refusals name the file. */
    public static JsonNode read(Path file) {
        return read(file, MAX_FILE_BYTES);
    }

    /**
     * As {@link #read(Path)} for a file that may be larger (a log growing with the steps): at most {@code maxBytes}
     * and a token per 2 bytes, so the tree stays within a small multiple of the bound.
     */
    public static JsonNode read(Path file, long maxBytes) {
        if (Files.exists(file) && !Files.isRegularFile(file)) {
            throw new IllegalArgumentException(file + ": is not a regular file");
        }
        try {
            long size = Files.size(file);
            if (size > maxBytes || size > Integer.MAX_VALUE - 8) {
                throw new IllegalArgumentException(file + ": " + size + " bytes, more than the " + maxBytes
                        + " this JSON file may have");
            }
            byte[] bytes = Files.readAllBytes(file);
            String text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes)).toString();
            return maxBytes <= MAX_FILE_BYTES ? parse(file.toString(), text)
                    : parse(file.toString(), text, mapper(Math.max(MAX_TOKENS, maxBytes / 2)));
        } catch (NoSuchFileException e) {
            throw new IllegalArgumentException(file + ": no such file");
        } catch (CharacterCodingException e) {
            throw new IllegalArgumentException(file + ": not valid UTF-8");
        } catch (IOException e) {
            throw new IllegalArgumentException(file + ": cannot read: " + IoErrors.describe(e));
        }
    }

    /** Parses {@code text}; {@code source} names it in messages. An empty document is refused. */
    public static JsonNode parse(String source, String text) {
        return parse(source, text, READER);
    }

    private static JsonNode parse(String source, String text, ObjectMapper mapper) {
        JsonNode n;
        try {
            n = mapper.readTree(text);
        } catch (IOException | RuntimeException e) {
            String m = e.getMessage() == null ? e.toString() : e.getMessage();
            int nl = m.indexOf('\n');
            throw new IllegalArgumentException(source + ": not valid JSON: " + SafeText.of(nl < 0 ? m : m.substring(0, nl)));
        }
        if (n == null || n.isMissingNode()) throw new IllegalArgumentException(source + ": empty JSON document");
        return n;
    }

    /** The object {@code n}, or a refusal saying what {@code what} is. */
    public static JsonNode requireObject(JsonNode n, String where) {
        if (n == null || !n.isObject()) throw new IllegalArgumentException(where + ": not a JSON object");
        return n;
    }

    /** Field {@code field} of {@code obj}, required to be an integer in [min, max]. */
    public static long requireLong(JsonNode obj, String field, long min, long max, String where) {
        JsonNode v = obj.get(field);
        if (v == null || v.isNull()) throw new IllegalArgumentException(where + ": missing integer '" + field + "'");
        return exactLong(v, field, min, max, where);
    }

    /** As {@link #requireLong} for an int field. */
    public static int requireInt(JsonNode obj, String field, int min, int max, String where) {
        return (int) requireLong(obj, field, min, max, where);
    }

    /** Field {@code field} as an int in [min, max], or {@code fallback} when absent or null. */
    public static int optionalInt(JsonNode obj, String field, int min, int max, int fallback, String where) {
        JsonNode v = obj.get(field);
        return v == null || v.isNull() ? fallback : (int) exactLong(v, field, min, max, where);
    }

    /** {@code v} as an exact integer in [min, max]: a JSON integer, not a fraction, a string or a wrapped value. */
    public static long exactLong(JsonNode v, String field, long min, long max, String where) {
        if (!v.isIntegralNumber()) {
            throw new IllegalArgumentException(where + ": '" + field + "' must be an integer but is "
                    + SafeText.of(v.toString(), 40));
        }
        if (!v.canConvertToLong() || v.longValue() < min || v.longValue() > max) {
            throw new IllegalArgumentException(where + ": '" + field + "' is " + SafeText.of(v.toString(), 40)
                    + ", outside [" + min + ", " + max + "]");
        }
        return v.longValue();
    }

    /** Field {@code field} as a finite number. */
    public static double requireDouble(JsonNode obj, String field, String where) {
        JsonNode v = obj.get(field);
        if (v == null || v.isNull()) throw new IllegalArgumentException(where + ": missing number '" + field + "'");
        return finite(v, field, where);
    }

    /** Field {@code field} as a finite number, or {@code fallback} when absent or null. */
    public static double optionalDouble(JsonNode obj, String field, double fallback, String where) {
        JsonNode v = obj.get(field);
        return v == null || v.isNull() ? fallback : finite(v, field, where);
    }

    private static double finite(JsonNode v, String field, String where) {
        if (!v.isNumber()) {
            throw new IllegalArgumentException(where + ": '" + field + "' must be a number but is "
                    + SafeText.of(v.toString(), 40));
        }
        double d = v.doubleValue();
        if (!Double.isFinite(d)) throw new IllegalArgumentException(where + ": '" + field + "' is not finite: " + v);
        return d;
    }

    /** Field {@code field} as a string. */
    public static String requireString(JsonNode obj, String field, String where) {
        JsonNode v = obj.get(field);
        if (v == null || !v.isTextual()) {
            throw new IllegalArgumentException(where + ": '" + field + "' must be a string but is "
                    + (v == null ? "missing" : SafeText.of(v.toString(), 40)));
        }
        return v.textValue();
    }

    /** Field {@code field} as a boolean, or {@code fallback} when absent or null. */
    public static boolean optionalBoolean(JsonNode obj, String field, boolean fallback, String where) {
        JsonNode v = obj.get(field);
        if (v == null || v.isNull()) return fallback;
        if (!v.isBoolean()) {
            throw new IllegalArgumentException(where + ": '" + field + "' must be true or false but is "
                    + SafeText.of(v.toString(), 40));
        }
        return v.booleanValue();
    }
}
