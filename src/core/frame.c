/* codepane core: WebSocket frames of the streaming run_code protocol (see frame.h).
 *
 * Encoders build a cJSON tree and print it compactly. Strings that may hold NUL bytes
 * (code, output chunks) go in as raw, already quoted JSON (cp_json_quote), because a
 * cJSON string would stop at the first NUL; the decoder of server frames reads such
 * strings back the same way (cp_json_parse_keep_nul, see frame.h). It follows the
 * SDKs' validation order and messages (spec §6.3, §6.13) so the texts a user sees are the
 * ones the SDKs would show. */
#include "frame.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "lang.h"
#include "core_limits.h"

/* Reasons from cp_json_parse are short ("invalid JSON: trailing characters"). */
#define PARSE_ERR_MAX 96
/* The server refuses NUL in client frames rather than run a cut copy of the code. */
#define NUL_REFUSED "NUL characters (\\u0000) are not accepted in a frame"
/* How much of an unknown method name is echoed back in the refusal. */
#define METHOD_ECHO_MAX 64

static void set_err(char *err, size_t errcap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errcap, const char *fmt, ...)
{
    if (!err || !errcap) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errcap, fmt, ap);
    va_end(ap);
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s);
    char *p = malloc(n + 1);
    if (p) memcpy(p, s, n + 1);
    return p;
}

/* ---- decoding server frames (client side) ------------------------------------------ */

/* A string member read as cJSON alone would read it: one holding NUL (a raw item, see
 * cp_json_parse_keep_nul) is replaced in parent by a string item cut at its first NUL.
 * Returns the string; NULL when v is not a string or memory ran out. */
static const char *cut_string(cJSON *parent, cJSON *v)
{
    if (!cJSON_IsRaw(v)) return cJSON_IsString(v) ? v->valuestring : NULL;
    char *bytes = NULL;
    size_t len = 0;
    if (cp_json_bytes(v, &bytes, &len) != 1) return NULL;
    cJSON *cut = cJSON_CreateString(bytes); /* stops at the first NUL */
    free(bytes);
    if (!cut) return NULL;
    cut->string = v->string; /* the key moves over; v is deleted by the replace */
    v->string = NULL;
    cJSON_ReplaceItemViaPointer(parent, v, cut);
    return cut->valuestring;
}

/* The SDKs read `invocationId or requestId` (the first truthy one). */
static cJSON *pick_id(const cJSON *root)
{
    cJSON *inv = cJSON_GetObjectItemCaseSensitive(root, "invocationId");
    return cp_json_truthy(inv) ? inv : cJSON_GetObjectItemCaseSensitive(root, "requestId");
}

/* data as an object, or as a JSON string of an object (spec §6.3), its text parsed with
 * cp_json_parse_keep_nul. On success *owned says whether the returned tree is separate
 * from the frame's, and *nul_escaped whether the text of data in string form escaped
 * NUL. */
static cJSON *read_data(cJSON *root, bool *owned, bool *nul_escaped, char *err, size_t errcap)
{
    cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    *owned = false;
    *nul_escaped = false;
    if (cJSON_IsObject(data)) return data;
    char *text = NULL;
    size_t len = 0;
    int rc = cp_json_bytes(data, &text, &len);
    if (rc <= 0) {
        set_err(err, errcap, rc ? "out of memory" : "data is required and must be an object");
        return NULL;
    }
    *nul_escaped = cp_json_has_nul_escape(text, len);
    char perr[PARSE_ERR_MAX];
    cJSON *parsed = cp_json_parse_keep_nul(text, len, perr, sizeof perr);
    free(text);
    if (!parsed) {
        set_err(err, errcap, "data is a string but not valid JSON: %s", perr);
        return NULL;
    }
    if (!cJSON_IsObject(parsed)) {
        cJSON_Delete(parsed);
        set_err(err, errcap, "data is a string but decoded JSON is not an object");
        return NULL;
    }
    *owned = true;
    return parsed;
}

int cp_frame_decode(const char *text, size_t len, cp_frame *f, char *err, size_t errcap)
{
    memset(f, 0, sizeof *f);
    set_err(err, errcap, "%s", "");
    char perr[PARSE_ERR_MAX];
    f->root = cp_json_parse_keep_nul(text, len, perr, sizeof perr);
    if (!f->root) {
        set_err(err, errcap, "Invalid JSON message: %s", perr);
        return -1;
    }
    if (!cJSON_IsObject(f->root)) {
        set_err(err, errcap, "Message must be a JSON object");
        return -1;
    }
    const char *id = cut_string(f->root, pick_id(f->root));
    if (!id || !id[0]) {
        set_err(err, errcap, "invocationId is required and must be a non-empty string");
        return -1;
    }
    if (strlen(id) > CP_ID_MAX) {
        set_err(err, errcap, "invocationId is longer than %d bytes", CP_ID_MAX);
        return -1;
    }
    f->invocation_id = id;
    f->source = cut_string(f->root, cJSON_GetObjectItemCaseSensitive(f->root, "source"));
    f->target = cut_string(f->root, cJSON_GetObjectItemCaseSensitive(f->root, "target"));
    bool nul_escaped = false;
    f->data = read_data(f->root, &f->data_owned, &nul_escaped, err, errcap);
    return f->data ? 0 : -1;
}

void cp_frame_free(cp_frame *f)
{
    if (f->data_owned) cJSON_Delete(f->data);
    cJSON_Delete(f->root);
    memset(f, 0, sizeof *f);
}

/* ---- encoding ---------------------------------------------------------------------- */

/* Add len bytes (NUL allowed) as a JSON string member. */
static bool add_bytes(cJSON *obj, const char *key, const char *s, size_t len)
{
    char *quoted = cp_json_quote(s ? s : "", s ? len : 0);
    if (!quoted) return false;
    cJSON *raw = cJSON_CreateRaw(quoted);
    free(quoted);
    if (!raw) return false;
    if (!cJSON_AddItemToObject(obj, key, raw)) {
        cJSON_Delete(raw);
        return false;
    }
    return true;
}

static bool add_str(cJSON *obj, const char *key, const char *value)
{
    return cJSON_AddStringToObject(obj, key, value ? value : "") != NULL;
}

/* {"invocationId","source","target","data":{}}; *data is the empty data object. */
static cJSON *envelope(const char *id, const char *source, const char *target, cJSON **data)
{
    cJSON *root = cJSON_CreateObject();
    if (root && add_str(root, "invocationId", id) && add_str(root, "source", source) &&
        add_str(root, "target", target) && (*data = cJSON_AddObjectToObject(root, "data")))
        return root;
    cJSON_Delete(root);
    return NULL;
}

static char *print_and_delete(cJSON *root, bool ok)
{
    char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return text;
}

char *cp_frame_run(const char *invocation_id, const char *target, cp_lang lang, long timeout_s,
                   const char *code, size_t code_len)
{
    const char *language = cp_lang_name(lang);
    if (!language) return NULL;
    cJSON *data = NULL, *params = NULL;
    cJSON *root = envelope(invocation_id, "SDK", target ? target : CP_DEFAULT_TARGET, &data);
    if (!root) return NULL;
    bool ok = add_str(data, "method", "run_code") && add_str(data, "mode", "stream") &&
              (params = cJSON_AddObjectToObject(data, "params")) &&
              add_str(params, "language", language) &&
              cJSON_AddNumberToObject(params, "timeoutS", (double)timeout_s) &&
              add_bytes(params, "code", code, code_len);
    return print_and_delete(root, ok);
}

char *cp_frame_cancel(const char *invocation_id, const char *target)
{
    cJSON *data = NULL;
    cJSON *root = envelope(invocation_id, "SDK", target ? target : CP_DEFAULT_TARGET, &data);
    if (!root) return NULL;
    return print_and_delete(root, add_str(data, "method", "cancel"));
}

/* A server frame with data {"method","mode","phase",["seq"]}; the caller adds the rest. */
static cJSON *server_frame(const char *id, const char *source, const char *phase, long seq,
                           cJSON **data)
{
    cJSON *root = envelope(id, source ? source : CP_DEFAULT_TARGET, "SDK", data);
    if (!root) return NULL;
    if (add_str(*data, "method", "run_code") && add_str(*data, "mode", "stream") &&
        add_str(*data, "phase", phase) && cJSON_AddNumberToObject(*data, "seq", (double)seq))
        return root;
    cJSON_Delete(root);
    return NULL;
}

char *cp_frame_chunk(const char *invocation_id, const char *source, long seq, bool is_stderr,
                     const char *chunk, size_t len)
{
    cJSON *data = NULL;
    cJSON *root = server_frame(invocation_id, source, "event", seq, &data);
    if (!root) return NULL;
    bool ok = add_str(data, "eventType", is_stderr ? "stderr" : "stdout") &&
              add_bytes(data, "chunk", chunk, len);
    return print_and_delete(root, ok);
}

static bool add_opt_str(cJSON *obj, const char *key, const char *value)
{
    return !value || add_str(obj, key, value);
}

char *cp_frame_result(const char *invocation_id, const char *source, long seq,
                      const cp_result_item *item)
{
    cJSON *data = NULL, *result = NULL, *mime = NULL;
    cJSON *root = server_frame(invocation_id, source, "event", seq, &data);
    if (!root) return NULL;
    bool ok = add_str(data, "eventType", "result") &&
              (result = cJSON_AddObjectToObject(data, "result")) &&
              (mime = cp_item_to_bundle(item));
    if (ok && !cJSON_AddItemToObject(result, "mime", mime)) {
        cJSON_Delete(mime);
        ok = false;
    }
    ok = ok && cJSON_AddBoolToObject(result, "isMainResult", item->is_main_result);
    return print_and_delete(root, ok);
}

char *cp_frame_error_event(const char *invocation_id, const char *source, long seq,
                           const char *name, const char *value, const char *traceback)
{
    cJSON *data = NULL, *error = NULL;
    cJSON *root = server_frame(invocation_id, source, "event", seq, &data);
    if (!root) return NULL;
    bool ok = add_str(data, "eventType", "error") &&
              (error = cJSON_AddObjectToObject(data, "error")) &&
              add_str(error, "code", name ? name : "ExecutionError") &&
              add_str(error, "message", value) &&
              (!traceback || !traceback[0] || add_str(error, "traceback", traceback));
    return print_and_delete(root, ok);
}

char *cp_frame_end(const char *invocation_id, const char *source, long seq, const char *status,
                   bool has_count, long long count, double time_s, const char *execution_error,
                   const char *reason)
{
    cJSON *data = NULL;
    cJSON *root = server_frame(invocation_id, source, "end", seq, &data);
    if (!root) return NULL;
    bool ok = add_str(data, "status", status ? status : "finished") &&
              (!has_count || cJSON_AddNumberToObject(data, "executionCount", (double)count)) &&
              cJSON_AddNumberToObject(data, "executionTime", isfinite(time_s) ? time_s : 0) &&
              add_opt_str(data, "executionError", execution_error) &&
              add_opt_str(data, "reason", reason);
    return print_and_delete(root, ok);
}

char *cp_frame_error(const char *invocation_id, const char *source, const char *message)
{
    cJSON *data = NULL;
    cJSON *root = envelope(invocation_id, source ? source : CP_DEFAULT_TARGET, "SDK", &data);
    if (!root) return NULL;
    return print_and_delete(root,
                            add_str(data, "phase", "error") && add_str(data, "error", message));
}

/* ---- reading client frames (server side) ------------------------------------------- */

static bool present(const cJSON *v)
{
    return v && !cJSON_IsNull(v);
}

/* Everything after the id: the id is already in req->request_id. */
static cp_client_frame_kind read_client_body(cJSON *root, const char *text, size_t len,
                                             double dflt_timeout, double max_timeout,
                                             cp_run_request *req, char *err, size_t errcap)
{
    const cJSON *target = cJSON_GetObjectItemCaseSensitive(root, "target");
    bool target_ok = cJSON_IsString(target) && target->valuestring[0];
    if (!(req->server = dup_str(target_ok ? target->valuestring : CP_DEFAULT_TARGET))) goto oom;
    if (present(target) && !target_ok) {
        set_err(err, errcap, "target must be a non-empty string");
        return CP_CLIENT_INVALID;
    }
    /* cJSON would cut a string at an escaped NUL: refuse rather than run a cut copy. */
    if (cp_json_has_nul_escape(text, len)) {
        set_err(err, errcap, "%s", NUL_REFUSED);
        return CP_CLIENT_INVALID;
    }

    bool owned = false, nul_escaped = false;
    cJSON *data = read_data(root, &owned, &nul_escaped, err, errcap);
    if (!data) return CP_CLIENT_INVALID;
    cp_client_frame_kind kind = CP_CLIENT_INVALID;
    if (nul_escaped) { /* data was a JSON string whose text escaped NUL */
        set_err(err, errcap, "%s", NUL_REFUSED);
        goto done;
    }
    const char *method = cp_json_get_string(data, "method");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(data, "params");
    const char *mode = cp_json_get_string(data, "mode");
    if (!method) {
        set_err(err, errcap, "data.method is required and must be a string");
        goto done;
    }
    if (strcmp(method, "cancel") == 0) {
        kind = CP_CLIENT_CANCEL;
        goto done;
    }
    if (strcmp(method, "run_code") != 0) {
        set_err(err, errcap,
                "unsupported data.method \"%.*s\"; expected \"run_code\" or \"cancel\"",
                METHOD_ECHO_MAX, method);
        goto done;
    }
    if (!mode || strcmp(mode, "stream") != 0) {
        set_err(err, errcap, "data.mode must be \"stream\"");
        goto done;
    }
    if (!cJSON_IsObject(params)) {
        set_err(err, errcap, "data.params is required and must be an object");
        goto done;
    }

    /* The language as given: a string as it is, absent or null as "", anything else as
     * its JSON text (the SDKs stringify it too). */
    const cJSON *lv = cJSON_GetObjectItemCaseSensitive(params, "language");
    char *raw = cJSON_IsString(lv) ? dup_str(lv->valuestring)
                : present(lv)      ? cJSON_PrintUnformatted(lv)
                                   : dup_str("");
    if (!raw) goto oom_data;
    req->language_raw = raw;
    req->lang = cp_lang_parse(raw, strlen(raw));
    if (req->lang == CP_LANG_NONE) {
        cp_lang_unsupported_message(raw, strlen(raw), err, errcap);
        goto done;
    }

    char terr[128] = "";
    if (cp_timeout_from_json(cJSON_GetObjectItemCaseSensitive(params, "timeoutS"), dflt_timeout,
                             max_timeout, &req->timeout_s, terr, sizeof terr) != 0) {
        set_err(err, errcap, "params.timeoutS: %s", terr);
        goto done;
    }

    const char *code = cp_json_get_string(params, "code");
    if (!code) {
        set_err(err, errcap, "params.code is required and must be a string");
        goto done;
    }
    if (!(req->code = dup_str(code))) goto oom_data;
    req->code_len = strlen(code);
    kind = CP_CLIENT_RUN;

done:
    if (owned) cJSON_Delete(data);
    return kind;
oom_data:
    if (owned) cJSON_Delete(data);
oom:
    set_err(err, errcap, "out of memory");
    return CP_CLIENT_INVALID;
}

cp_client_frame_kind cp_frame_read_client(const char *text, size_t len, double dflt_timeout,
                                          double max_timeout, cp_run_request *req, char *err,
                                          size_t errcap)
{
    cp_run_request_init(req);
    set_err(err, errcap, "%s", "");
    char perr[PARSE_ERR_MAX];
    cJSON *root = cp_json_parse(text, len, perr, sizeof perr);
    if (!root) {
        set_err(err, errcap, "Invalid JSON message: %s", perr);
        return CP_CLIENT_GARBAGE;
    }
    cp_client_frame_kind kind = CP_CLIENT_GARBAGE;
    if (!cJSON_IsObject(root)) {
        set_err(err, errcap, "Message must be a JSON object");
        goto out;
    }
    /* No id at all (the TS heartbeat {"type":"ping"}): nothing to answer. An id that is
     * there but unusable is garbage: there is still nothing to answer to. */
    const cJSON *inv = cJSON_GetObjectItemCaseSensitive(root, "invocationId");
    const cJSON *id = pick_id(root);
    if (!present(id)) id = present(inv) ? inv : NULL;
    if (!id) {
        kind = CP_CLIENT_IGNORE;
        goto out;
    }
    if (!cJSON_IsString(id) || !id->valuestring[0]) {
        set_err(err, errcap, "invocationId is required and must be a non-empty string");
        goto out;
    }
    if (strlen(id->valuestring) > CP_ID_MAX) {
        set_err(err, errcap, "invocationId is longer than %d bytes", CP_ID_MAX);
        goto out;
    }
    if (!(req->request_id = dup_str(id->valuestring))) {
        set_err(err, errcap, "out of memory");
        goto out;
    }
    kind = read_client_body(root, text, len, dflt_timeout, max_timeout, req, err, errcap);
out:
    cJSON_Delete(root);
    return kind;
}
