/* codepane client: the timings and limits of the WASM client, in one place. The
 * WebSocket figures are the AGB SDKs' (spec §6.7, §6.8); docs/client.md states them. */
#ifndef CP_CLIENT_LIMITS_H
#define CP_CLIENT_LIMITS_H

/* A JSON {"type":"ping"} on an open session socket this often (the TypeScript SDK's). */
#define CP_CLIENT_PING_MS 20000

/* Reconnecting after a lost socket: first after 0.5 s plus up to 0.1 s of jitter, each
 * later attempt 1.5 times later than the one before, never more than 5 s apart. */
#define CP_CLIENT_RECONNECT_FIRST_MS  500.0
#define CP_CLIENT_RECONNECT_FACTOR    1.5
#define CP_CLIENT_RECONNECT_MAX_MS    5000.0
#define CP_CLIENT_RECONNECT_JITTER_MS 100.0

/* A non-streaming run waits for the server's reply this long past the run's own
 * timeout before it gives up (the server ends the run at its timeout and answers). */
#define CP_CLIENT_HTTP_GRACE_S 30

#endif
