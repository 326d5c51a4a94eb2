"""test_sandbox.py — the root sweeper that cannot be turned against the host.

The shipped systemd unit is rated 2.0 or better by `systemd-analyze security`, and the
sweep keeps working with its own privilege drop (src/sandbox.c) in place: as root over
two users' dead managers (and the live one and the object in use it must leave alone),
as one of those users, as root inside the unit's capability bounding set, and as root
in a chroot whose temp base is a mount of its own, where it must still see a live
manager's journal. What it refuses after the drop is tests/unit/test_sandbox.c's part.
"""
import contextlib
import json
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Sandbox  # noqa: E402

UNIT = os.path.join(harness.ROOT, "scripts", "systemd", "shmwarden-sweep.service")
PY = "/usr/bin/python3"
HERE = os.path.dirname(os.path.abspath(__file__))
DROPPED = "privileges dropped; files may change only under "
UNCONFINED = "privileges dropped; writes not confined by the sweep itself"


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def skip(name, why):
    print("SKIP %s: %s" % (name, why))


def test_unit_rated_2_or_better():
    sa = shutil.which("systemd-analyze")
    if not sa:
        skip("test_unit_rated_2_or_better", "systemd-analyze is not installed")
        return
    r = subprocess.run([sa, "security", "--offline=true", UNIT], capture_output=True,
                       text=True, timeout=120)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout + r.stderr)
    expect(m, "no rating: %r %r" % (r.stdout[-300:], r.stderr[-300:]))
    expect(float(m.group(1)) <= 2.0, "rated %s:\n%s" % (m.group(1), r.stdout))
    # What the sweep needs stays allowed: a unit that rates well but cannot sweep is no use.
    text = open(UNIT).read()
    rw = re.search(r"^ReadWritePaths=(.*)$", text, re.M).group(1).split()
    expect("/tmp" in rw and "/dev/shm" in rw, "ReadWritePaths: %s" % rw)
    bset = re.search(r"^CapabilityBoundingSet=(.*)$", text, re.M).group(1).split()
    expect(sorted(bset) == ["CAP_DAC_READ_SEARCH", "CAP_SETGID", "CAP_SETUID",
                            "CAP_SYS_PTRACE"], "bounding set: %s" % bset)


@contextlib.contextmanager
def two_users(sb):
    names = []
    try:
        for tag in ("a", "b"):
            name = "shmwsb-%s-%s" % (tag, secrets.token_hex(3))
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                            "/usr/sbin/nologin", name], check=True, capture_output=True)
            names.append(name)
        yield [pwd.getpwnam(n) for n in names]
    finally:
        with contextlib.suppress(Exception):
            sb.cleanup()
        for n in names:
            r = subprocess.run(["userdel", n], capture_output=True, text=True)
            if r.returncode != 0:
                print("# userdel %s failed: %s" % (n, r.stderr.strip()))


def as_user(pw, args, **kw):
    if pw is None:
        return subprocess.Popen(args, **kw)
    return subprocess.Popen(args, user=pw.pw_uid, group=pw.pw_gid, extra_groups=[], **kw)




def manager_as(sb, pw, names, kill=True):
    """A manager and a client of user pw (None: root) in sb.tmp that register and create
    names; both SIGKILLed when kill. Returns (directory, manager Popen)."""
    env = dict(sb.env, HOME="/")
    m = sb.track(as_user(pw, [harness.SHMWARDEN, "manager", "--no-reclaim",
                          "--shutdown-timeout", "600000"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         stdin=subprocess.DEVNULL, env=env))
    sock = m.stdout.readline().decode().strip()
    expect(sock.startswith("/"), "manager: %r" % sock)
    c = sb.track(as_user(pw, harness.registering_client_argv(sock, ["+" + n for n in names]),
                         stdout=subprocess.PIPE, env=env))
    expect(c.stdout.readline().strip() == b"done", "client failed")
    if kill:
        for p in (m, c):
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
    return os.path.dirname(sock), m


def sweep(sb, pw=None, prefix=()):
    env = dict(sb.env, SHMWARDEN_LOG="info", HOME="/")
    p = as_user(pw, list(prefix) + [harness.SHMWARDEN, "sweep", "--json", "--tmpdir", sb.tmp],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                stdin=subprocess.DEVNULL)
    out, err = p.communicate(timeout=120)
    return p.returncode, json.loads(out.decode()), err.decode(errors="replace")


def by_dir(doc):
    return {os.path.basename(d["dir"]): d for d in doc["dirs"]}


def test_root_sweep_of_two_users_with_the_drop():
    if os.geteuid() != 0:
        skip("test_root_sweep_of_two_users_with_the_drop", "needs root")
        return
    sb = Sandbox("sbx2", shared=True)
    with two_users(sb) as (a, b):
        dead_a, _ = manager_as(sb, a, [sb.name(1), sb.name(2)])
        dead_b, _ = manager_as(sb, b, [sb.name(3)])
        live_a, live = manager_as(sb, a, [sb.name(4)], kill=False)
        # b's object stays mapped by a process of b's after its manager died.
        dead_b2, _ = manager_as(sb, b, [sb.name(5), sb.name(6)])
        holder = sb.track(as_user(b, [PY, "-c", harness._HOLDER, sb.name(5)],
                                  stdout=subprocess.PIPE, env=sb.env))
        expect(holder.stdout.readline().strip() == b"mapped", "holder")
        rc, doc, err = sweep(sb)
        expect(rc == 0, "sweep exit %d: %s" % (rc, err))
        expect(DROPPED + sb.tmp + ", /dev/shm, " in err, "no drop logged: %s" % err)
        d = by_dir(doc)
        for dd in (dead_a, dead_b):
            rep = d[os.path.basename(dd)]
            expect(rep["status"] == "removed" and not os.path.exists(dd), "%s: %s" % (dd, rep))
        expect(d[os.path.basename(live_a)]["status"] == "live", "live: %s" % d)
        rep = d[os.path.basename(dead_b2)]
        expect(rep["status"] == "kept" and rep["in_use"] == 1 and rep["unlinked"] == 1,
               "in use: %s" % rep)
        expect(sb.objects() == [sb.name(4), sb.name(5)], "objects: %s" % sb.objects())
        expect(live.poll() is None, "the live manager died")


def test_user_sweep_with_the_drop():
    if os.geteuid() != 0:
        skip("test_user_sweep_with_the_drop", "needs root to make a user")
        return
    sb = Sandbox("sbxu", shared=True)
    with two_users(sb) as (a, b):
        dead_a, _ = manager_as(sb, a, [sb.name(1)])
        dead_b, _ = manager_as(sb, b, [sb.name(2)])
        rc, doc, err = sweep(sb, pw=a)
        expect(rc == 0 and UNCONFINED in err and "(not root)" in err, "%d: %s" % (rc, err))
        d = by_dir(doc)
        expect(d[os.path.basename(dead_a)]["status"] == "removed", "a's: %s" % d)
        expect(os.path.basename(dead_b) not in d and os.path.isdir(dead_b), "b's touched")
        expect(sb.objects() == [sb.name(2)], "objects: %s" % sb.objects())


def test_root_sweep_inside_the_units_bounding_set():
    """What systemd runs: root, but only the unit's four capabilities (no CAP_SYS_ADMIN,
    so no mount namespace of its own: ProtectSystem= does that part there)."""
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or not setpriv:
        skip("test_root_sweep_inside_the_units_bounding_set", "needs root and setpriv")
        return
    with Sandbox("sbxunit") as sb:
        dead, _ = manager_as(sb, None, [sb.name(1), sb.name(2)])
        bset = "-all,+setuid,+setgid,+sys_ptrace,+dac_read_search"
        rc, doc, err = sweep(sb, prefix=[setpriv, "--bounding-set", bset, "--inh-caps", "-all"])
        expect(rc == 0 and UNCONFINED in err and "CAP_SYS_ADMIN" in err, "%d: %s" % (rc, err))
        rep = by_dir(doc)[os.path.basename(dead)]
        expect(rep["status"] == "removed" and rep["unlinked"] == 2, "%s" % rep)
        expect(sb.objects() == [], "objects: %s" % sb.objects())


def test_root_sweep_when_its_own_tmpdir_is_missing():
    """The journal copy falls back from $TMPDIR to /tmp (mgrdir.c); the read-only mounts
    must allow the same fallback. (Found in the package test: chroot.sh passed the host's
    TMPDIR into the chroot, where it did not exist, and every directory failed EROFS.)"""
    if os.geteuid() != 0:
        skip("test_root_sweep_when_its_own_tmpdir_is_missing", "needs root")
        return
    with Sandbox("sbxnotmp") as sb:
        dead, _ = manager_as(sb, None, [sb.name(1)])
        env = dict(sb.env, TMPDIR=os.path.join(sb.tmp, "no", "such", "dir"),
                   SHMWARDEN_LOG="info", HOME="/")
        p = subprocess.run([harness.SHMWARDEN, "sweep", "--json", "--tmpdir", sb.tmp],
                           capture_output=True, text=True, env=env, timeout=120,
                           stdin=subprocess.DEVNULL)
        expect(p.returncode == 0, "sweep exit %d: %s" % (p.returncode, p.stderr))
        rep = by_dir(json.loads(p.stdout))[os.path.basename(dead)]
        expect(rep["status"] == "removed" and sb.objects() == [], "%s" % rep)


# In a private mount namespace where argv[1] is a read-only bind of itself (what an
# administrator's `mount -o bind,ro`, or a container's read-only view, makes): the
# sweep's dry run, its real run and ls, one JSON line each.
RO_BIND = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'
RO_SCRIPT = r"""
import json, subprocess, sys
shmw, base, name = sys.argv[1:4]
def run(*a):
    r = subprocess.run([shmw] + list(a), capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr
for cmd in (["sweep", "--dry-run"], ["sweep"]):
    rc, out, err = run(*cmd, "--json", "--tmpdir", base)
    d = [d for d in json.loads(out)["dirs"] if d["dir"].endswith("/" + name)]
    print(json.dumps([" ".join(cmd), rc, d[0]["status"] if d else None,
                      d[0]["detail"] if d else out, err[-2000:]]))
rc, out, err = run("ls", "--json", "--tmpdir", base)
e = [m for m in json.loads(out)["managers"] if m["path"].endswith("/" + name)]
print(json.dumps(["ls", rc, e[0]["state"] if e else None, e[0]["error"] if e else out, err]))
"""


def test_root_sweep_keeps_a_read_only_mount_read_only():
    """A base the host mounted read-only stays read-only to the sandboxed sweep. The
    sandbox binds each writable directory onto itself, makes / read-only, then clears
    MOUNT_ATTR_RDONLY on each bind: a bind of a read-only mount is read-only too, and the
    clearing made it writable inside the sweep's namespace, so a root sweep removed a
    dead manager's journal and directory (and unlinked its object) on a mount the host
    said was read-only, while ls called that directory unknown. Now every command says
    unknown, nothing there changes, and the same sweep without the read-only bind
    reclaims it."""
    if os.geteuid() != 0:
        skip("test_root_sweep_keeps_a_read_only_mount_read_only", "needs root (mount)")
        return
    if not shutil.which("unshare"):
        skip("test_root_sweep_keeps_a_read_only_mount_read_only", "no unshare(1)")
        return
    with Sandbox("sbxro") as sb:
        base = os.path.join(sb.tmp, "ro")
        os.mkdir(base, 0o700)
        obj = sb.name("ro")
        m = sb.spawn_manager(args=["manager", "--no-reclaim"], env=dict(sb.env, TMPDIR=base))
        expect(m.sock, "manager failed: %r" % m.line)
        c = m.client()
        c.register(obj)
        sb.create_object(obj)
        harness.sigkill(m)
        c.close()
        expect(sorted(os.listdir(m.dir))[:1] == ["journal.db"] and
               harness.journal_names(m.dir) == [obj], "the dead manager's journal: %s"
               % os.listdir(m.dir))
        # What the host's read-only mount promises: nothing under it changes.
        before = harness.snapshot(base, recursive=True)
        name = os.path.basename(m.dir)
        # The private journal copies of the dry run and ls go to sb.tmp (TMPDIR), writable.
        r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", RO_BIND,
                            "sh", base, PY, "-c", RO_SCRIPT, harness.SHMWARDEN, base, name],
                           capture_output=True, text=True, env=sb.env, timeout=180,
                           stdin=subprocess.DEVNULL)
        expect(r.returncode == 0, "unshare: %d %s %s" % (r.returncode, r.stdout, r.stderr))
        got = [json.loads(line) for line in r.stdout.splitlines()]
        why = "the directory cannot be changed here: Read-only file system"
        verdicts = [g[:4] for g in got]
        expect(verdicts == [["sweep --dry-run", 1, "error", why], ["sweep", 1, "error", why],
                            ["ls", 0, "unknown", why]],
               "verdicts on the read-only mount: %s" % json.dumps(got, indent=1))
        after = harness.snapshot(base, recursive=True)
        expect(after == before, "the read-only mount changed: %s -> %s"
               % (sorted(before), sorted(after)))
        expect(sb.objects() == [obj], "objects: %s" % sb.objects())
        # Without the read-only bind (outside that namespace the base always was
        # writable) the same sweep reclaims it.
        p = subprocess.run([harness.SHMWARDEN, "sweep", "--json", "--tmpdir", base],
                           capture_output=True, text=True, env=sb.env, timeout=120,
                           stdin=subprocess.DEVNULL)
        expect(p.returncode == 0, "sweep exit %d: %s %s" % (p.returncode, p.stdout, p.stderr))
        rep = by_dir(json.loads(p.stdout)).get(name)
        expect(rep and rep["status"] == "removed", "writable: %s" % p.stdout)
        expect(sb.objects() == [] and not os.path.exists(m.dir),
               "left: %s %s" % (sb.objects(), os.listdir(base)))


# Run in a private mount namespace (argv: tests/proc, "odd" or "plain"): per-job
# directories under one base, as a batch system makes them (TMPDIR=/tmp/job123 on a
# tmpfs of the job's own), swept with the pattern BASE/*. "rw" is a writable tmpfs;
# "ro" a tmpfs remounted read-only (its file system is read-only); "robind" a writable
# tmpfs with a read-only bind stacked on it (only that mount is read-only: the one under
# it, at the same path in /proc/self/mountinfo, is writable). Each holds a dead manager
# (SIGKILLed) with a journaled object. "odd" puts a space, a newline and a backslash in
# the base's path and the directories' names, which mountinfo writes as octal escapes.
SUB_STORY = r"""
import json, os, subprocess, sys
sys.path.insert(0, sys.argv[1])
import harness
variant = sys.argv[2]
odd = variant == "odd"


def sh(*a):
    subprocess.run(list(a), check=True, capture_output=True)


def story(sb, top):
    out = {}
    base = os.path.join(top, "base 1\n2" if odd else "base")
    os.mkdir(base, 0o700)
    jobs = {}
    for kind in ("rw", "ro", "robind"):
        job = os.path.join(base, ("job %s\\x\n" % kind) if odd else "job-" + kind)
        # A manager refuses a TMPDIR with a newline (its socket path is one line): the
        # odd job's tmpfs is mounted elsewhere first, then moved there with its dead
        # manager (the journal does not record its path).
        at = os.path.join(sb.tmp, "stage-" + kind) if odd else job
        os.mkdir(job, 0o700)
        if at != job:
            os.mkdir(at, 0o700)
        sh("mount", "-t", "tmpfs", "-o", "mode=0700", "shmw-test", at)
        m = sb.spawn_manager(args=["manager", "--no-reclaim"], env=dict(sb.env, TMPDIR=at))
        if not m.sock:
            raise AssertionError("manager in %r: %r %s" % (at, m.line, m.stderr_text()))
        c = m.client()
        c.register(sb.name(kind))
        sb.create_object(sb.name(kind))
        harness.sigkill(m)
        c.close()
        if at != job:
            sh("mount", "--move", at, job)
        jobs[kind] = (job, os.path.basename(m.dir))
    sh("mount", "-o", "remount,ro", jobs["ro"][0])
    sh("mount", "--bind", jobs["robind"][0], jobs["robind"][0])
    sh("mount", "-o", "remount,bind,ro", jobs["robind"][0])
    if variant == "robase":
        # The base itself read-only (its top mount only), the jobs' mounts under it
        # as they were.
        sh("mount", "--rbind", base, base)
        sh("mount", "-o", "remount,bind,ro", base)
    with open("/proc/self/mountinfo") as f:
        table = f.read()
    out["escapes"] = [e for e in ("\\040", "\\012", "\\134") if e in table]
    before = {k: harness.snapshot(j, recursive=True) for k, (j, _) in jobs.items()}
    pattern = base.replace("\\", "\\\\") + "/*"
    r = subprocess.run([harness.SHMWARDEN, "sweep", "--json", "--tmpdir", pattern],
                       capture_output=True, text=True,
                       env=dict(sb.env, SHMWARDEN_LOG="info", HOME="/"))
    doc = json.loads(r.stdout) if r.stdout.startswith("{") else {"dirs": []}
    got = {os.path.basename(d["dir"]): d for d in doc["dirs"]}
    for kind, (job, name) in jobs.items():
        d = got.get(name)
        out[kind] = dict(status=d and d["status"], detail=d and d.get("detail"),
                         object=os.path.exists(harness.SHM + sb.name(kind)),
                         dir=os.path.exists(os.path.join(job, name)),
                         same=harness.snapshot(job, recursive=True) == before[kind])
    out["rc"] = r.returncode
    out["stderr"] = r.stderr[-3000:]
    return out


# Outside /tmp and TMPDIR (writable to the sweep, and every mount under them with
# them): a tmpfs of this namespace's own on a private directory of /var/tmp (argv[3]).
# The directory, empty outside, is the caller's to remove (here it is a mount point).
top = sys.argv[3]
sh("mount", "-t", "tmpfs", "-o", "mode=0700", "shmw-test", top)
with harness.Sandbox("sbxsub") as sb:
    print(json.dumps(story(sb, top)))
"""


def submounts_story(label, variant):
    if os.geteuid() != 0:
        skip(label, "needs root (mount)")
        return
    if not shutil.which("unshare"):
        skip(label, "no unshare(1)")
        return
    # The story's own Sandbox (one in ours would make the socket paths too long) cleans
    # up inside the namespace; its mounts die with it.
    top = tempfile.mkdtemp(prefix="shmw-sub-", dir="/var/tmp")
    try:
        r = subprocess.run(["unshare", "-m", "--propagation", "private", PY, "-c", SUB_STORY,
                            HERE, variant, top],
                           capture_output=True, text=True, timeout=300,
                           stdin=subprocess.DEVNULL)
        lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
        expect(r.returncode == 0 and lines, "the story: rc %d\n%s\n%s" %
               (r.returncode, r.stdout[-2000:], r.stderr[-2000:]))
        got = json.loads(lines[-1])
        why = "the directory cannot be changed here: Read-only file system"
        expect(got["rw"]["status"] == "removed" and not got["rw"]["object"] and
               not got["rw"]["dir"],
               "the dead manager on the job's writable tmpfs was not reclaimed: %s\n%s"
               % (got["rw"], got["stderr"]))
        for kind in ("ro", "robind"):
            g = got[kind]
            expect(g["status"] == "error" and g["detail"] == why and g["object"] and
                   g["dir"] and g["same"],
                   "the read-only submount (%s) changed or was not an error: %s\n%s"
                   % (kind, g, got["stderr"]))
        expect(variant != "odd" or len(got["escapes"]) == 3, "mountinfo escaped only %s"
               % got["escapes"])
        expect(got["rc"] == 1, "sweep exit %d (2 errors): %s" % (got["rc"], got["stderr"]))
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_root_sweep_reclaims_on_a_writable_submount_only():
    """A job's own writable tmpfs under a base (TMPDIR=/tmp/job123, as batch systems make
    it) is writable to the sandboxed sweep too, so a dead manager there is reclaimed; a
    read-only one under the same base stays read-only, whether its file system or only
    its mount (a read-only bind stacked on a writable tmpfs) says so. Before, the
    recursive bind of the base copied the job's mount, / went read-only recursively and
    only the bind itself was made writable again: the writable job's dead manager came
    out `error` (Read-only file system) and its object leaked."""
    submounts_story("test_root_sweep_reclaims_on_a_writable_submount_only", "plain")


def test_root_sweep_submounts_with_escaped_paths():
    """The same under a base whose path, and the job directories' names, hold a space, a
    newline and a backslash: /proc/self/mountinfo writes them as \\040, \\012 and \\134,
    and a path read wrong must never make a mount writable."""
    submounts_story("test_root_sweep_submounts_with_escaped_paths", "odd")


def test_root_sweep_reclaims_on_a_writable_submount_of_a_read_only_base():
    """A base the host mounted read-only stays read-only (its top mount is not made
    writable), but a job's writable tmpfs under it is writable to the sweep as on the
    host, and the read-only ones under it stay so."""
    submounts_story("test_root_sweep_reclaims_on_a_writable_submount_of_a_read_only_base",
                    "robase")


# Run inside the chroot (argv: tests/proc, the temp base): a manager dies holding /pin
# before it could identify the row (its prune tick is far off); a live manager registers
# /pin again and its client replaces the object. The sweep of the base must hand /pin
# over to the live manager, which it learns from the live manager's journal, found
# through that manager's descriptors (src/livemgr.c).
PIN_STORY = r"""
import json, os, signal, sys
sys.path.insert(0, sys.argv[1])
import harness
os.environ["TMPDIR"] = sys.argv[2]
out = []
with harness.Sandbox("sbxpin") as sb:
    pin = sb.name("pin")
    for trial in range(3):
        dead = sb.spawn_manager(args=["manager", "--no-reclaim", "--prune-interval", "100000"])
        c = dead.client()
        c.register(pin)
        with open("/dev/shm" + pin, "wb") as f:
            f.write(b"stale")
        os.kill(dead.pid, signal.SIGKILL)
        dead.wait()
        c.close()
        live = sb.spawn_manager(args=["manager", "--no-reclaim", "--shutdown-timeout", "100000"])
        c = live.client()
        c.register(pin)
        os.unlink("/dev/shm" + pin)
        data = b"live %d" % trial
        with open("/dev/shm" + pin, "wb") as f:
            f.write(data)
        r = sb.run(["sweep", "--tmpdir", sb.tmp, "--json"],
                   env=dict(sb.env, SHMWARDEN_LOG="info"))
        try:
            with open("/dev/shm" + pin, "rb") as f:
                kept = f.read() == data
        except FileNotFoundError:
            kept = False
        rep = json.loads(r.stdout) if r.stdout.startswith("{") else None
        out.append(dict(rc=r.returncode, kept=kept, stderr=r.stderr[-1500:],
                        dirs=rep and {os.path.basename(d["dir"]) == os.path.basename(dead.dir):
                                      (d["status"], d["handed_over"], d["unlinked"])
                                      for d in rep["dirs"]}))
        c.close()
        os.kill(live.pid, signal.SIGKILL)
        live.wait()
        if os.path.exists("/dev/shm" + pin):
            os.unlink("/dev/shm" + pin)
        for n in sb.manager_dirs():
            sb.run(["recover", os.path.join(sb.tmp, n)])
print(json.dumps(out))
"""


def test_root_sweep_in_a_chroot_spares_a_live_managers_name():
    """The sweeper's own mount namespace must not blind it to live managers. In a
    chroot whose temp base is a mount of its own (Debian's sid chroot of the matrix,
    a container), a root sweep that made a private mount namespace read another
    manager's directory descriptor back as a path of the host's tree, did not find
    the live manager's journal, and unlinked the /pin it had just re-registered (15 of
    15 trials of tests/proc/test_identity.py in sid). Here: a private mount namespace
    of the test's own, the host's / bound under a tmpfs and entered with chroot, a tmpfs
    as the temp base."""
    name = "test_root_sweep_in_a_chroot_spares_a_live_managers_name"
    if os.geteuid() != 0:
        skip(name, "needs root (mount, chroot)")
        return
    with Sandbox("sbxchroot") as sb:
        root = os.path.join(sb.tmp, "root")
        base = os.path.join(sb.tmp, "base")
        story = os.path.join(sb.tmp, "story.py")
        with open(story, "w") as f:
            f.write(PIN_STORY)
        os.makedirs(root)
        os.makedirs(base)
        q = shlex.quote
        # Everything mounted here lives in the namespace of `unshare` and dies with it.
        inner = " && ".join([
            "mount -t tmpfs -o mode=0755 shmw-test %s" % q(root),
            "mkdir %s/host" % q(root),
            "mount --rbind / %s/host" % q(root),
            "mount --make-rprivate %s/host" % q(root),
            "exec chroot %s/host sh -c 'mount -t tmpfs -o mode=1777 shmw-test \"$1\" && "
            "exec \"$2\" \"$3\" \"$4\" \"$1\"' sh %s %s %s %s"
            % (q(root), q(base), q(PY), q(story), q(HERE))])
        r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", inner],
                           capture_output=True, text=True, timeout=300,
                           env=dict(os.environ, SHMWARDEN_BUILD=harness.BUILD,
                                    SHMWARDEN_ROOT=harness.ROOT))
        lines = [l for l in r.stdout.splitlines() if l.startswith("[")]
        expect(r.returncode == 0 and lines, "the story: rc %d\n%s\n%s" %
               (r.returncode, r.stdout[-2000:], r.stderr[-2000:]))
        trials = json.loads(lines[-1])
        lost = [t for t in trials if not t["kept"]]
        expect(not lost, "the live manager's /pin was unlinked in %d of %d trials: %s" %
               (len(lost), len(trials), lost[0]["stderr"] if lost else ""))
        for t in trials:
            expect(t["rc"] == 0 and t["dirs"].get("true") == ["removed", 1, 0],
                   "the dead directory's report: %s" % t)


harness.main(globals())
