"""test_ls.py — `shmwarden ls` against real managers: live, dead, corrupt, unsafe and
starting directories, in text and in JSON (parsed back, every field checked).

Objects are registered and created the way libshm does (register, wait for OK, create);
dead managers are SIGKILLed. ls must change nothing, so every test also compares the
directories before and after. Everything happens inside a harness Sandbox.
"""
import hashlib
import json
import os
import pwd
import re
import signal
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import SHM, Sandbox  # noqa: E402

UID = os.geteuid()



def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def spawn(sb):
    # --no-reclaim: a new manager must not reclaim the dead directories under test.
    m = sb.spawn_manager(args=["manager", "--no-reclaim"], argv0="shmwarden")
    expect(m.sock, "manager failed: %r" % m.line)
    return m


def dead_manager(sb, sizes, never_created=()):
    """A manager that journaled objects of these sizes, then was SIGKILLed."""
    m = spawn(sb)
    c = m.client()
    names = []
    for size in sizes:
        n = sb.name("d%d" % len(sb.objects()))
        c.register(n)
        sb.create_object(n, size)
        names.append(n)
    for n in never_created:
        c.register(n)
    os.kill(m.pid, signal.SIGKILL)
    m.wait()
    c.close()
    return m, names


def snapshot(d):
    """File names and contents of a directory (the socket has no content). The WAL index
    (-shm) is compared by name only: every SQLite reader writes its read marks there."""
    out = {}
    for n in sorted(os.listdir(d)):
        p = os.path.join(d, n)
        if os.path.isfile(p) and not os.path.islink(p) and not n.endswith("-shm"):
            with open(p, "rb") as f:
                out[n] = hashlib.sha256(f.read()).hexdigest()
        else:
            out[n] = "special"
    return out


def ls(sb, *args):
    return sb.run(["ls", "--tmpdir", sb.tmp] + list(args))


def ls_json(sb, *args):
    r = ls(sb, "--json", *args)
    expect(r.returncode == 0, "ls --json exit %d: %s" % (r.returncode, r.stderr))
    doc = json.loads(r.stdout)
    expect(doc["base"] == sb.tmp, "base: %r" % doc["base"])
    return {m["dir"]: m for m in doc["managers"]}, doc


MANAGER_KEYS = {"dir", "path", "state", "owner_uid", "owner", "pid", "age_s", "clients",
                "objects", "bytes", "earlier_boot", "reclaimer_pid", "error"}
OBJECT_KEYS = {"name", "valid", "exists", "size", "owner_uid", "in_use", "refused",
               "young", "handed_over", "live_unreadable", "live_unknown", "live_pid"}


def check_entry(e, sb, state, pid, clients, objects, nbytes, error=False):
    d = e["dir"]
    expect(set(e) - {"object_list"} == MANAGER_KEYS, "%s: keys %s" % (d, sorted(e)))
    expect(e["path"] == os.path.join(sb.tmp, d), "%s: path %r" % (d, e["path"]))
    expect(e["state"] == state, "%s: state %r, want %r (%s)" % (d, e["state"], state, e))
    expect(e["owner_uid"] == UID and isinstance(e["owner"], str) and e["owner"],
           "%s: owner %r/%r" % (d, e["owner_uid"], e["owner"]))
    expect(e["pid"] == pid, "%s: pid %r, want %r" % (d, e["pid"], pid))
    expect(e["clients"] == clients, "%s: clients %r, want %r" % (d, e["clients"], clients))
    expect(e["objects"] == objects, "%s: objects %r, want %r" % (d, e["objects"], objects))
    expect(e["bytes"] == nbytes, "%s: bytes %r, want %r" % (d, e["bytes"], nbytes))
    expect(isinstance(e["age_s"], int) and 0 <= e["age_s"] < 600, "%s: age %r" % (d, e["age_s"]))
    expect(e["earlier_boot"] is False, "%s: earlier_boot" % d)
    if error:
        expect(isinstance(e["error"], str) and e["error"], "%s: no error: %s" % (d, e))
    else:
        expect(e["error"] is None, "%s: error %r" % (d, e["error"]))


def test_live_dead_corrupt_unsafe_starting():
    with Sandbox("ls") as sb:
        # Dead: three objects of 8 KiB, and a name registered but never created (a moment
        # ago: not created yet, as a sweep would keep it; test_young.py has it gone).
        gone = sb.name("never")
        dead, dead_names = dead_manager(sb, [8192, 8192, 8192], never_created=[gone])
        # Corrupt: dead, its journal replaced by random bytes.
        bad, bad_names = dead_manager(sb, [4096])
        j = os.path.join(bad.dir, "journal.db")
        for ext in ("-wal", "-shm"):
            if os.path.exists(j + ext):
                os.unlink(j + ext)
        with open(j, "wb") as f:
            f.write(os.urandom(16384))
        os.chmod(j, 0o600)
        # Unsafe: writable by others. Starting: no lock file yet, just made.
        unsafe = os.path.join(sb.tmp, "shmwarden-unsafe")
        os.mkdir(unsafe)
        os.chmod(unsafe, 0o777)
        starting = os.path.join(sb.tmp, "shmwarden-start1")
        os.mkdir(starting, 0o700)
        # Live: two connected clients, objects of 4 KiB and 12 KiB, the first mapped by a
        # live child process.
        live = spawn(sb)
        c1, c2 = live.client(), live.client()
        held, other = sb.name("held"), sb.name("other")
        c1.register(held)
        sb.create_object(held, 4096)
        c2.register(other)
        sb.create_object(other, 12288)
        h = sb.hold_mapped(held)

        dirs = [dead.dir, bad.dir, unsafe, starting, live.dir]
        before = {d: snapshot(d) for d in dirs if d != live.dir}
        objects_before = sb.objects()

        by_dir, doc = ls_json(sb, "--objects")
        expect(sorted(by_dir) == sorted(os.path.basename(d) for d in dirs),
               "dirs listed: %s" % sorted(by_dir))
        expect([m["dir"] for m in doc["managers"]] == sorted(by_dir), "not sorted")
        name = os.path.basename

        e = by_dir[name(live.dir)]
        check_entry(e, sb, "live", live.pid, 2, 2, 4096 + 12288)
        objs = {o["name"]: o for o in e["object_list"]}
        expect(sorted(objs) == sorted([held, other]), "live objects: %s" % sorted(objs))
        for o in objs.values():
            expect(set(o) == OBJECT_KEYS, "object keys: %s" % sorted(o))
            expect(o["valid"] is True and o["exists"] is True and o["owner_uid"] == UID,
                   "object: %s" % o)
        expect(objs[held]["size"] == 4096 and objs[held]["in_use"] is True,
               "held: %s" % objs[held])
        expect(objs[other]["size"] == 12288 and objs[other]["in_use"] is False,
               "other: %s" % objs[other])

        e = by_dir[name(dead.dir)]
        check_entry(e, sb, "dead", dead.pid, 0, 4, 3 * 8192)
        objs = {o["name"]: o for o in e["object_list"]}
        expect(sorted(objs) == sorted(dead_names + [gone]), "dead objects: %s" % sorted(objs))
        for n in dead_names:
            expect(objs[n] == {"name": n, "valid": True, "exists": True, "size": 8192,
                               "owner_uid": UID, "in_use": False, "refused": False,
                               "young": False, "handed_over": False,
                               "live_unreadable": False, "live_unknown": False,
                               "live_pid": None},
                   "dead object: %s" % objs[n])
        expect(objs[gone] == {"name": gone, "valid": True, "exists": False, "size": 0,
                              "owner_uid": None, "in_use": False, "refused": False,
                              "young": True, "handed_over": False, "live_unreadable": False,
                              "live_unknown": False, "live_pid": None},
               "not created yet: %s" % objs[gone])

        e = by_dir[name(bad.dir)]
        check_entry(e, sb, "corrupt", 0, 0, 0, 0, error=True)
        expect("journal" in e["error"] and e["object_list"] == [], "corrupt: %s" % e)

        e = by_dir[name(unsafe)]
        check_entry(e, sb, "unsafe", 0, -1, 0, 0, error=True)
        expect("writable by group or others" in e["error"], "unsafe: %s" % e["error"])

        e = by_dir[name(starting)]
        check_entry(e, sb, "starting", 0, 0, 0, 0)

        # Without --objects: the same figures, no object_list.
        plain, _ = ls_json(sb)
        for d, e in plain.items():
            expect("object_list" not in e, "object_list without --objects")
            for k in ("state", "pid", "clients", "objects", "bytes", "owner_uid"):
                expect(e[k] == by_dir[d][k], "%s %s: %r vs %r" % (d, k, e[k], by_dir[d][k]))

        # Text: the base, a header, a line per directory, human sizes, object lines.
        r = ls(sb, "--objects")
        expect(r.returncode == 0 and r.stderr == "", "text: %d %r" % (r.returncode, r.stderr))
        lines = r.stdout.splitlines()
        expect(lines[0] == "base %s (from --tmpdir)" % sb.tmp, "base line: %r" % lines[0])
        lines = lines[1:]
        expect(lines[0].split() == ["DIRECTORY", "STATE", "OWNER", "PID", "AGE", "CLIENTS",
                                    "OBJECTS", "BYTES"], "header: %r" % lines[0])
        row = {l.split()[0]: l for l in lines[1:] if l.startswith("shmwarden-")}
        expect(len(row) == len(dirs), "text rows: %s" % sorted(row))
        f = row[name(live.dir)].split()
        expect(f[1] == "live" and f[3] == str(live.pid) and f[5] == "2" and f[6] == "2"
               and " ".join(f[7:9]) == "16.0 KiB", "live row: %r" % row[name(live.dir)])
        f = row[name(dead.dir)].split()
        expect(f[1] == "dead" and f[3] == str(dead.pid) and f[6] == "4"
               and " ".join(f[7:9]) == "24.0 KiB", "dead row: %r" % row[name(dead.dir)])
        expect(row[name(bad.dir)].split()[1] == "corrupt" and "! journal" in row[name(bad.dir)],
               "corrupt row: %r" % row[name(bad.dir)])
        expect(row[name(unsafe)].split()[1] == "unsafe" and "! " in row[name(unsafe)],
               "unsafe row: %r" % row[name(unsafe)])
        expect(row[name(starting)].split()[1] == "starting", "starting row")
        held_line = [l for l in lines if l.strip().startswith(held + " ")]
        expect(len(held_line) == 1 and held_line[0].rstrip().endswith("in use")
               and "4.0 KiB" in held_line[0], "held line: %r" % held_line)
        gone_line = [l for l in lines if l.strip().startswith(gone + " ")]
        expect(len(gone_line) == 1 and "(not created yet)" in gone_line[0],
               "not created yet line: %r" % gone_line)

        # ls looked and changed nothing.
        for d, snap in before.items():
            after = snapshot(d)
            expect(after == snap, "%s changed: %s" % (name(d), sorted(
                k for k in set(snap) | set(after) if snap.get(k) != after.get(k))))
        expect(sb.objects() == objects_before, "objects changed")
        expect(live.proc.poll() is None, "live manager died")
        c1.register(sb.name("after"))  # still answers
        h.kill()
        h.wait()
        c1.close()
        c2.close()


# A live manager whose journal.db was removed under it (a hand rm, a cleaner), seen before
# it makes it again (it is stopped here): its names cannot be read, which ls says, in text
# and JSON, as for any unreadable journal; "0 objects, no error" would read as empty.
def test_live_manager_whose_journal_is_missing():
    with Sandbox("lsmiss") as sb:
        m = spawn(sb)
        c = m.client()
        n = sb.name("a")
        c.register(n)
        sb.create_object(n)
        os.kill(m.pid, signal.SIGSTOP)
        try:
            for f in ("journal.db", "journal.db-wal", "journal.db-shm"):
                os.unlink(os.path.join(m.dir, f))
            entries, _ = ls_json(sb)
            e = entries[os.path.basename(m.dir)]
            expect(e["state"] == "live" and e["objects"] == 0 and
                   "journal.db is missing" in (e["error"] or ""), "ls --json: %s" % e)
            r = ls(sb)
            line = [l for l in r.stdout.splitlines() if os.path.basename(m.dir) in l]
            expect(r.returncode == 0 and len(line) == 1 and
                   "! journal: journal.db is missing" in line[0], "ls: %r" % r.stdout)
        finally:
            os.kill(m.pid, signal.SIGCONT)
        # Made again, it lists the manager's names with no error.
        expect(harness.wait_for(
            lambda: ls_json(sb)[0][os.path.basename(m.dir)]["objects"] == 1, timeout=10),
            "the restored journal is not listed: %s" % ls_json(sb)[0])
        expect(ls_json(sb)[0][os.path.basename(m.dir)]["error"] is None, "error after restore")
        c.close()


# Text output reads back one way: a name holding the four characters \x0a is not printed
# like one holding a newline (the backslash is \x5c), and a space that leads or trails a
# name is seen (\x20). JSON strings stay JSON's. recover's log lines name each object as
# ls does (the engine escaped names its own way: a trailing space was invisible there),
# a name holding a NUL byte included (only a hand-made journal has one: ls showed what
# came before the NUL, in text and in JSON).
def test_text_escapes_are_unambiguous():
    with Sandbox("lsesc") as sb:
        m = spawn(sb)
        c = m.client()
        tails = {"\n": "\\x0a", "\\x0a": "\\x5cx0a", "z ": "z\\x20", "z": "z",
                 " y": " y", "a b": "a b"}
        for t in tails:
            c.register(sb.name(t))
            sb.create_object(sb.name(t))
        os.kill(m.pid, signal.SIGKILL)
        m.wait()
        c.close()
        r = ls(sb, "--objects")
        want = {sb.prefix + v for v in tails.values()}
        lines = [l.strip() for l in r.stdout.splitlines() if sb.prefix in l]
        got = set()
        for l in lines:
            for w in want:
                if l.startswith(w + " "):
                    got.add(w)
        expect(r.returncode == 0 and len(lines) == len(tails) and got == want,
               "ls --objects shows %r, want each of %s" % (lines, sorted(want)))
        by_dir, _ = ls_json(sb, "--objects")
        names = {o["name"] for o in by_dir[os.path.basename(m.dir)]["object_list"]}
        expect(names == {sb.name(t) for t in tails}, "JSON names: %r" % names)
        con = sqlite3.connect(os.path.join(m.dir, "journal.db"))
        con.execute("INSERT INTO objects (name, client_pid, registered_at) VALUES (?, 1, 1)",
                    ((sb.prefix + "n\0ul\\ ").encode(),))
        con.commit()
        con.close()
        nul = sb.prefix + "n\\x00ul\\x5c\\x20"
        r = ls(sb, "--objects")
        expect(any(l.strip().startswith(nul + " ") and "not a valid name" in l
                   for l in r.stdout.splitlines()), "ls --objects: %r, want %s" % (r.stdout, nul))
        by_dir, _ = ls_json(sb, "--objects")
        names = {o["name"] for o in by_dir[os.path.basename(m.dir)]["object_list"]}
        expect(sb.prefix + "n\0ul\\ " in names, "ls --json cuts a name at its NUL: %r" % names)
        r = sb.run(["recover", m.dir], env=dict(sb.env, SHMWARDEN_LOG="debug"))
        logged = [l for l in r.stderr.splitlines() if sb.prefix in l]
        for w in want:
            expect(any(l.endswith(": %s: unlinked (4096 bytes)" % w) for l in logged),
                   "recover's log does not name %s as ls does: %r" % (w, logged))
        expect(any("refusing journaled name '%s'" % nul in l for l in logged),
               "recover's log does not name %s as ls does: %r" % (nul, logged))
        expect(r.returncode == 0 and sb.objects() == [], "recover: %d %r %r"
               % (r.returncode, r.stdout, r.stderr))
        r = sb.run(["recover", "--dry-run", os.path.join(sb.tmp, "no\\where ")])
        expect("no\\x5cwhere\\x20" in r.stderr, "recover's complaint: %r" % r.stderr)


# A user's journal may name another user's object (any name can be registered). The
# sweep refuses it before it asks who holds it; ls says so, in the sweep's word, rather
# than "in use" (its lease check, made as the journal's owner, could not be had) or
# "unused" (as if a sweep would unlink it).
def test_another_users_object_is_refused_as_the_sweep_says():
    if os.geteuid() != 0:
        print("SKIP test_another_users_object_is_refused_as_the_sweep_says: needs root")
        return
    user = harness.useradd("lsref")
    try:
        pw = pwd.getpwnam(user)
        with Sandbox("lsref", shared=True) as sb:
            theirs, theirs666, mine = sb.name("root"), sb.name("root666"), sb.name("mine")
            sb.create_object(theirs)
            sb.create_object(theirs666)
            os.chmod(SHM + theirs666, 0o666)
            d = harness.dead_manager_as(sb, pw, ["+" + mine, theirs, theirs666], sb.env)
            r = ls(sb, "--objects")
            lines = {l.split()[0]: l for l in r.stdout.splitlines() if sb.prefix in l}
            for n in (theirs, theirs666):
                expect(lines.get(n, "").endswith("refused: not the journal owner's"),
                       "ls says of %s: %r" % (n, lines.get(n)))
            expect(lines.get(mine, "").endswith(" unused"), "ls: %r" % r.stdout)
            by_dir, _ = ls_json(sb, "--objects")
            objs = {o["name"]: o for o in by_dir[os.path.basename(d)]["object_list"]}
            for n in (theirs, theirs666):
                expect(objs[n]["refused"] is True and objs[n]["in_use"] is None,
                       "JSON of %s: %s" % (n, objs[n]))
            expect(objs[mine]["refused"] is False and objs[mine]["in_use"] is False,
                   "JSON of mine: %s" % objs[mine])
            r = sb.run(["sweep", "--json", "--tmpdir", sb.tmp])
            doc = json.loads(r.stdout)
            expect(doc["totals"]["refused"] == 2 and doc["totals"]["unlinked"] == 1,
                   "sweep: %s %s" % (r.stdout, r.stderr))
            expect(sb.objects() == sorted([theirs, theirs666]), "left: %s" % sb.objects())
    finally:
        subprocess.run(["userdel", user], capture_output=True)


def test_hostile_journal_names_and_earlier_boot():
    with Sandbox("lsbad") as sb:
        m, names = dead_manager(sb, [4096])
        j = os.path.join(m.dir, "journal.db")
        con = sqlite3.connect(j)
        hostile = [b"/../../etc/passwd", (sb.prefix + "\x1b[31mred").encode()]
        for n in hostile:
            con.execute("INSERT INTO objects (name, client_pid, registered_at) VALUES (?, 1, 1)",
                        (n,))
        con.commit()
        con.close()
        by_dir, _ = ls_json(sb, "--objects")
        e = by_dir[os.path.basename(m.dir)]
        expect(e["state"] == "dead" and e["objects"] == 3 and e["bytes"] == 4096, "entry: %s" % e)
        objs = {o["name"]: o for o in e["object_list"]}
        passwd = objs["/../../etc/passwd"]
        expect(passwd["valid"] is False and passwd["exists"] is False and passwd["size"] == 0,
               "a name outside /dev/shm was looked up: %s" % passwd)
        red = objs[hostile[1].decode()]
        expect(red["valid"] is True and red["exists"] is False, "escape name: %s" % red)
        r = ls(sb, "--objects")
        expect(r.returncode == 0 and "\x1b" not in r.stdout, "escape sequence printed")
        expect("\\x1b[31mred" in r.stdout, "escaped name missing: %r" % r.stdout)
        expect("not a valid name" in r.stdout, "invalid name not flagged: %r" % r.stdout)

        # A journal from an earlier boot names nothing that exists now.
        con = sqlite3.connect(j)
        con.execute("UPDATE manager SET boot_id = '00000000-0000-0000-0000-000000000000'")
        con.commit()
        con.close()
        by_dir, _ = ls_json(sb, "--objects")
        e = by_dir[os.path.basename(m.dir)]
        expect(e["earlier_boot"] is True and e["bytes"] == 0 and e["objects"] == 3,
               "earlier boot: %s" % e)
        expect(all(not o["exists"] for o in e["object_list"]), "earlier boot objects exist")
        r = ls(sb)
        expect("earlier boot" in r.stdout, "text: %r" % r.stdout)
        expect(sb.objects() == names, "objects changed")


def test_symlink_and_foreign_journal_are_unsafe():
    with Sandbox("lsunsafe") as sb:
        os.symlink("/etc", os.path.join(sb.tmp, "shmwarden-link01"))
        m, _ = dead_manager(sb, [4096])
        con = sqlite3.connect(os.path.join(m.dir, "journal.db"))
        con.execute("UPDATE manager SET owner_uid = owner_uid + 4242")
        con.commit()
        con.close()
        by_dir, _ = ls_json(sb)
        e = by_dir["shmwarden-link01"]
        expect(e["state"] == "unsafe" and "symlink" in e["error"], "link: %s" % e)
        e = by_dir[os.path.basename(m.dir)]
        expect(e["state"] == "unsafe" and "journal claims uid" in e["error"]
               and e["bytes"] == 0, "foreign journal: %s" % e)


def test_empty_and_missing_base():
    with Sandbox("lsempty") as sb:
        r = ls(sb)
        expect(r.returncode == 0 and r.stdout.splitlines()[1].startswith("DIRECTORY")
               and len(r.stdout.splitlines()) == 2 and r.stderr == "",
               "empty: %d %r %r" % (r.returncode, r.stdout, r.stderr))
        by_dir, doc = ls_json(sb)
        expect(doc["managers"] == [], "empty json: %s" % doc)
        missing = os.path.join(sb.tmp, "nosuch")
        for args in (["ls", "--tmpdir", missing], ["ls", "--json", "--tmpdir=" + missing]):
            r = sb.run(args)
            expect(r.returncode == 1 and "nosuch" in r.stderr, "%s: %d %r"
                   % (args, r.returncode, r.stderr))
            # --json asked for a document: it says what went wrong, with no managers.
            if "--json" in args[1]:
                doc = json.loads(r.stdout)
                expect(doc["managers"] == [] and "nosuch" in doc["error"], doc)
            else:
                expect(r.stdout == "", "text stdout: %r" % r.stdout)
        afile = os.path.join(sb.tmp, "afile")
        open(afile, "w").close()
        r = sb.run(["ls", "--tmpdir", afile])
        expect(r.returncode == 1 and "afile" in r.stderr, "file as base: %r" % r.stderr)
        # TMPDIR is the default base.
        r = sb.run(["ls", "--json"])
        expect(r.returncode == 0 and json.loads(r.stdout)["base"] == sb.tmp, "default base")
        expect(os.listdir(sb.tmp) == ["afile"], "ls created something: %s" % os.listdir(sb.tmp))


def test_usage_errors():
    with Sandbox("lsusage") as sb:
        for args in (["--bogus"], ["extra"], ["--tmpdir"], ["--tmpdir", ""], ["--tmpdir="],
                     ["--json", "--objects", "-x"]):
            r = sb.run(["ls"] + args)
            expect(r.returncode == 2, "%s: exit %d" % (args, r.returncode))
            expect(r.stderr.startswith("shmwarden ls: ") and r.stderr.endswith(
                "\nTry 'shmwarden ls --help' for more information.\n") and r.stdout == "",
                   "%s: %r %r" % (args, r.stdout, r.stderr))
        p = subprocess.run([harness.SHMWARDEN, b"ls", b"\x1b[31m\xff"], capture_output=True,
                           env=sb.env, timeout=30, stdin=subprocess.DEVNULL)
        expect(p.returncode == 2 and b"\x1b" not in p.stderr, "junk echoed: %r" % p.stderr)
        r = sb.run(["ls", "--help"])
        expect(r.returncode == 0 and r.stdout.startswith("usage: shmwarden ls"), "--help")


def test_recover_takes_the_names_ls_prints():
    """What a newcomer does: `ls`, then `recover` with the name it printed, from wherever
    they are. A bare name is looked up in the temp base ls lists (TMPDIR or --tmpdir),
    with the same checks; a path, ./NAME included, is taken as a path."""
    with Sandbox("lsrecover") as sb:
        m1, names1 = dead_manager(sb, [4096, 8192])
        m2, names2 = dead_manager(sb, [4096])
        r = sb.run(["ls"])
        expect(r.returncode == 0, "ls: %d %r" % (r.returncode, r.stderr))
        printed = [line.split()[0] for line in r.stdout.splitlines()[2:]]
        expect(sorted(printed) == sorted([os.path.basename(m1.dir), os.path.basename(m2.dir)]),
               "ls printed %s" % printed)
        name1 = os.path.basename(m1.dir)
        # From another working directory, through TMPDIR as ls: reclaimed.
        r = subprocess.run([harness.SHMWARDEN, "recover", name1], capture_output=True,
                           text=True, env=sb.env, cwd="/", timeout=60)
        expect(r.returncode == 0 and r.stdout.startswith("shmwarden recover: %s: removed: 2 unlinked"
                                                         % m1.dir),
               "recover NAME: %d %r %r" % (r.returncode, r.stdout, r.stderr))
        expect(not os.path.exists(m1.dir) and not (set(names1) & set(sb.objects())),
               "not reclaimed: %s %s" % (os.path.exists(m1.dir), sb.objects()))
        # --tmpdir names the base, as for ls; the JSON names the resolved path.
        name2 = os.path.basename(m2.dir)
        env = dict(sb.env, TMPDIR="/nonexistent-polish")
        r = sb.run(["recover", "--dry-run", "--json", "--tmpdir", sb.tmp, name2], env=env)
        doc = json.loads(r.stdout)
        expect(r.returncode == 0 and doc["dir"] == m2.dir and doc["unlinked"] == 1 and
               doc["dry_run"] is True, "recover --tmpdir: %d %r" % (r.returncode, r.stdout))
        r = sb.run(["recover", name2], env=env)
        expect(r.returncode == 1 and r.stderr.startswith(
            "shmwarden recover: /nonexistent-polish/%s: error: no such directory: cannot open "
            "the temp base /nonexistent-polish (from TMPDIR)" % name2),
            "missing base: %d %r" % (r.returncode, r.stderr))
        # A name that is not there, and ./NAME (the working directory, not the base).
        r = sb.run(["recover", "shmwarden-zzzzzz"])
        expect(r.returncode == 1 and r.stderr.startswith("shmwarden recover: %s/shmwarden-zzzzzz: "
                                                          % sb.tmp) and "no such" in r.stderr,
               "unknown name: %r" % r.stderr)
        r = subprocess.run([harness.SHMWARDEN, "recover", "./" + name2], capture_output=True,
                           text=True, env=sb.env, cwd="/", timeout=60)
        expect(r.returncode == 1 and r.stderr.startswith("shmwarden recover: ./%s: " % name2),
               "./NAME from /: %d %r" % (r.returncode, r.stderr))
        r = sb.run(["recover", "--tmpdir", sb.tmp, m2.dir])
        expect(r.returncode == 2 and r.stderr.startswith(
            "shmwarden recover: --tmpdir is the temp base of a bare name as `shmwarden ls` prints it, "
            "and DIR is a path: '%s'" % m2.dir), "--tmpdir with a path: %r" % r.stderr)
        # The same safety checks: a group-writable directory, named bare, is refused.
        os.chmod(m2.dir, 0o770)
        r = sb.run(["recover", name2])
        expect(r.returncode == 1 and ": unsafe: " in r.stderr and os.path.isdir(m2.dir) and
               set(names2) <= set(sb.objects()), "unsafe by name: %d %r" % (r.returncode,
                                                                             r.stderr))
        os.chmod(m2.dir, 0o700)
        r = subprocess.run([harness.SHMWARDEN, "recover", name2], capture_output=True,
                           text=True, env=sb.env, cwd="/", timeout=60)
        expect(r.returncode == 0 and not os.path.exists(m2.dir), "recover: %r" % r.stderr)


def test_the_base_is_shown_with_its_setting():
    """Text ls names the temp base it lists, and where that came from (a directory named
    shmwarden-abc123 means another one under another base); --json says the same."""
    with Sandbox("lsbase") as sb:
        m, _ = dead_manager(sb, [4096])
        odd = os.path.join(sb.tmp, "sub\x1bdir")
        os.mkdir(odd)
        env = {k: v for k, v in sb.env.items() if k not in ("TMPDIR", "TMP", "TEMP", "TEMPDIR")}
        for args, extra, base, source in (
                (["--tmpdir", sb.tmp], {}, sb.tmp, "from --tmpdir"),
                ([], {"TMPDIR": sb.tmp}, sb.tmp, "from TMPDIR"),
                ([], {"TEMP": sb.tmp}, sb.tmp, "from TEMP"),
                ([], {"TMPDIR": "", "TMP": sb.tmp}, sb.tmp, "from TMP"),
                (["--tmpdir", odd], {}, odd.replace("\x1b", "\\x1b"), "from --tmpdir")):
            e = dict(env, **extra)
            r = sb.run(["ls"] + args, env=e)
            lines = r.stdout.splitlines()
            expect(r.returncode == 0 and lines[0] == "base %s (%s)" % (base, source) and
                   lines[1].startswith("DIRECTORY"), "%s %s: %r" % (args, extra, lines[:2]))
            expect("\x1b" not in r.stdout, "escape sequence printed raw")
            if base == sb.tmp:
                expect(any(l.startswith(os.path.basename(m.dir)) for l in lines[2:]),
                       "%s: no row for %s" % (args, m.dir))
            r = sb.run(["ls", "--json"] + args, env=e)
            doc = json.loads(r.stdout)
            expect(doc["base"] == (odd if "odd" in base or "\\x1b" in base else sb.tmp) and
                   doc["base_from"] == source.replace("from ", ""), "json: %s" % doc)
        # The default base: /tmp, said to be the default (not listed here: others' dirs).
        r = sb.run(["ls", "--json"], env=env)
        doc = json.loads(r.stdout)
        expect(doc["base"] == "/tmp" and doc["base_from"] == "default", "default: %s" % {
            k: doc[k] for k in ("base", "base_from")})
        r = sb.run(["ls"], env=env)
        expect(r.stdout.startswith("base /tmp (default)\n"), "default: %r" % r.stdout[:80])
        # A base that cannot be read: the JSON still says where it came from.
        r = sb.run(["ls", "--json"], env=dict(env, TMPDIR=os.path.join(sb.tmp, "none")))
        doc = json.loads(r.stdout)
        expect(r.returncode == 1 and doc["base_from"] == "TMPDIR" and doc["error"], doc)


def user_version(mgr_dir, version=None):
    """The journal's schema version (PRAGMA user_version), set to version when given, as
    another build of shmwarden would have written it (test_livemgr.py)."""
    con = sqlite3.connect(os.path.join(mgr_dir, "journal.db"), timeout=5)
    try:
        if version is None:
            return con.execute("PRAGMA user_version").fetchone()[0]
        con.execute("PRAGMA user_version = %d" % version)
        con.commit()
    finally:
        con.close()


def test_ls_says_what_recover_does_with_a_live_managers_name():
    """A name a dead journal and a live manager's both list: recover hands it over (the
    row goes, the object stays), and ls --objects says so, in recover's words, not
    "unused"; while the live journal cannot be read (another schema version), both
    keep it. (Trial F7: ls did not ask the live managers.)"""
    with Sandbox("lslive") as sb:
        dead, names = dead_manager(sb, [4096, 4096])
        shared, own = names
        live = spawn(sb)
        c = live.client()
        c.register(shared)
        try:
            d = os.path.basename(dead.dir)
            before = snapshot(dead.dir)

            def dead_rows(out):
                """The dead directory's object lines of a text listing, by name."""
                lines = out.splitlines()
                i = next(k for k, l in enumerate(lines) if l.startswith(d + " "))
                rows = {}
                for l in lines[i + 1:]:
                    if not l.startswith("    /"):
                        break
                    rows[l.split()[0]] = l
                return rows

            r = ls(sb, "--objects")
            rows = dead_rows(r.stdout)
            expect(r.returncode == 0 and rows[shared].endswith(
                "handed over: live manager pid %d lists it" % live.pid) and
                rows[own].endswith(" unused"), "ls --objects: %r %r" % (r.stdout, r.stderr))
            managers, _ = ls_json(sb, "--objects")
            objs = {o["name"]: o for o in managers[d]["object_list"]}
            expect(set(objs[shared]) == OBJECT_KEYS and objs[shared]["handed_over"] is True
                   and objs[shared]["live_pid"] == live.pid and objs[shared]["in_use"] is None
                   and objs[shared]["live_unreadable"] is False, "json: %s" % objs[shared])
            expect(objs[own]["handed_over"] is False and objs[own]["in_use"] is False and
                   objs[own]["live_pid"] is None, "json: %s" % objs[own])
            r = sb.run(["recover", "--dry-run", "--json", dead.dir])
            doc = json.loads(r.stdout)
            expect(doc["handed_over"] == 1 and doc["unlinked"] == 1,
                   "recover --dry-run: %r" % r.stdout)
            # The live journal of another schema version: both keep every name of ours.
            version = user_version(live.dir)
            user_version(live.dir, version + 1)
            try:
                r = ls(sb, "--objects")
                rows = dead_rows(r.stdout)
                word = "kept: the journal of live manager pid %d cannot be read" % live.pid
                expect(rows[shared].endswith(word) and rows[own].endswith(word),
                       "ls --objects, unreadable: %r" % r.stdout)
                managers, _ = ls_json(sb, "--objects")
                for o in managers[d]["object_list"]:
                    expect(o["live_unreadable"] is True and o["live_pid"] == live.pid and
                           o["handed_over"] is False and o["in_use"] is None, "json: %s" % o)
                r = sb.run(["recover", "--dry-run", "--json", dead.dir])
                doc = json.loads(r.stdout)
                expect(doc["live_unreadable"] == 2 and doc["unlinked"] == 0,
                       "recover --dry-run, unreadable: %r" % r.stdout)
            finally:
                user_version(live.dir, version)
            expect(snapshot(dead.dir) == before, "ls or a dry run changed %s" % dead.dir)
            r = sb.run(["recover", dead.dir])
            expect(r.returncode == 0 and "1 handed over to live managers" in r.stdout and
                   os.path.exists(SHM + shared) and not os.path.exists(SHM + own),
                   "recover: %r %r" % (r.stdout, r.stderr))
        finally:
            c.close()


def section(text, start, end_re):
    i = text.index(start)
    m = re.compile(end_re, re.M).search(text, i + len(start))
    return text[i:m.start() if m else len(text)]


def test_json_fields_are_documented():
    # Every field ls --json prints is in the README's "JSON shapes" and in shmwarden(1).
    with Sandbox("lsdoc") as sb:
        m = spawn(sb)
        c = m.client()
        c.register(sb.name(1))
        sb.create_object(sb.name(1))
        _, doc = ls_json(sb, "--objects")
        c.close()
    keys = set(doc) | set(doc["managers"][0]) | set(doc["managers"][0]["object_list"][0])
    with open(os.path.join(harness.ROOT, "README.md")) as f:
        readme = section(f.read(), "## JSON shapes", r"^## ")
    with open(os.path.join(harness.ROOT, "man", "shmwarden.1")) as f:
        man = section(f.read(), ".SH \"JSON OUTPUT\"", r"^\.SH ").replace("\\-", "-")
    for k in sorted(keys):
        expect('"%s"' % k in readme, "README's JSON shapes lack %r" % k)
        expect('"%s"' % k in man, "shmwarden(1) JSON OUTPUT lacks %r" % k)


harness.main(globals())
