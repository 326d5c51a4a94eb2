"""test_cli.py — the command line and its manuals agree.

For every subcommand: `--help` exits 0, and the options it prints are exactly the ones
shmwarden(1) documents in that command's subsection; the commands of `shmwarden --help`
are the subsections of COMMANDS. `--version` prints the Makefile's VERSION. Unknown
commands and garbage arguments exit 2 with a message on stderr and change nothing.
libshmwarden(3) names every function and flag of include/shmwarden.h.
"""
import os
import json
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


def test_every_command_help_states_its_exit_status():
    """Every subcommand's --help ends with its exit statuses (the manager's had none)."""
    for cmd in commands():
        r = run([cmd, "--help"])
        text = " ".join(r.stdout.split())
        expect(re.search(r"Exit status: 0 .*, 1 .*, 2 usage", text),
               "%s --help: no exit status: %r" % (cmd, r.stdout[-300:]))


def readme_commands():
    """{command: its row} of the README's Commands table."""
    text = read(os.path.join(harness.ROOT, "README.md"))
    body = text.split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in body.splitlines():
        m = re.match(r"^\| `shmwarden (\w+)( [^`]*)?` \|", line)
        if m:
            rows[m.group(1)] = line
    return rows


def test_readme_commands_table_agrees_with_help():
    """The README's Commands table lists every command with every option of its --help,
    and no other (it once listed only `manager [--tmpdir DIR]`)."""
    rows = readme_commands()
    cmds = commands()
    expect(sorted(rows) == sorted(cmds), "README rows %s, commands %s" % (sorted(rows), cmds))
    for cmd in cmds:
        helped = options(run([cmd, "--help"]).stdout)
        synopsis = options(rows[cmd].split("` |", 1)[0])
        in_row = options(rows[cmd])
        expect(synopsis == helped, "README %s synopsis %s, --help %s" % (
            cmd, sorted(synopsis), sorted(helped)))
        expect(in_row <= helped, "README %s row names %s, not in --help" % (
            cmd, sorted(in_row - helped)))


def test_metrics_and_dry_run_refusal_is_documented():
    """sweep refuses --metrics with --dry-run: --help, the README and the man page say so
    where --metrics is described."""
    lines = run(["sweep", "--help"]).stdout.splitlines()
    i = next(n for n, l in enumerate(lines) if l.strip().startswith("--metrics FILE"))
    entry = lines[i] + " " + " ".join(l for l in lines[i + 1:] if l.startswith(" " * 10))
    expect("--dry-run" in entry, "sweep --help, --metrics: %r" % entry)
    row = readme_commands()["sweep"]
    expect(re.search(r"--metrics FILE`[^|]*refused with `--dry-run`", row), "README: %s" % row)
    man = man_sections()["sweep"].replace("\\-", "-")
    expect("Cannot be combined with the dry-run option" in man, "man page")


def test_version():
    want = "shmwarden %s\n" % makefile_version()
    for args in (["--version"], ["-V"], ["version"], ["--vers"]):
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
    # The newest entry of the changelog, and of debian/changelog where there is one (the
    # package's version), name the same version.
    # The newest release: an "Unreleased" entry above it collects what the next one brings.
    m = re.search(r"^## (?!Unreleased)(\S+)", read(os.path.join(harness.ROOT, "CHANGELOG.md")),
                  re.M)
    expect(m and m.group(1) == makefile_version(),
           "CHANGELOG.md's newest entry is %s, the Makefile's VERSION %s" % (
               m and m.group(1), makefile_version()))
    deb = os.path.join(harness.ROOT, "debian", "changelog")
    if os.path.exists(deb):
        m = re.match(r"\S+ \(([^)-]+)(-[^)]*)?\)", read(deb))
        expect(m and m.group(1) == makefile_version(),
               "debian/changelog's newest entry is %s, the Makefile's VERSION %s: add an entry"
               % (m and m.group(1), makefile_version()))


def run_dropin(args, sb):
    """build/torch_shm_manager ARGS, argv[0] "torch_shm_manager" as PyTorch execs it."""
    return subprocess.run([b"torch_shm_manager"] + args, executable=harness.TORCH_SHM_MANAGER,
                          capture_output=True, timeout=30, stdin=subprocess.DEVNULL,
                          env=sb.env)


def test_dropin_help_version_and_garbage_start_no_manager():
    """PyTorch's torch_shm_manager ignores its arguments (`--help` starts a manager that
    waits for clients), and so did ours. PyTorch execs it with none, so: -h/--help and
    -V/--version answer and exit 0, anything else is a usage error (exit 2), and none of
    them makes a manager directory; `--` alone ends the options and runs the manager."""
    with Sandbox("dropin") as sb:
        try_help = b"Try 'torch_shm_manager --help' for more information.\n"
        helped = None
        for args in ([b"--help"], [b"-h"], [b"--he"]):
            r = run_dropin(args, sb)
            expect(r.returncode == 0 and r.stderr == b"" and
                   r.stdout.startswith(b"usage: torch_shm_manager\n"),
                   "%s: %d %r %r" % (args, r.returncode, r.stdout[:80], r.stderr))
            expect(helped in (None, r.stdout), "%s: another help" % args)
            helped = r.stdout
        # Its options are --help and --version, as the man page's synopsis line says.
        syn = [b for b in read(MAN1).split("\n.SH SYNOPSIS\n", 1)[1].split("\n.SH ", 1)[0]
               .split("\n.br\n") if b.startswith(".B torch_shm_manager")]
        expect(len(syn) == 1, "synopsis entries for torch_shm_manager: %d" % len(syn))
        man_opts = set(OPTION.findall(syn[0].replace("\\-", "-")))
        help_opts = set(OPTION.findall(helped.decode()))
        expect(help_opts == man_opts == GLOBAL, "--help %s, synopsis %s" % (help_opts, man_opts))
        for args in ([b"-V"], [b"--version"]):
            r = run_dropin(args, sb)
            expect(r.returncode == 0 and r.stderr == b"" and r.stdout ==
                   b"torch_shm_manager (shmwarden) %s\n" % makefile_version().encode(),
                   "%s: %d %r %r" % (args, r.returncode, r.stdout, r.stderr))
        garbage = [
            ([b"bogus"], b"unexpected argument 'bogus'"),
            ([b"--", b"--help"], b"unexpected argument '--help'"),
            ([b"--bogus"], b"unknown option '--bogus'"),
            ([b"-x"], b"unknown option '-x'"),
            ([b"--help=1"], b"--help takes no value, got '--help=1'"),
            ([b"--tmpdir", sb.tmp.encode()], b"unknown option '--tmpdir'"),  # manager's
            ([b"manager"], b"unexpected argument 'manager'"),
            ([b"\x1b[31m\xff"], b"unexpected argument '\\x1b[31m\\xff'"),
            ([b"x" * 100000], b"unexpected argument '" + b"x" * 10),
        ]
        for args, first in garbage:
            r = run_dropin(args, sb)
            line, _, rest = r.stderr.partition(b"\n")
            expect(r.returncode == 2 and r.stdout == b"" and
                   line.startswith(b"torch_shm_manager: " + first) and
                   rest == try_help and b"\x1b" not in r.stderr,
                   "%r: %d %r %r" % ([a[:40] for a in args], r.returncode, r.stdout,
                                     r.stderr[:300]))
        expect(os.listdir(sb.tmp) == [], "a manager started: %s" % os.listdir(sb.tmp))
        # `--` alone: no argument left, the drop-in as PyTorch runs it.
        m = sb.spawn_manager(args=["--"], argv0="torch_shm_manager",
                             exe=harness.TORCH_SHM_MANAGER)
        expect(m.sock and m.sock.startswith(sb.tmp + "/"), "--: %r" % m.line)
        expect(m.wait(15) == 0, "--: the idle manager's exit status")
        expect(os.listdir(sb.tmp) == [], "left behind: %s" % os.listdir(sb.tmp))


def test_usage_and_unknown_command():
    with Sandbox("cli") as sb:
        # GNU's form: what was wrong, then where the help is; never the whole usage.
        try_help = "Try 'shmwarden --help' for more information.\n"
        r = run([], sb)
        expect(r.returncode == 2 and r.stdout == "" and r.stderr ==
               "shmwarden: missing COMMAND (manager, recover, sweep or ls)\n" + try_help,
               "no arguments: %d %r" % (r.returncode, r.stderr))
        for args in (["bogus"], ["LS"]):
            r = run(args, sb)
            expect(r.returncode == 2 and r.stdout == "" and
                   r.stderr == "shmwarden: unknown command '%s'\n" % args[0] + try_help,
                   "%s: %d %r" % (args, r.returncode, r.stderr))
        p = subprocess.run([harness.SHMWARDEN, b"\x1b[31m\xff"], capture_output=True,
                           timeout=30, stdin=subprocess.DEVNULL, env=sb.env)
        expect(p.returncode == 2 and b"\x1b" not in p.stderr, "junk command echoed raw")
        for args in (["--help"], ["-h"], ["help"]):
            r = run(args, sb)
            expect(r.returncode == 0 and r.stdout.startswith("usage: shmwarden"), "%s" % args)
        # `help CMD` is `CMD --help`.
        for cmd in ("manager", "recover", "sweep", "ls"):
            r, want = run(["help", cmd], sb), run([cmd, "--help"], sb)
            expect(r.returncode == 0 and r.stdout == want.stdout and r.stderr == "",
                   "help %s: %d %r" % (cmd, r.returncode, r.stdout[:80]))
        expect(os.listdir(sb.tmp) == [], "created: %s" % os.listdir(sb.tmp))


LONG = "x" * 100000
PROG = {"": "shmwarden", "manager": "shmwarden manager", "recover": "shmwarden recover",
        "sweep": "shmwarden sweep", "ls": "shmwarden ls"}
NUMBER = "needs a number of %s from %d to 86400000, got '%s'"

# (command, arguments, the first line of stderr after "PROG: "). Each exits 2, prints
# nothing on stdout, the line then "Try 'PROG --help' for more information." on stderr
# (GNU's form: the usage is --help's, on stdout), and changes nothing.
GARBAGE = [
    # unknown options, long and short, and junk bytes (escaped, never echoed raw)
    ("", ["--bogus"], "unknown option '--bogus'"),
    ("", ["-x", "ls"], "unknown option '-x'"),
    ("", ["--version=2"], "--version takes no value, got '--version=2'"),
    ("", ["-x", "-V"], "unknown option '-x'"),
    ("ls", ["-V"], "unknown option '-V'"),
    ("", ["--", "-V"], "unknown command '-V'"),
    ("", ["sweepx"], "unknown command 'sweepx'"),
    ("", ["ls\n"], "unknown command 'ls\\x0a'"),
    ("", ["version", "x"], "unexpected argument 'x'"),
    ("", ["help", "ls", "x"], "unexpected argument 'x'"),
    ("", ["help", "bogus"], "unknown command 'bogus'"),
    ("", ["help", ""], "unknown command ''"),
    ("", [""], None),  # an empty command: "unknown command ''" (below)
    ("manager", ["--bogus"], "unknown option '--bogus'"),
    ("manager", ["-x"], "unknown option '-x'"),
    ("manager", ["--prune", "5"],
     "ambiguous option '--prune': --prune-interval or --prune-grace?"),
    ("recover", ["--bogus", "x"], "unknown option '--bogus'"),
    ("recover", ["--dry-run=no", "x"], "--dry-run takes no value, got '--dry-run=no'"),
    ("recover", ["--syslog=1", "x"], "--syslog takes no value, got '--syslog=1'"),
    ("sweep", ["--bogus"], "unknown option '--bogus'"),
    ("sweep", ["--syslog=yes"], "--syslog takes no value, got '--syslog=yes'"),
    ("ls", ["--bogus"], "unknown option '--bogus'"),
    ("ls", ["--json", "--objects", "-x"], "unknown option '-x'"),
    ("ls", ["--objects=1"], "--objects takes no value, got '--objects=1'"),
    ("ls", ["--\udcff\x1b[2J"], "unknown option '--\\xff\\x1b[2J'"),
    ("manager", ["--\x1b[2J"], "unknown option '--\\x1b[2J'"),
    ("ls", ["--" + LONG], "unknown option '--%s'" % LONG),
    # a value missing, empty, or swallowing the next option
    ("manager", ["--tmpdir"], "--tmpdir needs a directory"),
    ("manager", ["--tmpdir", ""], "--tmpdir needs a directory, not an empty string"),
    ("manager", ["--shutdown-timeout"], "--shutdown-timeout needs a number of milliseconds"),
    ("manager", ["--prune-grace="], "--prune-grace needs a number of seconds, not an empty "
     "string"),
    ("sweep", ["--tmpdir"], "--tmpdir needs a directory"),
    ("sweep", ["--tmpdir", ""], "--tmpdir needs a directory, not an empty string"),
    ("sweep", ["--metrics"], "--metrics needs a file"),
    ("sweep", ["--metrics="], "--metrics needs a file, not an empty string"),
    ("sweep", ["--metrics", "--json"], "--metrics needs a file, but the next word is the "
     "option '--json' (for a value that begins with --, write --metrics=VALUE)"),
    ("ls", ["--tmpdir"], "--tmpdir needs a directory"),
    ("ls", ["--tmpdir="], "--tmpdir needs a directory, not an empty string"),
    ("ls", ["--tmpdir", "--json"], "--tmpdir needs a directory, but the next word is the "
     "option '--json' (for a value that begins with --, write --tmpdir=VALUE)"),
    ("recover", [], "missing DIR (a manager directory `shmwarden ls` lists)"),
    ("recover", ["--json"], "missing DIR (a manager directory `shmwarden ls` lists)"),
    ("recover", [""], "DIR is an empty string"),
    # a value option given twice: the second would silently win
    ("manager", ["--tmpdir", "a", "--tmpdir=b"],
     "--tmpdir is given twice (it takes one value); the second is 'b'"),
    ("manager", ["--shutdown-timeout", "1", "--shutdown-timeout", "2"],
     "--shutdown-timeout is given twice (it takes one value); the second is '2'"),
    ("sweep", ["--tmpdir", "a", "--tmpdir", "b"],
     "--tmpdir is given twice (it takes one value); the second is 'b'"),
    ("sweep", ["--metrics=a", "--metrics=b"],
     "--metrics is given twice (it takes one value); the second is 'b'"),
    ("ls", ["--tmpdir=a", "--tmpdir", "b"],
     "--tmpdir is given twice (it takes one value); the second is 'b'"),
    # operands where none is taken, or one too many
    ("manager", ["extra"], "unexpected argument 'extra'"),
    ("sweep", ["extra"], "unexpected argument 'extra'"),
    ("sweep", ["-"], "unexpected argument '-'"),
    ("ls", ["--json", "extra"], "unexpected argument 'extra'"),
    ("ls", ["--", "--json"], "unexpected argument '--json'"),
    ("recover", ["a", "b"], "one DIR only, got a second: 'b'"),
    ("recover", ["--", "a", "b"], "one DIR only, got a second: 'b'"),
    ("recover", ["a", "--json", "b"], "one DIR only, got a second: 'b'"),
    # numbers: not numbers, negative, past the range, past any integer type
    ("manager", ["--shutdown-timeout", "soon"], "--shutdown-timeout " +
     NUMBER % ("milliseconds", 0, "soon")),
    ("manager", ["--shutdown-timeout=-1"], "--shutdown-timeout " +
     NUMBER % ("milliseconds", 0, "-1")),
    ("manager", ["--shutdown-timeout", " 5"], "--shutdown-timeout " +
     NUMBER % ("milliseconds", 0, " 5")),
    ("manager", ["--shutdown-timeout", "+5"], "--shutdown-timeout " +
     NUMBER % ("milliseconds", 0, "+5")),
    ("manager", ["--shutdown-timeout", "0x10"], "--shutdown-timeout " +
     NUMBER % ("milliseconds", 0, "0x10")),
    ("manager", ["--shutdown-timeout", "1.5"], "--shutdown-timeout " +
     NUMBER % ("milliseconds", 0, "1.5")),
    ("manager", ["--prune-interval", "0"], "--prune-interval " +
     NUMBER % ("milliseconds", 1, "0")),
    ("manager", ["--prune-interval", "86400001"], "--prune-interval " +
     NUMBER % ("milliseconds", 1, "86400001")),
    ("manager", ["--prune-grace", "2147483648"], "--prune-grace " +
     NUMBER % ("seconds", 0, "2147483648")),
    ("manager", ["--prune-grace", "99999999999999999999999"], "--prune-grace " +
     NUMBER % ("seconds", 0, "99999999999999999999999")),
    ("manager", ["--prune-grace", "9" * 5000], "--prune-grace " +
     NUMBER % ("seconds", 0, "9" * 5000)),
    # 10 ms: a longer delay could never apply (each client at most once per ten delays
    # of a 100 ms window), and a burst wider than one wake-up's 256 events waits one
    # delay per 512 clients (a new user's trial: 7,000 clients at 100 ms, OKs past 1 s)
    ("manager", ["--commit-delay", "10001"], "--commit-delay needs a number of "
     "microseconds from 0 to 10000, got '10001'"),
    ("manager", ["--commit-delay", "-1"], "--commit-delay needs a number of "
     "microseconds from 0 to 10000, got '-1'"),
    ("manager", ["--commit-siblings", "0"], "--commit-siblings needs a number of "
     "connections from 1 to 1000000, got '0'"),
    ("manager", ["--commit-siblings", "x"], "--commit-siblings needs a number of "
     "connections from 1 to 1000000, got 'x'"),
    # options that do not go together
    ("sweep", ["--dry-run", "--metrics", "m.prom"], "--metrics and --dry-run do not go "
     "together (a dry run's figures would read as a sweep's)"),
    ("manager", ["--no-reclaim=yes"], "--no-reclaim takes no value, got '--no-reclaim=yes'"),
    # temp bases and the metrics file, refused before anything is read or swept
    ("ls", ["--tmpdir", "/nonexistent-shmw:/b"], "--tmpdir takes one temp base (or pattern), "
     "and '/nonexistent-shmw:/b' holds ':' and does not exist: for several, set "
     "SHMWARDEN_TMPDIRS=A:B"),
    ("sweep", ["--tmpdir", "/nonexistent-shmw/job.{1,2}"], "--tmpdir: '{' in a temp base: "
     "glob(3) has no brace expansion (give each directory as its own entry: A:B; a name "
     "that holds '{' is matched by [{]): '/nonexistent-shmw/job.{1,2}'"),
    ("sweep", ["--metrics", "nodir/m.prom"], "--metrics: the file's directory does not exist "
     "(the sweep makes no directory; name one that node_exporter reads): 'nodir/m.prom'"),
]


def test_garbage_arguments_are_refused_precisely():
    expect({c for c, _, _ in GARBAGE} == set(commands()) | {""},
           "a command has no garbage cases")
    with Sandbox("garbage") as sb:
        cwd = os.path.join(sb.tmp, "cwd")
        os.mkdir(cwd)
        shm_before = set(os.listdir(harness.SHM))
        for cmd, args, line in GARBAGE:
            argv = [harness.SHMWARDEN] + ([cmd] if cmd else []) + args
            p = subprocess.run(argv, capture_output=True, timeout=30, stdin=subprocess.DEVNULL,
                               env=sb.env, cwd=cwd, errors="surrogateescape", text=True)
            what = "%s %r: exit %d, stderr %r" % (cmd, [a[:40] for a in args], p.returncode,
                                                   p.stderr[:300])
            expect(p.returncode == 2 and p.stdout == "", what)
            first, _, rest = p.stderr.partition("\n")
            if line is None:
                line = "unknown command ''"
                rest = rest.lstrip("\n")
            expect(first == "%s: %s" % (PROG[cmd], line),
                   "%s\n  want %r" % (what, ("%s: %s" % (PROG[cmd], line))[:300]))
            expect(rest == "Try '%s --help' for more information.\n" % PROG[cmd],
                   "%s: want only the pointer to --help after the message" % what)
            expect("\x1b" not in p.stderr, "%s: escape sequence echoed" % what)
            expect(sorted(os.listdir(sb.tmp)) == ["cwd"] and os.listdir(cwd) == [],
                   "%s: created %s %s" % (what, os.listdir(sb.tmp), os.listdir(cwd)))
        ours = {n for n in set(os.listdir(harness.SHM)) - shm_before
                if n.startswith(sb.prefix[1:])}
        expect(not ours, "objects created: %s" % ours)


def test_every_command_error_begins_with_its_name():
    """One prefix for everything a command prints as an error, usage or not: "shmwarden
    CMD: " (coreutils' "prog: "); `--help` alone is on stdout, exit 0. (The manager's
    "ERROR: " line on stdout is PyTorch's wire contract and is checked elsewhere.)"""
    with Sandbox("prefix") as sb:
        missing = os.path.join(sb.tmp, "missing")
        cases = [
            (["ls", "--tmpdir", missing], 1, "shmwarden ls: "),
            (["ls", "--tmpdir", missing, "--json"], 1, "shmwarden ls: "),
            (["sweep", "--tmpdir", missing], 1, "shmwarden sweep: "),
            (["sweep", "--tmpdir", missing, "--json"], 1, "shmwarden sweep: "),
            (["recover", os.path.join(missing, "shmwarden-abcdef")], 1, "shmwarden recover: "),
            (["recover", "--tmpdir", missing, "shmwarden-abcdef"], 1, "shmwarden recover: "),
            (["recover", "--json", os.path.join(sb.tmp, "shmwarden-abcdef")], 1,
             "shmwarden recover: "),
            (["manager", "--tmpdir", missing], 1, "shmwarden manager: "),
        ] + [(([cmd] if cmd else []) + ["--bogus"], 2, PROG[cmd] + ": ") for cmd in PROG]
        for args, status, prefix in cases:
            r = run(args, sb)
            expect(r.returncode == status and r.stderr.startswith(prefix),
                   "%s: exit %d, stderr %r, want %d and %r" % (args, r.returncode,
                                                                r.stderr[:300], status, prefix))
            for line in r.stderr.splitlines()[1:]:
                expect(line.startswith(prefix) or line.startswith("Try '"),
                       "%s: a line of stderr without the prefix: %r" % (args, line))
        for cmd in PROG:
            r = run(([cmd] if cmd else []) + ["--help"], sb)
            expect(r.returncode == 0 and r.stderr == "" and
                   r.stdout.startswith("usage: " + PROG[cmd]),
                   "%s --help: %d %r" % (cmd, r.returncode, r.stdout[:100]))
        expect(os.listdir(sb.tmp) == [], "created: %s" % os.listdir(sb.tmp))


def test_long_arguments_fail_with_a_sentence():
    """A path too long for the kernel is not a usage error: the command says what it could
    not open, escaped and cut, and exits 1 (2 is for what it could not parse)."""
    with Sandbox("longargs") as sb:
        long_path = os.path.join(sb.tmp, "x" * 5000)
        for args, want in ((["ls", "--tmpdir", long_path],
                            "shmwarden ls: cannot open the temp base "),
                           (["sweep", "--tmpdir=" + long_path],
                            "shmwarden sweep: cannot open the temp base "),
                           (["recover", long_path + "/shmwarden-x"], "shmwarden recover: ")):
            r = sb.run(args)
            expect(r.returncode == 1 and r.stderr.startswith(want + sb.tmp) and
                   r.stderr.rstrip("\n").endswith("too long") and r.stdout == "",
                   "%s: %d %r...%r" % (args[0], r.returncode, r.stderr[:100], r.stderr[-100:]))
        m = sb.spawn_manager(["manager", "--tmpdir", long_path])
        expect(m.line.startswith("ERROR: ") and m.wait() == 1, "manager: %r" % m.line[:200])
        expect(os.listdir(sb.tmp) == [], "created: %s" % os.listdir(sb.tmp))


def test_option_spellings_all_work():
    """--opt=value and --opt value, unique abbreviations, flags given twice, options after
    operands, and -- before an operand that looks like an option."""
    with Sandbox("spellings") as sb:
        for args in (["--tmpdir", sb.tmp, "--json"], ["--tmpdir=" + sb.tmp, "--json"],
                     ["--json", "--tmp", sb.tmp], ["--js", "--obj", "--tmpdir=" + sb.tmp],
                     ["--json", "--json", "--tmpdir", sb.tmp]):
            for cmd in ("ls", "sweep"):
                if cmd == "sweep":
                    args = [a for a in args if not a.startswith("--obj")]
                r = sb.run([cmd] + args)
                expect(r.returncode == 0 and r.stderr == "",
                       "%s %s: %d %r" % (cmd, args, r.returncode, r.stderr))
                expect(json.loads(r.stdout)["base"] == sb.tmp, "%s %s: %r" % (cmd, args,
                                                                              r.stdout))
        m = sb.spawn_manager(["manager", "--tmpdir=" + sb.tmp, "--shutdown-timeout", "100",
                              "--prune-interval=50", "--prune-grace", "0", "--no-rec"])
        expect(m.sock and m.dir.startswith(sb.tmp + "/"), "manager: %r" % m.line)
        expect(m.wait() == 0, "manager did not shut down after its 100 ms")
        # recover: options after DIR, and -- before a DIR that begins with a dash.
        os.mkdir(os.path.join(sb.tmp, "-odd"))
        r = subprocess.run([harness.SHMWARDEN, "recover", "--dry-run", "--", "-odd"],
                           capture_output=True, text=True, cwd=sb.tmp, env=sb.env, timeout=30)
        expect(r.returncode == 1 and r.stderr.startswith("shmwarden recover: %s/-odd: " % sb.tmp) and
               "usage" not in r.stderr, "recover -- -odd: %d %r" % (r.returncode, r.stderr))
        d = os.path.join(sb.tmp, "shmwarden-nothere")
        r = sb.run(["recover", d, "--dry-run", "--json"])
        expect(r.returncode == 1 and json.loads(r.stdout)["dry_run"] is True,
               "recover DIR --dry-run --json: %d %r" % (r.returncode, r.stdout))


def test_prune_grace_range_and_zero_are_documented():
    """--prune-grace 0 is accepted and keeps no young name (a name whose object does not
    exist yet is dropped at the next prune or at shutdown): --help, the man page and the
    README say so, and state the range the option's error states."""
    r = run(["manager", "--prune-grace", "-1"])
    m = re.search(r"--prune-grace needs a number of seconds from (\d+) to (\d+)", r.stderr)
    expect(r.returncode == 2 and m, "--prune-grace -1: %d %r" % (r.returncode, r.stderr))
    rng = "%s to %s" % m.groups()
    helped = " ".join(run(["manager", "--help"]).stdout.split())
    man = " ".join(read(MAN1).replace("\\-", "-").split())
    readme = " ".join(read(os.path.join(harness.ROOT, "README.md")).split())
    for doc, text in (("manager --help", helped), ("shmwarden(1)", man), ("README.md", readme)):
        said = text[text.find("--prune-grace"):]
        expect("whole seconds, %s" % rng in said,
               "%s does not state --prune-grace's range (%s)" % (doc, rng))
        expect("0 is no grace, for tests only: a name whose object does not exist yet" in said
               and "dropped at the next prune or at shutdown" in said,
               "%s does not say what --prune-grace 0 does" % doc)


def test_reclaimers_say_alike_what_prune_grace_zero_does():
    """sweep's and recover's --prune-grace 0 drops every name whose object does not exist
    yet at once, counted gone, which is only safe once no client can still be creating:
    their --help, their man page sections and the README's sweep row say both in the same
    words (--help said only "no grace, for when no client can still be creating"), and ls's
    --help says what 0 shows."""
    zero = "0 is no grace: every such name is dropped at once, as gone; only for when no client"
    when = "(an epilog after the whole job is dead"
    sections = man_sections()
    texts = [("shmwarden sweep: README.md", readme_commands()["sweep"])]
    for cmd in ("sweep", "recover"):
        texts.append(("%s --help" % cmd, run([cmd, "--help"]).stdout))
        texts.append(("shmwarden(1) %s" % cmd, sections[cmd].replace("\\-", "-")))
    for doc, text in texts:
        text = " ".join(text.split())
        expect(zero in text and when in text,
               "%s does not say what --prune-grace 0 does, and when: %r" % (
                   doc, text[text.find("--prune-grace"):][:600]))
    helped = " ".join(run(["ls", "--help"]).stdout.split())
    expect("0: every name whose object does not exist is (gone), as a sweep with 0 drops it"
           in helped, "ls --help does not say what --prune-grace 0 shows: %r" % helped)


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


# ---- the manager directory: every failure names its cause and the setting -----------------

def manager_fails(args, env, user=None, cwd="/"):
    """`shmwarden manager ARGS` that must fail at start: (the ERROR text, stderr)."""
    argv = [harness.SHMWARDEN, "manager", "--no-reclaim"] + args
    kw = dict(capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL, env=env,
              cwd=cwd)
    if user:
        kw.update(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
    p = subprocess.run(argv, **kw)
    first = p.stdout.split("\n", 1)[0]
    expect(p.returncode == 1 and first.startswith("ERROR: "),
           "%s: exit %d, %r %r" % (args, p.returncode, p.stdout, p.stderr))
    why = first[len("ERROR: "):]
    # The same sentence on stderr, as every command begins its errors.
    expect(p.stderr.startswith("shmwarden manager: " + why),
           "%s: stderr %r, want 'shmwarden manager: %s'" % (args, p.stderr[:300], why[:200]))
    return why


def check_base_error(why, setting, cause, base):
    """The setting first, the errno's own words, never a full disk that is not one."""
    expect(why.startswith(setting + ": "), "%r does not begin with %r" % (why, setting))
    expect(cause in why, "%r does not say %r" % (why, cause))
    if cause != os.strerror(28):
        expect("full" not in why, "%r blames a full filesystem" % why)
    expect(base in why, "%r does not name %s" % (why, base))


def base_error_cases(tmp):
    """(args, env changes, the setting the message must begin with, the cause): the ones
    any user can set up."""
    afile = os.path.join(tmp, "afile")
    with open(afile, "w"):
        pass
    missing = os.path.join(tmp, "missing", "deeper")
    deep = os.path.join(tmp, "d" * 100)
    os.makedirs(deep, exist_ok=True)
    return [
        (["--tmpdir", "/proc"], {}, "--tmpdir", os.strerror(2), "/proc"),
        ([], {"TMPDIR": "/proc"}, "TMPDIR (from the environment)", os.strerror(2),
         "/proc"),
        ([], {"TMPDIR": "", "TMP": "/proc"}, "TMP (from the environment)",
         os.strerror(2), "/proc"),
        (["--tmpdir", afile], {}, "--tmpdir", os.strerror(20), afile),
        ([], {"TMPDIR": afile}, "TMPDIR (from the environment)", os.strerror(20),
         afile),
        (["--tmpdir", missing], {}, "--tmpdir", os.strerror(2), missing),
        (["--tmpdir", deep], {}, "--tmpdir", "limit of Unix sockets", deep),
        ([], {"TMPDIR": deep}, "TMPDIR (from the environment)",
         "limit of Unix sockets", deep),
    ]


def test_manager_directory_errors_name_cause_and_setting():
    with Sandbox("mgrbase") as sb:
        for args, env, setting, cause, base in base_error_cases(sb.tmp):
            why = manager_fails(args, dict(sb.env, **env))
            check_base_error(why, setting, cause, base)
            fix = "give --tmpdir" if args else "set %s to" % setting.split()[0]
            expect(fix in why, "%r does not say %r" % (why, fix))
        # The long base: the advice docs/PROTOCOL.md quotes.
        why = manager_fails([], dict(sb.env, TMPDIR=os.path.join(sb.tmp, "d" * 100)))
        expect(why.endswith("set TMPDIR to a shorter directory"), why)
        # The default base, when no variable is set, says so.
        env = {k: v for k, v in sb.env.items() if k not in ("TMPDIR", "TMP", "TEMP", "TEMPDIR")}
        if os.geteuid() != 0:
            return
        # Permission denied: a user who may not write in the (0700, root's) base.
        name = harness.useradd("base")
        try:
            import pwd
            pw = pwd.getpwnam(name)
            why = manager_fails(["--tmpdir", sb.tmp], env, user=pw)
            check_base_error(why, "--tmpdir", os.strerror(13), sb.tmp)
            why = manager_fails([], dict(env, TMPDIR=sb.tmp), user=pw)
            check_base_error(why, "TMPDIR (from the environment)",
                             os.strerror(13), sb.tmp)
        finally:
            subprocess.run(["userdel", name], capture_output=True)
        if not shutil.which("unshare"):
            print("# SKIP read-only and full bases: no unshare")
            return
        p = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable,
                            os.path.abspath(__file__), "--base-helper", sb.tmp],
                           capture_output=True, text=True, timeout=120, env=sb.env)
        expect(p.returncode == 0, "helper exit %d:\n%s%s" % (p.returncode, p.stdout[-2000:],
                                                               p.stderr[-2000:]))
        for line in p.stdout.splitlines():
            print("# " + line)


def base_helper(tmp):
    """Inside `unshare --mount`: a read-only bind mount and a full tmpfs as the base."""
    ro = os.path.join(tmp, "ro")
    full = os.path.join(tmp, "full")
    os.mkdir(ro, 0o700)
    os.mkdir(full, 0o700)
    subprocess.run(["mount", "--bind", ro, ro], check=True)
    subprocess.run(["mount", "-o", "remount,bind,ro", ro], check=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,nr_inodes=3,mode=0700", "tmpfs",
                    full], check=True)
    try:
        env = dict(os.environ)
        why = manager_fails(["--tmpdir", ro], env)
        check_base_error(why, "--tmpdir", os.strerror(30), ro)
        print("read-only: " + why)
        why = manager_fails([], dict(env, TMPDIR=ro))
        check_base_error(why, "TMPDIR (from the environment)", os.strerror(30), ro)
        # Fill the tmpfs: its inodes first (the directory needs one), then its blocks.
        n = 0
        try:
            while True:
                with open(os.path.join(full, "f%d" % n), "wb") as f:
                    f.write(bytes(8192))
                n += 1
        except OSError:
            pass
        why = manager_fails(["--tmpdir", full], env)
        check_base_error(why, "--tmpdir", os.strerror(28), full)
        expect("free" in why, "%r: no room figure" % why)
        print("full: " + why)
        expect(all(x.startswith("f") for x in os.listdir(full)), "left: %s" % os.listdir(full))
    finally:
        subprocess.run(["umount", "-l", full], capture_output=True)
        subprocess.run(["umount", "-l", ro], capture_output=True)


if __name__ == "__main__" and len(sys.argv) > 2 and sys.argv[1] == "--base-helper":
    base_helper(sys.argv[2])
    sys.exit(0)


def _to(sb, argv, stdout, env=None, exe=None):
    """argv (argv[0] included) with stdout as given: a file object, or None for closed."""
    if stdout is None:
        argv = ["/bin/sh", "-c", 'exec "$@" >&-', "sh"] + argv
        exe = None
    return subprocess.run(argv, executable=exe, stdout=stdout, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, env=env or sb.env, timeout=60, text=True)


def test_a_failed_write_to_stdout_is_said_and_fails():
    """`ls > /dev/full` and `sweep --json > /dev/full` exited 1 saying nothing, `--help >
    /dev/full` exited 0, and a manager whose stdout was full or closed (so its socket
    path, how a client learns where to connect, was never delivered) served on and exited
    0. Each now says "PROG: standard output: WHY" on stderr and exits 1; the manager
    fails at start and leaves no directory."""
    with Sandbox("stdout") as sb:
        d = harness.dead_manager(sb, [sb.name(0)])
        bare = os.path.basename(d)
        enospc = "standard output: No space left on device"
        with open("/dev/full", "w") as full:
            for args, prog in ((["--help"], "shmwarden"), (["--version"], "shmwarden"),
                               (["help", "ls"], "shmwarden ls"),
                               (["ls", "--help"], "shmwarden ls"),
                               (["ls"], "shmwarden ls"), (["ls", "--json"], "shmwarden ls"),
                               (["sweep", "--dry-run", "--json"], "shmwarden sweep"),
                               (["recover", "--dry-run", bare], "shmwarden recover"),
                               (["manager", "--help"], "shmwarden manager")):
                r = _to(sb, [harness.SHMWARDEN] + args, full)
                expect(r.returncode == 1 and r.stderr == "%s: %s\n" % (prog, enospc),
                       "%s > /dev/full: %d %r" % (args, r.returncode, r.stderr))
            expect(sb.objects() == [sb.name(0)] and os.path.isdir(d), "a dry run changed it")
            # A real sweep still reclaims; only its report is lost, and it says so.
            r = _to(sb, [harness.SHMWARDEN, "sweep", "--json"], full)
            expect(r.returncode == 1 and r.stderr.endswith("shmwarden sweep: %s\n" % enospc)
                   and sb.objects() == [],
                   "sweep > /dev/full: %d %r %s" % (r.returncode, r.stderr, sb.objects()))
            # The manager: full, closed, and as the drop-in.
            for argv, exe, out, why in (
                    ([harness.SHMWARDEN, "manager"], None, full, enospc),
                    (["torch_shm_manager"], harness.TORCH_SHM_MANAGER, full, enospc),
                    ([harness.SHMWARDEN, "manager"], None, None,
                     "standard output: Bad file descriptor")):
                prog = "torch_shm_manager" if exe else "shmwarden manager"
                r = _to(sb, argv, out, exe=exe)
                expect(r.returncode == 1 and ("%s: %s" % (prog, why)) in r.stderr,
                       "%s %s: %d %r" % (argv, "closed" if out is None else "full",
                                         r.returncode, r.stderr))
                expect(sb.manager_dirs() == [], "left %s" % sb.manager_dirs())


harness.main(globals())
