"""test_chroot.py — scripts/chroot.sh, the cached Debian chroots of the PyTorch matrix:
its loud failures (an unreachable mirror, a bad suite name, a bad --bind), that a broken
chroot is detected and rebuilt rather than used, that two runs take turns on one chroot
(flock), and that `run` gives a private /dev/shm, /tmp and pid namespace.

Nothing here downloads: the cache is a private directory, the mirror a closed local
port, and a "chroot" a directory the test makes (a copy of a few host binaries).
The `run` test uses the real cached trixie chroot of the matrix.
"""
import os
import shutil
import socket
import subprocess
import time

import harness
from harness import Sandbox

SCRIPT = os.path.join(harness.ROOT, "scripts", "chroot.sh")


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def closed_port():
    """A local TCP port nothing listens on (bound, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def chroot_sh(sb, args, mirror=None, timeout=120):
    env = dict(sb.env, SHMWARDEN_CHROOT_CACHE=os.path.join(sb.tmp, "cache"))
    if mirror:
        env["SHMWARDEN_MIRROR"] = mirror
    return subprocess.run([SCRIPT] + args, env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def one_sentence(err):
    lines = [l for l in err.splitlines() if l.strip()]
    return len(lines) == 1 and lines[0].startswith("chroot.sh: ") and lines[0].endswith(".")


def test_unreachable_mirror_fails_loudly():
    with Sandbox("chroot") as sb:
        m = "http://127.0.0.1:%d/debian" % closed_port()
        r = chroot_sh(sb, ["ensure", "sid"], mirror=m)
        expect(r.returncode == 1, "exit %d: %s" % (r.returncode, r.stderr))
        expect(r.stdout == "", "printed a path anyway: %r" % r.stdout)
        expect(one_sentence(r.stderr) and "cannot reach the Debian mirror " + m in r.stderr,
               "not one clear sentence: %r" % r.stderr)
        expect(not os.path.exists(os.path.join(sb.tmp, "cache", "chroot-sid")),
               "made a chroot directory without a mirror")


def fake_chroot(path, stamp=True, dpkg_ok=True):
    """A directory chroot(8) can enter: /bin/sh and a dpkg-query and apt-get that say
    whether the 'chroot' is healthy (shell scripts, run by the host's sh copied in)."""
    for d in ("bin", "usr/bin", "proc", "lib", "lib64", "usr/lib"):
        os.makedirs(os.path.join(path, d), exist_ok=True)
    # The host's dash and the libraries it needs, so the smoke test really runs inside.
    sh = os.path.realpath("/bin/sh")
    shutil.copy(sh, os.path.join(path, "bin", "sh"))
    out = subprocess.run(["ldd", sh], capture_output=True, text=True).stdout
    for tok in out.split():
        if tok.startswith("/") and os.path.exists(tok):
            dst = path + tok
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy(tok, dst)
    for tool in ("env", "grep", "true"):
        exe = shutil.which(tool)
        shutil.copy(exe, os.path.join(path, "usr", "bin", tool))
        for tok in subprocess.run(["ldd", exe], capture_output=True, text=True).stdout.split():
            if tok.startswith("/") and os.path.exists(tok) and not os.path.exists(path + tok):
                os.makedirs(os.path.dirname(path + tok), exist_ok=True)
                shutil.copy(tok, path + tok)
    status = "install ok installed" if dpkg_ok else "install ok half-configured"
    for name, body in (("dpkg-query", 'echo "%s"' % status), ("apt-get", "exit 0")):
        p = os.path.join(path, "usr", "bin", name)
        with open(p, "w") as f:
            f.write("#!/bin/sh\n%s\n" % body)
        os.chmod(p, 0o755)
    if stamp:
        open(os.path.join(path, ".shmwarden-complete"), "w").close()


def test_healthy_chroot_is_used_and_broken_ones_are_rebuilt():
    with Sandbox("chroot") as sb:
        m = "http://127.0.0.1:%d/debian" % closed_port()
        d = os.path.join(sb.tmp, "cache", "chroot-sid")
        fake_chroot(d)
        # Healthy (stamp + smoke test pass): used as it is, no mirror needed.
        r = chroot_sh(sb, ["ensure", "sid"], mirror=m)
        expect(r.returncode == 0 and r.stdout == d + "\n", "healthy: %d %r %r" %
               (r.returncode, r.stdout, r.stderr))
        # No stamp (a build that died half-way), or a smoke test that fails: rebuilt,
        # which here means the unreachable mirror is reported, never the chroot used.
        for broken in (dict(stamp=False), dict(dpkg_ok=False)):
            shutil.rmtree(d)
            fake_chroot(d, **broken)
            r = chroot_sh(sb, ["ensure", "sid"], mirror=m)
            expect(r.returncode == 1 and r.stdout == "" and
                   "cannot reach the Debian mirror" in r.stderr,
                   "broken %s used: %d %r %r" % (broken, r.returncode, r.stdout, r.stderr))


# A dpkg-query and apt-get that keep a list of installed packages in the fake chroot, so
# that `ensure SUITE PKG...` can find PKG missing and install it.
_FAKE_DPKG_QUERY = r"""#!/bin/sh
fmt=$2
shift 2
for p in "$@"; do
	if [ "$p" = dpkg ] || grep -qxF "$p" /var/lib/fake-installed; then
		case "$fmt" in
		*Package*) echo "$p install ok installed" ;;
		*) echo "install ok installed" ;;
		esac
	fi
done
"""
_FAKE_APT_GET = r"""#!/bin/sh
echo "apt-get $*" >> /var/lib/fake-log
case "$1" in
install) shift
	for a in "$@"; do
		case "$a" in -*) ;; *) echo "$a" >> /var/lib/fake-installed ;; esac
	done ;;
esac
exit 0
"""


def fake_apt(path):
    os.makedirs(os.path.join(path, "var", "lib"), exist_ok=True)
    open(os.path.join(path, "var", "lib", "fake-installed"), "w").close()
    for name, body in (("dpkg-query", _FAKE_DPKG_QUERY), ("apt-get", _FAKE_APT_GET),
                       ("dpkg", "#!/bin/sh\nexit 0\n")):
        p = os.path.join(path, "usr", "bin", name)
        with open(p, "w") as f:
            f.write(body)
        os.chmod(p, 0o755)


def serve_release(root, suite):
    """A local HTTP 'mirror' serving only dists/SUITE/Release (all chroot.sh asks of a
    mirror before it installs); returns (server, its URL)."""
    import functools
    import http.server
    import threading
    os.makedirs(os.path.join(root, "dists", suite))
    with open(os.path.join(root, "dists", suite, "Release"), "w") as f:
        f.write("Suite: %s\n" % suite)
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                          functools.partial(Quiet, directory=root))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, "http://127.0.0.1:%d" % srv.server_address[1]


def test_missing_package_is_installed_in_place_not_rebuilt():
    """A chroot that lacks a package the caller needs (a package added to the matrix's
    list after the chroot was built) gets it with apt-get inside: the chroot is kept,
    not built again from nothing. Without a mirror, that fails in one sentence and the
    chroot is left as it was."""
    with Sandbox("chroot") as sb:
        d = os.path.join(sb.tmp, "cache", "chroot-sid")
        fake_chroot(d)
        fake_apt(d)
        keep = os.path.join(d, "kept-across-the-install")
        open(keep, "w").close()
        # No mirror: one sentence, nothing installed, nothing removed.
        r = chroot_sh(sb, ["ensure", "sid", "python3-pytest"],
                      mirror="http://127.0.0.1:%d/debian" % closed_port())
        expect(r.returncode == 1 and r.stdout == "" and one_sentence(r.stderr) and
               "cannot reach the Debian mirror" in r.stderr,
               "unreachable mirror: %d %r %r" % (r.returncode, r.stdout, r.stderr))
        expect(os.path.exists(keep) and os.path.exists(os.path.join(d, ".shmwarden-complete")),
               "the chroot was removed although only a package was missing")
        srv, url = serve_release(os.path.join(sb.tmp, "mirror"), "sid")
        try:
            r = chroot_sh(sb, ["ensure", "sid", "python3-pytest", "dpkg"], mirror=url)
        finally:
            srv.shutdown()
        expect(r.returncode == 0 and r.stdout == d + "\n", "ensure: %d %r %r" %
               (r.returncode, r.stdout, r.stderr))
        expect("installing into the sid chroot: python3-pytest " in r.stderr and
               "building" not in r.stderr, "not installed in place: %r" % r.stderr)
        expect(os.path.exists(keep), "the chroot was rebuilt, not repaired")
        with open(os.path.join(d, "var", "lib", "fake-log")) as f:
            log = f.read().splitlines()
        # Only what was missing is installed (dpkg already was).
        expect(log[-2:] == ["apt-get update -q",
                            "apt-get install -y -q --no-install-recommends python3-pytest"],
               "apt-get calls: %s" % log)
        # Now complete: a second ensure neither needs the mirror nor installs anything.
        r = chroot_sh(sb, ["ensure", "sid", "python3-pytest"],
                      mirror="http://127.0.0.1:%d/debian" % closed_port())
        expect(r.returncode == 0 and r.stdout == d + "\n" and r.stderr == "",
               "second ensure: %d %r %r" % (r.returncode, r.stdout, r.stderr))


def test_two_runs_take_turns_on_one_chroot():
    with Sandbox("chroot") as sb:
        cache = os.path.join(sb.tmp, "cache")
        d = os.path.join(cache, "chroot-sid")
        fake_chroot(d)
        # Hold the chroot's lock as a concurrent build would; ensure must wait for it.
        holder = sb.track(subprocess.Popen(["flock", d + ".lock", "sleep", "3"]))
        harness.wait_for(lambda: os.path.exists(d + ".lock"), 5)
        time.sleep(0.3)
        t0 = time.monotonic()
        r = chroot_sh(sb, ["ensure", "sid"])
        took = time.monotonic() - t0
        expect(r.returncode == 0 and r.stdout == d + "\n", "ensure: %r %r" % (r.stdout, r.stderr))
        expect("waiting for another run" in r.stderr, "did not say it waits: %r" % r.stderr)
        expect(took >= 2.0, "did not wait for the lock: %.2fs" % took)
        expect(holder.wait(10) == 0, "flock holder")


def test_bad_arguments_are_refused():
    with Sandbox("chroot") as sb:
        for args, what in ((["ensure", "../etc"], "not a Debian suite name"),
                           (["ensure", "Sid"], "not a Debian suite name"),
                           (["ensure", ""], "not a Debian suite name"),
                           (["run", "sid", "--", "true"], "run '"),
                           (["frobnicate"], "unknown command"),
                           (["run", "bookworm", "--bind", "/nonexistent-shmw:/x", "--", "true"],
                            "does not exist"),
                           (["run", "bookworm", "--bind", "relative", "--", "true"],
                            "HOSTPATH:/INSIDE"),
                           (["run", "bookworm", "--env", "1X=y", "--", "true"], "NAME=VALUE"),
                           (["run", "bookworm", "--env", "novalue", "--", "true"],
                            "NAME=VALUE")):
            if args[0] == "run" and args[1] == "bookworm":
                os.makedirs(os.path.join(sb.tmp, "cache", "chroot-bookworm"), exist_ok=True)
                open(os.path.join(sb.tmp, "cache", "chroot-bookworm", ".shmwarden-complete"),
                     "w").close()
            r = chroot_sh(sb, args)
            expect(r.returncode != 0 and what in r.stderr and r.stdout == "",
                   "%s: %d %r" % (args, r.returncode, r.stderr))
        r = chroot_sh(sb, [])
        expect(r.returncode == 2 and "ensure SUITE" in r.stderr, "no args: %r" % r.stderr)


def test_run_is_private():
    # The matrix's trixie chroot (make test builds it before the suite; warm, this is
    # a few seconds of checks).
    r = subprocess.run([SCRIPT, "ensure", "trixie"], capture_output=True, text=True,
                       timeout=1800, stdin=subprocess.DEVNULL)
    expect(r.returncode == 0, "ensure trixie: %s" % r.stderr[-2000:])
    with Sandbox("chroot") as sb:
        marker = os.path.join(sb.tmp, "hostdir")
        os.makedirs(marker)
        with open(os.path.join(marker, "f"), "w") as f:
            f.write("from the host\n")
        name = "shmwt_chroot_%d" % os.getpid()
        script = ('echo $$; cat /mnt/host/f; ls -A /dev/shm | wc -l; ls -A /tmp | wc -l; '
                  ': > /dev/shm/%s; : > /tmp/x; echo written > /mnt/host/g; '
                  'unshare -m --propagation private true && echo nested-ok; '
                  'ls /proc | grep -c "^[0-9]"; script -qec "echo pty-ok" /dev/null' % name)
        script += '; echo "env:$SHMW_HOST_ONLY:$SHMW_GIVEN:$TMPDIR:$HOME"'
        r = subprocess.run([SCRIPT, "run", "trixie", "--bind", marker + ":/mnt/host",
                            "--env", "SHMW_GIVEN=a b", "--", "sh", "-c", script],
                           capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, SHMW_HOST_ONLY="leaked", TMPDIR=sb.tmp))
        out = r.stdout.split()
        expect(r.returncode == 0, "run: %d %r %r" % (r.returncode, r.stdout, r.stderr))
        # A shell run by `run` is in its own pid namespace (a child of its pid 1), sees
        # the bound directory, and starts with an empty /dev/shm and /tmp; what it writes
        # there stays there.
        expect(int(out[0]) < 100, "not in a new pid namespace: pid %s" % out[0])
        expect(out[1:4] == ["from", "the", "host"], "bind: %s" % out)
        expect(out[4:6] == ["0", "0"], "/dev/shm or /tmp not private and empty: %s" % out)
        expect(out[6] == "nested-ok", "nested unshare --propagation private failed: %s" % out)
        expect(int(out[7]) <= 6, "sees processes outside its namespace: %s" % out)
        expect(out[8:9] == ["pty-ok"], "no pseudo-terminal inside (openpty): %s %s" %
               (out, r.stderr))
        # The host's environment stays outside (its TMPDIR names a host path); --env
        # passes a variable in, spaces and all.
        expect(r.stdout.splitlines()[-1] == "env::a b:/tmp:/root",
               "environment inside: %r" % r.stdout.splitlines()[-1:])
        expect(not os.path.exists("/dev/shm/" + name), "its /dev/shm leaked to the host's")
        with open(os.path.join(marker, "g")) as f:
            expect(f.read() == "written\n", "a bound directory is not writable through")
        r = subprocess.run([SCRIPT, "run", "trixie", "--", "sh", "-c", "exit 7"],
                           capture_output=True, text=True, timeout=60)
        expect(r.returncode == 7, "exit status not passed on: %d" % r.returncode)


if __name__ == "__main__":
    harness.main(globals())
