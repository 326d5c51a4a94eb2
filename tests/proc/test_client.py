"""test_client.py — libshmwarden as its users see it: the example programs sharing buffers
across unrelated processes, the installed header, libraries and pkg-config file.

The API itself (error paths, fork, threads, SIGKILL + sweep) is tested in
tests/unit/test_client.c. This process is made a child subreaper while these tests run (a
module fixture), so the managers the library double-forks become its children: they are
reaped here, and any still running after a test are ours to kill.
"""
import ctypes
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

import harness
from harness import Sandbox, wait_for

EXAMPLES = os.path.join(harness.BUILD, "examples")
PR_SET_CHILD_SUBREAPER = 36


@pytest.fixture(scope="module", autouse=True)
def subreaper():
    """This process is a child subreaper while this module's tests run (and only then:
    pytest runs other modules in the same process), and reaps what it adopted."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    if prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    try:
        yield
    finally:
        reap_orphans(0)
        prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def reap_orphans(timeout=5.0):
    """Waits for the managers adopted from the library's double fork; kills stragglers.
    Returns how many had to be killed."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return 0
        if pid:
            continue
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
    killed = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == os.getpid():
            os.kill(int(pid), signal.SIGKILL)
            os.waitpid(int(pid), 0)
            killed += 1
    return killed


def example(name, args, env, timeout=60):
    return subprocess.run([os.path.join(EXAMPLES, name)] + list(args), env=env,
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=timeout)


def test_examples_share_through_one_manager():
    """Four producers and twelve consumers, all unrelated processes (exec'd), on one
    manager; when they are gone and the manager has shut down, nothing is left."""
    with Sandbox("client") as sb:
        m = sb.spawn_manager()
        assert m.sock, m.line
        procs = [subprocess.Popen([os.path.join(EXAMPLES, "producer"), "-c", m.sock, "-n", "3",
                                   "-s", str(65536 + 4096 * i), "-p", sb.prefix],
                                  env=sb.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
                 for i in range(4)]
        for p in procs:
            sb.track(p)
        for p in procs:
            out, err = p.communicate(timeout=60)
            assert p.returncode == 0, (out, err)
            assert "3 of 3 consumers verified the buffer" in out, out
            assert out.count("bytes verified") == 3, out
            assert sb.prefix in out, out
        assert m.wait(10) == 0
        assert sb.objects() == [], sb.objects()
        assert sb.manager_dirs() == []
        assert reap_orphans(1) == 0


def test_example_producer_spawns_its_own_manager():
    """SHMWARDEN_MANAGER names the manager; the library spawns it (double fork: it is not the
    producer's child), and it cleans up after everyone has gone."""
    with Sandbox("client") as sb:
        env = dict(sb.env, SHMWARDEN_MANAGER=harness.TORCH_SHM_MANAGER)
        with tempfile.TemporaryFile(mode="w+") as err:
            # stderr to a file: the manager inherits it and outlives the producer.
            r = subprocess.run([os.path.join(EXAMPLES, "producer"), "-n", "2", "-p", sb.prefix],
                               env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=err, text=True, timeout=60)
            err.seek(0)
            assert r.returncode == 0, (r.stdout, err.read())
        assert sb.tmp in r.stdout, r.stdout  # the manager works under the caller's TMPDIR
        assert wait_for(lambda: sb.manager_dirs() == [], 8), sb.manager_dirs()
        assert sb.objects() == []
        assert reap_orphans(5) == 0


def test_example_consumer_reports_errors():
    with Sandbox("client") as sb:
        m = sb.spawn_manager()
        r = example("consumer", [m.sock, sb.name("missing"), "4096"], sb.env)
        assert r.returncode == 1
        assert "cannot open shared object %s" % sb.name("missing") in r.stderr, r.stderr
        r = example("consumer", [os.path.join(sb.tmp, "nothing.sock"), "/x", "1"], sb.env)
        assert r.returncode == 1
        assert "cannot connect to manager at" in r.stderr, r.stderr
        r = example("producer", ["-c", m.sock, "-s", "0"], sb.env)
        assert r.returncode == 1 and "size 0" in r.stderr, r.stderr
        r = example("producer", ["-c", m.sock, "-p", "no-slash"], sb.env)
        assert r.returncode == 1 and "bad name prefix" in r.stderr, r.stderr
        assert m.wait(10) == 0
        assert sb.objects() == []


def exported(path, dynamic):
    args = ["nm", "--defined-only", "-g"] + (["-D"] if dynamic else []) + [path]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return sorted(line.split()[-1] for line in out.splitlines()
                  if len(line.split()) == 3 and line.split()[1] in "TDBRVW")


def test_libraries_export_only_the_public_api():
    so = os.path.join(harness.BUILD, "libshmwarden.so.0")
    syms = exported(so, dynamic=True)
    assert "shmw_create" in syms and "shmw_spawn" in syms, syms
    assert all(s.startswith("shmw_") for s in syms), syms
    out = subprocess.run(["readelf", "-d", so], capture_output=True, text=True, check=True).stdout
    assert "Library soname: [libshmwarden.so.0]" in out, out
    assert os.readlink(os.path.join(harness.BUILD, "libshmwarden.so")) == "libshmwarden.so.0"
    # The archive too: internal helpers (wire_encode, client_*) are local, so a static
    # user may have functions of the same names.
    syms = exported(os.path.join(harness.BUILD, "libshmwarden.a"), dynamic=False)
    assert all(s.startswith("shmw_") for s in syms), syms


def san_flags():
    return ["-fsanitize=address,undefined"] if harness.SANITIZED else []


PROGRAM = r"""
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <shmwarden.h>
/* Same name as the library's internal helper: must not clash when linked statically. */
int wire_encode(void);
int wire_encode(void) { return 7; }
int main(void)
{
	struct shmw_manager *m = NULL;
	int rc = shmw_connect("/nonexistent/manager.sock", 0, &m);
	printf("%s %d %s|%s\n", shmw_version(), rc == -ENOENT, shmw_strerror(-ENOTCONN),
	       shmw_errmsg());
	return wire_encode() == 7 && strcmp(shmw_version(), SHMW_VERSION) == 0 ? 0 : 1;
}
"""


def test_header_is_self_contained_c_and_cxx():
    with Sandbox("client") as sb:
        inc = os.path.join(harness.ROOT, "include")
        src = os.path.join(sb.tmp, "h.c")
        with open(src, "w") as f:
            f.write("#include <shmwarden.h>\nint main(void) { return shmw_size(0) != 0; }\n")
        subprocess.run(["cc", "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror",
                        "-I" + inc, "-fsyntax-only", src], check=True)
        cxx = shutil.which("c++")
        if cxx:
            subprocess.run([cxx, "-std=c++11", "-Wall", "-Wextra", "-Werror", "-I" + inc,
                            "-fsyntax-only", "-x", "c++", src], check=True)


def test_install_then_build_with_pkg_config():
    """The library's half of `make install` (install-lib) into a staging DESTDIR, then a
    program built the way a user would: pkg-config for the flags, dynamically and
    statically."""
    with Sandbox("client") as sb:
        dest = os.path.join(sb.tmp, "stage")
        # -o: take what the build under test holds; never rebuild it here.
        r = subprocess.run(["make", "-s", "-C", harness.ROOT, "-o", "lib", "install-lib",
                            "BUILD=" + os.path.relpath(harness.BUILD, harness.ROOT),
                            "DESTDIR=" + dest, "PREFIX=/usr/local"],
                           capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, MAKEFLAGS=""))
        assert r.returncode == 0, r.stdout + r.stderr
        root = dest + "/usr/local"
        for f in ("include/shmwarden.h", "lib/libshmwarden.a", "lib/libshmwarden.so.0",
                  "lib/pkgconfig/shmwarden.pc"):
            assert os.path.isfile(os.path.join(root, f)), f
        assert os.readlink(root + "/lib/libshmwarden.so") == "libshmwarden.so.0"
        env = dict(os.environ, PKG_CONFIG_PATH=root + "/lib/pkgconfig",
                   PKG_CONFIG_SYSROOT_DIR=dest, PKG_CONFIG_LIBDIR=root + "/lib/pkgconfig")
        pc = subprocess.run(["pkg-config", "--cflags", "--libs", "shmwarden"], env=env,
                            capture_output=True, text=True, check=True).stdout.split()
        assert "-I%s/include" % root in pc and "-lshmwarden" in pc, pc
        ver = subprocess.run(["pkg-config", "--modversion", "shmwarden"], env=env,
                             capture_output=True, text=True, check=True).stdout.strip()
        src = os.path.join(sb.tmp, "prog.c")
        with open(src, "w") as f:
            f.write(PROGRAM)
        dyn, sta = os.path.join(sb.tmp, "dyn"), os.path.join(sb.tmp, "sta")
        subprocess.run(["cc"] + san_flags() + ["-o", dyn, src] + pc, check=True)
        subprocess.run(["cc"] + san_flags() + ["-o", sta, src, "-I" + root + "/include",
                        root + "/lib/libshmwarden.a", "-lpthread"], check=True)
        for prog in (dyn, sta):
            r = subprocess.run([prog], capture_output=True, text=True, timeout=30,
                               env=dict(os.environ, LD_LIBRARY_PATH=root + "/lib"))
            assert r.returncode == 0, (prog, r.stdout, r.stderr)
            assert r.stdout.startswith(ver + " 1 the shared-memory manager is gone|"), r.stdout
            assert "cannot connect to manager at /nonexistent/manager.sock" in r.stdout, r.stdout


if __name__ == "__main__":
    harness.main(globals())
