/* codepane-server: static files of the web root (the playground), served with a strict
 * path check (sandbox.md D12): the URL path is percent-decoded exactly once; NUL, "..",
 * "." and empty segments and backslashes are refused; the file is opened with
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) relative to the root directory's fd,
 * so neither a crafted path nor a symlink inside the root can reach outside it.
 *
 * Ownership: cp_static owns the root directory fd until cp_static_free. */
#ifndef CP_STATIC_H
#define CP_STATIC_H

#include <stdbool.h>
#include <stddef.h>

#include <civetweb.h>

typedef struct cp_static cp_static;

int cp_static_open(cp_static **out, const char *root, char *err, size_t errcap);
void cp_static_free(cp_static *st);

/* Answer GET (or HEAD) of raw_path (the undecoded path, no query). "/" and paths
 * ending in "/" serve index.html. Returns the HTTP status it sent (200, 400, 404, 500). */
int cp_static_serve(cp_static *st, struct mg_connection *conn, const char *raw_path, bool head);

#endif
