//! Stores opened on first use. [`Lazy`] is the one cell every lazy store uses (the
//! conversations, the tasks, the legacy sessions, the shared Postgres pool): calls arriving
//! while an open is under way share it and all get its result; a failed open is remembered
//! for [`REMEMBER_FAILURE`] (calls then get that failure at once instead of each waiting
//! for an open of their own), and then tried again (the lock, the full disk, the bad path
//! or the stopped server may be gone by then). A `Lazy<Arc<dyn S>>` is itself an `S` for
//! each store trait `S`, so any kind of store gets this by handing [`Lazy::new`] its
//! opening function.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use tokio::time::Instant;

use super::{
    Beat, Claim, CollectionStore, Conversation, ConversationId, ConversationStore,
    ConversationSummary, Day, LedgerStore, LegacySessionStore, MediaCaps, MediaItem, MediaRecord,
    MediaStore, OwnedCollection, Reservation, Settlement, Spent, StoreError, StoredSession,
    TaskEnd, TaskKey, TaskRecord, TaskStore, Turn, UsageRow,
};
use crate::principal::Principal;
use crate::store::StoreResult;

/// How long a failed open is answered from memory before the next call tries again.
pub const REMEMBER_FAILURE: Duration = Duration::from_secs(5);

/// How a [`Lazy`] opens its value.
type Opener<T> = Box<dyn Fn() -> BoxFuture<'static, StoreResult<T>> + Send + Sync>;

/// One open attempt, awaited by every call that arrives while it runs.
type Attempt<T> = Shared<BoxFuture<'static, Result<T, Arc<StoreError>>>>;

/// A value (a store) opened on first use and then kept. Concurrent first uses share one open
/// attempt; a failure is remembered for [`REMEMBER_FAILURE`], then the next call opens again.
pub struct Lazy<T> {
    open: Opener<T>,
    state: Mutex<State<T>>,
}

/// Where a [`Lazy`] is.
enum State<T> {
    /// Not opened, or the last failure is old enough to try again.
    Closed,
    /// An open is under way.
    Opening(Attempt<T>),
    /// Opened: kept for good.
    Open(T),
    /// The last open failed; calls before `until` get this failure.
    Failed {
        error: Arc<StoreError>,
        until: Instant,
    },
}

impl<T: Clone + Send + Sync + 'static> Lazy<T> {
    /// A cell that calls `open` on first use, and again after a remembered failure expires.
    pub fn new<F, Fut>(open: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = StoreResult<T>> + Send + 'static,
    {
        Self {
            open: Box::new(move || Box::pin(open())),
            state: Mutex::new(State::Closed),
        }
    }

    /// The opened value, opening it now (or joining the open under way) if need be. A
    /// failure is [`StoreError::Unavailable`].
    pub async fn opened(&self) -> StoreResult<T> {
        let attempt = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            match &*state {
                State::Open(value) => return Ok(value.clone()),
                State::Failed { error, until } if Instant::now() < *until => {
                    return Err(unavailable(error));
                }
                State::Opening(attempt) => attempt.clone(),
                State::Closed | State::Failed { .. } => {
                    let attempt = (self.open)().map(|r| r.map_err(Arc::new)).boxed().shared();
                    *state = State::Opening(attempt.clone());
                    attempt
                }
            }
        };
        let result = attempt.clone().await;
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        // The first call to see the attempt end records its result.
        if matches!(&*state, State::Opening(current) if current.ptr_eq(&attempt)) {
            *state = match &result {
                Ok(value) => State::Open(value.clone()),
                Err(error) => State::Failed {
                    error: error.clone(),
                    until: Instant::now() + REMEMBER_FAILURE,
                },
            };
        }
        result.map_err(|error| unavailable(&error))
    }
}

/// The failure of an open, as every call that needed it gets it: `Unavailable`, once (an
/// open that failed because an inner cell's open did is not wrapped twice).
fn unavailable(error: &Arc<StoreError>) -> StoreError {
    crate::observe::metrics::store_error("unavailable");
    match &**error {
        StoreError::Unavailable(inner) => StoreError::Unavailable(inner.clone()),
        _ => StoreError::Unavailable(error.clone()),
    }
}

/// A conversation store that `open` opens on first use (pruning it once opened), and again
/// after a remembered failure expires.
pub fn lazy_conversations<F, Fut>(open: F) -> Arc<dyn ConversationStore>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = StoreResult<Arc<dyn ConversationStore>>> + Send + 'static,
{
    Arc::new(Lazy::new(move || {
        let opening = open();
        async move {
            let store = opening.await?;
            if let Err(error) = store.prune().await {
                tracing::warn!(%error, "could not prune old conversations");
            }
            Ok(store)
        }
    }))
}

#[async_trait]
impl ConversationStore for Lazy<Arc<dyn ConversationStore>> {
    async fn create(&self, owner: &Principal, turn: &Turn<'_>) -> StoreResult<ConversationId> {
        self.opened().await?.create(owner, turn).await
    }

    async fn append(&self, owner: &Principal, id: &ConversationId, turn: &Turn) -> StoreResult<()> {
        self.opened().await?.append(owner, id, turn).await
    }

    async fn get(&self, owner: &Principal, id: &ConversationId) -> StoreResult<Conversation> {
        self.opened().await?.get(owner, id).await
    }

    async fn list(&self, owner: &Principal, limit: usize) -> StoreResult<Vec<ConversationSummary>> {
        self.opened().await?.list(owner, limit).await
    }

    async fn delete(&self, owner: &Principal, id: &ConversationId) -> StoreResult<bool> {
        self.opened().await?.delete(owner, id).await
    }

    async fn prune(&self) -> StoreResult<usize> {
        self.opened().await?.prune().await
    }

    async fn open(&self) -> StoreResult<()> {
        self.opened().await.map(drop)
    }
}

#[async_trait]
impl TaskStore for Lazy<Arc<dyn TaskStore>> {
    async fn create(&self, owner: &Principal, task: &TaskRecord) -> StoreResult<()> {
        self.opened().await?.create(owner, task).await
    }

    async fn get(&self, owner: &Principal, id: &str, now: i64) -> StoreResult<Option<TaskRecord>> {
        self.opened().await?.get(owner, id, now).await
    }

    async fn cancel_requested(&self, owner: &Principal, id: &str) -> StoreResult<Option<bool>> {
        self.opened().await?.cancel_requested(owner, id).await
    }

    async fn request_cancel(&self, owner: &Principal, id: &str, now: i64) -> StoreResult<bool> {
        self.opened().await?.request_cancel(owner, id, now).await
    }

    async fn finish(&self, owner: &Principal, end: &TaskEnd) -> StoreResult<bool> {
        self.opened().await?.finish(owner, end).await
    }

    async fn cancel_flags(&self, tasks: &[TaskKey]) -> StoreResult<HashMap<String, bool>> {
        self.opened().await?.cancel_flags(tasks).await
    }

    async fn beat_many(&self, beats: &[Beat], now: i64) -> StoreResult<()> {
        self.opened().await?.beat_many(beats, now).await
    }

    async fn prune(&self, now: i64) -> StoreResult<usize> {
        self.opened().await?.prune(now).await
    }
}

#[async_trait]
impl MediaStore for Lazy<Arc<dyn MediaStore>> {
    async fn put(
        &self,
        owner: &Principal,
        item: &MediaItem,
        caps: MediaCaps,
    ) -> StoreResult<Vec<String>> {
        self.opened().await?.put(owner, item, caps).await
    }

    async fn get(&self, owner: &Principal, id: &str, now: i64) -> StoreResult<Option<MediaRecord>> {
        self.opened().await?.get(owner, id, now).await
    }

    async fn prune(&self, now: i64) -> StoreResult<usize> {
        self.opened().await?.prune(now).await
    }
}

#[async_trait]
impl LegacySessionStore for Lazy<Arc<dyn LegacySessionStore>> {
    async fn save_state(&self, id: &str, state: &str) -> StoreResult<()> {
        self.opened().await?.save_state(id, state).await
    }

    async fn save_owner(&self, id: &str, owner: &Principal) -> StoreResult<()> {
        self.opened().await?.save_owner(id, owner).await
    }

    async fn use_session(&self, id: &str) -> StoreResult<Option<StoredSession>> {
        self.opened().await?.use_session(id).await
    }

    async fn delete(&self, id: &str) -> StoreResult<()> {
        self.opened().await?.delete(id).await
    }
}

#[async_trait]
impl CollectionStore for Lazy<Arc<dyn CollectionStore>> {
    async fn claim(&self, owner: &Principal, id: &str, name: &str) -> StoreResult<Claim> {
        self.opened().await?.claim(owner, id, name).await
    }

    async fn owned_by(&self, owner: &Principal, id: &str) -> StoreResult<Option<bool>> {
        self.opened().await?.owned_by(owner, id).await
    }

    async fn list(&self, owner: &Principal) -> StoreResult<Vec<OwnedCollection>> {
        self.opened().await?.list(owner).await
    }

    async fn release(&self, owner: &Principal, id: &str) -> StoreResult<bool> {
        self.opened().await?.release(owner, id).await
    }
}

#[async_trait]
impl LedgerStore for Lazy<Arc<dyn LedgerStore>> {
    async fn reserve(
        &self,
        reservation: &Reservation<'_>,
        now: i64,
    ) -> StoreResult<Result<String, Spent>> {
        self.opened().await?.reserve(reservation, now).await
    }

    async fn settle(&self, settlement: &Settlement<'_>) -> StoreResult<()> {
        self.opened().await?.settle(settlement).await
    }

    async fn release(&self, owner: &Principal, id: &str) -> StoreResult<()> {
        self.opened().await?.release(owner, id).await
    }

    async fn spent(
        &self,
        owner: &Principal,
        day: Day,
        month_start: Day,
        now: i64,
    ) -> StoreResult<Spent> {
        self.opened()
            .await?
            .spent(owner, day, month_start, now)
            .await
    }

    async fn usage(&self, owner: Option<&Principal>, since: Day) -> StoreResult<Vec<UsageRow>> {
        self.opened().await?.usage(owner, since).await
    }

    async fn prune(&self, before: Day, now: i64) -> StoreResult<usize> {
        self.opened().await?.prune(before, now).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::store::contract::{self, alice, start, user};
    use crate::store::{SqliteStore, StoreLocation};

    /// A lazy memory store whose first `failures` opens fail after `taking`; also returns
    /// the open count.
    fn failing_then_memory(
        failures: usize,
        taking: Duration,
    ) -> (Arc<dyn ConversationStore>, Arc<AtomicUsize>) {
        let opens = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&opens);
        let store = lazy_conversations(move || {
            let attempt = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                // Let other calls arrive while this open is under way.
                tokio::task::yield_now().await;
                tokio::time::sleep(taking).await;
                if attempt < failures {
                    return Err(StoreError::Busy {
                        location: "test".to_owned(),
                        action: "opening it",
                        waited: taking,
                    });
                }
                let store =
                    SqliteStore::open(&StoreLocation::InMemory, contract::RETENTION).await?;
                Ok(Arc::new(store) as Arc<dyn ConversationStore>)
            }
        });
        (store, opens)
    }

    fn is_busy(err: &StoreError) -> bool {
        matches!(err, StoreError::Unavailable(inner) if matches!(**inner, StoreError::Busy { .. }))
    }

    #[tokio::test]
    async fn a_lazy_store_keeps_the_contract() {
        let (store, _opens) = failing_then_memory(0, Duration::ZERO);
        contract::check_contract(store.as_ref()).await;
    }

    #[tokio::test]
    async fn nothing_is_opened_until_the_first_call_and_a_success_is_kept() {
        let (store, opens) = failing_then_memory(0, Duration::ZERO);
        assert_eq!(opens.load(Ordering::SeqCst), 0);
        let id = start(store.as_ref(), &alice(), &[user("hi")]).await;
        store.get(&alice(), &id).await.unwrap();
        store.list(&alice(), 10).await.unwrap();
        assert_eq!(opens.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_open_is_remembered_for_a_few_seconds_then_tried_again() {
        let (store, opens) = failing_then_memory(2, Duration::ZERO);
        let err = store.list(&alice(), 10).await.unwrap_err();
        assert!(is_busy(&err), "{err:?}");
        assert!(
            err.to_string().starts_with(
                "conversations are unavailable: the conversation store `test` is locked"
            ),
            "{err}"
        );
        tokio::time::advance(REMEMBER_FAILURE - Duration::from_millis(1)).await;
        let remembered = store.list(&alice(), 10).await.unwrap_err();
        assert_eq!(remembered.to_string(), err.to_string());
        assert_eq!(opens.load(Ordering::SeqCst), 1, "answered from memory");

        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(is_busy(&store.list(&alice(), 10).await.unwrap_err()));
        assert_eq!(opens.load(Ordering::SeqCst), 2, "tried again");

        tokio::time::advance(REMEMBER_FAILURE).await;
        let id = start(store.as_ref(), &alice(), &[user("now")]).await;
        assert_eq!(store.list(&alice(), 10).await.unwrap()[0].id, id);
        assert_eq!(opens.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_first_uses_share_one_open_and_all_get_its_failure_at_once() {
        let open_time = Duration::from_secs(5);
        let (store, opens) = failing_then_memory(1, open_time);
        let owner = alice();
        let started = Instant::now();
        let results = futures_util::future::join_all((0..8).map(|_| store.list(&owner, 1))).await;
        assert_eq!(started.elapsed(), open_time, "one open's time, not eight");
        assert!(
            results.iter().all(|r| matches!(r, Err(e) if is_busy(e))),
            "{results:?}"
        );
        assert_eq!(opens.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn calls_arriving_during_an_open_share_it() {
        let (store, opens) = failing_then_memory(0, Duration::ZERO);
        let owner = alice();
        let (a, b, c) = tokio::join!(store.list(&owner, 1), store.list(&owner, 1), store.prune());
        assert!(a.is_ok() && b.is_ok() && c.is_ok());
        assert_eq!(opens.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_whose_callers_all_gave_up_is_finished_by_the_next_call() {
        let (store, opens) = failing_then_memory(0, Duration::from_secs(5));
        let owner = alice();
        let gave_up = tokio::time::timeout(Duration::from_secs(1), store.list(&owner, 1)).await;
        assert!(gave_up.is_err());
        store.list(&owner, 1).await.unwrap();
        assert_eq!(opens.load(Ordering::SeqCst), 1);
    }
}
