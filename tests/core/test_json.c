/* json: the depth limit, exact-length parsing, quoting with NUL, truthiness. */
#include <stdlib.h>

#include "check.h"
#include "json.h"
#include "limits.h"

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
