"""test_shmroot.py — which /dev/shm a journal's names live in, when two of them share one
tmpfs (a job whose /dev/shm is a bind-mounted subdirectory of the host's).

A bind mount of /dev/shm/SUB on a job's /dev/shm has the host's st_dev: the device alone
cannot tell the two apart. The manager records the identity of the /dev/shm directory it
opened (device and inode), and every reclaimer compares it with its own:

- the job's dead manager, seen from the host: `sweep`, `ls` and `recover` call its
  directory `foreign` and leave it byte for byte, and the job's objects in SUB stay (the
  bug: the host looked the names up in its own /dev/shm, counted them "gone" and dropped
  the journal, and the objects leaked for good); a sweep and a restarted manager inside a
  job with the same bind mount reclaim it;
- the reverse: a sandboxed job sharing the host's TMPDIR base, its /dev/shm a subdirectory,
  neither drops the host's dead journal (a sweep, a restarted manager) nor touches the
  host's objects; the host's sweep then reclaims them.

Real `unshare -m`, real bind mounts, real SIGKILL. The bind mounts live only in the private
mount namespaces of the processes the test starts (`unshare --propagation private`), so
they go with those processes; the subdirectory and whatever is left in it are removed even
when the test fails.
"""
import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import SHM, Sandbox, read_object, wait_for  # noqa: E402

PY = "/usr/bin/python3"
HERE = os.path.dirname(os.path.abspath(__file__))


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


class SubShm:
    """A private subdirectory of the host's /dev/shm that jobs get as their /dev/shm. Removed
    (with whatever is in it: only this test's objects) on exit, even after a failure."""

    def __init__(self):
        self.path = os.path.join(SHM, "shmwt-sub-%d-%s" % (os.getpid(), secrets.token_hex(4)))

    def __enter__(self):
        os.mkdir(self.path)
        os.chmod(self.path, 0o1777)
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)
        return False

    def objects(self, prefix):
        return sorted("/" + n for n in os.listdir(self.path) if n.startswith(prefix[1:]))

    def argv(self, cmd):
        """cmd run in a private mount namespace whose /dev/shm is this subdirectory."""
        return ["unshare", "-m", "--propagation", "private", "sh", "-c",
                'mount --bind "$0" /dev/shm && exec "$@"', self.path] + list(cmd)

    def run(self, sb, cmd, timeout=60):
        return subprocess.run(self.argv(cmd), env=sb.env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)


# Inside the job: a manager registers the names, its client creates them in the job's
# /dev/shm, then the manager is SIGKILLed. Prints the manager's directory.
DEAD_IN_JOB = r"""
import os, signal, subprocess, sys
sys.path.insert(0, sys.argv[1])
import harness
base, exe, names = sys.argv[2], sys.argv[3], sys.argv[4:]
p = subprocess.Popen([exe, "manager", "--no-reclaim"], stdout=subprocess.PIPE,
                     env=dict(os.environ, TMPDIR=base))
sock = p.stdout.readline().decode().strip()
c = harness.Client(sock)
for n in names:
    c.register(n)
    fd = os.open("/dev/shm" + n, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, b"job")
    os.close(fd)
os.kill(p.pid, signal.SIGKILL)
p.wait()
print(os.path.dirname(sock), flush=True)
"""


def dead_in_job(sb, sub, names):
    r = sub.run(sb, [PY, "-c", DEAD_IN_JOB, HERE, sb.tmp, harness.SHMWARDEN] + names)
    expect(r.returncode == 0, "job: %d %s %s" % (r.returncode, r.stdout, r.stderr))
    d = r.stdout.strip()
    expect(os.path.isdir(d), "job's manager directory: %r" % r.stdout)
    return d


def remove_dirs(sb, dirs):
    """What the test made and could not reclaim: only its own directories."""
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


def test_job_in_a_shm_subdirectory_is_foreign_to_the_host():
    with Sandbox("shr") as sb, SubShm() as sub:
        names = [sb.name(i) for i in range(3)]
        dirs = []
        try:
            d = dead_in_job(sb, sub, names)
            dirs.append(d)
            expect(sub.objects(sb.prefix) == names, "job objects: %s" % sub.objects(sb.prefix))
            before = harness.snapshot(d)
            # The host's sweep, past the grace of a name whose object does not exist:
            # --prune-grace 0 is the 10 s grace already over.
            r = sb.run(["sweep", "--tmpdir", sb.tmp, "--prune-grace", "0", "--json"])
            expect(r.returncode == 0, "sweep exit %d: %s %s" % (r.returncode, r.stdout, r.stderr))
            doc = json.loads(r.stdout)
            expect([x["status"] for x in doc["dirs"]] == ["foreign"] and
                   doc["totals"]["unlinked"] == 0 and doc["totals"]["gone"] == 0,
                   "host sweep: %r %s" % (doc, r.stderr))
            why = doc["dirs"][0].get("detail", "")
            expect("/dev/shm" in why and "directory" in why, "host sweep's reason: %r" % why)
            r = sb.run(["sweep", "--tmpdir", sb.tmp, "--prune-grace", "0"])
            expect("removed: 0 unlinked" not in r.stdout and "foreign" in r.stdout + r.stderr,
                   "host sweep (text): %r %r" % (r.stdout, r.stderr))
            expect(harness.snapshot(d) == before, "the host sweep changed %s" % d)
            expect(sub.objects(sb.prefix) == names, "job objects after the host sweep: %s"
                   % sub.objects(sb.prefix))
            r = sb.run(["ls", "--tmpdir", sb.tmp, "--json"])
            states = [m["state"] for m in json.loads(r.stdout)["managers"]]
            expect(states == ["foreign"], "ls: %r" % r.stdout)
            r = sb.run(["recover", "--prune-grace", "0", d])
            expect(": foreign: " in r.stdout + r.stderr, "recover: %d %r %r"
                   % (r.returncode, r.stdout, r.stderr))
            expect(harness.snapshot(d) == before, "recover changed %s" % d)

            # Inside a job with the same bind mount: a sweep reclaims it.
            r = sub.run(sb, [harness.SHMWARDEN, "sweep", "--tmpdir", sb.tmp, "--json"])
            expect(r.returncode == 0, "job sweep: %s %s" % (r.stdout, r.stderr))
            doc = json.loads(r.stdout)
            expect(doc["totals"]["unlinked"] == 3, "job sweep: %r" % doc)
            expect(not os.path.exists(d), "the job's sweep left %s" % d)
            expect(sub.objects(sb.prefix) == [], "left: %s" % sub.objects(sb.prefix))

            # And a restarted manager inside the job adopts a dead sibling.
            more = [sb.name(i) for i in range(3, 5)]
            d2 = dead_in_job(sb, sub, more)
            dirs.append(d2)
            restart = sb.track(subprocess.Popen(
                sub.argv([harness.SHMWARDEN, "manager", "--shutdown-timeout", "100000"]),
                stdout=subprocess.PIPE, env=sb.env, stdin=subprocess.DEVNULL))
            expect(restart.stdout.readline(), "the restarted manager did not start")
            expect(wait_for(lambda: not os.path.exists(d2), timeout=15),
                   "the restarted manager left its dead sibling %s" % d2)
            expect(sub.objects(sb.prefix) == [], "left: %s" % sub.objects(sb.prefix))
        finally:
            remove_dirs(sb, dirs)


def test_job_in_a_shm_subdirectory_leaves_the_hosts_journals():
    with Sandbox("shh") as sb, SubShm() as sub:
        names = [sb.name(i) for i in range(3)]
        d = harness.dead_manager(sb, names, data=b"host")
        try:
            before = harness.snapshot(d)
            # The job's sweep and dry run: the host's names are not in its /dev/shm.
            for extra in (["--dry-run"], []):
                r = sub.run(sb, [harness.SHMWARDEN, "sweep", "--tmpdir", sb.tmp,
                                 "--prune-grace", "0", "--json"] + extra)
                expect(r.returncode == 0, "job sweep %s: %s %s" % (extra, r.stdout, r.stderr))
                doc = json.loads(r.stdout)
                expect([x["status"] for x in doc["dirs"]] == ["foreign"] and
                       doc["totals"]["gone"] == 0 and doc["totals"]["unlinked"] == 0,
                       "job sweep %s: %r" % (extra, doc))
                expect(harness.snapshot(d) == before, "the job's sweep changed %s" % d)
            r = sub.run(sb, [harness.SHMWARDEN, "ls", "--tmpdir", sb.tmp, "--json"])
            states = [m["state"] for m in json.loads(r.stdout)["managers"]]
            expect(states == ["foreign"], "job ls: %r %r" % (r.stdout, r.stderr))
            # A manager started in the job (same TMPDIR) does not adopt it either.
            m = sb.track(subprocess.Popen(
                sub.argv([harness.SHMWARDEN, "manager", "--prune-grace", "0"]),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=sb.env,
                stdin=subprocess.DEVNULL))
            sock = m.stdout.readline().decode().strip()
            expect(sock.startswith("/"), "job manager: %r" % sock)
            # It answers its first registration only once its adoption pass is over.
            c = harness.Client(sock)
            c.register(sb.name(9))
            c.close()
            expect(os.path.exists(d) and harness.snapshot(d) == before,
                   "the job's manager adopted the host's %s" % d)
            m.kill()
            m.wait()
            for n in names:
                expect(read_object(n) == b"host", "the host's %s was touched" % n)
            # The host reclaims its own.
            r = sb.run(["sweep", "--tmpdir", sb.tmp, "--json"])
            doc = json.loads(r.stdout)
            expect(doc["totals"]["unlinked"] == 3, "host sweep: %r %s" % (doc, r.stderr))
            expect(not os.path.exists(d), "the host's sweep left %s" % d)
            expect(sb.objects() == [], "host objects left: %s" % sb.objects())
        finally:
            # The job's manager (killed) left its own directory, registered in its /dev/shm.
            for n in os.listdir(sb.tmp):
                p = os.path.join(sb.tmp, n)
                if n.startswith("shmwarden-") and os.path.isdir(p):
                    sub.run(sb, [harness.SHMWARDEN, "recover", "--prune-grace", "0", p])
            remove_dirs(sb, [d])
            for n in sb.objects():
                os.unlink(SHM + n)


# Inside one private mount namespace: a job's own tmpfs as /dev/shm, its manager killed;
# the tmpfs unmounted (the job gone) and a new one mounted, which the kernel gives the
# freed device number and whose root is inode 1 again, as the first's was; in it another
# job's own object under the dead journal's name, never registered; then a sweep there.
# Prints one JSON line.
REUSED_DEV = r"""
import json, os, signal, subprocess, sys, time
sys.path.insert(0, sys.argv[1])
import harness
base, exe, name = sys.argv[2], sys.argv[3], sys.argv[4]
def mount():
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=1777,size=4m", "shmwt-reuse",
                    "/dev/shm"], check=True)
    st = os.stat("/dev/shm")
    return st.st_dev, st.st_ino
first = mount()
# The prune tick would identify the row (inode and birth time) a second on: kill before.
p = subprocess.Popen([exe, "manager", "--no-reclaim", "--prune-interval", "600000"],
                     stdout=subprocess.PIPE, env=dict(os.environ, TMPDIR=base))
sock = p.stdout.readline().decode().strip()
c = harness.Client(sock)
c.register(name)
fd = os.open("/dev/shm" + name, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, b"job 1")
os.close(fd)
os.kill(p.pid, signal.SIGKILL)
p.wait()
second = None
for attempt in range(50):  # another mount on the host may take the number meanwhile
    subprocess.run(["umount", "/dev/shm"], check=True)
    second = mount()
    if second == first:
        break
if second != first:
    print(json.dumps({"skip": "no tmpfs got device %r and root inode again" % (first,)}))
    sys.exit(0)
fd = os.open("/dev/shm" + name, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, b"job 2")
os.close(fd)
r = subprocess.run([exe, "sweep", "--tmpdir", base, "--prune-grace", "0", "--json"],
                   capture_output=True, text=True)
kept = os.path.exists("/dev/shm" + name)
print(json.dumps({"dev": first, "rc": r.returncode, "sweep": r.stdout, "err": r.stderr[-2000:],
                  "kept": kept, "dir": os.path.dirname(sock)}))
"""


def test_a_tmpfs_mounted_anew_on_a_freed_device_number_is_foreign():
    """Anonymous device numbers are freed with their tmpfs and handed to the next one,
    whose root is inode 1 again: device and inode alone took a dead job's journal for the
    next job's /dev/shm, and its sweep unlinked that job's own object of the same name
    (born within the window after the dead row's registration). The birth time of the
    /dev/shm directory, a tmpfs's mount time, tells them apart."""
    with Sandbox("reuse") as sb:
        name = sb.name("x")
        r = subprocess.run(["unshare", "-m", "--propagation", "private", PY, "-c", REUSED_DEV,
                            HERE, sb.tmp, harness.SHMWARDEN, name],
                           env=sb.env, capture_output=True, text=True, timeout=120,
                           stdin=subprocess.DEVNULL)
        expect(r.returncode == 0, "inner run: %d %s %s" % (r.returncode, r.stdout, r.stderr))
        out = json.loads(r.stdout.strip().splitlines()[-1])
        if "skip" in out:
            print("    (skipped: %s)" % out["skip"])
            return
        try:
            doc = json.loads(out["sweep"])
            expect(out["kept"], "the new job's own object was unlinked: %r %s" % (doc, out["err"]))
            expect([x["status"] for x in doc["dirs"]] == ["foreign"] and
                   doc["totals"]["unlinked"] == 0 and doc["totals"]["gone"] == 0,
                   "sweep: %r" % doc)
            why = doc["dirs"][0].get("detail", "")
            expect("device number" in why, "the reason: %r" % why)
            expect(os.path.isdir(out["dir"]), "the dead job's journal was dropped")
        finally:
            shutil.rmtree(out["dir"], ignore_errors=True)


def _ns(t):
    return "%d.%09d" % divmod(t, 10**9)


def test_a_tmpfs_mounted_anew_within_the_second_is_told_apart_in_the_reason():
    """The reason of a tmpfs mounted anew names both birth times to the nanosecond: in
    whole seconds, two tmpfs mounted within one second (an unmount and a mount take
    milliseconds) printed as born at the same time, exactly when it had to tell them
    apart. The journal of a manager of our /dev/shm is made to record a birth time in the
    same second as ours, a nanosecond apart."""
    with Sandbox("born") as sb:
        name = sb.name("x")
        d = harness.dead_manager(sb, [name])
        j = os.path.join(d, "journal.db")
        with sqlite3.connect(j) as con:
            ours = con.execute("SELECT shm_btime FROM manager").fetchone()[0]
        con.close()
        if not ours:
            print("SKIP test_a_tmpfs_mounted_anew_within_the_second_is_told_apart_in_the_"
                  "reason: /dev/shm gives no birth time")
            return
        theirs = ours + 1 if ours % 10**9 < 10**9 - 1 else ours - 1
        try:
            with sqlite3.connect(j) as con:
                con.execute("UPDATE manager SET shm_btime = ?", (theirs,))
            con.close()
            r = sb.run(["recover", "--json", d])
            doc = json.loads(r.stdout)
            why = "born %s, ours %s" % (_ns(theirs), _ns(ours))
            expect(doc["status"] == "foreign" and why in doc["detail"],
                   "recover: %r, want %r in the reason" % (doc, why))
            expect(read_object(name) == b"leak", "the object of a foreign journal changed")
        finally:
            with sqlite3.connect(j) as con:
                con.execute("UPDATE manager SET shm_btime = ?", (ours,))
            con.close()
        r = sb.run(["recover", "--json", d])
        expect(json.loads(r.stdout)["unlinked"] == 1, "recover, restored: %r" % r.stdout)


harness.main(globals())
