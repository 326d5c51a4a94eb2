"""conftest.py — how pytest runs shmwarden's suite (Debian python3-pytest).

It sits at the top of the checkout, not in tests/, so that pytest reads the options it
adds whatever the command line names (`--build build` included).

    python3 -m pytest [--build DIR] [--sanitized] [-k EXPR] [PATH...]

from the checkout (pytest.ini lists the suite: tests/unit, tests/fuzz, tests/proc). It
collects three kinds of tests, in this order:
  - each case of each C unit program (tests/unit/test_NAME.c, built as
    BUILD/tests/test_NAME: check.h's `--list` names the cases, and one run of the
    program per file runs the cases selected), so `-k journal_reopen` reaches one case;
  - each fuzz harness's replay of its corpora (tests/fuzz/fuzz_NAME.c, built as
    BUILD/tests/test_fuzz_NAME);
  - the process tests, tests/proc/test_*.py: module-level test_* functions, run in the
    order they are written.

Before anything runs, it points the tests at the build (SHMWARDEN_BUILD, SHMWARDEN_ROOT,
SHMWARDEN_SANITIZED, read by tests/proc/harness.py), sets the sanitizers' options, and
makes a private temp base for the whole run (TMPDIR), removed at the end
(harness.reclaim_base: unless it is still the only record of leftover objects). Every test
runs at most 600 s (pytest-timeout; a module says otherwise with a `timeout` mark, or
with the older `# tests/run: timeout N` comment).

Fixtures for process tests: `sb` (a harness.Sandbox: private temp base, unique object
prefix, cleanup of only its own processes and objects even when the test fails),
`shared_sb` (the same, in a base other users can reach, for the multi-user tests),
`build` (the build directory) and `sanitized` (whether it is the ASan+UBSan build).
"""
import os
import re
import subprocess
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.abspath(__file__))
PROC = os.path.join(ROOT, "tests", "proc")
if PROC not in sys.path:
    sys.path.insert(0, PROC)  # harness.py and matrix.py, for the fixtures and the tests

DEFAULT_TIMEOUT = 600
_OLD_TIMEOUT = re.compile(r"^# tests/run: timeout (\d+)$", re.M)
_CASE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RESULT = re.compile(r"^(PASS|FAIL) (\S+?)(?:: (.*))?$")


def pytest_addoption(parser):
    g = parser.getgroup("shmwarden")
    g.addoption("--build", default=os.environ.get("SHMWARDEN_BUILD") or "build",
                help="the build directory to test, relative to the checkout (build)")
    g.addoption("--sanitized", action="store_true",
                default=os.environ.get("SHMWARDEN_SANITIZED") == "1",
                help="the build is the ASan+UBSan one (make test-san)")


def pytest_configure(config):
    build = os.path.join(ROOT, config.getoption("build"))  # an absolute one stays itself
    if not os.access(os.path.join(build, "shmwarden"), os.X_OK):
        raise pytest.UsageError("%s/shmwarden is missing: run make first" % build)
    os.environ.update(SHMWARDEN_BUILD=build, SHMWARDEN_ROOT=ROOT,
                      SHMWARDEN_SANITIZED="1" if config.getoption("sanitized") else "0")
    # ASan: leaks and errors are failures; UBSan stops at the first report.
    os.environ.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1:exitcode=86")
    os.environ.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1:exitcode=87")
    # Every test works under this private base; nothing it makes outlives the run.
    base = tempfile.mkdtemp(prefix="shmw-suite-", dir=os.environ.get("TMPDIR") or "/tmp")
    config.shmwarden_base = base
    os.environ["TMPDIR"] = base
    tempfile.tempdir = None  # Python's own temp files go there too
    if not config.option.basetemp:  # tmp_path's too, gone with the base
        config.option.basetemp = os.path.join(base, "pytest")
    # The tests (like tests/run before them) run from the checkout; pytest has already
    # resolved its arguments against the directory it was started in.
    os.chdir(ROOT)


def pytest_unconfigure(config):
    base = getattr(config, "shmwarden_base", None)
    if base:
        # Not a bare rmtree: the base may hold a sandbox's base that its cleanup kept as
        # the only record of leftover objects (or managers no sandbox made): reclaimed
        # now with the product's sweep, or kept with a line saying why.
        import harness
        harness.reclaim_base(base)


def pytest_collect_file(file_path, parent):
    if file_path.suffix != ".c":
        return None
    if file_path.parent.name == "unit" and file_path.name.startswith("test_"):
        return CUnitFile.from_parent(parent, path=file_path)
    if (file_path.parent.name == "fuzz" and file_path.name.startswith("fuzz_")
            and file_path.name not in ("fuzz_util.c", "fuzz_replay.c")):
        return FuzzReplayFile.from_parent(parent, path=file_path)
    return None


class TestModule(pytest.Module):
    """A test module that calls sys.exit() while being imported (a test program written
    for tests/run might) is a collection error of its own: pytest 9 would end the whole
    session there."""

    def _getobj(self):
        try:
            return super()._getobj()
        except SystemExit as e:
            raise self.CollectError("%s called sys.exit(%r) while being imported: a test "
                                    "module must not exit" % (self.path.name, e.code)) from None


def pytest_pycollect_makemodule(module_path, parent):
    if module_path.name == "__init__.py":
        return None  # a package: pytest's own
    return TestModule.from_parent(parent, path=module_path)


def pytest_collection_modifyitems(config, items):
    """The older way to give a module more time, `# tests/run: timeout N` in its text,
    is still honoured (as each test's limit) when the module has no timeout mark."""
    seen = {}
    for item in items:
        mod = getattr(item, "module", None)
        if mod is None or item.get_closest_marker("timeout"):
            continue
        path = getattr(mod, "__file__", None)
        if path not in seen:
            with open(path, errors="replace") as f:
                m = _OLD_TIMEOUT.search(f.read())
            seen[path] = int(m.group(1)) if m else None
        if seen[path]:
            item.add_marker(pytest.mark.timeout(seen[path]))


# ---- fixtures for the process tests ----

@pytest.fixture
def sb(request):
    """A harness.Sandbox for the test, cleaned up (its own processes, objects and base
    only) however the test ends."""
    import harness
    with harness.Sandbox(request.node.name[5:15] or "t") as s:
        yield s


@pytest.fixture
def shared_sb(request):
    """A Sandbox whose base other users can reach (under /tmp, mode 1777): the suite's
    own base is 0700."""
    import harness
    with harness.Sandbox(request.node.name[5:15] or "t", shared=True) as s:
        yield s


@pytest.fixture(scope="session")
def build():
    return os.environ["SHMWARDEN_BUILD"]


@pytest.fixture(scope="session")
def sanitized():
    return os.environ["SHMWARDEN_SANITIZED"] == "1"


# ---- C programs: unit cases and fuzz replays ----

class CProgramFailure(Exception):
    pass


def _build_dir():
    return os.environ["SHMWARDEN_BUILD"]


class CUnitFile(pytest.File):
    """tests/unit/test_NAME.c: its cases, as the program BUILD/tests/test_NAME lists them."""

    def program(self):
        return os.path.join(_build_dir(), "tests", self.path.stem)

    def collect(self):
        prog = self.program()
        if not os.access(prog, os.X_OK):
            raise self.CollectError("%s is missing: run make check" % prog)
        r = subprocess.run([prog, "--list"], capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        names = [n for n in r.stdout.splitlines() if _CASE.match(n)]
        if r.returncode != 0 or not names:
            raise self.CollectError("%s --list: exit %d, %d cases\n%s" %
                                    (prog, r.returncode, len(names), r.stderr[-2000:]))
        self._all = names
        for n in names:
            item = CUnitCase.from_parent(self, name=n)
            # The program's own run is bounded by DEFAULT_TIMEOUT (below), with a clearer
            # message than pytest-timeout's.
            item.add_marker(pytest.mark.timeout(DEFAULT_TIMEOUT + 60))
            yield item

    def results(self):
        """Runs the program once, with the names of the cases selected in this file (all
        of them: no name, so a run of the whole file is the run it always was), and
        returns {case: None (passed) or why it failed}."""
        if hasattr(self, "_results"):
            return self._results
        mine = [i.name for i in self.session.items if i.parent is self]
        argv = [self.program()] + ([] if mine == self._all else mine)
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=DEFAULT_TIMEOUT,
                               stdin=subprocess.DEVNULL, errors="replace")
            out, rc = r.stdout + r.stderr, r.returncode
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) \
                else (e.stdout or "")
            rc = "timeout (%ds)" % DEFAULT_TIMEOUT
        res = {}
        for line in out.splitlines():
            m = _RESULT.match(line)
            if m:
                res[m.group(2)] = None if m.group(1) == "PASS" else (m.group(3) or "failed")
        tail = "\n".join(out.splitlines()[-40:])
        for n in mine:
            if n not in res:
                res[n] = "no result: %s exited with status %s before this case ended " \
                         "(crash or timeout)\n%s" % (os.path.basename(argv[0]), rc, tail)
        if rc != 0 and mine and all(res[n] is None for n in mine):
            # Every case passed, yet the program failed: a sanitizer's report at exit
            # (LeakSanitizer), charged to the last case run.
            res[mine[-1]] = "%s exited with status %s after its cases passed\n%s" % (
                os.path.basename(argv[0]), rc, tail)
        self._results = res
        return res


class CUnitCase(pytest.Item):
    def runtest(self):
        why = self.parent.results().get(self.name)
        if why is not None:
            raise CProgramFailure(why)

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, CProgramFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, "%s %s" % (self.parent.program(), self.name)


class FuzzReplayFile(pytest.File):
    """tests/fuzz/fuzz_NAME.c: BUILD/tests/test_fuzz_NAME replaying its corpora."""

    def collect(self):
        yield FuzzReplay.from_parent(self, name="test_" + self.path.stem)


class FuzzReplay(pytest.Item):
    def program(self):
        return os.path.join(_build_dir(), "tests", self.name)

    def runtest(self):
        prog = self.program()
        if not os.access(prog, os.X_OK):
            raise CProgramFailure("%s is missing: run make check" % prog)
        r = subprocess.run([prog], capture_output=True, text=True, timeout=DEFAULT_TIMEOUT,
                           stdin=subprocess.DEVNULL, errors="replace")
        out = r.stdout + r.stderr
        if r.returncode != 0 or not re.search(r"^PASS ", r.stdout, re.M) or \
                re.search(r"^FAIL ", r.stdout, re.M):
            raise CProgramFailure("%s: exit %d\n%s" % (prog, r.returncode,
                                                       "\n".join(out.splitlines()[-40:])))

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, CProgramFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, self.program()
