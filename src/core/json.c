/* codepane core: shared cJSON helpers (see json.h). */
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_limits.h"

static void set_err(char *err, size_t errcap, const char *msg)
{
    if (err && errcap) snprintf(err, errcap, "%s", msg);
}

/* One pass over the text counting bracket depth outside strings. cJSON recurses once per
 * level, so this bounds its stack use before it runs. Malformed text is left for cJSON to
 * reject; only depth is judged here. */
static bool depth_within_limit(const char *text, size_t len)
{
    size_t depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\') i++;
            else if (c == '"') in_string = false;
            continue;
        }
        if (c == '"') in_string = true;
        else if (c == '[' || c == '{') {
            if (++depth > CP_JSON_MAX_DEPTH) return false;
        } else if ((c == ']' || c == '}') && depth > 0) depth--;
    }
    return true;
}

cJSON *cp_json_parse(const char *text, size_t len, char *err, size_t errcap)
{
    if (!text || len == 0) {
        set_err(err, errcap, "empty JSON text");
        return NULL;
    }
    if (!depth_within_limit(text, len)) {
        set_err(err, errcap, "JSON nested too deeply");
        return NULL;
    }
    const char *end = NULL;
    cJSON *item = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (!item) {
        set_err(err, errcap, "invalid JSON");
        return NULL;
    }
    /* cJSON stops at the first complete value; anything but white space after it is an
     * error, as in JSON.parse. */
    for (const char *p = end; p && p < text + len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            cJSON_Delete(item);
            set_err(err, errcap, "invalid JSON: trailing characters");
            return NULL;
        }
    }
    return item;
}

bool cp_json_has_nul_escape(const char *text, size_t len)
{
    for (size_t i = 0; i + 5 < len; i++) {
        if (text[i] != '\\') continue;
        if (text[i + 1] == 'u' && text[i + 2] == '0' && text[i + 3] == '0' && text[i + 4] == '0' &&
            text[i + 5] == '0')
            return true;
        i++; /* skip the escaped character, so "\\\\u0000" is not mistaken for one */
    }
    return false;
}

char *cp_json_quote(const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t need = 3; /* quotes and NUL */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t')
            need += 2;
        else if (c < 0x20) need += 6;
        else need += 1;
    }
    char *out = malloc(need), *o = out;
    if (!out) return NULL;
    *o++ = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': *o++ = '\\'; *o++ = '"'; break;
        case '\\': *o++ = '\\'; *o++ = '\\'; break;
        case '\b': *o++ = '\\'; *o++ = 'b'; break;
        case '\f': *o++ = '\\'; *o++ = 'f'; break;
        case '\n': *o++ = '\\'; *o++ = 'n'; break;
        case '\r': *o++ = '\\'; *o++ = 'r'; break;
        case '\t': *o++ = '\\'; *o++ = 't'; break;
        default:
            if (c < 0x20) {
                memcpy(o, "\\u00", 4);
                o[4] = hex[c >> 4];
                o[5] = hex[c & 15];
                o += 6;
            } else {
                *o++ = (char)c;
            }
        }
    }
    *o++ = '"';
    *o = '\0';
    return out;
}

const char *cp_json_get_string(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

bool cp_json_truthy(const cJSON *item)
{
    if (!item || cJSON_IsNull(item) || cJSON_IsFalse(item) || cJSON_IsInvalid(item)) return false;
    if (cJSON_IsTrue(item)) return true;
    if (cJSON_IsNumber(item)) return item->valuedouble != 0;
    if (cJSON_IsString(item)) return item->valuestring && item->valuestring[0];
    if (cJSON_IsArray(item) || cJSON_IsObject(item)) return item->child != NULL;
    return true; /* raw */
}

char *cp_json_print(const cJSON *item)
{
    return cJSON_PrintUnformatted(item);
}

/* ---- strings that hold NUL ---------------------------------------------------------
 *
 * cJSON keeps strings as C strings, so "a\u0000b" comes out as "a". Program output may
 * hold NUL bytes and must survive byte-exact, so cp_json_parse_keep_nul rewrites the
 * text before cJSON sees it: inside string literals, a NUL (the escape \u0000, or a raw
 * NUL byte, which cJSON would copy and so cut at) becomes the pair \u0001\u0001 and a
 * byte 0x01 (escaped or raw) becomes \u0001\u0002. cJSON then decodes without ever
 * producing NUL, and every 0x01 in its output starts one of those pairs, so undoing the
 * pairs is unambiguous. Strings that turn out to hold NUL are stored as raw items
 * holding their JSON literal. */

#define NUL_MARK '\x01'

/* Write the rewritten text to out (when not NULL) and return its length; with out NULL
 * only measure. */
static size_t nul_rewrite(const char *text, size_t len, char *out)
{
    size_t n = 0;
    bool in_string = false;
#define EMIT(src, cnt)                                                                     \
    do {                                                                                   \
        if (out) memcpy(out + n, (src), (cnt));                                            \
        n += (cnt);                                                                        \
    } while (0)
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (!in_string) {
            in_string = c == '"';
            EMIT(&text[i], 1);
        } else if (c == '\\' && i + 5 < len && memcmp(text + i + 1, "u000", 4) == 0 &&
                   (text[i + 5] == '0' || text[i + 5] == '1')) {
            EMIT(text[i + 5] == '0' ? "\\u0001\\u0001" : "\\u0001\\u0002", 12);
            i += 5;
        } else if (c == '\\') {
            EMIT(&text[i], i + 1 < len ? 2 : 1); /* the escape and the character it escapes */
            i++;
        } else if (c == '\0') {
            EMIT("\\u0001\\u0001", 12);
        } else if (c == NUL_MARK) {
            EMIT("\\u0001\\u0002", 12);
        } else {
            in_string = c != '"';
            EMIT(&text[i], 1);
        }
    }
#undef EMIT
    return n;
}

/* Undo the pairs in place; returns the decoded length (the string may now hold NUL). */
static size_t nul_unmark(char *s)
{
    char *w = s;
    for (const char *p = s; *p; p++) {
        if (*p == NUL_MARK && (p[1] == NUL_MARK || p[1] == '\x02')) {
            *w++ = p[1] == NUL_MARK ? '\0' : NUL_MARK;
            p++;
        } else {
            *w++ = *p;
        }
    }
    size_t n = (size_t)(w - s);
    *w = '\0';
    return n;
}

/* Undo the rewrite in every key and string of the tree. */
static bool nul_restore(cJSON *item)
{
    for (; item; item = item->next) {
        if (item->string) nul_unmark(item->string); /* a key is cut at its first NUL */
        if (cJSON_IsString(item) && item->valuestring) {
            size_t n = nul_unmark(item->valuestring);
            if (strlen(item->valuestring) != n) {
                char *quoted = cp_json_quote(item->valuestring, n);
                if (!quoted) return false;
                size_t qlen = strlen(quoted);
                char *copy = cJSON_malloc(qlen + 1); /* freed by cJSON_Delete */
                if (!copy) {
                    free(quoted);
                    return false;
                }
                memcpy(copy, quoted, qlen + 1);
                free(quoted);
                cJSON_free(item->valuestring);
                item->valuestring = copy;
                item->type = (item->type & ~0xFF) | cJSON_Raw;
            }
        }
        if (item->child && !nul_restore(item->child)) return false;
    }
    return true;
}

cJSON *cp_json_parse_keep_nul(const char *text, size_t len, char *err, size_t errcap)
{
    if (!text || len == 0 || (!cp_json_has_nul_escape(text, len) && !memchr(text, '\0', len)))
        return cp_json_parse(text, len, err, errcap);
    size_t n = nul_rewrite(text, len, NULL);
    char *rewritten = malloc(n + 1);
    if (rewritten) nul_rewrite(text, len, rewritten);
    if (!rewritten) {
        set_err(err, errcap, "out of memory");
        return NULL;
    }
    cJSON *item = cp_json_parse(rewritten, n, err, errcap);
    free(rewritten);
    if (item && !nul_restore(item)) {
        cJSON_Delete(item);
        set_err(err, errcap, "out of memory");
        return NULL;
    }
    return item;
}

static int hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= c - '0';
        else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
        else return -1;
    }
    return v;
}

/* Decode a JSON string literal (with its quotes) into out, which has room for len bytes.
 * Returns the decoded length, or (size_t)-1 when the literal is malformed. */
static size_t unquote(const char *lit, size_t len, char *out)
{
    if (len < 2 || lit[0] != '"' || lit[len - 1] != '"') return (size_t)-1;
    char *o = out;
    for (size_t i = 1; i + 1 < len; i++) {
        char c = lit[i];
        if (c != '\\') {
            *o++ = c;
            continue;
        }
        if (++i >= len - 1) return (size_t)-1;
        switch (lit[i]) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            if (i + 4 >= len - 1) return (size_t)-1;
            long cp = hex4(lit + i + 1);
            if (cp < 0) return (size_t)-1;
            i += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF && i + 6 < len - 1 && lit[i + 1] == '\\' &&
                lit[i + 2] == 'u') {
                long lo = hex4(lit + i + 3);
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    i += 6;
                }
            }
            if (cp < 0x80) {
                *o++ = (char)cp;
            } else if (cp < 0x800) {
                *o++ = (char)(0xC0 | (cp >> 6));
                *o++ = (char)(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                *o++ = (char)(0xE0 | (cp >> 12));
                *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
                *o++ = (char)(0x80 | (cp & 0x3F));
            } else {
                *o++ = (char)(0xF0 | (cp >> 18));
                *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
                *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
                *o++ = (char)(0x80 | (cp & 0x3F));
            }
            break;
        }
        default: return (size_t)-1;
        }
    }
    return (size_t)(o - out);
}

bool cp_json_is_string(const cJSON *item)
{
    return cJSON_IsString(item) ||
           (cJSON_IsRaw(item) && item->valuestring && item->valuestring[0] == '"');
}

int cp_json_bytes(const cJSON *item, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (cJSON_IsString(item) && item->valuestring) {
        size_t n = strlen(item->valuestring);
        char *copy = malloc(n + 1);
        if (!copy) return -1;
        memcpy(copy, item->valuestring, n + 1);
        *out = copy;
        *len = n;
        return 1;
    }
    if (!cp_json_is_string(item)) return 0;
    size_t litlen = strlen(item->valuestring);
    char *buf = malloc(litlen + 1); /* decoding never grows a literal */
    if (!buf) return -1;
    size_t n = unquote(item->valuestring, litlen, buf);
    if (n == (size_t)-1) {
        free(buf);
        return 0;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 1;
}
