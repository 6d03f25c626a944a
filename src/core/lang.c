/* codepane core: languages (see lang.h). */
#include "lang.h"

#include <stdio.h>
#include <string.h>

#include "core_limits.h"

static const struct {
    const char *name;
    cp_lang lang;
} names[] = {
    {"python", CP_LANG_PYTHON},     {"py", CP_LANG_PYTHON},         {"python3", CP_LANG_PYTHON},
    {"javascript", CP_LANG_JAVASCRIPT}, {"js", CP_LANG_JAVASCRIPT}, {"node", CP_LANG_JAVASCRIPT},
    {"nodejs", CP_LANG_JAVASCRIPT}, {"java", CP_LANG_JAVA},         {"r", CP_LANG_R},
};

/* The white space JavaScript's String.prototype.trim removes, as far as ASCII goes. */
static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

cp_lang cp_lang_parse(const char *s, size_t len)
{
    if (!s) return CP_LANG_NONE;
    while (len && is_space((unsigned char)*s)) s++, len--;
    while (len && is_space((unsigned char)s[len - 1])) len--;
    char folded[16];
    if (len == 0 || len >= sizeof folded) return CP_LANG_NONE;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        folded[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    folded[len] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(folded, names[i].name) == 0) return names[i].lang;
    return CP_LANG_NONE;
}

const char *cp_lang_name(cp_lang lang)
{
    switch (lang) {
    case CP_LANG_PYTHON: return "python";
    case CP_LANG_JAVASCRIPT: return "javascript";
    case CP_LANG_JAVA: return "java";
    case CP_LANG_R: return "r";
    case CP_LANG_NONE: break;
    }
    return NULL;
}

const char *cp_lang_supported_list(void)
{
    return "java, javascript, python, r";
}

size_t cp_lang_unsupported_message(const char *raw, size_t len, char *buf, size_t bufcap)
{
    if (!bufcap) return 0;
    if (!raw) raw = "", len = 0;
    int cut = len > CP_LANG_ECHO_MAX;
    size_t shown = cut ? CP_LANG_ECHO_MAX : len;
    /* Never cut a UTF-8 sequence in two: back up to the start of the last one. */
    if (cut)
        while (shown > 0 && ((unsigned char)raw[shown] & 0xC0) == 0x80) shown--;
    int n = snprintf(buf, bufcap, "Unsupported language: %.*s%s. Supported: %s", (int)shown, raw,
                     cut ? "..." : "",
                     cp_lang_supported_list());
    if (n < 0) {
        buf[0] = '\0';
        return 0;
    }
    return (size_t)n < bufcap ? (size_t)n : bufcap - 1;
}
