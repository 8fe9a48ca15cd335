//! The SQLite store, for a file or for `memory`: one row per conversation (its owner,
//! title, model, turn count, timestamps) and one row per message (the message as JSON,
//! with its position). Every statement but pruning names the owner, so no call reaches
//! another owner's rows.
//!
//! Several server processes may share one file: file stores use WAL mode, a 5 s busy
//! timeout and `BEGIN IMMEDIATE` for writes, and run their work on tokio's blocking
//! threads, since a write may wait for another process's lock. The file and its folder are
//! private to the system user running the server; a file that is not a conversation store
//! is refused before anything writes to it. `memory` is an SQLite in-memory database, so it
//! keeps exactly the file's rules (order, retention, cut-off notes); it never waits for
//! another process, so its work runs inline (the hop to a blocking thread costs more than
//! the work).

mod file;
mod schema;
mod tasks;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};

use super::conversation::{mark_cut_off, title_of};
use super::{
    Conversation, ConversationId, ConversationStore, ConversationSummary, Retention, StoreError,
    StoreLocation,
};
use crate::principal::Principal;
use crate::vultr::chat::Message;

pub(super) use tasks::open_task_store;

/// How long a write waits for another process's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

// Recency: `touched` counts every create and append of an owner's conversations (the
// next value is one look at the end of the owner's part of the `(owner, touched)`
// index), so two uses within the same second still come out in the order they
// happened, and `touched DESC` is most recently used first. The statements below that
// run on every use read only the owner's part of that index (a test pins their plans).

/// Saves a new conversation: id ?1, title ?2, model ?3, time ?4, owner ?5.
const INSERT_CONVERSATION: &str = "
    INSERT INTO conversations (id, title, model, turns, created_at, updated_at, owner, touched)
    VALUES (?1, ?2, ?3, 1, ?4, ?4, ?5,
        (SELECT COALESCE(MAX(touched), 0) + 1 FROM conversations WHERE owner = ?5))";

/// Counts one more turn of conversation ?1 of owner ?4 on model ?2 at time ?3.
const COUNT_TURN: &str = "
    UPDATE conversations SET turns = turns + 1, model = ?2, updated_at = ?3,
        touched = (SELECT COALESCE(MAX(touched), 0) + 1 FROM conversations WHERE owner = ?4)
    WHERE id = ?1 AND owner = ?4";

/// Up to ?2 summaries of owner ?1, most recently used first.
const LIST_OWNED: &str = "
    SELECT id, title, model, turns, created_at, updated_at
    FROM conversations WHERE owner = ?1 ORDER BY touched DESC LIMIT ?2";

/// Drops owner ?3's ?1 + 1 least recently used conversations, sparing ?2.
const DROP_OLDEST: &str = "
    DELETE FROM conversations WHERE owner = ?3 AND id IS NOT ?2 AND touched <=
        (SELECT touched FROM conversations WHERE owner = ?3
         ORDER BY touched ASC LIMIT 1 OFFSET ?1)";

/// Drops all but owner ?3's newest ?1 conversations, sparing ?2.
const DROP_PAST_NEWEST: &str = "
    DELETE FROM conversations WHERE owner = ?3 AND id IS NOT ?2 AND touched <=
        (SELECT touched FROM conversations WHERE owner = ?3
         ORDER BY touched DESC LIMIT 1 OFFSET ?1)";

/// Drops all but each owner's newest ?1 conversations, returning the owner of each.
const DROP_EVERY_EXCESS: &str = "
    DELETE FROM conversations WHERE rowid IN (
        SELECT row FROM (
            SELECT rowid AS row,
                   ROW_NUMBER() OVER (PARTITION BY owner ORDER BY touched DESC) AS position
            FROM conversations)
        WHERE position > ?1)
    RETURNING owner";

/// A clock giving unix seconds.
type Clock = Box<dyn Fn() -> i64 + Send + Sync>;

/// The system clock, in unix seconds.
fn system_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The SQLite conversation store; share it between tasks (it is `Send + Sync`).
pub struct SqliteStore {
    db: Arc<Database>,
    /// Whether work goes to a blocking thread (a file) or runs inline (memory).
    blocking: bool,
}

impl fmt::Debug for SqliteStore {
    /// Shows where the store is and its retention.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("location", &self.db.location)
            .field("retention", &self.db.retention)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating when missing) the store at `location`, keeping conversations per
    /// `retention`; a file is opened on a blocking thread.
    pub async fn open(location: &StoreLocation, retention: Retention) -> Result<Self, StoreError> {
        let db = match location {
            StoreLocation::InMemory => Database::open(location, retention)?,
            StoreLocation::File(_) | StoreLocation::Postgres(_) => {
                let location = location.clone();
                let label = location.to_string();
                tokio::task::spawn_blocking(move || Database::open(&location, retention))
                    .await
                    .map_err(|source| StoreError::Interrupted {
                        location: label,
                        source,
                    })??
            }
        };
        Ok(Self {
            db: Arc::new(db),
            blocking: matches!(location, StoreLocation::File(_)),
        })
    }

    /// Runs `work` on the database: on a blocking thread for a file, inline for memory.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        if !self.blocking {
            return work(&self.db);
        }
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || work(&db))
            .await
            .map_err(|source| StoreError::Interrupted {
                location: self.db.location.clone(),
                source,
            })?
    }

    /// Replaces the clock, so tests can move time; only before the store is shared.
    #[cfg(test)]
    fn set_clock(&mut self, clock: impl Fn() -> i64 + Send + Sync + 'static) {
        Arc::get_mut(&mut self.db)
            .expect("the clock is set before the store is shared")
            .now = Box::new(clock);
    }
}

#[async_trait]
impl ConversationStore for SqliteStore {
    async fn create(
        &self,
        owner: &Principal,
        model: &str,
        messages: &[Message],
        cut_off: Option<&str>,
    ) -> Result<ConversationId, StoreError> {
        let turn = Turn::encode(messages, cut_off)?;
        let title = title_of(messages);
        let (owner, model) = (owner.clone(), model.to_owned());
        self.run(move |db| db.create(&owner, &model, &title, &turn))
            .await
    }

    async fn append(
        &self,
        owner: &Principal,
        id: &ConversationId,
        model: &str,
        messages: &[Message],
        cut_off: Option<&str>,
    ) -> Result<(), StoreError> {
        let turn = Turn::encode(messages, cut_off)?;
        let (owner, id, model) = (owner.clone(), id.clone(), model.to_owned());
        self.run(move |db| db.append(&owner, &id, &model, &turn))
            .await
    }

    async fn get(
        &self,
        owner: &Principal,
        id: &ConversationId,
    ) -> Result<Conversation, StoreError> {
        let (owner, id) = (owner.clone(), id.clone());
        self.run(move |db| db.get(&owner, &id)).await
    }

    async fn list(
        &self,
        owner: &Principal,
        limit: usize,
    ) -> Result<Vec<ConversationSummary>, StoreError> {
        let owner = owner.clone();
        self.run(move |db| db.list(&owner, limit)).await
    }

    async fn delete(&self, owner: &Principal, id: &ConversationId) -> Result<bool, StoreError> {
        let (owner, id) = (owner.clone(), id.clone());
        self.run(move |db| db.delete(&owner, &id)).await
    }

    async fn prune(&self) -> Result<usize, StoreError> {
        self.run(Database::prune).await
    }
}

/// A turn ready to write: its messages as JSON text, and why the last was cut short.
struct Turn {
    bodies: Vec<String>,
    cut_off: Option<String>,
}

impl Turn {
    /// Serialises each message to JSON text.
    fn encode(messages: &[Message], cut_off: Option<&str>) -> Result<Self, StoreError> {
        let bodies = messages
            .iter()
            .map(|m| serde_json::to_string(m).map_err(|source| StoreError::Encode { source }))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            bodies,
            cut_off: cut_off.map(str::to_owned),
        })
    }
}

/// The connection and what every statement needs; its methods block.
struct Database {
    conn: Mutex<Connection>,
    /// How many conversations each owner has, when no other process can change that
    /// (memory): retention then needs no walk of an owner's newest N to know whether any
    /// must go. Locked only with the connection locked, and changed only after a commit.
    private_counts: Option<Mutex<HashMap<String, i64>>>,
    location: String,
    retention: Retention,
    now: Clock,
}

impl Database {
    /// Opens (creating when missing) the database at `location`.
    fn open(location: &StoreLocation, retention: Retention) -> Result<Self, StoreError> {
        let label = location.to_string();
        let open_err = |source| open_error(&label, source);
        let mut conn = match location {
            StoreLocation::Postgres(_) => {
                return Err(StoreError::Open {
                    location: label,
                    source: "this is a Postgres URL, which the Postgres store opens".into(),
                });
            }
            StoreLocation::InMemory => Connection::open_in_memory().map_err(open_err)?,
            StoreLocation::File(path) => {
                file::prepare(path, &label)?;
                let conn = Connection::open(path).map_err(open_err)?;
                conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
                let mode: String = conn
                    .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
                    .map_err(open_err)?;
                if !mode.eq_ignore_ascii_case("wal") {
                    tracing::warn!(location = %label, mode, "conversation store is not in WAL mode");
                }
                conn.pragma_update(None, "synchronous", "NORMAL")
                    .map_err(open_err)?;
                conn
            }
        };
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(open_err)?;
        schema::migrate(&mut conn, &label)?;
        let private_counts =
            matches!(location, StoreLocation::InMemory).then(|| Mutex::new(HashMap::new()));
        Ok(Self {
            conn: Mutex::new(conn),
            private_counts,
            location: label,
            retention,
            now: Box::new(system_now),
        })
    }

    /// Inserts a new conversation of `owner` (turn 1) and applies retention, sparing it.
    fn create(
        &self,
        owner: &Principal,
        model: &str,
        title: &str,
        turn: &Turn,
    ) -> Result<ConversationId, StoreError> {
        const ACTION: &str = "saving a new conversation";
        let id = ConversationId::generate();
        let now = (self.now)();
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.db(ACTION, e))?;
        tx.prepare_cached(INSERT_CONVERSATION)
            .and_then(|mut insert| {
                insert.execute(params![id.as_ref(), title, model, now, owner.as_str()])
            })
            .map_err(|e| self.db(ACTION, e))?;
        insert_messages(&tx, &id, 0, turn).map_err(|e| self.db(ACTION, e))?;
        let expired =
            drop_expired(&tx, self.retention, now, Some(&id)).map_err(|e| self.db(ACTION, e))?;
        let count = self
            .count(owner)
            .map(|n| n + 1 - sql_count(expired.iter().filter(|o| *o == owner.as_str()).count()));
        let excess =
            drop_excess(&tx, owner, self.retention, &id, count).map_err(|e| self.db(ACTION, e))?;
        tx.commit().map_err(|e| self.db(ACTION, e))?;
        self.counted(owner.as_str(), 1 - sql_count(excess));
        self.forget(&expired);
        Ok(id)
    }

    /// Adds a turn to the end of `owner`'s conversation `id`.
    fn append(
        &self,
        owner: &Principal,
        id: &ConversationId,
        model: &str,
        turn: &Turn,
    ) -> Result<(), StoreError> {
        const ACTION: &str = "adding messages to a conversation";
        let now = (self.now)();
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.db(ACTION, e))?;
        let next: i64 = tx
            .prepare_cached(
                "SELECT COALESCE((SELECT MAX(seq) + 1 FROM messages WHERE conversation_id = ?1), 0)
                 FROM conversations WHERE id = ?1 AND owner = ?2",
            )
            .and_then(|mut select| {
                select.query_row([id.as_ref(), owner.as_str()], |row| row.get(0))
            })
            .optional()
            .map_err(|e| self.db(ACTION, e))?
            .ok_or_else(|| not_found(id))?;
        insert_messages(&tx, id, next, turn).map_err(|e| self.db(ACTION, e))?;
        tx.prepare_cached(COUNT_TURN)
            .and_then(|mut update| update.execute(params![id.as_ref(), model, now, owner.as_str()]))
            .map_err(|e| self.db(ACTION, e))?;
        tx.commit().map_err(|e| self.db(ACTION, e))
    }

    /// `owner`'s conversation `id`: its summary and messages, a cut-off reply marked as such.
    fn get(&self, owner: &Principal, id: &ConversationId) -> Result<Conversation, StoreError> {
        const ACTION: &str = "reading a conversation";
        let mut conn = self.lock();
        // One read transaction, so a concurrent delete cannot split summary from messages.
        let tx = conn.transaction().map_err(|e| self.db(ACTION, e))?;
        let summary = tx
            .query_row(
                "SELECT id, title, model, turns, created_at, updated_at
                 FROM conversations WHERE id = ?1 AND owner = ?2",
                [id.as_ref(), owner.as_str()],
                summary_from_row,
            )
            .optional()
            .map_err(|e| self.db(ACTION, e))?
            .ok_or_else(|| not_found(id))?;
        let rows = {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT seq, body, cut_off FROM messages WHERE conversation_id = ?1 ORDER BY seq",
                )
                .map_err(|e| self.db(ACTION, e))?;
            stmt.query_map([id.as_ref()], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, Option<String>>(2)?,
                ))
            })
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(|e| self.db(ACTION, e))?
        };
        tx.finish().map_err(|e| self.db(ACTION, e))?;
        let messages = rows
            .into_iter()
            .map(|(seq, body, cut_off)| {
                let mut message: Message =
                    serde_json::from_str(&body).map_err(|source| StoreError::CorruptMessage {
                        id: id.clone(),
                        seq,
                        source,
                    })?;
                if let Some(reason) = cut_off {
                    mark_cut_off(&mut message, &reason);
                }
                Ok(message)
            })
            .collect::<Result<_, _>>()?;
        Ok(Conversation { summary, messages })
    }

    /// Up to `limit` of `owner`'s summaries, most recently used first.
    fn list(
        &self,
        owner: &Principal,
        limit: usize,
    ) -> Result<Vec<ConversationSummary>, StoreError> {
        const ACTION: &str = "listing conversations";
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(LIST_OWNED)
            .map_err(|e| self.db(ACTION, e))?;
        stmt.query_map(params![owner.as_str(), sql_count(limit)], summary_from_row)
            .and_then(Iterator::collect)
            .map_err(|e| self.db(ACTION, e))
    }

    /// Deletes `owner`'s conversation `id` and its messages; true when it existed. Works
    /// on a full disk too, so that deleting is how a user makes room.
    fn delete(&self, owner: &Principal, id: &ConversationId) -> Result<bool, StoreError> {
        const ACTION: &str = "deleting a conversation";
        let conn = self.lock();
        let delete = || {
            conn.prepare_cached("DELETE FROM conversations WHERE id = ?1 AND owner = ?2")
                .and_then(|mut delete| delete.execute([id.as_ref(), owner.as_str()]))
        };
        let deleted = match delete() {
            Err(error) if out_of_space(&error) => {
                // The write-ahead log cannot grow. Copying it into the database and
                // truncating it frees its space for the delete; truncating again after
                // gives the delete's own log space back for the next save.
                tracing::warn!(%error, location = %self.location, "the disk looks full; truncating the conversation store's log to delete");
                truncate_log(&conn);
                let deleted = delete().map_err(|e| self.db(ACTION, e))?;
                truncate_log(&conn);
                deleted
            }
            outcome => outcome.map_err(|e| self.db(ACTION, e))?,
        };
        self.counted(owner.as_str(), -sql_count(deleted));
        Ok(deleted > 0)
    }

    /// Drops conversations not updated within `max_age`, and all but each owner's newest
    /// `max_conversations`; returns how many went.
    fn prune(&self) -> Result<usize, StoreError> {
        const ACTION: &str = "pruning old conversations";
        let now = (self.now)();
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.db(ACTION, e))?;
        let expired =
            drop_expired(&tx, self.retention, now, None).map_err(|e| self.db(ACTION, e))?;
        let excess = drop_every_excess(&tx, self.retention).map_err(|e| self.db(ACTION, e))?;
        tx.commit().map_err(|e| self.db(ACTION, e))?;
        self.forget(&expired);
        self.forget(&excess);
        Ok(expired.len() + excess.len())
    }

    /// How many conversations `owner` has, when this store alone can change that.
    fn count(&self, owner: &Principal) -> Option<i64> {
        let counts = self.private_counts.as_ref()?;
        let counts = counts.lock().unwrap_or_else(PoisonError::into_inner);
        Some(counts.get(owner.as_str()).copied().unwrap_or(0))
    }

    /// Records that `change` conversations of `owner` were added (or, negative, removed).
    fn counted(&self, owner: &str, change: i64) {
        let Some(counts) = &self.private_counts else {
            return;
        };
        if change == 0 {
            return;
        }
        let mut counts = counts.lock().unwrap_or_else(PoisonError::into_inner);
        match counts.get_mut(owner) {
            Some(count) => {
                *count += change;
                if *count <= 0 {
                    counts.remove(owner);
                }
            }
            None if change > 0 => {
                counts.insert(owner.to_owned(), change);
            }
            None => {}
        }
    }

    /// Records that conversations of these owners (one entry per conversation) were removed.
    fn forget(&self, owners: &[String]) {
        for owner in owners {
            self.counted(owner, -1);
        }
    }

    /// The connection, recovering it if a panic poisoned the lock (transactions roll back on drop).
    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wraps a database error, telling a lock timeout apart from other failures.
    fn db(&self, action: &'static str, source: rusqlite::Error) -> StoreError {
        let location = self.location.clone();
        match source.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy {
                location,
                action,
                waited: BUSY_TIMEOUT,
            },
            _ => StoreError::Database {
                location,
                action,
                source: Box::new(SqliteFailure(source)),
            },
        }
    }
}

/// What SQLite said, shown without the statement it was given (rusqlite quotes the whole
/// SQL of a statement that does not fit the file, which for the schema is a page of text).
#[derive(Debug)]
struct SqliteFailure(rusqlite::Error);

impl fmt::Display for SqliteFailure {
    /// SQLite's message, without the SQL.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            rusqlite::Error::SqlInputError { msg, .. } => f.write_str(msg),
            other => other.fmt(f),
        }
    }
}

impl std::error::Error for SqliteFailure {
    /// rusqlite's own error.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Wraps an error met while opening the store, telling a lock timeout apart.
fn open_error(label: &str, source: rusqlite::Error) -> StoreError {
    match source.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy {
            location: label.to_owned(),
            action: "opening it",
            waited: BUSY_TIMEOUT,
        },
        _ => StoreError::Open {
            location: label.to_owned(),
            source: Box::new(SqliteFailure(source)),
        },
    }
}

/// Whether a write failed for want of disk space (a failed write is an I/O error when
/// not even part of it fitted).
fn out_of_space(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::DiskFull | ErrorCode::SystemIoFailure)
    )
}

/// Copies the write-ahead log into the database and truncates it to nothing (best effort).
fn truncate_log(conn: &Connection) {
    if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::warn!(%error, "could not truncate the conversation store's log");
    }
}

/// Inserts a turn's messages at positions `first`, `first + 1`, ...; the last one marked
/// cut off when the turn says why.
fn insert_messages(
    conn: &Connection,
    id: &ConversationId,
    first: i64,
    turn: &Turn,
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO messages (conversation_id, seq, body, cut_off) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let last = turn.bodies.len().saturating_sub(1);
    for (i, (seq, body)) in (first..).zip(&turn.bodies).enumerate() {
        let cut = if i == last {
            turn.cut_off.as_deref()
        } else {
            None
        };
        stmt.execute(params![id.as_ref(), seq, body, cut])?;
    }
    Ok(())
}

/// Drops every conversation not updated within the retention's `max_age`, whoever owns
/// it, except `keep` (the conversation being created); returns the owner of each one
/// dropped.
fn drop_expired(
    conn: &Connection,
    retention: Retention,
    now: i64,
    keep: Option<&ConversationId>,
) -> rusqlite::Result<Vec<String>> {
    let keep = keep.map(AsRef::<str>::as_ref);
    let max_age = i64::try_from(retention.max_age.as_secs()).unwrap_or(i64::MAX);
    let cutoff = now.saturating_sub(max_age);
    // Cached: this runs on every new conversation, and compiling the SQL each time cost
    // more than running it.
    conn.prepare_cached(
        "DELETE FROM conversations WHERE updated_at < ?1 AND id IS NOT ?2 RETURNING owner",
    )?
    .query_map(params![cutoff, keep], |row| row.get(0))?
    .collect()
}

/// Drops all but `owner`'s newest `max_conversations`, sparing `keep` (the conversation
/// being created); `count` is how many `owner` has, when known. Returns how many went.
fn drop_excess(
    conn: &Connection,
    owner: &Principal,
    retention: Retention,
    keep: &ConversationId,
    count: Option<i64>,
) -> rusqlite::Result<usize> {
    let max = sql_count(retention.max_conversations);
    let (owner, keep) = (owner.as_str(), keep.as_ref());
    match count {
        // The count is known: nothing to walk unless some must go, and then only the
        // excess, from the old end of the owner's part of the recency index.
        Some(count) => {
            let excess = count - max;
            if excess <= 0 {
                return Ok(0);
            }
            conn.prepare_cached(DROP_OLDEST)?
                .execute(params![excess - 1, keep, owner])
        }
        // `touched` is unique per owner and orders by recency, so everything past the
        // owner's newest N is what is at or below their N+1-th `touched`: one walk of the
        // owner's part of the recency index, no row lookups.
        None => conn
            .prepare_cached(DROP_PAST_NEWEST)?
            .execute(params![max, keep, owner]),
    }
}

/// Drops all but each owner's newest `max_conversations`; returns the owner of each one
/// dropped.
fn drop_every_excess(conn: &Connection, retention: Retention) -> rusqlite::Result<Vec<String>> {
    conn.prepare(DROP_EVERY_EXCESS)?
        .query_map([sql_count(retention.max_conversations)], |row| row.get(0))?
        .collect()
}

/// A count as an SQL integer, saturating.
fn sql_count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Reads a summary from `id, title, model, turns, created_at, updated_at`.
fn summary_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ConversationSummary> {
    Ok(ConversationSummary {
        id: ConversationId::stored(row.get(0)?),
        title: row.get(1)?,
        model: row.get(2)?,
        turns: row.get(3)?,
        created_at: row.get(4)?,
        updated_at: row.get(5)?,
    })
}

/// The error for an id that is not in the store.
fn not_found(id: &ConversationId) -> StoreError {
    StoreError::NotFound { id: id.clone() }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::atomic::{AtomicI64, Ordering};

    use serde_json::{Value, json};
    use tempfile::TempDir;

    use super::schema::SCHEMA_VERSION;
    use super::*;
    use crate::store::contract::{self, alice, as_json, bob, msg, user};
    use crate::store::location::LOCATION_SETTING;

    const DAY: i64 = 24 * 60 * 60;

    fn generous() -> Retention {
        Retention {
            max_conversations: 1000,
            max_age: Duration::from_secs(365 * DAY as u64),
        }
    }

    async fn memory_store() -> SqliteStore {
        SqliteStore::open(&StoreLocation::InMemory, generous())
            .await
            .unwrap()
    }

    /// A memory store whose clock the test moves by storing into the returned cell.
    async fn store_with_clock(retention: Retention) -> (SqliteStore, Arc<AtomicI64>) {
        let mut store = SqliteStore::open(&StoreLocation::InMemory, retention)
            .await
            .unwrap();
        let clock = Arc::new(AtomicI64::new(1_700_000_000));
        let shared = Arc::clone(&clock);
        store.set_clock(move || shared.load(Ordering::SeqCst));
        (store, clock)
    }

    /// A scratch directory, removed on drop.
    fn scratch() -> TempDir {
        tempfile::Builder::new()
            .prefix("vultr-mcp-conv-")
            .tempdir()
            .unwrap()
    }

    /// A file store location in `dir`.
    fn file_in(dir: &TempDir) -> StoreLocation {
        StoreLocation::File(dir.path().join("conversations.sqlite3"))
    }

    /// The ids `store` lists for alice, most recently used first.
    async fn listed(store: &SqliteStore) -> Vec<ConversationId> {
        listed_for(store, &alice()).await
    }

    /// The ids `store` lists for `owner`, most recently used first.
    async fn listed_for(store: &SqliteStore, owner: &Principal) -> Vec<ConversationId> {
        let summaries = store.list(owner, usize::MAX).await.unwrap();
        summaries.into_iter().map(|s| s.id).collect()
    }

    /// A pragma's value on the store's connection.
    fn pragma<T: rusqlite::types::FromSql>(store: &SqliteStore, name: &str) -> T {
        store
            .db
            .lock()
            .pragma_query_value(None, name, |row| row.get(0))
            .unwrap()
    }

    #[tokio::test]
    async fn a_memory_store_keeps_the_contract() {
        let store = SqliteStore::open(&StoreLocation::InMemory, contract::RETENTION)
            .await
            .unwrap();
        contract::check_contract(&store).await;
    }

    #[tokio::test]
    async fn a_file_store_keeps_the_contract() {
        let dir = scratch();
        let store = SqliteStore::open(&file_in(&dir), contract::RETENTION)
            .await
            .unwrap();
        contract::check_contract(&store).await;
    }

    #[test]
    fn the_store_and_its_errors_can_be_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<SqliteStore>();
        assert_send_sync::<StoreError>();
    }

    #[tokio::test]
    async fn work_that_dies_on_its_blocking_thread_is_a_store_error_naming_the_file() {
        let dir = scratch();
        let location = file_in(&dir);
        let store = SqliteStore::open(&location, generous()).await.unwrap();
        let err = store
            .run(|_| -> Result<(), StoreError> { panic!("worker died") })
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Interrupted { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("the conversation store `{location}` stopped")),
            "{text}"
        );
        assert!(!text.contains("invalid arguments"), "{text}");
        // The store still works afterwards.
        assert!(store.list(&alice(), 1).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn appending_updates_the_time_but_not_the_creation_time() {
        let (store, clock) = store_with_clock(generous()).await;
        let id = store
            .create(&alice(), "m", &[user("hi")], None)
            .await
            .unwrap();
        clock.fetch_add(60, Ordering::SeqCst);
        store
            .append(&alice(), &id, "m", &[user("again")], None)
            .await
            .unwrap();
        let summary = store.get(&alice(), &id).await.unwrap().summary;
        assert_eq!(summary.created_at, 1_700_000_000);
        assert_eq!(summary.updated_at, 1_700_000_060);
    }

    #[tokio::test]
    async fn the_list_shows_the_most_recently_updated_first_then_the_most_recently_created() {
        let (store, clock) = store_with_clock(generous()).await;
        let older = store
            .create(&alice(), "m", &[user("older")], None)
            .await
            .unwrap();
        clock.fetch_add(10, Ordering::SeqCst);
        let newer = store
            .create(&alice(), "m", &[user("newer")], None)
            .await
            .unwrap();
        clock.fetch_add(10, Ordering::SeqCst);
        let newest = store
            .create(&alice(), "m", &[user("newest")], None)
            .await
            .unwrap();
        clock.fetch_add(10, Ordering::SeqCst);
        store
            .append(&alice(), &older, "m", &[user("bump")], None)
            .await
            .unwrap();
        let ids = |limit| {
            let store = &store;
            async move {
                let summaries = store.list(&alice(), limit).await.unwrap();
                summaries.into_iter().map(|s| s.id).collect::<Vec<_>>()
            }
        };
        assert_eq!(
            ids(10).await,
            [older.clone(), newest.clone(), newer.clone()]
        );
        assert_eq!(ids(2).await, [older.clone(), newest.clone()]);
        assert!(ids(0).await.is_empty());

        // Same update time: the one created later comes first.
        store
            .append(&alice(), &newer, "m", &[user("bump")], None)
            .await
            .unwrap();
        assert_eq!(ids(2).await, [newer, older]);
    }

    #[tokio::test]
    async fn conversations_created_in_the_same_second_list_newest_first() {
        let (store, _clock) = store_with_clock(generous()).await;
        let a = store
            .create(&alice(), "m", &[user("a")], None)
            .await
            .unwrap();
        let b = store
            .create(&alice(), "m", &[user("b")], None)
            .await
            .unwrap();
        assert_eq!(listed(&store).await, [b, a]);
    }

    #[tokio::test]
    async fn deleting_leaves_no_orphaned_messages() {
        let store = memory_store().await;
        let gone = store
            .create(&alice(), "m", &[user("a"), user("b")], None)
            .await
            .unwrap();
        assert!(store.delete(&alice(), &gone).await.unwrap());
        let orphans: i64 = store
            .db
            .lock()
            .query_row(
                "SELECT COUNT(*) FROM messages WHERE conversation_id = ?1",
                [gone.as_ref()],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(orphans, 0);
    }

    /// Checks the memory store's own count of each owner's conversations against the
    /// database; returns alice's and bob's.
    fn counts_match(store: &SqliteStore) -> (i64, i64) {
        let [alices, bobs] = [alice(), bob()].map(|owner| {
            let real: i64 = store
                .db
                .lock()
                .query_row(
                    "SELECT COUNT(*) FROM conversations WHERE owner = ?1",
                    [owner.as_str()],
                    |row| row.get(0),
                )
                .unwrap();
            assert_eq!(store.db.count(&owner), Some(real), "{owner}");
            real
        });
        (alices, bobs)
    }

    #[tokio::test]
    async fn the_memory_stores_own_counts_follow_each_owner_through_creating_deleting_and_pruning()
    {
        let (store, clock) = store_with_clock(Retention {
            max_conversations: 3,
            max_age: Duration::from_secs(DAY as u64),
        })
        .await;
        for i in 0..2 {
            store
                .create(&bob(), "m", &[user(&i.to_string())], None)
                .await
                .unwrap();
        }
        let mut ids = Vec::new();
        for i in 0..6 {
            ids.push(
                store
                    .create(&alice(), "m", &[user(&i.to_string())], None)
                    .await
                    .unwrap(),
            );
            let (alices, bobs) = counts_match(&store);
            assert!(alices <= 3);
            assert_eq!(bobs, 2, "alice's retention leaves bob's alone");
        }
        // The newest three are the ones kept.
        assert_eq!(
            listed(&store).await,
            [ids[5].clone(), ids[4].clone(), ids[3].clone()]
        );
        assert!(store.delete(&alice(), &ids[5]).await.unwrap());
        assert!(
            !store.delete(&alice(), &ids[0]).await.unwrap(),
            "already pruned"
        );
        assert!(!store.delete(&bob(), &ids[4]).await.unwrap(), "not bob's");
        assert_eq!(counts_match(&store), (2, 2));
        // Age applies to everyone's: alice's new conversation drops bob's old ones too.
        clock.fetch_add(2 * DAY, Ordering::SeqCst);
        store
            .create(&alice(), "m", &[user("new")], None)
            .await
            .unwrap();
        assert_eq!(counts_match(&store), (1, 0));
        clock.fetch_add(2 * DAY, Ordering::SeqCst);
        assert_eq!(store.prune().await.unwrap(), 1, "it is too old now");
        assert_eq!(counts_match(&store), (0, 0));
    }

    #[tokio::test]
    async fn retention_keeps_only_the_newest_max_conversations() {
        let (store, clock) = store_with_clock(Retention {
            max_conversations: 2,
            max_age: Duration::from_secs(30 * DAY as u64),
        })
        .await;
        let first = store
            .create(&alice(), "m", &[user("1")], None)
            .await
            .unwrap();
        clock.fetch_add(1, Ordering::SeqCst);
        let second = store
            .create(&alice(), "m", &[user("2")], None)
            .await
            .unwrap();
        clock.fetch_add(1, Ordering::SeqCst);
        store
            .append(&alice(), &first, "m", &[user("1 again")], None)
            .await
            .unwrap();
        clock.fetch_add(1, Ordering::SeqCst);
        // Creating a third drops the least recently updated one: `second`.
        let third = store
            .create(&alice(), "m", &[user("3")], None)
            .await
            .unwrap();
        assert_eq!(listed(&store).await, [third, first]);
        assert!(matches!(
            store.get(&alice(), &second).await,
            Err(StoreError::NotFound { .. })
        ));
        assert_eq!(store.prune().await.unwrap(), 0, "already within the limit");
    }

    #[tokio::test]
    async fn retention_drops_conversations_not_updated_within_max_age() {
        let (store, clock) = store_with_clock(Retention {
            max_conversations: 100,
            max_age: Duration::from_secs(7 * DAY as u64),
        })
        .await;
        let stale = store
            .create(&alice(), "m", &[user("stale")], None)
            .await
            .unwrap();
        let active = store
            .create(&alice(), "m", &[user("active")], None)
            .await
            .unwrap();
        clock.fetch_add(5 * DAY, Ordering::SeqCst);
        store
            .append(&alice(), &active, "m", &[user("still here")], None)
            .await
            .unwrap();

        clock.fetch_add(2 * DAY, Ordering::SeqCst);
        assert_eq!(
            store.prune().await.unwrap(),
            0,
            "exactly max_age old is kept"
        );

        clock.fetch_add(1, Ordering::SeqCst);
        assert_eq!(store.prune().await.unwrap(), 1);
        assert!(matches!(
            store.get(&alice(), &stale).await,
            Err(StoreError::NotFound { .. })
        ));
        assert_eq!(
            store.get(&alice(), &active).await.unwrap().messages.len(),
            2
        );

        // Creating also prunes.
        clock.fetch_add(30 * DAY, Ordering::SeqCst);
        let fresh = store
            .create(&alice(), "m", &[user("fresh")], None)
            .await
            .unwrap();
        assert_eq!(listed(&store).await, [fresh]);
    }

    #[tokio::test]
    async fn a_new_conversation_survives_its_own_pruning_even_with_no_room() {
        let (store, _clock) = store_with_clock(Retention {
            max_conversations: 0,
            max_age: Duration::ZERO,
        })
        .await;
        let old = store
            .create(&alice(), "m", &[user("old")], None)
            .await
            .unwrap();
        let new = store
            .create(&alice(), "m", &[user("new")], None)
            .await
            .unwrap();
        assert_eq!(listed(&store).await, [new]);
        assert!(matches!(
            store.get(&alice(), &old).await,
            Err(StoreError::NotFound { .. })
        ));
        assert_eq!(store.prune().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_file_store_keeps_conversations_across_reopening() {
        let dir = scratch();
        let location = StoreLocation::File(dir.path().join("nested").join("conversations.sqlite3"));
        let messages = vec![
            user("remember me"),
            msg(json!({"role": "assistant", "content": "I will."})),
        ];
        let id = {
            let store = SqliteStore::open(&location, generous()).await.unwrap();
            store
                .create(&alice(), "model-x", &messages, None)
                .await
                .unwrap()
        };
        let store = SqliteStore::open(&location, generous()).await.unwrap();
        let conversation = store.get(&alice(), &id).await.unwrap();
        assert_eq!(as_json(&conversation.messages), as_json(&messages));
        assert_eq!(conversation.summary.title, "remember me");
        assert_eq!(conversation.summary.model, "model-x");
        assert_eq!(pragma::<i64>(&store, "user_version"), SCHEMA_VERSION);
        assert_eq!(
            pragma::<String>(&store, "journal_mode").to_ascii_lowercase(),
            "wal"
        );
    }

    #[tokio::test]
    async fn two_stores_on_one_file_see_each_others_writes() {
        let dir = scratch();
        let location = file_in(&dir);
        let a = SqliteStore::open(&location, generous()).await.unwrap();
        let b = SqliteStore::open(&location, generous()).await.unwrap();

        let id = a
            .create(&alice(), "m", &[user("from a")], None)
            .await
            .unwrap();
        b.append(&alice(), &id, "m", &[user("from b")], None)
            .await
            .unwrap();
        let conversation = a.get(&alice(), &id).await.unwrap();
        let texts: Vec<Value> = conversation
            .messages
            .iter()
            .map(|m| serde_json::to_value(m).unwrap()["content"].clone())
            .collect();
        assert_eq!(texts, [json!("from a"), json!("from b")]);
        assert_eq!(conversation.summary.turns, 2);

        assert!(b.delete(&alice(), &id).await.unwrap());
        assert!(matches!(
            a.get(&alice(), &id).await,
            Err(StoreError::NotFound { .. })
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writers_from_many_tasks_do_not_lose_messages() {
        let dir = scratch();
        let location = file_in(&dir);
        let store = Arc::new(SqliteStore::open(&location, generous()).await.unwrap());
        let id = store.create(&alice(), "m", &[], None).await.unwrap();
        let mut writers = tokio::task::JoinSet::new();
        for t in 0..4 {
            let other = SqliteStore::open(&location, generous()).await.unwrap();
            let (store, id) = (Arc::clone(&store), id.clone());
            writers.spawn(async move {
                for i in 0..10 {
                    let which = if i % 2 == 0 { &*store } else { &other };
                    which
                        .append(&alice(), &id, "m", &[user(&format!("{t}-{i}"))], None)
                        .await
                        .unwrap();
                }
            });
        }
        while let Some(done) = writers.join_next().await {
            done.unwrap();
        }
        let conversation = store.get(&alice(), &id).await.unwrap();
        assert_eq!(conversation.messages.len(), 40);
        assert_eq!(conversation.summary.turns, 41);
    }

    #[tokio::test]
    async fn a_file_from_a_newer_build_is_refused_with_advice() {
        let dir = scratch();
        let location = file_in(&dir);
        let StoreLocation::File(path) = &location else {
            unreachable!()
        };
        Connection::open(path)
            .unwrap()
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let err = SqliteStore::open(&location, generous()).await.unwrap_err();
        assert!(
            matches!(err, StoreError::SchemaTooNew { found, .. } if found == SCHEMA_VERSION + 1),
            "{err:?}"
        );
        assert!(err.to_string().contains(LOCATION_SETTING), "{err}");
    }

    #[tokio::test]
    async fn a_version_1_file_is_migrated_keeping_its_conversations() {
        let dir = scratch();
        let location = file_in(&dir);
        let StoreLocation::File(path) = &location else {
            unreachable!()
        };
        {
            let conn = Connection::open(path).unwrap();
            schema::create_v1(&conn).unwrap();
            conn.execute_batch(
                r#"INSERT INTO conversations VALUES ('conv_old', 'Old one', 'm', 1, 10, 10, 1);
                   INSERT INTO messages VALUES ('conv_old', 0, '{"role":"user","content":"hi"}');
                   INSERT INTO messages VALUES ('conv_old', 1, '{"role":"assistant","content":"hello"}');"#,
            )
            .unwrap();
        }
        let store = SqliteStore::open(&location, generous()).await.unwrap();
        let local = Principal::local();
        let old = ConversationId::parse("conv_old").unwrap();
        let conversation = store.get(&local, &old).await.unwrap();
        assert_eq!(conversation.summary.title, "Old one");
        assert_eq!(
            as_json(&conversation.messages),
            json!([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}])
        );
        assert_eq!(pragma::<i64>(&store, "user_version"), SCHEMA_VERSION);
        // The new column works on the old file.
        store
            .append(
                &local,
                &old,
                "m",
                &[user("more"), user("cut")],
                Some("stalled"),
            )
            .await
            .unwrap();
        let last = store
            .get(&local, &old)
            .await
            .unwrap()
            .messages
            .pop()
            .unwrap();
        assert_eq!(
            serde_json::to_value(last).unwrap()["content"],
            "cut\n\n[cut off: stalled; this answer is incomplete]"
        );
    }

    /// The names of the store's indexes, sorted.
    fn indexes(store: &SqliteStore) -> Vec<String> {
        let conn = store.db.lock();
        let mut stmt = conn
            .prepare(
                "SELECT name FROM sqlite_schema
                 WHERE type = 'index' AND name NOT LIKE 'sqlite!_%' ESCAPE '!' ORDER BY name",
            )
            .unwrap();
        stmt.query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[tokio::test]
    async fn a_version_2_file_is_migrated_its_conversations_kept_as_locals() {
        let dir = scratch();
        let location = file_in(&dir);
        let StoreLocation::File(path) = &location else {
            unreachable!()
        };
        {
            let conn = Connection::open(path).unwrap();
            schema::create_v2(&conn).unwrap();
            // Used an hour ago, so that retention keeps them.
            let then = system_now() - 3600;
            conn.execute(
                "INSERT INTO conversations VALUES
                    ('conv_older', 'Older', 'm', 1, ?1, ?1, 1),
                    ('conv_newer', 'Newer', 'm', 2, ?1, ?1, 3)",
                [then],
            )
            .unwrap();
            conn.execute_batch(
                r#"
                   INSERT INTO messages VALUES ('conv_older', 0, '{"role":"user","content":"hi"}', NULL);
                   INSERT INTO messages VALUES ('conv_older', 1, '{"role":"assistant","content":"hel"}', 'stalled');
                   INSERT INTO messages VALUES ('conv_newer', 0, '{"role":"user","content":"yo"}', NULL);"#,
            )
            .unwrap();
        }
        let store = SqliteStore::open(&location, generous()).await.unwrap();
        assert_eq!(pragma::<i64>(&store, "user_version"), SCHEMA_VERSION);
        assert_eq!(
            indexes(&store),
            [
                "conversations_by_owner",
                "conversations_by_update",
                "tasks_by_expiry"
            ]
        );
        let local = Principal::local();
        let (older, newer) = (
            ConversationId::parse("conv_older").unwrap(),
            ConversationId::parse("conv_newer").unwrap(),
        );
        // Every row is kept, as local's, in the same order, with its messages.
        let summaries = store.list(&local, 10).await.unwrap();
        let ids: Vec<_> = summaries.iter().map(|s| s.id.clone()).collect();
        assert_eq!(ids, [newer.clone(), older.clone()]);
        assert_eq!(summaries[0].turns, 2);
        let conversation = store.get(&local, &older).await.unwrap();
        assert_eq!(
            as_json(&conversation.messages),
            json!([
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hel\n\n[cut off: stalled; this answer is incomplete]"}
            ])
        );
        // They are no one else's.
        assert!(matches!(
            store.get(&alice(), &older).await,
            Err(StoreError::NotFound { .. })
        ));
        assert!(store.list(&alice(), 10).await.unwrap().is_empty());
        // Local continues where the old file left off; alice starts her own.
        store
            .append(&local, &older, "m", &[user("again")], None)
            .await
            .unwrap();
        let hers = store
            .create(&alice(), "m", &[user("mine")], None)
            .await
            .unwrap();
        assert_eq!(listed_for(&store, &local).await, [older, newer]);
        assert_eq!(listed_for(&store, &alice()).await, [hers]);
    }

    #[tokio::test]
    async fn an_owners_frequent_statements_read_only_their_part_of_the_owner_index() {
        let store = memory_store().await;
        let conn = store.db.lock();
        for sql in [
            INSERT_CONVERSATION,
            COUNT_TURN,
            LIST_OWNED,
            DROP_OLDEST,
            DROP_PAST_NEWEST,
        ] {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let mut rows = stmt.raw_query();
            let mut plan = Vec::new();
            while let Some(row) = rows.next().unwrap() {
                plan.push(row.get::<_, String>(3).unwrap());
            }
            let plan = plan.join("; ");
            assert!(
                plan.contains("conversations_by_owner (owner=?"),
                "{sql}\n{plan}"
            );
            assert!(
                !plan.contains("SCAN") && !plan.contains("TEMP B-TREE"),
                "{sql}\n{plan}"
            );
        }
    }

    #[tokio::test]
    async fn pruning_keeps_each_owners_newest_conversations() {
        let dir = scratch();
        let location = file_in(&dir);
        let (hers, his) = {
            let store = SqliteStore::open(&location, generous()).await.unwrap();
            let mut hers = Vec::new();
            for i in 0..3 {
                hers.push(
                    store
                        .create(&alice(), "m", &[user(&i.to_string())], None)
                        .await
                        .unwrap(),
                );
            }
            let his = store.create(&bob(), "m", &[user("b")], None).await.unwrap();
            (hers, his)
        };
        let store = SqliteStore::open(
            &location,
            Retention {
                max_conversations: 2,
                ..generous()
            },
        )
        .await
        .unwrap();
        assert_eq!(store.prune().await.unwrap(), 1);
        assert_eq!(listed(&store).await, [hers[2].clone(), hers[1].clone()]);
        assert_eq!(listed_for(&store, &bob()).await, [his]);
    }

    /// Opens a store at `path`, expecting a refusal; returns its text after checking the
    /// file was not changed and nothing was created beside it.
    async fn refused_unchanged(dir: &TempDir, path: &Path) -> String {
        let before = std::fs::read(path).unwrap();
        let err = SqliteStore::open(&StoreLocation::File(path.to_owned()), generous())
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotAStore { .. }), "{err:?}");
        assert_eq!(
            std::fs::read(path).unwrap(),
            before,
            "the file is unchanged"
        );
        let mut beside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        beside.sort();
        assert_eq!(
            beside,
            [path.file_name().unwrap()],
            "nothing created beside it"
        );
        let text = err.to_string();
        assert!(!text.contains('\n'), "one line: {text}");
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(
            text.contains("Set VULTR_MCP_CONVERSATIONS to another file path, or to `memory`"),
            "{text}"
        );
        text
    }

    #[tokio::test]
    async fn a_foreign_sqlite_database_is_refused_unchanged_naming_its_tables() {
        let dir = scratch();
        let path = dir.path().join("shop.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);
                 CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER, total REAL);
                 INSERT INTO users (name) VALUES ('ada');",
            )
            .unwrap();
        }
        let text = refused_unchanged(&dir, &path).await;
        assert!(
            text.contains(
                "is not a conversation store but an SQLite database this server did not create (tables: orders, users); it was left unchanged"
            ),
            "{text}"
        );
        assert!(!text.contains("CREATE"), "no schema SQL: {text}");
    }

    #[tokio::test]
    async fn a_file_that_is_not_sqlite_is_refused_unchanged() {
        let dir = scratch();
        let path = dir.path().join("notes.txt");
        std::fs::write(&path, "my notes, not a database\n").unwrap();
        let text = refused_unchanged(&dir, &path).await;
        assert!(
            text.contains("is not a conversation store but a file that is not an SQLite database"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_damaged_store_is_refused_in_one_line_without_the_schema_sql() {
        let dir = scratch();
        let location = file_in(&dir);
        let StoreLocation::File(path) = &location else {
            unreachable!()
        };
        {
            let conn = Connection::open(path).unwrap();
            conn.execute_batch(
                "CREATE TABLE conversations (id TEXT); CREATE TABLE messages (body TEXT);
                 PRAGMA user_version = 1;",
            )
            .unwrap();
        }
        let text = SqliteStore::open(&location, generous())
            .await
            .unwrap_err()
            .to_string();
        assert!(text.contains("no such column: updated_at"), "{text}");
        assert!(!text.contains("CREATE") && !text.contains('\n'), "{text}");
    }

    #[tokio::test]
    async fn a_store_that_cannot_be_opened_names_the_path_and_the_setting() {
        let dir = scratch();
        // A directory where the file should be.
        let path = dir.path().join("is-a-directory");
        std::fs::create_dir_all(&path).unwrap();
        let err = SqliteStore::open(&StoreLocation::File(path.clone()), generous())
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("VULTR_MCP_CONVERSATIONS"), "{text}");
        assert!(text.contains("`memory`"), "{text}");
    }
}
