//! The spend ledger in the SQLite store (file or memory): `spend` rows per owner, model
//! and day, and `spend_reservations` of calls in flight (schema version 6). A reservation
//! is checked and written in one `BEGIN IMMEDIATE` transaction, so processes sharing the
//! file never pass a limit together.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Transaction, params};

use super::failure::Failed;
use super::{SqliteStore, sql_count, write_transaction};
use crate::principal::Principal;
use crate::store::{
    Day, LedgerStore, Reservation, Retention, Settlement, Spent, StoreLocation, StoreResult,
    UsageRow,
};

/// Opens (creating when missing) the SQLite ledger at `location`: the same database as the
/// conversations when it is a file; its own when it is `memory`.
pub(in crate::store) async fn open_ledger(
    location: &StoreLocation,
) -> StoreResult<Arc<dyn LedgerStore>> {
    // Conversations are never written through this handle, so their retention is moot.
    let retention = Retention {
        max_conversations: usize::MAX,
        max_age: Duration::MAX,
    };
    Ok(Arc::new(SqliteStore::open(location, retention).await?))
}

/// What `owner` spent (settled and reserved) on `day` and from `month_start` to `day`.
fn spent_in(
    tx: &Transaction<'_>,
    owner: &str,
    day: Day,
    month_start: Day,
    now: i64,
) -> Result<Spent, Failed> {
    let sum = |sql: &str, from: Day| -> Result<f64, Failed> {
        Ok(tx
            .prepare_cached(sql)?
            .query_row(params![owner, from, day, now], |row| row.get(0))?)
    };
    let settled = "SELECT COALESCE(SUM(usd), 0.0) FROM spend
                   WHERE owner = ?1 AND day BETWEEN ?2 AND ?3 AND ?4 = ?4";
    let reserved = "SELECT COALESCE(SUM(usd), 0.0) FROM spend_reservations
                    WHERE owner = ?1 AND day BETWEEN ?2 AND ?3 AND expires_at > ?4";
    Ok(Spent {
        day_usd: sum(settled, day)? + sum(reserved, day)?,
        month_usd: sum(settled, month_start)? + sum(reserved, month_start)?,
    })
}

#[async_trait]
impl LedgerStore for SqliteStore {
    async fn reserve(
        &self,
        reservation: &Reservation<'_>,
        now: i64,
    ) -> StoreResult<Result<String, Spent>> {
        let owner = reservation.owner.as_str().to_owned();
        let (day, month_start, usd, caps, expires_at) = (
            reservation.day,
            reservation.month_start,
            reservation.usd,
            reservation.caps,
            reservation.expires_at,
        );
        self.run(move |db| {
            db.with("reserving spend", |conn| {
                let tx = write_transaction(conn)?;
                let spent = spent_in(&tx, &owner, day, month_start, now)?;
                let over = |limit: Option<f64>, spent: f64| {
                    limit.is_some_and(|limit| spent + usd > limit + 1e-12)
                };
                if over(caps.daily_usd, spent.day_usd) || over(caps.monthly_usd, spent.month_usd) {
                    return Ok(Err(spent));
                }
                let id = uuid::Uuid::new_v4().to_string();
                tx.prepare_cached(
                    "INSERT INTO spend_reservations (id, owner, day, usd, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![id, owner, day, usd, expires_at])?;
                tx.commit()?;
                Ok(Ok(id))
            })
        })
        .await
    }

    async fn settle(&self, settlement: &Settlement<'_>) -> StoreResult<()> {
        let owner = settlement.owner.as_str().to_owned();
        let reservation = settlement.reservation.map(str::to_owned);
        let model = settlement.model.to_owned();
        let (day, usd, prompt, completion) = (
            settlement.day,
            settlement.usd,
            sql_count(settlement.prompt_tokens as usize),
            sql_count(settlement.completion_tokens as usize),
        );
        self.run(move |db| {
            db.with("recording spend", |conn| {
                let tx = write_transaction(conn)?;
                if let Some(id) = &reservation {
                    tx.prepare_cached("DELETE FROM spend_reservations WHERE id = ?1 AND owner = ?2")?
                        .execute(params![id, owner])?;
                }
                tx.prepare_cached(
                    "INSERT INTO spend (owner, day, model, usd, calls, prompt_tokens, completion_tokens)
                     VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6)
                     ON CONFLICT (owner, day, model) DO UPDATE SET
                         usd = usd + excluded.usd,
                         calls = calls + 1,
                         prompt_tokens = prompt_tokens + excluded.prompt_tokens,
                         completion_tokens = completion_tokens + excluded.completion_tokens",
                )?
                .execute(params![owner, day, model, usd, prompt, completion])?;
                tx.commit()?;
                Ok(())
            })
        })
        .await
    }

    async fn release(&self, owner: &Principal, id: &str) -> StoreResult<()> {
        let (owner, id) = (owner.as_str().to_owned(), id.to_owned());
        self.run(move |db| {
            db.with("releasing a spend reservation", |conn| {
                conn.prepare_cached("DELETE FROM spend_reservations WHERE id = ?1 AND owner = ?2")?
                    .execute(params![id, owner])?;
                Ok(())
            })
        })
        .await
    }

    async fn spent(
        &self,
        owner: &Principal,
        day: Day,
        month_start: Day,
        now: i64,
    ) -> StoreResult<Spent> {
        let owner = owner.as_str().to_owned();
        self.run(move |db| {
            db.with("reading spend", |conn| {
                let tx = conn.transaction()?;
                spent_in(&tx, &owner, day, month_start, now)
            })
        })
        .await
    }

    async fn usage(&self, owner: Option<&Principal>, since: Day) -> StoreResult<Vec<UsageRow>> {
        let owner = owner.map(|o| o.as_str().to_owned());
        self.run(move |db| {
            db.with("reading spend", |conn| {
                let mut statement = conn.prepare_cached(
                    "SELECT owner, model, day, usd, calls, prompt_tokens, completion_tokens
                     FROM spend WHERE day >= ?1 AND (?2 IS NULL OR owner = ?2)
                     ORDER BY owner, day, model",
                )?;
                let rows = statement
                    .query_map(params![since, owner], |row| {
                        Ok(UsageRow {
                            principal: row.get(0)?,
                            model: row.get(1)?,
                            day: row.get(2)?,
                            usd: row.get(3)?,
                            calls: row.get::<_, i64>(4)?.max(0) as u64,
                            prompt_tokens: row.get::<_, i64>(5)?.max(0) as u64,
                            completion_tokens: row.get::<_, i64>(6)?.max(0) as u64,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
        })
        .await
    }

    async fn prune(&self, before: Day, now: i64) -> StoreResult<usize> {
        self.run(move |db| {
            db.with("pruning the spend ledger", |conn| {
                let tx = write_transaction(conn)?;
                let rows = tx
                    .prepare_cached("DELETE FROM spend WHERE day < ?1")?
                    .execute(params![before])?;
                let lapsed = tx
                    .prepare_cached("DELETE FROM spend_reservations WHERE expires_at <= ?1")?
                    .execute(params![now])?;
                tx.commit()?;
                Ok(rows + lapsed)
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::contract::{check_concurrent_reservations, check_ledger_contract};

    #[tokio::test]
    async fn the_memory_store_keeps_the_ledger_contract() {
        let store = open_ledger(&StoreLocation::InMemory).await.unwrap();
        check_ledger_contract(store.as_ref()).await;
        let store = open_ledger(&StoreLocation::InMemory).await.unwrap();
        check_concurrent_reservations(&[store]).await;
    }

    #[tokio::test]
    async fn the_file_store_keeps_the_ledger_contract() {
        let dir = tempfile::tempdir().unwrap();
        let location = StoreLocation::File(dir.path().join("store.sqlite3"));
        let store = open_ledger(&location).await.unwrap();
        check_ledger_contract(store.as_ref()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_processes_on_one_file_never_pass_a_limit_together() {
        let dir = tempfile::tempdir().unwrap();
        let location = StoreLocation::File(dir.path().join("store.sqlite3"));
        let first = open_ledger(&location).await.unwrap();
        let second = open_ledger(&location).await.unwrap();
        check_concurrent_reservations(&[first, second]).await;
    }
}
