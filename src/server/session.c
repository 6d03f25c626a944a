/* codepane-server: sessions (see session.h). A small table under one lock: the numbers
 * are small (--max-sessions live sessions plus remembered tombstones), every operation
 * is a short list walk, and a single lock keeps run records, hooks and state changes
 * trivially consistent. The runner is called only after the lock is dropped.
 *
 * Tokens are not stored anywhere but derived: "t-" + the first 32 hex digits of
 * HMAC-SHA256(secret, session id). That is what lets a session be revived: a request for
 * an id the table does not know, carrying the token derived from it, can only come from
 * a descriptor this secret minted, so the session is re-created on the spot. Released
 * ids are remembered (CP_SRV_RELEASED_REMEMBER of them) so that a release sticks for the
 * life of the process; a restart forgets them, which docs/server.md says. */
#define _GNU_SOURCE
#include "session.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nettle/hmac.h>

#include "config.h"

#define NLANG           5 /* CP_LANG_NONE .. CP_LANG_R */
#define ID_PREFIX       "s-"
#define TOKEN_PREFIX    "t-"
#define PREFIX_LEN      2
#define ID_RANDOM_BYTES ((CP_SESSION_ID_LEN - PREFIX_LEN) / 2)
#define TOKEN_MAC_BYTES ((CP_SESSION_TOKEN_LEN - PREFIX_LEN) / 2)
#define LOG_PREFIX      "codepane-server: "

typedef char session_id[CP_SESSION_ID_LEN + 1];

_Static_assert(TOKEN_MAC_BYTES <= SHA256_DIGEST_SIZE, "a token is a prefix of one HMAC-SHA256");

struct cp_session {
    cp_sessions *table;
    atomic_int refs;
    struct cp_session *next; /* table list */
    char id[CP_SESSION_ID_LEN + 1];
    char token[CP_SESSION_TOKEN_LEN + 1];
    /* under the table lock: */
    bool finished;
    bool released; /* finished by a release, not by idle expiry: never revived */
    double idle_s, last_used, finished_at;
    long long counts[NLANG];
    cp_run_rec runs; /* sentinel */
    unsigned nruns;
    cp_session_hook hooks; /* sentinel */
};

struct cp_sessions {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    cp_session *head;
    unsigned live, tombstones, max;
    double idle_s;
    bool stop;
    pthread_t reaper;
    bool reaper_started;
    pthread_rwlock_t runner_lock;
    cp_runner *runner;
    cp_secret secret; /* read-only after cp_sessions_new */
    /* Ids released by this process, a ring of the last CP_SRV_RELEASED_REMEMBER. */
    session_id *released;
    unsigned released_next, released_count;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

bool cp_ct_equal(const char *given, size_t given_len, const char *expected, size_t expected_len)
{
    volatile unsigned char diff = (unsigned char)(given_len != expected_len);
    for (size_t i = 0; i < expected_len; i++) {
        unsigned char g = i < given_len ? (unsigned char)given[i] : 0;
        diff |= (unsigned char)(g ^ (unsigned char)expected[i]);
    }
    return diff == 0;
}

int cp_random_hex(char *out, size_t n)
{
    unsigned char buf[64];
    if (n > sizeof buf || cp_random_bytes(buf, n) != 0) return -1;
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[buf[i] >> 4];
        out[2 * i + 1] = hex[buf[i] & 15];
    }
    out[2 * n] = '\0';
    explicit_bzero(buf, sizeof buf);
    return 0;
}

/* ---- ids and tokens --------------------------------------------------------------------- */

/* The token of session id: a pure function of the secret and the id. */
static void mint_token(const cp_sessions *t, const char *id, char out[CP_SESSION_TOKEN_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    struct hmac_sha256_ctx mac;
    uint8_t digest[SHA256_DIGEST_SIZE];
    hmac_sha256_set_key(&mac, t->secret.len, t->secret.key);
    hmac_sha256_update(&mac, strlen(id), (const uint8_t *)id);
    hmac_sha256_digest(&mac, sizeof digest, digest);
    memcpy(out, TOKEN_PREFIX, PREFIX_LEN);
    for (size_t i = 0; i < TOKEN_MAC_BYTES; i++) {
        out[PREFIX_LEN + 2 * i] = hex[digest[i] >> 4];
        out[PREFIX_LEN + 2 * i + 1] = hex[digest[i] & 15];
    }
    out[CP_SESSION_TOKEN_LEN] = '\0';
    explicit_bzero(&mac, sizeof mac);
    explicit_bzero(digest, sizeof digest);
}

/* "s-" and 24 lower-case hex digits: the only ids this server hands out. */
static bool id_well_formed(const char *id)
{
    if (strlen(id) != CP_SESSION_ID_LEN || memcmp(id, ID_PREFIX, PREFIX_LEN) != 0) return false;
    for (const char *p = id + PREFIX_LEN; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return false;
    return true;
}

/* Table lock held. */
static bool was_released(const cp_sessions *t, const char *id)
{
    for (unsigned i = 0; i < t->released_count; i++)
        if (strcmp(t->released[i], id) == 0) return true;
    return false;
}

/* Remember a released id, forgetting the oldest past the cap. Table lock held. */
static void remember_released(cp_sessions *t, const char *id)
{
    if (was_released(t, id)) return;
    memcpy(t->released[t->released_next], id, sizeof(session_id));
    t->released_next = (t->released_next + 1) % CP_SRV_RELEASED_REMEMBER;
    if (t->released_count < CP_SRV_RELEASED_REMEMBER) t->released_count++;
}

/* ---- runner access -------------------------------------------------------------------- */

void cp_sessions_set_runner(cp_sessions *t, cp_runner *r)
{
    pthread_rwlock_wrlock(&t->runner_lock);
    t->runner = r;
    pthread_rwlock_unlock(&t->runner_lock);
}

/* The session is over: its kernels go too. Callable with the table lock held (the lock
 * order is table → runner; the runner never calls back with its own lock held). */
static void drop_kernels(cp_sessions *t, const char *id)
{
    pthread_rwlock_rdlock(&t->runner_lock);
    if (t->runner) cp_runner_drop_session(t->runner, id);
    pthread_rwlock_unlock(&t->runner_lock);
}

static void cancel_ids(cp_sessions *t, const uint64_t *ids, size_t n)
{
    if (!n) return;
    pthread_rwlock_rdlock(&t->runner_lock);
    if (t->runner)
        for (size_t i = 0; i < n; i++)
            cp_runner_cancel(t->runner, ids[i]);
    pthread_rwlock_unlock(&t->runner_lock);
}

/* ---- lists ---------------------------------------------------------------------------- */

static void rec_unlink(cp_session *s, cp_run_rec *rec)
{
    if (!rec->linked) return;
    rec->prev->next = rec->next;
    rec->next->prev = rec->prev;
    rec->prev = rec->next = NULL;
    rec->linked = false;
    s->nruns--;
}

/* Collect the ids of the runs matching owner (any owner when all is true); runs not yet
 * started get cancel_pending. Table lock held. Returns a heap array (or NULL) and n. */
static uint64_t *collect_runs(cp_session *s, bool all, const void *owner, size_t *n)
{
    *n = 0;
    uint64_t *ids = s->nruns ? malloc(s->nruns * sizeof *ids) : NULL;
    for (cp_run_rec *r = s->runs.next; r != &s->runs; r = r->next) {
        if (!all && r->owner != owner) continue;
        if (r->has_id) {
            if (ids) ids[(*n)++] = r->id;
        } else {
            r->cancel_pending = true;
        }
    }
    return ids;
}

/* Mark a live session finished: fire its hooks, hand back its runs to cancel. Table
 * lock held. */
static uint64_t *finish(cp_sessions *t, cp_session *s, size_t *n)
{
    *n = 0;
    if (s->finished) return NULL;
    s->finished = true;
    s->finished_at = now_s();
    t->live--;
    t->tombstones++;
    while (s->hooks.next != &s->hooks) {
        cp_session_hook *h = s->hooks.next;
        h->prev->next = h->next;
        h->next->prev = h->prev;
        h->prev = h->next = NULL;
        h->linked = false;
        h->fn(h);
    }
    return collect_runs(s, true, NULL, n);
}

static void unlink_table(cp_sessions *t, cp_session *s)
{
    for (cp_session **pp = &t->head; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            s->next = NULL;
            return;
        }
}

/* ---- reaper ---------------------------------------------------------------------------- */

static void *reaper_main(void *arg)
{
    cp_sessions *t = arg;
    pthread_mutex_lock(&t->lock);
    while (!t->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += CP_SRV_REAPER_TICK_MS / 1000;
        ts.tv_nsec += (long)(CP_SRV_REAPER_TICK_MS % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&t->wake, &t->lock, &ts);
        if (t->stop) break;

        double now = now_s();
        /* Expire idle sessions. A session with runs in flight is in use, not idle; its
         * runs are bounded by --timeout-max. */
        for (cp_session *s = t->head; s; s = s->next) {
            if (s->finished || s->nruns || now - s->last_used < s->idle_s) continue;
            size_t n;
            free(finish(t, s, &n)); /* no runs: nothing to cancel */
            drop_kernels(t, s->id);
        }
        /* Forget old tombstones, and the oldest ones past the cap. */
        for (cp_session **pp = &t->head; *pp;) {
            cp_session *s = *pp;
            if (s->finished && now - s->finished_at > CP_SRV_TOMBSTONE_S) {
                *pp = s->next;
                t->tombstones--;
                cp_session_put(s);
            } else {
                pp = &s->next;
            }
        }
        while (t->tombstones > CP_SRV_TOMBSTONE_MAX) {
            cp_session *oldest = NULL;
            for (cp_session *s = t->head; s; s = s->next)
                if (s->finished && (!oldest || s->finished_at < oldest->finished_at)) oldest = s;
            if (!oldest) break;
            unlink_table(t, oldest);
            t->tombstones--;
            cp_session_put(oldest);
        }
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

/* ---- table ----------------------------------------------------------------------------- */

int cp_sessions_new(cp_sessions **out, unsigned max_sessions, double idle_s,
                    const cp_secret *secret, char *err, size_t errcap)
{
    *out = NULL;
    cp_sessions *t = calloc(1, sizeof *t);
    if (!t || !(t->released = calloc(CP_SRV_RELEASED_REMEMBER, sizeof *t->released))) {
        free(t);
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    t->secret = *secret;
    t->max = max_sessions;
    t->idle_s = idle_s;
    pthread_mutex_init(&t->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->wake, &ca);
    pthread_condattr_destroy(&ca);
    pthread_rwlock_init(&t->runner_lock, NULL);
    int rc = pthread_create(&t->reaper, NULL, reaper_main, t);
    if (rc) {
        snprintf(err, errcap, "cannot start the session reaper thread: %s", strerror(rc));
        cp_sessions_free(t);
        return -1;
    }
    t->reaper_started = true;
    *out = t;
    return 0;
}

void cp_sessions_shutdown(cp_sessions *t)
{
    if (!t) return;
    pthread_mutex_lock(&t->lock);
    t->stop = true;
    pthread_cond_broadcast(&t->wake);
    pthread_mutex_unlock(&t->lock);
    if (t->reaper_started) {
        pthread_join(t->reaper, NULL);
        t->reaper_started = false;
    }
    for (;;) {
        pthread_mutex_lock(&t->lock);
        cp_session *s = t->head;
        while (s && s->finished)
            s = s->next;
        if (!s) {
            pthread_mutex_unlock(&t->lock);
            break;
        }
        size_t n;
        uint64_t *ids = finish(t, s, &n);
        drop_kernels(t, s->id);
        pthread_mutex_unlock(&t->lock);
        cancel_ids(t, ids, n);
        free(ids);
    }
}

void cp_sessions_free(cp_sessions *t)
{
    if (!t) return;
    if (t->reaper_started) cp_sessions_shutdown(t);
    while (t->head) {
        cp_session *s = t->head;
        t->head = s->next;
        cp_session_put(s);
    }
    pthread_rwlock_destroy(&t->runner_lock);
    pthread_cond_destroy(&t->wake);
    pthread_mutex_destroy(&t->lock);
    free(t->released);
    cp_secret_wipe(&t->secret);
    free(t);
}

unsigned cp_sessions_live(cp_sessions *t)
{
    pthread_mutex_lock(&t->lock);
    unsigned n = t->live;
    pthread_mutex_unlock(&t->lock);
    return n;
}

/* A session object that is in no table yet, with the given id and its token. */
static cp_session *new_session(cp_sessions *t, const char *id, double idle_s)
{
    cp_session *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    memcpy(s->id, id, sizeof s->id);
    mint_token(t, id, s->token);
    s->table = t;
    atomic_init(&s->refs, 2); /* the table's and the caller's */
    s->runs.next = s->runs.prev = &s->runs;
    s->hooks.next = s->hooks.prev = &s->hooks;
    s->idle_s = (idle_s > 0 && idle_s < t->idle_s) ? idle_s : t->idle_s;
    s->last_used = now_s();
    return s;
}

/* Free a session object that never made it into the table. */
static void discard(cp_session *s)
{
    if (!s) return;
    explicit_bzero(s->token, sizeof s->token);
    free(s);
}

/* Whether one more live session fits; err says why not. Table lock held. */
static bool room_for_one(cp_sessions *t, char *err, size_t errcap)
{
    if (t->stop) {
        snprintf(err, errcap, "the server is shutting down");
        return false;
    }
    if (t->live >= t->max) {
        snprintf(err, errcap,
                 "session limit reached: %u sessions are open (--max-sessions); release one "
                 "or wait for an idle one to expire",
                 t->max);
        return false;
    }
    return true;
}

/* Link a new live session. Table lock held, room_for_one checked. */
static void link_live(cp_sessions *t, cp_session *s)
{
    s->next = t->head;
    t->head = s;
    t->live++;
}

int cp_sessions_create(cp_sessions *t, double idle_s, cp_session **out, char *err, size_t errcap)
{
    *out = NULL;
    session_id id;
    memcpy(id, ID_PREFIX, PREFIX_LEN);
    if (cp_random_hex(id + PREFIX_LEN, ID_RANDOM_BYTES)) {
        snprintf(err, errcap, "no randomness for a session id");
        return -1;
    }
    cp_session *s = new_session(t, id, idle_s);
    if (!s) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    pthread_mutex_lock(&t->lock);
    if (!room_for_one(t, err, errcap)) {
        pthread_mutex_unlock(&t->lock);
        discard(s);
        return -1;
    }
    link_live(t, s);
    pthread_mutex_unlock(&t->lock);
    *out = s;
    return 0;
}

cp_revive cp_sessions_revive(cp_sessions *t, const char *id, const char *token, size_t token_len,
                             const char *via, cp_session **out, cp_session_state *state, char *err,
                             size_t errcap)
{
    *out = NULL;
    *state = CP_SESSION_UNKNOWN;
    if (!id || !token || !id_well_formed(id)) return CP_REVIVE_REFUSED;
    char expected[CP_SESSION_TOKEN_LEN + 1];
    mint_token(t, id, expected);
    bool token_ok = cp_ct_equal(token, token_len, expected, CP_SESSION_TOKEN_LEN);
    explicit_bzero(expected, sizeof expected);
    /* Allocated before the lock is taken, used only if the revival goes ahead. */
    cp_session *fresh = token_ok ? new_session(t, id, 0) : NULL;
    if (token_ok && !fresh) {
        snprintf(err, errcap, "out of memory");
        return CP_REVIVE_FAILED;
    }

    cp_revive rc = CP_REVIVE_REFUSED;
    cp_session *old = NULL, *replaced = NULL;
    bool revived = false;
    pthread_mutex_lock(&t->lock);
    for (cp_session *s = t->head; s; s = s->next)
        if (strcmp(s->id, id) == 0) {
            old = s;
            break;
        }
    if (old) *state = old->finished ? CP_SESSION_FINISHED : CP_SESSION_LIVE;
    if (!token_ok || (old && old->released) || (!old && was_released(t, id))) {
        /* refused: the caller answers as for any session it could not find */
    } else if (old && !old->finished) {
        /* Revived by a concurrent request since the caller looked. */
        atomic_fetch_add(&old->refs, 1);
        *out = old;
        rc = CP_REVIVE_OK;
    } else if (!room_for_one(t, err, errcap)) {
        rc = CP_REVIVE_FAILED;
    } else {
        if (old) {
            /* Expired: the tombstone makes way, its execution counts carry on. */
            memcpy(fresh->counts, old->counts, sizeof fresh->counts);
            unlink_table(t, old);
            t->tombstones--;
            replaced = old;
        }
        link_live(t, fresh);
        *out = fresh;
        fresh = NULL;
        revived = true;
        rc = CP_REVIVE_OK;
    }
    pthread_mutex_unlock(&t->lock);
    if (revived)
        fprintf(stderr, LOG_PREFIX "session %s revived on %s (%s)\n", id, via,
                replaced ? "it had expired"
                         : "unknown to this process, e.g. minted before a restart");
    cp_session_put(replaced); /* the table's reference to the tombstone */
    discard(fresh);
    return rc;
}

cp_session *cp_sessions_get(cp_sessions *t, const char *id, cp_session_state *state)
{
    cp_session_state st = CP_SESSION_UNKNOWN;
    cp_session *found = NULL;
    if (id && strlen(id) == CP_SESSION_ID_LEN) {
        pthread_mutex_lock(&t->lock);
        for (cp_session *s = t->head; s; s = s->next) {
            if (strcmp(s->id, id) != 0) continue;
            if (s->finished) {
                st = CP_SESSION_FINISHED;
            } else {
                st = CP_SESSION_LIVE;
                atomic_fetch_add(&s->refs, 1);
                found = s;
            }
            break;
        }
        pthread_mutex_unlock(&t->lock);
    }
    if (state) *state = st;
    return found;
}

void cp_session_put(cp_session *s)
{
    if (!s) return;
    if (atomic_fetch_sub(&s->refs, 1) == 1) {
        explicit_bzero(s->token, sizeof s->token);
        free(s);
    }
}

cp_session_state cp_sessions_release(cp_sessions *t, const char *id)
{
    cp_session_state st = CP_SESSION_UNKNOWN;
    uint64_t *ids = NULL;
    size_t n = 0;
    if (id && strlen(id) == CP_SESSION_ID_LEN) {
        pthread_mutex_lock(&t->lock);
        for (cp_session *s = t->head; s; s = s->next) {
            if (strcmp(s->id, id) != 0) continue;
            st = s->finished ? CP_SESSION_FINISHED : CP_SESSION_LIVE;
            ids = finish(t, s, &n);
            drop_kernels(t, s->id);
            s->released = true;
            break;
        }
        /* Also an id this process never saw (minted before a restart): its descriptor
         * must not revive it after its owner asked for it to end. */
        if (id_well_formed(id)) remember_released(t, id);
        pthread_mutex_unlock(&t->lock);
    }
    cancel_ids(t, ids, n);
    free(ids);
    return st;
}

const char *cp_session_id(const cp_session *s)
{
    return s->id;
}

const char *cp_session_token(const cp_session *s)
{
    return s->token;
}

bool cp_session_finished(cp_session *s)
{
    pthread_mutex_lock(&s->table->lock);
    bool f = s->finished;
    pthread_mutex_unlock(&s->table->lock);
    return f;
}

bool cp_session_token_ok(const cp_session *s, const char *token, size_t len)
{
    if (!token) return false;
    return cp_ct_equal(token, len, s->token, CP_SESSION_TOKEN_LEN);
}

void cp_session_touch(cp_session *s)
{
    pthread_mutex_lock(&s->table->lock);
    s->last_used = now_s();
    pthread_mutex_unlock(&s->table->lock);
}

/* ---- runs ------------------------------------------------------------------------------ */

int cp_session_run_begin(cp_session *s, cp_run_rec *rec, const void *owner, cp_lang lang,
                         long long *count, char *err, size_t errcap)
{
    memset(rec, 0, sizeof *rec);
    rec->owner = owner;
    unsigned li = (unsigned)lang < NLANG ? (unsigned)lang : 0;
    pthread_mutex_lock(&s->table->lock);
    if (s->finished) {
        pthread_mutex_unlock(&s->table->lock);
        snprintf(err, errcap, "session %s has been released", s->id);
        return -1;
    }
    *count = ++s->counts[li];
    rec->prev = s->runs.prev;
    rec->next = &s->runs;
    s->runs.prev->next = rec;
    s->runs.prev = rec;
    rec->linked = true;
    s->nruns++;
    s->last_used = now_s();
    pthread_mutex_unlock(&s->table->lock);
    return 0;
}

void cp_session_run_started(cp_session *s, cp_run_rec *rec, uint64_t id)
{
    pthread_mutex_lock(&s->table->lock);
    rec->id = id;
    rec->has_id = true;
    bool cancel = rec->cancel_pending && rec->linked;
    pthread_mutex_unlock(&s->table->lock);
    if (cancel) cancel_ids(s->table, &id, 1);
}

void cp_session_run_failed(cp_session *s, cp_run_rec *rec, cp_lang lang, long long count)
{
    unsigned li = (unsigned)lang < NLANG ? (unsigned)lang : 0;
    pthread_mutex_lock(&s->table->lock);
    rec_unlink(s, rec);
    if (s->counts[li] == count) s->counts[li]--;
    pthread_mutex_unlock(&s->table->lock);
}

void cp_session_run_end(cp_session *s, cp_run_rec *rec)
{
    pthread_mutex_lock(&s->table->lock);
    rec_unlink(s, rec);
    s->last_used = now_s();
    pthread_mutex_unlock(&s->table->lock);
}

void cp_session_cancel_run(cp_session *s, cp_run_rec *rec)
{
    uint64_t id = 0;
    bool have = false;
    pthread_mutex_lock(&s->table->lock);
    if (rec->linked) {
        if (rec->has_id) {
            id = rec->id;
            have = true;
        } else {
            rec->cancel_pending = true;
        }
    }
    pthread_mutex_unlock(&s->table->lock);
    if (have) cancel_ids(s->table, &id, 1);
}

void cp_session_cancel_owner(cp_session *s, const void *owner)
{
    size_t n;
    pthread_mutex_lock(&s->table->lock);
    uint64_t *ids = collect_runs(s, false, owner, &n);
    pthread_mutex_unlock(&s->table->lock);
    cancel_ids(s->table, ids, n);
    free(ids);
}

unsigned cp_session_runs(cp_session *s)
{
    pthread_mutex_lock(&s->table->lock);
    unsigned n = s->nruns;
    pthread_mutex_unlock(&s->table->lock);
    return n;
}

/* ---- hooks ----------------------------------------------------------------------------- */

int cp_session_hook_add(cp_session *s, cp_session_hook *hook)
{
    pthread_mutex_lock(&s->table->lock);
    if (s->finished) {
        pthread_mutex_unlock(&s->table->lock);
        hook->linked = false;
        return -1;
    }
    hook->prev = s->hooks.prev;
    hook->next = &s->hooks;
    s->hooks.prev->next = hook;
    s->hooks.prev = hook;
    hook->linked = true;
    pthread_mutex_unlock(&s->table->lock);
    return 0;
}

void cp_session_hook_remove(cp_session *s, cp_session_hook *hook)
{
    pthread_mutex_lock(&s->table->lock);
    if (hook->linked) {
        hook->prev->next = hook->next;
        hook->next->prev = hook->prev;
        hook->prev = hook->next = NULL;
        hook->linked = false;
    }
    pthread_mutex_unlock(&s->table->lock);
}
