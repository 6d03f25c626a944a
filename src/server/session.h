/* codepane-server: sessions. A session is what createSession hands out (id, token,
 * linkUrl, wsUrl): it counts executions per language, holds the runs in flight so that
 * releasing or expiring it cancels them, and keeps hooks that close its WebSockets.
 * Its id is random; its token is derived from the id and the server's secret
 * (secret.h), so a descriptor outlives the process that minted it: a request that shows
 * an unknown id with the right token revives the session (cp_sessions_revive).
 *
 * Threads: every function is safe from any thread. One table lock guards all sessions
 * and their run records; hooks are called with it held (lock order: table → anything
 * a hook takes), so a hook must be short and must not call back into this module or
 * the runner. The runner is only ever called with no lock of this module held.
 *
 * Ownership: cp_sessions_get and cp_sessions_create return a reference the caller
 * drops with cp_session_put. A cp_run_rec and a cp_session_hook belong to the caller,
 * which keeps them alive while they are linked. */
#ifndef CP_SESSION_H
#define CP_SESSION_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lang.h"
#include "runner.h"
#include "secret.h"

#define CP_SESSION_ID_LEN    26 /* "s-" + 24 hex */
#define CP_SESSION_TOKEN_LEN 34 /* "t-" + 32 hex */

typedef struct cp_session cp_session;
typedef struct cp_sessions cp_sessions;

/* A run of a session, from admission to its end. `owner` tags who started it (a
 * WebSocket connection, or NULL for HTTP) so that a closing connection cancels its own
 * runs only. Fields are the module's; callers only embed the struct. */
typedef struct cp_run_rec {
    struct cp_run_rec *prev, *next;
    const void *owner;
    uint64_t id;
    bool has_id, cancel_pending, linked;
} cp_run_rec;

/* Called (table lock held) when the session is released or expires. */
typedef struct cp_session_hook {
    struct cp_session_hook *prev, *next;
    void (*fn)(struct cp_session_hook *hook);
    bool linked;
} cp_session_hook;

typedef enum { CP_SESSION_LIVE, CP_SESSION_FINISHED, CP_SESSION_UNKNOWN } cp_session_state;

typedef enum {
    CP_REVIVE_OK,      /* *out is the live session */
    CP_REVIVE_REFUSED, /* not revivable: answer as for a session that is not there */
    CP_REVIVE_FAILED,  /* revivable, but no room (err says why, as createSession would) */
} cp_revive;

/* The runner is used to cancel runs; it may be set later (cp_sessions_set_runner) and
 * cleared before the runner stops. Tokens are derived from `secret` (copied). Starts the
 * reaper thread. */
int cp_sessions_new(cp_sessions **out, unsigned max_sessions, double idle_s,
                    const cp_secret *secret, char *err, size_t errcap);
void cp_sessions_set_runner(cp_sessions *t, cp_runner *r);
/* Release every session (cancelling their runs, firing hooks) and stop the reaper. */
void cp_sessions_shutdown(cp_sessions *t);
/* Free the table; every reference must have been dropped. */
void cp_sessions_free(cp_sessions *t);

unsigned cp_sessions_live(cp_sessions *t);

/* A new session with a fresh id (getrandom) and its token. idle_s > 0 overrides the
 * table's idle timeout for it when smaller. -1 with a message when the cap is reached
 * (err says so) or randomness failed. */
int cp_sessions_create(cp_sessions *t, double idle_s, cp_session **out, char *err, size_t errcap);

/* Look up by id. LIVE sessions come back with a reference; FINISHED ones (released or
 * expired, still remembered) and UNKNOWN ones come back NULL. */
cp_session *cp_sessions_get(cp_sessions *t, const char *id, cp_session_state *state);

/* For the routes a descriptor drives (callTool, the WebSocket), after cp_sessions_get
 * found no live session: when `token` is the one this server's secret derives for `id`,
 * and id was not released by this process, re-create the session under that id (the
 * table's idle timeout; it counts against max_sessions, and an expired session's
 * execution counts carry on) and log one line naming `via`. OK comes back with a
 * reference (also when a concurrent request revived it first). REFUSED and FAILED leave
 * *out NULL; *state is what the table knew of id, for the caller's "not found" answer. */
cp_revive cp_sessions_revive(cp_sessions *t, const char *id, const char *token, size_t token_len,
                             const char *via, cp_session **out, cp_session_state *state, char *err,
                             size_t errcap);
void cp_session_put(cp_session *s);

/* Release a session: FINISHED from now on; runs cancelled; hooks fired; never revived
 * by this process (a well-formed id it does not know is remembered as released too).
 * Returns the state before the call (UNKNOWN: no session was there). */
cp_session_state cp_sessions_release(cp_sessions *t, const char *id);

const char *cp_session_id(const cp_session *s);
const char *cp_session_token(const cp_session *s);
bool cp_session_finished(cp_session *s);
/* Constant-time comparison of a presented token with the session's. */
bool cp_session_token_ok(const cp_session *s, const char *token, size_t len);
/* Reset the idle timer. */
void cp_session_touch(cp_session *s);

/* Run bookkeeping. begin: link rec and reserve the next execution count for lang
 * (-1 with a message if the session is finished). started: the runner accepted it as
 * `id` (cancels it at once if a cancel came in between). failed: the runner refused it
 * (unlinks and gives the count back if no later run took one). end: the run ended
 * (unlinks, touches). Each of these may run on any thread, in any order between
 * started and end. */
int cp_session_run_begin(cp_session *s, cp_run_rec *rec, const void *owner, cp_lang lang,
                         long long *count, char *err, size_t errcap);
void cp_session_run_started(cp_session *s, cp_run_rec *rec, uint64_t id);
void cp_session_run_failed(cp_session *s, cp_run_rec *rec, cp_lang lang, long long count);
void cp_session_run_end(cp_session *s, cp_run_rec *rec);
/* Cancel one run / every run started by owner. */
void cp_session_cancel_run(cp_session *s, cp_run_rec *rec);
void cp_session_cancel_owner(cp_session *s, const void *owner);
/* Runs in flight. */
unsigned cp_session_runs(cp_session *s);

/* Hooks fired on release or expiry. add returns -1 if the session is already finished
 * (the hook is then not linked). */
int cp_session_hook_add(cp_session *s, cp_session_hook *hook);
void cp_session_hook_remove(cp_session *s, cp_session_hook *hook);

/* Constant-time byte comparison of two strings (lengths may differ; the time depends
 * only on the length of `expected`). */
bool cp_ct_equal(const char *given, size_t given_len, const char *expected, size_t expected_len);
/* `n` random bytes as 2n lower-case hex characters plus NUL into out. -1 on failure. */
int cp_random_hex(char *out, size_t n);

#endif
