//! Vultr vector-store collections as a service, each principal keeping to its own: create
//! (refusing an id that is another principal's), list, delete, add items or a document,
//! list and delete items, search (`top_k` applied here, since Vultr ignores it). Vultr
//! keeps the collections of the whole account; the [`CollectionStore`] says which are
//! whose. No MCP types: `src/mcp/collections.rs` decodes and renders around it.

use std::future::Future;
use std::sync::Arc;

use serde_json::Value;

use crate::keys::{InferenceKeys, KeyError};
use crate::kind_call;
use crate::principal::Principal;
use crate::secret::ApiKey;
use crate::store::{Claim, CollectionStore, StoreError};
use crate::vultr::error::VultrError;
use crate::vultr::inference::InferenceClient;
use crate::vultr::vector_store::{Collection, Hit, Item, Upload};

/// How many characters of a name Vultr is reported to keep in the id it derives.
pub const ID_CHARS: usize = 14;
/// Results a search returns when the caller asks for no number.
pub const DEFAULT_TOP_K: usize = 5;
/// Most results a search may return.
pub const MAX_TOP_K: usize = 50;
/// Most items one call may add.
pub const MAX_ITEMS_PER_CALL: usize = 100;
/// Largest document one call may upload, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 10 * 1024 * 1024;
/// Longest collection name, in characters.
const MAX_NAME_CHARS: usize = 200;

/// Each principal's Vultr collections; built once per process by `App`.
pub struct Collections {
    inference: InferenceClient,
    keys: Arc<InferenceKeys>,
    store: Arc<dyn CollectionStore>,
}

/// Why a collection call failed; each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum CollectionError {
    /// No inference key could be had.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The inference API failed.
    #[error(transparent)]
    Upstream(#[from] VultrError),
    /// Who owns which collection could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The collection is not the caller's (unknown, deleted, or another principal's).
    #[error(
        "no collection `{id}` of yours: it may have been deleted, or never been created here. list_collections shows the ids of your collections (use the id create_collection returned, not the name)."
    )]
    NotFound {
        /// The id asked for.
        id: String,
    },
    /// The name maps to an id another principal's collection has.
    #[error(
        "the name `{name}` gives the collection id `{id}` (Vultr derives ids from the first {ID_CHARS} characters of the name), and that id is another user's collection; nothing of theirs was touched. Pick a name that differs within its first {ID_CHARS} characters."
    )]
    Taken {
        /// The name asked for.
        name: String,
        /// The id it maps to.
        id: String,
    },
    /// The name maps to an id of a collection on the account that no user of this server
    /// owns (made in Vultr's console, by another deployment, or before this server's store
    /// was reset): never handed to whoever names it first.
    #[error(
        "the name `{name}` gives the collection id `{id}` (Vultr derives ids from the first {ID_CHARS} characters of the name), and a collection with that id already exists on the Vultr account without belonging to you here (it was made outside this server, or before its store was reset); nothing of it was touched. Pick a name that differs within its first {ID_CHARS} characters."
    )]
    Unowned {
        /// The name asked for.
        name: String,
        /// The id it maps to.
        id: String,
    },
    /// Some items were added before one failed.
    #[error(
        "{error} (after {added} of the items were added, with ids {ids}: add only the rest, from `items[{added}]` on)",
        ids = .ids.join(", ")
    )]
    Partly {
        /// How many were added.
        added: usize,
        /// Their ids, in order.
        ids: Vec<String>,
        /// Why the next one failed.
        error: Box<CollectionError>,
    },
    /// The arguments make no sense; the text names the field.
    #[error("invalid arguments: {0}")]
    Invalid(String),
}

/// A collection created (or found again) for its owner.
#[derive(Debug, Clone)]
pub struct Created {
    /// The collection as Vultr answered.
    pub collection: Collection,
    /// False when the name mapped onto a collection the caller already had.
    pub new: bool,
}

/// The caller's collections.
#[derive(Debug, Clone)]
pub struct Listed {
    /// The caller's collections Vultr lists.
    pub collections: Vec<Collection>,
    /// Ids the caller owns that Vultr no longer lists (deleted elsewhere).
    pub missing: Vec<String>,
}

/// One text item to add.
#[derive(Debug, Clone)]
pub struct NewItem {
    /// The text to embed.
    pub content: String,
    /// Its free-form description.
    pub description: Option<String>,
}

/// What a search found.
#[derive(Debug, Clone)]
pub struct Search {
    /// The first `top_k` results, most relevant first.
    pub hits: Vec<Hit>,
    /// How many results Vultr returned before the cut.
    pub returned: usize,
    /// The `usage` Vultr sent, if any.
    pub usage: Option<Value>,
}

/// The id Vultr will give a collection named `name`, when it can be told for sure: a name
/// of lower-case letters, digits, `-` and `_` only keeps its first [`ID_CHARS`]
/// characters. Other names are sanitized by rules not documented, so nothing is predicted.
pub fn predicted_id(name: &str) -> Option<String> {
    let plain = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    (plain && !name.is_empty()).then(|| name.chars().take(ID_CHARS).collect())
}

impl Collections {
    /// Collections on the inference API, with keys from `keys`, owners kept in `store`.
    pub fn new(
        inference: InferenceClient,
        keys: Arc<InferenceKeys>,
        store: Arc<dyn CollectionStore>,
    ) -> Self {
        Self {
            inference,
            keys,
            store,
        }
    }

    /// Runs `call` with the inference key; a discovered key that is refused is looked up
    /// again, once.
    async fn with_key<T, F, Fut>(&self, call: F) -> Result<T, CollectionError>
    where
        F: Fn(ApiKey) -> Fut,
        Fut: Future<Output = Result<T, VultrError>>,
    {
        kind_call::with_key(&self.keys, call).await
    }

    /// Ok when `id` is `owner`'s collection, else [`CollectionError::NotFound`].
    pub async fn check_owned(&self, owner: &Principal, id: &str) -> Result<(), CollectionError> {
        match self.store.owned_by(owner, id).await? {
            Some(true) => Ok(()),
            _ => Err(CollectionError::NotFound { id: id.to_owned() }),
        }
    }

    /// Creates the collection `name` for `owner`. Refused before anything is sent when
    /// the id it will get is predictably another principal's; refused after when the id
    /// Vultr returns is (their collection is left as it is).
    pub async fn create(&self, owner: &Principal, name: &str) -> Result<Created, CollectionError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return Err(CollectionError::Invalid(format!(
                "`name` must have 1 to {MAX_NAME_CHARS} characters"
            )));
        }
        let predicted = predicted_id(name);
        if let Some(id) = &predicted
            && self.store.owned_by(owner, id).await? == Some(false)
        {
            return Err(CollectionError::Taken {
                name: name.to_owned(),
                id: id.clone(),
            });
        }
        // The ids on the account before: Vultr maps a name onto an existing collection, so
        // one that no user here owns must not become the caller's by naming it.
        let existing: Vec<String> = self
            .with_key(|key| async move { self.inference.list_collections(&key).await })
            .await?
            .into_iter()
            .map(|c| c.id)
            .collect();
        if let Some(id) = &predicted
            && self.unowned(owner, &existing, id).await?
        {
            return Err(CollectionError::Unowned {
                name: name.to_owned(),
                id: id.clone(),
            });
        }
        let collection = self
            .with_key(|key| async move { self.inference.create_collection(&key, name).await })
            .await?;
        if self.unowned(owner, &existing, &collection.id).await? {
            return Err(match self.store.owned_by(owner, &collection.id).await? {
                Some(false) => CollectionError::Taken {
                    name: name.to_owned(),
                    id: collection.id,
                },
                _ => CollectionError::Unowned {
                    name: name.to_owned(),
                    id: collection.id,
                },
            });
        }
        match self.store.claim(owner, &collection.id, name).await? {
            Claim::Claimed => Ok(Created {
                collection,
                new: true,
            }),
            Claim::AlreadyYours => Ok(Created {
                collection,
                new: false,
            }),
            Claim::Another => Err(CollectionError::Taken {
                name: name.to_owned(),
                id: collection.id,
            }),
        }
    }

    /// Whether `id` is among the `existing` ids of the account without being `owner`'s.
    async fn unowned(
        &self,
        owner: &Principal,
        existing: &[String],
        id: &str,
    ) -> Result<bool, CollectionError> {
        Ok(existing.iter().any(|e| e == id) && self.store.owned_by(owner, id).await? != Some(true))
    }

    /// `owner`'s collections: Vultr's list, kept to the ids `owner` owns.
    pub async fn list(&self, owner: &Principal) -> Result<Listed, CollectionError> {
        let owned = self.store.list(owner).await?;
        if owned.is_empty() {
            return Ok(Listed {
                collections: Vec::new(),
                missing: Vec::new(),
            });
        }
        let all = self
            .with_key(|key| async move { self.inference.list_collections(&key).await })
            .await?;
        let collections: Vec<Collection> = owned
            .iter()
            .filter_map(|mine| {
                let found = all.iter().find(|c| c.id == mine.id)?;
                let mut found = found.clone();
                found.name.get_or_insert_with(|| mine.name.clone());
                Some(found)
            })
            .collect();
        let missing = owned
            .into_iter()
            .filter(|mine| !all.iter().any(|c| c.id == mine.id))
            .map(|mine| mine.id)
            .collect();
        Ok(Listed {
            collections,
            missing,
        })
    }

    /// Deletes `owner`'s collection `id` on Vultr and forgets it; true when Vultr still
    /// had it (false: it was already gone there, and is now forgotten here too).
    pub async fn delete(&self, owner: &Principal, id: &str) -> Result<bool, CollectionError> {
        self.check_owned(owner, id).await?;
        let deleted = self
            .with_key(|key| async move { self.inference.delete_collection(&key, id).await })
            .await;
        let existed = match deleted {
            Ok(()) => true,
            Err(CollectionError::Upstream(VultrError::Status { status: 404, .. })) => false,
            Err(error) => return Err(error),
        };
        self.store.release(owner, id).await?;
        Ok(existed)
    }

    /// Adds text items to `owner`'s collection `id`, in order; the items Vultr made.
    pub async fn add_items(
        &self,
        owner: &Principal,
        id: &str,
        items: &[NewItem],
    ) -> Result<Vec<Item>, CollectionError> {
        if items.is_empty() || items.len() > MAX_ITEMS_PER_CALL {
            return Err(CollectionError::Invalid(format!(
                "`items` must hold 1 to {MAX_ITEMS_PER_CALL} items (call again for more)"
            )));
        }
        if let Some(at) = items.iter().position(|i| i.content.trim().is_empty()) {
            return Err(CollectionError::Invalid(format!(
                "`items[{at}].content` is empty; give the text to store"
            )));
        }
        self.check_owned(owner, id).await?;
        let mut added: Vec<Item> = Vec::with_capacity(items.len());
        for item in items {
            let description = item.description.as_deref();
            let content = item.content.as_str();
            let outcome = self
                .with_key(|key| async move {
                    self.inference
                        .add_item(&key, id, content, description)
                        .await
                })
                .await;
            match outcome {
                Ok(item) => added.push(item),
                Err(error) if added.is_empty() => return Err(error),
                Err(error) => {
                    return Err(CollectionError::Partly {
                        added: added.len(),
                        ids: added.into_iter().map(|item| item.id).collect(),
                        error: Box::new(error),
                    });
                }
            }
        }
        Ok(added)
    }

    /// Uploads a document (`bytes` named `filename`) to `owner`'s collection `id`.
    pub async fn add_document(
        &self,
        owner: &Principal,
        id: &str,
        filename: &str,
        bytes: &[u8],
    ) -> Result<Upload, CollectionError> {
        if bytes.is_empty() {
            return Err(CollectionError::Invalid("the document is empty".to_owned()));
        }
        if bytes.len() > MAX_DOCUMENT_BYTES {
            return Err(CollectionError::Invalid(format!(
                "the document has {} bytes; at most {MAX_DOCUMENT_BYTES} may be uploaded at once: split it, or add its text as `items`",
                bytes.len()
            )));
        }
        self.check_owned(owner, id).await?;
        self.with_key(|key| async move { self.inference.add_file(&key, id, filename, bytes).await })
            .await
    }

    /// The items of `owner`'s collection `id`.
    pub async fn items(&self, owner: &Principal, id: &str) -> Result<Vec<Item>, CollectionError> {
        self.check_owned(owner, id).await?;
        self.with_key(|key| async move { self.inference.list_items(&key, id).await })
            .await
    }

    /// Deletes item `item` of `owner`'s collection `id`.
    pub async fn delete_item(
        &self,
        owner: &Principal,
        id: &str,
        item: &str,
    ) -> Result<(), CollectionError> {
        if item.trim().is_empty() {
            return Err(CollectionError::Invalid(
                "`item_id` is empty; list_collection_items shows the ids".to_owned(),
            ));
        }
        self.check_owned(owner, id).await?;
        self.with_key(|key| async move { self.inference.delete_item(&key, id, item).await })
            .await
    }

    /// Searches `owner`'s collection `id` for `query`: the first `top_k` (default
    /// [`DEFAULT_TOP_K`]) results in Vultr's order.
    pub async fn search(
        &self,
        owner: &Principal,
        id: &str,
        query: &str,
        top_k: Option<usize>,
    ) -> Result<Search, CollectionError> {
        if query.trim().is_empty() {
            return Err(CollectionError::Invalid(
                "`query` is empty; give the text to search for".to_owned(),
            ));
        }
        let top_k = top_k.unwrap_or(DEFAULT_TOP_K);
        if !(1..=MAX_TOP_K).contains(&top_k) {
            return Err(CollectionError::Invalid(format!(
                "`top_k` must be 1 to {MAX_TOP_K}"
            )));
        }
        self.check_owned(owner, id).await?;
        let found = self
            .with_key(|key| async move { self.inference.search(&key, id, query).await })
            .await?;
        let returned = found.hits.len();
        let mut hits = found.hits;
        hits.truncate(top_k);
        Ok(Search {
            hits,
            returned,
            usage: found.usage,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_have_a_predicted_id() {
        assert_eq!(predicted_id("docs").as_deref(), Some("docs"));
        assert_eq!(
            predicted_id("quarterly-reports-2026").as_deref(),
            Some("quarterly-repo")
        );
        assert_eq!(predicted_id("Docs"), None);
        assert_eq!(predicted_id("my docs"), None);
        assert_eq!(predicted_id(""), None);
    }
}
