/* codepane core: incremental UTF-8 cleaning for byte streams (a child's stdout read in
 * arbitrary pieces). Output is always valid UTF-8: a code point is never cut between two
 * outputs, and each maximal invalid subsequence becomes one U+FFFD, exactly as the WHATWG
 * Encoding Standard's decoder (TextDecoder) does, so server and browser agree.
 *
 * Ownership: the caller owns the state and every buffer; nothing here allocates. */
#ifndef CP_UTF8_H
#define CP_UTF8_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    unsigned char pending[4]; /* an incomplete sequence carried to the next feed */
    size_t npending;
} cp_utf8;

/* Bytes of output that can result from feeding `len` bytes (worst case: every byte,
 * and the carried tail, turns into a 3-byte U+FFFD). */
#define CP_UTF8_OUT_MAX(len) (3 * ((len) + 4))

void cp_utf8_init(cp_utf8 *st);

/* Clean `len` input bytes. Writes at most CP_UTF8_OUT_MAX(len) bytes to out (which must
 * have room for that many) and returns how many it wrote. A trailing incomplete but
 * so-far valid sequence is held back until the next call. */
size_t cp_utf8_feed(cp_utf8 *st, const void *in, size_t len, char *out);

/* End of stream: a held-back incomplete sequence becomes one U+FFFD. Writes at most 3
 * bytes to out and returns how many. */
size_t cp_utf8_finish(cp_utf8 *st, char *out);

/* True when s[0..len) is valid UTF-8 (no surrogates, no overlongs, ≤ U+10FFFF). */
bool cp_utf8_valid(const void *s, size_t len);

#endif
