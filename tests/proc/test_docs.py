"""test_docs.py — the project's documents stay inside the project and stay true: nothing
points outside the repository, every mention of DESIGN.md or PROTOCOL.md names the copy
in docs/, and the PyTorch versions the README and docs/PROTOCOL.md list are the ones the
matrix tests (tests/proc/matrix.py) plus the host's.
"""
import os
import re
import shutil
import subprocess
import tempfile

import harness
import matrix


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def read(rel):
    with open(os.path.join(harness.ROOT, rel), errors="replace") as f:
        return f.read()


def project_files():
    """The repository's text files: git's list, or (a copy without .git, as in the sid
    chroot) every file outside the build directories."""
    try:
        r = subprocess.run(["git", "-C", harness.ROOT, "ls-files", "-co", "--exclude-standard"],
                           capture_output=True, text=True)
    except FileNotFoundError:  # no git here (the sid chroot)
        r = None
    if r and r.returncode == 0 and r.stdout:
        files = r.stdout.split()
    else:
        files = []
        for d, subs, names in os.walk(harness.ROOT):
            subs[:] = [s for s in subs if not s.startswith(("build", ".git", "__pycache__"))]
            files += [os.path.relpath(os.path.join(d, n), harness.ROOT) for n in names]
    out = []
    for f in files:
        p = os.path.join(harness.ROOT, f)
        if os.path.isfile(p):
            with open(p, "rb") as fh:
                if b"\0" not in fh.read(4096):
                    out.append(f)
    return out


def test_nothing_points_outside_the_repository():
    files = project_files()
    expect(len(files) > 50, "only %d files found" % len(files))
    bad = []
    for f in files:
        for n, line in enumerate(read(f).splitlines(), 1):
            if f == "tests/proc/test_docs.py":
                continue
            if re.search(r"\.\./shared|/work/|shared/docs", line):
                bad.append("%s:%d: %s" % (f, n, line.strip()))
            for m in re.finditer(r"(\S*)\b(DESIGN|PROTOCOL)\.md", line):
                # In docs/ a bare name is the sibling; elsewhere it must say docs/.
                if not f.startswith("docs/") and not m.group(1).endswith("docs/"):
                    bad.append("%s:%d: %s" % (f, n, line.strip()))
    expect(not bad, "points outside the repository or not at docs/:\n" + "\n".join(bad[:20]))
    for doc in ("docs/DESIGN.md", "docs/PROTOCOL.md"):
        expect(len(read(doc)) > 2000, "%s is missing or empty" % doc)


def test_versions_listed_are_the_versions_tested():
    host = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "python3-torch"],
                          capture_output=True, text=True).stdout
    minors = [re.match(r"\d+\.\d+", host).group(0) if host else "1.13"]
    minors += list(matrix.RELEASES.values())
    for doc in ("README.md", "docs/PROTOCOL.md"):
        text = read(doc)
        for v in minors:
            expect(re.search(r"\| %s\.\d+(\+dfsg-\d+)? \|" % re.escape(v), text),
                   "%s does not list PyTorch %s in its table of versions checked" % (doc, v))
        for rel in matrix.RELEASES:
            expect(rel in text, "%s does not name %s" % (doc, rel))


def test_protocol_states_the_error_prefix_exactly():
    text = read("docs/PROTOCOL.md")
    expect("exactly `ERROR: `" in text, "docs/PROTOCOL.md does not state the `ERROR: ` prefix")


def test_readme_test_commands_name_real_tests():
    # The README's examples of running some tests name cases and files that exist.
    text = read("README.md")
    cmds = re.findall(r"^(build/tests/(test_\w+)|/usr/bin/python3 tests/proc/(test_\w+\.py)) (\w+)",
                      text, re.M)
    expect(len(cmds) >= 2, "the README shows no way to run one C case or one test file")
    for _, prog, pyfile, name in cmds:
        if prog:
            r = subprocess.run([os.path.join(harness.BUILD, "tests", prog), "--list"],
                               capture_output=True, text=True, timeout=60)
            expect(name in r.stdout.split(), "README: %s has no case %s" % (prog, name))
        else:
            src = read(os.path.join("tests", "proc", pyfile))
            expect(re.search(r"^def test_\w*%s" % name, src, re.M),
                   "README: %s has no test matching %s" % (pyfile, name))
    # The first python3 on PATH may not be Debian's (a venv, conda: no torch, no pytest):
    # the commands name the one the prose says the suite runs under.
    bare = re.findall(r"^python3 .*", text, re.M)
    expect(not bare, "README: commands run a bare python3, not /usr/bin/python3: %s" % bare)
    for m in re.finditer(r"-k (\w+) +# one test, or one C case", text):
        expect(m.group(1) in read("tests/unit/test_journal.c"), "README: -k %s" % m.group(1))


def man_text(rel):
    """A man page's source with groff's escaped hyphens as the reader sees them."""
    return read(rel).replace("\\-", "-")


def test_manager_base_errors_are_quoted_as_printed():
    # The README and the man page quote the manager's ERROR line for a base it cannot
    # use: the quotes are what the binary prints (the base shown as /x), for the option
    # and for the environment.
    tmp = tempfile.mkdtemp(prefix="docs-", dir=os.environ.get("TMPDIR", "/tmp"))
    try:
        base = os.path.join(tmp, "x")  # does not exist
        env = {k: v for k, v in os.environ.items()
               if k not in ("TMPDIR", "TMP", "TEMP", "TEMPDIR")}
        readme, man = read("README.md"), man_text("man/shmwarden.1")
        for args, extra in ((["--tmpdir", base], {"TMPDIR": tmp}), ([], {"TMPDIR": base})):
            p = subprocess.run([harness.SHMWARDEN, "manager", "--no-reclaim"] + args,
                               env=dict(env, **extra), capture_output=True, text=True,
                               timeout=30, stdin=subprocess.DEVNULL)
            line = p.stdout.split("\n", 1)[0].replace(base, "/x")
            expect(p.returncode == 1 and line.startswith("ERROR: "),
                   "%s: exit %d, %r" % (args, p.returncode, p.stdout))
            expect("`%s`" % line in readme, "README.md does not quote %r" % line)
            expect(line in man.splitlines(), "man/shmwarden.1 does not quote %r" % line)
            setting = line[len("ERROR: "):].split(": cannot create", 1)[0]
            expect("`%s:`" % setting in readme, "README.md does not name the setting %r:"
                   % setting)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_shutdown_signals_listed_are_the_ones_the_manager_takes():
    src = read("src/manager.c")
    fn = re.search(r"static int manager_setup_signals\(.*?\n}\n", src, re.S)
    expect(fn, "src/manager.c has no manager_setup_signals")
    sigs = re.findall(r"sigaddset\(&set, (SIG[A-Z]+)\)", fn.group(0))
    expect(len(sigs) >= 2, "manager_setup_signals adds %s" % sigs)
    readme = re.search(r"\*\*Shutdown\*\* \(([^)]*)\)", read("README.md"))
    man = re.search(r"\(or on (SIG[^)]*)\)", man_text("man/shmwarden.1"))
    expect(readme and man, "the README's Shutdown item or the man page's signal list is gone")
    for where, text in (("README.md", readme.group(1)), ("man/shmwarden.1", man.group(1))):
        listed = set(re.findall(r"SIG[A-Z]+", text))
        expect(listed == set(sigs), "%s lists %s as ending the manager, the code takes %s"
               % (where, sorted(listed), sorted(sigs)))


def test_recover_exit_status_1_lists_every_failing_status():
    # Every status but the ones cmd_recover.c counts as done exits 1: the man page's
    # list is the code's.
    names = dict(re.findall(r"case (RECLAIM_[A-Z]+):\s*return \"([a-z]+)\";",
                            read("src/reclaim.c")))
    expect(len(names) >= 6, "reclaim_status_str: %s" % names)
    ok = re.search(r"bool ok = (report\.status == RECLAIM_[A-Z]+(?: \|\| )?)+;",
                   read("src/cmd_recover.c"))
    expect(ok, "cmd_recover.c: no `bool ok = report.status == ...`")
    done = set(re.findall(r"RECLAIM_[A-Z]+", ok.group(0)))
    # Statuses with an exit status of their own (busy and starting: 3, try again later),
    # each a `bool NAME = report.status == RECLAIM_X;` beside ok, are not failures either.
    own = dict(re.findall(r"bool (\w+) = report\.status == (RECLAIM_[A-Z]+);",
                          read("src/cmd_recover.c")))
    expect(own.get("busy") == "RECLAIM_BUSY" and own.get("starting") == "RECLAIM_STARTING",
           "cmd_recover.c: no `bool busy = ...` and `bool starting = ...`: %s" % own)
    failing = {names[k] for k in names if k not in done and k not in own.values()}
    m3 = re.search(r"\.B 3\n(.*?)\n\.(?:TP|SH)", man_text("man/shmwarden.1"), re.S)
    expect(m3 and "busy" in m3.group(1) and "starting" in m3.group(1) and
           "recover" in m3.group(1),
           "man/shmwarden.1: EXIT STATUS has no 3 for recover's busy and starting")
    m = re.search(r"did not process\n\.I DIR\n\(its status is ([^)]*)\)",
                  man_text("man/shmwarden.1"))
    expect(m, "man/shmwarden.1: EXIT STATUS 1 no longer says `did not process DIR (its "
           "status is ...)`")
    listed = set(re.findall(r"[a-z]+", m.group(1))) - {"or"}
    expect(listed == failing, "man/shmwarden.1: recover exits 1 for %s, the page lists %s"
           % (sorted(failing), sorted(listed)))



def test_foreign_is_defined_as_the_code_decides_it():
    # mgrdir_same_shm compares the /dev/shm the journal recorded (its device, and its
    # directory's inode) with ours; the mount namespace is for the report. Every text that
    # defines the `foreign` state says so, and none makes another mount namespace foreign.
    code = read("src/mgrdir.c")
    same = re.search(r"bool mgrdir_same_shm\(.*?\n}\n", code, re.S)
    fs_same = re.search(r"bool shmobj_fs_same\(.*?\n}\n", read("src/shmobj.c"), re.S)
    expect(same and "shm_dev" in same.group(0) and "mnt_ns" not in same.group(0) and
           fs_same and "mnt_ns" not in fs_same.group(0),
           "mgrdir_same_shm no longer decides by the /dev/shm alone: update this test and "
           "the texts")
    man = re.search(r"\.B foreign\n\((.*?)\),?\n\.B ", man_text("man/shmwarden.1"), re.S)
    readme = re.search(r"^\| `foreign` \| (.*?) \|", read("README.md"), re.M)
    security = re.search(r"\*\*Which `/dev/shm`\.\*\*(.*?)\n\d+\. ", read("SECURITY.md"), re.S)
    for where, m in (("man/shmwarden.1", man), ("README.md", readme),
                     ("SECURITY.md", security)):
        expect(m, "%s: the definition of foreign is gone" % where)
        text = " ".join(re.sub(r"^\.[A-Z]+ ?", "", m.group(1), flags=re.M).split())
        expect("or mount namespace" not in text and "another mount namespace" in text and
               "not foreign" in text,
               "%s: foreign must be another shm filesystem, and a shared /dev/shm seen from "
               "another mount namespace not foreign: %r" % (where, text))


if __name__ == "__main__":
    harness.main(globals())
