/* net.c — see net.h. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "net.h"
#include "util.h"

/* What lstat found, for a message. */
static const char *net_file_type(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
		return "a regular file";
	case S_IFDIR:
		return "a directory";
	case S_IFLNK:
		return "a symbolic link";
	case S_IFIFO:
		return "a FIFO";
	case S_IFCHR:
		return "a character device";
	case S_IFBLK:
		return "a block device";
	default:
		return "of an unknown type";
	}
}

int net_unix_listen(const char *path, int backlog, char *err, size_t errlen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sun.sun_path)) {
		util_err(err, errlen, "socket path %s is longer than %zu bytes", path,
			 sizeof(sun.sun_path) - 1);
		return -1;
	}
	util_strlcpy(sun.sun_path, path, sizeof(sun.sun_path));
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		util_err(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	/* The socket file is created by bind with the umask applied; tighten it explicitly
	 * so nothing depends on the umask we inherited from a client. */
	mode_t old = umask(0177);
	int rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (rc < 0) {
		int saved = errno;
		struct stat st;
		if (saved == EADDRINUSE && lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode))
			util_err(err, errlen, "bind %s: the path exists and is not a socket (%s)",
				 path, net_file_type(st.st_mode));
		else
			util_err(err, errlen, "bind %s: %s", path, strerror(saved));
		goto fail;
	}
	if (chmod(path, 0600) < 0) {
		util_err(err, errlen, "chmod %s: %s", path, strerror(errno));
		goto fail_unlink;
	}
	if (listen(fd, backlog) < 0) {
		util_err(err, errlen, "listen %s: %s", path, strerror(errno));
		goto fail_unlink;
	}
	return fd;
fail_unlink:
	unlink(path);
fail:
	close(fd);
	return -1;
}

int net_accept(int lfd)
{
	return accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

int net_peercred(int fd, pid_t *pid, uid_t *uid)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -1;
	*pid = cred.pid;
	*uid = cred.uid;
	return 0;
}
