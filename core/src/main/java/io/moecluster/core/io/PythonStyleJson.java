package io.moecluster.core.io;

import java.math.BigDecimal;
import java.util.List;
import java.util.Map;

/**
 * Serialises small JSON documents exactly as Python's {@code json.dumps(obj, indent=2)} does,
 * which is how transformers writes {@code config.json}: generated files then diff cleanly against
 * real Hugging Face ones (e.g. {@code 1e-05}, not {@code 1.0E-5}).
 *
 * <p>Supports maps (in iteration order), lists, strings, booleans, null, int/long and double.
 */
public final class PythonStyleJson {
    private PythonStyleJson() {}

    public static String pretty(Object value) {
        StringBuilder out = new StringBuilder();
        write(out, value, 0);
        return out.toString();
    }

    private static void write(StringBuilder out, Object v, int depth) {
        switch (v) {
            case null -> out.append("null");
            case Map<?, ?> map -> {
                if (map.isEmpty()) {
                    out.append("{}");
                    return;
                }
                out.append('{');
                boolean first = true;
                for (Map.Entry<?, ?> e : map.entrySet()) {
                    out.append(first ? "" : ",").append('\n').append("  ".repeat(depth + 1));
                    first = false;
                    quote(out, (String) e.getKey());
                    out.append(": ");
                    write(out, e.getValue(), depth + 1);
                }
                out.append('\n').append("  ".repeat(depth)).append('}');
            }
            case List<?> list -> {
                if (list.isEmpty()) {
                    out.append("[]");
                    return;
                }
                out.append('[');
                for (int i = 0; i < list.size(); i++) {
                    out.append(i == 0 ? "" : ",").append('\n').append("  ".repeat(depth + 1));
                    write(out, list.get(i), depth + 1);
                }
                out.append('\n').append("  ".repeat(depth)).append(']');
            }
            case String s -> quote(out, s);
            case Boolean b -> out.append(b ? "true" : "false");
            case Integer i -> out.append(i);
            case Long l -> out.append(l);
            case Double d -> out.append(repr(d));
            default -> throw new IllegalArgumentException("cannot serialise " + v.getClass());
        }
    }

    /**
     * Python's {@code repr(float)}: the shortest round-tripping digits (as Java's
     * {@code Double.toString} also gives), in positional notation when the decimal exponent is in
     * [-4, 16), else scientific with a signed, at least two-digit exponent.
     */
    public static String repr(double d) {
        if (Double.isNaN(d) || Double.isInfinite(d)) {
            throw new IllegalArgumentException("JSON has no " + d);
        }
        if (d == 0) {
            return (1 / d < 0) ? "-0.0" : "0.0";
        }
        BigDecimal bd = new BigDecimal(Double.toString(Math.abs(d))).stripTrailingZeros();
        String digits = bd.unscaledValue().toString();
        int decpt = digits.length() - bd.scale(); // value = 0.<digits> * 10^decpt
        String sign = d < 0 ? "-" : "";
        if (decpt > -4 && decpt <= 16) {
            if (decpt <= 0) {
                return sign + "0." + "0".repeat(-decpt) + digits;
            }
            if (decpt >= digits.length()) {
                return sign + digits + "0".repeat(decpt - digits.length()) + ".0";
            }
            return sign + digits.substring(0, decpt) + "." + digits.substring(decpt);
        }
        int exp = decpt - 1;
        String mantissa = digits.length() == 1 ? digits : digits.charAt(0) + "." + digits.substring(1);
        return sign + mantissa + "e" + (exp < 0 ? "-" : "+") + (Math.abs(exp) < 10 ? "0" : "") + Math.abs(exp);
    }

    /** Appends {@code s} as a JSON string the way Python's {@code json.dumps} (ensure_ascii) does. */
    public static void quote(StringBuilder out, String s) {
        out.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                case '\b' -> out.append("\\b");
                case '\f' -> out.append("\\f");
                default -> {
                    if (c < 0x20 || c > 0x7e) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        out.append('"');
    }
}
