"""test_pressure.py — the manager under a real host's pressure (issue 12).

Records that arrive with a client's hang-up, the common soft RLIMIT_NOFILE of 1024, a
stderr pipe nobody drains, a re-registered name and the prune's grace, a journal of
300,000 stale rows, many clients and the commit delay (issue 14), and odd inputs:
recover on a path whose parent is missing, a TMPDIR on a full filesystem (a tiny tmpfs in
a private mount namespace, root only), a TMPDIR holding a newline, a relative TMPDIR.

Figures (latencies, drain rate) are printed as "# ..." lines; they are wall-clock times
on whatever machine runs the suite, so the assertions hold them to libshm's own budget
(1 s for an OK), not to what a quiet machine does.
"""
import fcntl
import json
import os
import re
import resource
import secrets
import select
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import termios
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Client, Sandbox, journal_names, record, wait_for  # noqa: E402

PY = "/usr/bin/python3"
HERE = os.path.abspath(__file__)
FAST = ["--shutdown-timeout", "300"]
OK_BUDGET = 1.0  # libshm waits this long for an OK
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def skip(test, why):
    print("SKIP %s: %s" % (test, why))


def spawn(sb, args=(), preexec_fn=None, stderr=subprocess.PIPE, env=None):
    """`shmwarden manager ARGS` spawned as libshm does (the first stdout line read)."""
    proc = sb.track(subprocess.Popen(["shmwarden", "manager"] + list(args),
                                     executable=harness.SHMWARDEN, stdout=subprocess.PIPE,
                                     stderr=stderr, stdin=subprocess.DEVNULL, env=env or sb.env,
                                     preexec_fn=preexec_fn))
    line = proc.stdout.readline()
    m = harness.Manager(proc, line.decode(errors="replace").rstrip("\n"))
    expect(m.sock, "manager failed to start: %r" % m.line)
    return m


class GoodClient(threading.Thread):
    """A well-behaved libshm client on its own connection: registers a new name every
    `period` seconds and keeps the worst time from send to OK."""

    def __init__(self, sb, sock_path, period=0.02, tag="good"):
        super().__init__(daemon=True)
        self.sb, self.tag, self.period = sb, tag, period
        self.client = Client(sock_path)
        self.worst = 0.0
        self.count = 0
        self.error = None
        self.halt = threading.Event()

    def run(self):
        try:
            while not self.halt.is_set():
                t0 = time.monotonic()
                self.client.send_raw(record(self.sb.name("%s%d" % (self.tag, self.count))))
                self.client.recv_ok(OK_BUDGET * 5)
                took = time.monotonic() - t0
                self.worst = max(self.worst, took)
                self.count += 1
                self.halt.wait(self.period)
        except Exception as e:  # noqa: BLE001 — reported by stop()
            self.error = e

    def stop(self):
        """Stops, closes, and fails if any OK was late or missing."""
        self.halt.set()
        self.join(30)
        self.client.close()
        expect(self.error is None, "the good client failed: %r" % self.error)
        expect(self.count > 0, "the good client never registered")
        expect(self.worst < OK_BUDGET, "the good client waited %.3f s for an OK (budget %.1f s)"
               % (self.worst, OK_BUDGET))
        return self.worst


# ---- records that arrive with the hang-up ------------------------------------------------

def test_200_registrations_then_hangup_are_all_journaled():
    with Sandbox("hup") as sb:
        m = spawn(sb, FAST)
        keep = m.client()
        for round_ in range(3):
            names = [sb.name("r%d_%d" % (round_, i)) for i in range(200)]
            c = m.client()
            c.send_raw(b"".join(record(n) for n in names))
            c.close()  # at once: the OK of the first batch meets a closed socket (EPIPE)
            ok = wait_for(lambda: set(names) <= set(journal_names(m.dir)), 5)
            got = len(set(names) & set(journal_names(m.dir)))
            expect(ok, "round %d: %d of 200 registrations journaled" % (round_, got))
        expect(m.proc.poll() is None, "manager died")
        keep.close()
        expect(m.wait(10) == 0, "manager did not shut down cleanly")


def test_registration_then_200_frees_then_hangup_are_all_applied():
    with Sandbox("hupf") as sb:
        m = spawn(sb, FAST)
        keep = m.client()
        for round_ in range(3):
            names = [sb.name("f%d_%d" % (round_, i)) for i in range(200)]
            keep.send_raw(b"".join(record(n) for n in names))
            for _ in names:
                keep.recv_ok(5)
            extra = sb.name("x%d" % round_)
            c = m.client()
            # The objects were never created, so each free forgets its name.
            c.send_raw(record(extra) + b"".join(record(n, free=True) for n in names))
            c.close()
            ok = wait_for(lambda: not set(names) & set(journal_names(m.dir))
                          and extra in journal_names(m.dir), 5)
            left = len(set(names) & set(journal_names(m.dir)))
            expect(ok, "round %d: %d of 200 frees lost (registration journaled: %s)"
                   % (round_, left, extra in journal_names(m.dir)))
        keep.close()
        expect(m.wait(10) == 0, "manager did not shut down cleanly")


# ---- the default open-file limit -----------------------------------------------------------

def recv_ok_poll(s, timeout):
    """Like Client.recv_ok, with poll(): select() stops at descriptor 1024."""
    p = select.poll()
    p.register(s, select.POLLIN)
    got = b""
    deadline = time.monotonic() + timeout
    while len(got) < 2:
        left = deadline - time.monotonic()
        if left <= 0 or not p.poll(left * 1000):
            return False
        chunk = s.recv(2 - len(got))
        if not chunk:
            return False
        got += chunk
    expect(got == b"OK", "expected OK, got %r" % got)
    return True


def test_1300_clients_under_a_soft_limit_of_1024():
    n = 1300
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < n + 512:
        if os.geteuid() != 0:
            skip("test_1300_clients_under_a_soft_limit_of_1024",
                 "the hard RLIMIT_NOFILE %d is below %d and we are not root" % (hard, n + 512))
            return
        hard = n + 512
    # This process needs a descriptor per client; the manager gets the common default.
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    socks = []
    try:
        with Sandbox("nofile") as sb:
            m = spawn(sb, FAST, preexec_fn=lambda: resource.setrlimit(
                resource.RLIMIT_NOFILE, (1024, hard)))
            with open("/proc/%d/limits" % m.pid) as f:
                line = [x for x in f if x.startswith("Max open files")][0]
            print("# spawned with a soft RLIMIT_NOFILE of 1024, hard %d; the manager runs with %s"
                  % (hard, " ".join(line.split()[3:5])))
            good = GoodClient(sb, m.sock)
            good.start()
            worst = 0.0
            for i in range(n):
                t0 = time.monotonic()
                # libshm blocks in connect(); a full backlog says EAGAIN here
                s = connect_within(m.sock, OK_BUDGET)
                socks.append(s)
                s.sendall(record(sb.name(i)))
                expect(recv_ok_poll(s, OK_BUDGET - (time.monotonic() - t0)),
                       "client %d got no OK within %.1f s of connecting" % (i, OK_BUDGET))
                worst = max(worst, time.monotonic() - t0)
            gw = good.stop()
            print("# %d clients under a soft RLIMIT_NOFILE of 1024: worst connect-to-OK %.1f ms; "
                  "good client's worst OK %.1f ms over %d registrations (wall clock, loaded host)"
                  % (n, worst * 1000, gw * 1000, good.count))
            expect(m.proc.poll() is None, "manager died")
            for s in socks:
                s.close()
            socks = []
            expect(m.wait(30) == 0, "manager did not shut down cleanly")
    finally:
        for s in socks:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))


def connect_within(path, budget):
    """A connected socket, or a failure when a full listen backlog lasts over budget s
    (the manager stopped accepting)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
    t0 = time.monotonic()
    while True:
        try:
            s.connect(path)
            break
        except BlockingIOError:
            if time.monotonic() - t0 > budget:
                s.close()
                raise AssertionError("could not connect within %.1f s: the manager stopped "
                                     "accepting" % budget)
            time.sleep(0.001)
    s.setblocking(True)
    return s


# ---- a stderr nobody drains ----------------------------------------------------------------

def undrained_stderr(kind):
    """A manager whose stderr is a pipe, a stream socket (systemd hands services one to
    journald) or a terminal (output stopped by Ctrl-S) that nobody reads: a good client is served within libshm's budget while
    hundreds of warnings are provoked, the shared descriptor keeps its flags, and after
    the drain the log says how many lines were dropped."""
    if kind == "pipe":
        r, w = os.pipe()
        fcntl.fcntl(w, F_SETPIPE_SZ, 4096)  # one page: a few dozen lines fill it
    elif kind == "terminal":
        r, w = os.openpty()
        termios.tcflow(w, termios.TCOOFF)  # output suspended, as by Ctrl-S
    else:
        rs, ws = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        ws.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # a few dozen lines
        r, w = rs.detach(), ws.detach()
    try:
        with Sandbox("stderr") as sb:
            env = dict(sb.env, SHMWARDEN_LOG="warn")
            m = spawn(sb, FAST, stderr=w, env=env)
            good = GoodClient(sb, m.sock)
            good.start()
            provoked = 0
            t0 = time.monotonic()
            while provoked < 600:  # each: "disconnected in the middle of a record"
                s = connect_within(m.sock, OK_BUDGET)
                s.sendall(record(sb.name("half%d" % provoked))[:40])
                s.close()
                provoked += 1
                if provoked % 50 == 0:
                    time.sleep(0.05)
            # Hold stderr full a while longer: the manager must keep serving.
            time.sleep(1.0)
            expect(m.proc.poll() is None, "manager died")
            gw = good.stop()
            print("# undrained stderr (%s), %d warnings provoked in %.1f s: the good "
                  "client's worst OK %.1f ms over %d registrations (wall clock, loaded host)"
                  % (kind, provoked, time.monotonic() - t0, gw * 1000, good.count))
            # The manager never changed the open file description it shares with us.
            expect(not fcntl.fcntl(w, fcntl.F_GETFL) & os.O_NONBLOCK,
                   "the manager set O_NONBLOCK on the stderr it shares with its parent")
            # Drain: the manager says how many lines it dropped.
            if kind == "terminal":
                termios.tcflow(w, termios.TCOON)
            fcntl.fcntl(r, fcntl.F_SETFL, fcntl.fcntl(r, fcntl.F_GETFL) | os.O_NONBLOCK)
            text = b""
            deadline = time.monotonic() + 10
            poke = m.client()
            while b"dropped" not in text and time.monotonic() < deadline:
                try:
                    text += os.read(r, 65536)
                except BlockingIOError:
                    poke.register(sb.name("poke%d" % len(text)))  # a wake-up
                    time.sleep(0.05)
            poke.close()
            log = text.decode(errors="replace")
            expect("dropped" in log, "no 'dropped' notice after the drain: %r" % log[-600:])
            print("# " + [x for x in log.splitlines() if "dropped" in x][0])
            expect(m.wait(10) == 0, "manager did not shut down cleanly")
    finally:
        os.close(w)
        os.close(r)


def test_undrained_stderr_pipe_never_blocks_the_manager():
    undrained_stderr("pipe")


def test_undrained_stderr_socket_never_blocks_the_manager():
    undrained_stderr("socket")


def test_stopped_terminal_never_blocks_the_manager():
    undrained_stderr("terminal")


def test_emfile_pause_warning_is_rate_limited():
    limit = 64
    with Sandbox("emrate") as sb:
        errlog = os.path.join(sb.tmp, "manager.err")
        with open(errlog, "wb") as err:
            m = spawn(sb, ["--no-reclaim"] + FAST, stderr=err,
                      preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit)))
        clients = []
        try:
            for i in range(limit + 40):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
                try:
                    s.connect(m.sock)
                except BlockingIOError:
                    s.close()
                    continue
                clients.append(s)
            time.sleep(3.0)  # saturated: the accept pause repeats ten times a second
            with open(errlog) as f:
                lines = [x for x in f if "pausing new connections" in x]
            print("# 3 s at EMFILE: %d 'pausing' lines" % len(lines))
            expect(1 <= len(lines) <= 3, "%d 'pausing new connections' lines in 3 s" % len(lines))
        finally:
            for s in clients:
                s.close()
        expect(m.wait(20) == 0, "manager did not shut down cleanly")


# ---- a re-registered name restarts the grace -------------------------------------------------

def test_reregistration_restarts_the_grace():
    with Sandbox("regrace") as sb:
        m = spawn(sb, ["--prune-interval", "50", "--prune-grace", "2"] + FAST)
        c = m.client()
        name = sb.name("again")
        c.register(name)
        sb.create_object(name)
        time.sleep(2.5)  # older than the grace, kept by every prune: its object exists
        # Its object is removed without a free, and the name registered again at once:
        # the client is about to create it.
        os.unlink(harness.SHM + name)
        c.register(name)
        time.sleep(0.6)  # a dozen prune ticks
        sb.create_object(name)
        expect(name in journal_names(m.dir), "the re-registered name was pruned within its grace")
        os.kill(m.pid, signal.SIGKILL)
        m.wait()
        c.close()
        p = sb.run(["recover", m.dir])
        expect(p.returncode == 0, "recover: %s%s" % (p.stdout, p.stderr))
        expect(sb.objects() == [], "leaked after SIGKILL: %s" % sb.objects())


# ---- the prune keeps up ------------------------------------------------------------------------

STALE_ROWS = 300_000


def fill_stale(mgr_dir, prefix, n, age_s=3600):
    """Adds n rows to a live manager's journal as schema/journal.sql defines them (name
    blob, client_pid, registered_at), aged past any grace, objects never created."""
    con = sqlite3.connect(os.path.join(mgr_dir, "journal.db"), timeout=30)
    try:
        then = int(time.time()) - age_s
        with con:
            con.executemany("INSERT INTO objects(name, client_pid, registered_at) VALUES (?, ?, ?)",
                            ((("%sst%d" % (prefix, i)).encode(), 1, then) for i in range(n)))
    finally:
        con.close()


def cpu_seconds(pid):
    """utime + stime of a process, from /proc/PID/stat: a figure load does not inflate."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def journal_count(mgr_dir):
    con = sqlite3.connect("file:%s?mode=ro" % os.path.join(mgr_dir, "journal.db"), uri=True,
                          timeout=10)
    try:
        return con.execute("select count(*) from objects").fetchone()[0]
    finally:
        con.close()


def test_prune_drains_300000_stale_rows_within_its_bound():
    # The bound: an idle manager runs its prune slices back to back (src/manager.c,
    # manager_on_prune_timer); 10,000 rows/s leaves room for a loaded host, half that
    # for a sanitizer build.
    bound_rows_per_s = 5000 if harness.SANITIZED else 10000
    bound_s = STALE_ROWS / bound_rows_per_s
    with Sandbox("prune") as sb:
        m = spawn(sb, ["--no-reclaim"] + FAST)
        keep = m.client()
        keep.register(sb.name("first"))
        fill_stale(m.dir, sb.prefix, STALE_ROWS)
        t0, cpu0 = time.monotonic(), cpu_seconds(m.pid)
        good = GoodClient(sb, m.sock, period=0.02)
        good.start()
        left = STALE_ROWS
        while time.monotonic() - t0 < bound_s + 5:
            left = journal_count(m.dir) - 1 - good.count
            if left <= 0:
                break
            time.sleep(0.5)
        took, cpu = time.monotonic() - t0, cpu_seconds(m.pid) - cpu0
        gw = good.stop()
        drained = STALE_ROWS - max(left, 0)
        print("# the manager used %.2f s of CPU for it (%.0f rows per CPU second, the good "
              "client's registrations included)" % (cpu, drained / max(cpu, 0.01)))
        print("# %d of %d stale rows drained in %.1f s (%.0f rows/s; bound %.0f s): the good "
              "client's worst OK %.1f ms over %d registrations (wall clock, loaded host)"
              % (drained, STALE_ROWS, took, drained / took, bound_s, gw * 1000, good.count))
        expect(left <= 0, "%d of %d stale rows left after %.0f s" % (left, STALE_ROWS, took))
        expect(took <= bound_s, "drained in %.1f s, over the bound of %.0f s" % (took, bound_s))
        keep.close()
        expect(m.wait(30) == 0, "manager did not shut down cleanly")


def test_prune_keeps_up_with_a_registration_stream():
    # Names registered as fast as one pipelined client can, never created (stale once
    # past the grace): the stale rows stay under the bound src/manager.c states,
    # L + 2 R (grace + interval) with L = 0, whatever rate R this host reaches.
    grace_s, interval_s, seconds = 1, 1.0, 8
    with Sandbox("stream") as sb:
        m = spawn(sb, ["--no-reclaim", "--prune-grace", str(grace_s)] + FAST)
        c = m.client()
        sent, worst_rows, t0 = 0, 0, time.monotonic()
        while time.monotonic() - t0 < seconds:
            c.send_raw(b"".join(record(sb.name("s%d" % (sent + i))) for i in range(64)))
            for _ in range(64):
                c.recv_ok(OK_BUDGET)
            sent += 64
            if sent % 4096 == 0 and time.monotonic() - t0 > grace_s + interval_s:
                worst_rows = max(worst_rows, journal_count(m.dir))
        took = time.monotonic() - t0
        rate = sent / took
        bound = 2 * rate * (grace_s + interval_s)
        print("# %d registrations in %.1f s (%.0f a second, never created): at most %d rows "
              "journaled, bound %.0f (wall clock, loaded host)"
              % (sent, took, rate, worst_rows, bound))
        expect(worst_rows <= bound, "%d rows journaled, over the bound of %.0f"
               % (worst_rows, bound))
        c.close()
        expect(m.wait(30) == 0, "manager did not shut down cleanly")


def test_prune_paces_a_large_live_set_while_busy():
    # Issue 14: a busy manager with a large live set of young names (DataLoader batches,
    # the bench's 8 x 5,000) looked at every row once per --prune-interval, which made
    # the prune half of the manager's instructions. It now spreads a pass over
    # (grace + interval) / 4, so in a busy window much shorter than that it looks at each
    # row at most about once. Read from the manager's own count, logged at exit.
    live, grace_s, busy_s = 160 * 64, 120, 4.0
    with Sandbox("pace") as sb:
        errlog = os.path.join(sb.tmp, "manager.log")
        with open(errlog, "wb") as err:
            m = spawn(sb, ["--no-reclaim", "--prune-grace", str(grace_s)] + FAST, stderr=err,
                      env=dict(sb.env, SHMWARDEN_LOG="info"))
        c = m.client()
        t0 = time.monotonic()
        for base in range(0, live, 64):  # never created: young rows the prune must check
            c.send_raw(b"".join(record(sb.name("l%d" % (base + i))) for i in range(64)))
            for _ in range(64):
                c.recv_ok(OK_BUDGET * 5)
        regs, t1 = live, time.monotonic()
        while time.monotonic() - t1 < busy_s:  # busy: a pair every 2 ms or so
            name = sb.name("p%d" % regs)
            c.register(name, OK_BUDGET * 5)
            c.free(name)
            regs += 1
            time.sleep(0.002)
        # The live names freed too, so that the shutdown has nothing to reclaim, and one
        # more registration whose OK proves every free was read; then stop it while
        # busy: the idle drain is not what is measured.
        for base in range(0, live, 64):
            c.send_raw(b"".join(record(sb.name("l%d" % (base + i)), free=True)
                                for i in range(64)))
        c.register(sb.name("last"), OK_BUDGET * 5)
        took = time.monotonic() - t0
        os.kill(m.pid, signal.SIGTERM)
        expect(m.wait(60) == 0, "manager did not shut down cleanly")
        c.close()
        with open(errlog, errors="replace") as f:
            log = f.read()
    found = re.search(r"\((\d+) rows checked by the prune\)", log)
    expect(found, "no exit line with the prune's count: %r" % log[-2000:])
    checked = int(found.group(1))
    print("# %d registrations in %.1f s beside %d live names: the prune looked at %d rows "
          "(%.2f a registration; it looked at the whole table once a second before)"
          % (regs, took, live, checked, checked / regs))
    # One pass looks at each row once; allow two (a stall of the client on a loaded host
    # makes a slice idle, and an idle slice runs at full speed).
    expect(checked <= 2 * regs, "the prune looked at %d rows for %d registrations in %.1f s: "
           "more than two passes" % (checked, regs, took))


# ---- many clients: the commit delay ----------------------------------------------------------

def delay_manager(sb, args):
    errlog = os.path.join(sb.tmp, "manager-%s.log" % secrets.token_hex(4))
    with open(errlog, "wb") as err:
        m = spawn(sb, ["--no-reclaim"] + args + FAST, stderr=err,
                  env=dict(sb.env, SHMWARDEN_LOG="info"))
    return m, errlog


def delay_counts(m, errlog):
    """Stops the manager; (registered, commits, delayed) from its exit line."""
    os.kill(m.pid, signal.SIGTERM)
    expect(m.wait(60) == 0, "manager did not shut down cleanly")
    with open(errlog, errors="replace") as f:
        log = f.read()
    found = re.search(r"exiting: (\d+) registered .* (\d+) commits of registrations \((\d+) "
                      r"of them delayed to gather more\)", log)
    expect(found, "no exit line with the commits' count: %r" % log[-2000:])
    return tuple(int(x) for x in found.groups())


def delay_rounds(sb, m, clients, rounds, pause, tag):
    """Each round, every client sends one registration, all back to back, then every OK
    is read; then a pause. Every name told OK must be journaled; all are freed after."""
    names = []
    for r in range(rounds):
        batch = [sb.name("%s%d-%d" % (tag, r, i)) for i in range(len(clients))]
        for c, name in zip(clients, batch):
            c.send_raw(record(name))
        for c in clients:
            c.recv_ok(OK_BUDGET)
        names += batch
        time.sleep(pause)
    expect(set(names) <= set(journal_names(m.dir)), "a name told OK is not journaled")
    for c, name in zip(clients * rounds, names):
        c.free(name)


def delay_run(sb, args, nclients, rounds):
    m, errlog = delay_manager(sb, args)
    clients = [m.client() for _ in range(nclients)]
    delay_rounds(sb, m, clients, rounds, 0.03, "d")
    clients[0].register(sb.name("last"), OK_BUDGET)  # every free read
    clients[0].free(sb.name("last"))
    for c in clients:
        c.close()
    return delay_counts(m, errlog)


def test_commit_delay_gathers_the_registrations_of_many_clients():
    # Issue 14: a manager facing 256 clients committed about one registration at a
    # time, whatever the clients' speed: its CPU per pair was a SQLite commit. A commit
    # now waits --commit-delay while, in the last 100 to 200 ms, registrations came from
    # at least --commit-siblings connections, all but the busiest's at one per delay or
    # faster, and none more often than once per ten delays. Scaled here so that Python
    # clients meet it: a 2 ms delay wants 50 registrations a window from the others and
    # at most 5 from any one; 64 clients send a round every 30 ms or so. Counted by the
    # manager itself (its exit line).
    rounds, n, delay = 8, 64, ["--commit-delay", "2000", "--commit-siblings", "4"]
    with Sandbox("delay") as sb:
        regs, commits, delayed = delay_run(sb, delay, n, rounds)
        print("# %d clients x %d rounds: %d registrations in %d commits, %d delayed"
              % (n, rounds, regs, commits, delayed))
        expect(regs == n * rounds + 1, "registered %d" % regs)
        # A round that begins within the window after the last gathers its clients in a
        # commit or two (a host that stalls the test between two rounds for 100 ms loses
        # that round's delay, not more).
        expect(delayed >= 1, "no commit was delayed")
        expect(commits <= regs // 4, "%d commits for %d registrations: the delay gathered "
               "little" % (commits, regs))
        # The rule's other halves: no delay asked for; fewer connections than the
        # siblings asked for; the default for a few clients (a DataLoader worker's
        # manager); each never delays.
        for args, k in ((["--commit-delay", "0", "--commit-siblings", "4"], n),
                        (delay, 3), ([], 2)):
            regs, commits, delayed = delay_run(sb, args, k, 3)
            expect(delayed == 0, "%s with %d clients: %d of %d commits delayed"
                   % (args, k, delayed, commits))
            expect(regs == k * 3 + 1, "registered %d" % regs)


def test_commit_delay_never_slows_a_busy_client_beside_slow_ones():
    # Found by a new user's trial: one client registering as fast as it is answered,
    # beside 16 to 20 that register once every 50 ms, had every commit delayed by 100 us
    # for nothing (it waits for its own OK, the others seldom come): its rate halved. The
    # rule counts the busiest connection apart now: it must register at most once per
    # ten delays. Here 64 slow connections (a round every 30 ms, enough for the rest of
    # the rule) beside one that registers back to back for a second.
    delay = ["--commit-delay", "2000", "--commit-siblings", "4"]
    with Sandbox("delay") as sb:
        m, errlog = delay_manager(sb, delay)
        busy, slow = m.client(), [m.client() for _ in range(64)]
        stop = threading.Event()
        failed = []

        def slow_rounds():
            try:
                while not stop.is_set():
                    delay_rounds(sb, m, slow, 1, 0.03, "s%d-" % time.monotonic_ns())
            except Exception as e:  # noqa: BLE001 - reported by the main thread
                failed.append(e)

        t0, n = time.monotonic(), 0
        while time.monotonic() - t0 < 0.2:  # the busy one first: its count leads
            busy.register(sb.name("b%d" % n), OK_BUDGET)
            busy.free(sb.name("b%d" % n))
            n += 1
        th = threading.Thread(target=slow_rounds)
        th.start()
        try:
            while time.monotonic() - t0 < 1.2:
                busy.register(sb.name("b%d" % n), OK_BUDGET)
                busy.free(sb.name("b%d" % n))
                n += 1
        finally:
            stop.set()
            th.join()
        expect(not failed, "slow clients: %r" % failed)
        busy.register(sb.name("last"), OK_BUDGET)
        busy.free(sb.name("last"))
        for c in [busy] + slow:
            c.close()
        regs, commits, delayed = delay_counts(m, errlog)
        print("# a busy client (%d registrations) beside 64 slow ones: %d registrations in "
              "%d commits, %d delayed" % (n, regs, commits, delayed))
        expect(delayed == 0, "%d of %d commits delayed beside a busy client"
               % (delayed, commits))


# ---- odd inputs, unclear words -----------------------------------------------------------------

def test_recover_json_with_a_missing_parent_prints_json():
    with Sandbox("rjson") as sb:
        missing = os.path.join(sb.tmp, "gone", "shmwarden-abcdef")
        p = sb.run(["recover", "--json", missing])
        expect(p.returncode == 1, "exit %d" % p.returncode)
        doc = json.loads(p.stdout)
        expect(doc["status"] == "error" and doc["dir"] == missing, doc)
        expect("no such" in doc["detail"].lower(), doc)
        p = sb.run(["recover", missing])
        expect(p.returncode == 1 and "no such" in p.stderr.lower(), p.stderr)


def test_recover_of_a_missing_path_says_it_is_missing():
    with Sandbox("rmiss") as sb:
        for path in (os.path.join(sb.tmp, "nothing-here"), os.path.join(sb.tmp, "shmwarden-abcdef")):
            p = sb.run(["recover", path])
            expect(p.returncode == 1, "exit %d" % p.returncode)
            expect("no such" in p.stderr.lower() and "not a manager directory" not in p.stderr,
                   p.stderr)
            p = sb.run(["recover", "--json", path])
            doc = json.loads(p.stdout)
            expect("no such" in doc["detail"].lower(), doc)
        # An existing directory with another name is still "not a manager directory".
        other = os.path.join(sb.tmp, "other")
        os.mkdir(other)
        p = sb.run(["recover", other])
        expect(p.returncode == 1 and "not a manager directory" in p.stderr, p.stderr)


def test_ls_and_sweep_json_on_a_missing_temp_base_print_json():
    with Sandbox("bjson") as sb:
        missing = os.path.join(sb.tmp, "gone")
        for cmd, key in (("ls", "managers"), ("sweep", "dirs")):
            p = sb.run([cmd, "--json", "--tmpdir", missing])
            expect(p.returncode == 1, "%s: exit %d" % (cmd, p.returncode))
            doc = json.loads(p.stdout)
            expect(doc["base"] == missing and doc[key] == [], "%s: %r" % (cmd, doc))
            expect("No such file" in doc["error"] and "TMPDIR" in doc["error"],
                   "%s: %r" % (cmd, doc))
            expect("--tmpdir" in p.stderr, "%s stderr: %r" % (cmd, p.stderr))


def test_tmpdir_with_a_newline_is_a_clear_error():
    with Sandbox("nl") as sb:
        odd = os.path.join(sb.tmp, "a\nb")
        os.mkdir(odd)
        m = sb.spawn_manager(env=dict(sb.env, TMPDIR=odd))
        expect(m.line.startswith("ERROR: ") and "newline" in m.line, repr(m.line))
        expect(m.wait(10) == 1, "exit status")
        expect(os.listdir(odd) == [], "left in the directory: %s" % os.listdir(odd))


def test_relative_tmpdir_gives_an_absolute_socket_path():
    with Sandbox("rel") as sb:
        os.mkdir(os.path.join(sb.tmp, "rel"))
        proc = subprocess.Popen(["torch_shm_manager"], executable=harness.TORCH_SHM_MANAGER,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, env=dict(sb.env, TMPDIR="rel"),
                                cwd=sb.tmp)
        sb.track(proc)
        line = proc.stdout.readline().decode().rstrip("\n")
        expect(line.startswith(os.path.join(sb.tmp, "rel") + "/shmwarden-"), repr(line))
        # A client elsewhere (another working directory) can use it.
        c = Client(line)
        c.register(sb.name("r"))
        c.close()
        expect(proc.wait(10) == 0, "manager did not shut down cleanly")


def full_tmpdir_in_namespace(base):
    """Runs inside `unshare --mount`: a tmpfs at BASE/fs, filled, is the TMPDIR."""
    fs = os.path.join(base, "fs")
    os.mkdir(fs, 0o700)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", fs], check=True)
    try:
        fd = os.open(os.path.join(fs, "filler"), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, bytes(4096))
        except OSError:
            pass
        os.close(fd)
        p = subprocess.run(["torch_shm_manager"], executable=harness.TORCH_SHM_MANAGER,
                           capture_output=True, text=True, timeout=30,
                           env=dict(os.environ, TMPDIR=fs), stdin=subprocess.DEVNULL)
        line = p.stdout.splitlines()[0] if p.stdout else ""
        print("LINE %s" % line)
        expect(p.returncode == 1, "exit %d" % p.returncode)
        expect(line.startswith("ERROR: "), repr(line))
        expect("full" in line and "TMPDIR" in line, repr(line))
        expect(sorted(os.listdir(fs)) == ["filler"], "left: %s" % os.listdir(fs))
    finally:
        subprocess.run(["umount", "-l", fs], capture_output=True)


def test_full_tmpdir_is_a_clear_error():
    if os.geteuid() != 0 or not shutil.which("unshare"):
        skip("test_full_tmpdir_is_a_clear_error", "needs root and unshare")
        return
    with Sandbox("full") as sb:
        p = subprocess.run(["unshare", "--mount", "--propagation", "private",
                            PY, HERE, "--full-helper", sb.tmp],
                           capture_output=True, text=True, timeout=60, env=sb.env)
        for line in p.stdout.splitlines():
            if line.startswith("LINE "):
                print("# manager on a full TMPDIR: %s" % line[5:])
        expect(p.returncode == 0, "helper exit %d:\n%s%s" % (p.returncode, p.stdout[-1500:],
                                                               p.stderr[-1500:]))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--full-helper":
        full_tmpdir_in_namespace(sys.argv[2])
        sys.exit(0)
    harness.main(globals())
