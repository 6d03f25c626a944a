/* frame: exact text of every encoder, the server-frame decoder (spec §6.3) with its SDK
 * messages, NUL bytes kept through it, and the client-frame classification of the server
 * (§12.8-9). */
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "frame.h"
#include "json.h"
#include "core_limits.h"

#define DFLT_TIMEOUT 60.0
#define MAX_TIMEOUT  600.0

static int decode(const char *text, cp_frame *f, char *err)
{
    return cp_frame_decode(text, strlen(text), f, err, 256);
}

static cp_client_frame_kind classify(const char *text, cp_run_request *req, char *err)
{
    return cp_frame_read_client(text, strlen(text), DFLT_TIMEOUT, MAX_TIMEOUT, req, err, 256);
}

/* ---- client → server encoders ------------------------------------------------------ */

TEST(frame_run_is_the_sdk_request_frame_in_compact_json)
{
    char *s = cp_frame_run("9fe1", "wuying_codespace", CP_LANG_PYTHON, 60, "print('hello')", 14);
    CHECK_STR(s, "{\"invocationId\":\"9fe1\",\"source\":\"SDK\",\"target\":\"wuying_codespace\","
                 "\"data\":{\"method\":\"run_code\",\"mode\":\"stream\",\"params\":{\"language\":"
                 "\"python\",\"timeoutS\":60,\"code\":\"print('hello')\"}}}");
    free(s);
}

TEST(frame_run_defaults_the_target_and_names_the_canonical_language)
{
    char *s = cp_frame_run("a", NULL, CP_LANG_R, 5, "cat(1)", 6);
    CHECK_STR(s, "{\"invocationId\":\"a\",\"source\":\"SDK\",\"target\":\"wuying_codespace\","
                 "\"data\":{\"method\":\"run_code\",\"mode\":\"stream\",\"params\":{\"language\":"
                 "\"r\",\"timeoutS\":5,\"code\":\"cat(1)\"}}}");
    free(s);
}

TEST(frame_run_refuses_an_unsupported_language)
{
    CHECK(cp_frame_run("a", NULL, CP_LANG_NONE, 60, "x", 1) == NULL);
}

TEST(frame_run_escapes_code_and_keeps_nul_bytes)
{
    char *s = cp_frame_run("a", "srv", CP_LANG_JAVASCRIPT, 1, "a\0\"\\\n\x01", 6);
    CHECK_STR(s,
              "{\"invocationId\":\"a\",\"source\":\"SDK\",\"target\":\"srv\",\"data\":{\"method\":"
              "\"run_code\",\"mode\":\"stream\",\"params\":{\"language\":\"javascript\","
              "\"timeoutS\":1,\"code\":\"a\\u0000\\\"\\\\\\n\\u0001\"}}}");
    free(s);
}

TEST(frame_cancel_is_the_codepane_cancel_frame)
{
    char *s = cp_frame_cancel("9fe1", NULL);
    CHECK_STR(s, "{\"invocationId\":\"9fe1\",\"source\":\"SDK\",\"target\":\"wuying_codespace\","
                 "\"data\":{\"method\":\"cancel\"}}");
    free(s);
    s = cp_frame_cancel("x", "srv");
    CHECK_STR(s,
              "{\"invocationId\":\"x\",\"source\":\"SDK\",\"target\":\"srv\",\"data\":{\"method\":"
              "\"cancel\"}}");
    free(s);
}

TEST(frame_ping_is_the_typescript_heartbeat)
{
    CHECK_STR(CP_FRAME_PING, "{\"type\":\"ping\"}");
}

/* ---- server → client encoders ------------------------------------------------------ */

TEST(frame_chunk_is_an_event_with_seq_and_raw_bytes)
{
    char *s = cp_frame_chunk("i1", "wuying_codespace", 1, false, "hello\n", 6);
    CHECK_STR(s, "{\"invocationId\":\"i1\",\"source\":\"wuying_codespace\",\"target\":\"SDK\","
                 "\"data\":{\"method\":\"run_code\",\"mode\":\"stream\",\"phase\":\"event\","
                 "\"seq\":1,\"eventType\":\"stdout\",\"chunk\":\"hello\\n\"}}");
    free(s);
    s = cp_frame_chunk("i1", NULL, 7, true, "a\0b", 3);
    CHECK_STR(s, "{\"invocationId\":\"i1\",\"source\":\"wuying_codespace\",\"target\":\"SDK\","
                 "\"data\":{\"method\":\"run_code\",\"mode\":\"stream\",\"phase\":\"event\","
                 "\"seq\":7,\"eventType\":\"stderr\",\"chunk\":\"a\\u0000b\"}}");
    free(s);
}

TEST(frame_result_maps_item_fields_to_mime_keys_in_spec_order)
{
    cp_result_item it = {0};
    it.text = "3";
    it.html = "<b>3</b>";
    it.markdown = "**3**";
    it.png = "iVBO";
    it.jpeg = "/9j/";
    it.svg = "<svg/>";
    it.json = "{\"a\": [1, 2]}";
    it.latex = "$3$";
    it.chart = "{\"mark\":\"bar\"}";
    it.is_main_result = true;
    char *s = cp_frame_result("i1", "srv", 2, &it);
    CHECK_STR(s, "{\"invocationId\":\"i1\",\"source\":\"srv\",\"target\":\"SDK\",\"data\":{"
                 "\"method\":\"run_code\",\"mode\":\"stream\",\"phase\":\"event\",\"seq\":2,"
                 "\"eventType\":\"result\",\"result\":{\"mime\":{\"text/plain\":\"3\","
                 "\"text/html\":\"<b>3</b>\",\"text/markdown\":\"**3**\",\"image/png\":\"iVBO\","
                 "\"image/jpeg\":\"/9j/\",\"image/svg+xml\":\"<svg/>\",\"application/json\":"
                 "{\"a\": [1, 2]},\"text/latex\":\"$3$\",\"application/vnd.vegalite.v4+json\":"
                 "{\"mark\":\"bar\"}},\"isMainResult\":true}}}");
    free(s);
}

TEST(frame_result_omits_unset_fields_and_quotes_invalid_json_text)
{
    cp_result_item it = {0};
    it.json = "{not json";
    char *s = cp_frame_result("i1", "srv", 3, &it);
    CHECK_STR(s, "{\"invocationId\":\"i1\",\"source\":\"srv\",\"target\":\"SDK\",\"data\":{"
                 "\"method\":\"run_code\",\"mode\":\"stream\",\"phase\":\"event\",\"seq\":3,"
                 "\"eventType\":\"result\",\"result\":{\"mime\":{\"application/json\":"
                 "\"{not json\"},\"isMainResult\":false}}}");
    free(s);
}

TEST(frame_error_event_carries_code_message_and_optional_traceback)
{
    char *s = cp_frame_error_event("i1", "srv", 4, "NameError", "name 'x' is not defined",
                                   "Traceback...\nNameError");
    CHECK_STR(s, "{\"invocationId\":\"i1\",\"source\":\"srv\",\"target\":\"SDK\",\"data\":{"
                 "\"method\":\"run_code\",\"mode\":\"stream\",\"phase\":\"event\",\"seq\":4,"
                 "\"eventType\":\"error\",\"error\":{\"code\":\"NameError\",\"message\":"
                 "\"name 'x' is not defined\",\"traceback\":\"Traceback...\\nNameError\"}}}");
    free(s);
    s = cp_frame_error_event("i1", "srv", 5, NULL, NULL, "");
    CHECK_STR(s, "{\"invocationId\":\"i1\",\"source\":\"srv\",\"target\":\"SDK\",\"data\":{"
                 "\"method\":\"run_code\",\"mode\":\"stream\",\"phase\":\"event\",\"seq\":5,"
                 "\"eventType\":\"error\",\"error\":{\"code\":\"ExecutionError\",\"message\":"
                 "\"\"}}}");
    free(s);
    s = cp_frame_error_event("i1", "srv", 6, "E", "v", NULL);
    CHECK(s && strstr(s, "traceback") == NULL);
    free(s);
}

TEST(frame_end_carries_status_count_time_and_optional_fields)
{
    char *s = cp_frame_end("i1", "srv", 2, "finished", true, 1, 0.02, NULL, NULL);
    CHECK_STR(s, "{\"invocationId\":\"i1\",\"source\":\"srv\",\"target\":\"SDK\",\"data\":{"
                 "\"method\":\"run_code\",\"mode\":\"stream\",\"phase\":\"end\",\"seq\":2,"
                 "\"status\":\"finished\",\"executionCount\":1,\"executionTime\":0.02}}");
    free(s);
    s = cp_frame_end("i1", "srv", 9, "failed", false, 0, 60, "TimeoutError", "timeout");
    CHECK_STR(s, "{\"invocationId\":\"i1\",\"source\":\"srv\",\"target\":\"SDK\",\"data\":{"
                 "\"method\":\"run_code\",\"mode\":\"stream\",\"phase\":\"end\",\"seq\":9,"
                 "\"status\":\"failed\",\"executionTime\":60,\"executionError\":\"TimeoutError\","
                 "\"reason\":\"timeout\"}}");
    free(s);
}

TEST(frame_end_writes_a_non_finite_time_as_zero)
{
    char *s = cp_frame_end("i1", "srv", 1, "finished", false, 0, 1.0 / 0.0, NULL, NULL);
    CHECK(s && strstr(s, "\"executionTime\":0}") != NULL);
    free(s);
}

TEST(frame_error_is_a_phase_error_refusal)
{
    char *s = cp_frame_error("i1", "srv", "bad request");
    CHECK_STR(s, "{\"invocationId\":\"i1\",\"source\":\"srv\",\"target\":\"SDK\",\"data\":{"
                 "\"phase\":\"error\",\"error\":\"bad request\"}}");
    free(s);
}

/* ---- decoding server frames -------------------------------------------------------- */

TEST(frame_decode_reads_id_source_target_and_object_data)
{
    cp_frame f;
    char err[256];
    CHECK_INT(decode("{\"invocationId\":\"i1\",\"source\":\"srv\",\"target\":\"SDK\","
                     "\"data\":{\"phase\":\"end\"}}",
                     &f, err),
              0);
    CHECK_STR(err, "");
    CHECK_STR(f.invocation_id, "i1");
    CHECK_STR(f.source, "srv");
    CHECK_STR(f.target, "SDK");
    CHECK(cJSON_IsObject(f.data));
    CHECK(!f.data_owned);
    CHECK_STR(cp_json_get_string(f.data, "phase"), "end");
    cp_frame_free(&f);
}

TEST(frame_decode_accepts_data_as_a_json_string_of_an_object)
{
    cp_frame f;
    char err[256];
    CHECK_INT(
        decode("{\"invocationId\":\"i1\",\"data\":\"{\\\"phase\\\":\\\"event\\\"}\"}", &f, err), 0);
    CHECK(f.data_owned);
    CHECK_STR(cp_json_get_string(f.data, "phase"), "event");
    CHECK(f.source == NULL && f.target == NULL);
    cp_frame_free(&f);
}

TEST(frame_decode_takes_request_id_when_invocation_id_is_falsy)
{
    cp_frame f;
    char err[256];
    CHECK_INT(decode("{\"requestId\":\"r1\",\"data\":{}}", &f, err), 0);
    CHECK_STR(f.invocation_id, "r1");
    cp_frame_free(&f);
    CHECK_INT(decode("{\"invocationId\":\"\",\"requestId\":\"r2\",\"data\":{}}", &f, err), 0);
    CHECK_STR(f.invocation_id, "r2");
    cp_frame_free(&f);
    CHECK_INT(decode("{\"invocationId\":\"i\",\"requestId\":\"r\",\"data\":{}}", &f, err), 0);
    CHECK_STR(f.invocation_id, "i");
    cp_frame_free(&f);
    /* A truthy non-string invocationId is taken, and refused: no fallback. */
    CHECK_INT(decode("{\"invocationId\":5,\"requestId\":\"r\",\"data\":{}}", &f, err), -1);
    CHECK_STR(err, "invocationId is required and must be a non-empty string");
    CHECK(f.invocation_id == NULL);
    cp_frame_free(&f);
}

TEST(frame_decode_ignores_non_string_source_and_target)
{
    cp_frame f;
    char err[256];
    CHECK_INT(decode("{\"invocationId\":\"i\",\"source\":1,\"target\":[],\"data\":{}}", &f, err),
              0);
    CHECK(f.source == NULL);
    CHECK(f.target == NULL);
    cp_frame_free(&f);
}

TEST(frame_decode_refusals_use_the_sdk_messages)
{
    static const struct {
        const char *text, *err, *id;
    } cases[] = {
        {"nope", "Invalid JSON message: invalid JSON", NULL},
        {"[1]", "Message must be a JSON object", NULL},
        {"{\"data\":{}}", "invocationId is required and must be a non-empty string", NULL},
        {"{\"invocationId\":\"\",\"data\":{}}",
         "invocationId is required and must be a non-empty string", NULL},
        {"{\"invocationId\":\"i\"}", "data is required and must be an object", "i"},
        {"{\"invocationId\":\"i\",\"data\":5}", "data is required and must be an object", "i"},
        {"{\"invocationId\":\"i\",\"data\":[1]}", "data is required and must be an object", "i"},
        {"{\"invocationId\":\"i\",\"data\":\"{x\"}",
         "data is a string but not valid JSON: invalid JSON", "i"},
        {"{\"invocationId\":\"i\",\"data\":\"[1]\"}",
         "data is a string but decoded JSON is not an object", "i"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cp_frame f;
        char err[256];
        CHECK_INT(decode(cases[i].text, &f, err), -1);
        CHECK_STR(err, cases[i].err);
        CHECK_STR(f.invocation_id, cases[i].id);
        cp_frame_free(&f);
    }
}

TEST(frame_decode_refuses_an_id_longer_than_the_limit)
{
    char text[CP_ID_MAX + 64], id[CP_ID_MAX + 2];
    memset(id, 'a', CP_ID_MAX + 1);
    id[CP_ID_MAX + 1] = '\0';
    snprintf(text, sizeof text, "{\"invocationId\":\"%s\",\"data\":{}}", id);
    cp_frame f;
    char err[256];
    CHECK_INT(decode(text, &f, err), -1);
    CHECK_STR(err, "invocationId is longer than 256 bytes");
    CHECK(f.invocation_id == NULL);
    cp_frame_free(&f);
    id[CP_ID_MAX] = '\0';
    snprintf(text, sizeof text, "{\"invocationId\":\"%s\",\"data\":{}}", id);
    CHECK_INT(decode(text, &f, err), 0);
    cp_frame_free(&f);
}

/* The bytes of data member key, which must be a string (NUL allowed); heap, or NULL. */
static char *data_bytes(const cp_frame *f, const char *key, size_t *len)
{
    char *out = NULL;
    *len = 0;
    CHECK_INT(cp_json_bytes(cJSON_GetObjectItemCaseSensitive(f->data, key), &out, len), 1);
    return out;
}

TEST(frame_decode_keeps_escaped_nul_and_gives_the_bytes_back)
{
    cp_frame f;
    char err[256];
    CHECK_INT(decode("{\"invocationId\":\"i\",\"data\":{\"chunk\":\"a\\u0000b\\u0000\"}}", &f, err),
              0);
    CHECK(cJSON_IsRaw(cJSON_GetObjectItemCaseSensitive(f.data, "chunk")));
    char *printed = cp_json_print(f.data);
    CHECK_STR(printed, "{\"chunk\":\"a\\u0000b\\u0000\"}");
    free(printed);
    size_t n;
    char *chunk = data_bytes(&f, "chunk", &n);
    CHECK_MEM(chunk, n, "a\0b\0", 4);
    free(chunk);
    cp_frame_free(&f);
}

TEST(frame_decode_cuts_ids_at_an_escaped_nul_as_cjson_would)
{
    cp_frame f;
    char err[256];
    CHECK_INT(
        decode("{\"invocationId\":\"ab\\u0000c\",\"target\":\"t\\u0000x\",\"data\":{}}", &f, err),
        0);
    CHECK_STR(f.invocation_id, "ab");
    CHECK_STR(f.target, "t");
    cp_frame_free(&f);
    CHECK_INT(decode("{\"invocationId\":\"\\u0000c\",\"data\":{}}", &f, err), -1);
    CHECK_STR(err, "invocationId is required and must be a non-empty string");
    cp_frame_free(&f);
}

TEST(frame_decode_does_not_take_an_escaped_backslash_before_u0000_for_nul)
{
    cp_frame f;
    char err[256];
    CHECK_INT(decode("{\"invocationId\":\"i\",\"data\":{\"c\":\"\\\\u0000\"}}", &f, err), 0);
    CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(f.data, "c")));
    CHECK_STR(cp_json_get_string(f.data, "c"), "\\u0000");
    cp_frame_free(&f);
}

TEST(frame_decode_keeps_nul_when_the_text_holds_byte_ff)
{
    /* Not UTF-8 (a text frame never is this), yet NULs are still kept exactly. */
    cp_frame f;
    char err[256];
    CHECK_INT(
        decode("{\"invocationId\":\"i\",\"data\":{\"c\":\"a\\u0000b\",\"x\":\"\xff\"}}", &f, err),
        0);
    size_t n;
    char *c = data_bytes(&f, "c", &n);
    CHECK_MEM(c, n, "a\0b", 3);
    free(c);
    CHECK_STR(cp_json_get_string(f.data, "x"), "\xff");
    cp_frame_free(&f);
}

TEST(frame_decode_keeps_nul_inside_a_data_string)
{
    cp_frame f;
    char err[256];
    /* The outer text escapes the backslash; the data string's own text escapes NUL. */
    CHECK_INT(
        decode("{\"invocationId\":\"i\",\"data\":\"{\\\"c\\\":\\\"a\\\\u0000b\\\"}\"}", &f, err),
        0);
    CHECK(f.data_owned);
    size_t n;
    char *c = data_bytes(&f, "c", &n);
    CHECK_MEM(c, n, "a\0b", 3);
    free(c);
    cp_frame_free(&f);
    /* NUL escaped in the outer text is a raw NUL byte in the data string's own text. */
    CHECK_INT(decode("{\"invocationId\":\"i\",\"data\":\"{\\\"c\\\":\\\"x\\u0000\\\"}\"}", &f, err),
              0);
    CHECK(f.data_owned);
    c = data_bytes(&f, "c", &n);
    CHECK_MEM(c, n, "x\0", 2);
    free(c);
    cp_frame_free(&f);
}

/* ---- reading client frames (server side) ------------------------------------------- */

TEST(frame_read_client_ignores_frames_without_an_id)
{
    static const char *const texts[] = {
        CP_FRAME_PING,
        "{}",
        "{\"invocationId\":null,\"data\":{}}",
        "{\"type\":\"pong\"}",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        cp_run_request req;
        char err[256];
        CHECK_INT(classify(texts[i], &req, err), CP_CLIENT_IGNORE);
        CHECK_STR(err, "");
        CHECK(req.request_id == NULL);
        cp_run_request_free(&req);
    }
}

TEST(frame_read_client_calls_unusable_text_or_ids_garbage)
{
    static const struct {
        const char *text, *err;
    } cases[] = {
        {"not json", "Invalid JSON message: invalid JSON"},
        {"[]", "Message must be a JSON object"},
        {"\"x\"", "Message must be a JSON object"},
        {"{\"invocationId\":\"\"}", "invocationId is required and must be a non-empty string"},
        {"{\"invocationId\":5}", "invocationId is required and must be a non-empty string"},
        {"{\"invocationId\":false,\"requestId\":[]}",
         "invocationId is required and must be a non-empty string"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cp_run_request req;
        char err[256];
        CHECK_INT(classify(cases[i].text, &req, err), CP_CLIENT_GARBAGE);
        CHECK_STR(err, cases[i].err);
        CHECK(req.request_id == NULL);
        cp_run_request_free(&req);
    }
}

TEST(frame_read_client_reads_a_run_request)
{
    cp_run_request req;
    char err[256];
    CHECK_INT(classify("{\"invocationId\":\"9fe1\",\"source\":\"SDK\",\"target\":\"srv\",\"data\":{"
                       "\"method\":\"run_code\",\"mode\":\"stream\",\"params\":{\"language\":"
                       "\" PY \",\"timeoutS\":30,\"code\":\"print(1)\"}}}",
                       &req, err),
              CP_CLIENT_RUN);
    CHECK_STR(err, "");
    CHECK_STR(req.request_id, "9fe1");
    CHECK_STR(req.server, "srv");
    CHECK_STR(req.language_raw, " PY ");
    CHECK_INT(req.lang, CP_LANG_PYTHON);
    CHECK_DBL(req.timeout_s, 30);
    CHECK_STR(req.code, "print(1)");
    CHECK_INT(req.code_len, 8);
    cp_run_request_free(&req);
}

TEST(frame_read_client_reads_back_what_frame_run_wrote)
{
    char *text = cp_frame_run("abc", NULL, CP_LANG_JAVA, 120, "int x = 1;\n\"q\"", 14);
    cp_run_request req;
    char err[256];
    CHECK_INT(classify(text, &req, err), CP_CLIENT_RUN);
    CHECK_STR(req.request_id, "abc");
    CHECK_STR(req.server, CP_DEFAULT_TARGET);
    CHECK_INT(req.lang, CP_LANG_JAVA);
    CHECK_DBL(req.timeout_s, 120);
    CHECK_MEM(req.code, req.code_len, "int x = 1;\n\"q\"", 14);
    cp_run_request_free(&req);
    free(text);
}

TEST(frame_read_client_defaults_timeout_and_clamps_to_the_maximum)
{
    cp_run_request req;
    char err[256];
    CHECK_INT(classify("{\"invocationId\":\"a\",\"data\":{\"method\":\"run_code\",\"mode\":"
                       "\"stream\",\"params\":{\"language\":\"r\",\"code\":\"1\"}}}",
                       &req, err),
              CP_CLIENT_RUN);
    CHECK_DBL(req.timeout_s, DFLT_TIMEOUT);
    cp_run_request_free(&req);
    CHECK_INT(
        classify("{\"invocationId\":\"a\",\"data\":{\"method\":\"run_code\",\"mode\":"
                 "\"stream\",\"params\":{\"language\":\"r\",\"timeoutS\":null,\"code\":\"1\"}}}",
                 &req, err),
        CP_CLIENT_RUN);
    CHECK_DBL(req.timeout_s, DFLT_TIMEOUT);
    cp_run_request_free(&req);
    CHECK_INT(
        classify("{\"invocationId\":\"a\",\"data\":{\"method\":\"run_code\",\"mode\":"
                 "\"stream\",\"params\":{\"language\":\"r\",\"timeoutS\":1e9,\"code\":\"1\"}}}",
                 &req, err),
        CP_CLIENT_RUN);
    CHECK_DBL(req.timeout_s, MAX_TIMEOUT);
    cp_run_request_free(&req);
}

TEST(frame_read_client_refuses_bad_timeouts_with_the_id_to_answer)
{
    static const char *const timeouts[] = {"0", "-1", "-0", "\"60\"", "true", "[]", "{}"};
    for (size_t i = 0; i < sizeof timeouts / sizeof timeouts[0]; i++) {
        char text[256];
        snprintf(text, sizeof text,
                 "{\"invocationId\":\"a\",\"data\":{\"method\":\"run_code\",\"mode\":\"stream\","
                 "\"params\":{\"language\":\"python\",\"timeoutS\":%s,\"code\":\"1\"}}}",
                 timeouts[i]);
        cp_run_request req;
        char err[256];
        CHECK_INT(classify(text, &req, err), CP_CLIENT_INVALID);
        CHECK(strncmp(err, "params.timeoutS: ", 17) == 0 && err[17] != '\0');
        CHECK_STR(req.request_id, "a");
        CHECK_STR(req.server, CP_DEFAULT_TARGET);
        cp_run_request_free(&req);
    }
}

TEST(frame_read_client_reads_a_cancel)
{
    cp_run_request req;
    char err[256];
    CHECK_INT(classify("{\"invocationId\":\"9fe1\",\"source\":\"SDK\",\"target\":\"srv\","
                       "\"data\":{\"method\":\"cancel\"}}",
                       &req, err),
              CP_CLIENT_CANCEL);
    CHECK_STR(err, "");
    CHECK_STR(req.request_id, "9fe1");
    CHECK_STR(req.server, "srv");
    CHECK(req.code == NULL);
    cp_run_request_free(&req);
}

TEST(frame_read_client_accepts_request_id_and_data_as_a_string)
{
    cp_run_request req;
    char err[256];
    CHECK_INT(classify("{\"requestId\":\"r\",\"data\":\"{\\\"method\\\":\\\"run_code\\\","
                       "\\\"mode\\\":\\\"stream\\\",\\\"params\\\":{\\\"language\\\":\\\"js\\\","
                       "\\\"code\\\":\\\"1\\\"}}\"}",
                       &req, err),
              CP_CLIENT_RUN);
    CHECK_STR(req.request_id, "r");
    CHECK_INT(req.lang, CP_LANG_JAVASCRIPT);
    cp_run_request_free(&req);
}

TEST(frame_read_client_classification_table)
{
#define RUN_DATA(params)                                                                           \
    "\"data\":{\"method\":\"run_code\",\"mode\":\"stream\",\"params\":" params "}"
    static const struct {
        const char *text, *err;
    } cases[] = {
        {"{\"invocationId\":\"a\"}", "data is required and must be an object"},
        {"{\"invocationId\":\"a\",\"data\":[]}", "data is required and must be an object"},
        {"{\"invocationId\":\"a\",\"data\":\"{\"}",
         "data is a string but not valid JSON: invalid JSON"},
        {"{\"invocationId\":\"a\",\"data\":{}}", "data.method is required and must be a string"},
        {"{\"invocationId\":\"a\",\"data\":{\"method\":7}}",
         "data.method is required and must be a string"},
        {"{\"invocationId\":\"a\",\"data\":{\"method\":\"exec\"}}",
         "unsupported data.method \"exec\"; expected \"run_code\" or \"cancel\""},
        {"{\"invocationId\":\"a\",\"data\":{\"method\":\"run_code\",\"params\":{}}}",
         "data.mode must be \"stream\""},
        {"{\"invocationId\":\"a\",\"data\":{\"method\":\"run_code\",\"mode\":\"sync\"}}",
         "data.mode must be \"stream\""},
        {"{\"invocationId\":\"a\",\"data\":{\"method\":\"run_code\",\"mode\":\"stream\"}}",
         "data.params is required and must be an object"},
        {"{\"invocationId\":\"a\"," RUN_DATA("[]") "}",
         "data.params is required and must be an object"},
        {"{\"invocationId\":\"a\"," RUN_DATA("{\"language\":\"ruby\",\"code\":\"1\"}") "}",
         "Unsupported language: ruby. Supported: java, javascript, python, r"},
        {"{\"invocationId\":\"a\"," RUN_DATA("{\"code\":\"1\"}") "}",
         "Unsupported language: . Supported: java, javascript, python, r"},
        {"{\"invocationId\":\"a\"," RUN_DATA("{\"language\":5,\"code\":\"1\"}") "}",
         "Unsupported language: 5. Supported: java, javascript, python, r"},
        {"{\"invocationId\":\"a\"," RUN_DATA("{\"language\":\"python\"}") "}",
         "params.code is required and must be a string"},
        {"{\"invocationId\":\"a\"," RUN_DATA("{\"language\":\"python\",\"code\":5}") "}",
         "params.code is required and must be a string"},
        {"{\"invocationId\":\"a\"," RUN_DATA(
             "{\"language\":\"python\",\"code\":\"a\\u0000b\"}") "}",
         "NUL characters (\\u0000) are not accepted in a frame"},
        {"{\"invocationId\":\"a\",\"data\":\"{\\\"method\\\":\\\"run_code\\\",\\\"mode\\\":"
         "\\\"stream\\\",\\\"params\\\":{\\\"language\\\":\\\"r\\\",\\\"code\\\":\\\"\\\\u0000\\\"}"
         "}\"}",
         "NUL characters (\\u0000) are not accepted in a frame"},
        /* the same with a byte 0xFF in the data string: still refused, never run cut */
        {"{\"invocationId\":\"a\",\"data\":\"{\\\"method\\\":\\\"run_code\\\",\\\"mode\\\":"
         "\\\"stream\\\",\\\"params\\\":{\\\"language\\\":\\\"r\\\",\\\"code\\\":"
         "\\\"\\\\u0000\xff\\\"}}\"}",
         "NUL characters (\\u0000) are not accepted in a frame"},
        {"{\"invocationId\":\"a\",\"target\":3," RUN_DATA(
             "{\"language\":\"r\",\"code\":\"1\"}") "}",
         "target must be a non-empty string"},
        {"{\"invocationId\":\"a\",\"target\":\"\"," RUN_DATA(
             "{\"language\":\"r\",\"code\":\"1\"}") "}",
         "target must be a non-empty string"},
    };
#undef RUN_DATA
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cp_run_request req;
        char err[256];
        cp_client_frame_kind kind = classify(cases[i].text, &req, err);
        if (kind != CP_CLIENT_INVALID || strcmp(err, cases[i].err) != 0)
            cp_check_fail(__FILE__, __LINE__, "case %zu: kind %d, err \"%s\"", i, (int)kind, err);
        CHECK_STR(req.request_id, "a");
        CHECK_STR(req.server, CP_DEFAULT_TARGET);
        CHECK(req.code == NULL);
        cp_run_request_free(&req);
    }
}

TEST(frame_read_client_keeps_the_raw_language_of_a_refusal)
{
    cp_run_request req;
    char err[256];
    CHECK_INT(classify("{\"invocationId\":\"a\",\"data\":{\"method\":\"run_code\",\"mode\":"
                       "\"stream\",\"params\":{\"language\":\" Ruby\",\"code\":\"1\"}}}",
                       &req, err),
              CP_CLIENT_INVALID);
    CHECK_STR(err, "Unsupported language:  Ruby. Supported: java, javascript, python, r");
    CHECK_STR(req.language_raw, " Ruby");
    CHECK_INT(req.lang, CP_LANG_NONE);
    cp_run_request_free(&req);
}
