//! Runs calls that may become tasks (each admitted within its owner's quota), waits for
//! each task's call to end and records how, and answers `get` and `cancel` for any task
//! in the store, whichever process runs it. The process's one watcher
//! ([`super::watcher`]) looks at the records of all its running tasks.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use serde::Serialize;
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::clock::WallClock;
use super::quota::{Place, Quota, TooManyTasks};
use crate::principal::Principal;
use crate::setting;
use crate::store::{StoreError, TaskEnd, TaskRecord, TaskState, TaskStore};

/// A working task whose heartbeat is older than this is taken for dead: its process stopped.
const LEASE: Duration = Duration::from_secs(60);
/// How often clients are asked to poll.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// The JSON-RPC code of a task that ended without a result (internal error).
const INTERNAL_ERROR: i64 = -32603;
/// The status message of a task before its call reports progress.
const STARTED: &str = "running: waiting for the model's first tokens";

/// The last progress line of a running call, shared between the call (which writes it)
/// and the process's watcher (which stores it as its task's status message).
#[derive(Clone, Default)]
pub struct StatusLine(Arc<Mutex<Option<String>>>);

impl StatusLine {
    /// Records the newest line.
    pub fn set(&self, line: String) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(line);
    }

    /// The newest line, if any came since the last take.
    pub(super) fn take(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    /// Puts back a line taken but not stored, unless a newer one came meanwhile.
    pub(super) fn put_back(&self, line: String) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(line);
    }
}

/// How a call that may become a task started; `T` is what the call returns.
pub enum Started<T> {
    /// It ended within the wait: its result, to return as usual.
    Finished(T),
    /// It goes on as this task; its outcome goes into the record.
    Task(TaskRecord),
    /// The caller went away (or the server is stopping) before either: it was stopped.
    Stopped,
    /// It failed inside the server (it panicked) while the caller waited: this says so,
    /// for an error result.
    Failed(String),
}

/// What went wrong with a task request, phrased for the client.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// No task of the caller has this id.
    #[error(
        "unknown task: `{id}`. It may have expired (tasks are kept for {ttl} after they start, {}) or belong to someone else; call the tool again to start a new one.",
        setting::TASK_TTL
    )]
    NotFound {
        /// The id asked for.
        id: String,
        /// The configured TTL, readable.
        ttl: String,
    },
    /// The store failed.
    #[error("tasks are unavailable: {0}")]
    Store(#[from] StoreError),
}

/// Starts, supervises and answers for tasks; one per process, shared by every session.
pub struct Tasks {
    pub(super) store: Arc<dyn TaskStore>,
    after: Duration,
    ttl: Duration,
    pub(super) clock: WallClock,
    /// Calls that are or may become tasks, per owner, capped.
    quota: Arc<Quota>,
    /// The tasks this process runs, by id.
    running: Mutex<HashMap<String, Running>>,
    /// False once the server drains: calls are answered in place, no task is created.
    creating: AtomicBool,
    /// Whether this process deletes expired tasks every [`PRUNE_EVERY`] (from its first
    /// task on).
    pruning: AtomicBool,
    /// Whether the watcher runs (from the first task on).
    watching: AtomicBool,
}

/// One task this process runs, as the watcher sees it.
pub(super) struct Running {
    /// Its owner, named with it in the store.
    pub(super) owner: Principal,
    /// Stops its call.
    pub(super) stop: CancellationToken,
    /// Its call's newest progress line.
    pub(super) status: StatusLine,
    /// When its heartbeat was last written.
    pub(super) last_beat: tokio::time::Instant,
}

/// How often a process that made a task deletes the expired ones (theirs and any other
/// replica's), so results do not outlive their TTL by more than this.
pub const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Pending tasks per principal when [`Tasks::with_max_per_principal`] is not called:
/// `VULTR_MCP_MAX_TASKS_PER_PRINCIPAL`'s default.
const DEFAULT_MAX_PER_PRINCIPAL: u32 = 32;

impl Tasks {
    /// Tasks kept in `store`: a call becomes one after running `after` (0: at once), and
    /// is kept `ttl` from its start. Each principal may have
    /// `VULTR_MCP_MAX_TASKS_PER_PRINCIPAL`'s default pending; see
    /// [`Tasks::with_max_per_principal`].
    pub fn new(store: Arc<dyn TaskStore>, after: Duration, ttl: Duration) -> Self {
        Self {
            store,
            after,
            ttl,
            clock: WallClock::new(),
            quota: Quota::new(DEFAULT_MAX_PER_PRINCIPAL),
            running: Mutex::new(HashMap::new()),
            creating: AtomicBool::new(true),
            pruning: AtomicBool::new(false),
            watching: AtomicBool::new(false),
        }
    }

    /// The same, each principal having at most `max` calls in this process that are (or
    /// may become) tasks (`VULTR_MCP_MAX_TASKS_PER_PRINCIPAL`; at least 1).
    #[must_use]
    pub fn with_max_per_principal(mut self, max: u32) -> Self {
        self.quota = Quota::new(max.max(1));
        self
    }

    /// From now on no call becomes a task: one still running after the wait is answered
    /// in place when it ends. For the drain of a stopping server.
    pub fn stop_creating(&self) {
        self.creating.store(false, Ordering::Relaxed);
    }

    /// Admits a call of `owner` that may become a task, or refuses it at once when
    /// `owner` already has the most allowed working (or about to become tasks) here.
    pub fn admit(&self, owner: &Principal) -> Result<Admission, TooManyTasks> {
        let place = self.quota.take(owner)?;
        let stop = CancellationToken::new();
        Ok(Admission {
            owner: owner.clone(),
            place,
            check: CancelCheck {
                store: Arc::clone(&self.store),
                owner: owner.clone(),
                id: Arc::new(OnceLock::new()),
                stop: stop.clone(),
            },
            stop,
        })
    }

    /// From the first task on, deletes expired tasks every [`PRUNE_EVERY`] while `self`
    /// lives.
    fn keep_pruning(self: &Arc<Self>) {
        if self.pruning.swap(true, Ordering::Relaxed) {
            return;
        }
        let tasks: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PRUNE_EVERY).await;
                let Some(tasks) = tasks.upgrade() else { break };
                if let Err(error) = tasks.store.prune(tasks.clock.now_ms()).await {
                    tracing::debug!(%error, "could not delete expired tasks; trying again later");
                }
            }
        });
    }

    /// From the first task on, the process's one watcher runs while `self` lives.
    fn keep_watching(self: &Arc<Self>) {
        if !self.watching.swap(true, Ordering::Relaxed) {
            super::watcher::spawn(Arc::downgrade(self));
        }
    }

    /// How long tasks are kept, in milliseconds.
    fn ttl_ms(&self) -> i64 {
        i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX)
    }

    /// Runs `call`, admitted by `admission`. If it ends within the wait, its result as it
    /// is; else a durable task record (written before this returns) while the call goes on,
    /// its progress (`status`) and outcome (as JSON) going into the record. `caller_gone` stops the call
    /// while the caller still waits; `shutdown` (the server stopping) stops it any time.
    /// After [`Tasks::stop_creating`], or when no record can be written, the caller waits
    /// for the result instead.
    pub async fn start<T>(
        self: &Arc<Self>,
        admission: Admission,
        call: impl Future<Output = T> + Send + 'static,
        status: StatusLine,
        caller_gone: CancellationToken,
        shutdown: CancellationToken,
    ) -> Started<T>
    where
        T: Serialize + Send + 'static,
    {
        let Admission {
            owner,
            place,
            stop,
            check,
        } = admission;
        let mut job = spawn_stoppable(call, stop.clone());
        let waiting = Waiting {
            stop: &stop,
            caller_gone: &caller_gone,
            shutdown: &shutdown,
        };
        if !self.after.is_zero()
            && let Some(ended) = waiting.wait(&mut job, Some(self.after)).await
        {
            return ended;
        }
        if !self.creating.load(Ordering::Relaxed) {
            return waiting
                .wait(&mut job, None)
                .await
                .unwrap_or(Started::Stopped);
        }
        let record = TaskRecord::working(self.clock.now_ms(), self.ttl_ms(), STARTED);
        if let Err(error) = self.store.create(&owner, &record).await {
            // No durable record, so no handle: the caller waits for the result as usual.
            tracing::warn!(%error, "could not record a task; answering the call when it ends");
            return waiting
                .wait(&mut job, None)
                .await
                .unwrap_or(Started::Stopped);
        }
        // Before the id is handed out, so no cancel can come before the call can see it.
        let _ = check.id.set(record.id.clone());
        self.keep_pruning();
        crate::observe::metrics::task_created();
        self.lock_running().insert(
            record.id.clone(),
            Running {
                owner: owner.clone(),
                stop: stop.clone(),
                status,
                last_beat: tokio::time::Instant::now(),
            },
        );
        self.keep_watching();
        let supervisor = Supervisor {
            tasks: Arc::clone(self),
            owner,
            id: record.id.clone(),
            stop,
            shutdown,
            _place: place,
        };
        tokio::spawn(supervisor.run(job));
        Started::Task(record)
    }

    /// `owner`'s task `id`. A working task whose heartbeat is older than [`LEASE`] is
    /// recorded (and reported) failed: the process running it stopped.
    pub async fn get(&self, owner: &Principal, id: &str) -> Result<TaskRecord, TaskError> {
        let now = self.clock.now_ms();
        let record = self
            .store
            .get(owner, id, now)
            .await?
            .ok_or_else(|| self.not_found(id))?;
        let stale_before = now - i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX);
        if record.state != TaskState::Working || record.heartbeat_at >= stale_before {
            return Ok(record);
        }
        let message = format!(
            "failed: the server running this task stopped (no heartbeat for {}s); call the tool again",
            LEASE.as_secs()
        );
        let end = TaskEnd {
            heartbeat_before: Some(stale_before),
            ..failed(id, message, now)
        };
        self.store.finish(owner, &end).await?;
        self.store
            .get(owner, id, now)
            .await?
            .ok_or_else(|| self.not_found(id))
    }

    /// Asks to stop `owner`'s task `id`: at once when this process runs it, else the
    /// process running it notices within [`super::watcher::LOOK`] and a read. A task that
    /// already ended stays so.
    pub async fn cancel(&self, owner: &Principal, id: &str) -> Result<(), TaskError> {
        if !self
            .store
            .request_cancel(owner, id, self.clock.now_ms())
            .await?
        {
            return Err(self.not_found(id));
        }
        if let Some(running) = self.lock_running().get(id) {
            running.stop.cancel();
        }
        Ok(())
    }

    fn not_found(&self, id: &str) -> TaskError {
        TaskError::NotFound {
            id: id.to_owned(),
            ttl: humantime::format_duration(self.ttl).to_string(),
        }
    }

    /// The tasks this process runs.
    pub(super) fn lock_running(&self) -> std::sync::MutexGuard<'_, HashMap<String, Running>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A call admitted to become a task if it runs long: its place in its owner's quota, what
/// stops it, and the check it makes before going upstream. Dropping it gives the place back.
pub struct Admission {
    owner: Principal,
    place: Place,
    stop: CancellationToken,
    check: CancelCheck,
}

impl Admission {
    /// The check the call makes right before it goes upstream (see [`CancelCheck::go_ahead`]).
    pub fn cancel_check(&self) -> CancelCheck {
        self.check.clone()
    }
}

/// Lets an admitted call see, right before it goes upstream (after waiting for a call
/// slot, say), whether its task was cancelled meanwhile through any process.
#[derive(Clone)]
pub struct CancelCheck {
    store: Arc<dyn TaskStore>,
    owner: Principal,
    /// The task's id, once the call became one.
    id: Arc<OnceLock<String>>,
    stop: CancellationToken,
}

impl CancelCheck {
    /// The task's id, once the call became one.
    pub fn task_id(&self) -> Option<String> {
        self.id.get().cloned()
    }

    /// Returns at once while the call is not a task (its caller waits; a cancel ends the
    /// wait). For a task, reads its cancel flag (one store read) and returns when it is
    /// not set; when it is (or the task is gone), stops the call: this never returns and
    /// the call, run by [`Tasks::start`], is dropped before it goes upstream. A store that
    /// cannot be read lets the call go on (the watcher still notices a cancel).
    pub async fn go_ahead(&self) {
        if !self.stop.is_cancelled() {
            let Some(id) = self.id.get() else { return };
            match self.store.cancel_requested(&self.owner, id).await {
                Ok(Some(false)) => return,
                Ok(Some(true) | None) => self.stop.cancel(),
                Err(error) => {
                    tracing::warn!(%error, task = %id, "could not read a task's cancel flag before its call; going on");
                    return;
                }
            }
        }
        std::future::pending::<()>().await;
    }
}

/// Runs `call` on its own tokio task until it ends (`Some`) or `stop` fires (`None`,
/// dropping the call and so its upstream request); it stays in the caller's span (the
/// call's trace span).
fn spawn_stoppable<T: Send + 'static>(
    call: impl Future<Output = T> + Send + 'static,
    stop: CancellationToken,
) -> JoinHandle<Option<T>> {
    let call = tracing::Instrument::in_current_span(call);
    tokio::spawn(async move {
        tokio::select! {
            biased;
            () = stop.cancelled() => None,
            result = call => Some(result),
        }
    })
}

/// A caller waiting for its call, and what ends the wait early.
struct Waiting<'a> {
    /// Stops the call.
    stop: &'a CancellationToken,
    caller_gone: &'a CancellationToken,
    shutdown: &'a CancellationToken,
}

impl Waiting<'_> {
    /// Waits for `job` up to `limit` (`None`: until it ends): how the call ended, or
    /// `None` when the limit came first. A caller gone or a server stopping stops the call.
    async fn wait<T>(
        &self,
        job: &mut JoinHandle<Option<T>>,
        limit: Option<Duration>,
    ) -> Option<Started<T>> {
        let limit = async {
            match limit {
                Some(limit) => tokio::time::sleep(limit).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            outcome = job => Some(finished(outcome)),
            () = limit => None,
            () = self.caller_gone.cancelled() => { self.stop.cancel(); Some(Started::Stopped) }
            () = self.shutdown.cancelled() => { self.stop.cancel(); Some(Started::Stopped) }
        }
    }
}

/// A job that ended while its caller waited.
fn finished<T>(outcome: Result<Option<T>, tokio::task::JoinError>) -> Started<T> {
    match outcome {
        Ok(Some(result)) => Started::Finished(result),
        Ok(None) => Started::Stopped,
        Err(error) => Started::Failed(format!(
            "the call failed inside the server ({error}); try again"
        )),
    }
}

/// Task `id` ended failed at `now`, `message` saying why (also as its JSON-RPC error).
fn failed(id: &str, message: String, now: i64) -> TaskEnd {
    let error = json!({"code": INTERNAL_ERROR, "message": message});
    TaskEnd::new(id, TaskState::Failed { error }, &message, now)
}

/// Waits for one task's call to end (stopping it when the server stops) and records its
/// outcome. It never polls: the watcher looks at the records of all running tasks.
struct Supervisor {
    tasks: Arc<Tasks>,
    owner: Principal,
    id: String,
    stop: CancellationToken,
    shutdown: CancellationToken,
    /// The owner's place in the quota, given back when the task ended.
    _place: Place,
}

impl Supervisor {
    /// Waits for `job`, then records how it ended (its result as JSON).
    async fn run<T: Serialize>(self, mut job: JoinHandle<Option<T>>) {
        let mut stopping = false;
        let outcome = loop {
            tokio::select! {
                outcome = &mut job => break outcome,
                () = self.shutdown.cancelled(), if !stopping => {
                    stopping = true;
                    self.stop.cancel();
                }
            }
        };
        let now = self.tasks.clock.now_ms();
        let end = match outcome.map(|result| result.map(|result| serde_json::to_value(&result))) {
            Ok(Some(Ok(result))) => {
                TaskEnd::new(&self.id, TaskState::Completed { result }, "completed", now)
            }
            Ok(Some(Err(error))) => {
                let message = format!("failed: the result could not be encoded ({error})");
                failed(&self.id, message, now)
            }
            Ok(None) if stopping => {
                let message =
                    "failed: the server running this task stopped; call the tool again".to_owned();
                failed(&self.id, message, now)
            }
            Ok(None) => TaskEnd::new(&self.id, TaskState::Cancelled, "cancelled", now),
            Err(error) => {
                let message = format!("failed inside the server ({error}); try again");
                failed(&self.id, message, now)
            }
        };
        // Counted first, so a client that reads the ended record finds the metrics moved.
        crate::observe::metrics::task_ended(end.state.status());
        if let Err(error) = self.tasks.store.finish(&self.owner, &end).await {
            tracing::warn!(%error, task = %self.id, "could not record how a task ended");
        }
        self.tasks.lock_running().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use tokio::sync::Semaphore;

    use super::*;
    use crate::store::contract::alice;
    use crate::tasks::testing::{Counting, start, start_endless, start_task, tasks_over};

    /// Starts a call of `owner` that waits for a permit of `slots`, then goes "upstream"
    /// (sets `upstream`) and never ends.
    async fn start_queued(
        tasks: &Arc<Tasks>,
        owner: &Principal,
        slots: &Arc<Semaphore>,
        upstream: &Arc<AtomicBool>,
    ) -> TaskRecord {
        let admission = tasks.admit(owner).expect("under the cap");
        let check = admission.cancel_check();
        let (slots, upstream) = (Arc::clone(slots), Arc::clone(upstream));
        let call = async move {
            let _permit = slots.acquire().await;
            check.go_ahead().await;
            upstream.store(true, Ordering::SeqCst);
            std::future::pending::<()>().await;
        };
        start_task(tasks, admission, call, StatusLine::default()).await
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_cancelled_elsewhere_while_it_waited_for_a_slot_never_goes_upstream() {
        let store = Counting::new(Duration::ZERO, Duration::ZERO).await;
        let tasks = tasks_over(store.clone(), Duration::ZERO);
        let slots = Arc::new(Semaphore::new(0));
        let upstream = Arc::new(AtomicBool::new(false));
        let task = start_queued(&tasks, &alice(), &slots, &upstream).await;

        // Another process cancels it, and the slot frees before this one's watcher looks.
        store.cancel_elsewhere(&tasks, &task.id).await;
        slots.add_permits(1);
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }

        assert!(!upstream.load(Ordering::SeqCst), "the call went upstream");
        tokio::time::sleep(Duration::from_secs(1)).await;
        let ended = tasks.get(&alice(), &task.id).await.unwrap();
        assert_eq!(ended.state, TaskState::Cancelled);
        assert!(tasks.lock_running().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_queued_task_not_cancelled_goes_upstream_when_its_slot_frees() {
        let store = Counting::new(Duration::ZERO, Duration::ZERO).await;
        let tasks = tasks_over(store.clone(), Duration::ZERO);
        let slots = Arc::new(Semaphore::new(0));
        let upstream = Arc::new(AtomicBool::new(false));
        start_queued(&tasks, &alice(), &slots, &upstream).await;

        slots.add_permits(1);
        tokio::time::sleep(Duration::from_millis(10)).await;

        assert!(upstream.load(Ordering::SeqCst));
        assert_eq!(
            store.calls("cancel_requested"),
            1,
            "one read before going upstream"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn once_creating_stopped_a_call_past_the_wait_is_answered_in_place() {
        let store = Counting::new(Duration::ZERO, Duration::ZERO).await;
        let tasks = tasks_over(store.clone(), Duration::from_secs(1));
        let slow = || async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            json!({"content": [], "isError": false})
        };
        let admitted = || tasks.admit(&alice()).unwrap();
        let first = start(&tasks, admitted(), slow(), StatusLine::default()).await;
        assert!(matches!(first, Started::Task(_)));

        tasks.stop_creating();

        let second = start(&tasks, admitted(), slow(), StatusLine::default()).await;
        let Started::Finished(result) = second else {
            panic!("a call crossing the wait while draining became a task");
        };
        assert_eq!(result["isError"], false);
        assert_eq!(store.calls("create"), 1, "no record made while draining");
    }

    #[tokio::test(start_paused = true)]
    async fn a_principal_over_its_cap_is_refused_and_its_place_comes_back_when_a_task_ends() {
        let store = Counting::new(Duration::ZERO, Duration::ZERO).await;
        let tasks = Arc::new(
            Tasks::new(store.clone(), Duration::ZERO, Duration::from_secs(3600))
                .with_max_per_principal(2),
        );
        let (first, _) = start_endless(&tasks, &alice(), StatusLine::default()).await;
        start_endless(&tasks, &alice(), StatusLine::default()).await;

        let refused = tasks.admit(&alice()).err().expect("over the cap");
        assert_eq!((refused.working, refused.limit), (2, 2));
        assert!(tasks.admit(&Principal::new("bob").unwrap()).is_ok());

        tasks.cancel(&alice(), &first.id).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;

        assert!(
            tasks.admit(&alice()).is_ok(),
            "the cancelled task's place came back"
        );
    }
}
