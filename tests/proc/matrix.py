"""matrix.py — the PyTorch matrix: the same tests against every PyTorch Debian ships.

The host's python3-torch (bookworm, 1.13) is tested by tests/proc/test_torch.py as it is.
For trixie (2.6) and sid (2.14) that very file runs again inside a cached Debian chroot
(scripts/chroot.sh, under /var/cache/shmwarden): the checkout is bind-mounted at its own
path, the chroot's /dev/shm and /tmp are private tmpfs, and TMPDIR is /tmp, so every
object and directory a run makes is its own and must be gone when it ends. In sid the
project is also built from a copy of the checkout (GCC 16, glibc 2.43) and its own suite
runs there. The three parts (trixie's torch, sid's torch, the sid build and suite) run
at once, from tests/proc/test_matrix.py.

Each result line is re-emitted with the release and the PyTorch version in front, so
the output of `make test` reports each version's results:
    PASS torch 2.6.0 (trixie): test_spawn_workers_share_tensors_and_exit_promptly (3.1s)

The matrix runs with the normal build only: build-san's binaries need the host
compiler's ASan runtime, which the chroots do not have (the host's run of
test_torch.py covers the sanitized build). For the same reason the suite in sid is the
normal build's; its ASan+UBSan pass is the host's.

    python3 tests/proc/matrix.py ensure    builds (or checks) every chroot, in parallel
"""
import concurrent.futures
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

CHROOT_SH = os.path.join(harness.ROOT, "scripts", "chroot.sh")
# Release → the PyTorch minor version it must serve (checked: a newer upload to sid is
# news, reported as a failure so that the README's list of versions stays true).
RELEASES = {"trixie": "2.6", "sid": "2.14"}
# What the torch tests need, and what building and running the suite needs (sid).
PACKAGES = ["python3", "python3-torch", "python3-pytest", "python3-pytest-timeout", "procps",
            "gcc", "make", "libc6-dev",
            "libsqlite3-dev", "pkgconf", "binutils"]
# (The tests run under pytest, with per-test time limits, in every release.)
# sid also runs the project's suite: its valgrind test needs valgrind, and the sweeper's
# sandbox (src/sandbox.c) builds against libcap-ng and libseccomp.
EXTRA_PACKAGES = {"sid": ["valgrind", "libcap-ng-dev", "libseccomp-dev"]}


def packages(release):
    return PACKAGES + EXTRA_PACKAGES.get(release, [])


def ensure(release, timeout=3600):
    """The chroot's path; builds it (or installs what is missing) first when needed.
    Raises with chroot.sh's own sentence when that fails (an unreachable mirror...)."""
    r = subprocess.run([CHROOT_SH, "ensure", release] + packages(release), capture_output=True,
                       text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip().splitlines()[-1] if r.stderr.strip()
                           else "chroot.sh ensure %s failed" % release)
    return r.stdout.strip()


def run(release, cmd, binds=(), env=None, timeout=1200):
    """Runs CMD (a list) in the release's chroot: private mount and pid namespace, the
    checkout (and the build, wherever it is) bind-mounted at their own paths."""
    args = [CHROOT_SH, "run", release, "--bind", "%s:%s" % (harness.ROOT, harness.ROOT)]
    if not os.path.realpath(harness.BUILD).startswith(os.path.realpath(harness.ROOT) + "/"):
        args += ["--bind", "%s:%s" % (harness.BUILD, harness.BUILD)]
    for b in binds:
        args += ["--bind", b]
    # chroot.sh gives CMD PATH, HOME, LANG and TMPDIR=/tmp, never the host's environment.
    inner_env = {"PYTHONDONTWRITEBYTECODE": "1", "SHMWARDEN_ROOT": harness.ROOT,
                 "SHMWARDEN_BUILD": harness.BUILD, "SHMWARDEN_SANITIZED": "0"}
    inner_env.update(env or {})
    for kv in sorted(inner_env.items()):
        args += ["--env", "%s=%s" % kv]
    args += ["--"] + list(cmd)
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def versions(release):
    """(torch version, python3-torch package version, Python version) inside."""
    code = ("import sys, torch; print(torch.__version__, sys.version.split()[0])")
    r = run(release, ["sh", "-c", "python3 -c '%s' && dpkg-query -W -f='${Version}\\n' "
                      "python3-torch" % code], timeout=300)
    if r.returncode != 0:
        raise RuntimeError("cannot import torch in %s: %s" % (release, r.stderr[-1000:]))
    (torch_v, py_v), pkg_v = r.stdout.split("\n")[0].split(), r.stdout.split("\n")[1]
    return torch_v, pkg_v, py_v


_RESULT = re.compile(r"^(PASS|FAIL|SKIP) (.*)$")
# pytest -v: "tests/proc/test_torch.py::test_spawn PASSED   [ 10%]"
_PYTEST_RESULT = re.compile(r"^(\S+::\S+) (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b")
_PYTEST_WORD = {"PASSED": "PASS", "XPASS": "PASS", "FAILED": "FAIL", "ERROR": "FAIL",
                "SKIPPED": "SKIP", "XFAIL": "SKIP"}
# pytest's summary: "===== 250 passed, 1 skipped in 301.20s (0:05:01) ====="
_PYTEST_SUMMARY = re.compile(r"^=+ .*\b(passed|failed|error|errors|no tests ran)\b.* in [\d.]+s.*=+$")


class Report:
    """Result lines of one part of the matrix, printed together when it is done (the
    parts run at once; their lines must not interleave)."""

    def __init__(self):
        self.lines = []

    def say(self, line):
        self.lines.append(line)

    def relay(self, text, tag):
        """Takes a test run's output (pytest -v, or PASS/FAIL/SKIP lines) with TAG after
        each result; returns the counts. Its own summary line becomes a comment (the
        suite's stays last)."""
        passed = failed = 0
        for line in text.splitlines():
            m = _RESULT.match(line)
            p = _PYTEST_RESULT.match(line)
            if m or p:
                word, what = (m.group(1), m.group(2)) if m else \
                    (_PYTEST_WORD[p.group(2)], p.group(1))
                self.say("%s %s: %s" % (word, tag, what))
                passed += word == "PASS"
                failed += word == "FAIL"
            elif re.match(r"^\d+ passed, \d+ failed$", line) or _PYTEST_SUMMARY.match(line):
                self.say("# %s: %s" % (tag, line))
            else:
                self.say(line)
        return passed, failed

    def result(self, ok, tag, name, why=""):
        ok = bool(ok)
        self.say("PASS %s: %s" % (tag, name) if ok else "FAIL %s: %s: %s" % (tag, name, why))
        return ok

    def flush(self):
        for line in self.lines:
            print(line)
        sys.stdout.flush()
        self.lines = []


def sanitized_skip(what):
    if harness.SANITIZED:
        print("# %s runs with the normal build only (the chroots have no ASan runtime of "
              "the host's compiler); the sanitized pass runs tests/proc/test_torch.py on "
              "the host" % what)
        return True
    return False


def torch_matrix(release, rep):
    """Runs tests/proc/test_torch.py inside RELEASE's chroot; True when all passed."""
    want = RELEASES[release]
    try:
        t0 = time.monotonic()
        ensure(release)
        torch_v, pkg_v, py_v = versions(release)
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        rep.say("FAIL %s: the chroot: %s" % (release, e))
        return False
    tag = "torch %s (%s)" % (torch_v.split("+")[0], release)
    rep.say("# %s: python3-torch %s, Python %s; chroot ready in %.1fs" %
            (release, pkg_v, py_v, time.monotonic() - t0))
    ok = rep.result(torch_v.startswith(want + "."), tag, "%s serves PyTorch %s" % (release, want),
                    "it serves %s: update RELEASES in tests/proc/matrix.py, the README and "
                    "docs/PROTOCOL.md" % torch_v)
    test = os.path.join(harness.ROOT, "tests", "proc", "test_torch.py")
    # After the run, the chroot's private /dev/shm and /tmp must be empty: everything
    # there was made by this run.
    # (From the checkout, so that pytest names the tests tests/proc/test_torch.py::...)
    # A checkout under /tmp is bind-mounted at its own path, so its first component
    # there is the mount point, not something the run left ($3; empty otherwise).
    root = os.path.realpath(harness.ROOT)
    mount = root[len("/tmp/"):].split("/")[0] if root.startswith("/tmp/") else ""
    script = ('cd "$2" && python3 "$1"; rc=$?; '
              'echo "# left in /dev/shm: $(ls -A /dev/shm | wc -l)"; '
              'echo "# left in /tmp: $(ls -A /tmp | grep -cvxF -e "$3")"; ls -A /dev/shm /tmp; '
              'exit $rc')
    t0 = time.monotonic()
    try:
        r = run(release, ["sh", "-c", script, "sh", test, harness.ROOT, mount])
    except subprocess.TimeoutExpired:
        rep.say("FAIL %s: test_torch.py timed out" % tag)
        return False
    passed, failed = rep.relay(r.stdout + r.stderr, tag)
    ok &= rep.result(r.returncode == 0 and failed == 0 and passed >= 10, tag,
                     "test_torch.py passes whole (%d tests in %.0fs)" %
                     (passed, time.monotonic() - t0),
                     "exit %d, %d passed, %d failed" % (r.returncode, passed, failed))
    shm = re.search(r"^# left in /dev/shm: (\d+)$", r.stdout, re.M)
    tmp = re.search(r"^# left in /tmp: (\d+)$", r.stdout, re.M)
    ok &= rep.result(shm and tmp and shm.group(1) == "0" and tmp.group(1) == "0", tag,
                     "nothing left in the chroot's own /dev/shm and /tmp after the run",
                     "%s, %s" % (shm and shm.group(0), tmp and tmp.group(0)))
    return ok


# Programs of the suite that do not run in the sid chroot, and why.
SUITE_EXCLUDES = {
    # Builds and enters chroots of its own (debootstrap, the host's /var/cache and apt):
    # that is the host's business, not a chroot's.
    "test_chroot.py": "builds chroots itself: the host's job",
    # Installs the packages into scripts/chroot.sh's bookworm (a chroot inside a chroot),
    # and `make deb` would apt-get its tools into the shared sid chroot.
    "test_package.py": "installs the packages into a bookworm chroot: the host's job",
    # A Slurm cluster of its own (daemons, cgroup v1 freezer, useradd): the host's.
    "test_slurm.py": "starts a Slurm cluster of its own: the host's job",
    # The matrix itself (no chroots within chroots); sid's PyTorch is tested by
    # the matrix's torch part, so test_torch.py here would be the same run twice.
    "test_matrix": "the matrix itself: no chroot inside a chroot",
    "test_torch.py": "already run against sid's PyTorch by the matrix's torch part",
}


def copy_checkout(dest):
    """Copies the checkout's files (tracked and new, not ignored: no build dirs) to
    DEST, so the build in sid never touches the live tree."""
    r = subprocess.run(["git", "-C", harness.ROOT, "ls-files", "-z", "-co", "--exclude-standard"],
                       capture_output=True, timeout=60)
    if r.returncode == 0:
        files = [f for f in r.stdout.decode().split("\0") if f and
                 os.path.lexists(os.path.join(harness.ROOT, f))]
        tar = subprocess.run(["tar", "-C", harness.ROOT, "--null", "-T", "-", "-cf", "-"],
                             input="\0".join(files).encode(), capture_output=True, timeout=120)
    else:  # not a git checkout (a release tarball): everything but the build dirs
        tar = subprocess.run(["tar", "-C", harness.ROOT, "--exclude=./build*", "-cf", "-", "."],
                             capture_output=True, timeout=120)
    if tar.returncode != 0:
        raise RuntimeError("tar of the checkout: %s" % tar.stderr.decode()[-500:])
    os.makedirs(dest)
    subprocess.run(["tar", "-C", dest, "-xf", "-"], input=tar.stdout, check=True, timeout=120)


def sid_suite(rep):
    """Builds a copy of the checkout in sid (GCC 16, glibc 2.43), warning-free, and runs
    its own suite there (the normal build: the ASan+UBSan pass is the host's). True when
    both hold."""
    tag = "sid"
    try:
        ensure("sid")
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        rep.say("FAIL sid: the chroot: %s" % e)
        return False
    with harness.Sandbox("sid") as sb:
        src = os.path.join(sb.tmp, "src")
        copy_checkout(src)
        t0 = time.monotonic()
        r = run_in("sid", src, "gcc --version | head -1; ldd --version | head -1; "
                   "make -j2 check 2>&1", timeout=1200)
        out = r.stdout + r.stderr
        head = out.splitlines()[:2]
        rep.say("# sid: %s; %s; build in %.0fs" % (head[0] if head else "?",
                                                   head[1] if len(head) > 1 else "?",
                                                   time.monotonic() - t0))
        warnings = [l for l in out.splitlines() if re.search(r"\bwarning\b", l, re.I)]
        ok = rep.result(r.returncode == 0 and not warnings, tag,
                        "the project builds warning-free there (-Werror, and no warning line)",
                        "make exited %d; %s" % (r.returncode,
                                                "\n".join((warnings or out.splitlines())[-20:])))
        if not ok:
            return False
        for pat, why in SUITE_EXCLUDES.items():
            rep.say("# sid: not run there: %s (%s)" % (pat, why))
        progs = suite_programs(src)
        shards = split(progs, SUITE_SHARDS)
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(len(shards)) as pool:
            runs = list(pool.map(lambda sh: suite_shard(src, sh), shards))
        passed = failed = 0
        seen = []
        for shard, (rc, out) in zip(shards, runs):
            rep.say("# sid: shard of %d programs, exit %s" % (len(shard), rc))
            p, f = rep.relay(out, tag)
            passed, failed = passed + p, failed + f
            seen += sorted(set(re.findall(r"^(?:/src/)?(\S+?)::\S+ (?:PASSED|FAILED|ERROR|SKIPPED)",
                                          out, re.M)))
            if rc is None:
                rep.say("FAIL sid: a shard of the suite did not finish in %ds" % SUITE_TIMEOUT)
                failed += 1
            ok &= rc == 0
        # Every test file ran (its results were seen), each in one shard.
        ok &= rep.result(sorted(seen) == sorted(progs), tag,
                         "every program of the suite ran there once",
                         "ran %s, expected %s" % (sorted(seen), sorted(progs)))
        ok &= rep.result(ok and failed == 0 and passed >= 100, tag,
                         "the project's own suite passes there (%d tests in %.0fs, %d programs "
                         "in %d shards at once)" % (passed, time.monotonic() - t0, len(progs),
                                                    len(shards)),
                         "%d passed, %d failed" % (passed, failed))
    return ok


# The suite in sid runs in this many shards at once, each its own chroot run (own
# /dev/shm, /tmp and pid namespace): most of its programs wait on timers and on
# processes they start, not on the CPU.
SUITE_SHARDS = 2
SUITE_TIMEOUT = 1500
# Rough relative run times of the slowest programs, only to balance the shards (a
# program missing here counts 10; a wrong guess costs time, never a result).
SUITE_WEIGHTS = {"test_holders.py": 100, "test_pressure.py": 40, "test_recovery.py": 30,
                 "test_manager.py": 25, "test_identity.py": 20, "test_dirs.py": 18,
                 "test_bench.py": 15, "test_hardening.py": 12, "test_install.py": 10}


def suite_programs(src):
    """The test files pytest collects in SRC (relative paths: each C unit program's
    source, each fuzz harness, each Python test module), minus SUITE_EXCLUDES."""
    unit, fuzz, proc = (os.path.join(src, "tests", d) for d in ("unit", "fuzz", "proc"))
    progs = ["tests/unit/" + f for f in sorted(os.listdir(unit))
             if f.startswith("test_") and f.endswith((".c", ".py"))]
    progs += ["tests/fuzz/" + f for f in sorted(os.listdir(fuzz))
              if f.startswith("fuzz_") and f.endswith(".c")
              and f not in ("fuzz_util.c", "fuzz_replay.c")]
    progs += ["tests/proc/" + f for f in sorted(os.listdir(proc))
              if f.startswith("test_") and f.endswith(".py")]
    return [p for p in progs if not any(pat in p for pat in SUITE_EXCLUDES)]


def split(progs, n):
    """PROGS in N shards of about equal weight (the heaviest first, each to the lightest
    shard), each in the suite's order."""
    shards = [[] for _ in range(n)]
    load = [0] * n
    for p in sorted(progs, key=lambda p: -SUITE_WEIGHTS.get(os.path.basename(p), 10)):
        i = load.index(min(load))
        shards[i].append(p)
        load[i] += SUITE_WEIGHTS.get(os.path.basename(p), 10)
    return [sorted(sh, key=progs.index) for sh in shards if sh]


def suite_shard(src, progs):
    """Runs pytest on the test files PROGS in sid; (exit status or None on timeout,
    output)."""
    args = ["python3", "-m", "pytest", "--build", "build"]
    try:
        r = run_in("sid", src, " ".join(args + progs) + " 2>&1", timeout=SUITE_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        out = e.stdout or ""
        return None, out.decode(errors="replace") if isinstance(out, bytes) else out
    return r.returncode, r.stdout


def run_in(release, src, script, timeout):
    """Runs a shell SCRIPT in SRC (bound at /src) inside the release's chroot."""
    return run(release, ["sh", "-c", "cd /src && " + script], binds=["%s:/src" % src],
               env={"SHMWARDEN_ROOT": "/src", "SHMWARDEN_BUILD": "/src/build"},
               timeout=timeout)


# The parts of the matrix, in the order their results are printed. They share nothing
# (each chroot run has its own namespaces, /dev/shm and /tmp; the sid build works in a
# copy of the checkout), so they run at once: they spend most of their time in Python
# and PyTorch starting up and in the manager's 2 s linger, which overlap well.
PARTS = [("torch-trixie", "trixie's PyTorch", lambda rep: torch_matrix("trixie", rep)),
         ("torch-sid", "sid's PyTorch", lambda rep: torch_matrix("sid", rep)),
         ("sid-suite", "the sid build and suite", sid_suite)]


def main(argv):
    """Runs the named PARTS (all by default) at once; prints each part's results
    together, then how long each took. Exits like a test program."""
    names = [p[0] for p in PARTS]
    bad = [a for a in argv if a not in names]
    if bad:
        sys.stderr.write("usage: test_matrix.py [%s]...\n" % " ".join(names))
        return 2
    parts = [p for p in PARTS if not argv or p[0] in argv]
    if sanitized_skip("the PyTorch matrix"):
        return 0
    reps = {name: Report() for name, _, _ in parts}
    took = {}

    def timed(name, fn):
        t0 = time.monotonic()
        try:
            return fn(reps[name])
        except Exception as e:  # noqa: BLE001 — reported as that part's failure
            reps[name].say("FAIL %s: %s: %s" % (name, type(e).__name__, e))
            return False
        finally:
            took[name] = time.monotonic() - t0

    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(len(parts)) as pool:
        futs = {name: pool.submit(timed, name, fn) for name, _, fn in parts}
        oks = {name: f.result() for name, f in futs.items()}
    for name, _, _ in parts:
        reps[name].flush()
    print("# the matrix took %.0fs (wall, its parts at once): %s" % (
        time.monotonic() - t0,
        ", ".join("%s %.0fs" % (what, took[name]) for name, what, _ in parts)))
    return 0 if all(oks.values()) else 1


def pytest_run(capsys, what):
    """The body of test_matrix.py's pytest test: skipped in the sanitized pass, the
    parts' result lines written to the terminal as they come (the output of `make test`
    reports each version's), failed when a part failed."""
    import pytest
    if harness.SANITIZED:
        pytest.skip("%s runs with the normal build only (the chroots have no ASan runtime "
                    "of the host's compiler)" % what)
    with capsys.disabled():
        print()
        assert main([]) == 0, "%s failed (its lines above)" % what


def ensure_all():
    """Builds every release's chroot at once (the downloads overlap); 0 when all ready."""
    t0 = time.monotonic()
    procs = {rel: subprocess.Popen([CHROOT_SH, "ensure", rel] + packages(rel),
                                   stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
             for rel in RELEASES}
    bad = [rel for rel, p in procs.items() if p.wait() != 0]
    if bad:
        print("the PyTorch matrix's chroots are not ready (%s): chroot.sh said why" % ", ".join(bad),
              file=sys.stderr)
        return 1
    print("the PyTorch matrix's chroots are ready (%s, under %s) in %.0fs" %
          (", ".join(RELEASES), os.environ.get("SHMWARDEN_CHROOT_CACHE", "/var/cache/shmwarden"),
           time.monotonic() - t0))
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["ensure"]:
        sys.exit(ensure_all())
    sys.stderr.write("usage: matrix.py ensure\n")
    sys.exit(2)
