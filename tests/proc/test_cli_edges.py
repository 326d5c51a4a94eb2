"""test_cli_edges.py — command-line edges earlier users found, each with garbage around it:

- `recover .` from inside a dead manager's directory was looked up as a bare name;
  `.`, `..` and paths with a slash are paths now, `NAME/.` is NAME as written.
- `sweep | head -1` (and recover, ls, --help) said "standard output: Broken pipe" and
  exited 1: now the work is finished, then SIGPIPE ends the command quietly, as it does
  any filter (the shell's 141); the manager keeps ignoring SIGPIPE.
- a dead manager's directory moved under a path longer than PATH_MAX: nothing is lost,
  and every command says that the path is the reason, never "Read-only file system"
  (the sweeper's sandbox could not name the base to make it writable).
- SHMWARDEN_TMPDIRS=":" (empty entries only) lists $TMPDIR's base, and ls labelled it
  as coming from SHMWARDEN_TMPDIRS.
- the internal headers declare only what other modules use (bases_is_pattern was
  exported and used by bases.c alone).
"""
import glob
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Sandbox  # noqa: E402


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def run(sb, args, cwd=None, env=None, stdout=subprocess.PIPE, **kw):
    return subprocess.run([harness.SHMWARDEN] + list(args), env=env or sb.env, cwd=cwd,
                          stdout=stdout, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                          text=True, timeout=120, **kw)


# ---- recover ., .., NAME/. ----

# A starting directory (no lock held, no lock file, changed less than 5 s ago: a manager
# between mkdtemp and its flock, or killed there) is "try again later", as busy is: exit 3,
# the report on stdout; once it is older, a second run reclaims it (exit 0).
def test_recover_of_a_starting_directory_says_try_again_later():
    with Sandbox("rstart") as sb:
        d = os.path.join(sb.tmp, "shmwarden-strt01")
        os.mkdir(d, 0o700)
        r = sb.run(["recover", d])
        expect(r.returncode == 3 and ": starting" in r.stdout and r.stderr == "",
               "recover of a starting directory: %d %r %r" % (r.returncode, r.stdout, r.stderr))
        r = sb.run(["recover", "--json", d])
        expect(r.returncode == 3 and json.loads(r.stdout)["status"] == "starting",
               "recover --json: %d %r" % (r.returncode, r.stdout))
        expect(harness.wait_for(lambda: sb.run(["recover", d]).returncode != 3, timeout=15),
               "still starting after 15 s")
        expect(not os.path.exists(d), "the dead directory was not removed")


def test_recover_dot_is_the_current_directory():
    with Sandbox("rdot") as sb:
        d = harness.dead_manager(sb, [sb.name(0)])
        real = os.path.realpath(d)
        # A dry run first: the report names the directory by its path, not ".".
        r = run(sb, ["recover", "--dry-run", "."], cwd=d)
        expect(r.returncode == 0 and "removed (dry run)" in r.stdout and real in r.stdout,
               "recover --dry-run . inside %s: %d %r %r" % (d, r.returncode, r.stdout, r.stderr))
        expect(sb.objects() == [sb.name(0)] and os.path.isdir(d), "a dry run changed it")
        # `..` from inside it is the temp base: not a manager directory, nothing touched.
        r = run(sb, ["recover", ".."], cwd=d)
        expect(r.returncode == 1 and "not a manager directory" in r.stderr,
               "recover ..: %d %r" % (r.returncode, r.stderr))
        # --tmpdir names the base of a bare name; "." is a path.
        for dot in (".", ".."):
            r = run(sb, ["recover", "--tmpdir", sb.tmp, dot], cwd=d)
            expect(r.returncode == 2 and "DIR is a path" in r.stderr,
                   "--tmpdir with %s: %d %r" % (dot, r.returncode, r.stderr))
        expect(sb.objects() == [sb.name(0)] and os.path.isdir(d), "a refusal changed it")
        # Trailing slashes and "." components are the same directory.
        r = run(sb, ["recover", ".//./"], cwd=d)
        expect(r.returncode == 0 and "removed" in r.stdout and real in r.stdout,
               "recover .//./: %d %r %r" % (r.returncode, r.stdout, r.stderr))
        expect(sb.objects() == [] and not os.path.exists(d), "not reclaimed")
        # Again, from the directory it just removed: said plainly, exit 1.
        d = harness.dead_manager(sb, [sb.name(1)])
        r = subprocess.run(["/bin/sh", "-c", 'cd "$1" && "$2" recover . >/dev/null && '
                            'exec "$2" recover .', "sh", d, harness.SHMWARDEN],
                           capture_output=True, text=True, timeout=120, env=sb.env,
                           stdin=subprocess.DEVNULL)
        expect(r.returncode == 1 and "the current directory was removed" in r.stderr,
               "recover . in a removed directory: %d %r" % (r.returncode, r.stderr))
        expect(sb.objects() == [] and not os.path.exists(d), "not reclaimed")


def test_recover_name_dot_is_the_name_as_written():
    with Sandbox("rname") as sb:
        d = harness.dead_manager(sb, [sb.name(0)])
        name = os.path.basename(d)
        # NAME/. through a symlink is still a symlink: not followed, nothing touched.
        link = os.path.join(sb.tmp, "shmwarden-link00")
        os.symlink(d, link)
        for arg in ("shmwarden-link00/.", "shmwarden-link00/./"):
            r = run(sb, ["recover", arg], cwd=sb.tmp)
            expect(r.returncode == 1 and "symlink" in r.stderr,
                   "recover %s: %d %r" % (arg, r.returncode, r.stderr))
        os.unlink(link)
        expect(sb.objects() == [sb.name(0)] and os.path.isdir(d), "a refusal changed it")
        # Garbage: the root, a missing NAME/., a bare "..." (a name, looked up).
        for arg, why in (("/.", "not a manager directory"), ("/..", "not a manager directory"),
                         ("shmwarden-nosuch/.", "no such directory"),
                         ("shmwarden-nosuch/..", "no such directory"),
                         ("...", "no such directory")):
            r = run(sb, ["recover", arg], cwd=sb.tmp)
            expect(r.returncode == 1 and why in r.stderr,
                   "recover %r: %d %r" % (arg, r.returncode, r.stderr))
        expect(sb.objects() == [sb.name(0)] and os.path.isdir(d), "garbage changed it")
        # NAME/. from the base, and as JSON: the path resolved.
        r = run(sb, ["recover", "--json", name + "/."], cwd=sb.tmp)
        doc = json.loads(r.stdout)
        expect(r.returncode == 0 and doc["status"] == "removed",
               "recover NAME/.: %d %r %r" % (r.returncode, r.stdout, r.stderr))
        expect(sb.objects() == [] and not os.path.exists(d), "not reclaimed")


# ---- a reader that goes away ----

def closed_pipe():
    """The write end of a pipe whose reader is already gone: the first write gets EPIPE
    (and SIGPIPE), whatever the timing, as `| head -1` after its line."""
    r, w = os.pipe()
    os.close(r)
    return w


def run_to_closed_pipe(sb, args, ignore_sigpipe=False, env=None):
    w = closed_pipe()
    try:
        # Python ignores SIGPIPE itself and restores the default in the child
        # (restore_signals) before preexec_fn runs.
        pre = (lambda: signal.signal(signal.SIGPIPE, signal.SIG_IGN)) if ignore_sigpipe else None
        return run(sb, args, stdout=w, env=env, preexec_fn=pre)
    finally:
        os.close(w)


def test_a_reader_that_goes_away_ends_a_command_by_sigpipe_once_done():
    with Sandbox("pipe") as sb:
        dirs = [harness.dead_manager(sb, [sb.name(i)]) for i in range(3)]
        metrics = os.path.join(sb.tmp, "sweep.prom")
        r = run_to_closed_pipe(sb, ["sweep", "--metrics", metrics])
        expect(r.returncode == -signal.SIGPIPE and r.stderr == "",
               "sweep | head: %d %r" % (r.returncode, r.stderr))
        # The work was done all the same, its metrics file too, as a success.
        expect(sb.objects() == [] and not any(os.path.exists(d) for d in dirs),
               "sweep stopped halfway: %s %s" % (sb.objects(), sb.manager_dirs()))
        with open(metrics) as f:
            text = f.read()
        expect("shmwarden_sweep_last_success 1" in text, "metrics: %s" % text)
        # recover, ls and every --help the same way.
        d = harness.dead_manager(sb, [sb.name(5)])
        for args in (["recover", d], ["ls"], ["ls", "--json"], ["sweep", "--json"],
                     ["--help"], ["help", "ls"], ["recover", "--help"], ["--version"]):
            r = run_to_closed_pipe(sb, args)
            expect(r.returncode == -signal.SIGPIPE and r.stderr == "",
                   "%s | head: %d %r" % (args, r.returncode, r.stderr))
        expect(sb.objects() == [] and not os.path.exists(d), "recover stopped halfway")
        # A socket whose peer is gone is a reader gone too (a supervisor's log socket).
        a, b = socket.socketpair()
        b.close()
        try:
            r = run(sb, ["ls"], stdout=a.fileno())
        finally:
            a.close()
        expect(r.returncode == -signal.SIGPIPE and r.stderr == "",
               "ls to a closed socket: %d %r" % (r.returncode, r.stderr))
        # A failure of the work is the news: exit 1, its why on stderr, no signal.
        r = run_to_closed_pipe(sb, ["recover", "--json", os.path.join(sb.tmp, "shmwarden-nosuch")])
        expect(r.returncode == 1 and "no such directory" in r.stderr
               and "standard output" not in r.stderr,
               "failed recover | head: %d %r" % (r.returncode, r.stderr))
        r = run_to_closed_pipe(sb, ["sweep", "--tmpdir", os.path.join(sb.tmp, "nosuch")])
        expect(r.returncode == 1 and "cannot open the temp base" in r.stderr,
               "failed sweep | head: %d %r" % (r.returncode, r.stderr))
        # Usage errors print nothing on stdout: 2, as ever.
        r = run_to_closed_pipe(sb, ["sweep", "--bogus"])
        expect(r.returncode == 2, "usage | head: %d %r" % (r.returncode, r.stderr))
        # Whoever ignores SIGPIPE gets EPIPE as an error, said, exit 1 (coreutils');
        # the sweep still finishes.
        d = harness.dead_manager(sb, [sb.name(6)])
        r = run_to_closed_pipe(sb, ["sweep"], ignore_sigpipe=True)
        expect(r.returncode == 1 and
               r.stderr == "shmwarden sweep: standard output: %s\n" % os.strerror(32),
               "sweep | head, SIGPIPE ignored: %d %r" % (r.returncode, r.stderr))
        expect(sb.objects() == [] and not os.path.exists(d), "sweep stopped halfway")
        r = run_to_closed_pipe(sb, ["ls"], ignore_sigpipe=True)
        expect(r.returncode == 1 and "standard output: %s" % os.strerror(32) in r.stderr,
               "ls | head, SIGPIPE ignored: %d %r" % (r.returncode, r.stderr))


def signal_mask(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1], 16)
    raise AssertionError("no %s in /proc/%d/status" % (field, pid))


def test_the_manager_keeps_ignoring_sigpipe():
    with Sandbox("mpipe") as sb:
        bit = 1 << (signal.SIGPIPE - 1)
        for args in ((), ["manager"]):  # the drop-in, then the command
            m = sb.spawn_manager(args=args)
            expect(signal_mask(m.pid, "SigIgn") & bit and not signal_mask(m.pid, "SigBlk") & bit,
                   "manager %d: SIGPIPE not ignored" % m.pid)
            # A client that vanishes before its OK: the manager serves the next one.
            c = m.client()
            c.send_raw(harness.record(sb.name("gone")))
            # RST on close: the manager's OK meets a socket that is gone (EPIPE).
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()
            c = m.client()
            c.register(sb.name("next%d" % m.pid))
            c.close()
            expect(m.wait(15) == 0, "manager exit")
        # Their names were never created, so young rows kept their directories (the
        # grace): every client is gone, so none is due.
        r = run(sb, ["sweep", "--prune-grace", "0"])
        expect(r.returncode == 0 and sb.manager_dirs() == [], "sweep: %d %r %s"
               % (r.returncode, r.stderr, sb.manager_dirs()))
        # Its socket path to a reader that is gone: it fails at start saying so (it
        # ignores SIGPIPE, so it is not killed), and leaves no directory.
        w = closed_pipe()
        try:
            p = subprocess.run([harness.SHMWARDEN, "manager"], stdout=w, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, env=sb.env, text=True, timeout=60)
        finally:
            os.close(w)
        expect(p.returncode == 1 and "standard output: %s" % os.strerror(32) in p.stderr,
               "manager | closed: %d %r" % (p.returncode, p.stderr))
        expect(sb.manager_dirs() == [], "left %s" % sb.manager_dirs())


# ---- a directory deeper than PATH_MAX ----

PATH_MAX = 4096


def make_deep(top, depth=20, width=240):
    """Directories nested under top whose path is longer than PATH_MAX, made by mkdirat
    and openat one step at a time (no path that long is ever handed to the kernel).
    Returns [(fd, name of the next level)...] from top down, the deepest fd last."""
    levels = [[os.open(top, os.O_RDONLY | os.O_DIRECTORY), None]]
    for i in range(depth):
        name = ("%02d" % i) + "d" * (width - 2)
        os.mkdir(name, 0o700, dir_fd=levels[-1][0])
        levels[-1][1] = name
        levels.append([os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=levels[-1][0]), None])
    expect(len(top) + depth * (width + 1) > PATH_MAX, "not deep enough")
    return levels


def remove_deep(levels):
    """Closes and removes what make_deep made, deepest first (rmdir relative to each
    parent's descriptor)."""
    for i in range(len(levels) - 1, 0, -1):
        os.close(levels[i][0])
        os.rmdir(levels[i - 1][1], dir_fd=levels[i - 1][0])
    os.close(levels[0][0])


def move(name, src_fd, dst_fd):
    os.rename(name, name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)


def test_a_directory_deeper_than_path_max_is_reported_for_what_it_is():
    with Sandbox("deep") as sb:
        d = harness.dead_manager(sb, [sb.name(0), sb.name(1)])
        name = os.path.basename(d)
        levels = make_deep(sb.tmp)
        top, deep = levels[0][0], levels[-1][0]
        move(name, top, deep)
        try:
            # The commands run with the deep directory as their working directory,
            # entered through the descriptor (chdir by path would be refused).
            kw = dict(cwd="/proc/self/fd/%d" % deep, pass_fds=(deep,))
            reasons = []
            # The sweeper (as root, in its sandbox, whose writable bases are named by
            # path: this one cannot be, so it stays read-only).
            for args in (["sweep", "--tmpdir", "."], ["sweep", "--tmpdir", ".", "--json"],
                         ["sweep", "--tmpdir", ".", "--dry-run"]):
                r = run(sb, args, **kw)
                expect(r.returncode == 1, "%s: %d %r %r" % (args, r.returncode, r.stdout,
                                                             r.stderr))
                reasons.append((args, r.stdout + r.stderr))
                if "--json" in args:
                    doc = json.loads(r.stdout)
                    expect(doc["totals"]["error"] == 1 and len(doc["dirs"]) == 1 and
                           "longer than PATH_MAX" in doc["dirs"][0]["detail"],
                           "sweep --json: %r" % r.stdout)
            for args, rc in ((["recover", "./" + name], 1),
                             (["recover", "--dry-run", "./" + name], 1),
                             (["ls", "--tmpdir", "."], 0),
                             (["ls", "--tmpdir", ".", "--json"], 0)):
                r = run(sb, args, **kw)
                expect(r.returncode == rc, "%s: %d %r %r" % (args, r.returncode, r.stdout,
                                                              r.stderr))
                reasons.append((args, r.stdout + r.stderr))
            # `recover .` from inside it: the current directory cannot be named either.
            sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=deep)
            try:
                r = run(sb, ["recover", "."], cwd="/proc/self/fd/%d" % sub, pass_fds=(sub,))
            finally:
                os.close(sub)
            expect(r.returncode == 1, "recover . deep: %d %r" % (r.returncode, r.stderr))
            reasons.append((["recover", "."], r.stderr))
            for args, text in reasons:
                expect("longer than PATH_MAX" in text,
                       "%s: the reason is not said: %r" % (args, text))
                expect(os.strerror(30) not in text,
                       "%s blames a read-only file system: %r" % (args, text))
            # Nothing was lost: the directory, its journal and the objects are there.
            expect("journal.db" in os.listdir("/proc/self/fd/%d/%s" % (deep, name)) and
                   sb.objects() == [sb.name(0), sb.name(1)], "something was lost")
        finally:
            # Moved back under a short path, it is reclaimed as ever.
            move(name, deep, top)
            remove_deep(levels)
        r = run(sb, ["recover", d])
        expect(r.returncode == 0 and sb.objects() == [],
               "recover after the move: %d %r" % (r.returncode, r.stderr))


# ---- SHMWARDEN_TMPDIRS of empty entries only ----

def test_tmpdirs_of_empty_entries_is_labelled_as_the_base_used():
    with Sandbox("emptyvar") as sb:
        d = harness.dead_manager(sb, [sb.name(0)])
        for value in ("", ":", "::", ":::::"):
            env = dict(sb.env, SHMWARDEN_TMPDIRS=value)
            r = run(sb, ["ls"], env=env)
            first = r.stdout.splitlines()[0] if r.stdout else ""
            expect(r.returncode == 0 and first == "base %s (from TMPDIR)" % sb.tmp,
                   "SHMWARDEN_TMPDIRS=%r: %d %r %r" % (value, r.returncode, first, r.stderr))
            expect(os.path.basename(d) in r.stdout, "not listed: %r" % r.stdout)
            r = run(sb, ["ls", "--json"], env=env)
            doc = json.loads(r.stdout)
            expect(doc["base"] == sb.tmp and doc["base_from"] == "TMPDIR",
                   "--json with %r: %r" % (value, doc))
            # recover's "looked in" says the same.
            r = run(sb, ["recover", "shmwarden-nosuch"], env=env)
            expect(r.returncode == 1 and "(from TMPDIR)" in r.stderr, r.stderr)
        # Without TMPDIR (or its siblings) too: the default.
        env = {k: v for k, v in sb.env.items() if k not in ("TMPDIR", "TMP", "TEMP", "TEMPDIR")}
        env["SHMWARDEN_TMPDIRS"] = ":"
        r = run(sb, ["ls", "--json"], env=env)
        doc = json.loads(r.stdout)
        expect(doc["base"] == "/tmp" and doc["base_from"] == "default", "default: %r" % doc)
        # A real entry among empty ones is the variable's, as before.
        env = dict(sb.env, SHMWARDEN_TMPDIRS="::%s:" % sb.tmp)
        r = run(sb, ["ls", "--json"], env=env)
        doc = json.loads(r.stdout)
        expect(doc["base"] == sb.tmp and doc["base_from"] == "SHMWARDEN_TMPDIRS", "%r" % doc)
        # Garbage after empty entries still fails as the variable's.
        env = dict(sb.env, SHMWARDEN_TMPDIRS=":relative:")
        r = run(sb, ["ls"], env=env)
        expect(r.returncode == 2 and "SHMWARDEN_TMPDIRS" in r.stderr, r.stderr)
        expect(sb.objects() == [sb.name(0)], "ls changed something")


# ---- module-private functions stay private ----

DECL = re.compile(r"^(?!typedef|struct|enum|#|static)[A-Za-z_][\w \*]*?\b([a-z_][a-z0-9_]*)\s*\(",
                  re.M)
# Found when bases_is_pattern was made static, and left for their modules' owners:
# used only in their own .c file (livemgr_count in none).
LEFT_FOR_THEIR_OWNERS = {"livemgr_count", "mgrdir_fd_path", "mgrdir_is_name"}


def _code(path):
    with open(path) as f:
        return re.sub(r"/\*.*?\*/|//[^\n]*", " ", f.read(), flags=re.S)


def test_internal_headers_declare_only_what_other_modules_use():
    """STYLE: an internal header declares only what other modules use; everything else
    is static. A function declared in src/X.h must be used by some file other than
    src/X.c: another module, a unit test, a fuzz harness or a test tool."""
    root = harness.ROOT
    users = {p: _code(p) for pat in ("src/*.c", "tests/unit/*.c", "tests/fuzz/*.c",
                                     "tests/tools/*.c", "examples/*.c")
             for p in glob.glob(os.path.join(root, pat))}
    private = []
    # The pattern finds what it should (a broken one would find nothing to complain of).
    expect({"bases_init", "bases_next", "mgrdir_probe"} <=
           set(DECL.findall(_code(os.path.join(root, "src", "bases.h"))) +
               DECL.findall(_code(os.path.join(root, "src", "mgrdir.h")))),
           "the declaration pattern misses declarations")
    for h in sorted(glob.glob(os.path.join(root, "src", "*.h"))):
        own = h[:-2] + ".c"
        for name in sorted(set(DECL.findall(_code(h)))):
            word = re.compile(r"\b%s\b" % re.escape(name))
            if not any(word.search(t) for p, t in users.items() if p != own):
                private.append(name)
    bad = sorted(set(private) - LEFT_FOR_THEIR_OWNERS)
    expect(not bad, "declared in a header, used only in their own module (make them "
           "static): %s" % bad)
    for name in ("bases_is_pattern", "bases_check", "bases_prefix"):
        expect(not re.search(r"\b%s\b" % name, _code(os.path.join(root, "src", "bases.h"))),
               "%s is still in bases.h" % name)


harness.main(globals())
