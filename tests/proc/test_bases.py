"""test_bases.py — which temp bases `shmwarden sweep` visits: SHMWARDEN_TMPDIRS
(colon-separated), glob(3) patterns for per-job temp directories (mktemp -d, Slurm's
/tmp/slurm.JOBID, /scratch/USER/JOBID), the trust checks every match passes, garbage
patterns, and the Slurm epilog reading the same setting.

Every base lives under a private temp root made by the test; managers are real, given
TMPDIR = a per-job directory, and SIGKILLed; objects carry the sandbox's prefix.
"""
import json
import os
import pwd
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Sandbox  # noqa: E402


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def dead_job_manager(sb, base, names):
    """A manager whose TMPDIR is base (a job's own temp directory) registers names, its
    client creates them, and both are SIGKILLed. Returns the manager's directory."""
    return harness.dead_manager(sb, names, base=base, data=b"job")


def job_dirs(root, count, prefix="job."):
    out = []
    for _ in range(count):
        out.append(tempfile.mkdtemp(prefix=prefix, dir=root))
    return out


def sweep(sb, args=(), tmpdirs=None, env=None):
    e = dict(env or sb.env)
    # The suite's own TMPDIR (sb.tmp) is not where these jobs' managers are.
    e.pop("SHMWARDEN_TMPDIRS", None)
    if tmpdirs is not None:
        e["SHMWARDEN_TMPDIRS"] = tmpdirs
    return subprocess.run([harness.SHMWARDEN, "sweep"] + list(args), env=e,
                          capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def test_shmwarden_tmpdirs_reaches_per_job_directories():
    with Sandbox("bases") as sb:
        root = os.path.join(sb.tmp, "jobs")
        os.mkdir(root, 0o755)
        other = os.path.join(sb.tmp, "scratch")
        os.mkdir(other, 0o755)
        jobs = job_dirs(root, 3)
        names = [sb.name(i) for i in range(6)]
        dirs = [dead_job_manager(sb, jobs[i], names[2 * i:2 * i + 2]) for i in range(3)]
        lit = dead_job_manager(sb, other, [sb.name(9)])
        expect(len(sb.objects()) == 7, "setup: %s" % sb.objects())
        # Before: only TMPDIR (sb.tmp) was swept, and nothing is there.
        r = sweep(sb, ["--json"], tmpdirs="%s/job.*::%s" % (root, other))
        expect(r.returncode == 0, "sweep: %d %s" % (r.returncode, r.stderr))
        doc = json.loads(r.stdout)
        expect(sb.objects() == [], "left: %s" % sb.objects())
        expect(not any(os.path.exists(d) for d in dirs + [lit]), "directories left")
        paths = sorted(d["dir"] for d in doc["dirs"])
        expect(paths == sorted(dirs + [lit]), "report: %s" % paths)
        expect(doc["unsafe_bases"] == [], "unsafe: %s" % doc["unsafe_bases"])


def test_tmpdir_pattern_and_a_base_reached_twice_is_swept_once():
    with Sandbox("bases") as sb:
        root = os.path.join(sb.tmp, "slurm")
        os.mkdir(root, 0o755)
        jobs = job_dirs(root, 2, "slurm.")
        d0 = dead_job_manager(sb, jobs[0], [sb.name(0)])
        d1 = dead_job_manager(sb, jobs[1], [sb.name(1)])
        # The same directory by its name and by the pattern: one visit, one report line.
        r = sweep(sb, ["--json", "--dry-run"], tmpdirs="%s:%s/slurm.*" % (jobs[0], root))
        expect(r.returncode == 0, "dry run: %s" % r.stderr)
        doc = json.loads(r.stdout)
        expect(sorted(d["dir"] for d in doc["dirs"]) == sorted([d0, d1]),
               "dry run visited %s" % [d["dir"] for d in doc["dirs"]])
        expect(len(sb.objects()) == 2, "a dry run unlinked something")
        # --tmpdir wins over the variable, and takes a pattern too.
        r = sweep(sb, ["--tmpdir", os.path.join(root, "slurm.*")], tmpdirs="/nonexistent")
        expect(r.returncode == 0, "sweep: %d %s %s" % (r.returncode, r.stdout, r.stderr))
        expect(sb.objects() == [] and not os.path.exists(d0) and not os.path.exists(d1),
               "left %s" % sb.objects())
        # A pattern matching nothing is not an error.
        r = sweep(sb, ["--tmpdir", os.path.join(root, "nothing.*")])
        expect(r.returncode == 0 and r.stderr == "", "no match: %d %r" % (r.returncode, r.stderr))


def test_garbage_patterns_are_usage_errors():
    with Sandbox("bases") as sb:
        bad = {
            os.path.join(sb.tmp, "[ab"): "unmatched '['",
            os.path.join(sb.tmp, "**"): "no recursive match",
            os.path.join(sb.tmp, "a/**/b"): "no recursive match",
            os.path.join(sb.tmp, "{a,b}*"): "no brace expansion",
            os.path.join(sb.tmp, "x*\\"): "lone '\\'",
        }
        for pat, why in bad.items():
            for how in ("flag", "env"):
                if how == "flag":
                    r = sweep(sb, ["--tmpdir", pat])
                else:
                    r = sweep(sb, [], tmpdirs="/tmp:" + pat)
                expect(r.returncode == 2 and why in r.stderr and r.stdout == "",
                       "%s %r: %d %r" % (how, pat, r.returncode, r.stderr[:300]))
        for env in ("relative/dir", "/tmp:rel*", "\x01\x7f*[", "/" + "x" * 5000 + "*"):
            r = sweep(sb, [], tmpdirs=env)
            expect(r.returncode == 2 and r.stdout == "" and "SHMWARDEN_TMPDIRS" in r.stderr,
                   "env %r: %d %r" % (env[:40], r.returncode, r.stderr[:300]))
            expect("\x01" not in r.stderr, "control byte echoed: %r" % r.stderr[:200])
        # Empty entries are skipped, as in PATH; all empty: the temp base.
        r = sweep(sb, [], tmpdirs=":::")
        expect(r.returncode == 0, "':::' %d %r" % (r.returncode, r.stderr))


def test_hostile_matches_are_not_visited():
    with Sandbox("bases") as sb:
        root = os.path.join(sb.tmp, "jobs")
        os.mkdir(root, 0o755)
        elsewhere = os.path.join(sb.tmp, "elsewhere")
        os.mkdir(elsewhere, 0o755)
        # A dead manager the pattern does not name, reached by a symlink it matches.
        target = dead_job_manager(sb, elsewhere, [sb.name(0)])
        os.symlink(elsewhere, os.path.join(root, "job.link"))
        # A world-writable match: anyone could have put (or could swap) what is in it.
        ww = os.path.join(root, "job.ww")
        os.mkdir(ww)
        os.chmod(ww, 0o777)
        in_ww = dead_job_manager(sb, ww, [sb.name(1)])
        # A symlink as a middle component: /root/*/tmp through root/user.link -> elsewhere.
        deep = os.path.join(sb.tmp, "deep")
        os.makedirs(os.path.join(deep, "user", "tmp"), 0o755)
        os.symlink(os.path.join(deep, "user"), os.path.join(deep, "user.link"))
        real = dead_job_manager(sb, os.path.join(deep, "user", "tmp"), [sb.name(2)])
        # A match that is a file, and one that is a good job directory.
        open(os.path.join(root, "job.file"), "w").close()
        good = dead_job_manager(sb, tempfile.mkdtemp(prefix="job.", dir=root), [sb.name(3)])
        r = sweep(sb, ["--json"], tmpdirs="%s/job.*:%s/*/tmp" % (root, deep))
        expect(r.returncode == 0, "sweep: %d %s" % (r.returncode, r.stderr))
        doc = json.loads(r.stdout)
        unsafe = {u["base"]: u["why"] for u in doc["unsafe_bases"]}
        expect("symlink" in unsafe.get(os.path.join(root, "job.link"), ""), "link: %s" % unsafe)
        expect("writable by group or others" in unsafe.get(ww, ""), "ww: %s" % unsafe)
        expect("user.link is a symlink" in unsafe.get(os.path.join(deep, "user.link", "tmp"), ""),
               "middle link: %s" % unsafe)
        expect(os.path.join(root, "job.file") not in unsafe, "a file is no base: %s" % unsafe)
        # What the symlinks and the writable directory lead to is untouched: the object
        # reached through a link is swept once, by its real path.
        paths = sorted(d["dir"] for d in doc["dirs"])
        expect(paths == sorted([good, real]), "visited %s" % paths)
        expect(os.path.isdir(target) and os.path.isdir(in_ww), "a hostile match was swept")
        expect(sb.objects() == [sb.name(0), sb.name(1)], "objects: %s" % sb.objects())
        expect("unsafe: " in r.stderr, "no finding on stderr: %r" % r.stderr)


def test_unsafe_bases_are_counted_in_the_summary():
    """The summary line used to say "0 for a human" when a per-job directory was never
    swept for being unsafe itself; the finding was only on stderr, which the shipped cron
    line discards. Now it is counted there, and each count agrees with its noun."""
    with Sandbox("bases") as sb:
        root = os.path.join(sb.tmp, "jobs")
        os.mkdir(root, 0o755)
        ww = os.path.join(root, "job.ww")
        os.mkdir(ww)
        os.chmod(ww, 0o777)
        in_ww = dead_job_manager(sb, ww, [sb.name(0)])
        good = dead_job_manager(sb, tempfile.mkdtemp(prefix="job.", dir=root), [sb.name(1)])
        r = sweep(sb, [], tmpdirs="%s/job.*" % root)
        expect(r.returncode == 0, "sweep: %d %r" % (r.returncode, r.stderr))
        last = r.stdout.splitlines()[-1]
        expect(last.startswith("shmwarden sweep: 1 directory: 1 removed, 0 kept, 0 live, "
                               "0 starting, 1 for a human (0 unsafe, 0 corrupt, 0 foreign, "
                               "1 unsafe temp base), 0 failed; 1 object unlinked ("),
               "summary: %r" % last)
        expect(not os.path.exists(good) and os.path.isdir(in_ww) and
               sb.objects() == [sb.name(0)], "swept: %s" % sb.objects())
        # Two of them, and none: the plural, and the line as it always was.
        os.symlink(ww, os.path.join(root, "job.link"))
        r = sweep(sb, [], tmpdirs="%s/job.*" % root)
        last = r.stdout.splitlines()[-1]
        expect("2 for a human (0 unsafe, 0 corrupt, 0 foreign, 2 unsafe temp bases), 0 failed; "
               "0 objects unlinked" in last, "summary: %r" % last)
        os.chmod(ww, 0o755)
        r = sweep(sb, ["--dry-run"], tmpdirs=ww)
        last = r.stdout.splitlines()[-1]
        expect("0 for a human (0 unsafe, 0 corrupt, 0 foreign), 0 failed; 1 object unlinked"
               in last, "literal base: %r" % last)
        r = sweep(sb, [], tmpdirs=ww)
        expect(r.returncode == 0 and sb.objects() == [], "left: %s" % sb.objects())


def test_a_brace_is_a_usage_error_in_any_entry():
    """`{` used to be refused only in a pattern: a literal /x/job.{1,2} failed later as a
    missing directory (exit 1). glob(3) has no brace expansion, whatever the entry."""
    with Sandbox("bases") as sb:
        root = os.path.join(sb.tmp, "jobs")
        os.mkdir(root, 0o755)
        lit = os.path.join(root, "job.{1,2}")
        for cmd in ("ls", "sweep"):
            for how in ("flag", "env"):
                e = dict(sb.env)
                e.pop("SHMWARDEN_TMPDIRS", None)
                args = [cmd]
                if how == "flag":
                    args += ["--tmpdir", lit]
                else:
                    e["SHMWARDEN_TMPDIRS"] = "/tmp:" + lit
                r = subprocess.run([harness.SHMWARDEN] + args, env=e, capture_output=True,
                                   text=True, timeout=60, stdin=subprocess.DEVNULL)
                expect(r.returncode == 2 and "'{' in a temp base: glob(3) has no brace "
                       "expansion" in r.stderr and r.stdout == "",
                       "%s %s: %d %r" % (cmd, how, r.returncode, r.stderr))
        # A directory whose name holds '{' is still reachable: [{] matches it.
        odd = os.path.join(root, "a{b")
        os.mkdir(odd, 0o755)
        d = dead_job_manager(sb, odd, [sb.name(0)])
        r = sweep(sb, ["--tmpdir", os.path.join(root, "a[{]b")])
        expect(r.returncode == 0 and not os.path.exists(d) and sb.objects() == [],
               "[{]: %d %r" % (r.returncode, r.stderr))
        # An escaped brace is no brace.
        r = sweep(sb, ["--tmpdir", os.path.join(root, "a\\{b*")])
        expect(r.returncode == 0, "escaped: %d %r" % (r.returncode, r.stderr))


def test_a_missing_base_is_counted_where_the_exit_status_is():
    """A literal temp base that does not exist is a failure (exit 1: the admin named a
    directory, and a typo there would otherwise sweep nothing unseen), and a pattern
    matching nothing is not. The summary used to say "0 failed" and the JSON totals
    "error": 0 while the sweep exited 1; both count the base now, dry run or not."""
    with Sandbox("bases") as sb:
        root = os.path.join(sb.tmp, "jobs")
        os.mkdir(root, 0o755)
        job = tempfile.mkdtemp(prefix="job.", dir=root)
        dead_job_manager(sb, job, [sb.name(0)])
        missing = os.path.join(sb.tmp, "missing")
        for dry in ([], ["--dry-run"]):
            r = sweep(sb, dry, tmpdirs=root + ":" + missing)
            lines = r.stdout.splitlines()
            expect(r.returncode == 1 and len(lines) == 1 and
                   "0 directories:" in lines[0] and
                   "1 failed (0 directories, 1 temp base not read)" in lines[0] and
                   "cannot open the temp base %s" % missing in r.stderr,
                   "text %s: %d %r %r" % (dry, r.returncode, r.stdout, r.stderr))
            r = sweep(sb, dry + ["--json"], tmpdirs=root + ":" + missing)
            doc = json.loads(r.stdout)
            expect(r.returncode == 1 and doc["totals"]["failed_bases"] == 1 and
                   doc["totals"]["error"] == 0 and missing in doc["error"],
                   "json %s: %d %r" % (dry, r.returncode, r.stdout))
        # The job's base next to the missing one is swept all the same.
        r = sweep(sb, ["--json"], tmpdirs=job + ":" + missing)
        doc = json.loads(r.stdout)
        expect(r.returncode == 1 and doc["totals"]["removed"] == 1 and
               doc["totals"]["failed_bases"] == 1 and sb.objects() == [],
               "beside: %d %r" % (r.returncode, r.stdout))
        # A pattern matching nothing (no job ran here): nothing to do, not a failure.
        for dry in ([], ["--dry-run"]):
            r = sweep(sb, dry, tmpdirs=root + ":" + os.path.join(sb.tmp, "slurm.*"))
            expect(r.returncode == 0 and ", 0 failed;" in r.stdout and r.stderr == "",
                   "no match %s: %d %r %r" % (dry, r.returncode, r.stdout, r.stderr))
            r = sweep(sb, dry + ["--json"], tmpdirs=os.path.join(sb.tmp, "slurm.*"))
            doc = json.loads(r.stdout)
            expect(r.returncode == 0 and doc["totals"]["failed_bases"] == 0 and
                   "error" not in doc, "no match json %s: %d %r" % (dry, r.returncode, r.stdout))
        # The only base missing: no totals in text (the error is the news), and the
        # JSON document still counts it.
        r = sweep(sb, ["--json", "--tmpdir", missing])
        doc = json.loads(r.stdout)
        expect(r.returncode == 1 and doc["totals"]["failed_bases"] == 1 and doc["dirs"] == [],
               "alone: %d %r" % (r.returncode, r.stdout))
        r = sweep(sb, ["--tmpdir", missing])
        expect(r.returncode == 1 and r.stdout == "", "alone text: %r" % r.stdout)


def test_errors_name_where_the_base_came_from():
    """A bad entry of SHMWARDEN_TMPDIRS used to be told "give --tmpdir ... or set
    SHMWARDEN_TMPDIRS"; the message names the setting to fix. --tmpdir takes one base:
    a list there is refused with the variable to use. A relative --tmpdir (literal or
    pattern) is taken from the working directory; a relative entry of the variable is
    refused, saying why."""
    with Sandbox("bases") as sb:
        missing = os.path.join(sb.tmp, "missing")
        e = dict(sb.env)
        e.pop("SHMWARDEN_TMPDIRS", None)
        for cmd in ("ls", "sweep"):
            r = sb.run([cmd], env=dict(e, SHMWARDEN_TMPDIRS=sb.tmp + ":" + missing))
            expect(r.returncode == 1 and "cannot open the temp base %s (from SHMWARDEN_TMPDIRS)"
                   % missing in r.stderr and "give --tmpdir" not in r.stderr,
                   "%s env: %d %r" % (cmd, r.returncode, r.stderr))
            r = sb.run([cmd, "--tmpdir", missing], env=e)
            expect(r.returncode == 1 and "cannot open the temp base %s (from --tmpdir)" % missing
                   in r.stderr and "give --tmpdir" not in r.stderr,
                   "%s flag: %d %r" % (cmd, r.returncode, r.stderr))
            r = sb.run([cmd], env=dict(e, TMPDIR=missing))
            expect(r.returncode == 1 and "cannot open the temp base %s (from TMPDIR)" % missing
                   in r.stderr and "set SHMWARDEN_TMPDIRS" in r.stderr,
                   "%s TMPDIR: %d %r" % (cmd, r.returncode, r.stderr))
            r = sb.run([cmd, "--tmpdir", "%s:%s" % (sb.tmp, missing)], env=e)
            expect(r.returncode == 2 and "--tmpdir takes one temp base" in r.stderr and
                   "SHMWARDEN_TMPDIRS=A:B" in r.stderr and r.stdout == "",
                   "%s A:B: %d %r" % (cmd, r.returncode, r.stderr))
            r = sb.run([cmd], env=dict(e, SHMWARDEN_TMPDIRS="jobs/*"))
            expect(r.returncode == 2 and "SHMWARDEN_TMPDIRS: not an absolute path" in r.stderr
                   and "--tmpdir takes a relative one" in r.stderr,
                   "%s relative env: %d %r" % (cmd, r.returncode, r.stderr))
        # A directory whose name holds ':' and exists is taken as named.
        colon = os.path.join(sb.tmp, "a:b")
        os.mkdir(colon, 0o755)
        r = sb.run(["ls", "--tmpdir", colon], env=e)
        expect(r.returncode == 0, "a:b: %d %r" % (r.returncode, r.stderr))
        # A relative --tmpdir, literal or pattern: from the working directory.
        root = os.path.join(sb.tmp, "jobs")
        os.mkdir(root, 0o755)
        d = dead_job_manager(sb, tempfile.mkdtemp(prefix="job.", dir=root), [sb.name(0)])
        r = subprocess.run([harness.SHMWARDEN, "sweep", "--dry-run", "--json", "--tmpdir",
                            "jobs/job.*"], env=e, cwd=sb.tmp, capture_output=True, text=True,
                           timeout=60)
        expect(r.returncode == 0 and [x["dir"] for x in json.loads(r.stdout)["dirs"]] ==
               ["jobs/%s/%s" % (os.path.basename(os.path.dirname(d)), os.path.basename(d))],
               "relative pattern: %d %r %r" % (r.returncode, r.stdout, r.stderr))
        r = sweep(sb, ["--tmpdir", os.path.join(root, "job.*")])
        expect(r.returncode == 0 and sb.objects() == [], "left: %s" % sb.objects())


def test_ls_table_stays_aligned_with_paths():
    """With patterns the DIRECTORY column holds paths, longer than its 20 characters:
    the column is as wide as its widest entry, so every row lines up with the header."""
    with Sandbox("bases") as sb:
        root = os.path.join(sb.tmp, "j")  # a socket path has 107 bytes: the paths are
        # longer than the column's 20 all the same
        os.mkdir(root, 0o755)
        dirs = [dead_job_manager(sb, j, [sb.name(i)]) for i, j in enumerate(job_dirs(root, 2))]
        r = sb.run(["ls", "--tmpdir", os.path.join(root, "job.*")])
        expect(r.returncode == 0, "ls: %d %r" % (r.returncode, r.stderr))
        lines = r.stdout.splitlines()
        header, rows = lines[1], lines[2:]
        expect(len(rows) == 2 and all(any(l.startswith(d + " ") for l in rows) for d in dirs),
               "rows: %r" % rows)
        for col in ("STATE", "OWNER"):  # left-aligned
            at = header.index(col)
            expect(all(l[at - 1] == " " and l[at] != " " for l in rows),
                   "%s not aligned:\n%s" % (col, "\n".join(lines)))
        for col in ("OBJECTS", "BYTES"):  # right-aligned
            end = header.index(col) + len(col)
            expect(all(l[end - 1] != " " and (len(l) == end or l[end] == " ") for l in rows),
                   "%s not aligned:\n%s" % (col, "\n".join(lines)))
        for l in rows:
            expect(l[header.index("STATE"):].split()[0] == "dead", "state column: %r" % l)
        r = sb.run(["sweep", "--tmpdir", os.path.join(root, "job.*")])
        expect(r.returncode == 0 and sb.objects() == [], "cleanup: %r" % r.stderr)


def test_ls_lists_what_the_sweep_would_visit():
    with Sandbox("bases") as sb:
        root = os.path.join(sb.tmp, "jobs")
        os.mkdir(root, 0o755)
        jobs = job_dirs(root, 2)
        dirs = [dead_job_manager(sb, j, [sb.name(i)]) for i, j in enumerate(jobs)]
        os.symlink(jobs[0], os.path.join(root, "job.link"))
        e = dict(sb.env, SHMWARDEN_TMPDIRS="%s/job.*" % root)
        r = subprocess.run([harness.SHMWARDEN, "ls", "--json"], env=e, capture_output=True,
                           text=True, timeout=60)
        expect(r.returncode == 0, "ls: %d %s" % (r.returncode, r.stderr))
        doc = json.loads(r.stdout)
        expect(sorted(m["path"] for m in doc["managers"]) == sorted(dirs), "ls: %s" % doc)
        expect([u["base"] for u in doc["unsafe_bases"]] == [os.path.join(root, "job.link")],
               "unsafe: %s" % doc["unsafe_bases"])
        # The table shows paths when there are several bases: names alone would be
        # ambiguous.
        r = subprocess.run([harness.SHMWARDEN, "ls"], env=e, capture_output=True, text=True,
                           timeout=60)
        expect(r.returncode == 0 and all(d in r.stdout for d in dirs), "ls: %r" % r.stdout)
        r = subprocess.run([harness.SHMWARDEN, "ls", "--tmpdir", root + "/[x"], env=e,
                           capture_output=True, text=True, timeout=60)
        expect(r.returncode == 2 and "unmatched '['" in r.stderr, "ls garbage: %r" % r.stderr)
        expect(len(sb.objects()) == 2 and all(os.path.isdir(d) for d in dirs), "ls changed")


def test_root_sweeper_acts_for_the_owner_in_per_job_bases():
    if os.geteuid() != 0:
        print("SKIP test_root_sweeper_acts_for_the_owner_in_per_job_bases: needs root")
        return
    names = [harness.useradd("bases"), harness.useradd("bases")]
    try:
        alice, bob = (pwd.getpwnam(n) for n in names)
        with Sandbox("bases", shared=True) as sb:
            scratch = os.path.join(sb.tmp, "scratch")
            os.mkdir(scratch, 0o755)
            made = {}
            for pw in (alice, bob):
                home = os.path.join(scratch, pw.pw_name)
                os.mkdir(home, 0o700)
                os.chown(home, pw.pw_uid, pw.pw_gid)
                for job in ("1001", "1002"):
                    d = os.path.join(home, job)
                    os.mkdir(d, 0o700)
                    os.chown(d, pw.pw_uid, pw.pw_gid)
                    env = dict(sb.env, TMPDIR=d)
                    n = sb.name("%s_%s" % (pw.pw_uid, job))
                    made[(pw.pw_uid, job)] = (harness.dead_manager_as(sb, pw, ["+" + n], env), n)
            # A root-owned directory planted among alice's: its root manager is not
            # alice's to have, and stays (the path rule: alice could replace it).
            planted = os.path.join(scratch, alice.pw_name, "1003")
            os.mkdir(planted, 0o755)
            proot = dead_job_manager(sb, planted, [sb.name("root")])
            os.chown(planted, alice.pw_uid, alice.pw_gid)
            pattern = os.path.join(scratch, "*", "*")
            # The epilog's call: alice only.
            r = sweep(sb, ["--user", alice.pw_name, "--json"], tmpdirs=pattern)
            expect(r.returncode == 0, "sweep --user: %d %s" % (r.returncode, r.stderr))
            for (uid, job), (d, n) in made.items():
                gone = not os.path.exists(harness.SHM + n)
                expect(gone == (uid == alice.pw_uid), "%s's job %s: gone=%s" % (uid, job, gone))
                expect(os.path.exists(d) == (uid != alice.pw_uid), "dir %s" % d)
            # Every user's, as the timer runs it.
            r = sweep(sb, ["--json"], tmpdirs=pattern)
            expect(r.returncode == 0, "sweep: %d %s" % (r.returncode, r.stderr))
            doc = json.loads(r.stdout)
            expect(all(not os.path.exists(d) for d, _ in made.values()), "dirs left")
            expect(os.path.isdir(proot) and os.path.exists(harness.SHM + sb.name("root")),
                   "the planted root manager was reclaimed: %s" % doc)
            statuses = {d["dir"]: d["status"] for d in doc["dirs"]}
            expect(statuses.get(proot) == "unsafe", "planted: %s" % statuses)
            expect(sb.objects() == [sb.name("root")], "objects: %s" % sb.objects())
    finally:
        for n in names:
            subprocess.run(["userdel", n], capture_output=True)


def test_slurm_epilog_sweeps_the_jobs_bases_from_the_same_setting():
    if os.geteuid() != 0:
        print("SKIP test_slurm_epilog_sweeps_the_jobs_bases_from_the_same_setting: needs root")
        return
    if os.path.exists("/etc/default/shmwarden"):
        # The epilog reads the host's file, which is not this test's to change.
        print("SKIP test_slurm_epilog_sweeps_the_jobs_bases_from_the_same_setting: "
              "/etc/default/shmwarden exists on this host")
        return
    name = harness.useradd("bases")
    try:
        pw = pwd.getpwnam(name)
        with Sandbox("bases", shared=True) as sb:
            root = os.path.join(sb.tmp, "jobs")
            os.mkdir(root, 0o755)
            other = os.path.join(sb.tmp, "scratch")
            os.mkdir(other, 0o755)
            made = []
            for i in range(3):
                d = os.path.join(root, "slurm.%d" % (100 + i)) if i < 2 else other
                if i < 2:
                    os.mkdir(d, 0o700)
                    os.chown(d, pw.pw_uid, pw.pw_gid)
                else:
                    os.chmod(d, 0o1777)
                n = sb.name(i)
                made.append((harness.dead_manager_as(sb, pw, ["+" + n], dict(sb.env, TMPDIR=d)),
                             n))
            epilog = os.path.join(sb.tmp, "slurm-epilog")
            with open(os.path.join(harness.ROOT, "scripts", "slurm-epilog")) as f:
                text = f.read()
            with open(epilog, "w") as f:
                f.write(text.replace("shmwarden=/usr/local/bin/shmwarden",
                                     "shmwarden=%s" % harness.SHMWARDEN))
            os.chmod(epilog, 0o755)
            env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SLURM_JOB_UID": str(pw.pw_uid),
                   "SLURM_JOB_ID": "100",
                   # PATH-like, as sweep reads it: a pattern and a literal base.
                   "SHMWARDEN_TMPDIRS": "%s/slurm.*:%s" % (root, other)}
            r = subprocess.run([epilog], env=env, capture_output=True, text=True, timeout=120)
            expect(r.returncode == 0, "epilog: %d %s" % (r.returncode, r.stderr))
            left = [n for _, n in made if os.path.exists(harness.SHM + n)]
            expect(left == [], "the epilog left %s" % left)
            expect(not any(os.path.exists(d) for d, _ in made), "directories left")
    finally:
        subprocess.run(["userdel", name], capture_output=True)


def test_cost_of_a_thousand_matched_bases():
    """A pattern matching 1,000 per-job directories (5 holding a dead manager): the sweep
    finishes and its CPU time is stated (the machine may be loaded: CPU, not wall)."""
    with Sandbox("bases") as sb:
        root = os.path.join(sb.tmp, "many")
        os.mkdir(root, 0o755)
        jobs = [os.path.join(root, "job.%04d" % i) for i in range(1000)]
        for j in jobs:
            os.mkdir(j, 0o700)
        for i in range(5):
            dead_job_manager(sb, jobs[i * 199], [sb.name(i)])
        t0 = time.monotonic()
        before = os.times()
        r = sweep(sb, ["--json"], tmpdirs=os.path.join(root, "job.*"))
        after = os.times()
        wall = time.monotonic() - t0
        expect(r.returncode == 0, "sweep: %s" % r.stderr)
        doc = json.loads(r.stdout)
        expect(doc["totals"]["removed"] == 5 and sb.objects() == [], "doc %s" % doc["totals"])
        cpu = (after.children_user - before.children_user +
               after.children_system - before.children_system)
        print("# 1000 matched bases, 5 dead managers: %.3f s CPU (user %.3f, sys %.3f), "
              "%.3f s wall, load %s" % (cpu, after.children_user - before.children_user,
                                        after.children_system - before.children_system, wall,
                                        open("/proc/loadavg").read().split()[0]))


def test_a_long_list_of_bases_is_shown_whole():
    """SHMWARDEN_TMPDIRS with 40 long bases (10 KiB, names in UTF-8): ls and sweep
    joined them into a PATH_MAX buffer, so their header and JSON "base" lost every base
    past 4 KiB (the one holding the dead manager among them), cut in the middle of a
    character. Now the whole list is shown, and the last base is still swept."""
    with Sandbox("manybases") as sb:
        root = os.path.join(sb.tmp, "many")
        os.mkdir(root, 0o755)
        bases = []
        for i in range(40):
            d = os.path.join(root, "base-%02d-" % i + "\u00e4" * 100)
            os.mkdir(d, 0o755)
            bases.append(d)
        last = os.path.join(root, "z")
        os.mkdir(last, 0o755)
        bases.append(last)
        d = dead_job_manager(sb, last, [sb.name("z")])
        tmpdirs = ":".join(bases)
        expect(len(tmpdirs.encode()) > 8192, "setup: %d bytes" % len(tmpdirs.encode()))
        e = dict(sb.env, SHMWARDEN_TMPDIRS=tmpdirs)
        r = sb.run(["ls", "--json"], env=e)
        expect(r.returncode == 0, "ls --json: %d %s" % (r.returncode, r.stderr))
        doc = json.loads(r.stdout)
        expect(doc["base"] == tmpdirs, "ls --json base cut at %d of %d bytes"
               % (len(doc["base"].encode()), len(tmpdirs.encode())))
        expect([m["path"] for m in doc["managers"]] == [d], "ls: %s" % doc["managers"])
        r = sb.run(["ls"], env=e)
        head = r.stdout.splitlines()[0] if r.stdout else ""
        expect(r.returncode == 0 and head.endswith(":%s (from SHMWARDEN_TMPDIRS)" % last),
               "ls header: %d %r" % (r.returncode, head[-200:]))
        expect(head.count(":") == len(bases) - 1, "ls header lacks bases")
        # The log: a line used to stop at 1 KiB, in the middle of an "\u00e4" (stderr
        # was not UTF-8 any more). 20 bases (5 KiB) are logged whole; 41 (10 KiB) are cut
        # at 8 KiB (LOG_MSG_MAX, rsyslog's default message size), between two
        # characters, saying how much was cut.
        fewer = ":".join(bases[20:])
        expect(4096 < len(fewer.encode()) < 7000, "setup: %d bytes" % len(fewer.encode()))
        for tmp, whole in ((fewer, True), (tmpdirs, False)):
            r = subprocess.run([harness.SHMWARDEN, "sweep", "--json"], capture_output=True,
                               timeout=120, stdin=subprocess.DEVNULL,
                               env=dict(sb.env, SHMWARDEN_TMPDIRS=tmp, SHMWARDEN_LOG="info"))
            expect(r.returncode == 0, "sweep: %d %r" % (r.returncode, r.stderr[-500:]))
            err = r.stderr.decode()  # valid UTF-8, or this raises
            doc = json.loads(r.stdout)
            expect(doc["base"] == tmp, "sweep --json base cut at %d of %d bytes"
                   % (len(doc["base"].encode()), len(tmp.encode())))
            summary = [ln for ln in err.splitlines()
                       if (": info: sweep: %s" % tmp[:200]) in ln]
            expect(len(summary) == 1, "no summary line: %r" % err[-600:])
            if whole:
                expect((": info: sweep: %s: 1 directory" % tmp) in summary[0],
                       "summary line cut: %r" % summary[0][-300:])
            else:
                expect(summary[0].endswith(" more bytes cut]") and
                       8000 < len(summary[0].split(": info: ", 1)[1].encode()) <= 8192,
                       "no note of the cut: %r" % summary[0][-300:])
        expect(sb.objects() == [], "the last base was not swept: %s" % sb.objects())

def _in_dir(sb, args, cwd, tmpdir=None):
    """shmwarden ARGS run from cwd, TMPDIR = tmpdir (else the sandbox's), without
    SHMWARDEN_TMPDIRS, so the temp base alone says where to look."""
    e = dict(sb.env)
    e.pop("SHMWARDEN_TMPDIRS", None)
    if tmpdir:
        e["TMPDIR"] = tmpdir
    return subprocess.run([harness.SHMWARDEN] + list(args), env=e, cwd=cwd,
                          capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def test_a_temp_base_whose_name_holds_glob_characters_is_found():
    """A manager whose TMPDIR is B/job[1] made its directory there; ls, sweep and recover
    read the same TMPDIR as the pattern B/job[1] (which matches B/job1), found nothing and
    exited 0, so the leak was never reported. TMPDIR (and /tmp) is now always literal,
    and a --tmpdir pattern that matches nothing is its own text, when that is a
    directory (with the checks every match passes)."""
    with Sandbox("globname") as sb:
        root = os.path.join(sb.tmp, "B")
        os.mkdir(root, 0o755)
        odd = os.path.join(root, "job[1]")
        os.mkdir(odd, 0o700)
        d = dead_job_manager(sb, odd, [sb.name(0)])
        expect(d.startswith(odd + "/"), "setup: %s" % d)
        # ls: by TMPDIR, and by --tmpdir (absolute, and relative as typed in B's parent).
        for args, cwd in ((["ls", "--json"], None),
                          (["ls", "--json", "--tmpdir", odd], None),
                          (["ls", "--json", "--tmpdir", "B/job[1]"], sb.tmp)):
            r = _in_dir(sb, args, cwd, tmpdir=odd)
            expect(r.returncode == 0, "%s: %d %r" % (args, r.returncode, r.stderr))
            doc = json.loads(r.stdout)
            found = [os.path.realpath(os.path.join(cwd or "/", m["path"]))
                     for m in doc["managers"]]
            expect(found == [d], "%s found %s" % (args, found))
        # sweep --dry-run finds it and touches nothing.
        for args, cwd in ((["sweep", "--dry-run", "--json"], None),
                          (["sweep", "--dry-run", "--json", "--tmpdir", "B/job[1]"], sb.tmp)):
            r = _in_dir(sb, args, cwd, tmpdir=odd)
            expect(r.returncode == 0, "%s: %d %r" % (args, r.returncode, r.stderr))
            doc = json.loads(r.stdout)
            expect(len(doc["dirs"]) == 1 and doc["unsafe_bases"] == [],
                   "%s: %s" % (args, r.stdout))
        expect(sb.objects() == [sb.name(0)] and os.path.isdir(d), "a dry run changed it")
        # recover NAME with --tmpdir B/job[1]: found and reclaimed.
        r = _in_dir(sb, ["recover", "--tmpdir", "B/job[1]", os.path.basename(d)], sb.tmp,
                    tmpdir=odd)
        expect(r.returncode == 0 and sb.objects() == [] and not os.path.exists(d),
               "recover: %d %r %s" % (r.returncode, r.stderr, sb.objects()))
        # recover NAME by TMPDIR, and sweep by TMPDIR and by --tmpdir.
        for i, (args, cwd) in enumerate(((["recover"], None), (["sweep"], None),
                                         (["sweep", "--tmpdir", "B/job[1]"], sb.tmp))):
            d = dead_job_manager(sb, odd, [sb.name(i + 1)])
            if args == ["recover"]:
                args = ["recover", os.path.basename(d)]
            r = _in_dir(sb, args, cwd, tmpdir=odd)
            expect(r.returncode == 0 and sb.objects() == [] and not os.path.exists(d),
                   "%s: %d %r %s" % (args, r.returncode, r.stderr, sb.objects()))
        # When the pattern matches something, it is a pattern: B/job1 is what it names.
        one = os.path.join(root, "job1")
        os.mkdir(one, 0o700)
        d1 = dead_job_manager(sb, one, [sb.name(7)])
        d = dead_job_manager(sb, odd, [sb.name(8)])
        r = _in_dir(sb, ["sweep", "--tmpdir", "B/job[1]"], sb.tmp)
        expect(r.returncode == 0 and sb.objects() == [sb.name(8)] and os.path.isdir(d)
               and not os.path.exists(d1), "pattern: %d %r %s" % (r.returncode, r.stderr,
                                                                  sb.objects()))
        r = _in_dir(sb, ["sweep"], None, tmpdir=odd)
        expect(r.returncode == 0 and sb.objects() == [], "left %s" % sb.objects())
        # A pattern's own text is judged as any match is: a symlink is not followed.
        os.symlink(odd, os.path.join(root, "link[2]"))
        d = dead_job_manager(sb, odd, [sb.name(9)])
        r = _in_dir(sb, ["sweep", "--json", "--tmpdir", "B/link[2]"], sb.tmp)
        doc = json.loads(r.stdout) if r.stdout else {}
        expect(r.returncode == 0 and [u["base"] for u in doc.get("unsafe_bases", [])]
               == ["B/link[2]"] and sb.objects() == [sb.name(9)],
               "symlink: %d %r %r" % (r.returncode, r.stdout, r.stderr))
        r = _in_dir(sb, ["sweep"], None, tmpdir=odd)
        expect(r.returncode == 0 and sb.objects() == [], "left %s" % sb.objects())


harness.main(globals())
