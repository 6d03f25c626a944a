/* codepane client: the wasm build's snprintf and vsnprintf (see small_printf.h). Like
 * the C library's: output cut to n-1 bytes and NUL-terminated when n > 0, and the
 * return value is the length the whole output would have had. */
#include "small_printf.h"

#include <string.h>

/* Defined in hooks.js: the shortest round-trip text of d, NUL-terminated in buf. */
extern int cp_js_format_double(double d, char *buf, int cap);

typedef struct {
    char *s;
    size_t n, len; /* capacity, and bytes the full output needs so far */
} out;

static void put(out *o, const char *p, size_t k)
{
    if (k && o->len < o->n) {
        size_t room = o->n - 1 - o->len;
        memcpy(o->s + o->len, p, k < room ? k : room);
    }
    o->len += k;
}

int cp_small_vsnprintf(char *restrict s, size_t n, const char *restrict fmt, va_list ap)
{
    out o = {s, n, 0};
    char num[32];
    while (*fmt) {
        const char *pct = strchr(fmt, '%');
        if (!pct) {
            put(&o, fmt, strlen(fmt));
            break;
        }
        put(&o, fmt, (size_t)(pct - fmt));
        const char *c = pct + 1;
        if (c[0] == 's') {
            const char *a = va_arg(ap, const char *);
            put(&o, a ? a : "(null)", a ? strlen(a) : 6);
        } else if (c[0] == '.' && c[1] == '*' && c[2] == 's') {
            int prec = va_arg(ap, int);
            const char *a = va_arg(ap, const char *);
            size_t k = 0;
            while (a && k < (size_t)(prec < 0 ? 0 : prec) && a[k])
                k++;
            put(&o, a, k);
            c += 2;
        } else if (c[0] == 'd') {
            int v = va_arg(ap, int);
            unsigned u = v < 0 ? 0u - (unsigned)v : (unsigned)v;
            char *p = num + sizeof num;
            do
                *--p = (char)('0' + u % 10);
            while (u /= 10);
            if (v < 0) *--p = '-';
            put(&o, p, (size_t)(num + sizeof num - p));
        } else if (c[0] == 'g') {
            put(&o, num, (size_t)cp_js_format_double(va_arg(ap, double), num, sizeof num));
        } else if (c[0] == '%') {
            put(&o, "%", 1);
        } else { /* not supported: written as it stands */
            put(&o, pct, c[0] ? 2 : 1);
            if (!c[0]) break;
        }
        fmt = c + 1;
    }
    if (n) s[o.len < n ? o.len : n - 1] = '\0';
    return (int)o.len;
}

int cp_small_snprintf(char *restrict s, size_t n, const char *restrict fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = cp_small_vsnprintf(s, n, fmt, ap);
    va_end(ap);
    return r;
}
