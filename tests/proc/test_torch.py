"""test_torch.py — real PyTorch (Debian python3-torch) using shmwarden as its manager.

Each test runs scripts/torch_share.py in a private mount namespace in which
build/torch_shm_manager is bind-mounted over torch's own torch/bin/torch_shm_manager,
with TMPDIR pointing at the sandbox, so the manager torch spawns is shmwarden and its
directory and journal are the sandbox's. Objects are named /torch_<pid>_...: the tests
look only at names of the pids they started.
"""
import json
import os
import signal
import subprocess

import harness

PY = "/usr/bin/python3"
SCRIPT = os.path.join(harness.ROOT, "scripts", "torch_share.py")


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


def manager_pids(sb):
    """Pids of the managers whose journals are in the sandbox (torch's manager calls
    setsid, so it is not in the tree's process group)."""
    import sqlite3
    pids = []
    for d in sb.manager_dirs():
        db = os.path.join(sb.tmp, d, "journal.db")
        con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
        try:
            pids.append(con.execute("select manager_pid from manager").fetchone()[0])
        finally:
            con.close()
    return pids


def crash_tree(sb, ntensors=20):
    """Shares tensors, then SIGKILLs the whole tree and its manager while every tensor
    is still held. Returns the pids whose objects leaked."""
    proc = start_tree(sb, nworkers=2, ntensors=ntensors // 2, hold=120)
    rep = read_report(proc)
    pids = [rep["pid"]] + rep["workers"]
    assert rep["received"] == ntensors and rep["bad"] == 0, rep
    mgrs = manager_pids(sb)
    assert mgrs, "no shmwarden manager directory in the sandbox"
    os.killpg(proc.pid, signal.SIGKILL)
    for pid in mgrs:
        # Our own manager: its journal says so, and it lives in our sandbox.
        os.kill(pid, signal.SIGKILL)
    proc.wait(30)
    assert harness.wait_for(lambda: all(harness.is_dead(p) for p in mgrs + pids), 10)
    leaked = torch_objects(pids)
    assert len(leaked) >= ntensors, "expected the leak the kill causes, found %s" % leaked
    return pids


def test_sigkill_then_sweep_reclaims_everything():
    with harness.Sandbox("torch") as sb:
        pids = []
        try:
            pids = crash_tree(sb)
            r = sb.run(["sweep", "--tmpdir", sb.tmp])
            assert r.returncode == 0, r.stdout + r.stderr
            assert torch_objects(pids) == [], torch_objects(pids)
            assert sb.manager_dirs() == []
        finally:
            cleanup_torch_objects(pids)


def test_sigkill_then_recover_reclaims_everything():
    with harness.Sandbox("torch") as sb:
        pids = []
        try:
            pids = crash_tree(sb)
            dirs = sb.manager_dirs()
            for d in dirs:
                r = sb.run(["recover", os.path.join(sb.tmp, d)])
                assert r.returncode == 0, r.stdout + r.stderr
            assert torch_objects(pids) == [], torch_objects(pids)
            assert sb.manager_dirs() == []
        finally:
            cleanup_torch_objects(pids)


def test_sigkill_then_new_manager_reclaims_everything():
    with harness.Sandbox("torch") as sb:
        pids = []
        try:
            pids = crash_tree(sb)
            dead = sb.manager_dirs()
            m = sb.spawn_manager()
            assert m.sock, m.line
            assert harness.wait_for(lambda: not torch_objects(pids), 10), torch_objects(pids)
            assert harness.wait_for(lambda: not set(dead) & set(sb.manager_dirs()), 10)
            assert m.wait(15) == 0
            assert sb.manager_dirs() == []
        finally:
            cleanup_torch_objects(pids)


def test_libshm_init_points_torch_at_shmwarden():
    """The other way to use shmwarden (the demo's): libshm_init from inside Python."""
    with harness.Sandbox("torch") as sb:
        proc = sb.track(subprocess.Popen([PY, SCRIPT, "2", "5", "--manager", harness.TORCH_SHM_MANAGER],
                                         env=sb.env, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, text=True))
        rep = read_report(proc)
        pids = [rep["pid"]] + rep["workers"]
        try:
            assert proc.wait(120) == 0
            assert rep["received"] == 10 and rep["bad"] == 0 and rep["journal_rows"] >= 1, rep
            assert harness.wait_for(lambda: not torch_objects(pids) and not sb.manager_dirs(), 15)
        finally:
            cleanup_torch_objects(pids)


if __name__ == "__main__":
    harness.main(globals())
