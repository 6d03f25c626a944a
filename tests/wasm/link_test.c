/* Proves the core compiles and links under Emscripten: one exported entry that drives
 * lang, payload, result and utf8 through cJSON and hands back the result's JSON. */
#include <emscripten/emscripten.h>
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
