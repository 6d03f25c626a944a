/* codepane-server: static files (see static.h). */
#define _GNU_SOURCE
#include "static.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "config.h"
#include "http.h"

#define INDEX_FILE "index.html"
#define READ_CHUNK (64 * 1024)

struct cp_static {
    int root_fd;
};

int cp_static_open(cp_static **out, const char *root, char *err, size_t errcap)
{
    *out = NULL;
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errcap, "web root %s: %s", root, strerror(errno));
        return -1;
    }
    cp_static *st = malloc(sizeof *st);
    if (!st) {
        close(fd);
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    st->root_fd = fd;
    *out = st;
    return 0;
}

void cp_static_free(cp_static *st)
{
    if (!st) return;
    close(st->root_fd);
    free(st);
}

static const struct {
    const char *ext, *type;
} TYPES[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".wasm", "application/wasm"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".json", "application/json"},
    {".map", "application/json"},
};

static const char *content_type(const char *path)
{
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (!dot || (slash && dot < slash)) return NULL;
    for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++)
        if (strcasecmp(dot, TYPES[i].ext) == 0) return TYPES[i].type;
    return NULL;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decode raw (starting with '/') once into out, without the leading slash; check every
 * segment. Returns 0, or the HTTP status to answer. */
static int clean_path(const char *raw, char *out, size_t cap)
{
    if (raw[0] != '/') return 400;
    size_t n = 0;
    for (const char *p = raw + 1; *p; p++) {
        char c = *p;
        if (c == '%') {
            int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);
            if (hi < 0 || lo < 0) return 400;
            c = (char)(hi * 16 + lo);
            p += 2;
        }
        if (c == '\0' || c == '\\') return 400;
        if (n + 1 >= cap) return 404;
        out[n++] = c;
    }
    out[n] = '\0';
    /* "/" or ".../" → the directory's index. */
    if (n == 0 || out[n - 1] == '/') {
        if (n + sizeof INDEX_FILE >= cap) return 404;
        memcpy(out + n, INDEX_FILE, sizeof INDEX_FILE);
        n += sizeof INDEX_FILE - 1;
    }
    /* Segments: no empty ones ("//"), no "." or "..", no hidden files. */
    for (const char *seg = out;;) {
        const char *end = strchr(seg, '/');
        size_t len = end ? (size_t)(end - seg) : strlen(seg);
        if (len == 0) return 404;
        if (seg[0] == '.') return len <= 2 && (len == 1 || seg[1] == '.') ? 400 : 404;
        if (!end) break;
        seg = end + 1;
    }
    return 0;
}

/* openat2 beneath the root with no symlinks anywhere on the way. Kernels before 5.6
 * lack it: walk the path one component at a time with O_NOFOLLOW instead (the path
 * holds no ".." by now, so that stays beneath the root too). */
static int open_beneath(int root, const char *path)
{
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    long fd = syscall(SYS_openat2, root, path, &how, sizeof how);
    if (fd >= 0 || errno != ENOSYS) return (int)fd;

    char buf[CP_SRV_PATH_MAX + 16];
    snprintf(buf, sizeof buf, "%s", path);
    int dir = dup(root);
    if (dir < 0) return -1;
    char *seg = buf;
    for (;;) {
        char *slash = strchr(seg, '/');
        if (slash) *slash = '\0';
        int flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | (slash ? O_DIRECTORY : 0);
        int next = openat(dir, seg, flags);
        int e = errno;
        close(dir);
        if (next < 0) {
            errno = e;
            return -1;
        }
        if (!slash) return next;
        dir = next;
        seg = slash + 1;
    }
}

static int send_status(struct mg_connection *conn, int status, const char *text, bool head)
{
    char len[24];
    snprintf(len, sizeof len, "%zu", strlen(text));
    mg_response_header_start(conn, status);
    mg_response_header_add(conn, "Content-Type", "text/plain; charset=utf-8", -1);
    mg_response_header_add(conn, "Content-Length", len, -1);
    mg_response_header_add(conn, "X-Content-Type-Options", "nosniff", -1);
    cp_http_keepalive_hint(conn);
    mg_response_header_send(conn);
    if (!head) mg_write(conn, text, strlen(text));
    return status;
}

int cp_static_serve(cp_static *st, struct mg_connection *conn, const char *raw_path, bool head)
{
    if (!st) return send_status(conn, 404, "Not found\n", head);
    if (strlen(raw_path) > CP_SRV_PATH_MAX) return send_status(conn, 404, "Not found\n", head);
    char path[CP_SRV_PATH_MAX + 16];
    int bad = clean_path(raw_path, path, sizeof path);
    if (bad == 400) return send_status(conn, 400, "Bad path\n", head);
    if (bad) return send_status(conn, 404, "Not found\n", head);
    const char *type = content_type(path);
    if (!type) return send_status(conn, 404, "Not found\n", head);

    int fd = open_beneath(st->root_fd, path);
    if (fd < 0) return send_status(conn, 404, "Not found\n", head);
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return send_status(conn, 404, "Not found\n", head);
    }
    char len[24];
    snprintf(len, sizeof len, "%lld", (long long)sb.st_size);
    mg_response_header_start(conn, 200);
    mg_response_header_add(conn, "Content-Type", type, -1);
    mg_response_header_add(conn, "Content-Length", len, -1);
    mg_response_header_add(conn, "Cache-Control", "no-cache", -1);
    mg_response_header_add(conn, "X-Content-Type-Options", "nosniff", -1);
    cp_http_keepalive_hint(conn);
    mg_response_header_send(conn);
    if (!head) {
        char *buf = malloc(READ_CHUNK);
        off_t left = sb.st_size;
        while (buf && left > 0) {
            ssize_t r = read(fd, buf, READ_CHUNK);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) break;
            if (mg_write(conn, buf, (size_t)r) <= 0) break;
            left -= r;
        }
        free(buf);
        /* A file that shrank under us leaves the reply short: close rather than let the
         * client read the next response as the rest of this one. */
        if (left > 0) mg_disable_connection_keep_alive(conn);
    }
    close(fd);
    return 200;
}
