//! SQLite's errors as store errors: a lock timeout told apart from other failures, and
//! SQLite's message shown without the SQL it was given.

use std::fmt;

use rusqlite::ErrorCode;

use super::BUSY_TIMEOUT;
use crate::store::StoreError;

/// What a unit of work on the database failed with: SQLite, or the store's own answer
/// (such as not found).
pub(super) enum Failed {
    /// SQLite's error, to be reported with the action and the location.
    Sqlite(rusqlite::Error),
    /// An answer already phrased.
    Store(StoreError),
}

impl From<rusqlite::Error> for Failed {
    /// SQLite's error.
    fn from(error: rusqlite::Error) -> Self {
        Failed::Sqlite(error)
    }
}

impl From<StoreError> for Failed {
    /// The store's answer.
    fn from(error: StoreError) -> Self {
        Failed::Store(error)
    }
}

impl Failed {
    /// The store error for this failure while doing `action` on the store at `location`.
    pub(super) fn during(self, action: &'static str, location: &str) -> StoreError {
        if matches!(self, Failed::Sqlite(_)) {
            crate::observe::metrics::store_error("sqlite");
        }
        match self {
            Failed::Store(error) => error,
            Failed::Sqlite(source) if busy(&source) => StoreError::Busy {
                location: location.to_owned(),
                action,
                waited: BUSY_TIMEOUT,
            },
            Failed::Sqlite(source) => StoreError::Database {
                location: location.to_owned(),
                action,
                source: Box::new(SqliteFailure(source)),
            },
        }
    }
}

/// Whether SQLite gave up waiting for another connection's lock.
fn busy(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// Wraps an error met while opening the store, telling a lock timeout apart.
pub(super) fn open_error(label: &str, source: rusqlite::Error) -> StoreError {
    if busy(&source) {
        return Failed::Sqlite(source).during("opening it", label);
    }
    crate::observe::metrics::store_error("sqlite");
    StoreError::Open {
        location: label.to_owned(),
        source: Box::new(SqliteFailure(source)),
    }
}

/// Whether a write failed for want of disk space (a failed write is an I/O error when
/// not even part of it fitted).
pub(super) fn out_of_space(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::DiskFull | ErrorCode::SystemIoFailure)
    )
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
