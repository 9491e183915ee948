package io.predcode.core.json;

import java.util.List;
import java.util.Map;

/** Typed access to parsed JSON with errors that name the source, the field path and what was expected. */
public record JsonFields(String source, String path, Map<String, Object> map) {
    /** The fields of a parsed JSON object; {@code source} and {@code path} name it in errors. */
    @SuppressWarnings("unchecked")
    public static JsonFields of(Object parsed, String source, String path) {
        if (!(parsed instanceof Map<?, ?> m)) throw new JsonException(source + ": " + (path.isEmpty() ? "document" : path) + " must be a JSON object");
        return new JsonFields(source, path, (Map<String, Object>) m);
    }

    private String where(String key) { return source + ": field '" + (path.isEmpty() ? key : path + "." + key) + "'"; }

    /** True when the key is present and not null. */
    public boolean has(String key) { return map.containsKey(key) && map.get(key) != null; }

    /** The value of a key that must be present. */
    public Object get(String key) {
        if (!map.containsKey(key)) throw new JsonException(where(key) + " is missing");
        return map.get(key);
    }

    /** A string field. */
    public String string(String key) {
        if (get(key) instanceof String s) return s;
        throw new JsonException(where(key) + " must be a string, got " + describe(map.get(key)));
    }

    /** A number field. */
    public double number(String key) {
        if (get(key) instanceof Double d) return d;
        throw new JsonException(where(key) + " must be a number, got " + describe(map.get(key)));
    }

    /** A whole-number field of at least {@code min}. */
    public int integer(String key, int min) {
        double d = number(key);
        if (d != Math.rint(d) || d < min || d > Integer.MAX_VALUE) throw new JsonException(where(key) + " must be an integer >= " + min + ", got " + d);
        return (int) d;
    }

    /** A boolean field. */
    public boolean bool(String key) {
        if (get(key) instanceof Boolean b) return b;
        throw new JsonException(where(key) + " must be true or false, got " + describe(map.get(key)));
    }

    /** A list field. */
    @SuppressWarnings("unchecked")
    public List<Object> list(String key) {
        if (get(key) instanceof List<?> l) return (List<Object>) l;
        throw new JsonException(where(key) + " must be an array, got " + describe(map.get(key)));
    }

    /** An object field. */
    public JsonFields object(String key) {
        if (get(key) instanceof Map<?, ?>) return of(map.get(key), source, path.isEmpty() ? key : path + "." + key);
        throw new JsonException(where(key) + " must be an object, got " + describe(map.get(key)));
    }

    /** An array of exactly {@code n} integers >= min, e.g. a kernel [kh, kw]. */
    public int[] ints(String key, int n, int min) {
        List<Object> l = list(key);
        if (l.size() != n) throw new JsonException(where(key) + " must have " + n + " entries, got " + l.size());
        int[] out = new int[n];
        for (int i = 0; i < n; i++) {
            if (!(l.get(i) instanceof Double d) || d != Math.rint(d) || d < min)
                throw new JsonException(where(key) + "[" + i + "] must be an integer >= " + min + ", got " + describe(l.get(i)));
            out[i] = (int) (double) d;
        }
        return out;
    }

    /** A JSON value described for an error message. */
    public static String describe(Object v) {
        return switch (v) {
            case null -> "null";
            case String s -> "the string \"" + (s.length() > 40 ? s.substring(0, 40) + "..." : s) + "\"";
            case Double d -> "the number " + d;
            case Boolean b -> b.toString();
            case List<?> l -> "an array of " + l.size();
            case Map<?, ?> m -> "an object";
            default -> v.getClass().getSimpleName();
        };
    }
}
