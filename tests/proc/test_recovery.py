"""test_recovery.py — `shmwarden recover` and `shmwarden sweep` against real managers.

Each test spawns the real manager (build/torch_shm_manager), registers and creates
objects the way libshm does (register, wait for OK, then create), SIGKILLs the manager
and its clients the way the OOM killer does, and checks that recovery reclaims what
it must (docs/DESIGN.md invariants 3-6, 9) and nothing else. Everything happens inside a
harness Sandbox; the multi-user test also adds two system users and deletes them.
"""
import hashlib
import json
import os
import pwd
import random
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import SHM, Sandbox, as_user, wait_for  # noqa: E402

PY = "/usr/bin/python3"
HERE = os.path.dirname(os.path.abspath(__file__))


def spawn(sb, env=None):
    """A real manager that leaves dead siblings alone (--no-reclaim): their reclaiming
    is the sweep's job under test here, not the manager's adoption at start."""
    return sb.spawn_manager(args=["manager", "--no-reclaim"], argv0="shmwarden", env=env)


def dead_manager(sb, n, size=4096, first=0, unregistered_gone=0, env=None):
    """A manager that journaled n objects (created after OK) and was SIGKILLed.
    unregistered_gone extra names are registered but never created. Returns its dir."""
    m = spawn(sb, env=env)
    assert m.sock, "manager failed: %r" % m.line
    c = m.client()
    for i in range(first, first + n):
        c.register(sb.name(i))
        sb.create_object(sb.name(i), size)
    for i in range(unregistered_gone):
        c.register(sb.name("gone%d_%d" % (first, i)))
    os.kill(m.pid, signal.SIGKILL)
    m.wait()
    c.close()
    return m.dir


def sweep(sb, *args, env=None, timeout=60):
    return sb.run(["sweep", "--tmpdir", sb.tmp] + list(args), env=env, timeout=timeout)


def sweep_json(sb, *args, env=None, timeout=60):
    r = sweep(sb, "--json", *args, env=env, timeout=timeout)
    return r, json.loads(r.stdout)


def who_is(pid):
    """What a process is (for a failure message): its command line and working
    directory, or that it is gone."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        return "pid %d: %s (cwd %s)" % (pid, cmd[:300], os.readlink("/proc/%d/cwd" % pid))
    except OSError as e:
        return "pid %d: %s" % (pid, e.strerror)


def snapshot(d):
    """Names and contents of a directory's files (the socket has no content)."""
    out = {}
    for n in sorted(os.listdir(d)):
        p = os.path.join(d, n)
        if os.path.isfile(p) and not os.path.islink(p):
            with open(p, "rb") as f:
                out[n] = hashlib.sha256(f.read()).hexdigest()
        else:
            out[n] = os.readlink(p) if os.path.islink(p) else "special"
    return out


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


# (1)
def test_sweep_reclaims_after_sigkill():
    with Sandbox("rec") as sb:
        d = dead_manager(sb, 20)
        expect(len(sb.objects()) == 20, "setup: 20 objects")
        expect(os.path.exists(os.path.join(d, "journal.db")), "setup: a journal")
        r = sweep(sb)
        expect(r.returncode == 0, "sweep exit %d: %s" % (r.returncode, r.stderr))
        expect(sb.objects() == [], "objects left: %s" % sb.objects())
        expect(sb.manager_dirs() == [], "dirs left: %s" % sb.manager_dirs())
        expect("1 directory: 1 removed" in r.stdout and "20 objects unlinked" in r.stdout,
               "totals line: %r" % r.stdout)


# (2)
def test_recover_reclaims_after_sigkill():
    with Sandbox("rec") as sb:
        d = dead_manager(sb, 20)
        r = sb.run(["recover", d])
        expect(r.returncode == 0, "recover exit %d: %s" % (r.returncode, r.stderr))
        expect("removed: 20 unlinked (80.0 KiB)" in r.stdout, "summary: %r" % r.stdout)
        expect(sb.objects() == [], "objects left: %s" % sb.objects())
        expect(not os.path.exists(d), "directory left")
        # Twice: nothing to do, a clear message, no harm.
        r = sb.run(["recover", d])
        expect(r.returncode == 1 and "no such directory" in r.stderr,
               "second recover: %d %r" % (r.returncode, r.stderr))


CLIENT = r"""
import os, random, sys
sys.path.insert(0, %(here)r)
import harness
sock, prefix, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
rnd = random.Random(seed)
c = harness.Client(sock)
live, n = [], 0
print("ready", flush=True)
while True:
    if live and rnd.random() < 0.4:
        name = live.pop(rnd.randrange(len(live)))
        os.unlink("/dev/shm" + name)   # libshm unlinks at refcount 0, then frees
        c.free(name)
    else:
        name = "%%s%%d" %% (prefix, n)
        n += 1
        c.register(name, timeout=60)
        fd = os.open("/dev/shm" + name, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        os.ftruncate(fd, 4096)
        os.close(fd)
        live.append(name)
"""


# (3)
def test_random_moment_kills():
    trials = 24
    with Sandbox("kill") as sb:
        rnd = random.Random(secrets.randbits(32))
        created = 0
        pids = []
        for t in range(trials):
            # The manager must still be there when the client (a Python starting up on a
            # loaded machine: seconds) connects; its idle shutdown is not under test.
            m = sb.spawn_manager(args=["manager", "--no-reclaim", "--shutdown-timeout",
                                       "60000"], argv0="shmwarden")
            expect(m.sock, "manager failed: %r" % m.line)
            pids.append(m.pid)
            code = CLIENT % {"here": HERE}
            cl = sb.track(subprocess.Popen(
                [PY, "-c", code, m.sock, sb.prefix + "t%d_" % t, str(rnd.randrange(1 << 30))],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=sb.env))
            line = cl.stdout.readline()
            if line.strip() != b"ready":
                cl.kill()
                cl.wait()
                m.proc.kill()
                m.wait()
                raise AssertionError("trial %d: client did not start: %r; client: %s; manager: %s"
                                     % (t, line, cl.stderr.read().decode(errors="replace")[-800:],
                                        m.stderr_text()[-800:]))
            time.sleep(rnd.uniform(0.0, 0.25))
            # The OOM killer takes the group; the order is random too.
            victims = [m.pid, cl.pid]
            rnd.shuffle(victims)
            for pid in victims:
                os.kill(pid, signal.SIGKILL)
            m.wait()
            cl.wait()
            created = len(sb.objects())
        expect(created > 0, "the clients created nothing before being killed")
        expect(len(sb.manager_dirs()) == trials, "dirs: %s" % sb.manager_dirs())
        ours = set(pids)
        # The log at info: the lines that say why a name was kept are info lines. Each
        # directory gets its own scan of /proc (every task's fds and maps): 24 of them,
        # under ASan on a loaded machine, took more than sb.run's 60 s once.
        env = dict(sb.env, SHMWARDEN_LOG="info")
        r, doc = sweep_json(sb, env=env, timeout=400)
        removed, unlinked = doc["totals"]["removed"], doc["totals"]["unlinked"]
        expect(r.returncode == 0, "sweep exit %d: %s" % (r.returncode, r.stderr))
        kept = [x for x in doc["dirs"] if x["status"] != "removed"]
        # Cannot tell means keep: while any live manager of our uid has a journal the
        # sweep cannot read (another test's pin of another schema version, on a machine
        # several suites share), it may have registered any of our names, and nothing of
        # the uid's is unlinked (docs/DESIGN.md invariant 4). That is another process's doing,
        # not one of ours (all dead): the test waits until it is gone and sweeps again.
        # Any other reason to keep, or a second sweep that still keeps, fails below.
        blockers = {x["live_unreadable_pid"] for x in kept if x["live_unreadable"]}
        if kept and blockers and not blockers & ours and all(
                x["status"] == "kept" and x["live_unreadable"] == x["in_use"] and
                x["not_inspectable"] == 0 for x in kept):
            print("the first sweep kept %d directories for %s; waiting for it to exit" % (
                len(kept), [who_is(p) for p in sorted(blockers)]))
            expect(wait_for(lambda: all(harness.is_dead(p) for p in blockers),
                            180, 0.5),
                   "a live manager whose journal cannot be read lived on for 180 s: %s" %
                   [who_is(p) for p in sorted(blockers)])
            r, doc = sweep_json(sb, env=env, timeout=400)
            expect(r.returncode == 0, "sweep exit %d: %s" % (r.returncode, r.stderr))
            removed += doc["totals"]["removed"]
            unlinked += doc["totals"]["unlinked"]
            kept = [x for x in doc["dirs"] if x["status"] != "removed"]
        # A client killed between its OK and its shm_open left a row whose object does
        # not exist: registered less than the grace (10 s) ago, it is kept with its
        # directory, since a live client would create the object next (SECURITY.md,
        # "Between OK and shm_open"). Here every client is dead too: a sweep without grace
        # drops those rows, and nothing else is left for it.
        young = [x for x in kept if x["status"] == "kept" and x["young"] and
                 x["in_use"] == 0 and x["refused"] == 0]
        if young:
            r2, doc2 = sweep_json(sb, "--prune-grace", "0", env=env, timeout=400)
            t2 = doc2["totals"]
            expect(r2.returncode == 0 and t2["removed"] == len(young) == t2["dirs"] and
                   t2["unlinked"] == 0 and t2["gone"] == sum(x["young"] for x in young),
                   "the sweep without grace: %s (young: %s)" % (t2, young[:3]))
            print("# %d directories kept %d young rows, then dropped without grace" % (
                len(young), t2["gone"]))
            removed += t2["removed"]
            kept = [x for x in kept if x not in young]
        # Say which rule kept objects (the reports of the directories that were not
        # removed, the sweep's log, and what the live processes they name are).
        named = {x[k] for x in kept for k in ("live_unreadable_pid", "not_inspectable_pid")
                if x.get(k)}
        why = [ln for ln in r.stderr.splitlines() if "livemgr" in ln or "kept" in ln]
        expect(sb.objects() == [], "objects left: %s; reports: %s; processes: %s; log: %s"
               % (sb.objects()[:5], kept[:3], [who_is(p) for p in sorted(named)],
                  "\n".join(why[:10]) or r.stderr[-1500:]))
        expect(sb.manager_dirs() == [], "dirs left: %s; reports: %s" % (sb.manager_dirs(),
                                                                         kept[:3]))
        expect(removed == trials and unlinked == created,
               "removed %d, unlinked %d; created %d" % (removed, unlinked, created))


# (4)
def test_mapped_object_survives_until_unmapped():
    with Sandbox("inuse") as sb:
        d = dead_manager(sb, 3)
        held = sb.name(0)
        h = sb.hold_mapped(held)
        r, doc = sweep_json(sb)
        expect(r.returncode == 0, "sweep exit %d: %s" % (r.returncode, r.stderr))
        rep = doc["dirs"][0]
        expect(rep["status"] == "kept" and rep["in_use"] == 1 and rep["unlinked"] == 2,
               "report: %s" % rep)
        expect(sb.objects() == [held], "objects: %s" % sb.objects())
        expect(os.path.isdir(d), "directory of a kept object removed")
        r = sweep(sb)
        expect(r.returncode == 0 and "kept" in r.stdout, "second sweep: %r" % r.stdout)
        expect(sb.objects() == [held], "kept object unlinked by a later pass")
        h.kill()
        h.wait()
        r, doc = sweep_json(sb)
        expect(r.returncode == 0, "sweep exit %d: %s" % (r.returncode, r.stderr))
        expect(doc["dirs"][0]["status"] == "removed" and doc["dirs"][0]["unlinked"] == 1,
               "report: %s" % doc["dirs"][0])
        expect(sb.objects() == [] and sb.manager_dirs() == [], "not reclaimed after exit")


def test_restarted_manager_adopts_what_is_still_in_use():
    """A new manager reclaims its dead sibling at start: free objects are unlinked,
    an object a live process maps is adopted into the new journal (so it is never in
    neither journal), and the new manager unlinks it at its own shutdown once unused."""
    with Sandbox("adopt") as sb:
        d = dead_manager(sb, 3)
        held = sb.name(0)
        h = sb.hold_mapped(held)
        m = sb.spawn_manager()  # the drop-in, as torch spawns it: reclaims at start
        expect(m.sock is not None, m.line)
        expect(wait_for(lambda: not os.path.exists(d), 10), "dead directory not reclaimed")
        expect(sb.objects() == [held], "objects: %s" % sb.objects())
        expect(harness.journal_names(m.dir) == [held],
               "adopted: %s" % harness.journal_names(m.dir))
        c = m.client()  # keep it alive while the holder still maps the object
        h.kill()
        h.wait()
        c.close()
        expect(m.wait(15) == 0, "manager exit")
        expect(sb.objects() == [] and sb.manager_dirs() == [], "left: %s %s" %
               (sb.objects(), sb.manager_dirs()))

# (5)
def test_recover_live_manager_touches_nothing():
    with Sandbox("live") as sb:
        m = sb.spawn_manager()  # exactly as libshm spawns it
        c = m.client()
        for i in range(2):
            c.register(sb.name(i))
            sb.create_object(sb.name(i))
        before = snapshot(m.dir)
        r = sb.run(["recover", m.dir])
        expect(r.returncode == 1, "exit %d" % r.returncode)
        expect("live manager (pid %d)" % m.pid in r.stderr and "nothing touched" in r.stderr,
               "stderr: %r" % r.stderr)
        r2, doc = sweep_json(sb)
        expect(r2.returncode == 0 and doc["dirs"][0]["status"] == "live",
               "sweep of a live manager: %d %s" % (r2.returncode, r2.stdout))
        expect(len(sb.objects()) == 2, "objects of a live manager unlinked")
        expect(m.proc.poll() is None, "manager died")
        c.register(sb.name(9))  # it still answers
        expect(snapshot(m.dir).keys() == before.keys(), "files changed")
        c.close()


def make_bad(sb, kind):
    """A dead manager's directory whose journal is damaged in one way."""
    d = dead_manager(sb, 2, first=100 + len(sb.manager_dirs()) * 10)
    j = os.path.join(d, "journal.db")
    if kind == "truncated":
        # Fold the WAL in first, so the rows live in the file we cut.
        con = sqlite3.connect(j)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
        size = os.path.getsize(j)
        with open(j, "r+b") as f:
            f.truncate(size // 2 + 100)
        return d
    for ext in ("-wal", "-shm"):
        if os.path.exists(j + ext):
            os.unlink(j + ext)
    if kind == "random":
        with open(j, "wb") as f:
            f.write(os.urandom(16384))
    elif kind == "empty":
        open(j, "wb").close()
    elif kind == "wrong_schema":
        os.unlink(j)
        con = sqlite3.connect(j)
        con.executescript("PRAGMA application_id = 1936223607; PRAGMA user_version = 1;"
                          "CREATE TABLE objects (name TEXT);"
                          "INSERT INTO objects VALUES ('/etc_passwd');")
        con.close()
    elif kind == "foreign":
        os.unlink(j)
        con = sqlite3.connect(j)
        con.executescript("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        con.close()
    os.chmod(j, 0o600)
    return d


# (6)
def test_bad_journals_reported_and_left():
    """Unreadable journals are reported (a finding: the sweep exits 0), never touched; a
    zero-byte journal (a manager killed while creating it) held nothing: removed."""
    kinds = ["random", "truncated", "wrong_schema", "foreign"]
    with Sandbox("bad") as sb:
        bad = {k: make_bad(sb, k) for k in kinds}
        before = {k: snapshot(d) for k, d in bad.items()}
        bad_objects = sb.objects()
        empty = make_bad(sb, "empty")
        good = dead_manager(sb, 5, first=0)
        r, doc = sweep_json(sb)
        expect(r.returncode == 0, "exit %d" % r.returncode)
        by_dir = {os.path.basename(x["dir"]): x for x in doc["dirs"]}
        for k, d in bad.items():
            rep = by_dir[os.path.basename(d)]
            expect(rep["status"] == "corrupt" and rep["detail"],
                   "%s journal: %s" % (k, rep))
            expect(os.path.basename(d) in r.stderr, "%s not reported on stderr" % k)
            expect(snapshot(d) == before[k], "%s journal changed" % k)
        expect(by_dir[os.path.basename(good)]["status"] == "removed", "good dir not removed")
        expect(not os.path.exists(good), "good dir left")
        expect(by_dir[os.path.basename(empty)]["status"] == "removed",
               "zero-byte journal: %s" % by_dir[os.path.basename(empty)])
        expect(not os.path.exists(empty), "zero-byte journal's dir left")
        expect(set(sb.objects()) >= set(bad_objects) and
               all(os.path.exists(SHM + o) for o in bad_objects), "objects: %s" % sb.objects())
        expect(doc["totals"]["corrupt"] == len(kinds), "totals: %s" % doc["totals"])
        r = sweep(sb)
        expect(r.returncode == 0 and "%d corrupt" % len(kinds) in r.stdout,
               "text totals: %r" % r.stdout)
        r = sb.run(["recover", bad["random"]])
        expect(r.returncode == 1 and "corrupt" in r.stderr and "left in place" in r.stderr,
               "recover on corrupt: %d %r" % (r.returncode, r.stderr))


# (7)
def test_dry_run_and_json():
    # The name registered and never created is "gone" only without a grace: its client is
    # dead with the manager here (--prune-grace 0); with the default grace it would be
    # kept as young (test_young.py).
    nograce = ["--prune-grace", "0"]
    with Sandbox("dry") as sb:
        d = dead_manager(sb, 5, size=8192, unregistered_gone=1)
        objs = sb.objects()
        r, doc = sweep_json(sb, "--dry-run", *nograce)
        expect(r.returncode == 0, "exit %d: %s" % (r.returncode, r.stderr))
        expect(doc["base"] == sb.tmp and doc["dry_run"] is True, "doc: %s" % doc)
        rep = doc["dirs"][0]
        expect(rep["status"] == "removed" and rep["dry_run"] and rep["unlinked"] == 5
               and rep["gone"] == 1 and rep["bytes"] == 5 * 8192, "dry report: %s" % rep)
        expect(sb.objects() == objs and os.path.isdir(d), "dry run changed something")
        expect(os.path.exists(os.path.join(d, "journal.db")), "dry run removed the journal")
        r = sb.run(["recover", "--dry-run", "--json", d] + nograce)
        drec = json.loads(r.stdout)
        expect(r.returncode == 0 and drec["unlinked"] == 5, "recover dry: %s" % r.stdout)
        expect(sb.objects() == objs, "recover --dry-run changed objects")
        # The real run does what the dry run said.
        r = sb.run(["recover", "--json", d] + nograce)
        real = json.loads(r.stdout)
        expect(r.returncode == 0, "exit %d" % r.returncode)
        for k in ("status", "unlinked", "gone", "in_use", "refused", "bytes", "owner",
                  "manager_pid"):
            expect(real[k] == rep[k], "%s: dry %r, real %r" % (k, rep[k], real[k]))
        expect(real["dir"] == d and real["dry_run"] is False, "real: %s" % real)
        expect(sb.objects() == [] and not os.path.exists(d), "real run did not reclaim")
        r, doc = sweep_json(sb)
        expect(r.returncode == 0 and doc["dirs"] == [] and doc["totals"]["dirs"] == 0,
               "empty sweep: %s" % r.stdout)


# (8)
def test_usage_errors():
    with Sandbox("usage") as sb:
        cases = [
            (["sweep", "--bogus"], 2), (["sweep", "extra"], 2), (["sweep", "--tmpdir"], 2),
            (["sweep", "--min-age"], 2), (["recover"], 2), (["recover", "a", "b"], 2),
            (["recover", "--bogus", "x"], 2), (["recover", "-"], 1), (["recover", ""], 2),
        ]
        for args, want in cases:
            r = sb.run(args)
            expect(r.returncode == want, "%s: exit %d, want %d" % (args, r.returncode, want))
            if want == 2:
                expect(r.stderr.startswith("shmwarden %s: " % args[0]) and
                       "Try 'shmwarden %s --help'" % args[0] in r.stderr and not r.stdout,
                       "%s: stderr %r" % (args, r.stderr))
        for cmd in ("sweep", "recover"):
            r = sb.run([cmd, "--help"])
            expect(r.returncode == 0 and r.stdout.startswith("usage: shmwarden " + cmd),
                   "%s --help: %r" % (cmd, r.stdout))
        r = sb.run(["recover", os.path.join(sb.tmp, "shmwarden-nosuch")])
        expect(r.returncode == 1 and "no such directory" in r.stderr, "missing: %r" % r.stderr)
        os.mkdir(os.path.join(sb.tmp, "notamanager"))
        r = sb.run(["recover", os.path.join(sb.tmp, "notamanager")])
        expect(r.returncode == 1 and "not a manager directory" in r.stderr,
               "not a manager dir: %r" % r.stderr)
        # Refused before reclaim could say it: the same "error:" form all the same. "."
        # and ".." are paths (the working directory, its parent), named as resolved.
        for d in ("/", ".", ".."):
            r = subprocess.run([harness.SHMWARDEN, "recover", d], cwd=sb.tmp, env=sb.env,
                               capture_output=True, text=True, timeout=60,
                               stdin=subprocess.DEVNULL)
            shown = d if d == "/" else os.path.realpath(os.path.join(sb.tmp, d))
            expect(r.returncode == 1 and
                   r.stderr.startswith("shmwarden recover: %s: error: not a manager directory "
                                       "(names are shmwarden-XXXXXX" % shown) and
                   r.stderr.count("\n") == 1,
                   "recover %s: %r" % (d, r.stderr))
        r = sb.run(["sweep", "--tmpdir", os.path.join(sb.tmp, "nosuch")])
        expect(r.returncode == 1 and "cannot open" in r.stderr, "bad base: %r" % r.stderr)
        # Garbage: bytes that are not text, control characters, huge arguments.
        for junk in (b"\xff\xfe\x01", b"--\xff", b"x" * 5000, b"\n\t\x1b[31m"):
            p = subprocess.run([harness.SHMWARDEN, b"recover", junk], capture_output=True,
                               env=sb.env, timeout=30, stdin=subprocess.DEVNULL)
            expect(p.returncode in (1, 2), "recover %r: exit %d" % (junk, p.returncode))
            expect(b"\x1b" not in p.stderr, "escape sequence echoed")
            p = subprocess.run([harness.SHMWARDEN, b"sweep", b"--tmpdir", junk],
                               capture_output=True, env=sb.env, timeout=30,
                               stdin=subprocess.DEVNULL)
            expect(p.returncode in (1, 2), "sweep %r: exit %d" % (junk, p.returncode))
        # A hostile directory name comes out escaped, and the JSON still parses.
        evil = os.path.join(sb.tmp, "shmwarden-\x1b\n\"\\\xe9")
        if len(os.path.basename(evil).encode()) != len("shmwarden-XXXXXX"):
            evil = os.path.join(sb.tmp, "shmwarden-\x1b\n\"\\ab")
        os.mkdir(evil, 0o700)
        r, doc = sweep_json(sb)
        expect(doc["dirs"][0]["dir"] == evil, "escaped dir: %r" % doc["dirs"][0]["dir"])
        r = sweep(sb)
        expect("\x1b" not in r.stdout + r.stderr and "\\x1b" in r.stdout, "text: %r" % r.stdout)


def test_recover_name_looks_in_the_bases_ls_lists():
    """`recover NAME` used to look in $TMPDIR alone, whatever SHMWARDEN_TMPDIRS said (ls
    lists those bases, and its names are what recover takes), and to take a pattern in
    --tmpdir for a directory name. It now looks where ls does, patterns' matches with
    the same checks, and says where it looked when the name is nowhere."""
    with Sandbox("recbases") as sb:
        root = os.path.join(sb.tmp, "r")
        other = os.path.join(root, "other")
        os.makedirs(other, 0o755)
        d = dead_manager(sb, 1, env=dict(sb.env, TMPDIR=other))
        name = os.path.basename(d)
        env = dict(sb.env, SHMWARDEN_TMPDIRS=other)
        r = sb.run(["recover", "--dry-run", name], env=env)
        expect(r.returncode == 0 and r.stdout.startswith(
            "shmwarden recover: %s: removed (dry run): 1 unlinked" % d),
            "SHMWARDEN_TMPDIRS: %d %r %r" % (r.returncode, r.stdout, r.stderr))
        plain = {k: v for k, v in sb.env.items() if k != "SHMWARDEN_TMPDIRS"}
        r = sb.run(["recover", "--dry-run", "--json", "--tmpdir", root + "/*", name], env=plain)
        expect(r.returncode == 0 and json.loads(r.stdout)["dir"] == d,
               "--tmpdir pattern: %d %r %r" % (r.returncode, r.stdout, r.stderr))
        # Nowhere: where it looked, from which setting; an unsafe match is not looked in.
        job = os.path.join(root, "job.1")
        os.mkdir(job, 0o755)
        ww = os.path.join(root, "job.ww")
        os.mkdir(ww)
        os.chmod(ww, 0o777)
        in_ww = dead_manager(sb, 1, first=1, env=dict(sb.env, TMPDIR=ww))
        e = dict(sb.env, SHMWARDEN_TMPDIRS="%s:%s/job.*" % (other, root))
        r = sb.run(["recover", "shmwarden-zzzzzz"], env=e)
        expect(r.returncode == 1 and r.stderr.startswith(
            "shmwarden recover: shmwarden-zzzzzz: error: no such directory (already reclaimed, "
            "or never there): looked in %s, %s (from SHMWARDEN_TMPDIRS); not in 1 unsafe temp "
            "base" % (other, job)), "nowhere: %d %r" % (r.returncode, r.stderr))
        r = sb.run(["recover", os.path.basename(in_ww)], env=e)
        expect(r.returncode == 1 and "not in 1 unsafe temp base" in r.stderr and
               os.path.isdir(in_ww) and sb.name(1) in sb.objects(),
               "in an unsafe match: %d %r" % (r.returncode, r.stderr))
        # The same name in two bases: which one is for the user to say.
        os.mkdir(os.path.join(job, name), 0o700)
        r = sb.run(["recover", name], env=e)
        expect(r.returncode == 1 and "in two temp bases" in r.stderr and os.path.isdir(d),
               "twice: %d %r" % (r.returncode, r.stderr))
        os.rmdir(os.path.join(job, name))
        r = sb.run(["recover", name], env=e)
        expect(r.returncode == 0 and not os.path.exists(d) and sb.name(0) not in sb.objects(),
               "recover: %d %r" % (r.returncode, r.stderr))
        os.chmod(ww, 0o755)
        r = sb.run(["recover", in_ww])
        expect(r.returncode == 0 and sb.objects() == [], "cleanup: %r" % r.stderr)



def _json_reading(raw):
    """What report_json_string makes of bytes, as json.loads reads it back: valid UTF-8
    as its characters, every other byte as the character of its Latin-1 reading."""
    s = raw.decode("utf-8", "surrogateescape")
    return "".join(chr(ord(ch) - 0xdc00) if 0xdc80 <= ord(ch) <= 0xdcff else ch for ch in s)


def _x_escaped(raw):
    """report_print_escaped: printable ASCII as is, every other byte as \\xHH, and so the
    backslash and a space that leads or trails."""
    core = raw.strip(b" ")
    lead = len(raw) - len(raw.lstrip(b" "))
    trail = len(raw) - len(raw.rstrip(b" ")) if core else 0

    def one(i, b):
        plain = 0x20 <= b < 0x7f and b != 0x5c and not (b == 0x20 and (
            i < lead or i >= len(raw) - trail))
        return chr(b) if plain else "\\x%02x" % b
    return "".join(one(i, b) for i, b in enumerate(raw))


def test_recover_json_detail_is_whole():
    """`recover --json NAME` copied its failure into the report's 256-byte detail, so a
    JSON consumer got the bases recover looked in cut at 255 bytes (mid-path, possibly
    mid-UTF-8), and the message itself was cut at 1 KiB of bases before that. Four long
    bases (one near PATH_MAX, two matched by a pattern, UTF-8 in their names): the
    detail in the JSON must name each whole, equal (escaped) to the line on stderr.
    Then garbage: a base whose name holds quotes, backslashes, control bytes and bytes
    that are not UTF-8 must come out as valid JSON naming it exactly."""
    with Sandbox("recjson") as sb:
        root = os.path.join(sb.tmp, "r").encode()

        def long_dir(parent, tag, length):
            """A directory under parent whose path is about length bytes."""
            path = parent
            while len(path) + 2 < length:
                comp = (tag + "-\u00e9t\u00e9" * 40).encode()[:max(1, min(200, length - len(path) - 1))]
                comp = comp.decode("utf-8", "ignore").encode()  # never cut mid-UTF-8 here
                path = os.path.join(path, comp)
            os.makedirs(path, 0o755, exist_ok=True)
            return path

        lit1 = long_dir(root, "a", 4000)  # near PATH_MAX (4096 with its NUL)
        lit2 = long_dir(root, "b", 900)
        pat_parent = long_dir(root, "c", 1200)
        jobs = [os.path.join(pat_parent, b"job.%d" % i) for i in (1, 2)]
        for j in jobs:
            os.mkdir(j, 0o755)
        tmpdirs = b":".join([lit1, lit2, os.path.join(pat_parent, b"job.*")])
        env = dict(sb.env, SHMWARDEN_TMPDIRS=os.fsdecode(tmpdirs))
        looked = [lit1, lit2] + jobs

        def check(what, name, want, shown=None):
            r = subprocess.run([harness.SHMWARDEN, "recover", "--json", name], env=env,
                               capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
            expect(r.returncode == 1, "%s: exit %d %r" % (what, r.returncode, r.stderr[-300:]))
            try:
                doc = json.loads(r.stdout.decode("utf-8"))
            except ValueError as e:
                raise AssertionError("%s: not JSON (%s): %r" % (what, e, r.stdout[:600]))
            detail = doc["detail"]
            expect(doc["status"] == "error", "%s: status %r" % (what, doc["status"]))
            for b in looked:
                expect(_json_reading(b) in detail,
                       "%s: %d-byte base not whole in the JSON detail (%d chars): ...%r" %
                       (what, len(b), len(detail), detail[-200:]))
            expect(detail == _json_reading(want),
                   "%s: detail\n  %r\nwant\n  %r" % (what, detail[-300:], _json_reading(want)[-300:]))
            shown = shown or name.encode()
            expect(doc["dir"] == _json_reading(shown), "%s: dir %r" % (what, doc["dir"][-200:]))
            line = "shmwarden recover: %s: error: %s\n" % (_x_escaped(shown), _x_escaped(want))
            expect(r.stderr.decode("ascii") == line,
                   "%s: stderr and JSON disagree: %r" % (what, r.stderr[-300:]))

        check("nowhere", "shmwarden-zzzzzz",
              b"no such directory (already reclaimed, or never there): looked in " +
              b", ".join(looked) + b" (from SHMWARDEN_TMPDIRS)")
        # The same name in two long bases: both named whole.
        for b in (lit1, jobs[1]):
            os.mkdir(os.path.join(b, b"shmwarden-twotwo"), 0o700)
        looked = [lit1, jobs[1]]
        check("twice", "shmwarden-twotwo",
              b"in two temp bases, " + lit1 + b"/shmwarden-twotwo and " + jobs[1] +
              b": give its path", shown=lit1 + b"/shmwarden-twotwo")

        # Garbage in a base's name: quotes, backslashes, control bytes, not UTF-8.
        evil = os.path.join(root, b'q"u\\o\\"te\x01\x02\n\t\r\x1b]0;t\x07\x7f\xff\xc3(\xe9\xed\xa0\x80'
                            b'\xf4\x90\x80\x80\xc0\xaf ok \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 "}')
        os.mkdir(evil, 0o755)
        env = dict(sb.env, SHMWARDEN_TMPDIRS=os.fsdecode(b":".join([evil, lit2])))
        looked = [evil, lit2]
        check("garbage", "shmwarden-zzzzzz",
              b"no such directory (already reclaimed, or never there): looked in " +
              b", ".join(looked) + b" (from SHMWARDEN_TMPDIRS)")


# (9)
def test_multi_user_as_root():
    if os.geteuid() != 0:
        print("SKIP test_multi_user_as_root: needs root")
        return
    users = []
    # The users must reach their managers' directory: a private base under /tmp, not
    # the suite's 0700 TMPDIR.
    sb = Sandbox("mu", shared=True)
    try:
        users = [harness.useradd("a"), harness.useradd("b")]
        a, b = (pwd.getpwnam(u) for u in users)
        env = dict(sb.env, HOME="/")

        def create_as(pw, name):
            c = as_user(pw, [PY, "-c", "import os,sys; fd=os.open('/dev/shm'+sys.argv[1], "
                           "os.O_RDWR|os.O_CREAT|os.O_EXCL, 0o600); os.ftruncate(fd, 4096)",
                           name])
            expect(c.wait(30) == 0, "create as %s failed" % pw.pw_name)

        def dead_a_manager(names):
            """A's manager and A's client: registers names, creates those starting with
            '+', is killed."""
            return harness.dead_manager_as(sb, a, names, env)

        a_obj, b_obj = sb.name("a0"), sb.name("b0")
        create_as(b, b_obj)
        # A hostile A lists B's object in its journal, next to its own.
        d = dead_a_manager(["+" + a_obj, b_obj])
        expect(os.stat(d).st_uid == a.pw_uid, "A's directory not A's")
        # Two more of A's dead managers: one made group-writable, one behind a symlink.
        gw = dead_a_manager(["+" + sb.name("a1")])
        hidden = dead_a_manager(["+" + sb.name("a2")])
        os.chmod(gw, 0o770)
        elsewhere = os.path.join(sb.tmp, "elsewhere")
        os.mkdir(elsewhere)
        os.chown(elsewhere, a.pw_uid, a.pw_gid)
        moved = os.path.join(elsewhere, os.path.basename(hidden))
        os.rename(hidden, moved)
        link = os.path.join(sb.tmp, "shmwarden-symlnk")
        os.symlink(moved, link)
        os.lchown(link, a.pw_uid, a.pw_gid)

        r, doc = sweep_json(sb)
        by_dir = {os.path.basename(x["dir"]): x for x in doc["dirs"]}
        rep = by_dir[os.path.basename(d)]
        expect(rep["status"] == "removed" and rep["unlinked"] == 1 and rep["refused"] == 1
               and rep["owner"] == a.pw_uid, "A's report: %s" % rep)
        expect(os.path.exists(SHM + b_obj), "B's object was unlinked")
        expect(os.stat(SHM + b_obj).st_uid == b.pw_uid, "B's object changed hands")
        expect(not os.path.exists(SHM + a_obj), "A's object not unlinked")
        expect(by_dir[os.path.basename(gw)]["status"] == "unsafe", "group-writable: %s"
               % by_dir[os.path.basename(gw)])
        expect(by_dir["shmwarden-symlnk"]["status"] == "unsafe", "symlink: %s"
               % by_dir["shmwarden-symlnk"])
        expect(os.path.exists(SHM + sb.name("a1")) and os.path.exists(SHM + sb.name("a2")),
               "objects of skipped directories unlinked")
        expect(os.path.isdir(gw) and os.path.isdir(moved), "skipped directories touched")
        # Another user's unsafe directories are findings, not failures of the sweep.
        expect(r.returncode == 0, "exit %d" % r.returncode)
        # What SQLite made as root on A's behalf is A's, and nothing is left over.
        expect(not os.path.exists(d), "A's directory left")
        # A sweeping as A sees only its own: the same refusal holds without root.
        os.chmod(gw, 0o700)
        q = as_user(a, [harness.SHMWARDEN, "sweep", "--json", "--tmpdir", sb.tmp],
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        out, err = q.communicate(timeout=60)
        doc = json.loads(out)
        expect(q.returncode == 0 and "unsafe" in err.decode(),
               "sweep as A: exit %d %s" % (q.returncode, err))
        expect(not os.path.exists(SHM + sb.name("a1")), "A's own object not reclaimed by A")
        expect(os.path.exists(SHM + b_obj), "B's object unlinked by A")
    finally:
        sb.cleanup()
        for u in users:
            subprocess.run(["userdel", u], capture_output=True)


def fill(d):
    """Writes files into d until its filesystem is full (ENOSPC)."""
    n = 0
    try:
        while True:
            with open(os.path.join(d, "fill%d" % n), "wb") as f:
                f.write(bytes(65536))
            n += 1
    except OSError:
        pass
    try:  # the last pages a small write still fits in
        while True:
            with open(os.path.join(d, "fill%d" % n), "wb") as f:
                f.write(bytes(512))
            n += 1
    except OSError:
        pass


def full_tmpdir_helper():
    """Inside `unshare -m`: a tmpfs on /mnt (over the host's, in this mount namespace only)
    holds the dead managers' base, and a small one on /mnt/full is the reclaimers' TMPDIR,
    filled up. The private
    copy of each journal then goes to /tmp, as SECURITY.md says ($TMPDIR or /tmp,
    whichever works first); with /tmp full too (a full tmpfs mounted over it, here only),
    recover fails naming both places and changes nothing."""
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0755", "shmw-bases", "/mnt"],
                   check=True)
    over_tmp = False
    try:
        base, full = "/mnt/base", "/mnt/full"
        os.mkdir(base, 0o700)
        os.mkdir(full, 0o700)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "shmw-full", full],
                       check=True)
        with Sandbox("fulltmp") as sb:
            env = dict(sb.env, TMPDIR=full)
            names = [[sb.name("%d_%d" % (k, i)) for i in range(3)] for k in range(4)]
            dirs = [harness.dead_manager(sb, n, base=base) for n in names]
            fill(full)
            # TMPDIR full, /tmp with room: recover and sweep reclaim.
            r = sb.run(["recover", dirs[0]], env=env)
            expect(r.returncode == 0 and "removed: 3 unlinked" in r.stdout and
                   not os.path.exists(dirs[0]) and not set(names[0]) & set(sb.objects()),
                   "recover, TMPDIR full: %d %r %r" % (r.returncode, r.stdout, r.stderr))
            r = sb.run(["recover", "--dry-run", dirs[1]], env=env)
            expect(r.returncode == 0 and "removed (dry run): 3 unlinked" in r.stdout,
                   "recover --dry-run, TMPDIR full: %d %r %r" % (r.returncode, r.stdout,
                                                                   r.stderr))
            r = sb.run(["ls", "--tmpdir", base], env=env)
            expect(r.returncode == 0 and r.stdout.count(" dead ") == 3 and "!" not in r.stdout,
                   "ls, TMPDIR full: %d %r %r" % (r.returncode, r.stdout, r.stderr))
            # Neither has room: a clear error naming both, nothing changed. The tmpfs over
            # /tmp hides a build that lies under /tmp (a clone there, as CI's is): the
            # binary is run from our working directory, entered before the mount.
            os.chdir(os.path.dirname(harness.SHMWARDEN))
            harness.SHMWARDEN = "./" + os.path.basename(harness.SHMWARDEN)
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=1777", "shmw-full",
                            "/tmp"], check=True)
            over_tmp = True
            fill("/tmp")
            r = sb.run(["recover", dirs[1]], env=env)
            expect(r.returncode == 1 and "no room for a private copy of the journal in %s: "
                   "%s; /tmp: %s" % (full, os.strerror(28), os.strerror(28)) in r.stderr and
                   os.path.isdir(dirs[1]) and set(names[1]) <= set(sb.objects()),
                   "recover, both full: %d %r %r" % (r.returncode, r.stdout, r.stderr))
            expect(not [n for n in os.listdir("/tmp") if not n.startswith("fill")],
                   "a copy left in /tmp: %s" % os.listdir("/tmp"))
            subprocess.run(["umount", "/tmp"], check=True)
            over_tmp = False
            harness.SHMWARDEN = os.path.abspath(harness.SHMWARDEN)
            r = sb.run(["sweep", "--tmpdir", base], env=env)
            expect(r.returncode == 0 and "3 directories: 3 removed" in r.stdout and
                   not sb.objects(), "sweep, TMPDIR full: %d %r %r" % (r.returncode, r.stdout,
                                                                        r.stderr))
            expect(not [n for n in os.listdir(full) if not n.startswith("fill")],
                   "a copy left in TMPDIR: %s" % os.listdir(full))
            expect(not [n for n in os.listdir("/tmp") if n.startswith(".shmwarden-read-")],
                   "a copy left in /tmp")
    finally:
        if over_tmp:
            subprocess.run(["umount", "-l", "/tmp"], capture_output=True)
        subprocess.run(["umount", "-l", "/mnt/full"], capture_output=True)
        subprocess.run(["umount", "-l", "/mnt"], capture_output=True)


def test_a_full_tmpdir_copies_the_journal_to_tmp():
    """A full $TMPDIR made every real recover and sweep fail ("copy journal.db: No space
    left on device", exit 1): the private copy of a journal fell back to /tmp only when
    mkdtemp failed. Now a full base (ENOSPC, EDQUOT) is left for the next, its partial
    copy removed (trial F6). Runs in a private mount namespace: nothing host-wide is
    mounted or filled."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        print("# SKIP: needs root and unshare")
        return
    p = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable,
                        os.path.abspath(__file__), "--full-tmpdir-helper"],
                       capture_output=True, text=True, timeout=300, env=dict(os.environ))
    expect(p.returncode == 0, "helper exit %d:\n%s%s" % (p.returncode, p.stdout[-3000:],
                                                           p.stderr[-3000:]))


if __name__ == "__main__" and sys.argv[1:] == ["--full-tmpdir-helper"]:
    full_tmpdir_helper()
    sys.exit(0)


harness.main(globals())
