//! The Postgres store's failures as clients see them: what went wrong, without what
//! names the database (the log has that).

use std::fmt;

use super::POOL_TIMEOUT;
use super::url::Identifying;
use crate::store::StoreError;

/// The store error a client is shown for a failure while doing `action`: the kind of store and
/// what went wrong, without what names the database (user, host, port, database name). The
/// log gets all of it, as a warning.
pub(super) fn failure(
    location: &str,
    identifying: &Identifying,
    action: &'static str,
    source: DatabaseError,
) -> StoreError {
    crate::observe::metrics::store_error("postgres");
    let said = source.to_string();
    tracing::warn!(store = %location, "the Postgres store failed while {action}: {said}");
    StoreError::Postgres {
        action,
        source: Box::new(DatabaseError::Message(identifying.hide(&said))),
    }
}

/// What the driver, the pool or TLS set-up reported, shown in one line.
#[derive(Debug)]
pub(super) enum DatabaseError {
    /// The driver's error.
    Driver(tokio_postgres::Error),
    /// Anything else, already phrased.
    Message(String),
}

impl From<tokio_postgres::Error> for DatabaseError {
    /// The driver's error as it is.
    fn from(error: tokio_postgres::Error) -> Self {
        DatabaseError::Driver(error)
    }
}

impl From<deadpool_postgres::PoolError> for DatabaseError {
    /// The pool's error: a timeout says what it waited for; a failed connection is the
    /// driver's error.
    fn from(error: deadpool_postgres::PoolError) -> Self {
        use deadpool_postgres::{PoolError, TimeoutType};
        match error {
            PoolError::Backend(error) => DatabaseError::Driver(error),
            PoolError::Timeout(TimeoutType::Wait) => DatabaseError::Message(format!(
                "no free connection within {}s (every connection of the pool is busy; {} raises the pool size)",
                POOL_TIMEOUT.as_secs(),
                crate::setting::DB_POOL
            )),
            PoolError::Timeout(_) => {
                DatabaseError::Message("connecting took too long (no answer in time)".to_owned())
            }
            other => DatabaseError::Message(other.to_string()),
        }
    }
}

impl fmt::Display for DatabaseError {
    /// The message, with the server's own detail or the underlying cause.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseError::Driver(error) => match error.as_db_error() {
                Some(db) => write!(f, "{}: {}", db.severity(), db.message()),
                None => {
                    let shown = error.to_string();
                    f.write_str(&shown)?;
                    match std::error::Error::source(error) {
                        Some(cause) if !shown.contains(&cause.to_string()) => {
                            write!(f, " ({cause})")
                        }
                        _ => Ok(()),
                    }
                }
            },
            DatabaseError::Message(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for DatabaseError {
    /// The driver's error, when it is one.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DatabaseError::Driver(error) => Some(error),
            DatabaseError::Message(_) => None,
        }
    }
}
