/* codepane core: small helpers on top of cJSON that every module shares.
 *
 * Ownership: functions returning char* or cJSON* hand the caller a heap object
 * (free with free() / cJSON_Delete()); const char* returns borrow from their argument. */
#ifndef CP_JSON_H
#define CP_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

/* Parse exactly `len` bytes of JSON text. Refuses input nested deeper than
 * CP_JSON_MAX_DEPTH before cJSON sees it (cJSON recurses per level). Returns NULL on
 * any error and, when err is not NULL, writes a one-line reason into err[0..errcap). */
cJSON *cp_json_parse(const char *text, size_t len, char *err, size_t errcap);

/* Strings holding NUL bytes. cJSON strings are C strings, so cJSON alone cuts a string at
 * its first NUL (a \u0000 escape). This is the core's one way around that, for requests,
 * tool replies and stream frames alike:
 *
 * cp_json_parse_keep_nul is cp_json_parse, but a string value holding NUL (a \u0000
 * escape, or a raw NUL byte inside the literal, as in JSON text taken from a decoded
 * string that held one) becomes a cJSON raw item whose valuestring is the value's JSON
 * literal as cp_json_quote writes it. Printing the tree (cp_json_print) reproduces it
 * with NUL as \u0000, and cp_json_bytes reads it back byte-exact. Every other string is
 * as cp_json_parse gives it; object keys are cut at their first NUL. */
cJSON *cp_json_parse_keep_nul(const char *text, size_t len, char *err, size_t errcap);

/* True for a string value: a string item, or a raw item holding a JSON string literal
 * (see cp_json_parse_keep_nul). */
bool cp_json_is_string(const cJSON *item);

/* The bytes of a string value (cp_json_is_string). Returns 1 with a heap copy in *out
 * (also NUL-terminated, so read as a C string it ends at its first NUL; caller frees) and
 * its length in *len, 0 when item is not a string (nothing allocated), -1 on OOM. */
int cp_json_bytes(const cJSON *item, char **out, size_t *len);

/* Quote and escape `len` bytes as a JSON string literal (with the quotes). Bytes are
 * taken as UTF-8 and copied as they are except for '"', '\\' and control characters,
 * which are escaped; NUL bytes become \u0000, so output may carry them. NULL on OOM. */
char *cp_json_quote(const char *s, size_t len);

/* True when the JSON text contains a \u0000 escape (cJSON would cut such a string at
 * the NUL): the server refuses code that holds one instead of running a cut copy. */
bool cp_json_has_nul_escape(const char *text, size_t len);

/* Object member helpers that treat a missing or mistyped member as absent. */
const char *cp_json_get_string(const cJSON *obj, const char *key);
/* The Python SDK's truthiness (spec §5.6): false, null, 0, "", [] and {} are falsy. */
bool cp_json_truthy(const cJSON *item);

/* Serialise compactly. Raw items are printed verbatim, so a string holding NUL (see
 * cp_json_parse_keep_nul) comes out as its literal, NUL written as \u0000. */
char *cp_json_print(const cJSON *item);

#endif
