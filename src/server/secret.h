/* codepane-server: the session secret, the key that session tokens are derived from
 * (session.c: token = "t-" + HMAC-SHA256(secret, session id), truncated). A secret that
 * outlives the process (--session-secret-file) lets a restarted server recognise the
 * descriptors it handed out; without one, every process draws its own and a restart
 * invalidates every session.
 *
 * The file is held to what ssh asks of a private key: a regular file owned by the
 * server's user, with no permission bits for group or others. A missing file is created
 * (O_CREAT | O_EXCL, mode 0600) with CP_SECRET_NEW_BYTES random bytes; a file's bytes are
 * the key as they are (a trailing newline included), CP_SECRET_MIN_BYTES of them at least.
 *
 * Ownership: a cp_secret is a plain value the caller owns; cp_secret_wipe clears it. */
#ifndef CP_SECRET_H
#define CP_SECRET_H

#include <stdbool.h>
#include <stddef.h>

/* HMAC-SHA256 wants at least its output size in key material to be at full strength. */
#define CP_SECRET_MIN_BYTES 32
/* A larger file is refused: HMAC would hash such a key down to 32 bytes anyway, and a
 * path pointing at some large file is more likely a mistake than a secret. */
#define CP_SECRET_MAX_BYTES 4096
/* What a new secret (a created file, or a per-process secret) consists of. */
#define CP_SECRET_NEW_BYTES 32

typedef struct {
    unsigned char key[CP_SECRET_MAX_BYTES];
    size_t len;
} cp_secret;

/* CP_SECRET_NEW_BYTES random bytes (getrandom) for this process only. -1 with err. */
int cp_secret_random(cp_secret *out, char *err, size_t errcap);

/* n bytes from getrandom() (retried on EINTR) into buf. 0, or -1 with errno. */
int cp_random_bytes(unsigned char *buf, size_t n);

/* Read the secret from path, or create the file when it does not exist (*created then
 * says so; the caller tells the operator). -1 with a message naming the file when it is
 * unreadable, not a regular file, not owned by the server's user, open to group or
 * others, shorter than CP_SECRET_MIN_BYTES or longer than CP_SECRET_MAX_BYTES. */
int cp_secret_load_file(cp_secret *out, const char *path, bool *created, char *err, size_t errcap);

void cp_secret_wipe(cp_secret *s);

#endif
