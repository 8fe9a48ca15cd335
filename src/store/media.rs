//! Media (speech, images) a tool made for a principal, whatever the store: the records
//! and the [`MediaStore`] trait. Each item belongs to its owner (another owner's reads as
//! missing), expires at a fixed time, and an owner's total size is bounded by evicting
//! their oldest items.

use async_trait::async_trait;

use super::StoreResult;
use crate::principal::Principal;

/// A media item to keep. Times are unix milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaItem {
    /// Its id (a fresh UUID), the `{id}` of `vultr://media/{id}`.
    pub id: String,
    /// Its MIME type, e.g. `audio/mpeg`.
    pub mime: String,
    /// A file name for it, e.g. `speech.mp3`.
    pub name: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// When it was made.
    pub created_at: i64,
    /// When it stops being served.
    pub expires_at: i64,
}

/// A kept media item.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaRecord {
    /// Its id.
    pub id: String,
    /// Its MIME type.
    pub mime: String,
    /// Its file name.
    pub name: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// When it was made (unix milliseconds).
    pub created_at: i64,
    /// When it stops being served (unix milliseconds).
    pub expires_at: i64,
}

/// How many bytes of media may be kept: per owner, and in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaCaps {
    /// Bytes one owner may keep; beyond it their oldest go.
    pub per_owner: u64,
    /// Bytes all owners together may keep; beyond it the oldest of anyone go.
    pub total: u64,
}

impl MediaCaps {
    /// No cap at all.
    pub const NONE: MediaCaps = MediaCaps {
        per_owner: u64::MAX,
        total: u64::MAX,
    };
}

/// Where media are kept.
#[async_trait]
pub trait MediaStore: Send + Sync {
    /// Keeps `item` for `owner`. Items of anyone expired by `item.created_at` are deleted
    /// first; then, while the owner's items total more than `caps.per_owner` bytes, their
    /// oldest, and while everyone's total more than `caps.total`, the oldest of anyone
    /// (never `item` itself). Returns the ids evicted for the caps.
    async fn put(
        &self,
        owner: &Principal,
        item: &MediaItem,
        caps: MediaCaps,
    ) -> StoreResult<Vec<String>>;

    /// The owner's item `id`, unless it is expired at `now` (unix milliseconds); another
    /// owner's item reads as missing.
    async fn get(&self, owner: &Principal, id: &str, now: i64) -> StoreResult<Option<MediaRecord>>;

    /// Deletes every item expired at `now`; returns how many.
    async fn prune(&self, now: i64) -> StoreResult<usize>;
}

/// The ids to evict so an owner's items (newest first, `(id, size)`) total at most
/// `max_total` bytes: the oldest beyond the cap, never the newest (just kept).
pub(super) fn evictions(newest_first: &[(String, i64)], max_total: u64) -> Vec<String> {
    let mut total: u64 = 0;
    let mut evicted = Vec::new();
    for (i, (id, size)) in newest_first.iter().enumerate() {
        total = total.saturating_add(u64::try_from(*size).unwrap_or(0));
        if i > 0 && total > max_total {
            evicted.push(id.clone());
        }
    }
    evicted
}

/// The bytes an owner keeps (their items newest first, `(id, size)`) once `evicted` go.
pub(super) fn kept_bytes(newest_first: &[(String, i64)], evicted: &[String]) -> i64 {
    newest_first
        .iter()
        .filter(|(id, _)| !evicted.contains(id))
        .map(|(_, size)| size)
        .sum()
}

/// The further ids to evict so everyone's items (newest first, the new item first)
/// total at most `total` bytes, besides those `already` evicted.
pub(super) fn total_evictions(
    everyone: Vec<(String, i64)>,
    already: &[String],
    total: u64,
) -> Vec<String> {
    let left: Vec<(String, i64)> = everyone
        .into_iter()
        .filter(|(id, _)| !already.contains(id))
        .collect();
    evictions(&left, total)
}

#[cfg(test)]
mod tests {
    use super::evictions;

    #[test]
    fn the_oldest_items_beyond_the_cap_go_and_the_newest_always_stays() {
        let items = |sizes: &[i64]| -> Vec<(String, i64)> {
            sizes
                .iter()
                .enumerate()
                .map(|(i, s)| (format!("m{i}"), *s))
                .collect()
        };
        assert!(evictions(&items(&[3, 3, 3]), 9).is_empty());
        assert_eq!(evictions(&items(&[3, 3, 3]), 8), ["m2"]);
        assert_eq!(evictions(&items(&[3, 3, 3]), 3), ["m1", "m2"]);
        assert_eq!(evictions(&items(&[10, 1]), 5), ["m1"], "the newest stays");
    }
}
