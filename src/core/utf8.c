/* codepane core: incremental UTF-8 cleaning (see utf8.h). The decoder is the WHATWG
 * Encoding Standard's UTF-8 decoder with the code point kept as its bytes: the state is
 * only the bytes of the sequence begun so far, and the lead byte fixes how many
 * continuation bytes follow and the narrower range of the first one. */
#include "utf8.h"

#include <string.h>

static const char replacement[3] = {(char)0xEF, (char)0xBF, (char)0xBD};

/* Continuation bytes a lead byte announces, or 0 for a byte that cannot start one. */
static size_t continuation_count(unsigned char lead)
{
    if (lead >= 0xC2 && lead <= 0xDF) return 1;
    if (lead >= 0xE0 && lead <= 0xEF) return 2;
    if (lead >= 0xF0 && lead <= 0xF4) return 3;
    return 0;
}

/* Whether b may be continuation byte number `pos` (1-based) after `lead`. The first one
 * excludes overlongs (E0, F0), surrogates (ED) and code points past U+10FFFF (F4). */
static int continuation_ok(unsigned char lead, size_t pos, unsigned char b)
{
    unsigned char lo = 0x80, hi = 0xBF;
    if (pos == 1) {
        if (lead == 0xE0) lo = 0xA0;
        else if (lead == 0xED) hi = 0x9F;
        else if (lead == 0xF0) lo = 0x90;
        else if (lead == 0xF4) hi = 0x8F;
    }
    return b >= lo && b <= hi;
}

void cp_utf8_init(cp_utf8 *st)
{
    memset(st, 0, sizeof *st);
}

size_t cp_utf8_feed(cp_utf8 *st, const void *in, size_t len, char *out)
{
    const unsigned char *p = in;
    char *o = out;
    size_t i = 0;
    while (i < len) {
        unsigned char b = p[i];
        if (st->npending == 0) {
            i++;
            if (b < 0x80) {
                *o++ = (char)b;
            } else if (continuation_count(b)) {
                st->pending[st->npending++] = b;
            } else {
                memcpy(o, replacement, 3), o += 3;
            }
            continue;
        }
        if (!continuation_ok(st->pending[0], st->npending, b)) {
            /* The sequence so far is one maximal invalid subpart: one U+FFFD, then this
             * byte starts afresh (it is not consumed here). */
            memcpy(o, replacement, 3), o += 3;
            st->npending = 0;
            continue;
        }
        i++;
        st->pending[st->npending++] = b;
        if (st->npending == 1 + continuation_count(st->pending[0])) {
            memcpy(o, st->pending, st->npending), o += st->npending;
            st->npending = 0;
        }
    }
    return (size_t)(o - out);
}

size_t cp_utf8_finish(cp_utf8 *st, char *out)
{
    if (st->npending == 0) return 0;
    st->npending = 0;
    memcpy(out, replacement, 3);
    return 3;
}

bool cp_utf8_valid(const void *s, size_t len)
{
    const unsigned char *p = s;
    size_t i = 0;
    while (i < len) {
        size_t n = p[i] < 0x80 ? 0 : continuation_count(p[i]);
        if (p[i] >= 0x80 && n == 0) return false;
        if (len - i < n + 1) return false;
        for (size_t k = 1; k <= n; k++)
            if (!continuation_ok(p[i], k, p[i + k])) return false;
        i += n + 1;
    }
    return true;
}
