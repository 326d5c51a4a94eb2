/* no_lease.c — runs a command on a kernel that grants no file leases, for test_lease.py.
 *
 *   no_lease CMD [ARG]...
 *
 * Installs a seccomp filter under which fcntl(fd, F_SETLEASE, ...) fails with EINVAL, what
 * the kernel answers with fs.leases-enable set to 0 (fs/locks.c, generic_add_lease), then
 * execs CMD. The sysctl is global (not per namespace) and other engineers' tests share
 * this machine: a filter on our own process tree is how a test meets that kernel without
 * changing the host. Every other system call, fcntl's other commands included, is
 * untouched; a seccomp filter CMD installs itself (the sweeper's) stacks on this one.
 * Exits 3 with "unsupported: ..." when the filter cannot be installed here.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define NO_LEASE_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NO_LEASE_ARCH AUDIT_ARCH_AARCH64
#endif

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: no_lease CMD [ARG]...\n");
		return 2;
	}
#ifndef NO_LEASE_ARCH
	fprintf(stderr, "unsupported: no seccomp architecture constant for this build\n");
	return 3;
#else
	struct sock_filter prog[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NO_LEASE_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_fcntl, 0, 3),
		/* the command: the low 32 bits of the second argument */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, F_SETLEASE, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EINVAL),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog fprog = { .len = sizeof(prog) / sizeof(prog[0]), .filter = prog };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog) < 0) {
		fprintf(stderr, "unsupported: seccomp filter: %s\n", strerror(errno));
		return 3;
	}
	execvp(argv[1], argv + 1);
	fprintf(stderr, "no_lease: %s: %s\n", argv[1], strerror(errno));
	return 127;
#endif
}
