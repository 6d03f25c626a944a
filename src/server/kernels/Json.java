/* codepane Java kernel: the little JSON it needs. Parsing reads request lines (fd 3)
 * and the text a cell hands to json(...); writing builds event lines (fd 4). Values are
 * plain Java objects: Map<String,Object> (insertion order kept), List<Object>, String,
 * BigDecimal (numbers keep their exact value), Boolean and null. Written JSON never
 * contains a raw newline, so one value is always one event line. */
package codepane.kernel;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

final class Json {
    private Json() {}

    /** Nesting limit for parsed text; deeper input is refused rather than risking the stack. */
    static final int MAX_DEPTH = 512;

    /** Malformed JSON, with the offset where parsing stopped. */
    static final class ParseException extends IllegalArgumentException {
        private static final long serialVersionUID = 1L;

        ParseException(String what, int at) {
            super("invalid JSON: " + what + " at offset " + at);
        }
    }

    // ---- writing ------------------------------------------------------------------------

    /** Append s as a JSON string. Lone surrogates become U+FFFD, so the line is valid UTF-8. */
    static void quote(StringBuilder sb, String s) {
        sb.append('"');
        for (int i = 0, n = s.length(); i < n; i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"': sb.append("\\\""); break;
                case '\\': sb.append("\\\\"); break;
                case '\n': sb.append("\\n"); break;
                case '\r': sb.append("\\r"); break;
                case '\t': sb.append("\\t"); break;
                case '\b': sb.append("\\b"); break;
                case '\f': sb.append("\\f"); break;
                default:
                    if (c < 0x20 || c == 0x7f || c == 0x2028 || c == 0x2029) {
                        sb.append(String.format("\\u%04x", (int) c));
                    } else if (Character.isHighSurrogate(c) && i + 1 < n
                            && Character.isLowSurrogate(s.charAt(i + 1))) {
                        sb.append(c).append(s.charAt(++i));
                    } else if (Character.isSurrogate(c)) {
                        sb.append('\ufffd');
                    } else {
                        sb.append(c);
                    }
            }
        }
        sb.append('"');
    }

    /**
     * Append v as JSON: Map (keys through String.valueOf), List or array of objects,
     * CharSequence, Number, Boolean, null; byte[] becomes a base64 string; anything else
     * its toString() as a string. Non-finite doubles become null, as JSON has no NaN.
     */
    static void write(StringBuilder sb, Object v) {
        if (v == null) {
            sb.append("null");
        } else if (v instanceof CharSequence) {
            quote(sb, v.toString());
        } else if (v instanceof Boolean) {
            sb.append(v.toString());
        } else if (v instanceof Double || v instanceof Float) {
            double d = ((Number) v).doubleValue();
            sb.append(Double.isFinite(d) ? numberText(v) : "null");
        } else if (v instanceof Number) {
            sb.append(numberText(v));
        } else if (v instanceof byte[]) {
            quote(sb, Base64.getEncoder().encodeToString((byte[]) v));
        } else if (v instanceof Map) {
            sb.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                if (!first) sb.append(',');
                first = false;
                quote(sb, String.valueOf(e.getKey()));
                sb.append(':');
                write(sb, e.getValue());
            }
            sb.append('}');
        } else if (v instanceof Iterable || v instanceof Object[]) {
            Iterable<?> items = v instanceof Object[] ? List.of((Object[]) v) : (Iterable<?>) v;
            sb.append('[');
            boolean first = true;
            for (Object item : items) {
                if (!first) sb.append(',');
                first = false;
                write(sb, item);
            }
            sb.append(']');
        } else {
            quote(sb, v.toString());
        }
    }

    /** A number's JSON text; BigDecimal keeps its digits (toString may use an exponent, which JSON allows). */
    private static String numberText(Object n) {
        String s = n.toString();
        return s.endsWith(".0") && !(n instanceof BigDecimal) ? s.substring(0, s.length() - 2) : s;
    }

    // ---- parsing ------------------------------------------------------------------------

    /** Parse one JSON value filling all of text (surrounding whitespace allowed). */
    static Object parse(String text) {
        Parser p = new Parser(text);
        p.skipSpace();
        Object v = p.value(0);
        p.skipSpace();
        if (p.pos != text.length()) throw new ParseException("trailing characters", p.pos);
        return v;
    }

    private static final class Parser {
        final String s;
        int pos;

        Parser(String s) {
            this.s = s;
        }

        void skipSpace() {
            while (pos < s.length()) {
                char c = s.charAt(pos);
                if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
                pos++;
            }
        }

        Object value(int depth) {
            if (depth > MAX_DEPTH) throw new ParseException("nesting too deep", pos);
            if (pos >= s.length()) throw new ParseException("unexpected end", pos);
            char c = s.charAt(pos);
            switch (c) {
                case '{': return object(depth);
                case '[': return array(depth);
                case '"': return string();
                case 't': return literal("true", Boolean.TRUE);
                case 'f': return literal("false", Boolean.FALSE);
                case 'n': return literal("null", null);
                default:
                    if (c == '-' || (c >= '0' && c <= '9')) return number();
                    throw new ParseException("unexpected character '" + c + "'", pos);
            }
        }

        Object literal(String word, Object v) {
            if (!s.startsWith(word, pos)) throw new ParseException("bad literal", pos);
            pos += word.length();
            return v;
        }

        Map<String, Object> object(int depth) {
            Map<String, Object> m = new LinkedHashMap<>();
            pos++;
            skipSpace();
            if (peek() == '}') {
                pos++;
                return m;
            }
            while (true) {
                skipSpace();
                if (peek() != '"') throw new ParseException("expected a key", pos);
                String k = string();
                skipSpace();
                expect(':');
                skipSpace();
                m.put(k, value(depth + 1));
                skipSpace();
                if (peek() == ',') {
                    pos++;
                } else {
                    expect('}');
                    return m;
                }
            }
        }

        List<Object> array(int depth) {
            List<Object> l = new ArrayList<>();
            pos++;
            skipSpace();
            if (peek() == ']') {
                pos++;
                return l;
            }
            while (true) {
                skipSpace();
                l.add(value(depth + 1));
                skipSpace();
                if (peek() == ',') {
                    pos++;
                } else {
                    expect(']');
                    return l;
                }
            }
        }

        String string() {
            StringBuilder sb = new StringBuilder();
            pos++; // opening quote
            while (true) {
                if (pos >= s.length()) throw new ParseException("unterminated string", pos);
                char c = s.charAt(pos++);
                if (c == '"') return sb.toString();
                if (c < 0x20) throw new ParseException("control character in string", pos - 1);
                if (c != '\\') {
                    sb.append(c);
                    continue;
                }
                if (pos >= s.length()) throw new ParseException("unterminated escape", pos);
                char e = s.charAt(pos++);
                switch (e) {
                    case '"': sb.append('"'); break;
                    case '\\': sb.append('\\'); break;
                    case '/': sb.append('/'); break;
                    case 'b': sb.append('\b'); break;
                    case 'f': sb.append('\f'); break;
                    case 'n': sb.append('\n'); break;
                    case 'r': sb.append('\r'); break;
                    case 't': sb.append('\t'); break;
                    case 'u':
                        if (pos + 4 > s.length()) throw new ParseException("short \\u escape", pos);
                        try {
                            sb.append((char) Integer.parseInt(s.substring(pos, pos + 4), 16));
                        } catch (NumberFormatException x) {
                            throw new ParseException("bad \\u escape", pos);
                        }
                        pos += 4;
                        break;
                    default:
                        throw new ParseException("bad escape", pos - 1);
                }
            }
        }

        BigDecimal number() {
            int start = pos;
            if (peek() == '-') pos++;
            digits();
            if (peek() == '.') {
                pos++;
                digits();
            }
            if (peek() == 'e' || peek() == 'E') {
                pos++;
                if (peek() == '+' || peek() == '-') pos++;
                digits();
            }
            try {
                return new BigDecimal(s.substring(start, pos));
            } catch (NumberFormatException x) {
                throw new ParseException("bad number", start);
            }
        }

        void digits() {
            int start = pos;
            while (pos < s.length() && s.charAt(pos) >= '0' && s.charAt(pos) <= '9') pos++;
            if (pos == start) throw new ParseException("expected a digit", pos);
        }

        char peek() {
            return pos < s.length() ? s.charAt(pos) : '\0';
        }

        void expect(char c) {
            if (peek() != c) throw new ParseException("expected '" + c + "'", pos);
            pos++;
        }
    }
}
