//! What every [`TaskStore`] promises, as one check any implementation runs on itself:
//! [`check_task_contract`] on an empty store (SQLite file, memory, Postgres). Times are
//! made-up unix milliseconds; the store takes them from the caller.

use serde_json::json;

use super::{Check, alice, bob, run_checks};
use crate::principal::Principal;
use crate::store::{Beat, TaskEnd, TaskKey, TaskRecord, TaskState, TaskStore};

/// An hour in milliseconds.
const HOUR: i64 = 3_600_000;

/// The checks, in order.
const CHECKS: &[Check<dyn TaskStore>] = &[
    check!(a_task_is_read_back_by_its_owner_only),
    check!(the_first_end_wins_and_keeps_its_outcome),
    check!(a_cancel_request_reaches_the_running_process_through_the_record),
    check!(only_a_stale_heartbeat_lets_another_process_end_a_task),
    check!(an_expired_task_is_gone_and_pruned),
    check!(creating_a_task_deletes_expired_ones),
    check!(cancel_flags_of_many_tasks_come_in_one_read),
    check!(many_heartbeats_go_in_one_write),
];

/// Runs every check of the contract against `store`, which must start empty.
pub(crate) async fn check_task_contract(store: &(dyn TaskStore + 'static)) {
    run_checks("task store", store, CHECKS).await;
}

/// A working task of `owner` made at `now`, kept `ttl` ms, as stored.
async fn working(store: &dyn TaskStore, owner: &Principal, now: i64, ttl: i64) -> TaskRecord {
    let task = TaskRecord::working(now, ttl, "running");
    store.create(owner, &task).await.unwrap();
    task
}

/// Whether ending `owner`'s task as `end` says took effect.
async fn finish(store: &dyn TaskStore, owner: &Principal, end: TaskEnd) -> bool {
    store.finish(owner, &end).await.unwrap()
}

/// How `owner`'s task `id` reads at `now`: its heartbeat, update time and status message.
async fn times(
    store: &dyn TaskStore,
    owner: &Principal,
    id: &str,
    now: i64,
) -> (i64, i64, Option<String>) {
    let task = store.get(owner, id, now).await.unwrap().unwrap();
    (task.heartbeat_at, task.updated_at, task.status_message)
}

fn key(owner: Principal, task: &TaskRecord) -> TaskKey {
    TaskKey {
        owner,
        id: task.id.clone(),
    }
}

/// The cancel flags of many tasks come in one read: working tasks of the named owner
/// only; ended, unknown and other owners' tasks are absent.
async fn cancel_flags_of_many_tasks_come_in_one_read(store: &dyn TaskStore) {
    assert!(store.cancel_flags(&[]).await.unwrap().is_empty());
    let asked = working(store, &alice(), 1_000, HOUR).await;
    let quiet = working(store, &alice(), 1_000, HOUR).await;
    let ended = working(store, &alice(), 1_000, HOUR).await;
    let bobs = working(store, &bob(), 1_000, HOUR).await;
    assert!(
        store
            .request_cancel(&alice(), &asked.id, 2_000)
            .await
            .unwrap()
    );
    let done = TaskEnd::new(&ended.id, TaskState::Cancelled, "cancelled", 2_000);
    assert!(finish(store, &alice(), done).await);

    let flags = store
        .cancel_flags(&[
            key(alice(), &asked),
            key(alice(), &quiet),
            key(alice(), &ended),
            key(alice(), &bobs),
            TaskKey {
                owner: alice(),
                id: "task_00000000000000000000000000000000".to_owned(),
            },
        ])
        .await
        .unwrap();

    let expected = [(asked.id.clone(), true), (quiet.id.clone(), false)];
    assert_eq!(flags, expected.into_iter().collect());
}

/// Many heartbeats go in one write, each with its own status message when it has one,
/// and only to working tasks of the named owner.
async fn many_heartbeats_go_in_one_write(store: &dyn TaskStore) {
    store.beat_many(&[], 2_000).await.unwrap();
    let talking = working(store, &alice(), 1_000, HOUR).await;
    let silent = working(store, &alice(), 1_000, HOUR).await;
    let bobs = working(store, &bob(), 1_000, HOUR).await;
    let beat = |owner, task, message: Option<&str>| Beat {
        task: key(owner, task),
        status_message: message.map(str::to_owned),
    };

    let beats = [
        beat(alice(), &talking, Some("running: 9 tokens so far")),
        beat(alice(), &silent, None),
        beat(alice(), &bobs, Some("hijacked")),
    ];
    store.beat_many(&beats, 3_000).await.unwrap();

    assert_eq!(
        times(store, &alice(), &talking.id, 3_000).await,
        (3_000, 3_000, Some("running: 9 tokens so far".to_owned()))
    );
    assert_eq!(
        times(store, &alice(), &silent.id, 3_000).await,
        (3_000, 1_000, Some("running".to_owned()))
    );
    assert_eq!(
        times(store, &bob(), &bobs.id, 3_000).await,
        (1_000, 1_000, Some("running".to_owned())),
        "another owner's task is untouched"
    );
}

/// A task is read back by its owner only; to anyone else it does not exist.
async fn a_task_is_read_back_by_its_owner_only(store: &dyn TaskStore) {
    let task = working(store, &alice(), 1_000, HOUR).await;

    assert_eq!(
        store.get(&alice(), &task.id, 2_000).await.unwrap(),
        Some(task.clone())
    );
    assert_eq!(store.get(&bob(), &task.id, 2_000).await.unwrap(), None);
    assert!(!store.request_cancel(&bob(), &task.id, 2_000).await.unwrap());
    let hijack = Beat {
        task: key(bob(), &task),
        status_message: Some("hijacked".to_owned()),
    };
    store.beat_many(&[hijack], 2_000).await.unwrap();
    assert_eq!(
        store.get(&alice(), &task.id, 2_000).await.unwrap(),
        Some(task.clone()),
        "untouched by another owner"
    );
    let done = TaskEnd::new(&task.id, TaskState::Cancelled, "x", 2_000);
    assert!(!finish(store, &bob(), done).await);
}

/// The first end of a task wins and keeps its outcome.
async fn the_first_end_wins_and_keeps_its_outcome(store: &dyn TaskStore) {
    let task = working(store, &alice(), 1_000, HOUR).await;
    let result = json!({"content": [{"type": "text", "text": "hi"}], "isError": false});
    let completed = TaskState::Completed { result };

    let first = TaskEnd::new(&task.id, completed.clone(), "completed", 3_000);
    assert!(finish(store, &alice(), first).await);
    let second = TaskEnd::new(&task.id, TaskState::Cancelled, "cancelled", 4_000);
    assert!(!finish(store, &alice(), second).await);

    let read = store.get(&alice(), &task.id, 5_000).await.unwrap().unwrap();
    assert_eq!(read.state, completed);
    assert_eq!(read.status_message.as_deref(), Some("completed"));
    assert_eq!(read.updated_at, 3_000);
}

/// A cancel request reaches the running process through the record, and heartbeats keep it.
async fn a_cancel_request_reaches_the_running_process_through_the_record(store: &dyn TaskStore) {
    let task = working(store, &alice(), 1_000, HOUR).await;
    assert_eq!(
        store.cancel_requested(&alice(), &task.id).await.unwrap(),
        Some(false)
    );

    assert!(
        store
            .request_cancel(&alice(), &task.id, 2_000)
            .await
            .unwrap()
    );

    assert_eq!(
        store.cancel_requested(&alice(), &task.id).await.unwrap(),
        Some(true)
    );
    let beat = Beat {
        task: key(alice(), &task),
        status_message: Some("5 tokens".to_owned()),
    };
    store.beat_many(&[beat], 3_000).await.unwrap();
    assert_eq!(
        store.cancel_requested(&alice(), &task.id).await.unwrap(),
        Some(true),
        "a heartbeat leaves the request"
    );
    let (heartbeat, _, message) = times(store, &alice(), &task.id, 3_000).await;
    assert_eq!((heartbeat, message.as_deref()), (3_000, Some("5 tokens")));
}

/// Only a stale heartbeat lets another process end a task.
async fn only_a_stale_heartbeat_lets_another_process_end_a_task(store: &dyn TaskStore) {
    let task = working(store, &alice(), 1_000, HOUR).await;
    let failed = TaskState::Failed {
        error: json!({"code": -32603, "message": "stopped"}),
    };
    let taken_for_dead = |heartbeat_before| TaskEnd {
        heartbeat_before: Some(heartbeat_before),
        ..TaskEnd::new(&task.id, failed.clone(), "stopped", 2_000)
    };

    assert!(!finish(store, &alice(), taken_for_dead(1_000)).await);
    assert!(finish(store, &alice(), taken_for_dead(1_001)).await);

    let read = store.get(&alice(), &task.id, 2_000).await.unwrap().unwrap();
    assert_eq!(read.state, failed);
}

/// An expired task is gone, and pruning deletes it and only it.
async fn an_expired_task_is_gone_and_pruned(store: &dyn TaskStore) {
    let old = working(store, &alice(), 1_000, 10).await;
    assert!(store.get(&alice(), &old.id, 1_009).await.unwrap().is_some());
    assert_eq!(store.get(&alice(), &old.id, 1_010).await.unwrap(), None);
    assert!(
        !store
            .request_cancel(&alice(), &old.id, 1_010)
            .await
            .unwrap()
    );

    let other = working(store, &bob(), 1_005, HOUR).await;
    assert_eq!(store.prune(1_010).await.unwrap(), 1);
    assert!(store.get(&bob(), &other.id, 1_010).await.unwrap().is_some());
}

/// Creating a task deletes expired ones.
async fn creating_a_task_deletes_expired_ones(store: &dyn TaskStore) {
    working(store, &alice(), 1_000, 10).await;
    working(store, &bob(), 2_000, HOUR).await;
    assert_eq!(
        store.prune(2_000).await.unwrap(),
        0,
        "the expired task went at the create"
    );
}
