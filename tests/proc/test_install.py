"""test_install.py — `make install` into a private DESTDIR holds what the README
promises, with paths rewritten to PREFIX; scripts/use-with-pytorch.sh installs,
reports and undoes shmwarden in a FAKE torch directory (never the real one).

make runs with -o all -o lib: it installs what the build under test holds and never
rebuilds it (a rebuild here would mix flags into a sanitized build).
"""
import os
import re
import shutil
import stat
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Sandbox  # noqa: E402

SCRIPT = os.path.join(harness.ROOT, "scripts", "use-with-pytorch.sh")


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def read(path):
    with open(path) as f:
        return f.read()


def make_install(dest, prefix):
    r = subprocess.run(["make", "-s", "-C", harness.ROOT, "-o", "all", "-o", "lib", "install",
                        "BUILD=" + harness.BUILD, "DESTDIR=" + dest, "PREFIX=" + prefix],
                       capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, MAKEFLAGS="", MFLAGS="", MAKELEVEL=""))
    expect(r.returncode == 0, "make install: %s%s" % (r.stdout, r.stderr))
    return dest + prefix


def readme_promises():
    """The paths of the README's Install table, relative to PREFIX (`.timer` after
    `x.service` means x.timer)."""
    text = read(os.path.join(harness.ROOT, "README.md"))
    table = text.split("## Install", 1)[1].split("\n## ", 1)[0]
    paths = []
    for line in table.splitlines():
        if not line.startswith("| `"):
            continue
        for tok in re.findall(r"`([^`]+)`", line.split("|")[1]):
            if tok.startswith(".") and paths:
                tok = re.sub(r"\.[^./]+$", tok, paths[-1])
            paths.append(tok)
    expect(len(paths) >= 10, "README install table: %s" % paths)
    return paths


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_install_tree_is_what_the_readme_promises():
    with Sandbox("install") as sb:
        dest = os.path.join(sb.tmp, "stage")
        root = make_install(dest, "/usr/local")
        expect(os.listdir(dest) == ["usr"] and os.listdir(dest + "/usr") == ["local"],
               "outside PREFIX: %s" % os.listdir(dest))
        for p in readme_promises():
            expect(os.path.lexists(os.path.join(root, p)), "README promises %s: missing" % p)
        sw = os.path.join(root, "bin", "shmwarden")
        expect(os.path.isfile(sw) and mode(sw) == 0o755, "shmwarden mode %o" % mode(sw))
        expect(read_bytes(sw) == read_bytes(harness.SHMWARDEN), "installed binary differs")
        link = os.path.join(root, "bin", "torch_shm_manager")
        expect(os.path.islink(link) and os.readlink(link) == "shmwarden",
               "torch_shm_manager link: %r" % (os.path.islink(link) and os.readlink(link)))
        r = subprocess.run([sw, "--version"], capture_output=True, text=True, timeout=30)
        expect(r.returncode == 0 and r.stdout.startswith("shmwarden "), "installed --version")
        # The drop-in, run through the installed link as PyTorch runs it.
        m = sb.spawn_manager(exe=link)
        expect(m.sock and m.sock.startswith(sb.tmp), "installed drop-in: %r" % m.line)
        c = m.client()
        c.register(sb.name(1))
        c.close()
        expect(m.wait(15) == 0, "installed drop-in exit")

        for src, dst in (("man/shmwarden.1", "share/man/man1/shmwarden.1"),
                         ("man/libshmwarden.3", "share/man/man3/libshmwarden.3")):
            p = os.path.join(root, dst)
            expect(mode(p) == 0o644 and read(p) == read(os.path.join(harness.ROOT, src)),
                   "%s: mode %o or contents" % (dst, mode(p)))
        units = os.path.join(root, "lib", "systemd", "system")
        svc = read(os.path.join(units, "shmwarden-sweep.service"))
        execs = re.findall(r"^ExecStart=(\S+)", svc, re.M)
        expect(execs == ["/usr/local/bin/shmwarden"], "ExecStart: %s" % execs)
        timer = read(os.path.join(units, "shmwarden-sweep.timer"))
        expect("OnUnitActiveSec=" in timer and "WantedBy=timers.target" in timer, "timer")
        for u in ("shmwarden-sweep.service", "shmwarden-sweep.timer"):
            expect(mode(os.path.join(units, u)) == 0o644, "%s mode" % u)
        snippet = os.path.join(root, "lib", "tmpfiles.d", "shmwarden.conf")
        expect(mode(snippet) == 0o644 and
               read(snippet) == read(os.path.join(harness.ROOT, "scripts", "shmwarden.tmpfiles")),
               "tmpfiles.d snippet: mode %o or contents" % mode(snippet))
        data = os.path.join(root, "share", "shmwarden")
        cron = read(os.path.join(data, "shmwarden.cron"))
        entries = [l for l in cron.splitlines() if l and not l.startswith("#")]
        # root's line reads /etc/default/shmwarden (SHMWARDEN_TMPDIRS), then sweeps.
        expect(len(entries) == 1 and entries[0].split()[5] == "root" and
               "/etc/default/shmwarden; export SHMWARDEN_TMPDIRS; "
               "/usr/local/bin/shmwarden sweep " in entries[0], "cron entry: %s" % entries)
        expect(mode(os.path.join(data, "shmwarden.default")) == 0o644, "default file mode")
        expect(mode(os.path.join(data, "shmwarden.cron")) == 0o644, "cron mode")
        script = os.path.join(data, "use-with-pytorch.sh")
        expect(mode(script) == 0o755 and
               "default_manager=/usr/local/bin/torch_shm_manager" in read(script), "script")
        # The library, when this tree has it.
        if os.path.exists(os.path.join(harness.ROOT, "include", "shmwarden.h")):
            for p in ("include/shmwarden.h", "lib/libshmwarden.a", "lib/libshmwarden.so.0",
                      "lib/pkgconfig/shmwarden.pc"):
                expect(os.path.isfile(os.path.join(root, p)), "library file %s missing" % p)
            expect(os.readlink(os.path.join(root, "lib", "libshmwarden.so")) ==
                   "libshmwarden.so.0", "libshmwarden.so link")


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def test_install_rewrites_paths_to_prefix():
    with Sandbox("install2") as sb:
        root = make_install(os.path.join(sb.tmp, "stage"), "/opt/shmw")
        svc = read(os.path.join(root, "lib/systemd/system/shmwarden-sweep.service"))
        expect(re.findall(r"^ExecStart=(\S+)", svc, re.M) == ["/opt/shmw/bin/shmwarden"],
               "ExecStart: %s" % svc)
        cron = read(os.path.join(root, "share/shmwarden/shmwarden.cron"))
        expect("/opt/shmw/bin/shmwarden sweep" in cron and "/usr/local" not in cron, "cron")
        script = read(os.path.join(root, "share/shmwarden/use-with-pytorch.sh"))
        expect("default_manager=/opt/shmw/bin/torch_shm_manager" in script, "script default")
        man = read(os.path.join(root, "share/man/man1/shmwarden.1"))
        # Every path rewritten; /usr/local is left only where the page says it is the
        # default PREFIX.
        expect("/opt/shmw/share/shmwarden/use\\-with\\-pytorch.sh" in man and
               "/opt/shmw/lib/systemd/system/shmwarden\\-sweep.timer" in man and
               re.findall(r"/usr/local\S*", man) == ["/usr/local"],
               "man page paths: %s" % re.findall(r"/usr/local\S*", man))
        expect(os.path.islink(os.path.join(root, "bin", "torch_shm_manager")), "link")


# ---- use-with-pytorch.sh against a fake torch --------------------------------------------

FAKE = "#!/bin/sh\necho pytorch-own-manager\n"


def fake_torch(sb, content=FAKE):
    d = os.path.join(sb.tmp, "site-packages", "torch")
    os.makedirs(os.path.join(d, "bin"), exist_ok=True)
    t = os.path.join(d, "bin", "torch_shm_manager")
    with open(t, "w") as f:
        f.write(content)
    os.chmod(t, 0o751)
    return d, t


def use(sb, torch_dir, *args, manager=None):
    argv = ["bash", SCRIPT, "--torch-dir", torch_dir,
            "--manager", manager or harness.TORCH_SHM_MANAGER] + list(args)
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=sb.env,
                          stdin=subprocess.DEVNULL)


def test_use_with_pytorch_replace_and_restore():
    with Sandbox("usetorch") as sb:
        d, target = fake_torch(sb)
        backup = target + ".pytorch"
        # status's exit status says which (0 shmwarden, 1 PyTorch's own, 3 cannot tell).
        r = use(sb, d, "status")
        expect(r.returncode == 1 and r.stdout.startswith("pytorch:"),
               "status: %d %r" % (r.returncode, r.stdout))
        r = use(sb, d, "install")
        expect(r.returncode == 0 and r.stdout.startswith("installed:"),
               "install: %d %r %r" % (r.returncode, r.stdout, r.stderr))
        expect(os.path.islink(target) and os.readlink(target) == harness.TORCH_SHM_MANAGER,
               "target: %r" % os.readlink(target))
        expect(read(backup) == FAKE and mode(backup) == 0o751, "backup content or mode")
        r = use(sb, d, "status")
        expect(r.returncode == 0 and r.stdout.startswith("shmwarden:"),
               "status: %d %r" % (r.returncode, r.stdout))
        # PyTorch runs its torch_shm_manager path: that is shmwarden now.
        m = sb.spawn_manager(exe=target)
        expect(m.sock and m.sock.startswith(sb.tmp), "through the torch path: %r" % m.line)
        c = m.client()
        c.register(sb.name(1))
        c.close()
        expect(m.wait(15) == 0, "manager exit")
        r = use(sb, d, "install")
        expect(r.returncode == 0 and "already installed" in r.stdout, "again: %r" % r.stdout)
        r = use(sb, d, "uninstall")
        expect(r.returncode == 0 and "restored" in r.stdout, "uninstall: %r %r" % (r.stdout, r.stderr))
        expect(not os.path.islink(target) and read(target) == FAKE and mode(target) == 0o751,
               "original not restored")
        expect(not os.path.exists(backup), "backup left")
        r = use(sb, d, "uninstall")
        expect(r.returncode == 0 and "not installed" in r.stdout, "uninstall again: %r" % r.stdout)
        # PyTorch upgraded over the link: install keeps the new manager as the backup.
        use(sb, d, "install")
        os.unlink(target)
        with open(target, "w") as f:
            f.write(FAKE + "# v2\n")
        r = use(sb, d, "status")
        expect(r.returncode == 1 and r.stdout.startswith("pytorch:"),
               "after upgrade: %d %r" % (r.returncode, r.stdout))
        r = use(sb, d, "install")
        expect(r.returncode == 0 and os.path.islink(target) and read(backup) == FAKE + "# v2\n",
               "install after upgrade: %r %r" % (r.stdout, r.stderr))
        r = use(sb, d, "uninstall")
        expect(r.returncode == 0 and read(target) == FAKE + "# v2\n", "restore after upgrade")
        expect(sorted(os.listdir(os.path.dirname(target))) == ["torch_shm_manager"],
               "left behind: %s" % os.listdir(os.path.dirname(target)))


def test_use_with_pytorch_refuses_and_usage():
    with Sandbox("usetorch2") as sb:
        d, target = fake_torch(sb)
        for args, want in ((["install"], 1), ([], 2), (["bogus"], 2),
                           (["install", "status"], 2), (["--torch-dir"], 2)):
            if args == ["install"]:
                r = use(sb, d, *args, manager="/bin/true")  # not shmwarden
            elif args == ["--torch-dir"]:
                r = subprocess.run(["bash", SCRIPT, "--torch-dir"], capture_output=True,
                                   text=True, timeout=60)
            else:
                r = use(sb, d, *args)
            expect(r.returncode == want and r.stderr, "%s: %d %r" % (args, r.returncode, r.stderr))
            expect(read(target) == FAKE and not os.path.islink(target), "%s changed it" % args)
        r = use(sb, os.path.join(sb.tmp, "nosuch"), "status")
        expect(r.returncode == 3 and "does not exist" in r.stderr,
               "status of a missing torch: %d %r" % (r.returncode, r.stderr))
        r = use(sb, os.path.join(sb.tmp, "nosuch"), "install")
        expect(r.returncode == 1 and "does not exist" in r.stderr,
               "install into a missing torch: %d %r" % (r.returncode, r.stderr))
        # A link someone else made is not ours to replace, nor to restore over.
        os.rename(target, target + ".mine")
        os.symlink("/bin/true", target)
        r = use(sb, d, "install")
        expect(r.returncode == 1 and os.readlink(target) == "/bin/true", "replaced a foreign link")
        r = use(sb, d, "status")
        expect(r.returncode == 3 and r.stdout.startswith("unknown:"),
               "status of a foreign link: %d %r" % (r.returncode, r.stdout))
        r = subprocess.run(["bash", SCRIPT, "--help"], capture_output=True, text=True)
        expect(r.returncode == 0 and r.stdout.startswith(
            "Usage: use-with-pytorch.sh [OPTIONS] install|uninstall|status\n") and
            "--torch-dir" in r.stdout, "help: %r" % r.stdout[:200])
        # The help documents status's exit statuses, the ones this test checks.
        expect("status: 0 PyTorch runs shmwarden, 1 PyTorch runs its own manager, 2 usage, 3 "
               "cannot\ntell" in r.stdout, "help lacks status's exit statuses: %r" % r.stdout)
        for args in (["status", "--bogus"], ["status", "install"]):
            r = use(sb, d, *args)
            # Two lines, as shmwarden's own usage errors: what was wrong, where help is.
            lines = r.stderr.splitlines()
            expect(r.returncode == 2 and len(lines) == 2 and lines[0].startswith(
                "use-with-pytorch: ") and lines[1] ==
                "Try 'use-with-pytorch.sh --help' for more information.",
                "%s: %d %r" % (args, r.returncode, r.stderr))


def test_use_with_pytorch_bind_mount():
    # In a private mount namespace: the bind mount cannot outlive the test, whatever happens.
    unshare = shutil.which("unshare")
    probe = unshare and subprocess.run([unshare, "-m", "--propagation", "private", "true"],
                                       capture_output=True, timeout=30)
    if not probe or probe.returncode != 0:
        print("note: no private mount namespace here (root needed); --bind not checked")
        return
    with Sandbox("usebind") as sb:
        d, target = fake_torch(sb)
        base = ["bash", SCRIPT, "--torch-dir", d, "--manager", harness.TORCH_SHM_MANAGER]
        q = lambda a: " ".join("'%s'" % x for x in a)  # noqa: E731
        steps = "; echo '--'; ".join([
            q(base + ["install", "--bind"]), q(base + ["status"]),
            "stat -L -c %%d:%%i %s %s" % (q([target]), q([os.path.realpath(harness.SHMWARDEN)])),
            q(base + ["install", "--bind"]), q(base + ["uninstall"]), q(base + ["status"]),
            "cat " + q([target])])
        r = subprocess.run([unshare, "-m", "--propagation", "private", "bash", "-c", steps],
                           capture_output=True, text=True, timeout=120, env=sb.env)
        out = r.stdout.split("--\n")
        expect(len(out) == 7, "steps: %r %r" % (r.stdout, r.stderr))
        expect(out[0].startswith("installed:") and "bind-mounted" in out[0], "bind: %r" % out[0])
        expect(out[1].startswith("shmwarden:") and "bind-mounted" in out[1], "status: %r" % out[1])
        ids = out[2].split()
        expect(len(ids) == 2 and ids[0] == ids[1], "not the same file: %r" % out[2])
        expect("already installed" in out[3], "again: %r" % out[3])
        expect("unmounted" in out[4], "uninstall: %r" % out[4])
        expect(out[5].startswith("pytorch:") and out[6] == FAKE, "after: %r %r" % (out[5], out[6]))
        expect(read(target) == FAKE and not os.path.exists(target + ".pytorch"), "file changed")



def test_use_with_pytorch_finds_the_python_that_has_torch():
    """A pyenv or venv python3 first on PATH has no torch (Debian's python3-torch is in
    /usr/bin/python3's path): without --python the script asks each python3, Debian's
    first, and uses the one that has torch; with --python, that one or a clear refusal;
    with none, a sentence naming what it tried. Only `status` runs: nothing is changed."""
    probe = subprocess.run(["/usr/bin/python3", "-c", "import importlib.util as u, os; "
                            "s = u.find_spec('torch'); print(os.path.dirname(s.origin))"],
                           capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        print("note: /usr/bin/python3 has no torch here; discovery not checked")
        return
    real_torch = probe.stdout.strip()
    with Sandbox("usepython") as sb:
        shim = os.path.join(sb.tmp, "shim")
        os.mkdir(shim)
        torchless = os.path.join(shim, "python3")
        with open(torchless, "w") as f:  # a real Python that cannot see dist-packages
            f.write('#!/bin/sh\nexec /usr/bin/python3 -S "$@"\n')
        os.chmod(torchless, 0o755)
        env = dict(sb.env, PATH=shim + ":/usr/bin:/bin")
        env.pop("PYTHON", None)
        base = ["bash", SCRIPT, "--manager", harness.TORCH_SHM_MANAGER]

        def run(args, e=env):
            return subprocess.run(base + args, capture_output=True, text=True, timeout=120,
                                  env=e, stdin=subprocess.DEVNULL)

        r = run(["status"])
        expect((r.returncode, r.stdout.split(":")[0]) in ((0, "shmwarden"), (1, "pytorch")) and
               real_torch + "/bin/torch_shm_manager" in r.stdout,
               "status through PATH's torchless python3: %d %r %r" % (r.returncode, r.stdout,
                                                                       r.stderr))
        for args, e in ((["--python", torchless, "status"], env),
                        (["--python=" + torchless, "status"], env),
                        (["status"], dict(env, PYTHON=torchless))):
            r = run(args, e)
            expect(r.returncode == 3 and r.stderr == "use-with-pytorch: %s cannot import torch "
                   "(use --python for the Python that has it, or --torch-dir)\n" % torchless,
                   "%s: %d %r" % (args, r.returncode, r.stderr))
        r = run(["--python", os.path.join(sb.tmp, "nosuch"), "status"])
        expect(r.returncode == 3 and "cannot run %s/nosuch" % sb.tmp in r.stderr,
               "missing python: %r" % r.stderr)
        # No python3 at all has torch: hide it in a private mount namespace.
        unshare = shutil.which("unshare")
        inner = 'mount -t tmpfs none "$1" && shift && exec "$@"'
        r = subprocess.run([unshare or "unshare", "-m", "--propagation", "private", "sh", "-c",
                            inner, "sh", real_torch] + base + ["status"], capture_output=True,
                           text=True, timeout=120, env=env, stdin=subprocess.DEVNULL)
        if r.returncode != 0 and "mount" in r.stderr and "tried" not in r.stderr:
            print("note: no private mount namespace here; the none-found case not checked")
            return
        tried = r.stderr.split("(tried: ", 1)[-1].split(")", 1)[0].split()
        expect(r.returncode == 3 and r.stderr.startswith("use-with-pytorch: no python3 here "
                                                         "can import torch (tried: ") and
               r.stderr.endswith("); give --python PY for the Python that has it, or "
                                 "--torch-dir DIR\n") and torchless in tried and
               os.path.realpath("/usr/bin/python3") in tried and len(tried) == len(set(tried)),
               "none: %d %r" % (r.returncode, r.stderr))



def test_use_with_pytorch_relative_manager_and_dangling_link():
    """A relative --manager is linked by its absolute path (a relative link would be
    read from torch/bin and lead nowhere), and status does not call a dangling link
    installed (two failed stats compared equal)."""
    with Sandbox("userel") as sb:
        d, target = fake_torch(sb)
        root = os.path.dirname(os.path.dirname(os.path.abspath(harness.TORCH_SHM_MANAGER)))
        rel = os.path.relpath(harness.TORCH_SHM_MANAGER, root)
        r = subprocess.run(["bash", SCRIPT, "--torch-dir", d, "--manager", rel, "install"],
                           capture_output=True, text=True, timeout=60, env=sb.env,
                           stdin=subprocess.DEVNULL, cwd=root)
        expect(r.returncode == 0, "install: %r %r" % (r.stdout, r.stderr))
        expect(os.path.realpath(target) == os.path.realpath(harness.TORCH_SHM_MANAGER),
               "the link leads to %r" % os.readlink(target))
        expect(os.path.basename(os.readlink(target)) == "torch_shm_manager",
               "the link lost the drop-in's name: %r" % os.readlink(target))
        r = use(sb, d, "uninstall")
        expect(r.returncode == 0 and read(target) == FAKE, "uninstall: %r" % r.stdout)
        # A dangling link where PyTorch's manager was, and no manager where we look.
        os.unlink(target)
        os.symlink(os.path.join(sb.tmp, "gone", "torch_shm_manager"), target)
        r = use(sb, d, "status", manager=os.path.join(sb.tmp, "missing"))
        expect(not r.stdout.startswith("shmwarden:"),
               "a dangling link reported installed: %r" % r.stdout)
        os.unlink(target)


def make_target(target, dest, *assigns):
    r = subprocess.run(["make", "-s", "-C", harness.ROOT, "-o", "all", "-o", "lib", target,
                        "BUILD=" + harness.BUILD, "DESTDIR=" + dest] + list(assigns),
                       capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, MAKEFLAGS="", MFLAGS="", MAKELEVEL=""))
    expect(r.returncode == 0, "make %s %s: %s%s" % (target, " ".join(assigns), r.stdout,
                                                     r.stderr))


def snapshot(top):
    """{relative path: (kind, mode, contents or link target)} of everything under top."""
    out = {}
    for d, dirs, files in os.walk(top):
        for n in dirs + files:
            p = os.path.join(d, n)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                what = ("l", 0, os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                what = ("d", stat.S_IMODE(st.st_mode), None)
            else:
                what = ("f", stat.S_IMODE(st.st_mode), read_bytes(p))
            out[os.path.relpath(p, top)] = what
    return out


def test_uninstall_removes_exactly_what_install_installed():
    """`make uninstall`, with the variables `make install` had, leaves the tree as it was
    before the install: a /usr/local whose directories and others' files exist already
    keeps them all, and nothing of ours is left (our own share/shmwarden goes too). Into
    an empty DESTDIR with every directory set apart, no file or link is left, and a
    second uninstall is no error."""
    with Sandbox("uninstall") as sb:
        dest = os.path.join(sb.tmp, "stage")
        root = dest + "/usr/local"
        for d in ("bin", "include", "lib/pkgconfig", "lib/systemd/system", "lib/tmpfiles.d",
                  "share/man/man1",
                  "share/man/man3"):
            os.makedirs(os.path.join(root, d))
        for f in ("bin/other", "include/other.h", "lib/libother.so.1",
                  "share/man/man1/other.1", "lib/systemd/system/other.service"):
            with open(os.path.join(root, f), "w") as fh:
                fh.write("not shmwarden's: %s\n" % f)
        os.symlink("libother.so.1", os.path.join(root, "lib", "libother.so"))
        before = snapshot(dest)
        make_target("install", dest, "PREFIX=/usr/local")
        installed = set(snapshot(dest)) - set(before)
        expect("usr/local/bin/shmwarden" in installed and
               "usr/local/share/shmwarden/use-with-pytorch.sh" in installed and
               "usr/local/lib/systemd/system/shmwarden-sweep.timer" in installed,
               "make install installed %s" % sorted(installed))
        make_target("uninstall", dest, "PREFIX=/usr/local")
        after = snapshot(dest)
        expect(after == before, "uninstall left %s and removed %s" % (
            sorted(set(after) - set(before)), sorted(set(before) - set(after))))

        # Every directory set apart, into an empty DESTDIR.
        dest2 = os.path.join(sb.tmp, "stage2")
        os.mkdir(dest2)
        dirs = ["PREFIX=/opt/sw", "UNITDIR=/etc/units", "LIBDIR=/opt/lib64",
                "MANDIR=/opt/man", "DATADIR=/opt/data/shmwarden", "INCLUDEDIR=/opt/inc"]
        make_target("install", dest2, *dirs)
        made = snapshot(dest2)
        for p in ("opt/sw/bin/torch_shm_manager", "etc/units/shmwarden-sweep.service",
                  "opt/lib64/libshmwarden.so.0", "opt/man/man1/shmwarden.1",
                  "opt/data/shmwarden/slurm-epilog", "opt/inc/shmwarden.h"):
            expect(p in made, "install with %s lacks %s: %s" % (dirs, p, sorted(made)))
        make_target("uninstall", dest2, *dirs)
        left = sorted(p for p, (kind, _, _) in snapshot(dest2).items() if kind != "d")
        expect(left == [], "uninstall with %s left %s" % (dirs, left))
        expect(not os.path.exists(os.path.join(dest2, "opt/data/shmwarden")),
               "DATADIR, ours alone, was left")
        make_target("uninstall", dest2, *dirs)


harness.main(globals())
