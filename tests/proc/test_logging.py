"""test_logging.py — one line per event, `PROG[PID]: LEVEL: message`, at the level
SHMWARDEN_LOG asks for, from the sweeper, recover and the manager; --syslog keeps log
lines off stderr, and they reach syslog: read back from a private /dev/log (a socket of
the test's, bind-mounted in a private mount namespace over a private /dev), never the
host's syslog.
"""
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Sandbox  # noqa: E402

LINE = re.compile(r"^(shmwarden|torch_shm_manager)\[(\d+)\]: (debug|info|warn|error): (\S.*)$")


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def dead_manager(sb, n, tag="o"):
    m = sb.spawn_manager(args=["manager", "--no-reclaim"], argv0="shmwarden")
    c = m.client()
    for i in range(n):
        c.register(sb.name("%s%d" % (tag, i)))
        sb.create_object(sb.name("%s%d" % (tag, i)))
    os.kill(m.pid, signal.SIGKILL)
    m.wait()
    c.close()
    return m.dir




def run(sb, args, level=None):
    """Runs shmwarden ARGS; returns (exit status, stdout, log lines, other stderr lines)
    with every log line checked for the format and the pid."""
    env = dict(sb.env)
    env.pop("SHMWARDEN_LOG", None)
    if level is not None:
        env["SHMWARDEN_LOG"] = level
    p = subprocess.Popen([harness.SHMWARDEN] + args, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    out, err = p.communicate(timeout=60)
    logs, other = [], []
    for line in err.splitlines():
        m = LINE.match(line)
        if m:
            expect(m.group(1) == "shmwarden" and int(m.group(2)) == p.pid,
                   "prog/pid of %r (pid %d)" % (line, p.pid))
            logs.append((m.group(3), m.group(4)))
        else:
            expect("[" not in line.split(":")[0], "malformed log line %r" % line)
            other.append(line)
    return p.returncode, out, logs, other


def test_levels_of_the_sweeper():
    with Sandbox("log") as sb:
        d = dead_manager(sb, 2)
        name = os.path.basename(d)
        rc, out, logs, other = run(sb, ["sweep", "--tmpdir", sb.tmp, "--dry-run"])
        expect(rc == 0 and logs == [] and other == [], "default level: %s %s" % (logs, other))
        rc, out, logs, other = run(sb, ["sweep", "--tmpdir", sb.tmp, "--dry-run"], "info")
        expect(rc == 0 and other == [], "info: %d %s" % (rc, other))
        levels = {lvl for lvl, _ in logs}
        expect(levels == {"info"}, "levels at info: %s" % logs)
        expect(any(msg.startswith("reclaim: %s: removed (dry run): 2 unlinked" % name)
                   for _, msg in logs), "no line for the directory: %s" % logs)
        expect(any(msg.startswith("sweep: %s (dry run): 1 directory" % sb.tmp)
                   for _, msg in logs), "no line for the sweep: %s" % logs)
        rc, out, logs, other = run(sb, ["sweep", "--tmpdir", sb.tmp], "debug")
        expect(rc == 0, "debug: exit %d" % rc)
        unlinked = [m for lvl, m in logs if lvl == "debug" and ": unlinked (" in m]
        expect(len(unlinked) == 2, "one debug line per object: %s" % logs)
        expect(sb.objects() == [], "not reclaimed")


def test_one_line_per_failure_and_error_level():
    with Sandbox("logfail") as sb:
        bad = dead_manager(sb, 1)
        harness.corrupt_journal(bad)
        name = os.path.basename(bad)
        # Default level: the failure is said once on stderr (the report line), not
        # once more by the log.
        rc, out, logs, other = run(sb, ["sweep", "--tmpdir", sb.tmp])
        mentions = [l for l in other if name in l] + [m for _, m in logs if name in m]
        # A corrupt journal is a finding, not a failure of the sweep: exit 0.
        expect(rc == 0 and len(mentions) == 1 and "corrupt" in mentions[0],
               "failure said %d times: %s %s" % (len(mentions), logs, other))
        rc, out, logs, other = run(sb, ["recover", bad])
        mentions = [l for l in other if name in l] + [m for _, m in logs if name in m]
        expect(rc == 1 and len(mentions) == 1 and "left in place" in mentions[0],
               "recover: %s %s" % (logs, other))
        # error: warnings are not logged, the report still is.
        rc, out, logs, other = run(sb, ["sweep", "--tmpdir", sb.tmp], "error")
        expect(rc == 0 and logs == [] and any(name in l for l in other),
               "error level: %s %s" % (logs, other))


def test_bogus_level_is_a_clear_warning():
    with Sandbox("logbogus") as sb:
        dead_manager(sb, 1)
        rc, out, logs, other = run(sb, ["sweep", "--tmpdir", sb.tmp, "--dry-run"], "verbose")
        expect(rc == 0, "exit %d" % rc)
        expect(len(logs) == 1 and logs[0][0] == "warn" and "SHMWARDEN_LOG" in logs[0][1]
               and "verbose" in logs[0][1] and "using warn" in logs[0][1],
               "warning: %s" % logs)
        # A hostile value is escaped, not echoed to the terminal.
        rc, out, logs, other = run(sb, ["ls", "--tmpdir", sb.tmp], "\x1b[2J")
        expect(rc == 0 and len(logs) == 1 and "\x1b" not in logs[0][1], "escaped: %s" % logs)


def test_syslog_keeps_log_lines_off_stderr():
    with Sandbox("logsys") as sb:
        bad = dead_manager(sb, 1, "b")
        harness.corrupt_journal(bad)
        good = dead_manager(sb, 2, "g")
        rc, out, logs, other = run(sb, ["sweep", "--syslog", "--tmpdir", sb.tmp], "debug")
        expect(rc == 0 and logs == [], "log lines on stderr with --syslog: %s" % logs)
        # The report is not log: it stays where it was.
        expect("removed" in out and any(os.path.basename(bad) in l for l in other),
               "report lost: %r %s" % (out, other))
        expect(not os.path.exists(good), "not reclaimed with --syslog")
        again = dead_manager(sb, 1, "r")
        rc, out, logs, other = run(sb, ["recover", "--syslog", again], "debug")
        expect(rc == 0 and logs == [] and "removed" in out, "recover --syslog: %s %r" % (logs, out))
        rc, out, logs, other = run(sb, ["recover", "--syslog", os.path.join(sb.tmp, "nosuch")],
                                   "debug")
        expect(rc == 1 and logs == [] and other, "recover failure: %s %s" % (logs, other))


# <PRI>TIMESTAMP TAG[PID]: LEVEL: message, as glibc's syslog(3) sends it to /dev/log.
SYSLOG = re.compile(r"^<(\d+)>(\w{3} [ \d]\d \d\d:\d\d:\d\d) (\S+)\[(\d+)\]: (\S.*)$", re.S)
LOG_DAEMON = 3
SEVERITY = {"error": 3, "warn": 4, "info": 6, "debug": 7}


def syslog_helper(tmp, runs):
    """Inside `unshare --mount --propagation private` (root): /dev becomes a tmpfs of its
    own with the host's null, zero, urandom... and /dev/shm bound back in, and /dev/log a
    bind of a datagram socket this process listens on; then each of runs (argv, env) runs
    and what reached the socket is printed as JSON: [{"pid", "rc", "stderr", "lines"}]."""
    old = os.path.join(tmp, "olddev")
    os.mkdir(old, 0o700)
    sock_path = os.path.join(tmp, "log.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(sock_path)

    def sh(*argv):
        subprocess.run(list(argv), check=True)
    sh("mount", "--rbind", "/dev", old)
    sh("mount", "-t", "tmpfs", "-o", "mode=0755,size=1m", "tmpfs", "/dev")
    for n in ("null", "zero", "full", "random", "urandom"):
        if os.path.exists(os.path.join(old, n)):
            open(os.path.join("/dev", n), "w").close()
            sh("mount", "--bind", os.path.join(old, n), os.path.join("/dev", n))
    os.mkdir("/dev/shm")
    sh("mount", "--rbind", os.path.join(old, "shm"), "/dev/shm")
    os.symlink("/proc/self/fd", "/dev/fd")
    open("/dev/log", "w").close()
    sh("mount", "--bind", sock_path, "/dev/log")
    out = []
    for argv, env in runs:
        p = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, text=True)
        _, err = p.communicate(timeout=120)
        lines = []
        # Datagrams are queued by the time the sender exits; a short drain for the rest.
        while select.select([listener], [], [], 0.2)[0]:
            lines.append(listener.recv(65536).decode(errors="replace"))
        out.append({"pid": p.pid, "rc": p.returncode, "stderr": err, "lines": lines})
    print(json.dumps(out))


if __name__ == "__main__" and len(sys.argv) > 2 and sys.argv[1] == "--syslog-helper":
    syslog_helper(sys.argv[2], json.loads(sys.argv[3]))
    sys.exit(0)


def parse_syslog(run):
    """[(severity, message)] of one run's datagrams, each checked for the facility
    (daemon), the tag (shmwarden) and the pid (the command's)."""
    out = []
    for line in run["lines"]:
        m = SYSLOG.match(line)
        expect(m, "not a syslog(3) datagram: %r" % line)
        pri, _, tag, pid, msg = m.groups()
        expect(int(pri) >> 3 == LOG_DAEMON and tag == "shmwarden" and int(pid) == run["pid"],
               "facility/tag/pid of %r (pid %d)" % (line, run["pid"]))
        level = msg.split(":", 1)[0]
        expect(SEVERITY.get(level) == int(pri) & 7, "severity of %r" % line)
        out.append((level, msg.split(": ", 1)[1]))
    return out


def test_syslog_lines_reach_syslog():
    if os.geteuid() != 0 or not shutil.which("unshare"):
        print("# SKIP needs root and unshare(1) for a private /dev/log")
        return
    with Sandbox("logreal") as sb:
        bad = dead_manager(sb, 1, "b")
        harness.corrupt_journal(bad)
        good = dead_manager(sb, 2, "g")
        # Out of the sweep's way (a directory of the base, not a manager's), for recover.
        other = os.path.join(sb.tmp, "other")
        os.mkdir(other, 0o700)
        again = harness.dead_manager(sb, [sb.name("r0")], base=other)
        env = dict(sb.env, SHMWARDEN_LOG="info")
        sw = harness.SHMWARDEN
        forged = "\x1b[2Jx\nerror: forged"
        runs = [
            ([sw, "sweep", "--tmpdir", sb.tmp, "--dry-run"], env),  # no --syslog: nothing
            ([sw, "sweep", "--syslog", "--tmpdir", sb.tmp], env),
            ([sw, "recover", "--syslog", again], env),
            # Failures, with control bytes in the path: a missing parent (recover's own
            # error), a missing name (the engine's report of the directory).
            ([sw, "recover", "--syslog", os.path.join(sb.tmp, forged, "shmwarden-x")], env),
            ([sw, "recover", "--syslog", os.path.join(sb.tmp, "shmwarden-" + forged)], env),
        ]
        p = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable,
                            os.path.abspath(__file__), "--syslog-helper", sb.tmp,
                            json.dumps(runs)], capture_output=True, text=True, timeout=600)
        expect(p.returncode == 0, "helper exit %d:\n%s%s" % (p.returncode, p.stdout[-2000:],
                                                             p.stderr[-2000:]))
        plain, sweep, recover, *failed = json.loads(p.stdout.splitlines()[-1])
        expect(plain["rc"] == 0 and plain["lines"] == [] and "info: sweep:" in plain["stderr"],
               "without --syslog: %r" % plain)
        # The sweep: its info lines, the corrupt directory as a warning; none on stderr.
        lines = parse_syslog(sweep)
        expect(sweep["rc"] == 0 and "shmwarden[" not in sweep["stderr"],
               "sweep --syslog: %r" % sweep)
        expect(any(lvl == "info" and msg.startswith("sweep: %s: 2 directories" % sb.tmp)
                   for lvl, msg in lines), "no summary line: %s" % lines)
        expect(any(lvl == "warn" and os.path.basename(bad) in msg and "corrupt" in msg
                   for lvl, msg in lines), "no warning for the corrupt journal: %s" % lines)
        expect(any(lvl == "info" and os.path.basename(good) in msg and "removed" in msg
                   for lvl, msg in lines), "no line for the reclaimed one: %s" % lines)
        expect(not os.path.exists(good) and os.path.isdir(bad), "sweep did not act")
        lines = parse_syslog(recover)
        expect(recover["rc"] == 0 and not os.path.exists(again) and
               any(os.path.basename(again) in msg and "removed" in msg for _, msg in lines),
               "recover --syslog: %r" % recover)
        # Each failure reaches syslog (recover's own as an error), escaped, one line.
        for run_, level in zip(failed, ("error", "warn")):
            lines = parse_syslog(run_)
            expect(run_["rc"] == 1 and any(lvl == level and "no such directory" in msg
                                           for lvl, msg in lines),
                   "recover failure, %s: %r" % (level, run_))
            expect(all("\x1b" not in msg and "\n" not in msg and "x1b" in msg
                       for _, msg in lines if "forged" in msg),
                   "control bytes reached syslog raw: %r" % lines)


# A manager started as nobody whose stderr is root's pipe cannot reopen it non-blocking
# (EACCES): it says what that means for the user, not "stays blocking: Permission denied".
def test_a_manager_whose_stderr_is_another_users_says_so_plainly():
    if os.geteuid() != 0:
        print("SKIP test_a_manager_whose_stderr_is_another_users_says_so_plainly: needs root")
        return
    with Sandbox("logother", shared=True) as sb:
        p = sb.track(subprocess.Popen(
            [harness.SHMWARDEN, "manager", "--shutdown-timeout", "300"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
            user=65534, group=65534, extra_groups=[],
            env=dict(sb.env, SHMWARDEN_LOG="info")))
        sock = p.stdout.readline().decode().strip()
        expect(sock.startswith(sb.tmp), "manager as nobody: %r" % sock)
        expect(p.wait(20) == 0, "manager exit %s" % p.returncode)
        err = p.stderr.read().decode(errors="replace")
        expect("Permission denied" not in err and "stays blocking" not in err and
               "a log line may wait until standard error is read (it could not be reopened "
               "without blocking: it is another user's)" in err, "stderr: %r" % err)


# The sweep's sandbox line names each writable place once: the base swept, $TMPDIR's
# base and the metrics file's directory were all sb.tmp here, and were listed three times.
def test_the_sandbox_line_names_each_place_once():
    with Sandbox("logrw") as sb:
        rc, _, logs, other = run(sb, ["sweep", "--tmpdir", sb.tmp, "--metrics",
                                      os.path.join(sb.tmp, "sweep.prom")], level="info")
        expect(rc == 0, "sweep exit %d: %s %s" % (rc, logs, other))
        drop = [m for lvl, m in logs if "privileges dropped" in m]
        expect(len(drop) == 1, "no drop line: %s" % logs)
        if "files may change only under " not in drop[0]:
            print("SKIP test_the_sandbox_line_names_each_place_once: not confined here: %s"
                  % drop[0])
            return
        places = drop[0].split("files may change only under ", 1)[1].split(", ")
        expect(len(places) == len(set(places)) and places[0] == sb.tmp and
               "/dev/shm" in places and "/tmp" in places,
               "the writable places: %s" % places)


# A directory kept for names still in use reads "directory kept: 0 unlinked", not
# "kept: 0 unlinked", in the text report and in the log line.
def test_a_kept_directory_is_said_to_be_kept():
    with Sandbox("logkept") as sb:
        n = sb.name("held")
        d = harness.dead_manager(sb, [n])
        sb.hold_mapped(n)
        rc, out, logs, other = run(sb, ["recover", d], level="info")
        expect(rc == 0 and out.startswith("shmwarden recover: %s: directory kept: 0 unlinked"
                                          % d), "recover: %d %r" % (rc, out))
        name = os.path.basename(d)
        expect(any(m.startswith("reclaim: %s: directory kept: 0 unlinked" % name)
                   for _, m in logs), "log: %s" % logs)


def test_manager_lines():
    with Sandbox("logmgr") as sb:
        env = dict(sb.env, SHMWARDEN_LOG="debug")
        m = sb.spawn_manager(env=env)  # the drop-in, as PyTorch runs it
        c = m.client()
        c.register(sb.name(1))
        sb.create_object(sb.name(1))
        c.free(sb.name(1))
        os.unlink(harness.SHM + sb.name(1))
        # A valid name may hold a newline or an escape sequence: logged escaped, on one line.
        c.register(sb.name("\nx[1]: error: forged\x1b[2J"))
        bad = m.client()
        bad.send_raw(b"\x00" * 68)  # a record with an empty name: that connection closes
        expect(bad.closed_by_peer(), "garbage did not close the connection")
        c.close()
        bad.close()
        expect(m.wait(15) == 0, "manager exit")
        text = m.stderr_text()
        expect("\x1b" not in text and "forged" in text, "control bytes logged raw")
        lines = text.splitlines()
        parsed = [LINE.match(l) for l in lines]
        expect(lines and all(parsed), "malformed manager lines: %s" %
               [l for l, p in zip(lines, parsed) if not p])
        expect(all(p.group(1) == "torch_shm_manager" and int(p.group(2)) == m.pid
                   for p in parsed), "prog/pid: %s" % lines)
        # Levels, not wording (the messages are the manager's to tune): its start and end
        # are info, the bad client a warning, each registration a debug line.
        levels = [p.group(3) for p in parsed]
        expect(levels.count("info") >= 2, "start/end lines: %s" % lines)
        expect(levels.count("warn") == 1, "one warning, for the bad client: %s" % lines)
        expect(levels.count("debug") >= 2, "debug lines: %s" % lines)


harness.main(globals())
