package dev.tornadolora.io;

/**
 * Text from a file or the command line made safe to print on a terminal: control characters (C0 such as ESC,
 * BEL, CR and LF, DEL, C1) and the Unicode bidirectional overrides are written as {@code \\uXXXX}, so a hostile
 * tensor name or metadata value can neither move the cursor, rewrite an earlier line nor change the terminal's
 * state. Long text is cut, saying how long it was. Every user-controlled string a command prints goes through
 * {@link #of} (or {@link #quote}); the CLI also passes every error message through it before printing.
 */
public final class SafeText {
    /** Characters kept before the text is cut. */
    public static final int MAX_CHARS = 200;

    private SafeText() {}

    /**
     * {@return {@code text} with unsafe characters escaped, cut after {@link #MAX_CHARS} characters; "null" for null}
     *
     * @param text user-controlled text (a tensor name, a metadata value, a path, a message)
     */
    public static String of(String text) {
        return of(text, MAX_CHARS);
    }

    /**
     * {@return {@code text} escaped as {@link #of(String)}, cut after {@code maxChars} characters}
     *
     * @param text     user-controlled text
     * @param maxChars characters kept before the text is cut (the length is then said)
     */
    public static String of(String text, int maxChars) {
        if (text == null) return "null";
        StringBuilder sb = new StringBuilder(Math.min(text.length(), maxChars) + 16);
        for (int i = 0; i < text.length(); i++) {
            if (i >= maxChars) {
                return sb.append("... (").append(text.length()).append(" characters)").toString();
            }
            char c = text.charAt(i);
            if (unsafe(c)) {
                sb.append(String.format("\\u%04x", (int) c));
            } else {
                sb.append(c);
            }
        }
        return sb.toString();
    }

    /**
     * {@return {@code 'text'}, escaped as {@link #of(String)}: for a name inside a message}
     *
     * @param text user-controlled text
     */
    public static String quote(String text) {
        return "'" + of(text) + "'";
    }

    /**
     * {@return whether printing {@code c} raw could act on the terminal rather than show a character}
     *
     * @param c a character of user-controlled text
     */
    public static boolean unsafe(char c) {
        return c < 0x20 || (c >= 0x7f && c <= 0x9f)
                || (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069) || c == 0x200e || c == 0x200f
                || c == 0x061c;
    }

    /**
     * {@return whether the text has a character {@link #of} would escape}
     *
     * @param text user-controlled text
     */
    public static boolean hasUnsafe(String text) {
        for (int i = 0; i < text.length(); i++) {
            if (unsafe(text.charAt(i))) return true;
        }
        return false;
    }
}
