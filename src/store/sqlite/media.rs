//! Media in the SQLite store (file or memory): one row per item in `media` (schema
//! version 5). Every statement but pruning names the owner; an expired item reads as
//! missing even before pruning deletes it.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::{SqliteStore, write_transaction};
use crate::principal::Principal;
use crate::store::media::{evictions, kept_bytes, total_evictions};
use crate::store::{MediaCaps, MediaItem, MediaRecord, MediaStore, StoreResult};

/// Deletes the media expired at ?1.
const DROP_EXPIRED: &str = "DELETE FROM media WHERE expires_at <= ?1";

#[async_trait]
impl MediaStore for SqliteStore {
    async fn put(
        &self,
        owner: &Principal,
        item: &MediaItem,
        caps: MediaCaps,
    ) -> StoreResult<Vec<String>> {
        let (owner, item) = (owner.clone(), item.clone());
        self.run(move |db| {
            db.with("keeping a media item", |conn| {
                let tx = write_transaction(conn)?;
                tx.prepare_cached(DROP_EXPIRED)?
                    .execute([item.created_at])?;
                tx.prepare_cached(
                    "INSERT INTO media (id, owner, mime, name, size, bytes, created_at, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?
                .execute(params![
                    item.id,
                    owner.as_str(),
                    item.mime,
                    item.name,
                    super::sql_count(item.bytes.len()),
                    item.bytes,
                    item.created_at,
                    item.expires_at,
                ])?;
                let newest_first = tx
                    .prepare_cached(
                        "SELECT id, size FROM media WHERE owner = ?1
                         ORDER BY id = ?2 DESC, created_at DESC, rowid DESC",
                    )?
                    .query_map(params![owner.as_str(), item.id], |row| {
                        Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                let mut evicted = evictions(&newest_first, caps.per_owner);
                let kept = kept_bytes(&newest_first, &evicted);
                let others: i64 = tx
                    .prepare_cached("SELECT COALESCE(SUM(size), 0) FROM media WHERE owner != ?1")?
                    .query_row([owner.as_str()], |row| row.get(0))?;
                if u64::try_from(kept + others).unwrap_or(0) > caps.total {
                    let everyone = tx
                        .prepare_cached(
                            "SELECT id, size FROM media
                             ORDER BY id = ?1 DESC, created_at DESC, rowid DESC",
                        )?
                        .query_map(params![item.id], |row| {
                            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
                        })?
                        .collect::<Result<Vec<_>, _>>()?;
                    evicted.extend(total_evictions(everyone, &evicted, caps.total));
                }
                {
                    let mut delete = tx.prepare_cached("DELETE FROM media WHERE id = ?1")?;
                    for id in &evicted {
                        delete.execute(params![id])?;
                    }
                }
                tx.commit()?;
                Ok(evicted)
            })
        })
        .await
    }

    async fn get(&self, owner: &Principal, id: &str, now: i64) -> StoreResult<Option<MediaRecord>> {
        let (owner, id) = (owner.clone(), id.to_owned());
        self.run(move |db| {
            db.with("reading a media item", |conn| {
                Ok(conn
                    .prepare_cached(
                        "SELECT id, mime, name, bytes, created_at, expires_at FROM media
                         WHERE id = ?1 AND owner = ?2 AND expires_at > ?3",
                    )?
                    .query_row(params![id, owner.as_str(), now], |row| {
                        Ok(MediaRecord {
                            id: row.get(0)?,
                            mime: row.get(1)?,
                            name: row.get(2)?,
                            bytes: row.get(3)?,
                            created_at: row.get(4)?,
                            expires_at: row.get(5)?,
                        })
                    })
                    .optional()?)
            })
        })
        .await
    }

    async fn prune(&self, now: i64) -> StoreResult<usize> {
        self.run(move |db| {
            db.with("deleting expired media", |conn| {
                Ok(conn.prepare_cached(DROP_EXPIRED)?.execute([now])?)
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use crate::store::StoreLocation;
    use crate::store::contract::check_media_contract;

    #[tokio::test]
    async fn the_memory_media_store_keeps_the_media_contract() {
        let store = super::super::open_media_store(&StoreLocation::InMemory)
            .await
            .unwrap();
        check_media_contract(store.as_ref()).await;
    }

    #[tokio::test]
    async fn the_file_media_store_keeps_the_media_contract() {
        let dir = tempfile::tempdir().unwrap();
        let file = StoreLocation::File(dir.path().join("store.sqlite3"));
        let store = super::super::open_media_store(&file).await.unwrap();
        check_media_contract(store.as_ref()).await;
    }
}
