"""test_reclaimers.py — two reclaimers on one dead manager's directory at once.

Managers and reclaimers take the same exclusive flocks, so a reclaimer that found another
one's lock on a directory used to report "a live manager (pid N)" (N the other
reclaimer), and `recover` exited 1. A reclaimer now marks the directory it holds (an OFD
read lock on one byte of the directory, set through the descriptor holding its flock:
mgrdir.c, "the reclaimer's mark"), and the others call such a directory busy: left to
that reclaimer, named with its pid, `recover` exit status 3, counted apart from live
managers by `sweep` (text, JSON, metrics) and shown by `ls`.

The first reclaimer is held inside the directory deterministically, without a sleep:
it runs with SHMWARDEN_LOG=debug and its stderr is a one-page pipe that the test reads
only up to the first name it unlinked (a line it logs while it holds the directory's
locks). The journal holds far more names than a page of log lines, so the reclaimer then
blocks in write(2) with the locks held, until the test drains the pipe.

Garbage: a lock held by a process that is neither a manager nor a reclaimer is live, not
busy (and said to be no manager); a mark without the flock, or a classic POSIX lock where
the mark goes, makes nothing busy.
"""
import fcntl
import json
import os
import platform
import select
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import SHMWARDEN, snapshot, wait_for  # noqa: E402

NAMES = 300  # ~100 bytes of debug log each: many pages more than the pipe holds
MARK_AT = 0x73687764  # mgrdir.c's MGRDIR_MARK_AT
HOLD_LINE = b": unlinked ("  # logged after each unlink, under the directory's locks
WRITE_NR = {"x86_64": 1, "aarch64": 64}.get(platform.machine(), -1)  # write(2)


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


class Held:
    """`shmwarden ARGS` held inside the directory it reclaims (see the top)."""

    def __init__(self, sb, args):
        r, w = os.pipe()
        fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 4096)
        self.proc = sb.track(subprocess.Popen(
            [SHMWARDEN] + list(args), stdout=subprocess.PIPE, stderr=w,
            stdin=subprocess.DEVNULL, env=dict(sb.env, SHMWARDEN_LOG="debug")))
        os.close(w)
        self.errfd, self.log = r, b""
        deadline = time.monotonic() + 60
        while HOLD_LINE not in self.log:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([r], [], [], max(left, 0))
            expect(ready, "no name unlinked within 60 s: %r" % self.log)
            chunk = os.read(r, 4096)
            expect(chunk, "the reclaimer ended before it held the directory: %r" % self.log)
            self.log += chunk
        self.pid = self.proc.pid

    def blocked(self):
        """Asleep in write(2) on its stderr (the pipe is full), as the kernel says: its
        wait channel (pipe_write), or else the system call it is in (write, fd 2)."""
        def read(what):
            try:
                with open("/proc/%d/%s" % (self.pid, what)) as f:
                    return f.read()
            except OSError:
                return ""
        stat, wchan, call = read("stat"), read("wchan"), read("syscall").split()
        state = stat.rsplit(")", 1)[1].split()[0] if ")" in stat else ""
        in_write = (len(call) > 1 and call[0] == str(WRITE_NR) and call[1].startswith("0x")
                    and int(call[1], 16) == 2)
        return state == "S" and ("pipe" in wchan or in_write)

    def release(self):
        """Drains its log until it exits; returns (exit status, stdout)."""
        def drain():
            while True:
                chunk = os.read(self.errfd, 65536)
                if not chunk:
                    break
                self.log += chunk
        t = threading.Thread(target=drain)
        t.start()
        out = self.proc.stdout.read()
        rc = self.proc.wait(60)
        t.join(60)
        os.close(self.errfd)
        return rc, out.decode()


def dead_dir(sb, n=NAMES):
    names = [sb.name(i) for i in range(n)]
    return harness.dead_manager(sb, names), names


def run_json(sb, args):
    r = sb.run(args)
    try:
        return r, json.loads(r.stdout)
    except ValueError:
        raise AssertionError("%s: exit %d, not JSON: %r %r" % (args, r.returncode, r.stdout,
                                                               r.stderr))


def busy_words(pid, cmd):
    return "being reclaimed by another reclaimer, pid %d (%s)" % (pid, cmd)


def ls_entry(sb, d):
    r, doc = run_json(sb, ["ls", "--tmpdir", sb.tmp, "--json"])
    expect(r.returncode == 0, "ls: %d %r" % (r.returncode, r.stderr))
    got = [m for m in doc["managers"] if m["path"] == d]
    expect(len(got) == 1, "ls lists %s: %s" % (d, doc))
    return got[0]


def ls_row(sb, d):
    r = sb.run(["ls", "--tmpdir", sb.tmp])
    rows = [line for line in r.stdout.splitlines() if line.startswith(os.path.basename(d))]
    expect(r.returncode == 0 and len(rows) == 1, "ls: %r %r" % (r.stdout, r.stderr))
    return rows[0]


def test_recover_sweep_and_ls_while_a_sweep_reclaims_it(sb):
    d, names = dead_dir(sb)
    held = Held(sb, ["sweep", "--tmpdir", sb.tmp, "--json"])
    expect(wait_for(held.blocked, timeout=30), "the first sweep did not block holding %s" % d)
    expect(harness._is_live(d), "the first sweep does not hold %s" % d)
    objects, files = sb.objects(), snapshot(d)
    expect(0 < len(objects) < NAMES, "the first sweep unlinked %d of %d before it blocked"
           % (NAMES - len(objects), NAMES))
    words = busy_words(held.pid, "shmwarden sweep")

    # recover: busy, exit 3, the report on stdout, nothing on stderr.
    r, doc = run_json(sb, ["recover", "--json", d])
    expect(r.returncode == 3, "recover --json: exit %d %r" % (r.returncode, r.stderr))
    expect(doc["status"] == "busy" and doc["reclaimer_pid"] == held.pid and
           doc["manager_pid"] is None and words in doc["detail"] and
           doc["unlinked"] == doc["gone"] == doc["in_use"] == doc["refused"] == 0,
           "recover --json: %s" % doc)
    r = sb.run(["recover", d])
    want = "shmwarden recover: %s: busy: %s: left to it; nothing touched\n" % (d, words)
    expect(r.returncode == 3 and r.stdout == want and r.stderr == "",
           "recover: exit %d, stdout %r (want %r), stderr %r"
           % (r.returncode, r.stdout, want, r.stderr))
    # A dry run too (a look: it takes the locks shared, and finds them held).
    r, doc = run_json(sb, ["recover", "--json", "--dry-run", d])
    expect(r.returncode == 3 and doc["status"] == "busy" and doc["reclaimer_pid"] == held.pid,
           "recover --dry-run: %d %s" % (r.returncode, doc))

    # sweep: busy, counted apart from live managers; not a failure.
    r, doc = run_json(sb, ["sweep", "--tmpdir", sb.tmp, "--json"])
    expect(r.returncode == 0, "second sweep: exit %d %r" % (r.returncode, r.stderr))
    expect([x["status"] for x in doc["dirs"]] == ["busy"] and
           doc["dirs"][0]["reclaimer_pid"] == held.pid and words in doc["dirs"][0]["detail"],
           "second sweep: %s" % doc["dirs"])
    t = doc["totals"]
    expect(t["busy"] == 1 and t["live"] == 0 and t["error"] == 0 and t["unlinked"] == 0,
           "second sweep totals: %s" % t)
    r = sb.run(["sweep", "--tmpdir", sb.tmp])
    last = r.stdout.splitlines()[-1] if r.stdout else ""
    expect(r.returncode == 0 and last.startswith(
        "shmwarden sweep: 1 directory: 0 removed, 0 kept, 0 live, 0 starting, "
        "1 busy (another reclaimer's), 0 for a human") and "live manager" not in r.stdout,
        "second sweep, text: %d %r %r" % (r.returncode, r.stdout, r.stderr))
    m = os.path.join(sb.tmp, "metrics.prom")
    r = sb.run(["sweep", "--tmpdir", sb.tmp, "--metrics", m])
    with open(m) as f:
        prom = f.read()
    expect(r.returncode == 0 and 'shmwarden_sweep_last_directories{status="busy"} 1\n' in prom
           and 'shmwarden_sweep_last_directories{status="live"} 0\n' in prom,
           "metrics: %d %r" % (r.returncode, prom))

    # ls: busy, the reclaimer's pid apart from the manager's, no error.
    e = ls_entry(sb, d)
    expect(e["state"] == "busy" and e["reclaimer_pid"] == held.pid and e["pid"] == 0 and
           e["error"] is None and e["clients"] == 0, "ls --json: %s" % e)
    row = ls_row(sb, d)
    expect(row.split()[1] == "busy" and "(%s)" % words in row and "!" not in row,
           "ls: %r" % row)

    # None of them changed anything: the same objects, the same files.
    expect(sb.objects() == objects, "objects changed while the first sweep held them")
    expect(snapshot(d) == files, "files of %s changed" % d)
    expect(held.blocked(), "the first sweep is no longer held")

    # The first finishes alone: every name unlinked once, by it, and the directory gone.
    rc, out = held.release()
    doc = json.loads(out)
    expect(rc == 0 and [(x["status"], x["unlinked"], x["gone"]) for x in doc["dirs"]] ==
           [("removed", NAMES, 0)], "the first sweep: %d %s" % (rc, out))
    expect(sb.objects() == [] and not os.path.exists(d), "left: %s" % sb.objects())
    said = [line for line in held.log.decode(errors="replace").splitlines()
            if "reclaim: %s: " % os.path.basename(d) in line and
            (": busy:" in line or ": live:" in line)]
    expect(said == [], "the first sweep's log: %s" % said)


def test_sweep_and_a_restarted_manager_while_recover_reclaims_it(sb):
    d, names = dead_dir(sb)
    held = Held(sb, ["recover", "--json", d])
    expect(wait_for(held.blocked, timeout=30), "recover did not block holding %s" % d)
    objects = sb.objects()
    words = busy_words(held.pid, "shmwarden recover")

    r, doc = run_json(sb, ["sweep", "--tmpdir", sb.tmp, "--json"])
    expect(r.returncode == 0 and [x["status"] for x in doc["dirs"]] == ["busy"] and
           doc["dirs"][0]["reclaimer_pid"] == held.pid and words in doc["dirs"][0]["detail"]
           and doc["totals"]["busy"] == 1 and doc["totals"]["live"] == 0,
           "sweep: %d %s %r" % (r.returncode, doc, r.stderr))
    # A second recover, and a dry-run sweep.
    r = sb.run(["recover", d])
    expect(r.returncode == 3 and words in r.stdout, "recover: %d %r" % (r.returncode, r.stdout))
    r, doc = run_json(sb, ["sweep", "--tmpdir", sb.tmp, "--json", "--dry-run"])
    expect(r.returncode == 0 and doc["totals"]["busy"] == 1, "dry run: %s" % doc)

    # A manager starting in the same base adopts dead siblings: it leaves this one to
    # the reclaimer at work, and says so (its log), rather than "live".
    m = sb.spawn_manager(args=["manager", "--shutdown-timeout", "100"], argv0="shmwarden",
                         env=dict(sb.env, SHMWARDEN_LOG="info"))
    expect(m.sock, "manager: %r" % m.line)
    c = m.client()
    c.register(sb.name("new"), timeout=30)  # answered once its reclaim at start is done
    c.free(sb.name("new"))
    c.close()
    expect(m.wait(30) == 0, "manager exit")
    log = m.stderr_text()
    expect("%s: busy: %s: left to it" % (os.path.basename(d), words) in log and
           "%s: live" % os.path.basename(d) not in log,
           "manager's log: %r, want %r" % (log, words))
    expect(sb.objects() == objects and harness._is_live(d), "changed while recover held it")

    rc, out = held.release()
    doc = json.loads(out)
    expect(rc == 0 and (doc["status"], doc["unlinked"], doc["gone"]) == ("removed", NAMES, 0),
           "recover: %d %s" % (rc, out))
    expect(sb.objects() == [] and not os.path.exists(d), "left: %s" % sb.objects())


# A lock holder that is neither a manager nor a reclaimer: argv[1] directory; argv[2]
# "flock" (an exclusive flock on it), "mark" (an OFD read lock on the mark's byte, no
# flock), "flock+posix" (the flock and a classic POSIX read lock on that byte) or
# "flock+mark" (both, a forgery of a reclaimer).
_HOLDER = r"""
import fcntl, os, struct, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
how = sys.argv[2]
if "flock" in how:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
if "mark" in how or "posix" in how:
    cmd = fcntl.F_SETLK if "posix" in how else fcntl.F_OFD_SETLK
    fcntl.fcntl(fd, cmd, struct.pack("hhqqi", fcntl.F_RDLCK, os.SEEK_SET, %d, 1, 0))
print("held", flush=True)
time.sleep(600)
""" % MARK_AT


def hold(sb, d, how):
    p = sb.track(subprocess.Popen(["/usr/bin/python3", "-c", _HOLDER, d, how],
                                  stdout=subprocess.PIPE, stdin=subprocess.DEVNULL))
    expect(p.stdout.readline().strip() == b"held", "holder %s failed" % how)
    return p


def test_a_lock_held_by_neither_a_manager_nor_a_reclaimer(sb):
    for how in ("flock", "flock+posix"):
        d, names = dead_dir(sb, 3)
        p = hold(sb, d, how)
        # A live directory's journal is read in place, read-only (mgrdir.c: its manager
        # keeps -shm current), so SQLite may rewrite the -shm index: everything else stays.
        files = snapshot(d)
        files.pop("journal.db-shm", None)
        r, doc = run_json(sb, ["recover", "--json", d])
        said = ("its lock is held by pid %d (python3), which does not serve its socket"
                % p.pid)
        expect(r.returncode == 1 and doc["status"] == "live" and said in doc["detail"] and
               doc["reclaimer_pid"] is None, "%s: recover: %d %s" % (how, r.returncode, doc))
        r, doc = run_json(sb, ["sweep", "--tmpdir", sb.tmp, "--json"])
        t = doc["totals"]
        expect(r.returncode == 0 and t["live"] == 1 and t["busy"] == 0 and
               t["unlinked"] == 0, "%s: sweep: %s" % (how, doc))
        e = ls_entry(sb, d)
        expect(e["state"] == "live" and e["reclaimer_pid"] is None and e["pid"] == p.pid,
               "%s: ls: %s" % (how, e))
        expect(sb.objects() == names, "%s: objects %s" % (how, sb.objects()))
        now = snapshot(d)
        now.pop("journal.db-shm", None)
        expect(now == files, "%s: touched: %s" % (how, {k: (files.get(k), now.get(k))
                                                        for k in set(files) | set(now)
                                                        if files.get(k) != now.get(k)}))
        p.kill()
        p.wait()
        r, doc = run_json(sb, ["recover", "--json", d])
        expect(r.returncode == 0 and doc["status"] == "removed" and doc["unlinked"] == 3,
               "%s: recover once let go: %s" % (how, doc))

    # A mark without the flock is no reclaimer's: the directory is dead, and reclaimed.
    d, names = dead_dir(sb, 3)
    p = hold(sb, d, "mark")
    e = ls_entry(sb, d)
    expect(e["state"] == "dead", "a stray mark: ls: %s" % e)
    r, doc = run_json(sb, ["recover", "--json", d])
    expect(r.returncode == 0 and doc["status"] == "removed" and doc["unlinked"] == 3,
           "a stray mark: recover: %s" % doc)
    p.kill()
    p.wait()

    # A forgery (flock and mark by hand, as only the owner or root can) is called busy,
    # and is still not touched: the mark names a holder, it never grants anything.
    d, names = dead_dir(sb, 3)
    p = hold(sb, d, "flock+mark")
    r, doc = run_json(sb, ["recover", "--json", d])
    expect(r.returncode == 3 and doc["status"] == "busy" and doc["reclaimer_pid"] == p.pid,
           "a forged mark: %s" % doc)
    expect(sb.objects() == names, "a forged mark: touched")
    p.kill()
    p.wait()
    r = sb.run(["recover", d])
    expect(r.returncode == 0 and sb.objects() == [], "after the forger: %r" % r.stdout)



def test_a_held_unreadable_dead_journal_stops_no_other_reclaim(sb):
    """A dead directory whose journal cannot be read, flocked by a process that is
    neither its manager nor a marking reclaimer (a reclaimer of an older release, or any
    process). livemgr.c takes such a holder for a live manager only if its journal names
    it (a live manager's directory renamed since its bind serves no socket at its path
    either); an unreadable journal says nothing about it. Taken for a live manager whose
    journal cannot be read, it stopped every unlink of the owner's objects while held."""
    held, gone = dead_dir(sb, 2)
    harness.corrupt_journal(held)
    for n in gone:  # its objects are not the point, and their names are reused below
        os.unlink(harness.SHM + n)
    p = hold(sb, held, "flock")
    d, names = dead_dir(sb, 3)
    r, doc = run_json(sb, ["recover", "--json", d])
    expect(r.returncode == 0 and doc["status"] == "removed" and doc["unlinked"] == 3 and
           doc["live_unreadable"] == 0, "recover beside the held journal: %s" % doc)
    p.kill()
    p.wait()
    r = sb.run(["sweep", "--tmpdir", sb.tmp])
    expect("corrupt" in r.stdout, "the corrupt one: %d %s" % (r.returncode, r.stdout))

harness.main(globals())
