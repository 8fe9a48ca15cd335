//! Legacy (2025-era) HTTP sessions, whatever the store: the [`LegacySessionStore`] trait
//! and what it keeps of a session ([`StoredSession`]), so that any replica sharing the
//! store can check a session's owner and restore it.

use std::time::Duration;

use async_trait::async_trait;

use super::StoreResult;
use crate::principal::Principal;

/// How long an unused session is kept.
pub const SESSION_IDLE: Duration = Duration::from_secs(60 * 60);

/// A session as stored: what rmcp restores it from, and who opened it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    /// rmcp's session state as JSON text, once rmcp saved it.
    pub state: Option<String>,
    /// The principal that opened it, once known.
    pub owner: Option<Principal>,
}

/// Keeps legacy HTTP sessions by id: rmcp's state and the owner of each. A session unused
/// for [`SESSION_IDLE`] is gone: reads skip it and saving any session deletes it.
#[async_trait]
pub trait LegacySessionStore: Send + Sync {
    /// Saves session `id`'s state (JSON text) and deletes sessions long unused.
    async fn save_state(&self, id: &str, state: &str) -> StoreResult<()>;

    /// Records that `owner` opened session `id`.
    async fn save_owner(&self, id: &str, owner: &Principal) -> StoreResult<()>;

    /// Session `id`, marked used now; `None` when unknown or long unused.
    async fn use_session(&self, id: &str) -> StoreResult<Option<StoredSession>>;

    /// Deletes session `id`.
    async fn delete(&self, id: &str) -> StoreResult<()>;
}

/// The legacy sessions every replica of a shared store sees.
pub type SharedSessions = dyn LegacySessionStore;
