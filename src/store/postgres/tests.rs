//! The Postgres store against a real, private Postgres server (see
//! tests/support/postgres.rs): the store contract, migrations, concurrent appends, and
//! outages.

use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::store::contract::{self, alice, as_json, msg, start, user};
use crate::store::{
    ConversationStore, LegacySessionStore, SESSION_IDLE, SharedSessions, StoreLocation,
    StoredSession, Turn, open_stores,
};

#[allow(dead_code)]
#[path = "../../../tests/support/postgres.rs"]
mod pg_server;

use pg_server::PgServer;

/// Generous room, so retention stays out of the way.
const POOL: usize = 4;

fn url(text: &str) -> PostgresUrl {
    PostgresUrl::parse(text).expect("a postgres URL")
}

/// A store on a fresh database of the shared server, with the contract's retention.
async fn fresh_store() -> (PostgresStore, String) {
    let database = PgServer::shared().create_database();
    let store = PostgresStore::open(&url(&database), contract::RETENTION, POOL)
        .await
        .unwrap();
    (store, database)
}

/// A direct connection to `database`, for looking at what the store wrote.
async fn connect(database: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(database, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// How many connections this crate holds to `database`.
async fn connections_to(database: &str) -> i64 {
    let name = database.rsplit('/').next().unwrap().to_owned();
    connect(database)
        .await
        .query_one(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2",
            &[&name, &env!("CARGO_PKG_NAME")],
        )
        .await
        .unwrap()
        .get(0)
}

/// The versions recorded in `schema_migrations`.
async fn recorded_versions(database: &str) -> Vec<i32> {
    connect(database)
        .await
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

#[tokio::test]
async fn the_postgres_store_keeps_the_contract() {
    let (store, _) = fresh_store().await;
    contract::check_contract(&store).await;
}

#[tokio::test]
async fn the_postgres_store_keeps_the_collection_contract() {
    let (store, _) = fresh_store().await;
    contract::check_collection_contract(&store).await;
}

#[tokio::test]
async fn the_postgres_store_keeps_the_ledger_contract() {
    let (store, _) = fresh_store().await;
    contract::check_ledger_contract(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_spending_at_once_for_one_principal_never_pass_its_limit() {
    let (first, database) = fresh_store().await;
    let second = PostgresStore::open(&url(&database), contract::RETENTION, POOL)
        .await
        .unwrap();
    let replicas: [Arc<dyn crate::store::LedgerStore>; 2] = [Arc::new(first), Arc::new(second)];
    contract::check_concurrent_reservations(&replicas).await;
}

#[tokio::test]
async fn stores_opening_one_fresh_database_at_once_all_succeed_and_apply_the_schema_once() {
    let database = PgServer::shared().create_database();
    let opens = (0..8).map(|_| {
        let url = url(&database);
        tokio::spawn(async move { PostgresStore::open(&url, contract::RETENTION, 2).await })
    });
    let stores: Vec<PostgresStore> = futures_util::future::join_all(opens)
        .await
        .into_iter()
        .map(|joined| joined.unwrap().unwrap())
        .collect();
    let expected: Vec<i32> = (1..=schema::SCHEMA_VERSION).collect();
    assert_eq!(recorded_versions(&database).await, expected);
    // Each of them works on the one schema.
    let id = start(&stores[0], &alice(), &[user("hi")]).await;
    assert_eq!(stores[7].get(&alice(), &id).await.unwrap().summary.id, id);
    // Opening again later changes nothing.
    PostgresStore::open(&url(&database), contract::RETENTION, 1)
        .await
        .unwrap();
    assert_eq!(recorded_versions(&database).await, expected);
}

#[tokio::test]
async fn a_database_with_a_newer_schema_is_refused_with_advice() {
    let (_, database) = fresh_store().await;
    connect(&database)
        .await
        .execute("INSERT INTO schema_migrations (version) VALUES (99)", &[])
        .await
        .unwrap();
    let err = PostgresStore::open(&url(&database), contract::RETENTION, POOL)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 99, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "has schema version 99, newer than this build understands ({})",
            schema::SCHEMA_VERSION
        )),
        "{text}"
    );
    assert!(text.contains("Upgrade vultr-inference-mcp"), "{text}");
}

#[tokio::test]
async fn concurrent_appends_to_one_conversation_from_two_stores_are_all_kept_each_turn_together() {
    let (first, database) = fresh_store().await;
    let second = PostgresStore::open(&url(&database), contract::RETENTION, POOL)
        .await
        .unwrap();
    let replicas = [Arc::new(first), Arc::new(second)];
    let id = start(replicas[0].as_ref(), &alice(), &[user("start")]).await;
    let appends = (0..20).map(|i| {
        let store = Arc::clone(&replicas[i % 2]);
        let id = id.clone();
        tokio::spawn(async move {
            let turn = [
                user(&format!("question {i}")),
                msg(json!({"role": "assistant", "content": format!("answer {i}")})),
            ];
            store.append(&alice(), &id, &Turn::new("m", &turn)).await
        })
    });
    for appended in futures_util::future::join_all(appends).await {
        appended.unwrap().unwrap();
    }
    let conversation = replicas[1].get(&alice(), &id).await.unwrap();
    assert_eq!(conversation.summary.turns, 21);
    let contents: Vec<String> = as_json(&conversation.messages)
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(contents.len(), 41);
    assert_eq!(contents[0], "start");
    let mut seen: Vec<usize> = contents[1..]
        .chunks(2)
        .map(|turn| {
            let i: usize = turn[0].strip_prefix("question ").unwrap().parse().unwrap();
            assert_eq!(
                turn[1],
                format!("answer {i}"),
                "each answer follows its question"
            );
            i
        })
        .collect();
    seen.sort_unstable();
    assert_eq!(
        seen,
        (0..20).collect::<Vec<_>>(),
        "every turn is stored once"
    );
}

#[tokio::test]
async fn the_store_keeps_at_most_its_pool_size_of_connections() {
    let database = PgServer::shared().create_database();
    let store = Arc::new(
        PostgresStore::open(&url(&database), contract::RETENTION, 2)
            .await
            .unwrap(),
    );
    let calls = (0..20).map(|_| {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.list(&alice(), 10).await })
    });
    for listed in futures_util::future::join_all(calls).await {
        listed.unwrap().unwrap();
    }
    let connections = connections_to(&database).await;
    assert!((1..=2).contains(&connections), "{connections} connections");
}

#[tokio::test]
async fn an_unreachable_store_says_it_is_postgres_and_what_to_check_but_not_which_database() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = PostgresStore::open(
        &url(&format!(
            "postgres://qz_user_71:s3cret@127.0.0.1:{port}/qz_chats_93"
        )),
        contract::RETENTION,
        POOL,
    )
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StoreError::Postgres { .. }), "{err:?}");
    assert!(
        text.starts_with("the conversation store (Postgres) failed while connecting to it: "),
        "{text}"
    );
    assert!(
        text.contains("Check that the Postgres server named by VULTR_MCP_CONVERSATIONS is running and reachable"),
        "{text}"
    );
    let debug = format!("{err:?}");
    for hidden in [
        "qz_user_71",
        "qz_chats_93",
        "127.0.0.1",
        &port.to_string(),
        "s3cret",
    ] {
        assert!(!text.contains(hidden), "{hidden}: {text}");
        assert!(!debug.contains(hidden), "{hidden}: {debug}");
    }
}

/// A TCP server on loopback that accepts connections and never answers (a Postgres server
/// hung, or a firewall swallowing packets); its port.
async fn silent_server() -> (u16, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (port, server)
}

#[tokio::test]
async fn concurrent_first_uses_of_an_unanswering_postgres_share_one_open() {
    let (port, server) = silent_server().await;
    let database = format!("postgres://app@127.0.0.1:{port}/chats");
    let stores = open_stores(StoreLocation::parse(&database), contract::RETENTION, POOL);
    let owner = alice();
    let started = std::time::Instant::now();
    let conversations =
        futures_util::future::join_all((0..4).map(|_| stores.conversations.list(&owner, 1)));
    let tasks = futures_util::future::join_all((0..4).map(|_| stores.tasks.get(&owner, "t", 0)));
    let (conversations, tasks) = tokio::join!(conversations, tasks);
    let waited = started.elapsed();
    assert!(
        conversations.iter().all(Result::is_err),
        "{conversations:?}"
    );
    assert!(tasks.iter().all(Result::is_err));
    // One open gives up after POOL_TIMEOUT (5 s); eight opens one after another would take 40 s.
    assert!(
        waited < POOL_TIMEOUT * 2,
        "eight first uses waited {waited:?}, more than one open's time"
    );
    let text = conversations[0].as_ref().unwrap_err().to_string();
    assert!(text.contains("connecting took too long"), "{text}");

    // Within the next few seconds the failure is answered from memory, at once.
    let again = std::time::Instant::now();
    assert!(stores.conversations.list(&owner, 1).await.is_err());
    assert!(again.elapsed() < POOL_TIMEOUT / 2, "{:?}", again.elapsed());
    server.abort();
}

#[tokio::test]
async fn calls_fail_clearly_while_postgres_is_down_and_work_again_once_it_is_back() {
    let server = PgServer::start();
    let database = server.create_database();
    server.stop();

    // Down at start: the first call fails; opening is tried again a few seconds later.
    let store =
        open_stores(StoreLocation::parse(&database), contract::RETENTION, POOL).conversations;
    let err = store.list(&alice(), 10).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(
            "conversations are unavailable: the conversation store (Postgres) failed while connecting to it"
        ),
        "{text}"
    );
    server.start_again();
    tokio::time::sleep(crate::store::REMEMBER_FAILURE).await;
    let id = start(store.as_ref(), &alice(), &[user("hello")]).await;

    // Down while in use: calls fail naming the kind of store, then the pool reconnects by itself.
    server.stop();
    let err = store.get(&alice(), &id).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StoreError::Postgres { .. }), "{err:?}");
    assert!(
        text.starts_with("the conversation store (Postgres) failed while reading"),
        "{text}"
    );
    assert!(
        text.contains("Check that the Postgres server named by"),
        "{text}"
    );
    server.start_again();
    assert_eq!(store.get(&alice(), &id).await.unwrap().summary.id, id);
    assert_eq!(store.list(&alice(), 10).await.unwrap().len(), 1);
}

/// Whether the store's connections are encrypted.
async fn encrypted(store: &PostgresStore) -> bool {
    store
        .pool
        .get()
        .await
        .unwrap()
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn tls_is_used_as_the_urls_sslmode_asks_and_checks_the_certificate_when_told() {
    let server = PgServer::start_with_tls();
    let database = server.create_database().replace("127.0.0.1", "localhost");
    let database = &database;
    let open = |query: String| async move {
        let url = url(&format!("{database}{query}"));
        PostgresStore::open(&url, contract::RETENTION, 1).await
    };

    let plain = open(String::new()).await.unwrap();
    assert!(!encrypted(&plain).await, "no sslmode: plain");
    let required = open("?sslmode=require".to_owned()).await.unwrap();
    assert!(encrypted(&required).await, "require: encrypted");

    // The test CA is not one of the system's: checking the certificate fails, clearly.
    let err = open("?sslmode=verify-full".to_owned()).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StoreError::Postgres { .. }), "{err:?}");
    assert!(text.contains("certificate"), "{text}");

    let ca = server.ca_file().display().to_string();
    let verified = open(format!("?sslmode=verify-full&sslrootcert={ca}"))
        .await
        .unwrap();
    assert!(encrypted(&verified).await, "verify-full: encrypted");
    let id = start(&verified, &alice(), &[user("over TLS")]).await;
    assert_eq!(required.get(&alice(), &id).await.unwrap().summary.id, id);
}

#[tokio::test]
async fn the_postgres_task_store_keeps_the_task_contract() {
    let (store, _) = fresh_store().await;
    contract::check_task_contract(&store).await;
}

#[tokio::test]
async fn the_postgres_media_store_keeps_the_media_contract() {
    let (store, _) = fresh_store().await;
    contract::check_media_contract(&store).await;
}

/// The legacy sessions of `database`, as one replica sees them.
fn sessions_of(database: &str) -> Lazy<Arc<SharedSessions>> {
    let shared = Arc::new(shared(url(database), contract::RETENTION, 2));
    Lazy::new(opener(&shared, |store| store as Arc<SharedSessions>))
}

#[tokio::test]
async fn the_stores_of_a_postgres_location_share_one_pool() {
    let database = PgServer::shared().create_database();
    let stores = crate::store::open_stores(StoreLocation::parse(&database), contract::RETENTION, 1);
    let task = crate::store::TaskRecord::working(1_000, 3_600_000, "running");
    let sessions = stores.sessions.expect("Postgres shares legacy sessions");
    let alice = alice();
    let (created, saved, listed) = tokio::join!(
        stores.tasks.create(&alice, &task),
        sessions.save_state("s1", "{}"),
        stores.conversations.list(&alice, 10),
    );
    created.unwrap();
    saved.unwrap();
    listed.unwrap();
    let connections = connections_to(&database).await;
    assert_eq!(connections, 1);
}

#[tokio::test]
async fn a_shared_session_keeps_its_state_and_owner_until_deleted() {
    let database = PgServer::shared().create_database();
    let sessions = sessions_of(&database);
    let other_replica = sessions_of(&database);
    assert_eq!(other_replica.use_session("s1").await.unwrap(), None);

    sessions.save_state("s1", r#"{"k":1}"#).await.unwrap();
    sessions.save_owner("s1", &alice()).await.unwrap();

    assert_eq!(
        other_replica.use_session("s1").await.unwrap(),
        Some(StoredSession {
            state: Some(r#"{"k":1}"#.to_owned()),
            owner: Some(alice()),
        })
    );
    other_replica.delete("s1").await.unwrap();
    assert_eq!(sessions.use_session("s1").await.unwrap(), None);
}

#[tokio::test]
async fn a_session_unused_for_an_hour_is_gone_and_deleted_by_the_next_save() {
    let database = PgServer::shared().create_database();
    let sessions = sessions_of(&database);
    sessions.save_state("old", "{}").await.unwrap();
    sessions.save_owner("old", &alice()).await.unwrap();
    let idle = i64::try_from(SESSION_IDLE.as_secs()).unwrap();
    let client = connect(&database).await;
    client
        .execute(
            "UPDATE legacy_sessions SET used_at = used_at - $1 - 1",
            &[&idle],
        )
        .await
        .unwrap();

    assert_eq!(sessions.use_session("old").await.unwrap(), None);
    sessions.save_state("new", "{}").await.unwrap();
    let ids: Vec<String> = client
        .query("SELECT id FROM legacy_sessions", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(ids, ["new"]);
}
