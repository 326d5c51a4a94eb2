"""harness.py — what every process-level test shares.

Tests run the real binaries against the real kernel. Every test works inside a
Sandbox: a private temp base (the managers' TMPDIR), a unique object-name prefix,
and a list of the processes it started. On exit, even after a failure, the sandbox
kills only the processes it started, unlinks only /dev/shm objects with its own
prefix, gives the managers its test started through other programs (PyTorch's) a few
seconds to exit by themselves, and removes its temp base without destroying the only
record of a leftover object (reclaim_base): the product's own `shmwarden sweep`
reclaims what the dead managers under the base journaled first, and a base that still
holds a live manager, or a journal naming objects still in /dev/shm, is kept, with one
line on stderr saying why and how to reclaim it. Objects without the prefix that a dead
manager in its base journaled (a PyTorch program's torch_*) and that still exist at
exit are the test's leak: the sandbox names them and fails a test that passed (the
sweep reclaims them all the same; a test that makes them cleans them up, see
test_torch.py).

A test module defines test_* functions; pytest (conftest.py) runs them in order.
A test takes the `sb` fixture (a Sandbox) or opens one itself (`with Sandbox() as sb:`).
A module may end with `harness.main(globals())`: nothing under pytest, and run as a
script (`python3 tests/proc/test_x.py [NAME...]`) it runs that file under pytest.
"""
import os
import secrets
import select
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.environ.get("SHMWARDEN_ROOT") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("SHMWARDEN_BUILD") or os.path.join(ROOT, "build")
SHMWARDEN = os.path.join(BUILD, "shmwarden")
TORCH_SHM_MANAGER = os.path.join(BUILD, "torch_shm_manager")
SANITIZED = os.environ.get("SHMWARDEN_SANITIZED") == "1"
SHM = "/dev/shm"
RECORD = struct.Struct("=ib60s3x")  # AllocInfo: pid, free, filename[60], padding
assert RECORD.size == 68


def record(name, free=False, pid=None):
    """One AllocInfo record, zero-filled as libshm sends it. name: str or bytes."""
    raw = name.encode() if isinstance(name, str) else name
    return RECORD.pack(os.getpid() if pid is None else pid, 1 if free else 0, raw)


def wait_for(cond, timeout=5.0, interval=0.01):
    """Polls cond() until it is truthy; returns its value, or None on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            return None
        time.sleep(interval)


class Client:
    """One libshm-style connection to a manager socket."""

    def __init__(self, sock_path, timeout=5.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(sock_path)

    def send_raw(self, data):
        self.sock.sendall(data)

    def recv_ok(self, timeout=1.0):
        """Waits for the two bytes OK, like libshm (1 s poll timeout). Raises on anything else."""
        got = b""
        deadline = time.monotonic() + timeout
        while len(got) < 2:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no OK from the manager within %.1fs" % timeout)
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                continue
            chunk = self.sock.recv(2 - len(got))
            if not chunk:
                raise ConnectionError("manager closed the connection")
            got += chunk
        if got != b"OK":
            raise AssertionError("expected OK, got %r" % got)

    def register(self, name, timeout=1.0):
        self.send_raw(record(name))
        self.recv_ok(timeout)

    def free(self, name):
        self.send_raw(record(name, free=True))

    def closed_by_peer(self, timeout=2.0):
        """True when the manager closes this connection within timeout."""
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            return False
        try:
            return self.sock.recv(4096) == b""
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()


class Manager:
    """A manager spawned the way libshm spawns one."""

    def __init__(self, proc, line):
        self.proc = proc
        self.line = line
        self.sock = line if not line.startswith("ERROR") else None
        self.dir = os.path.dirname(line) if self.sock else None

    @property
    def pid(self):
        return self.proc.pid

    def client(self):
        return Client(self.sock)

    def wait(self, timeout=10.0):
        """Waits for exit; returns the exit status (negative: killed by that signal)."""
        return self.proc.wait(timeout)

    def stderr_text(self):
        return self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""


_HOLDER = r"""
import mmap, os, sys, time
fd = os.open("/dev/shm" + sys.argv[1], os.O_RDWR)
m = mmap.mmap(fd, 4096)
os.close(fd)
print("mapped", flush=True)
time.sleep(600)
"""


class Sandbox:
    """shared: the base is under /tmp with mode 1777, so other users (the multi-user
    tests' useradd users) can reach it; the suite's own TMPDIR is 0700."""

    def __init__(self, label="t", shared=False):
        self.tmp = tempfile.mkdtemp(prefix="shmw-%s-" % label,
                                    dir="/tmp" if shared else os.environ.get("TMPDIR") or "/tmp")
        if shared:
            os.chmod(self.tmp, 0o1777)
        self.prefix = "/shmwt_%d_%s_" % (os.getpid(), secrets.token_hex(4))
        self.procs = []
        self.kept = False  # cleanup kept the base: it is the only record of what is left
        self.manager_exit_wait = MANAGER_EXIT_WAIT
        self.env = dict(os.environ, TMPDIR=self.tmp)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        left = self.cleanup()
        if left and exc_type is None:
            raise AssertionError("the test left objects its managers journaled in %s: %s"
                                 % (self.tmp, left))
        return False

    def name(self, i):
        return "%s%s" % (self.prefix, i)

    def track(self, proc):
        self.procs.append(proc)
        return proc

    def spawn_manager(self, args=(), argv0=None, exe=None, env=None,
                      timeout=10.0, stderr=subprocess.PIPE):
        """Spawns like libshm: stdout is a pipe read up to the first newline.
        Without args it is the drop-in (argv[0] "torch_shm_manager", no arguments);
        with args, `shmwarden ARGS`."""
        exe = exe or (TORCH_SHM_MANAGER if not args else SHMWARDEN)
        argv0 = argv0 or ("torch_shm_manager" if not args else "shmwarden")
        argv = [argv0] + list(args)
        proc = subprocess.Popen(argv, executable=exe, stdout=subprocess.PIPE,
                                stderr=stderr, env=env or self.env, stdin=subprocess.DEVNULL)
        self.track(proc)
        line = b""
        deadline = time.monotonic() + timeout
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            r, _, _ = select.select([proc.stdout], [], [], max(left, 0))
            if not r:
                raise TimeoutError("manager printed no line within %.1fs" % timeout)
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            line += chunk
        return Manager(proc, line.decode(errors="replace").rstrip("\n"))

    def run(self, args, env=None, timeout=60, check=False, input=None):
        """Runs build/shmwarden ARGS; returns CompletedProcess with text output."""
        return subprocess.run([SHMWARDEN] + list(args), env=env or self.env,
                              capture_output=True, text=True, timeout=timeout,
                              check=check, input=input,
                              stdin=None if input is not None else subprocess.DEVNULL)

    def hold_mapped(self, name):
        """Starts a process that maps /dev/shm/NAME and holds it until killed; returns
        its Popen once the mapping exists (the in-use index must see it)."""
        proc = self.track(subprocess.Popen(["/usr/bin/python3", "-c", _HOLDER, name],
                                           stdout=subprocess.PIPE, env=self.env))
        if proc.stdout.readline().strip() != b"mapped":
            raise AssertionError("the holder of %s did not map it" % name)
        return proc

    def create_object(self, name, size=4096):
        """Creates /dev/shm/NAME as libshm does (O_EXCL, 0600) and sizes it."""
        fd = os.open(SHM + name, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.ftruncate(fd, size)
        finally:
            os.close(fd)

    def objects(self):
        """Names (wire form) of this sandbox's objects still in /dev/shm."""
        p = self.prefix[1:]
        return sorted("/" + n for n in os.listdir(SHM) if n.startswith(p))

    def manager_dirs(self):
        return sorted(n for n in os.listdir(self.tmp) if n.startswith("shmwarden-"))

    def journaled_left(self):
        """Names without our prefix that a dead manager journaled anywhere under our base
        and whose object is still in /dev/shm: the test's leak (read only: nothing is
        touched; a live manager, its directory flocked, will unlink its own)."""
        left = set()
        for d in _manager_dirs(self.tmp):
            if _is_live(d):
                continue
            names = _journal_names(d)
            for n in names or ():
                if not n.startswith(self.prefix.encode()) and _exists(n):
                    left.add(n.decode(errors="replace"))
        return sorted(left)

    def cleanup(self):
        """Kills our processes, unlinks our prefix's objects, then reclaims what our
        managers journaled and removes the base (reclaim_base: a base whose journals
        still name objects is kept, with a line saying why). Returns the names our dead
        managers had journaled without our prefix whose objects were still there before
        that reclaim (journaled_left): the test's leak."""
        for p in self.procs:
            if p.poll() is None:
                try:
                    p.kill()
                except ProcessLookupError:
                    pass
            try:
                p.wait(5)
            except Exception:
                pass
            for f in (p.stdout, p.stderr):
                if f:
                    f.close()
        for n in self.objects():
            try:
                os.unlink(SHM + n)
            except FileNotFoundError:
                pass
        try:
            left = self.journaled_left()
        except OSError:
            left = []
        if left:
            sys.stderr.write("harness: %s: objects its managers journaled are left in %s: "
                             "%s (reclaimed now)\n" % (self.tmp, SHM, left))
        # A manager our test started through another program (PyTorch's) is not ours to
        # kill: it exits by itself once idle, unlinking its own, or leaving journaled
        # what it could not (said here, not a failure: the test was over).
        _wait_managers_idle(self.tmp, self.manager_exit_wait)
        try:
            later = sorted(set(self.journaled_left()) - set(left))
        except OSError:
            later = []
        if later:
            sys.stderr.write("harness: %s: managers that outlived the test left journaled "
                             "%s (reclaimed now)\n" % (self.tmp, later))
        self.kept = reclaim_base(self.tmp)
        return left


# How long cleanup waits for a live manager under a base to exit by itself (its idle
# shutdown is 2 s after its last client went; the machine may be loaded).
MANAGER_EXIT_WAIT = 10.0


def _manager_dirs(base):
    """Every manager directory (shmwarden-*, not a symlink) anywhere under base."""
    out = []
    for top, dirs, _ in os.walk(base):
        for n in dirs:
            p = os.path.join(top, n)
            if n.startswith("shmwarden-") and not os.path.islink(p):
                out.append(p)
    return sorted(out)


def _is_live(d):
    """True when a manager holds d's lock (the flock on the directory itself)."""
    import errno
    import fcntl
    try:
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except OSError as e:
        return e.errno == errno.EWOULDBLOCK
    finally:
        os.close(fd)


def _exists(name):
    """name (bytes, wire form) is a valid object name whose object is in /dev/shm."""
    return (name.startswith(b"/") and b"/" not in name[1:] and b"\0" not in name and
            len(name) > 1 and os.path.lexists(SHM.encode() + name))


def _journal_names(d):
    """The names d's journal holds (bytes), read with Python's sqlite3 from a private
    copy of journal.db and its WAL, so nothing in d changes (a reader of the original
    would leave a root-owned -shm in a user's directory, which the sweep then calls
    unsafe). Empty when there is no journal; None when it cannot be read as one."""
    import sqlite3
    j = os.path.join(d, "journal.db")
    if not os.path.lexists(j):
        return set()
    tmp = tempfile.mkdtemp(prefix="shmw-journal-copy-")
    try:
        for ext in ("", "-wal"):
            if os.path.isfile(j + ext) and not os.path.islink(j + ext):
                shutil.copyfile(j + ext, os.path.join(tmp, "journal.db" + ext))
        con = sqlite3.connect(os.path.join(tmp, "journal.db"), timeout=1)
        try:
            return {bytes(r[0]) if not isinstance(r[0], str) else r[0].encode()
                    for r in con.execute("select name from objects")}
        finally:
            con.close()
    except (OSError, sqlite3.Error, TypeError, ValueError):
        return None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _raw_names(d):
    """For a journal SQLite cannot read: the objects in /dev/shm whose name stands in its
    bytes (journal.db and its WAL keep a row's name as it was written)."""
    data = b""
    for ext in ("", "-wal"):
        try:
            with open(os.path.join(d, "journal.db" + ext), "rb") as f:
                data += f.read()
        except OSError:
            pass
    return {b"/" + n for n in os.listdir(SHM.encode()) if b"/" + n in data}


def _wait_managers_idle(base, timeout=MANAGER_EXIT_WAIT):
    """Waits until no manager under base is live, timeout seconds at most."""
    wait_for(lambda: not any(_is_live(d) for d in _manager_dirs(base)), timeout=timeout,
             interval=0.05)


def base_records(base):
    """What under base is still the only record of objects: {manager directory: why}, for
    a live manager's directory (its journal is being written), and for a dead one whose
    journal names objects still in /dev/shm (its names, or, for a journal SQLite cannot
    read, the objects whose names stand in its bytes)."""
    out = {}
    for d in _manager_dirs(base):
        if _is_live(d):
            out[d] = "its manager is live"
            continue
        names = _journal_names(d)
        unreadable = names is None
        there = sorted(n.decode(errors="replace") for n in
                       (_raw_names(d) if unreadable else names) if _exists(n))
        if there:
            out[d] = "%sjournal names %d object(s) still in %s: %s" % (
                "unreadable " if unreadable else "", len(there), SHM, " ".join(there[:5]) +
                (" ..." if len(there) > 5 else ""))
    return out


def reclaim_base(base):
    """Removes a temp base without destroying the only record of a leftover object: first
    `shmwarden sweep` reclaims every dead manager's directory under it (as root it acts as
    each directory's owner; live managers and objects in use are left alone, see
    shmwarden(1)), then the base is removed, unless something under it is still such a
    record (base_records): then the base is kept, with one line on stderr saying which,
    why and how to reclaim it. Returns True when the base was kept."""
    parents = sorted({os.path.dirname(d) for d in _manager_dirs(base)})
    if parents:
        env = dict(os.environ, SHMWARDEN_TMPDIRS=":".join(parents))
        try:
            subprocess.run([SHMWARDEN, "sweep"], env=env, capture_output=True, timeout=120,
                           stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError) as e:
            sys.stderr.write("harness: sweep of %s failed: %s\n" % (base, e))
    records = base_records(base)
    if not records:
        shutil.rmtree(base, ignore_errors=True)
        return False
    where = sorted({os.path.dirname(d) for d in records})
    how = ("%s sweep --tmpdir %s" % (SHMWARDEN, where[0]) if len(where) == 1 else
           "SHMWARDEN_TMPDIRS=%s %s sweep" % (":".join(where), SHMWARDEN))
    sys.stderr.write("harness: kept %s, the only record of what is left: %s; reclaim with "
                     "`%s` once that is over%s, then rm -r %s\n" % (
                         base, "; ".join("%s: %s" % (os.path.relpath(d, base), why)
                                         for d, why in sorted(records.items())), how,
                         " (an unreadable journal is a human's call)"
                         if any(w.startswith("unreadable") for w in records.values()) else "",
                         base))
    return True


def main(namespace):
    """The end of a test module written to be run as a script. Under pytest, which imports
    the module under its own name, it does nothing: pytest collects the test_* functions
    itself. Run as a script (`python3 tests/proc/test_x.py [NAME...]`), it runs that file
    under pytest, NAMEs selecting tests as -k does, and exits with pytest's status."""
    if namespace.get("__name__") != "__main__":
        return
    import pytest
    args = [namespace["__file__"]]
    if sys.argv[1:]:
        args += ["-k", " or ".join(sys.argv[1:])]
    sys.exit(pytest.main(args))


# A client that registers names with a manager (the socket, argv[2]) and then holds its
# connection until killed. Each later argument is a name in hex, with "+" in front when
# the client also creates the object (as libshm does: O_EXCL, 0600) or "-" when not.
_REGISTERING_CLIENT = r"""
import os, sys
sys.path.insert(0, sys.argv[1])
import harness
c = harness.Client(sys.argv[2])
timeout = float(sys.argv[3])
for arg in sys.argv[4:]:
    create, name = arg[0] == "+", bytes.fromhex(arg[1:])
    c.register(name, timeout=timeout)
    if create:
        fd = os.open(b"/dev/shm" + name, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        os.ftruncate(fd, 4096)
        os.close(fd)
print("done", flush=True)
import time; time.sleep(600)
"""


def registering_client_argv(sock, names, register_timeout=1.0):
    """The argv of a client that registers NAMES (str or bytes; a leading "+" means the
    client creates the object too) with the manager at SOCK, each within
    register_timeout seconds (libshm's is 1 s), prints "done" and waits to be killed."""
    args = []
    for n in names:
        raw = n.encode() if isinstance(n, str) else n
        create = raw.startswith(b"+")
        args.append(("+" if create else "-") + raw[1 if create else 0:].hex())
    return ["/usr/bin/python3", "-c", _REGISTERING_CLIENT, os.path.dirname(os.path.abspath(__file__)),
            sock, repr(register_timeout)] + args


def useradd(tag):
    """Adds a system user (no home, no shell) with a unique name; returns the name.
    The caller removes it (userdel)."""
    name = "shmwt-%s-%s" % (tag, secrets.token_hex(4))
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                    "/usr/sbin/nologin", name], check=True, capture_output=True)
    return name


def as_user(pw, args, **kw):
    """Popen of ARGS as the user pw (a pwd entry), with no supplementary groups."""
    return subprocess.Popen(args, user=pw.pw_uid, group=pw.pw_gid, extra_groups=[], **kw)


def dead_manager_as(sb, pw, names, env, register_timeout=10.0):
    """pw's manager (`shmwarden manager --no-reclaim`, in env's TMPDIR) and pw's client
    register NAMES (str or bytes; "+" in front: the client creates the object too), then
    both are SIGKILLed, as after a crash. Returns the manager's directory. (A manager
    takes only its own uid's connections, so the client runs as pw too.) The client's
    register_timeout is setup's, not libshm's 1 s: the machine may be loaded; so is the
    manager's idle time before it shuts down (2 s by default: a loaded machine took
    longer than that to start the client's interpreter, and the client found no one)."""
    p = sb.track(as_user(pw, [SHMWARDEN, "manager", "--no-reclaim", "--shutdown-timeout",
                              "600000"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=env))
    sock = p.stdout.readline().decode().strip()
    if not sock.startswith("/"):
        raise AssertionError("manager as %s: %r" % (pw.pw_name, sock))
    c = sb.track(as_user(pw, registering_client_argv(sock, names, register_timeout),
                         stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env))
    if c.stdout.readline().strip() != b"done":
        raise AssertionError("%s's client failed" % pw.pw_name)
    for q in (p, c):
        os.kill(q.pid, signal.SIGKILL)
        q.wait()
    return os.path.dirname(sock)


def journal_names(mgr_dir):
    """Names journaled in a manager directory, read with Python's own sqlite3
    (an independent reader: it sees only committed transactions)."""
    import sqlite3
    con = sqlite3.connect("file:%s?mode=ro" % os.path.join(mgr_dir, "journal.db"), uri=True,
                          timeout=5)
    try:
        return sorted(bytes(r[0]).decode() for r in con.execute("select name from objects"))
    finally:
        con.close()


def registered_at(mgr_dir, name):
    """The journaled registration time of name (microseconds), as an independent reader
    sees it: it changes only when a commit wrote the row again."""
    con = sqlite3.connect("file:%s?mode=ro" % os.path.join(mgr_dir, "journal.db"), uri=True,
                          timeout=10)
    try:
        r = con.execute("SELECT registered_at FROM objects WHERE name = ?",
                        (name.encode(),)).fetchone()
        return r[0] if r else None
    finally:
        con.close()


def snapshot(d, recursive=False):
    """Every entry of d (recursive: every entry under it, by its path relative to d): its
    mode (kind and permissions), inode, size, mtime (ns) and, for a regular file, its
    bytes' sha256 (else None). Equal snapshots: nothing there was replaced, written,
    touched, created or removed. An error reading a directory is raised."""
    import hashlib

    def fail(e):
        raise e
    out = {}
    for top, dirs, files in os.walk(d, onerror=fail):
        for n in dirs + files:
            p = os.path.join(top, n)
            st = os.lstat(p)
            digest = None
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
            out[os.path.relpath(p, d)] = (st.st_mode, st.st_ino, st.st_size,
                                          st.st_mtime_ns, digest)
        if not recursive:
            break
    return out


def dir_size(path):
    return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def is_dead(pid):
    """True when pid is gone or a zombie (killed, not yet reaped by its parent)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):
        return True


def corrupt_journal(mgr_dir):
    """Replaces a manager directory's journal with random bytes (its WAL files gone)."""
    j = os.path.join(mgr_dir, "journal.db")
    for ext in ("-wal", "-shm"):
        if os.path.exists(j + ext):
            os.unlink(j + ext)
    with open(j, "wb") as f:
        f.write(os.urandom(8192))
    os.chmod(j, 0o600)


def sigkill(m):
    """SIGKILLs a Manager (or Popen) and reaps it: a crash at no chosen moment."""
    os.kill(m.pid, signal.SIGKILL)
    m.wait()


def write_object(name, data):
    """Creates /dev/shm/NAME (O_EXCL, 0600, one page) holding data."""
    fd = os.open(SHM + name, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.ftruncate(fd, 4096)
    finally:
        os.close(fd)


def read_object(name):
    """The data in /dev/shm/NAME without its zero padding, or None when it is gone."""
    try:
        with open(SHM + name, "rb") as f:
            return f.read().rstrip(b"\0")
    except FileNotFoundError:
        return None


def dead_manager(sb, names, base=None, data=b"leak"):
    """A manager (`shmwarden manager --no-reclaim`, its TMPDIR base, else sb's) registers
    NAMES, its client creates each (holding data), and it is SIGKILLed, as after a crash:
    only its journal knows them now. Returns the manager's directory."""
    env = dict(sb.env, TMPDIR=base) if base else sb.env
    m = sb.spawn_manager(args=["manager", "--no-reclaim"], argv0="shmwarden", env=env)
    if not m.sock:
        raise AssertionError("manager failed: %r" % m.line)
    c = m.client()
    for n in names:
        c.register(n)
        write_object(n, data)
    sigkill(m)
    c.close()
    return m.dir


def dead_pin_manager(sb, base, pin):
    """A manager that registered pin, whose client created it, SIGKILLed before its
    prune tick could identify the row: the reclaimer can judge it by birth time only."""
    env = dict(sb.env, TMPDIR=base)
    m = sb.spawn_manager(args=["manager", "--no-reclaim", "--prune-interval", "100000"],
                         argv0="shmwarden", env=env)
    if not m.sock:
        raise AssertionError("manager failed: %r" % m.line)
    c = m.client()
    c.register(pin)
    write_object(pin, b"stale")
    sigkill(m)
    c.close()
    return m.dir


def replace_object(c, pin, data):
    """What a program with a fixed segment name does after a crash: register the name
    with its (new) manager, remove the stale object, create its own."""
    c.register(pin)
    try:
        os.unlink(SHM + pin)
    except FileNotFoundError:
        pass
    write_object(pin, data)
