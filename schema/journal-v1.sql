-- schema/journal.sql: the layout of a manager's journal, the one source of truth.
-- The build embeds this file verbatim; journal_create() runs it once, inside one
-- transaction, on a new empty database, and untrusted readers compare the schema of a
-- journal they open against a fresh in-memory database built from this same text.
-- Bump user_version on any change, comments inside the CREATE statements included (SQLite
-- keeps their text, and readers compare it): a reader refuses a journal of another version.

PRAGMA application_id = 1936223607;   -- 0x73686d77, 'shmw': marks a shmwarden journal
PRAGMA user_version = 1;              -- the schema version (JOURNAL_SCHEMA_VERSION)

-- One row: who wrote this journal, so a later reader can decide what it may reclaim.
CREATE TABLE manager (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    owner_uid   INTEGER NOT NULL,     -- the manager's uid; must match the file's owner
    manager_pid INTEGER NOT NULL,     -- informational: liveness is decided by the lock
    boot_id     TEXT    NOT NULL,     -- /proc/sys/kernel/random/boot_id at creation
    created_at  INTEGER NOT NULL      -- unix seconds
);

-- One row per registered shared-memory object that may still exist, keyed by its name:
-- one b-tree, so a register or free dirties one page, not a table page and an index
-- page (the commit per register is the manager's largest cost). STRICT and the CHECK
-- hold every row to a 2..59-byte blob, and PRAGMA quick_check verifies both on every
-- journal a reader does not trust, so no reader ever meets a row that is not a name.
CREATE TABLE objects (
    name          BLOB    PRIMARY KEY NOT NULL CHECK (length(name) BETWEEN 2 AND 59),
    client_pid    INTEGER NOT NULL,     -- SO_PEERCRED pid of the registering connection
    registered_at INTEGER NOT NULL      -- unix seconds
) STRICT, WITHOUT ROWID;
