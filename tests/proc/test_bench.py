"""test_bench.py — the benchmark's own machinery: pinning, batch cycles, bad input,
the driver's tables, and the DataLoader probe finding its managers.

The bench never fails on a number, so these tests check what makes its numbers mean
something: the manager really runs on the CPU asked for, a batch run counts whole
cycles, garbage options are refused instead of running another benchmark, and the
DataLoader figures come from this run's managers.
"""
import importlib.machinery
import importlib.util
import json
import os
import pwd
import re
import secrets
import shutil
import statistics
import subprocess
import time

import harness

LOADGEN = os.path.join(harness.BUILD, "tools", "bench_loadgen")
FLOOR = os.path.join(harness.BUILD, "tools", "bench_floor")
BENCH = os.path.join(harness.ROOT, "scripts", "bench")
DATALOADER = os.path.join(harness.ROOT, "tests", "tools", "bench_dataloader.py")
PY = "/usr/bin/python3"


def loadgen(sb, *args, timeout=120):
    cmd = [LOADGEN, "run", "--tmpdir", sb.tmp, "--tag", secrets.token_hex(4)] + [
        str(a) for a in args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=sb.env)


def values(out):
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def test_loadgen_pins_the_manager_and_counts_whole_cycles():
    cpu = sorted(os.sched_getaffinity(0))[-1]
    with harness.Sandbox("bench") as sb:
        r = loadgen(sb, "--exe", harness.TORCH_SHM_MANAGER, "--clients", 3, "--batch", 50,
                    "--duration", 0.2, "--mgr-cpu", cpu, "--client-cpu", cpu)
        assert r.returncode == 0, r.stderr
        v = values(r.stdout)
        assert v["mgr_cpus"] == str(cpu), "manager allowed on %s, asked %d" % (v["mgr_cpus"], cpu)
        pairs = int(v["pairs"])
        # Each client: whole cycles of 50 pairs, then one sync pair.
        assert pairs >= 3 * 51 and (pairs - 3) % 50 == 0, "pairs=%d is not whole cycles" % pairs
        assert float(v["mgr_cpu_us_per_pair"]) > 0, v
        # schedstat's timeslices: the manager is woken at least once per batch of requests
        # it reads and, pinned beside its clients, about once per request at most (two per
        # pair), with room for the timer and preemption.
        assert 0 < float(v["mgr_timeslices_per_pair"]) <= 3, v
        assert sb.manager_dirs() == [], "the manager left %s" % sb.manager_dirs()


def test_loadgen_starts_its_clock_after_the_managers_start_up_thread_ended():
    # The manager prints its socket line, then starts its start-up reclaim thread. A
    # loadgen that looked for that thread right after the line could miss it; the
    # thread then ended inside the measured window, schedstat lost its last slice and
    # the CPU figure fell back to 10 ms ticks with no timeslices (CI under the
    # sanitizers). Here the thread is born 200 ms after the line and held at its start
    # until the test lets it go, well inside the window of a loadgen that missed it.
    cpu = sorted(os.sched_getaffinity(0))[-1]
    with harness.Sandbox("bench") as sb:
        gate = os.path.join(sb.tmp, "gate")
        seen = os.path.join(sb.tmp, "seen")
        open(gate, "w").close()
        env = dict(sb.env, LD_PRELOAD=os.path.join(harness.BUILD, "tools", "stall_thread.so"),
                   STALL_THREAD_DELAY_MS="200", STALL_THREAD_GATE=gate,
                   STALL_THREAD_SEEN=seen)
        if harness.SANITIZED:
            env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"),
                                                         "verify_asan_link_order=0"]))
        cmd = [LOADGEN, "run", "--tmpdir", sb.tmp, "--tag", secrets.token_hex(4), "--exe",
               harness.TORCH_SHM_MANAGER, "--clients", "1", "--warmup", "0.5",
               "--duration", "1.5", "--mgr-cpu", str(cpu), "--client-cpu", str(cpu)]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env)
        try:
            deadline = time.monotonic() + 30
            while not os.path.exists(seen) and time.monotonic() < deadline:
                time.sleep(0.01)
            held = os.path.exists(seen)
            # Let it go 0.5 s after it was held: inside [warm-up, warm-up + duration] of a
            # loadgen that started its clock when it was born.
            time.sleep(0.5)
            os.unlink(gate)
            out, err = p.communicate(timeout=120)
        finally:
            if os.path.exists(gate):
                os.unlink(gate)
            if p.poll() is None:
                p.kill()
                p.wait()
        assert held, "the manager's start-up thread never reached the gate"
        assert p.returncode == 0, err
        v = values(out)
        assert v["mgr_cpu_source"] == "schedstat", v
        assert 0 < float(v["mgr_timeslices_per_pair"]) <= 3, v


def test_loadgen_batches_create_their_objects_as_libshm_does():
    # libshm creates each object after its OK and unlinks it before its free. A batch
    # whose names had no objects measured something else once a cycle outlasted the
    # manager's prune grace (10 s, reached by 40,000-name cycles on a slow host): the
    # prune forgot the live set while the clients were still registering it.
    shmwarden = os.path.join(harness.BUILD, "shmwarden")
    with harness.Sandbox("bench") as sb:
        tag = secrets.token_hex(4)
        mine = "shmwb_%s_" % tag
        cmd = [LOADGEN, "run", "--tmpdir", sb.tmp, "--tag", tag, "--exe", shmwarden,
               "--argv0", "shmwarden", "--arg", "manager", "--clients", "2", "--batch",
               "3000", "--duration", "0.5"]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=sb.env)
        peak = 0
        try:
            while p.poll() is None:
                peak = max(peak, sum(n.startswith(mine) for n in os.listdir("/dev/shm")))
            out, err = p.communicate(timeout=120)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        assert p.returncode == 0, err
        pairs = int(values(out)["pairs"])
        assert pairs >= 2 * 3000, out
        assert peak >= 3000, "at most %d of the batches' objects existed at once" % peak
        left = [n for n in os.listdir("/dev/shm") if n.startswith(mine)]
        assert left == [], "the loadgen left %d objects" % len(left)


def test_loadgen_unpinned_manager_may_use_every_cpu():
    with harness.Sandbox("bench") as sb:
        r = loadgen(sb, "--exe", FLOOR, "--clients", 1, "--duration", 0.1, "--warmup", 0)
        assert r.returncode == 0, r.stderr
        cpus = values(r.stdout)["mgr_cpus"]
        want = sorted(os.sched_getaffinity(0))
        got = set()
        for part in cpus.split(","):
            lo, _, hi = part.partition("-")
            got.update(range(int(lo), int(hi or lo) + 1))
        assert set(want) <= got, "unpinned manager allowed only %s" % cpus


def test_loadgen_refuses_garbage_options():
    with harness.Sandbox("bench") as sb:
        for args, why in ((["--clients", "2x"], "--clients: '2x' is not a whole number"),
                          (["--clients", "0"], "--clients: '0' is not a whole number"),
                          (["--batch", "-1"], "--batch: '-1'"),
                          (["--duration", "soon"], "--duration: 'soon' is not a number"),
                          (["--mgr-cpu", "x"], "--mgr-cpu: 'x'"),
                          (["--ok-timeout", "0"], "--ok-timeout: '0'")):
            r = loadgen(sb, "--exe", FLOOR, *args)
            assert r.returncode == 1, "%s: exit %d" % (args, r.returncode)
            assert why in r.stderr, "%s: %r" % (args, r.stderr)
        # A CPU the kernel refuses: the manager says so on its line, the loadgen fails.
        r = loadgen(sb, "--exe", FLOOR, "--mgr-cpu", 1000, "--duration", 0.1)
        assert r.returncode == 1 and "cannot pin the manager to CPU 1000" in r.stderr, r.stderr
        r = loadgen(sb, "--exe", FLOOR, "--client-cpu", 1000, "--duration", 0.1)
        assert r.returncode == 1 and "cannot pin to CPU 1000" in r.stderr, r.stderr


def reachable_sandbox():
    """A sandbox under /tmp, mode 0711, that the reclaim's second user can reach (the
    suite's own base is private)."""
    saved = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = "/tmp"
    try:
        sb = harness.Sandbox("bench")
    finally:
        if saved is None:
            del os.environ["TMPDIR"]
        else:
            os.environ["TMPDIR"] = saved
    os.chmod(sb.tmp, 0o711)
    return sb


def test_loadgen_reclaims_as_root_and_as_another_user():
    # The reclaim figure's two runs: recover and the bare loop, wall and CPU time, every
    # object reclaimed, and as --as-user everything (objects, recover, loop) that user's.
    with reachable_sandbox() as sb:
        users = [None] + (["nobody"] if os.geteuid() == 0 else [])
        for user in users:
            extra = ["--as-user", user] if user else []
            r = subprocess.run([LOADGEN, "reclaim", "--exe", harness.TORCH_SHM_MANAGER,
                                "--tmpdir", sb.tmp, "--tag", secrets.token_hex(4),
                                "--shmwarden", harness.SHMWARDEN, "--count", "200"] + extra,
                               capture_output=True, text=True, timeout=300, env=sb.env)
            assert r.returncode == 0, (user, r.stderr)
            v = values(r.stdout)
            assert v["leaked"] == "200" and v["left"] == "0" and v["unlinked"] == "200" and \
                v["recover_status"] == "0", (user, v)
            for k in ("recover_ms", "recover_cpu_ms", "unlink_ms", "unlink_cpu_ms"):
                assert float(v[k]) >= 0, (user, k, v)
            assert float(v["recover_cpu_ms"]) > 0, (user, v)
            if user:
                assert v["uid"] == str(pwd.getpwnam(user).pw_uid), v
            assert os.listdir(sb.tmp) == [], "left %s" % os.listdir(sb.tmp)
        if os.geteuid() == 0:
            for user, why in (("no-such-user-x", "no such user"),):
                r = subprocess.run([LOADGEN, "reclaim", "--exe", harness.TORCH_SHM_MANAGER,
                                    "--tmpdir", sb.tmp, "--shmwarden", harness.SHMWARDEN,
                                    "--as-user", user], capture_output=True, text=True,
                                   timeout=60)
                assert r.returncode == 1 and why in r.stderr, r.stderr
            os.chmod(sb.tmp, 0o700)
            r = subprocess.run([LOADGEN, "reclaim", "--exe", harness.TORCH_SHM_MANAGER,
                                "--tmpdir", sb.tmp, "--shmwarden", harness.SHMWARDEN,
                                "--as-user", "nobody"], capture_output=True, text=True,
                               timeout=60)
            assert r.returncode == 1 and "searchable by others" in r.stderr, r.stderr


def test_journal_bench_reports_both_locking_modes_and_cleans_up():
    exe = os.path.join(harness.BUILD, "tools", "bench_journal")
    with harness.Sandbox("bench") as sb:
        r = subprocess.run([exe, sb.tmp, "--commits", "300", "--live", "500"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        v = values(r.stdout)
        assert v["commits"] == "300" and v["live"] == "500", v
        for mode in ("shared", "exclusive"):
            assert float(v[mode + "_us_per_commit"]) > 0, v
        assert os.listdir(sb.tmp) == [], "left %s" % os.listdir(sb.tmp)
        # One mode alone (what the bench profiles under strace and callgrind).
        r = subprocess.run([exe, sb.tmp, "--commits", "50", "--mode", "exclusive"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        v = values(r.stdout)
        assert "exclusive_us_per_commit" in v and "shared_us_per_commit" not in v, v
        assert os.listdir(sb.tmp) == [], "left %s" % os.listdir(sb.tmp)
        for args in (["--commits", "x"], ["--live", "-3"], [], [sb.tmp, "extra"],
                     ["--mode", "normal"], ["--mode"], ["--commits"]):
            r = subprocess.run([exe] + ([sb.tmp] if args and args[0].startswith("--") else [])
                               + args, capture_output=True, text=True, timeout=30)
            assert r.returncode == 2 and "usage:" in r.stderr, (args, r.returncode, r.stderr)


def test_bench_refuses_garbage_arguments():
    for args in [["--scenarios", "c1,bogus"], ["--placement", "nowhere"],
                 ["--managers", "shmwarden,nobody"], ["--rounds", "0"], ["--batches", "1"],
                 ["--fb-rounds", "-1"], ["--fb-rounds", "x"]] + (
                [["--reclaim-user", "no-such-user-x"], ["--reclaim-user", "root"]]
                if os.geteuid() == 0 else []):
        r = subprocess.run([PY, BENCH] + args, capture_output=True, text=True, timeout=60)
        assert r.returncode == 2, "%s: exit %d: %s" % (args, r.returncode, r.stderr)
        assert "scripts/bench: error:" in r.stderr, r.stderr
    # A bound names its option (the message listed every bound at once), and no reclaim
    # round is refused rather than run as a bench with its reclaim rows silently missing.
    for opt, bad in (("--rounds", "0"), ("--reclaim-rounds", "0"), ("--spawns", "0"),
                     ("--dl-rounds", "0"), ("--batches", "1"), ("--fb-rounds", "-1"),
                     ("--duration", "0"), ("--warmup", "-1")):
        r = subprocess.run([PY, BENCH, opt, bad], capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and r.stderr.splitlines()[-1].startswith(
            "scripts/bench: error: %s must be " % opt), (opt, r.returncode, r.stderr)


def test_bench_prints_medians_with_spreads_and_paired_ratios():
    if harness.SANITIZED:
        # The driver runs make for its build dir; the sanitized build is made with flags
        # it does not know. The loadgen tests above run in both builds.
        print("    (skipped under the sanitized build)")
        return
    with harness.Sandbox("bench") as sb:
        # Named as `make bench` names it: the time the run starts. The file's "when" used
        # to be the time it ended, minutes later in a full run: "started" is the start.
        named = time.time()
        saved = os.path.join(sb.tmp, "saved", time.strftime("%Y%m%d-%H%M%S",
                                                            time.localtime(named)) + ".json")
        r = subprocess.run([PY, BENCH, "--build", harness.BUILD, "--managers", "shmwarden,floor",
                            "--scenarios", "c1,c8L", "--rounds", "2", "--duration", "0.2",
                            "--warmup", "0.05", "--spawns", "1", "--save", saved,
                            "--skip", "reclaim,journal,live,dataloader"],
                           capture_output=True, text=True, timeout=300, env=sb.env)
        assert r.returncode == 0, r.stderr[-2000:]
        took = time.time() - named
        out = r.stdout
        assert "manager CPU per pair, us" in out and "register+free pairs/s" in out, out
        assert "pinned to CPU" in out, out
        # "1 client   8.3k (6.5k-10.2k) ... 0.63x (0.51-0.74)": a median with its range
        # for shmwarden and floor, and the ratio with its per-round range. The CPU table
        # has the same form, but a reading the loaded machine took late is withheld ("-"),
        # so only the pairs/s table must be complete.
        rows = [line for line in out.splitlines() if line.startswith("1 client")]
        assert len(rows) == 2, out
        cpu_row, rate_row = rows

        def columns(row):  # shmwarden, torch, floor: 36 characters of label, then 1 + 22 each
            return [row[37 + 23 * k:37 + 23 * k + 22].strip() for k in range(3)]

        sw, torch, floor = columns(rate_row)
        for cell in (sw, floor):
            assert re.fullmatch(r"[\d.]+k \([\d.]+k-[\d.]+k\)", cell), rate_row
        assert torch == "-", rate_row
        ratio = re.search(r"\d\.\d\dx \((\d+\.\d\d-\d+\.\d\d|1 run)\)", rate_row)
        assert ratio, rate_row
        # Against the floor only the rounds it ran at its usual speed in count: on a
        # loaded machine one of the two may not, and then one round's ratio stands alone.
        # (No count at all: every CPU reading of the floor's was withheld, and every
        # round counts.)
        counted = re.search(r"1 client (\d) of 2", out)
        rounds = int(counted.group(1)) if counted else 2
        assert (ratio.group(1) == "1 run") == (rounds == 1), (rate_row, rounds)
        for cell in columns(cpu_row)[0::2]:
            # One reading of two may be withheld: then a lone value, marked as one run.
            assert cell == "-" or re.fullmatch(r"[\d.]+ \(([\d.]+-[\d.]+|1 run)\)", cell), cpu_row
        assert any(line.startswith("8 clients x 5,000 live") for line in out.splitlines()), out
        # Next to the ratio table: what stands in the way of 1.10x, with the floor's pair
        # as median (min-max) and the room 10% of it leaves.
        gap = out.split("What stands in the way of <=1.10x", 1)
        assert len(gap) == 2 and gap[0].rstrip().endswith(
            [line for line in gap[0].splitlines() if line.startswith("8 clients x 5,000")][0]), out
        # (a loaded machine may withhold every reading of the floor's: then it says so)
        assert re.search(r"the floor's whole pair: ([\d.]+( \([\d.]+-[\d.]+\))? us .*leaves "
                         r"[\d.]+ us per pair for journaling|- \(every reading)", gap[1]), out
        # --save: every ratio printed, as the table printed it; --compare reads two.
        with open(saved) as f:
            doc = json.load(f)
        row = "register+free pairs/s | 1 client | sw/floor"
        printed = re.search(r"(\d+\.\d\d)x", rate_row[37 + 23 * 3 + 20:]).group(1)
        assert "%.2f" % doc["ratios"][row] == printed, (doc["ratios"], rate_row)
        assert not any("sw/torch" in k for k in doc["ratios"]), doc["ratios"]
        stamp = lambda k: time.mktime(time.strptime(doc[k], "%Y-%m-%d %H:%M:%S"))  # noqa: E731
        name = time.mktime(time.strptime(os.path.basename(saved), "%Y%m%d-%H%M%S.json"))
        # (Within the run; that it is its start, before the measuring, is checked below.)
        assert "when" not in doc and 0 <= stamp("started") - name <= took, (saved, doc)
        # Not a full run, and the file says what it left out (--compare prints it).
        assert doc["kind"] == "partial" and doc["left_out"] == [
            "reclaim, journal, live, dataloader skipped",
            "scenarios c8, c8i, c256, c8iL not run", "managers shmwarden, floor only"], doc
        bench = load_bench_module()
        assert ("partial run, started %s, finished %s, left out: reclaim, journal, live, "
                "dataloader skipped; scenarios" % (doc["started"], doc["finished"])
                in bench.describe_saved(doc)), doc
        assert "; left out: reclaim, journal, live, dataloader skipped; scenarios" in (
            out.split("\n", 2)[1]), out[:400]
        # A damaged left_out is said to be, never printed raw (a newline or an escape
        # would reach the terminal); an empty one says nothing.
        for damaged in ("live", 7, ["ok", "two\nlines"], ["\x1b[31mred"], [""], ["x" * 300]):
            assert "left out: unreadable" in bench.describe_saved(
                dict(doc, left_out=damaged)), damaged
        assert "left out" not in bench.describe_saved(dict(doc, left_out=[]))
        # "started" is stamped before the measuring, "finished" when the file is written
        # after it: 2 rounds x 2 managers x (1 client's 0.25 s + c8L's 0.2 s, batches take
        # no warm-up), and the warm-up pass's 4 x 0.05 s, take 2.0 s and the managers'
        # starts at least, however loaded the host. (Checked against the test's own
        # clock instead, the slack for Python's start and the clean-up after the save had
        # to grow with the load: 3 s and 4 s were not enough beside six busy loops at
        # nice -10.)
        assert 2.0 <= doc["wall_s"] <= took, (took, doc)
        assert 2 <= stamp("finished") - stamp("started") <= doc["wall_s"] + 1, (took, doc)
        assert "shmwarden bench, %s, " % doc["started"][:16] in out, out[:300]  # the header
        # Every row's per-round figures are kept beside its ratios, in round order: the
        # rounds' pairs/s printed under "runs, in round order".
        kept = doc["values"]["register+free pairs/s | 1 client"]
        assert sorted(kept) == ["floor", "shmwarden"] and len(kept["shmwarden"]) == 2, kept
        runs = [line.split() for line in out.splitlines()
                if line.startswith("  1 client") and " shmwarden " in line]
        assert runs and runs[0][3:5] == ["%.1fk" % (x / 1000) for x in kept["shmwarden"]], (
            runs, kept)
        # The last column: how busy the manager kept its CPU, CPU per pair x pairs/s, per
        # round (withheld where its CPU reading is).
        for line in out.splitlines():
            if not line.startswith("  1 client"):
                continue
            rates, cpus, _, busy = [c.split() for c in line.split(None, 3)[3].split(" | ")]
            assert len(busy) == len(cpus) == len(rates) == 2, line
            for r, c, b in zip(rates, cpus, busy):
                assert (b == "-") == (c == "-"), line
                if c != "-":
                    want = float(r[:-1]) * 1000 * float(c) / 1e6
                    assert abs(float(b) - want) <= 0.006 + float(c) * 60 / 1e6, (line, want)
        shutil.rmtree(os.path.dirname(saved))
        assert os.listdir(sb.tmp) == [], "bench left %s" % os.listdir(sb.tmp)


def test_bench_compare_says_which_ratios_differ():
    with harness.Sandbox("bench") as sb:
        ratios = {"manager CPU per pair, us | 1 client | sw/floor": 2.0,
                  "register+free pairs/s | 1 client | sw/floor": 0.5,
                  "register+free pairs/s | 8 clients | sw/torch": 1.2}
        a = dict(format="shmwarden-bench-ratios/2", machine="m", kind="full", ratios=ratios)
        b = json.loads(json.dumps(a))
        b["ratios"]["manager CPU per pair, us | 1 client | sw/floor"] = 2.19   # 9.5% apart
        b["ratios"]["register+free pairs/s | 1 client | sw/floor"] = 0.56      # 12% apart
        del b["ratios"]["register+free pairs/s | 8 clients | sw/torch"]
        paths = []
        for name, doc in (("a", a), ("b", b)):
            paths.append(os.path.join(sb.tmp, name + ".json"))
            with open(paths[-1], "w") as f:
                json.dump(doc, f)
        r = subprocess.run([PY, BENCH, "--compare"] + paths, capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        cpu = [x for x in lines if x.startswith("manager CPU per pair, us | 1 client")]
        rate = [x for x in lines if x.startswith("register+free pairs/s | 1 client")]
        assert len(cpu) == 1 and "DIFFER" not in cpu[0] and "9.5%" in cpu[0], r.stdout
        assert len(rate) == 1 and rate[0].endswith("DIFFER") and "12.0%" in rate[0], r.stdout
        assert lines[-1] == "1 of 2 ratios agree within 10% (1 in one run only)", r.stdout
        # The apart column is defined where it is printed.
        assert any(x.startswith("apart: ") and "larger / smaller - 1" in x and "10%" in x
                   for x in lines[:lines.index(cpu[0])]), r.stdout
        # Three or more (what `--compare build/bench/*.json` gives): each run after the
        # first against the first, one headed table and one count per pair.
        c = json.loads(json.dumps(a))
        c["ratios"]["register+free pairs/s | 8 clients | sw/torch"] = 1.5      # 25% apart
        paths.append(os.path.join(sb.tmp, "c.json"))
        with open(paths[-1], "w") as f:
            json.dump(c, f)
        r = subprocess.run([PY, BENCH, "--compare"] + paths, capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        heads = [i for i, x in enumerate(lines) if x.startswith("== ")]
        assert [lines[i] for i in heads] == ["== 1 of 2: %s against A ==" % paths[1],
                                             "== 2 of 2: %s against A ==" % paths[2]], r.stdout
        assert lines[0] == "A: %s (full run)" % paths[0], r.stdout
        first, second = lines[heads[0]:heads[1]], lines[heads[1]:]
        assert "1 of 2 ratios agree within 10% (1 in one run only)" in first, r.stdout
        assert second[-1] == "2 of 3 ratios agree within 10%", r.stdout
        row = [x for x in second if x.startswith("register+free pairs/s | 8 clients")]
        assert len(row) == 1 and "1.20x" in row[0] and "1.50x" in row[0] and row[0].endswith(
            "DIFFER"), r.stdout
        # What a run says of itself: its start and end; a file saved before "started"
        # was written has only "when", its end, and is still read, labelled so.
        old, new = os.path.join(sb.tmp, "old.json"), os.path.join(sb.tmp, "new.json")
        for path, extra in ((old, dict(when="2026-11-30 13:14:05")),
                            (new, dict(started="2026-11-30 16:22:04",
                                       finished="2026-11-30 16:41:00"))):
            with open(path, "w") as f:
                json.dump(dict(a, **extra), f)
        r = subprocess.run([PY, BENCH, "--compare", old, new], capture_output=True, text=True,
                           timeout=60)
        lines = r.stdout.splitlines()
        assert r.returncode == 0 and lines[0] == "A: %s (full run, finished 2026-11-30 13:14:05)" % (
            old) and "B: %s (full run, started 2026-11-30 16:22:04, finished 2026-11-30 16:41:00)" % (
            new) in lines, r.stdout
        # A run saved by the bench before the first batch's ratio became a trimmed mean
        # (format /2) is still read beside one of today's (/3), with a note saying so.
        c3 = dict(json.loads(json.dumps(a)), format="shmwarden-bench-ratios/3")
        c3_path = os.path.join(sb.tmp, "c3.json")
        with open(c3_path, "w") as f:
            json.dump(c3, f)
        r = subprocess.run([PY, BENCH, "--compare", paths[0], c3_path], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert "saved by different versions of the bench" in r.stdout, r.stdout
        assert r.stdout.splitlines()[-1] == "3 of 3 ratios agree within 10%", r.stdout
        # Each format's change is named, from the older file's on (torch's ratios count
        # the floor's usual rounds from /4 on: a /3 file's do not).
        for other, changes in (("3", ["/3"]), ("4", ["/3", "/4"])):
            with open(c3_path, "w") as f:
                json.dump(dict(c3, format="shmwarden-bench-ratios/" + other), f)
            r = subprocess.run([PY, BENCH, "--compare", c3_path, paths[0]],
                               capture_output=True, text=True, timeout=60)
            said = re.findall(r"from (/\d) on, ", r.stdout)
            assert r.returncode == 0 and said == changes, (other, r.stdout)
        assert "ratios against torch count only the rounds the floor ran at its usual" in (
            r.stdout), r.stdout
        os.unlink(c3_path)
        # One file is nothing to compare: said so, before reading anything.
        r = subprocess.run([PY, BENCH, "--compare", paths[0]], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 2 and "--compare needs two or more saved runs" in r.stderr, (
            r.stderr)
        paths.pop()
        # Garbage: not JSON, JSON of another shape, a zero ratio, a missing file.
        bad = os.path.join(sb.tmp, "bad.json")
        for text in ("\x00garbage{", "[1, 2]", json.dumps(dict(a, format="other")),
                     json.dumps(dict(a, ratios={"x": 0})), json.dumps(dict(a, ratios={"x": True}))):
            with open(bad, "w") as f:
                f.write(text)
            r = subprocess.run([PY, BENCH, "--compare", paths[0], bad], capture_output=True,
                               text=True, timeout=60)
            assert r.returncode == 1 and r.stderr.startswith("bench: %s: not a saved bench" % bad), (
                text, r.returncode, r.stderr)
        r = subprocess.run([PY, BENCH, "--compare", paths[0], bad + ".missing"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 1 and "No such file or directory" in r.stderr, r.stderr
        # Options of a run mean nothing with --compare; a file that says little of itself
        # is still compared, without "None" for what it leaves out.
        r = subprocess.run([PY, BENCH, "--compare"] + paths + ["--quick"], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 2 and "--compare runs nothing: --quick" in r.stderr, r.stderr
        with open(bad, "w") as f:
            json.dump({"format": a["format"], "ratios": {"x": 1.0}}, f)
        r = subprocess.run([PY, BENCH, "--compare", bad, bad], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0 and "None" not in r.stdout and "no details recorded" in r.stdout, (
            r.stdout)
        # --save where nothing can be written: refused before anything runs.
        r = subprocess.run([PY, BENCH, "--save", "/proc/self/bench.json", "--quick"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and "cannot save to /proc/self/bench.json" in r.stderr, r.stderr


def test_bench_compare_edges():
    """Exactly 10% apart agrees (DIFFER is more than 10%; floating point made 1.10 against
    1.00 10.0% DIFFER); Infinity, NaN and absurd magnitudes are refused naming the file and
    the row; a repeated --compare is refused (it dropped the first one's files); a long row
    name is printed whole (it was cut at 78 characters, unmarked)."""
    with harness.Sandbox("bench") as sb:
        long_a = "register+free pairs/s | " + "8 clients x 5,000 live + 1000 idle " * 3 + "| sw/floor"
        long_b = long_a.replace("sw/floor", "sw/torch")
        a = dict(format="shmwarden-bench-ratios/2", machine="m", kind="full",
                 ratios={"x | 1 | sw/floor": 1.00, "y | 1 | sw/floor": 2.20, long_a: 1.0,
                         long_b: 1.0})
        b = json.loads(json.dumps(a))
        b["ratios"].update({"x | 1 | sw/floor": 1.10, "y | 1 | sw/floor": 2.00})

        def write(name, doc, raw=None):
            path = os.path.join(sb.tmp, name + ".json")
            with open(path, "w") as f:
                f.write(raw if raw is not None else json.dumps(doc))
            return path

        pa, pb = write("a", a), write("b", b)
        r = subprocess.run([PY, BENCH, "--compare", pa, pb], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        for name in ("x | 1 | sw/floor", "y | 1 | sw/floor"):
            row = [x for x in lines if x.startswith(name + " ")]
            assert len(row) == 1 and "10.0%" in row[0] and "DIFFER" not in row[0], r.stdout
        assert lines[-1] == "4 of 4 ratios agree within 10%", r.stdout
        for name in (long_a, long_b):
            assert len(name) > 78 and sum(x.startswith(name + " ") for x in lines) == 1, (
                name, r.stdout)
        # Not finite, or absurd: refused, naming the file and the row.
        for raw in ('{"x | 1 | sw/floor": Infinity}', '{"x | 1 | sw/floor": NaN}',
                    '{"x | 1 | sw/floor": -Infinity}', '{"x | 1 | sw/floor": 1e400}',
                    '{"x | 1 | sw/floor": 1e308}', '{"x | 1 | sw/floor": 1e-308}'):
            bad = write("bad", None, '{"format": "shmwarden-bench-ratios/2", "ratios": %s}' % raw)
            r = subprocess.run([PY, BENCH, "--compare", pa, bad], capture_output=True,
                               text=True, timeout=60)
            assert r.returncode == 1 and r.stdout == "" and r.stderr.startswith(
                "bench: %s: not a saved bench: ratio 'x | 1 | sw/floor' is " % bad), (
                    raw, r.returncode, r.stdout[-500:], r.stderr)
        # --compare twice: refused, not the first's files dropped.
        pc = write("c", a)
        for argv in (["--compare", pa, "--compare", pb, pc],
                     ["--compare=" + pa, "--compare", pb, pc]):
            r = subprocess.run([PY, BENCH] + argv, capture_output=True, text=True, timeout=60)
            assert r.returncode == 2 and r.stdout == "" and \
                "--compare given 2 times" in r.stderr, (argv, r.returncode, r.stderr)


def load_bench_module():
    """scripts/bench as a module (it has no .py suffix), for its arithmetic."""
    loader = importlib.machinery.SourceFileLoader("shmwarden_bench", BENCH)
    spec = importlib.util.spec_from_loader(loader.name, loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def test_a_run_without_pair_scenarios_says_so():
    # The README's reclaim-only command (--scenarios ""): its header said "11 rounds x 2.0 s
    # per scenario", a placement and a rounds listing's heading, for pairs it never ran.
    assert [load_bench_module().count(n, "round") for n in (0, 1, 11)] == [
        "0 rounds", "1 round", "11 rounds"]
    if os.geteuid() != 0:
        print("    (skipped: the reclaim runs as a second user, which takes root)")
        return
    with reachable_sandbox() as sb:
        r = subprocess.run([PY, BENCH, "--build", harness.BUILD, "--managers", "shmwarden",
                            "--scenarios", "", "--skip", "journal,live,dataloader",
                            "--spawns", "1", "--reclaim", "50", "--reclaim-rounds", "1"],
                           capture_output=True, text=True, timeout=300, env=sb.env)
        assert r.returncode == 0, r.stderr[-2000:]
        head = r.stdout.split("shmwarden bench, ", 1)[1].splitlines()
        assert ", partial run: no pair scenarios, managers" in head[0], head[0]
        assert head[2].startswith("loadavg before "), head[2]
        assert "placement" not in r.stdout and "rounds x" not in r.stdout, r.stdout
        assert "runs, in round order" not in r.stdout, r.stdout
        assert re.search(r"^reclaim 50 leaked as root, ms ", r.stdout, re.M), r.stdout
        assert os.listdir(sb.tmp) == [], "bench left %s" % os.listdir(sb.tmp)


def test_a_run_says_what_it_left_out_once_and_in_the_bench_order():
    """--compare called a run of the pair scenarios alone a full run; the words that now
    say what a run left out follow the bench's order and name each thing once, whatever
    order or repetition the command line had."""
    bench = load_bench_module()

    def said(*argv):
        b = bench.Bench(bench.parse_args(list(argv)))  # sets fields only, starts nothing
        return b.kind(), b.left_out()

    assert said() == ("full", [])
    assert said("--scenarios", "c8iL,c8L,c256,c8i,c8,c1,c1",
                "--managers", "floor,torch,shmwarden,floor") == ("full", [])
    assert said("--skip", "live,reclaim,live", "--managers", "floor,shmwarden,shmwarden") == (
        "partial", ["reclaim, live skipped", "managers shmwarden, floor only"])
    assert said("--scenarios", "c256,c1") == (
        "partial", ["scenarios c8, c8i, c8L, c8iL not run"])
    # A quick run is quick, and still says what else it left out.
    assert said("--quick", "--skip", "dataloader") == ("quick", ["dataloader skipped"])


def test_small_ratios_keep_two_significant_digits():
    # spawn -> socket path sw/torch is a 3 ms start against a 360 ms one: with two decimals
    # two runs' 0.0091x and 0.0072x both printed 0.01x, and --compare marked the two
    # alike-looking values DIFFER.
    ratio_str = load_bench_module().ratio_str
    got = [ratio_str(x) for x in (0.0091, 0.0072, 0.013, 0.094, 0.1, 0.5, 2.184)]
    assert got == ["0.0091", "0.0072", "0.013", "0.094", "0.10", "0.50", "2.18"], got
    with harness.Sandbox("bench") as sb:
        key = "manager | spawn -> socket path, ms | sw/torch"
        paths = []
        for name, x in (("a", 0.0091), ("b", 0.0072)):
            paths.append(os.path.join(sb.tmp, name + ".json"))
            with open(paths[-1], "w") as f:
                json.dump(dict(format="shmwarden-bench-ratios/2", machine="m", kind="full",
                               ratios={key: x}), f)
        r = subprocess.run([PY, BENCH, "--compare"] + paths, capture_output=True, text=True,
                           timeout=60)
        row = [x for x in r.stdout.splitlines() if x.startswith(key)]
        assert r.returncode == 0 and len(row) == 1, (r.returncode, r.stdout, r.stderr)
        assert "0.0091x" in row[0] and "0.0072x" in row[0] and row[0].endswith("DIFFER"), row


def test_bench_ratio_is_the_median_of_paired_rounds():
    paired_ratio = load_bench_module().paired_ratio
    # The VM slowed for the last rounds, and the second manager's median fell in a fast
    # round: the ratio of the medians says 4.2x, every round says 2x but one.
    sw = [10.0, 10.0, 21.0, 22.0, 23.0]
    fl = [5.0, 5.0, 5.0, 11.0, 11.5]
    r, per = paired_ratio(sw, fl)
    assert r == 2.0 and len(per) == 5 and max(per) == 4.2, (r, per)
    # A withheld reading (None) drops its round from the pairs, not the other rounds.
    r, per = paired_ratio([None, 4.0, 6.0, 9.0], [1.0, 2.0, 2.0, None])
    assert r == 2.5 and per == [2.0, 3.0], (r, per)
    # One round paired: that round alone, never the medians of rounds apart (they said
    # 5.0x and 2.67x here); no round paired, or nothing to divide: None, printed "-".
    assert paired_ratio([2.0, 8.0], [1.0, None]) == (2.0, [2.0])
    assert paired_ratio([2.0, None, 6.0], [1.0, 2.0, None]) == (2.0, [2.0])
    assert paired_ratio([4.0, None], [None, 2.0]) == (None, [])
    assert paired_ratio([1.0], [0.0]) == (None, [])
    assert paired_ratio([], [1.0]) == (None, [])
    # A reading of 0 is no reading, on either side: a ratio of 0 would be saved, and
    # --compare refuses a file holding one.
    assert paired_ratio([2.0, 4.0], [0.0, 2.0]) == (2.0, [2.0])
    assert paired_ratio([0.0, 4.0], [1.0, 2.0]) == (2.0, [2.0])
    assert paired_ratio([0.0], [1.0]) == (None, [])
    # Nor is a negative, NaN or infinite one (no measurement gives them; a ratio of 0 or
    # NaN would be saved).
    assert paired_ratio([-2.0, 4.0], [1.0, 2.0]) == (2.0, [2.0])
    assert paired_ratio([float("nan"), 4.0, float("inf")], [1.0, 2.0, 1.0]) == (2.0, [2.0])


def test_floor_ratio_counts_the_floors_usual_rounds():
    """The host slows this VM for minutes, and memory-heavy managers more than the floor:
    a round the floor itself ran slow in is left out of the ratios against the floor."""
    bench = load_bench_module()
    # Rounds 2-4 are the host's slow minutes: the floor 1.4x its best, shmwarden 2x.
    fl = [14.0, 19.6, 19.6, 19.6, None, 16.0]
    sw = [28.0, 57.1, 57.1, 57.1, 30.0, 32.0]
    usual = bench.floor_usual(fl)
    # The bar is the lower quartile, 16.0: 19.6 is more than 15% over it, 14.0 and 16.0
    # are not; a withheld reading never counts.
    assert usual == [True, False, False, False, False, True], usual
    r, per = bench.paired_ratio(sw, fl, rounds=usual)
    assert per == [2.0, 2.0] and r == 2.0, (r, per)
    # Over every round the slow minutes pull the ratio up.
    assert bench.paired_ratio(sw, fl)[0] > 2.5
    assert bench.floor_usual([None, 0.0]) is None and bench.floor_usual([]) is None
    # Rounds beyond the mask do not count; a mask of one round falls back as before.
    assert bench.paired_ratio([2.0, 4.0], [1.0, 1.0], rounds=[True]) == (2.0, [2.0])


def test_one_fast_round_does_not_leave_the_floor_ratio_one_round():
    """256 clients' floor in a quiet run of 2 December 2026: one round the host ran fast
    in (every manager's pairs/s 27% to 38% above its other rounds' median) was 15.4 us,
    the others 18.1 to 23.0. With the cheapest round as the bar 1 round of 11 counted,
    and the fallback then divided that round's shmwarden by the floor's median over all
    11: 0.82x, where the round itself said 1.12x."""
    bench = load_bench_module()
    fl = [21.06, 15.40, 22.05, 22.22, 21.32, 22.96, 22.06, 18.15, 18.59, 18.74, 18.13]
    sw = [21.06, 17.23, 20.99, 27.67, 21.92, 26.37, 22.28, 21.93, 19.87, 22.34, 20.21]
    usual = bench.floor_usual(fl)
    # Bar: the lower quartile, 18.37; 21.06 is within 15% of it, 21.32 is not.
    assert usual == [True, True, False, False, False, False, False, True, True, True,
                     True], usual
    r, per = bench.paired_ratio(sw, fl, rounds=usual)
    assert len(per) == 6 and 1.10 < r < 1.15, (r, per)
    # One counted round: both sides' figures come from it alone.
    one = [i == 1 for i in range(len(fl))]
    r, per = bench.paired_ratio(sw, fl, rounds=one)
    assert per == [17.23 / 15.40] and r == 17.23 / 15.40, (r, per)
    # A lone reading is its own bar.
    assert bench.floor_usual([None, 3.0]) == [False, True]


def test_torch_ratio_counts_the_floors_usual_rounds_too():
    """8 x 5,000 live in a quiet run of 2 December 2026 (17:58): in the host's slow minutes
    shmwarden's 40,000 names slow more than torch's, as they do more than the floor, and
    a ratio against torch over every round followed how many rounds fell in them (six runs
    1.50x to 1.67x, 11.6% apart). Both ratios now count the floor's usual rounds: here
    4 of 11, sw/torch 1.56x, where every round gave 1.66x. Through report(), so the
    table's and --save's figures are the ones checked."""
    bench = load_bench_module()
    cpu = {"floor": [17.56, 19.63, 19.69, 20.62, 15.14, 15.46, 19.33, 19.95, 15.24, 19.83,
                     20.43],
           "shmwarden": [39.02, 55.57, 50.02, 56.94, 37.47, 38.63, 56.32, 56.37, 38.51, 54.51,
                         59.11],
           "torch": [24.8, 32.78, 24.88, 34.37, 24.23, 24.49, 33.14, 33.76, 25.23, 33.28,
                     34.46]}
    pps = {m: [1e6 / x for x in xs] for m, xs in cpu.items()}
    slices = {m: [1.0] * 11 for m in cpu}
    b = bench.Bench(bench.parse_args(["--scenarios", "c8L", "--skip",
                                      "reclaim,journal,live,dataloader"]))
    b.cpus = sorted(os.sched_getaffinity(0))  # what setup() would have found
    res = {"spawn": {m: [1.0] for m in cpu}, "rss": {m: [1.0] for m in cpu},
           "cpu": {"c8L": cpu}, "slices": {"c8L": slices}, "c8L": pps}
    b.report(list(bench.MANAGERS), res, time.monotonic(), "2026-12-02 17:58:25", "0 0 0")
    row = "manager CPU per pair, us | 8 clients x 5,000 live | "
    usual = [1, 0, 0, 0, 1, 1, 0, 0, 1, 0, 0]
    assert b.values["rounds counted | 8 clients x 5,000 live"] == {"floor": usual}, b.values
    want = sorted(cpu["shmwarden"][i] / cpu["torch"][i] for i in range(11) if usual[i])
    assert b.ratios[row + "sw/torch"] == (want[1] + want[2]) / 2, b.ratios
    assert round(b.ratios[row + "sw/torch"], 2) == 1.56, b.ratios
    everyone = bench.paired_ratio(cpu["shmwarden"], cpu["torch"])[0]
    assert round(everyone, 2) == 1.66, everyone
    # pairs/s is counted over the same rounds (the mask is the CPU table's, by round).
    rate = "register+free pairs/s | 8 clients x 5,000 live | sw/torch"
    per = [pps["shmwarden"][i] / pps["torch"][i] for i in range(11) if usual[i]]
    assert b.ratios[rate] == statistics.median(per) and len(per) == 4, b.ratios


def short_bench(scenarios, rounds, spawns):
    """A real run of scripts/bench, short: shmwarden and the floor, 0.1 s a run, the pair
    scenarios and spawns only, in a sandbox it must leave empty. Returns the finished
    process (its exit status checked) and the saved file's contents."""
    with harness.Sandbox("bench") as sb:
        saved = os.path.join(sb.tmp, "r.json")
        r = subprocess.run([PY, BENCH, "--build", harness.BUILD, "--managers",
                            "shmwarden,floor", "--scenarios", scenarios, "--rounds",
                            str(rounds), "--duration", "0.1", "--warmup", "0.05", "--spawns",
                            str(spawns), "--save", saved,
                            "--skip", "reclaim,journal,live,dataloader"],
                           capture_output=True, text=True, timeout=300, env=sb.env)
        assert r.returncode == 0, r.stderr[-2000:]
        with open(saved) as f:
            doc = json.load(f)
        os.unlink(saved)
        assert os.listdir(sb.tmp) == [], "bench left %s" % os.listdir(sb.tmp)
    return r, doc


def test_256_clients_runs_three_times_a_round():
    """256 clients' rounds scatter round by round (SCENARIO_REPEATS): it runs three times
    in each round, each with the managers' order rotated on, and every run is kept. A real
    run, short: the header, the progress lines, the saved values and "repeats"."""
    if harness.SANITIZED:
        print("    (skipped under the sanitized build)")  # the driver runs make, as above
        return
    r, doc = short_bench("c1,c256", rounds=2, spawns=1)
    assert ("2 rounds x 0.1 s per scenario, 256 clients 3 times a round (after"
            in r.stdout.splitlines()[1]), r.stdout[:400]
    # (2 rounds x (1 + 3)) x 2 managers runs, numbered by the scenario's own rounds.
    prog = re.findall(r"\[ *(\d+)/(\d+)\] round (\d+), (\S+ clients?)\s.*?(shmwarden|floor) ",
                      r.stderr + r.stdout)
    assert [p[1] for p in prog] == ["16"] * 16, prog
    c256 = [(int(p[2]), p[4]) for p in prog if p[3] == "256 clients"]
    assert [n for n, _ in c256] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6], c256
    # Each run of 256 clients turns the order on: first shmwarden, then the floor...
    assert [m for _, m in c256[0::2]] == ["shmwarden", "floor"] * 3, c256
    assert [int(p[2]) for p in prog if p[3] == "1 client"] == [1, 1, 2, 2], prog
    assert doc["repeats"] == {"c256": 3} and doc["rounds"] == 2, doc
    kept = doc["values"]["register+free pairs/s | 256 clients"]
    assert {m: len(x) for m, x in kept.items()} == {"shmwarden": 6, "floor": 6}, kept
    kept = doc["values"]["register+free pairs/s | 1 client"]
    assert {m: len(x) for m, x in kept.items()} == {"shmwarden": 2, "floor": 2}, kept
    # The count of the floor's usual rounds is over all six runs. It needs a CPU reading
    # of the floor's: a loaded host (the PyTorch matrix's three runs beside this one, load
    # average 31) took every one of 256 clients' late, and a run that has none says none.
    floor_cpu = doc["values"]["manager CPU per pair, us | 256 clients"]["floor"]
    assert len(floor_cpu) == 6, doc["values"]
    counted = re.search(r"256 clients (\d) of (\d)", r.stdout)
    if any(load_bench_module().reading(x) for x in floor_cpu):  # as floor_usual() counts
        assert counted and counted.group(2) == "6", r.stdout
    else:
        assert not counted and "reading withheld (taken late)" in r.stderr, r.stdout


def test_spawns_are_spread_over_the_rounds_after_the_warm_up():
    """Spawn -> socket path met a host the pair rounds did not when it was taken in a
    block before them: in the first minute of a run on an idle machine small processes
    started 13% to 19% faster than later. Each round now takes its share of the spawns,
    after the warm-up pass. A real run, short: the progress lines and the saved values."""
    if harness.SANITIZED:
        print("    (skipped under the sanitized build)")  # the driver runs make, as above
        return
    r, doc = short_bench("c1", rounds=3, spawns=4)
    lines = r.stderr.splitlines()
    warm = [i for i, x in enumerate(lines) if "warm-up pass (discarded)" in x]
    spawned = [(i, int(mt.group(1)), int(mt.group(3))) for i, x in enumerate(lines)
               for mt in [re.search(r"round (\d+): spawn -> socket path and idle RSS, "
                                    r"(\d+ spawns?) of each manager \((\d+) of 4, "
                                    r"spread over the rounds\)", x)] if mt]
    rounds = [(i, int(mt.group(1))) for i, x in enumerate(lines)
              for mt in [re.search(r"\] round (\d+), 1 client ", x)] if mt]
    # 4 spawns over 3 rounds: 1, 1 and 2, each round's before its pair runs.
    assert [(n, k) for _, n, k in spawned] == [(1, 1), (2, 2), (3, 4)], r.stderr[-2000:]
    assert "round 3: spawn -> socket path and idle RSS, 2 spawns of" in r.stderr, r.stderr
    assert "round 1: spawn -> socket path and idle RSS, 1 spawn of" in r.stderr, r.stderr
    assert len(warm) == 1 and warm[0] < spawned[0][0], r.stderr[-2000:]
    for (at, n, _), nxt in zip(spawned, spawned[1:] + [(len(lines), 0, 0)]):
        mine = [i for i, rn in rounds if rn == n]
        assert len(mine) == 2 and all(at < i < nxt[0] for i in mine), (n, r.stderr[-2000:])
    kept = doc["values"]["manager | spawn -> socket path, ms"]
    assert {m: len(x) for m, x in kept.items()} == {"shmwarden": 4, "floor": 4}, kept
    assert all(x > 0 for xs in kept.values() for x in xs), kept


def test_spawns_without_pair_scenarios_are_one_block():
    """With no pair scenario there are no rounds for the spawns to meet: the progress
    said "round 6: spawn ..." under a header that names no rounds. One block, said so."""
    if harness.SANITIZED:
        print("    (skipped under the sanitized build)")  # the driver runs make, as above
        return
    r, doc = short_bench("", rounds=3, spawns=2)
    assert "no pair scenarios" in r.stdout.splitlines()[1], r.stdout[:400]
    assert not re.search(r"round \d+: spawn", r.stderr), r.stderr
    assert r.stderr.count("spawn -> socket path and idle RSS, 2 spawns of each manager "
                          "(no pair scenario: in one block)") == 1, r.stderr
    kept = doc["values"]["manager | spawn -> socket path, ms"]
    assert {m: len(x) for m, x in kept.items()} == {"shmwarden": 2, "floor": 2}, kept


def test_256_clients_run_apart_unless_placement_is_given():
    """With 257 tasks on one CPU the scheduler, not the manager, set the manager's CPU per
    pair (SCENARIO_PLACEMENT): by default 256 clients' manager gets a CPU of its own,
    every other scenario shares one, and --placement still decides for all. Checked
    where the real loadgen says its manager was allowed to run."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        print("    (skipped: one CPU)")
        return
    bench = load_bench_module()
    for given, want in ((None, {"c1": cpus[-1], "c256": cpus[0]}),
                        (["--placement", "same"], {"c1": cpus[-1], "c256": cpus[-1]}),
                        (["--placement", "apart"], {"c1": cpus[0], "c256": cpus[0]})):
        args = bench.parse_args(["--build", harness.BUILD, "--managers", "floor",
                                 "--scenarios", "c1,c256"] + (given or []))
        b = bench.Bench(args)
        seen = {}
        try:
            b.setup()
            for key, _, clients, idle, batch in (s for s in bench.SCENARIOS
                                                 if s[0] in ("c1", "c256")):
                v = b.loadgen_run("run", "floor", ["--clients", clients, "--idle", idle,
                                                   "--batch", batch, "--duration", 0.1,
                                                   "--warmup", 0] + b.pin(key))
                seen[key] = v["mgr_cpus"]
            text = b.placement_text(["c1", "c256"])
        finally:
            b.cleanup()
        assert seen == {k: str(c) for k, c in want.items()}, (given, seen, want)
        if given is None:
            assert text == ("c1: manager and clients pinned to CPU %d; c256: manager pinned "
                            "to CPU %d, clients to CPU %d" % (cpus[-1], cpus[0], cpus[-1])), text


def test_first_batch_ratio_is_a_trimmed_mean():
    """The first batch moves by a third between rounds, two-valued: a median of such a
    figure jumps between runs (two quiet runs: 0.19x and 0.22x at 2 workers), a trimmed
    mean moves by a fraction of the gap per round."""
    bench = load_bench_module()
    # Nine rounds, torch's first batch two-valued (1.2 s or 0.9 s), shmwarden's 0.2 s:
    # one round falling the other way moves the median from 0.167x to 0.222x (33%).
    sw = [0.2] * 9
    run_a = [1.2] * 5 + [0.9] * 4
    run_b = [1.2] * 4 + [0.9] * 5
    med = [bench.paired_ratio(sw, t)[0] for t in (run_a, run_b)]
    assert round(med[1] / med[0] - 1, 2) == 0.33, med

    def tmean(xs):
        return bench.trimmed_mean(xs, bench.FIRST_BATCH_CUT)

    tm = [bench.paired_ratio(sw, t, tmean)[0] for t in (run_a, run_b)]
    assert max(tm) / min(tm) - 1 < 0.10, tm
    # It cuts a tenth of the rounds from each end (rounded down) and averages the rest:
    # a stray round on a busy machine is cut, not averaged in.
    assert bench.trimmed_mean([1, 2, 3, 4, 5, 6, 7, 8, 9, 100], 0.1) == 5.5
    assert bench.trimmed_mean([1.0, 3.0], 0.1) == 2.0
    assert bench.trimmed_mean([2.0, 4.0, 9.0], 0) == 5.0
    # One paired round is the ratio, whatever the stat.
    r, per = bench.paired_ratio([1.0, 3.0, None], [None, 1.0, 1.0], tmean)
    assert r == 3.0 and per == [3.0], (r, per)


def test_dataloader_probe_finds_its_own_managers():
    with harness.Sandbox("bench") as sb:
        r = subprocess.run([PY, DATALOADER, "--workers", "2", "--batches", "6",
                            "--manager", harness.TORCH_SHM_MANAGER],
                           capture_output=True, text=True, timeout=300, env=sb.env)
        assert r.returncode == 0, r.stderr[-2000:]
        v = json.loads(r.stdout.strip().splitlines()[-1])
        assert v["bad"] == 0 and v["batches"] == 6, v
        # One manager per worker that shared a batch, each with a journal directory here.
        assert v["managers"] >= 2, v
        assert v["peak_rss_kib"] > 0, v
        assert v["first_batch_s"] > 0 and v["batches_per_s"] > 0, v
        assert v["managers_cpu_s"] > 0, v
        assert harness.wait_for(lambda: sb.manager_dirs() == [], timeout=20), \
            "managers left %s" % sb.manager_dirs()
        # --first-batch-only: the time to the first batch, counted with its managers
        # still running, and nothing of an epoch it did not run.
        r = subprocess.run([PY, DATALOADER, "--workers", "2", "--batches", "6",
                            "--first-batch-only", "--manager", harness.TORCH_SHM_MANAGER],
                           capture_output=True, text=True, timeout=300, env=sb.env)
        assert r.returncode == 0, r.stderr[-2000:]
        v = json.loads(r.stdout.strip().splitlines()[-1])
        assert v["bad"] == 0 and v["batches"] == 1 and v["first_batch_s"] > 0, v
        assert v["managers"] >= 1 and "batches_per_s" not in v, v
        # The run ended with batches in flight: a worker stopped between a registration's
        # OK and its shm_open leaves a young row, which its manager's shutdown keeps for
        # the grace (and so its directory). Every client is gone now: a sweep without
        # grace takes each directory once its manager has left.
        def swept():
            sb.run(["sweep", "--tmpdir", sb.tmp, "--prune-grace", "0"])
            return sb.manager_dirs() == []
        assert harness.wait_for(swept, timeout=30), "managers left %s" % sb.manager_dirs()


harness.main(globals())
