/* utf8: incremental cleaning agrees with the WHATWG decoder (TextDecoder) and never cuts
 * a code point; sandbox.md §2 C1–C3. */
#include <stdlib.h>

#include "check.h"
#include "utf8.h"

#define FFFD "\xEF\xBF\xBD"

/* Clean `in` fed in pieces of `step` bytes (0: all at once) and compare with `want`. */
static void check_clean(const char *in, size_t inlen, size_t step, const char *want, size_t wantlen,
                        int line)
{
    cp_utf8 st;
    cp_utf8_init(&st);
    char *out = malloc(CP_UTF8_OUT_MAX(inlen) + 3);
    size_t n = 0;
    if (step == 0) step = inlen ? inlen : 1;
    for (size_t i = 0; i < inlen; i += step) {
        size_t piece = inlen - i < step ? inlen - i : step;
        size_t wrote = cp_utf8_feed(&st, in + i, piece, out + n);
        if (wrote > CP_UTF8_OUT_MAX(piece)) cp_check_fail(__FILE__, line, "feed overran its bound");
        if (!cp_utf8_valid(out + n, wrote)) cp_check_fail(__FILE__, line, "a piece was not valid UTF-8");
        n += wrote;
    }
    n += cp_utf8_finish(&st, out + n);
    if (n != wantlen || memcmp(out, want, wantlen) != 0)
        cp_check_fail(__FILE__, line, "step %zu: got %zu bytes, want %zu", step, n, wantlen);
    free(out);
}

#define CLEAN(in, want)                                                                  \
    do {                                                                                 \
        for (size_t s_ = 0; s_ <= 5; s_++)                                               \
            check_clean(in, sizeof(in) - 1, s_, want, sizeof(want) - 1, __LINE__);       \
    } while (0)

TEST(utf8_valid_text_passes_through_unchanged)
{
    CLEAN("h\xC3\xA9llo \xE2\x9C\x93 \xF0\x9F\x98\x80", "h\xC3\xA9llo \xE2\x9C\x93 \xF0\x9F\x98\x80");
    CLEAN("", "");
}

TEST(utf8_invalid_bytes_become_one_replacement_each_c1)
{
    /* C1: sys.stdout.buffer.write(b'\xff\xfe\x00A') */
    CLEAN("A\xFF\xFE\x00" "A", "A" FFFD FFFD "\x00" "A");
    CLEAN("\x80\xBF", FFFD FFFD);
    CLEAN("\xC0\xAF", FFFD FFFD);                        /* overlong lead bytes */
    CLEAN("\xF8\x88\x80\x80\x80", FFFD FFFD FFFD FFFD FFFD); /* 5-byte form */
}

TEST(utf8_maximal_subpart_gives_one_replacement)
{
    CLEAN("\xF0\x9F\x98" "A", FFFD "A"); /* truncated 4-byte sequence, then ASCII */
    CLEAN("\xE2\x82" "x", FFFD "x");
}

TEST(utf8_surrogates_overlongs_and_out_of_range_are_rejected_per_byte)
{
    CLEAN("\xED\xA0\x80", FFFD FFFD FFFD);      /* U+D800 */
    CLEAN("\xF0\x80\x80\x80", FFFD FFFD FFFD FFFD); /* overlong */
    CLEAN("\xF4\x90\x80\x80", FFFD FFFD FFFD FFFD); /* past U+10FFFF */
    CLEAN("\xE0\x9F\x80", FFFD FFFD FFFD);      /* overlong 3-byte */
    CLEAN("\xF4\x8F\xBF\xBF", "\xF4\x8F\xBF\xBF"); /* U+10FFFF itself is fine */
}

TEST(utf8_character_split_across_feeds_arrives_whole_c2)
{
    /* C2: two bytes of an emoji, a pause, then the rest. */
    cp_utf8 st;
    char out[64];
    cp_utf8_init(&st);
    size_t n = cp_utf8_feed(&st, "ok \xF0\x9F", 5, out);
    CHECK_MEM(out, n, "ok ", 3);
    n = cp_utf8_feed(&st, "\x98\x80!", 3, out);
    CHECK_MEM(out, n, "\xF0\x9F\x98\x80!", 5);
    CHECK_INT(cp_utf8_finish(&st, out), 0);
}

TEST(utf8_incomplete_sequence_at_end_is_one_replacement_c3)
{
    cp_utf8 st;
    char out[64];
    cp_utf8_init(&st);
    size_t n = cp_utf8_feed(&st, "x\xE2\x82", 3, out);
    CHECK_MEM(out, n, "x", 1);
    n = cp_utf8_finish(&st, out);
    CHECK_MEM(out, n, FFFD, 3);
    CHECK_INT(cp_utf8_finish(&st, out), 0); /* the state is clean afterwards */
}

TEST(utf8_valid_checks_whole_sequences)
{
    CHECK(cp_utf8_valid("", 0));
    CHECK(cp_utf8_valid("a\x00" "b", 3));
    CHECK(cp_utf8_valid("\xE2\x82\xAC", 3));
    CHECK(!cp_utf8_valid("\xE2\x82", 2));
    CHECK(!cp_utf8_valid("\xED\xA0\x80", 3));
    CHECK(!cp_utf8_valid("\xFF", 1));
}
