/* codepane core: the EnhancedCodeExecutionResult model of the AGB SDKs (spec §8) and its
 * JSON form with the TypeScript SDK's camelCase names.
 *
 * Ownership: a cp_result owns every string and array it points to; cp_result_free()
 * releases them. Adders copy their arguments. cp_result_to_json() and cp_result_text()
 * return heap strings the caller frees. */
#ifndef CP_RESULT_H
#define CP_RESULT_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

/* A byte string that may hold NUL bytes (program output does). Always NUL-terminated
 * as well, so text without NUL can be used as a C string. */
typedef struct {
    char *ptr;
    size_t len;
} cp_str;

typedef struct {
    cp_str *items;
    size_t count, cap;
} cp_strlist;

/* One rich result: a MIME bundle reduced to the SDK's fields. NULL means absent.
 * `json` and `chart` hold JSON text (any JSON value), kept as JSON in the output. */
typedef struct {
    char *text, *html, *markdown, *png, *jpeg, *svg, *latex;
    char *json, *chart;
    bool is_main_result;
} cp_result_item;

typedef struct {
    char *name, *value, *traceback; /* never NULL once set through cp_result_set_error */
} cp_exec_error;

typedef struct {
    char *request_id;        /* "" until set */
    bool success;            /* true by default, as in the SDKs */
    bool has_execution_count;
    long long execution_count;
    double execution_time;   /* seconds */
    cp_strlist out;          /* logs.stdout, chunks in arrival order */
    cp_strlist err;          /* logs.stderr */
    cp_result_item *results;
    size_t nresults, capresults;
    cp_exec_error *error;    /* NULL when the run reported no error */
    char *error_message;     /* "" until set */
} cp_result;

/* Every function returning int returns 0 on success and -1 when memory ran out; the
 * result is then still valid (possibly missing the last addition) and must be freed. */

void cp_result_init(cp_result *r);
void cp_result_free(cp_result *r);

int cp_result_set_request_id(cp_result *r, const char *id);
int cp_result_set_error_message(cp_result *r, const char *msg);
int cp_result_set_error(cp_result *r, const char *name, const char *value, const char *traceback);
int cp_result_add_stdout(cp_result *r, const char *chunk, size_t len);
int cp_result_add_stderr(cp_result *r, const char *chunk, size_t len);

/* Append an empty item and return it for the caller to fill (fields via cp_item_set),
 * or NULL on OOM. The pointer is valid until the next cp_result_add_item. */
cp_result_item *cp_result_add_item(cp_result *r);

/* Replace *field (one of the item's char* members) by a copy of value (NULL clears). */
int cp_item_set(char **field, const char *value);
void cp_item_free(cp_result_item *item);

/* A heap copy of s[0..len) with a NUL after it (s may hold NUL bytes); NULL on OOM. */
char *cp_strndup(const char *s, size_t len);

/* MIME bundles (spec §5.5), the one mapping between MIME types and item fields:
 * text/plain → text, text/html → html, text/markdown → markdown, image/png → png,
 * image/jpeg → jpeg, image/svg+xml → svg, application/json → json, text/latex → latex,
 * application/vnd.vegalite.v4+json then v5+json → chart. Other MIME types are dropped.
 *
 * cp_item_from_bundle fills the item's fields from a bundle object: for each field its
 * MIME keys and, with short_keys, then its short name (the non-streaming payload's
 * fallback), chosen as the Python SDK's `a or b` does (spec §5.6): the first truthy
 * value, else the last one as it is; null and absent leave the field unset. Strings are
 * taken as they are, other values as their JSON text; json and chart keep JSON text.
 * isMainResult is the caller's. Returns 0, or -1 on OOM. */
int cp_item_from_bundle(cp_result_item *it, const cJSON *bundle, bool short_keys);

/* The item's fields under their MIME keys (chart under v4); json and chart go in as JSON
 * values (as a string when their text is not valid JSON). NULL on OOM. */
cJSON *cp_item_to_bundle(const cp_result_item *it);

/* Mark the run failed with `msg` as errorMessage (keeps logs, results and error). */
int cp_result_fail(cp_result *r, const char *msg);

/* JSON in the TypeScript SDK's shape: {requestId, success, executionCount (omitted when
 * unknown), executionTime, logs:{stdout,stderr}, results:[{text?, html?, markdown?, png?,
 * jpeg?, svg?, json?, latex?, chart?, isMainResult}], error? {name,value,traceback},
 * errorMessage}. NULL on OOM. */
char *cp_result_to_json(const cp_result *r);

/* One item as the TypeScript SDK's ExecutionResult: {text?, html?, markdown?, png?,
 * jpeg?, svg?, json?, latex?, chart?, isMainResult}, as in cp_result_to_json. NULL on
 * OOM. A streaming client hands each result to its caller as it arrives in this form. */
char *cp_item_to_json(const cp_result_item *it);

/* What the Python SDK's `result` property returns (spec §8.1): the text of the first main
 * result with non-empty text, else the first result's text if non-empty, else every
 * stdout chunk concatenated, else "". */
char *cp_result_text(const cp_result *r);

#endif
