"""test_cli.py — the command line and its manuals agree.

For every subcommand: `--help` exits 0, and the options it prints are exactly the ones
shmwarden(1) documents in that command's subsection; the commands of `shmwarden --help`
are the subsections of COMMANDS. `--version` prints the Makefile's VERSION. Unknown
commands and garbage arguments exit 2 with a message on stderr and change nothing.
libshmwarden(3) names every function and flag of include/shmwarden.h.
"""
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Sandbox  # noqa: E402

MAN1 = os.path.join(harness.ROOT, "man", "shmwarden.1")
MAN3 = os.path.join(harness.ROOT, "man", "libshmwarden.3")
HEADER = os.path.join(harness.ROOT, "include", "shmwarden.h")
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
GLOBAL = {"--help", "--version"}


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def read(path):
    with open(path) as f:
        return f.read()


def makefile_version():
    return re.search(r"^VERSION\s*:?=\s*(\S+)", read(os.path.join(harness.ROOT, "Makefile")),
                     re.M).group(1)


def run(args, sb=None, env=None):
    return subprocess.run([harness.SHMWARDEN] + args, capture_output=True, text=True,
                          timeout=30, stdin=subprocess.DEVNULL,
                          env=env or (sb.env if sb else None))


def commands():
    """The commands `shmwarden --help` lists."""
    r = run(["--help"])
    expect(r.returncode == 0 and r.stderr == "", "--help: %d %r" % (r.returncode, r.stderr))
    block = r.stdout.split("commands:\n", 1)[1].split("\n\n", 1)[0]
    return [line.split()[0] for line in block.splitlines() if line.strip()]


def man_sections():
    """{command: its subsection's roff text} from COMMANDS in shmwarden(1)."""
    text = read(MAN1)
    body = text.split("\n.SH COMMANDS\n", 1)[1].split("\n.SH ", 1)[0]
    out = {}
    for part in ("\n" + body).split("\n.SS ")[1:]:
        name, _, rest = part.partition("\n")
        out[name.strip().strip('"')] = rest
    return out


def options(text):
    return set(OPTION.findall(text.replace("\\-", "-"))) - GLOBAL


def test_help_of_every_command_agrees_with_the_man_page():
    cmds = commands()
    sections = man_sections()
    expect(sorted(cmds) == sorted(sections),
           "commands %s, man page subsections %s" % (sorted(cmds), sorted(sections)))
    synopsis = read(MAN1).split("\n.SH SYNOPSIS\n", 1)[1].split("\n.SH ", 1)[0]
    # shmwarden's own options (--help, --version) are the man page's OPTIONS.
    own = set(OPTION.findall(run(["--help"]).stdout))
    man_own = set(OPTION.findall(
        read(MAN1).split("\n.SH OPTIONS\n", 1)[1].split("\n.SH ", 1)[0].replace("\\-", "-")))
    expect(own == man_own == GLOBAL, "shmwarden --help %s, OPTIONS %s" % (own, man_own))
    for cmd in cmds:
        for flag in ("--help", "-h"):
            r = run([cmd, flag])
            expect(r.returncode == 0 and r.stderr == "" and
                   r.stdout.startswith("usage: shmwarden " + cmd),
                   "%s %s: %d %r %r" % (cmd, flag, r.returncode, r.stdout[:80], r.stderr))
        helped = options(r.stdout)
        documented = options(sections[cmd])
        expect(helped, "%s --help lists no option" % cmd)
        expect(helped - documented == set(),
               "%s: in --help, not in the man page: %s" % (cmd, sorted(helped - documented)))
        expect(documented - helped == set(),
               "%s: in the man page, not in --help: %s" % (cmd, sorted(documented - helped)))
        # The usage line(s) and the SYNOPSIS name the same options.
        lines = r.stdout.splitlines()
        usage = [lines[0]] + [l for l in lines[1:len(lines)] if re.match(r"^\s+\[", l)]
        syn = [b for b in synopsis.split("\n.br\n") if b.startswith(".B shmwarden " + cmd)]
        expect(len(syn) == 1, "%s: synopsis entries %d" % (cmd, len(syn)))
        expect(options("\n".join(usage)) == options(syn[0]) == helped,
               "%s: usage %s, synopsis %s, options %s" % (
                   cmd, sorted(options("\n".join(usage))), sorted(options(syn[0])),
                   sorted(helped)))


def test_version():
    want = "shmwarden %s\n" % makefile_version()
    for args in (["--version"], ["version"]):
        r = run(args)
        expect(r.returncode == 0 and r.stdout == want and r.stderr == "",
               "%s: %d %r, want %r" % (args, r.returncode, r.stdout, want))
    expect('"shmwarden %s"' % makefile_version() in read(MAN1).split("\n.SH", 1)[0],
           "shmwarden(1) .TH names another version")
    expect('"shmwarden %s"' % makefile_version() in read(MAN3).split("\n.SH", 1)[0],
           "libshmwarden(3) .TH names another version")
    if os.path.exists(HEADER):
        m = re.search(r'#define SHMW_VERSION "([^"]+)"', read(HEADER))
        expect(m and m.group(1) == makefile_version(), "SHMW_VERSION differs from the Makefile")


def test_usage_and_unknown_command():
    with Sandbox("cli") as sb:
        r = run([], sb)
        expect(r.returncode == 2 and r.stdout == "" and r.stderr.startswith("usage: shmwarden"),
               "no arguments: %d %r" % (r.returncode, r.stderr))
        for args in (["bogus"], ["--bogus"], ["-x", "ls"], ["LS"]):
            r = run(args, sb)
            expect(r.returncode == 2 and r.stdout == "" and "unknown command" in r.stderr
                   and "usage: shmwarden COMMAND" in r.stderr,
                   "%s: %d %r" % (args, r.returncode, r.stderr))
        p = subprocess.run([harness.SHMWARDEN, b"\x1b[31m\xff"], capture_output=True,
                           timeout=30, stdin=subprocess.DEVNULL, env=sb.env)
        expect(p.returncode == 2 and b"\x1b" not in p.stderr, "junk command echoed raw")
        for args in (["--help"], ["-h"], ["help"]):
            r = run(args, sb)
            expect(r.returncode == 0 and r.stdout.startswith("usage: shmwarden"), "%s" % args)
        expect(os.listdir(sb.tmp) == [], "created: %s" % os.listdir(sb.tmp))


GARBAGE = {
    "manager": [["--bogus"], ["extra"], ["--tmpdir"], ["--tmpdir", ""],
                ["--shutdown-timeout", "soon"], ["--shutdown-timeout", "-1"],
                ["--prune-interval", "0"], ["--prune-grace", "99999999999"],
                ["--no-reclaim=yes"]],
    "recover": [[], ["a", "b"], ["--bogus", "x"], [""], ["--json"], ["--syslog=1", "x"],
                ["--", "a", "b"]],
    "sweep": [["--bogus"], ["extra"], ["--tmpdir"], ["--tmpdir", ""], ["--metrics"],
              ["--dry-run", "--metrics", "m.prom"], ["--syslog=yes"], ["-"]],
    "ls": [["--bogus"], ["extra"], ["--tmpdir"], ["--tmpdir="], ["--objects=1"], ["-"]],
}


def test_garbage_arguments_change_nothing():
    expect(sorted(GARBAGE) == sorted(commands()), "a command has no garbage cases")
    with Sandbox("garbage") as sb:
        cwd = os.path.join(sb.tmp, "cwd")
        os.mkdir(cwd)
        shm_before = set(os.listdir(harness.SHM))
        for cmd, cases in GARBAGE.items():
            for args in cases + [["--\xff\x1b[2J"]]:
                p = subprocess.run([harness.SHMWARDEN, cmd] + args, capture_output=True,
                                   timeout=30, stdin=subprocess.DEVNULL, env=sb.env, cwd=cwd,
                                   errors="surrogateescape", text=True)
                what = "%s %r: exit %d, stderr %r" % (cmd, args, p.returncode, p.stderr[:200])
                expect(p.returncode == 2, what)
                expect(p.stderr.strip() and p.stdout == "", what)
                # getopt in `manager` echoes what it refuses; ours escape it.
                if cmd != "manager":
                    expect("\x1b" not in p.stderr, "%s: escape sequence echoed" % what)
                expect(sorted(os.listdir(sb.tmp)) == ["cwd"] and os.listdir(cwd) == [],
                       "%s: created %s %s" % (what, os.listdir(sb.tmp), os.listdir(cwd)))
        ours = {n for n in set(os.listdir(harness.SHM)) - shm_before
                if n.startswith(sb.prefix[1:])}
        expect(not ours, "objects created: %s" % ours)


def test_libshmwarden_man_page_covers_the_header():
    if not os.path.exists(HEADER):
        print("note: include/shmwarden.h absent; nothing to compare")
        return
    header = read(HEADER)
    man = read(MAN3).replace("\\-", "-")
    funcs = set(re.findall(r"^SHMW_API\s[^;]*?\b(shmw_\w+)\s*\(", header, re.M | re.S))
    expect(len(funcs) >= 10, "parsed %d functions from the header" % len(funcs))
    synopsis = man.split("\n.SH SYNOPSIS\n", 1)[1].split("\n.SH ", 1)[0]
    in_man = set(re.findall(r"\b(shmw_\w+)\(", synopsis))
    expect(funcs - in_man == set(), "not in the SYNOPSIS: %s" % sorted(funcs - in_man))
    expect(in_man - funcs == set(), "not in the header: %s" % sorted(in_man - funcs))
    name_line = man.split("\n.SH NAME\n", 1)[1].split("\n.SH ", 1)[0]
    expect(all(f in name_line for f in funcs), "NAME misses a function")
    consts = set(re.findall(r"^\s*(SHMW_[A-Z_]+)\s*=", header, re.M))
    consts |= {"SHMW_PREFIX_MAX", "SHMW_NAME_MAX", "SHMW_VERSION"}
    env = re.search(r'#define SHMW_MANAGER_ENV "([^"]+)"', header).group(1)
    for c in sorted(consts) + [env]:
        expect(c in man, "libshmwarden(3) does not mention %s" % c)


def test_man_pages_render_without_warnings():
    groff = shutil.which("groff")
    if not groff:
        print("note: groff absent; rendering not checked")
        return
    for page in (MAN1, MAN3):
        p = subprocess.run([groff, "-man", "-ww", "-z", page], capture_output=True, text=True,
                           timeout=60)
        expect(p.returncode == 0 and p.stderr == "", "%s: %s" % (page, p.stderr))


harness.main(globals())
