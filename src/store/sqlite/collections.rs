//! Collection ownership in the SQLite store (file or memory): one row per claimed
//! collection id in `collections` (schema version 5), naming its owner.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::{SqliteStore, write_transaction};
use crate::principal::Principal;
use crate::store::{
    Claim, CollectionStore, OwnedCollection, Retention, StoreLocation, StoreResult,
};

/// Opens (creating when missing) the SQLite collection store at `location`: the same
/// database as the conversations when it is a file; its own when it is `memory`.
pub(in crate::store) async fn open_collection_store(
    location: &StoreLocation,
) -> StoreResult<Arc<dyn CollectionStore>> {
    // Conversations are never written through this handle, so their retention is moot.
    let retention = Retention {
        max_conversations: usize::MAX,
        max_age: Duration::MAX,
    };
    Ok(Arc::new(SqliteStore::open(location, retention).await?))
}

#[async_trait]
impl CollectionStore for SqliteStore {
    async fn claim(&self, owner: &Principal, id: &str, name: &str) -> StoreResult<Claim> {
        let (owner, id, name) = (owner.clone(), id.to_owned(), name.to_owned());
        self.run(move |db| {
            let now = (db.now)();
            db.with("claiming a collection", |conn| {
                let tx = write_transaction(conn)?;
                let found: Option<String> = tx
                    .prepare_cached("SELECT owner FROM collections WHERE id = ?1")?
                    .query_row([&id], |row| row.get(0))
                    .optional()?;
                let claim = match found {
                    Some(found) if found == owner.as_str() => Claim::AlreadyYours,
                    Some(_) => Claim::Another,
                    None => {
                        tx.prepare_cached(
                            "INSERT INTO collections (id, owner, name, created_at)
                             VALUES (?1, ?2, ?3, ?4)",
                        )?
                        .execute(params![
                            id,
                            owner.as_str(),
                            name,
                            now
                        ])?;
                        Claim::Claimed
                    }
                };
                tx.commit()?;
                Ok(claim)
            })
        })
        .await
    }

    async fn owned_by(&self, owner: &Principal, id: &str) -> StoreResult<Option<bool>> {
        let (owner, id) = (owner.clone(), id.to_owned());
        self.run(move |db| {
            db.with("reading a collection's owner", |conn| {
                Ok(conn
                    .prepare_cached("SELECT owner = ?2 FROM collections WHERE id = ?1")?
                    .query_row(params![id, owner.as_str()], |row| row.get(0))
                    .optional()?)
            })
        })
        .await
    }

    async fn list(&self, owner: &Principal) -> StoreResult<Vec<OwnedCollection>> {
        let owner = owner.clone();
        self.run(move |db| {
            db.with("listing collections", |conn| {
                let mut statement = conn.prepare_cached(
                    "SELECT id, name, created_at FROM collections
                     WHERE owner = ?1 ORDER BY created_at, id",
                )?;
                let rows = statement.query_map([owner.as_str()], |row| {
                    Ok(OwnedCollection {
                        id: row.get(0)?,
                        name: row.get(1)?,
                        created_at: row.get(2)?,
                    })
                })?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
        })
        .await
    }

    async fn release(&self, owner: &Principal, id: &str) -> StoreResult<bool> {
        let (owner, id) = (owner.clone(), id.to_owned());
        self.run(move |db| {
            db.with("releasing a collection", |conn| {
                Ok(conn
                    .prepare_cached("DELETE FROM collections WHERE id = ?1 AND owner = ?2")?
                    .execute(params![id, owner.as_str()])?
                    > 0)
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::contract::check_collection_contract;

    #[tokio::test]
    async fn the_memory_store_keeps_the_collection_contract() {
        let store = open_collection_store(&StoreLocation::InMemory)
            .await
            .unwrap();
        check_collection_contract(store.as_ref()).await;
    }

    #[tokio::test]
    async fn the_file_store_keeps_the_collection_contract() {
        let dir = tempfile::tempdir().unwrap();
        let location = StoreLocation::File(dir.path().join("store.sqlite3"));
        let store = open_collection_store(&location).await.unwrap();
        check_collection_contract(store.as_ref()).await;
    }
}
