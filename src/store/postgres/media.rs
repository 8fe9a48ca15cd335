//! Media in the Postgres store: one row per item in `media` (schema version 3), the
//! SQLite store's rules. Puts are serialised by a transaction-scoped advisory lock, so
//! replicas keeping media at once still bound the totals.

use async_trait::async_trait;
use tokio_postgres::types::ToSql;

use super::PostgresStore;
use crate::principal::Principal;
use crate::store::media::{evictions, kept_bytes, total_evictions};
use crate::store::{MediaCaps, MediaItem, MediaRecord, MediaStore, StoreResult};

/// Deletes the media expired at $1.
const DROP_EXPIRED: &str = "DELETE FROM media WHERE expires_at <= $1";

/// Serialises every put until the transaction ends, so replicas keeping media at once
/// still bound the totals (media are few and large: one at a time costs little).
const LOCK_MEDIA: &str = "SELECT pg_advisory_xact_lock(hashtextextended('vultr-mcp media', 0))";

/// Everyone's items, item $1 first, then newest first.
const EVERYONE_NEWEST_FIRST: &str = "
    SELECT id, size FROM media ORDER BY id = $1 DESC, created_at DESC, id DESC";

/// Keeps an item: id $1, owner $2, mime $3, name $4, size $5, bytes $6, times $7 and $8.
const INSERT: &str = "
    INSERT INTO media (id, owner, mime, name, size, bytes, created_at, expires_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/// Owner $1's items, item $2 first, then newest first.
const NEWEST_FIRST: &str = "
    SELECT id, size FROM media WHERE owner = $1
    ORDER BY id = $2 DESC, created_at DESC, id DESC";

/// Item $1 of owner $2, unless expired at $3.
const SELECT: &str = "
    SELECT id, mime, name, bytes, created_at, expires_at FROM media
    WHERE id = $1 AND owner = $2 AND expires_at > $3";

#[async_trait]
impl MediaStore for PostgresStore {
    async fn put(
        &self,
        owner: &Principal,
        item: &MediaItem,
        caps: MediaCaps,
    ) -> StoreResult<Vec<String>> {
        const ACTION: &str = "keeping a media item";
        let db = |e| self.db(ACTION, e);
        let mut client = self.client(ACTION).await?;
        let tx = client.transaction().await.map_err(db)?;
        tx.execute(LOCK_MEDIA, &[]).await.map_err(db)?;
        let drop_expired = tx.prepare_cached(DROP_EXPIRED).await.map_err(db)?;
        tx.execute(&drop_expired, &[&item.created_at])
            .await
            .map_err(db)?;
        let size = i64::try_from(item.bytes.len()).unwrap_or(i64::MAX);
        let insert = tx.prepare_cached(INSERT).await.map_err(db)?;
        let params: [&(dyn ToSql + Sync); 8] = [
            &item.id,
            &owner.as_str(),
            &item.mime,
            &item.name,
            &size,
            &item.bytes,
            &item.created_at,
            &item.expires_at,
        ];
        tx.execute(&insert, &params).await.map_err(db)?;
        let newest_first = tx.prepare_cached(NEWEST_FIRST).await.map_err(db)?;
        let rows = tx
            .query(&newest_first, &[&owner.as_str(), &item.id])
            .await
            .map_err(db)?;
        let sizes: Vec<(String, i64)> = rows.iter().map(|row| (row.get(0), row.get(1))).collect();
        let mut evicted = evictions(&sizes, caps.per_owner);
        let kept = kept_bytes(&sizes, &evicted);
        let others: i64 = tx
            .query_one(
                "SELECT COALESCE(SUM(size), 0)::bigint FROM media WHERE owner != $1",
                &[&owner.as_str()],
            )
            .await
            .map_err(db)?
            .get(0);
        if u64::try_from(kept + others).unwrap_or(0) > caps.total {
            let everyone = tx.prepare_cached(EVERYONE_NEWEST_FIRST).await.map_err(db)?;
            let rows = tx.query(&everyone, &[&item.id]).await.map_err(db)?;
            let everyone = rows.iter().map(|row| (row.get(0), row.get(1))).collect();
            evicted.extend(total_evictions(everyone, &evicted, caps.total));
        }
        if !evicted.is_empty() {
            tx.execute("DELETE FROM media WHERE id = ANY($1)", &[&evicted])
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(evicted)
    }

    async fn get(&self, owner: &Principal, id: &str, now: i64) -> StoreResult<Option<MediaRecord>> {
        const ACTION: &str = "reading a media item";
        let db = |e| self.db(ACTION, e);
        let client = self.client(ACTION).await?;
        let select = client.prepare_cached(SELECT).await.map_err(db)?;
        let row = client
            .query_opt(&select, &[&id, &owner.as_str(), &now])
            .await
            .map_err(db)?;
        Ok(row.map(|row| MediaRecord {
            id: row.get(0),
            mime: row.get(1),
            name: row.get(2),
            bytes: row.get(3),
            created_at: row.get(4),
            expires_at: row.get(5),
        }))
    }

    async fn prune(&self, now: i64) -> StoreResult<usize> {
        let deleted = self
            .write_count("deleting expired media", DROP_EXPIRED, &[&now])
            .await?;
        Ok(usize::try_from(deleted).unwrap_or(usize::MAX))
    }
}
