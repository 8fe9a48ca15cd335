//! Collection ownership in the Postgres store, shared by every replica: one row per
//! claimed collection id in `collections` (schema version 3), naming its owner.

use async_trait::async_trait;

use super::PostgresStore;
use crate::principal::Principal;
use crate::store::{Claim, CollectionStore, OwnedCollection, StoreResult};

/// Claims collection $1 for owner $2 (name $3) unless claimed; returns the owner it has.
const CLAIM: &str = concat!(
    "WITH inserted AS (INSERT INTO collections (id, owner, name, created_at) VALUES ($1, $2, $3, ",
    now!(),
    ") ON CONFLICT (id) DO NOTHING RETURNING owner) ",
    "SELECT owner, true FROM inserted UNION ALL SELECT owner, false FROM collections WHERE id = $1"
);

#[async_trait]
impl CollectionStore for PostgresStore {
    async fn claim(&self, owner: &Principal, id: &str, name: &str) -> StoreResult<Claim> {
        const ACTION: &str = "claiming a collection";
        let db = |e| self.db(ACTION, e);
        let client = self.client(ACTION).await?;
        let statement = client.prepare_cached(CLAIM).await.map_err(db)?;
        let rows = client
            .query(&statement, &[&id, &owner.as_str(), &name])
            .await
            .map_err(db)?;
        // The insert's row, when it inserted; else the row that was there.
        let Some(row) = rows.first() else {
            return Ok(Claim::Another);
        };
        let (found, inserted): (&str, bool) = (row.get(0), row.get(1));
        Ok(match (inserted, found == owner.as_str()) {
            (true, _) => Claim::Claimed,
            (false, true) => Claim::AlreadyYours,
            (false, false) => Claim::Another,
        })
    }

    async fn owned_by(&self, owner: &Principal, id: &str) -> StoreResult<Option<bool>> {
        self.flag(
            "reading a collection's owner",
            "SELECT owner = $2 FROM collections WHERE id = $1",
            &[&id, &owner.as_str()],
        )
        .await
    }

    async fn list(&self, owner: &Principal) -> StoreResult<Vec<OwnedCollection>> {
        const ACTION: &str = "listing collections";
        let db = |e| self.db(ACTION, e);
        let client = self.client(ACTION).await?;
        let statement = client
            .prepare_cached(
                "SELECT id, name, created_at FROM collections
                 WHERE owner = $1 ORDER BY created_at, id",
            )
            .await
            .map_err(db)?;
        let rows = client
            .query(&statement, &[&owner.as_str()])
            .await
            .map_err(db)?;
        Ok(rows
            .iter()
            .map(|row| OwnedCollection {
                id: row.get(0),
                name: row.get(1),
                created_at: row.get(2),
            })
            .collect())
    }

    async fn release(&self, owner: &Principal, id: &str) -> StoreResult<bool> {
        self.write(
            "releasing a collection",
            "DELETE FROM collections WHERE id = $1 AND owner = $2",
            &[&id, &owner.as_str()],
        )
        .await
    }
}
