"""test_hardening.py — the manager and the sweeper under hostile conditions (issue 5).

Resource exhaustion against the real manager: thousands of simultaneous connections,
EMFILE on accept, a client that floods registrations and never reads its OKs, a full
disk under the journal (a tiny tmpfs in a private mount namespace). Filesystem attacks
on a root sweep: symlinks in place of the lock, socket, -wal and -shm, a directory
swapped for a symlink to another user's manager, hostile names in a user's journal.
Shutdown on SIGINT and SIGHUP. The manager and the sweeper under valgrind.

Each test works in a harness Sandbox (private temp base, unique object prefix) and
cleans up what it made, even on failure. Tests that need root (other users, mounts)
say SKIP and pass when not run as root.
"""
import contextlib
import hashlib
import json
import os
import pwd
import resource
import secrets
import select
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import SHM, Client, Sandbox, as_user, journal_names, record  # noqa: E402

PY = "/usr/bin/python3"
HERE = os.path.abspath(__file__)
FAST = ["--shutdown-timeout", "300"]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def skip(test, why):
    print("SKIP %s: %s" % (test, why))


def spawn(sb, args=(), preexec_fn=None, errlog=None, env=None, timeout=10.0):
    """`shmwarden manager ARGS`, spawned like libshm spawns it, with optional rlimits
    (preexec_fn) and stderr to a file: a pipe nobody reads would fill and block the
    manager's log writes, which would hide a busy loop."""
    err = open(errlog, "wb") if errlog else subprocess.PIPE
    try:
        proc = subprocess.Popen(["shmwarden", "manager"] + list(args),
                                executable=harness.SHMWARDEN, stdout=subprocess.PIPE,
                                stderr=err, stdin=subprocess.DEVNULL, env=env or sb.env,
                                preexec_fn=preexec_fn)
    finally:
        if errlog:
            err.close()
    sb.track(proc)
    line = b""
    deadline = time.monotonic() + timeout
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        r, _, _ = select.select([proc.stdout], [], [], max(left, 0))
        expect(r, "manager printed no line within %.1fs" % timeout)
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            break
        line += chunk
    m = harness.Manager(proc, line.decode(errors="replace").rstrip("\n"))
    expect(m.sock, "manager failed to start: %r" % m.line)
    return m


def cpu_seconds(pid):
    """utime + stime of a process, from /proc/PID/stat."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def heard(client, seconds):
    """What the manager sent on client within seconds (b"" when it closed), or None."""
    r, _, _ = select.select([client.sock], [], [], seconds)
    if not r:
        return None
    try:
        return client.sock.recv(64)
    except ConnectionResetError:
        return b""


def read_log(path):
    with open(path, "rb") as f:
        return f.read().decode(errors="replace")


@contextlib.contextmanager
def nofile_limit(n):
    """Raises this process's RLIMIT_NOFILE for the block; a spawned manager inherits it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    new_hard = hard
    if hard != resource.RLIM_INFINITY and hard < n:
        if os.geteuid() != 0:
            raise AssertionError("RLIMIT_NOFILE hard limit %d is below %d (raise it, or "
                                 "run as root)" % (hard, n))
        new_hard = n
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, n), new_hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


class OkCollector:
    """Reads the OKs of many non-blocking client sockets at once (epoll: select() stops
    at descriptor 1024)."""

    def __init__(self, socks):
        self.sel = selectors.DefaultSelector()
        self.got = {}
        for s in socks:
            self.sel.register(s, selectors.EVENT_READ)
            self.got[s] = b""

    def ok(self):
        return [s for s, b in self.got.items() if b == b"OK"]

    def run(self, until, timeout):
        """Reads until until(self) is true or timeout passes; anything but OK fails."""
        deadline = time.monotonic() + timeout
        while not until(self):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            for key, _ in self.sel.select(min(left, 0.2)):
                s = key.fileobj
                try:
                    chunk = s.recv(16)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    chunk = b""
                if not chunk:
                    self.sel.unregister(s)
                    continue
                self.got[s] += chunk
                expect(len(self.got[s]) <= 2 and b"OK".startswith(self.got[s]),
                       "unexpected bytes from the manager: %r" % self.got[s])
                if self.got[s] == b"OK":
                    self.sel.unregister(s)
        return True

    def forget(self, s):
        """Stops watching s (before the caller closes it)."""
        with contextlib.suppress(KeyError):
            self.sel.unregister(s)
        self.got.pop(s, None)


def swept_clean(sb):
    """A sweep of the base exits 0 and leaves no manager directory. Its callers' clients
    are all gone and never created their names' objects: no client can still be
    creating, so no grace (--prune-grace 0, as an epilog after the job); with the default
    grace the sweep would keep those young rows (test_young.py)."""
    r = sb.run(["sweep", "--tmpdir", sb.tmp, "--prune-grace", "0"])
    expect(r.returncode == 0, "sweep exit %d: %s" % (r.returncode, r.stderr))
    expect(sb.manager_dirs() == [], "directory left: %s" % sb.manager_dirs())


# ---- resource exhaustion ---------------------------------------------------------------

def test_5000_simultaneous_connections():
    n = 5000
    with nofile_limit(n + 256), Sandbox("conn") as sb:
        m = spawn(sb, ["--no-reclaim"] + FAST)
        socks = []
        try:
            deadline = time.monotonic() + 30
            for _ in range(n):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
                socks.append(s)
                while True:  # a full listen backlog says EAGAIN: the manager is accepting
                    try:
                        s.connect(m.sock)
                        break
                    except BlockingIOError:
                        expect(time.monotonic() < deadline, "connecting took over 30 s")
                        time.sleep(0.001)
            # Every connection is open before any registers: they are all in the
            # manager's poll set at once.
            nfd = len(os.listdir("/proc/%d/fd" % m.pid))
            expect(nfd >= n, "the manager holds %d descriptors, not %d connections" % (nfd, n))
            for i, s in enumerate(socks):
                s.send(record(sb.name(i)))
            oks = OkCollector(socks)
            oks.run(lambda c: len(c.ok()) == n, 30)
            expect(len(oks.ok()) == n, "%d of %d got OK" % (len(oks.ok()), n))
            expect(m.proc.poll() is None, "manager died")
            expect(len(journal_names(m.dir)) == n, "journal rows != %d" % n)
            print("# %d connections, manager RSS %d KiB" % (n, harness.rss_kib(m.pid)))
        finally:
            for s in socks:
                s.close()
        expect(m.wait(20) == 0, "manager did not shut down cleanly")
        # Its names were registered a moment ago and never created: the shutdown keeps
        # them journaled (their clients might create them next); with the clients gone,
        # a sweep without grace drops them.
        swept_clean(sb)


def test_emfile_on_accept_pauses_instead_of_spinning():
    limit, attempts = 64, 200
    with Sandbox("emfile") as sb:
        errlog = os.path.join(sb.tmp, "manager.err")
        m = spawn(sb, ["--no-reclaim"] + FAST, errlog=errlog,
                  preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit)))
        clients = []
        try:
            for i in range(attempts):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
                try:
                    s.connect(m.sock)
                except BlockingIOError:  # the listen backlog is full too
                    s.close()
                    continue
                s.send(record(sb.name(i)))
                clients.append(s)
            expect(len(clients) > limit + 50, "only %d clients connected" % len(clients))
            oks = OkCollector(clients)
            oks.run(lambda c: False, 1.0)
            served = oks.ok()
            # The manager needs a dozen descriptors of its own; the rest are clients.
            expect(limit - 24 <= len(served) < limit,
                   "%d clients served under a limit of %d" % (len(served), limit))
            # Saturated: every further accept fails with EMFILE. Level-triggered epoll
            # would report the listening socket again at once; the manager must sleep.
            t0, c0 = time.monotonic(), cpu_seconds(m.pid)
            time.sleep(2.0)
            used, wall = cpu_seconds(m.pid) - c0, time.monotonic() - t0
            print("# saturated at %d fds: %.2f s CPU in %.2f s" % (limit, used, wall))
            expect(used < 0.25, "manager used %.2f s CPU in %.2f s at EMFILE" % (used, wall))
            expect(m.proc.poll() is None, "manager died at EMFILE")
            expect("pausing new connections" in read_log(errlog), "no EMFILE warning logged")
            # Some served clients leave: waiting ones are accepted and get their OKs.
            leaving = served[:20]
            for s in leaving:
                oks.forget(s)
                clients.remove(s)
                s.close()
            before = len(oks.ok())
            oks.run(lambda c: len(c.ok()) >= before + 15, 3.0)
            expect(len(oks.ok()) >= before + 15,
                   "only %d waiting clients served after 20 left" % (len(oks.ok()) - before))
            expect(m.proc.poll() is None, "manager died")
        finally:
            for s in clients:
                s.close()
        expect(m.wait(20) == 0, "manager did not shut down cleanly: %s" % read_log(errlog)[-500:])


def test_flood_without_reading_oks_is_bounded():
    offered_max = 1_000_000  # 68 MB of registrations, if the manager would take them
    chunk_records = 1000
    with Sandbox("flood") as sb:
        m = spawn(sb, ["--no-reclaim"] + FAST)
        fl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        fl.connect(m.sock)
        fl.setblocking(False)
        good = m.client()
        try:
            offered = accepted = 0
            pending = b""
            last_progress = time.monotonic()
            deadline = last_progress + 5.0
            sel = selectors.DefaultSelector()
            sel.register(fl, selectors.EVENT_WRITE)
            # Push as fast as the kernel takes it; stop once the manager has stopped
            # reading for a second (or everything went in, which is the failure).
            while time.monotonic() < deadline:
                if not pending:
                    if offered >= offered_max:
                        break
                    pending = b"".join(record(sb.name("f%d" % (offered + i)))
                                       for i in range(chunk_records))
                    offered += chunk_records
                try:
                    n = fl.send(pending)
                    accepted += n
                    pending = pending[n:]
                    last_progress = time.monotonic()
                except BlockingIOError:
                    if time.monotonic() - last_progress > 1.0:
                        break
                    sel.select(0.1)
            taken = accepted // harness.RECORD.size
            print("# flood: offered %d records, the kernel took %d before the send blocked"
                  % (offered, taken))
            expect(time.monotonic() - last_progress > 1.0,
                   "the flooder was never blocked (%d records taken)" % taken)
            # Meanwhile a well-behaved client is served as usual.
            for i in range(100):
                good.register(sb.name("g%d" % i), timeout=1.0)
            rss = harness.rss_kib(m.pid)
            rows = len(journal_names(m.dir))
            print("# flood: manager RSS %d KiB, %d rows journaled" % (rss, rows))
            limit = (256 if harness.SANITIZED else 64) * 1024
            expect(rss < limit, "manager RSS %d KiB >= %d KiB" % (rss, limit))
            # Reading stops after a bounded backlog of unsent OKs: what was journaled
            # is a few thousand records, not what was offered.
            expect(rows < 100_000, "%d records journaled from a client reading nothing" % rows)
            expect(m.proc.poll() is None, "manager died")
        finally:
            fl.close()
            good.close()
        expect(m.wait(30) == 0, "manager did not shut down cleanly")
        swept_clean(sb)


# ---- a full disk under the journal -------------------------------------------------------

TMPFS_SIZE = 1024 * 1024
TMPFS_ROOM = 40 * 1024  # free bytes left beside the filler: a few WAL frames


def enospc_in_namespace(base, prefix):
    """Runs inside `unshare --mount --pid`: a tmpfs at BASE/fs is the manager's temp
    base; fill it, register until refused, free, make room, register again."""
    fs = os.path.join(base, "fs")
    os.mkdir(fs, 0o700)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%d,mode=0700" % TMPFS_SIZE, "tmpfs", fs],
                   check=True)
    errlog = os.path.join(base, "manager.err")

    class Box:  # enough of a Sandbox for spawn()
        env = dict(os.environ, TMPDIR=fs)
        procs = []

        def track(self, p):
            self.procs.append(p)
            return p

    box = Box()
    name = lambda i: "%sns%s" % (prefix, i)  # noqa: E731
    m = None
    try:
        # No prune pass during the test: its compaction would truncate the WAL and
        # give back room at a moment the test does not choose.
        m = spawn(box, ["--no-reclaim", "--prune-interval", "600000"] + FAST, errlog=errlog)
        c = Client(m.sock)
        oked = []
        for i in range(5):
            c.register(name(i))
            oked.append(name(i))
        st = os.statvfs(fs)
        filler = os.path.join(fs, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        left = st.f_bavail * st.f_frsize - TMPFS_ROOM
        zeros = bytes(65536)
        try:
            while left > 0:
                left -= os.write(fd, zeros[:min(left, len(zeros))])
        finally:
            os.close(fd)
        # Register until the journal cannot grow: that registration gets no OK.
        refused = None
        for i in range(5, 3000):
            c.send_raw(record(name(i)))
            try:
                c.recv_ok(1.0)
            except TimeoutError:
                refused = name(i)
                break
            oked.append(name(i))
        if refused is None:
            names = set(journal_names(m.dir))
            missing = [n for n in oked if n not in names]
            raise AssertionError("no registration refused on a full disk; %d of %d "
                                 "acknowledged names are not in the journal"
                                 % (len(missing), len(oked)))
        # The last name committed, which a receiver registers below; a registration on
        # another connection that takes its slot in the manager's cache of committed
        # names (src/regcache.c) is refused too, in a batch that is rolled back: the
        # rollback must give the slot back (the CI failure of 0323ec2, where the refused
        # registration happened to share the slot). SQLite 3.40 (bookworm) refuses it;
        # sid's found room for it in the WAL the refused commit had grown: committed,
        # it rightly took the slot, and the receiver below then needs a commit of its
        # own, which finds room as well or is refused (both are right).
        held = oked[-1]
        colliding = subprocess.run([os.path.join(harness.BUILD, "tools", "regcache_slot"), held,
                                    prefix + "nc", "1"], check=True, capture_output=True,
                                   text=True).stdout.split()
        displacer = Client(m.sock)
        displacer.send_raw(record(colliding[0]))
        rolled_back = heard(displacer, 1.0) is None
        if not rolled_back:
            oked.append(colliding[0])
        was = harness.registered_at(m.dir, held)
        # A receiver's registration of a name committed a moment ago (libshm's receiving
        # process registers what it received with the sender's manager) needs no write:
        # it is answered even now.
        # (Its object exists, as a received tensor's does: the client made it after
        # its OK; the manager's shutdown unlinks it.)
        os.close(os.open(harness.SHM + held, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        receiver = Client(m.sock)
        if rolled_back:
            receiver.register(held, timeout=2.0)
            expect(harness.registered_at(m.dir, held) == was,
                   "the receiver's registration was written again, not answered by the row")
        else:
            receiver.send_raw(record(held))
            got = heard(receiver, 1.2)
            expect(got is None or harness.registered_at(m.dir, held) != was,
                   "a displaced name's OK came without a commit: %r" % got)
        # But never ahead of a registration the same connection still waits for: OKs
        # are indistinguishable, and that client would take this one for the first's,
        # refused one.
        behind = Client(m.sock)
        behind.send_raw(record(name("behind")) + record(held))
        got = heard(behind, 1.2)
        expect(got is None, "a committed name's OK went ahead of a refused registration: "
                            "%r" % got)
        # Nor from the cache after one (a client that pipelines still waits for the
        # refused one's OK): such a connection is answered only through a commit, as
        # before the cache. Whether that commit finds room depends on SQLite (3.40 on
        # bookworm refuses it; a later one may have given WAL space back): an OK then
        # must come with the row written again.
        after = Client(m.sock)
        after.send_raw(record(name("after")))
        expect(heard(after, 0.5) is None, "a registration on a full disk was answered")
        was = harness.registered_at(m.dir, held)
        after.send_raw(record(held))
        got = heard(after, 1.2)
        expect(got is None or harness.registered_at(m.dir, held) != was,
               "a committed name's OK came from the cache after a refusal on its "
               "connection: %r" % got)
        # Still full: more registrations, on other connections, are refused too.
        more = [Client(m.sock) for _ in range(2)]
        for j, k in enumerate(more):
            k.send_raw(record(name("r%d" % j)))
        for k in more:
            got = heard(k, 1.2)
            expect(got is None, "a registration on a full disk got %r" % got)
        # Frees are still taken (no answer, no crash, the connection stays).
        f = Client(m.sock)
        f.send_raw(b"".join(record(name("nf%d" % j), free=True) for j in range(100)))
        got = heard(f, 0.5)
        expect(got is None, "frees on a full disk got %r" % got)
        expect(m.proc.poll() is None, "manager died on a full disk")
        # Room again: registrations get OK.
        os.unlink(filler)
        back = Client(m.sock)
        back.register(name("back"), timeout=2.0)
        oked.append(name("back"))
        # Never an OK for a name that is not in the journal; refused ones are not.
        names = set(journal_names(m.dir))
        missing = [n for n in oked if n not in names]
        expect(not missing, "acknowledged but not journaled: %s" % missing[:5])
        expect(refused not in names, "refused name %s was journaled" % refused)
        # The refused registrations' connections never got a late OK.
        for k in [c, displacer] + more:
            late = heard(k, 0)
            expect(late is None, "late bytes on a refused connection: %r" % late)
        log = read_log(errlog)
        expect("refused" in log and "full" in log, "no warning about the refusal: %r" % log[-800:])
        for k in [c, f, back, receiver, behind, after, displacer] + more:
            k.close()
        expect(m.wait(15) == 0, "manager did not shut down cleanly")
        # The young names never created stay journaled past the shutdown; every client
        # is closed, so a sweep without grace (--prune-grace 0) drops them and the
        # directory (with the default one it would keep them: test_young.py).
        r = subprocess.run([harness.SHMWARDEN, "sweep", "--tmpdir", fs, "--prune-grace", "0"],
                           capture_output=True,
                           text=True, env=box.env, timeout=60)
        expect(r.returncode == 0, "sweep: %s" % r.stderr)
        expect(os.listdir(fs) == [], "left in the tmpfs: %s" % os.listdir(fs))
        print("ENOSPC-RESULT %d acknowledged before the disk filled, refused at %s; %s"
              % (len(oked) - 1, refused,
                 "the slot's rollback tried" if rolled_back else
                 "this SQLite committed the displacing registration: the slot's rollback "
                 "was not tried"))
    finally:
        for p in box.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        subprocess.run(["umount", "-l", fs], capture_output=True)


def test_full_disk_refuses_registrations_then_recovers():
    if os.geteuid() != 0 or not shutil.which("unshare"):
        skip("test_full_disk_refuses_registrations_then_recovers", "needs root and unshare")
        return
    with Sandbox("enospc") as sb:
        # A private mount and pid namespace: the tmpfs, and every process in there, die
        # with the helper whatever happens to it.
        p = sb.track(subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--pid", "--fork",
             PY, HERE, "--enospc-helper", sb.tmp, sb.prefix],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=sb.env))
        out, err = p.communicate(timeout=90)
        out, err = out.decode(errors="replace"), err.decode(errors="replace")
        for line in out.splitlines():
            if line.startswith("ENOSPC-RESULT"):
                print("# " + line)
        expect(p.returncode == 0, "helper exit %d:\n%s%s" % (p.returncode, out[-1500:], err[-1500:]))


# ---- filesystem attacks on a root sweep ---------------------------------------------------

def dead_manager(sb, n, first=0):
    """A manager (this uid) that journaled and created n objects, then was SIGKILLed."""
    m = spawn(sb, ["--no-reclaim"])
    c = m.client()
    for i in range(first, first + n):
        c.register(sb.name(i))
        sb.create_object(sb.name(i))
    os.kill(m.pid, signal.SIGKILL)
    m.wait()
    c.close()
    return m.dir


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def snapshot(d):
    out = {}
    for n in sorted(os.listdir(d)):
        p = os.path.join(d, n)
        st = os.lstat(p)
        out[n] = (st.st_uid, st.st_mode, sha(p) if os.path.isfile(p) and not os.path.islink(p)
                  else os.readlink(p) if os.path.islink(p) else "special")
    return out


def sweep_json(base, env, user=None):
    p = subprocess.run([harness.SHMWARDEN, "sweep", "--json", "--tmpdir", base],
                       capture_output=True, env=env, timeout=60, stdin=subprocess.DEVNULL,
                       user=user)
    # Strict: the document must be valid UTF-8 JSON whatever bytes the journals held.
    return p, json.loads(p.stdout.decode("utf-8"))


def test_symlinked_lock_socket_wal_and_shm_as_root():
    with Sandbox("links") as sb:
        victims = {}
        for v in ("lock", "sock", "wal", "shm"):
            victims[v] = os.path.join(sb.tmp, "victim-" + v)
            with open(victims[v], "wb") as f:
                f.write(b"precious " + v.encode() * 100)
        before = {v: sha(p) for v, p in victims.items()}
        dirs = {v: dead_manager(sb, 2, first=10 * i) for i, v in enumerate(victims)}
        for v, fname in (("lock", "lock"), ("sock", "manager.sock"),
                         ("wal", "journal.db-wal"), ("shm", "journal.db-shm")):
            path = os.path.join(dirs[v], fname)
            expect(os.path.lexists(path), "setup: %s has no %s" % (dirs[v], fname))
            os.unlink(path)
            os.symlink(victims[v], path)
        r, doc = sweep_json(sb.tmp, sb.env)
        by = {os.path.basename(x["dir"]): x for x in doc["dirs"]}
        for v in ("lock", "wal", "shm"):
            rep = by[os.path.basename(dirs[v])]
            expect(rep["status"] == "unsafe" and "symlink" in rep["detail"],
                   "%s symlink: %s" % (v, rep))
            expect(os.path.islink(os.path.join(dirs[v], {"lock": "lock", "wal": "journal.db-wal",
                                                         "shm": "journal.db-shm"}[v])),
                   "%s symlink replaced" % v)
        # The socket is never opened by a sweep; removing the directory unlinks the
        # link itself, never what it points to.
        rep = by[os.path.basename(dirs["sock"])]
        expect(rep["status"] == "removed" and rep["unlinked"] == 2, "socket symlink: %s" % rep)
        expect(not os.path.lexists(dirs["sock"]), "directory with a socket symlink left")
        for v, p in victims.items():
            expect(os.path.exists(p) and sha(p) == before[v], "victim of the %s symlink changed" % v)
        left = sb.objects()
        expect(len(left) == 6 and all(sb.name(10) not in n for n in left),
               "objects: %s" % left)
        # Unsafe directories are findings for a human, not failures of the sweep.
        expect(r.returncode == 0, "sweep exit %d with unsafe directories" % r.returncode)


@contextlib.contextmanager
def two_users(sb):
    """Two throwaway system users, deleted afterwards; sb's processes (some run as these
    users) are killed first, as userdel refuses a user with running processes."""
    names = []
    try:
        for tag in ("a", "b"):
            names.append(harness.useradd(tag))
        yield [pwd.getpwnam(n) for n in names]
    finally:
        with contextlib.suppress(Exception):
            sb.cleanup()
        for n in names:
            r = subprocess.run(["userdel", n], capture_output=True, text=True)
            if r.returncode != 0:
                print("# userdel %s failed: %s" % (n, r.stderr.strip()))


def dead_manager_as(sb, pw, base, names):
    """A manager and its client running as pw, in base: registers names (bytes; those
    starting with b'+' are also created), then both are SIGKILLed. Returns the dir."""
    return harness.dead_manager_as(sb, pw, names, dict(sb.env, HOME="/", TMPDIR=base))


SWAPPER = r"""
import os, sys, time
real, hidden, target, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
end = time.monotonic() + seconds
n = 0
while time.monotonic() < end:
    os.rename(real, hidden)
    os.symlink(target, real)
    time.sleep(0.0005)
    os.unlink(real)
    os.rename(hidden, real)
    time.sleep(0.0005)
    n += 1
print(n, flush=True)
"""


def user_base(sb, pw, name):
    """A directory NAME in sb's base, owned by pw: pw's own base for its managers."""
    d = os.path.join(sb.tmp, name)
    os.mkdir(d, 0o755)
    os.chown(d, pw.pw_uid, pw.pw_gid)
    return d


def swap_for_symlink(pw, path, hidden, target, **kw):
    """As pw: moves PATH to HIDDEN and puts a symlink to TARGET in its place. Returns the
    Popen; exit 0 when it swapped."""
    return as_user(pw, [PY, "-c", "import os,sys; os.rename(sys.argv[1], sys.argv[2]);"
                        " os.symlink(sys.argv[3], sys.argv[1])", path, hidden, target], **kw)


def swap_back(pw, path, hidden):
    """As pw: undoes swap_for_symlink."""
    q = as_user(pw, [PY, "-c", "import os,sys; os.unlink(sys.argv[1]);"
                     " os.rename(sys.argv[2], sys.argv[1])", path, hidden])
    expect(q.wait(30) == 0, "%s could not swap back" % pw.pw_name)


def expect_unchanged(d, before, what):
    """D's snapshot is still BEFORE; the message names every file that changed."""
    after = snapshot(d)
    expect(after == before, "%s: %s changed: %s" % (what, d, {
        n: (before.get(n), after.get(n)) for n in set(before) | set(after)
        if before.get(n) != after.get(n)}))


def b_victim(sb, b):
    """User B's dead manager directory (one object, created), in B's own base: what a
    race of A's must never change. Returns (directory, its snapshot)."""
    b_dir = dead_manager_as(sb, b, user_base(sb, b, "b-base"), [b"+" + sb.name("b0").encode()])
    return b_dir, snapshot(b_dir)


@pytest.fixture
def swap_race(shared_sb):
    """What the strace races below share: root, strace, a shared base, users A and B
    (deleted afterwards), and B's dead manager directory with its snapshot.
    Yields (sandbox, A, B, B's directory, its snapshot)."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    if not shutil.which("strace"):
        pytest.skip("needs strace")
    with two_users(shared_sb) as (a, b):
        b_dir, b_before = b_victim(shared_sb, b)
        yield shared_sb, a, b, b_dir, b_before


def test_directory_swapped_for_another_users_manager_as_root(shared_sb):
    if os.geteuid() != 0:
        skip("test_directory_swapped_for_another_users_manager_as_root", "needs root")
        return
    import mmap
    sb = shared_sb
    mapped = None
    try:
        with two_users(sb) as (a, b):
            b_base = user_base(sb, b, "b-base")
            b_names = [sb.name("b%d" % i).encode() for i in range(2)]
            b_dir = dead_manager_as(sb, b, b_base, [b"+" + n for n in b_names])
            b_before = snapshot(b_dir)
            a_obj = sb.name("a0")
            a_dir = dead_manager_as(sb, a, sb.tmp, [b"+" + a_obj.encode()])
            # A's object stays mapped (by us), so every sweep keeps A's directory and
            # goes all the way to opening its journal.
            fd = os.open(SHM + a_obj, os.O_RDWR)
            mapped = mmap.mmap(fd, 4096)
            os.close(fd)
            env = dict(sb.env, HOME="/")
            r, doc = sweep_json(sb.tmp, env)
            rep = doc["dirs"][0]
            expect(rep["status"] == "kept" and rep["in_use"] == 1, "first sweep: %s" % rep)
            # Between two sweeps A puts, in place of its directory, a symlink to B's.
            hidden = os.path.join(sb.tmp, "hidden-" + os.path.basename(a_dir))
            q = swap_for_symlink(a, a_dir, hidden, b_dir)
            expect(q.wait(30) == 0, "A could not swap its directory")
            r, doc = sweep_json(sb.tmp, env)
            rep = doc["dirs"][0]
            expect(rep["status"] == "unsafe" and "symlink" in rep["detail"], "swapped: %s" % rep)
            expect(snapshot(b_dir) == b_before, "B's directory changed")
            for n in b_names:
                st = os.stat(SHM + n.decode())
                expect(st.st_uid == b.pw_uid, "B's object changed hands")
            # Now A swaps back and forth while root sweeps: whatever moment each check
            # lands on, nothing of B's is touched and A's mapped object stays.
            swap_back(a, a_dir, hidden)
            # A bystander: root sweeping root's own dead directory (kept: its object is
            # mapped) in a base of its own, over and over. Each of its passes looks for
            # live managers by their locks, and finds the sweep above holding A's dead
            # directory's: it must not read A's journal through A's swappable path.
            r_base = os.path.join(sb.tmp, "root-base")
            os.mkdir(r_base, 0o700)
            r_obj = sb.name("r0")
            dead_manager_as(sb, pwd.getpwuid(0), r_base, [b"+" + r_obj.encode()])
            fd = os.open(SHM + r_obj, os.O_RDWR)
            r_mapped = mmap.mmap(fd, 4096)
            os.close(fd)
            bystander = sb.track(subprocess.Popen(
                ["/bin/sh", "-c", 'while :; do "$0" sweep --tmpdir "$1" >/dev/null 2>&1; done',
                 harness.SHMWARDEN, r_base], env=env, stdin=subprocess.DEVNULL))
            swapper = sb.track(as_user(a, [PY, "-c", SWAPPER, a_dir, hidden, b_dir, "3"],
                                       stdout=subprocess.PIPE))
            statuses = {}
            t_end = time.monotonic() + 2.5
            while time.monotonic() < t_end:
                r, doc = sweep_json(sb.tmp, env)
                for d in doc["dirs"]:
                    statuses[d["status"]] = statuses.get(d["status"], 0) + 1
            swaps = swapper.communicate(timeout=30)[0].decode().strip()
            bystander.kill()
            bystander.wait()
            r_mapped.close()
            print("# %s swaps; sweep outcomes for the swapped entry: %s" % (swaps, statuses))
            expect(swapper.returncode == 0, "the swapper failed")
            # A swap that lands inside the journal open makes that open fail, reported as
            # "corrupt" (nothing is touched either way).
            expect(set(statuses) <= {"kept", "unsafe", "error", "corrupt"},
                   "outcomes: %s" % statuses)
            expect(snapshot(b_dir) == b_before, "B's directory changed during the race")
            for n in b_names:
                expect(os.path.exists(SHM + n.decode()), "B's object unlinked")
            expect(os.path.exists(SHM + a_obj), "A's mapped object unlinked")
    finally:
        if mapped is not None:
            mapped.close()


def sweep_held_at(base, env, path, trace, during):
    """Sweeps base under strace, holding the sweep's first file syscall on path (exactly
    that string) for 1.5 s, and calls during() while it is held. Returns (held, result)."""
    if harness.SANITIZED:
        # LeakSanitizer stops the process's threads with ptrace at exit, which cannot
        # work under strace ("LeakSanitizer has encountered a fatal error"); the
        # other ASan and UBSan checks stay on.
        env = dict(env)
        asan = env.get("ASAN_OPTIONS", os.environ.get("ASAN_OPTIONS", ""))
        env["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "detect_leaks=0"
    sw = subprocess.Popen(
        ["strace", "-f", "-o", trace, "-P", path, "-e", "trace=%file",
         "-e", "inject=%file:delay_enter=1500000:when=1",
         harness.SHMWARDEN, "sweep", "--json", "--tmpdir", base],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, stdin=subprocess.DEVNULL)
    held = False
    try:
        t_end = time.monotonic() + 30
        while not held and time.monotonic() < t_end and sw.poll() is None:
            with contextlib.suppress(FileNotFoundError):
                with open(trace) as f:
                    held = os.path.basename(path) in f.read()
            if not held:
                time.sleep(0.005)
        if held:
            during()
        out, err = sw.communicate(timeout=60)
    finally:
        if sw.poll() is None:
            sw.kill()
            sw.wait()
    return held, sw.returncode, out, err


def test_live_journal_swapped_under_a_root_reclaimer(swap_race):
    # A root reclaimer looks for live managers by their locks (livemgr.c) and reads their
    # journals. User A runs a live manager and, at the exact moment root's SQLite is
    # between opening A's journal.db and its first lazy look at journal.db-wal (strace
    # holds that syscall), puts in place of its directory a symlink to user B's dead
    # manager directory. SQLite opens -wal and -shm by path, and as root fchowns them to
    # the main file's owner: with filesystem uid 0 it would take B's files and give them
    # to A. Nothing of B's may change.
    sb, a, b, b_dir, b_before = swap_race
    # A's live manager, in the shared sticky base.
    env_a = dict(sb.env, HOME="/", TMPDIR=sb.tmp)
    m = sb.track(as_user(a, [harness.SHMWARDEN, "manager", "--no-reclaim",
                             "--shutdown-timeout", "120000"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         stdin=subprocess.DEVNULL, env=env_a))
    sock = m.stdout.readline().decode().strip()
    expect(sock.startswith("/"), "A's manager: %r" % sock)
    a_dir = os.path.dirname(sock)
    wal = os.path.join(a_dir, "journal.db-wal")
    hidden = os.path.join(sb.tmp, "hidden-" + os.path.basename(a_dir))
    env = dict(sb.env, HOME="/")
    swaps = []

    def swap():
        q = swap_for_symlink(a, a_dir, hidden, b_dir, stderr=subprocess.PIPE)
        swaps.append(q.wait(30) == 0)
        if not swaps[-1]:
            print("# A's swap: %s" % q.stderr.read().decode(errors="replace")[-300:])

    def unswap():
        if swaps and swaps[-1]:
            swap_back(a, a_dir, hidden)

    def check(what):
        expect_unchanged(b_dir, b_before, "%s: B's directory" % what)

    # 1. Root's own dead manager, in a base only root can write: its sweep runs
    # with filesystem uid 0 and consults the live managers for its row. A's
    # manager holds nothing of root's: its journal must not even be opened.
    r_base = os.path.join(sb.tmp, "root-base")
    os.mkdir(r_base, 0o700)
    dead_manager_as(sb, pwd.getpwuid(0), r_base, [b"+" + sb.name("r0").encode()])
    held, rc, out, err = sweep_held_at(r_base, env, wal,
                                       os.path.join(sb.tmp, "root.trace"), swap)
    unswap()
    print("# root's dead directory: A's live journal %s" %
          ("opened, held at its -wal and swapped" if held else "not opened"))
    expect(rc == 0, "sweep of root's base: exit %d: %s" % (rc, err[-400:]))
    check("root's sweep of its own directory")
    # 2. A's own dead manager: now A's live journal is read (as A), held at the same
    # point, and swapped the same way.
    a_dead = dead_manager_as(sb, a, sb.tmp, [b"+" + sb.name("a0").encode()])
    held, rc, out, err = sweep_held_at(sb.tmp, env, wal,
                                       os.path.join(sb.tmp, "a.trace"), swap)
    unswap()
    expect(held, "the sweep of A's dead directory never looked at A's live journal")
    expect(swaps[-1], "A could not swap its live directory")
    expect(rc == 0, "sweep of A's base: exit %d: %s" % (rc, err[-400:]))
    check("root's sweep of A's directory")
    expect(not os.path.exists(a_dead), "A's dead directory was not reclaimed")
    m.terminate()
    m.wait(10)


def test_root_journal_in_a_base_another_user_controls(swap_race):
    # Root's dead manager directory sits in a base user A owns: A cannot touch the
    # directory's contents, but can rename the directory's entry and put a symlink to
    # user B's manager directory in its place. SQLite opens -wal and -shm by path after
    # the sweep checked the directory (strace holds that moment): as root it would take
    # B's files (and unlink them on close). A path someone else can change is refused.
    sb, a, b, b_dir, b_before = swap_race
    a_base = user_base(sb, a, "a-base")
    r_obj = sb.name("r0")
    r_dir = dead_manager_as(sb, pwd.getpwuid(0), a_base, [b"+" + r_obj.encode()])
    hidden = os.path.join(a_base, "hidden")
    swapped = []

    def swap():
        swapped.append(swap_for_symlink(a, r_dir, hidden, b_dir).wait(30) == 0)

    held, rc, out, err = sweep_held_at(a_base, dict(sb.env, HOME="/"),
                                       os.path.join(r_dir, "journal.db-wal"),
                                       os.path.join(sb.tmp, "sweep.trace"), swap)
    if swapped and swapped[0]:
        os.unlink(r_dir)
        os.rename(hidden, r_dir)
    print("# root's journal %s" % ("held at its -wal and swapped" if held
                                    else "not opened in place"))
    expect_unchanged(b_dir, b_before, "B's directory")
    doc = json.loads(out.decode("utf-8"))
    rep = doc["dirs"][0]
    expect(rep["status"] == "unsafe" and "another user" in rep["detail"],
           "report: %s" % rep)
    expect(os.path.exists(SHM + r_obj), "root's object unlinked from an unsafe path")


def test_hostile_names_in_a_users_journal_as_root(shared_sb):
    if os.geteuid() != 0:
        skip("test_hostile_names_in_a_users_journal_as_root", "needs root")
        return
    sb = shared_sb
    # Not under the sandbox's prefix: its cleanup unlinks objects, not directories.
    subdir = SHM + "/shmwtdir_" + secrets.token_hex(6)
    try:
        with two_users(sb) as (a, _b):
            env = dict(sb.env, HOME="/")
            p = sb.prefix.encode()
            ok1, ok2, nonutf8 = p + b"ok1", p + b"ok2", p + b"\xff\xfe\x80"
            # A's journal lists one object properly (ok1) and a non-UTF-8 one; ok2 exists
            # but is only reached through hostile spellings.
            d = dead_manager_as(sb, a, sb.tmp, [b"+" + ok1, b"+" + nonutf8])
            q = as_user(a, [PY, "-c", "import os,sys; os.mkdir(sys.argv[1], 0o700);"
                            " open(sys.argv[1] + '/victim', 'w').write('x');"
                            " fd = os.open('/dev/shm' + sys.argv[2], os.O_CREAT | os.O_RDWR, 0o600)",
                            subdir, ok2.decode()])
            expect(q.wait(30) == 0, "A could not make its files")
            hostile = [
                b"/" + os.path.basename(subdir).encode() + b"/victim",  # a second '/'
                b"/../" + os.path.basename(subdir).encode(),            # climbs out
                b"/..", b"/.",
                ok2 + b"\x00junk",                                       # NUL inside
                ok2 + b"/",
                b"/" + b"x" * 58,                                        # 59: fits...
                b"/" + b"y" * 57 + b"/",                                 # ...but a 2nd '/'
            ]
            # Longer or shorter "names" ("/" alone, 60 bytes and up) are refused by the
            # journal's schema itself (STRICT, CHECK): tests/unit/test_journal.c.
            q = as_user(a, [PY, "-c",
                            "import sqlite3,sys\n"
                            "c = sqlite3.connect(sys.argv[1])\n"
                            "c.executemany('INSERT INTO objects(name, client_pid, registered_at)"
                            " VALUES (?, 1, 1)', [(bytes.fromhex(h),) for h in sys.argv[2:]])\n"
                            "c.commit(); c.close()",
                            os.path.join(d, "journal.db")] + [h.hex() for h in hostile])
            expect(q.wait(30) == 0, "A could not write its journal")
            r, doc = sweep_json(sb.tmp, env)
            rep = doc["dirs"][0]
            # The 59 x's are a valid name whose object does not exist: gone.
            expect(rep["unlinked"] == 2 and rep["refused"] == len(hostile) - 1
                   and rep["gone"] == 1 and rep["status"] == "removed",
                   "report: %s" % rep)
            expect(not os.path.exists(SHM + ok1.decode()), "ok1 not reclaimed")
            expect(not os.path.exists(os.fsdecode(SHM.encode() + nonutf8)),
                   "the non-UTF-8 name was not reclaimed")
            expect(os.path.exists(SHM + ok2.decode()), "ok2 unlinked through a hostile spelling")
            expect(os.path.exists(subdir + "/victim") and os.path.isdir(subdir),
                   "a file outside the names' reach was removed")
            # Logs escape what they quote: no raw control or non-ASCII bytes.
            bad = [c for c in r.stderr if c >= 0x80 or (c < 0x20 and c != 0x0a)]
            expect(not bad, "raw bytes in the sweep's stderr: %r" % bytes(bad[:10]))
            expect(r.returncode == 0, "sweep exit %d: %s" % (r.returncode, r.stderr[-300:]))
    finally:
        shutil.rmtree(subdir, ignore_errors=True)


# ---- signals --------------------------------------------------------------------------

def test_sigint_and_sighup_shut_down_cleanly():
    for sig in (signal.SIGINT, signal.SIGHUP):
        with Sandbox("sig") as sb:
            m = spawn(sb, FAST)
            c = m.client()
            for i in range(3):
                c.register(sb.name(i))
                sb.create_object(sb.name(i))
            m.proc.send_signal(sig)
            expect(m.wait(10) == 0, "%s: exit status %s" % (sig.name, m.proc.returncode))
            expect(sb.objects() == [], "%s: objects left %s" % (sig.name, sb.objects()))
            expect(sb.manager_dirs() == [], "%s: directory left" % sig.name)
            c.close()


# ---- pruning ----------------------------------------------------------------------------

def test_young_registration_is_not_pruned_before_its_object_exists():
    # A client creates its object only after the OK: until the grace has passed, a prune
    # must not take "no object yet" for "object gone", or the object created a moment
    # later is tracked by nobody. (The grace once compared against an uninitialised
    # registered_at: journal_page did not read the column.)
    with Sandbox("grace") as sb:
        m = spawn(sb, ["--no-reclaim", "--prune-interval", "50", "--prune-grace", "60"] + FAST)
        c = m.client()
        c.register(sb.name("young"))
        time.sleep(0.5)  # ten prune passes
        expect(journal_names(m.dir) == [sb.name("young")], "a young registration was pruned")
        c.close()
        expect(m.wait(10) == 0, "manager did not shut down cleanly")


def sleep_until(t):
    while True:
        left = t - time.time()
        if left <= 0:
            return
        time.sleep(min(left, 0.05))


def registered_late_in_a_second(sb, m, c, tag, lo=0.45, hi=0.8, tries=5):
    """Registers a name (never created) so that the journal dates it between lo and hi
    into a wall-clock second; returns (name, registered_at in microseconds)."""
    for i in range(tries):
        now = time.time()
        sleep_until(int(now) + 1 + (lo + hi) / 2 - 0.05)
        name = sb.name("%s%d" % (tag, i))
        c.register(name)
        at = harness.registered_at(m.dir, name)
        if at is not None and lo <= (at % 1000000) / 1e6 <= hi:
            return name, at
    raise AssertionError("could not register between %.2f and %.2f s into a second in %d tries"
                         % (lo, hi, tries))


def test_prune_grace_is_exact_to_the_microsecond():
    # The grace was compared in whole seconds: a name registered at x.6 s with a 1 s
    # grace was pruned by the first pass after x+1.0 s, 0.4 s after its OK, while its
    # client could still be about to create the object. Checked at x+1.3 s (0.5 to
    # 0.85 s after the registration, past the second boundary, within the grace), and
    # then that the prune does drop it once the grace is over.
    with Sandbox("exact") as sb:
        m = spawn(sb, ["--no-reclaim", "--prune-interval", "20", "--prune-grace", "1"] + FAST)
        c = m.client()
        name, at_us = registered_late_in_a_second(sb, m, c, "x")
        boundary = at_us // 1000000 + 1
        sleep_until(boundary + 0.3)  # fifteen prune passes after the boundary
        kept = name in journal_names(m.dir)
        age = time.time() - at_us / 1e6
        expect(age < 1.0, "the check came %.3f s after the registration, past the grace: "
               "the machine is too slow for this test" % age)
        expect(kept, "pruned %.3f s after its registration, within its 1 s grace" % age)
        expect(harness.wait_for(lambda: name not in journal_names(m.dir), timeout=10),
               "the prune never dropped the name once its grace was over")
        gone_after = time.time() - at_us / 1e6
        expect(gone_after >= 1.0, "dropped %.3f s after its registration" % gone_after)
        c.close()
        expect(m.wait(10) == 0, "manager did not shut down cleanly")


def test_shutdown_keeps_a_row_younger_than_the_grace_across_a_second_boundary():
    # The shutdown keeps rows younger than the grace whose object is not created yet;
    # it compared whole seconds too, and dropped a row registered at x.6 s, 1 s grace,
    # on a SIGTERM at x+1.2 s. (No prune pass runs in between: a 60 s interval.)
    with Sandbox("exactdown") as sb:
        m = spawn(sb, ["--no-reclaim", "--prune-interval", "60000", "--prune-grace", "1"]
                  + FAST)
        c = m.client()
        name, at_us = registered_late_in_a_second(sb, m, c, "d")
        sleep_until(at_us // 1000000 + 1.2)
        os.kill(m.pid, signal.SIGTERM)
        expect(m.wait(10) == 0, "manager exit status %s" % m.proc.returncode)
        age = time.time() - at_us / 1e6
        sb.create_object(name)  # what the client does next
        expect(os.path.isdir(m.dir) and journal_names(m.dir) == [name],
               "the shutdown dropped a row registered %.3f s before it (or less), within "
               "its 1 s grace" % age)
        c.close()
        r = sb.run(["recover", m.dir])
        expect(r.returncode == 0, "recover: %s%s" % (r.stdout, r.stderr))
        expect(sb.objects() == [], "left: %s" % sb.objects())


# ---- valgrind --------------------------------------------------------------------------

VALGRIND = ["valgrind", "--quiet", "--error-exitcode=99", "--leak-check=full",
            "--errors-for-leak-kinds=definite", "--track-fds=no",
            "--suppressions=" + os.path.join(harness.ROOT, "tests", "valgrind.supp")]
VALGRIND_OK_S = 30     # an OK from the manager under valgrind
VALGRIND_EXIT_S = 300  # its exit (leak check included) after the last client left


def test_manager_and_sweep_under_valgrind():
    if harness.SANITIZED:
        skip("test_manager_and_sweep_under_valgrind", "the ASan build runs the suite already")
        return
    if not shutil.which("valgrind"):
        skip("test_manager_and_sweep_under_valgrind", "valgrind is not installed")
        return
    with Sandbox("vg") as sb:
        errlog = os.path.join(sb.tmp, "valgrind.err")
        err = open(errlog, "wb")
        # Prune passes run over live rows too (an uninitialised field once hid there); the
        # grace keeps them from taking a name whose object is not created yet for gone.
        proc = subprocess.Popen(VALGRIND + [harness.SHMWARDEN, "manager", "--prune-interval",
                                            "100", "--prune-grace", "30"] + FAST,
                                stdout=subprocess.PIPE, stderr=err, env=sb.env,
                                stdin=subprocess.DEVNULL)
        err.close()
        sb.track(proc)
        line = proc.stdout.readline().decode().strip()
        expect(line.endswith("/manager.sock"), "manager under valgrind: %r" % line)
        # Valgrind runs the manager 20-50 times slower, and a loaded machine stretches
        # that again (the 60 s exit limit was missed at load 15-25): the limits below
        # only catch a manager that hangs, which they still do.
        c = Client(line)
        for i in range(20):
            c.register(sb.name(i), timeout=VALGRIND_OK_S)
            sb.create_object(sb.name(i))
        for i in range(5):
            os.unlink(SHM + sb.name(i))
            c.free(sb.name(i))
        time.sleep(0.5)
        c.close()
        c = Client(line)
        c.register(sb.name("late"), timeout=VALGRIND_OK_S)
        c.close()
        rc = proc.wait(VALGRIND_EXIT_S)
        expect(rc == 0, "manager under valgrind exit %d:\n%s" % (rc, read_log(errlog)[-2000:]))
        expect(sb.objects() == [], "objects left: %s" % sb.objects())
        # The shutdown kept "late" (registered, never created: young) and so its
        # directory.
        kept = sb.manager_dirs()
        expect(len(kept) == 1, "after the shutdown: %s" % kept)
        # The sweeper reading a journal a SIGKILLed manager left (WAL recovery included),
        # and keeping the young row (a grace longer than this test: valgrind is slow).
        dead_manager(sb, 5)
        p = subprocess.run(VALGRIND + [harness.SHMWARDEN, "sweep", "--json", "--tmpdir", sb.tmp,
                                       "--prune-grace", "3600"],
                           capture_output=True, env=sb.env, timeout=120, stdin=subprocess.DEVNULL)
        expect(p.returncode == 0, "sweep under valgrind exit %d:\n%s"
               % (p.returncode, p.stderr.decode(errors="replace")[-2000:]))
        totals = json.loads(p.stdout)["totals"]
        expect(totals["unlinked"] == 5 and totals["young"] == 1, "sweep: %s" % p.stdout)
        expect(sb.objects() == [] and sb.manager_dirs() == kept, "sweep left something")
        # Its client is long gone: without grace the row and the directory go.
        r = sb.run(["sweep", "--tmpdir", sb.tmp, "--prune-grace", "0"])
        expect(r.returncode == 0 and sb.manager_dirs() == [], "left: %s %s"
               % (sb.manager_dirs(), r.stderr))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--enospc-helper":
        try:
            enospc_in_namespace(sys.argv[2], sys.argv[3])
        except Exception:  # noqa: BLE001 — reported to the test in the parent
            traceback.print_exc()
            sys.exit(1)
        sys.exit(0)
    harness.main(globals())
