"""test_check.py — the suite's own machinery: a C unit case run alone by name (check.h),
and what pytest makes of C programs and of test modules written the older way
(conftest.py, harness.main).

The pytest runs here are real ones, in a scratch checkout under the suite's private base:
conftest.py, pytest.ini and harness.py copied in, and a C program built from a demo
source with check.h, whose cases pass, fail, crash and leave a bad exit status.
"""
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PY = "/usr/bin/python3"


def prog(name):
    return os.path.join(os.environ["SHMWARDEN_BUILD"], "tests", name)


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL, **kw)


def cases(name):
    r = run([prog(name), "--list"])
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


# ---- check.h's command line -------------------------------------------------------------

def test_list_names_every_case_in_order_and_runs_none():
    r = run([prog("test_wire"), "--list"])
    assert r.returncode == 0 and r.stderr == ""
    names = r.stdout.split("\n")
    assert names[-1] == "" and names[:2] == ["test_decode_register_and_free",
                                            "test_encode_matches_libshm_layout"], names
    assert not any(n.startswith(("PASS", "FAIL")) or "passed" in n for n in names)
    # The whole run reports the same cases, in the same order.
    full = run([prog("test_wire")])
    assert full.returncode == 0
    ran = [l.split()[1] for l in full.stdout.splitlines() if l.startswith("PASS ")]
    assert ran == names[:-1]


def test_one_case_by_name():
    names = cases("test_wire")
    r = run([prog("test_wire"), names[2]])
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines() == ["PASS %s" % names[2], "1 passed, 0 failed"]


def test_cases_run_in_the_programs_order():
    names = cases("test_wire")
    r = run([prog("test_wire"), names[3], names[0]])
    assert r.stdout.splitlines() == ["PASS %s" % names[0], "PASS %s" % names[3],
                                     "2 passed, 0 failed"]


@pytest.mark.parametrize("bad, says", [
    (["no_such_case"], "no case named 'no_such_case'"),
    (["--bogus"], "unknown option '--bogus'"),
    (["-x"], "unknown option '-x'"),
    ([""], "unknown option ''"),
    (["x%d" % i for i in range(300)], "too many case names"),
    (["x" * 9000], "command line too long"),
])
def test_bad_command_lines_are_refused(bad, says):
    r = run([prog("test_wire")] + bad)
    assert r.returncode == 2, (r.returncode, r.stdout[-300:])
    assert says in r.stderr, r.stderr
    assert "PASS" not in r.stdout or bad == ["no_such_case"]


def test_an_unknown_name_next_to_a_known_one_still_fails():
    names = cases("test_wire")
    r = run([prog("test_wire"), names[0], "nope"])
    assert r.returncode == 2 and "PASS %s" % names[0] in r.stdout
    assert "no case named 'nope'" in r.stderr


# ---- pytest over C programs and older test modules -------------------------------------

DEMO_C = r"""
#include <stdlib.h>
#include "check.h"

static void case_pass(void) { CHECK(1 + 1 == 2); }
static void case_fail(void) { CHECK_EQ_INT(1 + 1, 3); }
static void case_crash(void) { if (getenv("DEMO_CRASH")) abort(); }
static void case_after(void) { CHECK(1); }

int main(void)
{
	RUN(case_pass);
	RUN(case_fail);
	RUN(case_crash);
	RUN(case_after);
	int rc = check_done();
	/* What a LeakSanitizer report at exit looks like from outside: all cases passed,
	 * the status is not 0. */
	return getenv("DEMO_EXIT") && check_total_passed > 0 ? 86 : rc;
}
"""

# (The comment is put together so that this file's own text does not carry it.)
OLD_STYLE = '''"""An old-style module: a bare harness.main(globals()) at the end, its limit in a comment.
# tests/run''' + ''': timeout 3
"""
import os
import time

import harness


def test_old_style_uses_a_sandbox():
    with harness.Sandbox() as sb:
        assert os.path.isdir(sb.tmp) and sb.prefix.startswith("/shmwt_")


def test_old_style_runs_past_its_limit():
    time.sleep(30)


def test_fixture_sandbox(sb):
    open(sb.tmp + "/x", "w").close()
    with open(os.environ["SCRATCH_LOG"], "a") as f:
        f.write(sb.tmp + "\\n")
    raise AssertionError("fails on purpose: its sandbox must still go")


harness.main(globals())
'''


@pytest.fixture
def scratch(tmp_path):
    """A checkout with the suite's machinery, a demo C program and an old-style module."""
    for f in ("conftest.py", "pytest.ini"):
        shutil.copy(os.path.join(ROOT, f), tmp_path / f)
    (tmp_path / "tests" / "unit").mkdir(parents=True)
    (tmp_path / "tests" / "proc").mkdir()
    (tmp_path / "build" / "tests").mkdir(parents=True)
    shutil.copy(os.path.join(ROOT, "tests", "proc", "harness.py"), tmp_path / "tests" / "proc")
    (tmp_path / "tests" / "proc" / "test_old.py").write_text(OLD_STYLE)
    src = tmp_path / "tests" / "unit" / "test_demo.c"
    src.write_text(DEMO_C)
    r = run(["cc", "-std=gnu17", "-Wall", "-Werror", "-I", os.path.join(ROOT, "tests", "unit"),
             "-o", str(tmp_path / "build" / "tests" / "test_demo"), str(src)])
    assert r.returncode == 0, r.stderr
    os.symlink(os.path.join(os.environ["SHMWARDEN_BUILD"], "shmwarden"),
               tmp_path / "build" / "shmwarden")
    return tmp_path


def pytest_in(where, *args, env=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith(("SHMWARDEN_", "PYTEST_"))}
    e.update(env or {})
    return run([PY, "-m", "pytest", "--build", "build"] + list(args), cwd=str(where), env=e)


def outcomes(out):
    """{test's name: PASSED/FAILED...} from pytest -v output."""
    res = {}
    for line in out.splitlines():
        words = line.split()
        if len(words) > 1 and "::" in words[0]:
            res.setdefault(words[0].split("::")[1], words[1])
    return res


def test_pytest_reports_each_c_case(scratch):
    r = pytest_in(scratch, "tests/unit", env={"DEMO_CRASH": "1"})
    out = r.stdout
    assert r.returncode == 1, out
    # The crash takes the crashing case and every case after it.
    assert outcomes(out) == {"case_pass": "PASSED", "case_fail": "FAILED",
                             "case_crash": "FAILED", "case_after": "FAILED"}, out
    assert "(2 != 3)" in out
    assert "no result: test_demo exited with status -6" in out
    assert out.rstrip().splitlines()[-1].startswith("=") and "1 passed" in out.splitlines()[-1]


def test_pytest_k_runs_one_c_case_alone(scratch):
    # DEMO_CRASH is set, but the crashing case is not selected: it must not run at all.
    r = pytest_in(scratch, "tests/unit", "-k", "case_pass", env={"DEMO_CRASH": "1"})
    assert r.returncode == 0, r.stdout
    assert outcomes(r.stdout) == {"case_pass": "PASSED"}, r.stdout
    assert "1 passed, 3 deselected" in r.stdout.splitlines()[-1], r.stdout


def test_pytest_fails_a_program_whose_exit_status_is_bad(scratch):
    r = pytest_in(scratch, "tests/unit", "-k", "case_pass or case_after",
                  env={"DEMO_EXIT": "1"})
    assert r.returncode == 1, r.stdout
    assert outcomes(r.stdout) == {"case_pass": "PASSED", "case_after": "FAILED"}, r.stdout
    assert "exited with status 86 after its cases passed" in r.stdout


def test_old_style_module_under_pytest(scratch):
    log = scratch / "sandboxes.log"
    r = pytest_in(scratch, "tests/proc/test_old.py", env={"SCRATCH_LOG": str(log)})
    out = r.stdout
    assert r.returncode == 1, out
    # harness.main(globals()) did not run the module's tests itself on import; its
    # "# tests/run: timeout 3" comment still bounds each of its tests; and the sb
    # fixture's sandbox is gone although its test failed.
    assert outcomes(out) == {"test_old_style_uses_a_sandbox": "PASSED",
                             "test_old_style_runs_past_its_limit": "FAILED",
                             "test_fixture_sandbox": "FAILED"}, out
    assert "Timeout" in out
    base = log.read_text().strip()
    assert base and not os.path.exists(base), base


def test_a_module_that_cannot_be_imported_stops_nothing_else(scratch):
    (scratch / "tests" / "proc" / "test_broken.py").write_text(
        "import sys\nsys.exit('broken at import')\n")
    r = pytest_in(scratch, "tests/proc", "-k", "uses_a_sandbox or broken")
    assert r.returncode == 1, r.stdout
    assert outcomes(r.stdout) == {"test_old_style_uses_a_sandbox": "PASSED"}, r.stdout
    assert "ERROR tests/proc/test_broken.py" in r.stdout
    last = r.stdout.splitlines()[-1]
    assert "1 passed" in last and "1 error" in last, last


def test_old_style_module_run_as_a_script(scratch):
    e = {k: v for k, v in os.environ.items() if not k.startswith("SHMWARDEN_")}
    e["SCRATCH_LOG"] = str(scratch / "sandboxes.log")
    r = run([PY, str(scratch / "tests" / "proc" / "test_old.py"), "uses_a_sandbox"], env=e,
            cwd="/")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "test_old.py::test_old_style_uses_a_sandbox PASSED" in r.stdout
    assert "1 passed, 2 deselected" in r.stdout.splitlines()[-1], r.stdout
