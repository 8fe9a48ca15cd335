//! Where conversations, task records and the legacy HTTP sessions are kept, so an agent
//! can continue a conversation by id, poll a task from any replica, and find both again
//! after a restart.
//!
//! The traits are the seam: [`ConversationStore`] (`conversation.rs`), [`TaskStore`]
//! (`task.rs`), [`LegacySessionStore`] (`session.rs`) and [`MediaStore`] (`media.rs`),
//! each with its record types; the
//! layers above use only them. Each kind of store implements them (`sqlite` for a file or
//! memory, `postgres` for a database shared by replicas). [`open_stores`] picks the stores
//! for a location (for Postgres, all three through one pool) and opens them on first use
//! through one cell ([`Lazy`]), so a store that failed to open is tried again later.

mod collection;
mod conversation;
mod error;
mod lazy;
mod ledger;
mod location;
mod media;
mod postgres;
mod probe;
mod session;
mod sqlite;
mod task;

#[cfg(test)]
pub(crate) mod contract;

use std::sync::Arc;

pub use collection::{Claim, CollectionStore, OwnedCollection};
pub use conversation::{
    Conversation, ConversationId, ConversationStore, ConversationSummary, Turn,
};
pub use error::{StoreError, StoreResult};
pub use lazy::{Lazy, REMEMBER_FAILURE};
pub use ledger::{Caps, Day, LedgerStore, Reservation, Settlement, Spent, UsageRow};
pub use location::{PostgresUrl, Retention, StoreLocation};
pub use media::{MediaCaps, MediaItem, MediaRecord, MediaStore};
pub use probe::{ProbeError, StoreProbe, probe_file, probe_postgres};
pub use session::{LegacySessionStore, SESSION_IDLE, SharedSessions, StoredSession};
pub use task::{Beat, TaskEnd, TaskKey, TaskRecord, TaskState, TaskStore};

use lazy::lazy_conversations;
use sqlite::SqliteStore;

/// Opens (creating when missing) the SQLite task store at `location`, the conversations'
/// own place: the same file, or a memory store of its own. Postgres locations go through
/// [`open_stores`].
pub async fn open_task_store(location: &StoreLocation) -> Result<Arc<dyn TaskStore>, StoreError> {
    sqlite::open_task_store(location).await
}

/// The stores of one location, each opened on first use: conversations, tasks and, for
/// Postgres (where replicas share them), the legacy HTTP sessions.
pub struct Stores {
    /// The conversations.
    pub conversations: Arc<dyn ConversationStore>,
    /// The task records.
    pub tasks: Arc<dyn TaskStore>,
    /// The legacy HTTP sessions, when the store is shared (Postgres).
    pub sessions: Option<Arc<SharedSessions>>,
    /// Which principal owns which vector-store collection.
    pub collections: Arc<dyn CollectionStore>,
    /// Media (speech, images) the tools made.
    pub media: Arc<dyn MediaStore>,
    /// The spend ledger.
    pub ledger: Arc<dyn LedgerStore>,
}

/// The stores at `location`, keeping conversations per `retention`; for Postgres, all
/// three share one pool of up to `pool_size` connections.
pub fn open_stores(location: StoreLocation, retention: Retention, pool_size: usize) -> Stores {
    let StoreLocation::Postgres(url) = &location else {
        let for_tasks = location.clone();
        let for_collections = location.clone();
        let for_media = location.clone();
        let for_ledger = location.clone();
        return Stores {
            conversations: lazy_conversations(move || {
                let location = location.clone();
                async move {
                    let store = SqliteStore::open(&location, retention).await?;
                    Ok(Arc::new(store) as Arc<dyn ConversationStore>)
                }
            }),
            tasks: Arc::new(Lazy::new(move || {
                let location = for_tasks.clone();
                async move { open_task_store(&location).await }
            })),
            sessions: None,
            collections: Arc::new(Lazy::new(move || {
                let location = for_collections.clone();
                async move { sqlite::open_collection_store(&location).await }
            })),
            media: Arc::new(Lazy::new(move || {
                let location = for_media.clone();
                async move { sqlite::open_media_store(&location).await }
            })),
            ledger: Arc::new(Lazy::new(move || {
                let location = for_ledger.clone();
                async move { sqlite::open_ledger(&location).await }
            })),
        };
    };
    let shared = Arc::new(postgres::shared(url.clone(), retention, pool_size));
    let conversations = postgres::opener(&shared, |store| store as Arc<dyn ConversationStore>);
    let tasks = postgres::opener(&shared, |store| store as Arc<dyn TaskStore>);
    let sessions = postgres::opener(&shared, |store| store as Arc<SharedSessions>);
    let collections = postgres::opener(&shared, |store| store as Arc<dyn CollectionStore>);
    let media = postgres::opener(&shared, |store| store as Arc<dyn MediaStore>);
    let ledger = postgres::opener(&shared, |store| store as Arc<dyn LedgerStore>);
    Stores {
        conversations: lazy_conversations(conversations),
        tasks: Arc::new(Lazy::new(tasks)),
        sessions: Some(Arc::new(Lazy::new(sessions))),
        collections: Arc::new(Lazy::new(collections)),
        media: Arc::new(Lazy::new(media)),
        ledger: Arc::new(Lazy::new(ledger)),
    }
}
