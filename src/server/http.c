/* codepane-server: the HTTP front (see http.h).
 *
 * Every API request goes through the same gate, in this order: Host allow-list (421),
 * Origin allow-list (403), per-IP connection cap (429), authentication (401/403, 429
 * past the failure rate limit), then the declared body size (413) — the body is read
 * only after all of that, and never past the cap.
 *
 * A run blocks its civetweb thread on a condition variable until the runner's sink
 * reports the end; admission (the runner's slots and queue, then "busy") bounds how
 * many threads can wait that way. A run still going after CP_SRV_HTTP_HEARTBEAT_MS
 * switches the reply to chunked encoding and sends one JSON white-space byte per
 * interval: JSON parsers skip it, and a failed write is how a vanished client is
 * noticed, so its run is cancelled instead of finishing for nobody. */
#define _GNU_SOURCE
#include "http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "frame.h"
#include "json.h"
#include "lang.h"
#include "payload.h"
#include "request.h"
#include "result.h"
#include "ws.h"

/* Body cap of the control API (createSession carries labels and policies at most). */
#define CONTROL_BODY_MAX (64 * 1024)
#define SERVER_NAME      CP_DEFAULT_TARGET
#define MSG_EMPTY_CODE   "Code must not be empty"

/* ---- per-IP table ---------------------------------------------------------------------- */

struct cp_ip_entry {
    char ip[48];
    bool used;
    unsigned conns; /* API requests and WebSockets in progress */
    unsigned fails;
    double window_start;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool entry_idle(const cp_ip_entry *e, double now)
{
    return e->conns == 0 && (e->fails == 0 || now - e->window_start > CP_SRV_AUTH_FAIL_WINDOW_S);
}

/* Find ip's entry, or claim one (an idle entry of another IP can be reused). Lock held.
 * NULL when the table is full of busy entries. */
static cp_ip_entry *ip_find(cp_server *srv, const char *ip, bool create)
{
    uint32_t h = 2166136261u;
    for (const char *p = ip; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    double now = now_s();
    cp_ip_entry *reuse = NULL;
    for (unsigned i = 0; i < CP_SRV_IP_TABLE_SIZE; i++) {
        cp_ip_entry *e = &srv->ips[(h + i) % CP_SRV_IP_TABLE_SIZE];
        if (!e->used) {
            if (!create) return NULL;
            if (!reuse) reuse = e;
            break;
        }
        if (strcmp(e->ip, ip) == 0) return e;
        if (!reuse && entry_idle(e, now)) reuse = e;
    }
    if (!reuse || !create) return NULL;
    memset(reuse, 0, sizeof *reuse);
    reuse->used = true;
    snprintf(reuse->ip, sizeof reuse->ip, "%s", ip);
    return reuse;
}

int cp_http_ip_acquire(cp_server *srv, const char *ip)
{
    pthread_mutex_lock(&srv->ip_lock);
    cp_ip_entry *e = ip_find(srv, ip, true);
    int rc = -1;
    if (e && e->conns < srv->cfg->max_conns_per_ip) {
        e->conns++;
        rc = 0;
    }
    pthread_mutex_unlock(&srv->ip_lock);
    return rc;
}

void cp_http_ip_release(cp_server *srv, const char *ip)
{
    pthread_mutex_lock(&srv->ip_lock);
    cp_ip_entry *e = ip_find(srv, ip, false);
    if (e && e->conns) e->conns--;
    pthread_mutex_unlock(&srv->ip_lock);
}

int cp_http_auth_failed(cp_server *srv, const char *ip)
{
    pthread_mutex_lock(&srv->ip_lock);
    cp_ip_entry *e = ip_find(srv, ip, true);
    int status = 429; /* a full table of busy IPs is itself a reason to slow down */
    if (e) {
        double now = now_s();
        if (e->fails == 0 || now - e->window_start > CP_SRV_AUTH_FAIL_WINDOW_S) {
            e->fails = 0;
            e->window_start = now;
        }
        e->fails++;
        status = e->fails > CP_SRV_AUTH_FAIL_MAX ? 429 : 401;
    }
    pthread_mutex_unlock(&srv->ip_lock);
    return status;
}

/* ---- the socket of a connection ---------------------------------------------------------- */

/* Look for the socket of a connection among the process's descriptors: the one whose
 * peer is the client's address and port and whose own port is the server's. civetweb
 * 1.15 has no public accessor for it; the match is unique while the connection is open
 * (no two open TCP connections share both ends), and the connection's socket stays open
 * while its worker is in a callback, so another thread closing or reusing descriptors
 * meanwhile cannot make it match a wrong one. */
int cp_http_socket_fd(const struct mg_connection *conn)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    struct sockaddr_storage want;
    memset(&want, 0, sizeof want);
    int family;
    if (inet_pton(AF_INET, ri->remote_addr, &((struct sockaddr_in *)&want)->sin_addr) == 1)
        family = AF_INET;
    else if (inet_pton(AF_INET6, ri->remote_addr, &((struct sockaddr_in6 *)&want)->sin6_addr) == 1)
        family = AF_INET6;
    else
        return -1;
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int found = -1;
    struct dirent *de;
    while (found < 0 && (de = readdir(d))) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9') continue;
        int fd = atoi(de->d_name);
        if (fd == dirfd(d)) continue;
        struct sockaddr_storage peer, self;
        socklen_t plen = sizeof peer, slen = sizeof self;
        if (getpeername(fd, (struct sockaddr *)&peer, &plen) != 0 || peer.ss_family != family)
            continue;
        if (getsockname(fd, (struct sockaddr *)&self, &slen) != 0 || self.ss_family != family)
            continue;
        bool match;
        if (family == AF_INET) {
            const struct sockaddr_in *p = (const void *)&peer, *m = (const void *)&self;
            match = ntohs(p->sin_port) == ri->remote_port &&
                    ntohs(m->sin_port) == ri->server_port &&
                    p->sin_addr.s_addr == ((struct sockaddr_in *)&want)->sin_addr.s_addr;
        } else {
            const struct sockaddr_in6 *p = (const void *)&peer, *m = (const void *)&self;
            match = ntohs(p->sin6_port) == ri->remote_port &&
                    ntohs(m->sin6_port) == ri->server_port &&
                    memcmp(&p->sin6_addr, &((struct sockaddr_in6 *)&want)->sin6_addr,
                           sizeof p->sin6_addr) == 0;
        }
        if (match) found = fd;
    }
    closedir(d);
    return found;
}

static bool is_loopback(const char *ip)
{
    return strncmp(ip, "127.", 4) == 0 || strcmp(ip, "::1") == 0 ||
           strncmp(ip, "::ffff:127.", 11) == 0;
}

/* ---- Host and Origin ------------------------------------------------------------------- */

static bool in_list(char *const *list, size_t n, const char *v)
{
    if (!v) return false;
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(list[i], v) == 0) return true;
    return false;
}

bool cp_http_host_ok(const cp_server *srv, const struct mg_connection *conn)
{
    return in_list(srv->hosts, srv->nhosts, mg_get_header(conn, "Host"));
}

int cp_http_origin(const cp_server *srv, const struct mg_connection *conn, const char **origin)
{
    const char *o = mg_get_header(conn, "Origin");
    if (origin) *origin = o;
    if (!o) return 0;
    return in_list(srv->origins, srv->norigins, o) ? 1 : -1;
}

/* ---- replies ----------------------------------------------------------------------------- */

typedef struct {
    struct mg_connection *conn;
    const char *cors_origin; /* an allowed Origin to echo, or NULL */
    bool chunked;            /* a chunked 200 has been started (heartbeat) */
    bool gone;               /* a write failed: the client left */
    bool api;                /* not GET/HEAD: it may carry a body */
    bool head;               /* HEAD: headers only */
    bool body_read;          /* its body has been read in full */
    char request_id[40];
} reply;

static void add_cors(reply *rp)
{
    if (!rp->cors_origin) return;
    mg_response_header_add(rp->conn, "Access-Control-Allow-Origin", rp->cors_origin, -1);
    mg_response_header_add(rp->conn, "Vary", "Origin", -1);
}

void cp_http_keepalive_hint(struct mg_connection *conn)
{
    char v[32];
    snprintf(v, sizeof v, "timeout=%d", CP_SRV_KEEPALIVE_MS / 1000);
    mg_response_header_add(conn, "Keep-Alive", v, -1);
}

static int send_body(reply *rp, int status, const char *type, const char *body, size_t len)
{
    if (rp->gone) return status;
    if (rp->chunked) {
        /* Headers (200) went out with the heartbeat; the body is the last chunk. */
        if (len && mg_send_chunk(rp->conn, body, (unsigned)len) < 0) rp->gone = true;
        mg_send_chunk(rp->conn, "", 0);
        return 200;
    }
    /* A body left unread would be parsed as the next request: close instead. */
    if (rp->api && !rp->body_read && mg_get_request_info(rp->conn)->content_length != 0)
        mg_disable_connection_keep_alive(rp->conn);
    char clen[24];
    snprintf(clen, sizeof clen, "%zu", len);
    mg_response_header_start(rp->conn, status);
    mg_response_header_add(rp->conn, "Content-Type", type, -1);
    mg_response_header_add(rp->conn, "Content-Length", clen, -1);
    mg_response_header_add(rp->conn, "Cache-Control", "no-store", -1);
    mg_response_header_add(rp->conn, "X-Content-Type-Options", "nosniff", -1);
    if (rp->request_id[0]) mg_response_header_add(rp->conn, "x-request-id", rp->request_id, -1);
    add_cors(rp);
    cp_http_keepalive_hint(rp->conn);
    mg_response_header_send(rp->conn);
    if (len && !rp->head && mg_write(rp->conn, body, len) <= 0) rp->gone = true;
    return status;
}

static int reply_json(reply *rp, int status, char *body /* consumed */)
{
    if (!body) {
        static const char oom[] = "{\"success\":false,\"code\":\"InternalError\","
                                  "\"message\":\"out of memory\",\"data\":null}";
        return send_body(rp, 500, "application/json", oom, sizeof oom - 1);
    }
    int rc = send_body(rp, status, "application/json", body, strlen(body));
    free(body);
    return rc;
}

/* A failure in the gateway shape (spec §4), with a matching HTTP status. */
static int reply_fail(reply *rp, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int reply_fail(reply *rp, int status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return reply_json(rp, status, cp_envelope_gateway_failure(rp->request_id, status, code, msg));
}

/* The gateway success envelope around an arbitrary data object (consumed). */
static int reply_ok(reply *rp, cJSON *data)
{
    cJSON *root = cJSON_CreateObject();
    if (!root) {
        cJSON_Delete(data);
        return reply_json(rp, 500, NULL);
    }
    cJSON_AddStringToObject(root, "requestId", rp->request_id);
    cJSON_AddBoolToObject(root, "success", 1);
    cJSON_AddStringToObject(root, "code", "ok");
    cJSON_AddStringToObject(root, "message", "");
    cJSON_AddNumberToObject(root, "httpStatusCode", 200);
    if (data)
        cJSON_AddItemToObject(root, "data", data);
    else
        cJSON_AddNullToObject(root, "data");
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return reply_json(rp, 200, text);
}

void cp_http_refuse(struct mg_connection *conn, int status, const char *extra_headers,
                    const char *message)
{
    const char *reason = status == 400   ? "Bad Request"
                         : status == 401 ? "Unauthorized"
                         : status == 403 ? "Forbidden"
                         : status == 404 ? "Not Found"
                         : status == 421 ? "Misdirected Request"
                         : status == 426 ? "Upgrade Required"
                         : status == 429 ? "Too Many Requests"
                         : status == 431 ? "Request Header Fields Too Large"
                         : status == 500 ? "Internal Server Error"
                         : status == 503 ? "Service Unavailable"
                                         : "Error";
    mg_disable_connection_keep_alive(conn);
    mg_printf(conn,
              "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
              "Content-Length: %zu\r\nCache-Control: no-store\r\nConnection: close\r\n%s\r\n%s\n",
              status, reason, strlen(message) + 1, extra_headers ? extra_headers : "", message);
}

/* ---- request reading --------------------------------------------------------------------- */

/* Read the whole body, at most cap bytes. Returns 0, 413 (too big: declared or sent),
 * 400 (short or broken), 500 (OOM). The declared length is checked before any read. */
static int read_body(reply *rp, size_t cap, char **out, size_t *out_len)
{
    struct mg_connection *conn = rp->conn;
    *out = NULL;
    *out_len = 0;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    long long declared = ri->content_length;
    if (declared > (long long)cap) {
        mg_disable_connection_keep_alive(conn);
        return 413;
    }
    size_t want = declared >= 0 ? (size_t)declared : 4096;
    size_t bufcap = want + 1;
    char *buf = malloc(bufcap);
    if (!buf) return 500;
    size_t len = 0;
    for (;;) {
        if (declared >= 0 && len == (size_t)declared) break;
        if (len + 1 >= bufcap) {
            if (bufcap > cap) { /* undeclared length past the cap */
                free(buf);
                mg_disable_connection_keep_alive(conn);
                return 413;
            }
            size_t ncap = bufcap * 2 > cap + 2 ? cap + 2 : bufcap * 2;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                return 500;
            }
            buf = nb;
            bufcap = ncap;
        }
        int r = mg_read(conn, buf + len, bufcap - 1 - len);
        if (r < 0) {
            free(buf);
            mg_disable_connection_keep_alive(conn);
            return 400;
        }
        if (r == 0) {
            if (declared >= 0) { /* the client sent less than it declared */
                free(buf);
                mg_disable_connection_keep_alive(conn);
                return 400;
            }
            break;
        }
        len += (size_t)r;
        if (len > cap) {
            free(buf);
            mg_disable_connection_keep_alive(conn);
            return 413;
        }
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    rp->body_read = true;
    return 0;
}

static int body_error(reply *rp, int rc, size_t cap)
{
    if (rc == 413)
        return reply_fail(rp, 413, "PayloadTooLarge",
                          "request body too large: the limit is %zu bytes", cap);
    if (rc == 500) return reply_fail(rp, 500, "InternalError", "out of memory");
    return reply_fail(rp, 400, "InvalidParameter", "could not read the request body");
}

/* "sessionId" from the query string, else from a JSON body object. Returns a heap copy. */
static char *session_id_param(const struct mg_connection *conn, const cJSON *body)
{
    const char *q = mg_get_request_info(conn)->query_string;
    char buf[128];
    if (q && mg_get_var(q, strlen(q), "sessionId", buf, sizeof buf) > 0) return strdup(buf);
    const char *v = body ? cp_json_get_string(body, "sessionId") : NULL;
    return v ? strdup(v) : NULL;
}

/* ---- authentication ---------------------------------------------------------------------- */

/* The control API (and the gateway): bearer key when one is configured; otherwise
 * loopback clients only. Returns 0, or the status of the reply it sent. */
static int control_auth(cp_server *srv, reply *rp, const char *ip)
{
    const char *key = srv->cfg->api_key;
    if (!key) {
        if (is_loopback(ip)) return 0;
        return reply_fail(rp, 403, "Forbidden",
                          "this server has no API key, so its control API answers loopback "
                          "clients only (start it with --api-key to allow others)");
    }
    /* Only the SDKs' form, "Bearer <key>": a bare key is refused, so a key is never
     * accepted from a header meant for something else. */
    const char *h = mg_get_header(rp->conn, "authorization");
    const char *given = NULL;
    if (h && strncasecmp(h, "Bearer", 6) == 0 && (h[6] == ' ' || h[6] == '\t')) {
        given = h + 6;
        while (*given == ' ' || *given == '\t')
            given++;
    }
    if (given && cp_ct_equal(given, strlen(given), key, strlen(key))) return 0;
    int status = cp_http_auth_failed(srv, ip);
    if (status == 429)
        return reply_fail(rp, 429, "TooManyRequests",
                          "too many failed authentications from this address; wait a minute");
    return reply_fail(rp, 401, "InvalidApiKey",
                      h ? "invalid API key" : "missing API key (authorization: Bearer <key>)");
}

/* A session token presented on the LinkUrl route. Returns 0 or the status sent. */
static int token_auth(cp_server *srv, reply *rp, const char *ip, cp_session *s, const char *token)
{
    if (token && cp_session_token_ok(s, token, strlen(token))) return 0;
    int status = cp_http_auth_failed(srv, ip);
    if (status == 429)
        return reply_fail(rp, 429, "TooManyRequests",
                          "too many failed authentications from this address; wait a minute");
    return reply_fail(rp, 401, "InvalidToken",
                      token ? "invalid access token for this session"
                            : "missing access token (X-Access-Token header or body token)");
}

static int session_missing(reply *rp, const char *sid, cp_session_state st)
{
    if (st == CP_SESSION_FINISHED)
        return reply_fail(rp, 404, "InvalidSession.NotFound", "session %.64s has been released",
                          sid);
    return reply_fail(rp, 404, "InvalidSession.NotFound", "session %.64s not found",
                      sid ? sid : "(none)");
}

/* ---- session descriptors ------------------------------------------------------------------ */

static cJSON *session_data(cp_server *srv, cp_session *s, const char *status)
{
    cJSON *d = cJSON_CreateObject();
    if (!d) return NULL;
    const char *id = cp_session_id(s);
    char url[512];
    cJSON_AddStringToObject(d, "sessionId", id);
    cJSON_AddStringToObject(d, "resourceUrl", "");
    snprintf(url, sizeof url, "%s%s", srv->link_base, id);
    cJSON_AddStringToObject(d, "linkUrl", url);
    snprintf(url, sizeof url, "%s%s", srv->ws_base, id);
    cJSON_AddStringToObject(d, "wsUrl", url);
    cJSON_AddStringToObject(d, "token", cp_session_token(s));
    cJSON_AddStringToObject(d, "toolList", srv->tool_list);
    if (status) cJSON_AddStringToObject(d, "status", status);
    return d;
}

static char *build_tool_list(void)
{
    cJSON *arr = cJSON_CreateArray();
    cJSON *t = cJSON_CreateObject();
    cJSON_AddItemToArray(arr, t);
    cJSON_AddStringToObject(t, "name", "run_code");
    cJSON_AddStringToObject(t, "server", SERVER_NAME);
    cJSON_AddStringToObject(t, "description",
                            "Run code in a sandbox. Languages: java, javascript, python, r.");
    cJSON *schema = cJSON_AddObjectToObject(t, "inputSchema");
    cJSON_AddStringToObject(schema, "type", "object");
    cJSON *props = cJSON_AddObjectToObject(schema, "properties");
    cJSON *p = cJSON_AddObjectToObject(props, "code");
    cJSON_AddStringToObject(p, "type", "string");
    p = cJSON_AddObjectToObject(props, "language");
    cJSON_AddStringToObject(p, "type", "string");
    cJSON *en = cJSON_AddArrayToObject(p, "enum");
    static const char *langs[] = {"python", "javascript", "java", "r"};
    for (int i = 0; i < 4; i++)
        cJSON_AddItemToArray(en, cJSON_CreateString(langs[i]));
    p = cJSON_AddObjectToObject(props, "timeout_s");
    cJSON_AddStringToObject(p, "type", "integer");
    cJSON *req = cJSON_AddArrayToObject(schema, "required");
    cJSON_AddItemToArray(req, cJSON_CreateString("code"));
    cJSON_AddItemToArray(req, cJSON_CreateString("language"));
    char *s = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    return s;
}

/* ---- control API --------------------------------------------------------------------------- */

static int do_create(cp_server *srv, reply *rp, const cJSON *body)
{
    double idle = 0;
    const cJSON *to = body ? cJSON_GetObjectItemCaseSensitive(body, "timeout") : NULL;
    if (cJSON_IsNumber(to) && to->valuedouble > 0) idle = to->valuedouble;
    cp_session *s;
    char err[256];
    if (cp_sessions_create(srv->sessions, idle, &s, err, sizeof err))
        return reply_fail(rp, 503, "SessionLimitExceeded", "%s", err);
    cJSON *d = session_data(srv, s, NULL);
    cp_session_put(s);
    return reply_ok(rp, d);
}

/* The data of getSessionInfo, release and refresh: {"sessionId","status"}. */
static cJSON *status_data(const char *sid, const char *status)
{
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "sessionId", sid);
    cJSON_AddStringToObject(d, "status", status);
    return d;
}

static int do_get(cp_server *srv, reply *rp, const char *sid)
{
    cp_session_state st;
    cp_session *s = cp_sessions_get(srv->sessions, sid, &st);
    if (!s) return session_missing(rp, sid, st);
    cp_session_touch(s);
    cJSON *d = session_data(srv, s, "RUNNING");
    cp_session_put(s);
    return reply_ok(rp, d);
}

static int do_info(cp_server *srv, reply *rp, const char *sid)
{
    cp_session_state st;
    cp_session *s = cp_sessions_get(srv->sessions, sid, &st);
    if (st == CP_SESSION_UNKNOWN) return session_missing(rp, sid, st);
    if (s) cp_session_touch(s);
    cp_session_put(s);
    return reply_ok(rp, status_data(sid, st == CP_SESSION_LIVE ? "RUNNING" : "FINISH"));
}

static int do_release(cp_server *srv, reply *rp, const char *sid)
{
    cp_session_state st = cp_sessions_release(srv->sessions, sid);
    if (st == CP_SESSION_UNKNOWN) return session_missing(rp, sid, st);
    return reply_ok(rp, status_data(sid, "FINISH"));
}

static int do_refresh(cp_server *srv, reply *rp, const char *sid)
{
    cp_session_state st;
    cp_session *s = cp_sessions_get(srv->sessions, sid, &st);
    if (!s) return session_missing(rp, sid, st);
    cp_session_touch(s);
    cp_session_put(s);
    return reply_ok(rp, status_data(sid, "RUNNING"));
}

static int handle_control(cp_server *srv, reply *rp, const char *ip, const char *op)
{
    int rc = control_auth(srv, rp, ip);
    if (rc) return rc;
    char *body = NULL;
    size_t len = 0;
    rc = read_body(rp, CONTROL_BODY_MAX, &body, &len);
    if (rc) return body_error(rp, rc, CONTROL_BODY_MAX);
    cJSON *root = NULL;
    size_t i = 0;
    while (i < len && isspace((unsigned char)body[i]))
        i++;
    if (i < len) {
        char perr[128];
        root = cp_json_parse(body, len, perr, sizeof perr);
        if (!root || !cJSON_IsObject(root)) {
            cJSON_Delete(root);
            free(body);
            return reply_fail(rp, 400, "InvalidParameter",
                              "the request body must be a JSON object%s%s", root ? "" : ": ",
                              root ? "" : perr);
        }
    }
    free(body);

    int status;
    if (strcmp(op, "createSession") == 0) {
        status = do_create(srv, rp, root);
    } else if (strcmp(op, "listTools") == 0) {
        status = reply_ok(rp, cJSON_CreateString(srv->tool_list));
    } else {
        char *sid = session_id_param(rp->conn, root);
        if (!sid || !*sid) {
            status = reply_fail(rp, 400, "InvalidParameter", "sessionId is required");
        } else if (strcmp(op, "getSession") == 0) {
            status = do_get(srv, rp, sid);
        } else if (strcmp(op, "getSessionInfo") == 0) {
            status = do_info(srv, rp, sid);
        } else if (strcmp(op, "releaseSessionAsync") == 0 || strcmp(op, "releaseSession") == 0) {
            status = do_release(srv, rp, sid);
        } else if (strcmp(op, "refreshSessionIdleTime") == 0) {
            status = do_refresh(srv, rp, sid);
        } else {
            status = reply_fail(rp, 404, "NotFound", "unknown operation /mcp/%.64s", op);
        }
        free(sid);
    }
    cJSON_Delete(root);
    return status;
}

/* ---- runs ---------------------------------------------------------------------------------- */

/* One run of an HTTP request: shared by the waiting civetweb thread and the runner's
 * sink, freed by whichever lets go last. */
typedef struct {
    atomic_int refs;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    cp_result res;
    cp_session *session;
    cp_run_rec rec;
} http_run;

static void run_unref(http_run *run)
{
    if (atomic_fetch_sub(&run->refs, 1) != 1) return;
    cp_result_free(&run->res);
    pthread_cond_destroy(&run->cv);
    pthread_mutex_destroy(&run->mu);
    free(run);
}

static void sink_chunk(void *ud, bool is_stderr, const char *utf8, size_t len)
{
    http_run *run = ud;
    pthread_mutex_lock(&run->mu);
    if (is_stderr)
        cp_result_add_stderr(&run->res, utf8, len);
    else
        cp_result_add_stdout(&run->res, utf8, len);
    pthread_mutex_unlock(&run->mu);
}

static void sink_result(void *ud, const cp_result_item *item)
{
    http_run *run = ud;
    pthread_mutex_lock(&run->mu);
    cp_result_item *it = cp_result_add_item(&run->res);
    if (it) {
        cp_item_set(&it->text, item->text);
        cp_item_set(&it->html, item->html);
        cp_item_set(&it->markdown, item->markdown);
        cp_item_set(&it->png, item->png);
        cp_item_set(&it->jpeg, item->jpeg);
        cp_item_set(&it->svg, item->svg);
        cp_item_set(&it->latex, item->latex);
        cp_item_set(&it->json, item->json);
        cp_item_set(&it->chart, item->chart);
        it->is_main_result = item->is_main_result;
    }
    pthread_mutex_unlock(&run->mu);
}

static void sink_error(void *ud, const char *name, const char *value, const char *traceback)
{
    http_run *run = ud;
    pthread_mutex_lock(&run->mu);
    cp_result_set_error(&run->res, name ? name : "ExecutionError", value ? value : "",
                        traceback ? traceback : "");
    pthread_mutex_unlock(&run->mu);
}

static void sink_end(void *ud, const cp_run_outcome *o)
{
    http_run *run = ud;
    cp_session_run_end(run->session, &run->rec);
    pthread_mutex_lock(&run->mu);
    run->res.has_execution_count = o->has_count;
    run->res.execution_count = o->count;
    run->res.execution_time = o->time_s;
    if (!o->status || strcmp(o->status, "finished") != 0) {
        char msg[256];
        const char *e = o->execution_error;
        if (!e || !*e) {
            snprintf(msg, sizeof msg, "run %s (%s)", o->status ? o->status : "failed",
                     o->reason ? o->reason : "unknown");
            e = msg;
        }
        cp_result_fail(&run->res, e);
    }
    run->done = true;
    pthread_cond_signal(&run->cv);
    pthread_mutex_unlock(&run->mu);
    run_unref(run);
}

static const cp_run_sink HTTP_SINK = {sink_chunk, sink_result, sink_error, sink_end};

int cp_server_submit(cp_server *srv, const char *session, cp_lang lang, const char *code,
                     size_t code_len, double timeout_s, long long count, const cp_run_sink *sink,
                     void *ud, uint64_t *id, char *err, size_t errcap)
{
    pthread_rwlock_rdlock(&srv->runner_lock);
    int rc = -1;
    if (!srv->runner) {
        snprintf(err, errcap, "the server is shutting down");
    } else {
        rc = cp_runner_submit(srv->runner, session, lang, code, code_len, timeout_s, count, sink,
                              ud, id, err, errcap);
        if (rc && strncmp(err, "busy", 4) == 0) {
            snprintf(err, errcap,
                     "busy: %u runs are running and %u are waiting (the server's limits); "
                     "try again shortly",
                     srv->cfg->max_runs, srv->cfg->max_queue);
        }
    }
    pthread_rwlock_unlock(&srv->runner_lock);
    return rc;
}

void cp_server_drain(cp_server *srv, unsigned timeout_ms)
{
    struct timespec step = {0, 10 * 1000000L};
    for (unsigned waited = 0; atomic_load(&srv->api_active) && waited < timeout_ms; waited += 10)
        nanosleep(&step, NULL);
}

void cp_server_set_runner(cp_server *srv, cp_runner *r)
{
    pthread_rwlock_wrlock(&srv->runner_lock);
    srv->runner = r;
    pthread_rwlock_unlock(&srv->runner_lock);
}

static void start_heartbeat(reply *rp)
{
    mg_response_header_start(rp->conn, 200);
    mg_response_header_add(rp->conn, "Content-Type", "application/json", -1);
    mg_response_header_add(rp->conn, "Transfer-Encoding", "chunked", -1);
    mg_response_header_add(rp->conn, "Cache-Control", "no-store", -1);
    mg_response_header_add(rp->conn, "X-Content-Type-Options", "nosniff", -1);
    if (rp->request_id[0]) mg_response_header_add(rp->conn, "x-request-id", rp->request_id, -1);
    add_cors(rp);
    cp_http_keepalive_hint(rp->conn);
    if (mg_response_header_send(rp->conn) != 0) rp->gone = true;
    rp->chunked = true;
}

/* Validate and run req in session s. On success *text is the tool text (the payload, or
 * the message of a tool-level failure) and *is_error says which. Returns -1 only on OOM. */
static int run_code(cp_server *srv, reply *rp, cp_session *s, const cp_run_request *req,
                    char **text, bool *is_error)
{
    char msg[512];
    *is_error = true;
    *text = NULL;
    if (req->server && strcmp(req->server, SERVER_NAME) != 0) {
        snprintf(msg, sizeof msg, "unknown server \"%.64s\": this server runs \"%s\"", req->server,
                 SERVER_NAME);
        return (*text = strdup(msg)) ? 0 : -1;
    }
    if (req->lang == CP_LANG_NONE) {
        const char *raw = req->language_raw ? req->language_raw : "";
        cp_lang_unsupported_message(raw, strlen(raw), msg, sizeof msg);
        return (*text = strdup(msg)) ? 0 : -1;
    }
    if (req->code_len == 0) return (*text = strdup(MSG_EMPTY_CODE)) ? 0 : -1;
    if (req->code_len > srv->cfg->max_code_bytes) {
        snprintf(msg, sizeof msg, "code too large: %zu bytes; the limit is %zu bytes",
                 req->code_len, srv->cfg->max_code_bytes);
        return (*text = strdup(msg)) ? 0 : -1;
    }

    http_run *run = calloc(1, sizeof *run);
    if (!run) return -1;
    pthread_mutex_init(&run->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&run->cv, &ca);
    pthread_condattr_destroy(&ca);
    cp_result_init(&run->res);
    run->session = s;
    atomic_init(&run->refs, 2);

    long long count;
    if (cp_session_run_begin(s, &run->rec, NULL, req->lang, &count, msg, sizeof msg)) {
        atomic_store(&run->refs, 1);
        run_unref(run);
        return (*text = strdup(msg)) ? 0 : -1;
    }
    uint64_t id;
    if (cp_server_submit(srv, cp_session_id(s), req->lang, req->code, req->code_len, req->timeout_s,
                         count, &HTTP_SINK, run, &id, msg, sizeof msg)) {
        cp_session_run_failed(s, &run->rec, req->lang, count);
        atomic_store(&run->refs, 1);
        run_unref(run);
        return (*text = strdup(msg)) ? 0 : -1;
    }
    cp_session_run_started(s, &run->rec, id);

    /* Wait for the end; past the first interval, heartbeat to notice a vanished client. */
    bool cancelled = false;
    pthread_mutex_lock(&run->mu);
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    while (!run->done) {
        dl.tv_sec += CP_SRV_HTTP_HEARTBEAT_MS / 1000;
        dl.tv_nsec += (long)(CP_SRV_HTTP_HEARTBEAT_MS % 1000) * 1000000L;
        if (dl.tv_nsec >= 1000000000L) dl.tv_sec++, dl.tv_nsec -= 1000000000L;
        int w = 0;
        while (!run->done && w != ETIMEDOUT)
            w = pthread_cond_timedwait(&run->cv, &run->mu, &dl);
        if (run->done || cancelled) continue;
        pthread_mutex_unlock(&run->mu);
        if (!rp->chunked) start_heartbeat(rp);
        if (!rp->gone && mg_send_chunk(rp->conn, " ", 1) < 0) rp->gone = true;
        if (rp->gone) {
            cp_session_cancel_run(s, &run->rec);
            cancelled = true;
        }
        pthread_mutex_lock(&run->mu);
    }
    pthread_mutex_unlock(&run->mu);

    *is_error = false;
    *text = cp_payload_build(&run->res);
    run_unref(run);
    return *text ? 0 : -1;
}

/* A callTool for an id with no live session: revive it when the request carries the
 * token this server derives for the id (session.h). The token is the X-Access-Token
 * header, else the body's, so the body may be read here; *body then keeps it for the
 * caller. Returns 0 with *out, or the status of the reply sent: exactly what an unknown
 * session got before revival existed (404, whatever the token or the body), or
 * createSession's refusal when no session fits. */
static int revive_for_calltool(cp_server *srv, reply *rp, const char *sid, cp_session_state st,
                               char **body, size_t *len, cp_session **out)
{
    *out = NULL;
    const char *htok = mg_get_header(rp->conn, "X-Access-Token");
    cJSON *root = NULL;
    const char *token = htok;
    if (!token) {
        if (read_body(rp, srv->cfg->max_body_bytes, body, len) != 0)
            return session_missing(rp, sid, st);
        root = cp_json_parse(*body, *len, NULL, 0);
        token = root ? cp_json_get_string(root, "token") : NULL;
    }
    char err[256];
    cp_session_state known;
    cp_revive rv = cp_sessions_revive(srv->sessions, sid, token, token ? strlen(token) : 0,
                                      "callTool", out, &known, err, sizeof err);
    cJSON_Delete(root);
    if (rv == CP_REVIVE_FAILED) return reply_fail(rp, 503, "SessionLimitExceeded", "%s", err);
    if (rv == CP_REVIVE_REFUSED) return session_missing(rp, sid, known);
    return 0;
}

/* POST /link/<sid>/callTool (spec §3). */
static int handle_calltool(cp_server *srv, reply *rp, const char *ip, const char *sid)
{
    int status;
    char *body = NULL;
    size_t len = 0;
    cp_session_state st;
    cp_session *s = cp_sessions_get(srv->sessions, sid, &st);
    if (!s && (status = revive_for_calltool(srv, rp, sid, st, &body, &len, &s))) {
        free(body);
        return status;
    }

    const char *htok = mg_get_header(rp->conn, "X-Access-Token");
    if (htok && (status = token_auth(srv, rp, ip, s, htok))) goto out;

    int rc = rp->body_read ? 0 : read_body(rp, srv->cfg->max_body_bytes, &body, &len);
    if (rc) {
        status = body_error(rp, rc, srv->cfg->max_body_bytes);
        goto out;
    }
    if (!htok) {
        /* The token rides in the body too (spec §3): read it before anything else. */
        cJSON *root = cp_json_parse(body, len, NULL, 0);
        const char *btok = root ? cp_json_get_string(root, "token") : NULL;
        status = token_auth(srv, rp, ip, s, btok);
        cJSON_Delete(root);
        if (status) goto out;
    }
    cp_session_touch(s);

    cp_run_request req;
    cp_run_request_init(&req);
    char err[512];
    char *text = NULL;
    bool is_error = true;
    if (cp_request_parse_linkurl(body, len, srv->cfg->timeout_default, srv->cfg->timeout_max, &req,
                                 err, sizeof err) != 0) {
        text = strdup(err);
    } else if (run_code(srv, rp, s, &req, &text, &is_error) != 0) {
        text = NULL;
    }
    cp_run_request_free(&req);
    if (!text) {
        status = reply_json(rp, 500, NULL);
        goto out;
    }
    status = reply_json(rp, 200, cp_envelope_linkurl(text, is_error));
    free(text);
out:
    free(body);
    cp_session_put(s);
    return status;
}

/* POST /mcp?autoGenSession=false (spec §4). */
static int handle_gateway(cp_server *srv, reply *rp, const char *ip)
{
    int status = control_auth(srv, rp, ip);
    if (status) return status;
    char *body;
    size_t len;
    int rc = read_body(rp, srv->cfg->max_body_bytes, &body, &len);
    if (rc) return body_error(rp, rc, srv->cfg->max_body_bytes);

    cp_run_request req;
    cp_run_request_init(&req);
    char err[512];
    if (cp_request_parse_gateway(body, len, srv->cfg->timeout_default, srv->cfg->timeout_max, &req,
                                 err, sizeof err) != 0) {
        free(body);
        cp_run_request_free(&req);
        return reply_fail(rp, 400, "InvalidParameter", "%s", err);
    }
    free(body);
    cp_session_state st;
    cp_session *s = req.session_id ? cp_sessions_get(srv->sessions, req.session_id, &st) : NULL;
    if (!s) {
        status = req.session_id ? session_missing(rp, req.session_id, st)
                                : reply_fail(rp, 400, "InvalidParameter", "sessionId is required");
        cp_run_request_free(&req);
        return status;
    }
    cp_session_touch(s);
    char *text = NULL;
    bool is_error = true;
    if (run_code(srv, rp, s, &req, &text, &is_error) != 0) text = NULL;
    cp_run_request_free(&req);
    cp_session_put(s);
    if (!text) return reply_json(rp, 500, NULL);
    status = reply_json(rp, 200, cp_envelope_gateway(rp->request_id, text, is_error));
    free(text);
    return status;
}

/* ---- health, preflight -------------------------------------------------------------------- */

static int handle_health(cp_server *srv, reply *rp)
{
    unsigned running = 0, queued = 0;
    bool ready = atomic_load(&srv->ready);
    pthread_rwlock_rdlock(&srv->runner_lock);
    if (srv->runner) cp_runner_counts(srv->runner, &running, &queued);
    pthread_rwlock_unlock(&srv->runner_lock);
    char body[160];
    snprintf(body, sizeof body, "{\"status\":\"%s\",\"running\":%u,\"queued\":%u,\"sessions\":%u}",
             ready ? "ok" : "starting", running, queued, cp_sessions_live(srv->sessions));
    rp->request_id[0] = '\0';
    return send_body(rp, ready ? 200 : 503, "application/json", body, strlen(body));
}

static int handle_preflight(reply *rp, int origin_state)
{
    struct mg_connection *conn = rp->conn;
    if (origin_state != 1) {
        mg_response_header_start(conn, 403);
        mg_response_header_add(conn, "Content-Length", "0", -1);
        mg_response_header_send(conn);
        return 403;
    }
    mg_response_header_start(conn, 204);
    add_cors(rp);
    mg_response_header_add(conn, "Access-Control-Allow-Methods", "GET, POST, OPTIONS", -1);
    mg_response_header_add(conn, "Access-Control-Allow-Headers",
                           "authorization, x-access-token, content-type", -1);
    mg_response_header_add(conn, "Access-Control-Max-Age", "600", -1);
    const char *pna = mg_get_header(conn, "Access-Control-Request-Private-Network");
    if (pna && strcasecmp(pna, "true") == 0)
        mg_response_header_add(conn, "Access-Control-Allow-Private-Network", "true", -1);
    mg_response_header_add(conn, "Content-Length", "0", -1);
    mg_response_header_send(conn);
    return 204;
}

/* ---- routing -------------------------------------------------------------------------------- */

/* "/link/<sid>/callTool" → sid (copied into out). */
static bool match_link(const char *path, char *out, size_t cap)
{
    static const char pre[] = "/link/", post[] = "/callTool";
    if (strncmp(path, pre, sizeof pre - 1) != 0) return false;
    const char *sid = path + sizeof pre - 1;
    const char *slash = strchr(sid, '/');
    if (!slash || strcmp(slash, post) != 0) return false;
    size_t n = (size_t)(slash - sid);
    if (n == 0 || n >= cap) return false;
    memcpy(out, sid, n);
    out[n] = '\0';
    return true;
}

static int api_request(cp_server *srv, reply *rp, const char *method, const char *path)
{
    const char *ip = mg_get_request_info(rp->conn)->remote_addr;
    char sid[64];
    bool is_link = match_link(path, sid, sizeof sid);
    bool is_mcp = strcmp(path, "/mcp") == 0 || strncmp(path, "/mcp/", 5) == 0;
    if (!is_link && !is_mcp) return -1;
    if (strcmp(method, "POST") != 0)
        return reply_fail(rp, 405, "MethodNotAllowed", "use POST for %.64s", path);
    if (!atomic_load(&srv->ready))
        return reply_fail(rp, 503, "ServiceUnavailable", "the server is starting or stopping");
    if (cp_http_ip_acquire(srv, ip))
        return reply_fail(rp, 429, "TooManyRequests",
                          "too many concurrent requests from this address (limit %u)",
                          srv->cfg->max_conns_per_ip);
    int status;
    atomic_fetch_add(&srv->api_active, 1);
    if (is_link)
        status = handle_calltool(srv, rp, ip, sid);
    else if (strcmp(path, "/mcp") == 0)
        status = handle_gateway(srv, rp, ip);
    else
        status = handle_control(srv, rp, ip, path + 5);
    atomic_fetch_sub(&srv->api_active, 1);
    cp_http_ip_release(srv, ip);
    return status;
}

static int http_handler(struct mg_connection *conn, void *cbdata)
{
    cp_server *srv = cbdata;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    const char *method = ri->request_method ? ri->request_method : "";
    const char *path = ri->local_uri_raw ? ri->local_uri_raw : ri->local_uri;
    if (!path) path = "/";
    reply rp = {.conn = conn};
    rp.head = strcmp(method, "HEAD") == 0;
    rp.api = !rp.head && strcmp(method, "GET") != 0;

    if (strcmp(path, "/health") == 0 && (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0))
        return handle_health(srv, &rp);

    cp_random_hex(rp.request_id, 16);
    if (!cp_http_host_ok(srv, conn))
        return reply_fail(&rp, 421, "MisdirectedRequest",
                          "unexpected Host header; reach this server by one of its own names, "
                          "or start it with --public-url");
    const char *origin;
    int ostate = cp_http_origin(srv, conn, &origin);
    if (ostate == 1) rp.cors_origin = origin;
    if (strcmp(method, "OPTIONS") == 0) return handle_preflight(&rp, ostate);

    bool api = strcmp(path, "/mcp") == 0 || strncmp(path, "/mcp/", 5) == 0 ||
               strncmp(path, "/link/", 6) == 0;
    if (api) {
        if (ostate < 0)
            return reply_fail(&rp, 403, "Forbidden", "origin not allowed (see --allow-origin)");
        int status = api_request(srv, &rp, method, path);
        if (status >= 0) return status;
        return reply_fail(&rp, 404, "NotFound", "no such endpoint");
    }
    if (rp.api) {
        static const char msg[] = "Method not allowed\n";
        rp.request_id[0] = '\0';
        return send_body(&rp, 405, "text/plain; charset=utf-8", msg, sizeof msg - 1);
    }
    return cp_static_serve(srv->web, conn, path, rp.head);
}

/* ---- setup ------------------------------------------------------------------------------------
 */

static int push(char ***list, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int push(char ***list, size_t *n, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    for (char *p = buf; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (in_list(*list, *n, buf)) return 0;
    char **nl = realloc(*list, (*n + 1) * sizeof *nl);
    if (!nl) return -1;
    *list = nl;
    if (!(nl[*n] = strdup(buf))) return -1;
    (*n)++;
    return 0;
}

int cp_server_init(cp_server *srv, cp_config *cfg, cp_sessions *sessions, char *err, size_t errcap)
{
    srv->cfg = cfg;
    srv->sessions = sessions;
    atomic_init(&srv->ready, false);
    atomic_init(&srv->ws_conns, 0);
    atomic_init(&srv->api_active, 0);
    pthread_rwlock_init(&srv->runner_lock, NULL);
    pthread_mutex_init(&srv->ip_lock, NULL);
    srv->ips = calloc(CP_SRV_IP_TABLE_SIZE, sizeof *srv->ips);
    if (!srv->ips) goto oom;

    /* Own names: the loopback names on our port, the listen address, the public URL. */
    unsigned port = cfg->port;
    const char *pub = cfg->public_url;
    const char *pub_host = strstr(pub, "://") + 3;
    bool https = strncmp(pub, "https://", 8) == 0;
    if (push(&srv->hosts, &srv->nhosts, "127.0.0.1:%u", port) ||
        push(&srv->hosts, &srv->nhosts, "localhost:%u", port) ||
        push(&srv->hosts, &srv->nhosts, "[::1]:%u", port) ||
        push(&srv->hosts, &srv->nhosts, "%s", pub_host))
        goto oom;
    if (cfg->listen_v6) {
        if (push(&srv->hosts, &srv->nhosts, "[%s]:%u", cfg->listen_addr, port)) goto oom;
    } else if (push(&srv->hosts, &srv->nhosts, "%s:%u", cfg->listen_addr, port)) {
        goto oom;
    }
    /* A public URL on the scheme's default port is also reached as the bare host. */
    if (!strchr(pub_host[0] == '[' ? strchr(pub_host, ']') : pub_host, ':')) {
        if (push(&srv->hosts, &srv->nhosts, "%s:%s", pub_host, https ? "443" : "80")) goto oom;
    } else {
        const char *colon = strrchr(pub_host, ':');
        if (strcmp(colon + 1, https ? "443" : "80") == 0 &&
            push(&srv->hosts, &srv->nhosts, "%.*s", (int)(colon - pub_host), pub_host))
            goto oom;
    }
    if (port == 80 &&
        (push(&srv->hosts, &srv->nhosts, "127.0.0.1") ||
         push(&srv->hosts, &srv->nhosts, "localhost") || push(&srv->hosts, &srv->nhosts, "[::1]")))
        goto oom;
    /* Own origins: each own host as http://, plus the public URL itself. */
    for (size_t i = 0; i < srv->nhosts; i++)
        if (push(&srv->origins, &srv->norigins, "http://%s", srv->hosts[i])) goto oom;
    if (push(&srv->origins, &srv->norigins, "%s", pub)) goto oom;
    for (size_t i = 0; i < cfg->norigins; i++)
        if (push(&srv->origins, &srv->norigins, "%s", cfg->origins[i])) goto oom;

    if (asprintf(&srv->link_base, "%s/link/", pub) < 0) srv->link_base = NULL;
    if (asprintf(&srv->ws_base, "%s://%s/ws/", https ? "wss" : "ws", pub_host) < 0)
        srv->ws_base = NULL;
    srv->tool_list = build_tool_list();
    if (!srv->link_base || !srv->ws_base || !srv->tool_list) goto oom;

    if (cfg->web_root && cp_static_open(&srv->web, cfg->web_root, err, errcap)) return -1;
    return 0;
oom:
    snprintf(err, errcap, "out of memory");
    return -1;
}

void cp_server_free(cp_server *srv)
{
    for (size_t i = 0; i < srv->nhosts; i++)
        free(srv->hosts[i]);
    free(srv->hosts);
    for (size_t i = 0; i < srv->norigins; i++)
        free(srv->origins[i]);
    free(srv->origins);
    free(srv->link_base);
    free(srv->ws_base);
    free(srv->tool_list);
    cp_static_free(srv->web);
    free(srv->ips);
    pthread_mutex_destroy(&srv->ip_lock);
    pthread_rwlock_destroy(&srv->runner_lock);
    memset(srv, 0, sizeof *srv);
}

void cp_http_register(cp_server *srv)
{
    /* /ws/ never gets here: cp_ws_begin_request takes it first. */
    mg_set_request_handler(srv->mg, "/", http_handler, srv);
}
