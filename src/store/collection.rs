//! Which principal owns which Vultr vector-store collection, whatever the store: the
//! [`CollectionStore`] trait and its records. Vultr keeps the collections of the whole
//! account; this is what keeps each principal to its own (a collection id belongs to at
//! most one principal, the first to claim it).

use async_trait::async_trait;

use super::StoreResult;
use crate::principal::Principal;

/// A collection a principal owns, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedCollection {
    /// The id Vultr assigned.
    pub id: String,
    /// The name it was created with.
    pub name: String,
    /// When it was claimed (unix seconds).
    pub created_at: i64,
}

/// What claiming a collection id found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The id is now the caller's.
    Claimed,
    /// The id was already the caller's.
    AlreadyYours,
    /// Another principal owns the id; nothing was changed.
    Another,
}

/// Keeps who owns which collection id; each call is scoped to an owner.
#[async_trait]
pub trait CollectionStore: Send + Sync {
    /// Claims `id` (made with `name`) for `owner`, unless another principal owns it.
    async fn claim(&self, owner: &Principal, id: &str, name: &str) -> StoreResult<Claim>;

    /// Who owns `id`, if anyone: `Some(true)` the owner, `Some(false)` another, `None` nobody.
    async fn owned_by(&self, owner: &Principal, id: &str) -> StoreResult<Option<bool>>;

    /// `owner`'s collections, oldest first.
    async fn list(&self, owner: &Principal) -> StoreResult<Vec<OwnedCollection>>;

    /// Gives up `owner`'s claim on `id`; true when there was one.
    async fn release(&self, owner: &Principal, id: &str) -> StoreResult<bool>;
}
