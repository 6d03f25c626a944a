/* codepane-server: RFC 6455 WebSocket protocol logic with no I/O (see wsproto.h).
 *
 * The parser is a two-state machine over one frame at a time: HEAD collects the 2 to 14
 * header bytes and checks each field the moment it is known (the length before the mask
 * key arrives, so an oversized frame fails with nothing of it read), PAYLOAD copies and
 * unmasks, or skips, exactly the declared payload. A third state, DISCARD, swallows
 * everything once framing is lost or the client's close frame has been seen. */
#define _GNU_SOURCE
#include "wsproto.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <nettle/base64.h>
#include <nettle/sha1.h>

#include "utf8.h"

/* The message buffer starts this small and doubles as bytes arrive; one larger than
 * MSG_KEEP_MAX is freed once its message has been handed out. */
#define MSG_INITIAL  4096
#define MSG_KEEP_MAX (64 * 1024)

/* RFC 6455 §1.3. */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

static bool is_control(unsigned opcode)
{
    return (opcode & 0x8) != 0;
}

static bool known_opcode(unsigned opcode)
{
    return opcode == CP_WS_OP_CONT || opcode == CP_WS_OP_TEXT || opcode == CP_WS_OP_BINARY ||
           opcode == CP_WS_OP_CLOSE || opcode == CP_WS_OP_PING || opcode == CP_WS_OP_PONG;
}

void cp_wsp_init(cp_wsp *p, size_t max_message)
{
    memset(p, 0, sizeof *p);
    p->max_message = max_message;
    p->state = CP_WSP_S_HEAD;
}

void cp_wsp_free(cp_wsp *p)
{
    free(p->msg);
    p->msg = NULL;
    p->msg_len = p->msg_cap = 0;
}

void cp_wsp_drain(cp_wsp *p)
{
    p->draining = true;
    p->in_message = false;
    p->msg_len = 0;
    /* A data payload being kept is skipped from here on. */
    if (p->state == CP_WSP_S_PAYLOAD && !is_control(p->opcode)) p->skip = true;
}

bool cp_wsp_mid_frame(const cp_wsp *p)
{
    return (p->state == CP_WSP_S_HEAD && p->head_len > 0) || p->state == CP_WSP_S_PAYLOAD;
}

bool cp_wsp_peer_closed(const cp_wsp *p)
{
    return p->closed;
}

bool cp_wsp_close_code_valid(unsigned code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

static size_t fail(cp_wsp *p, cp_wsp_event *ev, unsigned code, const char *reason, size_t used)
{
    p->draining = true;
    p->in_message = false;
    p->msg_len = 0;
    ev->kind = CP_WSP_FAIL;
    ev->code = code;
    ev->reason = reason;
    return used;
}

/* Header bytes needed so far, given what the first two bytes say. */
static size_t head_needed(const cp_wsp *p)
{
    if (p->head_len < 2) return 2;
    unsigned len7 = p->head[1] & 0x7f;
    size_t n = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0);
    if (p->head[1] & 0x80) n += 4;
    return n;
}

static uint64_t declared_length(const cp_wsp *p)
{
    unsigned len7 = p->head[1] & 0x7f;
    if (len7 < 126) return len7;
    if (len7 == 126) return ((uint64_t)p->head[2] << 8) | p->head[3];
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p->head[2 + i];
    return v;
}

/* The first two header bytes are in: check what they say. Returns false (with *ev set)
 * when the frame fails the connection; framing still holds then. */
static bool check_first_bytes(cp_wsp *p, cp_wsp_event *ev)
{
    p->fin = (p->head[0] & 0x80) != 0;
    p->opcode = p->head[0] & 0x0f;
    if (p->draining) return true;
    unsigned len7 = p->head[1] & 0x7f;
    const char *why = NULL;
    if (p->head[0] & 0x70)
        why = "reserved bits set without an extension";
    else if (!known_opcode(p->opcode))
        why = "unknown opcode";
    else if (!(p->head[1] & 0x80))
        why = "client frames must be masked";
    else if (is_control(p->opcode) && !p->fin)
        why = "fragmented control frame";
    else if (is_control(p->opcode) && len7 > CP_WS_CONTROL_MAX)
        why = "control frame longer than 125 bytes";
    else if (p->opcode == CP_WS_OP_CONT && !p->in_message)
        why = "continuation frame without a message to continue";
    else if ((p->opcode == CP_WS_OP_TEXT || p->opcode == CP_WS_OP_BINARY) && p->in_message)
        why = "new message inside a fragmented one";
    if (!why) return true;
    fail(p, ev, CP_WS_CLOSE_PROTOCOL, why, 0);
    return false;
}

/* The length is known (the mask key may still be missing). Returns false with *ev set
 * when the frame fails the connection. */
static bool check_length(cp_wsp *p, uint64_t len, cp_wsp_event *ev)
{
    if (len >> 63) {
        /* No framing to follow after this: everything from here on is discarded. */
        p->state = CP_WSP_S_DISCARD;
        if (p->draining) return true;
        fail(p, ev, CP_WS_CLOSE_PROTOCOL, "frame length out of range", 0);
        return false;
    }
    if (p->draining || is_control(p->opcode)) return true;
    size_t have = p->in_message ? p->msg_len : 0;
    if (len > (uint64_t)(p->max_message - have)) {
        fail(p, ev, CP_WS_CLOSE_TOO_BIG, "message too big", 0);
        return false;
    }
    return true;
}

/* The whole header is in: set up reading the payload. */
static void start_payload(cp_wsp *p, uint64_t len)
{
    if (p->head[1] & 0x80)
        memcpy(p->mask, p->head + p->head_len - 4, 4);
    else
        memset(p->mask, 0, 4);
    p->remaining = len;
    p->offset = 0;
    p->control_len = 0;
    if (is_control(p->opcode))
        p->skip = len > CP_WS_CONTROL_MAX; /* only possible while draining */
    else
        p->skip = p->draining;
    if (!p->skip && !is_control(p->opcode) && p->opcode != CP_WS_OP_CONT) {
        p->in_message = true;
        p->msg_binary = p->opcode == CP_WS_OP_BINARY;
        p->msg_len = 0;
    }
    p->state = CP_WSP_S_PAYLOAD;
}

static bool grow_message(cp_wsp *p, size_t need)
{
    if (need <= p->msg_cap) return true;
    size_t ncap = p->msg_cap ? p->msg_cap : MSG_INITIAL;
    while (ncap < need)
        ncap *= 2;
    if (ncap > p->max_message) ncap = p->max_message;
    uint8_t *n = realloc(p->msg, ncap);
    if (!n) return false;
    p->msg = n;
    p->msg_cap = ncap;
    return true;
}

/* A frame's payload is complete: decide what it means. */
static void finish_frame(cp_wsp *p, cp_wsp_event *ev)
{
    p->state = CP_WSP_S_HEAD;
    p->head_len = 0;
    if (p->skip) return;
    if (p->opcode == CP_WS_OP_CLOSE) {
        /* Nothing may follow a close frame: whatever does is discarded. */
        p->state = CP_WSP_S_DISCARD;
        p->closed = true;
    }
    switch (p->opcode) {
    case CP_WS_OP_CLOSE: {
        const uint8_t *b = p->control;
        size_t n = p->control_len;
        unsigned code = n >= 2 ? ((unsigned)b[0] << 8) | b[1] : 0;
        if (!p->draining) {
            if (n == 1) {
                fail(p, ev, CP_WS_CLOSE_PROTOCOL, "close frame with a 1-byte body", 0);
                return;
            }
            if (n >= 2 && !cp_wsp_close_code_valid(code)) {
                fail(p, ev, CP_WS_CLOSE_PROTOCOL, "invalid close code", 0);
                return;
            }
            if (n > 2 && !cp_utf8_valid(b + 2, n - 2)) {
                fail(p, ev, CP_WS_CLOSE_BAD_DATA, "close reason is not UTF-8", 0);
                return;
            }
        }
        p->draining = true;
        ev->kind = CP_WSP_CLOSE;
        ev->code = code;
        ev->data = n > 2 ? b + 2 : b;
        ev->len = n > 2 ? n - 2 : 0;
        return;
    }
    case CP_WS_OP_PING:
    case CP_WS_OP_PONG:
        if (p->draining) return;
        ev->kind = p->opcode == CP_WS_OP_PING ? CP_WSP_PING : CP_WSP_PONG;
        ev->data = p->control;
        ev->len = p->control_len;
        return;
    default:
        break;
    }
    if (!p->fin) return; /* more fragments to come */
    p->in_message = false;
    if (!p->msg_binary && !cp_utf8_valid(p->msg, p->msg_len)) {
        fail(p, ev, CP_WS_CLOSE_BAD_DATA, "text message is not UTF-8", 0);
        return;
    }
    p->delivered = true;
    ev->kind = CP_WSP_MESSAGE;
    ev->binary = p->msg_binary;
    ev->data = p->msg ? p->msg : (const uint8_t *)"";
    ev->len = p->msg_len;
}

size_t cp_wsp_feed(cp_wsp *p, const uint8_t *in, size_t len, cp_wsp_event *ev)
{
    memset(ev, 0, sizeof *ev);
    ev->kind = CP_WSP_NEED_MORE;
    if (p->delivered) {
        p->delivered = false;
        p->msg_len = 0;
        if (p->msg_cap > MSG_KEEP_MAX) cp_wsp_free(p);
    }
    size_t used = 0;
    for (;;) {
        if (p->state == CP_WSP_S_DISCARD) return len;
        if (p->state == CP_WSP_S_PAYLOAD && p->remaining == 0) {
            finish_frame(p, ev);
            if (ev->kind != CP_WSP_NEED_MORE) return used;
            continue;
        }
        if (used == len) return used;
        if (p->state == CP_WSP_S_HEAD) {
            p->head[p->head_len++] = in[used++];
            bool failed = p->head_len == 2 && !check_first_bytes(p, ev);
            size_t need = head_needed(p);
            /* The length is complete once the extended length bytes are in (before the
             * mask key): check it at once. After a failure only the framing matters. */
            size_t len_end = need - ((p->head[1] & 0x80) ? 4 : 0);
            if (p->head_len == len_end && !check_length(p, declared_length(p), ev)) failed = true;
            if (p->state == CP_WSP_S_DISCARD) return len;
            if (p->head_len == need) start_payload(p, declared_length(p));
            if (failed) return used;
            continue;
        }
        /* PAYLOAD */
        size_t n = len - used;
        if ((uint64_t)n > p->remaining) n = (size_t)p->remaining;
        if (!p->skip) {
            uint8_t *dst;
            if (is_control(p->opcode)) {
                dst = p->control + p->control_len;
                p->control_len += n;
            } else {
                if (!grow_message(p, p->msg_len + n)) {
                    p->skip = true;
                    return fail(p, ev, 1011, "out of memory", used);
                }
                dst = p->msg + p->msg_len;
                p->msg_len += n;
            }
            for (size_t i = 0; i < n; i++)
                dst[i] = in[used + i] ^ p->mask[(p->offset + i) & 3];
        }
        used += n;
        p->offset += n;
        p->remaining -= n;
    }
}

/* ---- writer ------------------------------------------------------------------------------ */

size_t cp_wsp_frame_header(uint8_t out[CP_WS_HEADER_MAX], unsigned opcode, uint64_t payload_len)
{
    out[0] = (uint8_t)(0x80 | (opcode & 0x0f));
    if (payload_len < 126) {
        out[1] = (uint8_t)payload_len;
        return 2;
    }
    if (payload_len <= 0xffff) {
        out[1] = 126;
        out[2] = (uint8_t)(payload_len >> 8);
        out[3] = (uint8_t)payload_len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(payload_len >> (8 * (7 - i)));
    return 10;
}

size_t cp_wsp_close_payload(uint8_t out[CP_WS_CONTROL_MAX], unsigned code, const char *reason)
{
    out[0] = (uint8_t)(code >> 8);
    out[1] = (uint8_t)code;
    size_t n = reason ? strlen(reason) : 0;
    if (n > CP_WS_CONTROL_MAX - 2) {
        n = CP_WS_CONTROL_MAX - 2;
        /* Back up to the start of a character. */
        while (n > 0 && ((unsigned char)reason[n] & 0xc0) == 0x80)
            n--;
    }
    if (n) memcpy(out + 2, reason, n);
    return n + 2;
}

/* ---- handshake --------------------------------------------------------------------------- */

static bool b64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

bool cp_wsp_key_valid(const char *key)
{
    /* 16 bytes encode as 22 characters and "==". */
    if (!key || strlen(key) != 24 || key[22] != '=' || key[23] != '=') return false;
    for (int i = 0; i < 22; i++)
        if (!b64_char(key[i])) return false;
    struct base64_decode_ctx ctx;
    uint8_t out[BASE64_DECODE_LENGTH(24)];
    size_t n = sizeof out;
    base64_decode_init(&ctx);
    if (!base64_decode_update(&ctx, &n, out, 24, key) || !base64_decode_final(&ctx)) return false;
    return n == 16;
}

void cp_wsp_accept(const char *key, char out[CP_WS_ACCEPT_SIZE])
{
    struct sha1_ctx ctx;
    uint8_t digest[SHA1_DIGEST_SIZE];
    sha1_init(&ctx);
    sha1_update(&ctx, strlen(key), (const uint8_t *)key);
    sha1_update(&ctx, sizeof WS_GUID - 1, (const uint8_t *)WS_GUID);
    sha1_digest(&ctx, sizeof digest, digest);
    base64_encode_raw(out, sizeof digest, digest);
    out[BASE64_ENCODE_RAW_LENGTH(SHA1_DIGEST_SIZE)] = '\0';
}

bool cp_wsp_list_next(const char **cursor, const char **item, size_t *len)
{
    const char *p = *cursor;
    while (*p == ' ' || *p == '\t' || *p == ',')
        p++;
    if (!*p) {
        *cursor = p;
        return false;
    }
    const char *end = p;
    while (*end && *end != ',')
        end++;
    const char *e = end;
    while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *item = p;
    *len = (size_t)(e - p);
    *cursor = end;
    return true;
}

bool cp_wsp_list_has(const char *value, const char *token)
{
    if (!value) return false;
    size_t tlen = strlen(token);
    const char *item;
    size_t n;
    for (const char *p = value; cp_wsp_list_next(&p, &item, &n);)
        if (n == tlen && strncasecmp(item, token, tlen) == 0) return true;
    return false;
}
