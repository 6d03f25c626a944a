/* stream: the in-flight table (spec §6.4-§6.10) fed with server frames. Fixtures restate
 * the scenarios of the SDKs' unit tests (§10.4, §10.5 streaming) as frames; every test
 * checks the exact events and the exact final result (as its JSON). */
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "core_limits.h"
#include "frame.h"
#include "stream.h"

#define MAX_EVENTS 32

/* One recorded event: copies of everything the event pointed to. */
typedef struct {
    cp_event_kind kind;
    char *id;
    char *bytes; /* chunk */
    size_t len;
    cp_result_item item;
    char *err_name, *err_value, *err_tb;
    char *payload;
    cp_fail_kind fail;
    char *message;
    char *result; /* cp_result_to_json of DONE */
    char *push_key;
} rec_event;

typedef struct rec rec;
struct rec {
    rec_event ev[MAX_EVENTS];
    size_t n;
    /* optional re-entrant behaviour, run after recording */
    cp_stream *st;
    void (*hook)(rec *r, const cp_event *ev);
};

static char *dup_opt(const char *s)
{
    if (!s) return NULL;
    char *p = malloc(strlen(s) + 1);
    strcpy(p, s);
    return p;
}

static void record(void *ud, const cp_event *ev)
{
    rec *r = ud;
    if (r->n == MAX_EVENTS) {
        cp_check_fail(__FILE__, __LINE__, "too many events");
        return;
    }
    rec_event *e = &r->ev[r->n++];
    memset(e, 0, sizeof *e);
    e->kind = ev->kind;
    e->id = dup_opt(ev->invocation_id);
    if (ev->chunk) {
        e->bytes = malloc(ev->len + 1);
        memcpy(e->bytes, ev->chunk, ev->len);
        e->bytes[ev->len] = '\0';
        e->len = ev->len;
    }
    if (ev->item) {
        const cp_result_item *it = ev->item;
        cp_item_set(&e->item.text, it->text);
        cp_item_set(&e->item.html, it->html);
        cp_item_set(&e->item.markdown, it->markdown);
        cp_item_set(&e->item.png, it->png);
        cp_item_set(&e->item.jpeg, it->jpeg);
        cp_item_set(&e->item.svg, it->svg);
        cp_item_set(&e->item.json, it->json);
        cp_item_set(&e->item.latex, it->latex);
        cp_item_set(&e->item.chart, it->chart);
        e->item.is_main_result = it->is_main_result;
    }
    if (ev->error) {
        e->err_name = dup_opt(ev->error->name);
        e->err_value = dup_opt(ev->error->value);
        e->err_tb = dup_opt(ev->error->traceback);
    }
    e->payload = dup_opt(ev->payload_json);
    e->fail = ev->fail;
    e->message = dup_opt(ev->message);
    if (ev->result) e->result = cp_result_to_json(ev->result);
    e->push_key = dup_opt(ev->push_key);
    if (r->hook) r->hook(r, ev);
}

static void rec_free(rec *r)
{
    for (size_t i = 0; i < r->n; i++) {
        rec_event *e = &r->ev[i];
        free(e->id);
        free(e->bytes);
        cp_item_free(&e->item);
        free(e->err_name);
        free(e->err_value);
        free(e->err_tb);
        free(e->payload);
        free(e->message);
        free(e->result);
        free(e->push_key);
    }
    memset(r, 0, sizeof *r);
}

static size_t count_kind(const rec *r, cp_event_kind kind)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++)
        n += r->ev[i].kind == kind;
    return n;
}

static void feed(cp_stream *st, rec *r, const char *text)
{
    cp_stream_feed(st, text, strlen(text), record, r);
}

/* A server frame for id with the given data members (no braces). */
static void feed_data(cp_stream *st, rec *r, const char *id, const char *data_members)
{
    char text[8192];
    snprintf(text, sizeof text,
             "{\"invocationId\":\"%s\",\"source\":\"wuying_codespace\",\"target\":\"SDK\","
             "\"data\":{%s}}",
             id, data_members);
    feed(st, r, text);
}

static cp_stream *begin1(const char *id)
{
    cp_stream *st = cp_stream_new();
    CHECK(st != NULL);
    CHECK_INT(cp_stream_begin(st, id), 0);
    return st;
}

#define END_OK                                                                                     \
    "\"phase\":\"end\",\"status\":\"finished\",\"executionCount\":1,\"executionTime\":0.5"
#define FAILED_RESULT(msg)                                                                         \
    "{\"requestId\":\"\",\"success\":false,\"executionTime\":0,\"logs\":{\"stdout\":[],"           \
    "\"stderr\":[]},\"results\":[],\"error\":{\"name\":\"ExecutionError\",\"value\":\"" msg        \
    "\",\"traceback\":\"\"},\"errorMessage\":\"" msg "\"}"

/* ---- §10.4: the SDK's WebSocket unit scenarios --------------------------------------- */

TEST(stream_event_then_end_gives_one_chunk_and_a_finished_result)
{
    cp_stream *st = begin1("inv1");
    rec r = {0};
    feed(st, &r,
         "{\"invocationId\":\"inv1\",\"source\":\"wuying_codespace\",\"target\":\"SDK\","
         "\"data\":{\"phase\":\"event\",\"seq\":1,\"eventType\":\"stdout\",\"chunk\":\"hello \"}}");
    feed(st, &r,
         "{\"invocationId\":\"inv1\",\"source\":\"wuying_codespace\",\"target\":\"SDK\","
         "\"data\":{\"phase\":\"end\",\"seq\":2,\"status\":\"finished\"}}");
    CHECK_INT(r.n, 2);
    CHECK_INT(r.ev[0].kind, CP_EV_STDOUT);
    CHECK_STR(r.ev[0].id, "inv1");
    CHECK_MEM(r.ev[0].bytes, r.ev[0].len, "hello ", 6);
    CHECK_INT(r.ev[1].kind, CP_EV_DONE);
    CHECK_STR(r.ev[1].id, "inv1");
    CHECK_STR(r.ev[1].result,
              "{\"requestId\":\"inv1\",\"success\":true,\"executionTime\":0,\"logs\":{\"stdout\":"
              "[\"hello \"],\"stderr\":[]},\"results\":[],\"errorMessage\":\"\"}");
    CHECK_INT(cp_stream_inflight(st), 0);
    rec_free(&r);
    cp_stream_free(st);
}

TEST(stream_cancel_while_silent_fails_once_as_cancelled)
{
    cp_stream *st = begin1("inv1");
    rec r = {0};
    CHECK(cp_stream_cancel(st, "inv1", record, &r));
    CHECK_INT(r.n, 2);
    CHECK_INT(r.ev[0].kind, CP_EV_FAILED);
    CHECK_INT(r.ev[0].fail, CP_FAIL_CANCELLED);
    CHECK_STR(r.ev[0].id, "inv1");
    CHECK_STR(r.ev[0].message, "Stream inv1 was cancelled by caller");
    CHECK_INT(r.ev[1].kind, CP_EV_DONE);
    CHECK_STR(r.ev[1].result, FAILED_RESULT("Stream inv1 was cancelled by caller"));
    CHECK_INT(cp_stream_inflight(st), 0);
    rec_free(&r);
    cp_stream_free(st);
}

TEST(stream_late_frames_after_cancel_are_push_messages)
{
    cp_stream *st = begin1("inv1");
    rec r = {0};
    cp_stream_cancel(st, "inv1", NULL, NULL);
    feed_data(st, &r, "inv1", "\"phase\":\"event\",\"eventType\":\"stdout\",\"chunk\":\"1\"");
    CHECK_INT(r.n, 1);
    CHECK_INT(r.ev[0].kind, CP_EV_PUSH);
    CHECK_STR(r.ev[0].id, "inv1");
    CHECK_STR(r.ev[0].push_key, "wuying_codespace");
    CHECK_STR(r.ev[0].payload, "{\"phase\":\"event\",\"eventType\":\"stdout\",\"chunk\":\"1\"}");
    rec_free(&r);
    cp_stream_free(st);
}

TEST(stream_connection_loss_fails_every_invocation_in_begin_order)
{
    cp_stream *st = cp_stream_new();
    CHECK_INT(cp_stream_begin(st, "b"), 0);
    CHECK_INT(cp_stream_begin(st, "a"), 0);
    CHECK_INT(cp_stream_begin(st, "c"), 0);
    rec r = {0};
    cp_stream_cancel(st, "a", NULL, NULL);
    CHECK_INT(cp_stream_begin(st, "a"), 0); /* begun again: now last */
    cp_stream_fail_all(st, CP_FAIL_CLOSED, "connection closed: code=1001", record, &r);
    static const char *const order[] = {"b", "c", "a"};
    CHECK_INT(r.n, 6);
    for (size_t i = 0; i < 3 && r.n == 6; i++) {
        CHECK_INT(r.ev[2 * i].kind, CP_EV_FAILED);
        CHECK_INT(r.ev[2 * i].fail, CP_FAIL_CLOSED);
        CHECK_STR(r.ev[2 * i].id, order[i]);
        CHECK_STR(r.ev[2 * i].message, "connection closed: code=1001");
        CHECK_INT(r.ev[2 * i + 1].kind, CP_EV_DONE);
        CHECK_STR(r.ev[2 * i + 1].id, order[i]);
        CHECK_STR(r.ev[2 * i + 1].result, FAILED_RESULT("connection closed: code=1001"));
    }
    CHECK_INT(cp_stream_inflight(st), 0);
    rec_free(&r);
    cp_stream_free(st);
}

TEST(stream_handshake_failure_fails_the_waiting_invocations_with_its_own_kind)
{
    cp_stream *st = cp_stream_new();
    CHECK_INT(cp_stream_begin(st, "w"), 0);
    rec r = {0};
    cp_stream_fail_all(st, CP_FAIL_HANDSHAKE, "WS connection failed", record, &r);
    CHECK_INT(r.n, 2);
    if (r.n == 2) {
        CHECK_INT(r.ev[0].kind, CP_EV_FAILED);
        CHECK_INT(r.ev[0].fail, CP_FAIL_HANDSHAKE);
        CHECK_STR(r.ev[0].message, "WS connection failed");
        CHECK_INT(r.ev[1].kind, CP_EV_DONE);
        CHECK_STR(r.ev[1].result, FAILED_RESULT("WS connection failed"));
    }
    rec_free(&r);
    cp_stream_free(st);
}

TEST(stream_reply_without_invocation_id_is_invalid_and_leaves_the_run_in_flight)
{
    cp_stream *st = begin1("inv1");
    rec r = {0};
    feed(st, &r,
         "{\"source\":\"wuying_codespace\",\"target\":\"SDK\",\"data\":{\"phase\":\"end\"}}");
    CHECK_INT(r.n, 1);
    CHECK_INT(r.ev[0].kind, CP_EV_INVALID);
    CHECK(r.ev[0].id == NULL);
    CHECK_STR(r.ev[0].message, "invocationId is required and must be a non-empty string");
    CHECK_INT(cp_stream_inflight(st), 1);
    /* then the server closes the socket: the run fails with a "closed" text */
    cp_stream_fail_all(st, CP_FAIL_CLOSED, "connection closed", record, &r);
    CHECK_INT(r.n, 3);
    CHECK_INT(r.ev[1].kind, CP_EV_FAILED);
    CHECK_STR(r.ev[1].message, "connection closed");
    rec_free(&r);
    cp_stream_free(st);
}

TEST(stream_gateway_rejection_without_phase_is_a_remote_error_with_the_data)
{
    cp_stream *st = begin1("inv1");
    rec r = {0};
    feed(st, &r,
         "{\"invocationId\":\"inv1\",\"source\":\"WEBSOCKET_SERVER\",\"data\":{\"error\":"
         "\"bad request\"}}");
    CHECK_INT(r.n, 2);
    CHECK_INT(r.ev[0].kind, CP_EV_FAILED);
    CHECK_INT(r.ev[0].fail, CP_FAIL_REMOTE);
    CHECK_STR(r.ev[0].message, "{\"error\":\"bad request\"}");
    CHECK_INT(r.ev[1].kind, CP_EV_DONE);
    CHECK_STR(r.ev[1].result, FAILED_RESULT("{\\\"error\\\":\\\"bad request\\\"}"));
    CHECK_INT(cp_stream_inflight(st), 0);
    rec_free(&r);
    cp_stream_free(st);
}

TEST(stream_phase_error_is_a_remote_error)
{
    cp_stream *st = begin1("inv1");
    rec r = {0};
    feed_data(st, &r, "inv1", "\"phase\":\"error\",\"message\":\"boom\"");
    CHECK_INT(r.n, 2);
    CHECK_INT(r.ev[0].kind, CP_EV_FAILED);
    CHECK_INT(r.ev[0].fail, CP_FAIL_REMOTE);
    CHECK_STR(r.ev[0].message, "{\"phase\":\"error\",\"message\":\"boom\"}");
    CHECK_INT(count_kind(&r, CP_EV_DONE), 1);
    rec_free(&r);
    cp_stream_free(st);
}

TEST(stream_three_chunks_arrive_in_order_and_end_gives_the_count)
{
    cp_stream *st = begin1("inv1");
    rec r = {0};
    feed_data(st, &r, "inv1",
              "\"phase\":\"event\",\"seq\":1,\"eventType\":\"stdout\",\"chunk\":\"line0\\n\"");
    feed_data(st, &r, "inv1",
              "\"phase\":\"event\",\"seq\":2,\"eventType\":\"stdout\",\"chunk\":\"line1\\n\"");
    feed_data(st, &r, "inv1",
              "\"phase\":\"event\",\"seq\":3,\"eventType\":\"stdout\",\"chunk\":\"line2\\n\"");
    feed_data(st, &r, "inv1",
              "\"phase\":\"end\",\"seq\":4,\"status\":\"finished\",\"executionCount\":1");
    CHECK_INT(r.n, 4);
    CHECK_STR(r.ev[0].bytes, "line0\n");
    CHECK_STR(r.ev[1].bytes, "line1\n");
    CHECK_STR(r.ev[2].bytes, "line2\n");
    CHECK_STR(r.ev[3].result,
              "{\"requestId\":\"inv1\",\"success\":true,\"executionCount\":1,\"executionTime\":0,"
              "\"logs\":{\"stdout\":[\"line0\\n\",\"line1\\n\",\"line2\\n\"],\"stderr\":[]},"
              "\"results\":[],\"errorMessage\":\"\"}");
    rec_free(&r);
    cp_stream_free(st);
}

TEST(stream_runs_to_the_end_without_a_callback)
{
    cp_stream *st = begin1("inv1");
    const char *ev = "{\"invocationId\":\"inv1\",\"target\":\"SDK\",\"data\":{\"phase\":\"event\","
                     "\"eventType\":\"stdout\",\"chunk\":\"x\"}}";
    const char *end = "{\"invocationId\":\"inv1\",\"data\":{\"phase\":\"end\"}}";
    cp_stream_feed(st, ev, strlen(ev), NULL, NULL);
    CHECK_INT(cp_stream_inflight(st), 1);
    cp_stream_feed(st, end, strlen(end), NULL, NULL);
    CHECK_INT(cp_stream_inflight(st), 0);
    cp_stream_free(st);
}

/* ---- §6.4 dispatch order -------------------------------------------------------------- */

TEST(stream_remote_error_string_aborts_even_on_event_phase)
{
    cp_stream *st = begin1("inv1");
    rec r = {0};
    feed_data(st, &r, "inv1", "\"phase\":\"event\",\"eventType\":\"error\",\"error\":\"quota\"");
    CHECK_INT(r.n, 2);
    CHECK_INT(r.ev[0].kind, CP_EV_FAILED);
    CHECK_INT(r.ev[0].fail, CP_FAIL_REMOTE);
    CHECK_STR(r.ev[0].message, "{\"phase\":\"event\",\"eventType\":\"error\",\"error\":\"quota\"}");
    CHECK_INT(count_kind(&r, CP_EV_ERROR), 0);
    CHECK_INT(cp_stream_inflight(st), 0);
    rec_free(&r);
    cp_stream_free(st);
}

TEST(stream_remote_error_string_aborts_even_on_end_phase)
{
    cp_stream *st = begin1("inv1");
    rec r = {0};
    feed_data(st, &r, "inv1", "\"phase\":\"end\",\"status\":\"finished\",\"error\":\"late\"");
    CHECK_INT(r.n, 2);
    CHECK_INT(r.ev[0].kind, CP_EV_FAILED);
    CHECK_INT(r.ev[0].fail, CP_FAIL_REMOTE);
    rec_free(&r);
    cp_stream_free(st);
}

TEST(stream_empty_or_non_string_error_member_does_not_abort)
{
    cp_stream *st = begin1("inv1");
    rec r = {0};
    feed_data(st, &r, "inv1",
              "\"phase\":\"event\",\"eventType\":\"stdout\",\"chunk\":\"a\",\"error\":\"\"");
    feed_data(st, &r, "inv1",
              "\"phase\":\"event\",\"eventType\":\"stdout\",\"chunk\":\"b\",\"error\":5");
    CHECK_INT(r.n, 2);
    CHECK_INT(r.ev[0].kind, CP_EV_STDOUT);
    CHECK_INT(r.ev[1].kind, CP_EV_STDOUT);
    CHECK_INT(cp_stream_inflight(st), 1);
    rec_free(&r);
    cp_stream_free(st);
}

TEST(stream_missing_or_null_phase_is_a_protocol_failure)
{
    cp_stream *st = begin1("inv1");
    rec r = {0};
    feed_data(st, &r, "inv1", "\"eventType\":\"stdout\",\"chunk\":\"a\"");
    CHECK_INT(r.n, 2);
    CHECK_INT(r.ev[0].kind, CP_EV_FAILED);
    CHECK_INT(r.ev[0].fail, CP_FAIL_PROTOCOL);
    CHECK_STR(r.ev[0].message, "WS message missing required data.phase; invocationId=inv1, "
                               "data={\"eventType\":\"stdout\",\"chunk\":\"a\"}");
    rec_free(&r);
    CHECK_INT(cp_stream_begin(st, "inv1"), 0);
    feed_data(st, &r, "inv1", "\"phase\":null");
    CHECK_STR(r.ev[0].message, "WS message missing required data.phase; invocationId=inv1, "
                               "data={\"phase\":null}");
    rec_free(&r);
    cp_stream_free(st);
}

TEST(stream_unsupported_phase_is_a_protocol_failure_naming_it)
{
    cp_stream *st = begin1("inv1");
    rec r = {0};
    feed_data(st, &r, "inv1", "\"phase\":\"progress\"");
    CHECK_INT(r.n, 2);
    CHECK_INT(r.ev[0].fail, CP_FAIL_PROTOCOL);
    CHECK_STR(r.ev[0].message, "WS message has unsupported data.phase; invocationId=inv1, "
                               "phase=\"progress\", data={\"phase\":\"progress\"}");
    rec_free(&r);
    CHECK_INT(cp_stream_begin(st, "inv1"), 0);
    feed_data(st, &r, "inv1", "\"phase\":5");
    CHECK_STR(r.ev[0].message, "WS message has unsupported data.phase; invocationId=inv1, "
                               "phase=5, data={\"phase\":5}");
    rec_free(&r);
    cp_stream_free(st);
}

TEST(stream_invalid_frame_for_an_inflight_id_fails_it_as_protocol_error)
{
    static const struct {
        const char *text, *message;
    } cases[] = {
        {"{\"invocationId\":\"inv1\"}", "data is required and must be an object"},
        {"{\"invocationId\":\"inv1\",\"data\":5}", "data is required and must be an object"},
        {"{\"invocationId\":\"inv1\",\"data\":\"{x\"}",
         "data is a string but not valid JSON: invalid JSON"},
        {"{\"requestId\":\"inv1\",\"data\":\"[]\"}",
         "data is a string but decoded JSON is not an object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cp_stream *st = begin1("inv1");
        rec r = {0};
        feed(st, &r, cases[i].text);
        CHECK_INT(r.n, 2);
        CHECK_INT(r.ev[0].kind, CP_EV_FAILED);
        CHECK_INT(r.ev[0].fail, CP_FAIL_PROTOCOL);
        CHECK_STR(r.ev[0].id, "inv1");
        CHECK_STR(r.ev[0].message, cases[i].message);
        CHECK_INT(r.ev[1].kind, CP_EV_DONE);
        CHECK_INT(cp_stream_inflight(st), 0);
        rec_free(&r);
        cp_stream_free(st);
    }
}

TEST(stream_invalid_frames_matching_no_invocation_are_reported_and_harmless)
{
    cp_stream *st = begin1("inv1");
    rec r = {0};
    feed(st, &r, "not json");
    feed(st, &r, "[1]");
    feed(st, &r, "{\"invocationId\":\"zzz\",\"data\":[]}");
    feed(st, &r, "{\"invocationId\":7,\"data\":{}}");
    CHECK_INT(r.n, 4);
    CHECK_INT(count_kind(&r, CP_EV_INVALID), 4);
    CHECK_STR(r.ev[0].message, "Invalid JSON message: invalid JSON");
    CHECK(r.ev[0].id == NULL);
    CHECK_STR(r.ev[1].message, "Message must be a JSON object");
    CHECK_STR(r.ev[2].id, "zzz");
    CHECK_STR(r.ev[2].message, "data is required and must be an object");
    CHECK_STR(r.ev[3].message, "invocationId is required and must be a non-empty string");
    CHECK_INT(cp_stream_inflight(st), 1);
    rec_free(&r);
    cp_stream_free(st);
}

TEST(stream_an_id_longer_than_the_limit_is_invalid)
{
    char id[CP_ID_MAX + 2], text[CP_ID_MAX + 64];
    memset(id, 'a', CP_ID_MAX + 1);
    id[CP_ID_MAX + 1] = '\0';
    snprintf(text, sizeof text, "{\"invocationId\":\"%s\",\"data\":{}}", id);
    cp_stream *st = cp_stream_new();
    rec r = {0};
    feed(st, &r, text);
    CHECK_INT(r.n, 1);
    CHECK_INT(r.ev[0].kind, CP_EV_INVALID);
    CHECK(r.ev[0].id == NULL);
    CHECK_STR(r.ev[0].message, "invocationId is longer than 256 bytes");
    rec_free(&r);
    cp_stream_free(st);
}

TEST(stream_data_sent_as_a_json_string_is_decoded)
{
    cp_stream *st = begin1("inv1");
    rec r = {0};
    feed(st, &r,
         "{\"requestId\":\"inv1\",\"data\":\"{\\\"phase\\\":\\\"event\\\",\\\"eventType\\\":"
         "\\\"stderr\\\",\\\"chunk\\\":\\\"warn\\\"}\"}");
    CHECK_INT(r.n, 1);
    CHECK_INT(r.ev[0].kind, CP_EV_STDERR);
    CHECK_STR(r.ev[0].bytes, "warn");
    rec_free(&r);
    cp_stream_free(st);
}

/* ---- §6.5 event vocabulary ------------------------------------------------------------ */

TEST(stream_stdout_and_stderr_collect_in_order_and_non_string_chunks_are_ignored)
{
    cp_stream *st = begin1("inv1");
    rec r = {0};
    feed_data(st, &r, "inv1", "\"phase\":\"event\",\"eventType\":\"stdout\",\"chunk\":\"o1\"");
    feed_data(st, &r, "inv1", "\"phase\":\"event\",\"eventType\":\"stderr\",\"chunk\":\"e1\"");
    feed_data(st, &r, "inv1", "\"phase\":\"event\",\"eventType\":\"stdout\",\"chunk\":5");
    feed_data(st, &r, "inv1", "\"phase\":\"event\",\"eventType\":\"stderr\",\"chunk\":null");
    feed_data(st, &r, "inv1", "\"phase\":\"event\",\"eventType\":\"stdout\"");
    feed_data(st, &r, "inv1", "\"phase\":\"event\",\"eventType\":\"stdout\",\"chunk\":\"\"");
    feed_data(st, &r, "inv1", "\"phase\":\"event\",\"eventType\":\"stderr\",\"chunk\":\"e2\"");
    feed_data(st, &r, "inv1", END_OK);
    CHECK_INT(r.n, 5);
    CHECK_INT(r.ev[0].kind, CP_EV_STDOUT);
    CHECK_INT(r.ev[1].kind, CP_EV_STDERR);
    CHECK_INT(r.ev[2].kind, CP_EV_STDOUT);
    CHECK_INT(r.ev[2].len, 0);
    CHECK_INT(r.ev[3].kind, CP_EV_STDERR);
    CHECK_STR(r.ev[4].result,
              "{\"requestId\":\"inv1\",\"success\":true,\"executionCount\":1,\"executionTime\":0.5,"
              "\"logs\":{\"stdout\":[\"o1\",\"\"],\"stderr\":[\"e1\",\"e2\"]},\"results\":[],"
              "\"errorMessage\":\"\"}");
    rec_free(&r);
    cp_stream_free(st);
}

TEST(stream_unknown_or_missing_event_type_is_ignored)
{
    cp_stream *st = begin1("inv1");
    rec r = {0};
    feed_data(st, &r, "inv1", "\"phase\":\"event\",\"eventType\":\"progress\",\"chunk\":\"x\"");
    feed_data(st, &r, "inv1", "\"phase\":\"event\",\"chunk\":\"x\"");
    feed_data(st, &r, "inv1", "\"phase\":\"event\",\"eventType\":1");
    CHECK_INT(r.n, 0);
    CHECK_INT(cp_stream_inflight(st), 1);
    rec_free(&r);
    cp_stream_free(st);
}

TEST(stream_result_event_maps_mime_keys_only)
{
    cp_stream *st = begin1("inv1");
    rec r = {0};
    feed_data(st, &r, "inv1",
              "\"phase\":\"event\",\"eventType\":\"result\",\"result\":{\"mime\":{"
              "\"text/plain\":\"3\",\"text/html\":\"<b>3</b>\",\"text/markdown\":\"**3**\","
              "\"image/png\":\"iVBO\",\"image/jpeg\":\"/9j/\",\"image/svg+xml\":\"<svg/>\","
              "\"application/json\":{\"a\":[1,2]},\"text/latex\":\"$3$\","
              "\"application/vnd.vegalite.v4+json\":{\"mark\":\"bar\"},"
              "\"text\":\"short keys are ignored\",\"application/pdf\":\"dropped\"},"
              "\"isMainResult\":true}");
    feed_data(st, &r, "inv1", END_OK);
    CHECK_INT(r.n, 2);
    CHECK_INT(r.ev[0].kind, CP_EV_RESULT);
    const cp_result_item *it = &r.ev[0].item;
    CHECK_STR(it->text, "3");
    CHECK_STR(it->html, "<b>3</b>");
    CHECK_STR(it->markdown, "**3**");
    CHECK_STR(it->png, "iVBO");
    CHECK_STR(it->jpeg, "/9j/");
    CHECK_STR(it->svg, "<svg/>");
    CHECK_STR(it->json, "{\"a\":[1,2]}");
    CHECK_STR(it->latex, "$3$");
    CHECK_STR(it->chart, "{\"mark\":\"bar\"}");
    CHECK(it->is_main_result);
    CHECK_STR(r.ev[1].result,
              "{\"requestId\":\"inv1\",\"success\":true,\"executionCount\":1,\"executionTime\":0.5,"
              "\"logs\":{\"stdout\":[],\"stderr\":[]},\"results\":[{\"text\":\"3\",\"html\":"
              "\"<b>3</b>\",\"markdown\":\"**3**\",\"png\":\"iVBO\",\"jpeg\":\"/9j/\",\"svg\":"
              "\"<svg/>\",\"json\":{\"a\":[1,2]},\"latex\":\"$3$\",\"chart\":{\"mark\":\"bar\"},"
              "\"isMainResult\":true}],\"errorMessage\":\"\"}");
    rec_free(&r);
    cp_stream_free(st);
}

TEST(stream_result_main_flag_takes_the_first_truthy_alias)
{
    static const struct {
        const char *flags;
        bool main;
    } cases[] = {
        {"", false},
        {",\"isMainResult\":false", false},
        {",\"isMainResult\":false,\"is_main_result\":true", true},
        {",\"is_main_result\":true", true},
        {",\"isMainResult\":1", true},
        {",\"isMainResult\":\"\"", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cp_stream *st = begin1("inv1");
        rec r = {0};
        char data[256];
        snprintf(data, sizeof data,
                 "\"phase\":\"event\",\"eventType\":\"result\",\"result\":{\"mime\":{"
                 "\"text/plain\":\"x\"}%s}",
                 cases[i].flags);
        feed_data(st, &r, "inv1", data);
        CHECK_INT(r.n, 1);
        if (r.n == 1 && r.ev[0].item.is_main_result != cases[i].main)
            cp_check_fail(__FILE__, __LINE__, "case %zu: is_main_result %d", i,
                          (int)r.ev[0].item.is_main_result);
        rec_free(&r);
        cp_stream_free(st);
    }
}

TEST(stream_result_chart_falls_back_to_vegalite_v5)
{
    cp_stream *st = begin1("inv1");
    rec r = {0};
    feed_data(st, &r, "inv1",
              "\"phase\":\"event\",\"eventType\":\"result\",\"result\":{\"mime\":{"
              "\"application/vnd.vegalite.v5+json\":{\"v\":5}}}");
    feed_data(st, &r, "inv1",
              "\"phase\":\"event\",\"eventType\":\"result\",\"result\":{\"mime\":{"
              "\"application/vnd.vegalite.v4+json\":{},"
              "\"application/vnd.vegalite.v5+json\":{\"v\":5}}}");
    feed_data(st, &r, "inv1",
              "\"phase\":\"event\",\"eventType\":\"result\",\"result\":{\"mime\":{"
              "\"application/vnd.vegalite.v4+json\":{}}}");
    CHECK_INT(r.n, 3);
    CHECK_STR(r.ev[0].item.chart, "{\"v\":5}");
    CHECK_STR(r.ev[1].item.chart, "{\"v\":5}");
    CHECK(r.ev[2].item.chart == NULL); /* Python: {} or None → None */
    rec_free(&r);
    cp_stream_free(st);
}

TEST(stream_non_object_result_becomes_text_and_not_main)
{
    static const struct {
        const char *result, *text;
    } cases[] = {
        {",\"result\":\"plain\"", "plain"},     {",\"result\":42", "42"},
        {",\"result\":[1,\"a\"]", "[1,\"a\"]"}, {",\"result\":true", "true"},
        {",\"result\":null", "null"},           {"", "null"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cp_stream *st = begin1("inv1");
        rec r = {0};
        char data[256];
        snprintf(data, sizeof data, "\"phase\":\"event\",\"eventType\":\"result\"%s",
                 cases[i].result);
        feed_data(st, &r, "inv1", data);
        CHECK_INT(r.n, 1);
        CHECK_INT(r.ev[0].kind, CP_EV_RESULT);
        CHECK_STR(r.ev[0].item.text, cases[i].text);
        CHECK(!r.ev[0].item.is_main_result);
        CHECK(r.ev[0].item.html == NULL && r.ev[0].item.json == NULL);
        rec_free(&r);
        cp_stream_free(st);
    }
}

TEST(stream_result_without_a_mime_object_is_an_empty_item)
{
    cp_stream *st = begin1("inv1");
    rec r = {0};
    feed_data(st, &r, "inv1",
              "\"phase\":\"event\",\"eventType\":\"result\",\"result\":{"
              "\"mime\":\"text\",\"isMainResult\":true}");
    feed_data(st, &r, "inv1", END_OK);
    CHECK_INT(r.n, 2);
    CHECK(r.ev[0].item.text == NULL);
    CHECK(r.ev[0].item.is_main_result);
    CHECK(strstr(r.ev[1].result, "\"results\":[{\"isMainResult\":true}]") != NULL);
    rec_free(&r);
    cp_stream_free(st);
}

TEST(stream_mime_values_keep_strings_and_stringify_the_rest)
{
    cp_stream *st = begin1("inv1");
    rec r = {0};
    feed_data(st, &r, "inv1",
              "\"phase\":\"event\",\"eventType\":\"result\",\"result\":{\"mime\":{"
              "\"text/plain\":[\"a\",\"b\"],\"text/html\":\"\",\"text/markdown\":null,"
              "\"application/json\":\"s\",\"text/latex\":7}}");
    CHECK_INT(r.n, 1);
    CHECK_STR(r.ev[0].item.text, "[\"a\",\"b\"]");
    CHECK_STR(r.ev[0].item.html, "");
    CHECK(r.ev[0].item.markdown == NULL);
    CHECK_STR(r.ev[0].item.json, "\"s\"");
    CHECK_STR(r.ev[0].item.latex, "7");
    rec_free(&r);
    cp_stream_free(st);
}

TEST(stream_error_event_maps_code_message_and_trace_id)
{
    cp_stream *st = begin1("inv1");
    rec r = {0};
    feed_data(st, &r, "inv1",
              "\"phase\":\"event\",\"eventType\":\"error\",\"error\":{\"code\":"
              "\"NameError\",\"message\":\"name 'x' is not defined\","
              "\"traceId\":\"t-42\"}");
    CHECK_INT(cp_stream_inflight(st), 1); /* the stream goes on until end */
    feed_data(st, &r, "inv1", END_OK);
    CHECK_INT(r.n, 2);
    CHECK_INT(r.ev[0].kind, CP_EV_ERROR);
    CHECK_STR(r.ev[0].err_name, "NameError");
    CHECK_STR(r.ev[0].err_value, "name 'x' is not defined");
    CHECK_STR(r.ev[0].err_tb, "traceId=t-42");
    CHECK_STR(
        r.ev[0].payload,
        "{\"code\":\"NameError\",\"message\":\"name 'x' is not defined\",\"traceId\":\"t-42\"}");
    CHECK_INT(r.ev[1].kind, CP_EV_DONE);
    CHECK_STR(
        r.ev[1].result,
        "{\"requestId\":\"inv1\",\"success\":false,\"executionCount\":1,\"executionTime\":0.5,"
        "\"logs\":{\"stdout\":[],\"stderr\":[]},\"results\":[],\"error\":{\"name\":"
        "\"NameError\",\"value\":\"name 'x' is not defined\",\"traceback\":\"traceId=t-42\"},"
        "\"errorMessage\":\"name 'x' is not defined\"}");
    rec_free(&r);
    cp_stream_free(st);
}

TEST(stream_error_event_with_null_error_uses_data_as_payload)
{
    cp_stream *st = begin1("inv1");
    rec r = {0};
    feed_data(st, &r, "inv1", "\"phase\":\"event\",\"eventType\":\"error\",\"error\":null");
    CHECK_INT(r.n, 1);
    CHECK_INT(r.ev[0].kind, CP_EV_ERROR);
    CHECK_STR(r.ev[0].err_name, "ExecutionError");
    CHECK_STR(r.ev[0].err_value, "");
    CHECK_STR(r.ev[0].err_tb, "");
    CHECK_STR(r.ev[0].payload, "{\"phase\":\"event\",\"eventType\":\"error\",\"error\":null}");
    rec_free(&r);
    /* absent or empty-object error: data itself, whose message/code are then read */
    feed_data(st, &r, "inv1",
              "\"phase\":\"event\",\"eventType\":\"error\",\"error\":{},"
              "\"code\":\"Killed\",\"message\":\"OOM\"");
    CHECK_INT(r.n, 1);
    CHECK_STR(r.ev[0].err_name, "Killed");
    CHECK_STR(r.ev[0].err_value, "OOM");
    rec_free(&r);
    cp_stream_free(st);
}

TEST(stream_error_event_value_falls_back_from_message_to_error)
{
    cp_stream *st = begin1("inv1");
    rec r = {0};
    feed_data(st, &r, "inv1",
              "\"phase\":\"event\",\"eventType\":\"error\",\"error\":{\"code\":\"\","
              "\"message\":\"\",\"error\":\"inner\",\"traceId\":\"\"}");
    feed_data(st, &r, "inv1",
              "\"phase\":\"event\",\"eventType\":\"error\",\"error\":{\"code\":500,"
              "\"error\":{\"k\":1},\"traceId\":77}");
    CHECK_INT(r.n, 2);
    CHECK_STR(r.ev[0].err_name, "ExecutionError");
    CHECK_STR(r.ev[0].err_value, "inner");
    CHECK_STR(r.ev[0].err_tb, "");
    CHECK_STR(r.ev[1].err_name, "500");
    CHECK_STR(r.ev[1].err_value, "{\"k\":1}");
    CHECK_STR(r.ev[1].err_tb, "traceId=77");
    rec_free(&r);
    cp_stream_free(st);
}

TEST(stream_error_event_traceback_extension_wins_over_trace_id)
{
    cp_stream *st = begin1("inv1");
    rec r = {0};
    feed_data(st, &r, "inv1",
              "\"phase\":\"event\",\"eventType\":\"error\",\"error\":{\"code\":\"E\","
              "\"message\":\"m\",\"traceId\":\"t\",\"traceback\":\"line 1\\nE: m\"}");
    feed_data(st, &r, "inv1",
              "\"phase\":\"event\",\"eventType\":\"error\",\"error\":{\"code\":\"E\","
              "\"message\":\"m\",\"traceId\":\"t\",\"traceback\":\"\"}");
    feed_data(st, &r, "inv1",
              "\"phase\":\"event\",\"eventType\":\"error\",\"error\":{\"code\":\"E\","
              "\"traceback\":[\"not\",\"a string\"]}");
    CHECK_INT(r.n, 3);
    CHECK_STR(r.ev[0].err_tb, "line 1\nE: m");
    CHECK_STR(r.ev[1].err_tb, "traceId=t");
    CHECK_STR(r.ev[2].err_tb, "");
    rec_free(&r);
    cp_stream_free(st);
}

TEST(stream_error_event_with_a_non_object_error_stringifies_it)
{
    cp_stream *st = begin1("inv1");
    rec r = {0};
    feed_data(st, &r, "inv1", "\"phase\":\"event\",\"eventType\":\"error\",\"error\":5");
    feed_data(st, &r, "inv1", "\"phase\":\"event\",\"eventType\":\"error\",\"error\":[\"a\"]");
    CHECK_INT(r.n, 2);
    CHECK_STR(r.ev[0].err_name, "ExecutionError");
    CHECK_STR(r.ev[0].err_value, "5");
    CHECK_STR(r.ev[0].payload, "5");
    CHECK_STR(r.ev[1].err_value, "[\"a\"]");
    CHECK_STR(r.ev[1].payload, "[\"a\"]");
    rec_free(&r);
    cp_stream_free(st);
}

TEST(stream_last_error_event_is_the_result_error)
{
    cp_stream *st = begin1("inv1");
    rec r = {0};
    feed_data(st, &r, "inv1",
              "\"phase\":\"event\",\"eventType\":\"error\",\"error\":{\"code\":\"A\","
              "\"message\":\"first\"}");
    feed_data(st, &r, "inv1",
              "\"phase\":\"event\",\"eventType\":\"error\",\"error\":{\"code\":\"B\","
              "\"message\":\"second\"}");
    feed_data(st, &r, "inv1", "\"phase\":\"end\",\"status\":\"finished\"");
    CHECK_INT(r.n, 3);
    CHECK(strstr(r.ev[2].result,
                 "\"error\":{\"name\":\"B\",\"value\":\"second\",\"traceback\":\"\"},"
                 "\"errorMessage\":\"second\"}") != NULL);
    rec_free(&r);
    cp_stream_free(st);
}

/* ---- §6.6 the final result ------------------------------------------------------------- */

TEST(stream_end_execution_error_fails_the_run_without_a_failure_event)
{
    cp_stream *st = begin1("inv1");
    rec r = {0};
    feed_data(st, &r, "inv1",
              "\"phase\":\"end\",\"status\":\"finished\",\"executionCount\":2,"
              "\"executionTime\":1.25,\"executionError\":\"NameError: x\"");
    CHECK_INT(r.n, 1);
    CHECK_INT(r.ev[0].kind, CP_EV_DONE);
    CHECK_STR(
        r.ev[0].result,
        "{\"requestId\":\"inv1\",\"success\":false,\"executionCount\":2,\"executionTime\":1.25,"
        "\"logs\":{\"stdout\":[],\"stderr\":[]},\"results\":[],\"error\":{\"name\":"
        "\"ExecutionError\",\"value\":\"NameError: x\",\"traceback\":\"\"},\"errorMessage\":"
        "\"NameError: x\"}");
    rec_free(&r);
    cp_stream_free(st);
}

TEST(stream_end_execution_error_keeps_the_event_error_but_gives_its_own_message)
{
    cp_stream *st = begin1("inv1");
    rec r = {0};
    feed_data(st, &r, "inv1",
              "\"phase\":\"event\",\"eventType\":\"error\",\"error\":{\"code\":"
              "\"ZeroDivisionError\",\"message\":\"division by zero\"}");
    feed_data(st, &r, "inv1",
              "\"phase\":\"end\",\"status\":\"failed\",\"executionError\":"
              "\"ZeroDivisionError: division by zero\"");
    CHECK_INT(r.n, 2);
    CHECK_STR(
        r.ev[1].result,
        "{\"requestId\":\"inv1\",\"success\":false,\"executionTime\":0,\"logs\":{\"stdout\":[],"
        "\"stderr\":[]},\"results\":[],\"error\":{\"name\":\"ZeroDivisionError\",\"value\":"
        "\"division by zero\",\"traceback\":\"\"},\"errorMessage\":"
        "\"ZeroDivisionError: division by zero\"}");
    rec_free(&r);
    cp_stream_free(st);
}

TEST(stream_end_status_failed_alone_fails_with_an_empty_message)
{
    cp_stream *st = begin1("inv1");
    rec r = {0};
    feed_data(st, &r, "inv1", "\"phase\":\"end\",\"status\":\"failed\"");
    CHECK_INT(r.n, 1);
    CHECK_STR(
        r.ev[0].result,
        "{\"requestId\":\"inv1\",\"success\":false,\"executionTime\":0,\"logs\":{\"stdout\":[],"
        "\"stderr\":[]},\"results\":[],\"errorMessage\":\"\"}");
    rec_free(&r);
    cp_stream_free(st);
}

TEST(stream_end_falsy_execution_error_is_no_error)
{
    cp_stream *st = begin1("inv1");
    rec r = {0};
    feed_data(st, &r, "inv1", "\"phase\":\"end\",\"status\":\"cancelled\",\"executionError\":\"\"");
    CHECK_INT(r.n, 1);
    CHECK(strstr(r.ev[0].result, "\"success\":true") != NULL);
    rec_free(&r);
    CHECK_INT(cp_stream_begin(st, "inv2"), 0);
    feed_data(st, &r, "inv2", "\"phase\":\"end\",\"executionError\":{\"k\":1}");
    CHECK(strstr(r.ev[0].result, "\"errorMessage\":\"{\\\"k\\\":1}\"") != NULL);
    rec_free(&r);
    cp_stream_free(st);
}

TEST(stream_end_count_only_when_integral_and_time_only_when_a_number)
{
    static const struct {
        const char *members;
        const char *expect; /* start of the result JSON after "success":true, */
    } cases[] = {
        {"\"executionCount\":3,\"executionTime\":0.25",
         "\"executionCount\":3,\"executionTime\":0.25,"},
        {"\"executionCount\":\"3\",\"executionTime\":\"1\"", "\"executionTime\":0,"},
        {"\"executionCount\":1.5", "\"executionTime\":0,"},
        {"\"executionCount\":null,\"executionTime\":null", "\"executionTime\":0,"},
        {"\"executionCount\":0,\"executionTime\":1e999",
         "\"executionCount\":0,\"executionTime\":0,"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cp_stream *st = begin1("inv1");
        rec r = {0};
        char data[256], want[256];
        snprintf(data, sizeof data, "\"phase\":\"end\",\"status\":\"finished\",%s",
                 cases[i].members);
        feed_data(st, &r, "inv1", data);
        snprintf(want, sizeof want, "{\"requestId\":\"inv1\",\"success\":true,%s\"logs\"",
                 cases[i].expect);
        CHECK_INT(r.n, 1);
        if (r.n == 1 && strncmp(r.ev[0].result, want, strlen(want)) != 0)
            cp_check_fail(__FILE__, __LINE__, "case %zu: %s", i, r.ev[0].result);
        rec_free(&r);
        cp_stream_free(st);
    }
}

TEST(stream_error_event_then_remote_error_gives_one_error_and_one_failure)
{
    cp_stream *st = begin1("inv1");
    rec r = {0};
    feed_data(st, &r, "inv1", "\"phase\":\"event\",\"eventType\":\"stdout\",\"chunk\":\"partial\"");
    feed_data(st, &r, "inv1",
              "\"phase\":\"event\",\"eventType\":\"error\",\"error\":{\"code\":\"E\","
              "\"message\":\"m\"}");
    feed_data(st, &r, "inv1", "\"error\":\"backend gone\"");
    feed_data(st, &r, "inv1", END_OK); /* too late: a push now */
    CHECK_INT(r.n, 5);
    CHECK_INT(count_kind(&r, CP_EV_ERROR), 1);
    CHECK_INT(count_kind(&r, CP_EV_FAILED), 1);
    CHECK_INT(count_kind(&r, CP_EV_DONE), 1);
    CHECK_INT(r.ev[2].kind, CP_EV_FAILED);
    CHECK_STR(r.ev[2].message, "{\"error\":\"backend gone\"}");
    CHECK_INT(r.ev[4].kind, CP_EV_PUSH);
    /* The SDKs hand the failure to the same handler as error events: it becomes the error. */
    CHECK_STR(r.ev[3].result,
              "{\"requestId\":\"\",\"success\":false,\"executionTime\":0,\"logs\":{\"stdout\":"
              "[\"partial\"],\"stderr\":[]},\"results\":[],\"error\":{\"name\":\"ExecutionError\","
              "\"value\":\"{\\\"error\\\":\\\"backend gone\\\"}\",\"traceback\":\"\"},"
              "\"errorMessage\":\"{\\\"error\\\":\\\"backend gone\\\"}\"}");
    rec_free(&r);
    cp_stream_free(st);
}

TEST(stream_mixed_events_aggregate_in_arrival_order)
{
    cp_stream *st = begin1("inv1");
    rec r = {0};
    feed_data(st, &r, "inv1",
              "\"phase\":\"event\",\"seq\":1,\"eventType\":\"stdout\",\"chunk\":\"a\\n\"");
    feed_data(st, &r, "inv1",
              "\"phase\":\"event\",\"seq\":2,\"eventType\":\"stderr\",\"chunk\":\"w\\n\"");
    feed_data(st, &r, "inv1",
              "\"phase\":\"event\",\"seq\":3,\"eventType\":\"result\",\"result\":{"
              "\"mime\":{\"text/html\":\"<i>d</i>\"}}");
    feed_data(st, &r, "inv1",
              "\"phase\":\"event\",\"seq\":4,\"eventType\":\"stdout\",\"chunk\":\"b\\n\"");
    feed_data(st, &r, "inv1",
              "\"phase\":\"event\",\"seq\":5,\"eventType\":\"result\",\"result\":{"
              "\"mime\":{\"text/plain\":\"42\"},\"isMainResult\":true}");
    feed_data(st, &r, "inv1",
              "\"phase\":\"end\",\"seq\":6,\"status\":\"finished\",\"executionCount\":7,"
              "\"executionTime\":0.125");
    CHECK_INT(r.n, 6);
    CHECK_INT(r.ev[0].kind, CP_EV_STDOUT);
    CHECK_INT(r.ev[1].kind, CP_EV_STDERR);
    CHECK_INT(r.ev[2].kind, CP_EV_RESULT);
    CHECK_INT(r.ev[3].kind, CP_EV_STDOUT);
    CHECK_INT(r.ev[4].kind, CP_EV_RESULT);
    CHECK_INT(r.ev[5].kind, CP_EV_DONE);
    CHECK_STR(
        r.ev[5].result,
        "{\"requestId\":\"inv1\",\"success\":true,\"executionCount\":7,\"executionTime\":0.125,"
        "\"logs\":{\"stdout\":[\"a\\n\",\"b\\n\"],\"stderr\":[\"w\\n\"]},\"results\":[{\"html\":"
        "\"<i>d</i>\",\"isMainResult\":false},{\"text\":\"42\",\"isMainResult\":true}],"
        "\"errorMessage\":\"\"}");
    rec_free(&r);
    cp_stream_free(st);
}

TEST(stream_interleaved_invocations_stay_apart)
{
    cp_stream *st = cp_stream_new();
    CHECK_INT(cp_stream_begin(st, "x"), 0);
    CHECK_INT(cp_stream_begin(st, "y"), 0);
    rec r = {0};
    feed_data(st, &r, "y", "\"phase\":\"event\",\"eventType\":\"stdout\",\"chunk\":\"Y\"");
    feed_data(st, &r, "x", "\"phase\":\"event\",\"eventType\":\"stdout\",\"chunk\":\"X\"");
    feed_data(st, &r, "x", "\"phase\":\"end\"");
    feed_data(st, &r, "y", "\"phase\":\"end\"");
    CHECK_INT(r.n, 4);
    CHECK(strstr(r.ev[2].result, "\"requestId\":\"x\"") && strstr(r.ev[2].result, "[\"X\"]"));
    CHECK(strstr(r.ev[3].result, "\"requestId\":\"y\"") && strstr(r.ev[3].result, "[\"Y\"]"));
    rec_free(&r);
    cp_stream_free(st);
}

/* ---- §6.10 push messages ----------------------------------------------------------------- */

TEST(stream_push_routes_by_target_or_by_source_when_target_is_sdk)
{
    static const struct {
        const char *envelope, *key;
    } cases[] = {
        {"\"source\":\"wuying_codespace\",\"target\":\"SDK\"", "wuying_codespace"},
        {"\"source\":\"SDK\",\"target\":\"SDK\"", "SDK"},
        {"\"source\":\"\",\"target\":\"SDK\"", "SDK"},
        {"\"target\":\"SDK\"", "SDK"},
        {"\"source\":7,\"target\":\"SDK\"", "SDK"},
        {"\"source\":\"a\",\"target\":\"b\"", "b"},
        {"\"source\":\"a\"", NULL},
        {"\"source\":\"a\",\"target\":\"\"", NULL},
        {"\"source\":\"a\",\"target\":5", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cp_stream *st = begin1("inflight");
        rec r = {0};
        char text[256];
        snprintf(text, sizeof text, "{\"invocationId\":\"other\",%s,\"data\":{\"k\":[1]}}",
                 cases[i].envelope);
        feed(st, &r, text);
        if (!cases[i].key) {
            CHECK_INT(r.n, 0);
        } else {
            CHECK_INT(r.n, 1);
            CHECK_INT(r.ev[0].kind, CP_EV_PUSH);
            CHECK_STR(r.ev[0].id, "other");
            CHECK_STR(r.ev[0].push_key, cases[i].key);
            CHECK_STR(r.ev[0].payload, "{\"k\":[1]}");
        }
        CHECK_INT(cp_stream_inflight(st), 1);
        rec_free(&r);
        cp_stream_free(st);
    }
}

TEST(stream_frames_after_the_end_are_push_messages)
{
    cp_stream *st = begin1("inv1");
    rec r = {0};
    feed_data(st, &r, "inv1", END_OK);
    feed_data(st, &r, "inv1", END_OK);
    CHECK_INT(r.n, 2);
    CHECK_INT(r.ev[0].kind, CP_EV_DONE);
    CHECK_INT(r.ev[1].kind, CP_EV_PUSH);
    rec_free(&r);
    cp_stream_free(st);
}

/* ---- local settlement -------------------------------------------------------------------- */

TEST(stream_cancel_of_an_unknown_or_finished_id_is_a_no_op)
{
    cp_stream *st = begin1("inv1");
    rec r = {0};
    CHECK(!cp_stream_cancel(st, "nope", record, &r));
    feed_data(st, &r, "inv1", END_OK);
    CHECK(!cp_stream_cancel(st, "inv1", record, &r));
    CHECK(cp_stream_cancel(st, "inv1", record, &r) == false);
    CHECK_INT(r.n, 1);
    CHECK_INT(r.ev[0].kind, CP_EV_DONE);
    rec_free(&r);
    cp_stream_free(st);
}

TEST(stream_fail_settles_one_invocation_with_the_given_kind)
{
    cp_stream *st = cp_stream_new();
    CHECK_INT(cp_stream_begin(st, "a"), 0);
    CHECK_INT(cp_stream_begin(st, "b"), 0);
    rec r = {0};
    CHECK(cp_stream_fail(st, "b", CP_FAIL_CLOSED, "WS is not connected", record, &r));
    CHECK(!cp_stream_fail(st, "b", CP_FAIL_CLOSED, "again", record, &r));
    CHECK_INT(r.n, 2);
    CHECK_INT(r.ev[0].kind, CP_EV_FAILED);
    CHECK_INT(r.ev[0].fail, CP_FAIL_CLOSED);
    CHECK_STR(r.ev[0].message, "WS is not connected");
    CHECK_STR(r.ev[1].result, FAILED_RESULT("WS is not connected"));
    CHECK_INT(cp_stream_inflight(st), 1);
    rec_free(&r);
    cp_stream_free(st);
}

TEST(stream_failure_keeps_what_was_collected)
{
    cp_stream *st = begin1("inv1");
    rec r = {0};
    feed_data(st, &r, "inv1", "\"phase\":\"event\",\"eventType\":\"stdout\",\"chunk\":\"0\\n\"");
    feed_data(st, &r, "inv1",
              "\"phase\":\"event\",\"eventType\":\"result\",\"result\":{\"mime\":"
              "{\"text/plain\":\"r\"}}");
    cp_stream_cancel(st, "inv1", record, &r);
    CHECK_INT(r.n, 4);
    CHECK_STR(
        r.ev[3].result,
        "{\"requestId\":\"\",\"success\":false,\"executionTime\":0,\"logs\":{\"stdout\":"
        "[\"0\\n\"],\"stderr\":[]},\"results\":[{\"text\":\"r\",\"isMainResult\":false}],"
        "\"error\":{\"name\":\"ExecutionError\",\"value\":\"Stream inv1 was cancelled by "
        "caller\",\"traceback\":\"\"},\"errorMessage\":\"Stream inv1 was cancelled by caller\"}");
    rec_free(&r);
    cp_stream_free(st);
}

TEST(stream_begin_refuses_duplicates_and_empty_or_long_ids)
{
    cp_stream *st = cp_stream_new();
    char id[CP_ID_MAX + 2];
    memset(id, 'i', CP_ID_MAX + 1);
    id[CP_ID_MAX + 1] = '\0';
    CHECK_INT(cp_stream_begin(st, "a"), 0);
    CHECK_INT(cp_stream_begin(st, "a"), -1);
    CHECK_INT(cp_stream_begin(st, ""), -1);
    CHECK_INT(cp_stream_begin(st, NULL), -1);
    CHECK_INT(cp_stream_begin(st, id), -1);
    id[CP_ID_MAX] = '\0';
    CHECK_INT(cp_stream_begin(st, id), 0);
    CHECK_INT(cp_stream_inflight(st), 2);
    for (int i = 0; i < 20; i++) {
        char name[16];
        snprintf(name, sizeof name, "n%d", i);
        CHECK_INT(cp_stream_begin(st, name), 0);
    }
    CHECK_INT(cp_stream_inflight(st), 22);
    cp_stream_free(st); /* frees in-flight invocations without events */
}

/* ---- re-entrancy ------------------------------------------------------------------------ */

static void begin_again_on_done(rec *r, const cp_event *ev)
{
    if (ev->kind == CP_EV_DONE) CHECK_INT(cp_stream_begin(r->st, ev->invocation_id), 0);
}

TEST(stream_callback_may_begin_the_same_id_again_on_done)
{
    cp_stream *st = begin1("inv1");
    rec r = {0};
    r.st = st;
    r.hook = begin_again_on_done;
    feed_data(st, &r, "inv1", END_OK);
    CHECK_INT(r.n, 1);
    CHECK_INT(cp_stream_inflight(st), 1);
    r.hook = NULL;
    feed_data(st, &r, "inv1", END_OK);
    CHECK_INT(r.n, 2);
    CHECK_INT(cp_stream_inflight(st), 0);
    rec_free(&r);
    cp_stream_free(st);
}

static void cancel_on_event(rec *r, const cp_event *ev)
{
    if (ev->kind != CP_EV_STDOUT && ev->kind != CP_EV_RESULT && ev->kind != CP_EV_ERROR) return;
    char id[64];
    snprintf(id, sizeof id, "%s", ev->invocation_id);
    CHECK(cp_stream_cancel(r->st, id, record, r));
    /* the event being handled is still whole */
    if (ev->kind == CP_EV_STDOUT) CHECK_MEM(ev->chunk, ev->len, "out", 3);
    if (ev->kind == CP_EV_RESULT) CHECK_STR(ev->item->text, "t");
    if (ev->kind == CP_EV_ERROR) CHECK_STR(ev->error->value, "m");
}

TEST(stream_callback_may_cancel_the_invocation_it_is_told_about)
{
    static const char *const events[] = {
        "\"phase\":\"event\",\"eventType\":\"stdout\",\"chunk\":\"out\"",
        "\"phase\":\"event\",\"eventType\":\"result\",\"result\":{\"mime\":{\"text/plain\":\"t\"}}",
        "\"phase\":\"event\",\"eventType\":\"error\",\"error\":{\"message\":\"m\"}",
    };
    for (size_t i = 0; i < 3; i++) {
        cp_stream *st = begin1("inv1");
        rec r = {0};
        r.st = st;
        r.hook = cancel_on_event;
        feed_data(st, &r, "inv1", events[i]);
        CHECK_INT(r.n, 3);
        CHECK_INT(r.ev[1].kind, CP_EV_FAILED);
        CHECK_INT(r.ev[2].kind, CP_EV_DONE);
        /* what the event carried is already part of the result */
        CHECK(strstr(r.ev[2].result, i == 0   ? "[\"out\"]"
                                     : i == 1 ? "\"text\":\"t\""
                                              : "\"success\":false"));
        CHECK_INT(cp_stream_inflight(st), 0);
        rec_free(&r);
        cp_stream_free(st);
    }
}

static void check_gone_on_settle(rec *r, const cp_event *ev)
{
    if (ev->kind != CP_EV_FAILED && ev->kind != CP_EV_DONE) return;
    CHECK_INT(cp_stream_inflight(r->st), 0);
    CHECK(!cp_stream_cancel(r->st, ev->invocation_id, record, r));
    CHECK(!cp_stream_fail(r->st, ev->invocation_id, CP_FAIL_CLOSED, "x", record, r));
}

TEST(stream_invocation_leaves_the_table_before_its_final_events)
{
    static const char *const endings[] = {
        "\"error\":\"remote\"", "\"phase\":\"weird\"", "\"phase\":\"end\"", NULL, /* cancel */
    };
    for (size_t i = 0; i < sizeof endings / sizeof endings[0]; i++) {
        cp_stream *st = begin1("inv1");
        rec r = {0};
        r.st = st;
        r.hook = check_gone_on_settle;
        if (endings[i])
            feed_data(st, &r, "inv1", endings[i]);
        else
            cp_stream_cancel(st, "inv1", record, &r);
        feed(st, &r, "{\"invocationId\":\"inv1\"}"); /* invalid, and no longer in flight */
        CHECK_INT(count_kind(&r, CP_EV_DONE), 1);
        CHECK_INT(r.ev[r.n - 1].kind, CP_EV_INVALID);
        rec_free(&r);
        cp_stream_free(st);
    }
}

static void begin_during_fail_all(rec *r, const cp_event *ev)
{
    if (ev->kind == CP_EV_DONE && strcmp(ev->invocation_id, "a") == 0)
        CHECK_INT(cp_stream_begin(r->st, "fresh"), 0);
}

TEST(stream_fail_all_leaves_invocations_begun_by_its_callbacks)
{
    cp_stream *st = cp_stream_new();
    CHECK_INT(cp_stream_begin(st, "a"), 0);
    CHECK_INT(cp_stream_begin(st, "b"), 0);
    rec r = {0};
    r.st = st;
    r.hook = begin_during_fail_all;
    cp_stream_fail_all(st, CP_FAIL_CLOSED, "heartbeat failed", record, &r);
    CHECK_INT(r.n, 4);
    CHECK_INT(cp_stream_inflight(st), 1);
    r.hook = NULL;
    CHECK(cp_stream_cancel(st, "fresh", record, &r));
    CHECK_INT(r.n, 6);
    rec_free(&r);
    cp_stream_free(st);
}

/* ---- NUL bytes in output ----------------------------------------------------------------- */

TEST(stream_nul_bytes_in_a_chunk_round_trip_from_frame_chunk)
{
    cp_stream *st = begin1("inv1");
    rec r = {0};
    char *text = cp_frame_chunk("inv1", "wuying_codespace", 1, false, "a\0b\0", 4);
    feed(st, &r, text);
    free(text);
    text = cp_frame_chunk("inv1", "wuying_codespace", 2, true, "\0", 1);
    feed(st, &r, text);
    free(text);
    feed_data(st, &r, "inv1", "\"phase\":\"end\",\"status\":\"finished\"");
    CHECK_INT(r.n, 3);
    CHECK_INT(r.ev[0].kind, CP_EV_STDOUT);
    CHECK_MEM(r.ev[0].bytes, r.ev[0].len, "a\0b\0", 4);
    CHECK_INT(r.ev[1].kind, CP_EV_STDERR);
    CHECK_MEM(r.ev[1].bytes, r.ev[1].len, "\0", 1);
    CHECK_STR(
        r.ev[2].result,
        "{\"requestId\":\"inv1\",\"success\":true,\"executionTime\":0,\"logs\":{\"stdout\":"
        "[\"a\\u0000b\\u0000\"],\"stderr\":[\"\\u0000\"]},\"results\":[],\"errorMessage\":\"\"}");
    rec_free(&r);
    cp_stream_free(st);
}

TEST(stream_nul_in_text_fields_cuts_them_and_json_keeps_it_escaped)
{
    /* C strings cannot hold NUL: text fields are cut there, JSON fields keep \u0000. */
    cp_stream *st = begin1("inv1");
    rec r = {0};
    feed_data(st, &r, "inv1",
              "\"phase\":\"event\",\"eventType\":\"result\",\"result\":{\"mime\":{"
              "\"text/plain\":\"ab\\u0000cd\",\"application/json\":[\"x\\u0000\"]}}");
    feed_data(st, &r, "inv1",
              "\"phase\":\"event\",\"eventType\":\"error\",\"error\":{\"code\":"
              "\"E\\u0000F\",\"message\":\"m\\u0000n\"}");
    CHECK_INT(r.n, 2);
    CHECK_STR(r.ev[0].item.text, "ab");
    CHECK_STR(r.ev[0].item.json, "[\"x\\u0000\"]");
    CHECK_STR(r.ev[1].err_name, "E");
    CHECK_STR(r.ev[1].err_value, "m");
    CHECK_STR(r.ev[1].payload, "{\"code\":\"E\\u0000F\",\"message\":\"m\\u0000n\"}");
    /* a string error holding NUL is a remote error; the data text keeps \u0000 */
    feed_data(st, &r, "inv1", "\"error\":\"\\u0000x\",\"phase\":\"event\"");
    CHECK_INT(r.n, 4);
    CHECK_INT(r.ev[2].fail, CP_FAIL_REMOTE);
    CHECK_STR(r.ev[2].message, "{\"error\":\"\\u0000x\",\"phase\":\"event\"}");
    CHECK_INT(r.ev[3].kind, CP_EV_DONE);
    rec_free(&r);
    cp_stream_free(st);
}

TEST(stream_nul_is_kept_when_the_frame_holds_a_raw_ff_byte)
{
    /* Invalid UTF-8 (no text frame carries it) changes nothing: the NUL is kept. */
    cp_stream *st = begin1("inv1");
    rec r = {0};
    feed_data(st, &r, "inv1",
              "\"phase\":\"event\",\"eventType\":\"stdout\",\"chunk\":\"a\\u0000b\","
              "\"x\":\"\xff\"");
    CHECK_INT(r.n, 1);
    CHECK_MEM(r.ev[0].bytes, r.ev[0].len, "a\0b", 3);
    rec_free(&r);
    cp_stream_free(st);
}

/* ---- error texts ------------------------------------------------------------------------ */

TEST(stream_remote_error_text_is_cut_to_the_limit_and_marked)
{
    char data[4096];
    size_t n = (size_t)snprintf(data, sizeof data, "\"error\":\"");
    memset(data + n, 'x', 3000);
    n += 3000;
    snprintf(data + n, sizeof data - n, "\"");
    cp_stream *st = begin1("inv1");
    rec r = {0};
    feed_data(st, &r, "inv1", data);
    CHECK_INT(r.n, 2);
    CHECK_INT(strlen(r.ev[0].message), CP_REMOTE_ERROR_MAX + 3);
    CHECK(strncmp(r.ev[0].message, "{\"error\":\"xxxx", 14) == 0);
    CHECK_STR(r.ev[0].message + CP_REMOTE_ERROR_MAX, "...");
    rec_free(&r);
    cp_stream_free(st);
}

TEST(stream_remote_error_text_is_never_cut_inside_a_utf8_sequence)
{
    /* {"error":"a then é (2 bytes) from offset 11: byte 2000 is the second byte of one. */
    char data[4096];
    size_t n = (size_t)snprintf(data, sizeof data, "\"error\":\"a");
    for (int i = 0; i < 1200; i++) {
        data[n++] = '\xc3';
        data[n++] = '\xa9';
    }
    snprintf(data + n, sizeof data - n, "\"");
    cp_stream *st = begin1("inv1");
    rec r = {0};
    feed_data(st, &r, "inv1", data);
    CHECK_INT(r.n, 2);
    CHECK_INT(strlen(r.ev[0].message), CP_REMOTE_ERROR_MAX - 1 + 3);
    CHECK_STR(r.ev[0].message + CP_REMOTE_ERROR_MAX - 3, "\xc3\xa9...");
    rec_free(&r);
    cp_stream_free(st);
}

TEST(stream_remote_error_text_masks_token_like_values)
{
    cp_stream *st = begin1("inv1");
    rec r = {0};
    feed_data(st, &r, "inv1",
              "\"error\":\"denied\",\"token\":\"t-123\",\"Password\":\"\","
              "\"accessToken\":\"z\",\"secret\":5,\"tokens\":\"kept\"");
    CHECK_INT(r.n, 2);
    CHECK_STR(r.ev[0].message, "{\"error\":\"denied\",\"token\":\"***\",\"Password\":\"***\","
                               "\"accessToken\":\"***\",\"secret\":5,\"tokens\":\"kept\"}");
    rec_free(&r);
    cp_stream_free(st);
}

TEST(stream_without_kept_output_emits_every_event_and_settles_without_logs_or_results)
{
    cp_stream *st = begin1("inv1");
    cp_stream_keep_output(st, false);
    CHECK_INT(cp_stream_begin(st, "inv2"), 0);
    rec r = {0};
    feed_data(st, &r, "inv1",
              "\"phase\":\"event\",\"eventType\":\"stdout\",\"chunk\":\"a\\u0000b\"");
    feed_data(st, &r, "inv1", "\"phase\":\"event\",\"eventType\":\"stderr\",\"chunk\":\"e\"");
    feed_data(st, &r, "inv1",
              "\"phase\":\"event\",\"eventType\":\"result\",\"result\":{\"isMainResult\":true,"
              "\"mime\":{\"text/plain\":\"2\"}}");
    feed_data(st, &r, "inv1",
              "\"phase\":\"event\",\"eventType\":\"error\",\"error\":{\"code\":\"ValueError\","
              "\"message\":\"bad\"}");
    feed_data(st, &r, "inv1",
              "\"phase\":\"end\",\"status\":\"failed\",\"executionCount\":3,"
              "\"executionTime\":0.25");
    feed_data(st, &r, "inv2", "\"phase\":\"event\",\"eventType\":\"stdout\",\"chunk\":\"x\"");
    CHECK(cp_stream_cancel(st, "inv2", record, &r));
    CHECK_INT(r.n, 8);
    if (r.n == 8) {
        CHECK_INT(r.ev[0].kind, CP_EV_STDOUT);
        CHECK_MEM(r.ev[0].bytes, r.ev[0].len, "a\0b", 3);
        CHECK_INT(r.ev[1].kind, CP_EV_STDERR);
        CHECK_INT(r.ev[2].kind, CP_EV_RESULT);
        CHECK_STR(r.ev[2].item.text, "2");
        CHECK_INT(r.ev[3].kind, CP_EV_ERROR);
        CHECK_INT(r.ev[4].kind, CP_EV_DONE);
        CHECK_STR(r.ev[4].result,
                  "{\"requestId\":\"inv1\",\"success\":false,\"executionCount\":3,"
                  "\"executionTime\":0.25,\"logs\":{\"stdout\":[],\"stderr\":[]},\"results\":[],"
                  "\"error\":{\"name\":\"ValueError\",\"value\":\"bad\",\"traceback\":\"\"},"
                  "\"errorMessage\":\"bad\"}");
        CHECK_INT(r.ev[5].kind, CP_EV_STDOUT);
        CHECK_INT(r.ev[6].kind, CP_EV_FAILED);
        CHECK_INT(r.ev[7].kind, CP_EV_DONE);
        CHECK_STR(r.ev[7].result, FAILED_RESULT("Stream inv2 was cancelled by caller"));
    }
    rec_free(&r);
    cp_stream_free(st);
}
