/* codepane core: the EnhancedCodeExecutionResult model (see result.h). */
#include "result.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "json.h"

char *cp_strndup(const char *s, size_t len)
{
    char *p = malloc(len + 1);
    if (!p) return NULL;
    if (len) memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

static int replace(char **field, const char *value)
{
    char *copy = NULL;
    if (value && !(copy = cp_strndup(value, strlen(value)))) return -1;
    free(*field);
    *field = copy;
    return 0;
}

void cp_result_init(cp_result *r)
{
    memset(r, 0, sizeof *r);
    r->success = true;
}

static void strlist_free(cp_strlist *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->items[i].ptr);
    free(l->items);
    memset(l, 0, sizeof *l);
}

static int strlist_add(cp_strlist *l, const char *s, size_t len)
{
    if (l->count == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 8;
        cp_str *items = realloc(l->items, cap * sizeof *items);
        if (!items) return -1;
        l->items = items;
        l->cap = cap;
    }
    char *copy = cp_strndup(s, len);
    if (!copy) return -1;
    l->items[l->count].ptr = copy;
    l->items[l->count].len = len;
    l->count++;
    return 0;
}

void cp_item_free(cp_result_item *it)
{
    free(it->text);
    free(it->html);
    free(it->markdown);
    free(it->png);
    free(it->jpeg);
    free(it->svg);
    free(it->latex);
    free(it->json);
    free(it->chart);
    memset(it, 0, sizeof *it);
}

void cp_result_free(cp_result *r)
{
    free(r->request_id);
    strlist_free(&r->out);
    strlist_free(&r->err);
    for (size_t i = 0; i < r->nresults; i++)
        cp_item_free(&r->results[i]);
    free(r->results);
    if (r->error) {
        free(r->error->name);
        free(r->error->value);
        free(r->error->traceback);
        free(r->error);
    }
    free(r->error_message);
    cp_result_init(r);
}

int cp_result_set_request_id(cp_result *r, const char *id)
{
    return replace(&r->request_id, id);
}

int cp_result_set_error_message(cp_result *r, const char *msg)
{
    return replace(&r->error_message, msg);
}

int cp_result_set_error(cp_result *r, const char *name, const char *value, const char *traceback)
{
    if (!r->error && !(r->error = calloc(1, sizeof *r->error))) return -1;
    if (replace(&r->error->name, name ? name : "") ||
        replace(&r->error->value, value ? value : "") ||
        replace(&r->error->traceback, traceback ? traceback : ""))
        return -1;
    return 0;
}

int cp_result_add_stdout(cp_result *r, const char *chunk, size_t len)
{
    return strlist_add(&r->out, chunk, len);
}

int cp_result_add_stderr(cp_result *r, const char *chunk, size_t len)
{
    return strlist_add(&r->err, chunk, len);
}

cp_result_item *cp_result_add_item(cp_result *r)
{
    if (r->nresults == r->capresults) {
        size_t cap = r->capresults ? 2 * r->capresults : 4;
        cp_result_item *items = realloc(r->results, cap * sizeof *items);
        if (!items) return NULL;
        r->results = items;
        r->capresults = cap;
    }
    cp_result_item *it = &r->results[r->nresults++];
    memset(it, 0, sizeof *it);
    return it;
}

int cp_item_set(char **field, const char *value)
{
    return replace(field, value);
}

/* ---- MIME bundles ----------------------------------------------------------------- */

static const struct {
    const char *mime, *mime2, *short_key;
    size_t offset;
    bool json;
} mime_fields[] = {
    {"text/plain", NULL, "text", offsetof(cp_result_item, text), false},
    {"text/html", NULL, "html", offsetof(cp_result_item, html), false},
    {"text/markdown", NULL, "markdown", offsetof(cp_result_item, markdown), false},
    {"image/png", NULL, "png", offsetof(cp_result_item, png), false},
    {"image/jpeg", NULL, "jpeg", offsetof(cp_result_item, jpeg), false},
    {"image/svg+xml", NULL, "svg", offsetof(cp_result_item, svg), false},
    {"application/json", NULL, "json", offsetof(cp_result_item, json), true},
    {"text/latex", NULL, "latex", offsetof(cp_result_item, latex), false},
    {"application/vnd.vegalite.v4+json", "application/vnd.vegalite.v5+json", "chart",
     offsetof(cp_result_item, chart), true},
};
#define NMIME_FIELDS (sizeof mime_fields / sizeof mime_fields[0])

static char **field_at(cp_result_item *it, size_t i)
{
    return (char **)((char *)it + mime_fields[i].offset);
}

/* Python's `a or b or c`: the first truthy value, else the last candidate as it is
 * (absent and null leave the field unset). */
static const cJSON *python_or(const cJSON *bundle, const char *const keys[3])
{
    const cJSON *v = NULL;
    for (int k = 0; k < 3; k++) {
        if (!keys[k]) continue;
        v = cJSON_GetObjectItemCaseSensitive(bundle, keys[k]);
        if (cp_json_truthy(v)) return v;
    }
    return cJSON_IsNull(v) ? NULL : v;
}

int cp_item_from_bundle(cp_result_item *it, const cJSON *bundle, bool short_keys)
{
    if (!cJSON_IsObject(bundle)) return 0;
    for (size_t i = 0; i < NMIME_FIELDS; i++) {
        const char *keys[3] = {mime_fields[i].mime, mime_fields[i].mime2,
                               short_keys ? mime_fields[i].short_key : NULL};
        const cJSON *v = python_or(bundle, keys);
        if (!v) continue;
        char *text = NULL;
        size_t len;
        if (mime_fields[i].json || cp_json_bytes(v, &text, &len) == 0) text = cp_json_print(v);
        if (!text) return -1;
        char **field = field_at(it, i);
        free(*field);
        *field = text;
    }
    return 0;
}

cJSON *cp_item_to_bundle(const cp_result_item *it)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    for (size_t i = 0; i < NMIME_FIELDS; i++) {
        const char *v = *field_at((cp_result_item *)it, i);
        if (!v) continue;
        /* json and chart go in as the JSON text they hold (verbatim, so NUL escapes
         * survive), or as a string when that text is not JSON. */
        bool raw = false;
        if (mime_fields[i].json) {
            cJSON *check = cp_json_parse(v, strlen(v), NULL, 0);
            raw = check != NULL;
            cJSON_Delete(check);
        }
        if (!(raw ? cJSON_AddRawToObject(o, mime_fields[i].mime, v)
                  : cJSON_AddStringToObject(o, mime_fields[i].mime, v))) {
            cJSON_Delete(o);
            return NULL;
        }
    }
    return o;
}

int cp_result_fail(cp_result *r, const char *msg)
{
    r->success = false;
    return cp_result_set_error_message(r, msg ? msg : "");
}

/* ---- JSON form ------------------------------------------------------------------ */

/* Add a byte string that may hold NUL as a JSON string member. */
static bool add_bytes(cJSON *parent, const char *key, const char *s, size_t len)
{
    char *quoted = cp_json_quote(s, len);
    if (!quoted) return false;
    cJSON *raw = cJSON_CreateRaw(quoted);
    free(quoted);
    if (!raw) return false;
    if (key) return cJSON_AddItemToObject(parent, key, raw);
    return cJSON_AddItemToArray(parent, raw);
}

static bool add_strlist(cJSON *parent, const char *key, const cp_strlist *l)
{
    cJSON *arr = cJSON_AddArrayToObject(parent, key);
    if (!arr) return false;
    for (size_t i = 0; i < l->count; i++)
        if (!add_bytes(arr, NULL, l->items[i].ptr, l->items[i].len)) return false;
    return true;
}

static bool add_opt_string(cJSON *obj, const char *key, const char *value)
{
    return !value || cJSON_AddStringToObject(obj, key, value);
}

/* json and chart hold JSON text already; it goes in as it is. */
static bool add_opt_raw(cJSON *obj, const char *key, const char *json_text)
{
    return !json_text || cJSON_AddRawToObject(obj, key, json_text);
}

static cJSON *item_to_json(const cp_result_item *it)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    if (add_opt_string(o, "text", it->text) && add_opt_string(o, "html", it->html) &&
        add_opt_string(o, "markdown", it->markdown) && add_opt_string(o, "png", it->png) &&
        add_opt_string(o, "jpeg", it->jpeg) && add_opt_string(o, "svg", it->svg) &&
        add_opt_raw(o, "json", it->json) && add_opt_string(o, "latex", it->latex) &&
        add_opt_raw(o, "chart", it->chart) &&
        cJSON_AddBoolToObject(o, "isMainResult", it->is_main_result))
        return o;
    cJSON_Delete(o);
    return NULL;
}

static bool fill_json(cJSON *o, const cp_result *r)
{
    if (!cJSON_AddStringToObject(o, "requestId", r->request_id ? r->request_id : "")) return false;
    if (!cJSON_AddBoolToObject(o, "success", r->success)) return false;
    if (r->has_execution_count &&
        !cJSON_AddNumberToObject(o, "executionCount", (double)r->execution_count))
        return false;
    if (!cJSON_AddNumberToObject(o, "executionTime", r->execution_time)) return false;
    cJSON *logs = cJSON_AddObjectToObject(o, "logs");
    if (!logs || !add_strlist(logs, "stdout", &r->out) || !add_strlist(logs, "stderr", &r->err))
        return false;
    cJSON *results = cJSON_AddArrayToObject(o, "results");
    if (!results) return false;
    for (size_t i = 0; i < r->nresults; i++) {
        cJSON *it = item_to_json(&r->results[i]);
        if (!it || !cJSON_AddItemToArray(results, it)) {
            cJSON_Delete(it);
            return false;
        }
    }
    if (r->error) {
        cJSON *e = cJSON_AddObjectToObject(o, "error");
        if (!e || !cJSON_AddStringToObject(e, "name", r->error->name) ||
            !cJSON_AddStringToObject(e, "value", r->error->value) ||
            !cJSON_AddStringToObject(e, "traceback", r->error->traceback))
            return false;
    }
    return cJSON_AddStringToObject(o, "errorMessage", r->error_message ? r->error_message : "");
}

char *cp_result_to_json(const cp_result *r)
{
    cJSON *o = cJSON_CreateObject();
    char *text = NULL;
    if (o && fill_json(o, r)) text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

char *cp_item_to_json(const cp_result_item *it)
{
    cJSON *o = item_to_json(it);
    char *text = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return text;
}

char *cp_result_text(const cp_result *r)
{
    for (size_t i = 0; i < r->nresults; i++)
        if (r->results[i].is_main_result && r->results[i].text && r->results[i].text[0])
            return cp_strndup(r->results[i].text, strlen(r->results[i].text));
    if (r->nresults && r->results[0].text && r->results[0].text[0])
        return cp_strndup(r->results[0].text, strlen(r->results[0].text));
    size_t total = 0;
    for (size_t i = 0; i < r->out.count; i++)
        total += r->out.items[i].len;
    char *s = malloc(total + 1), *p = s;
    if (!s) return NULL;
    for (size_t i = 0; i < r->out.count; i++) {
        memcpy(p, r->out.items[i].ptr, r->out.items[i].len);
        p += r->out.items[i].len;
    }
    *p = '\0';
    return s;
}
