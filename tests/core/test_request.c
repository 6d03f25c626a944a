/* codepane core tests: the run_code request (request.h) — the exact bodies the client
 * sends on both HTTP routes (spec §2-§4), the server's validation of them, and the D9
 * timeout table (spec sandbox.md). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "json.h"
#include "lang.h"
#include "request.h"

#define MAX_TIMEOUT     300.0
#define DEFAULT_TIMEOUT 60.0

/* ---- builders --------------------------------------------------------------------- */

TEST(request_linkurl_body_is_exact)
{
    char *body = cp_request_linkurl_body("print(1)", 8, CP_LANG_PYTHON, 60, "wuying_codespace",
                                         "link-1712345678901-000000042", "t-abc");
    CHECK_STR(body, "{\"args\":{\"code\":\"print(1)\",\"language\":\"python\",\"timeout_s\":60},"
                    "\"server\":\"wuying_codespace\","
                    "\"requestId\":\"link-1712345678901-000000042\","
                    "\"tool\":\"run_code\",\"token\":\"t-abc\"}");
    free(body);
}

TEST(request_gateway_body_carries_args_as_json_string)
{
    char *body = cp_request_gateway_body("print(1)", 8, CP_LANG_PYTHON, 60, "s-1");
    CHECK_STR(body, "{\"args\":\"{\\\"code\\\":\\\"print(1)\\\",\\\"language\\\":\\\"python\\\","
                    "\\\"timeout_s\\\":60}\",\"sessionId\":\"s-1\",\"name\":\"run_code\"}");
    free(body);
}

TEST(request_custom_timeout_120_is_sent_as_timeout_s)
{
    char *body = cp_request_linkurl_body("x", 1, CP_LANG_R, 120, "srv", "id", "tok");
    CHECK(body && strstr(body, "\"timeout_s\":120}") != NULL);
    CHECK(body && strstr(body, "timeoutS") == NULL);
    free(body);
}

/* SDK unit tests: PYTHON, python3, py → python; js, node, nodejs → javascript; case
 * folded and trimmed; the canonical name is what goes on the wire. */
TEST(request_language_aliases_go_on_the_wire_canonical)
{
    static const struct {
        const char *given, *wire;
    } cases[] = {
        {"PYTHON", "python"},     {"python3", "python"},
        {"py", "python"},         {"Python", "python"},
        {"js", "javascript"},     {"node", "javascript"},
        {"nodejs", "javascript"}, {"JavaScript", "javascript"},
        {" Java ", "java"},       {"R", "r"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cp_lang lang = cp_lang_parse(cases[i].given, strlen(cases[i].given));
        char *body = cp_request_gateway_body("1", 1, lang, 60, "s");
        char expected[160];
        snprintf(expected, sizeof expected,
                 "{\"args\":\"{\\\"code\\\":\\\"1\\\",\\\"language\\\":\\\"%s\\\","
                 "\\\"timeout_s\\\":60}\",\"sessionId\":\"s\",\"name\":\"run_code\"}",
                 cases[i].wire);
        CHECK_STR(body, expected);
        free(body);
    }
}

TEST(request_unsupported_language_message_names_ruby_and_all_four)
{
    CHECK_INT(cp_lang_parse("ruby", 4), CP_LANG_NONE);
    CHECK_INT(cp_lang_parse("bash", 4), CP_LANG_NONE);
    char msg[128];
    cp_lang_unsupported_message("ruby", 4, msg, sizeof msg);
    CHECK_STR(msg, "Unsupported language: ruby. Supported: java, javascript, python, r");
    CHECK(cp_request_linkurl_body("1", 1, CP_LANG_NONE, 60, "s", "i", "t") == NULL);
    CHECK(cp_request_gateway_body("1", 1, CP_LANG_NONE, 60, "s") == NULL);
}

TEST(request_code_bytes_are_escaped_exactly)
{
    static const char code[] = "a\"b\\c\nd\te\0f\x01h\xc3\xa9"; /* NUL and é inside */
    char *body = cp_request_linkurl_body(code, sizeof code - 1, CP_LANG_PYTHON, 5, "s", "i", "t");
    CHECK_STR(body, "{\"args\":{\"code\":\"a\\\"b\\\\c\\nd\\te\\u0000f\\u0001h\xc3\xa9\","
                    "\"language\":\"python\",\"timeout_s\":5},\"server\":\"s\",\"requestId\":\"i\","
                    "\"tool\":\"run_code\",\"token\":\"t\"}");
    free(body);
}

TEST(request_empty_code_is_sent_as_empty_string)
{
    char *body = cp_request_gateway_body("", 0, CP_LANG_JAVA, 60, "s");
    CHECK(body && strstr(body, "{\\\"code\\\":\\\"\\\",") != NULL);
    free(body);
}

/* ---- parsers: round trips --------------------------------------------------------- */

TEST(request_parse_linkurl_reads_what_the_client_built)
{
    char *body = cp_request_linkurl_body("print('hi')\n", 12, CP_LANG_PYTHON, 120,
                                         "wuying_codespace", "link-1-000000001", "t-1");
    cp_run_request req;
    char err[128] = "";
    CHECK_INT(cp_request_parse_linkurl(body, strlen(body), DEFAULT_TIMEOUT, MAX_TIMEOUT, &req, err,
                                       sizeof err),
              0);
    CHECK_STR(err, "");
    CHECK_STR(req.code, "print('hi')\n");
    CHECK_INT(req.code_len, 12);
    CHECK_STR(req.language_raw, "python");
    CHECK_INT(req.lang, CP_LANG_PYTHON);
    CHECK_DBL(req.timeout_s, 120);
    CHECK_STR(req.server, "wuying_codespace");
    CHECK_STR(req.request_id, "link-1-000000001");
    CHECK_STR(req.token, "t-1");
    CHECK(req.session_id == NULL);
    cp_run_request_free(&req);
    free(body);
}

TEST(request_parse_gateway_reads_what_the_client_built)
{
    char *body = cp_request_gateway_body("console.log(1)", 14, CP_LANG_JAVASCRIPT, 30, "s-9");
    cp_run_request req;
    char err[128] = "";
    CHECK_INT(cp_request_parse_gateway(body, strlen(body), DEFAULT_TIMEOUT, MAX_TIMEOUT, &req, err,
                                       sizeof err),
              0);
    CHECK_STR(req.code, "console.log(1)");
    CHECK_INT(req.lang, CP_LANG_JAVASCRIPT);
    CHECK_STR(req.language_raw, "javascript");
    CHECK_DBL(req.timeout_s, 30);
    CHECK_STR(req.session_id, "s-9");
    CHECK(req.server == NULL);
    CHECK(req.token == NULL);
    CHECK(req.request_id == NULL);
    cp_run_request_free(&req);
    free(body);
}

TEST(request_parse_gateway_accepts_python_sdk_separators_and_unicode)
{
    /* Py: json.dumps(args, ensure_ascii=False) with ", " and ": " separators */
    const char *body = "{\"args\": \"{\\\"code\\\": \\\"print('\xc3\xa9')\\\", \\\"language\\\": "
                       "\\\"python\\\", \\\"timeout_s\\\": 60}\", \"sessionId\": \"s-1\", "
                       "\"name\": \"run_code\"}";
    cp_run_request req;
    char err[128] = "";
    CHECK_INT(cp_request_parse_gateway(body, strlen(body), DEFAULT_TIMEOUT, MAX_TIMEOUT, &req, err,
                                       sizeof err),
              0);
    CHECK_STR(err, "");
    CHECK_STR(req.code, "print('\xc3\xa9')");
    CHECK_DBL(req.timeout_s, 60);
    cp_run_request_free(&req);
}

TEST(request_parse_keeps_raw_language_and_does_not_refuse_unsupported)
{
    const char *body = "{\"args\":{\"code\":\"puts 1\",\"language\":\" Ruby \",\"timeout_s\":60},"
                       "\"server\":\"s\",\"requestId\":\"i\",\"tool\":\"run_code\","
                       "\"token\":\"t\"}";
    cp_run_request req;
    char err[128] = "";
    CHECK_INT(cp_request_parse_linkurl(body, strlen(body), DEFAULT_TIMEOUT, MAX_TIMEOUT, &req, err,
                                       sizeof err),
              0);
    CHECK_INT(req.lang, CP_LANG_NONE);
    CHECK_STR(req.language_raw, " Ruby ");
    cp_run_request_free(&req);
}

TEST(request_parse_folds_language_case_and_aliases)
{
    const char *body = "{\"args\":{\"code\":\"1\",\"language\":\"PY\"},\"tool\":\"run_code\"}";
    cp_run_request req;
    char err[128] = "";
    CHECK_INT(cp_request_parse_linkurl(body, strlen(body), DEFAULT_TIMEOUT, MAX_TIMEOUT, &req, err,
                                       sizeof err),
              0);
    CHECK_INT(req.lang, CP_LANG_PYTHON);
    CHECK_STR(req.language_raw, "PY");
    CHECK_DBL(req.timeout_s, DEFAULT_TIMEOUT); /* timeout_s missing: the default */
    CHECK(req.server == NULL);
    CHECK(req.token == NULL);
    cp_run_request_free(&req);
}

TEST(request_parse_missing_or_null_language_reads_empty_and_unsupported)
{
    const char *bodies[] = {
        "{\"args\":{\"code\":\"1\"},\"tool\":\"run_code\"}",
        "{\"args\":{\"code\":\"1\",\"language\":null},\"tool\":\"run_code\"}",
    };
    for (size_t i = 0; i < 2; i++) {
        cp_run_request req;
        char err[128] = "";
        CHECK_INT(cp_request_parse_linkurl(bodies[i], strlen(bodies[i]), DEFAULT_TIMEOUT,
                                           MAX_TIMEOUT, &req, err, sizeof err),
                  0);
        CHECK_STR(req.language_raw, "");
        CHECK_INT(req.lang, CP_LANG_NONE);
        cp_run_request_free(&req);
    }
}

TEST(request_parse_empty_code_is_accepted)
{
    const char *body = "{\"args\":{\"code\":\"\",\"language\":\"python\"},\"tool\":\"run_code\"}";
    cp_run_request req;
    char err[128] = "";
    CHECK_INT(cp_request_parse_linkurl(body, strlen(body), DEFAULT_TIMEOUT, MAX_TIMEOUT, &req, err,
                                       sizeof err),
              0);
    CHECK_STR(req.code, "");
    CHECK_INT(req.code_len, 0);
    cp_run_request_free(&req);
}

/* ---- parsers: refusals ------------------------------------------------------------ */

/* Parse `body` with the given parser and expect exactly `msg`; the request is left clean. */
static void expect_refusal(bool gateway, const char *body, size_t len, const char *msg)
{
    cp_run_request req;
    char err[160] = "";
    int rc = gateway ? cp_request_parse_gateway(body, len, DEFAULT_TIMEOUT, MAX_TIMEOUT, &req, err,
                                                sizeof err)
                     : cp_request_parse_linkurl(body, len, DEFAULT_TIMEOUT, MAX_TIMEOUT, &req, err,
                                                sizeof err);
    CHECK_INT(rc, -1);
    CHECK_STR(err, msg);
    CHECK(req.code == NULL);
    CHECK(req.language_raw == NULL);
    CHECK(req.server == NULL);
    CHECK(req.token == NULL);
    cp_run_request_free(&req);
}

#define REFUSE_LINK(body, msg) expect_refusal(false, body, strlen(body), msg)
#define REFUSE_GW(body, msg)   expect_refusal(true, body, strlen(body), msg)

TEST(request_parse_refuses_code_with_nul_escape)
{
    REFUSE_LINK("{\"args\":{\"code\":\"print(1)\\u0000rm\",\"language\":\"python\"},"
                "\"tool\":\"run_code\"}",
                "code must not contain NUL characters (\\u0000)");
    /* built by our own client from code holding a NUL byte */
    char *body = cp_request_gateway_body("a\0b", 3, CP_LANG_PYTHON, 60, "s");
    REFUSE_GW(body, "code must not contain NUL characters (\\u0000)");
    free(body);
}

TEST(request_parse_escaped_backslash_u0000_is_not_a_nul)
{
    /* the code is the six characters \u0000, not a NUL */
    const char *body = "{\"args\":{\"code\":\"\\\\u0000\",\"language\":\"python\"},"
                       "\"tool\":\"run_code\"}";
    cp_run_request req;
    char err[128] = "";
    CHECK_INT(cp_request_parse_linkurl(body, strlen(body), DEFAULT_TIMEOUT, MAX_TIMEOUT, &req, err,
                                       sizeof err),
              0);
    CHECK_STR(req.code, "\\u0000");
    cp_run_request_free(&req);
}

TEST(request_parse_refuses_nul_in_other_fields_naming_them)
{
    REFUSE_LINK("{\"args\":{\"code\":\"1\"},\"tool\":\"run_code\",\"token\":\"t\\u0000x\"}",
                "token must not contain NUL characters (\\u0000)");
    REFUSE_LINK("{\"args\":{\"code\":\"1\",\"language\":\"py\\u0000\"},\"tool\":\"run_code\"}",
                "language must not contain NUL characters (\\u0000)");
}

TEST(request_parse_refuses_wrong_or_missing_tool)
{
    REFUSE_LINK("{\"args\":{\"code\":\"1\"},\"tool\":\"shell\"}",
                "unknown tool \"shell\": only \"run_code\" is supported");
    REFUSE_LINK("{\"args\":{\"code\":\"1\"}}", "tool is required and must be \"run_code\"");
    REFUSE_LINK("{\"args\":{\"code\":\"1\"},\"tool\":7}",
                "tool is required and must be \"run_code\"");
    /* the gateway names the tool in "name"; "tool" there means nothing */
    REFUSE_GW("{\"args\":\"{}\",\"tool\":\"run_code\"}",
              "name is required and must be \"run_code\"");
    REFUSE_GW("{\"args\":\"{}\",\"name\":\"RUN_CODE\"}",
              "unknown name \"RUN_CODE\": only \"run_code\" is supported");
}

TEST(request_parse_cuts_a_long_tool_name_in_the_message)
{
    char body[300], name[101];
    memset(name, 'x', 100);
    name[100] = '\0';
    snprintf(body, sizeof body, "{\"args\":{\"code\":\"1\"},\"tool\":\"%s\"}", name);
    char expected[160];
    snprintf(expected, sizeof expected, "unknown tool \"%.64s...\": only \"run_code\" is supported",
             name);
    REFUSE_LINK(body, expected);
}

TEST(request_parse_linkurl_refuses_args_that_are_not_an_object)
{
    REFUSE_LINK("{\"tool\":\"run_code\"}", "args is required and must be a JSON object");
    REFUSE_LINK("{\"args\":\"{\\\"code\\\":\\\"1\\\"}\",\"tool\":\"run_code\"}",
                "args is required and must be a JSON object");
    REFUSE_LINK("{\"args\":[],\"tool\":\"run_code\"}",
                "args is required and must be a JSON object");
}

TEST(request_parse_gateway_refuses_args_that_are_not_a_json_string_of_an_object)
{
    REFUSE_GW("{\"args\":{\"code\":\"1\"},\"name\":\"run_code\"}",
              "args is required and must be a JSON string holding a JSON object");
    REFUSE_GW("{\"name\":\"run_code\"}",
              "args is required and must be a JSON string holding a JSON object");
    REFUSE_GW("{\"args\":\"{code: 1}\",\"name\":\"run_code\"}",
              "args (a JSON string) is not valid JSON (invalid JSON)");
    REFUSE_GW("{\"args\":\"[1]\",\"name\":\"run_code\"}",
              "args (a JSON string) must be a JSON object");
    REFUSE_GW("{\"args\":\"\",\"name\":\"run_code\"}",
              "args (a JSON string) is not valid JSON (empty JSON text)");
}

TEST(request_parse_refuses_missing_or_non_string_code)
{
    REFUSE_LINK("{\"args\":{\"language\":\"python\"},\"tool\":\"run_code\"}",
                "code is required and must be a string");
    REFUSE_LINK("{\"args\":{\"code\":null},\"tool\":\"run_code\"}",
                "code is required and must be a string");
    REFUSE_LINK("{\"args\":{\"code\":42},\"tool\":\"run_code\"}", "code must be a string");
    REFUSE_GW("{\"args\":\"{\\\"code\\\":[\\\"x\\\"]}\",\"name\":\"run_code\"}",
              "code must be a string");
}

TEST(request_parse_refuses_non_string_language_and_ids)
{
    REFUSE_LINK("{\"args\":{\"code\":\"1\",\"language\":3},\"tool\":\"run_code\"}",
                "language must be a string");
    REFUSE_LINK("{\"args\":{\"code\":\"1\"},\"tool\":\"run_code\",\"server\":1}",
                "server must be a string");
    REFUSE_LINK("{\"args\":{\"code\":\"1\"},\"tool\":\"run_code\",\"requestId\":{}}",
                "requestId must be a string");
    REFUSE_LINK("{\"args\":{\"code\":\"1\"},\"tool\":\"run_code\",\"token\":false}",
                "token must be a string");
    REFUSE_GW("{\"args\":\"{\\\"code\\\":\\\"1\\\"}\",\"name\":\"run_code\",\"sessionId\":5}",
              "sessionId must be a string");
}

TEST(request_parse_refuses_bodies_that_are_not_json_objects)
{
    REFUSE_LINK("not json", "the request body is not valid JSON (invalid JSON)");
    REFUSE_LINK("[]", "the request body must be a JSON object");
    REFUSE_GW("\"run_code\"", "the request body must be a JSON object");
    expect_refusal(false, "", 0, "the request body is not valid JSON (empty JSON text)");
    expect_refusal(true, NULL, 0, "the request body is not valid JSON (empty JSON text)");
    REFUSE_LINK("{\"args\":{\"code\":\"1\"},\"tool\":\"run_code\"} x",
                "the request body is not valid JSON (invalid JSON: trailing characters)");
}

TEST(request_parse_reads_exactly_len_bytes)
{
    /* the body is followed by bytes that are not part of it */
    const char *buf = "{\"args\":{\"code\":\"1\"},\"tool\":\"run_code\"}GARBAGE";
    size_t len = strlen(buf) - strlen("GARBAGE");
    cp_run_request req;
    char err[128] = "";
    CHECK_INT(
        cp_request_parse_linkurl(buf, len, DEFAULT_TIMEOUT, MAX_TIMEOUT, &req, err, sizeof err), 0);
    CHECK_STR(req.code, "1");
    cp_run_request_free(&req);
}

/* ---- the D9 timeout table --------------------------------------------------------- */

/* cp_timeout_from_json on the JSON literal `lit` (NULL: the value is missing). */
static int timeout_of(const char *lit, double *out, char *err, size_t errcap)
{
    cJSON *v = lit ? cp_json_parse(lit, strlen(lit), NULL, 0) : NULL;
    CHECK(lit == NULL || v != NULL);
    *out = -12345;
    err[0] = '\0';
    int rc = cp_timeout_from_json(v, DEFAULT_TIMEOUT, MAX_TIMEOUT, out, err, errcap);
    cJSON_Delete(v);
    return rc;
}

TEST(timeout_table_accepts_defaults_and_clamps)
{
    static const struct {
        const char *lit;
        double expected;
    } ok[] = {
        {NULL, DEFAULT_TIMEOUT},   /* missing → default */
        {"null", DEFAULT_TIMEOUT}, /* null → default */
        {"60", 60},
        {"5.5", 5.5}, /* fractional seconds are fine */
        {"1e-3", 0.001},
        {"300", MAX_TIMEOUT},
        {"301", MAX_TIMEOUT},                 /* above max → clamped */
        {"9223372036854775808", MAX_TIMEOUT}, /* 2^63 */
        {"1e308", MAX_TIMEOUT},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        double out;
        char err[128];
        CHECK_INT(timeout_of(ok[i].lit, &out, err, sizeof err), 0);
        CHECK_DBL(out, ok[i].expected);
        CHECK_STR(err, "");
    }
}

TEST(timeout_table_refuses_every_bad_value_with_a_sentence)
{
    static const struct {
        const char *lit, *msg;
    } bad[] = {
        {"0", "timeout must be a positive number of seconds, got 0"}, /* 0 ≠ unlimited */
        {"-1", "timeout must be a positive number of seconds, got -1"},
        {"-0", "timeout must be a positive number of seconds, got -0"},
        {"-0.5", "timeout must be a positive number of seconds, got -0.5"},
        {"1e309", "timeout must be a finite number of seconds"}, /* cJSON: inf */
        {"-1e309", "timeout must be a finite number of seconds"},
        {"\"5\"", "timeout must be a positive number of seconds, not a string"},
        {"true", "timeout must be a positive number of seconds, not true"},
        {"false", "timeout must be a positive number of seconds, not false"},
        {"[]", "timeout must be a positive number of seconds, not an array"},
        {"[5]", "timeout must be a positive number of seconds, not an array"},
        {"{}", "timeout must be a positive number of seconds, not an object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        double out;
        char err[128];
        CHECK_INT(timeout_of(bad[i].lit, &out, err, sizeof err), -1);
        CHECK_STR(err, bad[i].msg);
        CHECK_DBL(out, -12345); /* untouched */
    }
}

TEST(timeout_nan_is_not_json)
{
    /* NaN cannot reach cp_timeout_from_json: it is not JSON, so the body is refused. */
    CHECK(cp_json_parse("NaN", 3, NULL, 0) == NULL);
    REFUSE_LINK("{\"args\":{\"code\":\"1\",\"timeout_s\":NaN},\"tool\":\"run_code\"}",
                "the request body is not valid JSON (invalid JSON)");
}

TEST(timeout_s_refusals_name_the_wire_field)
{
    REFUSE_LINK("{\"args\":{\"code\":\"1\",\"timeout_s\":0},\"tool\":\"run_code\"}",
                "timeout_s must be a positive number of seconds, got 0");
    REFUSE_LINK("{\"args\":{\"code\":\"1\",\"timeout_s\":\"5\"},\"tool\":\"run_code\"}",
                "timeout_s must be a positive number of seconds, not a string");
    REFUSE_GW("{\"args\":\"{\\\"code\\\":\\\"1\\\",\\\"timeout_s\\\":1e309}\","
              "\"name\":\"run_code\"}",
              "timeout_s must be a finite number of seconds");
    REFUSE_GW("{\"args\":\"{\\\"code\\\":\\\"1\\\",\\\"timeout_s\\\":-0}\",\"name\":\"run_code\"}",
              "timeout_s must be a positive number of seconds, got -0");
}

TEST(timeout_s_through_the_parsers_defaults_and_clamps)
{
    static const struct {
        const char *body;
        double expected;
    } cases[] = {
        {"{\"args\":{\"code\":\"1\",\"timeout_s\":null},\"tool\":\"run_code\"}", DEFAULT_TIMEOUT},
        {"{\"args\":{\"code\":\"1\",\"timeout_s\":9223372036854775808},\"tool\":\"run_code\"}",
         MAX_TIMEOUT},
        {"{\"args\":{\"code\":\"1\",\"timeout_s\":5.5},\"tool\":\"run_code\"}", 5.5},
        {"{\"args\":{\"code\":\"1\",\"timeoutS\":5},\"tool\":\"run_code\"}", DEFAULT_TIMEOUT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cp_run_request req;
        char err[128] = "";
        CHECK_INT(cp_request_parse_linkurl(cases[i].body, strlen(cases[i].body), DEFAULT_TIMEOUT,
                                           MAX_TIMEOUT, &req, err, sizeof err),
                  0);
        CHECK_DBL(req.timeout_s, cases[i].expected);
        cp_run_request_free(&req);
    }
}

/* Spec §1.3: which server a tool runs on, from a session's toolList. */
static void check_tool_server(const char *list, const char *expected)
{
    char *s = cp_tool_server(list, list ? strlen(list) : 0, "run_code");
    CHECK_STR(s, expected);
    free(s);
}

TEST(tool_server_reads_the_first_matching_entry)
{
    check_tool_server("[{\"name\":\"read_file\",\"server\":\"fs\"},"
                      "{\"name\":\"run_code\",\"server\":\"wuying_codespace\"},"
                      "{\"name\":\"run_code\",\"server\":\"second\"}]",
                      "wuying_codespace");
    /* The createSession reply carries toolList as a JSON string of the array. */
    check_tool_server("\"[{\\\"name\\\":\\\"run_code\\\",\\\"server\\\":\\\"s1\\\"}]\"", "s1");
}

TEST(tool_server_follows_the_sdk_fallback_keys)
{
    check_tool_server("[{\"Name\":\"run_code\",\"Server\":\"pascal\"}]", "pascal");
    check_tool_server("[{\"name\":\"run_code\",\"serverName\":\"sn\",\"Server\":\"S\"}]", "sn");
    check_tool_server("[{\"name\":\"\",\"Name\":\"run_code\",\"server\":\"\",\"Server\":\"S\"}]",
                      "S");
}

TEST(tool_server_is_absent_for_a_missing_tool_or_a_bad_list)
{
    check_tool_server(NULL, NULL);
    check_tool_server("", NULL);
    check_tool_server("not json", NULL);
    check_tool_server("{\"name\":\"run_code\",\"server\":\"x\"}", NULL);
    check_tool_server("[{\"name\":\"read_file\",\"server\":\"fs\"}]", NULL);
    /* The first match decides, even when its server is empty (no fall-through). */
    check_tool_server(
        "[{\"name\":\"run_code\",\"server\":\"\"},{\"name\":\"run_code\",\"server\":\"x\"}]", NULL);
    check_tool_server("[1,\"run_code\",null,{\"name\":\"run_code\",\"server\":\"ok\"}]", "ok");
}
