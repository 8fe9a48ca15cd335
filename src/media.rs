//! Media the tools make (speech, images) as a service: kept in the store for their owner
//! for a while, readable as `vultr://media/{id}`, each owner's total bounded.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::principal::Principal;
use crate::setting;
use crate::settings::MediaSettings;
use crate::store::{MediaCaps, MediaItem, MediaRecord, MediaStore, StoreError};

/// How often expired media are deleted, from the first item kept on.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// The URI prefix of a media item: `vultr://media/{id}`.
pub const URI_PREFIX: &str = "vultr://media/";

/// A media item a tool made, to keep.
#[derive(Debug, Clone)]
pub struct NewMedia {
    /// Its MIME type, e.g. `audio/mpeg` or `image/png`.
    pub mime: String,
    /// A file name for it, e.g. `speech.mp3`.
    pub name: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// A kept media item, as a result links to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Kept {
    /// Its id.
    pub id: String,
    /// `vultr://media/{id}`.
    pub uri: String,
    /// Its MIME type.
    pub mime: String,
    /// Its file name.
    pub name: String,
    /// Its size in bytes.
    pub size: usize,
    /// When it stops being served (unix milliseconds).
    pub expires_at_ms: i64,
}

/// A media item read back.
pub type StoredMedia = MediaRecord;

/// Why media could not be kept or read.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// One item is larger than all one principal may keep.
    #[error(
        "the result is {size} bytes, more than the {max} bytes of media that may be kept ({per_principal}, {total}); ask for less (a shorter text, a smaller image or fewer of them)",
        per_principal = setting::MEDIA_MAX_PER_PRINCIPAL, total = setting::MEDIA_MAX_TOTAL
    )]
    TooLarge {
        /// Its size.
        size: usize,
        /// The most one principal may keep.
        max: usize,
    },
    /// The store failed.
    #[error("media could not be kept or read: {0}")]
    Store(#[from] StoreError),
}

/// Each principal's media, kept in the store.
pub struct Media {
    store: Arc<dyn MediaStore>,
    settings: MediaSettings,
    /// Whether the pruning loop runs.
    pruning: AtomicBool,
}

impl Media {
    /// Media kept in `store` as `settings` say.
    pub fn new(store: Arc<dyn MediaStore>, settings: MediaSettings) -> Self {
        Self {
            store,
            settings,
            pruning: AtomicBool::new(false),
        }
    }

    /// Keeps `media` for `owner` until the media TTL passes; the owner's oldest media go
    /// when their total would pass the per-principal cap.
    pub async fn keep(&self, owner: &Principal, media: NewMedia) -> Result<Kept, MediaError> {
        let size = media.bytes.len();
        let max = self.settings.max_per_principal.min(self.settings.max_total);
        if size > max {
            return Err(MediaError::TooLarge { size, max });
        }
        let now = now_ms();
        let ttl = i64::try_from(self.settings.ttl.as_millis()).unwrap_or(i64::MAX);
        let item = MediaItem {
            id: uuid::Uuid::new_v4().to_string(),
            mime: media.mime,
            name: media.name,
            bytes: media.bytes,
            created_at: now,
            expires_at: now.saturating_add(ttl),
        };
        let evicted = self
            .store
            .put(
                owner,
                &item,
                MediaCaps {
                    per_owner: as_u64(self.settings.max_per_principal),
                    total: as_u64(self.settings.max_total),
                },
            )
            .await?;
        self.keep_pruning();
        if !evicted.is_empty() {
            tracing::info!(
                evicted = evicted.len(),
                "older media deleted to keep media within their caps"
            );
        }
        Ok(Kept {
            uri: format!("{URI_PREFIX}{}", item.id),
            id: item.id,
            mime: item.mime,
            name: item.name,
            size,
            expires_at_ms: item.expires_at,
        })
    }

    /// `owner`'s media item `id`, unless it expired or is another owner's.
    pub async fn read(
        &self,
        owner: &Principal,
        id: &str,
    ) -> Result<Option<StoredMedia>, MediaError> {
        Ok(self.store.get(owner, id, now_ms()).await?)
    }

    /// From the first item kept on, deletes expired media every [`PRUNE_EVERY`] while the
    /// store lives, so their memory (or disk) comes back even when no one keeps more.
    fn keep_pruning(&self) {
        if self.pruning.swap(true, Ordering::Relaxed) {
            return;
        }
        let store: Weak<dyn MediaStore> = Arc::downgrade(&self.store);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PRUNE_EVERY).await;
                let Some(store) = store.upgrade() else { break };
                if let Err(error) = store.prune(now_ms()).await {
                    tracing::debug!(%error, "could not delete expired media; trying again later");
                }
            }
        });
    }

    /// The largest media returned inline in a result, in bytes.
    pub fn inline_max(&self) -> usize {
        self.settings.inline_max
    }

    /// How long media are kept.
    pub fn ttl(&self) -> Duration {
        self.settings.ttl
    }
}

/// A byte count as stored.
fn as_u64(bytes: usize) -> u64 {
    u64::try_from(bytes).unwrap_or(u64::MAX)
}

/// The id in a `vultr://media/{id}` URI.
pub fn id_of(uri: &str) -> Option<&str> {
    uri.strip_prefix(URI_PREFIX)
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

/// The time now in unix milliseconds.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Retention, StoreLocation, open_stores};

    fn media(settings: MediaSettings) -> Media {
        let stores = open_stores(
            StoreLocation::InMemory,
            Retention {
                max_conversations: 10,
                max_age: Duration::from_secs(60),
            },
            1,
        );
        Media::new(stores.media, settings)
    }

    fn clip(size: usize) -> NewMedia {
        NewMedia {
            mime: "audio/wav".into(),
            name: "speech.wav".into(),
            bytes: vec![7; size],
        }
    }

    #[tokio::test]
    async fn kept_media_are_read_back_by_their_owner_only() {
        let media = media(MediaSettings::default());
        let alice = Principal::new("alice").unwrap();
        let kept = media.keep(&alice, clip(10)).await.unwrap();
        assert_eq!(kept.uri, format!("vultr://media/{}", kept.id));
        assert_eq!(id_of(&kept.uri), Some(kept.id.as_str()));
        let read = media.read(&alice, &kept.id).await.unwrap().unwrap();
        assert_eq!((read.mime.as_str(), read.bytes.len()), ("audio/wav", 10));
        assert!(
            media
                .read(&Principal::new("bob").unwrap(), &kept.id)
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn one_principal_keeps_at_most_the_cap_and_the_oldest_go_first() {
        let media = media(MediaSettings {
            max_per_principal: 25,
            ..MediaSettings::default()
        });
        let alice = Principal::new("alice").unwrap();
        let first = media.keep(&alice, clip(10)).await.unwrap();
        let second = media.keep(&alice, clip(10)).await.unwrap();
        let bob = media
            .keep(&Principal::new("bob").unwrap(), clip(10))
            .await
            .unwrap();
        let third = media.keep(&alice, clip(10)).await.unwrap();
        assert!(media.read(&alice, &first.id).await.unwrap().is_none());
        assert!(media.read(&alice, &second.id).await.unwrap().is_some());
        assert!(media.read(&alice, &third.id).await.unwrap().is_some());
        assert!(
            media
                .read(&Principal::new("bob").unwrap(), &bob.id)
                .await
                .unwrap()
                .is_some(),
            "another principal's media do not count"
        );
        let error = media.keep(&alice, clip(26)).await.unwrap_err();
        assert!(
            error.to_string().contains(setting::MEDIA_MAX_PER_PRINCIPAL),
            "{error}"
        );
    }

    #[tokio::test]
    async fn all_principals_together_keep_at_most_the_total_and_the_oldest_of_anyone_go() {
        let media = media(MediaSettings {
            max_total: 25,
            ..MediaSettings::default()
        });
        let (alice, bob) = (
            Principal::new("alice").unwrap(),
            Principal::new("bob").unwrap(),
        );
        let first = media.keep(&alice, clip(10)).await.unwrap();
        let second = media.keep(&bob, clip(10)).await.unwrap();
        let third = media.keep(&bob, clip(10)).await.unwrap();
        assert!(media.read(&alice, &first.id).await.unwrap().is_none());
        assert!(media.read(&bob, &second.id).await.unwrap().is_some());
        assert!(media.read(&bob, &third.id).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn media_past_their_ttl_are_no_longer_served() {
        let media = media(MediaSettings {
            ttl: Duration::ZERO,
            ..MediaSettings::default()
        });
        let alice = Principal::new("alice").unwrap();
        let kept = media.keep(&alice, clip(1)).await.unwrap();
        assert!(media.read(&alice, &kept.id).await.unwrap().is_none());
    }

    #[test]
    fn only_media_uris_have_an_id() {
        assert_eq!(id_of("vultr://media/abc"), Some("abc"));
        assert_eq!(id_of("vultr://media/"), None);
        assert_eq!(id_of("vultr://media/a/b"), None);
        assert_eq!(id_of("https://example.com/x.wav"), None);
    }
}
