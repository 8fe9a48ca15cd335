//! The process's one watcher over the tasks it runs, instead of one poll per task: every
//! [`LOOK`] it reads the cancel flags of all of them in one store call and stops the
//! calls of those cancelled (through any process sharing the store), gone or ended
//! elsewhere; every [`WRITE_EVERY`], in one store call, it writes the new status lines and
//! the heartbeats due ([`HEARTBEAT`]).
//!
//! The two run apart, so a slow write never delays a read: a cancel stored at `t` is read
//! by the first read starting after `t`, at most [`LOOK`] later, and the call stops as
//! soon as that read answers. With reads under 1.5 s, a cancel through any replica closes
//! the upstream request within 2 s.

use std::collections::HashSet;
use std::sync::Weak;
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior};

use super::record::{Beat, TaskKey};
use super::runner::Tasks;

/// How often the cancel flags of the running tasks are read.
pub(super) const LOOK: Duration = Duration::from_millis(500);
/// How often new status lines and due heartbeats are written.
pub(super) const WRITE_EVERY: Duration = Duration::from_secs(1);
/// How often a running task's heartbeat is refreshed when nothing else changes.
pub(super) const HEARTBEAT: Duration = Duration::from_secs(15);

// The bound of the module's doc: a read starts within LOOK of a cancel.
const _: () = assert!(LOOK.as_millis() <= 500);

/// Starts the watcher's two loops over `tasks`; they end once `tasks` is dropped.
pub(super) fn spawn(tasks: Weak<Tasks>) {
    tokio::spawn(looking(tasks.clone()));
    tokio::spawn(writing(tasks));
}

/// Ticks every `period`, the first at once; a step that takes longer skips the ticks it
/// missed.
fn ticks(period: Duration) -> tokio::time::Interval {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    ticks
}

/// Reads the cancel flags every [`LOOK`] while `tasks` lives.
async fn looking(tasks: Weak<Tasks>) {
    let mut ticks = ticks(LOOK);
    let mut failing = false;
    loop {
        ticks.tick().await;
        let Some(tasks) = tasks.upgrade() else { break };
        look(&tasks, &mut failing).await;
    }
}

/// Writes status lines and heartbeats every [`WRITE_EVERY`] while `tasks` lives.
async fn writing(tasks: Weak<Tasks>) {
    let mut ticks = ticks(WRITE_EVERY);
    let mut failing = false;
    loop {
        ticks.tick().await;
        let Some(tasks) = tasks.upgrade() else { break };
        write(&tasks, &mut failing).await;
    }
}

/// Logs a store failure at WARN when the store starts failing, at DEBUG while it goes on.
fn failed(failing: &mut bool, error: &crate::store::StoreError, what: &'static str) {
    if std::mem::replace(failing, true) {
        tracing::debug!(%error, "{what}; trying again");
    } else {
        tracing::warn!(%error, "{what}; trying again every second or less");
    }
}

/// One read of every running task's cancel flag; stops the calls of tasks cancelled,
/// gone, or ended elsewhere.
async fn look(tasks: &Tasks, failing: &mut bool) {
    let keys: Vec<TaskKey> = tasks
        .lock_running()
        .iter()
        .map(|(id, running)| TaskKey {
            owner: running.owner.clone(),
            id: id.clone(),
        })
        .collect();
    if keys.is_empty() {
        return;
    }
    let flags = match tasks.store.cancel_flags(&keys).await {
        Ok(flags) => flags,
        Err(error) => return failed(failing, &error, "could not read the running tasks"),
    };
    *failing = false;
    let running = tasks.lock_running();
    for key in keys {
        if flags.get(&key.id) != Some(&false)
            && let Some(task) = running.get(&key.id)
        {
            task.stop.cancel();
        }
    }
}

/// One write of the new status lines and the heartbeats due.
async fn write(tasks: &Tasks, failing: &mut bool) {
    let now = Instant::now();
    let beats: Vec<Beat> = tasks
        .lock_running()
        .iter()
        .filter_map(|(id, running)| {
            let status_message = running.status.take();
            let due = status_message.is_some() || now - running.last_beat >= HEARTBEAT;
            due.then(|| Beat {
                task: TaskKey {
                    owner: running.owner.clone(),
                    id: id.clone(),
                },
                status_message,
            })
        })
        .collect();
    if beats.is_empty() {
        return;
    }
    let written = tasks.store.beat_many(&beats, tasks.clock.now_ms()).await;
    let mut running = tasks.lock_running();
    if let Err(error) = written {
        for beat in beats {
            if let (Some(task), Some(line)) = (running.get(&beat.task.id), beat.status_message) {
                task.status.put_back(line);
            }
        }
        return failed(
            failing,
            &error,
            "could not record the running tasks' heartbeats",
        );
    }
    *failing = false;
    let beaten: HashSet<&str> = beats.iter().map(|beat| beat.task.id.as_str()).collect();
    for (id, task) in running.iter_mut() {
        if beaten.contains(id.as_str()) {
            task.last_beat = now;
        }
    }
}
