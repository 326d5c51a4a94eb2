"""test_torch.py — real PyTorch (Debian python3-torch) using shmwarden as its manager.

Each test runs scripts/torch_share.py in a private mount namespace in which
build/torch_shm_manager is bind-mounted over torch's own torch/bin/torch_shm_manager,
with TMPDIR pointing at the sandbox, so the manager torch spawns is shmwarden and its
directory and journal are the sandbox's. Objects are named /torch_<pid>_...: the tests
look only at names of the pids they started.

Those programs are forked by one zygote (tests/proc/torch_zygote.py) that imported
torch once, in that mount namespace: a fresh Python would spend seconds of CPU on the
import in every case, on every version of the matrix. Each program is still a process
and session of its own with its own environment, and spawns its own manager. The
libshm_init and use-with-pytorch.sh tests start fresh Pythons, as what they test
happens at import or needs a mount namespace of its own.
"""
import atexit
import json
import os
import re
import shutil
import signal
import subprocess
import time

import harness
import torch_zygote

PY = "/usr/bin/python3"
SCRIPT = os.path.join(harness.ROOT, "scripts", "torch_share.py")


def torch_bin():
    # find_spec, not import: importing torch costs seconds of CPU, every run.
    code = ("import importlib.util as u; s = u.find_spec('torch'); "
            "print(s.submodule_search_locations[0])")
    out = subprocess.run([PY, "-c", code], capture_output=True, text=True, check=True)
    return os.path.join(out.stdout.strip(), "bin", "torch_shm_manager")


TORCH_MANAGER = torch_bin()
_zygote = []


def zygote():
    """The torch zygote of this run, started at first use."""
    if not _zygote:
        _zygote.append(torch_zygote.Zygote(PY, harness.TORCH_SHM_MANAGER, TORCH_MANAGER))
        atexit.register(_zygote[0].close)
    return _zygote[0]


def start_tree(sb, nworkers, ntensors, hold=0, extra=(), env=None):
    """Starts torch_share.py with shmwarden as torch's manager; returns a Popen-like
    handle. The program leads a session of its own, so the crash tests can SIGKILL
    the whole tree at once (the manager calls setsid itself and is found through its
    journal's pid)."""
    args = [SCRIPT, str(nworkers), str(ntensors)] + (["--hold", str(hold)] if hold else [])
    args += list(extra)
    return sb.track(zygote().start(args, env or sb.env))


def torch_objects(pids):
    names = os.listdir(harness.SHM)
    return sorted(n for n in names for p in pids if n.startswith("torch_%d_" % p))


def cleanup_torch_objects(pids):
    for n in torch_objects(pids):
        try:
            os.unlink(os.path.join(harness.SHM, n))
        except FileNotFoundError:
            pass


def reclaim_own(sb, trees, pids, bases=None):
    """What this test's PyTorch programs made goes, whatever failed and wherever: a
    report never read (pids unknown), an assertion between the kill and the sweep, a
    timeout. Kills each tree's whole process group while its leader is unreaped (so
    the group is still ours), then the managers that hold a directory's lock in our
    private base (they are our programs' own: `ls` names the lock holder), sweeps that
    base (only our managers' journals are in it; bases: those private bases instead of
    sb.tmp), and unlinks what is left of the
    torch_ objects of the pids we know. Returns the names that only that last step
    removed: with the report read and nothing failed, none."""
    for t in trees:
        if t.poll() is None:
            try:
                os.killpg(t.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            t.wait(30)
    for base in bases or [sb.tmp]:
        r = sb.run(["ls", "--json", "--tmpdir", base])
        live = [m["pid"] for m in json.loads(r.stdout)["managers"]
                if m["state"] == "live" and m["pid"] > 0] if r.returncode == 0 else []
        for pid in live:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        harness.wait_for(lambda: all(harness.is_dead(p) for p in live), 30)
        if any(n.startswith("shmwarden-") for n in os.listdir(base)):
            sb.run(["sweep", "--tmpdir", base])
    left = torch_objects(pids)
    cleanup_torch_objects(pids)
    return left


class TorchRun:
    """One test's PyTorch programs: started through start(), their pids learnt from
    their reports (saw), and everything they made reclaimed on the way out, even when
    the test failed (reclaim_own)."""

    def __init__(self, sb):
        self.sb, self.trees, self.pids = sb, [], []

    def start(self, *args, **kw):
        t = start_tree(self.sb, *args, **kw)
        self.trees.append(t)
        return t

    def saw(self, rep):
        self.pids += [rep["pid"]] + rep["workers"]
        return rep

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        left = reclaim_own(self.sb, self.trees, self.pids)
        if left and exc_type is None:
            raise AssertionError("the test left its PyTorch objects behind: %s" % left)
        return False


def read_report(proc, timeout=120):
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout)
        raise AssertionError("torch_share.py failed: %s" % proc.stderr.read()[-2000:])
    return json.loads(line)


def share_and_check(start="fork", dataloader=False, nworkers=3, ntensors=10):
    """Workers started with START (or a DataLoader's) share tensors with the parent
    through shmwarden; every value arrives intact, the journal holds the live objects,
    and after a clean exit nothing is left in /dev/shm or TMPDIR. Returns the parent's
    second report (Process workers only): how long join() took once they had exited."""
    with harness.Sandbox("torch") as sb, TorchRun(sb) as run:
        extra = ["--start", start] + (["--dataloader"] if dataloader else [])
        proc = run.start(nworkers, ntensors, extra=extra)
        rep = run.saw(read_report(proc))
        t_report = time.monotonic()
        pids = run.pids
        rc = proc.wait(120)
        after = time.monotonic() - t_report
        err = proc.stderr.read()
        joins = {} if dataloader else json.loads(proc.stdout.readline() or "{}")
        assert rc == 0, "torch_share.py exited %d: %s" % (rc, err[-2000:])
        assert rep["received"] == nworkers * ntensors and rep["bad"] == 0, rep
        assert len(rep["workers"]) == nworkers, "workers: %s" % rep
        assert len(rep["manager_dirs"]) >= 1, "torch did not use shmwarden: %s" % rep
        assert rep["journal_rows"] >= 1, "the journal was not used: %s" % rep
        # The manager shuts down 2 s after its last client; then nothing may remain.
        left = harness.wait_for(lambda: not torch_objects(pids) and not sb.manager_dirs(),
                                timeout=15)
        assert left, "left behind: objects %s, dirs %s" % (torch_objects(pids), sb.manager_dirs())
        assert os.listdir(sb.tmp) == [], "TMPDIR not empty: %s" % os.listdir(sb.tmp)
        assert "ERROR" not in err and "shmwarden" not in err, "stderr: %s" % err[-2000:]
        joins["after_report"] = after
        return joins


def test_torch_share_help_describes_every_argument():
    # The README's recovery story and the tests drive torch_share.py by its options: its
    # --help says what each one means (it once listed bare names). Every argument of its
    # usage line has a line of its own with a description.
    r = subprocess.run([PY, SCRIPT, "--help"], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, NO_COLOR="1"))
    assert r.returncode == 0, r.stderr[-2000:]
    text = r.stdout
    usage, body = text.split("\n\n", 1)
    options = re.findall(r"\[(--[a-z-]+)", usage)
    positionals = re.sub(r"\[[^\]]*\]", " ", usage).split()[2:]  # past "usage: PROG"
    names = options + positionals
    assert set(options) >= {"--hold", "--manager", "--numel", "--start", "--dataloader",
                            "--get-delay"} and len(positionals) == 2, names
    lines = body.splitlines()
    for name in names:
        at = [i for i, l in enumerate(lines) if l.startswith("  ") and
              l.split()[0].rstrip(",") == name]
        assert at, "--help has no line for %s:\n%s" % (name, text)
        first = lines[at[0]].strip()
        said = re.split(r"\s{2,}", first, maxsplit=1)[1:] or [""]
        if not said[0] and at[0] + 1 < len(lines):
            nxt = lines[at[0] + 1]
            said = [nxt.strip()] if len(nxt) - len(nxt.lstrip()) > 6 else [""]
        assert len(said[0]) > 10, "--help does not say what %s means:\n%s" % (name, text)
    assert "exits 1" in text, "--help does not say when it fails:\n%s" % text


def test_torch_share_runs_by_its_path():
    # The README runs `scripts/torch_share.py N 5 --start spawn` by its path: it was mode
    # 0644 with no #! line (Permission denied).
    with open(SCRIPT) as f:
        assert f.readline() == "#!/usr/bin/python3\n", "torch_share.py has no #! line"
    assert os.access(SCRIPT, os.X_OK), "torch_share.py is not executable"
    r = subprocess.run([SCRIPT, "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "NWORKERS" in r.stdout, r.stderr[-2000:]


# torch made unimportable (a None in sys.modules: `import torch` raises ImportError),
# then the script run as its #! line would.
_NO_TORCH = """
import runpy, sys
sys.modules["torch"] = None
sys.argv = [sys.argv[1]] + sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_torch_share_help_and_usage_errors_need_no_torch():
    # --help imported torch first: seconds of CPU, and a traceback where python3 has no
    # torch. Arguments are parsed before torch is imported.
    for args, rc, where, want in ((["--help"], 0, "stdout", "usage: torch_share.py"),
                                  (["x", "1"], 2, "stderr", "invalid int value")):
        r = subprocess.run([PY, "-c", _NO_TORCH, SCRIPT] + args, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == rc and want in getattr(r, where) and \
            "Traceback" not in r.stderr, (args, r.returncode, r.stdout[-500:], r.stderr[-2000:])


def test_share_reports_with_tmpdir_unset():
    """TMPDIR unset, TMP set: the manager makes its directory in TMP (shmwarden takes
    TMPDIR, TMP, TEMP, TEMPDIR, then /tmp), and torch_share.py reports it there (it died
    with KeyError: 'TMPDIR' after sharing, exit 1 and no report)."""
    with harness.Sandbox("notmpdir") as sb, TorchRun(sb) as run:
        env = {k: v for k, v in sb.env.items() if k not in ("TMPDIR", "TEMP", "TEMPDIR")}
        env["TMP"] = sb.tmp
        proc = run.start(1, 2, env=env)
        rep = run.saw(read_report(proc))
        assert proc.wait(120) == 0, proc.stderr.read()[-2000:]
        assert rep["received"] == 2 and rep["bad"] == 0, rep
        assert len(rep["manager_dirs"]) == 1 and rep["journal_rows"] >= 1, rep


def test_tensors_arrive_and_nothing_is_left():
    share_and_check("fork")


def test_forkserver_workers_share_tensors():
    share_and_check("forkserver")


def test_dataloader_workers_share_tensors():
    share_and_check("fork", dataloader=True, nworkers=2, ntensors=8)


def test_spawn_workers_share_tensors_and_exit_promptly():
    """With spawn, the worker is the first to allocate, so it spawns the manager, which
    inherits the worker's descriptors, among them the pipe the parent's join() watches.
    PyTorch's own manager keeps them open for its whole life: join() waits its whole
    timeout (1.13: 30 s here), a 2.14 program takes ~12 s, a 2.6 one never exits.
    shmwarden closes what it inherits, so join() returns as soon as the workers exit.
    (Timed from the workers' exit, not from the start: how long a worker takes to tear
    torch down depends on the machine's load, not on the manager.)"""
    joins = share_and_check("spawn", nworkers=2)
    assert "join_after_exit" in joins, "no second report: %s" % joins
    assert joins["join_after_exit"] < 2, \
        "join() waited %.1fs after the workers had exited (something holds their pipes)" % \
        joins["join_after_exit"]


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


def crash_tree(run, ntensors=20, extra=()):
    """Shares tensors, then SIGKILLs the whole tree and its manager while every tensor
    is still held. Returns the pids whose objects leaked (run knows them as soon as the
    report is read, so a failure below still reclaims them)."""
    sb = run.sb
    proc = run.start(nworkers=2, ntensors=ntensors // 2, hold=120, extra=extra)
    rep = run.saw(read_report(proc))
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
    with harness.Sandbox("torch") as sb, TorchRun(sb) as run:
        pids = crash_tree(run)
        r = sb.run(["sweep", "--tmpdir", sb.tmp])
        assert r.returncode == 0, r.stdout + r.stderr
        assert torch_objects(pids) == [], torch_objects(pids)
        assert sb.manager_dirs() == []


def test_sigkill_then_recover_reclaims_everything():
    with harness.Sandbox("torch") as sb, TorchRun(sb) as run:
        pids = crash_tree(run)
        dirs = sb.manager_dirs()
        for d in dirs:
            r = sb.run(["recover", os.path.join(sb.tmp, d)])
            assert r.returncode == 0, r.stdout + r.stderr
        assert torch_objects(pids) == [], torch_objects(pids)
        assert sb.manager_dirs() == []


def test_sigkill_after_a_slow_receiver_then_recover_reclaims_everything():
    """The parent takes its tensors 2.5 s after the workers made them: libshm registers
    each again then, with the worker's manager, so every row's registration is younger
    than its object. Recovery must take them for the journaled objects (earlier builds
    refused each as `name reused`, and every tensor leaked)."""
    with harness.Sandbox("torch") as sb, TorchRun(sb) as run:
        pids = crash_tree(run, extra=["--get-delay", "2.5"])
        for d in sb.manager_dirs():
            r = sb.run(["recover", "--json", os.path.join(sb.tmp, d)])
            assert r.returncode == 0, r.stdout + r.stderr
            rep = json.loads(r.stdout)
            assert rep["name_reused"] == 0, rep
        assert torch_objects(pids) == [], torch_objects(pids)
        assert sb.manager_dirs() == []


def test_sigkill_then_new_manager_reclaims_everything():
    with harness.Sandbox("torch") as sb, TorchRun(sb) as run:
        pids = crash_tree(run)
        dead = sb.manager_dirs()
        m = sb.spawn_manager()
        assert m.sock, m.line
        assert harness.wait_for(lambda: not torch_objects(pids), 10), torch_objects(pids)
        assert harness.wait_for(lambda: not set(dead) & set(sb.manager_dirs()), 10)
        assert m.wait(15) == 0
        assert sb.manager_dirs() == []


def test_libshm_init_points_torch_at_shmwarden():
    """The other way to use shmwarden (the demo's): libshm_init from inside Python, in
    the parent and, with spawn, in workers that are fresh interpreters (they used to
    run PyTorch's own manager, and left its torch-shm-dir behind)."""
    for start in ("fork", "spawn"):
        libshm_init_run(start)


def libshm_init_run(start):
    with harness.Sandbox("torch") as sb, TorchRun(sb) as run:
        proc = sb.track(subprocess.Popen([PY, SCRIPT, "2", "5", "--manager", harness.TORCH_SHM_MANAGER,
                                          "--start", start],
                                         env=sb.env, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, text=True,
                                         start_new_session=True))
        run.trees.append(proc)  # a session of its own: its group is the tree
        rep = run.saw(read_report(proc))
        pids = run.pids
        assert proc.wait(120) == 0
        assert rep["received"] == 10 and rep["bad"] == 0 and rep["journal_rows"] >= 1, (start, rep)
        assert harness.wait_for(lambda: not torch_objects(pids) and not sb.manager_dirs(), 15)
        assert os.listdir(sb.tmp) == [], "%s: left %s" % (start, os.listdir(sb.tmp))


USE_SCRIPT = os.path.join(harness.ROOT, "scripts", "use-with-pytorch.sh")
# In a private mount namespace, torch/bin is replaced by a private copy (so the package
# itself is never changed); there the script installs shmwarden by renaming, says so,
# torch runs it (a journal appears), and uninstall puts back the very file.
_USE_INNER = r"""
set -eu
bin=$(dirname "$TORCH_MANAGER")
cp -a "$bin" "$SB/bin"
mount --bind "$SB/bin" "$bin"
use() { "$USE_SCRIPT" --python "$PY" --manager "$MANAGER" "$@"; }
echo "STATUS0 $(use status)"
echo "INSTALL $(use install)"
echo "STATUS1 $(use status)"
echo "SHARE $("$PY" "$SCRIPT" 2 3)"
echo "UNINSTALL $(use uninstall)"
echo "STATUS2 $(use status)"
cmp "$TORCH_MANAGER" "$SB/orig" && echo SAME
"""


def test_use_with_pytorch_install_status_uninstall():
    with harness.Sandbox("torch") as sb:
        shutil.copy(TORCH_MANAGER, os.path.join(sb.tmp, "orig"))
        env = dict(sb.env, TORCH_MANAGER=TORCH_MANAGER, SB=sb.tmp, USE_SCRIPT=USE_SCRIPT,
                   PY=PY, MANAGER=harness.TORCH_SHM_MANAGER, SCRIPT=SCRIPT)
        r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", _USE_INNER],
                           env=env, capture_output=True, text=True, timeout=180)
        out = dict(l.split(" ", 1) if " " in l else (l, "") for l in r.stdout.splitlines())
        assert r.returncode == 0, "rc %d: %s %s" % (r.returncode, r.stdout, r.stderr[-2000:])
        assert out["STATUS0"].startswith("pytorch: "), out
        assert out["INSTALL"].startswith("installed: %s -> " % TORCH_MANAGER), out
        assert out["STATUS1"].startswith("shmwarden: "), out
        rep = json.loads(out["SHARE"])
        assert rep["received"] == 6 and rep["bad"] == 0, rep
        assert rep["manager_dirs"] and rep["journal_rows"] >= 1, "torch did not run shmwarden: %s" % rep
        assert out["UNINSTALL"].startswith("restored PyTorch's own"), out
        assert out["STATUS2"].startswith("pytorch: "), out
        assert "SAME" in out, "uninstall did not put back PyTorch's own file: %s" % out
        pids = [rep["pid"]] + rep["workers"]
        try:
            assert harness.wait_for(lambda: not torch_objects(pids) and not sb.manager_dirs(), 15)
        finally:
            cleanup_torch_objects(pids)


_SHARE_ONE = """
import torch, torch.multiprocessing as mp
mp.set_sharing_strategy("file_system")
try:
    torch.zeros(4).share_memory_()
except RuntimeError as e:
    print(str(e))
else:
    print("NO ERROR")
"""


def test_manager_error_reaches_the_python_exception():
    """A TMPDIR too long for a socket path: the manager says so in one `ERROR: ` line,
    and torch's RuntimeError carries that very sentence to the Python program."""
    with harness.Sandbox("torch") as sb:
        long_tmp = os.path.join(sb.tmp, "t" * 120)
        os.mkdir(long_tmp)
        m = sb.spawn_manager(env=dict(sb.env, TMPDIR=long_tmp))
        assert m.line.startswith("ERROR: ") and m.wait(10) == 1, m.line
        sentence = m.line[len("ERROR: "):]
        assert "TMPDIR" in sentence, sentence
        script = os.path.join(sb.tmp, "share_one.py")
        with open(script, "w") as f:
            f.write(_SHARE_ONE)
        p = sb.track(zygote().start([script], dict(sb.env, TMPDIR=long_tmp)))
        rc = p.wait(120)
        out, err = p.stdout.read(), p.stderr.read()
        assert rc == 0, err[-2000:]
        assert sentence in out, "the exception says %r, the manager %r" % (out, sentence)
        assert os.listdir(long_tmp) == [], os.listdir(long_tmp)


def readme_story():
    """The README's recovery story: [(command, [expected output lines])], commands with
    their continuation lines joined, as a reader would type them."""
    with open(os.path.join(harness.ROOT, "README.md")) as f:
        text = f.read()
    block = text.split("## The recovery story, by hand\n\n```sh\n", 1)[1].split("```", 1)[0]
    steps, cont = [], False
    for line in block.splitlines():
        if cont:
            steps[-1][0] += "\n" + line
        elif line.startswith("$ "):
            steps.append([line[2:], []])
        else:
            steps[-1][1].append(line.split("#", 1)[0].strip())
        cont = line.endswith("\\")
    return steps


def test_readme_recovery_story_runs_as_written():
    """The story a newcomer types first: it waits for the tensors to be shared, kills the
    tree and its managers, counts the leak from the dead managers' own journals (not every
    job's torch_ objects), and sweeps it. Run as written, with the build under test."""
    steps = readme_story()
    assert len(steps) >= 7 and steps[0][0].startswith("make && "), steps
    script = []
    for i, (cmd, _) in enumerate(steps):
        cmd = cmd.replace("make && ", "").replace("build/", harness.BUILD + "/")
        script.append('echo "@@ %d"\n%s' % (i, cmd))
    with harness.Sandbox("story") as sb:
        proc = subprocess.Popen(["bash", "-c", "\n".join(script)], cwd=harness.ROOT, env=sb.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        sb.track(proc)
        try:
            out, err = proc.communicate(timeout=300)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the story's own session only
            except ProcessLookupError:
                pass
            # The story's TMPDIR, made by mktemp in sb.tmp: its managers too, if it
            # failed before its own kill.
            reclaim_own(sb, [], [], bases=[os.path.join(sb.tmp, d) for d in os.listdir(sb.tmp)
                                           if os.path.isdir(os.path.join(sb.tmp, d))])
        outputs = {}
        for chunk in ("\n" + out).split("\n@@ ")[1:]:
            n, _, rest = chunk.partition("\n")
            outputs[int(n)] = rest.strip("\n").splitlines()
        bare = [c.split("#")[0].strip() for c, _ in steps]
        # Every output line the README shows is what the command printed.
        for i, (cmd, shown) in enumerate(steps):
            if shown:
                assert outputs.get(i) == shown, "%r printed %r, the README shows %r; %s" % (
                    cmd, outputs.get(i), shown, err[-1500:])
        ls_steps = [i for i, c in enumerate(bare) if c == "build/shmwarden ls"]
        assert len(ls_steps) == 2, steps
        live = [l for l in outputs[ls_steps[0]][1:] if " live " in l]
        assert len(live) == 2 and sum(int(l.split()[6]) for l in live) == 20, (
            "before the kill, ls shows %r" % outputs[ls_steps[0]])
        dead = [l for l in outputs[ls_steps[1]][1:] if " dead " in l]
        assert len(dead) == 2, "after the kill, ls shows %r" % outputs[ls_steps[1]]
        sweep = outputs[bare.index("build/shmwarden sweep")]
        assert sweep and sweep[-1].startswith("shmwarden sweep: 2 directories: 2 removed") and \
            "20 objects unlinked (20.0 MiB)" in sweep[-1], "sweep printed %r" % sweep


def test_share_fails_in_one_sentence_when_the_manager_refuses():
    """TMPDIR names a file, so every manager torch starts refuses (it cannot make its
    directory): torch_share.py, with real PyTorch and the manager under test, says so in
    one sentence and exits 1 within seconds, instead of waiting silently for tensors that
    cannot come (its workers die, or drop what they cannot share, and the queue stays
    empty). Both ways it has workers: Process objects and a DataLoader's."""
    with harness.Sandbox("refuse") as sb:
        notdir = os.path.join(sb.tmp, "not-a-directory")
        with open(notdir, "w"):
            pass
        for extra in ([], ["--dataloader"]):
            start = time.monotonic()
            proc = sb.track(subprocess.Popen(
                [PY, SCRIPT, "2", "3", "--manager", harness.TORCH_SHM_MANAGER] + extra,
                env=dict(sb.env, TMPDIR=notdir), stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True, start_new_session=True,
                stdin=subprocess.DEVNULL))
            try:
                out, err = proc.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                out, err = "", "(still waiting after 120 s)"
            finally:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)  # its own session: its workers
                except ProcessLookupError:
                    pass
            took = time.monotonic() - start
            # One sentence of its own (a dying worker's manager may still print after it).
            ours = [l for l in err.splitlines() if l.startswith("torch_share.py: ")]
            assert proc.returncode == 1 and out == "" and len(ours) == 1 and \
                "could not be shared" in ours[0] and notdir in ours[0], (
                    "%s: exit %s after %.0f s, stdout %r, stderr %r" % (
                        extra, proc.returncode, took, out, err[-1500:]))
            assert "cannot create the manager directory in %s: Not a directory" % notdir in err, \
                err[-1500:]
            assert took < 90, "%s: the sentence came after %.0f s" % (extra, took)


def test_readme_wait_is_bounded():
    """The README's wait for the report ends when the job dies without one (as
    torch_share.py does when the manager refuses), and at its time limit when the job
    hangs: run as written, with the job a process that never reports (and, for the
    limit, 2 s instead of 120)."""
    steps = readme_story()
    waits = [c for c, _ in steps if "report.json ]" in c and "until" in c]
    assert len(waits) == 1 and "timeout 120 " in waits[0], "the README's wait: %r" % waits
    with harness.Sandbox("wait") as sb:
        for job, cmd, want in (("sleep 0.5", waits[0], 1),
                               ("sleep 30", waits[0].replace("timeout 120 ", "timeout 2 "), 124)):
            script = "%s &\n%s\nrc=$?\nkill $! 2>/dev/null\nexit $rc\n" % (job, cmd)
            start = time.monotonic()
            r = subprocess.run(["bash", "-c", script], env=sb.env, capture_output=True,
                               text=True, timeout=60, stdin=subprocess.DEVNULL)
            took = time.monotonic() - start
            assert r.returncode == want and took < 20, "%r: exit %d after %.1f s: %r" % (
                job, r.returncode, took, r.stderr)


if __name__ == "__main__":
    harness.main(globals())
