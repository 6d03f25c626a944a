/* codepane client: force-included (-include) into every object of the wasm build.
 *
 * The core formats its messages with snprintf/vsnprintf, using only %s, %.*s and %d
 * (and %g on a server-only path). musl's printf, even its integer-only variant, is
 * about a tenth of the client's wasm; these replacements do exactly those conversions
 * and nothing else. The native build (server, unit tests) keeps libc's printf.
 *
 * Supported: %s, %.*s (precision as an int argument), %d, %g (a double, written as the
 * shortest text that reads back to it, through JS) and %%. Anything else is written as
 * it stands, so a new conversion shows up in the output rather than misbehaving
 * (tests/wasm/link.test.mjs checks every supported form through the real wasm). */
#ifndef CP_SMALL_PRINTF_H
#define CP_SMALL_PRINTF_H

#include <stdarg.h>
#include <stddef.h>

int cp_small_vsnprintf(char *restrict s, size_t n, const char *restrict fmt, va_list ap);
int cp_small_snprintf(char *restrict s, size_t n, const char *restrict fmt, ...);
#define snprintf  cp_small_snprintf
#define vsnprintf cp_small_vsnprintf

#endif
