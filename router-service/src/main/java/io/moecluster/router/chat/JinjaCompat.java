package io.moecluster.router.chat;

import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.lib.filter.Filter;
import io.moecluster.core.io.PythonStyleJson;
import java.beans.FeatureDescriptor;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.time.ZonedDateTime;
import java.time.format.TextStyle;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Predicate;
import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELResolver;

/**
 * What Jinjava needs to render Hugging Face chat templates as Python's Jinja2 does (transformers
 * renders them with Jinja2, where expressions are Python): a source rewrite for the syntax whose
 * meaning differs, Python's string methods, and transformers' {@code tojson}.
 *
 * <ul>
 *   <li>{@link #rewrite}: in Jinja2 {@code not} binds looser than comparisons and tests
 *       ({@code not x is defined} is {@code not (x is defined)}), in Jinjava tighter, so each
 *       unary {@code not} gets its operand parenthesised; {@code x[::-1]} (reversal, which
 *       Jinjava cannot parse) becomes {@code (x|reverse|list)}. Only inside tags, never in text.</li>
 *   <li>{@link PythonStrings}: {@code startswith}, {@code strip(chars)}, {@code split} (Python's:
 *       literal separator, empty pieces kept), {@code title}, ... and {@code s[i]} on strings.</li>
 *   <li>{@link ToJson}: {@code json.dumps(x, ensure_ascii=False)} with Python's separators, and
 *       {@code indent}.</li>
 * </ul>
 */
final class JinjaCompat {
    private JinjaCompat() {
    }

    /** Jinja2's default: one trailing newline of the template source is dropped. */
    static String dropTrailingNewline(String template) {
        if (template.endsWith("\r\n")) {
            return template.substring(0, template.length() - 2);
        }
        return template.endsWith("\n") ? template.substring(0, template.length() - 1) : template;
    }

    /** Rewrites the expressions of every {@code {{ }}} and {@code {% %}} tag (not text, comments or raw blocks). */
    static String rewrite(String template) {
        StringBuilder out = new StringBuilder(template.length() + 32);
        int i = 0;
        int n = template.length();
        while (i < n) {
            int open = template.indexOf('{', i);
            if (open < 0 || open + 1 >= n) {
                out.append(template, i, n);
                break;
            }
            char kind = template.charAt(open + 1);
            if (kind != '{' && kind != '%' && kind != '#') {
                out.append(template, i, open + 1);
                i = open + 1;
                continue;
            }
            out.append(template, i, open);
            if (kind == '%' || kind == '#') {
                lstrip(template, open, out);
            }
            if (kind == '#') {
                int close = template.indexOf("#}", open + 2);
                int end = close < 0 ? n : close + 2;
                out.append(template, open, end);
                i = end;
                continue;
            }
            String closer = kind == '{' ? "}}" : "%}";
            int close = findClose(template, open + 2, closer);
            if (close < 0) {
                out.append(template, open, n); // unterminated: leave it to the parser to report
                break;
            }
            int innerStart = open + 2;
            int innerEnd = close;
            // Whitespace-control markers belong to the delimiters.
            if (innerStart < innerEnd && (template.charAt(innerStart) == '-' || template.charAt(innerStart) == '+')) {
                innerStart++;
            }
            if (innerEnd > innerStart && (template.charAt(innerEnd - 1) == '-' || template.charAt(innerEnd - 1) == '+')) {
                innerEnd--;
            }
            String inner = template.substring(innerStart, innerEnd);
            // "{%+" only turns lstrip_blocks off for its tag, which lstrip() has already honoured.
            String opening = template.substring(open, innerStart).equals("{%+") ? "{%" : template.substring(open, innerStart);
            out.append(opening).append(rewriteExpression(inner)).append(template, innerEnd, close + 2);
            i = close + 2;
            if (kind == '%' && inner.strip().equals("raw")) {
                int endRaw = findEndRaw(template, i);
                out.append(template, i, endRaw);
                i = endRaw;
            }
        }
        return out.toString();
    }

    /**
     * Jinja2's {@code lstrip_blocks}: spaces and tabs between the start of a line and a block or
     * comment tag are dropped, when nothing else precedes the tag on its line (Jinjava's option
     * strips them even after text, so this is done here instead). {@code {%+} keeps them.
     */
    private static void lstrip(String template, int open, StringBuilder out) {
        if (open + 2 < template.length() && template.charAt(open + 1) == '%' && template.charAt(open + 2) == '+') {
            return;
        }
        int lineStart = template.lastIndexOf('\n', open - 1) + 1;
        for (int j = lineStart; j < open; j++) {
            char c = template.charAt(j);
            if (c != ' ' && c != '\t') {
                return;
            }
        }
        out.setLength(out.length() - (open - lineStart));
    }

    private static int findEndRaw(String template, int from) {
        int i = from;
        while (true) {
            int open = template.indexOf("{%", i);
            if (open < 0) {
                return template.length();
            }
            int close = template.indexOf("%}", open + 2);
            if (close < 0) {
                return template.length();
            }
            String inner = template.substring(open + 2, close).replace("-", "").replace("+", "").strip();
            if (inner.equals("endraw")) {
                return open;
            }
            i = close + 2;
        }
    }

    /** Index of {@code closer} ending a tag whose content starts at {@code from}, skipping string literals. */
    private static int findClose(String s, int from, String closer) {
        char quote = 0;
        for (int i = from; i < s.length(); i++) {
            char c = s.charAt(i);
            if (quote != 0) {
                if (c == '\\') {
                    i++;
                } else if (c == quote) {
                    quote = 0;
                }
            } else if (c == '\'' || c == '"') {
                quote = c;
            } else if (s.startsWith(closer, i)) {
                return i;
            }
        }
        return -1;
    }

    private enum Kind { WORD, STRING, SPACE, PUNCT }

    private record Token(Kind kind, String text) {
        boolean is(String s) {
            return kind != Kind.STRING && kind != Kind.SPACE && text.equals(s);
        }
    }

    private static List<Token> tokenize(String s) {
        List<Token> tokens = new ArrayList<>();
        int i = 0;
        while (i < s.length()) {
            char c = s.charAt(i);
            int start = i;
            if (c == '\'' || c == '"') {
                i++;
                while (i < s.length() && s.charAt(i) != c) {
                    i += s.charAt(i) == '\\' ? 2 : 1;
                }
                i = Math.min(s.length(), i + 1);
                tokens.add(new Token(Kind.STRING, s.substring(start, i)));
            } else if (Character.isWhitespace(c)) {
                while (i < s.length() && Character.isWhitespace(s.charAt(i))) {
                    i++;
                }
                tokens.add(new Token(Kind.SPACE, s.substring(start, i)));
            } else if (Character.isLetterOrDigit(c) || c == '_') {
                while (i < s.length() && (Character.isLetterOrDigit(s.charAt(i)) || s.charAt(i) == '_')) {
                    i++;
                }
                tokens.add(new Token(Kind.WORD, s.substring(start, i)));
            } else {
                tokens.add(new Token(Kind.PUNCT, String.valueOf(c)));
                i++;
            }
        }
        return tokens;
    }

    static String rewriteExpression(String expression) {
        List<Token> tokens = reverseSlices(tokenize(expression));
        StringBuilder out = new StringBuilder(expression.length() + 8);
        emit(tokens, 0, tokens.size(), out);
        return out.toString();
    }

    /** {@code X[::-1]} becomes {@code (X|reverse|list)}, X being the primary before the brackets. */
    private static List<Token> reverseSlices(List<Token> tokens) {
        List<Token> out = new ArrayList<>(tokens);
        for (int i = 0; i < out.size(); i++) {
            if (!out.get(i).is("[")) {
                continue;
            }
            int end = matchReverseSlice(out, i);
            if (end < 0) {
                continue;
            }
            int start = primaryStart(out, i);
            if (start < 0) {
                continue;
            }
            List<Token> replaced = new ArrayList<>();
            replaced.add(new Token(Kind.PUNCT, "("));
            replaced.addAll(out.subList(start, i));
            replaced.add(new Token(Kind.PUNCT, "|reverse|list)"));
            List<Token> rest = new ArrayList<>(out.subList(end + 1, out.size()));
            out.subList(start, out.size()).clear();
            out.addAll(replaced);
            i = out.size() - 1;
            out.addAll(rest);
        }
        return out;
    }

    /** If tokens from {@code open} read {@code [::-1]}, the index of its {@code ]}; else -1. */
    private static int matchReverseSlice(List<Token> t, int open) {
        String[] want = {":", ":", "-", "1", "]"};
        int j = open + 1;
        for (String w : want) {
            while (j < t.size() && t.get(j).kind() == Kind.SPACE) {
                j++;
            }
            if (j >= t.size() || !t.get(j).is(w)) {
                return -1;
            }
            j++;
        }
        return j - 1;
    }

    /** Start of the primary expression (name, attribute chain, calls and subscripts) that ends just before {@code end}. */
    private static int primaryStart(List<Token> t, int end) {
        int i = end - 1;
        int start = -1;
        while (i >= 0) {
            Token tok = t.get(i);
            if (tok.is(")") || tok.is("]")) {
                String open = tok.is(")") ? "(" : "[";
                int depth = 0;
                while (i >= 0) {
                    if (t.get(i).is(tok.text())) {
                        depth++;
                    } else if (t.get(i).is(open)) {
                        depth--;
                        if (depth == 0) {
                            break;
                        }
                    }
                    i--;
                }
                if (i < 0) {
                    return -1;
                }
                start = i;
                i--;
                // A parenthesised expression or list literal stands alone; a call or subscript goes on.
                if (i < 0 || !(t.get(i).kind() == Kind.WORD || t.get(i).is(")") || t.get(i).is("]"))) {
                    return start;
                }
            } else if (tok.kind() == Kind.WORD || tok.kind() == Kind.STRING) {
                start = i;
                i--;
                if (i >= 0 && t.get(i).is(".")) {
                    i--;
                    continue;
                }
                return start;
            } else {
                return start;
            }
        }
        return start;
    }

    /** Appends tokens [from, to), parenthesising the operand of each unary {@code not}. */
    private static void emit(List<Token> t, int from, int to, StringBuilder out) {
        for (int i = from; i < to; i++) {
            Token tok = t.get(i);
            if (tok.is("not") && isUnaryNot(t, i)) {
                int start = i + 1;
                while (start < to && t.get(start).kind() == Kind.SPACE) {
                    start++;
                }
                int end = operandEnd(t, start, to);
                out.append("not (");
                emit(t, start, end, out);
                out.append(")");
                i = end - 1;
            } else {
                out.append(tok.text());
            }
        }
    }

    /** Not the {@code not} of {@code is not} or {@code not in}. */
    private static boolean isUnaryNot(List<Token> t, int i) {
        Token before = previous(t, i);
        Token after = next(t, i);
        return !(before != null && before.is("is")) && !(after != null && after.is("in"));
    }

    private static Token previous(List<Token> t, int i) {
        for (int j = i - 1; j >= 0; j--) {
            if (t.get(j).kind() != Kind.SPACE) {
                return t.get(j);
            }
        }
        return null;
    }

    private static Token next(List<Token> t, int i) {
        for (int j = i + 1; j < t.size(); j++) {
            if (t.get(j).kind() != Kind.SPACE) {
                return t.get(j);
            }
        }
        return null;
    }

    /**
     * Where the operand of a unary {@code not} starting at {@code from} ends: before the first
     * {@code and}, {@code or}, {@code if}, {@code else}, {@code ,} or {@code :} at its own depth, or
     * a closing bracket of an enclosing one.
     */
    private static int operandEnd(List<Token> t, int from, int to) {
        int depth = 0;
        for (int j = from; j < to; j++) {
            Token tok = t.get(j);
            if (tok.is("(") || tok.is("[") || tok.is("{")) {
                depth++;
            } else if (tok.is(")") || tok.is("]") || tok.is("}")) {
                if (depth == 0) {
                    return trimSpace(t, from, j);
                }
                depth--;
            } else if (depth == 0 && (tok.is("and") || tok.is("or") || tok.is("if") || tok.is("else") || tok.is(",")
                    || tok.is(":"))) {
                return trimSpace(t, from, j);
            }
        }
        return trimSpace(t, from, to);
    }

    /** Ends the operand before trailing whitespace, which stays outside the parentheses. */
    private static int trimSpace(List<Token> t, int from, int end) {
        while (end > from && t.get(end - 1).kind() == Kind.SPACE) {
            end--;
        }
        return end;
    }

    /**
     * Python's {@code str} methods on strings (Jinja2 templates call them: {@code content.strip()},
     * {@code role.startswith('tool')}, {@code text.split('</think>')[-1]}) and {@code s[i]}; any other
     * call or property falls through to Jinjava's own resolvers.
     */
    static final class PythonStrings extends ELResolver {
        @Override
        public Object invoke(ELContext context, Object base, Object method, Class<?>[] types, Object[] args) {
            if (!(base instanceof String s) || method == null) {
                return null;
            }
            Object[] a = args == null ? new Object[0] : args;
            Object result = call(s, method.toString(), a);
            if (result != null) {
                context.setPropertyResolved(true);
            }
            return result;
        }

        private static Object call(String s, String name, Object[] a) {
            return switch (name) {
                case "startswith" -> a.length >= 1 ? anyMatch(a[0], p -> s.startsWith(p)) : null;
                case "endswith" -> a.length >= 1 ? anyMatch(a[0], p -> s.endsWith(p)) : null;
                case "strip" -> strip(s, chars(a), true, true);
                case "lstrip" -> strip(s, chars(a), true, false);
                case "rstrip" -> strip(s, chars(a), false, true);
                case "upper" -> s.toUpperCase(Locale.ROOT);
                case "lower" -> s.toLowerCase(Locale.ROOT);
                case "title" -> title(s);
                case "capitalize" -> s.isEmpty() ? s
                        : s.substring(0, 1).toUpperCase(Locale.ROOT) + s.substring(1).toLowerCase(Locale.ROOT);
                case "split" -> split(s, a.length > 0 ? a[0] : null, a.length > 1 ? toInt(a[1]) : -1);
                case "rsplit" -> a.length > 1 && toInt(a[1]) >= 0 ? rsplit(s, a[0], toInt(a[1]))
                        : split(s, a.length > 0 ? a[0] : null, -1);
                case "splitlines" -> new ArrayList<>(s.lines().toList());
                case "replace" -> a.length >= 2 ? replace(s, String.valueOf(a[0]), String.valueOf(a[1]),
                        a.length > 2 ? toInt(a[2]) : -1) : null;
                case "find" -> a.length >= 1 ? (long) s.indexOf(String.valueOf(a[0])) : null;
                case "rfind" -> a.length >= 1 ? (long) s.lastIndexOf(String.valueOf(a[0])) : null;
                case "count" -> a.length >= 1 ? (long) count(s, String.valueOf(a[0])) : null;
                case "join" -> a.length == 1 && a[0] instanceof Iterable<?> it ? join(s, it) : null;
                case "isdigit" -> !s.isEmpty() && s.chars().allMatch(Character::isDigit);
                case "isalpha" -> !s.isEmpty() && s.chars().allMatch(Character::isLetter);
                case "isspace" -> !s.isEmpty() && s.chars().allMatch(Character::isWhitespace);
                default -> null;
            };
        }

        private static Boolean anyMatch(Object prefixes, Predicate<String> test) {
            if (prefixes instanceof Iterable<?> list) {
                for (Object p : list) {
                    if (test.test(String.valueOf(p))) {
                        return true;
                    }
                }
                return false;
            }
            return test.test(String.valueOf(prefixes));
        }

        private static String chars(Object[] a) {
            return a.length == 0 || a[0] == null ? null : String.valueOf(a[0]);
        }

        private static String strip(String s, String chars, boolean left, boolean right) {
            int start = 0;
            int end = s.length();
            if (left) {
                while (start < end && strippable(s.charAt(start), chars)) {
                    start++;
                }
            }
            if (right) {
                while (end > start && strippable(s.charAt(end - 1), chars)) {
                    end--;
                }
            }
            return s.substring(start, end);
        }

        private static boolean strippable(char c, String chars) {
            return chars == null ? Character.isWhitespace(c) : chars.indexOf(c) >= 0;
        }

        private static String title(String s) {
            StringBuilder b = new StringBuilder(s.length());
            boolean previousCased = false;
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                b.append(previousCased ? Character.toLowerCase(c) : Character.toUpperCase(c));
                previousCased = Character.isLetter(c);
            }
            return b.toString();
        }

        private static int toInt(Object o) {
            return o instanceof Number n ? n.intValue() : Integer.parseInt(String.valueOf(o));
        }

        /** Python's split: with a separator, literal and keeping empty pieces; without, on runs of whitespace. */
        private static List<Object> split(String s, Object separator, int maxSplit) {
            List<Object> out = new ArrayList<>();
            if (separator == null) {
                int i = 0;
                int splits = 0;
                while (true) {
                    while (i < s.length() && Character.isWhitespace(s.charAt(i))) {
                        i++;
                    }
                    if (i >= s.length()) {
                        break;
                    }
                    if (maxSplit >= 0 && splits == maxSplit) {
                        out.add(s.substring(i).stripTrailing());
                        break;
                    }
                    int start = i;
                    while (i < s.length() && !Character.isWhitespace(s.charAt(i))) {
                        i++;
                    }
                    out.add(s.substring(start, i));
                    splits++;
                }
                return out;
            }
            String sep = String.valueOf(separator);
            if (sep.isEmpty()) {
                throw new IllegalArgumentException("empty separator");
            }
            int start = 0;
            int splits = 0;
            int at;
            while ((maxSplit < 0 || splits < maxSplit) && (at = s.indexOf(sep, start)) >= 0) {
                out.add(s.substring(start, at));
                start = at + sep.length();
                splits++;
            }
            out.add(s.substring(start));
            return out;
        }

        private static List<Object> rsplit(String s, Object separator, int maxSplit) {
            String sep = String.valueOf(separator);
            List<Object> out = new ArrayList<>();
            int end = s.length();
            int splits = 0;
            int at;
            while (splits < maxSplit && (at = s.lastIndexOf(sep, end - sep.length())) >= 0) {
                out.addFirst(s.substring(at + sep.length(), end));
                end = at;
                splits++;
            }
            out.addFirst(s.substring(0, end));
            return out;
        }

        private static String replace(String s, String old, String with, int count) {
            if (count < 0) {
                return s.replace(old, with);
            }
            StringBuilder b = new StringBuilder();
            int start = 0;
            int at;
            while (count-- > 0 && (at = s.indexOf(old, start)) >= 0) {
                b.append(s, start, at).append(with);
                start = at + old.length();
            }
            return b.append(s.substring(start)).toString();
        }

        private static int count(String s, String sub) {
            if (sub.isEmpty()) {
                return s.length() + 1;
            }
            int n = 0;
            for (int at = s.indexOf(sub); at >= 0; at = s.indexOf(sub, at + sub.length())) {
                n++;
            }
            return n;
        }

        private static String join(String separator, Iterable<?> items) {
            StringBuilder b = new StringBuilder();
            boolean first = true;
            for (Object o : items) {
                if (!first) {
                    b.append(separator);
                }
                first = false;
                b.append(o);
            }
            return b.toString();
        }

        @Override
        public Object getValue(ELContext context, Object base, Object property) {
            if (base instanceof String s && property instanceof Number n) {
                int i = n.intValue() < 0 ? n.intValue() + s.length() : n.intValue();
                context.setPropertyResolved(true);
                return i >= 0 && i < s.length() ? String.valueOf(s.charAt(i)) : null;
            }
            return null;
        }

        @Override
        public Class<?> getType(ELContext context, Object base, Object property) {
            return null;
        }

        @Override
        public void setValue(ELContext context, Object base, Object property, Object value) {
        }

        @Override
        public boolean isReadOnly(ELContext context, Object base, Object property) {
            return true;
        }

        @Override
        public Iterator<FeatureDescriptor> getFeatureDescriptors(ELContext context, Object base) {
            return null;
        }

        @Override
        public Class<?> getCommonPropertyType(ELContext context, Object base) {
            return null;
        }
    }

    /** transformers' {@code tojson}: {@code json.dumps(x, ensure_ascii=False, indent=indent)}. */
    static final class ToJson implements Filter {
        @Override
        public String getName() {
            return "tojson";
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            return dumps(var, args.length > 0 ? Integer.parseInt(args[0].strip()) : -1);
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, Object[] args, Map<String, Object> kwargs) {
            Object indent = kwargs.containsKey("indent") ? kwargs.get("indent") : args.length > 0 ? args[0] : null;
            return dumps(var, indent == null ? -1 : ((Number) (indent instanceof Number ? indent
                    : Long.parseLong(String.valueOf(indent)))).intValue());
        }
    }

    /** Python's {@code json.dumps(value, ensure_ascii=False, indent=indent)}; indent < 0 means none. */
    static String dumps(Object value, int indent) {
        StringBuilder out = new StringBuilder();
        dump(out, value, indent, 0);
        return out.toString();
    }

    private static void dump(StringBuilder out, Object v, int indent, int depth) {
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
                    separator(out, first, indent, depth + 1);
                    first = false;
                    quote(out, String.valueOf(e.getKey()));
                    out.append(": ");
                    dump(out, e.getValue(), indent, depth + 1);
                }
                close(out, indent, depth);
                out.append('}');
            }
            case Iterable<?> list -> {
                Iterator<?> it = list.iterator();
                if (!it.hasNext()) {
                    out.append("[]");
                    return;
                }
                out.append('[');
                boolean first = true;
                while (it.hasNext()) {
                    separator(out, first, indent, depth + 1);
                    first = false;
                    dump(out, it.next(), indent, depth + 1);
                }
                close(out, indent, depth);
                out.append(']');
            }
            case Object[] array -> dump(out, List.of(array), indent, depth);
            case Boolean b -> out.append(b ? "true" : "false");
            case Integer i -> out.append(i);
            case Long l -> out.append(l);
            case Short s -> out.append(s);
            case BigInteger b -> out.append(b);
            case Double d -> out.append(PythonStyleJson.repr(d));
            case Float f -> out.append(PythonStyleJson.repr(Double.parseDouble(f.toString())));
            case BigDecimal d -> out.append(d.scale() <= 0 && d.stripTrailingZeros().scale() <= 0
                    ? d.toBigInteger().toString() : PythonStyleJson.repr(d.doubleValue()));
            default -> quote(out, String.valueOf(v));
        }
    }

    private static void separator(StringBuilder out, boolean first, int indent, int depth) {
        if (indent >= 0) {
            out.append(first ? "" : ",").append('\n').append(" ".repeat(indent * depth));
        } else if (!first) {
            out.append(", ");
        }
    }

    private static void close(StringBuilder out, int indent, int depth) {
        if (indent >= 0) {
            out.append('\n').append(" ".repeat(indent * depth));
        }
    }

    /** A JSON string as Python writes it with ensure_ascii=False: only quotes, backslashes and control characters escaped. */
    private static void quote(StringBuilder out, String s) {
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
                    if (c < 0x20) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        out.append('"');
    }

    /** transformers' {@code strftime_now(format)}: the current local time in a Python strftime format. */
    public static String strftimeNow(String format) {
        ZonedDateTime now = ZonedDateTime.now();
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < format.length(); i++) {
            char c = format.charAt(i);
            if (c != '%' || i + 1 >= format.length()) {
                out.append(c);
                continue;
            }
            char d = format.charAt(++i);
            switch (d) {
                case 'Y' -> out.append(now.getYear());
                case 'y' -> out.append(String.format("%02d", now.getYear() % 100));
                case 'm' -> out.append(String.format("%02d", now.getMonthValue()));
                case 'd' -> out.append(String.format("%02d", now.getDayOfMonth()));
                case 'B' -> out.append(now.getMonth().getDisplayName(TextStyle.FULL, Locale.ENGLISH));
                case 'b' -> out.append(now.getMonth().getDisplayName(TextStyle.SHORT, Locale.ENGLISH));
                case 'A' -> out.append(now.getDayOfWeek().getDisplayName(TextStyle.FULL, Locale.ENGLISH));
                case 'a' -> out.append(now.getDayOfWeek().getDisplayName(TextStyle.SHORT, Locale.ENGLISH));
                case 'H' -> out.append(String.format("%02d", now.getHour()));
                case 'I' -> out.append(String.format("%02d", (now.getHour() + 11) % 12 + 1));
                case 'p' -> out.append(now.getHour() < 12 ? "AM" : "PM");
                case 'M' -> out.append(String.format("%02d", now.getMinute()));
                case 'S' -> out.append(String.format("%02d", now.getSecond()));
                case 'j' -> out.append(String.format("%03d", now.getDayOfYear()));
                case '%' -> out.append('%');
                default -> out.append('%').append(d);
            }
        }
        return out.toString();
    }
}
