/* codepane Java kernel: the text of `error` events and of the warnings JShell has no
 * event for. It keeps where every snippet came from (cell number, line in that cell), so
 * that a stack frame JShell calls `(#12:3)` reads `(cell 4, line 5)` even when the method
 * was declared cells ago. Snippets the kernel evaluates itself are unregistered (their
 * frames keep JShell's names) or registered as hidden (their frames are dropped). */
package codepane.kernel;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import jdk.jshell.DeclarationSnippet;
import jdk.jshell.Diag;
import jdk.jshell.EvalException;
import jdk.jshell.JShell;
import jdk.jshell.JShellException;
import jdk.jshell.MethodSnippet;
import jdk.jshell.Snippet;
import jdk.jshell.TypeDeclSnippet;
import jdk.jshell.UnresolvedReferenceException;
import jdk.jshell.VarSnippet;

final class Reports {
    /** ename of a snippet javac rejected. */
    static final String COMPILATION_ERROR = "CompilationError";
    /** ename of a call into a declaration that still has unresolved references. */
    static final String UNRESOLVED_REFERENCE = "UnresolvedReferenceException";
    /** Causes followed in a traceback before it stops ("... more causes"). */
    static final int MAX_CAUSES = 16;

    /** An error event's three texts. */
    static final class Failure {
        final String ename, evalue, traceback;

        Failure(String ename, String evalue, String traceback) {
            this.ename = ename;
            this.evalue = evalue;
            this.traceback = traceback;
        }
    }

    private final JShell shell;
    private final Map<String, int[]> origin = new HashMap<>(); // snippet id → {cell, line}
    private final Set<String> hidden = new HashSet<>();

    Reports(JShell shell) {
        this.shell = shell;
    }

    /** Snippet `s` was written in cell `cell`, its first token on line `line` of the cell. */
    void register(Snippet s, int cell, int line) {
        origin.put(s.id(), new int[] {cell, line});
    }

    /** Snippet `s` is the kernel's own; its stack frames are left out of tracebacks. */
    void hide(Snippet s) {
        hidden.add(s.id());
    }

    // ---- compile errors -----------------------------------------------------------------

    /**
     * The compile errors of a rejected snippet. evalue: the messages, one per error;
     * traceback: per error `cell N, line L: message`, the source line and a caret.
     * `source` is the text that was evaluated, `line` the cell line of its first character.
     */
    Failure compileError(Snippet s, String source, int cell, int line) {
        List<String> messages = new ArrayList<>();
        StringBuilder tb = new StringBuilder();
        shell.diagnostics(s).filter(Diag::isError).forEach(d -> {
            String msg = diagMessage(d);
            messages.add(msg);
            long pos = d.getPosition() >= 0 ? d.getPosition() : d.getStartPosition();
            if (tb.length() > 0) tb.append('\n');
            if (pos < 0 || pos > source.length()) {
                tb.append("cell ").append(cell).append(": ").append(msg);
                return;
            }
            int at = (int) pos;
            String text = Snippets.lineAt(source, at);
            tb.append("cell ").append(cell).append(", line ").append(line + Snippets.lineOf(source, at) - 1)
                    .append(": ").append(msg).append('\n')
                    .append(text).append('\n')
                    .append(Snippets.caret(text, Snippets.columnOf(source, at)));
        });
        if (messages.isEmpty()) {
            messages.add("the snippet was rejected");
            tb.append("cell ").append(cell).append(", line ").append(line).append(": the snippet was rejected");
        }
        return new Failure(COMPILATION_ERROR, String.join("\n", messages), tb.toString());
    }

    /**
     * A diagnostic's message as the jshell tool shows it: without the `location:` lines,
     * which name JShell's wrapper class (an empty `location: class ` here).
     */
    static String diagMessage(Diag d) {
        StringBuilder sb = new StringBuilder();
        for (String l : d.getMessage(Locale.ROOT).split("\\r?\\n")) {
            if (l.trim().startsWith("location:")) continue;
            if (sb.length() > 0) sb.append('\n');
            sb.append(l);
        }
        return Snippets.cleanNames(sb.toString());
    }

    // ---- exceptions ----------------------------------------------------------------------

    /** An exception a snippet threw, as an error event. */
    Failure exception(JShellException x) {
        if (x instanceof UnresolvedReferenceException) {
            DeclarationSnippet d = ((UnresolvedReferenceException) x).getSnippet();
            String deps = unresolved(d);
            String value = describe(d) + (deps.isEmpty() ? " has unresolved references"
                    : " cannot be " + (d instanceof MethodSnippet ? "invoked" : "used") + " until " + deps + " declared");
            return new Failure(UNRESOLVED_REFERENCE, value, UNRESOLVED_REFERENCE + ": " + value + frames(x));
        }
        String cls = className(x);
        String msg = Snippets.cleanNames(x.getMessage());
        StringBuilder tb = new StringBuilder(msg == null ? cls : cls + ": " + msg).append(frames(x));
        Throwable cause = x.getCause();
        for (int n = 0; cause != null && cause != x; n++, cause = cause.getCause()) {
            if (n == MAX_CAUSES) {
                tb.append("\n... more causes");
                break;
            }
            String cm = Snippets.cleanNames(cause.getMessage());
            tb.append("\nCaused by: ").append(className(cause)).append(cm == null ? "" : ": " + cm).append(frames(cause));
        }
        return new Failure(cls, msg == null ? "" : msg, tb.toString());
    }

    /** The class name of the user's exception that `t` stands for. */
    private static String className(Throwable t) {
        if (t instanceof EvalException) {
            String c = ((EvalException) t).getExceptionClassName();
            if (c != null) return Snippets.cleanNames(c);
        }
        return t.getClass().getName();
    }

    private static final Pattern SNIPPET_FILE = Pattern.compile("#(.+)");

    /**
     * The stack as `\n\tat ...` lines: JDK frames as Java prints them, snippet frames with
     * their cell and line, the kernel's own frames (codepane.kernel, hidden snippets) left out.
     */
    private String frames(Throwable t) {
        StringBuilder sb = new StringBuilder();
        for (StackTraceElement e : t.getStackTrace()) {
            if (e.getClassName().startsWith("codepane.kernel.")) continue;
            String file = e.getFileName();
            Matcher m = file == null ? null : SNIPPET_FILE.matcher(file);
            if (m == null || !m.matches()) {
                sb.append("\n\tat ").append(Snippets.cleanNames(e.toString()));
                continue;
            }
            String id = m.group(1);
            if (hidden.contains(id)) continue;
            String where;
            int[] o = origin.get(id);
            if (o != null) {
                where = "cell " + o[0] + ", line " + (o[1] + Math.max(e.getLineNumber(), 1) - 1);
            } else {
                where = file + ":" + e.getLineNumber();
            }
            String cls = e.getClassName(), method = e.getMethodName();
            String name = cls.isEmpty() ? method : method.isEmpty() ? cls : cls + "." + method;
            sb.append("\n\tat ").append(name.isEmpty() ? where : name + "(" + where + ")");
        }
        return sb.toString();
    }

    // ---- declarations with unresolved references ------------------------------------------

    /**
     * The warning for a declaration JShell accepted although it refers to something not
     * declared yet (status RECOVERABLE_*), in the jshell tool's words; null if there is none.
     */
    String recoverableWarning(DeclarationSnippet d, boolean defined) {
        String deps = unresolved(d);
        if (deps.isEmpty()) return null;
        String what = !defined ? "referenced"
                : d instanceof MethodSnippet ? "invoked"
                : d instanceof TypeDeclSnippet ? "instantiated or its methods invoked"
                : "referenced";
        return "created " + describe(d) + ", however, it cannot be " + what + " until " + deps + " declared\n";
    }

    /** "method f(int)", "class A", "variable x". */
    private static String describe(DeclarationSnippet d) {
        if (d instanceof MethodSnippet) return "method " + d.name() + "(" + ((MethodSnippet) d).parameterTypes() + ")";
        if (d instanceof TypeDeclSnippet) return "class " + d.name();
        if (d instanceof VarSnippet) return "variable " + d.name();
        return d.name();
    }

    /** "method g() is", "class A, and variable y are", or "" when nothing is unresolved. */
    private String unresolved(DeclarationSnippet d) {
        List<String> deps = shell.unresolvedDependencies(d).collect(java.util.stream.Collectors.toList());
        if (deps.isEmpty()) return "";
        return String.join(", and ", deps) + (deps.size() == 1 ? " is" : " are");
    }
}
