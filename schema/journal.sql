-- schema/journal.sql: the layout of a manager's journal, the one source of truth.
-- The build embeds this file verbatim; journal_create() runs it once, inside one
-- transaction, on a new empty database, and untrusted readers compare the schema of a
-- journal they open against a fresh in-memory database built from this same text.
-- Bump user_version on any change, comments inside the CREATE statements included (SQLite
-- keeps their text, and readers compare it): a reader refuses a journal of another version.

PRAGMA application_id = 1936223607;   -- 0x73686d77, 'shmw': marks a shmwarden journal
PRAGMA user_version = 4;              -- the schema version (JOURNAL_SCHEMA_VERSION)
-- Version 1 (shmwarden 0.1.0) is kept verbatim in schema/journal-v1.sql, version 3
-- (shmwarden 0.2.0) in schema/journal-v3.sql: readers still reclaim such journals, with
-- the rules of their release where a fact is missing (identity; which /dev/shm
-- directory; which user namespace).
-- Version 2 was a development layout (identity columns in objects), never released and
-- not read.

-- One row: who wrote this journal, so a later reader can decide what it may reclaim.
CREATE TABLE manager (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    owner_uid   INTEGER NOT NULL,     -- the manager's uid; must match the file's owner
    manager_pid INTEGER NOT NULL,     -- informational: liveness is decided by the lock
    boot_id     TEXT    NOT NULL,     -- /proc/sys/kernel/random/boot_id at creation
    created_at  INTEGER NOT NULL,     -- unix seconds
    shm_dev     INTEGER NOT NULL,     -- st_dev of /dev/shm as the manager saw it: which
                                      -- shm filesystem the names below live in
    mnt_ns      INTEGER NOT NULL,     -- inode of the manager's /proc/self/ns/mnt (for reports)
    shm_ino     INTEGER NOT NULL,     -- st_ino of the /dev/shm directory it opened: which
                                      -- directory of that filesystem (a subdirectory
                                      -- bind-mounted as /dev/shm has its device, not this)
    user_ns     INTEGER NOT NULL,     -- inode of the manager's /proc/self/ns/user
    parent_uid  INTEGER NOT NULL,     -- owner_uid as the parent of that user namespace
                                      -- sees it (/proc/self/uid_map): -1 when unmapped
    shm_btime   INTEGER NOT NULL      -- birth time of that /dev/shm directory, unix ns
                                      -- (statx; 0 when not given): a tmpfs mounted anew
                                      -- may get a freed device number and the same root
                                      -- inode, never the same birth time
);

-- One row per registered shared-memory object that may still exist, keyed by its name:
-- one b-tree, so a register or free dirties one page, not a table page and an index
-- page (the commit per register is the manager's largest cost). STRICT and the CHECK
-- hold every row to a 2..59-byte blob, and PRAGMA quick_check verifies both on every
-- journal a reader does not trust, so no reader ever meets a row that is not a name.
-- registered_at is in microseconds (version 1: seconds): the grace of a name whose
-- object does not exist yet and the birth window of a row never identified count from
-- it to the microsecond, and the fraction tells apart two registrations of one name
-- within a second, which the identities below must.
CREATE TABLE objects (
    name          BLOB    PRIMARY KEY NOT NULL CHECK (length(name) BETWEEN 2 AND 59),
    client_pid    INTEGER NOT NULL,     -- SO_PEERCRED pid of the registering connection
    registered_at INTEGER NOT NULL      -- unix microseconds
) STRICT, WITHOUT ROWID;

-- Which object a registration means, once learned from statx off the hot path (the
-- prune tick, adoption, shutdown). A table of its own, so a
-- register or free still writes one row of one b-tree: the identity of a name counts
-- only while its registered_at is that of the name's row in objects (a registration of
-- the name again restarts the row and so forgets it), and journal_compact drops the
-- identities whose registration is gone.
CREATE TABLE identities (
    name          BLOB    PRIMARY KEY NOT NULL CHECK (length(name) BETWEEN 2 AND 59),
    registered_at INTEGER NOT NULL,     -- the registration it belongs to (objects')
    ino           INTEGER NOT NULL,     -- the object's inode number on the shm filesystem
    btime_ns      INTEGER NOT NULL      -- its birth time, nanoseconds since the epoch
) STRICT, WITHOUT ROWID;
