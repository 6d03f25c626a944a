/* codepane core: languages. Turns what a user typed into one of the four canonical
 * languages of the AGB Code API, and words the refusal exactly as the TypeScript SDK.
 *
 * Ownership: every returned char* is a static string; nothing here allocates. */
#ifndef CP_LANG_H
#define CP_LANG_H

#include <stddef.h>

typedef enum {
    CP_LANG_NONE = 0, /* not a supported language */
    CP_LANG_PYTHON,
    CP_LANG_JAVASCRIPT,
    CP_LANG_JAVA,
    CP_LANG_R,
} cp_lang;

/* Trim ASCII white space, fold ASCII case, resolve aliases (py, python3 → python;
 * js, node, nodejs → javascript). `s` need not be NUL-terminated. */
cp_lang cp_lang_parse(const char *s, size_t len);

/* The canonical wire name ("python", ...), or NULL for CP_LANG_NONE. */
const char *cp_lang_name(cp_lang lang);

/* "java, javascript, python, r": the supported set, sorted, as the SDKs list it. */
const char *cp_lang_supported_list(void);

/* Write "Unsupported language: <raw>. Supported: java, javascript, python, r" (spec §7,
 * the language echoed as given) into buf, cut to bufcap-1 bytes and NUL-terminated.
 * A raw name longer than CP_LANG_ECHO_MAX bytes is echoed cut, with "..." after it.
 * Returns the length written. */
size_t cp_lang_unsupported_message(const char *raw, size_t len, char *buf, size_t bufcap);

#endif
