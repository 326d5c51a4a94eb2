/* shmwarden.h — libshmwarden: share POSIX shared memory between processes through a
 * shmwarden manager (or PyTorch's torch_shm_manager), so that no object outlives its users
 * even when processes — the manager included — are SIGKILLed.
 *
 * The model is libshm's, PyTorch's own client:
 *
 *   1. A process gets a manager: it spawns one (shmw_spawn) or connects to the socket of one
 *      that another process of the tree spawned (shmw_connect). The socket path is the
 *      "handle" to pass to other processes, alongside object names.
 *   2. shmw_create() picks a fresh name, registers it with the manager (which journals it)
 *      and only then creates, sizes and maps the object. Whatever happens to this process
 *      afterwards, the manager — or the `shmwarden recover`/`sweep` commands after it dies —
 *      unlinks the object once nobody uses it.
 *   3. Other processes shmw_open() the object by name (they register it too).
 *   4. Everyone shmw_free()s what they created or opened; the creator's free unlinks it.
 *
 *   struct shmw_manager *m;
 *   struct shmw_segment *seg;
 *   if (shmw_spawn(NULL, 0, &m) < 0 || shmw_create(m, 1 << 20, 0, &seg) < 0)
 *           errx(1, "%s", shmw_errmsg());
 *   memset(shmw_data(seg), 0, shmw_size(seg));   ... pass shmw_name(seg) on ...
 *   shmw_free(seg);
 *   shmw_close(m);
 *
 * Errors. Every function that can fail returns a negative errno value (or, for the few that
 * return a pointer or a size, says how it reports failure). The library never prints and
 * never exits. shmw_errmsg() gives the calling thread a sentence about its last failure,
 * e.g. "manager at /tmp/shmwarden-Ab12Cd/manager.sock is gone (send: Broken pipe)".
 * Codes with a meaning of their own here:
 *   -ENOTCONN   the manager went away (it died or was killed); see SHMW_RESPAWN
 *   -ETIMEDOUT  the manager did not answer a registration within 1 s (as libshm), or did not
 *               print its socket path within 10 s of being spawned
 *   -EPROTO     the manager answered something other than the protocol allows
 *   -EIO        a spawned manager printed nothing, or printed "ERROR: ..." (the message
 *               carries its words, e.g. "set TMPDIR to a shorter directory")
 *   -EINVAL     a bad argument (NULL, zero size, invalid name or prefix, unknown flag)
 * and system errors pass through (-ENOENT, -ENOMEM, -EFBIG, -ENOSPC, -EMFILE, ...).
 *
 * Threads. A struct shmw_manager may be shared by any number of threads: it holds one
 * connection, and a request and its answer are one critical section under its mutex.
 * A struct shmw_segment belongs to whoever holds it; calls on one segment must not race
 * with shmw_free() of that segment (as with free(3)). Creating one handle per manager per
 * process and sharing it is the intended use (it is what libshm does).
 *
 * fork(). A child may keep using every handle and segment it inherited. Its first request
 * opens a connection of its own (sharing the parent's socket would mix up their answers);
 * the parent's connection is untouched. Only the process that created an object unlinks it:
 * a child freeing an inherited segment unmaps it and tells the manager, nothing more.
 * This relies on fork(2) from the C library (pthread_atfork handlers run); a raw clone(2)
 * or vfork(2) child must not call into the library.
 *
 * Signals. Calls restart after EINTR. The library never raises SIGPIPE (it uses
 * MSG_NOSIGNAL) and never changes signal dispositions. A spawned manager is started with a
 * double fork, so the caller never has a child to reap (one short-lived intermediate child
 * is reaped before shmw_spawn returns).
 */
#ifndef SHMWARDEN_H
#define SHMWARDEN_H

#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define SHMW_API __attribute__((visibility("default")))
#else
#define SHMW_API
#endif

#define SHMW_VERSION "0.2.0"

/* A connection to one manager, spawned or connected to. Opaque; see shmw_spawn(). */
struct shmw_manager;
/* One mapped shared-memory object. Opaque; see shmw_create() and shmw_open(). */
struct shmw_segment;

/* The environment variable that names the manager binary when shmw_spawn() is given
 * NULL (ignored in set-user-ID programs, see secure_getenv(3)). */
#define SHMW_MANAGER_ENV "SHMWARDEN_MANAGER"

/* Longest name prefix shmw_set_prefix() accepts (bytes, without the NUL): names are
 * PREFIX<pid>_<8 hex>_<counter> and must stay under libshm's 60-byte limit. */
#define SHMW_PREFIX_MAX 29
/* Longest object name, without the NUL (the wire protocol's field is 60 bytes). */
#define SHMW_NAME_MAX 59

/* Flags for shmw_spawn() and shmw_connect(). */
enum {
	/* If the manager turns out to be gone (-ENOTCONN), spawn a fresh one and retry the
	 * request once. The fresh manager adopts and reclaims what the dead one left; the
	 * handle's socket path changes (see shmw_socket_path()). Without this flag, a dead
	 * manager makes every later request fail with -ENOTCONN. */
	SHMW_RESPAWN = 1 << 0,
};

/* Flags for shmw_create(). */
enum {
	/* Allocate the object's memory now (posix_fallocate), so that a full /dev/shm is
	 * reported as -ENOSPC here rather than as SIGBUS on first touch. Costs time
	 * proportional to the size. */
	SHMW_CREATE_RESERVE = 1 << 0,
};

/* Flags for shmw_open(). */
enum {
	/* Map the object read-only (it is opened O_RDONLY; writing to it faults). */
	SHMW_OPEN_RDONLY = 1 << 0,
};

/* ---- Managers ----------------------------------------------------------------------- */

/* Spawns a manager the way libshm does and connects to it.
 *
 * manager_path is the manager executable; NULL means $SHMWARDEN_MANAGER, else the one
 * installed with the library (PREFIX/bin/torch_shm_manager). It is exec'd with argv[0]
 * "torch_shm_manager" and no arguments, stdin and stderr inherited and stdout a pipe; its
 * first line is the socket path. It inherits this process's environment: TMPDIR chooses
 * where its directory (and journal) lives.
 * flags: 0 or SHMW_RESPAWN.
 *
 * On success stores a new handle in *out and returns 0; the caller owns it and releases it
 * with shmw_close(). On failure *out is untouched and:
 *   -ENOENT, -EACCES, ...  the executable could not be exec'd ("no response from manager at
 *                          PATH (exec: ...)")
 *   -EIO                   it printed nothing ("no response from manager at PATH"), or a line
 *                          "ERROR: why" (the message is "manager at PATH failed to start: why")
 *   -ETIMEDOUT             it printed no line within 10 s
 *   -EPROTO                it printed something that is not an absolute socket path
 *   -ENOENT, -ECONNREFUSED, -ETIMEDOUT, ...  the socket it printed could not be connected
 *                          to (as for shmw_connect())
 * Thread-safe. The manager runs in its own session and outlives this process; it exits by
 * itself 2 s after its last client disconnects, unlinking what is still registered. */
SHMW_API int shmw_spawn(const char *manager_path, unsigned int flags, struct shmw_manager **out);

/* Connects to a running manager's socket (the path another process got from shmw_spawn()
 * or shmw_socket_path(), or PyTorch's manager handle).
 * flags: 0 or SHMW_RESPAWN (a fresh manager is then found as shmw_spawn(NULL) would).
 *
 * On success stores a new handle in *out and returns 0; release it with shmw_close().
 * On failure *out is untouched and the connect(2) error is returned: -ENOENT (no such
 * socket), -ECONNREFUSED (nobody listens: the manager is gone), -ETIMEDOUT (not accepted
 * within 1 s: the manager is stopped or swamped), -ENAMETOOLONG (the path does not fit a
 * Unix socket address), -EINVAL (NULL or empty path). Thread-safe. */
SHMW_API int shmw_connect(const char *socket_path, unsigned int flags, struct shmw_manager **out);

/* Releases the caller's reference to the handle. The connection is closed once the last
 * segment created or opened through the handle has been freed too, so segments may outlive
 * this call. The manager learns nothing from it beyond the hang-up; objects still
 * registered stay so until freed or until the manager shuts down. NULL is a no-op.
 * Must not race with other calls on the same handle. */
SHMW_API void shmw_close(struct shmw_manager *m);

/* Sets the prefix of the names shmw_create() chooses from now on (default "/shmw_"), e.g.
 * "/myapp_" gives "/myapp_<pid>_<random>_<counter>". A prefix starts with '/', contains no
 * other '/', and is at most SHMW_PREFIX_MAX bytes. The string is copied.
 * Returns 0, or -EINVAL for a bad prefix. Thread-safe. */
SHMW_API int shmw_set_prefix(struct shmw_manager *m, const char *prefix);

/* Copies the manager's socket path (NUL-terminated) into buf, for passing to other
 * processes; it changes when SHMW_RESPAWN replaced a dead manager.
 * Returns the path's length, or -ERANGE if buf (len bytes) is too small, or -EINVAL.
 * Thread-safe. */
SHMW_API int shmw_socket_path(struct shmw_manager *m, char *buf, size_t len);

/* The pid of the manager process at the other end of the connection (SO_PEERCRED),
 * connecting first if this process has no connection yet. Useful to watch or signal it.
 * Returns the pid, or a negative errno as for shmw_create() (-ENOTCONN: it is gone).
 * Thread-safe. */
SHMW_API pid_t shmw_manager_pid(struct shmw_manager *m);

/* ---- Segments ----------------------------------------------------------------------- */

/* Creates a new shared-memory object of size bytes and maps it read-write, zero-filled.
 * The name is chosen here (see shmw_set_prefix()), registered with the manager — the call
 * waits up to 1 s for its "OK" — and only then created with O_EXCL and mode 0600; a name
 * that exists already is never touched, another one is tried. The caller owns the object:
 * its shmw_free() unlinks it.
 * flags: 0 or SHMW_CREATE_RESERVE.
 *
 * On success stores a new segment in *out and returns 0; the segment holds a reference to
 * m (see shmw_close()). On failure nothing is left behind (a name registered for nothing
 * is freed again) and:
 *   -EINVAL          size is 0, or an unknown flag
 *   -EFBIG, -ENOMEM  size is larger than a file or the address space allows
 *   -ENOSPC          (with SHMW_CREATE_RESERVE) /dev/shm cannot hold it
 *   -EEXIST          no free name was found in 8 tries
 *   -ENOTCONN, -ETIMEDOUT, -EPROTO  the manager is gone, silent or confused
 * Thread-safe. */
SHMW_API int shmw_create(struct shmw_manager *m, size_t size, unsigned int flags,
			 struct shmw_segment **out);

/* Opens and maps an existing object by name (as shmw_name() gave it to another process),
 * registering the name with the manager first, as libshm's receivers do: if its creator
 * dies, this manager too will unlink the object once nobody uses it. The whole object is
 * mapped (its current size). The caller does not own it: shmw_free() does not unlink it.
 * flags: 0 or SHMW_OPEN_RDONLY.
 *
 * On success stores a new segment in *out and returns 0. On failure:
 *   -EINVAL     name is not a valid shm name ("/x", at most SHMW_NAME_MAX bytes, no other
 *               '/'), the object is empty, or an unknown flag
 *   -ENOENT     no such object (e.g. its owner freed it already)
 *   -EACCES     it belongs to someone else
 *   -ENOTCONN, -ETIMEDOUT, -EPROTO  as for shmw_create()
 * Thread-safe. */
SHMW_API int shmw_open(struct shmw_manager *m, const char *name, unsigned int flags,
		       struct shmw_segment **out);

/* Unmaps the segment, unlinks the object if this process created it, then tells the manager
 * (a free record: no answer is awaited). The segment is released whatever happens: never
 * use it again. NULL is a no-op returning 0.
 * Returns 0, or -ENOTCONN (the manager is gone: the object was still unmapped and, if ours,
 * unlinked), or the shm_unlink(3) error. Thread-safe with respect to other segments. */
SHMW_API int shmw_free(struct shmw_segment *seg);

/* The mapping's first byte. Valid until shmw_free(). */
SHMW_API void *shmw_data(const struct shmw_segment *seg);
/* The mapping's size in bytes. */
SHMW_API size_t shmw_size(const struct shmw_segment *seg);
/* The object's name, e.g. "/shmw_1234_9f3a2c1b_0": pass it to shmw_open() in another
 * process. Owned by the segment; valid until shmw_free(). */
SHMW_API const char *shmw_name(const struct shmw_segment *seg);
/* 1 if this process created the object (its shmw_free() unlinks it), else 0. */
SHMW_API int shmw_is_owner(const struct shmw_segment *seg);

/* ---- Errors and version ------------------------------------------------------------- */

/* A sentence describing the calling thread's most recent failure in this library (what
 * failed, where, and why). Thread-local: other threads' failures do not change it.
 * Meaningful right after a call returned an error; unspecified after a success. The string
 * belongs to the library and stays valid until the thread's next call into it. Never NULL. */
SHMW_API const char *shmw_errmsg(void);

/* A short description of an error code returned by this library (negative or positive),
 * with this library's meanings for -ENOTCONN, -ETIMEDOUT, -EPROTO and -EIO. Static string;
 * thread-safe. */
SHMW_API const char *shmw_strerror(int err);

/* The library's version, e.g. "0.2.0" (compare with SHMW_VERSION to detect a header/library
 * mismatch). Static string. */
SHMW_API const char *shmw_version(void);

#ifdef __cplusplus
}
#endif

#endif
