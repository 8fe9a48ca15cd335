//! Legacy (2025-era) HTTP sessions shared by every replica on one database: one row per
//! session in `legacy_sessions` (schema version 2) with the state rmcp needs to restore it
//! (JSON text), the principal that opened it, and when it was last used (the database's
//! clock, unix seconds). A session unused for [`SESSION_IDLE`] is gone: reads skip it and
//! saving any session deletes it.

use async_trait::async_trait;

use super::PostgresStore;
use crate::principal::Principal;
use crate::store::StoreResult;
use crate::store::{LegacySessionStore, SESSION_IDLE, StoredSession};

/// Sets the state of session $1 to $2, marking it used.
const SAVE_STATE: &str = concat!(
    "INSERT INTO legacy_sessions (id, state, used_at) VALUES ($1, $2, ",
    now!(),
    ") ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, used_at = EXCLUDED.used_at"
);

/// Sets the owner of session $1 to $2, marking it used.
const SAVE_OWNER: &str = concat!(
    "INSERT INTO legacy_sessions (id, owner, used_at) VALUES ($1, $2, ",
    now!(),
    ") ON CONFLICT (id) DO UPDATE SET owner = EXCLUDED.owner, used_at = EXCLUDED.used_at"
);

/// Marks session $1 used, unless unused for $2 seconds; returns its state and owner.
const USE: &str = concat!(
    "UPDATE legacy_sessions SET used_at = ",
    now!(),
    " WHERE id = $1 AND used_at >= ",
    now!(),
    " - $2 RETURNING state, owner"
);

/// Deletes session $1.
const DELETE: &str = "DELETE FROM legacy_sessions WHERE id = $1";

/// Deletes the sessions unused for $1 seconds.
const DROP_IDLE: &str = concat!(
    "DELETE FROM legacy_sessions WHERE used_at < ",
    now!(),
    " - $1"
);

#[async_trait]
impl LegacySessionStore for PostgresStore {
    async fn save_state(&self, id: &str, state: &str) -> StoreResult<()> {
        const ACTION: &str = "saving an HTTP session";
        let db = |e| self.db(ACTION, e);
        let client = self.client(ACTION).await?;
        let drop_idle = client.prepare_cached(DROP_IDLE).await.map_err(db)?;
        client
            .execute(&drop_idle, &[&idle_seconds()])
            .await
            .map_err(db)?;
        let save = client.prepare_cached(SAVE_STATE).await.map_err(db)?;
        client.execute(&save, &[&id, &state]).await.map_err(db)?;
        Ok(())
    }

    async fn save_owner(&self, id: &str, owner: &Principal) -> StoreResult<()> {
        let action = "saving an HTTP session's owner";
        self.write(action, SAVE_OWNER, &[&id, &owner.as_str()])
            .await
            .map(drop)
    }

    async fn use_session(&self, id: &str) -> StoreResult<Option<StoredSession>> {
        const ACTION: &str = "reading an HTTP session";
        let db = |e| self.db(ACTION, e);
        let client = self.client(ACTION).await?;
        let statement = client.prepare_cached(USE).await.map_err(db)?;
        let row = client
            .query_opt(&statement, &[&id, &idle_seconds()])
            .await
            .map_err(db)?;
        Ok(row.map(|row| StoredSession {
            state: row.get(0),
            owner: row
                .get::<_, Option<&str>>(1)
                .and_then(|owner| Principal::new(owner).ok()),
        }))
    }

    async fn delete(&self, id: &str) -> StoreResult<()> {
        self.write("deleting an HTTP session", DELETE, &[&id])
            .await
            .map(drop)
    }
}

/// [`SESSION_IDLE`] in seconds, for the statements.
fn idle_seconds() -> i64 {
    i64::try_from(SESSION_IDLE.as_secs()).unwrap_or(i64::MAX)
}
