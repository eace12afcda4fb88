package dev.tornadolora.io;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;

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
        return mapper(maxTokens, StreamReadConstraints.DEFAULT_MAX_STRING_LEN);
    }

    /** The strict mapper with {@code maxTokens} tokens and strings of up to {@code maxStringChars} characters. */
    static ObjectMapper mapper(long maxTokens, int maxStringChars) {
        return new ObjectMapper(JsonFactory.builder()
                .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
                .streamReadConstraints(StreamReadConstraints.builder().maxNestingDepth(MAX_DEPTH)
                        .maxTokenCount(maxTokens).maxStringLength(maxStringChars).build())
                .build())
                .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
    }

    private static final java.util.regex.Pattern DECIMAL =
            java.util.regex.Pattern.compile("-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?");

    /**
     * A number written as text (a metadata value) in JSON's grammar, finite: {@code 16}, {@code 16.0},
     * {@code 1.0E-5}; not {@code 16f}, {@code 0x10p0}, {@code " 16"}, {@code NaN} or {@code 1e400}, which
     * {@link Double#parseDouble} takes.
     *
     * @param text a metadata value
     * @return its value
     * @throws NumberFormatException when it is not a finite decimal number
     */
    public static double decimal(String text) {
        if (text == null || text.length() > 100 || !DECIMAL.matcher(text).matches()) {
            throw new NumberFormatException("not a decimal number: " + text);
        }
        double d = Double.parseDouble(text);
        if (!Double.isFinite(d)) throw new NumberFormatException("not finite: " + text);
        return d;
    }

    /** {@return the strict reading mapper (shared, thread-safe; do not reconfigure it)} */
    public static ObjectMapper reader() {
        return READER;
    }

    /** {@return an indenting mapper for writing files} */
    public static ObjectMapper writer() {
        return WRITER;
    }

    /**
     * Parses a JSON file of at most {@link #MAX_FILE_BYTES} bytes of UTF-8.
     *
     * @param file the file
     * @return its document
     * @throws IllegalArgumentException naming the file when it is missing, unreadable, too large or not strict JSON
     */
    public static JsonNode read(Path file) {
        return read(file, MAX_FILE_BYTES);
    }

    /**
     * As {@link #read(Path)} for a file that may be larger (a log growing with the steps): at most {@code maxBytes}
     * and a token per 2 bytes, so the tree stays within a small multiple of the bound.
     *
     * @param file     the file
     * @param maxBytes the most bytes it may have
     * @return its document
     * @throws IllegalArgumentException naming the file when it is missing, unreadable, too large or not strict JSON
     */
    public static JsonNode read(Path file, long maxBytes) {
        String text = readText(file, maxBytes);
        return maxBytes <= MAX_FILE_BYTES ? parse(file.toString(), text)
                : parse(file.toString(), text, mapper(Math.max(MAX_TOKENS, maxBytes / 2)));
    }

    /**
     * The UTF-8 text of a regular file of at most {@code maxBytes} bytes: the one bounded way the project reads a
     * small file. The type is checked before the file is opened (a FIFO would block the open, {@code /dev/zero} or
     * a folder never end), symbolic links followed; the read itself stops after {@code maxBytes + 1} bytes, so a
     * file that grows or is replaced after the check is still refused, not read whole.
     *
     * @param file     the file
     * @param maxBytes the most bytes it may have
     * @return its text
     * @throws IllegalArgumentException naming the file when it is missing, not a regular file, larger than
     *                                  {@code maxBytes}, unreadable or not UTF-8
     */
    public static String readText(Path file, long maxBytes) {
        try {
            BasicFileAttributes a = regularFile(file);
            long limit = Math.min(maxBytes, Integer.MAX_VALUE - 16L);
            if (a.size() > limit) throw tooLarge(file, a.size() + " bytes", maxBytes);
            byte[] bytes;
            try (InputStream in = Files.newInputStream(file)) {
                bytes = in.readNBytes((int) limit + 1);
            }
            if (bytes.length > limit) throw tooLarge(file, "more than " + limit + " bytes", maxBytes);
            return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes)).toString();
        } catch (NoSuchFileException e) {
            throw new IllegalArgumentException(file + ": no such file");
        } catch (CharacterCodingException e) {
            throw new IllegalArgumentException(file + ": not valid UTF-8");
        } catch (IOException e) {
            throw new IllegalArgumentException(file + ": cannot read: " + IoErrors.describe(e));
        }
    }

    /**
     * {@return the attributes of {@code file}, checked to be a regular file (links followed)} before it is opened:
     * a FIFO blocks the open, a device or a folder never ends.
     *
     * @param file the file
     * @throws IOException              when its attributes cannot be read ({@link NoSuchFileException} when absent)
     * @throws IllegalArgumentException naming the file when it is not a regular file
     */
    public static BasicFileAttributes regularFile(Path file) throws IOException {
        BasicFileAttributes a = Files.readAttributes(file, BasicFileAttributes.class);
        if (!a.isRegularFile()) {
            throw new IllegalArgumentException(file + (a.isDirectory() ? ": is a folder, not a file"
                    : ": is not a regular file (a FIFO, device or socket)"));
        }
        return a;
    }

    private static IllegalArgumentException tooLarge(Path file, String size, long maxBytes) {
        return new IllegalArgumentException(file + ": " + size + ", more than the " + maxBytes
                + " bytes this file may have");
    }

    /**
     * Parses JSON text.
     *
     * @param source names the text in messages
     * @param text   the document
     * @return its root
     * @throws IllegalArgumentException naming the source when the text is empty or not strict JSON
     */
    public static JsonNode parse(String source, String text) {
        return parse(source, text, READER);
    }

    static JsonNode parse(String source, String text, ObjectMapper mapper) {
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

    /**
     * {@return {@code n}, checked to be a JSON object}
     *
     * @param n     a node
     * @param where names it in the message
     * @throws IllegalArgumentException when it is not an object
     */
    public static JsonNode requireObject(JsonNode n, String where) {
        if (n == null || !n.isObject()) throw new IllegalArgumentException(where + ": not a JSON object");
        return n;
    }

    /**
     * {@return field {@code field} of {@code obj}, required to be a JSON integer in [min, max]}
     *
     * @param obj   an object
     * @param field the field's name
     * @param min   the least value accepted
     * @param max   the largest value accepted
     * @param where names the object in messages
     * @throws IllegalArgumentException when it is missing, not an integer, or out of range
     */
    public static long requireLong(JsonNode obj, String field, long min, long max, String where) {
        JsonNode v = obj.get(field);
        if (v == null || v.isNull()) throw new IllegalArgumentException(where + ": missing integer '" + field + "'");
        return exactLong(v, field, min, max, where);
    }

    /**
     * {@return field {@code field} of {@code obj} as an int in [min, max], as {@link #requireLong}}
     *
     * @param obj   an object
     * @param field the field's name
     * @param min   the least value accepted
     * @param max   the largest value accepted
     * @param where names the object in messages
     */
    public static int requireInt(JsonNode obj, String field, int min, int max, String where) {
        return (int) requireLong(obj, field, min, max, where);
    }

    /**
     * {@return field {@code field} as an int in [min, max], or {@code fallback} when absent or null}
     *
     * @param obj      an object
     * @param field    the field's name
     * @param min      the least value accepted
     * @param max      the largest value accepted
     * @param fallback the value when the field is absent or null
     * @param where    names the object in messages
     */
    public static int optionalInt(JsonNode obj, String field, int min, int max, int fallback, String where) {
        JsonNode v = obj.get(field);
        return v == null || v.isNull() ? fallback : (int) exactLong(v, field, min, max, where);
    }

    /**
     * {@return {@code v} as an exact integer in [min, max]: a JSON integer, not a fraction, a string or a wrapped value}
     *
     * @param v     a node
     * @param field its name, for messages
     * @param min   the least value accepted
     * @param max   the largest value accepted
     * @param where names its object in messages (null: the message starts with the field)
     * @throws IllegalArgumentException when it is not an integer or out of range
     */
    public static long exactLong(JsonNode v, String field, long min, long max, String where) {
        String at = where == null ? "" : where + ": ";
        if (!v.isIntegralNumber()) {
            throw new IllegalArgumentException(at + "'" + field + "' must be an integer but is "
                    + SafeText.of(v.toString(), 40));
        }
        if (!v.canConvertToLong() || v.longValue() < min || v.longValue() > max) {
            throw new IllegalArgumentException(at + "'" + field + "' is " + SafeText.of(v.toString(), 40)
                    + ", outside [" + min + ", " + max + "]");
        }
        return v.longValue();
    }

    /**
     * {@return field {@code field} as a finite number}
     *
     * @param obj   an object
     * @param field the field's name
     * @param where names the object in messages
     * @throws IllegalArgumentException when it is missing, not a number (a string such as "abc"), or not finite
     */
    public static double requireDouble(JsonNode obj, String field, String where) {
        JsonNode v = obj.get(field);
        if (v == null || v.isNull()) throw new IllegalArgumentException(where + ": missing number '" + field + "'");
        return finite(v, field, where);
    }

    /**
     * {@return field {@code field} as a finite number, or {@code fallback} when absent or null}
     *
     * @param obj      an object
     * @param field    the field's name
     * @param fallback the value when the field is absent or null
     * @param where    names the object in messages
     */
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

    /**
     * {@return field {@code field} as a string}
     *
     * @param obj   an object
     * @param field the field's name
     * @param where names the object in messages
     * @throws IllegalArgumentException when it is missing or not a string
     */
    public static String requireString(JsonNode obj, String field, String where) {
        JsonNode v = obj.get(field);
        if (v == null || !v.isTextual()) {
            throw new IllegalArgumentException(where + ": '" + field + "' must be a string but is "
                    + (v == null ? "missing" : SafeText.of(v.toString(), 40)));
        }
        return v.textValue();
    }

    /**
     * {@return field {@code field} as a boolean, or {@code fallback} when absent or null}
     *
     * @param obj      an object
     * @param field    the field's name
     * @param fallback the value when the field is absent or null
     * @param where    names the object in messages
     * @throws IllegalArgumentException when it is present and not a boolean
     */
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
