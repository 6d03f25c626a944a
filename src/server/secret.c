/* codepane-server: the session secret (see secret.h). Everything here runs once, at
 * start, before any thread of the server exists; failures are refusals to start, so each
 * message names the file and says what to do about it. */
#define _GNU_SOURCE
#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* The only permission bits a secret file may have: the owner's. */
#define SECRET_FILE_MODE  0600
#define GROUP_OTHER_BITS  077
#define MSG_SECRET_PREFIX "--session-secret-file: "

static void set_err(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

int cp_random_bytes(unsigned char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(buf + got, n - got, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

int cp_secret_random(cp_secret *out, char *err, size_t errcap)
{
    out->len = 0;
    if (cp_random_bytes(out->key, CP_SECRET_NEW_BYTES) != 0) {
        set_err(err, errcap, "no randomness for the session secret: %s", strerror(errno));
        return -1;
    }
    out->len = CP_SECRET_NEW_BYTES;
    return 0;
}

/* Check an open secret file the way ssh checks a private key, then read it whole.
 * Closes fd. */
static int read_secret(cp_secret *out, int fd, const char *path, char *err, size_t errcap)
{
    struct stat st;
    int rc = -1;
    if (fstat(fd, &st) != 0) {
        set_err(err, errcap, MSG_SECRET_PREFIX "cannot stat %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        set_err(err, errcap, MSG_SECRET_PREFIX "%s is not a regular file", path);
        goto out;
    }
    if (st.st_uid != geteuid()) {
        set_err(err, errcap,
                MSG_SECRET_PREFIX "%s is owned by uid %u, not by the server's user (uid %u); "
                                  "anyone who can write it can forge session tokens",
                path, (unsigned)st.st_uid, (unsigned)geteuid());
        goto out;
    }
    if (st.st_mode & GROUP_OTHER_BITS) {
        set_err(err, errcap,
                MSG_SECRET_PREFIX "permissions %04o for %s are too open: the session secret "
                                  "must not be accessible by group or others (chmod 600 %s)",
                (unsigned)(st.st_mode & 07777), path, path);
        goto out;
    }
    /* Read one byte past the maximum, so an oversized file is noticed even if it grew
     * after the fstat. */
    unsigned char buf[CP_SECRET_MAX_BYTES + 1];
    size_t len = 0;
    while (len < sizeof buf) {
        ssize_t r = read(fd, buf + len, sizeof buf - len);
        if (r < 0) {
            if (errno == EINTR) continue;
            set_err(err, errcap, MSG_SECRET_PREFIX "cannot read %s: %s", path, strerror(errno));
            explicit_bzero(buf, sizeof buf);
            goto out;
        }
        if (r == 0) break;
        len += (size_t)r;
    }
    if (len < CP_SECRET_MIN_BYTES || len > CP_SECRET_MAX_BYTES) {
        if (len > CP_SECRET_MAX_BYTES)
            set_err(err, errcap,
                    MSG_SECRET_PREFIX "%s holds more than %d bytes; a session secret is %d to "
                                      "%d bytes",
                    path, CP_SECRET_MAX_BYTES, CP_SECRET_MIN_BYTES, CP_SECRET_MAX_BYTES);
        else
            set_err(err, errcap,
                    MSG_SECRET_PREFIX "%s holds %zu bytes; a session secret needs at least %d "
                                      "(delete the file to have a new one created)",
                    path, len, CP_SECRET_MIN_BYTES);
        explicit_bzero(buf, sizeof buf);
        goto out;
    }
    memcpy(out->key, buf, len);
    out->len = len;
    explicit_bzero(buf, sizeof buf);
    rc = 0;
out:
    close(fd);
    return rc;
}

/* Create path with a new secret. 0: created (out filled); 1: the file exists (someone
 * created it since we looked); -1: failed with err, and nothing is left behind. */
static int create_secret(cp_secret *out, const char *path, char *err, size_t errcap)
{
    /* O_EXCL: never truncate or follow into a file that appeared meanwhile (a symlink
     * included); the mode is set again after the umask had its say. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, SECRET_FILE_MODE);
    if (fd < 0) {
        if (errno == EEXIST) return 1;
        set_err(err, errcap, MSG_SECRET_PREFIX "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    const char *what = NULL;
    if (fchmod(fd, SECRET_FILE_MODE) != 0)
        what = "set the mode of";
    else if (cp_secret_random(out, err, errcap) != 0)
        what = "draw random bytes for";
    size_t done = 0;
    while (!what && done < out->len) {
        ssize_t w = write(fd, out->key + done, out->len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (w == 0) errno = EIO;
            what = "write";
            break;
        }
        done += (size_t)w;
    }
    /* The secret must be on disk before any token derived from it leaves the process. */
    if (!what && fsync(fd) != 0) what = "sync";
    if (close(fd) != 0 && !what) what = "close";
    if (what) {
        int e = errno;
        unlink(path);
        cp_secret_wipe(out);
        set_err(err, errcap, MSG_SECRET_PREFIX "cannot %s %s: %s", what, path, strerror(e));
        return -1;
    }
    return 0;
}

int cp_secret_load_file(cp_secret *out, const char *path, bool *created, char *err, size_t errcap)
{
    *created = false;
    out->len = 0;
    /* Twice at most: a file that another process creates between our open and our
     * O_EXCL create is read on the second pass. */
    for (int pass = 0; pass < 2; pass++) {
        /* O_NONBLOCK: a FIFO at the path must not hang the start; reads of a regular
         * file ignore it. */
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd >= 0) return read_secret(out, fd, path, err, errcap);
        if (errno != ENOENT) {
            set_err(err, errcap, MSG_SECRET_PREFIX "cannot open %s: %s", path, strerror(errno));
            return -1;
        }
        int rc = create_secret(out, path, err, errcap);
        if (rc <= 0) {
            *created = rc == 0;
            return rc;
        }
    }
    set_err(err, errcap, MSG_SECRET_PREFIX "%s keeps appearing and disappearing", path);
    return -1;
}

void cp_secret_wipe(cp_secret *s)
{
    explicit_bzero(s, sizeof *s);
}
