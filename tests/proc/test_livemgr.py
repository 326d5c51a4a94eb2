"""test_livemgr.py — a name a live manager holds is never reclaimed (issue 10, livemgr.c).

A manager dies holding /pin; a second, live manager registers /pin again and its client
replaces the stale object (what a program with a fixed segment name does after a
crash). The dead row was never identified, so only the live manager's journal says the
new object is not a leak. These tests run the real manager and reclaimers (sweep,
recover, a restarted manager's adoption) inside a harness Sandbox and check that the
live manager's /pin survives when:

- the live manager runs in its own mount namespace, its TMPDIR base bind-mounted at a
  path that does not exist (as that directory) outside it (PrivateTmp, a container
  sharing /dev/shm, `unshare -m`);
- the sweeper runs in its own mount namespace: the live manager's base hidden under a
  tmpfs and / read-only, as a sandboxed sweep sees it;
- other processes churn thousands of fcntl and flock locks (the /proc/locks of main
  skipped a held lock under that load);
- the sweeper's /proc is not procfs (an empty tmpfs): it cannot tell who is live, so
  it keeps everything; decoys (a locked "manager directory" with a listening socket
  and a garbage journal) are not mistaken for anything and break nothing.
"""
import os
import subprocess
import sys
import json
import shutil

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (SHM, Sandbox, dead_pin_manager, read_object, replace_object,  # noqa: E402
                     sigkill, wait_for, write_object)

PY = "/usr/bin/python3"
TRIALS = 4
CHURN_TRIALS = 50


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def live_pin_manager(sb, base):
    """A live manager in TMPDIR base that never reclaims and never shuts down on its
    own (an hour: under ASan on a loaded machine one test outlasted 100 s): the manager
    whose /pin the tests' reclaimers must leave alone."""
    m = sb.spawn_manager(args=["manager", "--no-reclaim", "--shutdown-timeout", "3600000"],
                         argv0="shmwarden", env=dict(sb.env, TMPDIR=base))
    expect(m.sock, "manager failed: %r" % m.line)
    return m


def bases(sb, *names):
    """Private temp bases under the sandbox, made 0700; returns their paths."""
    paths = [os.path.join(sb.tmp, n) for n in names]
    for d in paths:
        os.mkdir(d, 0o700)
    return paths


def stale_then_replaced(sb, dead, c, pin, trial):
    """A dead manager in dead journaled pin (never identified); then the live manager's
    client c registers pin again and replaces the object. Returns (the dead directory,
    the live object's data)."""
    d = dead_pin_manager(sb, dead, pin)
    data = b"live %d" % trial
    replace_object(c, pin, data)
    return d, data


def adopted_by_restarted_manager(sb, dead, d):
    """A manager restarted in dead adopts its dead sibling d; then it is SIGKILLed and
    what it left is recovered, so the next trial starts clean."""
    m = sb.spawn_manager(args=["manager", "--shutdown-timeout", "3600000"],
                         argv0="shmwarden", env=dict(sb.env, TMPDIR=dead))
    expect(m.sock, "the restarted manager failed: %r" % m.line)
    expect(wait_for(lambda: not os.path.exists(d), timeout=10),
           "the restarted manager never adopted its dead sibling")
    sigkill(m)
    for n in os.listdir(dead):
        sb.run(["recover", os.path.join(dead, n)])


def reclaim_dead(sb, how, dead, d, sweep_args=()):
    """Reclaims the dead directory d (in the base dead) by how: "sweep" (returns its
    --json document), "recover", or "adoption" by a restarted manager."""
    if how == "sweep":
        r = sb.run(["sweep", "--tmpdir", dead, "--json"] + list(sweep_args))
        expect(r.returncode == 0, "sweep exit %d: %s" % (r.returncode, r.stderr))
        return json.loads(r.stdout)
    if how == "recover":
        r = sb.run(["recover", d])
        expect(r.returncode == 0, "recover exit %d: %s" % (r.returncode, r.stderr))
    else:
        adopted_by_restarted_manager(sb, dead, d)
    return None


def namespaced_manager(sb, real, alias):
    """A live manager in its own mount namespace whose TMPDIR is alias, a bind mount of
    real made there only: outside, alias is an empty directory. Returns (Manager, the
    socket path as seen from here)."""
    os.makedirs(alias, 0o700, exist_ok=True)
    script = ('mount --bind "$1" "$2" && TMPDIR="$2" exec "$3" manager --no-reclaim '
              '--shutdown-timeout 100000')
    proc = sb.track(subprocess.Popen(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", real, alias,
         harness.SHMWARDEN], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=sb.env,
        stdin=subprocess.DEVNULL))
    line = proc.stdout.readline().decode().strip()
    expect(line.startswith(alias + "/"), "the namespaced manager said %r" % line)
    m = harness.Manager(proc, line)
    outside = real + line[len(alias):]
    expect(not os.path.exists(line), "the alias path is visible outside the namespace")
    return m, outside


def test_live_manager_in_another_mount_namespace_keeps_pin():
    """sweep, recover and a restarted manager's adoption each hand /pin over."""
    with Sandbox("lmns") as sb:
        real, dead = bases(sb, "real", "dead")
        alias = os.path.join(sb.tmp, "alias")
        pin = sb.name("pin")
        live, sock = namespaced_manager(sb, real, alias)
        c = harness.Client(sock)
        lost = []
        for trial in range(3 * TRIALS):
            how = ("sweep", "recover", "adoption")[trial % 3]
            d, data = stale_then_replaced(sb, dead, c, pin, trial)
            doc = reclaim_dead(sb, how, dead, d)
            if doc and read_object(pin) == data:
                rep = doc["dirs"][0]
                expect(rep["handed_over"] == 1 and rep["unlinked"] == 0, "report: %r" % rep)
            if read_object(pin) != data:
                lost.append(how)
            expect(not os.path.exists(d), "%s left the dead directory" % how)
            os.unlink(SHM + pin) if os.path.exists(SHM + pin) else None
        c.close()
        sigkill(live)
        expect(not lost, "the live manager's /pin was unlinked by %s" % lost)


def sandboxed_sweep(sb, hide, dead, proc_tmpfs=False):
    """`shmwarden sweep --tmpdir dead --json` in its own mount namespace: hide is covered
    by an empty tmpfs, / is read-only (dead and a scratch TMPDIR stay writable: their own
    bind mounts), and with proc_tmpfs /proc is an empty tmpfs too."""
    scratch = os.path.join(sb.tmp, "scratch")
    os.makedirs(scratch, 0o700, exist_ok=True)
    script = ('mount -t tmpfs -o size=64k shmw-hide "$1" && mount --bind "$2" "$2" && '
              'mount --bind "$4" "$4" && mount -o remount,bind,ro / && ')
    if proc_tmpfs:
        script += 'mount -t tmpfs -o size=64k shmw-noproc /proc && '
    script += 'TMPDIR="$4" exec "$3" sweep --tmpdir "$2" --json'
    return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script,
                           "sh", hide, dead, harness.SHMWARDEN, scratch], env=sb.env,
                          capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def test_sweeper_in_its_own_mount_namespace_keeps_pin():
    with Sandbox("lmsw") as sb:
        livebase, dead = bases(sb, "live", "dead")
        pin = sb.name("pin")
        live = live_pin_manager(sb, livebase)
        c = live.client()
        lost = 0
        for trial in range(TRIALS):
            d, data = stale_then_replaced(sb, dead, c, pin, trial)
            r = sandboxed_sweep(sb, livebase, dead)
            expect(r.returncode == 0, "sweep exit %d: %s" % (r.returncode, r.stderr))
            rep = json.loads(r.stdout)["dirs"][0]
            if read_object(pin) != data:
                lost += 1
            else:
                expect(rep["handed_over"] == 1 and rep["unlinked"] == 0, "report: %r" % rep)
            expect(not os.path.exists(d), "the dead directory is left")
            os.unlink(SHM + pin) if os.path.exists(SHM + pin) else None
        c.close()
        sigkill(live)
        expect(lost == 0, "the live manager's /pin was unlinked in %d of %d sandboxed sweeps"
               % (lost, TRIALS))


# Lock churn: each helper (tests/tools/lock_churn.c) takes CHURN_LOCKS fcntl locks and
# 32 flocks and drops them all at once, again and again: every drop removes hundreds of
# /proc/locks entries between two read()s of a reader, which then skips as many.
CHURN = os.path.join(harness.BUILD, "tools", "lock_churn")
CHURN_HELPERS = 3
CHURN_LOCKS = 8000


def churn_helper(sb, path):
    p = sb.track(subprocess.Popen([CHURN, path, str(CHURN_LOCKS)], stdout=subprocess.PIPE,
                                  env=sb.env))
    expect(p.stdout.readline().strip() == b"churning", "a churn helper failed")


def test_lock_churn_loses_nothing():
    with Sandbox("lmch") as sb:
        livebase, dead, churn = bases(sb, "live", "dead", "churn")
        pin = sb.name("pin")
        for i in range(CHURN_HELPERS):
            churn_helper(sb, os.path.join(churn, "f%d" % i))
        live = live_pin_manager(sb, livebase)
        c = live.client()
        lost = 0
        for trial in range(CHURN_TRIALS):
            d, data = stale_then_replaced(sb, dead, c, pin, trial)
            r = sb.run(["sweep", "--tmpdir", dead])
            expect(r.returncode == 0, "sweep exit %d: %s" % (r.returncode, r.stderr))
            if read_object(pin) != data:
                lost += 1
            os.unlink(SHM + pin) if os.path.exists(SHM + pin) else None
            for n in os.listdir(dead):
                sb.run(["recover", os.path.join(dead, n)])
        c.close()
        sigkill(live)
        expect(lost == 0, "the live manager's /pin was unlinked in %d of %d sweeps under "
               "lock churn" % (lost, CHURN_TRIALS))


# A decoy: a locked directory that looks like a manager's (manager.sock listened on by
# the decoy, flock held exclusive) whose journal is garbage; a second one listens on an
# abstract socket only. Neither may stop the real live manager from being found, nor be
# taken for one.
DECOY = r"""
import fcntl, os, socket, sys, time
base = sys.argv[1]
held = []
for i, abstract in ((0, False), (1, True)):
    d = os.path.join(base, "shmwarden-decoy%d" % i)
    os.mkdir(d, 0o700)
    with open(os.path.join(d, "journal.db"), "wb") as f:
        f.write(os.urandom(4096))
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if abstract:
        s.bind("\0shmw-decoy-%d" % os.getpid())
        open(os.path.join(d, "manager.sock"), "w").close()
    else:
        s.bind(os.path.join(d, "manager.sock"))
    s.listen(1)
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    held += [s, fd]
print("decoyed", flush=True)
time.sleep(600)
"""


def test_unreadable_proc_and_decoys_keep():
    with Sandbox("lmgb") as sb:
        livebase, dead, decoys = bases(sb, "live", "dead", "decoys")
        pin = sb.name("pin")
        decoy = sb.track(subprocess.Popen([PY, "-c", DECOY, decoys], stdout=subprocess.PIPE,
                                          env=sb.env))
        expect(decoy.stdout.readline().strip() == b"decoyed", "the decoy failed")
        live = live_pin_manager(sb, livebase)
        c = live.client()
        # /proc is not procfs: nobody can be told live or not, so nothing is unlinked,
        # and the directory is kept for a later pass.
        d = dead_pin_manager(sb, dead, pin)
        replace_object(c, pin, b"live noproc")
        r = sandboxed_sweep(sb, decoys, dead, proc_tmpfs=True)
        expect(read_object(pin) == b"live noproc",
               "a sweep without /proc unlinked the live manager's /pin (exit %d: %s)"
               % (r.returncode, r.stderr[-800:]))
        expect(os.path.exists(d), "a sweep without /proc removed the dead directory")
        # With /proc, the decoys are skipped and the real live manager still found.
        r = sb.run(["sweep", "--tmpdir", dead, "--json"])
        expect(r.returncode == 0, "sweep exit %d: %s" % (r.returncode, r.stderr))
        rep = json.loads(r.stdout)["dirs"][0]
        expect(read_object(pin) == b"live noproc", "the sweep unlinked the live manager's /pin")
        expect(rep["handed_over"] == 1 and rep["unlinked"] == 0, "report: %r" % rep)
        expect(not os.path.exists(d), "the dead directory is left")
        expect(decoy.poll() is None, "the decoy died")
        expect(sorted(os.listdir(decoys)) == ["shmwarden-decoy0", "shmwarden-decoy1"],
               "the decoys' directories changed")
        c.close()
        sigkill(live)


def test_walk_older_than_a_second_is_not_trusted():
    """A dead journal of two pages; while the sweep is held (strace) at the statx of the
    second page's /pin, a live manager is started and re-registers /pin, whose object
    (born long before) it reuses rather than replaces. The birth rule cannot see such a
    manager, so the walk of the first page must not be trusted past a second: without
    that bound the sweep unlinked the live manager's /pin."""
    if not shutil.which("strace"):
        pytest.skip("needs strace")
    with Sandbox("lmage") as sb:
        livebase, dead = bases(sb, "live", "dead")
        # The filler sorts before /pin and fills the first page (512 rows); its objects
        # never existed, so the first page is quick and ends with a walk.
        pin = sb.name("zz-pin")
        m = sb.spawn_manager(args=["manager", "--no-reclaim", "--prune-interval", "100000"],
                             argv0="shmwarden", env=dict(sb.env, TMPDIR=dead))
        expect(m.sock, "manager failed: %r" % m.line)
        c = m.client()
        for i in range(600):
            c.register(sb.name("a%04d" % i))
        c.register(pin)
        write_object(pin, b"kept")
        sigkill(m)
        c.close()
        env = dict(sb.env)
        if harness.SANITIZED:  # LeakSanitizer cannot stop threads under strace
            env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", os.environ.get(
                "ASAN_OPTIONS", "")) + ":detect_leaks=0"
        trace = os.path.join(sb.tmp, "trace")
        sw = sb.track(subprocess.Popen(
            ["strace", "-f", "-o", trace, "-P", pin[1:], "-e", "trace=statx",
             "-e", "inject=statx:delay_exit=3000000:when=1",
             harness.SHMWARDEN, "sweep", "--json", "--tmpdir", dead],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
            stdin=subprocess.DEVNULL))
        expect(wait_for(lambda: os.path.exists(trace) and pin[1:] in open(trace).read(),
                        timeout=30), "the sweep never reached /pin")
        live = live_pin_manager(sb, livebase)
        lc = live.client()
        lc.register(pin)  # and reuses the object as it is
        out, err = sw.communicate(timeout=60)
        expect(sw.returncode == 0, "sweep exit %d: %s" % (sw.returncode, err[-2000:]))
        expect(read_object(pin) == b"kept",
               "the live manager's /pin was unlinked by a walk older than a second")
        lc.close()
        sigkill(live)


def set_user_version(mgr_dir, version):
    """Sets the live manager's journal's user_version (its schema version) to version,
    with Python's own sqlite3, as another build of shmwarden would have written it: an
    older or newer release running beside this one (a package upgrade)."""
    import sqlite3
    con = sqlite3.connect(os.path.join(mgr_dir, "journal.db"), timeout=5)
    try:
        con.execute("PRAGMA user_version = %d" % version)
        con.commit()
    finally:
        con.close()


def test_live_manager_of_another_schema_version_keeps_pin():
    """A live manager whose journal this build cannot read (another schema version: a
    newer release, or the never-released version 2) holds /pin: nobody can tell whether
    /pin is in its care, so sweep, recover and a restarted manager's adoption keep it
    (cannot tell means keep), and say so: live_unreadable in the report, the metric."""
    with Sandbox("lmver") as sb:
        livebase, dead = bases(sb, "live", "dead")
        pin = sb.name("pin")
        live = live_pin_manager(sb, livebase)
        c = live.client()
        lost = []
        for trial, (version, how) in enumerate((v, h) for v in (5, 2)
                                               for h in ("sweep", "recover", "adoption")):
            d, data = stale_then_replaced(sb, dead, c, pin, trial)
            set_user_version(live.dir, version)
            prom = os.path.join(sb.tmp, "sweep.prom")
            # What it cannot tell about, a restarted manager adopts: kept, journaled.
            doc = reclaim_dead(sb, how, dead, d, sweep_args=["--metrics", prom])
            if doc:
                rep = doc["dirs"][0]
                if read_object(pin) == data:
                    expect(rep["status"] == "kept" and rep["unlinked"] == 0 and
                           rep["live_unreadable"] == 1 and
                           rep["live_unreadable_pid"] == live.pid and
                           doc["totals"]["live_unreadable"] == 1, "report: %r" % doc)
                    with open(prom) as f:
                        expect("\nshmwarden_sweep_last_objects_live_unreadable 1\n" in
                               f.read(), "the metric does not count it")
                    r = sb.run(["sweep", "--tmpdir", dead])
                    expect("1 kept: the journal of live manager pid %d cannot be read"
                           % live.pid in r.stdout, "text report: %r" % r.stdout)
            if read_object(pin) != data:
                lost.append((version, how))
            # The next trial starts clean: the live manager readable again, the dead
            # directories reclaimed now that it can be read (handed over).
            set_user_version(live.dir, 4)
            for n in os.listdir(dead):
                r = sb.run(["recover", os.path.join(dead, n)])
                expect(r.returncode == 0, "cleanup recover: %s" % r.stderr)
            expect(read_object(pin) in (data, None), "/pin changed")
            os.unlink(SHM + pin) if os.path.exists(SHM + pin) else None
        c.close()
        sigkill(live)
        expect(not lost, "the live manager's /pin was unlinked while its journal was of "
               "another schema version: %s" % lost)


def test_unreadable_live_manager_of_another_shm_filesystem_keeps_nothing():
    """A live manager whose journal cannot be read but whose /dev/shm is a filesystem of
    its own (a chroot's, a container's) cannot hold a name of ours: a dead row's stale
    object is reclaimed as usual, not kept."""
    with Sandbox("lmvfs") as sb:
        livebase, dead = bases(sb, "live", "dead")
        script = ('mount -t tmpfs -o size=1m,mode=1777 shmw-own /dev/shm && exec "$1" '
                  'manager --no-reclaim --shutdown-timeout 100000')
        proc = sb.track(subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
             harness.SHMWARDEN], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL, env=dict(sb.env, TMPDIR=livebase)))
        sock = proc.stdout.readline().decode().strip()
        expect(sock.startswith(livebase + "/"), "the manager said %r" % sock)
        set_user_version(os.path.dirname(sock), 5)
        pin = sb.name("pin")
        d = dead_pin_manager(sb, dead, pin)
        rep = reclaim_dead(sb, "sweep", dead, d)["dirs"][0]
        expect(rep["status"] == "removed" and rep["unlinked"] == 1 and
               rep["live_unreadable"] == 0 and read_object(pin) is None,
               "a live manager of another shm filesystem kept a stale object: %r" % rep)
        sigkill(proc)


def holder_pid(sb, mgr_dir, base, ns=False):
    """The live manager's pid as `recover --json` and `ls --json` report it (None:
    unknown), run here or, with ns, in a new pid namespace with its own /proc."""
    pre = ["unshare", "-p", "-f", "--mount-proc", harness.SHMWARDEN] if ns else None
    def run(args):
        if pre:
            return subprocess.run(pre + args, env=sb.env, capture_output=True, text=True,
                                  timeout=60, stdin=subprocess.DEVNULL)
        return sb.run(args)
    r = run(["recover", "--json", mgr_dir])
    expect(r.returncode == 1, "recover of a live directory: %d %s" % (r.returncode, r.stderr))
    rep = json.loads(r.stdout)
    expect(rep["status"] == "live", "recover: %r" % rep)
    r = run(["ls", "--json", "--tmpdir", base])
    expect(r.returncode == 0, "ls: %d %s" % (r.returncode, r.stderr))
    row = [m for m in json.loads(r.stdout)["managers"] if m["path"] == mgr_dir]
    expect(len(row) == 1 and row[0]["state"] == "live", "ls: %s" % r.stdout)
    pid = row[0]["pid"] or None
    expect(pid == rep["manager_pid"], "ls says pid %r, recover %r" % (pid, rep["manager_pid"]))
    return pid


@pytest.mark.parametrize("placement", ["beside", "in-place"])
@pytest.mark.parametrize("how", ["sweep", "recover", "adoption"])
def test_a_renamed_live_manager_keeps_its_names_from_a_dead_copy(how, placement):
    """A live manager's directory renamed since its socket was bound (mv), and a copy of
    it (cp -a: a dead directory whose journal names every object the live manager holds)
    put beside it or in its place. The live manager's socket path then leads to the copy
    or nowhere, and livemgr.c took a holder that does not listen at its directory's
    socket for a reclaimer: the copy's rows were unlinked under the live manager (found
    by a new user). Each reclaimer must hand them over, and leave them whole."""
    with Sandbox("livemv") as sb:
        base, = bases(sb, "b")
        m = live_pin_manager(sb, base)
        c = m.client()
        names = [sb.name(i) for i in range(3)]
        for n in names:
            c.register(n)
            write_object(n, b"live " + n.encode())  # created, then mapped by nobody
        if placement == "beside":
            moved, copy = os.path.join(base, "shmwarden-MOVED1"), os.path.join(
                base, "shmwarden-COPY01")
        else:
            moved, copy = m.dir + ".old", m.dir
        os.rename(m.dir, moved)
        r = subprocess.run(["cp", "-a", moved, copy], capture_output=True, text=True)
        expect(r.returncode == 0, "cp -a: %s" % r.stderr)
        doc = reclaim_dead(sb, how, base, copy)
        if doc:
            rep = [d for d in doc["dirs"] if d["dir"].endswith(os.path.basename(copy))]
            expect(len(rep) == 1 and rep[0]["handed_over"] == 3 and rep[0]["unlinked"] == 0,
                   "sweep's report: %r" % doc["dirs"])
        lost = [n for n in names if read_object(n) != b"live " + n.encode()]
        expect(not lost, "%s (copy %s) unlinked the live manager's %s" % (how, placement, lost))
        expect(m.proc.poll() is None, "the live manager died")
        c.register(sb.name("after"))  # and it still serves its clients
        c.close()
        sigkill(m)


def test_lock_holder_pid_is_the_kernels_answer():
    """The pid reports show for a live directory comes from the task whose open file
    holds the lock, not from /proc/locks: right on every try under lock churn (which
    made /proc/locks skip the manager's entry), unknown (null) from a pid namespace
    that cannot see the manager, and the manager's pid as seen from here when it runs
    in a pid namespace of its own."""
    with Sandbox("lmpid") as sb:
        livebase, churn, nsbase = bases(sb, "live", "churn", "ns")
        live = live_pin_manager(sb, livebase)
        # A prober holding the directory open (as a look does) is not its holder.
        looker = sb.track(subprocess.Popen(["sleep", "600"], cwd=live.dir))
        for i in range(CHURN_HELPERS):
            churn_helper(sb, os.path.join(churn, "f%d" % i))
        wrong = [p for p in (holder_pid(sb, live.dir, livebase) for _ in range(CHURN_TRIALS))
                 if p != live.pid]
        expect(not wrong, "the holder of a live directory under lock churn was reported "
               "as %s in %d of %d tries, not pid %d" % (sorted(set(map(str, wrong))),
                                                       len(wrong), CHURN_TRIALS, live.pid))
        expect(holder_pid(sb, live.dir, livebase, ns=True) is None,
               "a pid namespace that cannot see the manager named a pid")
        # A /proc that is not procfs, forged to name pid 1 as the holder: unknown. (Not
        # under ASan+UBSan: their runtime cannot start without the real /proc.)
        if not harness.SANITIZED:
            forge = ('mount -t tmpfs -o size=64k shmw-noproc /proc && mkdir -p /proc/1/fd '
                     '/proc/1/fdinfo && ln -s "$2" /proc/1/fd/3 && printf '
                     '"lock:\\t1: FLOCK  ADVISORY  WRITE 1 00:00:1 0 EOF\\n" > /proc/1/fdinfo/3 && '
                     'exec "$1" ls --json --tmpdir "$3"')
            r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", forge,
                                "sh", harness.SHMWARDEN, live.dir, livebase], env=sb.env,
                               capture_output=True, text=True, timeout=60,
                               stdin=subprocess.DEVNULL)
            expect(r.returncode == 0, "ls under a forged /proc: %d %s" % (r.returncode, r.stderr))
            row = json.loads(r.stdout)["managers"]
            expect([m["pid"] for m in row] == [0], "ls under a forged /proc: %s" % r.stdout)
        # A manager in its own pid namespace: here, its pid is the one we see.
        proc = sb.track(subprocess.Popen(
            ["unshare", "-p", "-f", "--kill-child", "--mount-proc", harness.SHMWARDEN,
             "manager", "--no-reclaim", "--shutdown-timeout", "3600000"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
            env=dict(sb.env, TMPDIR=nsbase)))
        sock = proc.stdout.readline().decode().strip()
        expect(sock.startswith(nsbase + "/"), "the namespaced manager said %r" % sock)
        kids = open("/proc/%d/task/%d/children" % (proc.pid, proc.pid)).read().split()
        expect(len(kids) == 1, "unshare's children: %r" % kids)
        expect(holder_pid(sb, os.path.dirname(sock), nsbase) == int(kids[0]),
               "the manager in its own pid namespace is not reported as pid %s" % kids[0])
        looker.kill()
        sigkill(live)


if __name__ == "__main__":
    harness.main(globals())
