package dev.tornadolora.data;

import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELResolver;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * The Python {@code str} and {@code dict} methods chat templates call ({@code content.startswith('<think>')},
 * {@code text.split('</think>')[-1].lstrip('\n')}, {@code message.get('x')}, ...), as an EL resolver in front of
 * jinjava's own, which only knows Java's method names. Semantics are Python's: {@code split} without an argument
 * splits on runs of whitespace, {@code strip(chars)} strips any of the characters.
 */
final class PythonStrings extends ELResolver {
    @Override
    public Object invoke(ELContext context, Object base, Object method, Class<?>[] paramTypes, Object[] params) {
        if (!(method instanceof String name)) return null;
        Object[] args = params == null ? new Object[0] : params;
        if (base instanceof CharSequence cs) {
            String s = cs.toString();
            Object r = string(s, name, args);
            if (r != NONE) {
                context.setPropertyResolved(true);
                return r;
            }
        } else if (base instanceof Map<?, ?> m && name.equals("get") && (args.length == 1 || args.length == 2)) {
            context.setPropertyResolved(true);
            Object v = m.get(args[0]);
            return v != null || m.containsKey(args[0]) ? v : (args.length == 2 ? args[1] : null);
        }
        return null;
    }

    private static final Object NONE = new Object();

    private static Object string(String s, String name, Object[] a) {
        switch (name) {
            case "startswith": return a.length == 1 ? s.startsWith(str(a[0])) : NONE;
            case "endswith": return a.length == 1 ? s.endsWith(str(a[0])) : NONE;
            case "strip": return a.length <= 1 ? rstrip(lstrip(s, chars(a)), chars(a)) : NONE;
            case "lstrip": return a.length <= 1 ? lstrip(s, chars(a)) : NONE;
            case "rstrip": return a.length <= 1 ? rstrip(s, chars(a)) : NONE;
            case "upper": return a.length == 0 ? s.toUpperCase(java.util.Locale.ROOT) : NONE;
            case "lower": return a.length == 0 ? s.toLowerCase(java.util.Locale.ROOT) : NONE;
            case "replace": return a.length == 2 ? s.replace(str(a[0]), str(a[1])) : NONE;
            case "split": return a.length <= 1 ? split(s, a.length == 0 || a[0] == null ? null : str(a[0])) : NONE;
            default: return NONE;
        }
    }

    private static String str(Object o) {
        return String.valueOf(o);
    }

    /** The characters to strip; null: whitespace. */
    private static String chars(Object[] a) {
        return a.length == 0 || a[0] == null ? null : str(a[0]);
    }

    private static boolean strips(int c, String chars) {
        return chars == null ? Character.isWhitespace(c) : chars.indexOf(c) >= 0;
    }

    static String lstrip(String s, String chars) {
        int i = 0;
        while (i < s.length() && strips(s.charAt(i), chars)) i++;
        return s.substring(i);
    }

    static String rstrip(String s, String chars) {
        int j = s.length();
        while (j > 0 && strips(s.charAt(j - 1), chars)) j--;
        return s.substring(0, j);
    }

    static List<String> split(String s, String sep) {
        List<String> out = new ArrayList<>();
        if (sep == null) {
            for (String part : s.strip().split("\\s+")) if (!part.isEmpty()) out.add(part);
            return out;
        }
        if (sep.isEmpty()) throw new IllegalArgumentException("empty separator");
        int from = 0, at;
        while ((at = s.indexOf(sep, from)) >= 0) {
            out.add(s.substring(from, at));
            from = at + sep.length();
        }
        out.add(s.substring(from));
        return out;
    }

    @Override public Object getValue(ELContext context, Object base, Object property) { return null; }
    @Override public Class<?> getType(ELContext context, Object base, Object property) { return null; }
    @Override public void setValue(ELContext context, Object base, Object property, Object value) {}
    @Override public boolean isReadOnly(ELContext context, Object base, Object property) { return true; }
    @Override public Iterator<java.beans.FeatureDescriptor> getFeatureDescriptors(ELContext context, Object base) { return null; }
    @Override public Class<?> getCommonPropertyType(ELContext context, Object base) { return null; }
}
