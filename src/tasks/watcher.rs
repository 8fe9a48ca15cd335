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

use super::runner::Tasks;
use crate::store::{Beat, TaskKey};

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

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::store::contract::alice;
    use crate::store::{TaskEnd, TaskState};
    use crate::tasks::StatusLine;
    use crate::tasks::testing::{Counting, start_endless, tasks_over};

    /// The store calls of 20 s with `n` endless tasks running, by method.
    async fn calls_with(n: usize) -> [usize; 3] {
        let store = Counting::new(Duration::ZERO, Duration::ZERO).await;
        let tasks = tasks_over(store.clone(), Duration::ZERO);
        for _ in 0..n {
            start_endless(&tasks, &alice(), StatusLine::default()).await;
        }
        store.reset();

        tokio::time::sleep(Duration::from_secs(20)).await;

        ["cancel_flags", "beat_many", "cancel_requested"].map(|m| store.calls(m))
    }

    #[tokio::test(start_paused = true)]
    async fn the_watcher_makes_one_batched_read_per_tick_whatever_the_number_of_tasks() {
        let one = calls_with(1).await;
        let many = calls_with(200).await;

        assert_eq!(
            one, many,
            "store calls (reads, writes, per-task calls) with 1 and 200 tasks"
        );
        let [reads, writes, per_task_reads] = many;
        assert!(
            (39..=41).contains(&reads),
            "{reads} reads in 20 s, one per {LOOK:?}"
        );
        assert_eq!(writes, 1, "one heartbeat write (at 15 s) for all tasks");
        assert_eq!(
            per_task_reads, 0,
            "no per-task reads (the store has no per-task heartbeat)"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn status_lines_and_heartbeats_reach_the_record_in_batches() {
        let store = Counting::new(Duration::ZERO, Duration::ZERO).await;
        let tasks = tasks_over(store.clone(), Duration::ZERO);
        let status = StatusLine::default();
        let (talking, _) = start_endless(&tasks, &alice(), status.clone()).await;
        let (silent, _) = start_endless(&tasks, &alice(), StatusLine::default()).await;

        status.set("running: 12 tokens so far".to_owned());
        tokio::time::sleep(WRITE_EVERY * 2).await;
        let now = tasks.clock.now_ms();
        let read = |id: String| {
            let store = store.inner.clone();
            async move { store.get(&alice(), &id, now).await.unwrap().unwrap() }
        };
        let record = read(talking.id.clone()).await;
        assert_eq!(
            record.status_message.as_deref(),
            Some("running: 12 tokens so far")
        );
        assert_eq!(
            read(silent.id.clone()).await.heartbeat_at,
            silent.created_at
        );

        tokio::time::sleep(HEARTBEAT).await;

        let beaten = read(silent.id.clone()).await.heartbeat_at;
        assert!(
            beaten > silent.created_at,
            "no heartbeat after {HEARTBEAT:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancel_stored_by_another_process_stops_the_call_within_2_seconds_every_time() {
        // A slow store: reads take 300 ms, writes 3 s (kept busy by a status line each
        // second), so a bound that holds here holds by construction, not by luck.
        let store = Counting::new(Duration::from_millis(300), Duration::from_secs(3)).await;
        let tasks = tasks_over(store.clone(), Duration::ZERO);
        for round in 0..12u64 {
            let status = StatusLine::default();
            let (task, closed) = start_endless(&tasks, &alice(), status.clone()).await;
            // Cancels land at every phase of the watcher's ticks.
            tokio::time::sleep(Duration::from_millis(1_000 + 137 * round)).await;
            status.set(format!("running: {round} tokens so far"));

            let asked = tokio::time::Instant::now();
            store.cancel_elsewhere(&tasks, &task.id).await;
            while !closed.load(Ordering::SeqCst) && asked.elapsed() < Duration::from_secs(10) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }

            assert!(
                asked.elapsed() <= Duration::from_secs(2),
                "round {round}: the call stopped {:?} after the cancel",
                asked.elapsed()
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_ended_or_gone_elsewhere_is_stopped_here() {
        let store = Counting::new(Duration::ZERO, Duration::ZERO).await;
        let tasks = tasks_over(store.clone(), Duration::ZERO);
        let (task, closed) = start_endless(&tasks, &alice(), StatusLine::default()).await;

        let failed = TaskState::Failed {
            error: serde_json::json!({"code": -32603, "message": "taken for dead"}),
        };
        let end = TaskEnd::new(&task.id, failed, "taken for dead", tasks.clock.now_ms());
        let other_process = &store.inner;
        other_process.finish(&alice(), &end).await.unwrap();
        tokio::time::sleep(LOOK * 2).await;

        assert!(closed.load(Ordering::SeqCst), "the call goes on");
        assert!(
            tasks.lock_running().is_empty(),
            "the task is still listed as running"
        );
    }
}
