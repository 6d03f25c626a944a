/* codepane core tests: the run_code payload (payload.h) — every parse path of spec §5.1
 * to §5.5, every outcome of §5.7, the LinkUrl (§3) and gateway (§4) replies, the
 * server-side builders, and the SDKs' unit-test expectations (§10.5, §10.6) restated
 * as fresh fixtures. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "payload.h"

/* ---- helpers ---------------------------------------------------------------------- */

static void parse(const char *data, cp_result *r)
{
    cp_result_init(r);
    CHECK_INT(cp_payload_parse(data, data ? strlen(data) : 0, r), 0);
}

/* errorMessage reads "" until set */
static const char *msg_of(const cp_result *r)
{
    return r->error_message ? r->error_message : "";
}

/* A success holding nothing but one main result and one stdout chunk of `text`. */
static void check_plain(const cp_result *r, const char *text)
{
    CHECK(r->success);
    CHECK_STR(msg_of(r), "");
    CHECK(r->error == NULL);
    CHECK_INT(r->nresults, 1);
    if (r->nresults == 1) {
        CHECK_STR(r->results[0].text, text);
        CHECK(r->results[0].is_main_result);
        CHECK_STR(r->results[0].html, NULL);
        CHECK_STR(r->results[0].json, NULL);
    }
    CHECK_INT(r->out.count, 1);
    if (r->out.count == 1) CHECK_MEM(r->out.items[0].ptr, r->out.items[0].len, text, strlen(text));
    CHECK_INT(r->err.count, 0);
    CHECK(!r->has_execution_count);
    CHECK_DBL(r->execution_time, 0);
}

/* The SDKs' emptyResult: failure, the message, nothing else. */
static void check_empty_failure(const cp_result *r, const char *msg)
{
    CHECK(!r->success);
    CHECK_STR(r->error_message, msg);
    CHECK_INT(r->nresults, 0);
    CHECK_INT(r->out.count, 0);
    CHECK_INT(r->err.count, 0);
    CHECK(r->error == NULL);
    CHECK(!r->has_execution_count);
    CHECK_DBL(r->execution_time, 0);
}

static void check_item(const cp_result_item *it, const char *text, bool main_result)
{
    CHECK_STR(it->text, text);
    CHECK_INT(it->is_main_result, main_result);
}

static void check_no_rich_fields(const cp_result_item *it)
{
    CHECK_STR(it->html, NULL);
    CHECK_STR(it->markdown, NULL);
    CHECK_STR(it->png, NULL);
    CHECK_STR(it->jpeg, NULL);
    CHECK_STR(it->svg, NULL);
    CHECK_STR(it->json, NULL);
    CHECK_STR(it->latex, NULL);
    CHECK_STR(it->chart, NULL);
}

/* ---- §5.1 steps 1-3: no data, plain text ------------------------------------------ */

TEST(payload_null_data_is_no_data_returned)
{
    cp_result r;
    parse(NULL, &r);
    check_empty_failure(&r, "No data returned");
    cp_result_free(&r);
}

TEST(payload_empty_string_is_no_data_returned)
{
    cp_result r;
    parse("", &r);
    check_empty_failure(&r, "No data returned");
    cp_result_free(&r);
}

TEST(payload_parse_does_not_touch_request_id)
{
    cp_result r;
    cp_result_init(&r);
    cp_result_set_request_id(&r, "keep-me");
    CHECK_INT(cp_payload_parse("{\"result\":[]}", 13, &r), 0);
    CHECK_STR(r.request_id, "keep-me");
    CHECK_INT(cp_payload_parse(NULL, 0, &r), 0);
    CHECK_STR(r.request_id, "keep-me");
    cp_result_free(&r);
}

TEST(payload_plain_string_is_main_text_success)
{
    cp_result r;
    parse("Hello, World!", &r);
    check_plain(&r, "Hello, World!");
    cp_result_free(&r);
}

TEST(payload_invalid_json_string_is_kept_as_text)
{
    cp_result r;
    parse("{invalid json", &r);
    check_plain(&r, "{invalid json");
    cp_result_free(&r);
}

TEST(payload_whitespace_only_is_plain_text)
{
    cp_result r;
    parse("  \n", &r);
    check_plain(&r, "  \n");
    cp_result_free(&r);
}

TEST(payload_json_number_is_plain_text_of_the_original)
{
    cp_result r;
    parse("42", &r);
    check_plain(&r, "42");
    cp_result_free(&r);
    parse(" 4.50 ", &r);
    check_plain(&r, " 4.50 "); /* the original text, not a reprint */
    cp_result_free(&r);
}

TEST(payload_json_string_scalar_bool_null_are_plain_text)
{
    cp_result r;
    parse("\"quoted\"", &r);
    check_plain(&r, "\"quoted\"");
    cp_result_free(&r);
    parse("true", &r);
    check_plain(&r, "true");
    cp_result_free(&r);
    parse("null", &r);
    check_plain(&r, "null");
    cp_result_free(&r);
}

TEST(payload_json_array_is_plain_text_as_in_python)
{
    cp_result r;
    parse("[{\"result\":[]}]", &r);
    check_plain(&r, "[{\"result\":[]}]");
    cp_result_free(&r);
}

TEST(payload_reads_exactly_len_bytes)
{
    const char *buf = "{\"result\":[],\"stdout\":[\"x\"]}TRAILING";
    cp_result r;
    cp_result_init(&r);
    CHECK_INT(cp_payload_parse(buf, strlen(buf) - 8, &r), 0);
    CHECK(r.success);
    CHECK_INT(r.nresults, 0);
    CHECK_INT(r.out.count, 1);
    cp_result_free(&r);
}

TEST(payload_replaces_previous_content_of_the_result)
{
    cp_result r;
    parse("first", &r);
    CHECK_INT(cp_payload_parse("second", 6, &r), 0);
    check_plain(&r, "second");
    cp_result_free(&r);
}

/* ---- §5.1 step 4: unwrap ---------------------------------------------------------- */

TEST(payload_content_text_holding_new_format_is_unwrapped)
{
    cp_result r;
    parse("{\"content\":[{\"type\":\"text\",\"text\":\"{\\\"result\\\":[{"
          "\\\"text/plain\\\":\\\"3\\\","
          "\\\"isMainResult\\\":true}],"
          "\\\"stdout\\\":[\\\"x\\\\n\\\"],\\\"execution_count\\\":4}\"}],"
          "\"isError\":false}",
          &r);
    CHECK(r.success);
    CHECK_INT(r.nresults, 1);
    check_item(&r.results[0], "3", true);
    CHECK_INT(r.out.count, 1);
    CHECK_MEM(r.out.items[0].ptr, r.out.items[0].len, "x\n", 2);
    CHECK(r.has_execution_count);
    CHECK_INT(r.execution_count, 4);
    cp_result_free(&r);
}

TEST(payload_unwrapped_execution_error_alone_falls_back_to_text)
{
    /* unwrapped into {"executionError":…}: no result array, no logs/results/content,
     * so the SDKs' fallback turns it into a successful text result */
    cp_result r;
    parse("{\"content\":[{\"text\":\"{\\\"executionError\\\":\\\"boom\\\"}\"}]}", &r);
    check_plain(&r, "{\"executionError\":\"boom\"}");
    cp_result_free(&r);
}

TEST(payload_content_text_without_result_key_is_not_unwrapped)
{
    cp_result r;
    parse("{\"content\":[{\"type\":\"text\",\"text\":\"{\\\"a\\\":1}\"}]}", &r);
    check_plain(&r, "{\"a\":1}"); /* legacy: content[0].text as it is */
    cp_result_free(&r);
}

TEST(payload_unwrapped_is_error_reports_error_in_response)
{
    cp_result r;
    parse("{\"content\":[{\"text\":\"{\\\"result\\\":[],\\\"isError\\\":true}\"}]}", &r);
    check_empty_failure(&r, "Error in response: ");
    cp_result_free(&r);
}

/* ---- §5.1 step 5: isError --------------------------------------------------------- */

TEST(payload_is_error_gives_error_in_response_with_content_text)
{
    cp_result r;
    parse("{\"isError\":true,\"content\":[{\"type\":\"text\",\"text\":\"error output\"}]}", &r);
    check_empty_failure(&r, "Error in response: error output");
    cp_result_free(&r);
}

TEST(payload_is_error_joins_object_items_with_semicolons)
{
    cp_result r;
    parse("{\"isError\":true,\"content\":[{\"text\":\"a\"},\"not an object\",{\"type\":\"text\"},"
          "{\"text\":null},{\"text\":\"\"},{\"text\":\"b\"}]}",
          &r);
    check_empty_failure(&r, "Error in response: a; Unknown error; Unknown error; ; b");
    cp_result_free(&r);
}

TEST(payload_is_error_without_content_has_empty_detail)
{
    cp_result r;
    parse("{\"isError\":1}", &r);
    check_empty_failure(&r, "Error in response: ");
    cp_result_free(&r);
}

TEST(payload_is_error_wins_over_rich_format)
{
    /* §5.1 step 5 runs before format detection: logs/results are never read */
    cp_result r;
    parse("{\"isError\":true,\"logs\":{\"stdout\":[\"out\"]},\"results\":[{\"text\":\"t\"}],"
          "\"error\":{\"name\":\"E\",\"value\":\"v\"},\"content\":[{\"text\":\"error output\"}]}",
          &r);
    check_empty_failure(&r, "Error in response: error output");
    cp_result_free(&r);
}

TEST(payload_falsy_is_error_is_not_an_error)
{
    cp_result r;
    parse("{\"isError\":false,\"result\":[]}", &r);
    CHECK(r.success);
    cp_result_free(&r);
    parse("{\"isError\":\"\",\"result\":[]}", &r);
    CHECK(r.success);
    cp_result_free(&r);
    parse("{\"isError\":0,\"result\":[]}", &r);
    CHECK(r.success);
    cp_result_free(&r);
}

/* ---- §5.2 new format -------------------------------------------------------------- */

TEST(payload_new_format_text_plain_and_is_main_result)
{
    cp_result r;
    parse("{\"result\":[{\"text/plain\":\"2\",\"isMainResult\":true}],\"stdout\":[\"hello\\n\","
          "\"world\\n\"],\"stderr\":[\"warn\\n\"],\"execution_count\":3,\"execution_time\":0.25}",
          &r);
    CHECK(r.success);
    CHECK_STR(msg_of(&r), "");
    CHECK(r.error == NULL);
    CHECK_INT(r.nresults, 1);
    check_item(&r.results[0], "2", true);
    check_no_rich_fields(&r.results[0]);
    CHECK_INT(r.out.count, 2); /* chunks verbatim: not joined, not split */
    CHECK_MEM(r.out.items[0].ptr, r.out.items[0].len, "hello\n", 6);
    CHECK_MEM(r.out.items[1].ptr, r.out.items[1].len, "world\n", 6);
    CHECK_INT(r.err.count, 1);
    CHECK_MEM(r.err.items[0].ptr, r.err.items[0].len, "warn\n", 5);
    CHECK(r.has_execution_count);
    CHECK_INT(r.execution_count, 3);
    CHECK_DBL(r.execution_time, 0.25);
    cp_result_free(&r);
}

TEST(payload_new_format_maps_every_mime_key)
{
    cp_result r;
    parse("{\"result\":[{\"text/plain\":\"<Figure>\",\"text/html\":\"<b>h</b>\","
          "\"text/markdown\":\"# m\",\"image/png\":\"iVBORw0KGgo=\",\"image/jpeg\":\"/9j/4AAQ\","
          "\"image/svg+xml\":\"<svg></svg>\",\"application/json\":{\"a\":[1,2,{\"b\":null}]},"
          "\"text/latex\":\"$x^2$\",\"application/vnd.vegalite.v4+json\":{\"mark\":\"bar\","
          "\"data\":{\"values\":[{\"x\":1}]}},\"isMainResult\":false}]}",
          &r);
    CHECK(r.success);
    CHECK_INT(r.nresults, 1);
    const cp_result_item *it = &r.results[0];
    CHECK_STR(it->text, "<Figure>");
    CHECK_STR(it->html, "<b>h</b>");
    CHECK_STR(it->markdown, "# m");
    CHECK_STR(it->png, "iVBORw0KGgo=");
    CHECK_STR(it->jpeg, "/9j/4AAQ");
    CHECK_STR(it->svg, "<svg></svg>");
    CHECK_STR(it->json, "{\"a\":[1,2,{\"b\":null}]}"); /* JSON text of the value */
    CHECK_STR(it->latex, "$x^2$");
    CHECK_STR(it->chart, "{\"mark\":\"bar\",\"data\":{\"values\":[{\"x\":1}]}}");
    CHECK(!it->is_main_result);
    cp_result_free(&r);
}

TEST(payload_new_format_vegalite_v5_maps_to_chart_and_v4_wins)
{
    cp_result r;
    parse("{\"result\":[{\"application/vnd.vegalite.v5+json\":{\"v\":5}},"
          "{\"application/vnd.vegalite.v4+json\":{\"v\":4},"
          "\"application/vnd.vegalite.v5+json\":{\"v\":5},\"chart\":{\"v\":0}},"
          "{\"chart\":[1,2]}]}",
          &r);
    CHECK_INT(r.nresults, 3);
    CHECK_STR(r.results[0].chart, "{\"v\":5}");
    CHECK_STR(r.results[1].chart, "{\"v\":4}");
    CHECK_STR(r.results[2].chart, "[1,2]");
    cp_result_free(&r);
}

TEST(payload_new_format_short_keys_are_fallbacks)
{
    cp_result r;
    parse("{\"result\":[{\"text\":\"t\",\"html\":\"h\",\"markdown\":\"m\",\"png\":\"p\","
          "\"jpeg\":\"j\",\"svg\":\"s\",\"json\":{\"k\":1},\"latex\":\"l\",\"chart\":{\"c\":2},"
          "\"is_main_result\":true}]}",
          &r);
    CHECK_INT(r.nresults, 1);
    const cp_result_item *it = &r.results[0];
    CHECK_STR(it->text, "t");
    CHECK_STR(it->html, "h");
    CHECK_STR(it->markdown, "m");
    CHECK_STR(it->png, "p");
    CHECK_STR(it->jpeg, "j");
    CHECK_STR(it->svg, "s");
    CHECK_STR(it->json, "{\"k\":1}");
    CHECK_STR(it->latex, "l");
    CHECK_STR(it->chart, "{\"c\":2}");
    CHECK(it->is_main_result);
    cp_result_free(&r);
}

TEST(payload_new_format_first_truthy_alternative_wins_as_in_python)
{
    cp_result r;
    parse("{\"result\":[{\"text/plain\":\"\",\"text\":\"fallback\",\"isMainResult\":false,"
          "\"is_main_result\":true,\"application/json\":{},\"json\":[1],"
          "\"text/html\":null,\"html\":\"h\"},"
          "{\"text/plain\":\"mime\",\"text\":\"short\",\"application/json\":0}]}",
          &r);
    CHECK_INT(r.nresults, 2);
    CHECK_STR(r.results[0].text, "fallback");
    CHECK(r.results[0].is_main_result);
    CHECK_STR(r.results[0].json, "[1]");
    CHECK_STR(r.results[0].html, "h");
    CHECK_STR(r.results[1].text, "mime");
    CHECK_STR(r.results[1].json, NULL); /* 0 is falsy and there is no fallback */
    CHECK(!r.results[1].is_main_result);
    cp_result_free(&r);
}

TEST(payload_new_format_drops_other_mime_types)
{
    cp_result r;
    parse("{\"result\":[{\"text/plain\":\"x\",\"application/pdf\":\"JVBER\","
          "\"image/gif\":\"R0lG\"}]}",
          &r);
    CHECK_INT(r.nresults, 1);
    check_item(&r.results[0], "x", false);
    check_no_rich_fields(&r.results[0]);
    cp_result_free(&r);
}

TEST(payload_new_format_non_string_mime_values_become_json_text)
{
    cp_result r;
    parse("{\"result\":[{\"text/plain\":42,\"text/html\":[\"a\"]}]}", &r);
    CHECK_STR(r.results[0].text, "42");
    CHECK_STR(r.results[0].html, "[\"a\"]");
    cp_result_free(&r);
}

TEST(payload_new_format_string_item_is_decoded)
{
    cp_result r;
    parse("{\"result\":[\"{\\\"text/plain\\\":\\\"from string\\\",\\\"isMainResult\\\":true}\"]}",
          &r);
    CHECK(r.success);
    CHECK_INT(r.nresults, 1);
    check_item(&r.results[0], "from string", true);
    cp_result_free(&r);
}

TEST(payload_new_format_double_encoded_item_is_decoded_twice)
{
    /* the item is a JSON string whose content is a JSON string of the bundle */
    cp_result r;
    parse("{\"result\":[\"\\\"{\\\\\\\"text/plain\\\\\\\":\\\\\\\"double\\\\\\\","
          "\\\\\\\"text/html\\\\\\\":\\\\\\\"<i>d</i>\\\\\\\"}\\\"\"]}",
          &r);
    CHECK_INT(r.nresults, 1);
    check_item(&r.results[0], "double", false);
    CHECK_STR(r.results[0].html, "<i>d</i>");
    cp_result_free(&r);
}

TEST(payload_new_format_string_item_decoding_to_scalar_is_its_text)
{
    cp_result r;
    parse("{\"result\":[\"42\",\"\\\"just a string\\\"\",\"[1, 2]\",\"null\",\"true\"]}", &r);
    CHECK_INT(r.nresults, 5);
    check_item(&r.results[0], "42", false);
    check_item(&r.results[1], "just a string", false);
    check_item(&r.results[2], "[1,2]", false);
    check_item(&r.results[3], "null", false);
    check_item(&r.results[4], "true", false);
    cp_result_free(&r);
}

TEST(payload_new_format_undecodable_string_item_is_kept_as_text)
{
    cp_result r;
    parse("{\"result\":[\"not json {\",\"\"],\"stdout\":[]}", &r);
    CHECK(r.success);
    CHECK_INT(r.nresults, 2);
    check_item(&r.results[0], "not json {", false);
    check_no_rich_fields(&r.results[0]);
    check_item(&r.results[1], "", false);
    cp_result_free(&r);
}

TEST(payload_new_format_other_items_are_stringified)
{
    cp_result r;
    parse("{\"result\":[5,null,true,[1,\"a\"],2.5]}", &r);
    CHECK_INT(r.nresults, 5);
    check_item(&r.results[0], "5", false);
    check_item(&r.results[1], "null", false);
    check_item(&r.results[2], "true", false);
    check_item(&r.results[3], "[1,\"a\"]", false);
    check_item(&r.results[4], "2.5", false);
    cp_result_free(&r);
}

TEST(payload_new_format_execution_error_is_failure_with_that_message)
{
    cp_result r;
    parse("{\"result\":[],\"stdout\":[\"before\\n\"],\"stderr\":[\"Traceback...\\n\"],"
          "\"executionError\":\"NameError: name 'undefined_variable' is not defined\","
          "\"execution_count\":2,\"execution_time\":0.01}",
          &r);
    CHECK(!r.success);
    CHECK_STR(r.error_message, "NameError: name 'undefined_variable' is not defined");
    CHECK(r.error != NULL);
    if (r.error) {
        CHECK_STR(r.error->name, "ExecutionError");
        CHECK_STR(r.error->value, "NameError: name 'undefined_variable' is not defined");
        CHECK_STR(r.error->traceback, "");
    }
    CHECK_INT(r.out.count, 1); /* logs are kept on an execution error */
    CHECK_INT(r.err.count, 1);
    CHECK_INT(r.execution_count, 2);
    CHECK_DBL(r.execution_time, 0.01);
    cp_result_free(&r);
}

TEST(payload_new_format_falsy_execution_error_is_success)
{
    cp_result r;
    parse("{\"result\":[],\"executionError\":\"\"}", &r);
    CHECK(r.success);
    CHECK(r.error == NULL);
    cp_result_free(&r);
    parse("{\"result\":[],\"executionError\":null}", &r);
    CHECK(r.success);
    cp_result_free(&r);
}

TEST(payload_new_format_non_string_execution_error_is_its_json_text)
{
    cp_result r;
    parse("{\"result\":[],\"executionError\":{\"code\":1}}", &r);
    CHECK(!r.success);
    CHECK_STR(r.error_message, "{\"code\":1}");
    cp_result_free(&r);
}

TEST(payload_new_format_count_and_time_defaults)
{
    cp_result r;
    parse("{\"result\":[]}", &r);
    CHECK(r.success);
    CHECK(!r.has_execution_count);
    CHECK_DBL(r.execution_time, 0);
    CHECK_INT(r.out.count, 0);
    CHECK_INT(r.err.count, 0);
    cp_result_free(&r);
    parse("{\"result\":[],\"execution_count\":null,\"execution_time\":\"1.5\"}", &r);
    CHECK(!r.has_execution_count);
    CHECK_DBL(r.execution_time, 0);
    cp_result_free(&r);
    parse("{\"result\":[],\"execution_count\":0,\"execution_time\":2}", &r);
    CHECK(r.has_execution_count);
    CHECK_INT(r.execution_count, 0);
    CHECK_DBL(r.execution_time, 2);
    cp_result_free(&r);
    /* camelCase keys belong to the stream end frame, not to this payload */
    parse("{\"result\":[],\"executionCount\":5,\"executionTime\":3}", &r);
    CHECK(!r.has_execution_count);
    CHECK_DBL(r.execution_time, 0);
    cp_result_free(&r);
}

TEST(payload_new_format_odd_log_shapes)
{
    cp_result r;
    parse("{\"result\":[],\"stdout\":\"lone string\",\"stderr\":[1,null,{\"a\":1},\"s\"]}", &r);
    CHECK_INT(r.out.count, 1);
    CHECK_MEM(r.out.items[0].ptr, r.out.items[0].len, "lone string", 11);
    CHECK_INT(r.err.count, 3);
    CHECK_MEM(r.err.items[0].ptr, r.err.items[0].len, "1", 1);
    CHECK_MEM(r.err.items[1].ptr, r.err.items[1].len, "{\"a\":1}", 7);
    CHECK_MEM(r.err.items[2].ptr, r.err.items[2].len, "s", 1);
    cp_result_free(&r);
    parse("{\"result\":[],\"stdout\":{\"a\":1},\"stderr\":7}", &r);
    CHECK_INT(r.out.count, 0);
    CHECK_INT(r.err.count, 0);
    cp_result_free(&r);
}

TEST(payload_new_format_keeps_nul_bytes_in_chunks)
{
    cp_result r;
    parse("{\"result\":[],\"stdout\":[\"a\\u0000b\",\"\\u0000\",\"\\u0001\\\\u0000\"],"
          "\"stderr\":[\"x\\u0000\"]}",
          &r);
    CHECK_INT(r.out.count, 3);
    CHECK_MEM(r.out.items[0].ptr, r.out.items[0].len, "a\0b", 3);
    CHECK_MEM(r.out.items[1].ptr, r.out.items[1].len, "\0", 1);
    /* a real U+0001 and the six characters \u0000 (escaped backslash) stay as they are */
    CHECK_MEM(r.out.items[2].ptr, r.out.items[2].len, "\x01\\u0000", 7);
    CHECK_INT(r.err.count, 1);
    CHECK_MEM(r.err.items[0].ptr, r.err.items[0].len, "x\0", 2);
    cp_result_free(&r);
}

TEST(payload_nul_chunks_keep_surrounding_unicode_and_raw_control_bytes)
{
    /* an escaped astral character, a raw 0x01 byte (cJSON accepts raw control bytes in
     * strings), and a NUL, all in one chunk; and a rich-format log with a NUL */
    cp_result r;
    parse("{\"result\":[],\"stdout\":[\"\\ud83d\\ude00\x01\\u0000\xc3\xa9\"]}", &r);
    CHECK_INT(r.out.count, 1);
    CHECK_MEM(r.out.items[0].ptr, r.out.items[0].len, "\xf0\x9f\x98\x80\x01\0\xc3\xa9", 8);
    cp_result_free(&r);
    parse("{\"logs\":{\"stdout\":[\"p\\u0000q\"]}}", &r);
    CHECK_INT(r.out.count, 1);
    CHECK_MEM(r.out.items[0].ptr, r.out.items[0].len, "p\0q", 3);
    cp_result_free(&r);
}

TEST(payload_nul_in_text_fields_ends_the_text)
{
    /* result fields are C strings: text ends at the NUL, as cJSON alone would cut it */
    cp_result r;
    parse("{\"result\":[{\"text/plain\":\"ab\\u0000cd\",\"application/json\":"
          "{\"k\":\"x\\u0000y\"}},\"s\\u0000t\"],\"executionError\":\"E\\u0000F\"}",
          &r);
    CHECK_INT(r.nresults, 2);
    CHECK_STR(r.results[0].text, "ab");
    CHECK_STR(r.results[0].json, "{\"k\":\"x\\u0000y\"}"); /* JSON text keeps it escaped */
    check_item(&r.results[1], "s", false);
    CHECK(!r.success);
    CHECK_STR(r.error_message, "E");
    cp_result_free(&r);
}

TEST(payload_result_that_is_not_an_array_is_not_new_format)
{
    cp_result r;
    parse("{\"result\":{\"text/plain\":\"x\"}}", &r);
    check_plain(&r, "{\"result\":{\"text/plain\":\"x\"}}"); /* step 9 fallback */
    cp_result_free(&r);
    parse("{\"result\":\"x\",\"logs\":{\"stdout\":[\"o\"]}}", &r); /* → rich */
    CHECK(r.success);
    CHECK_INT(r.nresults, 0);
    CHECK_INT(r.out.count, 1);
    cp_result_free(&r);
}

/* ---- §5.3 rich format ------------------------------------------------------------- */

TEST(payload_rich_format_maps_every_short_key)
{
    cp_result r;
    parse("{\"logs\":{\"stdout\":[\"o1\",\"o2\"],\"stderr\":[\"e\"]},\"results\":[{\"text\":\"t\","
          "\"html\":\"h\",\"markdown\":\"m\",\"png\":\"p\",\"jpeg\":\"j\",\"svg\":\"s\","
          "\"json\":{\"k\":[true]},\"latex\":\"l\",\"chart\":{\"mark\":\"line\"},"
          "\"is_main_result\":true},{\"text\":\"second\"}],\"execution_count\":9,"
          "\"execution_time\":1.25}",
          &r);
    CHECK(r.success);
    CHECK_STR(msg_of(&r), "");
    CHECK_INT(r.nresults, 2);
    const cp_result_item *it = &r.results[0];
    CHECK_STR(it->text, "t");
    CHECK_STR(it->html, "h");
    CHECK_STR(it->markdown, "m");
    CHECK_STR(it->png, "p");
    CHECK_STR(it->jpeg, "j");
    CHECK_STR(it->svg, "s");
    CHECK_STR(it->json, "{\"k\":[true]}");
    CHECK_STR(it->latex, "l");
    CHECK_STR(it->chart, "{\"mark\":\"line\"}");
    CHECK(it->is_main_result);
    check_item(&r.results[1], "second", false);
    CHECK_INT(r.out.count, 2);
    CHECK_MEM(r.out.items[1].ptr, r.out.items[1].len, "o2", 2);
    CHECK_INT(r.err.count, 1);
    CHECK_INT(r.execution_count, 9);
    CHECK_DBL(r.execution_time, 1.25);
    cp_result_free(&r);
}

TEST(payload_rich_format_ignores_mime_keys_and_camel_main_flag)
{
    cp_result r;
    parse("{\"results\":[{\"text/plain\":\"x\",\"isMainResult\":true}]}", &r);
    CHECK_INT(r.nresults, 1);
    check_item(&r.results[0], NULL, false);
    check_no_rich_fields(&r.results[0]);
    cp_result_free(&r);
}

TEST(payload_rich_format_takes_values_as_given_without_truthy_fallback)
{
    cp_result r;
    parse("{\"results\":[{\"text\":\"\",\"json\":0,\"chart\":false,\"html\":null,\"svg\":5},"
          "\"not an object\"]}",
          &r);
    CHECK_INT(r.nresults, 2);
    CHECK_STR(r.results[0].text, "");
    CHECK_STR(r.results[0].json, "0");
    CHECK_STR(r.results[0].chart, "false");
    CHECK_STR(r.results[0].html, NULL);
    CHECK_STR(r.results[0].svg, "5");
    check_item(&r.results[1], NULL, false); /* TS: an empty result */
    check_no_rich_fields(&r.results[1]);
    cp_result_free(&r);
}

TEST(payload_rich_format_error_keeps_success_true)
{
    /* spec §5.3 quirk: an error object without isError is still a success */
    cp_result r;
    parse("{\"logs\":{\"stdout\":[],\"stderr\":[\"Traceback\"]},\"results\":[],"
          "\"error\":{\"name\":\"ZeroDivisionError\",\"value\":\"division by zero\","
          "\"traceback\":\"Traceback (most recent call last)\"}}",
          &r);
    CHECK(r.success);
    CHECK_STR(r.error_message, "division by zero");
    CHECK(r.error != NULL);
    if (r.error) {
        CHECK_STR(r.error->name, "ZeroDivisionError");
        CHECK_STR(r.error->value, "division by zero");
        CHECK_STR(r.error->traceback, "Traceback (most recent call last)");
    }
    cp_result_free(&r);
}

TEST(payload_rich_format_error_defaults)
{
    cp_result r;
    parse("{\"logs\":{},\"error\":{\"traceback\":\"tb\"}}", &r);
    CHECK(r.error != NULL);
    if (r.error) {
        CHECK_STR(r.error->name, "UnknownError");
        CHECK_STR(r.error->value, "");
        CHECK_STR(r.error->traceback, "tb");
    }
    CHECK_STR(r.error_message, "UnknownError");
    cp_result_free(&r);
    parse("{\"results\":[],\"error\":{\"name\":\"KeyError\",\"value\":\"\"}}", &r);
    CHECK_STR(r.error_message, "KeyError");
    CHECK_STR(r.error->value, "");
    cp_result_free(&r);
    parse("{\"results\":[],\"error\":\"just text\"}", &r);
    CHECK_STR(r.error->name, "UnknownError");
    CHECK_STR(r.error_message, "UnknownError");
    cp_result_free(&r);
    parse("{\"results\":[],\"error\":{}}", &r); /* {} is falsy: no error */
    CHECK(r.error == NULL);
    CHECK_STR(msg_of(&r), "");
    cp_result_free(&r);
}

TEST(payload_rich_format_is_chosen_by_key_presence_alone)
{
    cp_result r;
    parse("{\"logs\":null}", &r);
    CHECK(r.success);
    CHECK_INT(r.nresults, 0);
    CHECK_INT(r.out.count, 0);
    cp_result_free(&r);
    parse("{\"results\":[],\"content\":[{\"text\":\"ignored\"}]}", &r);
    CHECK(r.success);
    CHECK_INT(r.nresults, 0);
    cp_result_free(&r);
}

/* ---- §5.4 legacy format ----------------------------------------------------------- */

TEST(payload_legacy_content_text_is_main_result_and_stdout)
{
    cp_result r;
    parse("{\"content\":[{\"type\":\"text\",\"text\":\"legacy output\"},{\"text\":\"ignored\"}]}",
          &r);
    check_plain(&r, "legacy output");
    cp_result_free(&r);
}

TEST(payload_legacy_empty_text_is_still_success)
{
    cp_result r;
    parse("{\"content\":[{\"text\":\"\"}]}", &r);
    check_plain(&r, "");
    cp_result_free(&r);
}

TEST(payload_legacy_without_text_is_no_content_found)
{
    static const char *cases[] = {
        "{\"content\":[]}",
        "{\"content\":[{\"type\":\"image\",\"data\":\"x\"}]}",
        "{\"content\":[{\"text\":null}]}",
        "{\"content\":[\"a string item\"]}",
        "{\"content\":\"not a list\"}",
        "{\"content\":null}",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cp_result r;
        parse(cases[i], &r);
        check_empty_failure(&r, "No content found in response");
        cp_result_free(&r);
    }
}

/* ---- §5.1 step 9 fallback --------------------------------------------------------- */

TEST(payload_unknown_object_falls_back_to_text_with_its_keys)
{
    cp_result r;
    parse("{ \"unexpected_key\" : \"value\", \"n\": 1 }", &r);
    check_plain(&r, "{\"unexpected_key\":\"value\",\"n\":1}");
    cp_result_free(&r);
    parse("{}", &r);
    check_plain(&r, "{}");
    cp_result_free(&r);
}

/* ---- §3 LinkUrl replies ----------------------------------------------------------- */

static void linkurl(int status, const char *body, const char *transport, cp_result *r)
{
    cp_result_init(r);
    CHECK_INT(cp_payload_from_linkurl(status, body, body ? strlen(body) : 0, transport,
                                      "link-1-000000001", r),
              0);
    CHECK_STR(r->request_id, "link-1-000000001");
}

TEST(linkurl_reply_with_data_as_json_string_is_parsed)
{
    char *env = cp_envelope_linkurl("{\"result\":[{\"text/plain\":\"2\",\"isMainResult\":true}],"
                                    "\"stdout\":[\"hi\\n\"],\"execution_count\":1}",
                                    false);
    cp_result r;
    linkurl(200, env, NULL, &r);
    CHECK(r.success);
    CHECK_INT(r.nresults, 1);
    check_item(&r.results[0], "2", true);
    CHECK_INT(r.out.count, 1);
    CHECK_INT(r.execution_count, 1);
    cp_result_free(&r);
    free(env);
}

TEST(linkurl_reply_with_data_as_object_is_parsed)
{
    cp_result r;
    linkurl(201,
            "{\"data\":{\"result\":{\"isError\":false,\"content\":[{\"type\":\"text\","
            "\"text\":\"plain output\"}]}},\"success\":false}",
            NULL, &r);
    check_plain(&r, "plain output"); /* top-level success is not read on this route */
    cp_result_free(&r);
}

TEST(linkurl_http_status_outside_2xx_fails_with_code)
{
    static const int statuses[] = {199, 300, 401, 500};
    static const char *msgs[] = {
        "HTTP request failed with code: 199", "HTTP request failed with code: 300",
        "HTTP request failed with code: 401", "HTTP request failed with code: 500"};
    for (int i = 0; i < 4; i++) {
        cp_result r;
        linkurl(statuses[i], "{\"data\":{\"result\":{\"content\":[\"x\"]}}}", NULL, &r);
        check_empty_failure(&r, msgs[i]);
        cp_result_free(&r);
    }
}

TEST(linkurl_transport_error_is_http_request_failed)
{
    cp_result r;
    linkurl(0, NULL, "connection refused", &r);
    check_empty_failure(&r, "HTTP request failed: connection refused");
    cp_result_free(&r);
}

TEST(linkurl_body_that_is_not_json_is_http_request_failed)
{
    cp_result r;
    linkurl(200, "<html>oops</html>", NULL, &r);
    check_empty_failure(&r, "HTTP request failed: reply body: invalid JSON");
    cp_result_free(&r);
    linkurl(200, "", NULL, &r);
    check_empty_failure(&r, "HTTP request failed: reply body: empty JSON text");
    cp_result_free(&r);
}

TEST(linkurl_missing_or_null_data_fails)
{
    static const char *bodies[] = {"{}", "{\"data\":null}", "{\"result\":{}}", "[1]"};
    for (size_t i = 0; i < 4; i++) {
        cp_result r;
        linkurl(200, bodies[i], NULL, &r);
        check_empty_failure(&r, "No data field in LinkUrl response");
        cp_result_free(&r);
    }
}

TEST(linkurl_data_of_other_types_fails)
{
    static const char *bodies[] = {"{\"data\":5}", "{\"data\":true}", "{\"data\":[{}]}"};
    for (size_t i = 0; i < 3; i++) {
        cp_result r;
        linkurl(200, bodies[i], NULL, &r);
        check_empty_failure(&r, "Invalid data field type in LinkUrl response");
        cp_result_free(&r);
    }
}

TEST(linkurl_data_string_that_is_not_json_is_http_request_failed)
{
    cp_result r;
    linkurl(200, "{\"data\":\"not json\"}", NULL, &r);
    check_empty_failure(&r, "HTTP request failed: data field: invalid JSON");
    cp_result_free(&r);
}

TEST(linkurl_missing_result_fails)
{
    static const char *bodies[] = {
        "{\"data\":{}}",
        "{\"data\":\"{}\"}",
        "{\"data\":{\"result\":\"text\"}}",
        "{\"data\":{\"result\":[]}}",
        "{\"data\":\"[1]\"}",
        "{\"data\":{\"result\":null}}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        cp_result r;
        linkurl(200, bodies[i], NULL, &r);
        check_empty_failure(&r, "No result field in LinkUrl response data");
        cp_result_free(&r);
    }
}

TEST(linkurl_is_error_fails_with_content0_text)
{
    cp_result r;
    linkurl(200,
            "{\"data\":{\"result\":{\"isError\":true,\"content\":[{\"type\":\"text\","
            "\"text\":\"Unsupported language: ruby. Supported: java, javascript, python, r\"},"
            "{\"text\":\"second\"}]}}}",
            NULL, &r);
    check_empty_failure(&r, "Unsupported language: ruby. Supported: java, javascript, python, r");
    cp_result_free(&r);
}

TEST(linkurl_is_error_without_text_fails_with_default_message)
{
    cp_result r;
    linkurl(200, "{\"data\":{\"result\":{\"isError\":true,\"content\":[]}}}", NULL, &r);
    check_empty_failure(&r, "Failed to run code");
    cp_result_free(&r);
}

TEST(linkurl_content0_extraction_rules)
{
    cp_result r;
    /* a string item is the text */
    linkurl(200, "{\"data\":{\"result\":{\"content\":[\"as string\"]}}}", NULL, &r);
    check_plain(&r, "as string");
    cp_result_free(&r);
    /* text, else blob, else data — first truthy */
    linkurl(200,
            "{\"data\":{\"result\":{\"content\":[{\"text\":\"\",\"blob\":\"the blob\","
            "\"data\":\"d\"}]}}}",
            NULL, &r);
    check_plain(&r, "the blob");
    cp_result_free(&r);
    linkurl(200, "{\"data\":{\"result\":{\"content\":[{\"type\":\"image\",\"data\":\"AAAA\"}]}}}",
            NULL, &r);
    check_plain(&r, "AAAA");
    cp_result_free(&r);
    /* only content[0] counts */
    linkurl(200,
            "{\"data\":{\"result\":{\"content\":[{\"text\":\"first\"},"
            "{\"text\":\"second\"}]}}}",
            NULL, &r);
    check_plain(&r, "first");
    cp_result_free(&r);
}

TEST(linkurl_empty_tool_text_is_no_data_returned)
{
    static const char *bodies[] = {
        "{\"data\":{\"result\":{\"isError\":false,\"content\":["
        "{\"type\":\"text\",\"text\":\"\"}]}}}",
        "{\"data\":{\"result\":{}}}",
        "{\"data\":{\"result\":{\"content\":[]}}}",
        "{\"data\":{\"result\":{\"content\":[7]}}}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        cp_result r;
        linkurl(200, bodies[i], NULL, &r);
        check_empty_failure(&r, "No data returned");
        cp_result_free(&r);
    }
}

TEST(linkurl_payload_failures_pass_through)
{
    char *env = cp_envelope_linkurl("{\"result\":[],\"executionError\":\"TimeoutError\"}", false);
    cp_result r;
    linkurl(200, env, NULL, &r);
    CHECK(!r.success);
    CHECK_STR(r.error_message, "TimeoutError");
    CHECK_STR(r.error->name, "ExecutionError");
    cp_result_free(&r);
    free(env);
}

TEST(linkurl_null_request_id_reads_empty)
{
    cp_result r;
    cp_result_init(&r);
    CHECK_INT(cp_payload_from_linkurl(500, NULL, 0, NULL, NULL, &r), 0);
    CHECK_STR(r.request_id, "");
    cp_result_free(&r);
}

/* ---- §4 gateway replies ----------------------------------------------------------- */

static void gateway(int status, const char *body, const char *transport, const char *header_id,
                    cp_result *r)
{
    cp_result_init(r);
    CHECK_INT(
        cp_payload_from_gateway(status, body, body ? strlen(body) : 0, transport, header_id, r), 0);
}

TEST(gateway_reply_success_is_parsed_with_request_id)
{
    char *env = cp_envelope_gateway("req-1",
                                    "{\"result\":[{\"text/plain\":\"3\","
                                    "\"isMainResult\":true}],\"stdout\":[]}",
                                    false);
    cp_result r;
    gateway(200, env, NULL, "hdr-1", &r);
    CHECK(r.success);
    CHECK_STR(r.request_id, "req-1");
    CHECK_INT(r.nresults, 1);
    check_item(&r.results[0], "3", true);
    cp_result_free(&r);
    free(env);
}

TEST(gateway_joins_every_text_item_with_newlines)
{
    cp_result r;
    gateway(200,
            "{\"requestId\":\"r\",\"success\":true,\"data\":{\"isError\":false,\"content\":["
            "{\"type\":\"text\",\"text\":\"line 1\"},{\"type\":\"image\",\"data\":\"AAAA\"},"
            "{\"type\":\"text\"},{\"type\":\"text\",\"text\":\"line 3\"}]}}",
            NULL, NULL, &r);
    check_plain(&r, "line 1\n\nline 3");
    CHECK_STR(r.request_id, "r");
    cp_result_free(&r);
}

TEST(gateway_without_text_items_uses_content0_as_typescript_does)
{
    cp_result r;
    gateway(200,
            "{\"success\":true,\"data\":{\"content\":[{\"type\":\"resource\",\"text\":\"\","
            "\"blob\":\"b64data\"},{\"type\":\"image\",\"data\":\"img\"}]}}",
            NULL, NULL, &r);
    check_plain(&r, "b64data");
    cp_result_free(&r);
    gateway(200,
            "{\"success\":true,\"data\":{\"content\":["
            "{\"type\":\"image\",\"data\":\"img\"}]}}",
            NULL, NULL, &r);
    check_plain(&r, "img");
    cp_result_free(&r);
}

TEST(gateway_success_false_with_benign_data_is_failure)
{
    /* regression pinned by the SDKs: api-layer failure wins over a tool payload that
     * looks fine */
    cp_result r;
    gateway(200,
            "{\"requestId\":\"r-404\",\"success\":false,\"code\":\"InvalidSession.NotFound\","
            "\"message\":\"The specified session s-1 is not found\",\"httpStatusCode\":400,"
            "\"data\":{\"isError\":false,\"content\":[{\"type\":\"text\","
            "\"text\":\"{\\\"result\\\":[]}\"}]}}",
            NULL, NULL, &r);
    check_empty_failure(&r, "The specified session s-1 is not found");
    CHECK_STR(r.request_id, "r-404");
    cp_result_free(&r);
}

TEST(gateway_success_must_be_exactly_true)
{
    static const char *bodies[] = {
        "{\"data\":{\"content\":[{\"type\":\"text\",\"text\":\"x\"}]}}",
        "{\"success\":\"true\",\"data\":{\"content\":[{\"type\":\"text\",\"text\":\"x\"}]}}",
        "{\"success\":1,\"data\":{\"content\":[{\"type\":\"text\",\"text\":\"x\"}]}}",
    };
    for (size_t i = 0; i < 3; i++) {
        cp_result r;
        gateway(200, bodies[i], NULL, NULL, &r);
        check_empty_failure(&r, "Tool execution failed"); /* tool ok: its text is not used */
        cp_result_free(&r);
    }
}

TEST(gateway_http_status_must_be_200)
{
    static const int statuses[] = {201, 204, 400, 500};
    for (int i = 0; i < 4; i++) {
        cp_result r;
        gateway(statuses[i],
                "{\"success\":true,\"message\":\"\",\"data\":{\"content\":["
                "{\"type\":\"text\",\"text\":\"x\"}]}}",
                NULL, NULL, &r);
        check_empty_failure(&r, "Tool execution failed");
        cp_result_free(&r);
    }
    cp_result r;
    gateway(503, "{\"success\":false,\"message\":\"Service busy\"}", NULL, NULL, &r);
    check_empty_failure(&r, "Service busy");
    cp_result_free(&r);
}

TEST(gateway_tool_is_error_fails_with_tool_text_after_message)
{
    cp_result r;
    gateway(200,
            "{\"success\":true,\"message\":\"\",\"data\":{\"isError\":true,\"content\":["
            "{\"type\":\"text\",\"text\":\"tool failed\"},"
            "{\"type\":\"text\",\"text\":\"why\"}]}}",
            NULL, NULL, &r);
    check_empty_failure(&r, "tool failed\nwhy");
    cp_result_free(&r);
    gateway(200,
            "{\"success\":true,\"message\":\"top message\",\"data\":{\"isError\":true,"
            "\"content\":[{\"type\":\"text\",\"text\":\"tool failed\"}]}}",
            NULL, NULL, &r);
    check_empty_failure(&r, "top message");
    cp_result_free(&r);
    gateway(200, "{\"success\":true,\"data\":{\"isError\":true}}", NULL, NULL, &r);
    check_empty_failure(&r, "Tool execution failed");
    cp_result_free(&r);
}

TEST(gateway_absent_or_null_data_is_tool_success_without_text)
{
    static const char *bodies[] = {
        "{\"requestId\":\"r\",\"success\":true}",
        "{\"requestId\":\"r\",\"success\":true,\"data\":null}",
        "{\"requestId\":\"r\",\"success\":true,\"data\":{}}",
        "{\"requestId\":\"r\",\"success\":true,\"data\":{\"isError\":false,\"content\":[]}}",
    };
    for (size_t i = 0; i < 4; i++) {
        cp_result r;
        gateway(200, bodies[i], NULL, NULL, &r);
        check_empty_failure(&r, "No data returned");
        CHECK_STR(r.request_id, "r");
        cp_result_free(&r);
    }
}

TEST(gateway_transport_error_is_failed_to_call_mcp_tool)
{
    cp_result r;
    gateway(0, NULL, "timeout of 60000ms exceeded", NULL, &r);
    check_empty_failure(&r, "Failed to call MCP tool run_code: timeout of 60000ms exceeded");
    CHECK_STR(r.request_id, "");
    cp_result_free(&r);
}

TEST(gateway_body_that_is_not_json_is_the_message)
{
    cp_result r;
    gateway(502, "Bad Gateway", NULL, "hdr-502", &r);
    check_empty_failure(&r, "Bad Gateway");
    CHECK_STR(r.request_id, "hdr-502");
    cp_result_free(&r);
    gateway(200, "", NULL, NULL, &r);
    check_empty_failure(&r, "Tool execution failed");
    cp_result_free(&r);
    gateway(200, "[1,2]", NULL, NULL, &r);
    check_empty_failure(&r, "Tool execution failed");
    cp_result_free(&r);
}

TEST(gateway_request_id_falls_back_to_header)
{
    cp_result r;
    gateway(200, "{\"success\":true,\"data\":{\"content\":[{\"type\":\"text\",\"text\":\"ok\"}]}}",
            NULL, "hdr-7", &r);
    check_plain(&r, "ok");
    CHECK_STR(r.request_id, "hdr-7");
    cp_result_free(&r);
    gateway(200, "{\"requestId\":\"\",\"success\":false}", NULL, "hdr-8", &r);
    CHECK_STR(r.request_id, "hdr-8");
    cp_result_free(&r);
    gateway(200, "{\"requestId\":5,\"success\":false}", NULL, NULL, &r);
    CHECK_STR(r.request_id, "");
    cp_result_free(&r);
}

TEST(gateway_failure_envelope_reads_back_as_failure)
{
    char *env = cp_envelope_gateway_failure("req-9", 404, "InvalidSession.NotFound",
                                            "session s-1 not found");
    cp_result r;
    gateway(404, env, NULL, NULL, &r);
    check_empty_failure(&r, "session s-1 not found");
    CHECK_STR(r.request_id, "req-9");
    cp_result_free(&r);
    free(env);
}

/* ---- builders --------------------------------------------------------------------- */

TEST(payload_build_writes_the_new_format_exactly)
{
    cp_result r;
    cp_result_init(&r);
    cp_result_add_stdout(&r, "hello\n", 6);
    cp_result_add_stderr(&r, "w\0x", 3);
    cp_result_item *it = cp_result_add_item(&r);
    cp_item_set(&it->text, "<Figure>");
    cp_item_set(&it->png, "iVBOR");
    cp_item_set(&it->chart, "{\"mark\":\"bar\"}");
    it = cp_result_add_item(&r);
    cp_item_set(&it->text, "3");
    cp_item_set(&it->json, "[1,2]");
    it->is_main_result = true;
    r.has_execution_count = true;
    r.execution_count = 5;
    r.execution_time = 0.5;
    char *p = cp_payload_build(&r);
    CHECK_STR(p, "{\"result\":[{\"text/plain\":\"<Figure>\",\"image/png\":\"iVBOR\","
                 "\"application/vnd.vegalite.v4+json\":{\"mark\":\"bar\"},\"isMainResult\":false},"
                 "{\"text/plain\":\"3\",\"application/json\":[1,2],\"isMainResult\":true}],"
                 "\"stdout\":[\"hello\\n\"],\"stderr\":[\"w\\u0000x\"],\"execution_count\":5,"
                 "\"execution_time\":0.5}");
    free(p);
    cp_result_free(&r);
}

TEST(payload_build_maps_every_field_to_its_mime_key)
{
    cp_result r;
    cp_result_init(&r);
    cp_result_item *it = cp_result_add_item(&r);
    cp_item_set(&it->text, "t");
    cp_item_set(&it->html, "h");
    cp_item_set(&it->markdown, "m");
    cp_item_set(&it->png, "p");
    cp_item_set(&it->jpeg, "j");
    cp_item_set(&it->svg, "s");
    cp_item_set(&it->json, "{\"k\":1}");
    cp_item_set(&it->latex, "l");
    cp_item_set(&it->chart, "{\"c\":2}");
    char *p = cp_payload_build(&r);
    CHECK_STR(p, "{\"result\":[{\"text/plain\":\"t\",\"text/html\":\"h\",\"text/markdown\":\"m\","
                 "\"image/png\":\"p\",\"image/jpeg\":\"j\",\"image/svg+xml\":\"s\","
                 "\"application/json\":{\"k\":1},\"text/latex\":\"l\","
                 "\"application/vnd.vegalite.v4+json\":{\"c\":2},\"isMainResult\":false}],"
                 "\"stdout\":[],\"stderr\":[],\"execution_time\":0}");
    free(p);
    cp_result_free(&r);
}

TEST(payload_build_writes_execution_error_only_on_failure)
{
    cp_result r;
    cp_result_init(&r);
    char *p = cp_payload_build(&r);
    CHECK_STR(p, "{\"result\":[],\"stdout\":[],\"stderr\":[],\"execution_time\":0}");
    free(p);
    cp_result_fail(&r, "NameError: name 'x' is not defined");
    p = cp_payload_build(&r);
    CHECK_STR(p, "{\"result\":[],\"stdout\":[],\"stderr\":[],"
                 "\"executionError\":\"NameError: name 'x' is not defined\",\"execution_time\":0}");
    free(p);
    cp_result_fail(&r, "");
    p = cp_payload_build(&r);
    CHECK_STR(p, "{\"result\":[],\"stdout\":[],\"stderr\":[],"
                 "\"executionError\":\"ExecutionError\",\"execution_time\":0}");
    free(p);
    cp_result_free(&r);
}

TEST(payload_build_round_trips_through_parse)
{
    static const char out0[] = "line\0with NUL\n", out1[] = "\x01\x02\\u0000 \xe2\x9c\x93";
    static const char err0[] = "Traceback\r\n\0";
    cp_result a;
    cp_result_init(&a);
    cp_result_add_stdout(&a, out0, sizeof out0 - 1);
    cp_result_add_stdout(&a, out1, sizeof out1 - 1);
    cp_result_add_stdout(&a, "", 0);
    cp_result_add_stderr(&a, err0, sizeof err0 - 1);
    cp_result_item *it = cp_result_add_item(&a);
    cp_item_set(&it->text, "t\"q\"");
    cp_item_set(&it->html, "<p>h</p>");
    cp_item_set(&it->markdown, "*m*");
    cp_item_set(&it->png, "UE5H");
    cp_item_set(&it->jpeg, "SlBH");
    cp_item_set(&it->svg, "<svg/>");
    cp_item_set(&it->json, "{\"nested\":{\"x\":[1,2.5,\"s\\u0000\"]}}");
    cp_item_set(&it->latex, "\\frac{1}{2}");
    cp_item_set(&it->chart, "{\"$schema\":\"https://vega.github.io/schema/vega-lite/v4.json\"}");
    it->is_main_result = true;
    it = cp_result_add_item(&a);
    cp_item_set(&it->text, "second");
    a.has_execution_count = true;
    a.execution_count = 12;
    a.execution_time = 0.125;
    cp_result_fail(&a, "ZeroDivisionError: division by zero");

    char *p = cp_payload_build(&a);
    CHECK(p != NULL);
    cp_result b;
    cp_result_init(&b);
    CHECK_INT(cp_payload_parse(p, p ? strlen(p) : 0, &b), 0);
    CHECK_INT(b.success, a.success);
    CHECK_STR(b.error_message, a.error_message);
    CHECK_INT(b.has_execution_count, 1);
    CHECK_INT(b.execution_count, 12);
    CHECK_DBL(b.execution_time, 0.125);
    CHECK_INT(b.out.count, a.out.count);
    for (size_t i = 0; i < a.out.count && i < b.out.count; i++)
        CHECK_MEM(b.out.items[i].ptr, b.out.items[i].len, a.out.items[i].ptr, a.out.items[i].len);
    CHECK_INT(b.err.count, 1);
    if (b.err.count) CHECK_MEM(b.err.items[0].ptr, b.err.items[0].len, err0, sizeof err0 - 1);
    CHECK_INT(b.nresults, a.nresults);
    for (size_t i = 0; i < a.nresults && i < b.nresults; i++) {
        const cp_result_item *x = &a.results[i], *y = &b.results[i];
        CHECK_STR(y->text, x->text);
        CHECK_STR(y->html, x->html);
        CHECK_STR(y->markdown, x->markdown);
        CHECK_STR(y->png, x->png);
        CHECK_STR(y->jpeg, x->jpeg);
        CHECK_STR(y->svg, x->svg);
        CHECK_STR(y->json, x->json);
        CHECK_STR(y->latex, x->latex);
        CHECK_STR(y->chart, x->chart);
        CHECK_INT(y->is_main_result, x->is_main_result);
    }
    free(p);
    cp_result_free(&b);
    cp_result_free(&a);
}

TEST(payload_build_round_trips_a_success_without_count)
{
    cp_result a, b;
    cp_result_init(&a);
    cp_result_add_stdout(&a, "ok\n", 3);
    char *p = cp_payload_build(&a);
    cp_result_init(&b);
    CHECK_INT(cp_payload_parse(p, strlen(p), &b), 0);
    CHECK(b.success);
    CHECK_STR(msg_of(&b), "");
    CHECK(!b.has_execution_count);
    CHECK_INT(b.out.count, 1);
    CHECK_INT(b.nresults, 0);
    free(p);
    cp_result_free(&b);
    cp_result_free(&a);
}

TEST(envelope_linkurl_is_exact_and_data_is_a_json_string)
{
    char *e = cp_envelope_linkurl("{\"result\":[]}", false);
    CHECK_STR(e, "{\"data\":\"{\\\"result\\\":{\\\"isError\\\":false,"
                 "\\\"content\\\":[{\\\"type\\\":"
                 "\\\"text\\\",\\\"text\\\":\\\"{\\\\\\\"result\\\\\\\":[]}\\\"}]}}\"}");
    free(e);
    e = cp_envelope_linkurl("bad", true);
    CHECK_STR(e, "{\"data\":\"{\\\"result\\\":{\\\"isError\\\":true,\\\"content\\\":[{\\\"type\\\":"
                 "\\\"text\\\",\\\"text\\\":\\\"bad\\\"}]}}\"}");
    free(e);
}

TEST(envelope_gateway_is_exact)
{
    char *e = cp_envelope_gateway("req-1", "{\"result\":[]}", false);
    CHECK_STR(e, "{\"requestId\":\"req-1\",\"success\":true,\"code\":\"ok\",\"message\":\"\","
                 "\"httpStatusCode\":200,"
                 "\"data\":{\"isError\":false,\"content\":[{\"type\":\"text\","
                 "\"text\":\"{\\\"result\\\":[]}\"}]}}");
    free(e);
    e = cp_envelope_gateway_failure("req-2", 401, "Unauthorized", "invalid API key");
    CHECK_STR(e, "{\"requestId\":\"req-2\",\"success\":false,\"code\":\"Unauthorized\","
                 "\"message\":\"invalid API key\",\"httpStatusCode\":401,\"data\":null}");
    free(e);
}

TEST(envelopes_carry_nul_bearing_payloads_byte_exact)
{
    cp_result a;
    cp_result_init(&a);
    cp_result_add_stdout(&a, "a\0b", 3);
    char *p = cp_payload_build(&a);
    char *link = cp_envelope_linkurl(p, false);
    char *gw = cp_envelope_gateway("g", p, false);
    cp_result r;
    linkurl(200, link, NULL, &r);
    CHECK_INT(r.out.count, 1);
    if (r.out.count) CHECK_MEM(r.out.items[0].ptr, r.out.items[0].len, "a\0b", 3);
    cp_result_free(&r);
    gateway(200, gw, NULL, NULL, &r);
    CHECK(r.success);
    CHECK_INT(r.out.count, 1);
    if (r.out.count) CHECK_MEM(r.out.items[0].ptr, r.out.items[0].len, "a\0b", 3);
    cp_result_free(&r);
    free(gw);
    free(link);
    free(p);
    cp_result_free(&a);
}

TEST(envelope_is_error_reads_back_as_route_failure)
{
    char *link = cp_envelope_linkurl("Unsupported language: ruby. Supported: java, javascript, "
                                     "python, r",
                                     true);
    char *gw = cp_envelope_gateway("g-1",
                                   "Unsupported language: ruby. Supported: java, "
                                   "javascript, python, r",
                                   true);
    cp_result r;
    linkurl(200, link, NULL, &r);
    check_empty_failure(&r, "Unsupported language: ruby. Supported: java, javascript, python, r");
    cp_result_free(&r);
    gateway(200, gw, NULL, NULL, &r);
    check_empty_failure(&r, "Unsupported language: ruby. Supported: java, javascript, python, r");
    CHECK_STR(r.request_id, "g-1");
    cp_result_free(&r);
    free(gw);
    free(link);
}
