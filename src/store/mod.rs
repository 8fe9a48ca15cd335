//! Conversations: where delegated chats are kept, so an agent can continue one by id
//! without resending its history and find it again after a restart.
//!
//! [`ConversationStore`] is the seam: the MCP layer uses only the trait, and each kind of
//! store implements it (`sqlite` for a file or memory, `postgres` for a database shared by
//! replicas). [`open_stores`] picks the stores for a location (conversations, tasks and,
//! for Postgres, the shared legacy HTTP sessions, all through one pool) and opens them on
//! first use ([`lazy`]), so a store that failed to open is tried again on the next call.

mod conversation;
mod error;
mod lazy;
mod location;
mod postgres;
mod sqlite;

#[cfg(test)]
mod contract;

use std::sync::Arc;

use async_trait::async_trait;

pub use conversation::{Conversation, ConversationId, ConversationSummary};
pub use error::StoreError;
pub use lazy::{OpenOnce, REMEMBER_FAILURE};
pub use location::{PostgresUrl, Retention, StoreLocation};
pub use postgres::{SESSION_IDLE, SharedPostgres, SharedSessions, StoredSession};

use lazy::LazyStore;
use sqlite::SqliteStore;

use crate::principal::Principal;
use crate::tasks::TaskStore;
use crate::vultr::chat::Message;

/// Keeps conversations: each is a list of messages grown one turn at a time, found by id,
/// listed most recently used first, and dropped per [`Retention`]. Each belongs to the
/// principal that created it (its owner), and every call but [`ConversationStore::prune`]
/// sees only the given owner's: another owner's id is [`StoreError::NotFound`] (or not
/// deleted) exactly as an id that never existed. Implementations do their own waiting (a
/// store that blocks moves off the async threads itself), so callers just await.
#[async_trait]
pub trait ConversationStore: Send + Sync {
    /// Starts a conversation of `owner` with these messages (turn 1) and applies
    /// retention, never dropping the new one; returns its new id. `cut_off` says why the
    /// last message (the reply) was cut short, if it was.
    async fn create(
        &self,
        owner: &Principal,
        model: &str,
        messages: &[Message],
        cut_off: Option<&str>,
    ) -> Result<ConversationId, StoreError>;

    /// Adds messages to the end of `owner`'s conversation as one more turn, and records the
    /// model used; [`StoreError::NotFound`] when `owner` has no such conversation.
    async fn append(
        &self,
        owner: &Principal,
        id: &ConversationId,
        model: &str,
        messages: &[Message],
        cut_off: Option<&str>,
    ) -> Result<(), StoreError>;

    /// `owner`'s conversation: its summary and messages, oldest first; a reply stored as
    /// cut off ends with a note saying so. [`StoreError::NotFound`] when `owner` has no
    /// such conversation.
    async fn get(&self, owner: &Principal, id: &ConversationId)
    -> Result<Conversation, StoreError>;

    /// Up to `limit` of `owner`'s conversations, most recently used (created or continued)
    /// first.
    async fn list(
        &self,
        owner: &Principal,
        limit: usize,
    ) -> Result<Vec<ConversationSummary>, StoreError>;

    /// Deletes `owner`'s conversation and its messages; true when `owner` had it.
    async fn delete(&self, owner: &Principal, id: &ConversationId) -> Result<bool, StoreError>;

    /// Drops conversations per [`Retention`], whoever owns them; returns how many went.
    async fn prune(&self) -> Result<usize, StoreError>;

    /// Opens the store now if it opens on first use (migrating and pruning it); a store
    /// that is open from the start has nothing to do.
    async fn open(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The SQLite store (file or memory) at `location`, keeping conversations per
/// `retention`. Nothing is opened until the first call; see [`LazyStore`]. Postgres
/// locations go through [`open_stores`], which shares one pool.
fn open_lazily(location: StoreLocation, retention: Retention) -> Arc<dyn ConversationStore> {
    Arc::new(LazyStore::new(move || {
        let location = location.clone();
        async move {
            let store: Arc<dyn ConversationStore> =
                Arc::new(SqliteStore::open(&location, retention).await?);
            Ok(store)
        }
    }))
}

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
}

/// The stores at `location`, keeping conversations per `retention`; for Postgres, all
/// three share one pool of up to `pool_size` connections.
pub fn open_stores(location: StoreLocation, retention: Retention, pool_size: usize) -> Stores {
    let StoreLocation::Postgres(url) = &location else {
        return Stores {
            conversations: open_lazily(location.clone(), retention),
            tasks: crate::tasks::open_lazily(location),
            sessions: None,
        };
    };
    let shared = Arc::new(SharedPostgres::new(url.clone(), retention, pool_size));
    let for_conversations = shared.clone();
    let for_tasks = shared.clone();
    Stores {
        conversations: Arc::new(LazyStore::new(move || {
            let shared = for_conversations.clone();
            async move {
                let store: Arc<dyn ConversationStore> = shared.store().await?;
                Ok(store)
            }
        })),
        tasks: crate::tasks::open_with(move || {
            let shared = for_tasks.clone();
            async move {
                let store: Arc<dyn TaskStore> = shared.store().await?;
                Ok(store)
            }
        }),
        sessions: Some(Arc::new(SharedSessions::new(shared))),
    }
}
