//! Task records in the Postgres store: one row per task in `tasks` (schema version 2), the
//! SQLite store's rules. Every statement but pruning names the owner; a task past its
//! expiry reads as missing even before pruning deletes it. Times come from the caller
//! (the task clock), as with SQLite.

use std::collections::HashMap;

use async_trait::async_trait;
use tokio_postgres::types::ToSql;

use super::{DatabaseError, PostgresStore};
use crate::principal::Principal;
use crate::store::StoreResult;
use crate::store::{Beat, TaskEnd, TaskKey, TaskRecord, TaskState, TaskStore};

/// Deletes the tasks expired at $1.
const DROP_EXPIRED: &str = "DELETE FROM tasks WHERE expires_at <= $1";

/// Saves a new task: id $1, owner $2, then the record's fields.
const INSERT: &str = "
    INSERT INTO tasks (id, owner, status, status_message, outcome, cancel_requested,
        created_at, updated_at, heartbeat_at, expires_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

/// Task $1 of owner $2, unless expired at $3.
const SELECT: &str = "
    SELECT id, status, outcome, status_message, created_at, updated_at, heartbeat_at,
        expires_at, cancel_requested
    FROM tasks WHERE id = $1 AND owner = $2 AND expires_at > $3";

/// Whether cancelling working task $1 of owner $2 was asked.
const CANCEL_REQUESTED: &str = "
    SELECT cancel_requested FROM tasks WHERE id = $1 AND owner = $2 AND status = 'working'";

/// The owners and cancel flags of the working tasks among ids $1.
const CANCEL_FLAGS: &str = "
    SELECT id, owner, cancel_requested FROM tasks WHERE id = ANY($1) AND status = 'working'";

/// Heartbeats at $1 of the working tasks with ids $2 and owners $3, with the status
/// messages $4 where not NULL (the three arrays side by side).
const BEAT_MANY: &str = "
    UPDATE tasks AS t SET heartbeat_at = $1,
        status_message = COALESCE(b.message, t.status_message),
        updated_at = CASE WHEN b.message IS NULL THEN t.updated_at ELSE $1 END
    FROM unnest($2::text[], $3::text[], $4::text[]) AS b(id, owner, message)
    WHERE t.id = b.id AND t.owner = b.owner AND t.status = 'working'";

/// Asks to cancel task $1 of owner $2 at $3.
const REQUEST_CANCEL: &str = "
    UPDATE tasks SET cancel_requested = true,
        updated_at = CASE WHEN status = 'working' THEN $3 ELSE updated_at END
    WHERE id = $1 AND owner = $2 AND expires_at > $3";

/// Ends working task $1 of owner $2 with status $3, outcome $4 and message $5 at $6;
/// with $7, only when its heartbeat is older than that.
const FINISH: &str = "
    UPDATE tasks SET status = $3, outcome = $4, status_message = $5, updated_at = $6
    WHERE id = $1 AND owner = $2 AND status = 'working'
        AND ($7::bigint IS NULL OR heartbeat_at < $7)";

#[async_trait]
impl TaskStore for PostgresStore {
    async fn create(&self, owner: &Principal, task: &TaskRecord) -> StoreResult<()> {
        const ACTION: &str = "saving a new task";
        let outcome = task.state.stored_outcome()?;
        let db = |e| self.db(ACTION, e);
        let mut client = self.client(ACTION).await?;
        let tx = client.transaction().await.map_err(db)?;
        let drop_expired = tx.prepare_cached(DROP_EXPIRED).await.map_err(db)?;
        tx.execute(&drop_expired, &[&task.created_at])
            .await
            .map_err(db)?;
        let insert = tx.prepare_cached(INSERT).await.map_err(db)?;
        let params: [&(dyn ToSql + Sync); 10] = [
            &task.id,
            &owner.as_str(),
            &task.state.status(),
            &task.status_message,
            &outcome,
            &task.cancel_requested,
            &task.created_at,
            &task.updated_at,
            &task.heartbeat_at,
            &task.expires_at,
        ];
        tx.execute(&insert, &params).await.map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn get(&self, owner: &Principal, id: &str, now: i64) -> StoreResult<Option<TaskRecord>> {
        const ACTION: &str = "reading a task";
        let db = |e| self.db(ACTION, e);
        let client = self.client(ACTION).await?;
        let select = client.prepare_cached(SELECT).await.map_err(db)?;
        let Some(row) = client
            .query_opt(&select, &[&id, &owner.as_str(), &now])
            .await
            .map_err(db)?
        else {
            return Ok(None);
        };
        let record = TaskRecord {
            id: row.get(0),
            state: TaskState::Working,
            status_message: row.get(3),
            created_at: row.get(4),
            updated_at: row.get(5),
            heartbeat_at: row.get(6),
            expires_at: row.get(7),
            cancel_requested: row.get(8),
        };
        let status: &str = row.get(1);
        let outcome: Option<&str> = row.get(2);
        self.decode(record, status, outcome).map(Some)
    }

    async fn cancel_requested(&self, owner: &Principal, id: &str) -> StoreResult<Option<bool>> {
        self.flag("reading a task", CANCEL_REQUESTED, &[&id, &owner.as_str()])
            .await
    }

    async fn request_cancel(&self, owner: &Principal, id: &str, now: i64) -> StoreResult<bool> {
        self.write(
            "cancelling a task",
            REQUEST_CANCEL,
            &[&id, &owner.as_str(), &now],
        )
        .await
    }

    async fn finish(&self, owner: &Principal, end: &TaskEnd) -> StoreResult<bool> {
        let outcome = end.state.stored_outcome()?;
        self.write(
            "recording how a task ended",
            FINISH,
            &[
                &end.id,
                &owner.as_str(),
                &end.state.status(),
                &outcome,
                &end.status_message,
                &end.at,
                &end.heartbeat_before,
            ],
        )
        .await
    }

    async fn cancel_flags(&self, tasks: &[TaskKey]) -> StoreResult<HashMap<String, bool>> {
        const ACTION: &str = "reading running tasks";
        if tasks.is_empty() {
            return Ok(HashMap::new());
        }
        let owners: HashMap<&str, &str> = tasks
            .iter()
            .map(|task| (task.id.as_str(), task.owner.as_str()))
            .collect();
        let ids: Vec<&str> = owners.keys().copied().collect();
        let db = |e| self.db(ACTION, e);
        let client = self.client(ACTION).await?;
        let select = client.prepare_cached(CANCEL_FLAGS).await.map_err(db)?;
        let rows = client.query(&select, &[&ids]).await.map_err(db)?;
        Ok(rows
            .iter()
            .filter(|row| owners.get(row.get::<_, &str>(0)) == Some(&row.get::<_, &str>(1)))
            .map(|row| (row.get::<_, String>(0), row.get::<_, bool>(2)))
            .collect())
    }

    async fn beat_many(&self, beats: &[Beat], now: i64) -> StoreResult<()> {
        if beats.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = beats.iter().map(|beat| beat.task.id.as_str()).collect();
        let owners: Vec<&str> = beats.iter().map(|beat| beat.task.owner.as_str()).collect();
        let messages: Vec<Option<&str>> = beats
            .iter()
            .map(|beat| beat.status_message.as_deref())
            .collect();
        self.write_count(
            "recording heartbeats of running tasks",
            BEAT_MANY,
            &[&now, &ids, &owners, &messages],
        )
        .await
        .map(|_| ())
    }

    async fn prune(&self, now: i64) -> StoreResult<usize> {
        let deleted = self
            .write_count("deleting expired tasks", DROP_EXPIRED, &[&now])
            .await?;
        Ok(usize::try_from(deleted).unwrap_or(usize::MAX))
    }
}

impl PostgresStore {
    /// `record` with its state decoded from the stored status and JSON outcome.
    fn decode(
        &self,
        mut record: TaskRecord,
        status: &str,
        outcome: Option<&str>,
    ) -> StoreResult<TaskRecord> {
        record.state = TaskState::from_stored(status, outcome).map_err(|what| {
            let message = format!("task `{}` {what}", record.id);
            self.failed("reading a task", DatabaseError::Message(message))
        })?;
        Ok(record)
    }
}
