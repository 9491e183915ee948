package io.predcode.core.json;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A small, strict JSON reader and writer (RFC 8259) for model specs, golden cases and metrics.
 * Objects become {@code LinkedHashMap<String, Object>} (key order kept), arrays {@code List<Object>},
 * numbers {@code Double}, and null {@code null}. Errors name the source and the character offset.
 *
 * <p>It reads hostile input (specs, safetensors headers, checkpoint metadata) with bounds: nesting
 * deeper than {@link #MAX_DEPTH} and a key given twice in one object are errors, never a stack
 * overflow or a silent "last one wins".
 */
public final class Json {
    /** Arrays and objects nested deeper than this are refused (a model spec needs 3). */
    public static final int MAX_DEPTH = 64;

    private final String text, source;
    private int pos, depth;

    private Json(String text, String source) { this.text = text; this.source = source; }

    /** Parses a whole document; {@code source} (a file name) goes into error messages. */
    public static Object parse(String text, String source) {
        Json p = new Json(text, source);
        p.skipWhitespace();
        Object v = p.value();
        p.skipWhitespace();
        if (p.pos != text.length()) throw p.error("unexpected trailing content");
        return v;
    }

    private JsonException error(String what) {
        int line = 1, col = 1;
        for (int i = 0; i < Math.min(pos, text.length()); i++) { if (text.charAt(i) == '\n') { line++; col = 1; } else col++; }
        return new JsonException(source + ": invalid JSON at line " + line + ", column " + col + ": " + what);
    }

    private void skipWhitespace() {
        while (pos < text.length()) {
            char c = text.charAt(pos);
            if (c == ' ' || c == '\n' || c == '\r' || c == '\t') pos++; else break;
        }
    }

    private Object value() {
        if (pos >= text.length()) throw error("unexpected end of input");
        char c = text.charAt(pos);
        switch (c) {
            case '{': return nested(true);
            case '[': return nested(false);
            case '"': return string();
            case 't': literal("true"); return Boolean.TRUE;
            case 'f': literal("false"); return Boolean.FALSE;
            case 'n': literal("null"); return null;
            default:
                if (c == '-' || (c >= '0' && c <= '9')) return number();
                throw error("unexpected character '" + c + "'");
        }
    }

    private Object nested(boolean object) {
        if (++depth > MAX_DEPTH) throw error("nested deeper than " + MAX_DEPTH + " levels");
        Object v = object ? object() : array();
        depth--;
        return v;
    }

    private void literal(String word) {
        if (!text.startsWith(word, pos)) throw error("expected " + word);
        pos += word.length();
    }

    private Map<String, Object> object() {
        Map<String, Object> m = new LinkedHashMap<>();
        pos++;
        skipWhitespace();
        if (pos < text.length() && text.charAt(pos) == '}') { pos++; return m; }
        while (true) {
            skipWhitespace();
            if (pos >= text.length() || text.charAt(pos) != '"') throw error("expected a string key");
            String key = string();
            skipWhitespace();
            if (pos >= text.length() || text.charAt(pos) != ':') throw error("expected ':' after key \"" + key + "\"");
            pos++;
            skipWhitespace();
            if (m.containsKey(key)) throw error("key \"" + key + "\" given twice");
            m.put(key, value());
            skipWhitespace();
            if (pos >= text.length()) throw error("unterminated object");
            char c = text.charAt(pos++);
            if (c == '}') return m;
            if (c != ',') { pos--; throw error("expected ',' or '}'"); }
        }
    }

    private List<Object> array() {
        List<Object> a = new ArrayList<>();
        pos++;
        skipWhitespace();
        if (pos < text.length() && text.charAt(pos) == ']') { pos++; return a; }
        while (true) {
            skipWhitespace();
            a.add(value());
            skipWhitespace();
            if (pos >= text.length()) throw error("unterminated array");
            char c = text.charAt(pos++);
            if (c == ']') return a;
            if (c != ',') { pos--; throw error("expected ',' or ']'"); }
        }
    }

    private String string() {
        StringBuilder sb = new StringBuilder();
        pos++;
        while (true) {
            if (pos >= text.length()) throw error("unterminated string");
            char c = text.charAt(pos++);
            if (c == '"') return sb.toString();
            if (c == '\\') {
                if (pos >= text.length()) throw error("unterminated escape");
                char e = text.charAt(pos++);
                switch (e) {
                    case '"', '\\', '/' -> sb.append(e);
                    case 'b' -> sb.append('\b');
                    case 'f' -> sb.append('\f');
                    case 'n' -> sb.append('\n');
                    case 'r' -> sb.append('\r');
                    case 't' -> sb.append('\t');
                    case 'u' -> {
                        if (pos + 4 > text.length()) throw error("bad \\u escape");
                        try { sb.append((char) Integer.parseInt(text.substring(pos, pos + 4), 16)); } catch (NumberFormatException ex) { throw error("bad \\u escape"); }
                        pos += 4;
                    }
                    default -> throw error("bad escape '\\" + e + "'");
                }
            } else if (c < 0x20) {
                throw error("control character in string");
            } else sb.append(c);
        }
    }

    private Double number() {
        int start = pos;
        if (text.charAt(pos) == '-') pos++;
        while (pos < text.length() && "0123456789.eE+-".indexOf(text.charAt(pos)) >= 0) pos++;
        String s = text.substring(start, pos);
        try {
            return Double.parseDouble(s);
        } catch (NumberFormatException e) {
            pos = start;
            throw error("bad number '" + s + "'");
        }
    }

    // ------------------------------------------------------------------ writing

    /** Serialises maps, lists, numbers, strings, booleans, null, float[]/double[]/int[] arrays; pretty when indent > 0. */
    public static String write(Object value, int indent) {
        StringBuilder sb = new StringBuilder();
        write(sb, value, indent, 0);
        return sb.toString();
    }

    private static void newline(StringBuilder sb, int indent, int depth) {
        if (indent <= 0) return;
        sb.append('\n');
        sb.append(" ".repeat(indent * depth));
    }

    private static void write(StringBuilder sb, Object v, int indent, int depth) {
        switch (v) {
            case null -> sb.append("null");
            case String s -> quote(sb, s);
            case Boolean b -> sb.append(b);
            case Double d -> number(sb, d);
            case Float f -> number(sb, f.doubleValue());
            case Number n -> sb.append(n.longValue() == n.doubleValue() ? Long.toString(n.longValue()) : Double.toString(n.doubleValue()));
            case float[] a -> { sb.append('['); for (int i = 0; i < a.length; i++) { if (i > 0) sb.append(", "); number(sb, a[i]); } sb.append(']'); }
            case double[] a -> { sb.append('['); for (int i = 0; i < a.length; i++) { if (i > 0) sb.append(", "); number(sb, a[i]); } sb.append(']'); }
            case int[] a -> { sb.append('['); for (int i = 0; i < a.length; i++) { if (i > 0) sb.append(", "); sb.append(a[i]); } sb.append(']'); }
            case Map<?, ?> m -> {
                sb.append('{');
                int i = 0;
                for (Map.Entry<?, ?> e : m.entrySet()) {
                    if (i++ > 0) sb.append(',');
                    newline(sb, indent, depth + 1);
                    quote(sb, String.valueOf(e.getKey()));
                    sb.append(indent > 0 ? ": " : ":");
                    write(sb, e.getValue(), indent, depth + 1);
                }
                if (!m.isEmpty()) newline(sb, indent, depth);
                sb.append('}');
            }
            case List<?> l -> {
                boolean flat = l.stream().allMatch(x -> !(x instanceof Map<?, ?>) && !(x instanceof List<?>));
                sb.append('[');
                for (int i = 0; i < l.size(); i++) {
                    if (i > 0) sb.append(flat ? ", " : ",");
                    if (!flat) newline(sb, indent, depth + 1);
                    write(sb, l.get(i), indent, depth + 1);
                }
                if (!flat && !l.isEmpty()) newline(sb, indent, depth);
                sb.append(']');
            }
            default -> throw new IllegalArgumentException("cannot write " + v.getClass().getName() + " as JSON");
        }
    }

    private static void number(StringBuilder sb, double d) {
        if (Double.isNaN(d) || Double.isInfinite(d)) { sb.append("null"); return; }
        if (d == Math.rint(d) && Math.abs(d) < 1e15) sb.append((long) d);
        else sb.append(d);
    }

    private static void quote(StringBuilder sb, String s) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                default -> { if (c < 0x20) sb.append(String.format("\\u%04x", (int) c)); else sb.append(c); }
            }
        }
        sb.append('"');
    }
}
