/* codepane Java kernel: plain text work on cell source, with no JShell in it: where the
 * next snippet starts, which line an offset is on, and whether a class declares the
 * `static void main(String[])` that the one-shot Java path would run. */
package codepane.kernel;

import java.util.regex.Pattern;

final class Snippets {
    private Snippets() {}

    /**
     * Offset of the first character of s at or after `from` that is neither whitespace nor
     * inside a comment. Feeding JShell a snippet that starts with its first token makes
     * JShell's stack-trace line 1 the line of that token, so lines map back to the cell.
     * An unterminated block comment stops the skip (JShell then reports it).
     */
    static int skipTrivia(String s, int from) {
        int i = from, n = s.length();
        while (i < n) {
            char c = s.charAt(i);
            if (Character.isWhitespace(c)) {
                i++;
            } else if (s.startsWith("//", i)) {
                int nl = s.indexOf('\n', i);
                i = nl < 0 ? n : nl + 1;
            } else if (s.startsWith("/*", i)) {
                int end = s.indexOf("*/", i + 2);
                if (end < 0) return i;
                i = end + 2;
            } else {
                break;
            }
        }
        return i;
    }

    /** 1-based line of offset `at` in s. */
    static int lineOf(String s, int at) {
        int line = 1;
        for (int i = 0; i < at && i < s.length(); i++) {
            if (s.charAt(i) == '\n') line++;
        }
        return line;
    }

    /** The line of s that holds offset `at`, without its line ending. */
    static String lineAt(String s, int at) {
        at = Math.max(0, Math.min(at, s.length()));
        int start = s.lastIndexOf('\n', at - 1) + 1;
        int end = s.indexOf('\n', at);
        if (end < 0) end = s.length();
        String line = s.substring(start, end);
        return line.endsWith("\r") ? line.substring(0, line.length() - 1) : line;
    }

    /** A caret under column `col` (0-based) of `line`, keeping its tabs so it lines up. */
    static String caret(String line, int col) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < col && i < line.length(); i++) sb.append(line.charAt(i) == '\t' ? '\t' : ' ');
        return sb.append('^').toString();
    }

    /** 0-based column of offset `at` in s. */
    static int columnOf(String s, int at) {
        at = Math.max(0, Math.min(at, s.length()));
        return at - (s.lastIndexOf('\n', at - 1) + 1);
    }

    /**
     * s with comments and the contents of string, text-block and char literals replaced
     * by spaces (newlines kept), so that a pattern only sees code.
     */
    static String maskCommentsAndLiterals(String s) {
        StringBuilder out = new StringBuilder(s);
        int i = 0, n = s.length();
        while (i < n) {
            int end;
            if (s.startsWith("//", i)) {
                end = s.indexOf('\n', i);
                if (end < 0) end = n;
            } else if (s.startsWith("/*", i)) {
                end = s.indexOf("*/", i + 2);
                end = end < 0 ? n : end + 2;
            } else if (s.startsWith("\"\"\"", i)) {
                end = closeOf(s, i + 3, "\"\"\"");
            } else if (s.charAt(i) == '"' || s.charAt(i) == '\'') {
                end = closeOf(s, i + 1, String.valueOf(s.charAt(i)));
            } else {
                i++;
                continue;
            }
            for (int j = i; j < end; j++) {
                if (out.charAt(j) != '\n') out.setCharAt(j, ' ');
            }
            i = end;
        }
        return out.toString();
    }

    /** End (exclusive) of a literal closed by `close`, honouring backslash escapes. */
    private static int closeOf(String s, int i, String close) {
        int n = s.length();
        while (i < n) {
            if (s.charAt(i) == '\\') {
                i += 2;
            } else if (s.startsWith(close, i)) {
                return i + close.length();
            } else if (close.length() == 1 && s.charAt(i) == '\n') {
                return i; // unterminated on its line; javac reports it
            } else {
                i++;
            }
        }
        return n;
    }

    private static final Pattern MAIN_METHOD = Pattern.compile(
            "\\bstatic\\s+(?:(?:public|final|synchronized|strictfp)\\s+)*void\\s+main\\s*\\(\\s*"
                    + "(?:final\\s+)?(?:java\\.lang\\.)?String\\s*(?:\\[\\s*]|\\.\\.\\.|\\s\\w+\\s*\\[\\s*])");

    /**
     * Whether a type declaration's source has a `static void main(String[] ...)` method,
     * the rule by which the one-shot Java path (java_wrap.c) runs a program as it is.
     */
    static boolean declaresMain(String typeSource) {
        return MAIN_METHOD.matcher(maskCommentsAndLiterals(typeSource)).find();
    }

    private static final Pattern WRAPPER_NAME = Pattern.compile("REPL\\.\\$JShell\\$\\d+[A-Z]?[.$]");

    /**
     * Drop the names of JShell's wrapper classes from a message: JDK messages such as the
     * helpful NullPointerException name fields as `REPL.$JShell$7.t`; the user wrote `t`.
     */
    static String cleanNames(String message) {
        return message == null ? null : WRAPPER_NAME.matcher(message).replaceAll("");
    }
}
