//! Two replicas (two binaries serving HTTP) on one Postgres database: any replica answers
//! for any conversation, concurrent continuations across replicas are all kept in order,
//! and replicas starting together on a fresh database migrate it once.

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::support::fake_vultr::FakeVultr;
use crate::support::http::{Generation, HttpServer};
use crate::support::postgres::PgServer;
use crate::support::session::{Session, ok, overridden};

/// A model the fake's catalog has.
const MODEL: &str = "kimi-k2-instruct";

/// `n` replicas pointed at `fake`, sharing the Postgres `database`.
async fn replicas(fake: &FakeVultr, database: &str, n: usize) -> Vec<HttpServer> {
    let settings = fake.settings();
    let env = overridden(&settings, &[("VULTR_MCP_CONVERSATIONS", database)]);
    join_all((0..n).map(|_| HttpServer::start(&env))).await
}

/// The conversation id of a chat result.
fn conversation_id(result: &Value) -> String {
    result["conversation_id"]
        .as_str()
        .unwrap_or_else(|| panic!("the turn was saved: {result}"))
        .to_owned()
}

/// The contents of the messages of the last chat request the fake received.
async fn last_history(fake: &FakeVultr) -> Vec<String> {
    let sent = fake.chat_requests().await.pop().expect("a chat request");
    sent["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|message| message["content"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Continues conversation `id` with `prompt` on `session`.
async fn continue_on(session: &Session, id: &str, prompt: &str) -> Value {
    ok(&session
        .call(
            "chat_completion",
            json!({"conversation_id": id, "prompt": prompt}),
        )
        .await)
}

#[tokio::test]
async fn a_conversation_started_on_one_replica_is_continued_listed_read_and_deleted_on_the_other() {
    let fake = FakeVultr::start().await;
    let database = PgServer::shared().create_database();
    let servers = replicas(&fake, &database, 2).await;
    let a = servers[0].connect(Generation::Stateless, None).await;
    let b = servers[1].connect(Generation::Sessions, None).await;

    let started = ok(&a
        .call(
            "chat_completion",
            json!({"model": MODEL, "prompt": "remember the number 42"}),
        )
        .await);
    let id = conversation_id(&started);
    continue_on(&b, &id, "which number?").await;
    assert_eq!(
        last_history(&fake).await,
        [
            "remember the number 42",
            "echo: remember the number 42",
            "which number?"
        ],
        "replica b sent the history replica a stored"
    );

    let listed = b.client.list_all_resources().await.expect("resources/list");
    assert!(listed.iter().any(|r| r.uri.contains(&id)), "{listed:?}");
    let transcript = b
        .client
        .read_resource(rmcp::model::ReadResourceRequestParams::new(format!(
            "vultr://conversations/{id}"
        )))
        .await
        .expect("resources/read");
    assert!(format!("{transcript:?}").contains("which number?"));

    ok(&b
        .call("delete_conversation", json!({"conversation_id": id}))
        .await);
    let gone = a
        .call(
            "chat_completion",
            json!({"conversation_id": id, "prompt": "still there?"}),
        )
        .await;
    assert_eq!(
        gone.is_error,
        Some(true),
        "replica a still had it: {gone:?}"
    );
    for server in servers {
        server.terminate().await;
    }
}

#[tokio::test]
async fn twenty_concurrent_continuations_across_both_replicas_are_all_kept_each_reply_after_its_question()
 {
    let fake = FakeVultr::start().await;
    let database = PgServer::shared().create_database();
    let servers = replicas(&fake, &database, 2).await;
    let a = servers[0].connect(Generation::Stateless, None).await;
    let b = servers[1].connect(Generation::Stateless, None).await;
    let id = conversation_id(&ok(&a
        .call(
            "chat_completion",
            json!({"model": MODEL, "prompt": "q-start"}),
        )
        .await));

    let questions: Vec<String> = (0..20).map(|n| format!("q-{n}")).collect();
    join_all(questions.iter().enumerate().map(|(n, question)| {
        let session = if n % 2 == 0 { &a } else { &b };
        continue_on(session, &id, question)
    }))
    .await;

    continue_on(&a, &id, "q-end").await;
    let history = last_history(&fake).await;
    let stored = &history[..history.len() - 1];
    assert_eq!(stored.len(), 2 * 21, "every turn kept: {stored:?}");
    for pair in stored.chunks(2) {
        assert_eq!(pair[1], format!("echo: {}", pair[0]), "{stored:?}");
    }
    let mut asked: Vec<&String> = stored.iter().step_by(2).collect();
    asked.sort();
    let mut expected: Vec<String> = questions.clone();
    expected.push("q-start".to_owned());
    expected.sort();
    assert_eq!(asked, expected.iter().collect::<Vec<_>>());
    for server in servers {
        server.terminate().await;
    }
}

#[tokio::test]
async fn replicas_starting_together_on_a_fresh_database_all_serve_it() {
    let fake = FakeVultr::start().await;
    let database = PgServer::shared().create_database();
    let servers = replicas(&fake, &database, 3).await;
    let sessions = join_all(
        servers
            .iter()
            .map(|server| server.connect(Generation::Stateless, None)),
    )
    .await;
    // The store is opened (and migrated) on first use: all three at once.
    let results = join_all(sessions.iter().enumerate().map(|(n, session)| {
        session.call(
            "chat_completion",
            json!({"model": MODEL, "prompt": format!("first on replica {n}")}),
        )
    }))
    .await;
    let ids: Vec<String> = results.iter().map(|r| conversation_id(&ok(r))).collect();
    let listed = sessions[0]
        .client
        .list_all_resources()
        .await
        .expect("resources/list");
    for id in &ids {
        assert!(
            listed.iter().any(|r| r.uri.contains(id)),
            "{id}: {listed:?}"
        );
    }
    for server in servers {
        server.terminate().await;
    }
}

#[tokio::test]
async fn a_replica_refuses_to_start_on_a_database_migrated_by_a_newer_build() {
    let fake = FakeVultr::start().await;
    let database = PgServer::shared().create_database();
    let (client, connection) = tokio_postgres::connect(&database, tokio_postgres::NoTls)
        .await
        .expect("the test database");
    tokio::spawn(connection);
    client
        .batch_execute(
            "CREATE TABLE schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());
             INSERT INTO schema_migrations (version) VALUES (999);",
        )
        .await
        .expect("a newer schema");
    let settings = fake.settings();
    let env = overridden(&settings, &[("VULTR_MCP_CONVERSATIONS", &database)]);
    let (status, stderr) = match HttpServer::try_start(&env).await {
        Ok(_) => panic!("a replica served a database it does not understand"),
        Err(refused) => refused,
    };
    assert!(!status.success());
    assert!(
        stderr.contains("schema version 999") && stderr.contains("Upgrade vultr-inference-mcp"),
        "{stderr}"
    );
}
