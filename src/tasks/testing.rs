//! For the tasks' unit tests: a task store that counts its calls and can be made slow,
//! and calls that never end but say when they are dropped (their upstream request closed).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::{Admission, Started, StatusLine, Tasks};
use crate::principal::Principal;
use crate::store::StoreResult;
use crate::store::contract::alice;
use crate::store::{Beat, StoreLocation, TaskEnd, TaskKey, TaskRecord, TaskStore, open_task_store};

/// A memory task store counting the calls of each method; its batched read and write
/// take `read_delay` and `write_delay` (tokio time).
pub(crate) struct Counting {
    /// The real store, for what another process would do directly.
    pub(crate) inner: Arc<dyn TaskStore>,
    calls: Mutex<HashMap<&'static str, usize>>,
    read_delay: Duration,
    write_delay: Duration,
}

impl Counting {
    /// A fresh memory store, its batched calls taking the given times.
    pub(crate) async fn new(read_delay: Duration, write_delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            inner: open_task_store(&StoreLocation::InMemory).await.unwrap(),
            calls: Mutex::new(HashMap::new()),
            read_delay,
            write_delay,
        })
    }

    /// How many times `method` was called since the last [`Counting::reset`].
    pub(crate) fn calls(&self, method: &str) -> usize {
        self.calls.lock().unwrap().get(method).copied().unwrap_or(0)
    }

    /// Forgets the counts.
    pub(crate) fn reset(&self) {
        self.calls.lock().unwrap().clear();
    }

    /// Asks, as another process sharing the store would, to cancel alice's task `id`.
    pub(crate) async fn cancel_elsewhere(&self, tasks: &Tasks, id: &str) {
        let now = tasks.clock.now_ms();
        let asked = self.inner.request_cancel(&alice(), id, now).await;
        assert!(asked.unwrap(), "the task is known");
    }

    fn count(&self, method: &'static str) {
        *self.calls.lock().unwrap().entry(method).or_insert(0) += 1;
    }
}

#[async_trait]
impl TaskStore for Counting {
    async fn create(&self, owner: &Principal, task: &TaskRecord) -> StoreResult<()> {
        self.count("create");
        self.inner.create(owner, task).await
    }

    async fn get(&self, owner: &Principal, id: &str, now: i64) -> StoreResult<Option<TaskRecord>> {
        self.count("get");
        self.inner.get(owner, id, now).await
    }

    async fn cancel_requested(&self, owner: &Principal, id: &str) -> StoreResult<Option<bool>> {
        self.count("cancel_requested");
        self.inner.cancel_requested(owner, id).await
    }

    async fn request_cancel(&self, owner: &Principal, id: &str, now: i64) -> StoreResult<bool> {
        self.count("request_cancel");
        self.inner.request_cancel(owner, id, now).await
    }

    async fn finish(&self, owner: &Principal, end: &TaskEnd) -> StoreResult<bool> {
        self.count("finish");
        self.inner.finish(owner, end).await
    }

    async fn cancel_flags(&self, tasks: &[TaskKey]) -> StoreResult<HashMap<String, bool>> {
        self.count("cancel_flags");
        tokio::time::sleep(self.read_delay).await;
        self.inner.cancel_flags(tasks).await
    }

    async fn beat_many(&self, beats: &[Beat], now: i64) -> StoreResult<()> {
        self.count("beat_many");
        tokio::time::sleep(self.write_delay).await;
        self.inner.beat_many(beats, now).await
    }

    async fn prune(&self, now: i64) -> StoreResult<usize> {
        self.count("prune");
        self.inner.prune(now).await
    }
}

/// Tasks over `store`: every call a task at once, kept an hour, 1,000 per principal.
pub(crate) fn tasks_over(store: Arc<dyn TaskStore>, after: Duration) -> Arc<Tasks> {
    Arc::new(Tasks::new(store, after, Duration::from_secs(3600)).with_max_per_principal(1_000))
}

/// Set when the call holding it is dropped: its upstream request is closed.
pub(crate) struct Closed(pub(crate) Arc<AtomicBool>);

impl Drop for Closed {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Starts `call`, admitted by `admission`, for a caller that stays and a server that
/// does not stop.
pub(crate) async fn start<T: Serialize + Send + 'static>(
    tasks: &Arc<Tasks>,
    admission: Admission,
    call: impl Future<Output = T> + Send + 'static,
    status: StatusLine,
) -> Started<T> {
    let (caller_gone, shutdown) = (CancellationToken::new(), CancellationToken::new());
    tasks
        .start(admission, call, status, caller_gone, shutdown)
        .await
}

/// Starts a call that must become a task (it never ends); its record.
pub(crate) async fn start_task(
    tasks: &Arc<Tasks>,
    admission: Admission,
    call: impl Future<Output = ()> + Send + 'static,
    status: StatusLine,
) -> TaskRecord {
    let Started::Task(record) = start(tasks, admission, call, status).await else {
        panic!("expected a task");
    };
    record
}

/// Starts, for `owner`, a call that never ends and must become a task; its record, and
/// the flag set once its call is dropped.
pub(crate) async fn start_endless(
    tasks: &Arc<Tasks>,
    owner: &Principal,
    status: StatusLine,
) -> (TaskRecord, Arc<AtomicBool>) {
    let closed = Arc::new(AtomicBool::new(false));
    let guard = Closed(Arc::clone(&closed));
    let call = async move {
        let _guard = guard;
        std::future::pending::<()>().await;
    };
    let admission = tasks.admit(owner).expect("under the cap");
    (start_task(tasks, admission, call, status).await, closed)
}
