//! A store opened on first use. An open that fails is not remembered: the next call tries
//! again (the lock, the full disk or the bad path may be gone by then). Any kind of store
//! gets this by handing [`LazyStore::new`] its opening function.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::future::BoxFuture;
use tokio::sync::OnceCell;

use super::{Conversation, ConversationId, ConversationStore, ConversationSummary, StoreError};
use crate::principal::Principal;
use crate::vultr::chat::Message;

/// How a [`LazyStore`] opens its store.
type Opener = Box<
    dyn Fn() -> BoxFuture<'static, Result<Arc<dyn ConversationStore>, StoreError>> + Send + Sync,
>;

/// A store that opens (and prunes) the real one on first use and then keeps it.
pub struct LazyStore {
    open: Opener,
    opened: OnceCell<Arc<dyn ConversationStore>>,
}

impl LazyStore {
    /// A store that calls `open` on first use, and again on the next use while it fails.
    pub fn new<F, Fut>(open: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Arc<dyn ConversationStore>, StoreError>> + Send + 'static,
    {
        Self {
            open: Box::new(move || Box::pin(open())),
            opened: OnceCell::new(),
        }
    }

    /// The opened store. Calls arriving while it opens wait for that open instead of
    /// starting their own; a failure is `Unavailable` and leaves the store unopened.
    async fn store(&self) -> Result<&dyn ConversationStore, StoreError> {
        let store = self
            .opened
            .get_or_try_init(|| async {
                let store = (self.open)()
                    .await
                    .map_err(|error| StoreError::Unavailable(Box::new(error)))?;
                if let Err(error) = store.prune().await {
                    tracing::warn!(%error, "could not prune old conversations");
                }
                Ok(store)
            })
            .await?;
        Ok(store.as_ref())
    }
}

#[async_trait]
impl ConversationStore for LazyStore {
    async fn create(
        &self,
        owner: &Principal,
        model: &str,
        messages: &[Message],
        cut_off: Option<&str>,
    ) -> Result<ConversationId, StoreError> {
        self.store()
            .await?
            .create(owner, model, messages, cut_off)
            .await
    }

    async fn append(
        &self,
        owner: &Principal,
        id: &ConversationId,
        model: &str,
        messages: &[Message],
        cut_off: Option<&str>,
    ) -> Result<(), StoreError> {
        self.store()
            .await?
            .append(owner, id, model, messages, cut_off)
            .await
    }

    async fn get(
        &self,
        owner: &Principal,
        id: &ConversationId,
    ) -> Result<Conversation, StoreError> {
        self.store().await?.get(owner, id).await
    }

    async fn list(
        &self,
        owner: &Principal,
        limit: usize,
    ) -> Result<Vec<ConversationSummary>, StoreError> {
        self.store().await?.list(owner, limit).await
    }

    async fn delete(&self, owner: &Principal, id: &ConversationId) -> Result<bool, StoreError> {
        self.store().await?.delete(owner, id).await
    }

    async fn prune(&self) -> Result<usize, StoreError> {
        self.store().await?.prune().await
    }

    async fn open(&self) -> Result<(), StoreError> {
        self.store().await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::store::contract::{self, alice, user};
    use crate::store::{SqliteStore, StoreLocation};

    /// A lazy memory store whose first `failures` opens fail; also returns the open count.
    fn failing_then_memory(failures: usize) -> (LazyStore, Arc<AtomicUsize>) {
        let opens = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&opens);
        let store = LazyStore::new(move || {
            let attempt = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                // Let other calls arrive while this open is under way.
                tokio::task::yield_now().await;
                if attempt < failures {
                    return Err(StoreError::Busy {
                        location: "test".to_owned(),
                        action: "opening it",
                        waited: std::time::Duration::from_secs(5),
                    });
                }
                let store =
                    SqliteStore::open(&StoreLocation::InMemory, contract::RETENTION).await?;
                Ok(Arc::new(store) as Arc<dyn ConversationStore>)
            }
        });
        (store, opens)
    }

    #[tokio::test]
    async fn a_lazy_store_keeps_the_contract() {
        let (store, _opens) = failing_then_memory(0);
        contract::check_contract(&store).await;
    }

    #[tokio::test]
    async fn nothing_is_opened_until_the_first_call_and_a_success_is_kept() {
        let (store, opens) = failing_then_memory(0);
        assert_eq!(opens.load(Ordering::SeqCst), 0);
        let id = store
            .create(&alice(), "m", &[user("hi")], None)
            .await
            .unwrap();
        store.get(&alice(), &id).await.unwrap();
        store.list(&alice(), 10).await.unwrap();
        assert_eq!(opens.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_open_that_failed_is_tried_again_on_the_next_call() {
        let (store, opens) = failing_then_memory(2);
        for _ in 0..2 {
            let err = store.list(&alice(), 10).await.unwrap_err();
            assert!(
                matches!(&err, StoreError::Unavailable(inner) if matches!(**inner, StoreError::Busy { .. })),
                "{err:?}"
            );
            assert!(
                err.to_string().starts_with(
                    "conversations are unavailable: the conversation store `test` is locked"
                ),
                "{err}"
            );
        }
        let id = store
            .create(&alice(), "m", &[user("now")], None)
            .await
            .unwrap();
        assert_eq!(store.list(&alice(), 10).await.unwrap()[0].id, id);
        assert_eq!(opens.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn calls_arriving_during_an_open_share_it() {
        let (store, opens) = failing_then_memory(0);
        let owner = alice();
        let (a, b, c) = tokio::join!(store.list(&owner, 1), store.list(&owner, 1), store.prune());
        assert!(a.is_ok() && b.is_ok() && c.is_ok());
        assert_eq!(opens.load(Ordering::SeqCst), 1);
    }
}
