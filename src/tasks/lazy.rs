//! The task store opened on first use, as the conversation store is: an open that fails
//! is tried again on the next call.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::future::BoxFuture;
use tokio::sync::OnceCell;

use super::record::{TaskRecord, TaskState, TaskStore};
use crate::principal::Principal;
use crate::store::{StoreError, StoreLocation, open_task_store};

/// The SQLite task store at `location` (the conversations' file, or memory), opened on
/// first use. Postgres locations go through [`crate::store::open_stores`].
pub fn open_lazily(location: StoreLocation) -> Arc<dyn TaskStore> {
    open_with(move || {
        let location = location.clone();
        async move { open_task_store(&location).await }
    })
}

/// A task store that `open` opens on first use, and again on the next use while it fails.
pub fn open_with<F, Fut>(open: F) -> Arc<dyn TaskStore>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Arc<dyn TaskStore>, StoreError>> + Send + 'static,
{
    Arc::new(LazyTaskStore {
        open: Box::new(move || Box::pin(open())),
        opened: OnceCell::new(),
    })
}

/// How a [`LazyTaskStore`] opens its store.
type Opener =
    Box<dyn Fn() -> BoxFuture<'static, Result<Arc<dyn TaskStore>, StoreError>> + Send + Sync>;

/// A task store that opens the real one on first use and keeps it.
struct LazyTaskStore {
    open: Opener,
    opened: OnceCell<Arc<dyn TaskStore>>,
}

impl LazyTaskStore {
    /// The opened store; a failure is `Unavailable` and leaves it unopened.
    async fn store(&self) -> Result<&dyn TaskStore, StoreError> {
        let store = self
            .opened
            .get_or_try_init(|| async {
                (self.open)()
                    .await
                    .map_err(|error| StoreError::Unavailable(Box::new(error)))
            })
            .await?;
        Ok(store.as_ref())
    }
}

#[async_trait]
impl TaskStore for LazyTaskStore {
    async fn create(&self, owner: &Principal, task: &TaskRecord) -> Result<(), StoreError> {
        self.store().await?.create(owner, task).await
    }

    async fn get(
        &self,
        owner: &Principal,
        id: &str,
        now: i64,
    ) -> Result<Option<TaskRecord>, StoreError> {
        self.store().await?.get(owner, id, now).await
    }

    async fn beat(
        &self,
        owner: &Principal,
        id: &str,
        now: i64,
        status_message: Option<&str>,
    ) -> Result<Option<bool>, StoreError> {
        self.store()
            .await?
            .beat(owner, id, now, status_message)
            .await
    }

    async fn cancel_requested(
        &self,
        owner: &Principal,
        id: &str,
    ) -> Result<Option<bool>, StoreError> {
        self.store().await?.cancel_requested(owner, id).await
    }

    async fn request_cancel(
        &self,
        owner: &Principal,
        id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.store().await?.request_cancel(owner, id, now).await
    }

    async fn finish(
        &self,
        owner: &Principal,
        id: &str,
        state: &TaskState,
        status_message: &str,
        now: i64,
        heartbeat_before: Option<i64>,
    ) -> Result<bool, StoreError> {
        self.store()
            .await?
            .finish(owner, id, state, status_message, now, heartbeat_before)
            .await
    }

    async fn prune(&self, now: i64) -> Result<usize, StoreError> {
        self.store().await?.prune(now).await
    }
}
