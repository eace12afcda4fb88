package dev.tornadolora.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/**
 * A {@code .jsonl} file read the way {@link StrictJson} reads a file: a regular file (checked before it is opened),
 * every non-blank line one strict JSON document (a second value on the line, a duplicate key or a trailing comma
 * refused, not dropped), and every line bounded: a line longer than the caller's limit is refused as soon as the
 * limit is passed, naming the file, the line and the limit, before it is held in memory. Lines end at {@code \n}
 * (a {@code \r} before it is dropped); the text is UTF-8.
 */
public final class JsonLines {
    /** What the caller does with each document. */
    @FunctionalInterface
    public interface Visitor {
        /**
         * @param line     the line's number, from 1
         * @param document its JSON value
         * @param where    names the line in messages ({@code FILE, line N})
         */
        void accept(int line, JsonNode document, String where);
    }

    private JsonLines() {}

    /**
     * Reads every non-blank line of {@code file} as one JSON document.
     *
     * @param file         the file
     * @param maxLineBytes the longest line accepted, in bytes (the caller's memory bound for one document)
     * @param tooLong      what to do about a longer line, for the message ("split the document")
     * @param visitor      receives each document in order
     * @return the number of documents
     * @throws IllegalArgumentException naming the file (and line) when it is missing, not a regular file, not
     *                                  UTF-8, a line is not one JSON document or is longer than {@code maxLineBytes}
     */
    public static int read(Path file, int maxLineBytes, String tooLong, Visitor visitor) {
        ObjectMapper mapper = StrictJson.mapper(Math.max(StrictJson.MAX_TOKENS, maxLineBytes / 2L), maxLineBytes);
        int documents = 0;
        try {
            StrictJson.regularFile(file);
            try (InputStream in = Files.newInputStream(file)) {
                byte[] buf = new byte[1 << 16];
                ByteArrayOutputStream line = new ByteArrayOutputStream();
                int n = 1, len;
                while ((len = in.read(buf)) != -1) {
                    int start = 0;
                    for (int i = 0; i < len; i++) {
                        if (buf[i] != '\n') continue;
                        append(line, buf, start, i - start, maxLineBytes, file, n, tooLong);
                        documents += document(file, n++, line, mapper, visitor);
                        line.reset();
                        start = i + 1;
                    }
                    append(line, buf, start, len - start, maxLineBytes, file, n, tooLong);
                }
                documents += document(file, n, line, mapper, visitor);
            }
            return documents;
        } catch (NoSuchFileException e) {
            throw new IllegalArgumentException(file + ": no such file");
        } catch (IOException e) {
            throw new IllegalArgumentException(file + ": cannot read: " + IoErrors.describe(e));
        }
    }

    private static void append(ByteArrayOutputStream line, byte[] buf, int from, int count, int maxLineBytes, Path file,
                               int n, String tooLong) {
        if ((long) line.size() + count > maxLineBytes) {
            throw new IllegalArgumentException(file + ", line " + n + ": longer than " + maxLineBytes + " bytes ("
                    + tooLong + ")");
        }
        line.write(buf, from, count);
    }

    /** Parses one line; {@return 1 when it held a document, 0 when blank} */
    private static int document(Path file, int n, ByteArrayOutputStream line, ObjectMapper mapper, Visitor visitor) {
        String where = file + ", line " + n;
        String text = utf8(line.toByteArray(), where);
        if (text.endsWith("\r")) text = text.substring(0, text.length() - 1);
        if (text.isBlank()) return 0;
        visitor.accept(n, StrictJson.parse(where, text, mapper), where);
        return 1;
    }

    private static String utf8(byte[] bytes, String where) {
        try {
            return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            throw new IllegalArgumentException(where + ": not valid UTF-8");
        }
    }
}
