"""test_unseen.py — a live manager no /proc of the reclaimer shows keeps its names.

A reclaimer finds live managers by walking /proc/PID/fd, and misses those it cannot see
or inspect: from a child pid namespace (a container sharing /tmp and /dev/shm with the
host: `docker --ipc=host -v /tmp:/tmp`, a Kubernetes pod) the host's managers are not in
its /proc, nor from a rootless container's (a manager restarted there, in its own user
and pid namespaces); from a user namespace it may not read the fds of a non-dumpable
process outside it, even the user's own. A name such a manager registered, whose
object nobody has open or mapped at that moment (in flight between PyTorch processes:
the kernel's lease then allows the unlink), listed by a dead journal in the same base too
(PyTorch registers a name with the sender's and each receiver's manager), was unlinked by
the container's reclaimer. Every manager holds its directory's flock for its whole life,
and the lock is the kernel's, seen from every namespace: the reclaimer now also counts the
owner's locked, unmarked manager directories in the bases it walks as live managers
(livemgr.c, "Found by their lock"). These tests check, with the real binaries:

- `sweep` (root, `--tmpdir` the private base), `recover` of the dead directory, and a
  manager restarted in the pid namespace (its start-up adoption) each keep the live host
  manager's name (handed over), and still unlink what only the dead journal lists;
- a rootless container's restarted manager (`unshare -U -r`, its own pid namespace,
  the host's base bind-mounted as its /tmp), as a real useradd user, keeps it too (the
  host journal's uids cannot be checked from inside: cannot tell means keep);
- a live host manager whose journal cannot be read (another schema version) makes them
  keep everything of the owner's, said as "its pid is not visible here", never "pid 0",
  in the text report, --json (live_unreadable_pid null) and the metric.

Root only (pid namespaces with their own /proc); everything lives in harness Sandboxes
(private temp base, unique object prefix, only our own pids killed).
"""
import json
import os
import select
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import SHM, SHMWARDEN, Sandbox, as_user, sigkill, wait_for, write_object  # noqa: E402
from test_holders import expect, root_only  # noqa: E402
from test_lease import PIDNS, stop_manager_in_pidns  # noqa: E402
from test_livemgr import bases, live_pin_manager, set_user_version  # noqa: E402
from test_userns import user_sandbox, userns_works  # noqa: E402

PY = "/usr/bin/python3"
HIDDEN = "its pid is not visible here"


def dead_listing(sb, base, shared, only):
    """A manager in base registers shared (whose object exists already: the live host
    manager's) and only, its client creates only, and it is SIGKILLed: what a receiving
    process's manager leaves when its container is killed. Returns its directory."""
    m = sb.spawn_manager(args=["manager", "--no-reclaim"], argv0="shmwarden",
                         env=dict(sb.env, TMPDIR=base))
    expect(m.sock, "manager failed: %r" % m.line)
    c = m.client()
    c.register(shared)
    c.register(only)
    write_object(only, b"dead")
    sigkill(m)
    c.close()
    return m.dir


def in_pidns(sb, args, env=None):
    """`shmwarden ARGS` in a new pid namespace with its own /proc: no host process is in
    it, the live manager included."""
    return subprocess.run(PIDNS + [SHMWARDEN] + list(args), capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL,
                          env=dict(env or sb.env, SHMWARDEN_LOG="info"))


def manager_in_pidns(sb, base):
    """A manager (reclaiming at start) in base, in a new pid namespace with its own /proc
    (a container's, restarted), logging at info; returns the Popen of unshare."""
    p = sb.track(subprocess.Popen(PIDNS + [SHMWARDEN, "manager", "--shutdown-timeout",
                                           "300000"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                  env=dict(sb.env, TMPDIR=base, SHMWARDEN_LOG="info")))
    r, _, _ = select.select([p.stdout], [], [], 10)
    line = p.stdout.readline().decode().strip() if r else ""
    expect(line.startswith(base + "/"), "manager in a pid namespace printed %r" % line)
    return p


def ino(name):
    try:
        return os.stat(SHM + name).st_ino
    except FileNotFoundError:
        return None


def test_reclaimers_in_a_child_pid_namespace_keep_a_host_managers_name():
    if not root_only("test_reclaimers_in_a_child_pid_namespace_keep_a_host_managers_name"):
        return
    with Sandbox("unpid") as sb:
        (base,) = bases(sb, "b")
        live = live_pin_manager(sb, base)
        c = live.client()
        lost = []
        for how in ("sweep", "recover", "adoption"):
            shared, only = sb.name(how + "_x"), sb.name(how + "_y")
            # The live host manager's name: registered, its object created, then closed
            # and unmapped by its client (in flight: nobody holds it).
            c.register(shared)
            write_object(shared, b"live")
            x = ino(shared)
            d = dead_listing(sb, base, shared, only)
            if how == "sweep":
                r = in_pidns(sb, ["sweep", "--tmpdir", base, "--json"])
                expect(r.returncode == 0, "sweep: exit %d: %s" % (r.returncode, r.stderr))
                doc = json.loads(r.stdout)
                rep = {e["dir"]: e for e in doc["dirs"]}.get(d)
            elif how == "recover":
                r = in_pidns(sb, ["recover", "--json", d])
                expect(r.returncode == 0, "recover: exit %d: %s" % (r.returncode, r.stderr))
                rep = json.loads(r.stdout)
            else:
                p = manager_in_pidns(sb, base)
                expect(wait_for(lambda: not os.path.exists(d), 20),
                       "the restarted manager did not finish %s" % d)
                err = stop_manager_in_pidns(p)
                rep = None
            if ino(shared) != x:
                lost.append(how)
                continue
            if rep is not None:
                expect(rep["status"] == "removed" and rep["handed_over"] == 1 and
                       rep["unlinked"] == 1 and rep["live_unreadable"] == 0,
                       "%s: %r" % (how, rep))
            else:
                expect("registered by a live manager found by its lock (%s); handed over"
                       % HIDDEN in err and "pid 0" not in err, "adoption: %s" % err[-3000:])
            # What only the dead journal listed is still unlinked.
            expect(not os.path.exists(SHM + only), "%s kept %s, which only the dead "
                   "journal listed" % (how, only))
            expect(not os.path.exists(d), "%s left %s" % (how, d))
        c.close()
        sigkill(live)
        expect(not lost, "the live host manager's name was unlinked by %s in a child pid "
               "namespace" % lost)


def test_unreadable_host_manager_unseen_from_a_pid_namespace_keeps_everything():
    if not root_only("test_unreadable_host_manager_unseen_from_a_pid_namespace_keeps_"
                     "everything"):
        return
    with Sandbox("unver") as sb:
        (base,) = bases(sb, "b")
        shared, only = sb.name("x"), sb.name("y")
        live = live_pin_manager(sb, base)
        c = live.client()
        c.register(shared)
        write_object(shared, b"live")
        d = dead_listing(sb, base, shared, only)
        # Another schema version: a newer release beside this one, which may hold any of
        # root's names.
        set_user_version(live.dir, 5)
        prom = os.path.join(sb.tmp, "sweep.prom")
        r = in_pidns(sb, ["sweep", "--tmpdir", base, "--json", "--metrics", prom])
        expect(r.returncode == 0, "sweep: exit %d: %s" % (r.returncode, r.stderr))
        doc = json.loads(r.stdout)
        rep = {e["dir"]: e for e in doc["dirs"]}[d]
        expect(os.path.exists(SHM + shared) and os.path.exists(SHM + only),
               "unlinked while a live manager's journal could not be read: %r" % rep)
        expect(rep["status"] == "kept" and rep["unlinked"] == 0 and
               rep["live_unreadable"] == 2 and rep["live_unreadable_pid"] is None and
               doc["totals"]["live_unreadable"] == 2, "json: %r" % doc)
        expect("pid 0" not in rep["detail"] and HIDDEN in rep["detail"],
               "detail: %r" % rep["detail"])
        with open(prom) as f:
            expect("\nshmwarden_sweep_last_objects_live_unreadable 2\n" in f.read(),
                   "the metric does not count them")
        expect("kept: the journal of a live manager (%s) cannot be read" % HIDDEN in r.stderr
               and "pid 0" not in r.stderr, "log: %s" % r.stderr[-3000:])
        for args in (["sweep", "--tmpdir", base], ["recover", d]):
            r = in_pidns(sb, args)
            expect(r.returncode == 0, "%s: exit %d: %s" % (args[0], r.returncode, r.stderr))
            expect("2 kept: the journal of a live manager (%s) cannot be read" % HIDDEN
                   in r.stdout and "pid 0" not in r.stdout, "%s: %r" % (args[0], r.stdout))
        r = in_pidns(sb, ["recover", "--json", d])
        rep = json.loads(r.stdout)
        expect(rep["live_unreadable"] == 2 and rep["live_unreadable_pid"] is None,
               "recover --json: %r" % rep)
        # Readable again: the shared name is handed over, the other unlinked.
        set_user_version(live.dir, 4)
        rep = json.loads(in_pidns(sb, ["recover", "--json", d]).stdout)
        expect(rep["status"] == "removed" and rep["handed_over"] == 1 and
               rep["unlinked"] == 1 and os.path.exists(SHM + shared) and
               not os.path.exists(SHM + only), "readable again: %r" % rep)
        c.close()
        sigkill(live)


# In a rootless container sharing the host's base (`unshare -U -r -p -f -m --mount-proc`,
# the base bind-mounted at its /tmp, which it owns there): a manager registers the
# shared name (its object exists: the host manager's client made it) and another whose
# object its client creates, and is SIGKILLed; a manager restarted there adopts its dead
# sibling ("adopted" or "left" is printed) and is stopped (SIGTERM). Its log goes to
# stderr.
NS_ADOPT = r"""
import os, signal, socket, struct, subprocess, sys, time
exe, shared, only = sys.argv[1], sys.argv[2], sys.argv[3]
env = dict(os.environ, TMPDIR="/tmp", SHMWARDEN_LOG="info")
p = subprocess.Popen([exe, "manager", "--no-reclaim", "--shutdown-timeout", "600000"],
                     stdout=subprocess.PIPE, env=env)
sock = p.stdout.readline().decode().strip()
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
c.settimeout(10)
c.connect(sock)
for n in (shared, only):
    c.sendall(struct.pack("=ib60s3x", os.getpid(), 0, n.encode()))
    got = b""
    while len(got) < 2:
        got += c.recv(2 - len(got))
    assert got == b"OK", got
fd = os.open("/dev/shm" + only, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
os.ftruncate(fd, 4096)
os.close(fd)
os.kill(p.pid, signal.SIGKILL)
p.wait()
c.close()
d = os.path.dirname(sock)
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


def test_rootless_containers_restarted_manager_keeps_a_host_managers_name():
    if not root_only("test_rootless_containers_restarted_manager_keeps_a_host_managers_"
                     "name"):
        return
    with user_sandbox("unusr") as (sb, pw, env):
        if not userns_works(pw, env):
            print("SKIP test_rootless_containers_restarted_manager_keeps_a_host_managers_"
                  "name: unprivileged user namespaces are refused here")
            return
        base = os.path.join(sb.tmp, "b")
        os.mkdir(base, 0o700)
        os.chown(base, pw.pw_uid, pw.pw_gid)
        shared, only = sb.name("x"), sb.name("y")
        # The user's live manager on the host, in that base: its client registers the
        # shared name and creates its object, then holds only its connection.
        m = sb.track(as_user(pw, [SHMWARDEN, "manager", "--no-reclaim",
                                  "--shutdown-timeout", "600000"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                             env=dict(env, TMPDIR=base)))
        sock = m.stdout.readline().decode().strip()
        expect(sock.startswith(base + "/"), "the host manager said %r" % sock)
        cl = sb.track(as_user(pw, harness.registering_client_argv(sock, ["+" + shared], 10.0),
                              stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env))
        expect(cl.stdout.readline().strip() == b"done", "the host client failed")
        x = ino(shared)
        # The container runs from the build directory, entered before its /tmp is
        # mounted over (the checkout may lie under /tmp), as test_userns's jobs do.
        build = os.path.dirname(os.path.abspath(SHMWARDEN))
        job = ["unshare", "-U", "-r", "-p", "-f", "--kill-child", "-m", "--mount-proc",
               "--propagation", "private", "sh", "-c",
               'cd "$0" && mount --bind "$1" /tmp && shift && exec "$@"', build, base,
               PY, "-c", NS_ADOPT, "./" + os.path.basename(SHMWARDEN), shared, only]
        r = subprocess.run(job, user=pw.pw_uid, group=pw.pw_gid, extra_groups=[], env=env,
                           capture_output=True, text=True, timeout=120)
        try:
            expect(r.returncode == 0, "container: exit %d: %s %s" % (r.returncode, r.stdout,
                                                                     r.stderr[-3000:]))
            expect(ino(shared) == x, "the rootless container's restarted manager unlinked "
                   "the live host manager's %s: %s" % (shared, r.stderr[-3000:]))
            expect(r.stdout.split() == ["adopted"], "restart: %r %s" % (r.stdout,
                                                                       r.stderr[-3000:]))
            # The host journal's uids cannot be checked from inside a user namespace:
            # whose names it holds nobody can tell, so nothing of the user's is unlinked
            # while it lives, and the report says why without a pid it cannot see.
            expect(os.path.exists(SHM + only), "unlinked while the live host manager's "
                   "journal could not be checked: %s" % r.stderr[-3000:])
            expect("kept: the journal of a live manager (%s) cannot be read" % HIDDEN
                   in r.stderr and "pid 0" not in r.stderr, "log: %s" % r.stderr[-3000:])
        finally:
            for q in (cl, m):
                q.kill()
                q.wait()


def test_a_leftover_flock_of_a_directory_in_the_base_is_no_manager():
    """The lock scan counts only what no /proc of ours shows: a directory of the owner's
    held by a task we can inspect that is not its manager (a leftover `flock -x DIR sleep`,
    whose child inherits the lock) is known to be no manager, and must not keep every
    leak of the owner's for as long as it runs (the second new-user trial of 1 December:
    `1 kept: the journal of a live manager (its pid is not visible here) cannot be
    read`, beside the same directory reported held by that very pid)."""
    if not root_only("test_a_leftover_flock_of_a_directory_in_the_base_is_no_manager"):
        return
    with Sandbox("uflk") as sb:
        n = sb.name("leak")
        m = sb.spawn_manager(args=["manager", "--no-reclaim"], argv0="shmwarden")
        expect(m.sock, "manager failed: %r" % m.line)
        c = m.client()
        c.register(n)
        write_object(n, b"leak")
        sigkill(m)
        c.close()
        stray = os.path.join(sb.tmp, "shmwarden-zzzzzz")
        os.mkdir(stray, 0o700)
        # Its own process group: killed with its child, which holds the lock too.
        holder = subprocess.Popen(["flock", "-x", stray, "sleep", "600"],
                                  start_new_session=True)
        try:
            # flock takes the lock, then its child sleep inherits it.
            wait_for(lambda: subprocess.run(["flock", "-n", "-x", stray, "true"]).returncode
                     != 0, 10)
            r = sb.run(["sweep", "--json", "--tmpdir", sb.tmp])
            doc = json.loads(r.stdout)
            kept = [d for d in doc["dirs"] if d["status"] == "kept"]
            expect(not kept and not os.path.exists(SHM + n),
                   "a leftover flock kept the owner's leak: %s" % doc["dirs"])
        finally:
            os.killpg(holder.pid, 9)
            holder.wait()


harness.main(globals())
