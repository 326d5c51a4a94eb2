"""test_package.py — `make deb` builds the Debian packages, lintian-clean, and they work
on a clean Debian bookworm: installed with apt-get into a minbase chroot, the recovery
story runs there with the installed binary (real PyTorch shares tensors through
/usr/bin/torch_shm_manager, everything is SIGKILLed, `/usr/bin/shmwarden sweep` leaves
nothing), and remove and purge leave nothing of them behind.

The chroot is scripts/chroot.sh's cached bookworm (with python3-torch). So that the cache
stays clean for everyone else, the packages go into an overlay of it: the cached tree
is the read-only lower layer, a tmpfs of this test's own the upper one, both mounted in
a private mount namespace that dies with the test. chroot.sh then runs the story in it
(private pid namespace, fresh /proc, private /dev/shm and /tmp).

The packages are built from the source tree with Debian's flags, whatever build the
suite runs: the sanitized run skips this test (the normal run has checked the same
packages). In the matrix's sid chroot, `make deb` builds and runs the unit tests with
Debian's flags and lintian passes there too. LICENSE, debian/copyright, debian/control and debian/changelog must agree on
the license and the people.
# tests/run: timeout 1800
"""
import json
import os
import shlex
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Sandbox  # noqa: E402

CHROOT = os.path.join(harness.ROOT, "scripts", "chroot.sh")
SHARE = os.path.join(harness.ROOT, "scripts", "torch_share.py")
SUITE = "bookworm"
PACKAGES = ("shmwarden", "libshmwarden0", "libshmwarden-dev")


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def skip(name, why):
    print("SKIP %s: %s" % (name, why))


def makefile_version():
    with open(os.path.join(harness.ROOT, "Makefile")) as f:
        for line in f:
            if line.startswith("VERSION"):
                return line.split("=", 1)[1].strip()
    raise AssertionError("no VERSION in the Makefile")


def deb_contents(deb):
    """{path: (mode string, link target or None)} of a .deb."""
    r = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True, check=True)
    out = {}
    for line in r.stdout.splitlines():
        f = line.split()
        path = f[5][1:] if f[5].startswith("./") else f[5]
        out[path.rstrip("/") or "/"] = (f[0], f[7] if len(f) > 7 and f[6] == "->" else None)
    return out


def deb_field(deb, field):
    r = subprocess.run(["dpkg-deb", "-f", deb, field], capture_output=True, text=True,
                       check=True)
    return r.stdout.strip()


def control_file(deb, name):
    r = subprocess.run(["dpkg-deb", "--ctrl-tarfile", deb], capture_output=True, check=True)
    t = subprocess.run(["tar", "-xOf", "-", "./" + name], input=r.stdout, capture_output=True)
    return t.stdout.decode()


# The story, run by the chroot's own python3 as pid 1's child in a private pid namespace
# (every process there is this test's). argv: the .deb directory, torch_share.py.
STORY = r'''
import glob, json, os, signal, subprocess, sys, time
debs, share = sys.argv[1], sys.argv[2]
out = {}
def run(*a, **kw):
    r = subprocess.run(list(a), capture_output=True, text=True, **kw)
    if r.returncode != 0:
        print(json.dumps(dict(out, failed=" ".join(a), rc=r.returncode,
                              stdout=r.stdout[-2000:], stderr=r.stderr[-2000:])))
        sys.exit(1)
    return r.stdout
env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
def tree():
    """Every path under what a package may change (dpkg's and apt's own records aside)."""
    paths = set()
    for top in ("/etc", "/usr", "/var/lib/systemd", "/opt"):
        for d, dirs, names in os.walk(top):
            paths.update(os.path.join(d, n) for n in dirs + names)
    return paths
before = tree()
run("apt-get", "install", "-y", "-q", "--no-install-recommends",
    *sorted(glob.glob(os.path.join(debs, "*.deb"))), env=env)
out["version"] = run("/usr/bin/shmwarden", "--version").strip()
out["status"] = run("dpkg-query", "-W", "-f=${Package} ${Status}\n", "shmwarden",
                    "libshmwarden0", "libshmwarden-dev").splitlines()
out["conffiles"] = run("dpkg-query", "-W", "-f=${Conffiles}", "shmwarden").split()
out["timer_enabled"] = os.path.islink(
    "/etc/systemd/system/timers.target.wants/shmwarden-sweep.timer")
out["ldconfig"] = "libshmwarden.so.0" in run("/sbin/ldconfig", "-p")

# What the installed manual says: every path it names in its Debian package section and
# in FILES, and whether it exists here (read with man's own tools: no groff here).
import gzip, re
with gzip.open("/usr/share/man/man1/shmwarden.1.gz", "rt") as f:
    man = f.read()
def roff_paths(text):
    # The alternating-font macros (.IR a b) join their arguments: "PREFIX /share" is
    # PREFIX/share, not a path of its own.
    lines = []
    for l in text.splitlines():
        m = re.match(r"\.(BI|BR|IB|IR|RB|RI) (.*)", l)
        if m:
            l = "".join(a or b for a, b in re.findall(r'"([^"]*)"|(\S+)', m.group(2)))
        lines.append(re.sub(r"^\.[A-Z]+ ?", "", l))
    text = "\n".join(lines)
    text = re.sub(r"\\f[BIRP]", "", text).replace("\\-", "-").replace("\\&", "")
    # A glob(3) pattern (an example of SHMWARDEN_TMPDIRS) names no one path.
    return sorted(set(p.rstrip(".,;:)") for p in re.findall(r"(?<![\w$])(/[\w./*?\[\]-]+)", text)
                      if not re.search(r"[*?\[]", p)))
parts = man.split('.SS "The Debian package"\n', 1)
debian = parts[1].split("\n.S", 1)[0] if len(parts) == 2 else ""
files = man.split("\n.SH FILES\n", 1)[1].split("\n.SH ", 1)[0]
out["man_debian"] = debian
out["man_paths"] = {p: os.path.lexists(p) for p in roff_paths(debian) + roff_paths(files)}
with open("/etc/cron.d/shmwarden") as f:
    cron = [l for l in f.read().splitlines() if l.strip() and not l.startswith("#")]
out["unit_comment"] = "".join(l for l in open(
    glob.glob("/*lib/systemd/system/shmwarden-sweep.service")[0]) if l.startswith("#"))
out["docs"] = sorted(os.path.relpath(os.path.join(d, n), "/usr/share/doc/shmwarden")
                     for d, _, ns in os.walk("/usr/share/doc/shmwarden") for n in ns)

# postinst, run again as dpkg runs it (configure), traced: without systemd (this chroot:
# no /run/systemd/system) it must not start the timer; where systemd runs, it does.
def traced(argv):
    r = subprocess.run(["sh", "-x"] + argv, capture_output=True, text=True)
    return r.returncode, [l[2:] for l in r.stderr.splitlines() if l.startswith("+ ")]
out["systemd_running_here"] = os.path.isdir("/run/systemd/system")
out["postinst_no_systemd"] = traced(["/var/lib/dpkg/info/shmwarden.postinst", "configure"])
# The cron line, run as cron would (sh -c), sweeps here.
out["cron_no_systemd"] = traced(["-c", cron[0].split(None, 6)[6]])
os.makedirs("/run/systemd/system")
out["postinst_systemd"] = traced(["/var/lib/dpkg/info/shmwarden.postinst", "configure"])
out["cron_systemd"] = traced(["-c", cron[0].split(None, 6)[6]])
os.rmdir("/run/systemd/system")
os.rmdir("/run/systemd")
files = set()
for p in ("shmwarden", "libshmwarden0", "libshmwarden-dev"):
    files |= set(run("dpkg", "-L", p).split("\n")) - {""}

# The recovery story: real PyTorch, the installed manager, SIGKILL, the installed sweeper.
os.makedirs("/tmp/story", exist_ok=True)
senv = dict(os.environ, TMPDIR="/tmp/story")
p = subprocess.Popen(["/usr/bin/python3", share, "2", "5", "--hold", "600", "--manager",
                      "/usr/bin/torch_shm_manager"], stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, text=True, env=senv, start_new_session=True)
line = p.stdout.readline()
if not line:
    print(json.dumps(dict(out, failed="torch_share.py", stderr=p.stderr.read()[-3000:])))
    sys.exit(1)
out["report"] = json.loads(line)
def objects():
    return sorted(n for n in os.listdir("/dev/shm") if n.startswith("torch_"))
out["objects_before"] = len(objects())
# Everything but us and pid 1 is the story's: PyTorch, its workers, the managers.
me = {os.getpid(), 1, os.getppid()}
for pid in [int(x) for x in os.listdir("/proc") if x.isdigit()]:
    if pid not in me:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
p.wait()
def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False
deadline = time.monotonic() + 10
while time.monotonic() < deadline and any(
        alive(int(x)) for x in os.listdir("/proc") if x.isdigit() and int(x) not in me):
    time.sleep(0.05)
out["objects_after_kill"] = len(objects())
out["dirs_after_kill"] = len(glob.glob("/tmp/story/shmwarden-*"))
out["sweep"] = json.loads(run("/usr/bin/shmwarden", "sweep", "--json", "--tmpdir",
                              "/tmp/story", env=dict(os.environ, SHMWARDEN_LOG="info")))
out["objects_after_sweep"] = objects()
out["dirs_after_sweep"] = sorted(os.listdir("/tmp/story"))

run("apt-get", "remove", "-y", "-q", "shmwarden", "libshmwarden0", "libshmwarden-dev",
    env=env)
out["after_remove"] = {"cron": os.path.exists("/etc/cron.d/shmwarden"),
                       "binary": os.path.exists("/usr/bin/shmwarden")}
# The libraries had no conffiles: remove left nothing of them for apt to purge.
run("dpkg", "--purge", "shmwarden", "libshmwarden0", "libshmwarden-dev", env=env)
out["after_purge_status"] = subprocess.run(
    ["dpkg-query", "-W", "-f=${Package} ${Status}\n", "shmwarden", "libshmwarden0",
     "libshmwarden-dev"], capture_output=True, text=True).stdout.strip()
# Directories may be shared with other packages; files and links must all be gone.
out["left"] = sorted(f for f in files if os.path.lexists(f) and not os.path.isdir(f))
# Nothing of theirs at all: no file, link or directory that was not there before.
out["purge_extra"] = sorted(tree() - before)
out["timer_after_purge"] = os.path.lexists(
    "/etc/systemd/system/timers.target.wants/shmwarden-sweep.timer")
out["helper_state"] = sorted(glob.glob("/var/lib/systemd/deb-systemd-helper-enabled/*shmwarden*")
                             + glob.glob("/var/lib/systemd/deb-systemd-helper-enabled/*/*shmwarden*"))
print(json.dumps(out))
'''



def words(text):
    return " ".join(text.split())


def test_license_copyright_and_maintainer_agree():
    """LICENSE, debian/copyright (machine-readable, DEP-5), debian/control and
    debian/changelog name the same license and the same people."""
    def read(*p):
        with open(os.path.join(harness.ROOT, *p)) as f:
            return f.read()
    lic, cop = read("LICENSE"), read("debian", "copyright")
    control, changelog = read("debian", "control"), read("debian", "changelog")
    expect(cop.startswith("Format: https://www.debian.org/doc/packaging-manuals/"
                          "copyright-format/1.0/\n"), "debian/copyright is not DEP-5")
    paras = [p for p in cop.split("\n\n") if p.strip()]
    files = [p for p in paras if p.startswith("Files: *\n")]
    expect(len(files) == 1, "one Files: * paragraph: %s" % paras)
    fields = dict(l.split(": ", 1) for l in files[0].splitlines() if ": " in l and l[0] != " ")
    expect(fields.get("License") == "Expat", "Files: * is under %r" % fields.get("License"))
    holder = fields.get("Copyright", "")
    expect(("Copyright (c) %s" % holder) in lic, "LICENSE's copyright line is not %r" % holder)
    text = [p for p in paras if p.startswith("License: Expat\n")]
    expect(len(text) == 1, "no stand-alone License: Expat paragraph")
    body = "\n".join("" if l == " ." else l[1:] for l in text[0].splitlines()[1:])
    expect(words(body) in words(lic), "debian/copyright's Expat text differs from LICENSE's")
    expect(lic.startswith("MIT License"), "LICENSE does not say it is the MIT license")
    maint = [l.split(": ", 1)[1] for l in control.splitlines() if l.startswith("Maintainer: ")]
    contact = [l.split(": ", 1)[1] for l in cop.splitlines() if l.startswith("Upstream-Contact: ")]
    trailer = [l.split("  ")[0][4:] for l in changelog.splitlines() if l.startswith(" -- ")]
    expect(len(maint) == 1 and contact == maint and set(trailer) == set(maint),
           "Maintainer %s, Upstream-Contact %s, changelog %s" % (maint, contact, trailer))
    expect(maint[0].startswith(holder.split(" ", 1)[1] + " <"),
           "the maintainer %r is not the copyright holder %r" % (maint[0], holder))


def test_make_deb_builds_lintian_clean_packages_that_install_work_and_purge():
    name = "test_make_deb_builds_lintian_clean_packages_that_install_work_and_purge"
    if harness.SANITIZED:
        skip(name, "the packages are built with Debian's flags, not this build's: the normal "
                   "run checks them")
        return
    if os.geteuid() != 0:
        skip(name, "needs root (debootstrap, chroot, mount)")
        return
    with Sandbox("deb") as sb:
        build = os.path.join(sb.tmp, "debbuild")
        # The C unit tests ran in this suite already: nocheck.
        r = subprocess.run(["make", "-s", "-C", harness.ROOT, "deb", "BUILD=" + build],
                           capture_output=True, text=True, timeout=1800,
                           env=dict(os.environ, MAKEFLAGS="", MFLAGS="", MAKELEVEL="",
                                    DEB_BUILD_OPTIONS="nocheck"))
        if r.returncode != 0:
            # The headline: dpkg-buildpackage's or lintian's own last error line.
            errs = [l.strip() for l in (r.stdout + r.stderr).splitlines()
                    if l.startswith(("E: ", "W: ")) or "error:" in l]
            raise AssertionError("make deb failed (exit %d): %s\n%s\n%s" % (
                r.returncode, errs[-1] if errs else "see its output below",
                r.stdout[-3000:], r.stderr[-3000:]))
        v = makefile_version()
        debs = {p: os.path.join(build, "deb", "%s_%s_amd64.deb" % (p, v)) for p in PACKAGES}
        for p, deb in debs.items():
            expect(os.path.exists(deb), "no %s in %s" % (deb, os.listdir(os.path.join(build, "deb"))))

        # What goes where (Debian policy paths), read from the packages themselves.
        tool = deb_contents(debs["shmwarden"])
        # The release's own unit directory (bookworm: /lib/systemd/system; from trixie on
        # /usr/lib/systemd/system, /lib being an alias there).
        unitdir = subprocess.run(["pkg-config", "--variable=systemdsystemunitdir", "systemd"],
                                 capture_output=True, text=True).stdout.strip()
        expect(unitdir in ("/lib/systemd/system", "/usr/lib/systemd/system"),
               "pkg-config says the unit directory is %r" % unitdir)
        for path in ("/usr/bin/shmwarden", "/usr/share/man/man1/shmwarden.1.gz",
                     unitdir + "/shmwarden-sweep.service",
                     unitdir + "/shmwarden-sweep.timer", "/etc/cron.d/shmwarden",
                     "/usr/share/shmwarden/use-with-pytorch.sh",
                     "/usr/share/shmwarden/slurm-epilog",
                     "/usr/lib/tmpfiles.d/shmwarden.conf",
                     "/usr/share/doc/shmwarden/copyright"):
            expect(path in tool, "shmwarden lacks %s" % path)
        expect(tool["/usr/bin/torch_shm_manager"][1] == "shmwarden", "torch_shm_manager link")
        expect(tool["/usr/share/man/man1/torch_shm_manager.1.gz"][1] == "shmwarden.1.gz",
               "torch_shm_manager(1) link")
        expect(not any(p.startswith("/usr/local") or "include" in p or ".so" in p
                       for p in tool), "shmwarden holds library or /usr/local files")
        expect(sorted(control_file(debs["shmwarden"], "conffiles").split()) ==
               ["/etc/cron.d/shmwarden", "/etc/default/shmwarden"], "conffiles")
        lib = deb_contents(debs["libshmwarden0"])
        libfiles = sorted(p for p, (m, _) in lib.items() if not m.startswith("d"))
        expect(libfiles == ["/usr/lib/x86_64-linux-gnu/libshmwarden.so.0",
                            "/usr/share/doc/libshmwarden0/changelog.gz",
                            "/usr/share/doc/libshmwarden0/copyright"],
               "libshmwarden0 holds %s" % libfiles)
        expect(control_file(debs["libshmwarden0"], "shlibs").startswith(
            "libshmwarden 0 libshmwarden0 (>= "), "shlibs")
        syms = control_file(debs["libshmwarden0"], "symbols")
        expect(syms.startswith("libshmwarden.so.0 libshmwarden0 #MINVER#") and
               " shmw_spawn@Base " in syms, "symbols: %s" % syms[:200])
        dev = deb_contents(debs["libshmwarden-dev"])
        for path in ("/usr/include/shmwarden.h", "/usr/lib/x86_64-linux-gnu/libshmwarden.a",
                     "/usr/lib/x86_64-linux-gnu/pkgconfig/shmwarden.pc",
                     "/usr/share/man/man3/libshmwarden.3.gz"):
            expect(path in dev, "libshmwarden-dev lacks %s" % path)
        expect(dev["/usr/lib/x86_64-linux-gnu/libshmwarden.so"][1] == "libshmwarden.so.0",
               "the -dev .so link")
        expect("libshmwarden0 (= %s)" % v in deb_field(debs["libshmwarden-dev"], "Depends"),
               "-dev depends on its library")
        expect("libsqlite3-0" in deb_field(debs["shmwarden"], "Depends") and
               "libseccomp2" in deb_field(debs["shmwarden"], "Depends"),
               "shlibs:Depends of shmwarden: %s" % deb_field(debs["shmwarden"], "Depends"))

        # A clean bookworm with PyTorch: scripts/chroot.sh's, under an overlay of ours.
        r = subprocess.run([CHROOT, "ensure", SUITE, "python3-torch"], capture_output=True,
                           text=True, timeout=3600)
        expect(r.returncode == 0, "chroot.sh ensure: %s" % r.stderr[-2000:])
        lower = r.stdout.strip().splitlines()[-1]
        expect(os.path.isdir(lower), "chroot.sh printed %r" % r.stdout)
        debdir = os.path.join(sb.tmp, "debs")
        os.makedirs(debdir)
        for deb in debs.values():
            os.link(deb, os.path.join(debdir, os.path.basename(deb)))
        tdir = os.path.join(sb.tmp, "t")
        os.makedirs(tdir)
        with open(os.path.join(tdir, "story.py"), "w") as f:
            f.write(STORY)
        with open(SHARE) as src, open(os.path.join(tdir, "torch_share.py"), "w") as dst:
            dst.write(src.read())
        cache = os.path.join(sb.tmp, "cache")
        over = os.path.join(cache, "chroot-" + SUITE)
        layer = os.path.join(sb.tmp, "layer")
        for d in (over, layer):
            os.makedirs(d)
        q = shlex.quote
        inner = " && ".join([
            "mount -t tmpfs -o mode=0755 layer %s" % q(layer),
            "mkdir %s/upper %s/work" % (q(layer), q(layer)),
            "mount -t overlay overlay -o lowerdir=%s,upperdir=%s/upper,workdir=%s/work %s"
            % (q(lower), q(layer), q(layer), q(over)),
            "exec env SHMWARDEN_CHROOT_CACHE=%s %s run %s --bind %s:/debs --bind %s:/t -- "
            "/usr/bin/python3 /t/story.py /debs /t/torch_share.py"
            % (q(cache), q(CHROOT), SUITE, q(debdir), q(tdir))])
        r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", inner],
                           capture_output=True, text=True, timeout=900)
        lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
        expect(r.returncode == 0 and lines, "the story in the chroot: rc %d\n%s\n%s" %
               (r.returncode, r.stdout[-3000:], r.stderr[-3000:]))
        out = json.loads(lines[-1])
        expect(out["version"] == "shmwarden %s" % v, "installed: %r" % out["version"])
        expect(all(s.endswith("install ok installed") for s in out["status"]) and
               len(out["status"]) == 3, "status: %s" % out["status"])
        # dpkg-query's ${Conffiles}: a path and its md5sum per conffile.
        expect(sorted(out["conffiles"][0::2]) ==
               ["/etc/cron.d/shmwarden", "/etc/default/shmwarden"],
               "conffiles: %s" % out["conffiles"])
        expect(out["timer_enabled"], "the timer is not enabled after install")
        expect(out["ldconfig"], "libshmwarden.so.0 is not in the linker cache")
        # The installed manual is true of the installed package: each path it names there
        # exists (but the condition /run/systemd/system, which systemd makes, the unit
        # directory of the releases after this one, and /etc/tmpfiles.d/, where the admin
        # puts the line of a temp base of their own), and it asks nothing of the user that
        # the package did already.
        not_here = {"/run/systemd/system", "/usr/lib/systemd/system", "/etc/tmpfiles.d/"}
        missing = sorted(p for p, there in out["man_paths"].items()
                         if not there and p not in not_here)
        expect(missing == [] and "/etc/cron.d/shmwarden" in out["man_paths"] and
               "/usr/bin/shmwarden" in out["man_paths"],
               "the installed shmwarden(1) names what the package does not have: %s (of %s)"
               % (missing, sorted(out["man_paths"])))
        debian = words(out["man_debian"])
        expect(" cp " not in debian and "systemctl enable" not in debian and
               "enables the timer" in debian and "steps aside" in debian,
               "shmwarden(1)'s Debian package section: %s" % debian)
        # The unit's comment speaks of both ways of installing.
        expect("Debian package" in out["unit_comment"] and "make install" in out["unit_comment"],
               "the installed unit's comment: %s" % out["unit_comment"])
        for doc in ("README.md.gz", "SECURITY.md.gz", "docs/DESIGN.md.gz",
                    "docs/PROTOCOL.md.gz", "copyright", "changelog.gz"):
            expect(doc in out["docs"], "/usr/share/doc/shmwarden lacks %s: %s" % (doc, out["docs"]))
        # postinst: enabled above either way (debhelper's enable, so an image installed in
        # a chroot sweeps when it boots); started only where systemd runs.
        expect(not out["systemd_running_here"], "the chroot has /run/systemd/system")
        for case, want in (("postinst_no_systemd", False), ("postinst_systemd", True)):
            rc, trace = out[case]
            started = any(l.startswith("deb-systemd-invoke ") and l.endswith(
                " shmwarden-sweep.timer") for l in trace)
            reload = "systemctl --system daemon-reload" in trace
            expect(rc == 0 and started == want and reload == want,
                   "%s: exit %d, started the timer %s (want %s): %s" % (
                       case, rc, started, want, trace))
        # The cron line runs the sweep without systemd, and steps aside with it.
        for case, want in (("cron_no_systemd", True), ("cron_systemd", False)):
            rc, trace = out[case]
            swept = any(l.startswith("/usr/bin/shmwarden sweep ") for l in trace)
            expect(swept == want and rc == (0 if want else 1),
                   "%s: exit %d, swept %s: %s" % (case, rc, swept, trace))
        rep = out["report"]
        expect(rep["bad"] == 0 and rep["received"] == 10 and rep["journal_rows"] >= 10,
               "PyTorch through the installed manager: %s" % rep)
        expect(out["objects_before"] == 10 and out["objects_after_kill"] == 10 and
               out["dirs_after_kill"] >= 1,
               "the SIGKILL left %s objects (of %s), %s directories" % (
                   out["objects_after_kill"], out["objects_before"], out["dirs_after_kill"]))
        t = out["sweep"]["totals"]
        expect(t["unlinked"] == 10 and t["error"] == t["corrupt"] == t["unsafe"] == 0,
               "sweep: %s" % t)
        expect(out["objects_after_sweep"] == [] and out["dirs_after_sweep"] == [],
               "left after the sweep: %s %s" % (out["objects_after_sweep"],
                                                out["dirs_after_sweep"]))
        expect(out["after_remove"] == {"cron": True, "binary": False},
               "after remove (the conffile stays until purge): %s" % out["after_remove"])
        expect(out["after_purge_status"] == "", "after purge: %r" % out["after_purge_status"])
        expect(out["purge_extra"] == [], "purge left what was not there before the install: %s"
               % out["purge_extra"][:50])
        expect(out["left"] == [] and not out["timer_after_purge"] and
               out["helper_state"] == [],
               "purge left %s, timer link %s, deb-systemd-helper state %s" % (
                   out["left"], out["timer_after_purge"], out["helper_state"]))
        # The cache under the overlay is untouched.
        expect(not os.path.exists(os.path.join(lower, "usr/bin/shmwarden")),
               "the cached chroot was changed")



def test_make_deb_in_sid_with_its_unit_tests():
    """`make deb` as a user runs it (the unit tests built with Debian's flags and run) in
    Debian sid, lintian-clean there too: sid's GCC and glibc (_FORTIFY_SOURCE marks more
    calls warn_unused_result), its libcap-ng, its debhelper and its lintian, which refuses
    files under /lib (an alias of /usr/lib from trixie on). The matrix's cached sid chroot
    is the lower layer of an overlay of this test's own, where `make deb` installs its
    tools itself (scripts/deps.sh deb): the cache is not changed, and its lock is only
    ever held shared (an install into the cache would wait for every sid run)."""
    name = "test_make_deb_in_sid_with_its_unit_tests"
    if harness.SANITIZED:
        skip(name, "the packages are built with Debian's flags: the normal run checks them")
        return
    if os.geteuid() != 0:
        skip(name, "needs root (chroot, mount)")
        return
    import matrix
    try:
        lower = matrix.ensure("sid")
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        raise AssertionError("the sid chroot: %s" % e)
    with Sandbox("debsid") as sb:
        src = os.path.join(sb.tmp, "src")
        matrix.copy_checkout(src)
        cache = os.path.join(sb.tmp, "cache")
        over = os.path.join(cache, "chroot-sid")
        layer = os.path.join(sb.tmp, "layer")
        for d in (over, layer):
            os.makedirs(d)
        q = shlex.quote
        lock = os.path.join(os.path.dirname(lower), "chroot-sid.lock")
        script = "cd /src && make deb 2>&1; rc=$?; ls build/deb/*.deb; exit $rc"
        inner = " && ".join([
            "mount -t tmpfs -o mode=0755 layer %s" % q(layer),
            "mkdir %s/upper %s/work" % (q(layer), q(layer)),
            "mount -t overlay overlay -o lowerdir=%s,upperdir=%s/upper,workdir=%s/work %s"
            % (q(lower), q(layer), q(layer), q(over)),
            # Shared, as every run in the cache holds it: no install under our feet.
            "exec flock -s %s env SHMWARDEN_CHROOT_CACHE=%s %s run sid --bind %s:/src -- "
            "sh -c %s" % (q(lock), q(cache), q(CHROOT), q(src), q(script))])
        r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", inner],
                           capture_output=True, text=True, timeout=1500,
                           stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            errs = [l.strip() for l in (r.stdout + r.stderr).splitlines()
                    if l.startswith(("E: ", "W: ")) or "error:" in l or "deps.sh:" in l]
            raise AssertionError("make deb in sid failed (exit %d): %s\n%s\n%s" % (
                r.returncode, errs[-1] if errs else "see its output below",
                r.stdout[-4000:], r.stderr[-2000:]))
        deb = os.path.join(src, "build", "deb", "shmwarden_%s_amd64.deb" % makefile_version())
        tool = deb_contents(deb)
        expect("/usr/lib/systemd/system/shmwarden-sweep.timer" in tool and
               not any(p.startswith(("/lib/", "/bin/", "/sbin/")) for p in tool),
               "sid's package installs into aliased locations: %s" % sorted(tool))

harness.main(globals())
