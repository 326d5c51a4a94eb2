"""test_manager.py — the manager daemon through its socket, as libshm clients use it."""
import errno
import os
import signal
import socket
import stat
import subprocess
import time

import harness
from harness import Sandbox, journal_names, record, wait_for

FAST = ["--shutdown-timeout", "300"]


def test_spawn_prints_socket_path_in_private_dir():
    with Sandbox() as sb:
        m = sb.spawn_manager()
        assert m.sock and m.sock.startswith(sb.tmp + "/shmwarden-"), m.line
        assert m.sock.endswith("/manager.sock")
        st = os.stat(m.dir)
        assert stat.S_IMODE(st.st_mode) == 0o700, oct(st.st_mode)
        assert stat.S_IMODE(os.stat(m.sock).st_mode) == 0o600
        assert stat.S_ISSOCK(os.stat(m.sock).st_mode)
        for f in ("lock", "journal.db"):
            assert os.path.exists(os.path.join(m.dir, f)), f
            assert stat.S_IMODE(os.stat(os.path.join(m.dir, f)).st_mode) & 0o077 == 0, f
        # setsid(), like the reference: the tree's signals do not reach it.
        assert os.getsid(m.pid) == m.pid
        # No client ever connects: it shuts down after 2 s and removes its directory.
        t0 = time.monotonic()
        assert m.wait(10) == 0
        assert 1.5 < time.monotonic() - t0 < 6
        assert sb.manager_dirs() == []


def test_register_create_free_then_shutdown_unlinks_the_rest():
    with Sandbox() as sb:
        m = sb.spawn_manager(["manager"] + FAST)
        c = m.client()
        names = [sb.name(i) for i in range(20)]
        for n in names:
            c.register(n)
            sb.create_object(n)
        assert journal_names(m.dir) == sorted(names)
        # A client frees after its own close unlinked the object: the name goes.
        for n in names[:5]:
            os.unlink(harness.SHM + n)
            c.free(n)
        # A free of an object that still exists keeps the name (another process may
        # still use it), like the reference.
        c.free(names[5])
        assert wait_for(lambda: journal_names(m.dir) == sorted(names[5:]), 3), journal_names(m.dir)
        c.close()
        assert m.wait(10) == 0
        assert sb.objects() == [], sb.objects()
        assert sb.manager_dirs() == []


def test_ok_only_after_commit_and_rows_survive_sigkill():
    with Sandbox() as sb:
        m = sb.spawn_manager(["manager"] + FAST)
        c = m.client()
        names = [sb.name(i) for i in range(50)]
        for n in names:
            c.register(n)
            # Write-ahead: the moment OK arrives, an independent reader sees the row.
            assert n in journal_names(m.dir), n
        m.proc.kill()
        m.wait()
        assert journal_names(m.dir) == sorted(names)
        c.close()


def test_group_commit_of_pipelined_registrations():
    with Sandbox() as sb:
        m = sb.spawn_manager(["manager"] + FAST)
        c = m.client()
        names = [sb.name(i) for i in range(500)]
        c.send_raw(b"".join(record(n) for n in names))
        got = b""
        c.sock.settimeout(5)
        while len(got) < 1000:
            chunk = c.sock.recv(4096)
            assert chunk, "connection closed"
            got += chunk
        assert got == b"OK" * 500
        assert journal_names(m.dir) == sorted(names)
        c.close()


def test_stalled_half_message_delays_nobody():
    with Sandbox() as sb:
        m = sb.spawn_manager(["manager"] + FAST)
        staller = m.client()
        rec = record(sb.name("slow"))
        staller.send_raw(rec[:30])
        good = m.client()
        t0 = time.monotonic()
        for i in range(200):
            good.register(sb.name(i), timeout=1.0)
        assert time.monotonic() - t0 < 5
        time.sleep(1.2)  # the reference aborts when a partial record waits a second
        assert m.proc.poll() is None
        staller.send_raw(rec[30:])
        staller.recv_ok(1.0)
        assert sb.name("slow") in journal_names(m.dir)
        staller.close()
        good.close()
        assert m.wait(10) == 0


def test_garbage_closes_only_that_connection():
    bad_records = [
        b"\xff" * 68,                                   # no NUL in the name field
        record("noslash"),                              # does not start with '/'
        record("/a/b"),                                 # second slash
        record("/.."),
        record("/."),
        record("/"),                                    # empty after the slash
        record(b"/" + b"x" * 59),                       # no room for the NUL
    ]
    with Sandbox() as sb:
        m = sb.spawn_manager(["manager"] + FAST)
        good = m.client()
        for i, bad in enumerate(bad_records):
            c = m.client()
            c.send_raw(bad)
            assert c.closed_by_peer(3), "record %d was not rejected" % i
            c.close()
            good.register(sb.name(i))
        names = journal_names(m.dir)
        assert names == sorted(sb.name(i) for i in range(len(bad_records))), names
        good.close()
        assert m.wait(10) == 0
        err = m.stderr_text()
        assert err.count("closing the connection") >= len(bad_records), err


def test_flood_of_garbage_then_good_client():
    with Sandbox() as sb:
        m = sb.spawn_manager(["manager"] + FAST)
        c = m.client()
        try:
            c.send_raw(os.urandom(1 << 20))
        except (BrokenPipeError, ConnectionResetError):
            pass
        c.close()
        good = m.client()
        good.register(sb.name(1))
        good.close()
        assert m.wait(10) == 0


def test_disconnect_mid_record_and_record_with_hangup():
    with Sandbox() as sb:
        m = sb.spawn_manager(["manager"] + FAST)
        keep = m.client()
        c = m.client()
        c.send_raw(record(sb.name("half"))[:40])
        c.close()
        # A record that arrives together with the hang-up is still processed
        # (the reference checks POLLHUP first and loses it).
        sb.create_object(sb.name("last"))
        c = m.client()
        c.send_raw(record(sb.name("last")))
        c.close()
        assert wait_for(lambda: sb.name("last") in journal_names(m.dir), 3)
        assert sb.name("half") not in journal_names(m.dir)
        keep.close()
        assert m.wait(10) == 0
        assert sb.objects() == []
        assert "middle of a record" in m.stderr_text()


def test_many_frees_back_to_back_get_no_answer():
    with Sandbox() as sb:
        m = sb.spawn_manager(["manager"] + FAST)
        c = m.client()
        c.register(sb.name("x"))
        c.send_raw(b"".join(record(sb.name(i), free=True) for i in range(2000)))
        c.register(sb.name("y"))  # the next bytes are exactly this OK
        c.sock.settimeout(0.3)
        try:
            extra = c.sock.recv(10)
        except socket.timeout:
            extra = b""
        assert extra == b"", extra
        c.close()


def test_sigterm_shuts_down_cleanly():
    with Sandbox() as sb:
        m = sb.spawn_manager(["manager"] + FAST)
        c = m.client()
        for i in range(5):
            c.register(sb.name(i))
            sb.create_object(sb.name(i))
        m.proc.send_signal(signal.SIGTERM)
        assert m.wait(10) == 0
        assert sb.objects() == []
        assert sb.manager_dirs() == []
        c.close()


def test_client_gone_before_its_ok_does_not_kill_manager():
    with Sandbox() as sb:
        m = sb.spawn_manager(["manager"] + FAST)
        for i in range(50):
            c = m.client()
            c.send_raw(record(sb.name(i)))
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            c.close()  # RST: the manager's OK hits a dead socket (SIGPIPE/EPIPE)
        c = m.client()
        c.register(sb.name("alive"))
        c.close()
        assert m.wait(10) == 0


def test_long_tmpdir_is_a_clear_error():
    with Sandbox() as sb:
        deep = os.path.join(sb.tmp, "d" * 100)
        os.mkdir(deep)
        m = sb.spawn_manager(env=dict(sb.env, TMPDIR=deep))
        assert m.line.startswith("ERROR: "), m.line
        assert "set TMPDIR to a shorter directory" in m.line, m.line
        assert m.wait(10) == 1
        assert os.listdir(deep) == []


def test_missing_tmpdir_is_a_clear_error():
    with Sandbox() as sb:
        m = sb.spawn_manager(env=dict(sb.env, TMPDIR=os.path.join(sb.tmp, "nope")))
        assert m.line.startswith("ERROR: "), m.line
        assert "nope" in m.line
        assert m.wait(10) == 1



FAULT_EPOLL_CTL = os.path.join(harness.BUILD, "tools", "fault_epoll_ctl.so")


def test_cannot_serve_is_a_failure():
    """epoll_ctl of the listening socket fails (ENOSPC, max_user_watches used up: a real
    fault, tests/tools/preload/fault_epoll_ctl.c) as the manager begins to serve, after
    its socket line: it said "cannot serve" and stopped, but exited 0, as if it had shut
    down idle; with --no-reclaim, which begins to serve before its event loop runs, the
    loop forgot that stop and the manager hung for ever, serving nobody. Both exit 1 (its
    event loop failed), say why on stderr, and leave no directory behind: nothing was
    registered."""
    assert os.path.exists(FAULT_EPOLL_CTL), "%s is missing: run make check" % FAULT_EPOLL_CTL
    with Sandbox("noserve") as sb:
        env = dict(sb.env, LD_PRELOAD=FAULT_EPOLL_CTL)
        if harness.SANITIZED:
            env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"),
                                                         "verify_asan_link_order=0"]))
        for args in (["manager"] + FAST, ["manager", "--no-reclaim"] + FAST):
            m = sb.spawn_manager(args, env=env)
            assert m.sock and m.sock.startswith(sb.tmp), m.line
            rc = m.wait(10)
            err = m.stderr_text()
            assert rc == 1, "%s: exit %d: %s" % (args, rc, err)
            want = "shmwarden[%d]: error: manager: epoll_ctl: %s: cannot serve" % (
                m.pid, os.strerror(errno.ENOSPC))
            assert want in err, "%s: %r" % (args, err)
            assert sb.manager_dirs() == [], sb.manager_dirs()

def test_tmpdir_through_a_symlink_works():
    # SQLite refuses a symlink anywhere in a journal's path; the manager must open its
    # journal by the resolved name and still print the path clients know.
    with Sandbox() as sb:
        real = os.path.join(sb.tmp, "real")
        link = os.path.join(sb.tmp, "link")
        os.mkdir(real)
        os.symlink(real, link)
        m = sb.spawn_manager(env=dict(sb.env, TMPDIR=link))
        assert m.sock and m.sock.startswith(link + "/shmwarden-"), m.line
        c = m.client()
        c.register(sb.name(1))
        sb.create_object(sb.name(1))
        assert journal_names(m.dir) == [sb.name(1)]
        r = sb.run(["ls", "--tmpdir", link, "--json"])
        assert r.returncode == 0 and '"objects":1' in r.stdout, r.stdout + r.stderr
        c.close()
        assert m.wait(10) == 0
        assert sb.objects() == [] and os.listdir(real) == []


def test_inherited_descriptors_are_closed():
    with Sandbox() as sb:
        r, w = os.pipe()
        try:
            proc = subprocess.Popen(["torch_shm_manager"], executable=harness.TORCH_SHM_MANAGER,
                                    stdout=subprocess.PIPE, env=sb.env, pass_fds=(r, w))
            sb.track(proc)
            line = proc.stdout.readline()
            assert line.endswith(b"manager.sock\n"), line
            fds = os.listdir("/proc/%d/fd" % proc.pid)
            targets = [os.readlink("/proc/%d/fd/%s" % (proc.pid, f)) for f in fds]
            ours = os.readlink("/proc/self/fd/%d" % r)
            assert ours not in targets, targets
        finally:
            os.close(r)
            os.close(w)


def test_other_uid_is_refused():
    if os.geteuid() != 0:
        print("# not root: cannot test a peer of another uid")
        return
    # The suite's private base is 0700: this test needs a base another uid can
    # traverse, so it makes its own (0755) directly under /tmp and removes it.
    import shutil
    import tempfile
    base = tempfile.mkdtemp(prefix="shmw-uid-", dir="/tmp")
    try:
        os.chmod(base, 0o755)
        with Sandbox() as sb:
            # Not FAST: a Python started as another user can take longer than FAST's
            # 300 ms to connect on a loaded machine, and the manager would be gone.
            m = sb.spawn_manager(["manager", "--tmpdir", base, "--shutdown-timeout", "5000"])
            os.chmod(m.dir, 0o755)
            os.chmod(m.sock, 0o666)
            # The manager may close before, during or after the send: any of those
            # is "closed"; only an answer is a failure.
            code = ("import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n"
                    "s.settimeout(3)\n"
                    "try:\n"
                    "    s.sendall(bytes.fromhex(sys.argv[2]))\n"
                    "    print('closed' if s.recv(2)==b'' else 'answered')\n"
                    "except (ConnectionResetError, BrokenPipeError):\n"
                    "    print('closed')")
            out = subprocess.run(["/usr/bin/python3", "-c", code, m.sock,
                                  record(sb.name("x")).hex()],
                                 user=65534, capture_output=True, text=True, timeout=20)
            assert out.stdout.strip() == "closed", (out.stdout, out.stderr)
            assert sb.name("x") not in journal_names(m.dir)
            assert m.wait(10) == 0
            assert "refused a connection from uid 65534" in m.stderr_text()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_prune_drops_names_freed_without_a_free():
    with Sandbox() as sb:
        m = sb.spawn_manager(["manager", "--prune-interval", "100", "--prune-grace", "0"] + FAST)
        c = m.client()
        for i in range(10):
            c.register(sb.name(i))
            sb.create_object(sb.name(i))
        for i in range(5):
            os.unlink(harness.SHM + sb.name(i))  # gone, but no free message
        assert wait_for(lambda: journal_names(m.dir) == [sb.name(i) for i in range(5, 10)], 5), \
            journal_names(m.dir)
        c.close()
        assert m.wait(10) == 0
        assert sb.objects() == []


def test_journal_stays_small_over_60000_cycles():
    with Sandbox() as sb:
        m = sb.spawn_manager(["manager", "--prune-interval", "200"] + FAST)
        c = m.client()
        batch = 500
        for base in range(0, 60000, batch):
            buf = b"".join(record(sb.name(base + i)) + record(sb.name(base + i), free=True)
                           for i in range(batch))
            c.send_raw(buf)
            got = b""
            while len(got) < 2 * batch:
                chunk = c.sock.recv(4096)
                assert chunk
                got += chunk
        time.sleep(0.5)  # one prune pass compacts
        size = harness.dir_size(m.dir)
        print("# journal directory after 60000 cycles: %d bytes" % size)
        assert size < 2 * 1024 * 1024, size
        assert journal_names(m.dir) == []
        c.close()
        assert m.wait(10) == 0


if __name__ == "__main__":
    harness.main(globals())
