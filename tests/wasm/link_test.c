/* Proves the core compiles and links under Emscripten: one exported entry that drives
 * lang, payload, result and utf8 through cJSON and hands back the result's JSON. */
#include <emscripten/emscripten.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lang.h"
#include "payload.h"
#include "result.h"
#include "utf8.h"

/* Parse a run_code payload for the given language name; returns the result JSON, which
 * the caller frees with free(). An unsupported language gives the SDK's refusal. */
EMSCRIPTEN_KEEPALIVE char *cp_link_test(const char *language, const char *payload)
{
    cp_result r;
    cp_result_init(&r);
    if (cp_lang_parse(language, strlen(language)) == CP_LANG_NONE) {
        char msg[256];
        cp_lang_unsupported_message(language, strlen(language), msg, sizeof msg);
        cp_result_fail(&r, msg);
    } else {
        cp_payload_parse(payload, strlen(payload), &r);
    }
    /* Run stdout through the UTF-8 cleaner too, so that module is linked and exercised. */
    for (size_t i = 0; i < r.out.count; i++) {
        cp_utf8 st;
        cp_utf8_init(&st);
        char *clean = malloc(CP_UTF8_OUT_MAX(r.out.items[i].len));
        size_t n = cp_utf8_feed(&st, r.out.items[i].ptr, r.out.items[i].len, clean);
        n += cp_utf8_finish(&st, clean + n);
        free(r.out.items[i].ptr);
        r.out.items[i].ptr = clean;
        r.out.items[i].len = n;
    }
    char *json = cp_result_to_json(&r);
    cp_result_free(&r);
    return json;
}

/* The wasm build's snprintf (src/client/small_printf.c) on every conversion it supports,
 * and on cutting: each case's return value and text, joined by '|'. Static buffer: the
 * caller must not free it. */
EMSCRIPTEN_KEEPALIVE const char *cp_link_format(void)
{
    static char out[512];
    char b[8];
    size_t at = 0;
#define CASE(...)                                                                                  \
    do {                                                                                           \
        int n_ = snprintf(b, sizeof b, __VA_ARGS__);                                               \
        at += (size_t)snprintf(out + at, sizeof out - at, "%d:%s|", n_, b);                        \
    } while (0)
    CASE("%s", "abc");
    CASE("%s", "abcdefghij"); /* cut to 7 bytes, returns 10 */
    CASE("%.*s!", 2, "xyz");
    CASE("%.*s", 0, (const char *)NULL);
    CASE("%d", INT_MIN);
    CASE("%d|%d", 0, 42);
    CASE("%g", 0.1);
    CASE("%g", -2.5e-8);
    CASE("100%%");
    CASE("%x%"); /* unsupported, written as it stands */
    CASE("%s", (const char *)NULL);
#undef CASE
    int n = snprintf(NULL, 0, "%s-%d", "ab", 7); /* n = 0: only the length */
    snprintf(out + at, sizeof out - at, "%d", n);
    return out;
}
