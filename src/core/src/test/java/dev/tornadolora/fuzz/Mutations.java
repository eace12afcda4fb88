package dev.tornadolora.fuzz;

import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Mutations of a safetensors file, as a fuzzer of this format needs them: blind byte edits (bit flips, bytes set,
 * inserted, deleted, the file cut or extended, the length prefix rewritten) and edits that know the layout (a
 * number, string or punctuation token of the JSON header replaced, an entry duplicated), after which the length
 * prefix is fixed so that the input reaches the header's checks instead of failing at the first one.
 * Positions and choices are plain ints taken modulo what the file offers, so jqwik shrinks them toward 0.
 */
final class Mutations {
    private Mutations() {}

    /** One edit of a file. */
    sealed interface Mutation {
        byte[] apply(byte[] file);
    }

    static final List<String> NUMBERS = List.of("0", "1", "-1", "2", "3", "4", "7", "8", "16", "255", "256",
            "65535", "2147483647", "2147483648", "-2147483648", "4294967296", "9223372036854775807",
            "9223372036854775808", "-9223372036854775808", "18446744073709551616", "1e400", "1.5", "-0", "0.0",
            "1E2", "99999999999999999999999999999", "NaN", "null", "\"8\"", "[]", "{}", "[1,2]", "true");
    static final List<String> STRINGS = List.of("F32", "F16", "BF16", "U8", "I8", "I16", "I32", "I64", "F64",
            "BOOL", "U64", "F8_E4M3", "F4", "f32", "", "__metadata__", "weight", "bias", "lora_a.weight",
            "lora_b.weight", "weight.quantized_data", "weight.quantized_scalers", "weight.quantization_factor",
            "weight.scaler_mean", "weight.shape", "block_size", "scaler_block_size", "alpha", "dtype", "shape",
            "data_offsets", "[4, 16]", "[16, 4]", "[0, 0]", "[2147483647, 2]", "64", "0", "-8", "1e9", "NaN", "inf",
            "\u00e9", "\ud83d\ude00", "\\u0000", "\\ud800", "x".repeat(300));
    static final List<String> PUNCTUATION = List.of("{", "}", "[", "]", ",", ":", "\"", "", " ", "{{", "]]", "\\");
    static final List<Long> PREFIXES = List.of(0L, 1L, 2L, 7L, 8L, 255L, 1L << 31, 1L << 32, Long.MAX_VALUE,
            -1L, Long.MIN_VALUE, 100_000_000L, 100_000_001L);

    record FlipBit(int pos, int bit) implements Mutation {
        public byte[] apply(byte[] f) {
            if (f.length == 0) return f;
            byte[] g = f.clone();
            g[Math.floorMod(pos, g.length)] ^= (byte) (1 << (bit & 7));
            return g;
        }
    }

    record SetByte(int pos, int value) implements Mutation {
        private static final int[] INTERESTING = {0, 0xFF, 0x7F, 0x80, '{', '}', '[', ']', '"', ',', ':', '-', '9', ' ', 0xC3, 0xED};
        public byte[] apply(byte[] f) {
            if (f.length == 0) return f;
            byte[] g = f.clone();
            g[Math.floorMod(pos, g.length)] = (byte) INTERESTING[Math.floorMod(value, INTERESTING.length)];
            return g;
        }
    }

    record InsertBytes(int pos, byte[] bytes) implements Mutation {
        public byte[] apply(byte[] f) {
            int p = Math.floorMod(pos, f.length + 1);
            byte[] g = new byte[f.length + bytes.length];
            System.arraycopy(f, 0, g, 0, p);
            System.arraycopy(bytes, 0, g, p, bytes.length);
            System.arraycopy(f, p, g, p + bytes.length, f.length - p);
            return g;
        }

        @Override
        public String toString() {
            return "InsertBytes[pos=" + pos + ", bytes=" + Arrays.toString(bytes) + "]";
        }
    }

    record DeleteRange(int pos, int length) implements Mutation {
        public byte[] apply(byte[] f) {
            if (f.length == 0) return f;
            int p = Math.floorMod(pos, f.length), n = Math.min(f.length - p, Math.floorMod(length, 64) + 1);
            byte[] g = new byte[f.length - n];
            System.arraycopy(f, 0, g, 0, p);
            System.arraycopy(f, p + n, g, p, f.length - p - n);
            return g;
        }
    }

    /** Cuts the file (often mid-header or mid-data) or extends it with zeros. */
    record Resize(int delta) implements Mutation {
        public byte[] apply(byte[] f) {
            return Arrays.copyOf(f, Math.max(0, f.length + delta));
        }
    }

    /** The length prefix rewritten: to an interesting value, or moved by a few bytes. */
    record SetPrefix(int choice, int delta) implements Mutation {
        public byte[] apply(byte[] f) {
            if (f.length < 8) return f;
            byte[] g = f.clone();
            ByteBuffer b = ByteBuffer.wrap(g).order(ByteOrder.LITTLE_ENDIAN);
            int c = Math.floorMod(choice, PREFIXES.size() + 1);
            b.putLong(0, c < PREFIXES.size() ? PREFIXES.get(c) : b.getLong(0) + delta);
            return g;
        }
    }

    /** Replaces the k-th token of the header that {@code pattern} matches, then fixes the length prefix. */
    record ReplaceToken(Kind kind, int k, int choice) implements Mutation {
        enum Kind {
            NUMBER(Pattern.compile("-?\\d+(\\.\\d+)?([eE][+-]?\\d+)?"), NUMBERS),
            STRING(Pattern.compile("\"(?:[^\"\\\\]|\\\\.)*\""), STRINGS),
            PUNCTUATION(Pattern.compile("[{}\\[\\],:]"), Mutations.PUNCTUATION);

            final Pattern pattern;
            final List<String> replacements;

            Kind(Pattern pattern, List<String> replacements) {
                this.pattern = pattern;
                this.replacements = replacements;
            }
        }

        public byte[] apply(byte[] f) {
            return editHeader(f, header -> {
                List<int[]> spans = new ArrayList<>();
                Matcher m = kind.pattern.matcher(header);
                while (m.find()) spans.add(new int[] {m.start(), m.end()});
                if (spans.isEmpty()) return header;
                int[] s = spans.get(Math.floorMod(k, spans.size()));
                String r = kind.replacements.get(Math.floorMod(choice, kind.replacements.size()));
                if (kind == Kind.STRING) r = "\"" + r + "\"";
                return header.substring(0, s[0]) + r + header.substring(s[1]);
            });
        }
    }

    /** Copies the k-th {@code "name": {...}} entry of the header after itself: duplicate names, overlaps. */
    record DuplicateEntry(int k) implements Mutation {
        private static final Pattern ENTRY = Pattern.compile("\"(?:[^\"\\\\]|\\\\.)*\"\\s*:\\s*\\{[^{}]*\\}");

        public byte[] apply(byte[] f) {
            return editHeader(f, header -> {
                List<int[]> spans = new ArrayList<>();
                Matcher m = ENTRY.matcher(header);
                while (m.find()) spans.add(new int[] {m.start(), m.end()});
                if (spans.isEmpty()) return header;
                int[] s = spans.get(Math.floorMod(k, spans.size()));
                return header.substring(0, s[1]) + "," + header.substring(s[0], s[1]) + header.substring(s[1]);
            });
        }
    }

    /** Applies {@code edit} to the header text (read as Latin-1, so any bytes survive) and fixes the prefix. */
    private static byte[] editHeader(byte[] f, java.util.function.UnaryOperator<String> edit) {
        if (f.length < 8) return f;
        long n = ByteBuffer.wrap(f).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        if (n < 0 || n > f.length - 8) return f;
        String header = new String(f, 8, (int) n, StandardCharsets.ISO_8859_1);
        // Replacements are Java strings: their UTF-8 bytes go in as Latin-1 chars, so the file stays UTF-8 valid.
        String edited = edit.apply(header);
        byte[] h = toLatin1Utf8(edited);
        ByteBuffer out = ByteBuffer.allocate(8 + h.length + (f.length - 8 - (int) n)).order(ByteOrder.LITTLE_ENDIAN);
        out.putLong(h.length).put(h).put(f, 8 + (int) n, f.length - 8 - (int) n);
        return out.array();
    }

    /** Chars up to 0xFF are bytes of the original file; others came from a replacement and are UTF-8 encoded. */
    private static byte[] toLatin1Utf8(String s) {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream(s.length());
        for (int i = 0; i < s.length(); ) {
            int cp = s.codePointAt(i);
            if (cp <= 0xFF && !Character.isSurrogate(s.charAt(i))) {
                out.write(cp);
            } else {
                out.writeBytes(new String(Character.toChars(cp)).getBytes(StandardCharsets.UTF_8));
            }
            i += Character.charCount(cp);
        }
        return out.toByteArray();
    }

    static Arbitrary<Mutation> mutation() {
        Arbitrary<Integer> any = Arbitraries.integers().between(0, 1 << 20);
        Arbitrary<Integer> small = Arbitraries.integers().between(-64, 64);
        return Arbitraries.oneOf(
                Combinators.combine(any, Arbitraries.integers().between(0, 7)).as(FlipBit::new),
                Combinators.combine(any, any).as(SetByte::new),
                Combinators.combine(any, Arbitraries.bytes().array(byte[].class).ofMinSize(1).ofMaxSize(16))
                        .as(InsertBytes::new),
                Combinators.combine(any, any).as(DeleteRange::new),
                small.map(Resize::new),
                Combinators.combine(any, small).as(SetPrefix::new),
                Combinators.combine(Arbitraries.of(ReplaceToken.Kind.class), any, any).as(ReplaceToken::new),
                Combinators.combine(Arbitraries.of(ReplaceToken.Kind.class), any, any).as(ReplaceToken::new),
                any.map(DuplicateEntry::new));
    }

    /** A seed with one to four mutations applied in turn (more rarely leave anything to read). */
    static Arbitrary<byte[]> mutatedFiles(List<byte[]> seeds) {
        return Combinators.combine(Arbitraries.of(seeds), mutation().list().ofMinSize(1).ofMaxSize(4))
                .as((seed, ms) -> {
                    byte[] f = seed;
                    for (Mutation m : ms) f = m.apply(f);
                    return f;
                });
    }
}
