//! The SQLite store's own tests (the contract, for a file and for memory, is checked here
//! too): ordering, retention, files shared by processes, migrations and refusals.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use rusqlite::Connection;
use serde_json::{Value, json};
use tempfile::TempDir;

use super::conversations::{COUNT_TURN, INSERT_CONVERSATION, LIST_OWNED};
use super::retention::{DROP_OLDEST, DROP_PAST_NEWEST};
use super::schema::{self, SCHEMA_VERSION};
use super::{SqliteStore, system_now};
use crate::principal::Principal;
use crate::store::contract::{
    self, add, alice, as_json, bob, listed, listed_for, msg, start, user,
};
use crate::store::location::LOCATION_SETTING;
use crate::store::{ConversationId, ConversationStore, Retention, StoreError, StoreLocation, Turn};

const DAY: i64 = 24 * 60 * 60;

fn generous() -> Retention {
    Retention {
        max_conversations: 1000,
        max_age: Duration::from_secs(365 * DAY as u64),
    }
}

async fn memory_store() -> SqliteStore {
    SqliteStore::open(&StoreLocation::InMemory, generous())
        .await
        .unwrap()
}

/// A memory store whose clock the test moves by storing into the returned cell.
async fn store_with_clock(retention: Retention) -> (SqliteStore, Arc<AtomicI64>) {
    let mut store = SqliteStore::open(&StoreLocation::InMemory, retention)
        .await
        .unwrap();
    let clock = Arc::new(AtomicI64::new(1_700_000_000));
    let shared = Arc::clone(&clock);
    store.set_clock(move || shared.load(Ordering::SeqCst));
    (store, clock)
}

/// A scratch directory, removed on drop.
fn scratch() -> TempDir {
    tempfile::Builder::new()
        .prefix("vultr-mcp-conv-")
        .tempdir()
        .unwrap()
}

/// A file store location in `dir`.
fn file_in(dir: &TempDir) -> StoreLocation {
    StoreLocation::File(dir.path().join("conversations.sqlite3"))
}

/// A pragma's value on the store's connection.
fn pragma<T: rusqlite::types::FromSql>(store: &SqliteStore, name: &str) -> T {
    store
        .db
        .lock()
        .pragma_query_value(None, name, |row| row.get(0))
        .unwrap()
}

#[tokio::test]
async fn a_memory_store_keeps_the_contract() {
    let store = SqliteStore::open(&StoreLocation::InMemory, contract::RETENTION)
        .await
        .unwrap();
    contract::check_contract(&store).await;
}

#[tokio::test]
async fn a_file_store_keeps_the_contract() {
    let dir = scratch();
    let store = SqliteStore::open(&file_in(&dir), contract::RETENTION)
        .await
        .unwrap();
    contract::check_contract(&store).await;
}

#[test]
fn the_store_and_its_errors_can_be_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<SqliteStore>();
    assert_send_sync::<StoreError>();
}

#[tokio::test]
async fn work_that_dies_on_its_blocking_thread_is_a_store_error_naming_the_file() {
    let dir = scratch();
    let location = file_in(&dir);
    let store = SqliteStore::open(&location, generous()).await.unwrap();
    let err = store
        .run(|_| -> Result<(), StoreError> { panic!("worker died") })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Interrupted { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("the conversation store `{location}` stopped")),
        "{text}"
    );
    assert!(!text.contains("invalid arguments"), "{text}");
    // The store still works afterwards.
    assert!(store.list(&alice(), 1).await.unwrap().is_empty());
}

#[tokio::test]
async fn appending_updates_the_time_but_not_the_creation_time() {
    let (store, clock) = store_with_clock(generous()).await;
    let id = start(&store, &alice(), &[user("hi")]).await;
    clock.fetch_add(60, Ordering::SeqCst);
    add(&store, &alice(), &id, &[user("again")]).await;
    let summary = store.get(&alice(), &id).await.unwrap().summary;
    assert_eq!(summary.created_at, 1_700_000_000);
    assert_eq!(summary.updated_at, 1_700_000_060);
}

#[tokio::test]
async fn the_list_shows_the_most_recently_updated_first_then_the_most_recently_created() {
    let (store, clock) = store_with_clock(generous()).await;
    let older = start(&store, &alice(), &[user("older")]).await;
    clock.fetch_add(10, Ordering::SeqCst);
    let newer = start(&store, &alice(), &[user("newer")]).await;
    clock.fetch_add(10, Ordering::SeqCst);
    let newest = start(&store, &alice(), &[user("newest")]).await;
    clock.fetch_add(10, Ordering::SeqCst);
    add(&store, &alice(), &older, &[user("bump")]).await;
    let ids = |limit| {
        let store = &store;
        async move {
            let summaries = store.list(&alice(), limit).await.unwrap();
            summaries.into_iter().map(|s| s.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(
        ids(10).await,
        [older.clone(), newest.clone(), newer.clone()]
    );
    assert_eq!(ids(2).await, [older.clone(), newest.clone()]);
    assert!(ids(0).await.is_empty());

    // Same update time: the one created later comes first.
    add(&store, &alice(), &newer, &[user("bump")]).await;
    assert_eq!(ids(2).await, [newer, older]);
}

#[tokio::test]
async fn conversations_created_in_the_same_second_list_newest_first() {
    let (store, _clock) = store_with_clock(generous()).await;
    let a = start(&store, &alice(), &[user("a")]).await;
    let b = start(&store, &alice(), &[user("b")]).await;
    assert_eq!(listed(&store).await, [b, a]);
}

#[tokio::test]
async fn deleting_leaves_no_orphaned_messages() {
    let store = memory_store().await;
    let gone = start(&store, &alice(), &[user("a"), user("b")]).await;
    assert!(store.delete(&alice(), &gone).await.unwrap());
    let orphans: i64 = store
        .db
        .lock()
        .query_row(
            "SELECT COUNT(*) FROM messages WHERE conversation_id = ?1",
            [gone.as_ref()],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(orphans, 0);
}

/// Checks the memory store's own count of each owner's conversations against the
/// database; returns alice's and bob's.
fn counts_match(store: &SqliteStore) -> (i64, i64) {
    let [alices, bobs] = [alice(), bob()].map(|owner| {
        let real: i64 = store
            .db
            .lock()
            .query_row(
                "SELECT COUNT(*) FROM conversations WHERE owner = ?1",
                [owner.as_str()],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(store.db.count(&owner), Some(real), "{owner}");
        real
    });
    (alices, bobs)
}

#[tokio::test]
async fn the_memory_stores_own_counts_follow_each_owner_through_creating_deleting_and_pruning() {
    let (store, clock) = store_with_clock(Retention {
        max_conversations: 3,
        max_age: Duration::from_secs(DAY as u64),
    })
    .await;
    for i in 0..2 {
        start(&store, &bob(), &[user(&i.to_string())]).await;
    }
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(start(&store, &alice(), &[user(&i.to_string())]).await);
        let (alices, bobs) = counts_match(&store);
        assert!(alices <= 3);
        assert_eq!(bobs, 2, "alice's retention leaves bob's alone");
    }
    // The newest three are the ones kept.
    assert_eq!(
        listed(&store).await,
        [ids[5].clone(), ids[4].clone(), ids[3].clone()]
    );
    assert!(store.delete(&alice(), &ids[5]).await.unwrap());
    assert!(
        !store.delete(&alice(), &ids[0]).await.unwrap(),
        "already pruned"
    );
    assert!(!store.delete(&bob(), &ids[4]).await.unwrap(), "not bob's");
    assert_eq!(counts_match(&store), (2, 2));
    // Age applies to everyone's: alice's new conversation drops bob's old ones too.
    clock.fetch_add(2 * DAY, Ordering::SeqCst);
    start(&store, &alice(), &[user("new")]).await;
    assert_eq!(counts_match(&store), (1, 0));
    clock.fetch_add(2 * DAY, Ordering::SeqCst);
    assert_eq!(store.prune().await.unwrap(), 1, "it is too old now");
    assert_eq!(counts_match(&store), (0, 0));
}

#[tokio::test]
async fn retention_keeps_only_the_newest_max_conversations() {
    let (store, clock) = store_with_clock(Retention {
        max_conversations: 2,
        max_age: Duration::from_secs(30 * DAY as u64),
    })
    .await;
    let first = start(&store, &alice(), &[user("1")]).await;
    clock.fetch_add(1, Ordering::SeqCst);
    let second = start(&store, &alice(), &[user("2")]).await;
    clock.fetch_add(1, Ordering::SeqCst);
    add(&store, &alice(), &first, &[user("1 again")]).await;
    clock.fetch_add(1, Ordering::SeqCst);
    // Creating a third drops the least recently updated one: `second`.
    let third = start(&store, &alice(), &[user("3")]).await;
    assert_eq!(listed(&store).await, [third, first]);
    assert!(matches!(
        store.get(&alice(), &second).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(store.prune().await.unwrap(), 0, "already within the limit");
}

#[tokio::test]
async fn retention_drops_conversations_not_updated_within_max_age() {
    let (store, clock) = store_with_clock(Retention {
        max_conversations: 100,
        max_age: Duration::from_secs(7 * DAY as u64),
    })
    .await;
    let stale = start(&store, &alice(), &[user("stale")]).await;
    let active = start(&store, &alice(), &[user("active")]).await;
    clock.fetch_add(5 * DAY, Ordering::SeqCst);
    add(&store, &alice(), &active, &[user("still here")]).await;

    clock.fetch_add(2 * DAY, Ordering::SeqCst);
    assert_eq!(
        store.prune().await.unwrap(),
        0,
        "exactly max_age old is kept"
    );

    clock.fetch_add(1, Ordering::SeqCst);
    assert_eq!(store.prune().await.unwrap(), 1);
    assert!(matches!(
        store.get(&alice(), &stale).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        store.get(&alice(), &active).await.unwrap().messages.len(),
        2
    );

    // Creating also prunes.
    clock.fetch_add(30 * DAY, Ordering::SeqCst);
    let fresh = start(&store, &alice(), &[user("fresh")]).await;
    assert_eq!(listed(&store).await, [fresh]);
}

#[tokio::test]
async fn a_new_conversation_survives_its_own_pruning_even_with_no_room() {
    let (store, _clock) = store_with_clock(Retention {
        max_conversations: 0,
        max_age: Duration::ZERO,
    })
    .await;
    let old = start(&store, &alice(), &[user("old")]).await;
    let new = start(&store, &alice(), &[user("new")]).await;
    assert_eq!(listed(&store).await, [new]);
    assert!(matches!(
        store.get(&alice(), &old).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(store.prune().await.unwrap(), 1);
}

#[tokio::test]
async fn a_file_store_keeps_conversations_across_reopening() {
    let dir = scratch();
    let location = StoreLocation::File(dir.path().join("nested").join("conversations.sqlite3"));
    let messages = vec![
        user("remember me"),
        msg(json!({"role": "assistant", "content": "I will."})),
    ];
    let id = {
        let store = SqliteStore::open(&location, generous()).await.unwrap();
        store
            .create(&alice(), &Turn::new("model-x", &messages))
            .await
            .unwrap()
    };
    let store = SqliteStore::open(&location, generous()).await.unwrap();
    let conversation = store.get(&alice(), &id).await.unwrap();
    assert_eq!(as_json(&conversation.messages), as_json(&messages));
    assert_eq!(conversation.summary.title, "remember me");
    assert_eq!(conversation.summary.model, "model-x");
    assert_eq!(pragma::<i64>(&store, "user_version"), SCHEMA_VERSION);
    assert_eq!(
        pragma::<String>(&store, "journal_mode").to_ascii_lowercase(),
        "wal"
    );
}

#[tokio::test]
async fn two_stores_on_one_file_see_each_others_writes() {
    let dir = scratch();
    let location = file_in(&dir);
    let a = SqliteStore::open(&location, generous()).await.unwrap();
    let b = SqliteStore::open(&location, generous()).await.unwrap();

    let id = start(&a, &alice(), &[user("from a")]).await;
    add(&b, &alice(), &id, &[user("from b")]).await;
    let conversation = a.get(&alice(), &id).await.unwrap();
    let texts: Vec<Value> = conversation
        .messages
        .iter()
        .map(|m| serde_json::to_value(m).unwrap()["content"].clone())
        .collect();
    assert_eq!(texts, [json!("from a"), json!("from b")]);
    assert_eq!(conversation.summary.turns, 2);

    assert!(b.delete(&alice(), &id).await.unwrap());
    assert!(matches!(
        a.get(&alice(), &id).await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_from_many_tasks_do_not_lose_messages() {
    let dir = scratch();
    let location = file_in(&dir);
    let store = Arc::new(SqliteStore::open(&location, generous()).await.unwrap());
    let id = start(&*store, &alice(), &[]).await;
    let mut writers = tokio::task::JoinSet::new();
    for t in 0..4 {
        let other = SqliteStore::open(&location, generous()).await.unwrap();
        let (store, id) = (Arc::clone(&store), id.clone());
        writers.spawn(async move {
            for i in 0..10 {
                let which = if i % 2 == 0 { &*store } else { &other };
                add(which, &alice(), &id, &[user(&format!("{t}-{i}"))]).await;
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.unwrap();
    }
    let conversation = store.get(&alice(), &id).await.unwrap();
    assert_eq!(conversation.messages.len(), 40);
    assert_eq!(conversation.summary.turns, 41);
}

#[tokio::test]
async fn a_file_from_a_newer_build_is_refused_with_advice() {
    let dir = scratch();
    let location = file_in(&dir);
    let StoreLocation::File(path) = &location else {
        unreachable!()
    };
    Connection::open(path)
        .unwrap()
        .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    let err = SqliteStore::open(&location, generous()).await.unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found, .. } if found == SCHEMA_VERSION + 1),
        "{err:?}"
    );
    assert!(err.to_string().contains(LOCATION_SETTING), "{err}");
}

#[tokio::test]
async fn a_version_1_file_is_migrated_keeping_its_conversations() {
    let dir = scratch();
    let location = file_in(&dir);
    let StoreLocation::File(path) = &location else {
        unreachable!()
    };
    {
        let conn = Connection::open(path).unwrap();
        schema::create_v1(&conn).unwrap();
        conn.execute_batch(
            r#"INSERT INTO conversations VALUES ('conv_old', 'Old one', 'm', 1, 10, 10, 1);
               INSERT INTO messages VALUES ('conv_old', 0, '{"role":"user","content":"hi"}');
               INSERT INTO messages VALUES ('conv_old', 1, '{"role":"assistant","content":"hello"}');"#,
        )
        .unwrap();
    }
    let store = SqliteStore::open(&location, generous()).await.unwrap();
    let local = Principal::local();
    let old = ConversationId::parse("conv_old").unwrap();
    let conversation = store.get(&local, &old).await.unwrap();
    assert_eq!(conversation.summary.title, "Old one");
    assert_eq!(
        as_json(&conversation.messages),
        json!([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}])
    );
    assert_eq!(pragma::<i64>(&store, "user_version"), SCHEMA_VERSION);
    // The new column works on the old file.
    store
        .append(
            &local,
            &old,
            &Turn {
                model: "m",
                answered_by: "m",
                messages: &[user("more"), user("cut")],
                cut_off: Some("stalled"),
            },
        )
        .await
        .unwrap();
    let last = store
        .get(&local, &old)
        .await
        .unwrap()
        .messages
        .pop()
        .unwrap();
    assert_eq!(
        serde_json::to_value(last).unwrap()["content"],
        "cut\n\n[cut off: stalled; this answer is incomplete]"
    );
}

/// The names of the store's indexes, sorted.
fn indexes(store: &SqliteStore) -> Vec<String> {
    let conn = store.db.lock();
    let mut stmt = conn
        .prepare(
            "SELECT name FROM sqlite_schema
             WHERE type = 'index' AND name NOT LIKE 'sqlite!_%' ESCAPE '!' ORDER BY name",
        )
        .unwrap();
    stmt.query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test]
async fn a_version_2_file_is_migrated_its_conversations_kept_as_locals() {
    let dir = scratch();
    let location = file_in(&dir);
    let StoreLocation::File(path) = &location else {
        unreachable!()
    };
    {
        let conn = Connection::open(path).unwrap();
        schema::create_v2(&conn).unwrap();
        // Used an hour ago, so that retention keeps them.
        let then = system_now() - 3600;
        conn.execute(
            "INSERT INTO conversations VALUES
                ('conv_older', 'Older', 'm', 1, ?1, ?1, 1),
                ('conv_newer', 'Newer', 'm', 2, ?1, ?1, 3)",
            [then],
        )
        .unwrap();
        conn.execute_batch(
            r#"
               INSERT INTO messages VALUES ('conv_older', 0, '{"role":"user","content":"hi"}', NULL);
               INSERT INTO messages VALUES ('conv_older', 1, '{"role":"assistant","content":"hel"}', 'stalled');
               INSERT INTO messages VALUES ('conv_newer', 0, '{"role":"user","content":"yo"}', NULL);"#,
        )
        .unwrap();
    }
    let store = SqliteStore::open(&location, generous()).await.unwrap();
    assert_eq!(pragma::<i64>(&store, "user_version"), SCHEMA_VERSION);
    assert_eq!(
        indexes(&store),
        [
            "collections_by_owner",
            "conversations_by_owner",
            "conversations_by_update",
            "media_by_expiry",
            "media_by_owner",
            "spend_by_day",
            "spend_reservations_by_owner",
            "tasks_by_expiry"
        ]
    );
    let local = Principal::local();
    let (older, newer) = (
        ConversationId::parse("conv_older").unwrap(),
        ConversationId::parse("conv_newer").unwrap(),
    );
    // Every row is kept, as local's, in the same order, with its messages.
    let summaries = store.list(&local, 10).await.unwrap();
    let ids: Vec<_> = summaries.iter().map(|s| s.id.clone()).collect();
    assert_eq!(ids, [newer.clone(), older.clone()]);
    assert_eq!(summaries[0].turns, 2);
    let conversation = store.get(&local, &older).await.unwrap();
    assert_eq!(
        as_json(&conversation.messages),
        json!([
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hel\n\n[cut off: stalled; this answer is incomplete]"}
        ])
    );
    // They are no one else's.
    assert!(matches!(
        store.get(&alice(), &older).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(store.list(&alice(), 10).await.unwrap().is_empty());
    // Local continues where the old file left off; alice starts her own.
    add(&store, &local, &older, &[user("again")]).await;
    let hers = start(&store, &alice(), &[user("mine")]).await;
    assert_eq!(listed_for(&store, &local).await, [older, newer]);
    assert_eq!(listed_for(&store, &alice()).await, [hers]);
}

#[tokio::test]
async fn an_owners_frequent_statements_read_only_their_part_of_the_owner_index() {
    let store = memory_store().await;
    let conn = store.db.lock();
    for sql in [
        INSERT_CONVERSATION,
        COUNT_TURN,
        LIST_OWNED,
        DROP_OLDEST,
        DROP_PAST_NEWEST,
    ] {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let mut rows = stmt.raw_query();
        let mut plan = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            plan.push(row.get::<_, String>(3).unwrap());
        }
        let plan = plan.join("; ");
        assert!(
            plan.contains("conversations_by_owner (owner=?"),
            "{sql}\n{plan}"
        );
        assert!(
            !plan.contains("SCAN") && !plan.contains("TEMP B-TREE"),
            "{sql}\n{plan}"
        );
    }
}

#[tokio::test]
async fn pruning_keeps_each_owners_newest_conversations() {
    let dir = scratch();
    let location = file_in(&dir);
    let (hers, his) = {
        let store = SqliteStore::open(&location, generous()).await.unwrap();
        let mut hers = Vec::new();
        for i in 0..3 {
            hers.push(start(&store, &alice(), &[user(&i.to_string())]).await);
        }
        let his = start(&store, &bob(), &[user("b")]).await;
        (hers, his)
    };
    let store = SqliteStore::open(
        &location,
        Retention {
            max_conversations: 2,
            ..generous()
        },
    )
    .await
    .unwrap();
    assert_eq!(store.prune().await.unwrap(), 1);
    assert_eq!(listed(&store).await, [hers[2].clone(), hers[1].clone()]);
    assert_eq!(listed_for(&store, &bob()).await, [his]);
}

/// Opens a store at `path`, expecting a refusal; returns its text after checking the
/// file was not changed and nothing was created beside it.
async fn refused_unchanged(dir: &TempDir, path: &Path) -> String {
    let before = std::fs::read(path).unwrap();
    let err = SqliteStore::open(&StoreLocation::File(path.to_owned()), generous())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotAStore { .. }), "{err:?}");
    assert_eq!(
        std::fs::read(path).unwrap(),
        before,
        "the file is unchanged"
    );
    let mut beside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    beside.sort();
    assert_eq!(
        beside,
        [path.file_name().unwrap()],
        "nothing created beside it"
    );
    let text = err.to_string();
    assert!(!text.contains('\n'), "one line: {text}");
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(
        text.contains("Set VULTR_MCP_CONVERSATIONS to another file path, or to `memory`"),
        "{text}"
    );
    text
}

#[tokio::test]
async fn a_foreign_sqlite_database_is_refused_unchanged_naming_its_tables() {
    let dir = scratch();
    let path = dir.path().join("shop.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);
             CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER, total REAL);
             INSERT INTO users (name) VALUES ('ada');",
        )
        .unwrap();
    }
    let text = refused_unchanged(&dir, &path).await;
    assert!(
        text.contains(
            "is not a conversation store but an SQLite database this server did not create (tables: orders, users); it was left unchanged"
        ),
        "{text}"
    );
    assert!(!text.contains("CREATE"), "no schema SQL: {text}");
}

#[tokio::test]
async fn a_file_that_is_not_sqlite_is_refused_unchanged() {
    let dir = scratch();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "my notes, not a database\n").unwrap();
    let text = refused_unchanged(&dir, &path).await;
    assert!(
        text.contains("is not a conversation store but a file that is not an SQLite database"),
        "{text}"
    );
}

#[tokio::test]
async fn a_damaged_store_is_refused_in_one_line_without_the_schema_sql() {
    let dir = scratch();
    let location = file_in(&dir);
    let StoreLocation::File(path) = &location else {
        unreachable!()
    };
    {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(
            "CREATE TABLE conversations (id TEXT); CREATE TABLE messages (body TEXT);
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let text = SqliteStore::open(&location, generous())
        .await
        .unwrap_err()
        .to_string();
    assert!(text.contains("no such column: updated_at"), "{text}");
    assert!(!text.contains("CREATE") && !text.contains('\n'), "{text}");
}

#[tokio::test]
async fn a_store_that_cannot_be_opened_names_the_path_and_the_setting() {
    let dir = scratch();
    // A directory where the file should be.
    let path = dir.path().join("is-a-directory");
    std::fs::create_dir_all(&path).unwrap();
    let err = SqliteStore::open(&StoreLocation::File(path.clone()), generous())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains(crate::setting::CONVERSATIONS), "{text}");
    assert!(text.contains("`memory`"), "{text}");
}
