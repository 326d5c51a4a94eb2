"""test_metrics.py — `shmwarden sweep --metrics FILE`: the Prometheus textfile.

The file is parsed with a small parser of the text exposition format written here (so
the test does not trust the writer's idea of the format), and every series is checked
against what the sweep did: after a successful sweep, after a failing one (a corrupt
journal), when the base is missing, and the atomic replace (no temporary left, a link at
FILE replaced rather than written through).
"""
import json
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Sandbox  # noqa: E402


NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"'
SAMPLE = re.compile(r"^(%s)(?:\{((?:%s)(?:,%s)*)?\})? (\S+)$" % (NAME, LABEL, LABEL))
STATUSES = ["removed", "kept", "live", "starting", "busy", "unsafe", "corrupt", "foreign",
            "error"]
OUTCOMES = ["unlinked", "gone", "in_use", "refused"]


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def parse_prom(text):
    """Parses the Prometheus text format (the subset a textfile may hold: no sample
    timestamps). Returns {name: {"help", "type", "samples": {labels-tuple: value}}};
    raises on anything malformed: a sample before its HELP/TYPE, a family split in
    two, a duplicate series, a bad name, label or value."""
    families, current = {}, None
    expect(text.endswith("\n"), "no final newline")
    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = "line %d %r" % (n, line)
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            kind, rest = line[2:6], line[7:]
            name, _, arg = rest.partition(" ")
            expect(re.fullmatch(NAME, name) and arg, "bad %s: %s" % (kind, where))
            fam = families.setdefault(name, {"help": None, "type": None, "samples": {}})
            expect(not fam["samples"], "%s after samples: %s" % (kind, where))
            key = kind.lower()
            expect(fam[key] is None, "second %s: %s" % (kind, where))
            if key == "type":
                expect(arg in ("counter", "gauge", "untyped", "summary", "histogram"),
                       "bad type: %s" % where)
            fam[key] = arg
            current = name
            continue
        expect(line and not line.startswith("#"), "stray line: %s" % where)
        m = SAMPLE.match(line)
        expect(m, "bad sample: %s" % where)
        name = m.group(1)
        expect(name == current, "sample outside its family: %s" % where)
        fam = families[name]
        expect(fam["help"] and fam["type"], "sample before HELP and TYPE: %s" % where)
        labels = tuple(sorted(re.findall(LABEL, m.group(2) or "")))
        expect(len(set(k for k, _ in labels)) == len(labels), "repeated label: %s" % where)
        expect(labels not in fam["samples"], "duplicate series: %s" % where)
        value = float(m.groups()[-1])  # raises on a bad value
        fam["samples"][labels] = value
    return families


def makefile_version():
    with open(os.path.join(harness.ROOT, "Makefile")) as f:
        return re.search(r"^VERSION\s*:?=\s*(\S+)", f.read(), re.M).group(1)


def check_file(path, success, dirs, objects, reclaimed, last_success, t0, t1, unsafe_bases=0,
               failed_bases=0):
    """Every series of the file, checked (objects also holds the counts of the gauges
    beside the outcomes: young, handed_over, name_reused, not_inspectable,
    live_unreadable)."""
    st = os.stat(path)
    expect(st.st_mode & 0o777 == 0o644, "mode %o" % (st.st_mode & 0o777))
    with open(path) as f:
        fams = parse_prom(f.read())
    expected = {
        "shmwarden_sweep_last_success", "shmwarden_sweep_last_run_timestamp_seconds",
        "shmwarden_sweep_last_success_timestamp_seconds",
        "shmwarden_sweep_last_duration_seconds", "shmwarden_sweep_last_directories",
        "shmwarden_sweep_last_objects", "shmwarden_sweep_last_reclaimed_bytes",
        "shmwarden_sweep_last_objects_name_reused", "shmwarden_sweep_last_objects_handed_over",
        "shmwarden_sweep_last_objects_not_inspectable",
        "shmwarden_sweep_last_objects_live_unreadable", "shmwarden_sweep_last_bases_unsafe",
        "shmwarden_sweep_last_bases_failed", "shmwarden_sweep_last_objects_young",
        "shmwarden_sweep_last_objects_lease_held",
        "shmwarden_sweep_last_objects_lease_unavailable", "shmwarden_build_info"}
    expect(set(fams) == expected, "families: %s" % sorted(fams))
    for name, fam in fams.items():
        expect(fam["type"] == "gauge", "%s is a %s" % (name, fam["type"]))
        expect(len(fam["help"]) > 10, "%s: help %r" % (name, fam["help"]))
        # Conventions: base units as suffixes, no _total on gauges.
        expect(not name.endswith("_total"), "%s: _total on a gauge" % name)

    def one(name):
        s = fams[name]["samples"]
        expect(list(s) == [()], "%s: series %s" % (name, list(s)))
        return s[()]

    expect(one("shmwarden_sweep_last_success") == (1 if success else 0), "success")
    run = one("shmwarden_sweep_last_run_timestamp_seconds")
    expect(t0 - 1 <= run <= t1 + 1, "run timestamp %s not in [%s, %s]" % (run, t0, t1))
    ok_ts = one("shmwarden_sweep_last_success_timestamp_seconds")
    want = run if success else last_success
    expect(ok_ts == want, "last success %s, want %s" % (ok_ts, want))
    dur = one("shmwarden_sweep_last_duration_seconds")
    expect(0 <= dur <= t1 - t0 + 1, "duration %s (run took %.3f)" % (dur, t1 - t0))
    got = fams["shmwarden_sweep_last_directories"]["samples"]
    expect(got == {(("status", s),): float(dirs.get(s, 0)) for s in STATUSES},
           "directories: %s, want %s" % (got, dirs))
    got = fams["shmwarden_sweep_last_objects"]["samples"]
    expect(got == {(("outcome", o),): float(objects.get(o, 0)) for o in OUTCOMES},
           "objects: %s, want %s" % (got, objects))
    expect(one("shmwarden_sweep_last_reclaimed_bytes") == reclaimed, "reclaimed bytes")
    expect(one("shmwarden_sweep_last_objects_not_inspectable") ==
           objects.get("not_inspectable", 0), "objects not inspectable")
    expect(one("shmwarden_sweep_last_objects_live_unreadable") ==
           objects.get("live_unreadable", 0), "objects kept: live journal unreadable")
    expect(one("shmwarden_sweep_last_bases_unsafe") == unsafe_bases,
           "unsafe bases %s, want %s" % (one("shmwarden_sweep_last_bases_unsafe"), unsafe_bases))
    expect(one("shmwarden_sweep_last_bases_failed") == failed_bases,
           "failed bases %s, want %s" % (one("shmwarden_sweep_last_bases_failed"), failed_bases))
    for gauge in ("young", "handed_over", "name_reused", "lease_held", "lease_unavailable"):
        got = one("shmwarden_sweep_last_objects_" + gauge)
        expect(got == objects.get(gauge, 0), "%s: %s, want %s" % (gauge, got,
                                                                  objects.get(gauge, 0)))
    info = fams["shmwarden_build_info"]["samples"]
    expect(info == {(("version", makefile_version()),): 1.0}, "build info: %s" % info)
    return run


def spawn(sb):
    m = sb.spawn_manager(args=["manager", "--no-reclaim"], argv0="shmwarden")
    expect(m.sock, "manager failed: %r" % m.line)
    return m


def dead_manager(sb, tag, sizes, never_created=0):
    m = spawn(sb)
    c = m.client()
    names = []
    for i, size in enumerate(sizes):
        n = sb.name("%s%d" % (tag, i))
        c.register(n)
        sb.create_object(n, size)
        names.append(n)
    for i in range(never_created):
        c.register(sb.name("%sgone%d" % (tag, i)))
    os.kill(m.pid, signal.SIGKILL)
    m.wait()
    c.close()
    return m.dir, names




def sweep(sb, path, *args):
    t0 = time.time()
    r = sb.run(["sweep", "--tmpdir", sb.tmp, "--metrics", path] + list(args))
    return r, t0, time.time()


def no_temporaries(d):
    left = [n for n in os.listdir(d) if ".tmp." in n]
    expect(not left, "temporaries left: %s" % left)


def test_successful_sweep_every_series():
    with Sandbox("metrics") as sb:
        out = os.path.join(sb.tmp, "textfile")
        os.mkdir(out)
        path = os.path.join(out, "shmwarden.prom")
        dead_manager(sb, "a", [4096, 8192, 12288], never_created=1)
        kept_dir, kept = dead_manager(sb, "k", [4096, 4096])
        live = spawn(sb)
        lc = live.client()
        lc.register(sb.name("live"))
        sb.create_object(sb.name("live"))
        h = sb.hold_mapped(kept[0])
        # The never-created name is "gone" only without a grace: its client died with
        # its manager (with the default grace it would be kept as young, test_young.py).
        r, t0, t1 = sweep(sb, path, "--json", "--prune-grace", "0")
        expect(r.returncode == 0, "sweep exit %d: %s" % (r.returncode, r.stderr))
        totals = json.loads(r.stdout)["totals"]
        check_file(path, True, {"removed": 1, "kept": 1, "live": 1},
                   {"unlinked": 4, "gone": 1, "in_use": 1}, 4096 + 8192 + 12288 + 4096,
                   None, t0, t1)
        # The file and the JSON report agree.
        expect(totals["unlinked"] == 4 and totals["bytes"] == 28672, "totals: %s" % totals)
        no_temporaries(out)
        expect(sb.objects() == sorted([kept[0], sb.name("live")]), "objects: %s" % sb.objects())
        h.kill()
        h.wait()
        lc.close()


def test_failing_sweep_keeps_the_last_success():
    with Sandbox("metricsfail") as sb:
        path = os.path.join(sb.tmp, "m.prom")
        # A first sweep that fails (a dead directory it must remove holds a file
        # shmwarden did not make): no success ever (0).
        stuck, _ = dead_manager(sb, "b", [4096])
        open(os.path.join(stuck, "stray"), "w").close()
        r, t0, t1 = sweep(sb, path)
        expect(r.returncode == 1 and "stray" not in r.stdout and "error" in r.stderr,
               "exit %d: %r" % (r.returncode, r.stderr))
        check_file(path, False, {"error": 1}, {"unlinked": 1}, 4096, 0, t0, t1)
        os.rename(stuck, os.path.join(sb.tmp, "quarantine"))  # a human took it away
        # A success records its time, a corrupt journal (a finding for a human, an
        # alert of its own) notwithstanding...
        time.sleep(1.1)
        bad, _ = dead_manager(sb, "x", [4096])
        harness.corrupt_journal(bad)
        dead_manager(sb, "c", [8192])
        r, t0, t1 = sweep(sb, path)
        expect(r.returncode == 0 and "corrupt" in r.stderr, "exit %d: %r" % (r.returncode, r.stderr))
        ok = check_file(path, True, {"removed": 1, "corrupt": 1}, {"unlinked": 1}, 8192, None,
                        t0, t1)
        # ...and a failure after it keeps that time, whatever else it reports.
        time.sleep(1.1)
        stuck2, _ = dead_manager(sb, "d", [4096])
        os.mkdir(os.path.join(stuck2, "stray"))
        dead_manager(sb, "e", [4096, 4096])
        r, t0, t1 = sweep(sb, path)
        expect(r.returncode == 1, "exit %d" % r.returncode)
        run = check_file(path, False, {"corrupt": 1, "removed": 1, "error": 1},
                         {"unlinked": 3}, 12288, ok, t0, t1)
        expect(run > ok, "run time %s not after the success %s" % (run, ok))
        # A temp base that cannot be opened fails the whole sweep: still written.
        r = sb.run(["sweep", "--tmpdir", os.path.join(sb.tmp, "nosuch"), "--metrics", path])
        expect(r.returncode == 1 and "cannot open" in r.stderr, "missing base: %r" % r.stderr)
        check_file(path, False, {}, {}, 0, ok, t0, time.time(), failed_bases=1)
        no_temporaries(sb.tmp)


def test_young_names_and_failed_bases():
    """The two counts the file lacked: names kept as not created yet (a dead manager's
    registrations younger than the grace whose objects do not exist yet: without a
    series, the kept directories were all the metrics showed of them) and temp bases
    that could not be read (only shmwarden_sweep_last_success said a sweep failed, not
    why). They agree with the JSON totals of the same run."""
    with Sandbox("metricsyoung") as sb:
        path = os.path.join(sb.tmp, "m.prom")
        kept_dir, _ = dead_manager(sb, "y", [4096], never_created=2)
        dead_manager(sb, "z", [8192])
        missing = os.path.join(sb.tmp, "nosuch")
        env = dict(sb.env, SHMWARDEN_TMPDIRS="%s:%s" % (sb.tmp, missing))
        t0 = time.time()
        r = sb.run(["sweep", "--json", "--metrics", path], env=env)
        t1 = time.time()
        expect(r.returncode == 1 and "nosuch" in r.stderr, "sweep: %d %r" % (r.returncode,
                                                                           r.stderr))
        totals = json.loads(r.stdout)["totals"]
        expect(totals["young"] == 2 and totals["failed_bases"] == 1, "totals: %s" % totals)
        check_file(path, False, {"removed": 1, "kept": 1}, {"unlinked": 2, "young": 2},
                   4096 + 8192, 0, t0, t1, failed_bases=1)
        expect(os.path.isdir(kept_dir), "the directory of the young names was removed")
        # Without a grace the same names are gone, and with the missing base made, the
        # sweep succeeds: both gauges back at 0.
        os.mkdir(missing, 0o700)
        t0 = time.time()
        r = sb.run(["sweep", "--metrics", path, "--prune-grace", "0"], env=env)
        t1 = time.time()
        expect(r.returncode == 0, "sweep: %d %r" % (r.returncode, r.stderr))
        check_file(path, True, {"removed": 1}, {"gone": 2}, 0, None, t0, t1)
        expect(not os.path.exists(kept_dir), "the directory is left")


def test_atomic_replace():
    with Sandbox("metricsatomic") as sb:
        path = os.path.join(sb.tmp, "m.prom")
        with open(path, "w") as f:
            f.write("old\n")
        old_ino = os.stat(path).st_ino
        # A reader holding the old file keeps the old, whole contents: replaced by
        # rename, never rewritten in place.
        with open(path) as reader:
            r, t0, t1 = sweep(sb, path)
            expect(r.returncode == 0, "exit %d: %s" % (r.returncode, r.stderr))
            expect(reader.read() == "old\n", "old file rewritten in place")
        expect(os.stat(path).st_ino != old_ino, "not replaced by rename")
        check_file(path, True, {}, {}, 0, None, t0, t1)
        # A link at FILE is replaced, not written through.
        target = os.path.join(sb.tmp, "target")
        with open(target, "w") as f:
            f.write("keep\n")
        os.unlink(path)
        os.symlink(target, path)
        r, t0, t1 = sweep(sb, path)
        expect(r.returncode == 0, "exit %d" % r.returncode)
        expect(not os.path.islink(path) and open(target).read() == "keep\n", "wrote through link")
        check_file(path, True, {}, {}, 0, None, t0, t1)
        # A FILE in no directory, or a directory: usage errors (exit 2), refused before
        # anything is swept; nothing left behind, the old file intact.
        before = open(path).read()
        adir = os.path.join(sb.tmp, "adir")
        os.mkdir(adir)
        for bad in (os.path.join(sb.tmp, "nodir", "m.prom"), adir):
            r = sb.run(["sweep", "--tmpdir", sb.tmp, "--metrics", bad])
            expect(r.returncode == 2 and r.stderr.startswith("shmwarden sweep: --metrics") and
                   "Try 'shmwarden sweep --help'" in r.stderr and r.stdout == "",
                   "%s: exit %d %r" % (bad, r.returncode, r.stderr))
        expect(open(path).read() == before, "old file changed by a failed write")
        no_temporaries(sb.tmp)
        expect(not os.path.exists(os.path.join(sb.tmp, "nodir")), "made a directory")


def test_unwritable_metrics_refused_before_anything_is_swept():
    """`sweep --metrics /proc/x.prom` used to reclaim everything and only then fail to
    write the file: the sweep acted unseen by its alerts. Now whether FILE can be
    written is tried first, with the identity the write will have (a root sweeper
    without CAP_DAC_OVERRIDE once its privileges are dropped), and nothing is swept."""
    with Sandbox("metricsearly") as sb:
        d, names = dead_manager(sb, "p", [4096])
        ro = os.path.join(sb.tmp, "ro")
        os.mkdir(ro, 0o555)
        missing = os.path.join(sb.tmp, "nodir", "m.prom")
        cases = [("/proc/shmwarden-test.prom", 1), (os.path.join(ro, "m.prom"), 1),
                 (missing, 2), (sb.tmp, 2)]
        for bad, status in cases:
            for extra in ([], ["--json"]):
                r = sb.run(["sweep", "--tmpdir", sb.tmp, "--metrics", bad] + extra)
                expect(r.returncode == status and r.stderr.startswith("shmwarden sweep: ")
                       and "--metrics" in r.stderr,
                       "%s %s: exit %d, want %d: %r" % (bad, extra, r.returncode, status,
                                                       r.stderr))
                if status == 1:
                    expect("nothing was swept" in r.stderr, "%s: %r" % (bad, r.stderr))
                    if extra:
                        doc = json.loads(r.stdout)
                        expect(doc["dirs"] == [] and "metrics" in doc["error"], "json: %s" % doc)
                expect(os.path.isdir(d) and sb.objects() == names,
                       "%s: swept before the metrics were known to be writable" % bad)
        expect(os.listdir(ro) == [] and not os.path.exists(os.path.dirname(missing)),
               "left: %s" % os.listdir(ro))
        # Writable: the same sweep reclaims and writes.
        out = os.path.join(sb.tmp, "m.prom")
        r, t0, t1 = sweep(sb, out)
        expect(r.returncode == 0 and not os.path.exists(d) and sb.objects() == [],
               "sweep: %d %r" % (r.returncode, r.stderr))
        check_file(out, True, {"removed": 1}, {"unlinked": 1}, 4096, None, t0, t1)
        no_temporaries(sb.tmp)


def test_unsafe_bases_are_a_finding_in_the_metrics():
    """A per-job directory a pattern matched but that is unsafe itself (mode 0777, a
    symlink) is never swept: the metrics count it, for the alert for a human (it used to
    show only on stderr, which cron discards)."""
    with Sandbox("metricsunsafe") as sb:
        jobs = os.path.join(sb.tmp, "jobs")
        os.mkdir(jobs, 0o755)
        ww = os.path.join(jobs, "job.ww")
        os.mkdir(ww)
        os.chmod(ww, 0o777)
        os.symlink(sb.tmp, os.path.join(jobs, "job.link"))
        os.mkdir(os.path.join(jobs, "job.ok"), 0o700)
        path = os.path.join(sb.tmp, "m.prom")
        t0 = time.time()
        r = sb.run(["sweep", "--tmpdir", os.path.join(jobs, "job.*"), "--metrics", path])
        t1 = time.time()
        expect(r.returncode == 0 and r.stderr.count(": unsafe: ") == 2,
               "sweep: %d %r" % (r.returncode, r.stderr))
        check_file(path, True, {}, {}, 0, None, t0, t1, unsafe_bases=2)
        r = sb.run(["sweep", "--tmpdir", os.path.join(jobs, "job.*"), "--json"])
        doc = json.loads(r.stdout)
        expect(doc["totals"]["unsafe_bases"] == 2 and len(doc["unsafe_bases"]) == 2,
               "json: %s" % doc)


def test_usage_errors_write_nothing():
    with Sandbox("metricsusage") as sb:
        path = os.path.join(sb.tmp, "m.prom")
        for args in (["--metrics"], ["--metrics", ""], ["--metrics="],
                     ["--metrics", path, "--dry-run"], ["--dry-run", "--metrics=" + path]):
            r = sb.run(["sweep", "--tmpdir", sb.tmp] + args)
            expect(r.returncode == 2 and r.stderr.startswith("shmwarden sweep: ") and
                   "Try 'shmwarden sweep --help'" in r.stderr and r.stdout == "",
                   "%s: %d %r" % (args, r.returncode, r.stderr))
        expect(os.listdir(sb.tmp) == [], "created: %s" % os.listdir(sb.tmp))


def test_parser_rejects_malformed():
    # The checks above are only as good as this parser: it must refuse what a scraper would.
    bad = [
        "x 1\n",                                            # no HELP/TYPE
        "# HELP x h\n# TYPE x gauge\nx 1\nx 2\n",           # duplicate series
        "# HELP x h\n# TYPE x gauge\nx{a=\"1\"} one\n",     # bad value
        "# HELP x h\n# TYPE x gauge\nx 1 1700000000000\n",  # timestamp
        "# HELP x h\n# TYPE x gauge\nx 1",                  # no final newline
        "# HELP x h\n# TYPE x gauge\nx 1\n# HELP y h\n# TYPE y gauge\ny 1\nx{a=\"b\"} 1\n",
    ]
    for text in bad:
        try:
            parse_prom(text)
        except (AssertionError, ValueError):
            continue
        raise AssertionError("parser accepted %r" % text)
    fams = parse_prom('# HELP x h\n# TYPE x gauge\nx{a="1",b="q\\"q"} 2.5\n')
    expect(fams["x"]["samples"] == {(("a", "1"), ("b", 'q\\"q')): 2.5}, "parse: %s" % fams)


harness.main(globals())
