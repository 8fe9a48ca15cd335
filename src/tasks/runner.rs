//! Runs calls that may become tasks, supervises each task while its call runs, and
//! answers `get` and `cancel` for any task in the store, whichever process runs it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::clock::WallClock;
use super::record::{TaskRecord, TaskState, TaskStore};
use crate::config::setting;
use crate::principal::Principal;
use crate::store::StoreError;

/// A working task whose heartbeat is older than this is taken for dead: its process stopped.
const LEASE: Duration = Duration::from_secs(60);
/// How often a running task refreshes its heartbeat when nothing else changes.
const HEARTBEAT: Duration = Duration::from_secs(15);
/// How often a running task looks at its record: for a cancel asked through another
/// process, and to write a new status message.
const LOOK: Duration = Duration::from_secs(1);
/// How often clients are asked to poll.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// The JSON-RPC code of a task that ended without a result (internal error).
const INTERNAL_ERROR: i64 = -32603;
/// The status message of a task before its call reports progress.
const STARTED: &str = "running: waiting for the model's first tokens";

/// The last progress line of a running call, shared between the call (which writes it)
/// and its task's supervisor (which stores it as the status message).
#[derive(Clone, Default)]
pub struct StatusLine(Arc<Mutex<Option<String>>>);

impl StatusLine {
    /// Records the newest line.
    pub fn set(&self, line: String) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(line);
    }

    /// The newest line, if any came since the last take.
    fn take(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// How a call that may become a task started.
pub enum Started {
    /// It ended within the wait: its result, to return as usual.
    Finished(Value),
    /// It goes on as this task; its outcome goes into the record.
    Task(TaskRecord),
    /// The caller went away (or the server is stopping) before either: it was stopped.
    Stopped,
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
    store: Arc<dyn TaskStore>,
    after: Duration,
    ttl: Duration,
    clock: WallClock,
    /// The tasks this process runs, by id: cancelling the token stops the call.
    running: Mutex<HashMap<String, CancellationToken>>,
    /// Whether this process deletes expired tasks every [`PRUNE_EVERY`] (from its first
    /// task on).
    pruning: AtomicBool,
}

/// How often a process that made a task deletes the expired ones (theirs and any other
/// replica's), so results do not outlive their TTL by more than this.
pub const PRUNE_EVERY: Duration = Duration::from_secs(60);

impl Tasks {
    /// Tasks kept in `store`: a call becomes one after running `after` (0: at once), and
    /// is kept `ttl` from its start.
    pub fn new(store: Arc<dyn TaskStore>, after: Duration, ttl: Duration) -> Self {
        Self {
            store,
            after,
            ttl,
            clock: WallClock::new(),
            running: Mutex::new(HashMap::new()),
            pruning: AtomicBool::new(false),
        }
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

    /// How long tasks are kept, in milliseconds.
    fn ttl_ms(&self) -> i64 {
        i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX)
    }

    /// Runs `call` for `owner`. If it ends within the wait, its result; else a durable
    /// task record (written before this returns) while the call goes on, its progress
    /// (`status`) and outcome going into the record. `caller_gone` stops the call while
    /// the caller still waits; `shutdown` (the server stopping) stops it any time.
    pub async fn start<F>(
        self: &Arc<Self>,
        owner: &Principal,
        call: F,
        status: StatusLine,
        caller_gone: CancellationToken,
        shutdown: CancellationToken,
    ) -> Started
    where
        F: Future<Output = Value> + Send + 'static,
    {
        let stop = CancellationToken::new();
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
        let record = TaskRecord::working(self.clock.now_ms(), self.ttl_ms(), STARTED);
        if let Err(error) = self.store.create(owner, &record).await {
            // No durable record, so no handle: the caller waits for the result as usual.
            tracing::warn!(%error, "could not record a task; answering the call when it ends");
            return waiting
                .wait(&mut job, None)
                .await
                .unwrap_or(Started::Stopped);
        }
        self.keep_pruning();
        self.lock_running().insert(record.id.clone(), stop.clone());
        let supervisor = Supervisor {
            tasks: Arc::clone(self),
            owner: owner.clone(),
            id: record.id.clone(),
            status,
            stop,
            shutdown,
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
        let state = TaskState::Failed {
            error: json!({"code": INTERNAL_ERROR, "message": message}),
        };
        self.store
            .finish(owner, id, &state, &message, now, Some(stale_before))
            .await?;
        self.store
            .get(owner, id, now)
            .await?
            .ok_or_else(|| self.not_found(id))
    }

    /// Asks to stop `owner`'s task `id`: at once when this process runs it, else the
    /// process running it notices within [`LOOK`]. A task that already ended stays so.
    pub async fn cancel(&self, owner: &Principal, id: &str) -> Result<(), TaskError> {
        if !self
            .store
            .request_cancel(owner, id, self.clock.now_ms())
            .await?
        {
            return Err(self.not_found(id));
        }
        if let Some(stop) = self.lock_running().get(id) {
            stop.cancel();
        }
        Ok(())
    }

    fn not_found(&self, id: &str) -> TaskError {
        TaskError::NotFound {
            id: id.to_owned(),
            ttl: humantime::format_duration(self.ttl).to_string(),
        }
    }

    fn lock_running(&self) -> std::sync::MutexGuard<'_, HashMap<String, CancellationToken>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Runs `call` on its own tokio task until it ends (`Some`) or `stop` fires (`None`,
/// dropping the call and so its upstream request).
fn spawn_stoppable<F>(call: F, stop: CancellationToken) -> JoinHandle<Option<Value>>
where
    F: Future<Output = Value> + Send + 'static,
{
    tokio::spawn(async move {
        tokio::select! {
            result = call => Some(result),
            () = stop.cancelled() => None,
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
    async fn wait(
        &self,
        job: &mut JoinHandle<Option<Value>>,
        limit: Option<Duration>,
    ) -> Option<Started> {
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
fn finished(outcome: Result<Option<Value>, tokio::task::JoinError>) -> Started {
    match outcome {
        Ok(Some(result)) => Started::Finished(result),
        Ok(None) => Started::Stopped,
        Err(error) => Started::Finished(json!({
            "content": [{"type": "text", "text": format!("the call failed inside the server ({error}); try again")}],
            "isError": true,
        })),
    }
}

/// Watches one running task: its progress into the record, the heartbeat, a cancel asked
/// anywhere, and finally its outcome.
struct Supervisor {
    tasks: Arc<Tasks>,
    owner: Principal,
    id: String,
    status: StatusLine,
    stop: CancellationToken,
    shutdown: CancellationToken,
}

impl Supervisor {
    async fn run(self, mut job: JoinHandle<Option<Value>>) {
        let store = &self.tasks.store;
        let clock = self.tasks.clock;
        let mut last_beat = tokio::time::Instant::now();
        let mut stopping = false;
        let outcome = loop {
            tokio::select! {
                outcome = &mut job => break outcome,
                () = self.shutdown.cancelled(), if !stopping => {
                    stopping = true;
                    self.stop.cancel();
                }
                () = tokio::time::sleep(LOOK) => {
                    let line = self.status.take();
                    let due = line.is_some() || last_beat.elapsed() >= HEARTBEAT;
                    let looked = if due {
                        last_beat = tokio::time::Instant::now();
                        store.beat(&self.owner, &self.id, clock.now_ms(), line.as_deref()).await
                    } else {
                        store.cancel_requested(&self.owner, &self.id).await
                    };
                    match looked {
                        // Cancel asked, or the record is gone or ended elsewhere: stop.
                        Ok(Some(true) | None) => self.stop.cancel(),
                        Ok(Some(false)) => {}
                        Err(error) => tracing::warn!(%error, task = %self.id, "could not look at a running task's record"),
                    }
                }
            }
        };
        let (state, message) = match outcome {
            Ok(Some(result)) => (TaskState::Completed { result }, "completed".to_owned()),
            Ok(None) if stopping => {
                let message =
                    "failed: the server running this task stopped; call the tool again".to_owned();
                let error = json!({"code": INTERNAL_ERROR, "message": message});
                (TaskState::Failed { error }, message)
            }
            Ok(None) => (TaskState::Cancelled, "cancelled".to_owned()),
            Err(error) => {
                let message = format!("failed inside the server ({error}); try again");
                let error = json!({"code": INTERNAL_ERROR, "message": message});
                (TaskState::Failed { error }, message)
            }
        };
        if let Err(error) = store
            .finish(
                &self.owner,
                &self.id,
                &state,
                &message,
                clock.now_ms(),
                None,
            )
            .await
        {
            tracing::warn!(%error, task = %self.id, "could not record how a task ended");
        }
        self.tasks.lock_running().remove(&self.id);
    }
}
