/* json: the depth limit, exact-length parsing, quoting with NUL, truthiness, and strings
 * holding NUL (cp_json_parse_keep_nul, cp_json_bytes). */
#include <stdlib.h>

#include "check.h"
#include "json.h"
#include "core_limits.h"

static cJSON *parse(const char *s, char *err)
{
    return cp_json_parse(s, strlen(s), err, 128);
}

TEST(json_parse_honours_the_given_length)
{
    char err[128];
    cJSON *v = cp_json_parse("[1,2]garbage", 5, err, sizeof err);
    CHECK(cJSON_IsArray(v));
    CHECK_INT(cJSON_GetArraySize(v), 2);
    cJSON_Delete(v);
}

TEST(json_parse_rejects_trailing_text_and_empty_input)
{
    char err[128];
    CHECK(parse("{} x", err) == NULL);
    CHECK_STR(err, "invalid JSON: trailing characters");
    CHECK(parse("", err) == NULL);
    CHECK_STR(err, "empty JSON text");
    CHECK(parse("{\"a\":", err) == NULL);
    CHECK_STR(err, "invalid JSON");
    CHECK(parse("NaN", err) == NULL);
    cJSON *v = parse(" {\"a\":1} \n", err);
    CHECK(cJSON_IsObject(v));
    cJSON_Delete(v);
}

TEST(json_parse_refuses_nesting_past_the_limit)
{
    /* D3: '[' × 1e6 must be a parse error, not a stack overflow. */
    size_t n = 1000000;
    char *deep = malloc(n);
    memset(deep, '[', n);
    char err[128];
    CHECK(cp_json_parse(deep, n, err, sizeof err) == NULL);
    CHECK_STR(err, "JSON nested too deeply");
    free(deep);

    char ok[2 * CP_JSON_MAX_DEPTH + 1], over[2 * CP_JSON_MAX_DEPTH + 3];
    memset(ok, '[', CP_JSON_MAX_DEPTH);
    memset(ok + CP_JSON_MAX_DEPTH, ']', CP_JSON_MAX_DEPTH);
    ok[2 * CP_JSON_MAX_DEPTH] = '\0';
    cJSON *v = parse(ok, err);
    CHECK(v != NULL);
    cJSON_Delete(v);
    memset(over, '[', CP_JSON_MAX_DEPTH + 1);
    memset(over + CP_JSON_MAX_DEPTH + 1, ']', CP_JSON_MAX_DEPTH + 1);
    over[2 * CP_JSON_MAX_DEPTH + 2] = '\0';
    CHECK(parse(over, err) == NULL);
}

TEST(json_depth_scan_ignores_brackets_inside_strings)
{
    char s[4 * CP_JSON_MAX_DEPTH];
    strcpy(s, "\"");
    for (int i = 0; i < 2 * CP_JSON_MAX_DEPTH; i++) strcat(s, "[");
    strcat(s, "\\\"\"");
    char err[128];
    cJSON *v = parse(s, err);
    CHECK(cJSON_IsString(v));
    cJSON_Delete(v);
}

TEST(json_quote_escapes_controls_quotes_and_nul)
{
    char *q = cp_json_quote("a\"b\\c\n\t\x01\x00z\xC3\xA9", 12);
    CHECK_STR(q, "\"a\\\"b\\\\c\\n\\t\\u0001\\u0000z\xC3\xA9\"");
    free(q);
    q = cp_json_quote("", 0);
    CHECK_STR(q, "\"\"");
    free(q);
}

TEST(json_nul_escape_is_detected_outside_escaped_backslashes)
{
    CHECK(cp_json_has_nul_escape("\"a\\u0000b\"", 10));
    CHECK(!cp_json_has_nul_escape("\"a\\\\u0000b\"", 11)); /* an escaped backslash, then text */
    CHECK(!cp_json_has_nul_escape("\"a\\u0001\"", 9));
    CHECK(cp_json_has_nul_escape("\"\\\\\\u0000\"", 10));
}

TEST(json_truthiness_follows_python)
{
    char err[128];
    const char *falsy[] = {"false", "null", "0", "0.0", "\"\"", "[]", "{}"};
    const char *truthy[] = {"true", "1", "-0.5", "\"x\"", "[0]", "{\"a\":0}"};
    for (size_t i = 0; i < sizeof falsy / sizeof falsy[0]; i++) {
        cJSON *v = parse(falsy[i], err);
        CHECK(v && !cp_json_truthy(v));
        cJSON_Delete(v);
    }
    for (size_t i = 0; i < sizeof truthy / sizeof truthy[0]; i++) {
        cJSON *v = parse(truthy[i], err);
        CHECK(v && cp_json_truthy(v));
        cJSON_Delete(v);
    }
    CHECK(!cp_json_truthy(NULL));
}

/* ---- strings holding NUL: cp_json_parse_keep_nul, cp_json_bytes ------------------------- */

static cJSON *parse_keep(const char *s, size_t len)
{
    char err[128];
    cJSON *v = cp_json_parse_keep_nul(s, len, err, sizeof err);
    CHECK(v != NULL);
    return v;
}

/* item is a string value whose bytes are exactly expected[0..explen), NUL-terminated. */
static void check_bytes(const cJSON *item, const char *expected, size_t explen)
{
    char *out = NULL;
    size_t len = 0;
    CHECK(cp_json_is_string(item));
    CHECK_INT(cp_json_bytes(item, &out, &len), 1);
    CHECK_MEM(out, len, expected, explen);
    if (out) CHECK_INT(out[len], '\0');
    free(out);
}

TEST(json_keep_nul_reads_every_string_back_exact)
{
    static const struct {
        const char *text;
        size_t len; /* of text; 0: strlen */
        bool raw;   /* a raw item (the string holds NUL), else a string item */
        const char *bytes;
        size_t nbytes;
        const char *printed;
    } cases[] = {
        {"\"x\\u0000y\"", 0, true, "x\0y", 3, "\"x\\u0000y\""},
        {"\"\\u0000\"", 0, true, "\0", 1, "\"\\u0000\""},
        /* no NUL: a string item, as cp_json_parse gives it */
        {"\"pl\\u00e9in\\n\"", 0, false, "pl\xc3\xa9in\n", 7, "\"pl\xc3\xa9in\\n\""},
        /* an escaped backslash before u0000 is text, not a NUL */
        {"\"a\\\\u0000\"", 0, false, "a\\u0000", 7, "\"a\\\\u0000\""},
        /* an escaped backslash, then a real NUL escape */
        {"\"\\\\\\u0000\"", 0, true, "\\\0", 2, "\"\\\\\\u0000\""},
        /* escaped and raw 0x01 around a NUL: the rewrite's pairs must not mix them up */
        {"\"\\u0001\\u0000\x01\\u0001\"", 0, true, "\x01\0\x01\x01", 4,
         "\"\\u0001\\u0000\\u0001\\u0001\""},
        /* a raw NUL byte inside the literal, as in JSON text taken from a decoded string
         * that held NUL */
        {"\"a\0b\"", 5, true, "a\0b", 3, "\"a\\u0000b\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *text = cases[i].text;
        cJSON *v = parse_keep(text, cases[i].len ? cases[i].len : strlen(text));
        if (!v) continue;
        if (cases[i].raw ? !cJSON_IsRaw(v) : !cJSON_IsString(v))
            cp_check_fail(__FILE__, __LINE__, "case %zu: item type %d", i, v->type);
        check_bytes(v, cases[i].bytes, cases[i].nbytes);
        char *printed = cp_json_print(v);
        CHECK_STR(printed, cases[i].printed);
        free(printed);
        cJSON_Delete(v);
    }
}

TEST(json_keep_nul_turns_members_and_elements_with_nul_into_raw_items)
{
    static const char text[] = "{\"a\":\"x\\u0000y\",\"b\":[1,\"\\u0000\"],\"c\":\"plain\"}";
    cJSON *v = parse_keep(text, sizeof text - 1);
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(v, "a");
    CHECK(cJSON_IsRaw(a));
    CHECK_STR(a->valuestring, "\"x\\u0000y\"");
    check_bytes(a, "x\0y", 3);
    const cJSON *b1 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(v, "b"), 1);
    CHECK(cJSON_IsRaw(b1));
    check_bytes(b1, "\0", 1);
    CHECK_STR(cp_json_get_string(v, "c"), "plain");
    /* printing the tree reproduces the text, NUL as \u0000 */
    char *printed = cp_json_print(v);
    CHECK_STR(printed, text);
    free(printed);
    cJSON_Delete(v);
}

TEST(json_keep_nul_cuts_object_keys_at_their_first_nul)
{
    static const char text[] = "{\"k\\u0000x\":\"v\\u0000\"}";
    cJSON *v = parse_keep(text, sizeof text - 1);
    CHECK(v->child && v->child->string);
    CHECK_STR(v->child->string, "k");
    CHECK(cJSON_IsRaw(v->child));
    cJSON_Delete(v);
}

TEST(json_keep_nul_refuses_a_raw_nul_byte_after_the_value)
{
    char err[128];
    CHECK(cp_json_parse_keep_nul("[1]\0", 4, err, sizeof err) == NULL);
    CHECK_STR(err, "invalid JSON: trailing characters");
}

TEST(json_bytes_of_a_non_string_is_0_and_allocates_nothing)
{
    static const char text[] = "[1,null,true,{},[]]";
    cJSON *v = parse_keep(text, sizeof text - 1);
    cJSON_AddItemToArray(v, cJSON_CreateRaw("[1]")); /* raw, but not a string literal */
    for (const cJSON *it = v ? v->child : NULL; it; it = it->next) {
        char *out = (char *)1;
        size_t len = 7;
        CHECK(!cp_json_is_string(it));
        CHECK_INT(cp_json_bytes(it, &out, &len), 0);
        CHECK(out == NULL);
        CHECK_INT(len, 0);
    }
    cJSON_Delete(v);
    char *out = NULL;
    size_t len = 0;
    CHECK(!cp_json_is_string(NULL));
    CHECK_INT(cp_json_bytes(NULL, &out, &len), 0);
}
