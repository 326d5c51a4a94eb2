"""test_demo.py — `make demo` (scripts/demo.sh) as a newcomer runs it.

The demo runs for real (PyTorch, SIGKILL, sweep) with the build under test. Its headings
are bold only when stdout is a terminal and NO_COLOR is unset or empty
(https://no-color.org): into a pipe, or with NO_COLOR=1, not one escape sequence.
Each run is in the sandbox's temp base; the demo sweeps and removes its own.
"""
import os
import pty
import select
import signal
import subprocess
import time

import harness

DEMO = os.path.join(harness.ROOT, "scripts", "demo.sh")
BOLD = b"\x1b[1m"


def demo_env(sb, **extra):
    env = dict(sb.env, BUILD=os.path.relpath(harness.BUILD, harness.ROOT))
    env.pop("NO_COLOR", None)
    env.update(extra)
    return env


def run_in_pipe(sb, **extra):
    p = subprocess.run(["bash", DEMO], capture_output=True, timeout=400, env=demo_env(sb, **extra),
                       stdin=subprocess.DEVNULL, start_new_session=True)
    return p.returncode, p.stdout, p.stderr


def run_on_terminal(sb, **extra):
    """The demo with stdout (and stderr) a pseudo-terminal: what it prints there."""
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execve("/bin/bash", ["bash", DEMO], demo_env(sb, **extra))
        finally:
            os._exit(127)
    out = b""
    deadline = time.monotonic() + 400
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 1)
            if not r:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the terminal's last holder is gone
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(fd)
    waited, status = 0, 0
    end = time.monotonic() + 30  # EOF comes as bash exits: reaped in a moment
    while waited == 0 and time.monotonic() < end:
        waited, status = os.waitpid(pid, os.WNOHANG)
        if waited == 0:
            time.sleep(0.05)
    if waited == 0:
        os.kill(pid, signal.SIGKILL)  # our own child only
        os.waitpid(pid, 0)
        raise AssertionError("demo on a terminal did not finish: %r" % out[-1500:])
    return os.waitstatus_to_exitcode(status), out


def test_demo_colours_only_a_terminal_without_no_color():
    with harness.Sandbox("demo") as sb:
        rc, out, err = run_in_pipe(sb)
        assert rc == 0, "demo into a pipe: exit %d\n%s%s" % (rc, out[-1500:], err[-1500:])
        assert b"== 4. Clean again" in out, out[-1500:]
        assert b"\x1b" not in out and b"\x1b" not in err, \
            "escape sequences into a pipe: %r" % [l for l in out.splitlines() if b"\x1b" in l][:3]
        rc, out = run_on_terminal(sb)
        assert rc == 0 and b"== 4. Clean again" in out, "demo on a terminal: %d %r" % (
            rc, out[-1500:])
        assert BOLD + b"== 4. Clean again" in out, "no bold heading on a terminal"
        rc, out = run_on_terminal(sb, NO_COLOR="1")
        assert rc == 0 and b"== 4. Clean again" in out, "NO_COLOR=1: %d %r" % (rc, out[-1500:])
        assert b"\x1b" not in out, "NO_COLOR=1 on a terminal: %r" % [
            l for l in out.splitlines() if b"\x1b" in l][:3]
        assert os.listdir(sb.tmp) == [], "the demo left %s" % os.listdir(sb.tmp)


harness.main(globals())
