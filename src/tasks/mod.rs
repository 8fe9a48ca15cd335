//! Long calls as tasks (the MCP tasks extension): a call still running after
//! `VULTR_MCP_TASK_AFTER` goes on in the background while its caller polls a durable task
//! record by id. No rmcp types here; `src/mcp/tasks.rs` turns these into the protocol's.
//!
//! [`crate::store::TaskStore`] keeps the records, owned by a principal like conversations
//! (SQLite file or memory, or Postgres shared by replicas; any shared store works, since a
//! record carries everything another process needs: the cancel flag, the heartbeat lease
//! and the outcome); this module is the service over it and uses only the store's trait. [`Tasks`] admits calls within each principal's quota, starts them, records
//! how each task ended and answers `get` and `cancel`; one watcher per process reads the
//! cancel flags and writes the status messages and heartbeats of all its running tasks
//! in batched store calls.

mod clock;
mod quota;
mod runner;
#[cfg(test)]
mod testing;
mod watcher;

pub use crate::store::{TaskRecord, TaskState};
pub use clock::WallClock;
pub use quota::TooManyTasks;
pub use runner::{Admission, CancelCheck, PRUNE_EVERY, Started, StatusLine, TaskError, Tasks};

pub(crate) use clock::rfc3339;
pub(crate) use runner::POLL_INTERVAL;
