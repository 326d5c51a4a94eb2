"""test_userns.py — a manager in a user namespace that maps its user to root.

A rootless container (`unshare -U -r`) shares the host's /tmp and /dev/shm: inside it the
user is uid 0, so its manager journals owner_uid 0, while the host sees the directory and
the objects owned by the real uid. The manager also journals its user namespace and its
uid as the namespace's parent sees it (uid_map); a reclaimer in the initial user namespace
checks that against the directory's owner, and reclaims:

- a root `sweep` and the user's own `recover` from the host reclaim such a dead manager's
  objects (before: `unsafe`, "journal claims uid 0", and they leaked for good), and `ls`
  calls it dead;
- a manager restarted inside the same namespace still adopts its dead sibling (with a
  /tmp of the namespace's own; with the host's, whose root is no uid there, it cannot show
  its base safe and leaves the directory to the host, which reclaims it);
- a live manager in such a namespace counts as the user's: a name it registered again is
  handed over, never unlinked, by a host sweep of a dead journal that lists it too;
- what cannot be shown stays unsafe, nothing unlinked: a journal whose parent uid is
  another user's (the owner edited it), and, from inside a user namespace, a journal the
  host wrote (uids there are not the parent's).

Real `useradd` users, real `unshare -U -r` (unprivileged user namespaces: the test says
SKIP when the kernel refuses them), real SIGKILL. The users are removed again, whatever
happens.
"""
import contextlib
import json
import os
import pwd
import signal
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import SHM, Sandbox, as_user, wait_for  # noqa: E402

PY = "/usr/bin/python3"


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


@contextlib.contextmanager
def user_sandbox(label):
    """A shared Sandbox and a new system user (its pwd entry, and the environment it runs
    in); the user is removed again whatever happens."""
    user = None
    sb = Sandbox(label, shared=True)
    try:
        user = harness.useradd(label)
        yield sb, pwd.getpwnam(user), dict(sb.env, HOME="/")
    finally:
        sb.cleanup()
        # userdel refuses while a process of the user exists: a manager SIGKILLed a moment
        # ago may not be reaped yet.
        if user:
            wait_for(lambda: subprocess.run(["userdel", user],
                                            capture_output=True).returncode in (0, 6),
                     timeout=10, interval=0.2)


def userns_works(pw, env):
    r = subprocess.run(["unshare", "-U", "-r", "id", "-u"], user=pw.pw_uid, group=pw.pw_gid,
                       extra_groups=[], env=env, capture_output=True, text=True)
    return r.returncode == 0 and r.stdout.strip() == "0"


# In the namespace (uid 0 there): a manager registers the names, its client creates the
# objects, the manager is SIGKILLed; its directory is printed. With "restart", a second
# manager is started in the same namespace and must adopt the dead one's directory:
# "adopted" or "left" is printed, and it is stopped (SIGTERM).
NS_JOB = r"""
import os, signal, socket, struct, subprocess, sys, time
base, exe, mode, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
assert os.geteuid() == 0, "not root in the namespace"
os.makedirs(base, exist_ok=True)
env = dict(os.environ, TMPDIR=base)
p = subprocess.Popen([exe, "manager", "--no-reclaim", "--shutdown-timeout", "600000"],
                     stdout=subprocess.PIPE, env=env)
sock = p.stdout.readline().decode().strip()
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
c.settimeout(10)
c.connect(sock)
for n in names:
    c.sendall(struct.pack("=ib60s3x", os.getpid(), 0, n.encode()))
    got = b""
    while len(got) < 2:
        got += c.recv(2 - len(got))
    assert got == b"OK", got
    fd = os.open("/dev/shm" + n, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    os.ftruncate(fd, 4096)
    os.close(fd)
os.kill(p.pid, signal.SIGKILL)
p.wait()
c.close()
d = os.path.dirname(sock)
print(d, flush=True)
if mode == "restart":
    q = subprocess.Popen([exe, "manager", "--shutdown-timeout", "600000"],
                         stdout=subprocess.PIPE, env=env)
    q.stdout.readline()
    deadline = time.monotonic() + 20
    while os.path.exists(d) and time.monotonic() < deadline:
        time.sleep(0.05)
    print("left" if os.path.exists(d) else "adopted", flush=True)
    q.send_signal(signal.SIGTERM)
    q.wait(20)
"""


def ns_job(sb, pw, env, names, mode="dead", private_tmp=False):
    """NS_JOB as pw in `unshare -U -r`, its TMPDIR the sandbox's base; with private_tmp,
    in a mount namespace of its own too, with a tmpfs of its own on /tmp and its base
    there (what a rootless container has: /tmp owned by its root)."""
    job = [PY, "-c", NS_JOB, sb.tmp, harness.SHMWARDEN, mode] + names
    if private_tmp:
        # The tmpfs hides all of the host's /tmp, the build too when the checkout lies
        # there (a CI clone in /tmp): the job runs from the build directory, entered
        # before the mount, and names the binary relative to it.
        build = os.path.dirname(os.path.abspath(harness.SHMWARDEN))
        job = ["unshare", "-U", "-r", "-m", "--propagation", "private", "sh", "-c",
               'cd "$0" && mount -t tmpfs shmwt-tmp /tmp && exec "$@"', build] + job
        job[job.index(sb.tmp)] = "/tmp/base"
        job[job.index(harness.SHMWARDEN)] = "./" + os.path.basename(harness.SHMWARDEN)
    else:
        job = ["unshare", "-U", "-r"] + job
    r = subprocess.run(job, user=pw.pw_uid, group=pw.pw_gid, extra_groups=[],
                       env=env, capture_output=True, text=True, timeout=120)
    expect(r.returncode == 0, "namespace job: %d %s %s" % (r.returncode, r.stdout, r.stderr))
    out = r.stdout.split()
    expect(out and (os.path.isdir(out[0]) or private_tmp), "namespace job printed %r" % r.stdout)
    ns_job.stderr = r.stderr
    return out


def owned_by(names, uid):
    return all(os.stat(SHM + n).st_uid == uid for n in names)


def test_rootless_container_manager_is_reclaimed_from_the_host():
    with user_sandbox("uns") as (sb, pw, env):
        if not userns_works(pw, env):
            print("SKIP test_rootless_container_manager_is_reclaimed_from_the_host: "
                  "unprivileged user namespaces are refused here")
            return
        names = [sb.name(i) for i in range(6)]
        # A root sweep from the host.
        d = ns_job(sb, pw, env, names[:3])[0]
        expect(sb.objects() == names[:3] and owned_by(names[:3], pw.pw_uid),
               "the container's objects: %s" % sb.objects())
        expect(os.stat(d).st_uid == pw.pw_uid, "the directory is not the user's")
        r = sb.run(["ls", "--tmpdir", sb.tmp, "--json"])
        states = [m["state"] for m in json.loads(r.stdout)["managers"]]
        expect(states == ["dead"], "ls: %r %r" % (r.stdout, r.stderr))
        r = sb.run(["sweep", "--tmpdir", sb.tmp, "--json"])
        expect(r.returncode == 0, "sweep exit %d: %s %s" % (r.returncode, r.stdout, r.stderr))
        doc = json.loads(r.stdout)
        expect([x["status"] for x in doc["dirs"]] == ["removed"] and
               doc["totals"]["unlinked"] == 3, "root sweep: %r %s" % (doc, r.stderr))
        expect(sb.objects() == [] and not os.path.exists(d), "left: %s" % sb.objects())

        # The user's own recover, from the host (the initial user namespace).
        d = ns_job(sb, pw, env, names[3:5])[0]
        p = as_user(pw, [harness.SHMWARDEN, "recover", "--json", d], env=env,
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = p.communicate(timeout=60)
        expect(p.returncode == 0 and json.loads(out)["unlinked"] == 2,
               "the user's recover: %d %r %r" % (p.returncode, out, err))
        expect(sb.objects() == [] and not os.path.exists(d), "left: %s" % sb.objects())

        # A manager restarted in the same namespace adopts its dead sibling, when it can
        # show its temp base safe: a /tmp of the namespace's own.
        out = ns_job(sb, pw, env, names[5:], mode="restart", private_tmp=True)
        expect(out[1:] == ["adopted"], "restart in the namespace: %r" % out)
        expect(sb.objects() == [], "left: %s" % sb.objects())
        # With the host's /tmp it cannot: the host's root is no uid there (65534), so /tmp
        # is "another user's" (README, SECURITY.md). It leaves the directory, unlinks
        # nothing, and the host reclaims it.
        out = ns_job(sb, pw, env, names[5:], mode="restart")
        expect(out[1:] == ["left"] and sb.objects() == names[5:],
               "restart in the namespace, the host's /tmp: %r %s" % (out, sb.objects()))
        expect("only a sweep or recover run outside it" in ns_job.stderr,
               "the manager's warning: %r" % ns_job.stderr[-2000:])
        r = sb.run(["sweep", "--tmpdir", sb.tmp, "--json"])
        expect(json.loads(r.stdout)["totals"]["unlinked"] == 1, "host sweep: %r" % r.stdout)
        expect(sb.objects() == [], "left: %s" % sb.objects())


# In the namespace: a live manager registers /pin again and its client replaces the stale
# object a dead host manager of the same user left under that name, as a program with a
# fixed segment name does after a crash; "ready" is printed and both stay.
NS_LIVE_PIN = r"""
import os, socket, struct, subprocess, sys, time
base, exe, pin = sys.argv[1], sys.argv[2], sys.argv[3]
p = subprocess.Popen([exe, "manager", "--no-reclaim", "--shutdown-timeout", "600000"],
                     stdout=subprocess.PIPE, env=dict(os.environ, TMPDIR=base))
sock = p.stdout.readline().decode().strip()
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
c.connect(sock)
c.sendall(struct.pack("=ib60s3x", os.getpid(), 0, pin.encode()))
assert c.recv(2) == b"OK"
os.unlink("/dev/shm" + pin)
fd = os.open("/dev/shm" + pin, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, b"live")
os.close(fd)
print(p.pid, flush=True)
time.sleep(600)
"""


def live_manager_in_a_user_namespace(label, depth):
    """A dead host manager of the user journaled /pin; a live manager of the same user in
    a rootless container depth user namespaces deep registered it again and replaced its
    object. A root sweep of the dead journal must not unlink it. Returns the sweep's
    JSON document and the dead directory."""
    with user_sandbox(label) as (sb, pw, env):
        if not userns_works(pw, env):
            print("SKIP %s: unprivileged user namespaces are refused here" % label)
            return None, None
        pin = sb.name("pin")
        # The user's host manager registers /pin, its client creates it, and both die
        # before the prune could learn which object it is.
        m = sb.track(as_user(pw, [harness.SHMWARDEN, "manager", "--no-reclaim",
                                  "--prune-interval", "100000", "--shutdown-timeout", "600000"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             stdin=subprocess.DEVNULL, env=env))
        sock = m.stdout.readline().decode().strip()
        c = sb.track(as_user(pw, harness.registering_client_argv(sock, ["+" + pin], 10.0),
                             stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env))
        expect(c.stdout.readline().strip() == b"done", "the client failed")
        for q in (m, c):
            q.kill()
            q.wait()
        dead = os.path.dirname(sock)
        # The same user's rootless container: a live manager takes /pin over.
        live = sb.track(as_user(pw, ["unshare", "-U", "-r"] * depth +
                                [PY, "-c", NS_LIVE_PIN, sb.tmp, harness.SHMWARDEN, pin],
                                stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env))
        line = live.stdout.readline().strip()
        expect(line.isdigit(), "the container's manager did not start")
        try:
            r = sb.run(["sweep", "--tmpdir", sb.tmp, "--json"])
            doc = json.loads(r.stdout)
            expect(doc["totals"]["unlinked"] == 0 and harness.read_object(pin) == b"live",
                   "the live manager's %s was unlinked: %r %s" % (pin, doc, r.stderr))
            return doc, dead
        finally:
            # Its manager is our process too (no pid namespace): it goes with the test.
            os.kill(int(line), signal.SIGKILL)
            live.kill()
            live.wait()


def test_live_manager_in_a_user_namespace_keeps_its_name():
    doc, dead = live_manager_in_a_user_namespace("unl", 1)
    if doc:
        # Its journal shows whose it is: the name is handed over, the dead row goes.
        d = {x["dir"]: x for x in doc["dirs"]}[dead]
        expect(d["status"] == "removed" and d["handed_over"] == 1, "sweep: %r" % doc)


# Two user namespaces deep (rootless containers inside a rootless container), the live
# manager journals its uid as its parent namespace sees it, which says nothing to the host:
# it was taken for a directory not ours, its names went unprotected, and the host sweep
# unlinked the object it had registered (found by a new-user trial). Cannot tell means
# keep: while it lives, none of the user's names is unlinked.
def test_live_manager_two_user_namespaces_deep_keeps_its_name():
    doc, dead = live_manager_in_a_user_namespace("un2", 2)
    if doc:
        d = {x["dir"]: x for x in doc["dirs"]}[dead]
        expect(d["status"] == "kept" and d["live_unreadable"] == 1, "sweep: %r" % doc)


def test_what_cannot_be_shown_stays_unsafe():
    with user_sandbox("unu") as (sb, pw, env):
        if not userns_works(pw, env):
            print("SKIP test_what_cannot_be_shown_stays_unsafe: unprivileged user "
                  "namespaces are refused here")
            return
        names = [sb.name(i) for i in range(4)]
        # The owner rewrites its journal's parent uid to root's: not the directory's owner.
        d = ns_job(sb, pw, env, names[:2])[0]
        edit = as_user(pw, [PY, "-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]);"
                            " c.execute('UPDATE manager SET parent_uid = 0'); c.commit()",
                            os.path.join(d, "journal.db")], env=env)
        expect(edit.wait(30) == 0, "could not edit the journal")
        r = sb.run(["sweep", "--tmpdir", sb.tmp, "--json"])
        doc = json.loads(r.stdout)
        expect([x["status"] for x in doc["dirs"]] == ["unsafe"] and
               doc["totals"]["unlinked"] == 0, "forged parent uid: %r" % doc)
        expect("journal claims uid 0 in user namespace" in doc["dirs"][0]["detail"],
               "reason: %r" % doc["dirs"][0]["detail"])
        expect(sb.objects() == names[:2], "objects touched: %s" % sb.objects())

        # A host journal of the user's, seen from inside a user namespace: uids there are
        # not the parent's, so it is not shown to be the owner's.
        d2 = harness.dead_manager_as(sb, pw, ["+" + n for n in names[2:]], env)
        r = subprocess.run(["unshare", "-U", "-r", harness.SHMWARDEN, "sweep", "--tmpdir", sb.tmp,
                            "--json"], user=pw.pw_uid, group=pw.pw_gid, extra_groups=[],
                           env=env, capture_output=True, text=True, timeout=60)
        doc = json.loads(r.stdout)
        by_dir = {x["dir"]: x for x in doc["dirs"]}
        expect(by_dir[d2]["status"] == "unsafe" and doc["totals"]["unlinked"] == 0,
               "sweep in a namespace: %r %s" % (doc, r.stderr))
        expect(sb.objects() == names, "objects touched: %s" % sb.objects())
        # The host reclaims what is the user's by every rule: the host journal.
        r = sb.run(["sweep", "--tmpdir", sb.tmp, "--json"])
        doc = json.loads(r.stdout)
        expect(doc["totals"]["unlinked"] == 2 and not os.path.exists(d2) and
               os.path.exists(d), "host sweep: %r" % doc)
        expect(sb.objects() == names[:2], "objects: %s" % sb.objects())
        # Put back, and the forged directory is the user's to reclaim.
        con = sqlite3.connect(os.path.join(d, "journal.db"))
        con.execute("UPDATE manager SET parent_uid = ?", (pw.pw_uid,))
        con.commit()
        con.close()
        r = sb.run(["sweep", "--tmpdir", sb.tmp, "--json"])
        expect(json.loads(r.stdout)["totals"]["unlinked"] == 2, "after the fix: %r" % r.stdout)
        expect(wait_for(lambda: sb.objects() == []), "left: %s" % sb.objects())


harness.main(globals())
