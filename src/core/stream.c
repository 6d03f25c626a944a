/* codepane core: the client's table of in-flight streaming invocations (see stream.h).
 *
 * One frame in, zero or more events out. The rules follow the SDKs' WebSocket client
 * (dispatch, spec §6.4) and their code.run on top of it (event vocabulary and the final
 * result, §6.5-§6.6), where the two SDKs differ the Python SDK's truthiness wins (§5.6),
 * and texts are the TypeScript SDK's (JSON where Python would print a dict repr).
 *
 * Every handler changes the table and the invocation's result first and emits its event
 * last, with event data that does not live in the invocation, so a callback may call back
 * into the table (even cancel the invocation it is being told about). */
#include "stream.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core_limits.h"
#include "frame.h"
#include "json.h"

/* cp_frame_decode's reasons are short; the long ones (with data) are built on the heap. */
#define DECODE_ERR_MAX 256
/* Largest integer a double holds exactly: bound for executionCount. */
#define EXACT_INT_MAX 9007199254740992.0

typedef struct {
    char *id;
    cp_result r;
} invocation;

struct cp_stream {
    invocation *items; /* in the order they began */
    size_t count, cap;
    bool drop_output; /* cp_stream_keep_output(st, false) */
};

static char *dup_str(const char *s)
{
    return cp_strndup(s, strlen(s));
}

static void emit(cp_stream_cb cb, void *ud, const cp_event *ev)
{
    if (cb) cb(ud, ev);
}

/* ---- the table ---------------------------------------------------------------------- */

cp_stream *cp_stream_new(void)
{
    return calloc(1, sizeof(cp_stream));
}

void cp_stream_keep_output(cp_stream *st, bool keep)
{
    st->drop_output = !keep;
}

static void invocation_free(invocation *inv)
{
    free(inv->id);
    cp_result_free(&inv->r);
}

void cp_stream_free(cp_stream *st)
{
    if (!st) return;
    for (size_t i = 0; i < st->count; i++)
        invocation_free(&st->items[i]);
    free(st->items);
    free(st);
}

static bool find(const cp_stream *st, const char *id, size_t *at)
{
    for (size_t i = 0; i < st->count; i++) {
        if (strcmp(st->items[i].id, id) == 0) {
            *at = i;
            return true;
        }
    }
    return false;
}

int cp_stream_begin(cp_stream *st, const char *invocation_id)
{
    size_t at;
    if (!invocation_id || !invocation_id[0] || strlen(invocation_id) > CP_ID_MAX ||
        find(st, invocation_id, &at))
        return -1;
    if (st->count == st->cap) {
        size_t cap = st->cap ? 2 * st->cap : 4;
        invocation *items = realloc(st->items, cap * sizeof *items);
        if (!items) return -1;
        st->items = items;
        st->cap = cap;
    }
    invocation *inv = &st->items[st->count];
    if (!(inv->id = dup_str(invocation_id))) return -1;
    cp_result_init(&inv->r);
    st->count++;
    return 0;
}

size_t cp_stream_inflight(const cp_stream *st)
{
    return st->count;
}

/* Take invocation i out of the table, keeping the others in begin order. */
static invocation take(cp_stream *st, size_t i)
{
    invocation inv = st->items[i];
    memmove(&st->items[i], &st->items[i + 1], (st->count - i - 1) * sizeof *st->items);
    st->count--;
    return inv;
}

/* ---- settling an invocation (already out of the table) ------------------------------ */

static void emit_done(invocation *inv, cp_stream_cb cb, void *ud)
{
    cp_event ev = {.kind = CP_EV_DONE, .invocation_id = inv->id, .result = &inv->r};
    emit(cb, ud, &ev);
    invocation_free(inv);
}

/* A failure (spec §6.6): FAILED, then DONE with whatever was collected. */
static void settle_failed(invocation *inv, cp_fail_kind kind, const char *message, cp_stream_cb cb,
                          void *ud)
{
    if (!message) message = "";
    cp_result *r = &inv->r;
    cp_result_fail(r, message);
    cp_result_set_request_id(r, "");
    cp_result_set_error(r, "ExecutionError", message, "");
    r->has_execution_count = false;
    r->execution_time = 0;
    cp_event ev = {
        .kind = CP_EV_FAILED, .invocation_id = inv->id, .fail = kind, .message = message};
    emit(cb, ud, &ev);
    emit_done(inv, cb, ud);
}

/* ---- texts -------------------------------------------------------------------------- */

static bool ascii_ieq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z') x = (unsigned char)(x + 32);
        if (y >= 'A' && y <= 'Z') y = (unsigned char)(y + 32);
        if (x != y) return false;
    }
    return true;
}

/* Length of a match of the TypeScript SDK's mask pattern
 * "(token|password|accessToken|secret)":\s*"[^"]*" (case-insensitive) at s, or 0; *keylen
 * gets the length of the quoted key. */
static size_t mask_match(const char *s, size_t *keylen)
{
    static const char *const keys[] = {"token", "password", "accessToken", "secret"};
    if (s[0] != '"') return 0;
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        size_t n = strlen(keys[k]);
        /* ascii_ieq stops at the first difference, so it never reads past a NUL. */
        if (!ascii_ieq(s + 1, keys[k], n) || s[1 + n] != '"' || s[2 + n] != ':') continue;
        const char *p = s + 3 + n;
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f' || *p == '\v')
            p++;
        if (*p != '"') continue;
        const char *close = strchr(p + 1, '"');
        if (!close) continue;
        *keylen = n + 2;
        return (size_t)(close + 1 - s);
    }
    return 0;
}

/* The TypeScript SDK's error texts carry the frame's data as
 * truncateForLog(maskSensitiveData(JSON.stringify(data)), 2000): values of token-like keys
 * become "***", and text longer than CP_REMOTE_ERROR_MAX is cut (here in bytes, never
 * inside a UTF-8 sequence) and followed by "...". NULL on OOM. */
static char *data_text(const cJSON *data)
{
    char *json = cp_json_print(data);
    if (!json) return NULL;
    size_t len = strlen(json);
    /* A match is at least 10 bytes ("token":"") and grows by at most the 3 bytes of "***";
     * the slack also holds the "..." of the cut. */
    char *out = malloc(len + 3 * (len / 10) + 8), *o = out;
    if (!out) {
        free(json);
        return NULL;
    }
    for (size_t i = 0; i < len;) {
        size_t keylen = 0, m = mask_match(json + i, &keylen);
        if (m) {
            memcpy(o, json + i, keylen);
            o += keylen;
            memcpy(o, ":\"***\"", 6);
            o += 6;
            i += m;
        } else {
            *o++ = json[i++];
        }
    }
    *o = '\0';
    free(json);
    size_t n = (size_t)(o - out);
    if (n > CP_REMOTE_ERROR_MAX) {
        size_t cut = CP_REMOTE_ERROR_MAX;
        while (cut > 0 && ((unsigned char)out[cut] & 0xC0) == 0x80)
            cut--;
        memcpy(out + cut, "...", 4);
    }
    return out;
}

/* Python's str() of a JSON value as the SDKs apply it to names and messages: a string is
 * itself (its bytes, so read as a C string it is cut at a NUL, as it must be), anything
 * else its JSON text. NULL on OOM. */
static char *str_of(const cJSON *v)
{
    char *s = NULL;
    size_t len = 0;
    return cp_json_bytes(v, &s, &len) ? s : cp_json_print(v);
}

static char *fmt_alloc(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *fmt_alloc(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *out = n < 0 ? NULL : malloc((size_t)n + 1);
    if (!out) return NULL;
    va_start(ap, fmt);
    vsnprintf(out, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return out;
}

static const cJSON *member(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

/* ---- phase "event" ------------------------------------------------------------------ */

static int item_copy(cp_result_item *dst, const cp_result_item *src)
{
    dst->is_main_result = src->is_main_result;
    return cp_item_set(&dst->text, src->text) | cp_item_set(&dst->html, src->html) |
           cp_item_set(&dst->markdown, src->markdown) | cp_item_set(&dst->png, src->png) |
           cp_item_set(&dst->jpeg, src->jpeg) | cp_item_set(&dst->svg, src->svg) |
           cp_item_set(&dst->latex, src->latex) | cp_item_set(&dst->json, src->json) |
           cp_item_set(&dst->chart, src->chart);
}

/* eventType "result" (spec §6.5, MIME keys only, §5.5). */
static void build_item(const cJSON *result, cp_result_item *it)
{
    memset(it, 0, sizeof *it);
    if (!cJSON_IsObject(result)) {
        /* Stringified, not main; absent reads as null. */
        it->text = result ? str_of(result) : dup_str("null");
        return;
    }
    it->is_main_result = cp_json_truthy(member(result, "isMainResult")) ||
                         cp_json_truthy(member(result, "is_main_result"));
    cp_item_from_bundle(it, member(result, "mime"), false); /* OOM: fields stay unset */
}

/* eventType "error": payload = data.error when truthy, else data itself. An object gives
 * name = code or "ExecutionError", value = message or error or "", traceback = the
 * codepane extension "traceback" when a non-empty string, else "traceId=<traceId>" or "";
 * anything else gives {ExecutionError, str(payload), ""}. */
static void build_error(const cJSON *data, cp_exec_error *e, char **payload)
{
    const cJSON *err = member(data, "error");
    const cJSON *p = cp_json_truthy(err) ? err : data;
    *payload = cp_json_print(p);
    memset(e, 0, sizeof *e);
    if (!cJSON_IsObject(p)) {
        e->name = dup_str("ExecutionError");
        e->value = str_of(p);
        e->traceback = dup_str("");
        return;
    }
    const cJSON *code = member(p, "code"), *msg = member(p, "message"), *inner = member(p, "error"),
                *trace_id = member(p, "traceId");
    const cJSON *tb = member(p, "traceback");
    e->name = cp_json_truthy(code) ? str_of(code) : dup_str("ExecutionError");
    e->value = cp_json_truthy(msg)     ? str_of(msg)
               : cp_json_truthy(inner) ? str_of(inner)
                                       : dup_str("");
    if (cp_json_is_string(tb) && (e->traceback = str_of(tb)) && e->traceback[0]) return;
    free(e->traceback);
    if (cp_json_truthy(trace_id)) {
        char *id = str_of(trace_id);
        e->traceback = id ? fmt_alloc("traceId=%s", id) : NULL;
        free(id);
    } else {
        e->traceback = dup_str("");
    }
}

static void on_event(invocation *inv, bool keep, cp_frame *f, cp_stream_cb cb, void *ud)
{
    const cJSON *data = f->data;
    const char *type = cp_json_get_string(data, "eventType");
    if (!type) return;
    cp_event ev = {.invocation_id = f->invocation_id};
    bool out = strcmp(type, "stdout") == 0;
    if (out || strcmp(type, "stderr") == 0) {
        char *chunk = NULL;
        size_t len = 0;
        /* Non-string chunks are ignored (and so, short of memory, is a copy of one). */
        if (cp_json_bytes(member(data, "chunk"), &chunk, &len) != 1) return;
        if (keep && out)
            cp_result_add_stdout(&inv->r, chunk, len);
        else if (keep)
            cp_result_add_stderr(&inv->r, chunk, len);
        ev.kind = out ? CP_EV_STDOUT : CP_EV_STDERR;
        ev.chunk = chunk;
        ev.len = len;
        emit(cb, ud, &ev);
        free(chunk);
    } else if (strcmp(type, "result") == 0) {
        cp_result_item item;
        build_item(member(data, "result"), &item);
        cp_result_item *slot = keep ? cp_result_add_item(&inv->r) : NULL;
        if (slot) item_copy(slot, &item);
        ev.kind = CP_EV_RESULT;
        ev.item = &item;
        emit(cb, ud, &ev);
        cp_item_free(&item);
    } else if (strcmp(type, "error") == 0) {
        cp_exec_error e;
        char *payload = NULL;
        build_error(data, &e, &payload);
        cp_result_set_error(&inv->r, e.name, e.value, e.traceback);
        /* The names and messages are "" rather than NULL should memory have run out. */
        cp_exec_error shown = {e.name ? e.name : "", e.value ? e.value : "",
                               e.traceback ? e.traceback : ""};
        ev.kind = CP_EV_ERROR;
        ev.error = &shown;
        ev.payload_json = payload ? payload : "null";
        emit(cb, ud, &ev);
        free(e.name);
        free(e.value);
        free(e.traceback);
        free(payload);
    }
    /* any other eventType is ignored */
}

/* ---- phase "end" -------------------------------------------------------------------- */

static void settle_end(invocation *inv, const cp_frame *f, cp_stream_cb cb, void *ud)
{
    const cJSON *data = f->data;
    cp_result *r = &inv->r;
    const cJSON *count = member(data, "executionCount");
    if (cJSON_IsNumber(count) && isfinite(count->valuedouble) &&
        floor(count->valuedouble) == count->valuedouble &&
        fabs(count->valuedouble) <= EXACT_INT_MAX) {
        r->has_execution_count = true;
        r->execution_count = (long long)count->valuedouble;
    }
    const cJSON *time = member(data, "executionTime");
    r->execution_time = cJSON_IsNumber(time) && isfinite(time->valuedouble) ? time->valuedouble : 0;

    const cJSON *xe = member(data, "executionError");
    char *xe_text = cp_json_truthy(xe) ? str_of(xe) : NULL;
    if (xe_text && !r->error) cp_result_set_error(r, "ExecutionError", xe_text, "");
    const char *status = cp_json_get_string(data, "status");
    bool failed = status && strcmp(status, "failed") == 0;
    r->success = !r->error && !cp_json_truthy(xe) && !failed;
    cp_result_set_error_message(r, r->success ? ""
                                   : xe_text  ? xe_text
                                   : r->error ? r->error->value
                                              : "");
    free(xe_text);
    cp_result_set_request_id(r, inv->id);
    emit_done(inv, cb, ud);
}

/* ---- dispatch ----------------------------------------------------------------------- */

/* Frames for no in-flight invocation (spec §6.10): routed by target, or by source when
 * target is "SDK" and source names someone else; no target → dropped. */
static void push(const cp_frame *f, cp_stream_cb cb, void *ud)
{
    if (!f->target || !f->target[0]) return;
    const char *key = f->target;
    if (strcmp(key, "SDK") == 0 && f->source && f->source[0] && strcmp(f->source, "SDK") != 0)
        key = f->source;
    char *payload = cp_json_print(f->data);
    cp_event ev = {.kind = CP_EV_PUSH,
                   .invocation_id = f->invocation_id,
                   .push_key = key,
                   .payload_json = payload ? payload : "null"};
    emit(cb, ud, &ev);
    free(payload);
}

/* Fail the invocation at `at` with the message built from the frame's data. */
static void fail_at(cp_stream *st, size_t at, cp_fail_kind kind, char *msg, cp_stream_cb cb,
                    void *ud)
{
    invocation inv = take(st, at);
    settle_failed(&inv, kind, msg ? msg : "out of memory", cb, ud);
    free(msg);
}

static void dispatch(cp_stream *st, size_t at, cp_frame *f, cp_stream_cb cb, void *ud)
{
    const cJSON *data = f->data;
    /* A string error (NUL allowed) that is not empty. */
    const cJSON *error = member(data, "error");
    bool has_error = cp_json_is_string(error) && cp_json_truthy(error);
    const cJSON *phase = member(data, "phase");
    const char *ph = cJSON_IsString(phase) ? phase->valuestring : NULL;
    if (ph && strcmp(ph, "event") == 0 && !has_error) {
        on_event(&st->items[at], !st->drop_output, f, cb, ud);
        return;
    }
    if (ph && strcmp(ph, "end") == 0 && !has_error) {
        invocation inv = take(st, at);
        settle_end(&inv, f, cb, ud);
        return;
    }
    char *text = data_text(data), *msg = NULL;
    if (!text) {
        fail_at(st, at, CP_FAIL_PROTOCOL, NULL, cb, ud);
        return;
    }
    /* A non-empty string error is a remote error whatever the phase says. */
    if (has_error || (ph && strcmp(ph, "error") == 0)) {
        fail_at(st, at, CP_FAIL_REMOTE, text, cb, ud);
        return;
    }
    if (!phase || cJSON_IsNull(phase)) {
        msg = fmt_alloc("WS message missing required data.phase; invocationId=%s, data=%s",
                        f->invocation_id, text);
    } else {
        char *shown = cp_json_print(phase);
        if (shown)
            msg = fmt_alloc("WS message has unsupported data.phase; invocationId=%s, "
                            "phase=%s, data=%s",
                            f->invocation_id, shown, text);
        free(shown);
    }
    free(text);
    fail_at(st, at, CP_FAIL_PROTOCOL, msg, cb, ud);
}

void cp_stream_feed(cp_stream *st, const char *text, size_t len, cp_stream_cb cb, void *ud)
{
    cp_frame f;
    char err[DECODE_ERR_MAX];
    size_t at;
    if (cp_frame_decode(text, len, &f, err, sizeof err) != 0) {
        /* Logged and ignored by the SDKs, unless the id names an invocation: it fails. */
        if (f.invocation_id && find(st, f.invocation_id, &at)) {
            invocation inv = take(st, at);
            settle_failed(&inv, CP_FAIL_PROTOCOL, err, cb, ud);
        } else {
            cp_event ev = {.kind = CP_EV_INVALID, .invocation_id = f.invocation_id, .message = err};
            emit(cb, ud, &ev);
        }
    } else if (find(st, f.invocation_id, &at)) {
        dispatch(st, at, &f, cb, ud);
    } else {
        push(&f, cb, ud);
    }
    cp_frame_free(&f);
}

/* ---- local settlement --------------------------------------------------------------- */

bool cp_stream_cancel(cp_stream *st, const char *invocation_id, cp_stream_cb cb, void *ud)
{
    size_t at;
    if (!invocation_id || !find(st, invocation_id, &at)) return false;
    invocation inv = take(st, at);
    char msg[CP_ID_MAX + sizeof "Stream  was cancelled by caller"];
    snprintf(msg, sizeof msg, "Stream %s was cancelled by caller", inv.id);
    settle_failed(&inv, CP_FAIL_CANCELLED, msg, cb, ud);
    return true;
}

bool cp_stream_fail(cp_stream *st, const char *invocation_id, cp_fail_kind kind,
                    const char *message, cp_stream_cb cb, void *ud)
{
    size_t at;
    if (!invocation_id || !find(st, invocation_id, &at)) return false;
    invocation inv = take(st, at);
    settle_failed(&inv, kind, message, cb, ud);
    return true;
}

void cp_stream_fail_all(cp_stream *st, cp_fail_kind kind, const char *reason, cp_stream_cb cb,
                        void *ud)
{
    /* Detach the whole table first, as the SDKs snapshot theirs: invocations begun by a
     * callback meanwhile belong to the next connection and are left alone. */
    invocation *items = st->items;
    size_t count = st->count;
    st->items = NULL;
    st->count = st->cap = 0;
    for (size_t i = 0; i < count; i++)
        settle_failed(&items[i], kind, reason, cb, ud);
    free(items);
}
