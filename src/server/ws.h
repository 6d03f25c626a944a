/* codepane-server: the session WebSocket, /ws/<sessionId> (spec §6, §11, §12.7-10).
 *
 * civetweb serves HTTP; this module takes every request for /ws/... itself (from
 * civetweb's begin_request callback, before civetweb's own WebSocket code could see it)
 * and owns the upgraded connection in that civetweb worker thread until it ends.
 *
 * Handshake (RFC 6455 §4.2, shared/spec/sandbox.md D5): header fields over
 * CP_SRV_WS_HEAD_MAX get 431 (civetweb itself answers 400 past 16 KiB); a request without
 * "Upgrade: websocket" gets 426 with "Sec-WebSocket-Version: 13"; an upgrade that is
 * not GET over HTTP/1.1, lacks "Connection: Upgrade", carries a body, or whose
 * Sec-WebSocket-Key is not the base64 of 16 bytes gets 400; a Sec-WebSocket-Version
 * other than 13 (or none) gets 426 with "Sec-WebSocket-Version: 13". Then: the session
 * must be live, or revived by the request's token when the server does not know it
 * (session.h; 503 when no session fits), else 404; the Host must be one of the server's
 * own names (421, D14); an
 * Origin, when present, must be allowed (403, D13); the global and per-IP connection
 * caps apply (503, 429); the token comes from the X-Access-Token header, or from a
 * Sec-WebSocket-Protocol offer of "codepane.v1" plus "codepane.token.<token>"
 * (browsers cannot set headers), or from a ?token= query (401, 429 past the failure
 * rate limit). Success is 101 with Sec-WebSocket-Accept, and "Sec-WebSocket-Protocol:
 * codepane.v1" when the client offered it. Every answer on /ws/ ends the connection.
 *
 * Frames (wsproto.h): a malformed frame fails the connection with close 1002, invalid
 * UTF-8 with 1007, a message over --max-body-bytes with 1009 as soon as a frame header
 * declares too much (nothing of it is buffered). Pings get pongs. Messages (text, or
 * binary carrying UTF-8 text) are read with cp_frame_read_client: JSON pings and other
 * id-less frames are ignored; run_code starts a run that streams event frames and one
 * end frame; cancel stops one; invalid requests get one phase:"error" frame; after
 * CP_SRV_WS_GARBAGE_MAX consecutive frames that are not JSON objects the connection is
 * closed with 1003. A client close frame is answered with the same code.
 *
 * Deadlines (config.h): no byte for CP_SRV_WS_IDLE_TIMEOUT_MS → a ping; nothing for
 * CP_SRV_WS_PONG_TIMEOUT_MS more → close 1001. A frame begun and not continued for
 * CP_SRV_WS_FRAME_STALL_MS → close 1008. A server frame not written within
 * CP_SRV_REQUEST_TIMEOUT_MS → the connection is dropped. After the server's close frame,
 * the client's close is awaited for CP_SRV_WS_CLOSE_GRACE_MS at most.
 *
 * Threads: one thread per connection (the civetweb worker) does all of its socket I/O
 * with non-blocking reads and writes and poll(2). Other threads (the supervisor running
 * the sandbox sinks, the session reaper) only queue frames and wake it through an
 * eventfd, so they never block on a socket. A connection that queues more than
 * CP_SRV_WS_QUEUE_MAX bytes is closed (1008). Closing, for any reason, cancels the
 * connection's runs (D8); their late end callbacks find the connection object alive (it
 * is refcounted) and write nothing. */
#ifndef CP_WS_H
#define CP_WS_H

#include <civetweb.h>

#include "http.h"

/* civetweb's begin_request callback: 0 for a request that is not for /ws/ (civetweb goes
 * on as usual); otherwise the request is answered, the WebSocket served to its end, and
 * the HTTP status it got (101 for an upgrade) is returned. */
int cp_ws_begin_request(struct mg_connection *conn);

#endif
