/* Unit tests of src/server/wsproto (the RFC 6455 parser, frame writer and handshake
 * helpers), with no sockets: frames are built here byte by byte, fed whole, in pieces and
 * one byte at a time. Prints one line per failed check and ends with "N passed, N failed";
 * exit status 1 on any failure. Built and run by ./build.sh test (ASan, UBSan). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wsproto.h"

static int check_failures; /* in the test running now */
static const char *current;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            check_failures++;                                                                      \
            fprintf(stderr, "  %s:%d: %s: check failed: %s\n", __FILE__, __LINE__, current,        \
                    #cond);                                                                        \
        }                                                                                          \
    } while (0)

/* ---- building client frames ------------------------------------------------------------ */

typedef struct {
    uint8_t *b;
    size_t len, cap;
} buf;

static void put(buf *o, const void *p, size_t n)
{
    if (o->len + n > o->cap) {
        o->cap = (o->len + n) * 2 + 64;
        o->b = realloc(o->b, o->cap);
        if (!o->b) abort();
    }
    memcpy(o->b + o->len, p, n);
    o->len += n;
}

typedef struct {
    unsigned opcode;
    bool fin;
    unsigned rsv; /* 0..7, as the three RSV bits */
    bool unmasked;
    bool force_len; /* declare `declared` instead of the payload's length */
    uint64_t declared;
} fopt;

/* A client frame (masked with a fixed key unless opt.unmasked) appended to o. */
static void frame(buf *o, fopt opt, const void *payload, size_t n)
{
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    uint64_t len = opt.force_len ? opt.declared : n;
    uint8_t h[14];
    size_t hl = 0;
    h[hl++] = (uint8_t)((opt.fin ? 0x80 : 0) | ((opt.rsv & 7) << 4) | (opt.opcode & 0x0f));
    uint8_t m = opt.unmasked ? 0 : 0x80;
    if (len < 126) {
        h[hl++] = (uint8_t)(m | len);
    } else if (len <= 0xffff) {
        h[hl++] = m | 126;
        h[hl++] = (uint8_t)(len >> 8);
        h[hl++] = (uint8_t)len;
    } else {
        h[hl++] = m | 127;
        for (int i = 7; i >= 0; i--)
            h[hl++] = (uint8_t)(len >> (8 * i));
    }
    if (!opt.unmasked) {
        memcpy(h + hl, key, 4);
        hl += 4;
    }
    put(o, h, hl);
    const uint8_t *p = payload;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = opt.unmasked ? p[i] : (uint8_t)(p[i] ^ key[i & 3]);
        put(o, &c, 1);
    }
}

static void text(buf *o, const char *s)
{
    frame(o, (fopt){.opcode = CP_WS_OP_TEXT, .fin = true}, s, strlen(s));
}

static void close_frame(buf *o, unsigned code, const void *reason, size_t rlen)
{
    uint8_t p[200];
    p[0] = (uint8_t)(code >> 8);
    p[1] = (uint8_t)code;
    memcpy(p + 2, reason, rlen);
    frame(o, (fopt){.opcode = CP_WS_OP_CLOSE, .fin = true}, p, rlen + 2);
}

/* ---- driving the parser ---------------------------------------------------------------- */

#define MAX_EVENTS 16

typedef struct {
    cp_wsp_kind kind;
    bool binary;
    unsigned code;
    char data[256];
    size_t len;
    size_t consumed_at; /* total bytes consumed when the event came */
} rec;

typedef struct {
    rec ev[MAX_EVENTS];
    size_t n;
    size_t consumed;
} trace;

/* Feed `in` in pieces of `step` bytes (0: all at once), calling again until NEED_MORE
 * after each piece, recording every event. */
static void run(cp_wsp *p, const uint8_t *in, size_t len, size_t step, trace *t)
{
    memset(t, 0, sizeof *t);
    size_t off = 0;
    do {
        size_t piece = step && len - off > step ? step : len - off;
        size_t used = 0;
        for (;;) {
            cp_wsp_event ev;
            used += cp_wsp_feed(p, in + off + used, piece - used, &ev);
            if (ev.kind == CP_WSP_NEED_MORE) break;
            if (t->n < MAX_EVENTS) {
                rec *r = &t->ev[t->n++];
                r->kind = ev.kind;
                r->binary = ev.binary;
                r->code = ev.code;
                r->len = ev.len;
                if (ev.len < sizeof r->data && ev.data) memcpy(r->data, ev.data, ev.len);
                if (ev.kind == CP_WSP_FAIL) snprintf(r->data, sizeof r->data, "%s", ev.reason);
                r->consumed_at = off + used;
            }
        }
        off += piece;
    } while (off < len);
    t->consumed = off;
}

/* Parse `in` with a fresh parser of cap `cap`, whole and one byte at a time: both must
 * give the same events. Returns the whole-buffer trace in *t. */
static void parse(const buf *in, size_t cap, trace *t)
{
    cp_wsp p;
    cp_wsp_init(&p, cap);
    run(&p, in->b, in->len, 0, t);
    cp_wsp_free(&p);
    trace bytewise;
    cp_wsp_init(&p, cap);
    run(&p, in->b, in->len, 1, &bytewise);
    cp_wsp_free(&p);
    CHECK(bytewise.n == t->n);
    for (size_t i = 0; i < t->n && i < bytewise.n; i++) {
        CHECK(bytewise.ev[i].kind == t->ev[i].kind);
        CHECK(bytewise.ev[i].code == t->ev[i].code);
        CHECK(bytewise.ev[i].len == t->ev[i].len);
    }
}

static bool fails_with(const buf *in, size_t cap, unsigned code)
{
    trace t;
    parse(in, cap, &t);
    return t.n >= 1 && t.ev[0].kind == CP_WSP_FAIL && t.ev[0].code == code;
}

/* ---- tests ------------------------------------------------------------------------------ */

static void accept_matches_rfc_example(void)
{
    char out[CP_WS_ACCEPT_SIZE];
    cp_wsp_accept("dGhlIHNhbXBsZSBub25jZQ==", out); /* RFC 6455 §1.3 */
    CHECK(strcmp(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);
}

static void key_must_be_base64_of_16_bytes(void)
{
    CHECK(cp_wsp_key_valid("dGhlIHNhbXBsZSBub25jZQ=="));
    CHECK(cp_wsp_key_valid("AAAAAAAAAAAAAAAAAAAAAA=="));
    CHECK(!cp_wsp_key_valid(NULL));
    CHECK(!cp_wsp_key_valid(""));
    CHECK(!cp_wsp_key_valid("dGhlIHNhbXBsZSBub25jZQ="));   /* 23 chars */
    CHECK(!cp_wsp_key_valid("dGhlIHNhbXBsZSBub25jZQ===")); /* 25 chars */
    CHECK(!cp_wsp_key_valid("dGhlIHNhbXBsZSBub25jZQAA"));  /* 18 bytes */
    CHECK(!cp_wsp_key_valid("dGhlIHNhbXBsZSBub25j*Q=="));  /* not base64 */
    CHECK(!cp_wsp_key_valid("dGhlIHNhbXBsZSBub25j Q=="));  /* a space */
    CHECK(!cp_wsp_key_valid("c2hvcnQ="));                  /* 5 bytes */
}

static void header_lists_are_matched_by_element(void)
{
    CHECK(cp_wsp_list_has("Upgrade", "upgrade"));
    CHECK(cp_wsp_list_has("keep-alive, Upgrade", "upgrade"));
    CHECK(cp_wsp_list_has(" keep-alive ,\tUPGRADE\t", "upgrade"));
    CHECK(!cp_wsp_list_has("keep-alive", "upgrade"));
    CHECK(!cp_wsp_list_has("upgrades", "upgrade"));
    CHECK(!cp_wsp_list_has("", "upgrade"));
    CHECK(!cp_wsp_list_has(NULL, "upgrade"));
}

static void rfc_masked_hello_is_one_message(void)
{
    /* RFC 6455 §5.7: a single-frame masked text message "Hello". */
    static const uint8_t hello[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                    0x7f, 0x9f, 0x4d, 0x51, 0x58};
    buf in = {0};
    put(&in, hello, sizeof hello);
    trace t;
    parse(&in, 1024, &t);
    CHECK(t.n == 1);
    CHECK(t.ev[0].kind == CP_WSP_MESSAGE);
    CHECK(!t.ev[0].binary);
    CHECK(t.ev[0].len == 5 && memcmp(t.ev[0].data, "Hello", 5) == 0);
    CHECK(t.ev[0].consumed_at == sizeof hello);
    free(in.b);
}

static void fragments_are_joined_around_a_ping(void)
{
    buf in = {0};
    frame(&in, (fopt){.opcode = CP_WS_OP_TEXT}, "Hel", 3);
    frame(&in, (fopt){.opcode = CP_WS_OP_PING, .fin = true}, "p!", 2);
    frame(&in, (fopt){.opcode = CP_WS_OP_CONT}, "l", 1);
    frame(&in, (fopt){.opcode = CP_WS_OP_CONT, .fin = true}, "o", 1);
    trace t;
    parse(&in, 1024, &t);
    CHECK(t.n == 2);
    CHECK(t.ev[0].kind == CP_WSP_PING && t.ev[0].len == 2 && memcmp(t.ev[0].data, "p!", 2) == 0);
    CHECK(t.ev[1].kind == CP_WSP_MESSAGE && t.ev[1].len == 5 &&
          memcmp(t.ev[1].data, "Hello", 5) == 0);
    free(in.b);
}

static void several_frames_in_one_buffer_come_one_event_at_a_time(void)
{
    buf in = {0};
    text(&in, "a");
    frame(&in, (fopt){.opcode = CP_WS_OP_BINARY, .fin = true}, "\xff\xfe", 2);
    frame(&in, (fopt){.opcode = CP_WS_OP_PONG, .fin = true}, "", 0);
    text(&in, "");
    trace t;
    parse(&in, 1024, &t);
    CHECK(t.n == 4);
    CHECK(t.ev[0].kind == CP_WSP_MESSAGE && t.ev[0].len == 1 && t.ev[0].consumed_at == 7);
    CHECK(t.ev[1].kind == CP_WSP_MESSAGE && t.ev[1].binary && t.ev[1].len == 2);
    CHECK(t.ev[2].kind == CP_WSP_PONG && t.ev[2].len == 0);
    CHECK(t.ev[3].kind == CP_WSP_MESSAGE && !t.ev[3].binary && t.ev[3].len == 0);
    CHECK(t.ev[3].consumed_at == in.len);
    free(in.b);
}

static void malformed_frames_fail_with_1002(void)
{
    struct {
        const char *name;
        fopt opt;
        size_t len;
    } cases[] = {
        {"unmasked", {.opcode = CP_WS_OP_TEXT, .fin = true, .unmasked = true}, 2},
        {"rsv1", {.opcode = CP_WS_OP_TEXT, .fin = true, .rsv = 4}, 2},
        {"rsv3", {.opcode = CP_WS_OP_TEXT, .fin = true, .rsv = 1}, 2},
        {"opcode 3", {.opcode = 3, .fin = true}, 1},
        {"opcode 0xB", {.opcode = 0xb, .fin = true}, 1},
        {"fragmented ping", {.opcode = CP_WS_OP_PING}, 1},
        {"126-byte ping", {.opcode = CP_WS_OP_PING, .fin = true}, 126},
        {"126-byte close", {.opcode = CP_WS_OP_CLOSE, .fin = true}, 126},
        {"continuation first", {.opcode = CP_WS_OP_CONT, .fin = true}, 1},
    };
    uint8_t payload[200];
    memset(payload, 'x', sizeof payload);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        current = cases[i].name;
        buf in = {0};
        frame(&in, cases[i].opt, payload, cases[i].len);
        CHECK(fails_with(&in, 1024, CP_WS_CLOSE_PROTOCOL));
        free(in.b);
    }
    current = "new message inside a fragmented one";
    buf in = {0};
    frame(&in, (fopt){.opcode = CP_WS_OP_TEXT}, "{\"a\":", 5);
    text(&in, "1}");
    CHECK(fails_with(&in, 1024, CP_WS_CLOSE_PROTOCOL));
    free(in.b);
}

static void a_length_with_the_top_bit_set_fails_and_discards_everything(void)
{
    buf in = {0};
    frame(&in,
          (fopt){.opcode = CP_WS_OP_TEXT, .fin = true, .force_len = true, .declared = 1ull << 63},
          "x", 1);
    close_frame(&in, 1000, "", 0);
    trace t;
    parse(&in, 1024, &t);
    CHECK(t.n == 1 && t.ev[0].kind == CP_WSP_FAIL && t.ev[0].code == CP_WS_CLOSE_PROTOCOL);
    CHECK(t.consumed == in.len);
    free(in.b);
}

static void a_declared_length_over_the_cap_fails_before_the_mask_key(void)
{
    /* 1 GiB declared: 1009 once the 8 length bytes are in, nothing allocated. */
    buf in = {0};
    frame(&in,
          (fopt){.opcode = CP_WS_OP_TEXT, .fin = true, .force_len = true, .declared = 1ull << 30},
          "{\"invocationId\":", 16);
    cp_wsp p;
    cp_wsp_init(&p, 2u << 20);
    cp_wsp_event ev;
    size_t used = cp_wsp_feed(&p, in.b, in.len, &ev);
    CHECK(ev.kind == CP_WSP_FAIL && ev.code == CP_WS_CLOSE_TOO_BIG);
    CHECK(used == 10); /* 2 header bytes and the 8 length bytes: the mask key is not needed */
    CHECK(p.msg == NULL && p.msg_cap == 0);
    cp_wsp_free(&p);
    free(in.b);

    /* 16-bit length: 1000 bytes against a cap of 100. */
    buf small = {0};
    frame(&small, (fopt){.opcode = CP_WS_OP_TEXT, .fin = true, .force_len = true, .declared = 1000},
          "", 0);
    cp_wsp_init(&p, 100);
    used = cp_wsp_feed(&p, small.b, small.len, &ev);
    CHECK(ev.kind == CP_WSP_FAIL && ev.code == CP_WS_CLOSE_TOO_BIG && used == 4);
    cp_wsp_free(&p);
    free(small.b);
}

static void the_cap_counts_every_fragment(void)
{
    uint8_t x[60];
    memset(x, 'x', sizeof x);
    buf in = {0};
    frame(&in, (fopt){.opcode = CP_WS_OP_TEXT}, x, 60);
    frame(&in, (fopt){.opcode = CP_WS_OP_CONT, .fin = true}, x, 60);
    CHECK(fails_with(&in, 100, CP_WS_CLOSE_TOO_BIG));
    free(in.b);

    /* Exactly at the cap is fine; one byte more is not. */
    buf at = {0};
    frame(&at, (fopt){.opcode = CP_WS_OP_TEXT}, x, 40);
    frame(&at, (fopt){.opcode = CP_WS_OP_CONT, .fin = true}, x, 60);
    trace t;
    parse(&at, 100, &t);
    CHECK(t.n == 1 && t.ev[0].kind == CP_WSP_MESSAGE && t.ev[0].len == 100);
    CHECK(fails_with(&at, 99, CP_WS_CLOSE_TOO_BIG));
    free(at.b);
}

static void after_a_failure_only_the_close_frame_is_reported(void)
{
    /* An oversized frame whose payload does arrive, then data, a ping, the close. */
    uint8_t big[300];
    memset(big, 'b', sizeof big);
    buf in = {0};
    frame(&in, (fopt){.opcode = CP_WS_OP_TEXT, .fin = true}, big, sizeof big);
    text(&in, "ignored");
    frame(&in, (fopt){.opcode = CP_WS_OP_PING, .fin = true}, "p", 1);
    close_frame(&in, 1009, "", 0);
    text(&in, "after close");
    trace t;
    parse(&in, 100, &t);
    CHECK(t.n == 2);
    CHECK(t.ev[0].kind == CP_WSP_FAIL && t.ev[0].code == CP_WS_CLOSE_TOO_BIG);
    CHECK(t.ev[1].kind == CP_WSP_CLOSE && t.ev[1].code == 1009);
    CHECK(t.consumed == in.len);

    /* An unmasked frame (framing intact), then the client's close. */
    buf un = {0};
    frame(&un, (fopt){.opcode = CP_WS_OP_TEXT, .fin = true, .unmasked = true}, "{}", 2);
    close_frame(&un, 1002, "", 0);
    parse(&un, 100, &t);
    CHECK(t.n == 2 && t.ev[0].kind == CP_WSP_FAIL && t.ev[1].kind == CP_WSP_CLOSE);
    CHECK(t.ev[1].code == 1002);
    free(un.b);
    free(in.b);
}

static void drain_drops_messages_but_reports_the_close(void)
{
    buf in = {0};
    text(&in, "late");
    close_frame(&in, 1000, "ok", 2);
    cp_wsp p;
    cp_wsp_init(&p, 100);
    cp_wsp_drain(&p);
    trace t;
    run(&p, in.b, in.len, 0, &t);
    CHECK(t.n == 1 && t.ev[0].kind == CP_WSP_CLOSE && t.ev[0].code == 1000);
    CHECK(cp_wsp_peer_closed(&p));
    cp_wsp_free(&p);
    free(in.b);
}

static void close_frames_are_checked(void)
{
    trace t;
    buf in = {0};
    close_frame(&in, 1000, "bye", 3);
    parse(&in, 100, &t);
    CHECK(t.n == 1 && t.ev[0].kind == CP_WSP_CLOSE && t.ev[0].code == 1000);
    CHECK(t.ev[0].len == 3 && memcmp(t.ev[0].data, "bye", 3) == 0);
    free(in.b);

    buf empty = {0};
    frame(&empty, (fopt){.opcode = CP_WS_OP_CLOSE, .fin = true}, "", 0);
    parse(&empty, 100, &t);
    CHECK(t.n == 1 && t.ev[0].kind == CP_WSP_CLOSE && t.ev[0].code == 0 && t.ev[0].len == 0);
    free(empty.b);

    buf one = {0};
    frame(&one, (fopt){.opcode = CP_WS_OP_CLOSE, .fin = true}, "\x03", 1);
    CHECK(fails_with(&one, 100, CP_WS_CLOSE_PROTOCOL));
    free(one.b);

    unsigned bad[] = {0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        buf b = {0};
        close_frame(&b, bad[i], "", 0);
        CHECK(fails_with(&b, 100, CP_WS_CLOSE_PROTOCOL));
        free(b.b);
    }
    buf utf = {0};
    close_frame(&utf, 1000, "\xff", 1);
    CHECK(fails_with(&utf, 100, CP_WS_CLOSE_BAD_DATA));
    free(utf.b);

    /* A malformed close still counts as the client's close. */
    cp_wsp p;
    cp_wsp_init(&p, 100);
    buf c = {0};
    close_frame(&c, 1005, "", 0);
    run(&p, c.b, c.len, 0, &t);
    CHECK(cp_wsp_peer_closed(&p));
    cp_wsp_free(&p);
    free(c.b);
}

static void close_codes_follow_rfc_6455(void)
{
    unsigned good[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
                       1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        CHECK(cp_wsp_close_code_valid(good[i]));
    unsigned bad[] = {0, 1, 999, 1004, 1005, 1006, 1015, 1100, 2000, 2999, 5000};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(!cp_wsp_close_code_valid(bad[i]));
}

static void text_must_be_utf8_binary_need_not(void)
{
    buf in = {0};
    frame(&in, (fopt){.opcode = CP_WS_OP_TEXT, .fin = true}, "{\xff\xfe}", 4);
    CHECK(fails_with(&in, 100, CP_WS_CLOSE_BAD_DATA));
    free(in.b);
    buf split = {0}; /* a character split across fragments is fine */
    frame(&split, (fopt){.opcode = CP_WS_OP_TEXT}, "\xe2\x82", 2);
    frame(&split, (fopt){.opcode = CP_WS_OP_CONT, .fin = true}, "\xac", 1);
    trace t;
    parse(&split, 100, &t);
    CHECK(t.n == 1 && t.ev[0].kind == CP_WSP_MESSAGE && t.ev[0].len == 3);
    free(split.b);
    buf bin = {0};
    frame(&bin, (fopt){.opcode = CP_WS_OP_BINARY, .fin = true}, "\xff", 1);
    parse(&bin, 100, &t);
    CHECK(t.n == 1 && t.ev[0].kind == CP_WSP_MESSAGE && t.ev[0].binary);
    free(bin.b);
}

static void mid_frame_tracks_partial_frames(void)
{
    buf in = {0};
    text(&in, "abc");
    cp_wsp p;
    cp_wsp_init(&p, 100);
    cp_wsp_event ev;
    CHECK(!cp_wsp_mid_frame(&p));
    cp_wsp_feed(&p, in.b, 1, &ev);
    CHECK(cp_wsp_mid_frame(&p) && ev.kind == CP_WSP_NEED_MORE);
    cp_wsp_feed(&p, in.b + 1, 6, &ev);
    CHECK(cp_wsp_mid_frame(&p));
    cp_wsp_feed(&p, in.b + 7, in.len - 7, &ev);
    CHECK(ev.kind == CP_WSP_MESSAGE && !cp_wsp_mid_frame(&p));
    cp_wsp_free(&p);
    free(in.b);
}

static void a_large_message_buffer_is_released_after_use(void)
{
    size_t n = 200 * 1024;
    char *big = malloc(n);
    memset(big, 'a', n);
    buf in = {0};
    frame(&in, (fopt){.opcode = CP_WS_OP_TEXT, .fin = true}, big, n);
    text(&in, "x");
    cp_wsp p;
    cp_wsp_init(&p, 1 << 20);
    cp_wsp_event ev;
    size_t used = cp_wsp_feed(&p, in.b, in.len, &ev);
    CHECK(ev.kind == CP_WSP_MESSAGE && ev.len == n);
    CHECK(p.msg_cap >= n && p.msg_cap <= 2 * n);
    cp_wsp_feed(&p, in.b + used, in.len - used, &ev);
    CHECK(ev.kind == CP_WSP_MESSAGE && ev.len == 1);
    CHECK(p.msg_cap <= 64 * 1024);
    cp_wsp_free(&p);
    free(in.b);
    free(big);
}

static void server_frame_headers_use_the_shortest_length(void)
{
    uint8_t h[CP_WS_HEADER_MAX];
    CHECK(cp_wsp_frame_header(h, CP_WS_OP_TEXT, 0) == 2 && h[0] == 0x81 && h[1] == 0);
    CHECK(cp_wsp_frame_header(h, CP_WS_OP_TEXT, 125) == 2 && h[1] == 125);
    CHECK(cp_wsp_frame_header(h, CP_WS_OP_PONG, 126) == 4 && h[0] == 0x8a && h[1] == 126 &&
          h[2] == 0 && h[3] == 126);
    CHECK(cp_wsp_frame_header(h, CP_WS_OP_TEXT, 65535) == 4 && h[2] == 0xff && h[3] == 0xff);
    CHECK(cp_wsp_frame_header(h, CP_WS_OP_TEXT, 65536) == 10 && h[1] == 127 && h[7] == 1 &&
          h[8] == 0 && h[9] == 0);
}

static void close_payload_cuts_the_reason_on_a_character(void)
{
    uint8_t out[CP_WS_CONTROL_MAX];
    size_t n = cp_wsp_close_payload(out, 1009, "message too big");
    CHECK(n == 17 && out[0] == 0x03 && out[1] == 0xf1 &&
          memcmp(out + 2, "message too big", 15) == 0);
    CHECK(cp_wsp_close_payload(out, 1000, NULL) == 2);
    /* 61 two-byte characters (122 bytes) then one more: 124 > 123, cut before it. */
    char reason[200] = "";
    for (int i = 0; i < 62; i++)
        strcat(reason, "\xc3\xa9");
    n = cp_wsp_close_payload(out, 1000, reason);
    CHECK(n == 2 + 122);
}

int main(void)
{
    struct {
        const char *name;
        void (*fn)(void);
    } tests[] = {
#define T(f) {#f, f}
        T(accept_matches_rfc_example),
        T(key_must_be_base64_of_16_bytes),
        T(header_lists_are_matched_by_element),
        T(rfc_masked_hello_is_one_message),
        T(fragments_are_joined_around_a_ping),
        T(several_frames_in_one_buffer_come_one_event_at_a_time),
        T(malformed_frames_fail_with_1002),
        T(a_length_with_the_top_bit_set_fails_and_discards_everything),
        T(a_declared_length_over_the_cap_fails_before_the_mask_key),
        T(the_cap_counts_every_fragment),
        T(after_a_failure_only_the_close_frame_is_reported),
        T(drain_drops_messages_but_reports_the_close),
        T(close_frames_are_checked),
        T(close_codes_follow_rfc_6455),
        T(text_must_be_utf8_binary_need_not),
        T(mid_frame_tracks_partial_frames),
        T(a_large_message_buffer_is_released_after_use),
        T(server_frame_headers_use_the_shortest_length),
        T(close_payload_cuts_the_reason_on_a_character),
#undef T
    };
    int passed = 0, failed = 0;
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        current = tests[i].name;
        check_failures = 0;
        tests[i].fn();
        if (check_failures) {
            failed++;
            fprintf(stderr, "FAIL %s\n", tests[i].name);
        } else {
            passed++;
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
