/* codepane-server: Java snippets into a single-file program, and java's stderr back into
 * an error. See java_wrap.h.
 *
 * The wrapper works on tokens, not on text, so that braces, semicolons and keywords
 * inside comments, strings, text blocks and char literals never count. It does not parse
 * Java: it only needs to tell, at nesting depth 0, a method or type declaration from a
 * statement, which the first few tokens decide (modifiers and annotations, then
 * `class`/`interface`/`enum`/`record`, or `Type name(...) [throws ...] {`). Whatever it
 * gets wrong, javac reports, with the user's line numbers. */
#define _GNU_SOURCE
#include "java_wrap.h"

#include "result.h"

#include <stdlib.h>
#include <string.h>

/* Largest snippet the wrapper tokenises; longer code is used as it is (javac will say
 * what is wrong). The server caps code far below this anyway. */
#define JAVA_WRAP_MAX_CODE (8u * 1024 * 1024)

static const char MAIN_CLASS_OPEN[] = "public class Main { ";
static const char MAIN_METHOD_OPEN[] = "public static void main(String[] args) throws Exception { ";
static const char MAIN_METHOD_EMPTY[] =
    "\npublic static void main(String[] args) throws Exception {}";
static const char MAIN_METHOD_CLOSE[] = " }";
static const char MAIN_CLASS_CLOSE[] = "\n}\n";

/* ---- tokens ----------------------------------------------------------------------- */

typedef enum { TK_IDENT, TK_PUNCT, TK_LIT } tk_kind;

typedef struct {
    tk_kind kind;
    size_t start, end; /* byte range in the source */
    unsigned depth;    /* bracket nesting outside this token ((, [ and { all count) */
} tok;

typedef struct {
    const char *src;
    tok *t;
    size_t n, cap;
} toks;

static bool is_ident_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$' || c >= 0x80;
}

static bool is_ident_char(unsigned char c)
{
    return is_ident_start(c) || (c >= '0' && c <= '9');
}

static int push(toks *ts, tk_kind kind, size_t start, size_t end)
{
    if (ts->n == ts->cap) {
        size_t cap = ts->cap ? ts->cap * 2 : 256;
        tok *t = realloc(ts->t, cap * sizeof *t);
        if (!t) return -1;
        ts->t = t;
        ts->cap = cap;
    }
    ts->t[ts->n++] = (tok){kind, start, end, 0};
    return 0;
}

/* End of a quoted literal starting at s[i] == q (a string or char literal; a newline
 * ends an unterminated one, as javac would complain there). */
static size_t skip_quoted(const char *s, size_t len, size_t i, char q)
{
    for (i++; i < len; i++) {
        if (s[i] == '\\') {
            i++;
        } else if (s[i] == q) {
            return i + 1;
        } else if (s[i] == '\n') {
            return i;
        }
    }
    return len;
}

static size_t skip_text_block(const char *s, size_t len, size_t i)
{
    for (i += 3; i < len; i++) {
        if (s[i] == '\\') {
            i++;
        } else if (s[i] == '"' && i + 2 < len && s[i + 1] == '"' && s[i + 2] == '"') {
            return i + 3;
        }
    }
    return len;
}

static int tokenize(toks *ts, const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        size_t start = i;
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f') {
            i++;
            continue;
        }
        if (c == '/' && i + 1 < len && s[i + 1] == '/') {
            while (i < len && s[i] != '\n')
                i++;
            continue;
        }
        if (c == '/' && i + 1 < len && s[i + 1] == '*') {
            const char *e = memmem(s + i + 2, len - i - 2, "*/", 2);
            i = e ? (size_t)(e - s) + 2 : len;
            continue;
        }
        if (c == '"') {
            bool block = i + 2 < len && s[i + 1] == '"' && s[i + 2] == '"';
            i = block ? skip_text_block(s, len, i) : skip_quoted(s, len, i, '"');
            if (push(ts, TK_LIT, start, i)) return -1;
            continue;
        }
        if (c == '\'') {
            i = skip_quoted(s, len, i, '\'');
            if (push(ts, TK_LIT, start, i)) return -1;
            continue;
        }
        if (is_ident_start(c)) {
            while (i < len && is_ident_char((unsigned char)s[i]))
                i++;
            if (push(ts, TK_IDENT, start, i)) return -1;
            continue;
        }
        if (c >= '0' && c <= '9') {
            while (i < len) {
                unsigned char d = (unsigned char)s[i];
                unsigned char p = (unsigned char)s[i - 1];
                bool exp_sign =
                    (d == '+' || d == '-') && (p == 'e' || p == 'E' || p == 'p' || p == 'P');
                if (!(is_ident_char(d) || d == '.' || exp_sign)) break;
                i++;
            }
            if (push(ts, TK_LIT, start, i)) return -1;
            continue;
        }
        i++;
        if (push(ts, TK_PUNCT, start, i)) return -1;
    }
    /* Nesting depth of every token (a closing bracket sits at the outer depth). */
    unsigned depth = 0;
    for (size_t k = 0; k < ts->n; k++) {
        tok *t = &ts->t[k];
        char ch = s[t->start];
        if (t->kind == TK_PUNCT && (ch == ')' || ch == ']' || ch == '}') && depth > 0) depth--;
        t->depth = depth;
        if (t->kind == TK_PUNCT && (ch == '(' || ch == '[' || ch == '{')) depth++;
    }
    return 0;
}

static bool is_punct(const toks *ts, size_t i, char ch)
{
    return i < ts->n && ts->t[i].kind == TK_PUNCT && ts->src[ts->t[i].start] == ch;
}

static bool is_word(const toks *ts, size_t i, const char *w)
{
    if (i >= ts->n || ts->t[i].kind != TK_IDENT) return false;
    size_t n = ts->t[i].end - ts->t[i].start;
    return strlen(w) == n && memcmp(ts->src + ts->t[i].start, w, n) == 0;
}

static bool is_one_of(const toks *ts, size_t i, const char *const *words)
{
    for (; *words; words++)
        if (is_word(ts, i, *words)) return true;
    return false;
}

static const char *const MODIFIERS[] = {
    "public",       "protected", "private",   "static",   "final",  "abstract", "strictfp",
    "synchronized", "native",    "transient", "volatile", "sealed", NULL};

/* Words that begin a statement or an expression, never a declaration's type or name. */
static const char *const NOT_A_TYPE[] = {
    "return", "new",      "throw",     "if",      "else",       "for",   "while",
    "do",     "switch",   "case",      "default", "try",        "catch", "finally",
    "break",  "continue", "assert",    "yield",   "this",       "super", "var",
    "import", "package",  "goto",      "const",   "instanceof", "true",  "false",
    "null",   "class",    "interface", "enum",    NULL};

/* Index of the bracket closing the one at i, or ts->n when it is never closed. */
static size_t match(const toks *ts, size_t i)
{
    unsigned d = ts->t[i].depth;
    for (size_t j = i + 1; j < ts->n; j++) {
        if (ts->t[j].depth == d && ts->t[j].kind == TK_PUNCT) {
            char ch = ts->src[ts->t[j].start];
            if (ch == ')' || ch == ']' || ch == '}') return j;
        }
    }
    return ts->n;
}

/* Past a type argument list `<...>` starting at i, or 0 when it does not look like one. */
static size_t skip_angle(const toks *ts, size_t i)
{
    int level = 0;
    for (; i < ts->n; i++) {
        if (is_punct(ts, i, '<')) {
            level++;
        } else if (is_punct(ts, i, '>')) {
            if (--level == 0) return i + 1;
        } else if (!(ts->t[i].kind == TK_IDENT || is_punct(ts, i, '.') || is_punct(ts, i, ',') ||
                     is_punct(ts, i, '?') || is_punct(ts, i, '[') || is_punct(ts, i, ']') ||
                     is_punct(ts, i, '&') || is_punct(ts, i, '@'))) {
            return 0;
        }
    }
    return 0;
}

/* If a method or type declaration starts at token s (depth 0), the index just past it;
 * else 0. *has_static tells whether `static` is among its modifiers. */
static size_t decl_end(const toks *ts, size_t s, bool *has_static)
{
    size_t i = s;
    *has_static = false;
    for (;;) {
        if (is_one_of(ts, i, MODIFIERS)) {
            if (is_word(ts, i, "static")) *has_static = true;
            i++;
        } else if (is_word(ts, i, "non") && is_punct(ts, i + 1, '-') &&
                   is_word(ts, i + 2, "sealed")) {
            i += 3;
        } else if (is_punct(ts, i, '@') && i + 1 < ts->n && ts->t[i + 1].kind == TK_IDENT &&
                   !is_word(ts, i + 1, "interface")) {
            i += 2;
            while (is_punct(ts, i, '.') && i + 1 < ts->n && ts->t[i + 1].kind == TK_IDENT)
                i += 2;
            if (is_punct(ts, i, '(')) i = match(ts, i) + 1;
        } else {
            break;
        }
    }
    if (i >= ts->n) return 0;

    bool type_decl = is_word(ts, i, "class") || is_word(ts, i, "interface") ||
                     is_word(ts, i, "enum") ||
                     (is_punct(ts, i, '@') && is_word(ts, i + 1, "interface")) ||
                     (is_word(ts, i, "record") && i + 2 < ts->n && ts->t[i + 1].kind == TK_IDENT &&
                      (is_punct(ts, i + 2, '(') || is_punct(ts, i + 2, '<')));
    if (type_decl) {
        for (size_t j = i; j < ts->n; j++) {
            if (ts->t[j].depth != 0) continue;
            if (is_punct(ts, j, ';')) return 0;
            if (is_punct(ts, j, '{')) {
                size_t e = match(ts, j);
                return e < ts->n ? e + 1 : ts->n;
            }
        }
        return 0;
    }

    /* Method: [<T>] Type name(params) [throws A, B] { */
    if (is_punct(ts, i, '<')) {
        i = skip_angle(ts, i);
        if (!i) return 0;
    }
    if (i >= ts->n || ts->t[i].kind != TK_IDENT || is_one_of(ts, i, NOT_A_TYPE)) return 0;
    i++;
    for (;;) {
        if (is_punct(ts, i, '.') && i + 1 < ts->n && ts->t[i + 1].kind == TK_IDENT) {
            i += 2;
        } else if (is_punct(ts, i, '<')) {
            i = skip_angle(ts, i);
            if (!i) return 0;
        } else if (is_punct(ts, i, '[') && is_punct(ts, i + 1, ']')) {
            i += 2;
        } else {
            break;
        }
    }
    if (i >= ts->n || ts->t[i].kind != TK_IDENT || is_one_of(ts, i, NOT_A_TYPE)) return 0;
    i++;
    if (!is_punct(ts, i, '(')) return 0;
    i = match(ts, i);
    if (i >= ts->n) return 0;
    i++;
    if (is_word(ts, i, "throws")) {
        for (i++; i < ts->n && !is_punct(ts, i, '{'); i++) {
            if (!(ts->t[i].kind == TK_IDENT || is_punct(ts, i, '.') || is_punct(ts, i, ',') ||
                  is_punct(ts, i, '<') || is_punct(ts, i, '>')))
                return 0;
        }
    }
    if (!is_punct(ts, i, '{')) return 0;
    size_t e = match(ts, i);
    return e < ts->n ? e + 1 : ts->n;
}

/* A class with `static ... void main(` inside it: the code is a whole program. */
static bool has_main_method(const toks *ts)
{
    for (size_t i = 1; i + 1 < ts->n; i++) {
        if (ts->t[i].depth == 0 || !is_word(ts, i, "main") || !is_punct(ts, i + 1, '(') ||
            !is_word(ts, i - 1, "void"))
            continue;
        for (size_t k = i - 1; k-- > 0 && is_one_of(ts, k, MODIFIERS);)
            if (is_word(ts, k, "static")) return true;
    }
    return false;
}

/* ---- output buffer ------------------------------------------------------------------ */

typedef struct {
    char *p;
    size_t len, cap;
    bool oom;
} buf;

static void put(buf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void puts_(buf *b, const char *s)
{
    put(b, s, strlen(s));
}

/* ---- the wrapper -------------------------------------------------------------------- */

typedef struct {
    size_t s, e; /* token range [s, e) */
    bool decl, has_static;
} item;

char *cp_java_wrap(const char *code, size_t len, size_t *out_len)
{
    toks ts = {.src = code};
    item *items = NULL;
    size_t nitems = 0, capitems = 0;
    buf out = {0}, tail = {0};
    char *result = NULL;

    if (len > JAVA_WRAP_MAX_CODE) goto as_is;
    if (tokenize(&ts, code, len)) goto done;
    if (has_main_method(&ts)) goto as_is;

    /* Leading import / package declarations stay on top of the file. */
    size_t i = 0, head_end = 0;
    while (is_word(&ts, i, "import") || is_word(&ts, i, "package")) {
        size_t j = i;
        while (j < ts.n && !(is_punct(&ts, j, ';') && ts.t[j].depth == 0))
            j++;
        if (j == ts.n) break;
        head_end = ts.t[j].end;
        i = j + 1;
    }

    /* Split the rest into top-level items: declarations, and statements (a statement
     * ends at a depth-0 ';' or at a '}' that returns to depth 0). */
    while (i < ts.n) {
        bool st = false;
        size_t e = decl_end(&ts, i, &st);
        bool decl = e != 0;
        if (!decl) {
            e = i;
            while (e < ts.n) {
                bool end = ts.t[e].depth == 0 && (is_punct(&ts, e, ';') || is_punct(&ts, e, '}'));
                e++;
                if (end) break;
            }
        }
        if (nitems == capitems) {
            size_t cap = capitems ? capitems * 2 : 32;
            item *p = realloc(items, cap * sizeof *p);
            if (!p) goto done;
            items = p;
            capitems = cap;
        }
        items[nitems++] = (item){i, e, decl, st};
        i = e;
    }
    size_t first_stmt = nitems, last_stmt = nitems;
    bool own_main = false; /* a top-level `void main(` the user wrote without a class */
    for (size_t k = 0; k < nitems; k++) {
        if (items[k].decl) {
            for (size_t j = items[k].s + 1; j + 1 < items[k].e; j++)
                if (ts.t[j].depth == 0 && is_word(&ts, j, "main") && is_word(&ts, j - 1, "void") &&
                    is_punct(&ts, j + 1, '('))
                    own_main = true;
            continue;
        }
        if (first_stmt == nitems) first_stmt = k;
        last_stmt = k;
    }

    put(&out, code, head_end);
    puts_(&out, MAIN_CLASS_OPEN);
    size_t cursor = head_end;
    for (size_t k = 0; k < nitems; k++) {
        size_t start = ts.t[items[k].s].start, end = ts.t[items[k].e - 1].end;
        put(&out, code + cursor, start - cursor);
        cursor = start;
        if (items[k].decl) {
            const char *stat = items[k].has_static ? "" : "static ";
            if (first_stmt < k && k < last_stmt) {
                /* Between statements: it cannot stay inside main. Keep its lines as blank
                 * lines (so what follows keeps its line numbers) and move it to the end. */
                for (size_t c = start; c < end; c++)
                    if (code[c] == '\n') put(&out, "\n", 1);
                puts_(&tail, "\n");
                puts_(&tail, stat);
                put(&tail, code + start, end - start);
                cursor = end;
            } else {
                puts_(&out, stat);
            }
            continue;
        }
        if (k == first_stmt) puts_(&out, MAIN_METHOD_OPEN);
        if (k == last_stmt) {
            put(&out, code + cursor, end - cursor);
            puts_(&out, MAIN_METHOD_CLOSE);
            cursor = end;
        }
    }
    put(&out, code + cursor, len - cursor);
    if (first_stmt == nitems && !own_main) puts_(&out, MAIN_METHOD_EMPTY);
    if (tail.len) put(&out, tail.p, tail.len);
    puts_(&out, MAIN_CLASS_CLOSE);
    if (out.oom || tail.oom) goto done;
    result = out.p;
    out.p = NULL;
    *out_len = out.len;
    goto done;

as_is:
    result = cp_strndup(code, len);
    if (result) *out_len = len;
done:
    free(ts.t);
    free(items);
    free(out.p);
    free(tail.p);
    return result;
}

/* ---- reading java's stderr ------------------------------------------------------------ */

/* The line containing s[at], without its newline: [*ls, *le). */
static void line_at(const char *s, size_t len, size_t at, size_t *ls, size_t *le)
{
    size_t a = at, b = at;
    while (a > 0 && s[a - 1] != '\n')
        a--;
    while (b < len && s[b] != '\n')
        b++;
    *ls = a;
    *le = b;
}

static const char *find(const char *s, size_t len, const char *needle)
{
    return memmem(s, len, needle, strlen(needle));
}

static int set3(char **name, char **value, char **traceback, const char *n, size_t nl,
                const char *v, size_t vl, const char *t, size_t tl)
{
    *name = cp_strndup(n, nl);
    *value = cp_strndup(v, vl);
    *traceback = cp_strndup(t, tl);
    if (!*name || !*value || !*traceback) {
        free(*name);
        free(*value);
        free(*traceback);
        *name = *value = *traceback = NULL;
        return -1;
    }
    return 1;
}

int cp_java_parse_error(const char *err, size_t len, char **name, char **value, char **traceback)
{
    static const char COMPILE_FAILED[] = "error: compilation failed";
    static const char UNCAUGHT[] = "Exception in thread \"main\" ";
    static const char LAUNCH[] = "error: ";
    static const char COMPILE_NAME[] = "CompilationError";
    static const char LAUNCH_NAME[] = "LaunchError";
    size_t ls, le;

    if (find(err, len, COMPILE_FAILED)) {
        const char *diag = find(err, len, ": error: ");
        if (!diag) diag = find(err, len, COMPILE_FAILED);
        line_at(err, len, (size_t)(diag - err), &ls, &le);
        /* "/w/Main.java:3: error: ..." → "Main.java:3: error: ..." */
        const char *java = find(err + ls, le - ls, ".java:");
        if (java) {
            for (const char *p = java; p > err + ls; p--) {
                if (p[-1] == '/') {
                    ls = (size_t)(p - err);
                    break;
                }
            }
        }
        return set3(name, value, traceback, COMPILE_NAME, sizeof COMPILE_NAME - 1, err + ls,
                    le - ls, err, len);
    }

    const char *unc = find(err, len, UNCAUGHT);
    if (unc) {
        size_t at = (size_t)(unc - err);
        line_at(err, len, at, &ls, &le);
        size_t cs = at + sizeof UNCAUGHT - 1, ce = cs;
        while (ce < le && err[ce] != ':')
            ce++;
        size_t vs = ce < le ? ce + 1 : le;
        if (vs < le && err[vs] == ' ') vs++;
        /* The stack, and any further lines of the message: the JVM prints this last, so
         * the rest of stderr is the traceback. */
        size_t te = len;
        while (te > le && (err[te - 1] == '\n' || err[te - 1] == '\r'))
            te--;
        return set3(name, value, traceback, err + cs, ce - cs, err + vs, le - vs, err + ls,
                    te - ls);
    }

    if (len >= sizeof LAUNCH - 1 && memcmp(err, LAUNCH, sizeof LAUNCH - 1) == 0) {
        line_at(err, len, 0, &ls, &le);
        size_t vs = sizeof LAUNCH - 1;
        return set3(name, value, traceback, LAUNCH_NAME, sizeof LAUNCH_NAME - 1, err + vs, le - vs,
                    err, len);
    }
    return 0;
}
