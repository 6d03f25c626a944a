/* codepane-server: the sandbox's seccomp deny list (shared/spec/sandbox.md §3.6). Named
 * syscall_filter, not seccomp, so that it never shadows libseccomp's <seccomp.h>.
 *
 * Built once with libseccomp and exported as raw BPF (an array of struct sock_filter,
 * the format `bwrap --seccomp FD` loads) into a sealed memfd. bwrap reads the filter
 * from the fd's current offset, so every run needs its own open file description of
 * it (sandbox.c reopens the memfd through /proc/self/fd for each spawn).
 *
 * Ownership: the caller owns the returned memfd (O_CLOEXEC). */
#ifndef CP_SYSCALL_FILTER_H
#define CP_SYSCALL_FILTER_H

#include <stddef.h>

/* Build the filter for the native architecture (every other ABI, x32 included, kills
 * the process). Returns a read-only, sealed memfd, or -1 with err. */
int cp_syscall_filter_build(char *err, size_t errcap);

#endif
