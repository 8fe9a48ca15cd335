//! Conversations: a small embedded SQLite store that keeps delegated chats, so an agent can
//! continue one by id without resending its history and find it again after a restart.
//!
//! One row per conversation (title, model, turn count, timestamps) and one row per message
//! (the message as JSON, with its position). Several server processes may share one file:
//! file stores use WAL mode, a 5 s busy timeout and `BEGIN IMMEDIATE` for writes. The
//! file and its folder are private to their owner; a file that is not a conversation
//! store is refused before anything writes to it.

mod file;
mod schema;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

use crate::vultr::chat::{Content, Message, Role};
use schema::SCHEMA_VERSION;

/// The setting that moves the conversation store (a file path, or `memory`).
pub const LOCATION_SETTING: &str = "VULTR_MCP_CONVERSATIONS";

/// How long a write waits for another process's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest title, in characters, including the trailing "…".
const TITLE_MAX_CHARS: usize = 80;

/// The longest id [`ConversationId::parse`] accepts.
const ID_MAX_LEN: usize = 100;

/// Most recently used first. `touched` counts every create and append, so two uses within
/// the same second still come out in the order they happened.
const RECENCY: &str = "touched DESC";

/// The next value of `touched`.
const NEXT_TOUCH: &str = "(SELECT COALESCE(MAX(touched), 0) + 1 FROM conversations)";

/// What went wrong in the conversation store, phrased for whoever reads the tool result.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No conversation has this id.
    #[error(
        "conversation not found: `{id}`. It may have been deleted or pruned; omit conversation_id to start a new conversation."
    )]
    NotFound {
        /// The id that was asked for.
        id: ConversationId,
    },
    /// A conversation id that cannot be one of ours.
    #[error(
        "invalid conversation_id {shown}: use an id returned by an earlier call (letters, digits, `_` and `-`, at most {ID_MAX_LEN} characters, like `conv_…`), or omit conversation_id to start a new conversation."
    )]
    InvalidId {
        /// The offending id, quoted and shortened for display.
        shown: String,
    },
    /// The directory for the store file could not be created.
    #[error(
        "cannot create the directory `{}` for the conversation store: {source}. Set {LOCATION_SETTING} to a writable file path, or to `memory` to keep conversations in memory only.",
        .path.display()
    )]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The store file could not be opened or set up.
    #[error(
        "cannot open the conversation store `{location}`: {}. Set {LOCATION_SETTING} to a writable file path, or to `memory` to keep conversations in memory only.",
        sqlite_message(.source)
    )]
    Open {
        /// The file (or `memory`).
        location: String,
        /// What SQLite reported.
        source: rusqlite::Error,
    },
    /// The store file could not be created or read.
    #[error(
        "cannot create or read the conversation store file `{location}`: {source}. Set {LOCATION_SETTING} to a writable file path, or to `memory` to keep conversations in memory only."
    )]
    File {
        /// The file.
        location: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// Something other than a conversation store is at the configured path; it was not changed.
    #[error(
        "`{location}` is not a conversation store but {what}; it was left unchanged. Set {LOCATION_SETTING} to another file path, or to `memory` to keep conversations in memory only."
    )]
    NotAStore {
        /// The file.
        location: String,
        /// What the file is, in a few words.
        what: String,
    },
    /// The file was written by a newer version of this server.
    #[error(
        "the conversation store `{location}` has schema version {found}, newer than this build understands ({SCHEMA_VERSION}). Upgrade vultr-inference-mcp, or set {LOCATION_SETTING} to another file (or `memory`)."
    )]
    SchemaTooNew {
        /// The file.
        location: String,
        /// The version found in the file.
        found: i64,
    },
    /// Another process held the store locked for longer than the busy timeout.
    #[error(
        "the conversation store `{location}` is locked by another process (waited {}s while {action}); try again in a moment.",
        BUSY_TIMEOUT.as_secs()
    )]
    Busy {
        /// The file.
        location: String,
        /// What was being done.
        action: &'static str,
    },
    /// Any other database failure.
    #[error(
        "the conversation store `{location}` failed while {action}: {}. If this persists, check that the file is writable and the disk not full, or set {LOCATION_SETTING} to another file (or `memory`).",
        sqlite_message(.source)
    )]
    Database {
        /// The file (or `memory`).
        location: String,
        /// What was being done.
        action: &'static str,
        /// What SQLite reported.
        source: rusqlite::Error,
    },
    /// A message could not be turned into JSON for storage.
    #[error("cannot store a message of the conversation: {source}")]
    Encode {
        /// What serde_json reported.
        source: serde_json::Error,
    },
    /// A stored message no longer reads as a chat message.
    #[error(
        "message {seq} of conversation `{id}` is stored in a form this build cannot read ({source}); delete the conversation and start a new one."
    )]
    CorruptMessage {
        /// The conversation.
        id: ConversationId,
        /// The message's position.
        seq: i64,
        /// What serde_json reported.
        source: serde_json::Error,
    },
}

/// Where conversations are kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreLocation {
    /// In memory only: gone when the process ends.
    InMemory,
    /// An SQLite file, created with its parent directories when missing.
    File(PathBuf),
}

impl StoreLocation {
    /// The default file: `<data dir>/vultr-inference-mcp/conversations.sqlite3` (dirs::data_dir(), falling back to the current dir).
    pub fn default_file() -> StoreLocation {
        let base = dirs::data_dir().unwrap_or_else(|| PathBuf::from("."));
        StoreLocation::File(
            base.join("vultr-inference-mcp")
                .join("conversations.sqlite3"),
        )
    }

    /// Parses a setting: "memory" or ":memory:" → InMemory, empty → the default file, anything else → File(path) (a leading `~/` is the home dir).
    pub fn parse(setting: &str) -> StoreLocation {
        let setting = setting.trim();
        if setting.is_empty() {
            return StoreLocation::default_file();
        }
        if setting.eq_ignore_ascii_case("memory") || setting == ":memory:" {
            return StoreLocation::InMemory;
        }
        if let Some(rest) = setting.strip_prefix("~/")
            && let Some(home) = dirs::home_dir()
        {
            return StoreLocation::File(home.join(rest));
        }
        StoreLocation::File(PathBuf::from(setting))
    }
}

impl fmt::Display for StoreLocation {
    /// `memory`, or the file's path.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::InMemory => f.write_str("memory"),
            StoreLocation::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// How many conversations to keep, and for how long after their last update.
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    /// Keep at most this many, the most recently updated.
    pub max_conversations: usize,
    /// Drop those not updated for longer than this.
    pub max_age: Duration,
}

/// A conversation's id: `conv_` and 32 hex digits when we make one.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ConversationId(String);

impl ConversationId {
    /// A fresh random id, `conv_` + 32 hex digits.
    fn generate() -> Self {
        Self(format!("conv_{}", uuid::Uuid::new_v4().simple()))
    }

    /// Checks an id from a client: 1 to 100 characters of `A-Z a-z 0-9 _ -`.
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        let well_formed = !text.is_empty()
            && text.len() <= ID_MAX_LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if well_formed {
            Ok(Self(text.to_owned()))
        } else {
            Err(StoreError::InvalidId {
                shown: shown_id(text),
            })
        }
    }
}

/// A bad id quoted for an error message, shortened when long.
fn shown_id(text: &str) -> String {
    const SHOWN_MAX_CHARS: usize = 40;
    if text.chars().count() > SHOWN_MAX_CHARS {
        let head: String = text.chars().take(SHOWN_MAX_CHARS).collect();
        format!("{head:?}… ({} characters)", text.chars().count())
    } else {
        format!("{text:?}")
    }
}

impl FromStr for ConversationId {
    type Err = StoreError;

    /// Same as [`ConversationId::parse`].
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl fmt::Display for ConversationId {
    /// The id itself.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ConversationId {
    /// The id itself.
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// What a conversation list shows of each conversation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConversationSummary {
    /// Its id.
    pub id: ConversationId,
    /// The start of its first user message.
    pub title: String,
    /// The model of its latest turn.
    pub model: String,
    /// How many times it was created or continued.
    pub turns: u32,
    /// When it was created, in unix seconds.
    pub created_at: i64,
    /// When it was last continued, in unix seconds.
    pub updated_at: i64,
}

/// A conversation with all its messages.
#[derive(Clone, Debug)]
pub struct Conversation {
    /// Its summary.
    pub summary: ConversationSummary,
    /// Its messages, oldest first.
    pub messages: Vec<Message>,
}

/// A clock giving unix seconds.
type Clock = Box<dyn Fn() -> i64 + Send + Sync>;

/// The system clock, in unix seconds.
fn system_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The conversation store; share it between tasks (it is `Send + Sync`).
pub struct ConversationStore {
    conn: Mutex<Connection>,
    location: String,
    retention: Retention,
    now: Clock,
}

impl fmt::Debug for ConversationStore {
    /// Shows where the store is and its retention.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConversationStore")
            .field("location", &self.location)
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl ConversationStore {
    /// Opens (creating when missing) the store at `location`, keeping conversations per `retention`.
    pub fn open(location: &StoreLocation, retention: Retention) -> Result<Self, StoreError> {
        let label = location.to_string();
        let open_err = |source| open_error(&label, source);
        let mut conn = match location {
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
        Ok(Self {
            conn: Mutex::new(conn),
            location: label,
            retention,
            now: Box::new(system_now),
        })
    }

    /// Where the store is: `memory` or the file's path.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Starts a conversation with these messages (turn 1) and prunes old ones; returns its
    /// new id. `cut_off` says why the last message (the reply) was cut short, if it was.
    pub fn create(
        &self,
        model: &str,
        messages: &[Message],
        cut_off: Option<&str>,
    ) -> Result<ConversationId, StoreError> {
        const ACTION: &str = "saving a new conversation";
        let id = ConversationId::generate();
        let bodies = encode_all(messages)?;
        let title = title_of(messages);
        let now = (self.now)();
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.db(ACTION, e))?;
        tx.prepare_cached(&format!(
            "INSERT INTO conversations (id, title, model, turns, created_at, updated_at, touched)
             VALUES (?1, ?2, ?3, 1, ?4, ?4, {NEXT_TOUCH})"
        ))
        .and_then(|mut insert| insert.execute(params![id.as_ref(), title, model, now]))
        .map_err(|e| self.db(ACTION, e))?;
        insert_messages(&tx, &id, 0, &bodies, cut_off).map_err(|e| self.db(ACTION, e))?;
        prune_in(&tx, self.retention, now, Some(&id)).map_err(|e| self.db(ACTION, e))?;
        tx.commit().map_err(|e| self.db(ACTION, e))?;
        Ok(id)
    }

    /// Adds messages to the end of a conversation as one more turn, and records the model
    /// used. `cut_off` says why the last message (the reply) was cut short, if it was.
    pub fn append(
        &self,
        id: &ConversationId,
        model: &str,
        messages: &[Message],
        cut_off: Option<&str>,
    ) -> Result<(), StoreError> {
        const ACTION: &str = "adding messages to a conversation";
        let bodies = encode_all(messages)?;
        let now = (self.now)();
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.db(ACTION, e))?;
        let next: i64 = tx
            .prepare_cached(
                "SELECT COALESCE((SELECT MAX(seq) + 1 FROM messages WHERE conversation_id = ?1), 0)
                 FROM conversations WHERE id = ?1",
            )
            .and_then(|mut select| select.query_row([id.as_ref()], |row| row.get(0)))
            .optional()
            .map_err(|e| self.db(ACTION, e))?
            .ok_or_else(|| not_found(id))?;
        insert_messages(&tx, id, next, &bodies, cut_off).map_err(|e| self.db(ACTION, e))?;
        tx.prepare_cached(&format!(
            "UPDATE conversations SET turns = turns + 1, model = ?2, updated_at = ?3,
             touched = {NEXT_TOUCH} WHERE id = ?1"
        ))
        .and_then(|mut update| update.execute(params![id.as_ref(), model, now]))
        .map_err(|e| self.db(ACTION, e))?;
        tx.commit().map_err(|e| self.db(ACTION, e))
    }

    /// A conversation's messages, oldest first.
    pub fn messages(&self, id: &ConversationId) -> Result<Vec<Message>, StoreError> {
        Ok(self.get(id)?.messages)
    }

    /// A conversation's summary and messages. A reply stored as cut off ends with a note
    /// saying so (see [`cut_off_note`]), so a transcript shows it and a continuation tells
    /// the model its answer was incomplete.
    pub fn get(&self, id: &ConversationId) -> Result<Conversation, StoreError> {
        const ACTION: &str = "reading a conversation";
        let mut conn = self.lock();
        // One read transaction, so a concurrent delete cannot split summary from messages.
        let tx = conn.transaction().map_err(|e| self.db(ACTION, e))?;
        let summary = tx
            .query_row(
                "SELECT id, title, model, turns, created_at, updated_at
                 FROM conversations WHERE id = ?1",
                [id.as_ref()],
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

    /// Up to `limit` conversations, most recently updated first (ties: most recently created first).
    pub fn list(&self, limit: usize) -> Result<Vec<ConversationSummary>, StoreError> {
        const ACTION: &str = "listing conversations";
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT id, title, model, turns, created_at, updated_at
                 FROM conversations ORDER BY {RECENCY} LIMIT ?1"
            ))
            .map_err(|e| self.db(ACTION, e))?;
        stmt.query_map([sql_count(limit)], summary_from_row)
            .and_then(Iterator::collect)
            .map_err(|e| self.db(ACTION, e))
    }

    /// Deletes a conversation and its messages; true when it existed. Works on a full
    /// disk too, so that deleting is how a user makes room.
    pub fn delete(&self, id: &ConversationId) -> Result<bool, StoreError> {
        const ACTION: &str = "deleting a conversation";
        let conn = self.lock();
        let delete = || {
            conn.prepare_cached("DELETE FROM conversations WHERE id = ?1")
                .and_then(|mut delete| delete.execute([id.as_ref()]))
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
        Ok(deleted > 0)
    }

    /// Drops conversations not updated within `max_age` and all but the newest `max_conversations`; returns how many went.
    pub fn prune(&self) -> Result<usize, StoreError> {
        const ACTION: &str = "pruning old conversations";
        let now = (self.now)();
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.db(ACTION, e))?;
        let dropped = prune_in(&tx, self.retention, now, None).map_err(|e| self.db(ACTION, e))?;
        tx.commit().map_err(|e| self.db(ACTION, e))?;
        Ok(dropped)
    }

    /// The connection, recovering it if a panic poisoned the lock (transactions roll back on drop).
    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wraps a database error, telling a lock timeout apart from other failures.
    fn db(&self, action: &'static str, source: rusqlite::Error) -> StoreError {
        let location = self.location.clone();
        match source.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                StoreError::Busy { location, action }
            }
            _ => StoreError::Database {
                location,
                action,
                source,
            },
        }
    }

    /// Replaces the clock, so tests can move time.
    #[cfg(test)]
    fn set_clock(&mut self, clock: impl Fn() -> i64 + Send + Sync + 'static) {
        self.now = Box::new(clock);
    }
}

/// What SQLite said, without the statement it was given (rusqlite quotes the whole SQL of
/// a statement that does not fit the file, which for the schema is a page of text).
fn sqlite_message(error: &rusqlite::Error) -> String {
    match error {
        rusqlite::Error::SqlInputError { msg, .. } => msg.clone(),
        other => other.to_string(),
    }
}

/// Wraps an error met while opening the store, telling a lock timeout apart.
fn open_error(label: &str, source: rusqlite::Error) -> StoreError {
    match source.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy {
            location: label.to_owned(),
            action: "opening it",
        },
        _ => StoreError::Open {
            location: label.to_owned(),
            source,
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

/// The note that ends a reply stored as cut short, e.g. `[cut off: stalled; this answer is incomplete]`.
fn cut_off_note(reason: &str) -> String {
    format!("[cut off: {reason}; this answer is incomplete]")
}

/// Ends `message` with the note that it was cut short.
fn mark_cut_off(message: &mut Message, reason: &str) {
    let note = cut_off_note(reason);
    match &mut message.content {
        Some(Content::Text(text)) if !text.trim().is_empty() => {
            text.push_str("\n\n");
            text.push_str(&note);
        }
        Some(Content::Parts(parts)) => {
            let mut part = serde_json::Map::new();
            part.insert("type".to_owned(), "text".into());
            part.insert("text".to_owned(), note.into());
            parts.push(part);
        }
        _ => message.content = Some(Content::Text(note)),
    }
}

/// Serialises each message to JSON text.
fn encode_all(messages: &[Message]) -> Result<Vec<String>, StoreError> {
    messages
        .iter()
        .map(|m| serde_json::to_string(m).map_err(|source| StoreError::Encode { source }))
        .collect()
}

/// Inserts message bodies at positions `first`, `first + 1`, ...; the last one marked
/// cut off when `cut_off` says why.
fn insert_messages(
    conn: &Connection,
    id: &ConversationId,
    first: i64,
    bodies: &[String],
    cut_off: Option<&str>,
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO messages (conversation_id, seq, body, cut_off) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let last = bodies.len().saturating_sub(1);
    for (i, (seq, body)) in (first..).zip(bodies).enumerate() {
        let cut = if i == last { cut_off } else { None };
        stmt.execute(params![id.as_ref(), seq, body, cut])?;
    }
    Ok(())
}

/// Applies retention; `keep` is never dropped (the conversation being created).
fn prune_in(
    conn: &Connection,
    retention: Retention,
    now: i64,
    keep: Option<&ConversationId>,
) -> rusqlite::Result<usize> {
    let keep = keep.map(AsRef::<str>::as_ref);
    let max_age = i64::try_from(retention.max_age.as_secs()).unwrap_or(i64::MAX);
    let cutoff = now.saturating_sub(max_age);
    // Cached: this runs on every new conversation, and compiling the SQL each time cost
    // more than running it.
    let by_age = conn
        .prepare_cached("DELETE FROM conversations WHERE updated_at < ?1 AND id IS NOT ?2")?
        .execute(params![cutoff, keep])?;
    let by_count = conn
        .prepare_cached(&format!(
            "DELETE FROM conversations WHERE id IS NOT ?2 AND id IN
                (SELECT id FROM conversations ORDER BY {RECENCY} LIMIT -1 OFFSET ?1)"
        ))?
        .execute(params![sql_count(retention.max_conversations), keep])?;
    Ok(by_age + by_count)
}

/// A count as an SQL integer, saturating.
fn sql_count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Reads a summary from `id, title, model, turns, created_at, updated_at`.
fn summary_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ConversationSummary> {
    Ok(ConversationSummary {
        id: ConversationId(row.get(0)?),
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

/// The first user message's text, whitespace collapsed and cut to 80 characters, or "(untitled)".
fn title_of(messages: &[Message]) -> String {
    let text = messages
        .iter()
        .find(|m| m.role == Role::User)
        .and_then(|m| m.content.as_ref())
        .map(content_text)
        .unwrap_or_default();
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.is_empty() {
        return "(untitled)".to_owned();
    }
    if collapsed.chars().count() <= TITLE_MAX_CHARS {
        return collapsed;
    }
    let head: String = collapsed.chars().take(TITLE_MAX_CHARS - 1).collect();
    format!("{}…", head.trim_end())
}

/// The text of message content; for parts, the text parts joined by spaces.
fn content_text(content: &Content) -> String {
    match content {
        Content::Text(text) => text.clone(),
        Content::Parts(parts) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(serde_json::Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};

    use std::path::Path;

    use serde_json::{Value, json};

    use super::*;

    const DAY: i64 = 24 * 60 * 60;

    fn generous() -> Retention {
        Retention {
            max_conversations: 1000,
            max_age: Duration::from_secs(365 * DAY as u64),
        }
    }

    fn memory_store() -> ConversationStore {
        ConversationStore::open(&StoreLocation::InMemory, generous()).unwrap()
    }

    /// A store whose clock the test moves by storing into the returned cell.
    fn store_with_clock(retention: Retention) -> (ConversationStore, Arc<AtomicI64>) {
        let mut store = ConversationStore::open(&StoreLocation::InMemory, retention).unwrap();
        let clock = Arc::new(AtomicI64::new(1_700_000_000));
        let shared = Arc::clone(&clock);
        store.set_clock(move || shared.load(Ordering::SeqCst));
        (store, clock)
    }

    fn msg(value: Value) -> Message {
        serde_json::from_value(value).unwrap()
    }

    fn user(text: &str) -> Message {
        msg(json!({"role": "user", "content": text}))
    }

    fn as_json(messages: &[Message]) -> Value {
        serde_json::to_value(messages).unwrap()
    }

    /// A unique scratch directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "vultr-mcp-conv-{tag}-{}-{}",
                std::process::id(),
                uuid::Uuid::new_v4().simple()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn the_store_can_be_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<ConversationStore>();
        assert_send_sync::<StoreError>();
    }

    #[test]
    fn created_messages_come_back_in_order_and_appends_follow_them() {
        let store = memory_store();
        let first = vec![
            msg(json!({"role": "system", "content": "Be brief."})),
            user("What is the weather in Paris?"),
            msg(json!({
                "role": "assistant",
                "content": null,
                "tool_calls": [{
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}
                }]
            })),
            msg(json!({"role": "tool", "tool_call_id": "call_1", "content": "18°C, clear"})),
            msg(json!({"role": "assistant", "content": "18°C and clear."})),
        ];
        let id = store.create("model-a", &first, None).unwrap();
        assert_eq!(store.messages(&id).unwrap().len(), 5);
        assert_eq!(as_json(&store.messages(&id).unwrap()), as_json(&first));

        let second = vec![
            msg(json!({
                "role": "user",
                "name": "alice",
                "content": [{"type": "text", "text": "And tomorrow?"}]
            })),
            msg(json!({"role": "assistant", "content": "Rain."})),
        ];
        store.append(&id, "model-b", &second, None).unwrap();

        let all: Vec<Message> = first.iter().chain(&second).cloned().collect();
        let conversation = store.get(&id).unwrap();
        assert_eq!(as_json(&conversation.messages), as_json(&all));
        assert_eq!(conversation.summary.id, id);
        assert_eq!(conversation.summary.turns, 2);
        assert_eq!(conversation.summary.model, "model-b");
        assert_eq!(conversation.summary.title, "What is the weather in Paris?");
    }

    #[test]
    fn appending_updates_the_time_but_not_the_creation_time() {
        let (store, clock) = store_with_clock(generous());
        let id = store.create("m", &[user("hi")], None).unwrap();
        clock.fetch_add(60, Ordering::SeqCst);
        store.append(&id, "m", &[user("again")], None).unwrap();
        let summary = store.get(&id).unwrap().summary;
        assert_eq!(summary.created_at, 1_700_000_000);
        assert_eq!(summary.updated_at, 1_700_000_060);
    }

    #[test]
    fn appending_nothing_still_counts_a_turn() {
        let store = memory_store();
        let id = store.create("m", &[], None).unwrap();
        store.append(&id, "m", &[], None).unwrap();
        let conversation = store.get(&id).unwrap();
        assert!(conversation.messages.is_empty());
        assert_eq!(conversation.summary.turns, 2);
    }

    #[test]
    fn new_ids_are_conv_and_32_hex_digits_and_differ() {
        let store = memory_store();
        let a = store.create("m", &[user("a")], None).unwrap();
        let b = store.create("m", &[user("b")], None).unwrap();
        assert_ne!(a, b);
        for id in [&a, &b] {
            let hex = id.as_ref().strip_prefix("conv_").unwrap();
            assert_eq!(hex.len(), 32);
            assert!(hex.bytes().all(|c| c.is_ascii_hexdigit()));
            assert_eq!(ConversationId::parse(id.as_ref()).unwrap(), *id);
            assert_eq!(id.to_string(), id.as_ref());
        }
        assert_eq!(
            serde_json::to_value(&a).unwrap(),
            Value::String(a.to_string())
        );
    }

    #[test]
    fn the_title_is_the_first_user_message_collapsed_and_cut_to_80_characters() {
        let title = |messages: &[Message]| {
            let store = memory_store();
            let id = store.create("m", messages, None).unwrap();
            store.get(&id).unwrap().summary.title
        };
        let system = msg(json!({"role": "system", "content": "You are a poet."}));

        assert_eq!(
            title(&[
                system.clone(),
                user("  Write\n\na   haiku\t"),
                user("later")
            ]),
            "Write a haiku"
        );
        let long = "word ".repeat(40);
        let cut = title(&[user(&long)]);
        assert_eq!(cut.chars().count(), 80);
        assert!(cut.ends_with("word…"), "{cut}");
        let exactly_80 = "é".repeat(80);
        assert_eq!(title(&[user(&exactly_80)]), exactly_80);
        assert_eq!(
            title(&[msg(json!({"role": "user", "content": [
                {"type": "text", "text": "Describe"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                {"type": "text", "text": "this image"}
            ]}))]),
            "Describe this image"
        );
        assert_eq!(title(&[system]), "(untitled)");
        assert_eq!(title(&[user("   \n ")]), "(untitled)");
        assert_eq!(title(&[]), "(untitled)");
    }

    #[test]
    fn the_list_shows_the_most_recently_updated_first_then_the_most_recently_created() {
        let (store, clock) = store_with_clock(generous());
        let older = store.create("m", &[user("older")], None).unwrap();
        clock.fetch_add(10, Ordering::SeqCst);
        let newer = store.create("m", &[user("newer")], None).unwrap();
        clock.fetch_add(10, Ordering::SeqCst);
        let newest = store.create("m", &[user("newest")], None).unwrap();
        clock.fetch_add(10, Ordering::SeqCst);
        store.append(&older, "m", &[user("bump")], None).unwrap();
        let ids = |limit| {
            store
                .list(limit)
                .unwrap()
                .into_iter()
                .map(|s| s.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(10), [older.clone(), newest.clone(), newer.clone()]);
        assert_eq!(ids(2), [older.clone(), newest.clone()]);
        assert!(ids(0).is_empty());

        // Same update time: the one created later comes first.
        store.append(&newer, "m", &[user("bump")], None).unwrap();
        assert_eq!(ids(2), [newer, older]);
    }

    #[test]
    fn conversations_created_in_the_same_second_list_newest_first() {
        let (store, _clock) = store_with_clock(generous());
        let a = store.create("m", &[user("a")], None).unwrap();
        let b = store.create("m", &[user("b")], None).unwrap();
        let listed: Vec<_> = store.list(10).unwrap().into_iter().map(|s| s.id).collect();
        assert_eq!(listed, [b, a]);
    }

    #[test]
    fn an_unknown_id_is_not_found_with_advice_to_start_over() {
        let store = memory_store();
        let id = ConversationId::parse("conv_nope").unwrap();
        let err = store.messages(&id).unwrap_err();
        assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "conversation not found: `conv_nope`. It may have been deleted or pruned; omit conversation_id to start a new conversation."
        );
        assert!(matches!(store.get(&id), Err(StoreError::NotFound { .. })));
        assert!(matches!(
            store.append(&id, "m", &[user("hello?")], None),
            Err(StoreError::NotFound { .. })
        ));
        assert!(store.list(10).unwrap().is_empty(), "append must not create");
    }

    #[test]
    fn deleting_removes_the_conversation_and_its_messages() {
        let store = memory_store();
        let gone = store.create("m", &[user("a"), user("b")], None).unwrap();
        let kept = store.create("m", &[user("c")], None).unwrap();
        assert!(store.delete(&gone).unwrap());
        assert!(
            !store.delete(&gone).unwrap(),
            "a second delete finds nothing"
        );
        assert!(matches!(
            store.messages(&gone),
            Err(StoreError::NotFound { .. })
        ));
        let orphans: i64 = store
            .lock()
            .query_row(
                "SELECT COUNT(*) FROM messages WHERE conversation_id = ?1",
                [gone.as_ref()],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(orphans, 0);
        assert_eq!(store.messages(&kept).unwrap().len(), 1);
    }

    #[test]
    fn retention_keeps_only_the_newest_max_conversations() {
        let (store, clock) = store_with_clock(Retention {
            max_conversations: 2,
            max_age: Duration::from_secs(30 * DAY as u64),
        });
        let first = store.create("m", &[user("1")], None).unwrap();
        clock.fetch_add(1, Ordering::SeqCst);
        let second = store.create("m", &[user("2")], None).unwrap();
        clock.fetch_add(1, Ordering::SeqCst);
        store.append(&first, "m", &[user("1 again")], None).unwrap();
        clock.fetch_add(1, Ordering::SeqCst);
        // Creating a third drops the least recently updated one: `second`.
        let third = store.create("m", &[user("3")], None).unwrap();
        let listed: Vec<_> = store.list(10).unwrap().into_iter().map(|s| s.id).collect();
        assert_eq!(listed, [third, first]);
        assert!(matches!(
            store.messages(&second),
            Err(StoreError::NotFound { .. })
        ));
        assert_eq!(store.prune().unwrap(), 0, "already within the limit");
    }

    #[test]
    fn retention_drops_conversations_not_updated_within_max_age() {
        let (store, clock) = store_with_clock(Retention {
            max_conversations: 100,
            max_age: Duration::from_secs(7 * DAY as u64),
        });
        let stale = store.create("m", &[user("stale")], None).unwrap();
        let active = store.create("m", &[user("active")], None).unwrap();
        clock.fetch_add(5 * DAY, Ordering::SeqCst);
        store
            .append(&active, "m", &[user("still here")], None)
            .unwrap();

        clock.fetch_add(2 * DAY, Ordering::SeqCst);
        assert_eq!(store.prune().unwrap(), 0, "exactly max_age old is kept");

        clock.fetch_add(1, Ordering::SeqCst);
        assert_eq!(store.prune().unwrap(), 1);
        assert!(matches!(
            store.get(&stale),
            Err(StoreError::NotFound { .. })
        ));
        assert_eq!(store.messages(&active).unwrap().len(), 2);

        // Creating also prunes.
        clock.fetch_add(30 * DAY, Ordering::SeqCst);
        let fresh = store.create("m", &[user("fresh")], None).unwrap();
        let listed: Vec<_> = store.list(10).unwrap().into_iter().map(|s| s.id).collect();
        assert_eq!(listed, [fresh]);
    }

    #[test]
    fn a_new_conversation_survives_its_own_pruning_even_with_no_room() {
        let (store, _clock) = store_with_clock(Retention {
            max_conversations: 0,
            max_age: Duration::ZERO,
        });
        let old = store.create("m", &[user("old")], None).unwrap();
        let new = store.create("m", &[user("new")], None).unwrap();
        let listed: Vec<_> = store.list(10).unwrap().into_iter().map(|s| s.id).collect();
        assert_eq!(listed, [new]);
        assert!(matches!(store.get(&old), Err(StoreError::NotFound { .. })));
        assert_eq!(store.prune().unwrap(), 1);
    }

    #[test]
    fn a_file_store_keeps_conversations_across_reopening() {
        let dir = TempDir::new("reopen");
        let location = StoreLocation::File(dir.0.join("nested").join("conversations.sqlite3"));
        let messages = vec![
            user("remember me"),
            msg(json!({"role": "assistant", "content": "I will."})),
        ];
        let id = {
            let store = ConversationStore::open(&location, generous()).unwrap();
            store.create("model-x", &messages, None).unwrap()
        };
        let store = ConversationStore::open(&location, generous()).unwrap();
        let conversation = store.get(&id).unwrap();
        assert_eq!(as_json(&conversation.messages), as_json(&messages));
        assert_eq!(conversation.summary.title, "remember me");
        assert_eq!(conversation.summary.model, "model-x");
        let version: i64 = store
            .lock()
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let mode: String = store
            .lock()
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .unwrap();
        assert_eq!(mode.to_ascii_lowercase(), "wal");
    }

    #[test]
    fn two_stores_on_one_file_see_each_others_writes() {
        let dir = TempDir::new("shared");
        let location = StoreLocation::File(dir.0.join("conversations.sqlite3"));
        let a = ConversationStore::open(&location, generous()).unwrap();
        let b = ConversationStore::open(&location, generous()).unwrap();

        let id = a.create("m", &[user("from a")], None).unwrap();
        b.append(&id, "m", &[user("from b")], None).unwrap();
        let texts: Vec<Value> = a
            .messages(&id)
            .unwrap()
            .iter()
            .map(|m| serde_json::to_value(m).unwrap()["content"].clone())
            .collect();
        assert_eq!(texts, [json!("from a"), json!("from b")]);
        assert_eq!(a.get(&id).unwrap().summary.turns, 2);

        assert!(b.delete(&id).unwrap());
        assert!(matches!(a.get(&id), Err(StoreError::NotFound { .. })));
    }

    #[test]
    fn writers_from_many_threads_do_not_lose_messages() {
        let dir = TempDir::new("threads");
        let location = StoreLocation::File(dir.0.join("conversations.sqlite3"));
        let store = ConversationStore::open(&location, generous()).unwrap();
        let id = store.create("m", &[], None).unwrap();
        std::thread::scope(|scope| {
            for t in 0..4 {
                let other = ConversationStore::open(&location, generous()).unwrap();
                let (store, id) = (&store, &id);
                scope.spawn(move || {
                    for i in 0..10 {
                        let which = if i % 2 == 0 { store } else { &other };
                        which
                            .append(id, "m", &[user(&format!("{t}-{i}"))], None)
                            .unwrap();
                    }
                });
            }
        });
        let conversation = store.get(&id).unwrap();
        assert_eq!(conversation.messages.len(), 40);
        assert_eq!(conversation.summary.turns, 41);
    }

    #[test]
    fn a_file_from_a_newer_build_is_refused_with_advice() {
        let dir = TempDir::new("newer");
        let path = dir.0.join("conversations.sqlite3");
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let err = ConversationStore::open(&StoreLocation::File(path), generous()).unwrap_err();
        assert!(
            matches!(err, StoreError::SchemaTooNew { found, .. } if found == SCHEMA_VERSION + 1),
            "{err:?}"
        );
        assert!(err.to_string().contains(LOCATION_SETTING), "{err}");
    }

    #[test]
    fn a_reply_stored_as_cut_off_comes_back_ending_with_a_note_saying_so() {
        let store = memory_store();
        let answer = msg(json!({"role": "assistant", "content": "The answer is forty"}));
        let id = store
            .create("m", &[user("What is it?"), answer.clone()], Some("stalled"))
            .unwrap();
        store
            .append(&id, "m", &[user("Go on"), answer], None)
            .unwrap();
        let texts: Vec<Value> = store
            .messages(&id)
            .unwrap()
            .iter()
            .map(|m| serde_json::to_value(m).unwrap()["content"].clone())
            .collect();
        assert_eq!(
            texts,
            [
                json!("What is it?"),
                json!("The answer is forty\n\n[cut off: stalled; this answer is incomplete]"),
                json!("Go on"),
                json!("The answer is forty"),
            ]
        );

        // A cut-off tool call with no text gets the note as its text.
        let call = msg(
            json!({"role": "assistant", "content": null, "tool_calls": [{
                "id": "call_1", "type": "function",
                "function": {"name": "f", "arguments": "{\"a\":"}
            }]}),
        );
        let id = store.create("m", &[call], Some("out of time")).unwrap();
        let message = serde_json::to_value(&store.messages(&id).unwrap()[0]).unwrap();
        assert_eq!(
            message["content"],
            "[cut off: out of time; this answer is incomplete]"
        );
        assert_eq!(message["tool_calls"][0]["id"], "call_1");
    }

    #[test]
    fn a_version_1_file_is_migrated_keeping_its_conversations() {
        let dir = TempDir::new("v1");
        let path = dir.0.join("conversations.sqlite3");
        {
            let conn = Connection::open(&path).unwrap();
            schema::create_v1(&conn).unwrap();
            conn.execute_batch(
                r#"INSERT INTO conversations VALUES ('conv_old', 'Old one', 'm', 1, 10, 10, 1);
                   INSERT INTO messages VALUES ('conv_old', 0, '{"role":"user","content":"hi"}');
                   INSERT INTO messages VALUES ('conv_old', 1, '{"role":"assistant","content":"hello"}');"#,
            )
            .unwrap();
        }
        let store = ConversationStore::open(&StoreLocation::File(path), generous()).unwrap();
        let old = ConversationId::parse("conv_old").unwrap();
        let conversation = store.get(&old).unwrap();
        assert_eq!(conversation.summary.title, "Old one");
        assert_eq!(
            as_json(&conversation.messages),
            json!([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}])
        );
        let version: i64 = store
            .lock()
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, 2);
        // The new column works on the old file.
        store
            .append(&old, "m", &[user("more"), user("cut")], Some("stalled"))
            .unwrap();
        let last = store.messages(&old).unwrap().pop().unwrap();
        assert_eq!(
            serde_json::to_value(last).unwrap()["content"],
            "cut\n\n[cut off: stalled; this answer is incomplete]"
        );
    }

    /// Opens a store at `path`, expecting a refusal; returns its text after checking the
    /// file was not changed and nothing was created beside it.
    fn refused_unchanged(dir: &TempDir, path: &Path) -> String {
        let before = std::fs::read(path).unwrap();
        let err =
            ConversationStore::open(&StoreLocation::File(path.to_owned()), generous()).unwrap_err();
        assert!(matches!(err, StoreError::NotAStore { .. }), "{err:?}");
        assert_eq!(
            std::fs::read(path).unwrap(),
            before,
            "the file is unchanged"
        );
        let mut beside: Vec<_> = std::fs::read_dir(&dir.0)
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

    #[test]
    fn a_foreign_sqlite_database_is_refused_unchanged_naming_its_tables() {
        let dir = TempDir::new("foreign");
        let path = dir.0.join("shop.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);
                 CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER, total REAL);
                 INSERT INTO users (name) VALUES ('ada');",
            )
            .unwrap();
        }
        let text = refused_unchanged(&dir, &path);
        assert!(
            text.contains(
                "is not a conversation store but an SQLite database this server did not create (tables: orders, users); it was left unchanged"
            ),
            "{text}"
        );
        assert!(!text.contains("CREATE"), "no schema SQL: {text}");
    }

    #[test]
    fn a_file_that_is_not_sqlite_is_refused_unchanged() {
        let dir = TempDir::new("notes");
        let path = dir.0.join("notes.txt");
        std::fs::write(&path, "my notes, not a database\n").unwrap();
        let text = refused_unchanged(&dir, &path);
        assert!(
            text.contains("is not a conversation store but a file that is not an SQLite database"),
            "{text}"
        );
    }

    #[test]
    fn a_damaged_store_is_refused_in_one_line_without_the_schema_sql() {
        let dir = TempDir::new("damaged");
        let path = dir.0.join("conversations.sqlite3");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE conversations (id TEXT); CREATE TABLE messages (body TEXT);
                 PRAGMA user_version = 1;",
            )
            .unwrap();
        }
        let text = ConversationStore::open(&StoreLocation::File(path), generous())
            .unwrap_err()
            .to_string();
        assert!(text.contains("no such column: updated_at"), "{text}");
        assert!(!text.contains("CREATE") && !text.contains('\n'), "{text}");
    }

    #[test]
    fn a_store_that_cannot_be_opened_names_the_path_and_the_setting() {
        let dir = TempDir::new("unopenable");
        // A directory where the file should be.
        let path = dir.0.join("is-a-directory");
        std::fs::create_dir_all(&path).unwrap();
        let err =
            ConversationStore::open(&StoreLocation::File(path.clone()), generous()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("VULTR_MCP_CONVERSATIONS"), "{text}");
        assert!(text.contains("`memory`"), "{text}");
    }

    #[test]
    fn conversation_ids_from_clients_are_checked() {
        for good in [
            "conv_0123456789abcdef0123456789abcdef",
            "a",
            "A-b_9",
            &"x".repeat(100),
        ] {
            let id: ConversationId = good.parse().unwrap();
            assert_eq!(id.as_ref(), good);
        }
        for bad in [
            "",
            "conv 1",
            "conv/../x",
            "conv_1;DROP TABLE conversations",
            "émoji",
            "conv_1\n",
            &"x".repeat(101),
        ] {
            let err = ConversationId::parse(bad).unwrap_err();
            assert!(matches!(err, StoreError::InvalidId { .. }), "{bad:?}");
            assert!(err.to_string().contains("conversation_id"), "{err}");
        }
        let long = ConversationId::parse(&"y".repeat(500))
            .unwrap_err()
            .to_string();
        assert!(
            long.contains("(500 characters)") && long.len() < 400,
            "{long}"
        );
    }

    #[test]
    fn locations_are_parsed_from_the_setting() {
        assert_eq!(StoreLocation::parse("memory"), StoreLocation::InMemory);
        assert_eq!(StoreLocation::parse(" MEMORY "), StoreLocation::InMemory);
        assert_eq!(StoreLocation::parse(":memory:"), StoreLocation::InMemory);
        assert_eq!(
            StoreLocation::parse("/var/lib/x/conv.db"),
            StoreLocation::File(PathBuf::from("/var/lib/x/conv.db"))
        );
        assert_eq!(
            StoreLocation::parse("relative.sqlite3"),
            StoreLocation::File(PathBuf::from("relative.sqlite3"))
        );
        assert_eq!(StoreLocation::parse(""), StoreLocation::default_file());
        if let Some(home) = dirs::home_dir() {
            assert_eq!(
                StoreLocation::parse("~/conv.db"),
                StoreLocation::File(home.join("conv.db"))
            );
        }
        let StoreLocation::File(default) = StoreLocation::default_file() else {
            panic!("the default is a file");
        };
        assert!(default.ends_with("vultr-inference-mcp/conversations.sqlite3"));
        assert_eq!(StoreLocation::InMemory.to_string(), "memory");
    }
}
