//! The task store opened on first use, through the same cell as the conversation store
//! ([`OpenOnce`]): concurrent first uses share one open, and a failure is remembered for a
//! few seconds, then tried again.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;

use super::record::{Beat, TaskKey, TaskRecord, TaskState, TaskStore};
use crate::principal::Principal;
use crate::store::{OpenOnce, StoreError, StoreLocation, open_task_store};

/// The SQLite task store at `location` (the conversations' file, or memory), opened on
/// first use. Postgres locations go through [`crate::store::open_stores`].
pub fn open_lazily(location: StoreLocation) -> Arc<dyn TaskStore> {
    open_with(move || {
        let location = location.clone();
        async move { open_task_store(&location).await }
    })
}

/// A task store that `open` opens on first use, and again after a remembered failure expires.
pub fn open_with<F, Fut>(open: F) -> Arc<dyn TaskStore>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Arc<dyn TaskStore>, StoreError>> + Send + 'static,
{
    Arc::new(LazyTaskStore {
        opened: OpenOnce::new(open),
    })
}

/// A task store that opens the real one on first use and keeps it.
struct LazyTaskStore {
    opened: OpenOnce<Arc<dyn TaskStore>>,
}

impl LazyTaskStore {
    /// The opened store; a failure is `Unavailable`.
    async fn store(&self) -> Result<Arc<dyn TaskStore>, StoreError> {
        self.opened.get().await
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

    async fn cancel_flags(
        &self,
        tasks: &[TaskKey],
    ) -> Result<std::collections::HashMap<String, bool>, StoreError> {
        self.store().await?.cancel_flags(tasks).await
    }

    async fn beat_many(&self, beats: &[Beat], now: i64) -> Result<(), StoreError> {
        self.store().await?.beat_many(beats, now).await
    }

    async fn prune(&self, now: i64) -> Result<usize, StoreError> {
        self.store().await?.prune(now).await
    }
}
