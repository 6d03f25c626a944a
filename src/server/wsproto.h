/* codepane-server: RFC 6455 WebSocket protocol logic with no I/O (the server side).
 *
 * The parser is fed the bytes a client sent, in pieces of any size, and returns one event
 * at a time: a complete message, a ping, a pong, the client's close frame, or a failure
 * that names the close code to answer with. It checks everything RFC 6455 §5 asks of a
 * server: every client frame masked, RSV bits 0 (no extension is ever negotiated), known
 * opcodes only, control frames at most 125 bytes and never fragmented, continuation
 * frames only inside a fragmented message and data frames never inside one, a 64-bit
 * length with its top bit clear, text and close reasons valid UTF-8 (1007), close codes
 * that may appear on the wire (1002). (A length not in its shortest encoding is accepted,
 * as common servers do.) A message larger than the cap fails with 1009 the
 * moment a frame header declares more than fits: no byte of its payload is buffered, and
 * nothing is ever allocated from a declared length (the message buffer grows with the
 * bytes that actually arrive, up to the cap).
 *
 * After a failure (or once the caller has sent its own close frame, cp_wsp_drain), the
 * parser drains: it keeps framing, skipping payloads unread, and reports only the
 * client's close frame, so the caller can finish the closing handshake. A failure that
 * leaves no framing to follow (a length with the top bit set) discards everything.
 *
 * The writer side builds server frames (never masked) and close payloads; the handshake
 * helpers check Sec-WebSocket-Key and compute Sec-WebSocket-Accept (SHA-1 from nettle).
 *
 * Ownership: the caller owns the cp_wsp (embed it) and frees its message buffer with
 * cp_wsp_free. Event data points into the parser or the fed buffer and stays valid until
 * the next call on the parser. Nothing here locks: one thread drives one parser. */
#ifndef CP_WSPROTO_H
#define CP_WSPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Opcodes (RFC 6455 §5.2). */
#define CP_WS_OP_CONT   0x0
#define CP_WS_OP_TEXT   0x1
#define CP_WS_OP_BINARY 0x2
#define CP_WS_OP_CLOSE  0x8
#define CP_WS_OP_PING   0x9
#define CP_WS_OP_PONG   0xA

/* Close codes the server sends (RFC 6455 §7.4.1). */
#define CP_WS_CLOSE_NORMAL      1000
#define CP_WS_CLOSE_GOING_AWAY  1001
#define CP_WS_CLOSE_PROTOCOL    1002
#define CP_WS_CLOSE_UNSUPPORTED 1003
#define CP_WS_CLOSE_BAD_DATA    1007
#define CP_WS_CLOSE_POLICY      1008
#define CP_WS_CLOSE_TOO_BIG     1009

/* Largest control frame payload, and a server frame header. */
#define CP_WS_CONTROL_MAX 125
#define CP_WS_HEADER_MAX  10
/* Sec-WebSocket-Accept: base64 of a SHA-1 digest, plus NUL. */
#define CP_WS_ACCEPT_SIZE 29

typedef enum {
    CP_WSP_NEED_MORE, /* every byte fed so far is consumed; no event */
    CP_WSP_MESSAGE,   /* a complete message: data/len, binary */
    CP_WSP_PING,      /* data/len (≤ 125): answer with a pong carrying the same bytes */
    CP_WSP_PONG,      /* data/len */
    CP_WSP_CLOSE,     /* the client's close frame: code (0 when it carried none), data/len =
                         reason; a malformed one comes as CP_WSP_FAIL instead */
    CP_WSP_FAIL,      /* fail the connection: send a close frame with code and reason */
} cp_wsp_kind;

typedef struct {
    cp_wsp_kind kind;
    bool binary;         /* MESSAGE: the first frame was binary */
    unsigned code;       /* CLOSE: the client's code; FAIL: the code to send */
    const uint8_t *data; /* MESSAGE, PING, PONG, CLOSE (the reason) */
    size_t len;
    const char *reason; /* FAIL: why, as a short ASCII text for the close frame */
} cp_wsp_event;

typedef enum {
    CP_WSP_S_HEAD,    /* reading a frame header */
    CP_WSP_S_PAYLOAD, /* reading (or skipping) a frame's payload */
    CP_WSP_S_DISCARD, /* framing lost: every byte is discarded */
} cp_wsp_state;

/* The parser. Fields are the module's; callers embed the struct and use the functions. */
typedef struct {
    size_t max_message; /* the cap of one message (all its fragments together) */
    cp_wsp_state state;
    bool draining; /* failed, or the caller closed: only the client's close frame counts */
    bool closed;   /* the client's close frame has been reported */

    /* The frame being read. */
    uint8_t head[14];
    size_t head_len;
    bool fin;
    unsigned opcode;
    uint8_t mask[4];
    uint64_t remaining; /* payload bytes still to come */
    uint64_t offset;    /* payload bytes already read (mask position) */
    bool skip;          /* drop the payload instead of keeping it */

    /* A control frame's payload. */
    uint8_t control[CP_WS_CONTROL_MAX];
    size_t control_len;

    /* The message being assembled. */
    bool in_message;
    bool msg_binary;
    uint8_t *msg;
    size_t msg_len, msg_cap;
    bool delivered; /* the last event handed msg out: reset it on the next call */
} cp_wsp;

void cp_wsp_init(cp_wsp *p, size_t max_message);
void cp_wsp_free(cp_wsp *p);

/* Consume bytes from in[0..len) until one event is complete or all are used. Returns the
 * number of bytes consumed and fills *ev. Call it again with the rest (possibly nothing:
 * a frame with an empty payload may complete without another byte) until it returns
 * CP_WSP_NEED_MORE, which means every byte was consumed and nothing else is complete. */
size_t cp_wsp_feed(cp_wsp *p, const uint8_t *in, size_t len, cp_wsp_event *ev);

/* The caller has sent its close frame: drop messages from now on, report only the
 * client's close frame. */
void cp_wsp_drain(cp_wsp *p);

/* The client's close frame has arrived (reported as CLOSE, or as a FAIL when malformed):
 * nothing more will come that matters. */
bool cp_wsp_peer_closed(const cp_wsp *p);

/* Part of a frame has arrived and the rest has not (a stall here is a slow sender). */
bool cp_wsp_mid_frame(const cp_wsp *p);

/* A close code that may appear in a close frame (RFC 6455 §7.4: 1000-1003, 1007-1014,
 * 3000-4999; never 1004-1006, 1015 or anything else). */
bool cp_wsp_close_code_valid(unsigned code);

/* ---- writer ---------------------------------------------------------------------------- */

/* The header of an unmasked, unfragmented server frame; returns its length (2, 4 or 10
 * bytes, at most CP_WS_HEADER_MAX). */
size_t cp_wsp_frame_header(uint8_t out[CP_WS_HEADER_MAX], unsigned opcode, uint64_t payload_len);

/* A close frame's payload: the 2-byte code, then the reason cut to fit 125 bytes (on a
 * UTF-8 character boundary). Returns its length. */
size_t cp_wsp_close_payload(uint8_t out[CP_WS_CONTROL_MAX], unsigned code, const char *reason);

/* ---- handshake ------------------------------------------------------------------------- */

/* Sec-WebSocket-Key is the base64 encoding of 16 bytes (RFC 6455 §4.1, §4.2.1). */
bool cp_wsp_key_valid(const char *key);

/* Sec-WebSocket-Accept for a key: base64(SHA-1(key + the RFC's GUID)), NUL-terminated. */
void cp_wsp_accept(const char *key, char out[CP_WS_ACCEPT_SIZE]);

/* The next element of a comma-separated header value (white space around it trimmed):
 * sets item/len and advances *cursor; false when no element is left. */
bool cp_wsp_list_next(const char **cursor, const char **item, size_t *len);

/* The header value lists `token` as one of its comma-separated elements (case-insensitive,
 * spaces around elements ignored): "Connection: keep-alive, Upgrade" lists "upgrade". */
bool cp_wsp_list_has(const char *value, const char *token);

#endif
