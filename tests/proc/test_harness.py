"""test_harness.py — the Sandbox's cleanup, which every process test relies on.

A failed test's cleanup used to remove its private temp base whole, the journals of its
SIGKILLed managers with it: what those journals named (a PyTorch program's torch_*,
without the sandbox's prefix) then leaked with nothing left to reclaim it. Now the
cleanup reclaims it with the product's own sweep (as root acting as each directory's
owner) before it removes the base, and keeps the base, saying so, when something there is
still the only record of an object: a journal the sweep may not touch, a live manager.
"""
import os
import pwd
import secrets
import shutil
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import SHM, Sandbox  # noqa: E402


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


class BodyFailed(Exception):
    """What the test body raises: a failure the cleanup must survive."""


def foreign_names(n):
    """n names without any sandbox's prefix, unique to this run, as PyTorch's torch_* are."""
    tag = "/shmwh_%d_%s_" % (os.getpid(), secrets.token_hex(4))
    return ["%s%d" % (tag, i) for i in range(n)]


def dead_manager(sb, names):
    """A SIGKILLed manager under sb's base journaled names, whose objects exist: nothing
    but its journal knows them now. Returns its directory."""
    d = harness.dead_manager(sb, names)
    expect(harness.journal_names(d) == sorted(names), "not journaled: %s" % names)
    return d


def fail_with_damaged_journal(sb, names, damage):
    """Runs a test body in sb that leaves a SIGKILLed manager's journal of names damaged
    by damage(journal path), then fails. Returns (manager directory, journal path)."""
    try:
        with sb:
            d = dead_manager(sb, names)
            journal = os.path.join(d, "journal.db")
            damage(journal)
            raise BodyFailed("the test failed")
    except BodyFailed:
        pass
    return d, journal


def unlink(names):
    """This test's own objects, whatever the harness did."""
    for n in names:
        try:
            os.unlink(SHM + n)
        except FileNotFoundError:
            pass


def test_failed_test_cleanup_reclaims_what_killed_managers_journaled():
    """The test fails (an exception leaves the with block) after a root manager and a
    user's manager, both SIGKILLed, journaled objects without the sandbox's prefix: the
    cleanup reclaims every one (the user's as that user) and removes the base."""
    mine = foreign_names(3)
    user = harness.useradd("hcl")
    theirs = foreign_names(2)
    try:
        pw = pwd.getpwnam(user)
        sb = Sandbox("hcrash", shared=True)
        try:
            with sb:
                dead_manager(sb, mine)
                d = harness.dead_manager_as(sb, pw, ["+" + n for n in theirs], sb.env)
                expect(os.stat(d).st_uid == pw.pw_uid and
                       all(os.stat(SHM + n).st_uid == pw.pw_uid for n in theirs),
                       "the user's manager is not the user's")
                raise BodyFailed("the test failed")
        except BodyFailed:
            pass
        left = [n for n in mine + theirs if os.path.lexists(SHM + n)]
        expect(left == [], "the cleanup of a failed test left %s in %s" % (left, SHM))
        expect(not os.path.exists(sb.tmp) and not sb.kept, "the base is still there: %s"
               % sb.tmp)
    finally:
        unlink(mine + theirs)
        subprocess.run(["userdel", user], capture_output=True)


def test_passed_test_that_leaked_fails_and_its_leak_is_reclaimed():
    """A test that passed but left what a dead manager journaled fails, as it always did,
    and the objects no longer outlive it."""
    names = foreign_names(2)
    try:
        sb = Sandbox("hleak")
        try:
            with sb:
                dead_manager(sb, names)
            raise BodyFailed("the sandbox let a leaking test pass")
        except AssertionError as e:
            expect(all(n in str(e) for n in names), "the leak is not named: %s" % e)
        expect(not any(os.path.lexists(SHM + n) for n in names), "leaked: %s" % names)
        expect(not os.path.exists(sb.tmp), "the base is still there: %s" % sb.tmp)
    finally:
        unlink(names)


def test_cleanup_keeps_the_base_when_its_journal_cannot_be_reclaimed(capsys):
    """A dead manager's journal its owner cannot change (chmod 000: the sweep never uses
    root's override, shmwarden(1)) is left to a human by the sweep; the objects it names
    still exist, so the cleanup keeps the base with that journal and says which base,
    why, and the command that reclaims it, which then does."""
    names = foreign_names(2)
    sb = Sandbox("hkeep")
    try:
        d, journal = fail_with_damaged_journal(sb, names, lambda j: os.chmod(j, 0))
        err = capsys.readouterr().err
        expect(os.path.isfile(journal) and sb.kept, "the base or its journal is gone: %s"
               % sb.tmp)
        expect(all(os.path.lexists(SHM + n) for n in names), "objects gone: %s" % names)
        line = [ln for ln in err.splitlines() if ln.startswith("harness: kept %s," % sb.tmp)]
        expect(len(line) == 1 and os.path.basename(d) in line[0] and
               "names 2 object(s) still in /dev/shm" in line[0] and
               "sweep --tmpdir %s" % sb.tmp in line[0], "the line: %r" % err)
        # What the line says to do, once the journal is its owner's again, reclaims it.
        os.chmod(journal, 0o600)
        expect(harness.reclaim_base(sb.tmp) is False, "still kept")
        expect(not any(os.path.lexists(SHM + n) for n in names), "not reclaimed")
        expect(not os.path.exists(sb.tmp), "the base is still there")
    finally:
        unlink(names)
        if os.path.isdir(sb.tmp):
            shutil.rmtree(sb.tmp)


def test_cleanup_reads_the_bytes_of_a_journal_sqlite_cannot_read(capsys):
    """A journal whose header is damaged is corrupt to SQLite and to the sweep (left for a
    human), but its rows' names still stand in its bytes: while their objects exist, the
    base is kept. A journal of random bytes (what the tests' corrupt journals are) names
    nothing: that base goes."""
    names = foreign_names(2)
    sb = Sandbox("hbytes")

    def damage_header(journal):
        con = sqlite3.connect(journal)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the rows into journal.db
        con.close()
        with open(journal, "r+b") as f:
            f.write(b"not SQLite at all")  # over "SQLite format 3\0"
    try:
        d, journal = fail_with_damaged_journal(sb, names, damage_header)
        err = capsys.readouterr().err
        expect(os.path.isfile(journal) and sb.kept, "the base or its journal is gone")
        expect("unreadable journal names 2 object(s) still in /dev/shm" in err and
               "an unreadable journal is a human's call" in err, "the line: %r" % err)
        with Sandbox("hgarbage") as garbage:
            g = harness.dead_manager(garbage, [garbage.name(0)])
            harness.corrupt_journal(g)
        expect(not os.path.exists(garbage.tmp) and not garbage.kept,
               "a base with a journal of random bytes was kept")
    finally:
        unlink(names)
        if os.path.isdir(sb.tmp):
            expect(harness.reclaim_base(sb.tmp) is False, "kept once its objects are gone")


def test_cleanup_keeps_the_base_of_a_live_manager_it_did_not_start(capsys):
    """A manager the test started through another program (not the sandbox's to kill)
    still serves a client at cleanup: its directory is its journal, so the base is kept,
    and the manager is neither killed nor robbed of its directory."""
    names = foreign_names(1)
    sb = Sandbox("hlive")
    sb.manager_exit_wait = 0.5  # it will not exit: its client stays connected
    m = c = None
    try:
        try:
            with sb:
                m = subprocess.Popen([harness.SHMWARDEN, "manager", "--no-reclaim"],
                                     stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, env=sb.env)
                sock = m.stdout.readline().decode().strip()
                expect(sock.startswith("/"), "manager: %r" % sock)
                c = harness.Client(sock)
                c.register(names[0])
                harness.write_object(names[0], b"live")
                raise BodyFailed("the test failed")
        except BodyFailed:
            pass
        err = capsys.readouterr().err
        expect(m.poll() is None, "the cleanup killed a process it did not start")
        expect(os.path.isfile(os.path.join(os.path.dirname(sock), "journal.db")) and sb.kept,
               "the live manager's directory is gone")
        expect("harness: kept %s," % sb.tmp in err and "its manager is live" in err,
               "the line: %r" % err)
        expect(os.path.lexists(SHM + names[0]), "the live manager's object is gone")
    finally:
        if c:
            c.close()
        if m:
            m.terminate()  # this test started it; it unlinks its own and exits
            m.wait(10)
            m.stdout.close()
        unlink(names)
        if os.path.isdir(sb.tmp):
            expect(harness.reclaim_base(sb.tmp) is False, "kept after its manager exited")


harness.main(globals())
