"""torch_zygote.py — one Python that imports torch once and forks each test's program.

Importing torch costs each new Python seconds of CPU (libtorch's relocations, a few
thousand modules), and test_torch.py starts a PyTorch program in nearly every case, on
every version of the matrix. The zygote pays that once per test_torch.py run: it
imports torch, says "ready", and for each request on its control socket forks a child
that becomes the program. The cases stay independent: each program is its own process
and session, with its own descriptors, environment, working directory and TMPDIR, and
the zygote never shares a tensor, so no manager exists before the fork and each
program's first share spawns its own, as a fresh program's does.

    python3 torch_zygote.py FD       FD: a SOCK_SEQPACKET socket (ZygoteClient's end)

A request is one message, JSON {"argv": [SCRIPT, ARG...], "env": {...}, "cwd": DIR},
with four descriptors: the program's stdin, stdout, stderr, and a stream socket on
which the zygote writes the child's pid, then, once it is reaped, its exit code as
subprocess reports it (-N: killed by signal N), each on a line. The child runs SCRIPT
as __main__ (runpy: spawn and forkserver workers find the script as they would in a
fresh program) and then exits as a program does (atexit handlers, multiprocessing's
own). The zygote exits when the control socket is closed.
"""
import json
import os
import runpy
import select
import socket
import subprocess
import sys
import time


def become(req, fds, ctl, others):
    """In the child: turns this process into the requested program; raises SystemExit
    with its exit status (so the interpreter exits as a program's does)."""
    stdin, stdout, stderr, status = fds
    ctl.close()
    for s in others:
        s.close()
    os.close(status)
    os.setsid()
    for i, fd in enumerate((stdin, stdout, stderr)):
        os.dup2(fd, i)
        os.close(fd)
    os.environ.clear()
    os.environ.update(req["env"])
    os.chdir(req["cwd"])
    sys.argv = list(req["argv"])
    runpy.run_path(sys.argv[0], run_name="__main__")
    raise SystemExit(0)


def serve(ctl):
    children = {}  # pid -> its status socket
    print("ready", flush=True)
    while True:
        ready, _, _ = select.select([ctl], [], [], 0.05)
        if ready:
            msg, fds, _, _ = socket.recv_fds(ctl, 65536, 4)
            if not msg:
                break
            if len(fds) != 4:
                for fd in fds:
                    os.close(fd)
                continue
            req = json.loads(msg)
            pid = os.fork()
            if pid == 0:
                become(req, fds, ctl, children.values())
            for fd in fds[:3]:
                os.close(fd)
            st = socket.socket(fileno=fds[3])
            st.sendall(b"%d\n" % pid)
            children[pid] = st
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            st = children.pop(pid, None)
            if st:
                try:
                    st.sendall(b"%d\n" % os.waitstatus_to_exitcode(status))
                except OSError:
                    pass
                st.close()


class Program:
    """A program the zygote forked, used like a subprocess.Popen (text pipes)."""

    def __init__(self, zygote, argv, env, cwd):
        r_out, w_out = os.pipe()
        r_err, w_err = os.pipe()
        mine, theirs = socket.socketpair()
        null = os.open(os.devnull, os.O_RDONLY)
        try:
            req = json.dumps({"argv": list(argv), "env": dict(env), "cwd": cwd}).encode()
            socket.send_fds(zygote.ctl, [req], [null, w_out, w_err, theirs.fileno()])
        finally:
            for fd in (null, w_out, w_err):
                os.close(fd)
            theirs.close()
        self.stdout = os.fdopen(r_out, "r")
        self.stderr = os.fdopen(r_err, "r")
        self._status, self._buf = mine, b""
        line = self._line(60)
        if not line:
            raise RuntimeError("the torch zygote did not start %s" % argv[0])
        self.pid = int(line)
        self.returncode = None

    def _line(self, timeout):
        """The next line from the zygote ("" at its end); None on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = None if deadline is None else max(0, deadline - time.monotonic())
            r, _, _ = select.select([self._status], [], [], left)
            if not r:
                return None
            chunk = self._status.recv(64)
            if not chunk:
                return ""
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode()

    def wait(self, timeout=None):
        if self.returncode is None:
            line = self._line(timeout)
            if line is None:
                raise subprocess.TimeoutExpired(self.pid, timeout)
            # No line: the zygote died, and the status with it (never taken for 0).
            self.returncode = int(line) if line else 255
            self._status.close()
        return self.returncode

    def poll(self):
        try:
            return self.wait(0)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        if self.poll() is None:
            os.kill(self.pid, 9)


class Zygote:
    """The zygote, started in a mount namespace where HOST_MANAGER is bind-mounted over
    TORCH_MANAGER (the file PyTorch runs), so that every program it forks runs
    shmwarden as PyTorch's manager."""

    def __init__(self, python, host_manager, torch_manager, timeout=300):
        self.ctl, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        inner = 'mount --bind "$1" "$2" && shift 2 && exec "$@"'
        self.proc = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", inner, "sh",
             host_manager, torch_manager, python, os.path.abspath(__file__),
             str(theirs.fileno())],
            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            text=True)
        theirs.close()
        t0 = time.monotonic()
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if r else ""
        if line != "ready\n":
            self.close()
            raise RuntimeError("the torch zygote did not start in %.0fs (exit %s)" %
                               (time.monotonic() - t0, self.proc.poll()))

    def start(self, argv, env, cwd=None):
        return Program(self, argv, env, cwd or os.getcwd())

    def close(self):
        self.ctl.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


if __name__ == "__main__":
    import torch  # noqa: F401 — the point: imported once, before any fork
    import torch.multiprocessing  # noqa: F401
    serve(socket.socket(fileno=int(sys.argv[1])))
