"""test_lease.py — no unlink without the kernel's lease: holders the /proc view misses.

A reclaimer's /proc shows the tasks of its own pid namespace only, and not every holder
is a task's fd or mapping: a reclaimer in a child pid namespace (a container sharing
/tmp and /dev/shm but not pids, `unshare -p`) sees no host process; a file registered
with io_uring and closed is in no fd table; an object opened or mapped through an
overlayfs over /dev/shm shows the overlay's device and inode. Each of them made every
reclaimer unlink an object a live process held (the new-user report of 1 December).
The kernel's write lease sees them all: these tests check that `sweep`, `recover` and a
restarted manager keep such objects (and adopt them, for the manager), that an object
nobody holds is still unlinked by each of them, and that a kernel granting no leases
makes them keep everything, said once.

The plain path (a root reclaimer that can inspect every task it sees, so nothing is in
doubt) is what a root sweep does on an ordinary host. On the test machines root cannot
read pid 1's /proc entries, so a root reclaimer in the host's pid namespace is always in
doubt and asks the kernel anyway; the plain path runs only inside a pid namespace with
its own /proc (`unshare -p -f --mount-proc`), where root sees every task: the io_uring,
overlay and unheld cases run there, holder and reclaimer together, and check that
nothing was in doubt (`not_inspectable` 0). Root only; everything lives in harness
Sandboxes (private temp base, unique object prefix, only our own pids killed).
"""
import json
import os
import select
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import SHM, SHMWARDEN, Sandbox, journal_names  # noqa: E402
from test_holders import dead_manager, expect, finish, hold, root_only, skip, stop  # noqa: E402

HOLDER = os.path.join(harness.BUILD, "tools", "shm_holder")
NO_LEASE = os.path.join(harness.BUILD, "tools", "no_lease")
PIDNS = ["unshare", "-p", "-f", "--kill-child", "--mount-proc"]
LEASE_LINE = "the kernel's lease says it is open"

# Runs inside a fresh pid (and mount) namespace, so that the reclaimer it starts sees
# every task there and nothing is in doubt. argv[1]: JSON with "mounts" (overlays to
# make: [mountpoint, lowerdirs]), "holders" (argv lists, each waited on until "ready"),
# "cmd" (the reclaimer) and "names" (objects to look for afterwards). Prints one JSON
# object: the reclaimer's rc, stdout, stderr, whether each holder was still alive, and
# which names exist after; or "holder_failed" with the holder's exit status and stderr.
_DRIVER = r"""
import json, os, select, subprocess, sys
a = json.loads(sys.argv[1])
for mnt, lower in a.get("mounts", []):
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", "lowerdir=" + lower, mnt],
                   check=True)
hs = []
for argv in a.get("holders", []):
    h = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    hs.append(h)
    r, _, _ = select.select([h.stdout], [], [], 10)
    line = h.stdout.readline() if r else b""
    if line != b"ready\n":
        h.kill()
        rc = h.wait()
        print(json.dumps({"holder_failed": rc, "stderr": h.stderr.read().decode(errors="replace")}))
        for o in hs:
            o.kill()
            o.wait()
        sys.exit(0)
r = subprocess.run(a["cmd"], capture_output=True, text=True, stdin=subprocess.DEVNULL)
out = {"rc": r.returncode, "stdout": r.stdout, "stderr": r.stderr,
       "alive": [h.poll() is None for h in hs],
       "exists": [n for n in a["names"] if os.path.exists("/dev/shm" + n)]}
for h in hs:
    h.kill()
    h.wait()
print(json.dumps(out))
"""


def in_pidns(sb, cmd, names, holders=(), mounts=()):
    """Runs cmd (argv) as the reclaimer inside a new pid namespace with its own /proc,
    after starting holders there; returns the driver's JSON."""
    arg = json.dumps({"cmd": cmd, "names": list(names), "holders": [list(h) for h in holders],
                      "mounts": [list(m) for m in mounts]})
    r = subprocess.run(PIDNS + ["/usr/bin/python3", "-c", _DRIVER, arg], capture_output=True,
                       text=True, env=sb.env, timeout=120, stdin=subprocess.DEVNULL)
    expect(r.returncode == 0 and r.stdout.strip(), "pid namespace driver: exit %d: %s %s"
           % (r.returncode, r.stdout, r.stderr))
    return json.loads(r.stdout.strip().splitlines()[-1])


def reports(out):
    """The reclaimer's JSON: sweep's dirs, or recover's one report, as a list."""
    doc = json.loads(out)
    return doc["dirs"] if "dirs" in doc else [doc]


def expect_lease_kept(rep, n, what):
    """n objects kept in use because the kernel's lease said open, nothing in doubt."""
    expect(rep["status"] == "kept" and rep["unlinked"] == 0 and rep["in_use"] == n,
           "%s: %s" % (what, rep))
    expect(rep.get("lease_held") == n, "%s: not counted as held by the lease: %s" % (what, rep))
    expect(rep["not_inspectable"] == 0, "%s: something was in doubt (not the plain path): %s"
           % (what, rep))


def spawn_manager_in_pidns(sb, args):
    """A manager started as libshm would, but inside a new pid namespace with its own
    /proc (a container's manager), logging at info; returns (Popen of unshare, socket
    path)."""
    p = sb.track(subprocess.Popen(PIDNS + [SHMWARDEN] + list(args), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                  env=dict(sb.env, SHMWARDEN_LOG="info")))
    r, _, _ = select.select([p.stdout], [], [], 10)
    line = p.stdout.readline().decode().strip() if r else ""
    expect(line.startswith("/"), "manager in a pid namespace printed %r" % line)
    return p, line


def stop_manager_in_pidns(p):
    """SIGTERM to the manager (unshare's child), then its stderr."""
    kids = [k for k in _children(p.pid)]
    expect(kids, "no manager under unshare %d" % p.pid)
    for k in kids:
        os.kill(k, signal.SIGTERM)
    p.wait(20)
    return p.stderr.read().decode(errors="replace")


def _children(pid):
    out = []
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
            out += [int(c) for c in f.read().split()]
    return out


# ---- a reclaimer in a child pid namespace, a holder outside it ---------------------------

def test_sweep_in_a_child_pid_namespace_keeps_what_a_host_process_holds():
    if not root_only("test_sweep_in_a_child_pid_namespace_keeps_what_a_host_process_holds"):
        return
    with Sandbox("lpsw") as sb:
        names = [sb.name(1), sb.name(2)]
        d = dead_manager(sb, names)
        hs = [hold(sb, "fd", SHM + names[0]), hold(sb, "map", SHM + names[1])]
        r = subprocess.run(PIDNS + [SHMWARDEN, "sweep", "--json", "--tmpdir", sb.tmp],
                           capture_output=True, text=True, timeout=60,
                           env=dict(sb.env, SHMWARDEN_LOG="info"))
        for n in names:
            expect(os.path.exists(SHM + n), "a sweep in a pid namespace unlinked %s, held "
                   "outside it: %s" % (n, r.stderr))
        expect(r.returncode == 0, "sweep: exit %d: %s" % (r.returncode, r.stderr))
        rep = reports(r.stdout)
        expect(len(rep) == 1, "reports: %s" % rep)
        expect_lease_kept(rep[0], 2, "sweep in a pid namespace")
        expect(r.stderr.count(LEASE_LINE) == 2, "no clear line per object: %s" % r.stderr)
        expect(json.loads(r.stdout)["totals"]["lease_held"] == 2, "totals: %s" % r.stdout)
        for h in hs:
            stop(h)
        # The holders gone, the same sweep unlinks both.
        r = subprocess.run(PIDNS + [SHMWARDEN, "sweep", "--json", "--tmpdir", sb.tmp],
                           capture_output=True, text=True, env=sb.env, timeout=60)
        rep = reports(r.stdout)
        expect(rep[0]["status"] == "removed" and rep[0]["unlinked"] == 2, "after: %s" % rep)
        expect(not os.path.exists(d), "directory left")


def test_recover_in_a_child_pid_namespace_keeps_what_a_host_process_holds():
    if not root_only("test_recover_in_a_child_pid_namespace_keeps_what_a_host_process_holds"):
        return
    with Sandbox("lprc") as sb:
        n = sb.name(1)
        d = dead_manager(sb, [n])
        h = hold(sb, "map-ro", SHM + n)
        r = subprocess.run(PIDNS + [SHMWARDEN, "recover", "--json", d], capture_output=True,
                           text=True, env=sb.env, timeout=60)
        expect(os.path.exists(SHM + n), "a recover in a pid namespace unlinked %s, mapped "
               "outside it: %s" % (n, r.stderr))
        expect(r.returncode == 0, "recover: exit %d: %s" % (r.returncode, r.stderr))
        expect_lease_kept(reports(r.stdout)[0], 1, "recover in a pid namespace")
        # The text report says so too.
        r = subprocess.run(PIDNS + [SHMWARDEN, "recover", d], capture_output=True, text=True,
                           env=sb.env, timeout=60)
        expect("1 kept: open, says the kernel's lease, by a holder outside this view"
               in r.stdout, "text report: %s" % r.stdout)
        stop(h)
        r = subprocess.run(PIDNS + [SHMWARDEN, "recover", "--json", d], capture_output=True,
                           text=True, env=sb.env, timeout=60)
        rep = reports(r.stdout)[0]
        expect(rep["status"] == "removed" and rep["unlinked"] == 1, "after: %s" % rep)


def test_restarted_manager_in_a_child_pid_namespace_adopts_what_a_host_process_holds():
    if not root_only("test_restarted_manager_in_a_child_pid_namespace_adopts_what_a_host_"
                     "process_holds"):
        return
    with Sandbox("lpmg") as sb:
        n = sb.name(1)
        d = dead_manager(sb, [n])
        h = hold(sb, "fd", SHM + n)
        p, sock = spawn_manager_in_pidns(sb, ["manager", "--shutdown-timeout", "300000"])
        mdir = os.path.dirname(sock)
        # The start-up reclaim adopts the dead directory's rows, then removes it.
        expect(harness.wait_for(lambda: not os.path.exists(d), 20),
               "the restarted manager did not finish %s" % d)
        expect(os.path.exists(SHM + n), "a restarted manager in a pid namespace unlinked %s, "
               "held outside it" % n)
        expect(harness.wait_for(lambda: n in journal_names(mdir), 10),
               "%s not adopted: %s" % (n, journal_names(mdir)))
        stop(h)
        err = stop_manager_in_pidns(p)
        expect(LEASE_LINE in err, "no clear line: %s" % err)
        # Its own shutdown, the holder gone, unlinks it.
        expect(not os.path.exists(SHM + n), "the manager's shutdown left %s: %s" % (n, err))


# ---- the plain path: holders no /proc shows, a reclaimer that doubts nothing ------------

def _dead_and_held_in_pidns(sb, test, mode_of, mounts=(), via=None):
    """A dead manager's objects, each held inside a new pid namespace (mode_of: name ->
    holder mode; via: name -> the path the holder opens), swept there as root."""
    names = sorted(mode_of)
    d = dead_manager(sb, names)
    holders = [[HOLDER, mode_of[n], (via or {}).get(n, SHM + n)] for n in names]
    out = in_pidns(sb, [SHMWARDEN, "sweep", "--json", "--tmpdir", sb.tmp], names,
                   holders=holders, mounts=mounts)
    if "holder_failed" in out:
        if out["holder_failed"] == 3 and "unsupported" in out["stderr"]:
            skip(test, "the kernel refuses it here: %s" % out["stderr"].strip())
            return None
        raise AssertionError("holder failed: %s" % out)
    expect(all(out["alive"]), "a holder died: %s" % out)
    expect(sorted(out["exists"]) == names, "a root sweep on the plain path unlinked %s, held: "
           "%s" % (sorted(set(names) - set(out["exists"])), out["stderr"]))
    expect(out["rc"] == 0, "sweep: %s" % out)
    expect_lease_kept(reports(out["stdout"])[0], len(names), test)
    # The holders are gone with the namespace: a sweep unlinks them. Not always the first
    # one at once: an io_uring ring puts its registered files from a kernel worker after
    # its task has exited, and until then the file is open and the lease says so (a full
    # CI run met that once). Each sweep that keeps them leaves them journaled.
    rep = []
    unlinked = 0

    def swept():
        nonlocal rep, unlinked
        rep = reports(sb.run(["sweep", "--json", "--tmpdir", sb.tmp]).stdout)
        unlinked += sum(x["unlinked"] for x in rep)
        return not rep or rep[0]["status"] == "removed"

    harness.wait_for(swept, timeout=15, interval=0.5)
    expect(unlinked == len(names) and not os.path.exists(d),
           "%s, holders gone: %d unlinked, %s" % (test, unlinked, rep))
    return d


def test_io_uring_registered_file_is_kept_on_the_plain_path():
    if not root_only("test_io_uring_registered_file_is_kept_on_the_plain_path"):
        return
    with Sandbox("luring") as sb:
        _dead_and_held_in_pidns(sb, "test_io_uring_registered_file_is_kept_on_the_plain_path",
                                {sb.name(1): "uring"})


def test_overlay_holder_is_kept_on_the_plain_path():
    if not root_only("test_overlay_holder_is_kept_on_the_plain_path"):
        return
    with Sandbox("lovl") as sb:
        n1, n2 = sb.name(1), sb.name(2)
        mnt, empty = os.path.join(sb.tmp, "ovl"), os.path.join(sb.tmp, "ovl-empty")
        os.mkdir(mnt)
        os.mkdir(empty)
        # Two lower layers and no upper: a read-only overlay whose files are /dev/shm's
        # objects, opened through the overlay (its own st_dev and st_ino in /proc).
        _dead_and_held_in_pidns(sb, "test_overlay_holder_is_kept_on_the_plain_path",
                                {n1: "fd-ro", n2: "map-ro"},
                                mounts=[(mnt, "%s:%s" % (SHM, empty))],
                                via={n1: mnt + n1, n2: mnt + n2})


def test_unheld_objects_are_still_unlinked_by_every_reclaimer_on_the_plain_path():
    if not root_only("test_unheld_objects_are_still_unlinked_by_every_reclaimer_on_the_plain_"
                     "path"):
        return
    with Sandbox("lfree") as sb:
        for cmd in ("sweep", "recover"):
            names = [sb.name(cmd + "1"), sb.name(cmd + "2")]
            d = dead_manager(sb, names)
            argv = ([SHMWARDEN, "sweep", "--json", "--tmpdir", sb.tmp] if cmd == "sweep" else
                    [SHMWARDEN, "recover", "--json", d])
            out = in_pidns(sb, argv, names)
            rep = reports(out["stdout"])
            expect(out["rc"] == 0 and out["exists"] == [], "%s left %s: %s" % (
                cmd, out["exists"], out))
            expect(len(rep) == 1 and rep[0]["status"] == "removed" and
                   rep[0]["unlinked"] == 2 and rep[0]["not_inspectable"] == 0 and
                   rep[0]["lease_held"] == 0, "%s: %s" % (cmd, rep))
        # A restarted manager's adoption, in the namespace too.
        names = [sb.name("mgr1"), sb.name("mgr2")]
        d = dead_manager(sb, names)
        p, sock = spawn_manager_in_pidns(sb, ["manager", "--shutdown-timeout", "300000"])
        expect(harness.wait_for(lambda: not os.path.exists(d), 20),
               "the restarted manager did not finish %s" % d)
        for n in names:
            expect(not os.path.exists(SHM + n), "the restarted manager left %s" % n)
        expect(not journal_names(os.path.dirname(sock)), "adopted: %s"
               % journal_names(os.path.dirname(sock)))
        stop_manager_in_pidns(p)


# ---- a lease broken between the kernel's answer and the unlink --------------------------

STALL_LEASE = os.path.join(harness.BUILD, "tools", "stall_lease.so")


def test_a_lease_broken_before_the_unlink_keeps_the_object():
    """The write lease is not a lock: an open while the reclaimer holds it starts a break,
    waits up to fs.lease-break-time (45 s), and is then let through; a reclaimer stopped
    that long between its lease and its unlink (Ctrl-Z, a frozen cgroup) unlinked an object
    a live process had just opened and mapped (the new-user trial, r5/r5b). Here `recover`
    and `sweep` are held right after the kernel granted the lease
    (tests/tools/preload/stall_lease.c) while another process opens the object with
    O_NONBLOCK: the open fails with EWOULDBLOCK but starts the break, as a blocking one
    would, without waiting 45 s or changing the host's sysctl. The reclaimer must see
    that its lease is no longer whole (F_GETLEASE) and keep the object, and the break's
    SIGIO must not end it."""
    expect(os.path.exists(STALL_LEASE), "%s is missing: run make check" % STALL_LEASE)
    with Sandbox("lbrk") as sb:
        for cmd in ("recover", "sweep"):
            n = sb.name(cmd)
            d = dead_manager(sb, [n])
            gate = os.path.join(sb.tmp, "gate-" + cmd)
            seen = os.path.join(sb.tmp, "seen-" + cmd)
            open(gate, "w").close()
            env = dict(sb.env, SHMWARDEN_LOG="info", LD_PRELOAD=STALL_LEASE,
                       STALL_LEASE_GATE=gate, STALL_LEASE_SEEN=seen)
            if harness.SANITIZED:
                env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"),
                                                             "verify_asan_link_order=0"]))
            argv = ([SHMWARDEN, "recover", "--json", d] if cmd == "recover" else
                    [SHMWARDEN, "sweep", "--json", "--tmpdir", sb.tmp])
            rec = sb.track(subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                            text=True))
            try:
                harness.wait_for(lambda: os.path.exists(seen) or rec.poll() is not None, 30)
                if not os.path.exists(seen):
                    # Say why (another build's live manager with a journal this one
                    # cannot read keeps every name without asking for a lease).
                    rec.kill()
                    out, err = rec.communicate()
                    expect(False, "%s was never held with its lease: %s %s" % (cmd, out, err))
                try:
                    fd = os.open(SHM + n, os.O_RDWR | os.O_NONBLOCK)
                    os.close(fd)
                    opened = True
                except BlockingIOError:
                    opened = False
                expect(not opened, "%s: the open went through: no lease was held" % cmd)
            finally:
                os.unlink(gate)
            out, err = rec.communicate(timeout=60)
            expect(rec.returncode == 0, "%s: exit %d (the break's signal?): %s"
                   % (cmd, rec.returncode, err))
            expect(os.path.exists(SHM + n), "%s unlinked %s, opened while it held the lease"
                   % (cmd, n))
            rep = reports(out)[0]
            expect(rep["status"] == "kept" and rep["unlinked"] == 0 and rep["in_use"] == 1 and
                   rep["lease_held"] == 1, "%s: %s" % (cmd, rep))
            expect("the lease was broken" in err, "%s: not said: %s" % (cmd, err))
            # The lease went with the reclaimer's close: the name opens again at once.
            os.close(os.open(SHM + n, os.O_RDWR | os.O_NONBLOCK))
            finish(sb, d, [n], cmd)


# A job as a shell makes one: argv[2:] in a process group of its own, whose parent (this
# process, started as the leader of a new session) is in another group of the same
# session, so the group is not orphaned and SIGTSTP stops it (the kernel discards SIGTSTP
# sent to an orphaned group, as a test run without a terminal would be). Writes the job's
# pid to argv[1], then waits for it and exits with its status.
_JOB = r"""
import os, subprocess, sys
p = subprocess.Popen(sys.argv[2:], process_group=0)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(p.pid))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
sys.exit(p.wait())
"""


def _stopped(pid):
    """Whether pid is stopped by a signal (state T in /proc/PID/stat); False once gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "T"
    except FileNotFoundError:
        return False


def test_ctrl_z_comes_after_the_lease_is_released():
    """Ctrl-Z of a `recover` or an `ls --objects` while it held a write lease stopped it
    with the lease held, and every opener of that object waited up to fs.lease-break-time
    (45 s; the reclaimer then kept the object, its lease broken). SIGTSTP is now held back
    while leases are held: `recover` (its page) and `ls` (its one object) are held right
    after the grant (stall_lease.c) and sent SIGTSTP; once let go they must stop only
    after the lease is released, so the object opens at once while they are stopped."""
    expect(os.path.exists(STALL_LEASE), "%s is missing: run make check" % STALL_LEASE)
    with Sandbox("ltstp") as sb:
        for cmd in ("recover", "ls"):
            n = sb.name(cmd)
            d = dead_manager(sb, [n])
            gate = os.path.join(sb.tmp, "gate-" + cmd)
            seen = os.path.join(sb.tmp, "seen-" + cmd)
            pidfile = os.path.join(sb.tmp, "pid-" + cmd)
            open(gate, "w").close()
            env = dict(sb.env, LD_PRELOAD=STALL_LEASE, STALL_LEASE_GATE=gate,
                       STALL_LEASE_SEEN=seen)
            if harness.SANITIZED:
                env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"),
                                                             "verify_asan_link_order=0"]))
            argv = ([SHMWARDEN, "recover", "--json", d] if cmd == "recover" else
                    [SHMWARDEN, "ls", "--json", "--objects", "--tmpdir", sb.tmp])
            job = sb.track(subprocess.Popen(["/usr/bin/python3", "-c", _JOB, pidfile] + argv,
                                            env=env, stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                            text=True, start_new_session=True))
            pid = None
            try:
                harness.wait_for(lambda: os.path.exists(seen) or job.poll() is not None, 30)
                if not os.path.exists(seen):
                    job.kill()
                    out, err = job.communicate()
                    expect(False, "%s was never held with its lease: %s %s" % (cmd, out, err))
                pid = int(open(pidfile).read())
                os.kill(pid, signal.SIGTSTP)
                os.unlink(gate)
                expect(harness.wait_for(lambda: _stopped(pid), 10),
                       "%s did not stop on SIGTSTP" % cmd)
                try:
                    os.close(os.open(SHM + n, os.O_RDWR | os.O_NONBLOCK))
                    held = False
                except FileNotFoundError:
                    held = False  # recover unlinked it, then stopped
                except BlockingIOError:
                    held = True
                expect(not held, "%s stopped while it held the lease on %s" % (cmd, n))
            finally:
                if os.path.exists(gate):
                    os.unlink(gate)
                if pid:
                    os.kill(pid, signal.SIGCONT)
            out, err = job.communicate(timeout=60)
            expect(job.returncode == 0, "%s: exit %d: %s" % (cmd, job.returncode, err))
            if cmd == "recover":
                rep = reports(out)[0]
                expect(rep["status"] == "removed" and rep["unlinked"] == 1, "%s" % rep)
                expect(not os.path.exists(SHM + n), "recover left %s" % n)
            else:
                expect(os.path.exists(SHM + n), "ls removed %s" % n)
                finish(sb, d, [n], cmd)


# ---- a kernel without leases: cannot tell means keep ------------------------------------

def test_no_leases_means_nothing_is_unlinked_and_it_is_said_once():
    if not root_only("test_no_leases_means_nothing_is_unlinked_and_it_is_said_once"):
        return
    with Sandbox("lnol") as sb:
        names = [sb.name(1), sb.name(2), sb.name(3)]
        d = dead_manager(sb, names)
        out = in_pidns(sb, [NO_LEASE, SHMWARDEN, "sweep", "--json", "--tmpdir", sb.tmp], names)
        if out["rc"] == 3 and "unsupported" in out["stderr"]:
            skip("test_no_leases_means_nothing_is_unlinked_and_it_is_said_once",
                 out["stderr"].strip())
            return
        expect(sorted(out["exists"]) == sorted(names), "unlinked without a lease: %s" % out)
        rep = reports(out["stdout"])[0]
        expect(rep["status"] == "kept" and rep["in_use"] == 3 and
               rep["lease_unavailable"] == 3 and rep["unlinked"] == 0, "report: %s" % rep)
        expect(json.loads(out["stdout"])["totals"]["lease_unavailable"] == 3, out["stdout"])
        expect(out["stderr"].count("grants no file leases") == 1,
               "not said exactly once: %s" % out["stderr"])
        expect(os.path.exists(d), "directory removed")
        # recover keeps them too.
        out = in_pidns(sb, [NO_LEASE, SHMWARDEN, "recover", "--json", d], names)
        expect(sorted(out["exists"]) == sorted(names), "recover unlinked: %s" % out)
        expect(reports(out["stdout"])[0]["lease_unavailable"] == 3, out["stdout"])
        # With leases, the same objects go.
        out = in_pidns(sb, [SHMWARDEN, "sweep", "--json", "--tmpdir", sb.tmp], names)
        expect(out["exists"] == [], "with leases: %s" % out)


harness.main(globals())
