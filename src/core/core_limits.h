/* codepane core: every size and depth limit of the portable core, in one place.
 * Values are part of the protocol contract between client and server; change them
 * here, and the docs (docs/protocol.md) in the same commit. */
#ifndef CP_CORE_LIMITS_H
#define CP_CORE_LIMITS_H

/* Deepest JSON nesting any core parser accepts. AGB frames and payloads nest at most
 * about six levels (frame → data → result → mime → chart spec); Vega-Lite specs inside
 * a chart go deeper, so leave generous headroom while keeping C recursion (cJSON
 * recurses per level) far from the 64 KiB WASM stack. */
#define CP_JSON_MAX_DEPTH 128

/* Remote error text is cut to this many bytes, as both SDKs do (spec §6.4). */
#define CP_REMOTE_ERROR_MAX 2000

/* Longest language name worth echoing back in the unsupported-language message. */
#define CP_LANG_ECHO_MAX 64

/* Longest piece of client input (e.g. an unknown tool name) echoed back in an error
 * message; longer input is cut and followed by "...". */
#define CP_ECHO_MAX 64

/* Bytes of an id (invocationId, requestId, sessionId) the core accepts. */
#define CP_ID_MAX 256

#endif
