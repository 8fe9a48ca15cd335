//! Tasks, whatever the store: a task's record and the [`TaskStore`] trait that keeps
//! records, what `tasks/get` reports from any process sharing the store.

use std::collections::HashMap;

use async_trait::async_trait;
use serde_json::Value;

use super::{StoreError, StoreResult};
use crate::principal::Principal;

/// Where a task is: still working, or how it ended.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskState {
    /// The call is running.
    Working,
    /// The call returned this result (a tool result, `isError` ones included).
    Completed {
        /// The result exactly as the call would have returned it.
        result: Value,
    },
    /// The call ended without a result: this JSON-RPC error object says why.
    Failed {
        /// `{"code": .., "message": ..}`.
        error: Value,
    },
    /// The call was stopped on request.
    Cancelled,
}

impl TaskState {
    /// The status as the protocol spells it (and the store keeps it).
    pub fn status(&self) -> &'static str {
        match self {
            TaskState::Working => "working",
            TaskState::Completed { .. } => "completed",
            TaskState::Failed { .. } => "failed",
            TaskState::Cancelled => "cancelled",
        }
    }

    /// The JSON kept with a terminal status: the result or the error.
    pub fn outcome(&self) -> Option<&Value> {
        match self {
            TaskState::Completed { result } => Some(result),
            TaskState::Failed { error } => Some(error),
            TaskState::Working | TaskState::Cancelled => None,
        }
    }

    /// The state for a stored `status` and `outcome` (JSON text); what is wrong with them
    /// otherwise, to follow "task `id`" in an error.
    pub(super) fn from_stored(status: &str, outcome: Option<&str>) -> Result<TaskState, String> {
        let outcome = outcome
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| format!("has an outcome that is not JSON ({e})"))?;
        Ok(match (status, outcome) {
            ("working", _) => TaskState::Working,
            ("cancelled", _) => TaskState::Cancelled,
            ("completed", Some(result)) => TaskState::Completed { result },
            ("failed", Some(error)) => TaskState::Failed { error },
            _ => return Err(format!("has an unknown status {status:?}")),
        })
    }

    /// The outcome as the store keeps it (JSON text), when there is one.
    pub(super) fn stored_outcome(&self) -> StoreResult<Option<String>> {
        self.outcome()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|source| StoreError::Encode { source })
    }
}

/// One task as stored. Times are unix milliseconds (the task service's clock).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRecord {
    /// The id the client polls with.
    pub id: String,
    /// Working, or how it ended.
    pub state: TaskState,
    /// A line on what the task is doing (tokens so far) or how it ended.
    pub status_message: Option<String>,
    /// When the task was created.
    pub created_at: i64,
    /// When its state or message last changed.
    pub updated_at: i64,
    /// When the process running it last said it still was.
    pub heartbeat_at: i64,
    /// When it is deleted: creation + the TTL.
    pub expires_at: i64,
    /// Whether someone asked to cancel it.
    pub cancel_requested: bool,
}

impl TaskRecord {
    /// A working task made now (`now`), kept for `ttl_ms`.
    pub fn working(now: i64, ttl_ms: i64, status_message: &str) -> Self {
        Self {
            id: new_task_id(),
            state: TaskState::Working,
            status_message: Some(status_message.to_owned()),
            created_at: now,
            updated_at: now,
            heartbeat_at: now,
            expires_at: now.saturating_add(ttl_ms),
            cancel_requested: false,
        }
    }
}

/// How a working task ends, as [`TaskStore::finish`] records it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskEnd {
    /// The task's id.
    pub id: String,
    /// How it ended (a terminal state).
    pub state: TaskState,
    /// The line saying how it ended.
    pub status_message: String,
    /// When it ended, in unix milliseconds.
    pub at: i64,
    /// When given, it ends only if its heartbeat is older than this (another process
    /// taking a task whose process stopped for failed).
    pub heartbeat_before: Option<i64>,
}

impl TaskEnd {
    /// The end of task `id` in `state` at `at`, whatever its heartbeat.
    pub fn new(id: &str, state: TaskState, status_message: &str, at: i64) -> Self {
        Self {
            id: id.to_owned(),
            state,
            status_message: status_message.to_owned(),
            at,
            heartbeat_before: None,
        }
    }
}

/// A task as the process running it names it in a batch: its owner and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskKey {
    /// Who the task belongs to.
    pub owner: Principal,
    /// The task's id.
    pub id: String,
}

/// One heartbeat of a batch ([`TaskStore::beat_many`]): the task, and its new status
/// message when one came since the last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beat {
    /// The task.
    pub task: TaskKey,
    /// The status message to store, if a new one came.
    pub status_message: Option<String>,
}

/// A fresh, unguessable task id.
fn new_task_id() -> String {
    format!("task_{}", uuid::Uuid::new_v4().simple())
}

/// Keeps task records. Every call names the owner, and sees only the owner's tasks:
/// another owner's id is not found, exactly as an id that never existed; an expired task
/// (past `expires_at`) is not found either. Times are given by the caller (unix ms).
#[async_trait]
pub trait TaskStore: Send + Sync {
    /// Stores `task` for `owner` (durably, before the caller hands out its id) and deletes
    /// expired tasks.
    async fn create(&self, owner: &Principal, task: &TaskRecord) -> StoreResult<()>;

    /// `owner`'s task `id` as of `now`; `None` when there is none or it expired.
    async fn get(&self, owner: &Principal, id: &str, now: i64) -> StoreResult<Option<TaskRecord>>;

    /// Whether cancelling a working task was asked; `None` when it is gone or ended.
    async fn cancel_requested(&self, owner: &Principal, id: &str) -> StoreResult<Option<bool>>;

    /// Asks to cancel `owner`'s task (the process running it notices); false when
    /// `owner` has no such task. A task that already ended stays as it ended.
    async fn request_cancel(&self, owner: &Principal, id: &str, now: i64) -> StoreResult<bool>;

    /// Ends `owner`'s working task as `end` says (with its `heartbeat_before`, only when
    /// the heartbeat is older than that). False when it had already ended, is gone, or its
    /// heartbeat is fresh: the first end wins.
    async fn finish(&self, owner: &Principal, end: &TaskEnd) -> StoreResult<bool>;

    /// The cancel flags of many running tasks in one read: for each of `tasks` still
    /// working (and owned by the owner named with it), its id and whether cancelling was
    /// asked. A task gone, ended or of another owner is absent.
    async fn cancel_flags(&self, tasks: &[TaskKey]) -> StoreResult<HashMap<String, bool>>;

    /// Many heartbeats in one write: each working task of `beats` (of the owner named with
    /// it) gets `heartbeat_at = now` and, when given, its new status message (and then
    /// `updated_at = now`).
    async fn beat_many(&self, beats: &[Beat], now: i64) -> StoreResult<()>;

    /// Deletes every task past its expiry at `now`, whoever owns it; returns how many.
    async fn prune(&self, now: i64) -> StoreResult<usize>;
}
