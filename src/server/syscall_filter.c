/* codepane-server: the sandbox's syscall deny list. See syscall_filter.h and
 * shared/spec/sandbox.md §3.6, whose list this follows rule for rule.
 *
 * Why a deny list (default ALLOW): namespaces, the unprivileged per-slot uid,
 * NO_NEW_PRIVS and --disable-userns carry the main load; the filter only shrinks the
 * kernel attack surface and closes covert channels. An allow list would be stronger
 * but breaks with every runtime upgrade (JVM, V8 and CPython add syscalls). The list
 * was measured to leave python, node, java and Rscript working (threads, subprocess,
 * multiprocessing, worker_threads, system()). */
#define _GNU_SOURCE

#include "syscall_filter.h"

#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/sched.h>

/* Denied outright with EPERM: namespace and mount changes, debugging and introspection
 * of other processes, and kernel surface no snippet needs (keyrings, BPF, modules,
 * clocks, NUMA page migration...). get_mempolicy stays allowed: the JVM probes NUMA. */
static const char *const k_deny_eperm[] = {
    /* namespaces and mounts */
    "unshare",
    "setns",
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "chroot",
    /* other processes */
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "perf_event_open",
    /* kernel attack surface */
    "bpf",
    "userfaultfd",
    "keyctl",
    "add_key",
    "request_key",
    "name_to_handle_at",
    "open_by_handle_at",
    "lookup_dcookie",
    "uselib",
    "fanotify_init",
    "iopl",
    "ioperm",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "swapoff",
    "syslog",
    "acct",
    "quotactl",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    /* NUMA and page migration */
    "move_pages",
    "migrate_pages",
    "mbind",
    "set_mempolicy",
};

/* Denied with ENOSYS, so that libraries fall back instead of failing: clone3 (seccomp
 * cannot inspect its struct argument, so CLONE_NEWUSER could hide there; glibc falls
 * back to clone, whose flags we can check), the new mount API (CVE-2021-41133) and
 * io_uring (it can open any socket family behind the socket() rule's back). */
static const char *const k_deny_enosys[] = {
    "clone3", "open_tree",     "move_mount",     "fsopen",         "fsconfig",          "fsmount",
    "fspick", "mount_setattr", "io_uring_setup", "io_uring_enter", "io_uring_register",
};

/* socket() families that stay allowed; every other value (NETLINK, PACKET, VSOCK,
 * BLUETOOTH, ALG, ...) gets EAFNOSUPPORT. AF_INET/INET6 only ever reach the private
 * loopback of the run's network namespace. */
#define CP_SECCOMP_FAMILY_MAX 10 /* = AF_INET6, the highest allowed family */

static int fail(char *err, size_t errcap, const char *what, int rc)
{
    snprintf(err, errcap, "seccomp: %s: %s", what, strerror(rc < 0 ? -rc : rc));
    return -1;
}

static int add_by_name(scmp_filter_ctx ctx, uint32_t action, const char *name, char *err,
                       size_t errcap)
{
    /* A name libseccomp does not know is a typo or a too-old libseccomp: fail closed
     * rather than silently allow. Names that exist but not on this architecture (umount
     * on x86_64) resolve to pseudo numbers that libseccomp drops by itself. */
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) {
        snprintf(err, errcap, "seccomp: unknown syscall name %s", name);
        return -1;
    }
    int rc = seccomp_rule_add(ctx, action, nr, 0);
    return rc < 0 ? fail(err, errcap, name, rc) : 0;
}

static int add_rules(scmp_filter_ctx ctx, char *err, size_t errcap)
{
    for (size_t i = 0; i < sizeof k_deny_eperm / sizeof *k_deny_eperm; i++)
        if (add_by_name(ctx, SCMP_ACT_ERRNO(EPERM), k_deny_eperm[i], err, errcap) < 0) return -1;
    for (size_t i = 0; i < sizeof k_deny_enosys / sizeof *k_deny_enosys; i++)
        if (add_by_name(ctx, SCMP_ACT_ERRNO(ENOSYS), k_deny_enosys[i], err, errcap) < 0) return -1;

    int rc;
    /* clone(CLONE_NEWUSER): a nested user namespace even if --disable-userns were lost. */
    struct scmp_arg_cmp newuser = {
        .arg = 0, .op = SCMP_CMP_MASKED_EQ, .datum_a = CLONE_NEWUSER, .datum_b = CLONE_NEWUSER};
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1, newuser);
    if (rc < 0) return fail(err, errcap, "clone rule", rc);

    /* Terminal injection (CVE-2017-5226, CVE-2023-28100). The kernel truncates the
     * ioctl request to 32 bits, so compare only the low 32: a plain 64-bit compare is
     * dodged by setting high bits (CVE-2019-10063). */
    static const unsigned long tty_ioctls[] = {TIOCSTI, TIOCLINUX};
    for (size_t i = 0; i < sizeof tty_ioctls / sizeof *tty_ioctls; i++) {
        struct scmp_arg_cmp req = {
            .arg = 1, .op = SCMP_CMP_MASKED_EQ, .datum_a = 0xffffffffu, .datum_b = tty_ioctls[i]};
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1, req);
        if (rc < 0) return fail(err, errcap, "ioctl rule", rc);
    }

    /* socket(): allow AF_UNIX (1), AF_INET (2), AF_INET6 (10) only. libseccomp cannot
     * say "not in a set" in one rule, so deny the gaps one by one and everything above
     * the highest allowed family (64-bit compare: high garbage bits are denied too). */
    for (uint64_t fam = 0; fam < CP_SECCOMP_FAMILY_MAX; fam++) {
        if (fam == AF_UNIX || fam == AF_INET) continue;
        struct scmp_arg_cmp eq = {.arg = 0, .op = SCMP_CMP_EQ, .datum_a = fam, .datum_b = 0};
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1, eq);
        if (rc < 0) return fail(err, errcap, "socket rule", rc);
    }
    struct scmp_arg_cmp gt = {
        .arg = 0, .op = SCMP_CMP_GT, .datum_a = CP_SECCOMP_FAMILY_MAX, .datum_b = 0};
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1, gt);
    if (rc < 0) return fail(err, errcap, "socket rule", rc);
    return 0;
}

int cp_syscall_filter_build(char *err, size_t errcap)
{
    _Static_assert(AF_INET6 == CP_SECCOMP_FAMILY_MAX, "AF_INET6 is the highest allowed family");
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx) {
        snprintf(err, errcap, "seccomp: seccomp_init failed");
        return -1;
    }
    int fd = -1;
    /* Only the native ABI is in the filter; a syscall made through any other (x86 via
     * int 0x80, x32) would dodge the rules, so it kills the process. */
    int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    if (rc < 0) {
        fail(err, errcap, "bad-arch action", rc);
        goto out;
    }
    if (add_rules(ctx, err, errcap) < 0) goto out;

    fd = memfd_create("codepane-seccomp", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
        fail(err, errcap, "memfd_create", errno);
        goto out;
    }
    rc = seccomp_export_bpf(ctx, fd);
    if (rc < 0) {
        fail(err, errcap, "export", rc);
        goto bad_fd;
    }
    /* Sealed so that no later bug can alter the filter every run shares. */
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0) {
        fail(err, errcap, "seal", errno);
        goto bad_fd;
    }
    goto out;
bad_fd:
    close(fd);
    fd = -1;
out:
    seccomp_release(ctx);
    return fd;
}
