//! What every [`TaskStore`] promises, as one check any implementation runs on itself:
//! [`check_task_contract`] on an empty store (SQLite file, memory, Postgres). Times are
//! made-up unix milliseconds; the store takes them from the caller.

use serde_json::json;

use super::{Beat, TaskKey, TaskRecord, TaskState, TaskStore};
use crate::principal::Principal;

/// An hour in milliseconds.
const HOUR: i64 = 3_600_000;

fn alice() -> Principal {
    Principal::new("alice").unwrap()
}

fn bob() -> Principal {
    Principal::new("bob").unwrap()
}

/// Runs every check of the contract against `store`, which must start empty.
pub(crate) async fn check_task_contract(store: &dyn TaskStore) {
    a_task_is_read_back_by_its_owner_only(store).await;
    the_first_end_wins_and_keeps_its_outcome(store).await;
    a_cancel_request_reaches_the_running_process_through_the_record(store).await;
    only_a_stale_heartbeat_lets_another_process_end_a_task(store).await;
    an_expired_task_is_gone_and_pruned(store).await;
    creating_a_task_deletes_expired_ones(store).await;
    cancel_flags_of_many_tasks_come_in_one_read(store).await;
    many_heartbeats_go_in_one_write(store).await;
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
    let asked = TaskRecord::working(1_000, HOUR, "running");
    let quiet = TaskRecord::working(1_000, HOUR, "running");
    let ended = TaskRecord::working(1_000, HOUR, "running");
    let bobs = TaskRecord::working(1_000, HOUR, "running");
    for task in [&asked, &quiet, &ended] {
        store.create(&alice(), task).await.unwrap();
    }
    store.create(&bob(), &bobs).await.unwrap();
    assert!(
        store
            .request_cancel(&alice(), &asked.id, 2_000)
            .await
            .unwrap()
    );
    let done = TaskState::Cancelled;
    assert!(
        store
            .finish(&alice(), &ended.id, &done, "cancelled", 2_000, None)
            .await
            .unwrap()
    );

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
    let talking = TaskRecord::working(1_000, HOUR, "running");
    let silent = TaskRecord::working(1_000, HOUR, "running");
    let bobs = TaskRecord::working(1_000, HOUR, "running");
    store.create(&alice(), &talking).await.unwrap();
    store.create(&alice(), &silent).await.unwrap();
    store.create(&bob(), &bobs).await.unwrap();

    store
        .beat_many(
            &[
                Beat {
                    task: key(alice(), &talking),
                    status_message: Some("running: 9 tokens so far".to_owned()),
                },
                Beat {
                    task: key(alice(), &silent),
                    status_message: None,
                },
                Beat {
                    task: key(alice(), &bobs),
                    status_message: Some("hijacked".to_owned()),
                },
            ],
            3_000,
        )
        .await
        .unwrap();

    let read = |owner: Principal, id: String| async move {
        let task = store.get(&owner, &id, 3_000).await.unwrap().unwrap();
        (task.heartbeat_at, task.updated_at, task.status_message)
    };
    assert_eq!(
        read(alice(), talking.id.clone()).await,
        (3_000, 3_000, Some("running: 9 tokens so far".to_owned()))
    );
    assert_eq!(
        read(alice(), silent.id.clone()).await,
        (3_000, 1_000, Some("running".to_owned()))
    );
    assert_eq!(
        read(bob(), bobs.id.clone()).await,
        (1_000, 1_000, Some("running".to_owned())),
        "another owner's task is untouched"
    );
}

/// A task is read back by its owner only; to anyone else it does not exist.
async fn a_task_is_read_back_by_its_owner_only(store: &dyn TaskStore) {
    let task = TaskRecord::working(1_000, HOUR, "running");
    store.create(&alice(), &task).await.unwrap();

    assert_eq!(
        store.get(&alice(), &task.id, 2_000).await.unwrap(),
        Some(task.clone())
    );
    assert_eq!(store.get(&bob(), &task.id, 2_000).await.unwrap(), None);
    assert!(!store.request_cancel(&bob(), &task.id, 2_000).await.unwrap());
    assert_eq!(
        store.beat(&bob(), &task.id, 2_000, None).await.unwrap(),
        None
    );
    let done = TaskState::Cancelled;
    assert!(
        !store
            .finish(&bob(), &task.id, &done, "x", 2_000, None)
            .await
            .unwrap()
    );
}

/// The first end of a task wins and keeps its outcome.
async fn the_first_end_wins_and_keeps_its_outcome(store: &dyn TaskStore) {
    let task = TaskRecord::working(1_000, HOUR, "running");
    store.create(&alice(), &task).await.unwrap();
    let result = json!({"content": [{"type": "text", "text": "hi"}], "isError": false});
    let completed = TaskState::Completed { result };

    assert!(
        store
            .finish(&alice(), &task.id, &completed, "completed", 3_000, None)
            .await
            .unwrap()
    );
    assert!(
        !store
            .finish(
                &alice(),
                &task.id,
                &TaskState::Cancelled,
                "cancelled",
                4_000,
                None
            )
            .await
            .unwrap()
    );

    let read = store.get(&alice(), &task.id, 5_000).await.unwrap().unwrap();
    assert_eq!(read.state, completed);
    assert_eq!(read.status_message.as_deref(), Some("completed"));
    assert_eq!(read.updated_at, 3_000);
}

/// A cancel request reaches the running process through the record (and its heartbeat).
async fn a_cancel_request_reaches_the_running_process_through_the_record(store: &dyn TaskStore) {
    let task = TaskRecord::working(1_000, HOUR, "running");
    store.create(&alice(), &task).await.unwrap();
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
    assert_eq!(
        store
            .beat(&alice(), &task.id, 3_000, Some("5 tokens"))
            .await
            .unwrap(),
        Some(true)
    );
    let read = store.get(&alice(), &task.id, 3_000).await.unwrap().unwrap();
    assert_eq!(
        (read.heartbeat_at, read.status_message.as_deref()),
        (3_000, Some("5 tokens"))
    );
}

/// Only a stale heartbeat lets another process end a task.
async fn only_a_stale_heartbeat_lets_another_process_end_a_task(store: &dyn TaskStore) {
    let task = TaskRecord::working(1_000, HOUR, "running");
    store.create(&alice(), &task).await.unwrap();
    let failed = TaskState::Failed {
        error: json!({"code": -32603, "message": "stopped"}),
    };

    assert!(
        !store
            .finish(&alice(), &task.id, &failed, "stopped", 2_000, Some(1_000))
            .await
            .unwrap()
    );
    assert!(
        store
            .finish(&alice(), &task.id, &failed, "stopped", 2_000, Some(1_001))
            .await
            .unwrap()
    );

    assert_eq!(
        store
            .get(&alice(), &task.id, 2_000)
            .await
            .unwrap()
            .unwrap()
            .state,
        failed
    );
}

/// An expired task is gone, and pruning deletes it and only it.
async fn an_expired_task_is_gone_and_pruned(store: &dyn TaskStore) {
    let old = TaskRecord::working(1_000, 10, "running");
    store.create(&alice(), &old).await.unwrap();
    assert!(store.get(&alice(), &old.id, 1_009).await.unwrap().is_some());
    assert_eq!(store.get(&alice(), &old.id, 1_010).await.unwrap(), None);
    assert!(
        !store
            .request_cancel(&alice(), &old.id, 1_010)
            .await
            .unwrap()
    );

    let other = TaskRecord::working(1_005, HOUR, "running");
    store.create(&bob(), &other).await.unwrap();
    assert_eq!(store.prune(1_010).await.unwrap(), 1);
    assert!(store.get(&bob(), &other.id, 1_010).await.unwrap().is_some());
}

/// Creating a task deletes expired ones.
async fn creating_a_task_deletes_expired_ones(store: &dyn TaskStore) {
    let old = TaskRecord::working(1_000, 10, "running");
    store.create(&alice(), &old).await.unwrap();
    store
        .create(&bob(), &TaskRecord::working(2_000, HOUR, "running"))
        .await
        .unwrap();
    assert_eq!(
        store.prune(2_000).await.unwrap(),
        0,
        "the expired task went at the create"
    );
}
