//! The store's schema: the migrations that bring a file up to this build's version, and
//! the read-only check that a file found at the configured path is one of ours.

use rusqlite::{Connection, TransactionBehavior};

use super::{StoreError, open_error};

/// The schema version this build writes, kept in `PRAGMA user_version`.
pub(in crate::store) const SCHEMA_VERSION: i64 = 7;

/// The tables a conversation store holds.
const OUR_TABLES: [&str; 7] = [
    "collections",
    "conversations",
    "media",
    "messages",
    "spend",
    "spend_reservations",
    "tasks",
];

/// How many table names a refusal shows.
const SHOWN_TABLES: usize = 7;

/// The schema of version 1.
const SCHEMA_V1: &str = "
CREATE TABLE IF NOT EXISTS conversations (
    id         TEXT    PRIMARY KEY NOT NULL,
    title      TEXT    NOT NULL,
    model      TEXT    NOT NULL,
    turns      INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    touched    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS conversations_by_recency
    ON conversations (touched DESC);
CREATE INDEX IF NOT EXISTS conversations_by_update
    ON conversations (updated_at);
CREATE TABLE IF NOT EXISTS messages (
    conversation_id TEXT    NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq             INTEGER NOT NULL,
    body            TEXT    NOT NULL,
    PRIMARY KEY (conversation_id, seq)
) WITHOUT ROWID;
";

/// Version 2: a reply cut short (stalled, or past the deadline) keeps why, so it is never
/// taken for a finished answer. NULL for every complete message, old ones included.
const MIGRATION_V2: &str = "ALTER TABLE messages ADD COLUMN cut_off TEXT;";

/// Version 3: each conversation belongs to the principal that created them; rows from
/// before belong to `local` (stdio's principal). `touched` now orders each owner's
/// conversations, so one index on (owner, touched) serves listing, retention and the next
/// `touched`, and the global recency index goes.
const MIGRATION_V3: &str = "
ALTER TABLE conversations ADD COLUMN owner TEXT NOT NULL DEFAULT 'local';
CREATE INDEX IF NOT EXISTS conversations_by_owner
    ON conversations (owner, touched DESC);
DROP INDEX IF EXISTS conversations_by_recency;
";

/// Version 4: tasks (long calls a client polls), each owned by a principal. Times are unix
/// milliseconds; `outcome` is the JSON result (completed) or error (failed). Pruning by
/// expiry uses `tasks_by_expiry`.
const MIGRATION_V4: &str = "
CREATE TABLE IF NOT EXISTS tasks (
    id               TEXT    PRIMARY KEY NOT NULL,
    owner            TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    status_message   TEXT,
    outcome          TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    heartbeat_at     INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_by_expiry ON tasks (expires_at);
";

/// Version 5: media (speech, images) made for a principal, kept until `expires_at` (unix
/// milliseconds), with the total per owner bounded by evicting the oldest; and the Vultr
/// vector-store collections each principal created, so one never reaches another's (a
/// collection id belongs to one owner).
const MIGRATION_V5: &str = "
CREATE TABLE IF NOT EXISTS media (
    id         TEXT    PRIMARY KEY NOT NULL,
    owner      TEXT    NOT NULL,
    mime       TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    size       INTEGER NOT NULL,
    bytes      BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS media_by_owner ON media (owner, created_at);
CREATE INDEX IF NOT EXISTS media_by_expiry ON media (expires_at);
CREATE TABLE IF NOT EXISTS collections (
    id         TEXT    PRIMARY KEY NOT NULL,
    owner      TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS collections_by_owner ON collections (owner, created_at);
";

/// Version 6: the spend ledger. `spend` has one row per principal, model and UTC day
/// (days since 1970-01-01); `spend_reservations` holds the worst cases of calls in flight
/// until they settle, each counting until `expires_at` (unix seconds) at the latest.
const MIGRATION_V6: &str = "
CREATE TABLE IF NOT EXISTS spend (
    owner             TEXT    NOT NULL,
    day               INTEGER NOT NULL,
    model             TEXT    NOT NULL,
    usd               REAL    NOT NULL,
    calls             INTEGER NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    PRIMARY KEY (owner, day, model)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS spend_by_day ON spend (day);
CREATE TABLE IF NOT EXISTS spend_reservations (
    id         TEXT    PRIMARY KEY NOT NULL,
    owner      TEXT    NOT NULL,
    day        INTEGER NOT NULL,
    usd        REAL    NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS spend_reservations_by_owner ON spend_reservations (owner, day);
";

/// Version 7: the model that answered each reply (a fallback model when the one asked
/// for was unavailable).
const MIGRATION_V7: &str = "ALTER TABLE messages ADD COLUMN model TEXT;";

/// Refuses, without changing anything, a file that is not a conversation store or that a
/// newer build wrote. Ours: no tables yet, or only our tables with a schema version set
/// (we set it in the transaction that creates them).
pub(super) fn check_ours(conn: &Connection, label: &str) -> Result<(), StoreError> {
    let err = |source| open_error(label, source);
    let tables: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_schema
             WHERE type = 'table' AND name NOT LIKE 'sqlite!_%' ESCAPE '!' ORDER BY name",
        )
        .and_then(|mut stmt| {
            stmt.query_map([], |row| row.get(0))?
                .collect::<Result<_, _>>()
        })
        .map_err(err)?;
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(err)?;
    let ours = tables.is_empty()
        || (version >= 1 && tables.iter().all(|t| OUR_TABLES.contains(&t.as_str())));
    if !ours {
        let mut shown = tables
            .iter()
            .take(SHOWN_TABLES)
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        if tables.len() > SHOWN_TABLES {
            shown.push_str(&format!(" and {} more", tables.len() - SHOWN_TABLES));
        }
        return Err(StoreError::NotAStore {
            location: label.to_owned(),
            what: format!("an SQLite database this server did not create (tables: {shown})"),
        });
    }
    if version > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            location: label.to_owned(),
            found: version,
            understood: SCHEMA_VERSION,
        });
    }
    Ok(())
}

/// Brings the schema up to [`SCHEMA_VERSION`], keeping what is stored, and refuses files
/// from newer builds.
pub(super) fn migrate(conn: &mut Connection, label: &str) -> Result<(), StoreError> {
    let open_err = |source| open_error(label, source);
    // Immediate, so two processes opening a new file at once do not both create the schema.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(open_err)?;
    let found: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(open_err)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            location: label.to_owned(),
            found,
            understood: SCHEMA_VERSION,
        });
    }
    if found < 1 {
        tx.execute_batch(SCHEMA_V1).map_err(open_err)?;
    }
    // Files made before this index existed get it too: pruning by age uses it.
    tx.execute_batch(
        "CREATE INDEX IF NOT EXISTS conversations_by_update ON conversations (updated_at);",
    )
    .map_err(open_err)?;
    if found < 2 {
        tx.execute_batch(MIGRATION_V2).map_err(open_err)?;
    }
    if found < 3 {
        tx.execute_batch(MIGRATION_V3).map_err(open_err)?;
    }
    if found < 4 {
        tx.execute_batch(MIGRATION_V4).map_err(open_err)?;
    }
    if found < 5 {
        tx.execute_batch(MIGRATION_V5).map_err(open_err)?;
    }
    if found < 6 {
        tx.execute_batch(MIGRATION_V6).map_err(open_err)?;
    }
    if found < 7 {
        tx.execute_batch(MIGRATION_V7).map_err(open_err)?;
    }
    if found < SCHEMA_VERSION {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(open_err)?;
    }
    tx.commit().map_err(open_err)
}

/// The version 1 schema, for tests that make a file as an older build did.
#[cfg(test)]
pub(super) fn create_v1(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(SCHEMA_V1)?;
    conn.pragma_update(None, "user_version", 1)
}

/// The version 2 schema, for tests that make a file as an older build did.
#[cfg(test)]
pub(super) fn create_v2(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(SCHEMA_V1)?;
    conn.execute_batch(MIGRATION_V2)?;
    conn.pragma_update(None, "user_version", 2)
}
