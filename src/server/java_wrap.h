/* codepane-server: Java snippets. Java has no runner program: the JDK's single-file
 * source launcher (`java /w/Main.java`) compiles and runs the first top-level class. This
 * module turns what a user typed into such a file, and reads java's stderr back into an
 * error (a compile failure or an uncaught exception), since there is no event pipe.
 *
 * Ownership: every returned char* is a heap string the caller frees. */
#ifndef CP_JAVA_WRAP_H
#define CP_JAVA_WRAP_H

#include <stdbool.h>
#include <stddef.h>

/* The complete source of /w/Main.java for `code`:
 * - code that declares a class with a `static void main(` method is used as it is;
 * - otherwise leading `import` (and `package`) lines stay on top, and the rest becomes
 *   the body of `public class Main { public static void main(String[] args) throws
 *   Exception { ... } }`. Method and type declarations found at the top level are made
 *   static members of Main instead (they cannot live inside main). Nothing adds lines
 *   before the user's code, so compiler and stack-trace line numbers match what the user
 *   wrote (except for declarations placed between statements, which move to the end).
 * Returns NULL when memory runs out; *out_len receives the length. */
char *cp_java_wrap(const char *code, size_t len, size_t *out_len);

/* What went wrong, read from the stderr of a java run that exited non-zero:
 * - "error: compilation failed" → name "CompilationError", value the first
 *   "<file>:<line>: error: <message>" line (the directory dropped), traceback all the
 *   compiler output;
 * - `Exception in thread "main" <class>: <message>` → name <class>, value <message> (its
 *   first line), traceback from that line to the end (the rest of the message, the
 *   stack, "Caused by: ...");
 * - a launcher failure ("error: ..." as the first line) → name "LaunchError".
 * Returns 1 with the three heap strings set, 0 when nothing was recognised (nothing
 * allocated), -1 on OOM. */
int cp_java_parse_error(const char *err, size_t len, char **name, char **value, char **traceback);

#endif
