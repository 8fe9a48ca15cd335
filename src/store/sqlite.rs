//! The SQLite store, for a file or for `memory`: conversations (`conversations.rs`, with
//! their retention in `retention.rs`) and task records (`tasks.rs`) in one database, its
//! schema and migrations in `schema.rs`, the file's checks in `file.rs`. Every statement
//! but pruning names the owner, so no call reaches another owner's rows.
//!
//! Several server processes may share one file: file stores use WAL mode, a 5 s busy
//! timeout and `BEGIN IMMEDIATE` for writes, and run their work on tokio's blocking
//! threads, since a write may wait for another process's lock. The file and its folder are
//! private to the system user running the server; a file that is not a conversation store
//! is refused before anything writes to it. `memory` is an SQLite in-memory database, so it
//! keeps exactly the file's rules (order, retention, cut-off notes); it never waits for
//! another process, so its work runs inline (the hop to a blocking thread costs more than
//! the work).

mod collections;
mod conversations;
mod failure;
pub(super) mod file;
mod ledger;
mod media;
mod retention;
pub(super) mod schema;
mod tasks;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::{Retention, StoreError, StoreLocation};
use failure::{Failed, open_error};

pub(super) use collections::open_collection_store;
pub(super) use ledger::open_ledger;
pub(super) use tasks::open_task_store;

/// Opens (creating when missing) the SQLite media store at `location`: the same database
/// as the conversations when it is a file; its own when it is `memory`.
pub(super) async fn open_media_store(
    location: &StoreLocation,
) -> Result<Arc<dyn super::MediaStore>, StoreError> {
    // Conversations are never written through this handle, so their retention is moot.
    let retention = Retention {
        max_conversations: usize::MAX,
        max_age: Duration::MAX,
    };
    Ok(Arc::new(SqliteStore::open(location, retention).await?))
}

/// How long a write waits for another process's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A clock giving unix seconds.
type Clock = Box<dyn Fn() -> i64 + Send + Sync>;

/// The system clock, in unix seconds.
fn system_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The SQLite store; share it between tasks (it is `Send + Sync`).
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

    /// The connection, recovering it if a panic poisoned the lock (transactions roll back on drop).
    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `work` with the connection locked; an SQLite error is reported as failing
    /// while doing `action`.
    fn with<T>(
        &self,
        action: &'static str,
        work: impl FnOnce(&mut Connection) -> Result<T, Failed>,
    ) -> Result<T, StoreError> {
        work(&mut self.lock()).map_err(|failed| failed.during(action, &self.location))
    }
}

/// A write transaction on `conn`, holding the write lock from its start.
fn write_transaction(conn: &mut Connection) -> rusqlite::Result<Transaction<'_>> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
}

/// A count as an SQL integer, saturating.
fn sql_count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
