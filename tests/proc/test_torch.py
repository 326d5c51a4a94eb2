"""test_torch.py — real PyTorch (Debian python3-torch) using shmwarden as its manager.

Each test runs tests/proc/torch_share.py in a private mount namespace in which
build/torch_shm_manager is bind-mounted over torch's own torch/bin/torch_shm_manager,
with TMPDIR pointing at the sandbox, so the manager torch spawns is shmwarden and its
directory and journal are the sandbox's. Objects are named /torch_<pid>_...: the tests
look only at names of the pids they started.
"""
import json
import os
import signal
import subprocess
import sys
import time

import harness

PY = "/usr/bin/python3"
SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_share.py")


def torch_bin():
    out = subprocess.run([PY, "-c", "import torch, os; print(os.path.dirname(torch.__file__))"],
                         capture_output=True, text=True, check=True)
    return os.path.join(out.stdout.strip(), "bin", "torch_shm_manager")


TORCH_MANAGER = torch_bin()


def start_tree(sb, nworkers, ntensors, hold=0):
    """Starts torch_share.py with shmwarden as torch's manager; returns the Popen."""
    args = [SCRIPT, str(nworkers), str(ntensors)] + (["--hold", str(hold)] if hold else [])
    inner = 'mount --bind "$1" "$2" && shift 2 && exec "$@"'
    cmd = ["unshare", "-m", "--propagation", "private", "sh", "-c", inner, "sh",
           harness.TORCH_SHM_MANAGER, TORCH_MANAGER, PY] + args
    # A session of its own, so the crash tests can SIGKILL the whole tree at once
    # (the manager calls setsid itself and is found through its journal's pid).
    return sb.track(subprocess.Popen(cmd, env=sb.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True,
                                     start_new_session=True))


def torch_objects(pids):
    names = os.listdir(harness.SHM)
    return sorted(n for n in names for p in pids if n.startswith("torch_%d_" % p))


def cleanup_torch_objects(pids):
    for n in torch_objects(pids):
        try:
            os.unlink(os.path.join(harness.SHM, n))
        except FileNotFoundError:
            pass


def read_report(proc, timeout=120):
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout)
        raise AssertionError("torch_share.py failed: %s" % proc.stderr.read()[-2000:])
    return json.loads(line)


def test_tensors_arrive_and_nothing_is_left():
    with harness.Sandbox("torch") as sb:
        proc = start_tree(sb, nworkers=3, ntensors=10)
        rep = read_report(proc)
        pids = [rep["pid"]] + rep["workers"]
        try:
            rc = proc.wait(120)
            err = proc.stderr.read()
            assert rc == 0, "torch_share.py exited %d: %s" % (rc, err[-2000:])
            assert rep["received"] == 30 and rep["bad"] == 0, rep
            assert len(rep["manager_dirs"]) >= 1, "torch did not use shmwarden: %s" % rep
            assert rep["journal_rows"] >= 1, "the journal was not used: %s" % rep
            # The manager shuts down 2 s after its last client; then nothing may remain.
            left = harness.wait_for(lambda: not torch_objects(pids) and not sb.manager_dirs(),
                                    timeout=15)
            assert left, "left behind: objects %s, dirs %s" % (torch_objects(pids), sb.manager_dirs())
            assert os.listdir(sb.tmp) == [], "TMPDIR not empty: %s" % os.listdir(sb.tmp)
            assert "ERROR" not in err and "shmwarden" not in err, "stderr: %s" % err[-2000:]
        finally:
            cleanup_torch_objects(pids)


if __name__ == "__main__":
    harness.main(globals())
