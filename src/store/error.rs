//! What went wrong in a conversation store, phrased for whoever reads the tool result:
//! each message names the kind of store (a SQLite file, named, or `memory`; Postgres, whose
//! database, user, host and port only the log names) and says what to do.

use std::path::PathBuf;
use std::time::Duration;

use super::ConversationId;
use super::conversation::ID_MAX_LEN;
use super::location::LOCATION_SETTING;

/// What a store call returns: its answer, or why it failed.
pub type StoreResult<T> = Result<T, StoreError>;

/// A failure reported by a store's database, already phrased for a reader.
pub type DatabaseFailure = Box<dyn std::error::Error + Send + Sync>;

/// What went wrong in the conversation store.
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
    /// The store could not be opened; a use a few seconds later tries again. Shared by every
    /// call that waited for that open.
    #[error("conversations are unavailable: {0}")]
    Unavailable(std::sync::Arc<StoreError>),
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
    /// The store could not be opened or set up.
    #[error(
        "cannot open the conversation store `{location}`: {source}. Set {LOCATION_SETTING} to a writable file path, or to `memory` to keep conversations in memory only."
    )]
    Open {
        /// The file (or `memory`).
        location: String,
        /// What the database reported.
        source: DatabaseFailure,
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
    /// The store was written by a newer version of this server.
    #[error(
        "the conversation store `{location}` has schema version {found}, newer than this build understands ({understood}). Upgrade vultr-inference-mcp, or set {LOCATION_SETTING} to another file or database (or `memory`)."
    )]
    SchemaTooNew {
        /// The file.
        location: String,
        /// The version found in the store.
        found: i64,
        /// The newest version this build reads.
        understood: i64,
    },
    /// Another process held the store locked for longer than the store waits.
    #[error(
        "the conversation store `{location}` is locked by another process (waited {}s while {action}); try again in a moment.",
        .waited.as_secs()
    )]
    Busy {
        /// The file.
        location: String,
        /// What was being done.
        action: &'static str,
        /// How long it waited for the lock.
        waited: Duration,
    },
    /// Any other database failure.
    #[error(
        "the conversation store `{location}` failed while {action}: {source}. If this persists, check that the file is writable and the disk not full, or set {LOCATION_SETTING} to another file (or `memory`)."
    )]
    Database {
        /// The file (or `memory`).
        location: String,
        /// What was being done.
        action: &'static str,
        /// What the database reported.
        source: DatabaseFailure,
    },
    /// The Postgres store could not be reached, or failed a statement. The message names
    /// neither the database nor its user, host or port (the log does, as a warning).
    #[error(
        "the conversation store (Postgres) failed while {action}: {source}. Check that the Postgres server named by {LOCATION_SETTING} is running and reachable from this server and that the URL's user, password and database are right (the server's log names them, as a warning), or set {LOCATION_SETTING} to a file path or `memory`; calls a few seconds later try again."
    )]
    Postgres {
        /// What was being done.
        action: &'static str,
        /// What the driver or the pool reported, with the database's names hidden.
        source: DatabaseFailure,
    },
    /// The worker doing the store's blocking work stopped before finishing (it panicked,
    /// or the runtime is shutting down).
    #[error(
        "the conversation store `{location}` stopped before finishing ({source}); try again, and if this persists, report it as a bug."
    )]
    Interrupted {
        /// The file.
        location: String,
        /// Why the worker stopped.
        source: tokio::task::JoinError,
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
