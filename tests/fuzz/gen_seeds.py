#!/usr/bin/env python3
"""gen_seeds.py — writes the seed corpora of the fuzz harnesses (tests/fuzz/seeds/).

    tests/fuzz/gen_seeds.py [OUTDIR]      (default: tests/fuzz/seeds)

The seeds are checked in; rerun this after a schema or harness-format change and commit
what changed. Journals are built with Python's own sqlite3 from schema/journal.sql (the
same text the manager runs), then given hostile contents the way a foreign writer
would: huge rows, NULs, over-long and non-UTF-8 names, wrong types (forged past the
schema's STRICT and CHECK), a future schema, a relaxed schema, a trigger, a damaged
manager row, an uncheckpointed WAL. Small page sizes keep the files small; one seed keeps the real 4 KiB pages.
Output is deterministic (no clocks, no randomness).
"""
import os
import shutil
import sqlite3
import struct
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SCHEMA = open(os.path.join(ROOT, "schema", "journal.sql")).read()
# Release 0.1.0's schema: its journals are still read (and checked exactly) after upgrades.
SCHEMA_V1 = open(os.path.join(ROOT, "schema", "journal-v1.sql")).read()
# Release 0.2.0's: the same, without the /dev/shm directory and user namespace columns.
SCHEMA_V3 = open(os.path.join(ROOT, "schema", "journal-v3.sql")).read()
BOOT = "0d9c1d5e-6a9b-4a53-9c3e-000000000001"
WAL_MARK = b"SHMWWAL!"   # fuzz_journal.c: what follows is journal.db-wal
FD_MARK = b"SHMWFDS!"    # fuzz_inuse.c: what follows are fd symlink targets


def record(name, free=False, pid=1234):
    raw = name if isinstance(name, bytes) else name.encode()
    return struct.pack("=ib60s3x", pid, 1 if free else 0, raw)


def wire_seeds():
    long_name = "/" + "a" * 58
    return {
        "register": record("/torch_1234_5678_0"),
        "free": record("/torch_1234_5678_0", free=True),
        "pipelined": record("/torch_1_2_0") + record("/torch_1_2_1") + record("/torch_1_2_0", True),
        "longest": record(long_name),
        "unterminated": b"\x01\x00\x00\x00\x00" + b"/" + b"x" * 59 + b"\x00" * 3,
        "dotdot": record("/.."),
        "slash": record("/a/b"),
        "non_utf8": record(b"/\xff\xfe\x80"),
        "bare_name": b"/torch_1234_5678_0",
        "half_record": record("/torch_9")[:30],
    }


def new_journal(path, page_size=512, wal=True, owner=0, pid=4242, v1=False, v3=False):
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA page_size=%d" % page_size)
    con.execute("PRAGMA auto_vacuum=INCREMENTAL")
    if wal:
        con.execute("PRAGMA journal_mode=WAL")
    # Verbatim: untrusted readers compare the stored CREATE text, comments included.
    con.executescript(SCHEMA_V1 if v1 else SCHEMA_V3 if v3 else SCHEMA)
    if v1:
        con.execute("INSERT INTO manager VALUES (1, ?, ?, ?, 1700000000)", (owner, pid, BOOT))
    elif v3:
        con.execute("INSERT INTO manager VALUES (1, ?, ?, ?, 1700000000, 44, 4026531840)",
                    (owner, pid, BOOT))
    else:
        con.execute("INSERT INTO manager VALUES (1, ?, ?, ?, 1700000000, 44, 4026531840, 1,"
                    " 4026532001, 1001)", (owner, pid, BOOT))
    return con


def add_rows(con, rows):
    con.execute("BEGIN")
    for r in rows:
        con.execute("INSERT INTO objects(name, client_pid, registered_at) VALUES (?,1,1)", (r,))
    con.execute("COMMIT")


def forge(con, write):
    """Writes what the schema refuses (STRICT types, the CHECK on the length) the way a
    foreign writer could: the table's text relaxed while write(con) runs, then put back
    verbatim. Untrusted readers must catch the result (quick_check)."""
    (orig,) = con.execute("SELECT sql FROM sqlite_schema WHERE name = 'objects'").fetchone()
    relaxed = (orig.replace(") STRICT,", "),").replace("CHECK (length(name) BETWEEN 2 AND 59)", "")
               )
    con.execute("PRAGMA writable_schema=ON")
    con.execute("UPDATE sqlite_schema SET sql = ? WHERE name = 'objects'", (relaxed,))
    con.execute("PRAGMA writable_schema=RESET")
    write(con)
    con.execute("PRAGMA writable_schema=ON")
    con.execute("UPDATE sqlite_schema SET sql = ? WHERE name = 'objects'", (orig,))
    con.execute("PRAGMA writable_schema=RESET")


def forge_identities(con, write):
    """Like forge, for the identities table: NOT NULL and STRICT dropped while writing."""
    (orig,) = con.execute("SELECT sql FROM sqlite_schema WHERE name = 'identities'").fetchone()
    relaxed = orig.replace(") STRICT,", "),").replace("NOT NULL", "")
    con.execute("PRAGMA writable_schema=ON")
    con.execute("UPDATE sqlite_schema SET sql = ? WHERE name = 'identities'", (relaxed,))
    con.execute("PRAGMA writable_schema=RESET")
    write(con)
    con.execute("PRAGMA writable_schema=ON")
    con.execute("UPDATE sqlite_schema SET sql = ? WHERE name = 'identities'", (orig,))
    con.execute("PRAGMA writable_schema=RESET")


def journal_bytes(build, tmp, keep_wal=False, **kw):
    path = os.path.join(tmp, "journal.db")
    for ext in ("", "-wal", "-shm"):
        if os.path.exists(path + ext):
            os.unlink(path + ext)
    con = new_journal(path, **kw)
    if keep_wal:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.execute("PRAGMA wal_autocheckpoint=0")
    build(con)
    if keep_wal:
        # The files a SIGKILLed manager leaves: rows only in the WAL.
        db = open(path, "rb").read()
        wal = open(path + "-wal", "rb").read()
        con.close()
        return db + WAL_MARK + wal
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)") if kw.get("wal", True) else None
    con.close()
    return open(path, "rb").read()


def journal_seeds(tmp):
    names = [b"/torch_1234_%d_0" % i for i in range(5)]

    def rows(rs):
        return lambda con: add_rows(con, rs)

    def sql(*stmts):
        def b(con):
            for s in stmts:
                con.execute(s)
        return b

    # Stored as any writer may: valid lengths, any bytes. Forged: what the schema refuses.
    hostile = [b"\x00" * 59, b"/a\x00b", b"/\xff\xfe", b"/..", b"/a/b", b"/" + b"z" * 58]
    forged = ["/as_text", 42, 1.5, b"", b"\x2f" + b"x" * 62, b"/" + b"y" * 63,
              b"/" + b"z" * 59]
    seeds = {
        "empty_ok": journal_bytes(lambda con: None, tmp),
        "five_names": journal_bytes(rows(names), tmp),
        "five_names_4k_pages": journal_bytes(rows(names), tmp, page_size=4096),
        "uncheckpointed_wal": journal_bytes(rows(names), tmp, keep_wal=True),
        "rollback_mode": journal_bytes(rows(names), tmp, wal=False),
        "hostile_rows": journal_bytes(rows(hostile), tmp),
        "forged_rows": journal_bytes(lambda con: forge(con, rows(forged)), tmp),
        "huge_row": journal_bytes(lambda con: forge(con, rows([b"\0" * 66000])), tmp,
                                  page_size=4096),
        "future_schema": journal_bytes(sql("PRAGMA user_version=5"), tmp),
        "development_v2": journal_bytes(sql("PRAGMA user_version=2"), tmp),
        "v1_five_names": journal_bytes(rows(names), tmp, v1=True),
        "v1_uncheckpointed_wal": journal_bytes(rows(names), tmp, keep_wal=True, v1=True),
        "v1_claims_v3": journal_bytes(sql("PRAGMA user_version=3"), tmp, v1=True),
        "current_claims_v1": journal_bytes(sql("PRAGMA user_version=1"), tmp),
        "v3_five_names": journal_bytes(rows(names), tmp, v3=True),
        "v3_uncheckpointed_wal": journal_bytes(rows(names), tmp, keep_wal=True, v3=True),
        "v3_claims_v4": journal_bytes(sql("PRAGMA user_version=4"), tmp, v3=True),
        "current_claims_v3": journal_bytes(sql("PRAGMA user_version=3"), tmp),
        "manager_row_parent_uid_out_of_range": journal_bytes(
            sql("UPDATE manager SET parent_uid = 4294967296"), tmp),
        "manager_row_userns_as_text": journal_bytes(
            sql("UPDATE manager SET user_ns = 'ns', shm_ino = x'01'"), tmp),
        "identified_rows": journal_bytes(sql(
            "INSERT INTO objects VALUES (x'2f69', 1, 1700000000), (x'2f6a', 1, 1700000000),"
            " (x'2f6b', 1, 1)",
            "INSERT INTO identities VALUES (x'2f69', 1700000000, 77, 1700000001000000000),"
            " (x'2f6b', 2, -1, -9), (x'2f6c', 1, 5, 5)"), tmp),
        "half_identity": journal_bytes(lambda con: forge_identities(con, sql(
            "INSERT INTO objects VALUES (x'2f68', 1, 1), (x'2f67', 1, 1)",
            "INSERT INTO identities VALUES (x'2f68', 1, 5, NULL), (x'2f67', 1, 'x', 5)")),
            tmp),
        "foreign_app": journal_bytes(sql("PRAGMA application_id=7"), tmp),
        "relaxed_schema": journal_bytes(sql(
            "ALTER TABLE objects RENAME TO o2", "DROP TABLE o2",
            "CREATE TABLE objects (id INTEGER PRIMARY KEY, name, client_pid, registered_at)",
            "INSERT INTO objects VALUES (1, NULL, 1, 1), (2, '/a', 1, 1), (3, '/a', 1, 1)"), tmp),
        "trigger": journal_bytes(sql(
            "CREATE TRIGGER t AFTER DELETE ON objects BEGIN INSERT INTO objects"
            "(name, client_pid, registered_at) VALUES (x'2f65746300', 1, 1); END"), tmp),
        "manager_row_text_uid": journal_bytes(sql("UPDATE manager SET owner_uid = 'root'"), tmp),
        "manager_row_bad_boot": journal_bytes(sql("UPDATE manager SET boot_id = x'00'"), tmp),
        "manager_row_missing": journal_bytes(sql("DELETE FROM manager"), tmp),
        "wrong_types_everywhere": journal_bytes(lambda con: forge(con, sql(
            "INSERT INTO objects(name, client_pid, registered_at) VALUES"
            " (x'2f6f6b', 'pid', 'then'), (x'2f6f6b32', 1.5, x'00')")), tmp),
    }
    return seeds


def reclaim_seeds():
    def row(t, payload=b""):
        return bytes([t, len(payload)]) + payload

    known = b"".join(row(6, bytes([i])) for i in range(22))
    blobs = row(0, b"/victim") + row(0, b"/a") + row(0, b"/\xff\xfe") + row(0, b"/../outside/victim")
    mixed = row(1, b"/b") + row(2, b"\x07") + row(3, b"abc") + row(4) + row(0, b"/x (deleted)")
    return {
        "plain": bytes([0, 0]) + blobs,
        "known_names": bytes([0, 0]) + known,
        "dry_run": bytes([0, 1]) + blobs + known,
        "adopt_in_use": bytes([0, 2 | 4 | 8]) + blobs,
        "in_use_kept": bytes([0, 4 | 32]) + blobs + mixed,
        "wrong_types": bytes([0, 0]) + mixed,
        "huge": bytes([0, 0]) + row(5, b"\x01") + blobs,
        "pid_as_text": bytes([0, 0]) + row(0x40, b"/victim"),
        "wrong_identity": bytes([0, 0x80]) + blobs + known,
        "wrong_identity_adopt": bytes([0, 0x80 | 2 | 4]) + blobs,
        **{"damage_%d" % d: bytes([d, 0]) + blobs for d in range(7, 16)},
    }


def inuse_seeds():
    # fuzz_inuse.c turns SHMDEV into the fake shm filesystem's MAJ:MIN and "@k" fd lines
    # into links to its fake object fk.
    def line(path, inode=1, dev=b"SHMDEV"):
        return b"7f0000000000-7f0000001000 rw-s 00000000 %s %d                    %s\n" % (dev, inode, path)

    maps = (b"55d0c0000000-55d0c0001000 r--p 00000000 08:01 123 /usr/bin/python3\n"
            + line(b"/dev/shm/torch_1_2_3", 4242) + line(b"/dev/shm/torch_4 (deleted)", 7)
            + line(b"/elsewhere/bind/of/shm", 99) + line(b"/dev/shm/other_fs", 5, b"00:01")
            + b"7fff00000000-7fff00001000 rw-p 00000000 00:00 0 [stack]\n"
            + b"7f00-7f01 rw-s 0 SHMDEV SHMDEV SHMDEV 77\n"
            + b"7f00-7f01 rw-s 0 SHMDEV 18446744073709551616 /overflow\n"
            + b"7f00-7f01 rw-s 0 SHMDEV 12x /not-a-number\n"
            + b"7f00-7f01 rw-s 0 SHMDEV 5")
    fds = b"\n".join([b"@0", b"@3", b"socket:[12345]", b"/dev/shm/x (deleted)",
                      b"/dev/null", b"/nonexistent/target", b"@7"])
    return {
        "maps_and_fds": maps + FD_MARK + fds,
        "maps_only": maps,
        "fds_only": FD_MARK + fds,
        "no_newline": line(b"/dev/shm/last")[:-1],
    }


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "seeds")
    tmp = tempfile.mkdtemp(prefix="shmw-seeds-")
    try:
        sets = {"fuzz_wire": wire_seeds(), "fuzz_journal": journal_seeds(tmp),
                "fuzz_reclaim": reclaim_seeds(), "fuzz_inuse": inuse_seeds()}
    finally:
        shutil.rmtree(tmp)
    for harness, seeds in sets.items():
        d = os.path.join(out, harness)
        os.makedirs(d, exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        print("%s: %d seeds, %d bytes" % (d, len(seeds), sum(map(len, seeds.values()))))


if __name__ == "__main__":
    main()
