//! Task records in the SQLite store (file or memory): one row per task in `tasks`
//! (schema version 4). Every statement but pruning names the owner; a task past its
//! expiry reads as missing even before pruning deletes it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::{Database, SqliteStore, write_transaction};
use crate::principal::Principal;
use crate::store::StoreResult;
use crate::store::{
    Beat, Retention, StoreError, StoreLocation, TaskEnd, TaskKey, TaskRecord, TaskState, TaskStore,
};

/// Deletes the tasks expired at ?1.
const DROP_EXPIRED: &str = "DELETE FROM tasks WHERE expires_at <= ?1";

/// The columns a [`TaskRecord`] is read from, in [`record_from_row`]'s order.
const COLUMNS: &str = "id, status, outcome, status_message, created_at, updated_at, heartbeat_at, expires_at, cancel_requested";

/// Opens (creating when missing) the SQLite task store at `location`: the same database as
/// the conversations when it is a file; its own when it is `memory`.
pub(in crate::store) async fn open_task_store(
    location: &StoreLocation,
) -> StoreResult<Arc<dyn TaskStore>> {
    // Conversations are never written through this handle, so their retention is moot.
    let retention = Retention {
        max_conversations: usize::MAX,
        max_age: Duration::MAX,
    };
    let store = SqliteStore::open(location, retention).await?;
    Ok(Arc::new(store))
}

#[async_trait]
impl TaskStore for SqliteStore {
    async fn create(&self, owner: &Principal, task: &TaskRecord) -> StoreResult<()> {
        let outcome = task.state.stored_outcome()?;
        let (owner, task) = (owner.clone(), task.clone());
        self.run(move |db| db.create_task(&owner, &task, outcome.as_deref()))
            .await
    }

    async fn get(&self, owner: &Principal, id: &str, now: i64) -> StoreResult<Option<TaskRecord>> {
        let (owner, id) = (owner.clone(), id.to_owned());
        self.run(move |db| db.get_task(&owner, &id, now)).await
    }

    async fn cancel_requested(&self, owner: &Principal, id: &str) -> StoreResult<Option<bool>> {
        let (owner, id) = (owner.clone(), id.to_owned());
        self.run(move |db| {
            db.task_query(
                "reading a task",
                "SELECT cancel_requested FROM tasks
                 WHERE id = ?1 AND owner = ?2 AND status = 'working'",
                params![id, owner.as_str()],
            )
        })
        .await
    }

    async fn request_cancel(&self, owner: &Principal, id: &str, now: i64) -> StoreResult<bool> {
        let (owner, id) = (owner.clone(), id.to_owned());
        self.run(move |db| {
            db.task_write(
                "cancelling a task",
                "UPDATE tasks SET cancel_requested = 1,
                     updated_at = CASE WHEN status = 'working' THEN ?3 ELSE updated_at END
                 WHERE id = ?1 AND owner = ?2 AND expires_at > ?3",
                params![id, owner.as_str(), now],
            )
        })
        .await
    }

    async fn finish(&self, owner: &Principal, end: &TaskEnd) -> StoreResult<bool> {
        let outcome = end.state.stored_outcome()?;
        let (owner, end) = (owner.clone(), end.clone());
        self.run(move |db| {
            db.task_write(
                "recording how a task ended",
                "UPDATE tasks SET status = ?3, outcome = ?4, status_message = ?5, updated_at = ?6
                 WHERE id = ?1 AND owner = ?2 AND status = 'working'
                   AND (?7 IS NULL OR heartbeat_at < ?7)",
                params![
                    end.id,
                    owner.as_str(),
                    end.state.status(),
                    outcome,
                    end.status_message,
                    end.at,
                    end.heartbeat_before
                ],
            )
        })
        .await
    }

    async fn cancel_flags(&self, tasks: &[TaskKey]) -> StoreResult<HashMap<String, bool>> {
        if tasks.is_empty() {
            return Ok(HashMap::new());
        }
        let owners: HashMap<String, String> = tasks
            .iter()
            .map(|task| (task.id.clone(), task.owner.as_str().to_owned()))
            .collect();
        let ids = serde_json::Value::from(owners.keys().cloned().collect::<Vec<_>>()).to_string();
        self.run(move |db| db.cancel_flags(&ids, &owners)).await
    }

    async fn beat_many(&self, beats: &[Beat], now: i64) -> StoreResult<()> {
        if beats.is_empty() {
            return Ok(());
        }
        let beats = beats.to_vec();
        self.run(move |db| db.beat_many(&beats, now)).await
    }

    async fn prune(&self, now: i64) -> StoreResult<usize> {
        self.run(move |db| {
            db.with("deleting expired tasks", |conn| {
                Ok(conn.prepare_cached(DROP_EXPIRED)?.execute([now])?)
            })
        })
        .await
    }
}

impl Database {
    /// Inserts `owner`'s new task, deleting expired ones in the same transaction.
    fn create_task(
        &self,
        owner: &Principal,
        task: &TaskRecord,
        outcome: Option<&str>,
    ) -> StoreResult<()> {
        self.with("saving a new task", |conn| {
            let tx = write_transaction(conn)?;
            tx.prepare_cached(DROP_EXPIRED)?
                .execute([task.created_at])?;
            tx.prepare_cached(
                "INSERT INTO tasks (id, owner, status, status_message, outcome, cancel_requested,
                     created_at, updated_at, heartbeat_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(params![
                task.id,
                owner.as_str(),
                task.state.status(),
                task.status_message,
                outcome,
                task.cancel_requested,
                task.created_at,
                task.updated_at,
                task.heartbeat_at,
                task.expires_at,
            ])?;
            Ok(tx.commit()?)
        })
    }

    /// `owner`'s unexpired task `id`.
    fn get_task(&self, owner: &Principal, id: &str, now: i64) -> StoreResult<Option<TaskRecord>> {
        let row = self.with("reading a task", |conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM tasks WHERE id = ?1 AND owner = ?2 AND expires_at > ?3"
                ))?
                .query_row(params![id, owner.as_str(), now], record_from_row)
                .optional()?)
        })?;
        row.map(|row| row.decode(&self.location)).transpose()
    }

    /// The cancel flags of the working tasks among `ids` (a JSON array), each kept only
    /// when its owner is the one `owners` names for it.
    fn cancel_flags(
        &self,
        ids: &str,
        owners: &HashMap<String, String>,
    ) -> StoreResult<HashMap<String, bool>> {
        self.with("reading running tasks", |conn| {
            let mut select = conn.prepare_cached(
                "SELECT id, owner, cancel_requested FROM tasks
                 WHERE id IN (SELECT value FROM json_each(?1)) AND status = 'working'",
            )?;
            let rows = select.query_map([ids], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, bool>(2)?,
                ))
            })?;
            let mut flags = HashMap::new();
            for row in rows {
                let (id, owner, cancel) = row?;
                if owners.get(&id) == Some(&owner) {
                    flags.insert(id, cancel);
                }
            }
            Ok(flags)
        })
    }

    /// Every heartbeat of `beats` at `now`, in one transaction.
    fn beat_many(&self, beats: &[Beat], now: i64) -> StoreResult<()> {
        self.with("recording heartbeats of running tasks", |conn| {
            let tx = conn.transaction()?;
            {
                let mut update = tx.prepare_cached(
                    "UPDATE tasks SET heartbeat_at = ?3,
                         status_message = COALESCE(?4, status_message),
                         updated_at = CASE WHEN ?4 IS NULL THEN updated_at ELSE ?3 END
                     WHERE id = ?1 AND owner = ?2 AND status = 'working'",
                )?;
                for beat in beats {
                    update.execute(params![
                        beat.task.id,
                        beat.task.owner.as_str(),
                        now,
                        beat.status_message
                    ])?;
                }
            }
            Ok(tx.commit()?)
        })
    }

    /// One flag from a statement on one task; `None` when no row matched.
    fn task_query(
        &self,
        action: &'static str,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> StoreResult<Option<bool>> {
        self.with(action, |conn| {
            Ok(conn
                .prepare_cached(sql)?
                .query_row(params, |row| row.get(0))
                .optional()?)
        })
    }

    /// Runs a write on one task; true when it changed a row.
    fn task_write(
        &self,
        action: &'static str,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> StoreResult<bool> {
        self.with(action, |conn| {
            Ok(conn.prepare_cached(sql)?.execute(params)? > 0)
        })
    }
}

/// A row as read, before its outcome is decoded.
struct Row {
    record: TaskRecord,
    status: String,
    outcome: Option<String>,
}

impl Row {
    /// The record, its state decoded from the stored status and JSON.
    fn decode(mut self, location: &str) -> StoreResult<TaskRecord> {
        self.record.state =
            TaskState::from_stored(&self.status, self.outcome.as_deref()).map_err(|what| {
                StoreError::Database {
                    location: location.to_owned(),
                    action: "reading a task",
                    source: format!("task `{}` {what}", self.record.id).into(),
                }
            })?;
        Ok(self.record)
    }
}

/// Reads [`COLUMNS`].
fn record_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row {
        record: TaskRecord {
            id: row.get(0)?,
            state: TaskState::Working,
            status_message: row.get(3)?,
            created_at: row.get(4)?,
            updated_at: row.get(5)?,
            heartbeat_at: row.get(6)?,
            expires_at: row.get(7)?,
            cancel_requested: row.get(8)?,
        },
        status: row.get(1)?,
        outcome: row.get(2)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::contract::check_task_contract;

    #[tokio::test]
    async fn the_memory_task_store_keeps_the_task_contract() {
        let store = open_task_store(&StoreLocation::InMemory).await.unwrap();
        check_task_contract(store.as_ref()).await;
    }

    #[tokio::test]
    async fn the_file_task_store_keeps_the_task_contract() {
        let dir = tempfile::tempdir().unwrap();
        let file = StoreLocation::File(dir.path().join("store.sqlite3"));
        let store = open_task_store(&file).await.unwrap();
        check_task_contract(store.as_ref()).await;
    }
}
