/* codepane client: cJSON's number conversions, done by JavaScript.
 *
 * cJSON formats numbers with sprintf("%1.15g"/"%1.17g"), checks them with sscanf("%lg")
 * and reads them with strtod. In WebAssembly those pull in musl's floating-point printf
 * and scanf with 128-bit long double arithmetic, about two thirds of the client's wasm.
 * The wasm build compiles cJSON.c with -Dsprintf=cp_cjson_sprintf -Dsscanf=cp_cjson_sscanf
 * -Dstrtod=cp_cjson_strtod (build.sh), and these route the conversions to JS, whose
 * Number → string is the shortest text that reads back to the same double, so the
 * "%1.15g, else %1.17g" round-trip check always passes on the first try. Both forms are
 * valid JSON for the same value (JS writes 1e+21 where %1.17g writes 1.0000000000000000e+21).
 *
 * Only the formats cJSON 1.7.15 uses are handled: "%1.15g", "%1.17g", "null", "u%04x"
 * and "%i.%i.%i" (cJSON_Version). */
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

/* Defined in hooks.js. */
extern int cp_js_format_double(double d, char *buf, int cap);
extern double cp_js_strtod(const char *s, char **end);

/* cJSON's number_buffer is 26 bytes; the longest JS number text is 24. */
#define NUMBER_BUFFER 26

static int put_uint(char *buf, unsigned v, int min_digits, int base)
{
    char tmp[16];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v % (unsigned)base];
        v /= (unsigned)base;
    } while (v);
    while (n < min_digits)
        tmp[n++] = '0';
    for (int i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    buf[n] = '\0';
    return n;
}

int cp_cjson_sprintf(char *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = 0;
    if (strcmp(fmt, "%1.15g") == 0 || strcmp(fmt, "%1.17g") == 0) {
        n = cp_js_format_double(va_arg(ap, double), buf, NUMBER_BUFFER);
    } else if (strcmp(fmt, "u%04x") == 0) {
        buf[0] = 'u';
        n = 1 + put_uint(buf + 1, va_arg(ap, unsigned), 4, 16);
    } else if (strcmp(fmt, "%i.%i.%i") == 0) {
        for (int i = 0; i < 3; i++) {
            if (i) buf[n++] = '.';
            n += put_uint(buf + n, (unsigned)va_arg(ap, int), 1, 10);
        }
    } else { /* "null" and any other constant text */
        n = (int)strlen(fmt);
        memcpy(buf, fmt, (size_t)n + 1);
    }
    va_end(ap);
    return n;
}

/* Only sscanf(s, "%lg", &d) is used: the round-trip check. */
int cp_cjson_sscanf(const char *s, const char *fmt, ...)
{
    (void)fmt;
    va_list ap;
    va_start(ap, fmt);
    double *out = va_arg(ap, double *);
    char *end;
    *out = cp_js_strtod(s, &end);
    va_end(ap);
    return end != s;
}

double cp_cjson_strtod(const char *s, char **end)
{
    return cp_js_strtod(s, end);
}
