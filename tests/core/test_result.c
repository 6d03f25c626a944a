/* codepane core tests: the result model (result.h) — its exact JSON form in the TS SDK's
 * shape, and the Python SDK's `result` text rules (spec §8.1). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "result.h"

static void check_json(const cp_result *r, const char *expected)
{
    char *json = cp_result_to_json(r);
    CHECK_STR(json, expected);
    free(json);
}

static void check_text(const cp_result *r, const char *expected)
{
    char *text = cp_result_text(r);
    CHECK_STR(text, expected);
    free(text);
}

TEST(result_default_is_success_with_empty_fields)
{
    cp_result r;
    cp_result_init(&r);
    CHECK(r.success);
    CHECK(!r.has_execution_count);
    CHECK_DBL(r.execution_time, 0);
    CHECK(r.error == NULL);
    check_json(&r, "{\"requestId\":\"\",\"success\":true,\"executionTime\":0,"
                   "\"logs\":{\"stdout\":[],\"stderr\":[]},\"results\":[],\"errorMessage\":\"\"}");
    cp_result_free(&r);
}

TEST(result_to_json_writes_every_field_in_ts_shape)
{
    cp_result r;
    cp_result_init(&r);
    CHECK_INT(cp_result_set_request_id(&r, "req-1"), 0);
    r.has_execution_count = true;
    r.execution_count = 7;
    r.execution_time = 1.5;
    CHECK_INT(cp_result_add_stdout(&r, "hello\n", 6), 0);
    CHECK_INT(cp_result_add_stderr(&r, "warn \"x\"\n", 9), 0);
    cp_result_item *it = cp_result_add_item(&r);
    CHECK(it != NULL);
    cp_item_set(&it->text, "3");
    cp_item_set(&it->html, "<b>3</b>");
    cp_item_set(&it->markdown, "**3**");
    cp_item_set(&it->png, "iVBOR");
    cp_item_set(&it->jpeg, "/9j/");
    cp_item_set(&it->svg, "<svg/>");
    cp_item_set(&it->json, "{\"a\":[1,2]}");
    cp_item_set(&it->latex, "$3$");
    cp_item_set(&it->chart, "{\"mark\":\"bar\"}");
    it->is_main_result = true;
    it = cp_result_add_item(&r);
    cp_item_set(&it->text, "second");
    CHECK_INT(cp_result_set_error(&r, "NameError", "name 'x' is not defined", "tb"), 0);
    CHECK_INT(cp_result_fail(&r, "NameError: name 'x' is not defined"), 0);
    check_json(&r,
               "{\"requestId\":\"req-1\",\"success\":false,\"executionCount\":7,"
               "\"executionTime\":1.5,\"logs\":{\"stdout\":[\"hello\\n\"],"
               "\"stderr\":[\"warn \\\"x\\\"\\n\"]},\"results\":[{\"text\":\"3\","
               "\"html\":\"<b>3</b>\",\"markdown\":\"**3**\",\"png\":\"iVBOR\",\"jpeg\":\"/9j/\","
               "\"svg\":\"<svg/>\",\"json\":{\"a\":[1,2]},\"latex\":\"$3$\","
               "\"chart\":{\"mark\":\"bar\"},\"isMainResult\":true},{\"text\":\"second\","
               "\"isMainResult\":false}],\"error\":{\"name\":\"NameError\","
               "\"value\":\"name 'x' is not defined\",\"traceback\":\"tb\"},"
               "\"errorMessage\":\"NameError: name 'x' is not defined\"}");
    cp_result_free(&r);
}

TEST(result_to_json_escapes_nul_bytes_in_chunks)
{
    cp_result r;
    cp_result_init(&r);
    CHECK_INT(cp_result_add_stdout(&r, "a\0b", 3), 0);
    CHECK_INT(cp_result_add_stderr(&r, "\0", 1), 0);
    CHECK_INT(cp_result_add_stdout(&r, "\x01\x1f", 2), 0);
    CHECK_INT(r.out.count, 2);
    CHECK_MEM(r.out.items[0].ptr, r.out.items[0].len, "a\0b", 3);
    check_json(&r, "{\"requestId\":\"\",\"success\":true,\"executionTime\":0,"
                   "\"logs\":{\"stdout\":[\"a\\u0000b\",\"\\u0001\\u001f\"],"
                   "\"stderr\":[\"\\u0000\"]},\"results\":[],\"errorMessage\":\"\"}");
    cp_result_free(&r);
}

TEST(result_zero_execution_count_is_written)
{
    cp_result r;
    cp_result_init(&r);
    r.has_execution_count = true;
    r.execution_count = 0;
    check_json(&r, "{\"requestId\":\"\",\"success\":true,\"executionCount\":0,\"executionTime\":0,"
                   "\"logs\":{\"stdout\":[],\"stderr\":[]},\"results\":[],\"errorMessage\":\"\"}");
    cp_result_free(&r);
}

TEST(result_fail_keeps_logs_results_and_error)
{
    cp_result r;
    cp_result_init(&r);
    cp_result_add_stdout(&r, "out", 3);
    cp_result_add_item(&r);
    cp_result_set_error(&r, "E", "v", "");
    CHECK_INT(cp_result_fail(&r, "boom"), 0);
    CHECK(!r.success);
    CHECK_STR(r.error_message, "boom");
    CHECK_INT(r.out.count, 1);
    CHECK_INT(r.nresults, 1);
    CHECK_STR(r.error->name, "E");
    cp_result_free(&r);
}

TEST(result_text_prefers_first_main_result_with_text)
{
    cp_result r;
    cp_result_init(&r);
    cp_result_item *it = cp_result_add_item(&r);
    cp_item_set(&it->text, "display");
    it = cp_result_add_item(&r);
    it->is_main_result = true; /* main but no text: skipped */
    it = cp_result_add_item(&r);
    it->is_main_result = true;
    cp_item_set(&it->text, ""); /* main with empty text: skipped */
    it = cp_result_add_item(&r);
    it->is_main_result = true;
    cp_item_set(&it->text, "42");
    cp_result_add_stdout(&r, "printed", 7);
    check_text(&r, "42");
    cp_result_free(&r);
}

TEST(result_text_falls_back_to_first_result_text)
{
    cp_result r;
    cp_result_init(&r);
    cp_result_item *it = cp_result_add_item(&r);
    cp_item_set(&it->text, "first");
    it = cp_result_add_item(&r);
    cp_item_set(&it->text, "second");
    cp_result_add_stdout(&r, "printed", 7);
    check_text(&r, "first");
    cp_result_free(&r);
}

TEST(result_text_joins_stdout_when_first_result_has_no_text)
{
    cp_result r;
    cp_result_init(&r);
    cp_result_item *it = cp_result_add_item(&r);
    cp_item_set(&it->html, "<p>only html</p>");
    it = cp_result_add_item(&r);
    cp_item_set(&it->text, "second, not main"); /* only the FIRST result's text counts */
    cp_result_add_stdout(&r, "a\n", 2);
    cp_result_add_stdout(&r, "b", 1);
    cp_result_add_stderr(&r, "err", 3);
    check_text(&r, "a\nb");
    cp_result_free(&r);
}

TEST(result_text_is_empty_without_results_or_stdout)
{
    cp_result r;
    cp_result_init(&r);
    cp_result_add_stderr(&r, "only stderr", 11);
    check_text(&r, "");
    cp_result_free(&r);
}

TEST(result_free_resets_to_default)
{
    cp_result r;
    cp_result_init(&r);
    cp_result_set_request_id(&r, "x");
    cp_result_fail(&r, "y");
    cp_result_free(&r);
    CHECK(r.success);
    CHECK(r.request_id == NULL);
    CHECK_INT(r.nresults, 0);
    cp_result_free(&r); /* freeing twice is harmless */
}

TEST(item_to_json_writes_one_result_in_ts_shape)
{
    cp_result_item it = {0};
    CHECK_INT(cp_item_set(&it.text, "42"), 0);
    CHECK_INT(cp_item_set(&it.json, "{\"a\":[1,2.5]}"), 0);
    CHECK_INT(cp_item_set(&it.chart, "{\"mark\":\"bar\"}"), 0);
    it.is_main_result = true;
    char *s = cp_item_to_json(&it);
    CHECK_STR(s, "{\"text\":\"42\",\"json\":{\"a\":[1,2.5]},\"chart\":{\"mark\":\"bar\"},"
                 "\"isMainResult\":true}");
    free(s);
    cp_item_free(&it);
    cp_result_item empty = {0};
    s = cp_item_to_json(&empty);
    CHECK_STR(s, "{\"isMainResult\":false}");
    free(s);
}
