"""test_cannot_tell.py — what a reclaimer cannot see of a live manager keeps its names.

A name a live manager registered, whose object nobody has open or mapped at the moment
(in flight between PyTorch processes: the kernel's lease allows the unlink), listed by a
dead journal too (PyTorch registers a name with the sender's and each receiver's
manager), must be kept. A new user's trial found a live manager taken for "no manager",
and its name unlinked, when:

- its fd table is not the reclaimer's to read, though it is the same user's: it runs
  with another group (sg, newgrp, sbatch --gid, a setgid wrapper) or from an
  execute-only binary (not dumpable), its directory in a base the reclaimer does not
  walk. It now counts as a live manager whose journal cannot be read (live_unreadable,
  its pid named): nothing of the owner's is unlinked while it lives. A process of the
  owner's that is not inspectable and no manager by its name (a non-dumpable agent)
  does not stop the owner's reclaims;
- the reclaimer runs out of file descriptors (RLIMIT_NOFILE) while it walks /proc: a
  process it could not open was skipped as gone. Only ENOENT and ESRCH mean gone now;
  anything else keeps everything for a later pass, and a dead directory whose journal or
  /dev/shm cannot be opened for want of descriptors is an error (left for the next
  pass), never a finding ("corrupt", "foreign") for a human;
- the live manager has more than 64 socket descriptors (clients), its socket file was
  removed and made again at a higher descriptor, and its journal cannot be read (it was
  removed while the manager is stopped): only the first 64 sockets were looked at, it
  was taken for "foreign". All are looked at now.

Root only (useradd users, setrlimit, SIGSTOP of our own manager); everything lives in
harness Sandboxes (private temp bases, unique object prefixes, only our own pids killed).
"""
import json
import os
import resource
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import SHM, SHMWARDEN, Sandbox, wait_for  # noqa: E402
from test_holders import expect, root_only  # noqa: E402
from test_livemgr import live_pin_manager, reclaim_report  # noqa: E402
from test_userns import user_sandbox  # noqa: E402

OTHER_GID = 65534  # any group but the user's own: what sg or sbatch --gid give


def as_ids(uid, gid, args, **kw):
    return subprocess.Popen(args, user=uid, group=gid, extra_groups=[],
                            stdin=subprocess.DEVNULL, **kw)


def user_base(sb, pw, name):
    """A temp base of the user's under the sandbox's shared one."""
    path = os.path.join(sb.tmp, name)
    os.mkdir(path, 0o700)
    os.chown(path, pw.pw_uid, pw.pw_gid)
    return path


def execute_only_copy(src, name):
    """A root-owned copy of src at DIR/name, mode 0711: the kernel makes a process
    running it non-dumpable. Returns (dir, path)."""
    d = tempfile.mkdtemp(prefix="shmwt-exe-", dir="/tmp")
    os.chmod(d, 0o755)
    path = os.path.join(d, name)
    shutil.copy(src, path)
    os.chown(path, 0, 0)
    os.chmod(path, 0o711)
    return d, path


def blind_live_manager(sb, pw, env, base, variant, shared):
    """The user's live manager in base that the user's reclaimers may not inspect
    (variant "gid": another primary group; "nodump": an execute-only binary), whose
    client registered shared. Returns (manager Popen, its exe dir or None)."""
    gid, exe, exedir = pw.pw_gid, SHMWARDEN, None
    if variant == "gid":
        gid = OTHER_GID
    else:
        exedir, exe = execute_only_copy(SHMWARDEN, "shmwarden")
    m = sb.track(as_ids(pw.pw_uid, gid, [exe, "manager", "--no-reclaim", "--shutdown-timeout",
                                         "600000"], stdout=subprocess.PIPE,
                        stderr=subprocess.DEVNULL, env=dict(env, TMPDIR=base)))
    sock = m.stdout.readline().decode().strip()
    expect(sock.startswith("/"), "blind manager failed: %r" % sock)
    c = sb.track(as_ids(pw.pw_uid, gid, harness.registering_client_argv(sock, [shared], 10.0),
                        stdout=subprocess.PIPE, env=env))
    expect(c.stdout.readline().strip() == b"done", "the blind manager's client failed")
    expect(harness.journal_names(os.path.dirname(sock)) == [shared],
           "the blind manager did not journal %s" % shared)
    return m, exedir


def user_reclaim(sb, pw, env, how, dead, dead_base):
    """The reclaim of dead (in dead_base) by how: the user's `recover`, a root `sweep` of
    dead_base, or the user's manager restarted in dead_base (its adoption at start).
    Returns the report (None for the manager)."""
    if how == "manager":
        m = sb.track(as_ids(pw.pw_uid, pw.pw_gid, [SHMWARDEN, "manager", "--shutdown-timeout",
                                                   "600000"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=dict(env, TMPDIR=dead_base)))
        expect(m.stdout.readline().decode().startswith("/"), "restarted manager failed")
        expect(wait_for(lambda: not os.path.isdir(dead), timeout=20),
               "the restarted manager did not adopt %s" % dead)
        return None
    if how == "sweep":
        args = [SHMWARDEN, "sweep", "--json", "--tmpdir", dead_base]
        r = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env,
                           stdin=subprocess.DEVNULL)
    else:
        r = subprocess.run([SHMWARDEN, "recover", "--json", dead], user=pw.pw_uid,
                           group=pw.pw_gid, extra_groups=[], capture_output=True, text=True,
                           timeout=120, env=env, stdin=subprocess.DEVNULL)
    doc = json.loads(r.stdout)
    return doc["dirs"][0] if how == "sweep" else doc


@pytest.mark.parametrize("how", ["recover", "sweep", "manager"])
@pytest.mark.parametrize("variant", ["gid", "nodump"])
def test_a_live_manager_not_inspectable_keeps_the_owners_names(variant, how):
    if not root_only("blind live manager"):
        return
    with user_sandbox("blind") as (sb, pw, env):
        exedir = None
        try:
            dead_base = user_base(sb, pw, "dead")
            live_base = user_base(sb, pw, "live")
            shared, only = sb.name("shared"), sb.name("only")
            dead = harness.dead_manager_as(sb, pw, ["+" + shared, "+" + only],
                                           dict(env, TMPDIR=dead_base))
            m, exedir = blind_live_manager(sb, pw, env, live_base, variant, shared)
            rep = user_reclaim(sb, pw, env, how, dead, dead_base)
            expect(os.path.exists(SHM + shared),
                   "%s unlinked %s, which live manager pid %d (%s) has registered: %s"
                   % (how, shared, m.pid, variant, rep))
            if how == "sweep" and variant == "gid":
                # Root (CAP_SYS_PTRACE) inspects a dumpable process whatever its group:
                # its journal is read, its name handed over, the dead one's own goes.
                expect(rep["status"] == "removed" and rep["handed_over"] == 1 and
                       rep["unlinked"] == 1 and not os.path.exists(SHM + only),
                       "root sweep: %s" % rep)
                return
            # Nothing of the owner's is unlinked while it lives: cannot tell which it holds.
            expect(os.path.exists(SHM + only), "%s unlinked %s while a live manager of the "
                   "owner's whose journal cannot be read lives: %s" % (how, only, rep))
            if rep is not None:
                expect(rep["status"] == "kept" and rep["unlinked"] == 0 and
                       rep.get("live_unreadable") == 2 and
                       rep.get("live_unreadable_pid") == m.pid,
                       "%s: not kept as the live manager pid %d's: %s" % (how, m.pid, rep))
        finally:
            if exedir:
                shutil.rmtree(exedir, ignore_errors=True)


def zombie(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            return any(l.startswith("State:") and "Z" in l for l in f)
    except FileNotFoundError:
        return False


def test_an_uninspectable_process_that_is_no_manager_does_not_block():
    """gpg-agent, ssh-agent: non-dumpable for a whole session. One of the owner's, and one
    with another group, are not taken for managers: the dead journal's own name goes. Nor
    is a zombie shmwarden of the owner's (its /proc/PID/fd is refused too; a pid 1 that
    is slow to reap left the user namespace tests' managers so): its files are closed."""
    if not root_only("blind decoys"):
        return
    with user_sandbox("decoy") as (sb, pw, env):
        exedir = None
        try:
            dead_base = user_base(sb, pw, "dead")
            only = sb.name("only")
            dead = harness.dead_manager_as(sb, pw, ["+" + only], dict(env, TMPDIR=dead_base))
            exedir, sleeper = execute_only_copy("/bin/sleep", "sleep")
            sb.track(as_ids(pw.pw_uid, pw.pw_gid, [sleeper, "600"], env=env))
            sb.track(as_ids(pw.pw_uid, OTHER_GID, ["/bin/sleep", "600"], env=env))
            z = sb.track(as_ids(pw.pw_uid, pw.pw_gid, [SHMWARDEN, "--version"], env=env,
                                stdout=subprocess.DEVNULL))
            expect(wait_for(lambda: zombie(z.pid), timeout=10), "no zombie")  # not reaped
            time.sleep(0.3)  # the sleeps exec'd
            rep = user_reclaim(sb, pw, env, "recover", dead, dead_base)
            expect(rep["status"] == "removed" and rep["unlinked"] == 1 and
                   not os.path.exists(SHM + only),
                   "a non-manager the owner may not inspect blocked the reclaim: %s" % rep)
        finally:
            if exedir:
                shutil.rmtree(exedir, ignore_errors=True)


def nofile(n):
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))


FINDINGS = ("corrupt", "foreign", "unsafe")


@pytest.mark.parametrize("how", ["recover", "sweep", "manager"])
def test_out_of_descriptors_never_unlinks_a_live_managers_name(how):
    if not root_only("out of descriptors"):
        return
    with Sandbox("nofile") as sb:
        dead_base, live_base = (os.path.join(sb.tmp, n) for n in ("dead", "live"))
        for b in (dead_base, live_base):
            os.mkdir(b, 0o700)
        pin = sb.name("pin")
        dead = harness.dead_manager(sb, [pin], base=dead_base)
        live = live_pin_manager(sb, live_base)
        c = live.client()
        c.register(pin)
        env = dict(sb.env, TMPDIR=dead_base)
        seen = []
        limits = range(6, 48) if how != "manager" else range(12, 48, 2)
        for n in limits:
            if how == "manager":
                p = sb.track(subprocess.Popen(
                    [SHMWARDEN, "manager", "--shutdown-timeout", "600000"], env=env,
                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                    stdin=subprocess.DEVNULL, preexec_fn=nofile(n)))
                line = p.stdout.readline().decode()
                if line.startswith("/"):
                    wait_for(lambda: not os.path.isdir(dead), timeout=1.5)
                p.kill()
                p.wait()
                status = "gone" if not os.path.isdir(dead) else "left"
            else:
                args = (["recover", "--json", dead] if how == "recover"
                        else ["sweep", "--json", "--tmpdir", dead_base])
                r = subprocess.run([SHMWARDEN] + args, env=env, capture_output=True,
                                   text=True, timeout=60, stdin=subprocess.DEVNULL,
                                   preexec_fn=nofile(n))
                try:
                    doc = json.loads(r.stdout)
                except ValueError:
                    continue  # too few descriptors to start at all
                d = doc if how == "recover" else (doc.get("dirs") or [{}])[0]
                status = d.get("status")
                seen.append((n, status, d.get("detail")))
            expect(os.path.exists(SHM + pin), "RLIMIT_NOFILE %d: %s unlinked %s, which live "
                   "manager pid %d has registered (seen: %s)" % (n, how, pin, live.pid, seen))
            if status in ("removed", "gone"):
                break  # enough descriptors: handed over, as it should be
        expect(not os.path.isdir(dead), "%s never got enough descriptors: %s" % (how, seen))
        # After the unlinks (the worse bug, seen first): a resource error is no finding.
        found = [x for x in seen if x[1] in FINDINGS]
        expect(not found, "resource errors reported as findings: %s" % found)
        expect(pin in harness.journal_names(live.dir), "the live manager lost %s" % pin)


@pytest.mark.parametrize("dry_run", [True, False])
def test_a_dead_journal_out_of_descriptors_is_an_error_not_a_finding(dry_run):
    """The dead directory alone: at every limit the status is removed, kept or error (left
    for the next pass), never corrupt or foreign, until it can be read and is removed."""
    if not root_only("out of descriptors"):
        return
    with Sandbox("nofile-dead") as sb:
        leak = sb.name("leak")
        dead = harness.dead_manager(sb, [leak])
        statuses = []
        for n in range(6, 48):
            r = subprocess.run([SHMWARDEN, "recover", "--json", dead] +
                               (["--dry-run"] if dry_run else []),
                               env=sb.env, capture_output=True, text=True, timeout=60,
                               stdin=subprocess.DEVNULL, preexec_fn=nofile(n))
            try:
                doc = json.loads(r.stdout)
            except ValueError:
                continue
            statuses.append((n, doc["status"], doc.get("detail")))
            expect(doc["status"] not in FINDINGS, "RLIMIT_NOFILE %d: %s" % (n, statuses))
            if doc["status"] == "removed":
                break
        expect(statuses and statuses[-1][1] == "removed",
               "never removed with enough descriptors: %s" % statuses)
        expect(os.path.exists(SHM + leak) == dry_run, "dry run %s: %s" % (dry_run, statuses))


@pytest.mark.parametrize("clients", [10, 70])
def test_a_manager_with_many_sockets_and_no_journal_keeps_its_names(clients):
    if not root_only("many sockets"):
        return
    with Sandbox("sockets") as sb:
        dead_base, live_base = (os.path.join(sb.tmp, n) for n in ("dead", "live"))
        for b in (dead_base, live_base):
            os.mkdir(b, 0o700)
        pin = sb.name("pin")
        dead = harness.dead_manager(sb, [pin], base=dead_base)
        live = live_pin_manager(sb, live_base)
        c = live.client()
        c.register(pin)
        socks = []
        stopped = False
        try:
            for _ in range(clients):
                s = socket.socket(socket.AF_UNIX)
                s.connect(live.sock)
                socks.append(s)
            ino0 = os.stat(live.sock).st_ino
            os.unlink(live.sock)  # a cleaner: the manager makes it again, at a higher fd

            def restored():
                try:
                    st = os.stat(live.sock)
                except FileNotFoundError:
                    return False
                return stat.S_ISSOCK(st.st_mode) and st.st_ino != ino0
            expect(wait_for(restored, timeout=10), "the manager did not restore its socket")
            os.kill(live.pid, signal.SIGSTOP)  # scontrol suspend
            stopped = True
            for f in ("journal.db", "journal.db-wal", "journal.db-shm"):
                try:
                    os.unlink(os.path.join(live.dir, f))
                except FileNotFoundError:
                    pass
            rep = reclaim_report(sb, "recover", dead, dead_base)
            expect(os.path.exists(SHM + pin),
                   "[%d clients] %s unlinked under live manager pid %d: %s"
                   % (clients, pin, live.pid, rep))
            expect(rep["status"] == "kept" and rep.get("live_unreadable") == 1 and
                   rep.get("live_unreadable_pid") == live.pid,
                   "[%d clients] not kept as the live manager's: %s" % (clients, rep))
        finally:
            if stopped:
                os.kill(live.pid, signal.SIGCONT)
            for s in socks:
                s.close()
        c.close()
