//! The spend ledger in the Postgres store, shared by every replica (schema version 4). A
//! reservation is checked and written in one transaction holding an advisory lock on its
//! owner, so replicas never pass one principal's limit together.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;

use super::PostgresStore;
use crate::principal::Principal;
use crate::store::{Day, LedgerStore, Reservation, Settlement, Spent, StoreResult, UsageRow};

/// What owner $1 spent (settled and reserved unexpired at $4) on days $2 to $3.
const SPENT: &str = "SELECT
    (SELECT COALESCE(SUM(usd), 0) FROM spend WHERE owner = $1 AND day BETWEEN $2 AND $3)
  + (SELECT COALESCE(SUM(usd), 0) FROM spend_reservations
     WHERE owner = $1 AND day BETWEEN $2 AND $3 AND expires_at > $4)";

/// A lock on one owner's ledger for the rest of the transaction.
const LOCK_OWNER: &str = "SELECT pg_advisory_xact_lock(hashtextextended('spend:' || $1, 0))";

/// What `owner` spent on `day` and from `month_start` to `day`.
async fn spent_in<C: GenericClient>(
    client: &C,
    owner: &str,
    day: Day,
    month_start: Day,
    now: i64,
) -> Result<Spent, tokio_postgres::Error> {
    let statement = client.prepare_cached(SPENT).await?;
    let day_usd: f64 = client
        .query_one(&statement, &[&owner, &day, &day, &now])
        .await?
        .get(0);
    let month_usd: f64 = client
        .query_one(&statement, &[&owner, &month_start, &day, &now])
        .await?
        .get(0);
    Ok(Spent { day_usd, month_usd })
}

#[async_trait]
impl LedgerStore for PostgresStore {
    async fn reserve(
        &self,
        reservation: &Reservation<'_>,
        now: i64,
    ) -> StoreResult<Result<String, Spent>> {
        const ACTION: &str = "reserving spend";
        let db = |e| self.db(ACTION, e);
        let owner = reservation.owner.as_str();
        let mut client = self.client(ACTION).await?;
        let tx = client.transaction().await.map_err(db)?;
        tx.execute(LOCK_OWNER, &[&owner]).await.map_err(db)?;
        let spent = spent_in(&tx, owner, reservation.day, reservation.month_start, now)
            .await
            .map_err(db)?;
        let usd = reservation.usd;
        let over =
            |limit: Option<f64>, spent: f64| limit.is_some_and(|limit| spent + usd > limit + 1e-12);
        if over(reservation.caps.daily_usd, spent.day_usd)
            || over(reservation.caps.monthly_usd, spent.month_usd)
        {
            return Ok(Err(spent));
        }
        let id = uuid::Uuid::new_v4().to_string();
        tx.execute(
            "INSERT INTO spend_reservations (id, owner, day, usd, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
            &[&id, &owner, &reservation.day, &usd, &reservation.expires_at],
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(Ok(id))
    }

    async fn settle(&self, settlement: &Settlement<'_>) -> StoreResult<()> {
        const ACTION: &str = "recording spend";
        let db = |e| self.db(ACTION, e);
        let owner = settlement.owner.as_str();
        let prompt = i64::try_from(settlement.prompt_tokens).unwrap_or(i64::MAX);
        let completion = i64::try_from(settlement.completion_tokens).unwrap_or(i64::MAX);
        let mut client = self.client(ACTION).await?;
        let tx = client.transaction().await.map_err(db)?;
        if let Some(id) = settlement.reservation {
            tx.execute(
                "DELETE FROM spend_reservations WHERE id = $1 AND owner = $2",
                &[&id, &owner],
            )
            .await
            .map_err(db)?;
        }
        tx.execute(
            "INSERT INTO spend AS s (owner, day, model, usd, calls, prompt_tokens, completion_tokens)
             VALUES ($1, $2, $3, $4, 1, $5, $6)
             ON CONFLICT (owner, day, model) DO UPDATE SET
                 usd = s.usd + excluded.usd,
                 calls = s.calls + 1,
                 prompt_tokens = s.prompt_tokens + excluded.prompt_tokens,
                 completion_tokens = s.completion_tokens + excluded.completion_tokens",
            &[
                &owner,
                &settlement.day,
                &settlement.model,
                &settlement.usd,
                &prompt,
                &completion,
            ],
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn release(&self, owner: &Principal, id: &str) -> StoreResult<()> {
        self.write(
            "releasing a spend reservation",
            "DELETE FROM spend_reservations WHERE id = $1 AND owner = $2",
            &[&id, &owner.as_str()],
        )
        .await
        .map(|_| ())
    }

    async fn spent(
        &self,
        owner: &Principal,
        day: Day,
        month_start: Day,
        now: i64,
    ) -> StoreResult<Spent> {
        const ACTION: &str = "reading spend";
        let client = self.client(ACTION).await?;
        spent_in(&client, owner.as_str(), day, month_start, now)
            .await
            .map_err(|e| self.db(ACTION, e))
    }

    async fn usage(&self, owner: Option<&Principal>, since: Day) -> StoreResult<Vec<UsageRow>> {
        const ACTION: &str = "reading spend";
        let db = |e| self.db(ACTION, e);
        let client = self.client(ACTION).await?;
        let owner = owner.map(Principal::as_str);
        let rows = client
            .query(
                "SELECT owner, model, day, usd, calls, prompt_tokens, completion_tokens
                 FROM spend WHERE day >= $1 AND ($2::text IS NULL OR owner = $2)
                 ORDER BY owner, day, model",
                &[&since, &owner],
            )
            .await
            .map_err(db)?;
        Ok(rows
            .iter()
            .map(|row| UsageRow {
                principal: row.get(0),
                model: row.get(1),
                day: row.get(2),
                usd: row.get(3),
                calls: row.get::<_, i64>(4).max(0) as u64,
                prompt_tokens: row.get::<_, i64>(5).max(0) as u64,
                completion_tokens: row.get::<_, i64>(6).max(0) as u64,
            })
            .collect())
    }

    async fn prune(&self, before: Day, now: i64) -> StoreResult<usize> {
        let rows = self
            .write_count(
                "pruning the spend ledger",
                "DELETE FROM spend WHERE day < $1",
                &[&before],
            )
            .await?;
        let lapsed = self
            .write_count(
                "pruning the spend ledger",
                "DELETE FROM spend_reservations WHERE expires_at <= $1",
                &[&now],
            )
            .await?;
        Ok(usize::try_from(rows + lapsed).unwrap_or(usize::MAX))
    }
}
