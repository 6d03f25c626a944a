/* codepane core: the run_code payload and its HTTP envelopes (see payload.h).
 *
 * The parsers reproduce the SDKs' outcomes (spec §3, §4, §5) with these rules where the
 * two SDKs part ways or crash:
 * - "first alternative" and every truthiness test follow the Python SDK (payload.h);
 * - where one SDK would throw on a shape (e.g. Py calling .get on a list), the shape is
 *   handled the way the other SDK handles it, so bad input is an outcome, never a crash;
 * - a value the SDKs would "stringify" (str() in Py, String() in TS) becomes its compact
 *   JSON text here: "42", "[1,2]", "true", "null", {"a":1}. Strings stay as they are;
 * - messages use the TypeScript SDK's wording where the two differ.
 * All parsing goes through cp_json_parse_keep_nul, so stdout/stderr chunks that hold NUL
 * bytes (escaped as \u0000) arrive byte-exact; other text fields are C strings and end
 * at their first NUL. */
#include "payload.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "json.h"

/* The SDKs' messages. Both SDKs word every one of these the same way; the
 * "HTTP request failed: reply body: …" and "… data field: …" details are codepane's
 * (the SDKs put the exception text of their JSON parser there). */
#define MSG_NO_DATA        "No data returned"
#define MSG_NO_CONTENT     "No content found in response"
#define MSG_ERROR_PREFIX   "Error in response: "
#define MSG_UNKNOWN_ERROR  "Unknown error"
#define MSG_OOM            "Failed to run code: out of memory"
#define MSG_RUN_FAILED     "Failed to run code"
#define MSG_HTTP_FAILED    "HTTP request failed: "
#define MSG_MCP_FAILED     "Failed to call MCP tool run_code: "
#define MSG_HTTP_CODE      "HTTP request failed with code: "
#define MSG_LINK_NO_DATA   "No data field in LinkUrl response"
#define MSG_LINK_BAD_DATA  "Invalid data field type in LinkUrl response"
#define MSG_LINK_NO_RESULT "No result field in LinkUrl response data"
#define MSG_TOOL_FAILED    "Tool execution failed"
#define EXEC_ERROR_NAME    "ExecutionError"
#define RICH_ERROR_NAME    "UnknownError"

/* ---- small helpers ---------------------------------------------------------------- */

static const cJSON *member(const cJSON *obj, const char *key)
{
    return cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
}

static bool has_member(const cJSON *obj, const char *key)
{
    return member(obj, key) != NULL;
}

/* A member that is null reads as absent, as in both SDKs' short-key lookups. */
static const cJSON *non_null(const cJSON *v)
{
    return cJSON_IsNull(v) ? NULL : v;
}

/* The "stringified" form of a value: a string's bytes, or compact JSON text for any
 * other value. *out is NULL when v is NULL. Returns -1 on OOM. */
static int value_text(const cJSON *v, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (!v) return 0;
    int rc = cp_json_bytes(v, out, len);
    if (rc == 1) return 0;
    if (rc < 0) return -1;
    char *text = cp_json_print(v);
    if (!text) return -1;
    *out = text;
    *len = strlen(text);
    return 0;
}

/* Set an item field to the stringified value (nothing when v is NULL). */
static int set_text_field(char **field, const cJSON *v)
{
    char *text;
    size_t len;
    if (value_text(v, &text, &len)) return -1;
    if (!text) return 0;
    free(*field);
    *field = text;
    return 0;
}

/* json and chart keep any JSON value as JSON text. */
static int set_json_field(char **field, const cJSON *v)
{
    if (!v) return 0;
    char *text = cp_json_print(v);
    if (!text) return -1;
    free(*field);
    *field = text;
    return 0;
}

/* The first of up to three members that is truthy in Python's sense (spec §5.6). */
static const cJSON *first_truthy(const cJSON *obj, const char *k1, const char *k2, const char *k3)
{
    const char *keys[3] = {k1, k2, k3};
    for (int i = 0; i < 3; i++) {
        if (!keys[i]) continue;
        const cJSON *v = member(obj, keys[i]);
        if (cp_json_truthy(v)) return v;
    }
    return NULL;
}

/* Move a freshly built result into the caller's, keeping the caller's request_id. */
static void move_result(cp_result *dst, cp_result *src)
{
    char *rid = dst->request_id;
    dst->request_id = NULL;
    cp_result_free(dst);
    *dst = *src;
    dst->request_id = rid;
    cp_result_init(src);
}

/* After OOM: an empty failure reading MSG_OOM (as far as memory allows). */
static int fail_oom(cp_result *r)
{
    cp_result tmp;
    cp_result_init(&tmp);
    move_result(r, &tmp);
    cp_result_fail(r, MSG_OOM);
    return -1;
}

/* The SDKs' emptyResult: no logs, no results, the given outcome. */
static int set_empty(cp_result *r, const char *msg)
{
    cp_result tmp;
    cp_result_init(&tmp);
    move_result(r, &tmp);
    if (cp_result_fail(r, msg)) return fail_oom(r);
    return 0;
}

/* ---- logs ------------------------------------------------------------------------- */

/* stdout/stderr as the payload gives them: an array of chunks, kept verbatim. A lone
 * string counts as one chunk; array items that are not strings are kept as their JSON
 * text; null items and any other shape are dropped. */
static int add_chunks(cp_result *r, const cJSON *v, bool is_stderr)
{
    const cJSON *one = v;
    if (cJSON_IsArray(v))
        one = v->child;
    else if (!cp_json_is_string(v))
        return 0;
    for (; one; one = cJSON_IsArray(v) ? one->next : NULL) {
        if (cJSON_IsNull(one)) continue;
        char *text;
        size_t len;
        if (value_text(one, &text, &len)) return -1;
        int rc =
            is_stderr ? cp_result_add_stderr(r, text, len) : cp_result_add_stdout(r, text, len);
        free(text);
        if (rc) return -1;
    }
    return 0;
}

/* execution_count: a number is copied (truncated toward zero when not integral); any
 * other value leaves the count unknown. execution_time: a finite number, else 0. */
static void set_count_and_time(cp_result *r, const cJSON *d)
{
    const cJSON *count = member(d, "execution_count");
    if (cJSON_IsNumber(count) && isfinite(count->valuedouble) &&
        fabs(count->valuedouble) < 9.2e18) {
        r->has_execution_count = true;
        r->execution_count = (long long)count->valuedouble;
    }
    const cJSON *t = member(d, "execution_time");
    r->execution_time = cJSON_IsNumber(t) && isfinite(t->valuedouble) ? t->valuedouble : 0;
}

/* ---- result items ----------------------------------------------------------------- */

/* A MIME bundle (new format, spec §5.5): MIME key first, short key as fallback, first
 * truthy wins; isMainResult then is_main_result. */
static int fill_bundle(cp_result_item *it, const cJSON *o)
{
    if (cp_item_from_bundle(it, o, true)) return -1;
    it->is_main_result =
        cp_json_truthy(member(o, "isMainResult")) || cp_json_truthy(member(o, "is_main_result"));
    return 0;
}

/* A non-main result whose text is the stringified value. */
static int fill_text_item(cp_result_item *it, const cJSON *v)
{
    it->is_main_result = false;
    return set_text_field(&it->text, v);
}

/* A string item (spec §5.2): decode it, once more if that gave a string (double
 * encoding); an object is a bundle, anything else its stringified self; a string that
 * does not decode is kept as the text. */
static int fill_string_item(cp_result_item *it, const cJSON *item)
{
    char *s = NULL, *s2 = NULL;
    size_t len = 0, len2 = 0;
    cJSON *first = NULL, *second = NULL;
    int rc = -1;
    if (cp_json_bytes(item, &s, &len) < 0) return -1;
    first = cp_json_parse_keep_nul(s, len, NULL, 0);
    if (!first) {
        it->text = s;
        it->is_main_result = false;
        return 0;
    }
    const cJSON *value = first;
    if (cJSON_IsString(first) || cJSON_IsRaw(first)) {
        if (cp_json_bytes(first, &s2, &len2) < 0) goto out;
        second = cp_json_parse_keep_nul(s2, len2, NULL, 0);
        if (second) value = second;
    }
    rc = cJSON_IsObject(value) ? fill_bundle(it, value) : fill_text_item(it, value);
out:
    cJSON_Delete(second);
    cJSON_Delete(first);
    free(s2);
    free(s);
    return rc;
}

static int add_new_item(cp_result *r, const cJSON *item)
{
    cp_result_item *it = cp_result_add_item(r);
    if (!it) return -1;
    if (cJSON_IsObject(item)) return fill_bundle(it, item);
    if (cp_json_is_string(item)) return fill_string_item(it, item);
    return fill_text_item(it, item);
}

/* ---- the four formats ------------------------------------------------------------- */

/* Text that is not a JSON object (spec §5.1 steps 2-3, and the step 9 fallback): one
 * main result and one stdout chunk holding the same text. */
static int parse_plain(cp_result *r, const char *text, size_t len)
{
    cp_result_item *it = cp_result_add_item(r);
    if (!it || !(it->text = cp_strndup(text, len))) return -1;
    it->is_main_result = true;
    return cp_result_add_stdout(r, text, len);
}

/* §5.2. */
static int parse_new(cp_result *r, const cJSON *d)
{
    if (add_chunks(r, member(d, "stdout"), false) || add_chunks(r, member(d, "stderr"), true))
        return -1;
    const cJSON *item;
    cJSON_ArrayForEach(item, member(d, "result"))
    {
        if (add_new_item(r, item)) return -1;
    }
    set_count_and_time(r, d);
    const cJSON *exec_error = member(d, "executionError");
    if (cp_json_truthy(exec_error)) {
        char *msg;
        size_t len;
        if (value_text(exec_error, &msg, &len)) return -1;
        int rc = cp_result_set_error(r, EXEC_ERROR_NAME, msg, "") || cp_result_fail(r, msg);
        free(msg);
        if (rc) return -1;
    }
    return 0;
}

/* §5.3: short keys only, values as given (no truthy fallback), snake is_main_result. An
 * item that is not an object gives an empty, non-main result (as the TS SDK does). */
static int parse_rich(cp_result *r, const cJSON *d)
{
    const cJSON *logs = member(d, "logs");
    if (add_chunks(r, member(logs, "stdout"), false) || add_chunks(r, member(logs, "stderr"), true))
        return -1;
    const cJSON *o;
    cJSON_ArrayForEach(o, member(d, "results"))
    {
        cp_result_item *it = cp_result_add_item(r);
        if (!it) return -1;
        if (set_text_field(&it->text, non_null(member(o, "text"))) ||
            set_text_field(&it->html, non_null(member(o, "html"))) ||
            set_text_field(&it->markdown, non_null(member(o, "markdown"))) ||
            set_text_field(&it->png, non_null(member(o, "png"))) ||
            set_text_field(&it->jpeg, non_null(member(o, "jpeg"))) ||
            set_text_field(&it->svg, non_null(member(o, "svg"))) ||
            set_json_field(&it->json, non_null(member(o, "json"))) ||
            set_text_field(&it->latex, non_null(member(o, "latex"))) ||
            set_json_field(&it->chart, non_null(member(o, "chart"))))
            return -1;
        it->is_main_result = cp_json_truthy(member(o, "is_main_result"));
    }
    set_count_and_time(r, d);
    /* A truthy error gives the error object and errorMessage, yet success stays true
     * unless isError (spec §5.3 quirk; isError was handled before this point). */
    const cJSON *e = member(d, "error");
    if (cp_json_truthy(e)) {
        const cJSON *name = member(e, "name"), *value = member(e, "value");
        const cJSON *tb = member(e, "traceback");
        char *n = NULL, *v = NULL, *t = NULL;
        size_t len;
        int rc = -1;
        if (value_text(non_null(name), &n, &len) || value_text(non_null(value), &v, &len) ||
            value_text(non_null(tb), &t, &len))
            goto out;
        if (cp_result_set_error(r, n ? n : RICH_ERROR_NAME, v ? v : "", t ? t : "")) goto out;
        const char *msg = cp_json_truthy(value) ? v : cp_json_truthy(name) ? n : RICH_ERROR_NAME;
        if (cp_result_set_error_message(r, msg)) goto out;
        rc = 0;
    out:
        free(n);
        free(v);
        free(t);
        if (rc) return -1;
    }
    return 0;
}

/* §5.4: content[0].text (any non-null value) is the one main result and stdout chunk. */
static int parse_legacy(cp_result *r, const cJSON *d)
{
    const cJSON *content = member(d, "content");
    const cJSON *text = cJSON_IsArray(content) ? member(content->child, "text") : NULL;
    if (!non_null(text)) return cp_result_fail(r, MSG_NO_CONTENT);
    char *s;
    size_t len;
    if (value_text(text, &s, &len)) return -1;
    int rc = parse_plain(r, s, len);
    free(s);
    return rc;
}

/* §5.1 step 5: "Error in response: " + the text of every object item of content, joined
 * with "; " (a missing or null text reads "Unknown error"). */
static int parse_is_error(cp_result *r, const cJSON *d)
{
    size_t cap = sizeof MSG_ERROR_PREFIX, used = sizeof MSG_ERROR_PREFIX - 1;
    char *msg = malloc(cap);
    if (!msg) return -1;
    memcpy(msg, MSG_ERROR_PREFIX, cap);
    bool first = true;
    const cJSON *content = member(d, "content"), *item;
    if (!cJSON_IsArray(content)) content = NULL;
    cJSON_ArrayForEach(item, content)
    {
        if (!cJSON_IsObject(item)) continue;
        const cJSON *t = member(item, "text");
        char *s = NULL;
        size_t len = 0;
        if (value_text(non_null(t), &s, &len)) {
            free(msg);
            return -1;
        }
        const char *piece = s ? s : MSG_UNKNOWN_ERROR;
        size_t plen = strlen(piece); /* the message is a C string: text ends at a NUL */
        size_t need = used + (first ? 0 : 2) + plen + 1;
        if (need > cap) {
            char *bigger = realloc(msg, need);
            if (!bigger) {
                free(s);
                free(msg);
                return -1;
            }
            msg = bigger;
            cap = need;
        }
        if (!first) memcpy(msg + used, "; ", 2), used += 2;
        memcpy(msg + used, piece, plen);
        used += plen;
        msg[used] = '\0';
        first = false;
        free(s);
    }
    int rc = cp_result_fail(r, msg);
    free(msg);
    return rc;
}

/* §5.1 step 4: a content[0].text that decodes to an object with "result" or
 * "executionError" replaces the object. Returns the replacement (owned by the caller)
 * or NULL. *oom is set when memory ran out. */
static cJSON *unwrap(const cJSON *d, bool *oom)
{
    const cJSON *content = member(d, "content");
    if (!cJSON_IsArray(content) || !content->child) return NULL;
    const cJSON *text = member(content->child, "text");
    char *s;
    size_t len;
    int rc = cp_json_is_string(text) ? cp_json_bytes(text, &s, &len) : 0;
    if (rc <= 0) {
        *oom = rc < 0;
        return NULL;
    }
    cJSON *inner = len ? cp_json_parse_keep_nul(s, len, NULL, 0) : NULL;
    free(s);
    if (cJSON_IsObject(inner) &&
        (has_member(inner, "result") || has_member(inner, "executionError")))
        return inner;
    cJSON_Delete(inner);
    return NULL;
}

/* §5.1 steps 2-9 on non-empty text, into a fresh result. */
static int parse_into(cp_result *r, const char *data, size_t len)
{
    cJSON *root = cp_json_parse_keep_nul(data, len, NULL, 0);
    if (!cJSON_IsObject(root)) { /* not JSON, or JSON but not an object (Py: arrays too) */
        cJSON_Delete(root);
        return parse_plain(r, data, len);
    }
    bool oom = false;
    cJSON *inner = unwrap(root, &oom);
    const cJSON *d = inner ? inner : root;
    int rc;
    if (oom)
        rc = -1;
    else if (cp_json_truthy(member(d, "isError")))
        rc = parse_is_error(r, d);
    else if (cJSON_IsArray(member(d, "result")))
        rc = parse_new(r, d);
    else if (has_member(d, "logs") || has_member(d, "results"))
        rc = parse_rich(r, d);
    else if (has_member(d, "content"))
        rc = parse_legacy(r, d);
    else {
        /* Fallback: the object as text (Py prints a dict repr, TS "[object Object]";
         * codepane prints compact JSON, which keeps the keys visible). */
        char *text = cp_json_print(d);
        rc = text ? parse_plain(r, text, strlen(text)) : -1;
        free(text);
    }
    cJSON_Delete(inner);
    cJSON_Delete(root);
    return rc;
}

int cp_payload_parse(const char *data, size_t len, cp_result *r)
{
    if (!data || len == 0) return set_empty(r, MSG_NO_DATA);
    cp_result tmp;
    cp_result_init(&tmp);
    if (parse_into(&tmp, data, len)) {
        cp_result_free(&tmp);
        return fail_oom(r);
    }
    move_result(r, &tmp);
    return 0;
}

/* ---- HTTP replies ----------------------------------------------------------------- */

/* A route failure as code.run reports it: empty result, the route's message or the
 * generic one. */
static int route_failure(cp_result *r, const char *msg)
{
    return set_empty(r, msg && msg[0] ? msg : MSG_RUN_FAILED);
}

static int route_failure_2(cp_result *r, const char *prefix, const char *detail)
{
    size_t n = strlen(prefix) + strlen(detail) + 1;
    char *msg = malloc(n);
    if (!msg) return fail_oom(r);
    snprintf(msg, n, "%s%s", prefix, detail);
    int rc = route_failure(r, msg);
    free(msg);
    return rc;
}

/* The decoded LinkUrl data object → tool text or a failure (spec §3 steps 3-6). */
static int linkurl_data(cp_result *r, const cJSON *data)
{
    const cJSON *result = member(data, "result");
    if (!cJSON_IsObject(result)) return route_failure(r, MSG_LINK_NO_RESULT);
    /* content[0] only: a string as it is; an object's first truthy of text, blob, data. */
    char *text = NULL;
    size_t len = 0;
    const cJSON *content = member(result, "content");
    const cJSON *first = cJSON_IsArray(content) ? content->child : NULL;
    const cJSON *pick =
        cp_json_is_string(first) ? first : first_truthy(first, "text", "blob", "data");
    if (value_text(pick, &text, &len)) return fail_oom(r);
    int rc;
    if (cp_json_truthy(member(result, "isError")))
        rc = route_failure(r, text);
    else
        rc = cp_payload_parse(text, len, r);
    free(text);
    return rc;
}

int cp_payload_from_linkurl(int http_status, const char *body, size_t len,
                            const char *transport_error, const char *request_id, cp_result *r)
{
    int rc;
    char reason[64], status[32];
    cJSON *root = NULL, *decoded = NULL;
    if (transport_error) {
        rc = route_failure_2(r, MSG_HTTP_FAILED, transport_error);
    } else if (http_status < 200 || http_status > 299) {
        snprintf(status, sizeof status, "%d", http_status);
        rc = route_failure_2(r, MSG_HTTP_CODE, status);
    } else if (!(root = cp_json_parse_keep_nul(body, len, reason, sizeof reason))) {
        rc = route_failure_2(r, MSG_HTTP_FAILED "reply body: ", reason);
    } else {
        const cJSON *data = member(root, "data");
        if (!data || cJSON_IsNull(data)) {
            rc = route_failure(r, MSG_LINK_NO_DATA);
        } else if (cJSON_IsObject(data)) {
            rc = linkurl_data(r, data);
        } else if (cp_json_is_string(data)) {
            char *s;
            size_t slen;
            if (cp_json_bytes(data, &s, &slen) < 0) {
                rc = fail_oom(r);
            } else {
                decoded = cp_json_parse_keep_nul(s, slen, reason, sizeof reason);
                free(s);
                rc = decoded ? linkurl_data(r, decoded)
                             : route_failure_2(r, MSG_HTTP_FAILED "data field: ", reason);
            }
        } else {
            rc = route_failure(r, MSG_LINK_BAD_DATA);
        }
    }
    cJSON_Delete(decoded);
    cJSON_Delete(root);
    if (cp_result_set_request_id(r, request_id ? request_id : "") && rc == 0) rc = fail_oom(r);
    return rc;
}

/* The gateway's tool text (spec §4): every content item of type "text" joined with
 * "\n" (a missing text reads ""); with none, content[0]'s text, blob or data if it is a
 * non-empty string (the TS SDK's rule; Py takes the first image item's data). *out is
 * NULL when there is no text. Returns -1 on OOM. */
static int gateway_text(const cJSON *data, char **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    const cJSON *content = member(data, "content");
    if (!cJSON_IsArray(content) || !content->child) return 0;
    char *joined = NULL;
    size_t used = 0;
    bool any = false;
    const cJSON *item;
    cJSON_ArrayForEach(item, content)
    {
        const char *type = cp_json_get_string(item, "type");
        if (!type || strcmp(type, "text") != 0) continue;
        const cJSON *t = member(item, "text");
        char *s = NULL;
        size_t len = 0;
        if (value_text(non_null(t), &s, &len)) goto oom;
        char *bigger = realloc(joined, used + (any ? 1 : 0) + len + 1);
        if (!bigger) {
            free(s);
            goto oom;
        }
        joined = bigger;
        if (any) joined[used++] = '\n';
        if (len) memcpy(joined + used, s, len);
        used += len;
        joined[used] = '\0';
        any = true;
        free(s);
    }
    if (any) {
        *out = joined;
        *outlen = used;
        return 0;
    }
    const cJSON *c0 = content->child;
    const char *keys[] = {"text", "blob", "data"};
    for (size_t i = 0; i < 3; i++) {
        const cJSON *v = member(c0, keys[i]);
        if (cp_json_is_string(v) && cp_json_truthy(v)) {
            char *s;
            size_t len;
            if (cp_json_bytes(v, &s, &len) < 0) return -1;
            *out = s;
            *outlen = len;
            return 0;
        }
    }
    return 0;
oom:
    free(joined);
    return -1;
}

int cp_payload_from_gateway(int http_status, const char *body, size_t len,
                            const char *transport_error, const char *header_request_id,
                            cp_result *r)
{
    cJSON *root = NULL;
    char *text = NULL, *body_text = NULL;
    size_t text_len = 0;
    const char *request_id = NULL, *message = NULL;
    bool api_success = false, tool_success = true;
    int rc;

    if (!transport_error) {
        root = cp_json_parse_keep_nul(body, len, NULL, 0);
        /* A body that is not JSON is the error text, as the TS HTTP client reports it. */
        if (!root && body && len && !(body_text = cp_strndup(body, len))) {
            rc = fail_oom(r);
            goto out;
        }
    }
    if (cJSON_IsObject(root)) {
        const char *rid = cp_json_get_string(root, "requestId");
        if (rid && rid[0]) request_id = rid;
        api_success = cJSON_IsTrue(member(root, "success"));
        message = cp_json_get_string(root, "message");
        const cJSON *data = member(root, "data");
        /* absent, null or non-object data counts as tool success */
        if (cJSON_IsObject(data)) tool_success = !cp_json_truthy(member(data, "isError"));
        if (gateway_text(data, &text, &text_len)) {
            rc = fail_oom(r);
            goto out;
        }
    } else {
        tool_success = false;
    }
    if (!request_id) request_id = header_request_id ? header_request_id : "";

    if (!transport_error && http_status == 200 && api_success && tool_success) {
        rc = cp_payload_parse(text, text_len, r);
    } else {
        /* transport error (an exception in the SDKs, spec §4) → body text → message →
         * tool text on a tool failure → default */
        const char *msg = MSG_TOOL_FAILED;
        if (transport_error && transport_error[0]) {
            rc = route_failure_2(r, MSG_MCP_FAILED, transport_error);
            goto request_id;
        }
        if (body_text && body_text[0])
            msg = body_text;
        else if (message && message[0])
            msg = message;
        else if (!tool_success && text && text[0])
            msg = text;
        rc = route_failure(r, msg);
    }
request_id:
    if (cp_result_set_request_id(r, request_id) && rc == 0) rc = fail_oom(r);
out:
    free(text);
    free(body_text);
    cJSON_Delete(root);
    return rc;
}

/* ---- builders (server side) ------------------------------------------------------- */

/* A byte string (NUL allowed) as a JSON string item. */
static cJSON *bytes_item(const char *s, size_t len)
{
    char *quoted = cp_json_quote(s, len);
    cJSON *raw = quoted ? cJSON_CreateRaw(quoted) : NULL;
    free(quoted);
    return raw;
}

static bool add_chunk_array(cJSON *o, const char *key, const cp_strlist *l)
{
    cJSON *arr = cJSON_AddArrayToObject(o, key);
    if (!arr) return false;
    for (size_t i = 0; i < l->count; i++) {
        cJSON *s = bytes_item(l->items[i].ptr, l->items[i].len);
        if (!s || !cJSON_AddItemToArray(arr, s)) {
            cJSON_Delete(s);
            return false;
        }
    }
    return true;
}

/* One result item back to its MIME bundle with isMainResult (spec §12.5). */
static cJSON *bundle(const cp_result_item *it)
{
    cJSON *o = cp_item_to_bundle(it);
    if (o && !cJSON_AddBoolToObject(o, "isMainResult", it->is_main_result)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static bool fill_payload(cJSON *o, const cp_result *r)
{
    cJSON *results = cJSON_AddArrayToObject(o, "result");
    if (!results) return false;
    for (size_t i = 0; i < r->nresults; i++) {
        cJSON *b = bundle(&r->results[i]);
        if (!b || !cJSON_AddItemToArray(results, b)) {
            cJSON_Delete(b);
            return false;
        }
    }
    if (!add_chunk_array(o, "stdout", &r->out) || !add_chunk_array(o, "stderr", &r->err))
        return false;
    if (!r->success) {
        const char *msg =
            r->error_message && r->error_message[0] ? r->error_message : EXEC_ERROR_NAME;
        if (!cJSON_AddStringToObject(o, "executionError", msg)) return false;
    }
    if (r->has_execution_count &&
        !cJSON_AddNumberToObject(o, "execution_count", (double)r->execution_count))
        return false;
    return cJSON_AddNumberToObject(o, "execution_time", r->execution_time) != NULL;
}

char *cp_payload_build(const cp_result *r)
{
    cJSON *o = cJSON_CreateObject();
    char *text = o && fill_payload(o, r) ? cp_json_print(o) : NULL;
    cJSON_Delete(o);
    return text;
}

/* {"isError":b,"content":[{"type":"text","text":text}]} — an MCP CallToolResult. */
static cJSON *call_tool_result(const char *text, bool is_error)
{
    cJSON *o = cJSON_CreateObject(), *content = NULL, *item = NULL;
    if (!o || !cJSON_AddBoolToObject(o, "isError", is_error) ||
        !(content = cJSON_AddArrayToObject(o, "content")) || !(item = cJSON_CreateObject()) ||
        !cJSON_AddItemToArray(content, item)) {
        cJSON_Delete(item);
        cJSON_Delete(o);
        return NULL;
    }
    if (!cJSON_AddStringToObject(item, "type", "text") ||
        !cJSON_AddStringToObject(item, "text", text ? text : "")) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static char *print_and_delete(cJSON *o)
{
    char *text = o ? cp_json_print(o) : NULL;
    cJSON_Delete(o);
    return text;
}

char *cp_envelope_linkurl(const char *text, bool is_error)
{
    cJSON *inner = cJSON_CreateObject(), *result = call_tool_result(text, is_error);
    if (!inner || !result || !cJSON_AddItemToObject(inner, "result", result)) {
        cJSON_Delete(result);
        cJSON_Delete(inner);
        return NULL;
    }
    char *inner_text = print_and_delete(inner);
    if (!inner_text) return NULL;
    cJSON *outer = cJSON_CreateObject();
    bool ok = outer && cJSON_AddStringToObject(outer, "data", inner_text);
    free(inner_text);
    if (!ok) {
        cJSON_Delete(outer);
        return NULL;
    }
    return print_and_delete(outer);
}

/* The gateway's top-level fields, in the order the SDKs' fixtures show them. */
static cJSON *gateway_head(const char *request_id, bool success, const char *code,
                           const char *message, int http_status)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddStringToObject(o, "requestId", request_id ? request_id : "") ||
        !cJSON_AddBoolToObject(o, "success", success) ||
        !cJSON_AddStringToObject(o, "code", code ? code : "") ||
        !cJSON_AddStringToObject(o, "message", message ? message : "") ||
        !cJSON_AddNumberToObject(o, "httpStatusCode", http_status)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

char *cp_envelope_gateway(const char *request_id, const char *text, bool is_error)
{
    cJSON *o = gateway_head(request_id, true, "ok", "", 200);
    cJSON *data = call_tool_result(text, is_error);
    if (!o || !data || !cJSON_AddItemToObject(o, "data", data)) {
        cJSON_Delete(data);
        cJSON_Delete(o);
        return NULL;
    }
    return print_and_delete(o);
}

char *cp_envelope_gateway_failure(const char *request_id, int http_status, const char *code,
                                  const char *message)
{
    cJSON *o = gateway_head(request_id, false, code, message, http_status);
    if (!o || !cJSON_AddNullToObject(o, "data")) {
        cJSON_Delete(o);
        return NULL;
    }
    return print_and_delete(o);
}
