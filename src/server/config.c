/* codepane-server: flags and environment (see config.h). Every value is checked here,
 * once: a limit of 0, a negative or a non-numeric value is refused with a message that
 * names the flag, never taken to mean "unlimited" (sandbox.md finding 15). */
#define _GNU_SOURCE
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_LISTEN          "127.0.0.1:8080"
#define DEFAULT_MAX_QUEUE       16
#define DEFAULT_TIMEOUT_DEFAULT 60.0
#define DEFAULT_TIMEOUT_MAX     300.0
#define DEFAULT_MAX_CODE        (1u << 20)
#define DEFAULT_MAX_BODY        (2u << 20)
#define DEFAULT_MAX_OUTPUT      (1u << 20)
#define DEFAULT_MEMORY          (512u << 20)
#define DEFAULT_PIDS            128
#define DEFAULT_TMP             (64u << 20)
#define DEFAULT_SESSION_IDLE    600.0
#define DEFAULT_MAX_SESSIONS    64
#define DEFAULT_CONNS_PER_IP    32
#define DEFAULT_UID_BASE        60000
#define DEFAULT_KERNEL_IDLE     600.0
#define DEFAULT_INTERRUPT_GRACE 2.0
/* The languages that run in kernels unless --kernels says otherwise. */
#define DEFAULT_KERNEL_LANGS "all"
#define DEFAULT_KERNEL_POOL  "python=1"
/* Upper bounds that keep arithmetic sane; far above any useful value. */
#define MAX_SECONDS (7.0 * 24 * 3600)
#define MAX_COUNT   65536u
#define MAX_SIZE    ((size_t)1 << 40)
#define MAX_THREADS 4096u
#define MAX_ORIGINS 64

static void set_err(char *err, size_t cap, const char *fmt, ...)
{
    if (!err || !cap) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

void cp_config_usage(FILE *out)
{
    fputs(
        "usage: codepane-server [options]\n"
        "\n"
        "A local server for the AGB Code API (HTTP + WebSocket) that runs Python, JavaScript,\n"
        "Java and R in bubblewrap sandboxes. Options (also --opt=value); sizes take an\n"
        "optional K, M or G suffix (powers of 1024); seconds may be fractional:\n"
        "\n"
        "  --listen ADDR:PORT     address to listen on; ADDR is an IPv4 literal, [IPv6] or\n"
        "                         localhost; PORT 0 picks a free port\n"
        "                         (env CODEPANE_LISTEN; default " DEFAULT_LISTEN ")\n"
        "  --public-url URL       base URL clients reach the server at, used for linkUrl and\n"
        "                         wsUrl and allowed as Host and Origin (default http://ADDR:PORT)\n"
        "  --api-key KEY          require 'authorization: Bearer KEY' on the control API\n"
        "                         (env CODEPANE_API_KEY, preferred: argv is visible to ps);\n"
        "                         without a key the control API answers loopback clients only\n"
        "  --allow-origin ORIGIN  allow this browser origin (scheme://host[:port]) for CORS and\n"
        "                         WebSocket upgrades; repeatable (env CODEPANE_ALLOWED_ORIGINS,\n"
        "                         comma separated). The server's own origins are always allowed\n"
        "  --web-root DIR         serve the playground from DIR\n"
        "                         (default: <binary dir>/../../web if it exists, else none)\n"
        "  --runners DIR          language runners directory\n"
        "                         (default: <binary dir>/../../src/server/runners)\n"
        "  --max-runs N           sandboxes running at once (default: number of CPUs)\n"
        "  --max-queue N          runs waiting for a sandbox before 'busy' (default 16)\n"
        "  --timeout-default S    wall timeout of a run that sets none (default 60)\n"
        "  --timeout-max S        largest wall timeout; larger requests are clamped (default 300)\n"
        "  --max-code-bytes SIZE  largest code of one run (default 1M)\n"
        "  --max-body-bytes SIZE  largest HTTP request body and WebSocket message (default 2M)\n"
        "  --max-output-bytes SIZE  stdout+stderr of one run before it is stopped (default 1M)\n"
        "  --memory SIZE          memory limit of one run (default 512M)\n"
        "  --pids N               process/thread limit of one run (default 128)\n"
        "  --tmp-size SIZE        size of a run's /tmp (default 64M)\n"
        "  --session-idle S       idle time after which a session is released (default 600)\n"
        "  --max-sessions N       live sessions at once (default 64)\n"
        "  --session-secret-file PATH  the key session tokens are derived from, so sessions\n"
        "                         survive a restart; created (32 random bytes, mode 0600)\n"
        "                         if missing; must not be readable by group or others\n"
        "                         (default: a new secret per process)\n"
        "  --max-conns-per-ip N   concurrent API requests + WebSockets per client IP (default 32)\n"
        "  --kernels LIST         languages whose runs go to a persistent kernel per session\n"
        "                         (python,javascript,java,r, all or none; "
        "default " DEFAULT_KERNEL_LANGS ")\n"
        "  --kernel-pool LIST     idle kernels kept started, as lang=N,... "
        "(default " DEFAULT_KERNEL_POOL ")\n"
        "  --kernel-idle S        a session's kernel idle this long is stopped (default 600)\n"
        "  --kernels-per-session N  live kernels of one session (default 4)\n"
        "  --interrupt-grace S    a cell interrupted for a timeout or cancel that has not\n"
        "                         stopped after S is killed with its kernel (default 2)\n"
        "  --kernels-dir DIR      the kernels (default: <binary dir>/kernels)\n"
        "  --uid-base N           sandbox slot n runs as uid/gid N+n (default 60000)\n"
        "  --threads N            HTTP worker threads; each WebSocket holds one (default:\n"
        "                         max-runs + max-queue + 8 + 1024)\n"
        "  -h, --help             print this text\n",
        out);
}

/* ---- value parsers ------------------------------------------------------------------ */

static int parse_uint(const char *flag, const char *s, unsigned min, unsigned max, unsigned *out,
                      char *err, size_t errcap)
{
    const char *p = s;
    while (*p == ' ')
        p++;
    if (!isdigit((unsigned char)*p)) goto bad;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(p, &end, 10);
    if (errno || *end || v < min || v > max) goto bad;
    *out = (unsigned)v;
    return 0;
bad:
    set_err(err, errcap, "%s: expected a whole number from %u to %u, got '%s'", flag, min, max, s);
    return -1;
}

static int parse_size(const char *flag, const char *s, size_t *out, char *err, size_t errcap)
{
    const char *p = s;
    if (!isdigit((unsigned char)*p)) goto bad;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(p, &end, 10);
    if (errno) goto bad;
    unsigned long long mul = 1;
    switch (*end) {
    case 'k':
    case 'K':
        mul = 1ull << 10;
        end++;
        break;
    case 'm':
    case 'M':
        mul = 1ull << 20;
        end++;
        break;
    case 'g':
    case 'G':
        mul = 1ull << 30;
        end++;
        break;
    default:
        break;
    }
    if (mul > 1 && (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0))
        end += strlen(end);
    else if (mul == 1 && strcmp(end, "B") == 0)
        end++;
    if (*end || v == 0 || v > MAX_SIZE / mul) goto bad;
    *out = (size_t)(v * mul);
    return 0;
bad:
    set_err(err, errcap,
            "%s: expected a positive size in bytes (suffix K, M or G allowed), got '%s'", flag, s);
    return -1;
}

static int parse_seconds(const char *flag, const char *s, double *out, char *err, size_t errcap)
{
    const char *p = s;
    if (!isdigit((unsigned char)*p) && *p != '.') goto bad;
    errno = 0;
    char *end;
    double v = strtod(p, &end);
    if (errno || *end || !isfinite(v) || v <= 0 || v > MAX_SECONDS) goto bad;
    *out = v;
    return 0;
bad:
    set_err(err, errcap, "%s: expected a positive number of seconds (at most %.0f), got '%s'", flag,
            MAX_SECONDS, s);
    return -1;
}

/* "ADDR:PORT": an IPv4 literal, "[IPv6]" or "localhost". */
static int parse_listen(cp_config *cfg, const char *s, char *err, size_t errcap)
{
    const char *colon;
    size_t alen;
    const char *addr = s;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':') goto bad;
        addr = s + 1;
        alen = (size_t)(rb - addr);
        colon = rb + 1;
        cfg->listen_v6 = true;
    } else {
        colon = strrchr(s, ':');
        if (!colon) goto bad;
        alen = (size_t)(colon - s);
        cfg->listen_v6 = false;
    }
    if (alen == 0 || alen >= sizeof cfg->listen_addr) goto bad;
    char a[sizeof cfg->listen_addr];
    memcpy(a, addr, alen);
    a[alen] = '\0';
    if (!cfg->listen_v6) {
        if (strcmp(a, "localhost") == 0) {
            strcpy(a, "127.0.0.1");
        } else {
            /* dotted quad, nothing else */
            unsigned b[4];
            char tail;
            if (sscanf(a, "%3u.%3u.%3u.%3u%c", &b[0], &b[1], &b[2], &b[3], &tail) != 4 ||
                b[0] > 255 || b[1] > 255 || b[2] > 255 || b[3] > 255)
                goto bad;
        }
    } else {
        for (const char *q = a; *q; q++)
            if (!isxdigit((unsigned char)*q) && *q != ':' && *q != '.') goto bad;
    }
    unsigned port;
    char perr[8];
    if (parse_uint("--listen", colon + 1, 0, 65535, &port, perr, sizeof perr)) goto bad;
    strcpy(cfg->listen_addr, a);
    cfg->port = port;
    return 0;
bad:
    set_err(err, errcap,
            "--listen: expected ADDR:PORT (127.0.0.1:8080, [::1]:8080, localhost:8080), got '%s'",
            s);
    return -1;
}

static char *lower_dup(const char *s, size_t len)
{
    char *p = malloc(len + 1);
    if (!p) return NULL;
    for (size_t i = 0; i < len; i++)
        p[i] = (char)tolower((unsigned char)s[i]);
    p[len] = '\0';
    return p;
}

/* scheme://host[:port] with no path, query or user info. Returns a normalised copy. */
static char *normalise_origin(const char *s, size_t len)
{
    while (len && (s[len - 1] == '/'))
        len--;
    const char *rest;
    if (len > 7 && strncasecmp(s, "http://", 7) == 0)
        rest = s + 7;
    else if (len > 8 && strncasecmp(s, "https://", 8) == 0)
        rest = s + 8;
    else
        return NULL;
    for (const char *q = rest; q < s + len; q++) {
        unsigned char c = (unsigned char)*q;
        if (c == '/' || c == '?' || c == '#' || c == '@' || c <= ' ' || c >= 0x7f) return NULL;
    }
    if (rest == s + len) return NULL;
    return lower_dup(s, len);
}

static int add_origin(cp_config *cfg, const char *s, size_t len, char *err, size_t errcap)
{
    while (len && isspace((unsigned char)*s))
        s++, len--;
    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    if (!len) return 0;
    if (cfg->norigins >= MAX_ORIGINS) {
        set_err(err, errcap, "--allow-origin: at most %d origins", MAX_ORIGINS);
        return -1;
    }
    char *o = normalise_origin(s, len);
    if (!o) {
        set_err(err, errcap,
                "--allow-origin: expected scheme://host[:port] (e.g. https://docs.example.org), "
                "got '%.*s'",
                (int)(len > 200 ? 200 : len), s);
        return -1;
    }
    char **n = realloc(cfg->origins, (cfg->norigins + 1) * sizeof *n);
    if (!n) {
        free(o);
        set_err(err, errcap, "out of memory");
        return -1;
    }
    cfg->origins = n;
    cfg->origins[cfg->norigins++] = o;
    return 0;
}

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The directory holding the running binary, or "" when /proc does not say. */
static void binary_dir(char *out, size_t cap)
{
    out[0] = '\0';
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return;
    buf[n] = '\0';
    char *slash = strrchr(buf, '/');
    if (!slash) return;
    *slash = '\0';
    if ((size_t)(slash - buf) < cap) memcpy(out, buf, (size_t)(slash - buf) + 1);
}

static int set_dir(char **slot, const char *flag, const char *path, char *err, size_t errcap)
{
    char *real = realpath(path, NULL);
    if (!real || !is_dir(real)) {
        free(real);
        set_err(err, errcap, "%s: '%s' is not a directory", flag, path);
        return -1;
    }
    free(*slot);
    *slot = real;
    return 0;
}

/* ---- the option table --------------------------------------------------------------- */

typedef enum { K_UINT, K_SIZE, K_SECONDS, K_SPECIAL } kind;

typedef struct {
    const char *name;
    kind k;
    size_t off;
    unsigned min, max;
} option;

#define OFF(f) offsetof(cp_config, f)
static const option OPTIONS[] = {
    {"--listen", K_SPECIAL, 0, 0, 0},
    {"--public-url", K_SPECIAL, 0, 0, 0},
    {"--api-key", K_SPECIAL, 0, 0, 0},
    {"--allow-origin", K_SPECIAL, 0, 0, 0},
    {"--web-root", K_SPECIAL, 0, 0, 0},
    {"--runners", K_SPECIAL, 0, 0, 0},
    {"--session-secret-file", K_SPECIAL, 0, 0, 0},
    {"--kernels", K_SPECIAL, 0, 0, 0},
    {"--kernel-pool", K_SPECIAL, 0, 0, 0},
    {"--kernels-dir", K_SPECIAL, 0, 0, 0},
    {"--kernel-idle", K_SECONDS, OFF(kernel_idle_s), 0, 0},
    {"--kernels-per-session", K_UINT, OFF(kernels_per_session), 1, CP_LANG_R},
    {"--interrupt-grace", K_SECONDS, OFF(interrupt_grace_s), 0, 0},
    {"--max-runs", K_UINT, OFF(max_runs), 1, 1024},
    {"--max-queue", K_UINT, OFF(max_queue), 1, MAX_COUNT},
    {"--timeout-default", K_SECONDS, OFF(timeout_default), 0, 0},
    {"--timeout-max", K_SECONDS, OFF(timeout_max), 0, 0},
    {"--max-code-bytes", K_SIZE, OFF(max_code_bytes), 0, 0},
    {"--max-body-bytes", K_SIZE, OFF(max_body_bytes), 0, 0},
    {"--max-output-bytes", K_SIZE, OFF(max_output_bytes), 0, 0},
    {"--memory", K_SIZE, OFF(memory_bytes), 0, 0},
    {"--pids", K_UINT, OFF(pids), 1, MAX_COUNT},
    {"--tmp-size", K_SIZE, OFF(tmp_bytes), 0, 0},
    {"--session-idle", K_SECONDS, OFF(session_idle_s), 0, 0},
    {"--max-sessions", K_UINT, OFF(max_sessions), 1, MAX_COUNT},
    {"--max-conns-per-ip", K_UINT, OFF(max_conns_per_ip), 1, MAX_COUNT},
    {"--uid-base", K_UINT, OFF(uid_base), 1000, 4000000000u},
    {"--threads", K_UINT, OFF(threads), 1, MAX_THREADS},
};

/* "python,javascript,java,r", "all" or "none" (aliases as the API takes them). */
static int parse_kernel_langs(cp_config *cfg, const char *v, char *err, size_t errcap)
{
    unsigned langs = 0;
    if (strcmp(v, "all") == 0) {
        for (int l = CP_LANG_PYTHON; l <= CP_LANG_R; l++)
            langs |= 1u << l;
    } else if (strcmp(v, "none") != 0) {
        for (const char *p = v; *p;) {
            size_t n = strcspn(p, ",");
            cp_lang l = cp_lang_parse(p, n);
            if (l == CP_LANG_NONE) {
                set_err(err, errcap, "--kernels: unknown language '%.*s'", (int)n, p);
                return -1;
            }
            langs |= 1u << l;
            p += n;
            if (*p) p++;
        }
    }
    cfg->kernel_langs = langs;
    return 0;
}

/* "python=1,r=2" (or "none"). */
static int parse_kernel_pool(cp_config *cfg, const char *v, char *err, size_t errcap)
{
    memset(cfg->kernel_pool, 0, sizeof cfg->kernel_pool);
    if (strcmp(v, "none") == 0) return 0;
    for (const char *p = v; *p;) {
        size_t n = strcspn(p, ",");
        const char *eq = memchr(p, '=', n);
        cp_lang l = eq ? cp_lang_parse(p, (size_t)(eq - p)) : CP_LANG_NONE;
        char num[16];
        size_t nl = eq ? n - (size_t)(eq + 1 - p) : 0;
        unsigned count = 0;
        if (l != CP_LANG_NONE && nl && nl < sizeof num) {
            memcpy(num, eq + 1, nl);
            num[nl] = '\0';
            if (parse_uint("--kernel-pool", num, 0, 64, &count, err, errcap)) return -1;
        } else {
            set_err(err, errcap, "--kernel-pool: expected lang=N[,lang=N...], got '%.*s'", (int)n,
                    p);
            return -1;
        }
        cfg->kernel_pool[l] = count;
        p += n;
        if (*p) p++;
    }
    return 0;
}

static int apply_special(cp_config *cfg, const char *name, const char *v, char *err, size_t errcap)
{
    if (strcmp(name, "--listen") == 0) return parse_listen(cfg, v, err, errcap);
    if (strcmp(name, "--public-url") == 0) {
        char *o = normalise_origin(v, strlen(v));
        if (!o) {
            set_err(err, errcap,
                    "--public-url: expected http(s)://host[:port] with no path, got '%s'", v);
            return -1;
        }
        free(cfg->public_url);
        cfg->public_url = o;
        return 0;
    }
    if (strcmp(name, "--api-key") == 0) {
        if (!*v) {
            set_err(err, errcap, "--api-key: the key must not be empty");
            return -1;
        }
        for (const char *q = v; *q; q++)
            if ((unsigned char)*q <= ' ' || (unsigned char)*q >= 0x7f) {
                set_err(err, errcap, "--api-key: printable ASCII without spaces only");
                return -1;
            }
        free(cfg->api_key);
        if (!(cfg->api_key = strdup(v))) {
            set_err(err, errcap, "out of memory");
            return -1;
        }
        return 0;
    }
    if (strcmp(name, "--allow-origin") == 0) {
        if (!*v) {
            set_err(err, errcap, "--allow-origin: empty origin");
            return -1;
        }
        return add_origin(cfg, v, strlen(v), err, errcap);
    }
    if (strcmp(name, "--web-root") == 0) return set_dir(&cfg->web_root, name, v, err, errcap);
    if (strcmp(name, "--runners") == 0) return set_dir(&cfg->runners_dir, name, v, err, errcap);
    if (strcmp(name, "--kernels-dir") == 0) return set_dir(&cfg->kernels_dir, name, v, err, errcap);
    if (strcmp(name, "--kernels") == 0) return parse_kernel_langs(cfg, v, err, errcap);
    if (strcmp(name, "--kernel-pool") == 0) return parse_kernel_pool(cfg, v, err, errcap);
    if (strcmp(name, "--session-secret-file") == 0) {
        /* Checked (or created) at start, by secret.c: it is a file to read, not a value. */
        if (!*v) {
            set_err(err, errcap, "--session-secret-file: empty path");
            return -1;
        }
        free(cfg->session_secret_file);
        if (!(cfg->session_secret_file = strdup(v))) {
            set_err(err, errcap, "out of memory");
            return -1;
        }
        return 0;
    }
    set_err(err, errcap, "unknown option %s", name);
    return -1;
}

static int apply(cp_config *cfg, const option *o, const char *v, char *err, size_t errcap)
{
    char *base = (char *)cfg;
    switch (o->k) {
    case K_UINT:
        return parse_uint(o->name, v, o->min, o->max, (unsigned *)(void *)(base + o->off), err,
                          errcap);
    case K_SIZE:
        return parse_size(o->name, v, (size_t *)(void *)(base + o->off), err, errcap);
    case K_SECONDS:
        return parse_seconds(o->name, v, (double *)(void *)(base + o->off), err, errcap);
    case K_SPECIAL:
        return apply_special(cfg, o->name, v, err, errcap);
    }
    return -1;
}

static void defaults(cp_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->max_runs = cpus > 0 ? (unsigned)(cpus > 1024 ? 1024 : cpus) : 1;
    cfg->max_queue = DEFAULT_MAX_QUEUE;
    cfg->timeout_default = DEFAULT_TIMEOUT_DEFAULT;
    cfg->timeout_max = DEFAULT_TIMEOUT_MAX;
    cfg->max_code_bytes = DEFAULT_MAX_CODE;
    cfg->max_body_bytes = DEFAULT_MAX_BODY;
    cfg->max_output_bytes = DEFAULT_MAX_OUTPUT;
    cfg->memory_bytes = DEFAULT_MEMORY;
    cfg->pids = DEFAULT_PIDS;
    cfg->tmp_bytes = DEFAULT_TMP;
    cfg->session_idle_s = DEFAULT_SESSION_IDLE;
    cfg->max_sessions = DEFAULT_MAX_SESSIONS;
    cfg->max_conns_per_ip = DEFAULT_CONNS_PER_IP;
    cfg->uid_base = DEFAULT_UID_BASE;
    cfg->kernel_idle_s = DEFAULT_KERNEL_IDLE;
    cfg->kernels_per_session = CP_LANG_R;
    cfg->interrupt_grace_s = DEFAULT_INTERRUPT_GRACE;
    parse_kernel_langs(cfg, DEFAULT_KERNEL_LANGS, NULL, 0);
    parse_kernel_pool(cfg, DEFAULT_KERNEL_POOL, NULL, 0);
}

int cp_config_parse(cp_config *cfg, int argc, char **argv, char *err, size_t errcap)
{
    defaults(cfg);
    set_err(err, errcap, "%s", "");

    /* Environment first; flags override. */
    const char *env = getenv("CODEPANE_LISTEN");
    if (env && *env && parse_listen(cfg, env, err, errcap)) goto env_fail;
    if (!env || !*env) parse_listen(cfg, DEFAULT_LISTEN, NULL, 0);
    env = getenv("CODEPANE_API_KEY");
    if (env && *env && apply_special(cfg, "--api-key", env, err, errcap)) goto env_fail;
    env = getenv("CODEPANE_ALLOWED_ORIGINS");
    if (env && *env) {
        for (const char *p = env;;) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            if (add_origin(cfg, p, len, err, errcap)) goto env_fail;
            if (!comma) break;
            p = comma + 1;
        }
    }

    bool threads_set = false, tdefault_set = false, body_set = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            cp_config_usage(stdout);
            return 1;
        }
        const char *eq = strchr(a, '=');
        size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
        const option *o = NULL;
        for (size_t k = 0; k < sizeof OPTIONS / sizeof OPTIONS[0]; k++)
            if (strlen(OPTIONS[k].name) == nlen && strncmp(OPTIONS[k].name, a, nlen) == 0)
                o = &OPTIONS[k];
        if (!o) {
            set_err(err, errcap, "unknown option '%.100s' (see --help)", a);
            return -1;
        }
        const char *v = eq ? eq + 1 : NULL;
        if (!v) {
            if (i + 1 >= argc) {
                set_err(err, errcap, "%s needs a value (see --help)", o->name);
                return -1;
            }
            v = argv[++i];
        }
        if (apply(cfg, o, v, err, errcap)) return -1;
        if (strcmp(o->name, "--threads") == 0) threads_set = true;
        if (strcmp(o->name, "--timeout-default") == 0) tdefault_set = true;
        if (strcmp(o->name, "--max-body-bytes") == 0) body_set = true;
    }

    /* Cross-field checks. A default that was not asked for follows the limit it must
     * fit: --timeout-max 30 alone lowers the default timeout to 30, --max-code-bytes 4M
     * alone raises the body cap to 4M plus the default margin. */
    if (!tdefault_set && cfg->timeout_default > cfg->timeout_max)
        cfg->timeout_default = cfg->timeout_max;
    if (!body_set &&
        cfg->max_body_bytes < cfg->max_code_bytes + (DEFAULT_MAX_BODY - DEFAULT_MAX_CODE))
        cfg->max_body_bytes = cfg->max_code_bytes + (DEFAULT_MAX_BODY - DEFAULT_MAX_CODE);
    if (cfg->timeout_default > cfg->timeout_max) {
        set_err(err, errcap, "--timeout-default (%g) must not exceed --timeout-max (%g)",
                cfg->timeout_default, cfg->timeout_max);
        return -1;
    }
    if (cfg->max_body_bytes < cfg->max_code_bytes) {
        set_err(err, errcap,
                "--max-body-bytes (%zu) must be at least --max-code-bytes (%zu): the body "
                "carries the code, JSON-escaped",
                cfg->max_body_bytes, cfg->max_code_bytes);
        return -1;
    }
    if (cfg->max_body_bytes > (size_t)INT32_MAX) {
        set_err(err, errcap, "--max-body-bytes must be below 2G");
        return -1;
    }
    unsigned reserve = cfg->max_runs + cfg->max_queue + CP_SRV_HTTP_SPARE_THREADS;
    if (!threads_set) {
        cfg->threads = reserve + CP_SRV_THREADS_DEFAULT;
        if (cfg->threads > MAX_THREADS) cfg->threads = MAX_THREADS;
    }
    if (cfg->threads < reserve + CP_SRV_WS_MIN_CONNS) {
        set_err(err, errcap,
                "--threads %u is too small: it must be at least max-runs + max-queue + %d = %u "
                "(each waiting HTTP run and each WebSocket holds a thread)",
                cfg->threads, CP_SRV_HTTP_SPARE_THREADS + CP_SRV_WS_MIN_CONNS,
                reserve + CP_SRV_WS_MIN_CONNS);
        return -1;
    }
    cfg->ws_max_conns = cfg->threads - reserve;

    /* Directories next to the binary: the site ./build.sh web assembles
     * (build/server/codepane-server → build/web) and the kernels (build/server/kernels). */
    char bin[PATH_MAX];
    binary_dir(bin, sizeof bin);
    char *p = NULL;
    if (!cfg->web_root && bin[0] && asprintf(&p, "%s/../web", bin) > 0) {
        if (is_dir(p)) cfg->web_root = realpath(p, NULL);
        free(p);
        p = NULL;
    }
    if (!cfg->kernels_dir && bin[0] && asprintf(&p, "%s/kernels", bin) > 0) {
        if (is_dir(p)) cfg->kernels_dir = realpath(p, NULL);
        free(p);
        p = NULL;
    }
    if (!cfg->runners_dir) {
        if (asprintf(&p, "%s/../../src/server/runners", bin[0] ? bin : ".") < 0) {
            set_err(err, errcap, "out of memory");
            return -1;
        }
        if (!is_dir(p)) {
            set_err(
                err, errcap,
                "no runners directory at %s (the default next to the binary); pass --runners DIR",
                p);
            free(p);
            return -1;
        }
        cfg->runners_dir = realpath(p, NULL);
        free(p);
        if (!cfg->runners_dir) {
            set_err(err, errcap, "--runners: cannot resolve the default runners directory");
            return -1;
        }
    }
    return 0;

env_fail:
    /* Name the variable rather than the flag. */
    {
        char tmp[512];
        snprintf(tmp, sizeof tmp, "environment: %s", err);
        set_err(err, errcap, "%s", tmp);
    }
    return -1;
}

int cp_config_finish(cp_config *cfg, unsigned port)
{
    cfg->port = port;
    if (cfg->public_url) return 0;
    char buf[128];
    if (cfg->listen_v6)
        snprintf(buf, sizeof buf, "http://[%s]:%u", cfg->listen_addr, port);
    else
        snprintf(buf, sizeof buf, "http://%s:%u", cfg->listen_addr, port);
    cfg->public_url = lower_dup(buf, strlen(buf));
    return cfg->public_url ? 0 : -1;
}

void cp_config_free(cp_config *cfg)
{
    if (!cfg) return;
    free(cfg->public_url);
    if (cfg->api_key) {
        explicit_bzero(cfg->api_key, strlen(cfg->api_key));
        free(cfg->api_key);
    }
    for (size_t i = 0; i < cfg->norigins; i++)
        free(cfg->origins[i]);
    free(cfg->origins);
    free(cfg->web_root);
    free(cfg->runners_dir);
    free(cfg->kernels_dir);
    free(cfg->session_secret_file);
    memset(cfg, 0, sizeof *cfg);
}
